/*
 * tests/internal/test_kafka.c — drives the `kafka` plugin (loaded with
 * the core's loader) against tests/kafka_mock through the shared test host
 * (testhost.c).
 *
 *   test_kafka                        the whole suite (starts kafka_mock)
 *   test_kafka produce BOOT TOPIC N   produce N generated records, all acked
 *   test_kafka expect N               print them as kcat -f '%k\t%s\n' would
 *   test_kafka consume BOOT TOPIC     bounded read, printed the same way
 *
 * The suite: option errors and secrets, a binary round trip (sink acks from
 * delivery reports, bounded read to EOF, headers), a consumer group with
 * commits and produce(), a broker outage (no acks while down, everything
 * once after), stop while down (TRIB_STOP), and a permanent delivery error.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testhost.h"

static int failures;
#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static const trib_plugin *plug;

/* ---- tests/kafka_mock as a child process: argv[0] is its path ----------- */

typedef struct mock {
    pid_t pid;
    FILE *in, *out;
    char bootstrap[256];
} mock;

static int mock_start(mock *m, char *const argv[])
{
    int to[2], from[2];
    if (pipe(to) || pipe(from))
        return -1;
    m->pid = fork();
    if (m->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        execv(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    m->in = fdopen(to[1], "w");
    m->out = fdopen(from[0], "r");
    if (!fgets(m->bootstrap, sizeof m->bootstrap, m->out))
        return -1;
    m->bootstrap[strcspn(m->bootstrap, "\n")] = '\0';
    return 0;
}

/* One control command; 0 when the mock answered "ok". */
static int mock_cmd(mock *m, const char *cmd)
{
    char line[256];
    fprintf(m->in, "%s\n", cmd);
    fflush(m->in);
    if (!fgets(line, sizeof line, m->out))
        return -1;
    if (strncmp(line, "ok", 2)) {
        fprintf(stderr, "kafka_mock command '%s': %s", cmd, line);
        return -1;
    }
    return 0;
}

static void mock_stop(mock *m)
{
    fclose(m->in); /* the mock keeps running without stdin: signal it */
    kill(m->pid, SIGTERM);
    waitpid(m->pid, NULL, 0);
    fclose(m->out);
}

/* ---- generated records -------------------------------------------------- */

/* Key: binary, unique per i (null for i % 50 == 13). */
static size_t gen_key(int i, unsigned char *b, int *is_null)
{
    *is_null = i % 50 == 13;
    unsigned char k[] = {'k', 0, (unsigned char)(i >> 16), (unsigned char)(i >> 8),
                         (unsigned char)i, '\t', '\n', 0xff};
    memcpy(b, k, sizeof k);
    return sizeof k;
}

/* Value: arbitrary bytes incl. NUL; empty (not null) for i % 50 == 7. */
static size_t gen_val(int i, unsigned char *b)
{
    size_t n = i % 50 == 7 ? 0 : 1 + (size_t)(i * 37) % 900;
    for (size_t j = 0; j < n; j++)
        b[j] = (unsigned char)(i * 31 + j * 7);
    return n;
}

static trib_record *gen_record(const char *topic, int i)
{
    unsigned char kb[16], vb[1024];
    char idx[16];
    int null_key;
    size_t kl = gen_key(i, kb, &null_key), vl = gen_val(i, vb);
    trib_record *r = th_record(topic, null_key ? NULL : kb, kl, vl ? (void *)vb : (void *)"", vl);
    r->seq = (uint64_t)i;
    r->op = "rcud"[i % 4];
    r->src.lsn = ((uint64_t)i << 32) | 0xABCu;
    snprintf(idx, sizeof idx, "%d", i);
    th_host.header_add(r, "i", idx, strlen(idx));
    return r;
}

static const char *hdr(const trib_record *r, const char *name, size_t *len)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcmp(r->headers[i].name, name)) {
            *len = r->headers[i].len;
            return r->headers[i].value;
        }
    return NULL;
}

