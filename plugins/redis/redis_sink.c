/*
 * plugins/redis/redis_sink.c — the sink: each batch becomes pipelined XADDs.
 *
 * One entry per record in the stream named by the record's topic, with the
 * fields `key` and `value` (binary-safe, omitted when not set), `op`, `lsn`
 * (the change's LSN as Postgres prints it, "16/B374D848"), `commit_lsn`
 * (its transaction's commit LSN, when known), `snapshot` ("true", or "last"
 * for the snapshot's last row) and the record's headers.
 *
 * send() is synchronous: it writes every XADD of the batch, then reads the
 * replies in order and acknowledges each record (an ID: TRIB_OK; an error
 * reply: TRIB_ERR naming the stream and Redis' message).  When the connection
 * breaks, the records whose replies were not read are resent on a new
 * connection (so only those can be duplicated); while Redis is unreachable
 * send() blocks, which back-pressures the engine, until it comes back or the
 * engine stops (remaining records are then acked TRIB_STOP and replayed by
 * the source on restart).  Since send() acks everything before it returns,
 * flush() has nothing to wait for.
 */
#include "redis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One XADD's arguments; string storage for the numbers lives here. */
typedef struct xadd_cmd {
    int argc;
    const char **argv;
    size_t *argvlen;
    char maxlen[24];
    char lsn[24];
    char commit_lsn[24];
} xadd_cmd;

