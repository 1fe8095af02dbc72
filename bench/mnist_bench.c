/*
 * bench/mnist_bench.c — the mnist transform's CSV encoding, through the real
 * plugin (loaded like the engine loads it), against a baseline encoder in
 * the same process: the 64K-entry table of pixel pairs the transform used
 * until 2026-12-02 (576 KB; one 8-byte copy per two pixels).
 *
 * A second baseline is the transform's own loop until 2026-12-07 (the same
 * 256-entry table, without the shortcut for eight zero pixels), encoding
 * only: the transform's time also includes its allocations, so the ratio
 * understates what the shortcut saves.
 *
 * Each encoder formats the same N images (raw IDX pixels on stdin), once
 * with a warm cache and once with "pressure": 8 MB of other memory touched
 * every 8 images, as the source, sender and broker threads do on the same two
 * cores of a running pipeline.  Prints ns per image and the ratios.
 *
 * Usage: gzip -dc train-images-idx3-ubyte.gz | bench/mnist_bench [N]
 * (bench/mnist_bench.sh builds it and feeds it Fashion-MNIST.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testhost.h"

#define PIXELS 784

static uint64_t pair_txt[65536]; /* baseline: "a,b," of pixels a | b << 8 */
static unsigned char pair_len[65536];

static void pairs_build(void)
{
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            char tmp[16] = {0};
            int n = snprintf(tmp, sizeof tmp, "%d,%d,", a, b);
            memcpy(&pair_txt[a | b << 8], tmp, 8);
            pair_len[a | b << 8] = (unsigned char)n;
        }
}

static size_t pairs_csv(const unsigned char *px, char *out) /* PIXELS is a multiple of 4 */
{
    char *o = out;
    for (size_t i = 0; i < PIXELS; i += 4) {
        unsigned a = px[i] | (unsigned)px[i + 1] << 8, b = px[i + 2] | (unsigned)px[i + 3] << 8;
        memcpy(o, &pair_txt[a], 8);
        o += pair_len[a];
        memcpy(o, &pair_txt[b], 8);
        o += pair_len[b];
    }
    return (size_t)(o - out) - 1;
}

/* baseline 2: the transform's loop until 2026-12-07 (its 256-entry table,
   two pixels a step, no shortcut for runs of zeros) */
static unsigned char one_txt[256][8];

static void ones_build(void) /* from the pair table: "a,0," starts with "a," */
{
    for (int a = 0; a < 256; a++) {
        memcpy(one_txt[a], &pair_txt[a], 4);
        one_txt[a][7] = (unsigned char)(pair_len[a] - 2);
    }
}

