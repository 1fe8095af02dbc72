/*
 * plugins/redis/redis_conn.c — one blocking hiredis connection and its
 * reconnect policy.
 *
 * hiredis 0.14 (Debian 12) has no redisConnectWithOptions and speaks RESP2
 * only, so a connection is: redisConnectWithTimeout, socket timeouts via
 * redisSetTimeout, then AUTH [user] password, SELECT db and a PING (which
 * also tells us whether Redis is still loading its data set).
 *
 * After a failure the connection is closed and reopened with exponential
 * backoff (100 ms doubling up to reconnect_max_ms).  Failures are logged once
 * per outage, and the recovery once, so a long outage does not flood the log.
 */
#include "redis.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BACKOFF_START_MS 100
#define SLEEP_SLICE_MS 50

uint64_t redis_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void redis_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

void redis_conn_init(redis_conn *rc, const redis_cfg *cfg, trib_ctx *ctx, const trib_host *host)
{
    memset(rc, 0, sizeof *rc);
    rc->cfg = cfg;
    rc->ctx = ctx;
    rc->host = host;
    rc->backoff_ms = BACKOFF_START_MS;
}

void redis_conn_close(redis_conn *rc)
{
    if (rc->c)
        redisFree(rc->c);
    rc->c = NULL;
    rc->timeout_ms = 0;
}

void redis_conn_timeout(redis_conn *rc, int ms)
{
    if (!rc->c || ms <= 0 || ms == rc->timeout_ms)
        return;
    if (redisSetTimeout(rc->c, ms_to_tv(ms)) == REDIS_OK)
        rc->timeout_ms = ms;
}

int redis_reply_transient(const redisReply *r)
{
    static const char *const codes[] = {"LOADING",    "BUSY",        "TRYAGAIN",
                                        "MASTERDOWN", "CLUSTERDOWN", NULL};
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return 0;
    for (int i = 0; codes[i]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(r->str, codes[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == '\0'))
            return 1;
    }
    return 0;
}

/* Run one handshake command; TRIB_OK, TRIB_RETRY or TRIB_ERR with err filled. */
static int handshake_cmd(redis_conn *rc, int argc, const char **argv, const char *what, char *err,
                         size_t errlen)
{
    redisReply *r = redisCommandArgv(rc->c, argc, argv, NULL);
    if (!r) {
        snprintf(err, errlen, "%s to %s: %s", what, rc->cfg->where,
                 rc->c->errstr[0] ? rc->c->errstr : "I/O error");
        return TRIB_RETRY;
    }
    int ret = TRIB_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis' AUTH errors never echo the password, so r->str is safe to show */
        snprintf(err, errlen, "%s to %s failed: %s", what, rc->cfg->where, r->str);
        ret = redis_reply_transient(r) ? TRIB_RETRY : TRIB_ERR;
    }
    freeReplyObject(r);
    return ret;
}

long long redis_info_field(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n < len; i++) {
        if ((i == 0 || s[i - 1] == '\n') && memcmp(s + i, name, n) == 0 && s[i + n] == ':') {
            long long v = 0;
            size_t j = i + n + 1, d0 = j;
            while (j < len && s[j] >= '0' && s[j] <= '9' && v < LLONG_MAX / 10)
                v = v * 10 + (s[j++] - '0');
            return j > d0 && (j == len || s[j] == '\r' || s[j] == '\n') ? v : -1;
        }
    }
    return -1;
}

/*
 * Can this server confirm a batch quietly?  It must take CLIENT REPLY (some
 * proxies and look-alikes do not) and report total_error_replies in INFO
 * stats (Redis 6.2 on).  One round trip; a "no" is not an error.
 */
static int probe_quiet(redis_conn *rc, char *err, size_t errlen)
{
    void *on = NULL, *info = NULL;
    rc->quiet_ok = 0;
    if (redisAppendCommand(rc->c, "CLIENT REPLY ON") != REDIS_OK ||
        redisAppendCommand(rc->c, "INFO stats") != REDIS_OK ||
        redisGetReply(rc->c, &on) != REDIS_OK || redisGetReply(rc->c, &info) != REDIS_OK) {
        if (on)
            freeReplyObject(on);
        snprintf(err, errlen, "CLIENT REPLY and INFO to %s: %s", rc->cfg->where,
                 rc->c->errstr[0] ? rc->c->errstr : "I/O error");
        return TRIB_RETRY;
    }
    const redisReply *o = on, *i = info;
    rc->quiet_ok = o->type == REDIS_REPLY_STATUS && i->type == REDIS_REPLY_STRING &&
                   redis_info_field(i->str, i->len, "total_error_replies") >= 0;
    freeReplyObject(on);
    freeReplyObject(info);
    return TRIB_OK;
}

static int handshake(redis_conn *rc, char *err, size_t errlen)
{
    const redis_url *u = &rc->cfg->url;
    int ret = TRIB_OK;
    if (u->password) {
        const char *argv[3] = {"AUTH", u->user ? u->user : u->password, u->password};
        ret = handshake_cmd(rc, u->user ? 3 : 2, argv, "AUTH", err, errlen);
    }
    if (ret == TRIB_OK && u->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        ret = handshake_cmd(rc, 2, argv, "SELECT", err, errlen);
    }
    if (ret == TRIB_OK) {
        const char *argv[1] = {"PING"};
        ret = handshake_cmd(rc, 1, argv, "PING", err, errlen);
    }
    if (ret == TRIB_OK && rc->probe_quiet)
        ret = probe_quiet(rc, err, errlen);
    return ret;
}

