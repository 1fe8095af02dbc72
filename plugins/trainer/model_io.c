/*
 * model_io.c — saving and loading the trainer's model file (format in
 * model_io.h and docs/model-format.md).  Integers and floats are written
 * little-endian byte by byte, so files move between machines.
 */
#include "model_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t nn_crc32(const void *data, size_t len)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t file_size(const nn_net *n)
{
    return NN_MODEL_HEADER + 4 * n->nparams + 4;
}

/* Serialise n into a new buffer of file_size(n) bytes. */
static unsigned char *encode(const nn_net *n)
{
    size_t len = file_size(n);
    unsigned char *buf = calloc(1, len);
    if (!buf)
        return NULL;
    memcpy(buf, NN_MODEL_MAGIC, 8);
    put32(buf + 8, NN_MODEL_VERSION);
    put32(buf + 12, NN_MODEL_ARCH);
    put32(buf + 16, (uint32_t)n->in);
    put32(buf + 20, (uint32_t)n->hidden);
    put32(buf + 24, (uint32_t)n->out);
    for (size_t i = 0; i < n->nparams; i++) {
        uint32_t bits;
        memcpy(&bits, &n->params[i], 4);
        put32(buf + NN_MODEL_HEADER + 4 * i, bits);
    }
    put32(buf + len - 4, nn_crc32(buf, len - 4));
    return buf;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int nn_model_save(const nn_net *n, const char *path, char *err, size_t errlen)
{
    unsigned char *buf = encode(n);
    if (!buf) {
        snprintf(err, errlen, "model file '%s': out of memory", path);
        return -1;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    int fd = -1, rc = -1;
    if (!tmp)
        goto out;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    if ((fd = mkstemp(tmp)) < 0) {
        snprintf(err, errlen, "model file '%s': cannot create a temporary file: %s", path,
                 strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0644) != 0 || write_all(fd, buf, file_size(n)) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "model file '%s': write failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0 || (fd = -1, rename(tmp, path) != 0)) {
        snprintf(err, errlen, "model file '%s': rename from %s failed: %s", path, tmp,
                 strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    free(buf);
    return rc;
}

static unsigned char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "model file '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > (1 << 30)) {
        snprintf(err, errlen, "model file '%s': cannot stat or too large", path);
        goto out;
    }
    *len = (size_t)st.st_size;
    if (!(buf = malloc(*len ? *len : 1)) || fread(buf, 1, *len, f) != *len) {
        snprintf(err, errlen, "model file '%s': read failed", path);
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    return buf;
}

/* Check the header; on success sets the shapes. */
static int check_header(const unsigned char *b, size_t len, const char *path, int *in, int *hid,
                        int *out, char *err, size_t errlen)
{
    if (len < NN_MODEL_HEADER + 4) {
        snprintf(err, errlen, "model file '%s': truncated (%zu bytes, a header alone is %u)",
                 path, len, NN_MODEL_HEADER + 4);
        return -1;
    }
    if (memcmp(b, NN_MODEL_MAGIC, 8) != 0) {
        snprintf(err, errlen, "model file '%s': not a Tributary model (bad magic)", path);
        return -1;
    }
    uint32_t ver = get32(b + 8), arch = get32(b + 12);
    if (ver != NN_MODEL_VERSION || arch != NN_MODEL_ARCH) {
        snprintf(err, errlen,
                 "model file '%s': unsupported format version %u / architecture %u "
                 "(this build reads version %u, architecture %u)",
                 path, ver, arch, NN_MODEL_VERSION, NN_MODEL_ARCH);
        return -1;
    }
    uint32_t i = get32(b + 16), h = get32(b + 20), o = get32(b + 24);
    if (i == 0 || i > (1u << 20) || h == 0 || h > (1u << 16) || o < 2 || o > (1u << 12)) {
        snprintf(err, errlen, "model file '%s': corrupt header (shapes %u x %u x %u)", path, i,
                 h, o);
        return -1;
    }
    size_t want = NN_MODEL_HEADER + 4 * nn_net_count((int)i, (int)h, (int)o) + 4;
    if (len != want) {
        snprintf(err, errlen, "model file '%s': %s (%zu bytes, expected %zu for %ux%ux%u)",
                 path, len < want ? "truncated" : "trailing garbage", len, want, i, h, o);
        return -1;
    }
    *in = (int)i;
    *hid = (int)h;
    *out = (int)o;
    return 0;
}

int nn_model_load(nn_net *n, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    int in, hid, out, rc = -1;
    memset(n, 0, sizeof *n);
    unsigned char *b = read_file(path, &len, err, errlen);
    if (!b)
        return -1;
    if (check_header(b, len, path, &in, &hid, &out, err, errlen) != 0)
        goto out;
    uint32_t want = get32(b + len - 4), got = nn_crc32(b, len - 4);
    if (want != got) {
        snprintf(err, errlen, "model file '%s': checksum mismatch (stored %08x, computed %08x): "
                 "the file is corrupt", path, want, got);
        goto out;
    }
    if (nn_net_init(n, in, hid, out) != 0) {
        snprintf(err, errlen, "model file '%s': out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < n->nparams; i++) {
        uint32_t bits = get32(b + NN_MODEL_HEADER + 4 * i);
        memcpy(&n->params[i], &bits, 4);
        if (!isfinite(n->params[i])) {
            snprintf(err, errlen, "model file '%s': weight %zu is not finite", path, i);
            nn_net_free(n);
            goto out;
        }
    }
    rc = 0;
out:
    free(b);
    return rc;
}
