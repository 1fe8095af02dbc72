/*
 * test_mqtt_driver.c — drives the `mqtt` plugin against a real broker for tests/runtime/mqtt_*.sh.
 *
 *   test_mqtt_driver publish TOPIC N [k=v...]    publish N records, require N OK acks
 *   test_mqtt_driver consume TOPIC N [k=v...]    read until N distinct records, byte-exact
 *   test_mqtt_driver subscribe TOPIC [k=v...]    open + close: creates the persistent session
 *   test_mqtt_driver produce TOPIC [k=v...]      consumer_ops.produce of one record (index 0)
 *   test_mqtt_driver stop TOPIC [k=v...]         broker unreachable + engine stopping: every
 *                                                record acked TRIB_STOP exactly once
 *   test_mqtt_driver reject [k=v...]             unpublishable topics are acked TRIB_ERR
 *   test_mqtt_driver dump TOPIC [k=v...]         bounded read; one line per record:
 *                                                key-hex TAB value-hex TAB op TAB lsn
 *   test_mqtt_driver expect-interop TOPIC N      lines `mosquitto_sub -F '%t %P %x'` must print
 *
 * Driver keys (the rest go to the plugin as options): start=I (first index),
 * batch=B (records per send), rate=R (records/s, 0 = as fast as possible),
 * min_rate=R (fail if slower), group=G, bounded=0|1, timeout_ms=T, dups_ok=0|1.
 *
 * Record i: topic TOPIC, key "id-<i>" (or, every 7th, the binary 00 FF <i as 4
 * bytes LE>), value 784 bytes derived from i (zeros included), op 'r',
 * lsn 1/<i>.  The consumer side recomputes all of it from the key.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testhost.h"

#define VLEN 784

static const char *opts[40];
static int nopts;
static long d_start, d_batch = 100, d_rate, d_min_rate, d_timeout = 60000;
static int d_bounded = 1, d_dups_ok;
static const char *d_group;
static const trib_plugin *P; /* the mqtt plugin, in the shared test host */
static trib_ctx *C;          /* the one instance's context */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t make_key(long i, unsigned char *k)
{
    if (i % 7 == 3) {
        k[0] = 0x00;
        k[1] = 0xFF;
        for (int b = 0; b < 4; b++) k[2 + b] = (unsigned char)(i >> (8 * b));
        return 6;
    }
    return (size_t)sprintf((char *)k, "id-%ld", i);
}

static long key_index(const unsigned char *k, size_t len)
{
    if (len == 6 && k[0] == 0 && k[1] == 0xFF)
        return (long)k[2] | (long)k[3] << 8 | (long)k[4] << 16 | (long)k[5] << 24;
    if (len > 3 && memcmp(k, "id-", 3) == 0) return strtol((const char *)k + 3, NULL, 10);
    return -1;
}

static void make_value(long i, unsigned char *v)
{
    for (int j = 0; j < VLEN; j++) v[j] = (unsigned char)((i * 131 + j * 17 + (j >> 3)) & 0xFF);
    v[0] = 0; /* always a NUL byte in the payload */
}

static trib_record *make_record(const char *topic, long i)
{
    unsigned char k[32], v[VLEN];
    size_t kl = make_key(i, k);
    make_value(i, v);
    trib_record *r = th_record(topic, k, kl, v, VLEN);
    r->op = 'r';
    r->src.lsn = (1ULL << 32) | (uint64_t)i;
    r->seq = (uint64_t)i; /* acks are counted per seq: a second one is a duplicate */
    return r;
}

static void parse_args(int argc, char **argv, int first)
{
    for (int a = first; a < argc; a++) {
        char *s = argv[a];
        if (!strncmp(s, "start=", 6)) d_start = atol(s + 6);
        else if (!strncmp(s, "batch=", 6)) d_batch = atol(s + 6);
        else if (!strncmp(s, "rate=", 5)) d_rate = atol(s + 5);
        else if (!strncmp(s, "min_rate=", 9)) d_min_rate = atol(s + 9);
        else if (!strncmp(s, "timeout_ms=", 11)) d_timeout = atol(s + 11);
        else if (!strncmp(s, "bounded=", 8)) d_bounded = atoi(s + 8);
        else if (!strncmp(s, "dups_ok=", 8)) d_dups_ok = atoi(s + 8);
        else if (!strncmp(s, "group=", 6)) d_group = s + 6;
        else if (nopts < 38) opts[nopts++] = s;
    }
    const char *url = getenv("MQTT_URL");
    static char ubuf[300];
    if (url && nopts < 38) {
        snprintf(ubuf, sizeof ubuf, "url=%s", url);
        memmove(opts + 1, opts, (size_t)nopts * sizeof *opts); /* later k=v override */
        opts[0] = ubuf;
        nopts++;
    }
    opts[nopts] = NULL;
}