/* Index of a consumed record (its "i" header), -1 if absent. */
static int rec_index(const trib_record *r)
{
    size_t len;
    const char *v = hdr(r, "i", &len);
    return v ? atoi(v) : -1;
}

/* 1 if a consumed record has exactly generated record i's key and value. */
static int rec_matches(const trib_record *r, int i)
{
    unsigned char kb[16], vb[1024];
    int null_key;
    size_t kl = gen_key(i, kb, &null_key), vl = gen_val(i, vb);
    if (null_key ? r->key.set : !r->key.set || r->key.len != kl || memcmp(r->key.data, kb, kl))
        return 0;
    return r->value.set && r->value.len == vl && !memcmp(r->value.data, vb, vl);
}

static void print_kcat(FILE *f, const trib_record *r)
{
    if (r->key.set)
        fwrite(r->key.data, 1, r->key.len, f);
    fputc('\t', f);
    if (r->value.set)
        fwrite(r->value.data, 1, r->value.len, f);
    fputc('\n', f);
}

/* ---- plugin instances ----------------------------------------------------- */

typedef struct inst {
    trib_ctx *ctx;
    void *p;
} inst;

/* Create an instance; extra options as name,value pairs ("kafka.X" goes
 * into the passthrough map), NULL-terminated.  Returns TRIB_OK or TRIB_ERR. */
static int inst_create(inst *in, const char *bootstrap, char *err, size_t errlen, ...)
{
    va_list ap;
    const char *k, *v;
    th_section *s = th_section_new();
    if (bootstrap)
        th_set(s, "bootstrap_servers", bootstrap);
    va_start(ap, errlen);
    while ((k = va_arg(ap, const char *)) && (v = va_arg(ap, const char *))) {
        if (!strncmp(k, "kafka.", 6))
            th_set_map(s, "kafka", k + 6, v);
        else
            th_set(s, k, v);
    }
    va_end(ap);
    if (getenv("TK_RDKAFKA_DEBUG")) /* e.g. cgrp,topic: librdkafka's debug contexts */
        th_set_map(s, "kafka", "debug", getenv("TK_RDKAFKA_DEBUG"));
    in->ctx = th_ctx_new("sink");
    int rc = th_create(in->ctx, plug, s, 1, err, errlen);
    th_section_free(s);
    in->p = th_inst(in->ctx);
    return rc;
}

static void inst_destroy(inst *in)
{
    th_ctx_free(in->ctx);
}

/* Send records [from, to) in batches of 100. */
static void send_range(inst *in, const char *topic, int from, int to)
{
    trib_record *batch[100];
    while (from < to) {
        size_t n = 0;
        while (n < 100 && from < to)
            batch[n++] = gen_record(topic, from++);
        CHECK(plug->sink->send(in->p, batch, n) == TRIB_OK, "send");
    }
}

/* Bounded read of a whole topic; seen[i] counts record i, mismatches are
 * counted in *bad.  Returns the number of records, -1 on error. */
static int read_bounded(const char *bootstrap, const char *topic, int *seen, int max, int *bad)
{
    inst in;
    char err[512];
    int n = 0, rc;
    trib_record *r;
    if (inst_create(&in, bootstrap, err, sizeof err, NULL) != TRIB_OK)
        return -1;
    trib_consume_opts o = {.group_id = "reader", .from_beginning = 1, .bounded = 1};
    void *c = plug->consumer->open(in.p, topic, &o, err, sizeof err);
    CHECK(c != NULL, "open bounded %s: %s", topic, err);
    time_t end = time(NULL) + 30;
    while (c && (rc = plug->consumer->poll(c, 500, &r)) != TRIB_EOF && time(NULL) < end) {
        CHECK(rc >= 0, "poll rc %d", rc);
        if (rc != 1)
            continue;
        int i = rec_index(r);
        if (i >= 0 && i < max) {
            seen[i]++;
            *bad += !rec_matches(r, i);
        } else {
            (*bad)++;
        }
        n++;
        th_host.record_free(r);
    }
    CHECK(time(NULL) < end, "bounded read of %s did not reach EOF", topic);
    if (c) {
        CHECK(plug->consumer->poll(c, 10, &r) == TRIB_EOF, "EOF is sticky");
        plug->consumer->close(c);
    }
    inst_destroy(&in);
    return n;
}

