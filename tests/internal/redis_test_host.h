/*
 * tests/internal/redis_test_host.h — a minimal trib_host for driving a
 * plugin without the core: options from name=value pairs (defaults from the
 * plugin's option table), records on the heap, acks recorded per record,
 * log lines captured so tests can check that no secret was logged.
 * Test code only; the real host is core/host.c.
 */
#ifndef REDIS_TEST_HOST_H
#define REDIS_TEST_HOST_H

#include <pthread.h>
#include <tributary/plugin.h>

#define TH_MAX_OPTS 32

struct trib_opts {
    const trib_option *table;
    int n;
    const char *names[TH_MAX_OPTS];
    const char *values[TH_MAX_OPTS];
};

struct trib_ctx {
    volatile int stopping;
    pthread_mutex_t lock;
    char *logbuf; /* every log line, appended */
    size_t loglen;
    size_t nacks; /* total ack calls */
    size_t acks_ok, acks_err, acks_stop;
    char last_err[512];
};

/* ack bookkeeping lives in the record: core_private points at one of these */
typedef struct th_ack {
    int count; /* ack calls for this record (must end at 1) */
    int status;
} th_ack;

extern const trib_host th_host;

void th_ctx_init(struct trib_ctx *ctx);
void th_ctx_free(struct trib_ctx *ctx);
void th_opts_init(struct trib_opts *o, const trib_option *table);
void th_opt(struct trib_opts *o, const char *name, const char *value);
/** 1 if `s` occurs in the captured log. */
int th_log_contains(struct trib_ctx *ctx, const char *s);

#endif
