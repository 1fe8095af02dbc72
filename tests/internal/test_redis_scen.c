/*
 * tests/internal/test_redis_scen.c — sink-side scenarios of the redis plugin
 * test driver: batches, byte-exact fields, acks, maxlen, error replies,
 * reconnect under live load, stopping while Redis is down, produce, AUTH.
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

/* Field `name` of a stream entry's field array, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

static void send_all(drv *d, trib_record **recs, size_t n, size_t batch)
{
    for (size_t b = 0; b < n; b += batch)
        CHECK(P->sink->send(d->inst, recs + b, n - b < batch ? n - b : batch) == TRIB_OK, "send");
    CHECK(P->sink->flush(d->inst, 1000) == TRIB_OK, "flush");
}

int scen_sink_basic(void)
{
    enum { N = 300 };
    drv d;
    drv_create(&d, URL, NULL);
    trib_record *recs[N + 1];
    char key[32], val[VALUE_LEN];
    for (int i = 0; i < N; i++) {
        size_t kl = key_of(i, key);
        value_of(i, val);
        recs[i] =
            rec_make("t.basic", key, kl, val, VALUE_LEN, 'c', (0x16ull << 32) + 0xB374D848u + i, i);
    }
    recs[0]->op = 'r';
    recs[0]->src.snapshot = 1;
    th_host.header_add(recs[1], "trace", "a\0b", 3);
    recs[2]->src.commit_lsn = (0x16ull << 32) + 0xC0000000u;
    /* no key, empty value */
    recs[N] = rec_make("t.empty", NULL, 0, "", 0, 'd', 5, N);
    send_all(&d, recs, N + 1, 100); /* the host frees each record when it is acked */
    for (int i = 0; i <= N; i++)
        CHECK(acked_once(&d, i, TRIB_OK), "record %d: %d acks, status %d", i,
              th_ack_times(d.ctx, i), th_ack_status(d.ctx, i));

    redisContext *c = verify_conn();
    redisReply *r = vcmd(c, "XRANGE t.basic - +");
    CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == N, "XRANGE: %zu entries", r->elements);
    for (int i = 0; i < N; i++) {
        const redisReply *f = r->element[i]->element[1];
        const redisReply *k = entry_field(f, "key"), *v = entry_field(f, "value");
        size_t kl = key_of(i, key);
        value_of(i, val);
        CHECK(k && k->len == kl && memcmp(k->str, key, kl) == 0, "entry %d key", i);
        CHECK(v && v->len == VALUE_LEN && memcmp(v->str, val, VALUE_LEN) == 0, "entry %d value", i);
        char lsn[32];
        snprintf(lsn, sizeof lsn, "16/%X", 0xB374D848u + i);
        CHECK(strcmp(entry_field(f, "lsn")->str, lsn) == 0, "entry %d lsn %s", i,
              entry_field(f, "lsn")->str);
        CHECK(strcmp(entry_field(f, "op")->str, i == 0 ? "r" : "c") == 0, "entry %d op", i);
        CHECK((entry_field(f, "snapshot") != NULL) == (i == 0), "entry %d snapshot", i);
        const redisReply *cl = entry_field(f, "commit_lsn");
        CHECK(i == 2 ? cl && strcmp(cl->str, "16/C0000000") == 0 : !cl, "entry %d commit_lsn", i);
    }
    const redisReply *h = entry_field(r->element[1]->element[1], "trace");
    CHECK(h && h->len == 3 && memcmp(h->str, "a\0b", 3) == 0, "header field");
    freeReplyObject(r);
    r = vcmd(c, "XRANGE t.empty - +");
    CHECK(r->elements == 1, "t.empty entries %zu", r->elements);
    const redisReply *f = r->element[0]->element[1];
    CHECK(!entry_field(f, "key"), "unset key must be absent");
    CHECK(entry_field(f, "value") && entry_field(f, "value")->len == 0, "empty value");
    freeReplyObject(r);
    redisFree(c);
    drv_destroy(&d);
    printf("sink-basic: %d records byte-exact\n", N + 1);
    return 0;
}

