/*
 * plugins/redis/redis.h — internals shared by the files of the Redis Streams
 * plugin (not installed; the only public contract is <tributary/plugin.h>).
 *
 *   redis.c           descriptor, option table, create/start/destroy
 *   redis_url.c       redis:// URL parsing and redaction
 *   redis_conn.c      one connection: connect, AUTH/SELECT, timeouts, backoff
 *   redis_sink.c      sink: pipelined XADD batches, acks, resend; produce()
 *   redis_consumer.c  consumer: XREADGROUP / XREAD / bounded XRANGE, XACK
 */
#ifndef TRIB_REDIS_H
#define TRIB_REDIS_H

#include <pthread.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <tributary/plugin.h>

/* ---- redis_url.c ---------------------------------------------------------- */

/** A parsed redis://[user:password@]host[:port][/db] URL.  Owns its strings. */
typedef struct redis_url {
    char *host;
    int port;
    int db;
    char *user;     /**< NULL: no ACL user (AUTH password) */
    char *password; /**< NULL: no AUTH */
} redis_url;

/** Parse `s`.  TRIB_OK, or TRIB_ERR with a message (never containing the password). */
int redis_url_parse(const char *s, redis_url *u, char *err, size_t errlen);
void redis_url_free(redis_url *u);
/** "redis://user:***@host:port/db": safe to log. */
void redis_url_redacted(const redis_url *u, char *buf, size_t len);

/* ---- redis_conn.c --------------------------------------------------------- */

/** Connection settings shared by every connection of one instance. */
typedef struct redis_cfg {
    redis_url url;
    char where[160]; /**< redacted URL for messages */
    int connect_timeout_ms;
    int command_timeout_ms;
    int reconnect_max_ms;
} redis_cfg;

/** One connection with its reconnect state.  Not thread-safe. */
typedef struct redis_conn {
    const redis_cfg *cfg;
    trib_ctx *ctx;
    const trib_host *host;
    redisContext *c; /**< NULL while disconnected */
    int timeout_ms;  /**< socket timeout currently set on c */
    int backoff_ms;  /**< next reconnect delay */
    int down;        /**< 1 after a failure was logged, until reconnected */
    uint64_t down_since_ms;
    uint64_t retry_at_ms; /**< redis_conn_try: no new attempt before this */
    int probe_quiet; /**< sink: ask at connect whether batches can be confirmed quietly */
    int quiet_ok;    /**< ... this connection answered CLIENT REPLY ON and INFO stats has
                          total_error_replies */
} redis_conn;

void redis_conn_init(redis_conn *rc, const redis_cfg *cfg, trib_ctx *ctx, const trib_host *host);
/**
 * One connection attempt (connect, AUTH, SELECT, PING).  TRIB_OK; TRIB_RETRY
 * on a transient failure (refused, timeout, LOADING); TRIB_ERR on a
 * configuration error (bad password, bad db).  err gets the reason.
 */
int redis_conn_open(redis_conn *rc, char *err, size_t errlen);
void redis_conn_close(redis_conn *rc);
/** Mark the connection broken after an I/O error (logs once, closes). */
void redis_conn_lost(redis_conn *rc, const char *what);
/**
 * Connect, retrying with exponential backoff, until connected (TRIB_OK) or
 * host->stopping() (TRIB_STOP).
 */
int redis_conn_ensure(redis_conn *rc);
/** One attempt; on failure log (once per outage), sleep the backoff (at most
    max_wait_ms) and return TRIB_RETRY. */
