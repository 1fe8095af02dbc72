/*
 * test_nn_decode.c — record decoding for the trainer: labels, CSV and raw
 * pixels, format detection, every malformed kind, the plugin's per-kind
 * counting with one warning per kind, option validation, and CSV speed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "testhost.h"
#include "nn_testutil.h"
#include "trainer.h"

extern const trib_plugin tributary_plugin;

static size_t csv(char *buf, int n, int v, const char *sep)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(buf + len, "%s%d", i ? sep : "", (v + i) % 256);
    return len;
}

static void test_labels(void)
{
    CHECK(nn_decode_label("3", 1) == 3);
    CHECK(nn_decode_label(" 7\n", 3) == 7);
    CHECK(nn_decode_label("\"5\"", 3) == 5);
    CHECK(nn_decode_label("0", 1) == 0);
    CHECK(nn_decode_label("9", 1) == 9);
    CHECK(nn_decode_label("10", 2) == -2);
    CHECK(nn_decode_label("-1", 2) == -2);
    CHECK(nn_decode_label("a", 1) == -2);
    CHECK(nn_decode_label("", 0) == -1);
    CHECK(nn_decode_label(NULL, 0) == -1);
}

static void test_pixels(void)
{
    static char buf[784 * 5 + 64];
    uint8_t px[784];
    size_t n = csv(buf, 784, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_AUTO, 784, px) == NN_DEC_OK);
    CHECK(px[0] == 0 && px[255] == 255 && px[256] == 0 && px[783] == 783 % 256);
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_OK);
    CHECK(nn_decode_pixels(buf, n, NN_FMT_RAW, 784, px) == NN_DEC_BAD_COUNT);
    n = csv(buf, 784, 3, ", ");
    memcpy(buf + n, "\r\n", 3);
    CHECK(nn_decode_pixels(buf, n + 2, NN_FMT_CSV, 784, px) == NN_DEC_OK && px[0] == 3);
    buf[0] = '[';
    n = 1 + csv(buf + 1, 784, 1, ",");
    buf[n++] = ']';
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_OK && px[0] == 1);
    n = csv(buf, 783, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_AUTO, 784, px) == NN_DEC_BAD_COUNT);
    n = csv(buf, 785, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_AUTO, 784, px) == NN_DEC_BAD_COUNT);
    n = csv(buf, 784, 0, ",");
    buf[n] = ',';
    CHECK(nn_decode_pixels(buf, n + 1, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    buf[2] = 'x';
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    n = (size_t)sprintf(buf, "256,") + csv(buf + 4, 783, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    n = (size_t)sprintf(buf, "1.5,") + csv(buf + 4, 783, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    n = (size_t)sprintf(buf, "99999999999,") + csv(buf + 12, 783, 0, ",");
    CHECK(nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    CHECK(nn_decode_pixels("", 0, NN_FMT_AUTO, 784, px) == NN_DEC_BAD_COUNT);
    CHECK(nn_decode_pixels(NULL, 0, NN_FMT_AUTO, 784, px) == NN_DEC_BAD_COUNT);
    CHECK(nn_decode_pixels(",,,", 3, NN_FMT_AUTO, 784, px) == NN_DEC_NON_NUMERIC);
    /* raw: exactly 784 bytes, any values */
    for (int i = 0; i < 784; i++)
        buf[i] = (char)(i * 7);
    CHECK(nn_decode_pixels(buf, 784, NN_FMT_AUTO, 784, px) == NN_DEC_OK && px[1] == 7);
    CHECK(nn_decode_pixels(buf, 784, NN_FMT_CSV, 784, px) == NN_DEC_NON_NUMERIC);
    CHECK(nn_format_parse("raw") == NN_FMT_RAW && nn_format_parse("bogus") == -1);
}

static trib_record *mkrec(const char *key, const char *val, size_t vlen)
{
    trib_record *r = th_record("t", key, key ? strlen(key) : 0, val, vlen);
    th_host.str_set(&r->msg_id, "1-0");
    return r;
}

/* The trainer with options from "name=value" strings (NULL-terminated). */
static int create(trib_ctx *ctx, const char *const *kv, char *err, size_t errlen)
{
    th_section *s = th_section_new();
    for (; *kv; kv++)
        th_set_kv(s, *kv);
    int rc = th_create(ctx, &tributary_plugin, s, 0, err, errlen);
    th_section_free(s);
    return rc;
}

/* Malformed records are counted per kind and warned about once per kind. */
static void test_plugin_counting(void)
{
    trib_ctx *ctx = th_ctx_new("trainer");
    const char *kv[] = {"train_topic=a", "test_topic=b", NULL};
    char err[256];
    CHECK(create(ctx, kv, err, sizeof err) == TRIB_OK);
    trainer *t = th_inst(ctx);
    static char good[784 * 4], bad[784 * 4];
    size_t gn = csv(good, 784, 0, ","), bn = csv(bad, 700, 0, ",");
    uint8_t px[784];
    int label;
    for (int round = 0; round < 2; round++) {
        trib_record *recs[5] = {mkrec("4", good, gn), mkrec("12", good, gn), mkrec(NULL, good, gn),
                                mkrec("1", bad, bn), mkrec("1", "1,2,x", 5)};
        CHECK(trainer_decode(t, recs[0], 1, px, &label) == 0 && label == 4);
        for (int i = 1; i < 5; i++)
            CHECK(trainer_decode(t, recs[i], 1, px, &label) == -1);
        /* predict does not need a label */
        CHECK(trainer_decode(t, recs[2], 0, px, &label) == 0 && label == -1);
        for (int i = 0; i < 5; i++)
            th_host.record_free(recs[i]);
    }
    CHECK(t->bad[NN_DEC_BAD_LABEL] == 4 && t->bad[NN_DEC_BAD_COUNT] == 2 &&
          t->bad[NN_DEC_NON_NUMERIC] == 2);
    CHECKF(th_log_count(ctx, TRIB_LOG_WARN) == 3, "%d warnings", th_log_count(ctx, TRIB_LOG_WARN));
    trainer_report_bad(t, "t");
    CHECK(th_log_count(ctx, TRIB_LOG_WARN) == 6);
    th_destroy(ctx);

    /* option validation names the key */
    const char *kv2[] = {"train_topic=a", "test_topic=b", "batch_size=0", NULL};
    CHECK(create(ctx, kv2, err, sizeof err) == TRIB_ERR);
    CHECK(strstr(err, "batch_size") != NULL);
    th_ctx_free(ctx);
}

static void test_csv_speed(void)
{
    static char buf[784 * 4 + 8];
    uint8_t px[784];
    size_t n = csv(buf, 784, 0, ",");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int ok = 0;
    for (int i = 0; i < 20000; i++)
        ok += nn_decode_pixels(buf, n, NN_FMT_CSV, 784, px) == NN_DEC_OK;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("CSV decode: 20000 records (%zu bytes each) in %.3fs, %.0f MB/s\n", n, s,
           20000.0 * n / s / 1e6);
    CHECK(ok == 20000);
    CHECKF(s < 3.0, "CSV decoding too slow: %.3fs", s);
}

int main(void)
{
    test_labels();
    test_pixels();
    test_plugin_counting();
    test_csv_speed();
    if (nn_test_failures)
        fprintf(stderr, "test_nn_decode: %d failure(s)\n", nn_test_failures);
    else
        printf("test_nn_decode: all passed\n");
    return nn_test_failures ? 1 : 0;
}