/* ---- tests ---------------------------------------------------------------- */

static void t_options(const char *boot)
{
    inst in;
    char err[512];
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.no.such.property", "1", NULL) == TRIB_ERR,
          "unknown passthrough property accepted");
    CHECK(strstr(err, "kafka.no.such.property") != NULL, "error names the key: %s", err);
    inst_destroy(&in);
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.linger.ms", "-5", NULL) == TRIB_ERR,
          "invalid passthrough value accepted");
    CHECK(strstr(err, "kafka.linger.ms") != NULL, "error names the key: %s", err);
    inst_destroy(&in);
    CHECK(inst_create(&in, boot, err, sizeof err, "acks", "1", NULL) == TRIB_ERR,
          "acks 1 with idempotence accepted");
    CHECK(strstr(err, "acks") != NULL, "error names acks: %s", err);
    inst_destroy(&in);
    CHECK(inst_create(&in, boot, err, sizeof err, "acks", "1", "enable_idempotence", "false",
                      "compression", "zstd", NULL) == TRIB_OK, "acks 1: %s", err);
    inst_destroy(&in);
    CHECK(inst_create(&in, "", err, sizeof err, NULL) == TRIB_ERR, "empty bootstrap accepted");
    CHECK(strstr(err, "bootstrap_servers") != NULL, "error names bootstrap_servers: %s", err);
    inst_destroy(&in);
    /* librdkafka's config dump (debug=conf) must not reveal the password */
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.debug", "conf,generic",
                      "kafka.sasl.username", "alice", "kafka.sasl.password", "S3cr3t-XYZ",
                      NULL) == TRIB_OK, "sasl props: %s", err);
    CHECK(th_log_contains(in.ctx, "sasl.username"), "no config dump logged");
    CHECK(!th_log_contains(in.ctx, "S3cr3t-XYZ"), "password logged");
    inst_destroy(&in);
    /* the producer queue is bounded at 8 MB unless the kafka: map says otherwise */
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.debug", "conf", NULL) == TRIB_OK,
          "debug conf: %s", err);
    CHECK(plug->sink->send(in.p, NULL, 0) == TRIB_OK, "start the producer");
    CHECK(th_log_contains(in.ctx, "queue.buffering.max.kbytes = 8192"),
          "default producer queue bound not applied");
    inst_destroy(&in);
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.debug", "conf",
                      "kafka.queue.buffering.max.kbytes", "4096", NULL) == TRIB_OK,
          "queue bound override: %s", err);
    CHECK(plug->sink->send(in.p, NULL, 0) == TRIB_OK, "start the producer");
    CHECK(th_log_contains(in.ctx, "queue.buffering.max.kbytes = 4096"),
          "kafka.queue.buffering.max.kbytes did not override the default");
    inst_destroy(&in);
}

/* Every one of n records was acknowledged TRIB_OK exactly once. */
static void check_acked_once(trib_ctx *ctx, int n)
{
    CHECK(th_ack_count(ctx) == n, "acks %d", th_ack_count(ctx));
    for (int i = 0; i < n; i++)
        CHECK(th_ack_status(ctx, i) == TRIB_OK && th_ack_times(ctx, i) == 1,
              "record %d: status %d, acked %d times", i, th_ack_status(ctx, i),
              th_ack_times(ctx, i));
}