int scen_sink_maxlen(void)
{
    enum { N = 3000 };
    drv d;
    drv_create(&d, URL, "maxlen", "100", NULL);
    trib_record **recs = calloc(N, sizeof *recs);
    for (int i = 0; i < N; i++)
        recs[i] = rec_make("t.maxlen", "k", 1, "v", 1, 'c', (uint64_t)i, i);
    send_all(&d, recs, N, 250);
    for (int i = 0; i < N; i++)
        CHECK(acked_once(&d, i, TRIB_OK), "ack %d", i);
    free(recs);
    redisContext *c = verify_conn();
    redisReply *r = vcmd(c, "XLEN t.maxlen");
    /* approximate trimming keeps at least 100 and removes whole nodes (100 entries each) */
    CHECK(r->integer >= 100 && r->integer <= 300, "XLEN %lld", r->integer);
    printf("sink-maxlen: %d sent, XLEN %lld\n", N, r->integer);
    freeReplyObject(r);
    redisFree(c);
    drv_destroy(&d);
    return 0;
}

/* A record to a key that is not a stream fails with WRONGTYPE; the others of
 * its batch are delivered.  confirm: each (the argument "each") gives a
 * reply per XADD: nothing is duplicated.  In the default confirm: batch, the
 * error leaves its quiet group unconfirmed: the group is sent again with a
 * reply each, so the records that landed may be there twice, and the sink
 * stays with a reply per XADD (the second WRONGTYPE is exact). */
int scen_sink_error(int argc, char **argv)
{
    int each = argc > 0 && strcmp(argv[0], "each") == 0;
    drv d;
    drv_create(&d, URL, "confirm", each ? "each" : "batch", NULL);
    redisContext *c = verify_conn();
    freeReplyObject(vcmd(c, "DEL t.ok"));
    freeReplyObject(vcmd(c, "SET t.notstream x"));
    trib_record *recs[4] = {
        rec_make("t.ok", "a", 1, "1", 1, 'c', 1, 0), rec_make("t.notstream", "b", 1, "2", 1, 'c', 2, 1),
        rec_make("t.ok", "c", 1, "3", 1, 'c', 3, 2), rec_make("t.ok", "d", 1, "4", 1, 'c', 4, 3)};
    th_host.str_set(&recs[3]->topic, NULL); /* no topic: rejected without a command */
    CHECK(P->sink->send(d.inst, recs, 4) == TRIB_OK, "send");
    CHECK(P->sink->flush(d.inst, 1000) == TRIB_OK, "flush");
    int want[4] = {TRIB_OK, TRIB_ERR, TRIB_OK, TRIB_ERR};
    for (int i = 0; i < 4; i++)
        CHECK(acked_once(&d, i, want[i]), "record %d: %d", i, th_ack_status(d.ctx, i));
    trib_record *nt = rec_make("x", "k", 1, "v", 1, 'c', 1, 4);
    th_host.str_set(&nt->topic, NULL);
    P->sink->send(d.inst, &nt, 1);
    CHECK(P->sink->flush(d.inst, 1000) == TRIB_OK, "flush");
    CHECK(acked_once(&d, 4, TRIB_ERR), "no-topic record: %d", th_ack_status(d.ctx, 4));
    CHECK(strstr(th_last_error(d.ctx), "no topic") != NULL, "no-topic message: %s",
          th_last_error(d.ctx));
    redisReply *r = vcmd(c, "XRANGE t.ok - +");
    int a = 0, cc = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *k = entry_field(r->element[i]->element[1], "key");
        a += k && strcmp(k->str, "a") == 0;
        cc += k && strcmp(k->str, "c") == 0;
    }
    if (each)
        CHECK(r->elements == 2 && a == 1 && cc == 1, "t.ok: %zu entries, a %d, c %d",
              r->elements, a, cc);
    else
        CHECK(a >= 1 && cc >= 1 && a + cc == (int)r->elements, "t.ok: %zu entries, a %d, c %d",
              r->elements, a, cc);
    CHECK(each != th_log_contains(d.ctx, "could not be confirmed"),
          "the unconfirmed quiet group is logged (only in confirm: batch)");
    size_t first = r->elements;
    freeReplyObject(r);
    /* the WRONGTYPE message names the stream */
    trib_record *two[2] = {rec_make("t.ok", "e", 1, "5", 1, 'c', 5, 5),
                           rec_make("t.notstream", "b", 1, "2", 1, 'c', 2, 6)};
    P->sink->send(d.inst, two, 2);
    CHECK(P->sink->flush(d.inst, 1000) == TRIB_OK, "flush");
    CHECK(acked_once(&d, 5, TRIB_OK), "record 5: %d", th_ack_status(d.ctx, 5));
    CHECK(acked_once(&d, 6, TRIB_ERR), "WRONGTYPE record: %d", th_ack_status(d.ctx, 6));
    CHECK(strstr(th_last_error(d.ctx), "t.notstream") && strstr(th_last_error(d.ctx), "WRONGTYPE"),
          "error message: %s", th_last_error(d.ctx));
    r = vcmd(c, "XLEN t.ok");
    CHECK(r->integer == (long long)first + 1, "XLEN t.ok %lld after %zu: the second error is "
          "exact", r->integer, first);
    freeReplyObject(r);
    printf("sink-error (confirm: %s): %zu entries for 2 records; %s\n", each ? "each" : "batch",
           first, th_last_error(d.ctx));
    redisFree(c);
    drv_destroy(&d);
    return 0;
}