int redis_conn_try(redis_conn *rc, int max_wait_ms);
/** Sleep the current backoff (doubling it), in slices; TRIB_STOP if stopping. */
int redis_conn_backoff(redis_conn *rc, int max_ms);
/** The current backoff delay; the next one is twice as long (up to reconnect_max_ms). */
int redis_conn_backoff_next(redis_conn *rc);
/** Sleep `ms` in slices; TRIB_STOP as soon as the engine stops. */
int redis_conn_pause(redis_conn *rc, int ms);
/** Set the socket read/write timeout (ms) if it differs from the current one. */
void redis_conn_timeout(redis_conn *rc, int ms);
/** The integer value of `name:` in an INFO reply, or -1 when absent or malformed. */
long long redis_info_field(const char *s, size_t len, const char *name);
/** 1 for error replies worth retrying (LOADING, BUSY, TRYAGAIN, ...). */
int redis_reply_transient(const redisReply *r);
/** Milliseconds from a monotonic clock. */
uint64_t redis_now_ms(void);
void redis_sleep_ms(int ms);

/* ---- the instance (redis.c) ------------------------------------------------ */

typedef struct redis_inst {
    trib_ctx *ctx;
    const trib_host *host;
    redis_cfg cfg;
    int64_t maxlen;       /**< XADD MAXLEN ~ N; 0 = no trimming */
    char *group_id;       /**< default consumer group */
    char *consumer_name;  /**< consumer name inside the group */
    int read_count;       /**< COUNT per read */
    pthread_mutex_t lock; /**< guards sink (send/flush/produce) and wbuf */
    redis_conn sink;
    char *wbuf;           /**< sink: RESP framing and small arguments, not yet written */
    size_t wcap;
    struct redis_seg *segs; /**< sink: what to write, in order: wbuf ranges and record data */
    size_t nseg, segcap;
    size_t wmark;         /**< wbuf bytes up to here are covered by segs */
    size_t sidx, sskip;   /**< sink: next to write is segs[sidx] from byte sskip */
    size_t unsent;        /**< sink: bytes in segs not yet written */
    /* sink: records given to send() and not acknowledged, oldest first (a
       ring); the first nfmt are formatted and wait for their replies */
    trib_record **fl;
    size_t fl_cap, fl_head, fl_len, nfmt;
    int retry_pause;      /**< a transient error reply: back off before resending */
    uint64_t resend_at_ms; /**< ... until then (0: not yet set) */
    uint64_t idle_since;  /**< last progress while replies were awaited */
    /* sink: how the formatted records are confirmed, oldest first (a ring):
       each unit is a run of records with a reply per XADD, or a quiet group
       (CLIENT REPLY OFF ... ON, confirmed by INFO stats; see redis_sink.c) */
    struct redis_unit *units;
    size_t u_cap, u_head, u_len;
    int u_step;           /**< replies read of the oldest quiet group */
    int chain;            /**< the last unit formatted is a quiet group (its INFO is the
                               next group's starting point) */
    long long err_base;   /**< Redis' total_error_replies before the group being confirmed */
    int confirm_each;     /**< option confirm: each */
    int quiet_off;        /**< quiet groups were given up on (an error during one) */
} redis_inst;

/* ---- redis_sink.c --------------------------------------------------------- */
int redis_sink_send(void *inst, trib_record **recs, size_t n);
int redis_sink_flush(void *inst, int timeout_ms);
int redis_sink_drain(void *inst, int timeout_ms);
/** Ack TRIB_STOP whatever is still in flight (destroy). */
void redis_sink_abandon(redis_inst *ri);
int redis_produce(void *inst, const trib_record *rec, int timeout_ms);

/* ---- redis_consumer.c ----------------------------------------------------- */
void *redis_consumer_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                          size_t errlen);
int redis_consumer_poll(void *consumer, int timeout_ms, trib_record **out);
int redis_consumer_commit(void *consumer, const trib_record *rec);
void redis_consumer_close(void *consumer);

/* ---- stream IDs (redis_consumer.c) ---------------------------------------- */
/** Parse "ms-seq" (or "ms").  0 on success. */
int redis_id_parse(const char *s, uint64_t *ms, uint64_t *seq);
/** <0, 0, >0 like strcmp, numerically. */
int redis_id_cmp(const char *a, const char *b);

#endif /* TRIB_REDIS_H */
