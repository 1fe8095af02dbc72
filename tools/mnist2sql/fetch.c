/*
 * fetch.c — download the four MNIST files with libcurl.
 *
 * For each file the mirrors are tried in order.  A download goes to a
 * mkstemp file in the target directory; it is checked (HTTP status, the
 * published size and MD5 when checksums are on, then read completely as
 * IDX, which also verifies the gzip CRC) and only then renamed into place.
 * A failed attempt leaves nothing behind and names the URL and the reason.
 * Credentials in a mirror URL (user:pass@) are never printed.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "m2s.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

const char *const m2s_file_names[4] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
};

/* The public MNIST mirrors, most reliable first. */
const char *const m2s_default_mirrors[] = {
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    NULL,
};

/* Sizes and MD5s of the original MNIST files (as published by the mirrors
 * and used by torchvision), in m2s_file_names order. */
static const struct {
    long size;
    const char *md5;
} mnist_sums[4] = {
    { 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873" },
    { 28881, "d53e105ee54ea40749a09fcbcd1e9432" },
    { 1648877, "9fb629c4189551a2d022fa330f9573f3" },
    { 4542, "ec29112dd5afa0611ce80d1b7f02629c" },
};

struct dl_ctx {
    const char *name;
    bool progress;
    int last_pct;
};

void m2s_redact_url(const char *url, char *buf, size_t len)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        snprintf(buf, len, "%.*s***@%s", (int)(host - url), url, at + 1);
    else
        snprintf(buf, len, "%s", url);
}

static int on_progress(void *p, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un)
{
    struct dl_ctx *c = p;
    if (m2s_interrupted)
        return 1; /* abort the transfer */
    if (!c->progress || total <= 0)
        return 0;
    int pct = (int)(now * 100 / total);
    if (pct != c->last_pct) {
        c->last_pct = pct;
        fprintf(stderr, "\rdownloading %s: %3d%% (%.1f of %.1f MB)", c->name, pct,
                (double)now / 1e6, (double)total / 1e6);
    }
    return 0;
}

/* GET url into fp; 0 or -1 with err naming the URL as `shown` (redacted). */
static int http_get(const char *url, const char *shown, FILE *fp, struct dl_ctx *dc,
                    char *err, size_t errlen)
{
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(err, errlen, "%s: cannot initialise libcurl", shown);
        return -1;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, fp);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "mnist2sql/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, dc);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (dc->progress && dc->last_pct >= 0)
        fputc('\n', stderr);
    if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && status >= 400)) {
        snprintf(err, errlen, "%s: HTTP %ld", shown, status);
        return -1;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(err, errlen, "%s: interrupted", shown);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", shown, cerr[0] ? cerr : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* Size and MD5 against the published values for file `idx`. */
static int check_sums(const char *file, const char *shown, int idx, char *err, size_t errlen)
{
    struct stat st;
    if (stat(file, &st) < 0) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }
    if (st.st_size != mnist_sums[idx].size) {
        snprintf(err, errlen, "%s: size %lld bytes, but the MNIST file %s is %ld bytes "
                 "(use --checksums none for other data)", shown, (long long)st.st_size,
                 m2s_file_names[idx], mnist_sums[idx].size);
        return -1;
    }
    char hex[33];
    if (m2s_md5_file(file, hex, err, errlen) < 0)
        return -1;
    if (strcmp(hex, mnist_sums[idx].md5) != 0) {
        snprintf(err, errlen, "%s: MD5 %s, but the MNIST file %s has %s", shown, hex,
                 m2s_file_names[idx], mnist_sums[idx].md5);
        return -1;
    }
    return 0;
}

static enum m2s_idx_kind kind_of(int idx)
{
    return idx % 2 == 0 ? M2S_IDX_IMAGES : M2S_IDX_LABELS;
}

/* One attempt: download, verify, rename.  Leaves no temp file. */
static int fetch_one(const char *dir, const char *mirror, int idx, bool sums,
                     bool progress, char *err, size_t errlen)
{
    const char *name = m2s_file_names[idx];
    char url[4096], shown[4096], tmp[4096], dest[4096];
    size_t ml = strlen(mirror);
    snprintf(url, sizeof url, "%s%s%s", mirror, ml && mirror[ml - 1] == '/' ? "" : "/", name);
    m2s_redact_url(url, shown, sizeof shown);
    snprintf(dest, sizeof dest, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.part.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a file in %s: %s", dest, dir, strerror(errno));
        return -1;
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    struct dl_ctx dc = { .name = name, .progress = progress, .last_pct = -1 };
    int rc = http_get(url, shown, fp, &dc, err, errlen);
    if (fclose(fp) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: write failed: %s", dest, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && sums)
        rc = check_sums(tmp, shown, idx, err, errlen);
    if (rc == 0)
        rc = m2s_idx_check(tmp, shown, kind_of(idx), err, errlen);
    if (rc == 0 && chmod(tmp, 0644) < 0) {
        snprintf(err, errlen, "%s: chmod: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, dest) < 0) {
        snprintf(err, errlen, "%s: cannot rename into place: %s", dest, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* A file already in `dir` that passes the same checks is kept. */
static bool already_present(const char *dir, int idx, bool sums)
{
    char path[4096], err[M2S_ERRLEN];
    snprintf(path, sizeof path, "%s/%s", dir, m2s_file_names[idx]);
    if (access(path, R_OK) != 0)
        return false;
    if (sums)
        return check_sums(path, path, idx, err, sizeof err) == 0;
    return m2s_idx_check(path, path, kind_of(idx), err, sizeof err) == 0;
}

int m2s_download(const char *dir, const char *const *mirrors, size_t nmirrors,
                 enum m2s_checksums sums, bool progress, bool quiet,
                 char *err, size_t errlen)
{
    bool custom = mirrors != NULL;
    if (!custom) {
        mirrors = m2s_default_mirrors;
        for (nmirrors = 0; mirrors[nmirrors]; nmirrors++)
            ;
    }
    bool verify = sums == M2S_SUMS_MNIST || (sums == M2S_SUMS_AUTO && !custom);
    if (m2s_mkdirs(dir, err, errlen) < 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (already_present(dir, i, verify)) {
            if (!quiet)
                fprintf(stderr, "mnist2sql: %s/%s already present, not downloading\n", dir,
                        m2s_file_names[i]);
            continue;
        }
        int rc = -1;
        for (size_t m = 0; m < nmirrors && rc < 0 && !m2s_interrupted; m++) {
            if (m > 0)
                fprintf(stderr, "mnist2sql: %s; trying the next mirror\n", err);
            rc = fetch_one(dir, mirrors[m], i, verify, progress, err, errlen);
        }
        if (rc < 0) {
            if (nmirrors > 1) {
                char last[M2S_ERRLEN];
                snprintf(last, sizeof last, "%s", err);
                snprintf(err, errlen, "%s: all %zu mirrors failed; last: %s",
                         m2s_file_names[i], nmirrors, last);
            }
            return -1;
        }
        if (!quiet)
            fprintf(stderr, "mnist2sql: downloaded %s/%s%s\n", dir, m2s_file_names[i],
                    verify ? " (size and MD5 verified)" : "");
    }
    return 0;
}