/* A bounded read of `topic` finds records 0..n-1 once each, byte-exact. */
static void check_read_once(const char *boot, const char *topic, int *seen, int n)
{
    int bad = 0;
    CHECK(read_bounded(boot, topic, seen, n, &bad) == n, "bounded read count of %s", topic);
    CHECK(bad == 0, "%d records differ", bad);
    for (int i = 0; i < n; i++)
        CHECK(seen[i] == 1, "record %d read %d times", i, seen[i]);
}

/* A producer queue far smaller than what is sent: send() waits for room
 * again and again, is woken by the delivery reports, and every record still
 * arrives once. */
static void t_small_queue(const char *boot)
{
    enum { N = 2000 };
    static int seen[N];
    inst in;
    char err[512];
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.queue.buffering.max.messages", "40",
                      NULL) == TRIB_OK, "create: %s", err);
    send_range(&in, "t.small", 0, N);
    CHECK(plug->sink->flush(in.p, 20000) == TRIB_OK, "flush");
    CHECK(th_metric(in.ctx, "queue_full_waits") > 0, "send() never found the queue full");
    check_acked_once(in.ctx, N);
    inst_destroy(&in);
    check_read_once(boot, "t.small", seen, N);
}

/* A record larger than the whole producer queue fails at once, naming the
 * setting, instead of waiting for room forever. */
static void t_too_big_for_queue(const char *boot)
{
    inst in;
    char err[512];
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.queue.buffering.max.kbytes", "1",
                      NULL) == TRIB_OK, "create: %s", err);
    trib_record *r = gen_record("t.big", 0);
    static char big[4096];
    memset(big, 'x', sizeof big);
    th_host.bytes_set(&r->value, big, sizeof big);
    CHECK(plug->sink->send(in.p, &r, 1) == TRIB_OK, "send");
    CHECK(th_ack_count(in.ctx) == 1 && th_ack_status(in.ctx, 0) == TRIB_ERR,
          "a too-large record: %d acks, status %d", th_ack_count(in.ctx), th_ack_status(in.ctx, 0));
    CHECK(th_log_contains(in.ctx, "queue.buffering.max.kbytes"), "the error names the setting");
    inst_destroy(&in);
}

static void t_roundtrip(const char *boot)
{
    enum { N = 3000 };
    static int seen[N];
    inst in;
    char err[512];
    int bad = 0;
    CHECK(inst_create(&in, boot, err, sizeof err, NULL) == TRIB_OK, "create: %s", err);
    send_range(&in, "t.bin", 0, N);
    CHECK(plug->sink->flush(in.p, 20000) == TRIB_OK, "flush");
    check_acked_once(in.ctx, N);
    inst_destroy(&in);
    check_read_once(boot, "t.bin", seen, N);

    /* empty partitions / empty topic: EOF at once.  (An unknown topic is
     * auto-created by the mock on the metadata request, like a broker with
     * auto.create.topics.enable, so it reads as empty too.) */
    CHECK(read_bounded(boot, "t.empty", seen, N, &bad) == 0, "empty topic");
    CHECK(read_bounded(boot, "t.nope", seen, N, &bad) == 0, "unknown topic");
}