/* `field` of command `cmd` in INFO commandstats ("client|reply", "calls"); 0 when absent. */
static long long cmdstat(redisContext *c, const char *cmd, const char *field)
{
    redisReply *r = vcmd(c, "INFO commandstats");
    char pat[96];
    snprintf(pat, sizeof pat, "cmdstat_%s:", cmd);
    long long v = 0;
    const char *l = strstr(r->str, pat);
    if (l) {
        const char *eol = strchr(l, '\r');
        snprintf(pat, sizeof pat, "%s=", field);
        const char *f = strstr(l, pat);
        if (f && (!eol || f < eol))
            v = atoll(f + strlen(pat));
    }
    freeReplyObject(r);
    return v;
}

/* Send N records to `topic` in batches; each is acked once, OK, and the
 * stream holds each exactly once, in order. */
static void quiet_round(drv *d, redisContext *c, const char *topic, int n, int seq0)
{
    char key[32], val[VALUE_LEN];
    trib_record **recs = calloc((size_t)n, sizeof *recs);
    for (int i = 0; i < n; i++) {
        size_t kl = key_of(i, key);
        value_of(i, val);
        recs[i] = rec_make(topic, key, kl, val, VALUE_LEN, 'c', (uint64_t)i + 1,
                           (uint64_t)(seq0 + i));
    }
    send_all(d, recs, (size_t)n, 250);
    free(recs);
    for (int i = 0; i < n; i++)
        CHECK(acked_once(d, (uint64_t)(seq0 + i), TRIB_OK), "%s: record %d", topic, i);
    redisReply *x = vcmd(c, "XRANGE %s - +", topic);
    CHECK(x->elements == (size_t)n, "%s: %zu entries for %d records", topic, x->elements, n);
    for (int i = 0; i < n; i++) {
        const redisReply *k = entry_field(x->element[i]->element[1], "key");
        size_t kl = key_of(i, key);
        CHECK(k && k->len == kl && memcmp(k->str, key, kl) == 0, "%s: entry %d", topic, i);
    }
    freeReplyObject(x);
}

/*
 * sink-quiet NOCLIENT_URL: how XADDs are confirmed.  confirm: batch (the
 * default) sends them with replies off, in groups confirmed by CLIENT REPLY
 * ON + INFO stats; confirm: each never touches CLIENT REPLY; a user whose
 * ACL forbids CLIENT (NOCLIENT_URL) gets a reply per XADD.  Each way every
 * record lands exactly once.
 */
