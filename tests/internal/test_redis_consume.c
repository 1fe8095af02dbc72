/*
 * tests/internal/test_redis_consume.c — consumer-side scenarios of the redis
 * plugin test driver: consumer group read + XACK + redelivery of pending
 * entries, bounded XRANGE reads ending in TRIB_EOF, plain XREAD.
 */
#include "redis_test_driver.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Write records first..first+n-1 (key_of/value_of, op 'c', lsn i) to `topic`. */
static void fill(drv *d, const char *topic, int first, int n)
{
    char key[32], val[VALUE_LEN];
    trib_record **recs = calloc((size_t)n, sizeof *recs);
    for (int i = 0; i < n; i++) {
        size_t kl = key_of(first + i, key);
        value_of(first + i, val);
        recs[i] = rec_make(topic, key, kl, val, VALUE_LEN, 'c', (uint64_t)(first + i),
                           (uint64_t)(first + i));
        recs[i]->src.commit_lsn = (uint64_t)(first + i) + (1ull << 40);
    }
    CHECK(P->sink->send(d->inst, recs, (size_t)n) == TRIB_OK, "send");
    CHECK(P->sink->flush(d->inst, 2000) == TRIB_OK, "flush");
    for (int i = first; i < first + n; i++) /* acked records are freed by the host */
        CHECK(acked_once(d, i, TRIB_OK), "ack %d", i);
    free(recs);
}

/* Check that `r` is record number i of fill(). */
static void check_rec(const trib_record *r, const char *topic, int i)
{
    char key[32], val[VALUE_LEN];
    size_t kl = key_of(i, key);
    value_of(i, val);
    CHECK(r->topic && strcmp(r->topic, topic) == 0, "topic %s", r->topic);
    CHECK(r->key.set && r->key.len == kl && memcmp(r->key.data, key, kl) == 0, "key of %d", i);
    CHECK(r->value.set && r->value.len == VALUE_LEN && memcmp(r->value.data, val, VALUE_LEN) == 0,
          "value of %d", i);
    CHECK(r->op == 'c' && r->src.lsn == (uint64_t)i, "op %c lsn %llu (want %d)", r->op,
          (unsigned long long)r->src.lsn, i);
    CHECK(r->src.commit_lsn == (uint64_t)i + (1ull << 40), "commit_lsn of %d", i);
    CHECK(r->msg_id && strchr(r->msg_id, '-'), "msg_id");
    int has_lsn = 0;
    for (size_t h = 0; h < r->nheaders; h++) {
        CHECK(strcmp(r->headers[h].name, "key") && strcmp(r->headers[h].name, "value"),
              "key/value must not be headers");
        has_lsn |= strcmp(r->headers[h].name, "lsn") == 0;
    }
    CHECK(has_lsn, "lsn header");
}