static void t_headers(const char *boot)
{
    inst in;
    char err[512];
    trib_record *r = NULL;
    CHECK(inst_create(&in, boot, err, sizeof err, NULL) == TRIB_OK, "create: %s", err);
    trib_record *w = gen_record("t.hdr", 5);
    CHECK(plug->consumer->produce(in.p, w, 10000) == TRIB_OK, "produce");
    trib_record *batch[1] = {w};
    plug->sink->send(in.p, batch, 1);
    CHECK(plug->sink->flush(in.p, 10000) == TRIB_OK, "flush");
    trib_consume_opts o = {.from_beginning = 1, .bounded = 1};
    void *c = plug->consumer->open(in.p, "t.hdr", &o, err, sizeof err);
    CHECK(c, "open: %s", err);
    int got = 0, rc;
    while (c && (rc = plug->consumer->poll(c, 1000, &r)) != TRIB_EOF && rc >= 0) {
        if (rc != 1)
            continue;
        size_t len;
        const char *op = hdr(r, "op", &len);
        got++;
        CHECK(rec_matches(r, 5), "bytes");
        CHECK(r->op == 'c' && op && len == 1 && *op == 'c', "op header");
        CHECK(r->src.lsn == (((uint64_t)5 << 32) | 0xABC), "lsn %llx",
              (unsigned long long)r->src.lsn);
        CHECK(hdr(r, "lsn", &len) && !strcmp(hdr(r, "lsn", &len), "5/ABC"), "lsn header");
        CHECK(r->msg_id && strchr(r->msg_id, '/'), "msg_id");
        th_host.record_free(r);
    }
    CHECK(got == 2, "got %d", got);
    if (c)
        plug->consumer->close(c);
    inst_destroy(&in);
}

/* Read n records of a streaming group consumer; commit those below
 * commit_below; record indexes into seen. */
static int read_group(inst *in, const char *group, int n, int commit_below, int *seen)
{
    char err[512];
    trib_record *r;
    int got = 0, quiet = 0;
    trib_consume_opts o = {.group_id = group, .from_beginning = 1, .commit = 1};
    void *c = plug->consumer->open(in->p, "t.group", &o, err, sizeof err);
    CHECK(c, "open group: %s", err);
    if (!c)
        return 0;
    /* until n arrived, then 2 s of silence (nothing extra may come) */
    for (time_t end = time(NULL) + 30; time(NULL) < end && (got < n || quiet < 4);) {
        int rc = plug->consumer->poll(c, 500, &r);
        CHECK(rc >= 0, "poll %d", rc);
        if (rc != 1) {
            quiet += got >= n;
            continue;
        }
        int i = rec_index(r);
        if (i >= 0 && i < 100)
            seen[i]++;
        if (i < commit_below)
            CHECK(plug->consumer->commit(c, r) == TRIB_OK, "commit");
        got++;
        th_host.record_free(r);
    }
    plug->consumer->close(c);
    return got;
}

static void t_group(const char *boot)
{
    inst in;
    char err[512];
    int seen[100] = {0};
    /* the mock answers a re-join only after the group's session timeout */
    CHECK(inst_create(&in, boot, err, sizeof err, "kafka.session.timeout.ms", "6000", NULL) ==
              TRIB_OK, "create: %s", err);
    send_range(&in, "t.group", 0, 30);
    CHECK(plug->sink->flush(in.p, 10000) == TRIB_OK, "flush");
    CHECK(read_group(&in, "g1", 30, 20, seen) == 30, "first read");
    for (int i = 30; i < 35; i++) { /* produce(): one at a time, acked */
        trib_record *r = gen_record("t.group", i);
        CHECK(plug->consumer->produce(in.p, r, 10000) == TRIB_OK, "produce %d", i);
        th_host.record_free(r);
    }
    /* the group resumes after the last committed record of each partition */
    CHECK(read_group(&in, "g1", 15, 0, seen) == 15, "second read");
    for (int i = 0; i < 35; i++)
        CHECK(seen[i] == (i < 20 ? 1 : 2) - (i >= 30), "record %d seen %d times", i, seen[i]);
    inst_destroy(&in);
}