/* An instance with the plugin options of opts[]; NULL (message printed) on failure. */
static void *create(void)
{
    th_section *s = th_section_new();
    for (int i = 0; opts[i]; i++)
        th_set_kv(s, opts[i]);
    char err[512] = "";
    int rc = th_create(C, P, s, 1, err, sizeof err);
    th_section_free(s);
    if (rc != TRIB_OK) {
        fprintf(stderr, "create: %s\n", err);
        return NULL;
    }
    return th_inst(C);
}

static int cmd_publish(const char *topic, long n)
{
    void *inst = create();
    if (!inst) return 1;
    double t0 = now_s();
    trib_record *batch[1000];
    for (long i = 0; i < n;) {
        size_t b = 0;
        while (b < (size_t)d_batch && b < 1000 && i < n) batch[b++] = make_record(topic, d_start + i++);
        if (P->sink->send(inst, batch, b) != TRIB_OK) fprintf(stderr, "send: TRIB_ERR\n");
        if (d_rate > 0) { /* throttle to `rate` records per second */
            double ahead = (double)i / d_rate - (now_s() - t0);
            if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
        }
    }
    int frc = P->sink->flush(inst, (int)d_timeout);
    double dt = now_s() - t0;
    th_destroy(C);
    fprintf(stderr, "publish: %ld records in %.2f s = %.0f/s; ok=%d err=%d stop=%d dup=%d "
            "resends=%.0f flush=%d\n", n, dt, n / dt, th_acks(C, TRIB_OK), th_acks(C, TRIB_ERR),
            th_acks(C, TRIB_STOP), th_ack_dups(C), th_metric(C, "mqtt_resends"), frc);
    if (th_acks(C, TRIB_ERR)) fprintf(stderr, "last error: %s\n", th_last_error(C));
    if (th_acks(C, TRIB_OK) != n || th_ack_dups(C) || frc != TRIB_OK) return 1;
    if (d_min_rate && n / dt < d_min_rate) {
        fprintf(stderr, "FAIL: %.0f records/s is below min_rate=%ld\n", n / dt, d_min_rate);
        return 1;
    }
    return 0;
}

/* Check one received record against what record `i` was; -1 if it is foreign. */
static long verify(const trib_record *r, const char *topic, char *why, size_t wl)
{
    unsigned char v[VLEN];
    long i = r->key.set ? key_index((const unsigned char *)r->key.data, r->key.len) : -1;
    if (i < 0) return snprintf(why, wl, "record without a recognisable key"), -1;
    make_value(i, v);
    if (!r->topic || strcmp(r->topic, topic)) return snprintf(why, wl, "topic %s", r->topic), -1;
    if (!r->value.set || r->value.len != VLEN || memcmp(r->value.data, v, VLEN))
        return snprintf(why, wl, "value of %ld differs (len %zu)", i, r->value.len), -1;
    unsigned char k[32];
    size_t kl = make_key(i, k);
    if (r->key.len != kl || memcmp(r->key.data, k, kl)) return snprintf(why, wl, "key"), -1;
    return i;
}