int scen_sink_quiet(int argc, char **argv)
{
    CHECK(argc >= 1, "sink-quiet NOCLIENT_URL");
    enum { N = 1000 };
    redisContext *c = verify_conn();
    drv d;
    freeReplyObject(vcmd(c, "CONFIG RESETSTAT"));
    drv_create(&d, URL, NULL);
    quiet_round(&d, c, "t.quiet", N, 0);
    long long on = cmdstat(c, "client|reply", "calls"), xadds = cmdstat(c, "xadd", "calls");
    CHECK(xadds == N, "XADD calls %lld", xadds);
    /* OFF and ON per group, plus the probe at connect: groups of up to 1024 */
    CHECK(on >= 3 && on <= 1 + 2 * (N / 250 + 1), "CLIENT REPLY calls %lld", on);
    CHECK(!th_log_contains(d.ctx, "could not be confirmed"), "a group went unconfirmed");
    drv_destroy(&d);
    printf("sink-quiet: confirm batch: %d XADDs, %lld CLIENT REPLY calls\n", N, on);

    freeReplyObject(vcmd(c, "CONFIG RESETSTAT"));
    drv_create(&d, URL, "confirm", "each", NULL);
    quiet_round(&d, c, "t.each", N, 0);
    CHECK(cmdstat(c, "client|reply", "calls") == 0, "confirm: each sent CLIENT REPLY");
    drv_destroy(&d);

    freeReplyObject(vcmd(c, "CONFIG RESETSTAT"));
    drv_create(&d, argv[0], NULL);
    quiet_round(&d, c, "t.noclient", N, 0);
    CHECK(cmdstat(c, "client|reply", "calls") == 0, "CLIENT REPLY ran for a user without it");
    CHECK(cmdstat(c, "client|reply", "rejected_calls") == 1, "the probe was not refused once");
    CHECK(th_log_contains(d.ctx, "every XADD gets its own reply"), "the fallback is not logged");
    CHECK(!th_log_contains(d.ctx, "could not be confirmed"), "a group went unconfirmed");
    drv_destroy(&d);
    redisFree(c);
    printf("sink-quiet: confirm each, and a user without CLIENT: a reply per XADD\n");
    return 0;
}

static volatile int foreign_run;

static void *foreign_errors(void *p)
{
    (void)p;
    redisContext *c = verify_conn();
    freeReplyObject(vcmd(c, "SET t.foreign.str x"));
    while (foreign_run) { /* ERR value is not an integer */
        freeReplyObject(vcmd(c, "INCR t.foreign.str"));
        usleep(2000);
    }
    redisFree(c);
    return NULL;
}

/*
 * Another client's error replies while quiet groups are in flight: Redis'
 * error counter moves, so a group cannot be confirmed; it is sent again with
 * a reply per XADD.  Every record is acked once, every key lands (in order of
 * first appearance; entries of the unconfirmed group may be duplicated).
 */
int scen_sink_foreign(void)
{
    enum { N = 4000, B = 200 };
    drv d;
    drv_create(&d, URL, NULL);
    pthread_t t;
    foreign_run = 1;
    pthread_create(&t, NULL, foreign_errors, NULL);
    char key[32];
    trib_record *recs[B];
    for (int base = 0; base < N; base += B) {
        for (int i = 0; i < B; i++) {
            size_t kl = key_of(base + i, key);
            recs[i] = rec_make("t.foreign", key, kl, "v", 1, 'c', (uint64_t)(base + i + 1),
                               (uint64_t)(base + i));
        }
        CHECK(P->sink->send(d.inst, recs, B) == TRIB_OK, "send");
        usleep(1000);
    }
    CHECK(P->sink->flush(d.inst, 5000) == TRIB_OK, "flush");
    foreign_run = 0;
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++)
        CHECK(acked_once(&d, (uint64_t)i, TRIB_OK), "record %d: %d acks, status %d", i,
              th_ack_times(d.ctx, (uint64_t)i), th_ack_status(d.ctx, (uint64_t)i));
    CHECK(th_log_contains(d.ctx, "could not be confirmed"), "no group went unconfirmed");
    redisContext *c = verify_conn();
    redisReply *x = vcmd(c, "XRANGE t.foreign - +");
    int next = 0;
    for (size_t e = 0; e < x->elements; e++) {
        const redisReply *k = entry_field(x->element[e]->element[1], "key");
        size_t kl = key_of(next, key);
        if (next < N && k && k->len == kl && memcmp(k->str, key, kl) == 0)
            next++; /* the first appearance of the next key */
    }
    CHECK(next == N, "keys in order of first appearance: only the first %d of %d", next, N);
    printf("sink-foreign: %d records acked once; %zu entries (%zu duplicated)\n", N,
           x->elements, x->elements - N);
    freeReplyObject(x);
    redisFree(c);
    drv_destroy(&d);
    return 0;
}

