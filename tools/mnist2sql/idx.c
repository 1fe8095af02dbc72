/*
 * idx.c — read and validate IDX files (the MNIST distribution format).
 *
 * An IDX file is a 4-byte magic number (0, 0, data type, number of
 * dimensions), one big-endian uint32 per dimension, then the data.  MNIST
 * uses type 0x08 (unsigned byte): images are 3-dimensional (count, 28, 28),
 * labels 1-dimensional (count).  Files may be gzip-compressed or not; zlib's
 * gzread reads both.  We read to the end of the stream so that a truncated
 * or corrupt gzip file (bad CRC, missing trailer) is always reported.
 */
#include "m2s.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_ITEMS 100000000u /* refuse absurd headers before malloc */
#define IDX_CHUNK (8u << 20)

void m2s_set_free(struct m2s_set *set)
{
    free(set->pixels);
    free(set->labels);
    set->pixels = NULL;
    set->labels = NULL;
    set->count = 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* gzread wrapper: reads exactly len bytes unless EOF or error.  Returns the
 * number of bytes read, or -1 with err filled from zlib. */
static long long gz_read_full(gzFile gz, const char *path, uint8_t *buf, size_t len,
                              char *err, size_t errlen)
{
    size_t done = 0;
    while (done < len) {
        if (m2s_interrupted) {
            snprintf(err, errlen, "%s: interrupted", path);
            return -1;
        }
        size_t want = len - done < IDX_CHUNK ? len - done : IDX_CHUNK;
        int n = gzread(gz, buf + done, (unsigned)want);
        int code = Z_OK;
        if (n == 0)
            gzerror(gz, &code); /* Z_BUF_ERROR: the gzip stream was cut short */
        if (n < 0 || (n == 0 && code != Z_OK && code != Z_STREAM_END)) {
            const char *msg = gzerror(gz, &code);
            const char *colon = strrchr(msg, ':'); /* zlib prefixes the file name */
            if (colon && colon[1] == ' ')
                msg = colon + 2;
            snprintf(err, errlen, "%s: corrupt or truncated gzip data: %s",
                     path, code == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (long long)done;
}

static const char *kind_name(enum m2s_idx_kind kind)
{
    return kind == M2S_IDX_IMAGES ? "an IDX image file" : "an IDX label file";
}

/* Explain a wrong magic number, recognising common mistakes. */
static void bad_magic(const char *path, enum m2s_idx_kind kind, const uint8_t *m,
                      char *err, size_t errlen)
{
    uint32_t got = be32(m);
    uint32_t want = kind == M2S_IDX_IMAGES ? 0x803 : 0x801;
    const char *hint = "";
    if (got == 0x803 || got == 0x801)
        hint = kind == M2S_IDX_IMAGES ? " (this is a label file; images and labels swapped?)"
                                      : " (this is an image file; images and labels swapped?)";
    else if (m[0] == '<')
        hint = " (looks like an HTML page: an error page from a web server?)";
    else if (m[0] == 0 && m[1] == 0 && m[2] != IDX_TYPE_UBYTE)
        hint = " (IDX data type is not unsigned byte)";
    snprintf(err, errlen, "%s: bad magic number 0x%08x, expected 0x%08x for %s%s",
             path, got, want, kind_name(kind), hint);
}

/* Read and check the header; sets *count and *item (bytes per item). */
static int read_header(gzFile gz, const char *path, enum m2s_idx_kind kind,
                       uint32_t *count, size_t *item, char *err, size_t errlen)
{
    uint8_t hdr[16];
    unsigned ndims = kind == M2S_IDX_IMAGES ? 3 : 1;
    long long n = gz_read_full(gz, path, hdr, 4, err, errlen);
    if (n < 0)
        return -1;
    if (n < 4) {
        snprintf(err, errlen, "%s: truncated: %s (%lld bytes, not even a header)",
                 path, n == 0 ? "empty file" : "too short", n);
        return -1;
    }
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != IDX_TYPE_UBYTE || hdr[3] != ndims) {
        bad_magic(path, kind, hdr, err, errlen);
        return -1;
    }
    n = gz_read_full(gz, path, hdr + 4, 4 * ndims, err, errlen);
    if (n < 0)
        return -1;
    if (n < 4 * (long long)ndims) {
        snprintf(err, errlen, "%s: truncated inside the IDX header", path);
        return -1;
    }
    *count = be32(hdr + 4);
    *item = 1;
    if (kind == M2S_IDX_IMAGES) {
        uint32_t rows = be32(hdr + 8), cols = be32(hdr + 12);
        if (rows != M2S_ROWS || cols != M2S_COLS) {
            snprintf(err, errlen, "%s: images are %" PRIu32 "x%" PRIu32
                     ", but mnist2sql handles MNIST-format 28x28 images only",
                     path, rows, cols);
            return -1;
        }
        *item = M2S_PIXELS;
    }
    if (*count > IDX_MAX_ITEMS) {
        snprintf(err, errlen, "%s: header claims %" PRIu32 " items; not a plausible MNIST file",
                 path, *count);
        return -1;
    }
    return 0;
}

/* After the declared data: the stream must end here (and its CRC check). */
static int expect_end(gzFile gz, const char *path, uint32_t count, char *err, size_t errlen)
{
    uint8_t extra[64];
    long long n = gz_read_full(gz, path, extra, sizeof extra, err, errlen);
    if (n < 0)
        return -1;
    if (n > 0) {
        snprintf(err, errlen, "%s: unexpected data after the %" PRIu32
                 " items the header declares (wrong count in header?)", path, count);
        return -1;
    }
    return 0;
}

/*
 * Read up to `want` bytes into a new *buf.  The buffer grows with the data
 * actually read, never to a size only the header claims: a corrupt or
 * hostile header (billions of items) must not allocate gigabytes before the
 * file turns out to be short.  Returns the bytes read (< want at EOF), or -1.
 */
static long long read_items(gzFile gz, const char *path, size_t want, uint8_t **buf,
                            char *err, size_t errlen)
{
    size_t cap = want < IDX_CHUNK ? want : IDX_CHUNK, got = 0;
    if (!(*buf = malloc(cap ? cap : 1)))
        goto oom;
    while (got < want) {
        if (got == cap) {
            size_t ncap = cap > want / 2 ? want : cap * 2;
            uint8_t *nb = realloc(*buf, ncap);
            if (!nb)
                goto oom;
            *buf = nb;
            cap = ncap;
        }
        long long n = gz_read_full(gz, path, *buf + got, cap - got, err, errlen);
        if (n < 0)
            return -1;
        got += (size_t)n;
        if (got < cap)
            break; /* end of the stream */
    }
    return (long long)got;
oom:
    snprintf(err, errlen, "%s: out of memory for %zu bytes", path, want);
    return -1;
}

int m2s_idx_read(const char *path, enum m2s_idx_kind kind, uint32_t *count,
                 uint8_t **data, char *err, size_t errlen)
{
    return m2s_idx_read_as(path, path, kind, count, data, err, errlen);
}

int m2s_idx_check(const char *path, const char *label, enum m2s_idx_kind kind,
                  char *err, size_t errlen)
{
    uint32_t count;
    uint8_t *data;
    if (m2s_idx_read_as(path, label, kind, &count, &data, err, errlen) < 0)
        return -1;
    free(data);
    return 0;
}

int m2s_idx_read_as(const char *file, const char *path, enum m2s_idx_kind kind,
                    uint32_t *count, uint8_t **data, char *err, size_t errlen)
{
    *data = NULL;
    gzFile gz = gzopen(file, "rb");
    if (!gz) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 errno ? strerror(errno) : "out of memory");
        return -1;
    }
    gzbuffer(gz, 1u << 20);
    size_t item = 0;
    uint8_t *buf = NULL;
    if (read_header(gz, path, kind, count, &item, err, errlen) < 0)
        goto fail;
    size_t want = (size_t)*count * item;
    long long got = read_items(gz, path, want, &buf, err, errlen);
    if (got < 0)
        goto fail;
    if ((size_t)got < want) {
        snprintf(err, errlen, "%s: truncated: header declares %" PRIu32 " %s (%zu bytes) "
                 "but the data ends after %lld bytes (%lld complete)", path, *count,
                 kind == M2S_IDX_IMAGES ? "images" : "labels", want, got,
                 got / (long long)item);
        goto fail;
    }
    if (expect_end(gz, path, *count, err, errlen) < 0)
        goto fail;
    gzclose(gz);
    *data = buf;
    return 0;
fail:
    free(buf);
    gzclose(gz);
    return -1;
}

int m2s_idx_load_pair(const char *images, const char *labels,
                      struct m2s_set *set, char *err, size_t errlen)
{
    uint32_t nimg = 0, nlab = 0;
    memset(set, 0, sizeof *set);
    if (m2s_idx_read(images, M2S_IDX_IMAGES, &nimg, &set->pixels, err, errlen) < 0)
        return -1;
    if (m2s_idx_read(labels, M2S_IDX_LABELS, &nlab, &set->labels, err, errlen) < 0) {
        m2s_set_free(set);
        return -1;
    }
    if (nimg != nlab) {
        snprintf(err, errlen, "%s has %" PRIu32 " images but %s has %" PRIu32
                 " labels: the files do not belong together", images, nimg, labels, nlab);
        m2s_set_free(set);
        return -1;
    }
    set->count = nimg;
    return 0;
}