static void t_broker_down(mock *m)
{
    enum { N1 = 50, N2 = 250 };
    static int seen[N2];
    inst in;
    char err[512];
    int bad = 0;
    CHECK(inst_create(&in, m->bootstrap, err, sizeof err, NULL) == TRIB_OK, "create: %s", err);
    send_range(&in, "t.down", 0, N1);
    CHECK(plug->sink->flush(in.p, 10000) == TRIB_OK, "flush before outage");
    CHECK(mock_cmd(m, "down 1") == 0, "down");
    send_range(&in, "t.down", N1, N2);
    th_sleep_ms(3000);
    CHECK(th_ack_count(in.ctx) == N1, "acked while the broker was down: %d",
          th_ack_count(in.ctx) - N1);
    CHECK(plug->sink->flush(in.p, 200) == TRIB_RETRY, "flush must time out while down");
    CHECK(mock_cmd(m, "up 1") == 0, "up");
    CHECK(plug->sink->flush(in.p, 60000) == TRIB_OK, "flush after outage");
    for (int i = 0; i < N2; i++)
        CHECK(th_ack_status(in.ctx, i) == TRIB_OK && th_ack_times(in.ctx, i) == 1,
              "record %d: status %d", i, th_ack_status(in.ctx, i));
    inst_destroy(&in);
    CHECK(read_bounded(m->bootstrap, "t.down", seen, N2, &bad) == N2, "no loss, no duplicate");
    for (int i = 0; i < N2; i++)
        CHECK(seen[i] == 1, "record %d read %d times", i, seen[i]);
    CHECK(bad == 0, "%d records differ", bad);
}

/* Poll the consumer c until every record of [lo, hi) was read once (or
 * secs passed), committing each; records at or above hi fail the test.
 * seen[i] counts reads of record i.  Returns how many of [lo, hi) were new. */
static int read_new(void *c, int lo, int hi, int *seen, int secs, const char *phase)
{
    int fresh = 0;
    trib_record *r;
    for (time_t end = time(NULL) + secs; fresh < hi - lo && time(NULL) < end;) {
        int rc = plug->consumer->poll(c, 500, &r);
        CHECK(rc >= 0, "poll %s: %d", phase, rc);
        if (rc != 1)
            continue;
        int i = rec_index(r);
        CHECK(i >= 0 && i < hi && rec_matches(r, i), "record %d %s", i, phase);
        if (i >= lo && i < hi && seen[i]++ == 0)
            fresh++;
        CHECK(plug->consumer->commit(c, r) == TRIB_OK, "commit");
        th_host.record_free(r);
    }
    return fresh;
}

/* A streaming group consumer while the broker is down: poll() keeps going
 * (librdkafka's errors are logged, not fatal), and once the broker is back
 * it reads what was produced before and after the outage. */
static void t_consumer_down(mock *m)
{
    enum { N1 = 40, N2 = 80 };
    int seen[N2] = {0};
    inst in;
    char err[512];
    trib_record *r;
    CHECK(inst_create(&in, m->bootstrap, err, sizeof err, "kafka.session.timeout.ms", "6000",
                      NULL) == TRIB_OK, "create: %s", err);
    send_range(&in, "t.cdown", 0, N1);
    CHECK(plug->sink->flush(in.p, 10000) == TRIB_OK, "flush before outage");
    trib_consume_opts o = {.group_id = "cdown", .from_beginning = 1, .commit = 1};
    void *c = plug->consumer->open(in.p, "t.cdown", &o, err, sizeof err);
    CHECK(c, "open: %s", err);
    if (!c) {
        inst_destroy(&in);
        return;
    }
    int got = read_new(c, 0, N1, seen, 30, "before the outage");
    CHECK(got == N1, "read %d of %d before the outage", got, N1);
    CHECK(mock_cmd(m, "down 1") == 0, "down");
    for (time_t end = time(NULL) + 3; time(NULL) < end;) {
        int rc = plug->consumer->poll(c, 500, &r);
        CHECK(rc == 0, "poll while down: %d (want 0: nothing, no error)", rc);
        if (rc == 1)
            th_host.record_free(r);
    }
    CHECK(mock_cmd(m, "up 1") == 0, "up");
    send_range(&in, "t.cdown", N1, N2);
    CHECK(plug->sink->flush(in.p, 30000) == TRIB_OK, "flush after outage");
    got = read_new(c, N1, N2, seen, 60, "after the outage");
    CHECK(got == N2 - N1, "read %d of %d after the outage", got, N2 - N1);
    plug->consumer->close(c);
    /* records committed before the outage may come again after the
       rebalance; every record is read at least once */
    for (int i = 0; i < N2; i++)
        CHECK(seen[i] >= 1, "record %d never read", i);
    inst_destroy(&in);
}

