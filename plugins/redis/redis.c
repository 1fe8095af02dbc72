/*
 * plugins/redis/redis.c — the `redis` plugin: a Redis Streams sink, and the
 * consumer that reads those streams back (for the trainer).
 *
 * This file holds the descriptor, the option table and the instance
 * lifecycle.  The sink is in redis_sink.c, the consumer in redis_consumer.c
 * and redis_poll.c, connections in redis_conn.c, URL parsing in redis_url.c.
 *
 * The instance keeps no global state: every setting and connection lives in
 * the redis_inst created here, so several instances can coexist.
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const trib_option redis_options[] = {
    {"url", TRIB_OPT_STRING, NULL, 1, NULL,
     "redis://[user:password@]host:port/db (password may be percent-encoded or ${VAR})", 1},
    {"password", TRIB_OPT_STRING, NULL, 0, NULL,
     "password for AUTH (overrides one given in the url)", 1},
    {"maxlen", TRIB_OPT_INT, "0", 0, NULL,
     "trim each stream to about this many entries (XADD MAXLEN ~ N); 0 = never trim", 0},
    {"confirm", TRIB_OPT_ENUM, "batch", 0, "batch|each",
     "batch: a batch's XADDs are sent with replies off and confirmed together by Redis' error "
     "counter (falls back to each when the server cannot); each: a reply per XADD",
     0},
    {"connect_timeout_ms", TRIB_OPT_INT, "5000", 0, NULL, "timeout for connecting to Redis", 0},
    {"command_timeout_ms", TRIB_OPT_INT, "10000", 0, NULL,
     "timeout for one command's reply (socket timeout)", 0},
    {"reconnect_max_ms", TRIB_OPT_INT, "5000", 0, NULL,
     "longest wait between reconnect attempts (exponential backoff from 100 ms)", 0},
    {"group_id", TRIB_OPT_STRING, "tributary", 0, NULL,
     "consumer group used when the reader does not name one", 0},
    {"consumer_name", TRIB_OPT_STRING, "tributary", 0, NULL,
     "consumer name inside the group (keep it stable to recover pending entries)", 0},
    {"read_count", TRIB_OPT_INT, "500", 0, NULL, "entries fetched per read (COUNT)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

/* Clamp an integer option into [lo, hi]; TRIB_ERR with a message if outside. */
static int int_opt(const trib_host *h, const trib_opts *o, const char *name, int64_t lo, int64_t hi,
                   int64_t *out, char *err, size_t errlen)
{
    int64_t v = h->opt_int(o, name);
    if (v < lo || v > hi) {
        snprintf(err, errlen, "option '%s' must be between %lld and %lld (got %lld)", name,
                 (long long)lo, (long long)hi, (long long)v);
        return TRIB_ERR;
    }
    *out = v;
    return TRIB_OK;
}

static int read_int_opts(redis_inst *ri, const trib_opts *o, char *err, size_t errlen)
{
    const trib_host *h = ri->host;
    int64_t ct, cmd, rmax, count;
    if (int_opt(h, o, "maxlen", 0, INT64_MAX, &ri->maxlen, err, errlen) != TRIB_OK ||
        int_opt(h, o, "connect_timeout_ms", 1, 3600000, &ct, err, errlen) != TRIB_OK ||
        int_opt(h, o, "command_timeout_ms", 1, 3600000, &cmd, err, errlen) != TRIB_OK ||
        int_opt(h, o, "reconnect_max_ms", 1, 3600000, &rmax, err, errlen) != TRIB_OK ||
        int_opt(h, o, "read_count", 1, 100000, &count, err, errlen) != TRIB_OK)
        return TRIB_ERR;
    ri->cfg.connect_timeout_ms = (int)ct;
    ri->cfg.command_timeout_ms = (int)cmd;
    ri->cfg.reconnect_max_ms = (int)rmax;
    ri->read_count = (int)count;
    return TRIB_OK;
}

static int read_url(redis_inst *ri, const trib_opts *o, char *err, size_t errlen)
{
    const trib_host *h = ri->host;
    if (redis_url_parse(h->opt_str(o, "url"), &ri->cfg.url, err, errlen) != TRIB_OK)
        return TRIB_ERR;
    const char *pw = h->opt_str(o, "password");
    if (pw && *pw) {
        if (ri->cfg.url.password) {
            memset(ri->cfg.url.password, 0, strlen(ri->cfg.url.password));
            free(ri->cfg.url.password);
        }
        if (!(ri->cfg.url.password = strdup(pw))) {
            snprintf(err, errlen, "out of memory");
            return TRIB_ERR;
        }
    }
    redis_url_redacted(&ri->cfg.url, ri->cfg.where, sizeof ri->cfg.where);
    return TRIB_OK;
}