static long long xpending(redisContext *c, const char *topic, const char *group)
{
    redisReply *r = vcmd(c, "XPENDING %s %s", topic, group);
    CHECK(r->type == REDIS_REPLY_ARRAY && r->elements >= 1, "XPENDING reply");
    long long n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

static trib_record *poll1(void *cs, int timeout_ms)
{
    trib_record *r = NULL;
    int ret = P->consumer->poll(cs, timeout_ms, &r);
    CHECK(ret == 1 && r, "poll returned %d", ret);
    return r;
}

struct later {
    drv *d;
    int delay_ms;
    const char *topic;
};

static void *produce_later(void *p)
{
    struct later *l = p;
    usleep((useconds_t)l->delay_ms * 1000);
    trib_record *r = rec_make(l->topic, "late", 4, "v", 1, 'c', 1, 0);
    CHECK(P->consumer->produce(l->d->inst, r, 2000) == TRIB_OK, "produce");
    th_host.record_free(r);
    return NULL;
}

/* Poll with a long timeout while another thread XADDs after 300 ms. */
static void check_blocking_poll(drv *d, void *cs, const char *topic)
{
    struct later l = {d, 300, topic};
    pthread_t t;
    pthread_create(&t, NULL, produce_later, &l);
    uint64_t t0 = now_ms();
    trib_record *r = poll1(cs, 5000);
    uint64_t took = now_ms() - t0;
    pthread_join(t, NULL);
    CHECK(r->key.len == 4 && memcmp(r->key.data, "late", 4) == 0, "late record");
    CHECK(took >= 250 && took < 2500, "blocking poll took %llu ms", (unsigned long long)took);
    CHECK(P->consumer->commit(cs, r) == TRIB_OK, "commit");
    th_host.record_free(r);
}

int scen_consume_group(void)
{
    enum { N = 1000 };
    drv d;
    drv_create(&d, URL, "read_count", "64", NULL);
    fill(&d, "t.group", 0, N);
    redisContext *c = verify_conn();
    char err[256] = "";
    trib_consume_opts o = {"g1", 1, 0, 1};
    void *cs = P->consumer->open(d.inst, "t.group", &o, err, sizeof err);
    CHECK(cs, "open: %s", err);
    for (int i = 0; i < N; i++) {
        trib_record *r = poll1(cs, 2000);
        check_rec(r, "t.group", i);
        if (i == N / 2 - 1)
            CHECK(P->consumer->commit(cs, r) == TRIB_OK, "commit");
        th_host.record_free(r);
    }
    trib_record *r = NULL;
    uint64_t t0 = now_ms();
    CHECK(P->consumer->poll(cs, 300, &r) == 0 && !r, "poll on an idle stream must time out");
    CHECK(now_ms() - t0 >= 250, "timeout honoured");
    CHECK(xpending(c, "t.group", "g1") == N / 2, "XPENDING after committing half: %lld",
          xpending(c, "t.group", "g1"));
    P->consumer->close(cs);

    /* the same consumer again: the uncommitted half is delivered again, in order */
    cs = P->consumer->open(d.inst, "t.group", &o, err, sizeof err);
    CHECK(cs, "reopen: %s", err);
    for (int i = N / 2; i < N; i++) {
        r = poll1(cs, 2000);
        check_rec(r, "t.group", i);
        if (i == N - 1)
            CHECK(P->consumer->commit(cs, r) == TRIB_OK, "commit");
        th_host.record_free(r);
    }
    CHECK(P->consumer->poll(cs, 100, &r) == 0, "nothing more");
    CHECK(xpending(c, "t.group", "g1") == 0, "XPENDING after commit");
    check_blocking_poll(&d, cs, "t.group");
    P->consumer->close(cs);

    /* no group given, not from the beginning: the `group_id` option's group, new entries only */
    trib_consume_opts o2 = {NULL, 0, 0, 0};
    cs = P->consumer->open(d.inst, "t.group", &o2, err, sizeof err);
    CHECK(cs, "open default group: %s", err);
    CHECK(P->consumer->poll(cs, 200, &r) == 0, "a group created at $ sees no old entries");
    check_blocking_poll(&d, cs, "t.group");
    CHECK(xpending(c, "t.group", "tributary") == 0, "NOACK read leaves nothing pending");
    P->consumer->close(cs);
    redisFree(c);
    drv_destroy(&d);
    printf("consume-group: %d records, commit/XACK and redelivery ok\n", N);
    return 0;
}

int scen_consume_bounded(void)
{
    enum { N = 1234 };
    drv d;
    drv_create(&d, URL, "read_count", "100", NULL);
    fill(&d, "t.bounded", 0, N);
    char err[256] = "";
    trib_consume_opts o = {NULL, 1, 1, 0};
    void *cs = P->consumer->open(d.inst, "t.bounded", &o, err, sizeof err);
    CHECK(cs, "open: %s", err);
    fill(&d, "t.bounded", N, 10); /* after open: not part of the bounded read */
    int n = 0, ret;
    trib_record *r = NULL;
    while ((ret = P->consumer->poll(cs, 1000, &r)) == 1) {
        check_rec(r, "t.bounded", n++);
        th_host.record_free(r);
    }
    CHECK(ret == TRIB_EOF && n == N, "bounded read: %d records, ret %d", n, ret);
    CHECK(P->consumer->poll(cs, 100, &r) == TRIB_EOF, "EOF stays EOF");
    P->consumer->close(cs);

    cs = P->consumer->open(d.inst, "t.does-not-exist", &o, err, sizeof err);
    CHECK(cs, "open missing: %s", err);
    CHECK(P->consumer->poll(cs, 100, &r) == TRIB_EOF, "a missing stream is empty");
    P->consumer->close(cs);
    drv_destroy(&d);
    printf("consume-bounded: %d records then EOF\n", N);
    return 0;
}

int scen_consume_xread(void)
{
    enum { N = 50 };
    drv d;
    drv_create(&d, URL, NULL);
    fill(&d, "t.xread", 0, N);
    char err[256] = "";
    trib_consume_opts o = {NULL, 1, 0, 0};
    void *cs = P->consumer->open(d.inst, "t.xread", &o, err, sizeof err);
    CHECK(cs, "open: %s", err);
    for (int i = 0; i < N; i++) {
        trib_record *r = poll1(cs, 1000);
        check_rec(r, "t.xread", i);
        th_host.record_free(r);
    }
    trib_record *r = NULL;
    CHECK(P->consumer->poll(cs, 200, &r) == 0, "idle");
    check_blocking_poll(&d, cs, "t.xread");
    P->consumer->close(cs);
    drv_destroy(&d);
    printf("consume-xread: ok\n");
    return 0;
}

/* consume-restart PROGRESS_FILE: a group consumer keeps polling while the
   test kills and restarts redis-server, then adds entries x0..x99. */
int scen_consume_restart(int argc, char **argv)
{
    CHECK(argc >= 1, "consume-restart PROGRESS_FILE");
    enum { N = 100, M = 100 };
    drv d;
    drv_create(&d, URL, "reconnect_max_ms", "300", "read_count", "10", NULL);
    fill(&d, "t.restart", 0, N);
    char err[256] = "";
    trib_consume_opts o = {"gr", 1, 0, 1};
    void *cs = P->consumer->open(d.inst, "t.restart", &o, err, sizeof err);
    CHECK(cs, "open: %s", err);
    int seen[N + M] = {0}, nseen = 0;
    for (int i = 0; i < N / 2; i++) {
        trib_record *r = poll1(cs, 2000);
        check_rec(r, "t.restart", i);
        seen[i] = 1, nseen++;
        if (i == N / 2 - 11) /* the last 10 stay pending (unacked) */
            CHECK(P->consumer->commit(cs, r) == TRIB_OK, "commit");
        th_host.record_free(r);
    }
    FILE *f = fopen(argv[0], "w");
    CHECK(f, "progress file");
    fputs("ready\n", f);
    fclose(f);
    uint64_t deadline = now_ms() + 60000;
    trib_record *last = NULL;
    while (nseen < N + M && now_ms() < deadline) {
        trib_record *r = NULL;
        int ret = P->consumer->poll(cs, 200, &r);
        CHECK(ret == 0 || ret == 1, "poll returned %d while redis restarts", ret);
        if (ret == 0)
            continue;
        int i = -1;
        if (r->key.len > 2 && r->key.data[0] == 'k' && r->key.data[1] == '\0')
            i = atoi(r->key.data + 2);
        else if (r->key.len > 1 && r->key.data[0] == 'x')
            i = N + atoi(r->key.data + 1);
        CHECK(i >= N / 2 && i < N + M, "unexpected record %d", i);
        CHECK(!seen[i], "record %d delivered twice to the same consumer", i);
        seen[i] = 1, nseen++;
        if (last)
            th_host.record_free(last);
        last = r;
    }
    CHECK(nseen == N + M, "only %d of %d records after the restart", nseen, N + M);
    CHECK(P->consumer->commit(cs, last) == TRIB_OK, "commit");
    th_host.record_free(last);
    CHECK(th_log_contains(d.ctx, "lost") && th_log_contains(d.ctx, "reconnected"),
          "outage not noticed");
    redisContext *c = verify_conn();
    CHECK(xpending(c, "t.restart", "gr") == 0, "pending after the final commit");
    redisFree(c);
    P->consumer->close(cs);
    drv_destroy(&d);
    printf("consume-restart: %d records across a redis restart\n", N + M);
    return 0;
}
