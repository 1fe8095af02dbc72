/*
 * plugins/redis/redis_poll.c — the consumer's poll(): fetch a page of
 * entries (XREADGROUP, XREAD or XRANGE, see redis_consumer.c), buffer the
 * reply, and hand out one record per call.
 *
 * Blocking reads use BLOCK with the time left of poll()'s timeout (never
 * BLOCK 0, which would wait forever), and a socket timeout of that plus
 * command_timeout_ms.  A lost connection is not fatal: poll() keeps
 * reconnecting with backoff until its timeout and then returns 0.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_consumer.h"

static void drop_batch(redis_consumer *cs)
{
    if (cs->batch)
        freeReplyObject(cs->batch);
    cs->batch = NULL;
    cs->entries = NULL;
    cs->next = 0;
}

static int entry_ok(const redisReply *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING &&
           (e->element[1]->type == REDIS_REPLY_ARRAY || e->element[1]->type == REDIS_REPLY_NIL);
}

/* Next buffered entry as a record: 1, 0 when the buffer is empty, TRIB_ERR. */
static int next_buffered(redis_consumer *cs, trib_record **out)
{
    while (cs->entries && cs->next < cs->entries->elements) {
        const redisReply *e = cs->entries->element[cs->next++];
        if (!entry_ok(e))
            continue;
        const char *id = e->element[0]->str;
        if (cs->mode == RC_GROUP) {
            if (cs->delivered_max[0] && redis_id_cmp(id, cs->delivered_max) <= 0)
                continue; /* re-read pending entry we already returned */
            snprintf(cs->delivered_max, RC_ID_LEN, "%s", id);
            if (rc_track(cs, id) != TRIB_OK)
                return TRIB_ERR;
            if (e->element[1]->type == REDIS_REPLY_NIL)
                continue; /* deleted (trimmed) while pending: acked with the next commit */
        } else {
            snprintf(cs->last_id, RC_ID_LEN, "%s", id);
            if (e->element[1]->type == REDIS_REPLY_NIL)
                continue;
        }
        if (!(*out = rc_entry_record(cs, e)))
            return TRIB_ERR;
        return 1;
    }
    drop_batch(cs);
    return 0;
}

/* Keep `r` and point at its entries; XREAD-style replies are [[stream, entries]]. */
static void keep_batch(redis_consumer *cs, redisReply *r, int nested)
{
    redisReply *entries = r;
    if (nested) {
        entries = NULL;
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
            r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
            entries = r->element[0]->element[1];
    }
    if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
        freeReplyObject(r);
        return;
    }
    cs->batch = r;
    cs->entries = entries;
    cs->next = 0;
}

static int fetch_group(redis_consumer *cs, int left_ms)
{
    char count[24], block[24];
    const char *argv[16];
    int argc = 0;
    snprintf(count, sizeof count, "%d", cs->ri->read_count);
    snprintf(block, sizeof block, "%d", left_ms);
    argv[argc++] = "XREADGROUP", argv[argc++] = "GROUP";
    argv[argc++] = cs->group, argv[argc++] = cs->consumer;
    argv[argc++] = "COUNT", argv[argc++] = count;
    int blocking = !cs->read_pending && left_ms > 0;
    if (blocking)
        argv[argc++] = "BLOCK", argv[argc++] = block;
    if (cs->noack)
        argv[argc++] = "NOACK";
    argv[argc++] = "STREAMS", argv[argc++] = cs->topic;
    argv[argc++] = cs->read_pending ? cs->pending_id : ">";
    redis_conn_timeout(&cs->conn, (blocking ? left_ms : 0) + cs->ri->cfg.command_timeout_ms);
    redisReply *r = rc_command(cs, argc, argv, "XREADGROUP");
    if (!r)
        return TRIB_RETRY;
    if (r->type == REDIS_REPLY_ERROR) {
        char err[320];
        int nogroup = strncmp(r->str, "NOGROUP", 7) == 0, transient = redis_reply_transient(r);
        if (!nogroup)
            cs->ri->host->log(cs->ri->ctx, transient ? TRIB_LOG_WARN : TRIB_LOG_ERROR,
                              "XREADGROUP on stream '%s': %s", cs->topic, r->str);
        freeReplyObject(r);
        if (nogroup) { /* Redis lost the group (restart without persistence) */
            int ret = rc_create_group(cs, err, sizeof err);
            if (ret == TRIB_ERR)
                cs->ri->host->log(cs->ri->ctx, TRIB_LOG_ERROR, "%s", err);
            return ret;
        }
        return transient ? TRIB_RETRY : TRIB_ERR;
    }
    if (cs->read_pending) {
        /* our pending list is re-read page by page; an empty page ends it */
        const redisReply *p =
            r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0] : NULL;
        const redisReply *es = p && p->elements == 2 ? p->element[1] : NULL;
        if (!es || es->type != REDIS_REPLY_ARRAY || es->elements == 0)
            cs->read_pending = 0;
        else if (es->element[es->elements - 1]->type == REDIS_REPLY_ARRAY &&
                 es->element[es->elements - 1]->elements == 2)
            snprintf(cs->pending_id, RC_ID_LEN, "%s",
                     es->element[es->elements - 1]->element[0]->str);
    }
    keep_batch(cs, r, 1);
    return TRIB_OK;
}