/*
 * send() returns once its batch is written and the replies of earlier
 * batches are read; the replies of its own batch may be read later, by the
 * next send(), by drain() (which the engine calls when it has nothing to
 * send) or by flush().  Every record is acknowledged exactly once either way.
 */
int scen_sink_lag(void)
{
    enum { B = 400, ROUNDS = 5 };
    drv d;
    drv_create(&d, URL, NULL);
    CHECK(P->abi_minor >= 2 && P->sink->drain, "the redis sink provides drain() (ABI 1.2)");
    char key[32], val[VALUE_LEN];
    trib_record *recs[B];
    int lagged = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < B; i++) {
            int seq = r * B + i;
            size_t kl = key_of(seq, key);
            value_of(seq, val);
            recs[i] = rec_make("t.lag", key, kl, val, VALUE_LEN, 'c', (uint64_t)seq + 1,
                               (uint64_t)seq);
        }
        CHECK(P->sink->send(d.inst, recs, B) == TRIB_OK, "send %d", r);
        /* everything sent before this batch is acknowledged, once */
        for (int seq = 0; seq < r * B; seq++)
            CHECK(acked_once(&d, (uint64_t)seq, TRIB_OK), "round %d: record %d: %d acks", r, seq,
                  th_ack_times(d.ctx, (uint64_t)seq));
        for (int i = 0; i < B; i++)
            if (th_ack_times(d.ctx, (uint64_t)(r * B + i)) == 0)
                lagged++;
    }
    /* what is left is finished by drain(), a little at a time */
    int calls = 0;
    while (P->sink->drain(d.inst, 200) != TRIB_OK)
        CHECK(++calls < 500, "drain never finished");
    for (int seq = 0; seq < ROUNDS * B; seq++)
        CHECK(acked_once(&d, (uint64_t)seq, TRIB_OK), "record %d after drain: %d acks", seq,
              th_ack_times(d.ctx, (uint64_t)seq));
    CHECK(P->sink->drain(d.inst, 10) == TRIB_OK && P->sink->flush(d.inst, 10) == TRIB_OK,
          "nothing left: drain and flush return at once");
    redisContext *c = verify_conn();
    redisReply *x = vcmd(c, "XRANGE t.lag - +");
    CHECK(x->elements == (size_t)(ROUNDS * B), "XRANGE t.lag: %zu entries", x->elements);
    for (int seq = 0; seq < ROUNDS * B; seq++) { /* in order, byte-exact */
        const redisReply *k = entry_field(x->element[seq]->element[1], "key");
        const redisReply *v = entry_field(x->element[seq]->element[1], "value");
        size_t kl = key_of(seq, key);
        value_of(seq, val);
        CHECK(k && k->len == kl && memcmp(k->str, key, kl) == 0, "entry %d: key", seq);
        CHECK(v && v->len == VALUE_LEN && memcmp(v->str, val, VALUE_LEN) == 0, "entry %d: value",
              seq);
    }
    freeReplyObject(x);
    redisFree(c);
    printf("sink-lag: %d records in %d batches acked once, in order; %d were still awaiting "
           "their reply when their send() returned\n",
           ROUNDS * B, ROUNDS, lagged);
    drv_destroy(&d);
    return 0;
}