int redis_conn_open(redis_conn *rc, char *err, size_t errlen)
{
    const redis_cfg *cfg = rc->cfg;
    redis_conn_close(rc);
    rc->c =
        redisConnectWithTimeout(cfg->url.host, cfg->url.port, ms_to_tv(cfg->connect_timeout_ms));
    if (!rc->c || rc->c->err) {
        snprintf(err, errlen, "cannot connect to %s: %s", cfg->where,
                 rc->c ? rc->c->errstr : "out of memory");
        redis_conn_close(rc);
        return TRIB_RETRY;
    }
    redis_conn_timeout(rc, cfg->command_timeout_ms);
    redisEnableKeepAlive(rc->c);
    int ret = handshake(rc, err, errlen);
    if (ret != TRIB_OK) {
        redis_conn_close(rc);
        return ret;
    }
    if (rc->down) {
        rc->host->log(rc->ctx, TRIB_LOG_INFO, "reconnected to %s after %llu ms", cfg->where,
                      (unsigned long long)(redis_now_ms() - rc->down_since_ms));
        rc->host->metric_add(rc->ctx, "reconnects", 1);
    }
    rc->down = 0;
    rc->backoff_ms = BACKOFF_START_MS;
    rc->retry_at_ms = 0;
    return TRIB_OK;
}

static void note_down(redis_conn *rc, int level, const char *msg)
{
    if (rc->down)
        return;
    rc->down = 1;
    rc->down_since_ms = redis_now_ms();
    rc->host->log(rc->ctx, level, "%s; retrying with backoff up to %d ms", msg,
                  rc->cfg->reconnect_max_ms);
}

void redis_conn_lost(redis_conn *rc, const char *what)
{
    char msg[320];
    snprintf(msg, sizeof msg, "connection to %s lost during %s: %s", rc->cfg->where, what,
             rc->c && rc->c->errstr[0] ? rc->c->errstr : "I/O error");
    redis_conn_close(rc);
    note_down(rc, TRIB_LOG_WARN, msg);
}

int redis_conn_pause(redis_conn *rc, int ms)
{
    for (int slept = 0; slept < ms; slept += SLEEP_SLICE_MS) {
        if (rc->host->stopping(rc->ctx))
            return TRIB_STOP;
        redis_sleep_ms(ms - slept < SLEEP_SLICE_MS ? ms - slept : SLEEP_SLICE_MS);
    }
    return rc->host->stopping(rc->ctx) ? TRIB_STOP : TRIB_OK;
}

int redis_conn_backoff_next(redis_conn *rc)
{
    int wait = rc->backoff_ms;
    rc->backoff_ms *= 2;
    if (rc->backoff_ms > rc->cfg->reconnect_max_ms)
        rc->backoff_ms = rc->cfg->reconnect_max_ms;
    if (rc->backoff_ms < 1)
        rc->backoff_ms = 1;
    return wait;
}

int redis_conn_backoff(redis_conn *rc, int max_ms)
{
    int wait = redis_conn_backoff_next(rc);
    if (max_ms >= 0 && wait > max_ms)
        wait = max_ms;
    return redis_conn_pause(rc, wait);
}

int redis_conn_try(redis_conn *rc, int max_wait_ms)
{
    char err[320];
    uint64_t now = redis_now_ms();
    if (rc->retry_at_ms > now) { /* still backing off from the last failed attempt */
        uint64_t wait = rc->retry_at_ms - now;
        if (max_wait_ms >= 0 && wait > (uint64_t)max_wait_ms)
            wait = (uint64_t)max_wait_ms;
        redis_sleep_ms((int)wait);
        if (redis_now_ms() < rc->retry_at_ms)
            return TRIB_RETRY;
    }
    int ret = redis_conn_open(rc, err, sizeof err);
    if (ret == TRIB_OK)
        return TRIB_OK;
    note_down(rc, ret == TRIB_ERR ? TRIB_LOG_ERROR : TRIB_LOG_WARN, err);
    /* a caller back sooner than the backoff (drain, flush, a consumer's
       short poll) waits for its end before the next attempt */
    rc->retry_at_ms = redis_now_ms() + (uint64_t)rc->backoff_ms;
    redis_conn_backoff(rc, max_wait_ms);
    return TRIB_RETRY;
}

int redis_conn_ensure(redis_conn *rc)
{
    char err[320];
    while (!rc->c) {
        int ret = redis_conn_open(rc, err, sizeof err);
        if (ret == TRIB_OK)
            break;
        /* a bad password may be fixed on the server side: keep retrying, but say it loudly */
        note_down(rc, ret == TRIB_ERR ? TRIB_LOG_ERROR : TRIB_LOG_WARN, err);
        if (redis_conn_backoff(rc, -1) == TRIB_STOP)
            return TRIB_STOP;
    }
    return TRIB_OK;
}