static int fetch_xread(redis_consumer *cs, int left_ms)
{
    char count[24], block[24];
    snprintf(count, sizeof count, "%d", cs->ri->read_count);
    snprintf(block, sizeof block, "%d", left_ms);
    const char *argv[] = {"XREAD", "COUNT",   count,     "BLOCK",
                          block,   "STREAMS", cs->topic, cs->last_id};
    int blocking = left_ms > 0;
    redis_conn_timeout(&cs->conn, (blocking ? left_ms : 0) + cs->ri->cfg.command_timeout_ms);
    const char *argv_nb[] = {"XREAD", "COUNT", count, "STREAMS", cs->topic, cs->last_id};
    redisReply *r =
        blocking ? rc_command(cs, 8, argv, "XREAD") : rc_command(cs, 6, argv_nb, "XREAD");
    if (!r)
        return TRIB_RETRY;
    if (r->type == REDIS_REPLY_ERROR) {
        cs->ri->host->log(cs->ri->ctx, TRIB_LOG_ERROR, "XREAD on stream '%s': %s", cs->topic,
                          r->str);
        int ret = redis_reply_transient(r) ? TRIB_RETRY : TRIB_ERR;
        freeReplyObject(r);
        return ret;
    }
    keep_batch(cs, r, 1);
    return TRIB_OK;
}

static int fetch_range(redis_consumer *cs)
{
    char count[24], start[RC_ID_LEN];
    snprintf(count, sizeof count, "%d", cs->ri->read_count);
    if (!cs->started) {
        snprintf(start, sizeof start, "-");
    } else {
        uint64_t ms = 0, seq = 0;
        redis_id_parse(cs->last_id, &ms, &seq);
        if (seq == UINT64_MAX)
            ms++, seq = 0;
        else
            seq++;
        snprintf(start, sizeof start, "%" PRIu64 "-%" PRIu64, ms, seq);
    }
    const char *argv[] = {"XRANGE", cs->topic, start, cs->end_id, "COUNT", count};
    redis_conn_timeout(&cs->conn, cs->ri->cfg.command_timeout_ms);
    redisReply *r = rc_command(cs, 6, argv, "XRANGE");
    if (!r)
        return TRIB_RETRY;
    if (r->type == REDIS_REPLY_ERROR) {
        cs->ri->host->log(cs->ri->ctx, TRIB_LOG_ERROR, "XRANGE on stream '%s': %s", cs->topic,
                          r->str);
        int ret = redis_reply_transient(r) ? TRIB_RETRY : TRIB_ERR;
        freeReplyObject(r);
        return ret;
    }
    cs->started = 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        cs->eof = 1;
    keep_batch(cs, r, 0);
    return TRIB_OK;
}

static int fetch(redis_consumer *cs, int left_ms)
{
    switch (cs->mode) {
    case RC_GROUP:
        return fetch_group(cs, left_ms);
    case RC_XREAD:
        return fetch_xread(cs, left_ms);
    default:
        return fetch_range(cs);
    }
}

/* Reconnect (one attempt, with backoff bounded by left_ms). */
static int reconnect(redis_consumer *cs, int left_ms)
{
    if (redis_conn_try(&cs->conn, left_ms) != TRIB_OK)
        return TRIB_RETRY;
    if (cs->mode == RC_GROUP && !cs->noack) {
        cs->read_pending = 1; /* replies lost with the connection are in our PEL */
        snprintf(cs->pending_id, RC_ID_LEN, "0");
    }
    return TRIB_OK;
}

int redis_consumer_poll(void *consumer, int timeout_ms, trib_record **out)
{
    redis_consumer *cs = consumer;
    uint64_t deadline = redis_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *out = NULL;
    for (;;) {
        int ret = next_buffered(cs, out);
        if (ret != 0)
            return ret;
        if (cs->eof)
            return TRIB_EOF;
        uint64_t now = redis_now_ms();
        int left = now < deadline ? (int)(deadline - now) : 0;
        if (!cs->conn.c && reconnect(cs, left) != TRIB_OK) {
            if (redis_now_ms() >= deadline)
                return 0;
            continue;
        }
        int pending_before = cs->read_pending;
        ret = fetch(cs, left);
        if (ret == TRIB_ERR)
            return TRIB_ERR;
        if (ret == TRIB_RETRY && cs->conn.c && redis_conn_backoff(&cs->conn, left) == TRIB_STOP)
            return 0;
        if (!cs->batch && !cs->eof && !pending_before && redis_now_ms() >= deadline)
            return 0;
    }
}