static void *stop_later(void *ctx)
{
    th_sleep_ms(1000);
    th_set_stopping(ctx, 1);
    return NULL;
}

/* Broker down and a tiny queue: send() blocks (back-pressure) until the
 * engine stops; then everything is acked TRIB_STOP, nothing TRIB_OK. */
static void t_stop_while_down(mock *m)
{
    inst in;
    char err[512];
    pthread_t th;
    CHECK(inst_create(&in, m->bootstrap, err, sizeof err, "kafka.queue.buffering.max.messages",
                      "5", NULL) == TRIB_OK, "create: %s", err);
    CHECK(mock_cmd(m, "down 1") == 0, "down");
    pthread_create(&th, NULL, stop_later, in.ctx);
    time_t t0 = time(NULL);
    send_range(&in, "t.stop", 0, 20);
    CHECK(time(NULL) - t0 >= 1, "send did not block on a full queue");
    pthread_join(th, NULL);
    CHECK(plug->sink->flush(in.p, 500) == TRIB_RETRY, "flush while down");
    int queued = 20 - th_ack_count(in.ctx); /* acked TRIB_STOP by send() */
    CHECK(queued == 5, "%d records in librdkafka's queue, want 5", queued);
    th_destroy(in.ctx); /* purges the queued ones: TRIB_STOP */
    in.p = NULL;
    CHECK(th_ack_count(in.ctx) == 20, "acks %d", th_ack_count(in.ctx));
    for (int i = 0; i < 20; i++)
        CHECK(th_ack_status(in.ctx, i) == TRIB_STOP && th_ack_times(in.ctx, i) == 1,
              "record %d: status %d", i, th_ack_status(in.ctx, i));
    CHECK(mock_cmd(m, "up 1") == 0, "up");
    inst_destroy(&in);
}

static void t_permanent_error(mock *m)
{
    inst in;
    char err[512];
    CHECK(inst_create(&in, m->bootstrap, err, sizeof err, NULL) == TRIB_OK, "create: %s", err);
    send_range(&in, "t.err", 0, 1); /* connect and learn the topic first */
    CHECK(plug->sink->flush(in.p, 10000) == TRIB_OK, "flush");
    CHECK(mock_cmd(m, "produce-error 10 1") == 0, "produce-error"); /* MESSAGE_TOO_LARGE: not retriable */
    send_range(&in, "t.err", 1, 2);
    plug->sink->flush(in.p, 10000);
    CHECK(th_ack_count(in.ctx) == 2, "acks %d", th_ack_count(in.ctx));
    CHECK(th_ack_status(in.ctx, 1) == TRIB_ERR, "status %d", th_ack_status(in.ctx, 1));
    CHECK(strstr(th_last_error(in.ctx), "t.err") != NULL, "error names the topic: %s",
          th_last_error(in.ctx));
    inst_destroy(&in);
}

/* ---- entry points --------------------------------------------------------- */