static int reserved_field(const char *name)
{
    static const char *const names[] = {"key",        "value",    "op", "lsn",
                                        "commit_lsn", "snapshot", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static void arg(xadd_cmd *c, const char *s, size_t len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc] = len;
    c->argc++;
}

static void arg_str(xadd_cmd *c, const char *s)
{
    arg(c, s, strlen(s));
}

static void pair(xadd_cmd *c, const char *name, const char *v, size_t len)
{
    arg_str(c, name);
    arg(c, v ? v : "", v ? len : 0);
}

static void pair_str(xadd_cmd *c, const char *name, const char *v)
{
    pair(c, name, v, strlen(v));
}

static void xadd_free(xadd_cmd *c)
{
    free(c->argv);
    free(c->argvlen);
    c->argv = NULL;
    c->argvlen = NULL;
}

/* An LSN as Postgres prints it: "16/B374D848". */
static void lsn_str(uint64_t lsn, char *buf, size_t len)
{
    snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

/* Build XADD <topic> [MAXLEN ~ N] * field value ...  TRIB_ERR on ENOMEM. */
static int xadd_build(const redis_inst *ri, const trib_record *rec, xadd_cmd *c)
{
    size_t max = 6 + 2 * (6 + rec->nheaders);
    memset(c, 0, sizeof *c);
    c->argv = calloc(max, sizeof *c->argv);
    c->argvlen = calloc(max, sizeof *c->argvlen);
    if (!c->argv || !c->argvlen) {
        xadd_free(c);
        return TRIB_ERR;
    }
    arg_str(c, "XADD");
    arg_str(c, rec->topic);
    if (ri->maxlen > 0) {
        snprintf(c->maxlen, sizeof c->maxlen, "%" PRId64, ri->maxlen);
        arg_str(c, "MAXLEN");
        arg_str(c, "~");
        arg_str(c, c->maxlen);
    }
    arg_str(c, "*");
    int first_field = c->argc;
    if (rec->key.set)
        pair(c, "key", rec->key.data, rec->key.len);
    if (rec->value.set)
        pair(c, "value", rec->value.data, rec->value.len);
    if (rec->op) {
        pair(c, "op", &rec->op, 1);
        lsn_str(rec->src.lsn, c->lsn, sizeof c->lsn);
        pair_str(c, "lsn", c->lsn);
    }
    if (rec->op && rec->src.commit_lsn) {
        lsn_str(rec->src.commit_lsn, c->commit_lsn, sizeof c->commit_lsn);
        pair_str(c, "commit_lsn", c->commit_lsn);
    }
    if (rec->src.snapshot)
        pair_str(c, "snapshot", rec->src.snapshot == 2 ? "last" : "true");
    for (size_t i = 0; i < rec->nheaders; i++) {
        const trib_header *h = &rec->headers[i];
        if (!h->name || reserved_field(h->name))
            continue;
        pair(c, h->name, h->value, h->len);
    }
    if (c->argc == first_field) /* XADD needs at least one field */
        pair(c, "value", "", 0);
    return TRIB_OK;
}

/* Append one XADD to the connection's output buffer. */
static int xadd_append(redis_inst *ri, const trib_record *rec)
{
    xadd_cmd c;
    if (xadd_build(ri, rec, &c) != TRIB_OK)
        return TRIB_ERR;
    int ret = redisAppendCommandArgv(ri->sink.c, c.argc, c.argv, c.argvlen);
    xadd_free(&c);
    return ret == REDIS_OK ? TRIB_OK : TRIB_ERR;
}

static void ack_err(redis_inst *ri, trib_record *rec, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "redis: XADD to stream '%s' at %s failed: %s",
             rec->topic ? rec->topic : "(none)", ri->cfg.where, what);
    ri->host->ack(ri->ctx, rec, TRIB_ERR, msg);
}

/*
 * Handle one reply.  Returns 1 when the record is finished (acked), 0 when it
 * must be retried (transient error reply).
 */
static int handle_reply(redis_inst *ri, trib_record *rec, redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING) {
        ri->host->ack(ri->ctx, rec, TRIB_OK, NULL);
        return 1;
    }
    if (redis_reply_transient(r)) {
        ri->host->log(ri->ctx, TRIB_LOG_WARN, "XADD to stream '%s': %s; will retry", rec->topic,
                      r->str);
        return 0;
    }
    ack_err(ri, rec, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
    return 1;
}

/*
 * One round: pipeline XADDs for todo[0..n), read the replies.  Compacts
 * todo to the records still to send and returns their count.
 */
static size_t xadd_round(redis_inst *ri, trib_record **recs, size_t *todo, size_t n)
{
    size_t appended = 0;
    while (appended < n && xadd_append(ri, recs[todo[appended]]) == TRIB_OK)
        appended++;
    for (size_t i = appended; i < n; i++) /* only on ENOMEM */
        ack_err(ri, recs[todo[i]], "out of memory building the command");

    size_t keep = 0, i = 0;
    for (; i < appended; i++) {
        void *reply = NULL;
        if (redisGetReply(ri->sink.c, &reply) != REDIS_OK || !reply) {
            redis_conn_lost(&ri->sink, "XADD");
            break;
        }
        if (!handle_reply(ri, recs[todo[i]], reply))
            todo[keep++] = todo[i];
        freeReplyObject(reply);
    }
    for (; i < appended; i++) /* replies never read: resend */
        todo[keep++] = todo[i];
    return keep;
}

static void ack_all(redis_inst *ri, trib_record **recs, const size_t *todo, size_t n, int status,
                    const char *msg)
{
    for (size_t i = 0; i < n; i++)
        ri->host->ack(ri->ctx, recs[todo[i]], status, msg);
}

int redis_sink_send(void *inst, trib_record **recs, size_t n)
{
    redis_inst *ri = inst;
    size_t *todo = malloc((n ? n : 1) * sizeof *todo), ntodo = 0;
    if (!todo) {
        for (size_t i = 0; i < n; i++)
            ack_err(ri, recs[i], "out of memory");
        return TRIB_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if (!recs[i]->topic || !recs[i]->topic[0])
            ack_err(ri, recs[i], "the record has no topic (stream name)");
        else
            todo[ntodo++] = i;
    }
    pthread_mutex_lock(&ri->lock);
    while (ntodo > 0) {
        if (redis_conn_ensure(&ri->sink) != TRIB_OK)
            break;
        redis_conn_timeout(&ri->sink, ri->cfg.command_timeout_ms);
        ntodo = xadd_round(ri, recs, todo, ntodo);
        if (ntodo > 0 && ri->sink.c && redis_conn_backoff(&ri->sink, -1) == TRIB_STOP)
            break; /* transient error replies, and we are asked to stop */
    }
    pthread_mutex_unlock(&ri->lock);
    if (ntodo > 0) {
        ri->host->log(ri->ctx, TRIB_LOG_WARN,
                      "stopping while %s is unavailable: %zu records not delivered "
                      "(they will be replayed on restart)",
                      ri->cfg.where, ntodo);
        ack_all(ri, recs, todo, ntodo, TRIB_STOP, "redis unavailable while stopping");
    }
    ri->host->metric_add(ri->ctx, "batches", 1);
    free(todo);
    return TRIB_OK;
}

int redis_sink_flush(void *inst, int timeout_ms)
{
    (void)inst;
    (void)timeout_ms;
    return TRIB_OK; /* send() acknowledges every record before it returns */
}

/* XADD one record now; TRIB_OK, TRIB_RETRY (Redis unreachable) or TRIB_ERR. */
int redis_produce(void *inst, const trib_record *rec, int timeout_ms)
{
    redis_inst *ri = inst;
    if (!rec->topic || !rec->topic[0]) {
        ri->host->log(ri->ctx, TRIB_LOG_ERROR, "produce: the record has no topic");
        return TRIB_ERR;
    }
    xadd_cmd c;
    if (xadd_build(ri, rec, &c) != TRIB_OK)
        return TRIB_ERR;
    pthread_mutex_lock(&ri->lock);
    uint64_t deadline = redis_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int ret = TRIB_RETRY;
    for (;;) {
        char err[320];
        if (!ri->sink.c && redis_conn_open(&ri->sink, err, sizeof err) != TRIB_OK)
            ri->host->log(ri->ctx, TRIB_LOG_WARN, "produce: %s", err);
        if (ri->sink.c) {
            redis_conn_timeout(&ri->sink, ri->cfg.command_timeout_ms);
            redisReply *r = redisCommandArgv(ri->sink.c, c.argc, c.argv, c.argvlen);
            if (!r) {
                redis_conn_lost(&ri->sink, "XADD");
            } else {
                ret = r->type == REDIS_REPLY_STRING ? TRIB_OK
                      : redis_reply_transient(r)    ? TRIB_RETRY
                                                    : TRIB_ERR;
                if (ret == TRIB_ERR)
                    ri->host->log(ri->ctx, TRIB_LOG_ERROR, "produce: XADD to stream '%s': %s",
                                  rec->topic, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
                freeReplyObject(r);
            }
        }
        if (ret != TRIB_RETRY || redis_now_ms() >= deadline)
            break;
        int left = (int)(deadline - redis_now_ms());
        if (redis_conn_backoff(&ri->sink, left) == TRIB_STOP)
            break;
    }
    pthread_mutex_unlock(&ri->lock);
    xadd_free(&c);
    return ret;
}