static int cmd_consume(const char *topic, long n, int check_meta)
{
    void *inst = create();
    if (!inst) return 1;
    trib_consume_opts co = {d_group, 1, d_bounded, 1};
    char err[512] = "";
    void *c = P->consumer->open(inst, topic, &co, err, sizeof err);
    if (!c) {
        fprintf(stderr, "open: %s\n", err);
        th_destroy(C);
        return 1;
    }
    unsigned char *seen = calloc((size_t)n, 1);
    long got = 0, dups = 0, bad = 0, total = 0;
    double t0 = now_s();
    int rc = 0;
    while (got < n && (now_s() - t0) * 1000 < d_timeout) {
        trib_record *r = NULL;
        rc = P->consumer->poll(c, 500, &r);
        if (rc == TRIB_EOF || rc == TRIB_ERR) break;
        if (rc != 1) continue;
        total++;
        char why[200] = "";
        long i = verify(r, topic, why, sizeof why);
        if (i >= d_start && i < d_start + n) {
            if (check_meta && (r->op != 'r' || r->src.lsn != ((1ULL << 32) | (uint64_t)i))) {
                fprintf(stderr, "record %ld: op '%c' lsn %llx\n", i, r->op ? r->op : '0',
                        (unsigned long long)r->src.lsn);
                bad++;
            }
            if (seen[i - d_start]++) dups++;
            else got++;
        } else {
            if (bad++ < 5) fprintf(stderr, "unexpected record: %s\n", why);
        }
        P->consumer->commit(c, r);
        th_host.record_free(r);
    }
    /* a bounded read must then end with EOF */
    if (got == n && d_bounded) {
        trib_record *r = NULL;
        while ((rc = P->consumer->poll(c, 5000, &r)) == 1) {
            total++;
            dups++;
            th_host.record_free(r);
        }
    }
    P->consumer->close(c);
    th_destroy(C);
    double dt = now_s() - t0;
    fprintf(stderr, "consume: %ld/%ld distinct, %ld duplicate(s), %ld bad, last rc %d, %.2f s "
            "(%.0f/s)\n", got, n, dups, bad, rc, dt, total / dt);
    free(seen);
    if (got != n || bad || (dups && !d_dups_ok)) return 1;
    if (d_bounded && rc != TRIB_EOF) return fprintf(stderr, "no EOF after the data\n"), 1;
    return 0;
}

static int cmd_subscribe(const char *topic)
{
    void *inst = create();
    if (!inst) return 1;
    trib_consume_opts co = {d_group, 1, 0, 1};
    char err[512] = "";
    void *c = P->consumer->open(inst, topic, &co, err, sizeof err);
    if (c) P->consumer->close(c);
    else fprintf(stderr, "open: %s\n", err);
    th_destroy(C);
    return c ? 0 : 1;
}

static int cmd_produce(const char *topic)
{
    void *inst = create();
    if (!inst) return 1;
    trib_record *r = make_record(topic, d_start);
    int rc = P->consumer->produce(inst, r, (int)d_timeout);
    th_host.record_free(r);
    th_destroy(C);
    fprintf(stderr, "produce: rc %d\n", rc);
    return rc == TRIB_OK ? 0 : 1;
}

struct stop_arg { void *inst; const char *topic; int rc; };

static void *stop_sender(void *p)
{
    struct stop_arg *a = p;
    trib_record *recs[50];
    for (long i = 0; i < 50; i++) recs[i] = make_record(a->topic, i);
    a->rc = P->sink->send(a->inst, recs, 50);
    return NULL;
}

/* The broker is unreachable: send() blocks on max_inflight until the engine
   stops, then every record is acked TRIB_STOP exactly once (at destroy for
   those handed to paho). */
static int cmd_stop(const char *topic)
{
    void *inst = create();
    if (!inst) return 1;
    struct stop_arg a = {inst, topic, 0};
    pthread_t t;
    pthread_create(&t, NULL, stop_sender, &a);
    sleep(2);
    int before = th_ack_count(C);
    th_set_stopping(C, 1);
    pthread_join(t, NULL);
    int frc = P->sink->flush(inst, 500);
    th_destroy(C);
    fprintf(stderr, "stop: acks before stop %d; ok=%d err=%d stop=%d dup=%d flush=%d\n", before,
            th_acks(C, TRIB_OK), th_acks(C, TRIB_ERR), th_acks(C, TRIB_STOP), th_ack_dups(C), frc);
    return (before == 0 && th_acks(C, TRIB_STOP) == 50 && !th_ack_dups(C) && a.rc == TRIB_OK) ? 0
                                                                                                : 1;
}