static int suite(const char *only)
{
    mock m;
    char *const argv[] = {KAFKA_MOCK_BIN, "--brokers", "1", "--topic", "t.bin:4",
                          "--topic", "t.empty:3", "--topic", "t.group:3", "--topic", "t.down:2",
                          "--topic", "t.stop:1", "--topic", "t.err:1", "--topic", "t.hdr:1",
                          "--topic", "t.cdown:2", NULL};
    if (mock_start(&m, argv)) {
        fprintf(stderr, "cannot start %s\n", argv[0]);
        return 1;
    }
    fprintf(stderr, "mock cluster at %s\n", m.bootstrap);
    CHECK(!strncmp(m.bootstrap, "127.0.0.1:", 10), "mock not on loopback: %s", m.bootstrap);
    struct { const char *name; void (*fn)(const char *); } simple[] = {
        {"options", t_options}, {"roundtrip", t_roundtrip}, {"small_queue", t_small_queue},
        {"too_big_for_queue", t_too_big_for_queue},
        {"headers", t_headers}, {"group", t_group}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        int before = failures;
        if (only && strcmp(only, simple[i].name))
            continue;
        simple[i].fn(m.bootstrap);
        fprintf(stderr, "%s: %s\n", simple[i].name, failures == before ? "ok" : "FAILED");
    }
    struct { const char *name; void (*fn)(mock *); } ctl[] = {
        {"broker_down", t_broker_down}, {"consumer_down", t_consumer_down},
        {"stop_while_down", t_stop_while_down},
        {"permanent_error", t_permanent_error}};
    for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
        int before = failures;
        if (only && strcmp(only, ctl[i].name))
            continue;
        ctl[i].fn(&m);
        fprintf(stderr, "%s: %s\n", ctl[i].name, failures == before ? "ok" : "FAILED");
    }
    mock_stop(&m);
    return failures ? 1 : 0;
}

static int cmd_produce(const char *boot, const char *topic, int n)
{
    inst in;
    char err[512];
    if (inst_create(&in, boot, err, sizeof err, NULL) != TRIB_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    send_range(&in, topic, 0, n);
    CHECK(plug->sink->flush(in.p, 30000) == TRIB_OK, "flush");
    for (int i = 0; i < n; i++)
        CHECK(th_ack_status(in.ctx, i) == TRIB_OK, "record %d not acked", i);
    inst_destroy(&in);
    return failures ? 1 : 0;
}

static int cmd_consume(const char *boot, const char *topic)
{
    inst in;
    char err[512];
    trib_record *r;
    int rc;
    if (inst_create(&in, boot, err, sizeof err, NULL) != TRIB_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    trib_consume_opts o = {.from_beginning = 1, .bounded = 1};
    void *c = plug->consumer->open(in.p, topic, &o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    while ((rc = plug->consumer->poll(c, 1000, &r)) != TRIB_EOF && rc >= 0)
        if (rc == 1) {
            print_kcat(stdout, r);
            th_host.record_free(r);
        }
    plug->consumer->close(c);
    inst_destroy(&in);
    return rc == TRIB_EOF ? 0 : 1;
}

int main(int argc, char **argv)
{
    plug = th_load(getenv("KAFKA_PLUGIN_SO") ? getenv("KAFKA_PLUGIN_SO") : KAFKA_PLUGIN_SO);
    CHECK(plug->abi_major == TRIB_ABI_MAJOR && !strcmp(plug->name, "kafka"), "descriptor");
    CHECK(plug->roles == (TRIB_ROLE_SINK | TRIB_ROLE_CONSUMER), "roles");
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    int rc;
    if (argc == 5 && !strcmp(argv[1], "produce"))
        rc = cmd_produce(argv[2], argv[3], atoi(argv[4]));
    else if (argc == 3 && !strcmp(argv[1], "expect")) {
        for (int i = 0, n = atoi(argv[2]); i < n; i++) {
            trib_record *r = gen_record("x", i);
            print_kcat(stdout, r);
            th_host.record_free(r);
        }
        rc = 0;
    } else if (argc == 4 && !strcmp(argv[1], "consume"))
        rc = cmd_consume(argv[2], argv[3]);
    else if (argc == 1 || (argc == 3 && !strcmp(argv[1], "only")))
        rc = suite(argc == 3 ? argv[2] : NULL);
    else {
        fprintf(stderr, "usage: test_kafka [only TEST | produce BOOT TOPIC N | expect N | consume BOOT TOPIC]\n");
        rc = 2;
    }
    fflush(stdout);
    return rc;
}