static size_t ones_csv(const unsigned char *px, char *out) /* PIXELS is even */
{
    char *o = out;
    for (size_t i = 0; i < PIXELS; i += 2) {
        const unsigned char *a = one_txt[px[i]], *b = one_txt[px[i + 1]];
        memcpy(o, a, 4);
        o += a[7];
        memcpy(o, b, 4);
        o += b[7];
    }
    return (size_t)(o - out) - 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile unsigned char *junk;
static const size_t junk_len = 8u << 20;

static void pressure(void)
{
    for (size_t k = 0; k < junk_len; k += 64)
        junk[k]++;
}

static const trib_plugin *P;
static trib_ctx *C;

static trib_record *pixel_row(const unsigned char *px)
{
    trib_record *r = th_host.record_new();
    r->op = 'r';
    r->has_after = 1;
    th_host.field_add(&r->after, "labels", TRIB_OID_INT2, -1, TRIB_VAL_TEXT, "3", 1, 0);
    th_host.field_add(&r->after, "pixels", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, px, PIXELS, 0);
    return r;
}

/* the transform on one image: the CSV length, or 0 when it failed */
static size_t plugin_csv(const unsigned char *px, double *secs)
{
    trib_record *r = pixel_row(px);
    double t0 = now_s();
    int rc = P->transform->apply(th_inst(C), &r);
    *secs += now_s() - t0;
    size_t len = rc == TRIB_OK && r && r->value.set ? r->value.len : 0;
    if (r)
        th_host.record_free(r);
    return len;
}

/* the baseline on one image, timed like plugin_csv */
static size_t pairs_timed(const unsigned char *px, double *secs)
{
    static char out[PIXELS * 4 + 8];
    double t0 = now_s();
    size_t len = pairs_csv(px, out);
    *secs += now_s() - t0;
    return len;
}

static size_t ones_timed(const unsigned char *px, double *secs)
{
    static char out[PIXELS * 4 + 8];
    double t0 = now_s();
    size_t len = ones_csv(px, out);
    *secs += now_s() - t0;
    return len;
}

/* seconds one encoder spends on n images (records are built outside the clock) */
static double run(size_t (*encode)(const unsigned char *, double *), const unsigned char *img,
                  size_t n, int press, size_t *bytes, int *ok)
{
    double t = 0;
    *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (press && i % 8 == 0)
            pressure();
        size_t len = encode(img + i * PIXELS, &t);
        *ok = *ok && len > 0;
        *bytes += len;
    }
    return t;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 60000;
    unsigned char hdr[16];
    unsigned char *img = malloc(n * PIXELS);
    char *out = malloc(2 * (PIXELS * 4 + 8));
    junk = calloc(1, junk_len);
    if (!img || !out || !junk || fread(hdr, 1, sizeof hdr, stdin) != sizeof hdr ||
        hdr[2] != 8 || hdr[3] != 3) {
        fprintf(stderr, "mnist_bench: stdin is not an IDX image file (ubyte, 3 dims)\n");
        return 1;
    }
    n = fread(img, PIXELS, n, stdin);
    if (n == 0) {
        fprintf(stderr, "mnist_bench: no images on stdin\n");
        return 1;
    }
    P = th_load(th_plugin_path("mnist"));
    C = th_ctx_new("transforms[0]");
    th_section *s = th_section_new();
    th_set(s, "pixels_field", "pixels");
    char err[256];
    err[0] = '\0';
    if (!P || th_create(C, P, s, 0, err, sizeof err) != TRIB_OK) {
        fprintf(stderr, "mnist_bench: cannot load or create the mnist transform from %s%s%s\n",
                th_plugin_path("mnist"), err[0] ? ": " : "", err);
        return 1;
    }
    th_section_free(s);
    pairs_build();
    ones_build();

    /* both encoders must produce the same text */
    for (size_t i = 0; i < n && i < 100; i++) {
        size_t want = pairs_csv(img + i * PIXELS, out);
        char *csv = out + PIXELS * 4 + 8;
        memcpy(csv, out, want);
        trib_record *r = pixel_row(img + i * PIXELS);
        int same = P->transform->apply(th_inst(C), &r) == TRIB_OK && r && r->value.set &&
                   r->value.len == want && memcmp(r->value.data, csv, want) == 0;
        if (r)
            th_host.record_free(r);
        if (!same) {
            fprintf(stderr, "mnist_bench: image %zu: the encoders disagree\n", i);
            return 1;
        }
    }
    int ok = 1;
    printf("%zu images, %d pixels each; best of 3 runs\n", n, PIXELS);
    for (int press = 0; press <= 1; press++) {
        double best_p = 1e9, best_b = 1e9, best_o = 1e9;
        size_t bp = 0, bb = 0, bo = 0;
        for (int rep = 0; rep < 3; rep++) {
            double tp = run(plugin_csv, img, n, press, &bp, &ok);
            double tb = run(pairs_timed, img, n, press, &bb, &ok);
            double to = run(ones_timed, img, n, press, &bo, &ok);
            best_p = tp < best_p ? tp : best_p;
            best_b = tb < best_b ? tb : best_b;
            best_o = to < best_o ? to : best_o;
        }
        if (!ok || bp != bb || bp != bo) {
            fprintf(stderr, "mnist_bench: the encoders wrote %zu, %zu and %zu bytes\n", bp, bb,
                    bo);
            return 1;
        }
        printf("%-14s mnist transform (whole apply): %6.0f ns/image | pair table (encoding "
               "only): %6.0f ns/image | pair/transform = %.2fx | 2-pixel loop before "
               "2026-12-07 (encoding only): %6.0f ns/image | loop/transform = %.2fx\n",
               press ? "cache pressure" : "warm cache", best_p * 1e9 / (double)n,
               best_b * 1e9 / (double)n, best_b / best_p, best_o * 1e9 / (double)n,
               best_o / best_p);
    }
    th_destroy(C);
    th_ctx_free(C);
    free(img);
    free(out);
    free((void *)junk);
    return 0;
}