static int cmd_reject(void)
{
    void *inst = create();
    if (!inst) return 1;
    const char *bad[] = {"a/+/b", "a/#", ""};
    trib_record *recs[3];
    for (int i = 0; i < 3; i++) recs[i] = make_record(bad[i], i);
    P->sink->send(inst, recs, 3);
    th_destroy(C);
    fprintf(stderr, "reject: err=%d (%s)\n", th_acks(C, TRIB_ERR), th_last_error(C));
    return th_acks(C, TRIB_ERR) == 3 ? 0 : 1;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

static void print_hex(const trib_bytes *b)
{
    if (!b->set) {
        fputc('-', stdout);
        return;
    }
    for (size_t i = 0; i < b->len; i++) printf("%02x", (unsigned char)b->data[i]);
}

/* The plugin's own consumer reads back what its sink wrote (for the e2e test). */
static int cmd_dump(const char *topic)
{
    void *inst = create();
    if (!inst) return 1;
    trib_consume_opts co = {d_group, 1, 1, 1};
    char err[512] = "";
    void *c = P->consumer->open(inst, topic, &co, err, sizeof err);
    if (!c) {
        fprintf(stderr, "open: %s\n", err);
        th_destroy(C);
        return 1;
    }
    trib_record *r = NULL;
    long n = 0;
    int rc;
    while ((rc = P->consumer->poll(c, 1000, &r)) >= 0) {
        if (rc == 0) continue;
        print_hex(&r->key);
        fputc('\t', stdout);
        print_hex(&r->value);
        printf("\t%c\t%llx\n", r->op ? r->op : '-', (unsigned long long)r->src.lsn);
        th_host.record_free(r);
        n++;
    }
    P->consumer->close(c);
    th_destroy(C);
    fprintf(stderr, "dump: %ld record(s), end rc %d\n", n, rc);
    return rc == TRIB_EOF ? 0 : 1;
}

/* What mosquitto_sub -F '%t %P %x' prints for records 0..n-1 published on topic. */
static int cmd_expect_interop(const char *topic, long n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (long i = d_start; i < d_start + n; i++) {
        unsigned char k[32], v[VLEN];
        char kv[64], vh[2 * VLEN + 1];
        size_t kl = make_key(i, k);
        make_value(i, v);
        hex(v, VLEN, vh);
        if (i % 7 == 3) { /* 6 binary bytes -> 8 base64 chars */
            char *o = kv;
            for (int j = 0; j < 6; j += 3) {
                unsigned x = (unsigned)k[j] << 16 | (unsigned)k[j + 1] << 8 | k[j + 2];
                for (int s = 18; s >= 0; s -= 6) *o++ = b64[(x >> s) & 63];
            }
            *o = '\0';
            printf("%s key:%s key-encoding:base64 op:r lsn:1/%lX %s\n", topic, kv, i, vh);
        } else {
            printf("%s key:%.*s op:r lsn:1/%lX %s\n", topic, (int)kl, (char *)k, i, vh);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: see the top of %s\n", __FILE__), 2;
    const char *cmd = argv[1], *topic = argc > 2 ? argv[2] : "t";
    int first = !strcmp(cmd, "reject") ? 2 : (!strcmp(cmd, "publish") || !strcmp(cmd, "consume") ||
                                              !strcmp(cmd, "expect-interop")) ? 4 : 3;
    long n = argc > 3 ? atol(argv[3]) : 0;
    parse_args(argc, argv, first);
    if (!strcmp(cmd, "expect-interop")) return cmd_expect_interop(topic, n);
    P = th_load(th_plugin_path("mqtt"));
    C = th_ctx_new("sink");
    th_set_state_dir(C, "/tmp/tributary-mqtt-test"); /* part of the default client id */
    if (!strcmp(cmd, "publish")) return cmd_publish(topic, n);
    if (!strcmp(cmd, "consume")) {
        int meta = 1;
        for (int i = 0; opts[i]; i++)
            if (!strcmp(opts[i], "mqtt_version=3.1.1")) meta = 0; /* 3.1.1 carries no op/lsn */
        return cmd_consume(topic, n, meta);
    }
    if (!strcmp(cmd, "subscribe")) return cmd_subscribe(topic);
    if (!strcmp(cmd, "produce")) return cmd_produce(topic);
    if (!strcmp(cmd, "dump")) return cmd_dump(topic);
    if (!strcmp(cmd, "stop")) return cmd_stop(topic);
    if (!strcmp(cmd, "reject")) return cmd_reject();
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