static void *busy_script(void *p)
{
    (void)p;
    redisContext *c = verify_conn();
    /* returns an error once SCRIPT KILL ends it */
    redisReply *r = redisCommand(c, "EVAL %s 0", "while true do end");
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

/*
 * Transient error replies (BUSY while a script runs): the records are sent
 * again after a backoff, until Redis takes them; each is acked once.
 */
int scen_sink_busy(void)
{
    enum { N = 200 };
    drv d;
    drv_create(&d, URL, "reconnect_max_ms", "200", NULL);
    redisContext *c = verify_conn();
    freeReplyObject(vcmd(c, "CONFIG SET busy-reply-threshold 100"));
    pthread_t t;
    pthread_create(&t, NULL, busy_script, NULL);
    usleep(400 * 1000); /* past the threshold: Redis answers BUSY */
    trib_record *recs[N];
    for (int i = 0; i < N; i++)
        recs[i] = rec_make("t.busy", "k", 1, "v", 1, 'c', (uint64_t)i + 1, (uint64_t)i);
    uint64_t t0 = now_ms();
    CHECK(P->sink->send(d.inst, recs, N) == TRIB_OK, "send");
    CHECK(P->sink->flush(d.inst, 300) == TRIB_RETRY, "flush succeeded while Redis is BUSY");
    CHECK(th_ack_count(d.ctx) == 0, "%d acks while Redis is BUSY", th_ack_count(d.ctx));
    redisContext *k = verify_conn();
    freeReplyObject(vcmd(k, "SCRIPT KILL"));
    redisFree(k);
    pthread_join(t, NULL);
    int tries = 0;
    while (P->sink->flush(d.inst, 500) != TRIB_OK)
        CHECK(++tries < 40, "still unacknowledged 20 s after the script ended");
    for (int i = 0; i < N; i++)
        CHECK(acked_once(&d, (uint64_t)i, TRIB_OK), "record %d: %d acks, status %d", i,
              th_ack_times(d.ctx, (uint64_t)i), th_ack_status(d.ctx, (uint64_t)i));
    redisReply *r = vcmd(c, "XLEN t.busy");
    CHECK(r->integer == N, "XLEN t.busy %lld", r->integer);
    freeReplyObject(r);
    CHECK(th_log_contains(d.ctx, "BUSY"), "the BUSY replies are logged");
    printf("sink-busy: %d records acked once after BUSY replies (%llu ms)\n", N,
           (unsigned long long)(now_ms() - t0));
    redisFree(c);
    drv_destroy(&d);
    return 0;
}

/* sink-live N BATCH PROGRESS_FILE: a steady stream of records with keys
   "0".."N-1" while the test kills and restarts redis-server. */
int scen_sink_live(int argc, char **argv)
{
    CHECK(argc >= 3, "sink-live N BATCH PROGRESS_FILE");
    int n = atoi(argv[0]), batch = atoi(argv[1]);
    drv d;
    drv_create(&d, URL, "reconnect_max_ms", "400", "command_timeout_ms", "2000", NULL);
    trib_record **recs = calloc((size_t)batch, sizeof *recs);
    uint64_t slowest = 0;
    for (int base = 0; base < n; base += batch) {
        int m = n - base < batch ? n - base : batch;
        for (int i = 0; i < m; i++) {
            char k[16], v[32];
            snprintf(k, sizeof k, "%d", base + i);
            snprintf(v, sizeof v, "value-%d", base + i);
            recs[i] = rec_make("t.live", k, strlen(k), v, strlen(v), 'c', (uint64_t)(base + i + 1),
                               (uint64_t)(base + i));
        }
        uint64_t t0 = now_ms();
        CHECK(P->sink->send(d.inst, recs, (size_t)m) == TRIB_OK, "send");
        /* send() may leave this batch's replies for later: as the engine
           does when it has nothing else to send, finish them */
        int tries = 0;
        while (P->sink->flush(d.inst, 500) != TRIB_OK)
            CHECK(++tries < 120, "batch at %d still unacknowledged after 60 s", base);
        if (now_ms() - t0 > slowest)
            slowest = now_ms() - t0;
        for (int i = base; i < base + m; i++)
            CHECK(acked_once(&d, i, TRIB_OK), "record %d: %d acks status %d", i,
                  th_ack_times(d.ctx, i), th_ack_status(d.ctx, i));
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "%d\n", base + m);
            fclose(f);
        }
        usleep(3000);
    }
    free(recs);
    CHECK(th_log_contains(d.ctx, "reconnected"), "expected a reconnect during the run");
    printf("sink-live: %d records acked, longest send %llu ms\n", n, (unsigned long long)slowest);
    drv_destroy(&d);
    return 0;
}

struct send_arg {
    drv *d;
    trib_record **recs;
    size_t n;
    uint64_t returned_at;
};