static void redis_destroy(void *inst)
{
    redis_inst *ri = inst;
    if (!ri)
        return;
    redis_sink_abandon(ri);
    redis_conn_close(&ri->sink);
    free(ri->wbuf);
    free(ri->segs);
    free(ri->units);
    redis_url_free(&ri->cfg.url);
    free(ri->group_id);
    free(ri->consumer_name);
    pthread_mutex_destroy(&ri->lock);
    free(ri);
}

static int redis_create(trib_ctx *ctx, const trib_host *host, const trib_opts *opts, void **inst,
                        char *err, size_t errlen)
{
    redis_inst *ri = calloc(1, sizeof *ri);
    if (!ri) {
        snprintf(err, errlen, "out of memory");
        return TRIB_ERR;
    }
    ri->ctx = ctx;
    ri->host = host;
    pthread_mutex_init(&ri->lock, NULL);
    const char *g = host->opt_str(opts, "group_id");
    const char *c = host->opt_str(opts, "consumer_name");
    int ret = read_int_opts(ri, opts, err, errlen);
    if (ret == TRIB_OK)
        ret = read_url(ri, opts, err, errlen);
    if (ret == TRIB_OK) {
        ri->group_id = strdup(g && *g ? g : "tributary");
        ri->consumer_name = strdup(c && *c ? c : "tributary");
        if (!ri->group_id || !ri->consumer_name) {
            snprintf(err, errlen, "out of memory");
            ret = TRIB_ERR;
        }
    }
    if (ret != TRIB_OK) {
        redis_destroy(ri);
        return TRIB_ERR;
    }
    redis_conn_init(&ri->sink, &ri->cfg, ctx, host);
    const char *confirm = host->opt_str(opts, "confirm");
    ri->confirm_each = confirm && strcmp(confirm, "each") == 0;
    ri->sink.probe_quiet = !ri->confirm_each;
    *inst = ri;
    return TRIB_OK;
}

/*
 * Connect early so that a wrong password or database fails `tributary run`
 * at once.  Redis merely being down is not an error: send() waits for it.
 */
static int redis_start(void *inst, char *err, size_t errlen)
{
    redis_inst *ri = inst;
    pthread_mutex_lock(&ri->lock);
    int ret = redis_conn_open(&ri->sink, err, errlen);
    pthread_mutex_unlock(&ri->lock);
    if (ret == TRIB_ERR)
        return TRIB_ERR;
    if (ret == TRIB_RETRY)
        ri->host->log(ri->ctx, TRIB_LOG_WARN, "%s; will keep retrying", err);
    else if (ri->sink.probe_quiet && !ri->sink.quiet_ok)
        ri->host->log(ri->ctx, TRIB_LOG_INFO,
                      "connected to %s; it refused CLIENT REPLY or has no total_error_replies in "
                      "INFO stats, so every XADD gets its own reply (confirm: batch needs both)",
                      ri->cfg.where);
    else
        ri->host->log(ri->ctx, TRIB_LOG_INFO, "connected to %s", ri->cfg.where);
    return TRIB_OK;
}

static const trib_sink_ops redis_sink_ops = {
    .send = redis_sink_send,
    .flush = redis_sink_flush,
    .drain = redis_sink_drain,
};

static const trib_consumer_ops redis_consumer_ops = {
    .open = redis_consumer_open,
    .poll = redis_consumer_poll,
    .commit = redis_consumer_commit,
    .close = redis_consumer_close,
    .produce = redis_produce,
};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    .name = "redis",
    .version = "0.1.0",
    .description = "Redis Streams sink (pipelined XADD) and consumer (XREADGROUP/XRANGE)",
    .roles = TRIB_ROLE_SINK | TRIB_ROLE_CONSUMER,
    .options = redis_options,
    .create = redis_create,
    .start = redis_start,
    .destroy = redis_destroy,
    .sink = &redis_sink_ops,
    .consumer = &redis_consumer_ops,
};
