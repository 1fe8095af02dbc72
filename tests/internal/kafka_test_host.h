/*
 * tests/internal/kafka_test_host.h — a minimal trib_host for driving a
 * plugin without the core: options from name/value pairs (defaults from the
 * plugin's option table), heap records, and an ack log the test can wait on;
 * plus control of a tests/kafka_mock child process.
 */
#ifndef KAFKA_TEST_HOST_H
#define KAFKA_TEST_HOST_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <tributary/plugin.h>

#define TH_MAX_ACKS 100000

/* Options: build with th_opts_new, add values, hand to plugin->create. */
trib_opts *th_opts_new(const trib_option *table);
void th_opt(trib_opts *o, const char *name, const char *value);
void th_opt_map(trib_opts *o, const char *name, const char *key, const char *value);
void th_opts_free(trib_opts *o);

/* The host table and a per-instance context (ctx). */
extern const trib_host th_host;
trib_ctx *th_ctx_new(void);
void th_ctx_free(trib_ctx *c);
void th_set_stopping(trib_ctx *c, int on);

/* Acks, indexed by record seq (< TH_MAX_ACKS). */
int th_ack_count(trib_ctx *c);                 /* total acks so far */
int th_ack_status(trib_ctx *c, uint64_t seq);  /* status of seq; 1 = never acked */
int th_ack_times(trib_ctx *c, uint64_t seq);   /* how often seq was acked */
const char *th_last_error(trib_ctx *c);        /* errmsg of the last TRIB_ERR ack */
/* Wait until at least n acks, up to timeout_ms; returns 1 if reached. */
int th_wait_acks(trib_ctx *c, int n, int timeout_ms);
void th_reset_acks(trib_ctx *c);

/* Everything logged through this ctx, concatenated (for secret checks). */
const char *th_log_text(trib_ctx *c);

/* tests/kafka_mock as a child process: argv[0] is its path.  mock_cmd
 * sends one control command and returns 0 when it answered "ok". */
typedef struct mock {
    pid_t pid;
    FILE *in, *out;
    char bootstrap[256];
} mock;
int mock_start(mock *m, char *const argv[]);
int mock_cmd(mock *m, const char *cmd);
void mock_stop(mock *m);
void sleep_ms(int ms);

#endif