static void *send_thread(void *p)
{
    struct send_arg *a = p;
    P->sink->send(a->d->inst, a->recs, a->n);
    a->returned_at = now_ms();
    return NULL;
}

/* Redis unreachable: send blocks until the engine stops, then acks TRIB_STOP. */
int scen_sink_stop(void)
{
    drv d;
    drv_create(&d, URL, "reconnect_max_ms", "5000", "connect_timeout_ms", "300", NULL);
    trib_record *recs[10];
    for (int i = 0; i < 10; i++)
        recs[i] = rec_make("t.stop", "k", 1, "v", 1, 'c', (uint64_t)i, i);
    struct send_arg a = {&d, recs, 10, 0};
    pthread_t t;
    pthread_create(&t, NULL, send_thread, &a);
    usleep(1500 * 1000);
    CHECK(a.returned_at == 0, "send returned while redis is down and not stopping");
    CHECK(th_ack_count(d.ctx) == 0, "acks while blocked");
    uint64_t stop_at = now_ms();
    th_set_stopping(d.ctx, 1);
    pthread_join(t, NULL);
    CHECK(a.returned_at - stop_at < 1500, "send took %llu ms to notice stopping",
          (unsigned long long)(a.returned_at - stop_at));
    for (int i = 0; i < 10; i++)
        CHECK(acked_once(&d, i, TRIB_STOP), "record %d", i);
    CHECK(th_log_contains(d.ctx, "not delivered"), "log says what was not delivered");
    printf("sink-stop: 10 records acked TRIB_STOP %llu ms after stop\n",
           (unsigned long long)(a.returned_at - stop_at));
    drv_destroy(&d);
    return 0;
}

int scen_produce(void)
{
    drv d;
    /* db 5: SELECT works */
    char url5[256];
    snprintf(url5, sizeof url5, "%.*s/5", (int)(strrchr(URL, '/') - URL), URL);
    drv_create(&d, url5, NULL);
    trib_record *r = rec_make("t.produce", "7", 1, "x\0y", 3, 0, 0, 0);
    CHECK(P->consumer->produce(d.inst, r, 1000) == TRIB_OK, "produce");
    th_host.record_free(r); /* produce() does not take the record */
    redisContext *c = verify_conn();
    freeReplyObject(vcmd(c, "SELECT 5"));
    redisReply *x = vcmd(c, "XRANGE t.produce - +");
    CHECK(x->elements == 1, "XRANGE %zu", x->elements);
    const redisReply *v = entry_field(x->element[0]->element[1], "value");
    CHECK(v && v->len == 3 && memcmp(v->str, "x\0y", 3) == 0, "value");
    CHECK(!entry_field(x->element[0]->element[1], "op"), "op 0 must not be written");
    freeReplyObject(x);
    redisFree(c);
    drv_destroy(&d);
    printf("produce: ok (db 5)\n");
    return 0;
}

/* auth GOOD_URL BAD_URL NOPW_URL PASSWORD — the server has requirepass set. */
int scen_auth(int argc, char **argv)
{
    CHECK(argc >= 3, "auth GOOD_URL BAD_URL NOPW_URL PASSWORD");
    const char *pw = argv[2];
    drv d;
    drv_create(&d, URL, NULL);
    trib_record *r = rec_make("t.auth", "k", 1, "v", 1, 'c', 1, 0);
    CHECK(P->sink->send(d.inst, &r, 1) == TRIB_OK && P->sink->flush(d.inst, 1000) == TRIB_OK &&
              acked_once(&d, 0, TRIB_OK),
          "send");
    CHECK(!th_log_contains(d.ctx, pw), "password in the log");
    drv_destroy(&d);

    char err[512] = "";
    CHECK(drv_try_create(&d, err, sizeof err, argv[0], NULL) == TRIB_ERR, "bad password accepted");
    CHECK(strstr(err, "AUTH") && !strstr(err, "wrong-secret") && !strstr(err, pw), "err: %s", err);
    printf("auth: bad password -> %s\n", err);
    drv_destroy(&d);

    drv_create(&d, argv[1], "password", pw, NULL);
    CHECK(!th_log_contains(d.ctx, pw), "password in the log");
    drv_destroy(&d);
    printf("auth: ok\n");
    return 0;
}
