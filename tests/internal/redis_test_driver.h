/*
 * tests/internal/redis_test_driver.h — shared helpers of the redis plugin
 * test driver (test_redis_driver.c) and its scenarios (test_redis_scen.c).
 */
#ifndef REDIS_TEST_DRIVER_H
#define REDIS_TEST_DRIVER_H

#include <stdio.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "testhost.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** One plugin instance with its own host context. */
typedef struct drv {
    trib_ctx *ctx;
    void *inst;
} drv;

extern const trib_plugin *P; /* the loaded plugin */
extern const char *URL;      /* redis://127.0.0.1:PORT/0 */

/** Create (and start) an instance; extra options as name, value, ..., NULL. */
void drv_create(drv *d, const char *url, ...);
int drv_try_create(drv *d, char *err, size_t errlen, const char *url, ...);
void drv_destroy(drv *d);

/** A record for the sink, acked as `seq` (the host frees it when acked). */
trib_record *rec_make(const char *topic, const void *key, size_t klen, const void *val, size_t vlen,
                      char op, uint64_t lsn, uint64_t seq);
/** 1 when record `seq` was acked exactly once, with `status`. */
int acked_once(drv *d, uint64_t seq, int status);

/* Deterministic test data (tests/runtime/redis_plugin.sh regenerates it in Python). */
size_t key_of(int i, char *buf); /* "k\0<i>\n\xff" */
void value_of(int i, char *buf); /* 784 bytes: (i*31 + j*7) % 256 */
#define VALUE_LEN 784

/** A direct hiredis connection to the test server for checking results. */
redisContext *verify_conn(void);
redisReply *vcmd(redisContext *c, const char *fmt, ...);

int scen_sink_basic(void);
int scen_sink_maxlen(void);
int scen_sink_error(int argc, char **argv);
int scen_sink_quiet(int argc, char **argv);
int scen_sink_foreign(void);
int scen_sink_lag(void);
int scen_sink_busy(void);
int scen_sink_live(int argc, char **argv);
int scen_sink_stop(void);
int scen_consume_group(void);
int scen_consume_bounded(void);
int scen_consume_xread(void);
int scen_consume_restart(int argc, char **argv);
int scen_produce(void);
int scen_auth(int argc, char **argv);

#endif
