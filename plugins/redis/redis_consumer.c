/*
 * plugins/redis/redis_consumer.c — reading streams back.
 *
 * Three modes, chosen at open():
 *   range  (bounded)   XRANGE pages from the start up to the last entry ID
 *                       that existed at open(); then poll() returns TRIB_EOF.
 *   xread  (no group_id given, from_beginning)
 *                       XREAD BLOCK from 0, remembering the last ID read.
 *   group  (otherwise)  XREADGROUP GROUP g consumer BLOCK ms COUNT n STREAMS
 *                       topic >, with g = the given group_id or the `group_id`
 *                       option.  The group is created (MKSTREAM) at 0 when
 *                       from_beginning, else at $; BUSYGROUP is fine.  This
 *                       consumer's pending entries (delivered, never XACKed,
 *                       e.g. before a crash) are read first.  commit(rec)
 *                       XACKs rec and every earlier entry delivered to us;
 *                       without o->commit entries are read with NOACK.
 *
 * Entries become records: topic = stream, key/value from the `key`/`value`
 * fields (byte-exact), op from `op`, src.lsn / src.commit_lsn from `lsn` /
 * `commit_lsn`, msg_id = entry ID,
 * and every field other than key/value as a header.  Each consumer has its
 * own connection; while Redis is unreachable poll() returns 0 (timeout) and
 * keeps reconnecting with backoff.
 */
#include "redis.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_consumer.h"

int redis_id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *end;
    if (!s || !*s)
        return -1;
    *ms = strtoull(s, &end, 10);
    *seq = 0;
    if (*end == '-')
        *seq = strtoull(end + 1, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int redis_id_cmp(const char *a, const char *b)
{
    uint64_t am = 0, as = 0, bm = 0, bs = 0;
    redis_id_parse(a, &am, &as);
    redis_id_parse(b, &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

static void set_id(char *dst, const char *src)
{
    snprintf(dst, RC_ID_LEN, "%s", src);
}

/* Send one command; the reply, or NULL with the connection closed (I/O error). */
redisReply *rc_command(redis_consumer *cs, int argc, const char **argv, const char *what)
{
    redisReply *r = redisCommandArgv(cs->conn.c, argc, argv, NULL);
    if (!r)
        redis_conn_lost(&cs->conn, what);
    return r;
}

/* XGROUP CREATE topic group 0|$ MKSTREAM; BUSYGROUP (exists) is success. */
int rc_create_group(redis_consumer *cs, char *err, size_t errlen)
{
    const char *argv[] = {"XGROUP",  "CREATE", cs->topic, cs->group, cs->from_beginning ? "0" : "$",
                          "MKSTREAM"};
    redisReply *r = rc_command(cs, 6, argv, "XGROUP CREATE");
    if (!r) {
        snprintf(err, errlen, "XGROUP CREATE on %s: connection lost", cs->ri->cfg.where);
        return TRIB_RETRY;
    }
    int ret = TRIB_OK;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        snprintf(err, errlen, "cannot create consumer group '%s' on stream '%s': %s", cs->group,
                 cs->topic, r->str);
        ret = redis_reply_transient(r) ? TRIB_RETRY : TRIB_ERR;
    }
    freeReplyObject(r);
    return ret;
}

/* Bounded mode: remember the last ID existing now; EOF at once if empty. */
static int range_init(redis_consumer *cs, char *err, size_t errlen)
{
    const char *argv[] = {"XREVRANGE", cs->topic, "+", "-", "COUNT", "1"};
    redisReply *r = rc_command(cs, 6, argv, "XREVRANGE");
    if (!r) {
        snprintf(err, errlen, "XREVRANGE on %s: connection lost", cs->ri->cfg.where);
        return TRIB_ERR;
    }
    int ret = TRIB_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "XREVRANGE %s: %s", cs->topic, r->str);
        ret = TRIB_ERR;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
               r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1 &&
               r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        set_id(cs->end_id, r->element[0]->element[0]->str);
    } else {
        cs->eof = 1; /* no stream, or an empty one */
    }
    freeReplyObject(r);
    return ret;
}

/* Non-group streaming read from "$": pin "$" to the current last ID. */
static int xread_init(redis_consumer *cs, char *err, size_t errlen)
{
    set_id(cs->last_id, "0-0");
    if (cs->from_beginning)
        return TRIB_OK;
    if (range_init(cs, err, errlen) != TRIB_OK)
        return TRIB_ERR;
    if (!cs->eof)
        set_id(cs->last_id, cs->end_id);
    cs->eof = 0;
    return TRIB_OK;
}

static int choose_mode(redis_consumer *cs, const trib_consume_opts *o)
{
    redis_inst *ri = cs->ri;
    const char *group = NULL;
    if (o->bounded) {
        cs->mode = RC_RANGE;
    } else if (!o->group_id && o->from_beginning) {
        cs->mode = RC_XREAD;
    } else {
        cs->mode = RC_GROUP;
        group = o->group_id ? o->group_id : ri->group_id;
    }
    cs->from_beginning = o->from_beginning;
    cs->noack = !o->commit;
    cs->topic = strdup(cs->topic_arg);
    cs->group = group ? strdup(group) : NULL;
    cs->consumer = strdup(ri->consumer_name);
    return cs->topic && cs->consumer && (!group || cs->group) ? TRIB_OK : TRIB_ERR;
}

void *redis_consumer_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                          size_t errlen)
{
    redis_inst *ri = inst;
    redis_consumer *cs = calloc(1, sizeof *cs);
    if (!cs || !topic || !*topic) {
        snprintf(err, errlen, cs ? "no topic (stream) given" : "out of memory");
        free(cs);
        return NULL;
    }
    cs->ri = ri;
    cs->topic_arg = topic;
    redis_conn_init(&cs->conn, &ri->cfg, ri->ctx, ri->host);
    set_id(cs->pending_id, "0");
    int ret = choose_mode(cs, o);
    cs->read_pending = cs->mode == RC_GROUP && !cs->noack;
    if (ret != TRIB_OK)
        snprintf(err, errlen, "out of memory");
    if (ret == TRIB_OK && (ret = redis_conn_open(&cs->conn, err, errlen)) != TRIB_OK)
        ret = TRIB_ERR;
    if (ret == TRIB_OK && cs->mode == RC_RANGE)
        ret = range_init(cs, err, errlen);
    if (ret == TRIB_OK && cs->mode == RC_XREAD)
        ret = xread_init(cs, err, errlen);
    if (ret == TRIB_OK && cs->mode == RC_GROUP && rc_create_group(cs, err, errlen) != TRIB_OK)
        ret = TRIB_ERR;
    if (ret != TRIB_OK) {
        redis_consumer_close(cs);
        return NULL;
    }
    static const char *const names[] = {"bounded XRANGE", "XREAD", "consumer group"};
    ri->host->log(ri->ctx, TRIB_LOG_DEBUG, "consuming stream '%s' from %s (%s%s%s)", topic,
                  ri->cfg.where, names[cs->mode], cs->group ? " " : "", cs->group ? cs->group : "");
    return cs;
}

/* ---- entries -> records --------------------------------------------------- */

static uint64_t parse_lsn(const char *s)
{
    unsigned hi = 0, lo = 0;
    if (sscanf(s, "%X/%X", &hi, &lo) != 2)
        return 0;
    return (uint64_t)hi << 32 | lo;
}

static int set_field(const trib_host *h, trib_record *rec, const redisReply *f, const redisReply *v)
{
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        return TRIB_OK;
    if (strcmp(f->str, "key") == 0)
        return h->bytes_set(&rec->key, v->str, v->len);
    if (strcmp(f->str, "value") == 0)
        return h->bytes_set(&rec->value, v->str, v->len);
    if (strcmp(f->str, "op") == 0 && v->len == 1)
        rec->op = v->str[0];
    else if (strcmp(f->str, "lsn") == 0)
        rec->src.lsn = parse_lsn(v->str);
    else if (strcmp(f->str, "commit_lsn") == 0)
        rec->src.commit_lsn = parse_lsn(v->str);
    else if (strcmp(f->str, "snapshot") == 0)
        rec->src.snapshot = strcmp(v->str, "last") == 0 ? 2 : 1;
    return h->header_add(rec, f->str, v->str, v->len);
}

/* entry = [id, [f1, v1, ...]] -> a new record; NULL on ENOMEM. */
trib_record *rc_entry_record(redis_consumer *cs, const redisReply *entry)
{
    const trib_host *h = cs->ri->host;
    const redisReply *fields = entry->element[1];
    trib_record *rec = h->record_new();
    if (!rec)
        return NULL;
    int ok = h->str_set(&rec->topic, cs->topic) == TRIB_OK &&
             h->str_set(&rec->msg_id, entry->element[0]->str) == TRIB_OK;
    for (size_t i = 0; ok && i + 1 < fields->elements; i += 2)
        ok = set_field(h, rec, fields->element[i], fields->element[i + 1]) == TRIB_OK;
    if (!ok) {
        h->record_free(rec);
        return NULL;
    }
    return rec;
}

/* ---- commit ----------------------------------------------------------------- */

/* Remember an ID delivered in group mode (ascending; re-deliveries skipped). */
int rc_track(redis_consumer *cs, const char *id)
{
    if (cs->mode != RC_GROUP || cs->noack)
        return TRIB_OK;
    if (cs->nunacked > 0 && redis_id_cmp(id, cs->unacked[cs->nunacked - 1]) <= 0)
        return TRIB_OK;
    if (cs->nunacked == cs->capunacked) {
        size_t cap = cs->capunacked ? cs->capunacked * 2 : 256;
        char **p = realloc(cs->unacked, cap * sizeof *p);
        if (!p)
            return TRIB_ERR;
        cs->unacked = p;
        cs->capunacked = cap;
    }
    if (!(cs->unacked[cs->nunacked] = strdup(id)))
        return TRIB_ERR;
    cs->nunacked++;
    return TRIB_OK;
}

/* XACK ids[0..n) in one command. */
static int xack(redis_consumer *cs, char **ids, size_t n)
{
    const char **argv = malloc((n + 3) * sizeof *argv);
    if (!argv)
        return TRIB_ERR;
    argv[0] = "XACK", argv[1] = cs->topic, argv[2] = cs->group;
    for (size_t i = 0; i < n; i++)
        argv[i + 3] = ids[i];
    redisReply *r = rc_command(cs, (int)(n + 3), argv, "XACK");
    free(argv);
    if (!r)
        return TRIB_RETRY;
    int ret = r->type == REDIS_REPLY_INTEGER ? TRIB_OK : TRIB_ERR;
    if (ret != TRIB_OK)
        cs->ri->host->log(cs->ri->ctx, TRIB_LOG_ERROR, "XACK on stream '%s': %s", cs->topic,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ret;
}

int redis_consumer_commit(void *consumer, const trib_record *rec)
{
    redis_consumer *cs = consumer;
    if (cs->mode != RC_GROUP || cs->noack || !rec || !rec->msg_id)
        return TRIB_OK;
    size_t n = 0;
    while (n < cs->nunacked && redis_id_cmp(cs->unacked[n], rec->msg_id) <= 0)
        n++;
    if (n == 0)
        return TRIB_OK;
    if (!cs->conn.c) {
        char err[320];
        if (redis_conn_open(&cs->conn, err, sizeof err) != TRIB_OK)
            return TRIB_RETRY; /* kept: the next commit acks them too */
    }
    int ret = TRIB_OK;
    for (size_t done = 0; done < n && ret == TRIB_OK; done += 1000)
        ret = xack(cs, cs->unacked + done, n - done < 1000 ? n - done : 1000);
    if (ret != TRIB_OK)
        return ret;
    for (size_t i = 0; i < n; i++)
        free(cs->unacked[i]);
    memmove(cs->unacked, cs->unacked + n, (cs->nunacked - n) * sizeof *cs->unacked);
    cs->nunacked -= n;
    return TRIB_OK;
}

void redis_consumer_close(void *consumer)
{
    redis_consumer *cs = consumer;
    if (!cs)
        return;
    redis_conn_close(&cs->conn);
    if (cs->batch)
        freeReplyObject(cs->batch);
    for (size_t i = 0; i < cs->nunacked; i++)
        free(cs->unacked[i]);
    free(cs->unacked);
    free(cs->topic);
    free(cs->group);
    free(cs->consumer);
    free(cs);
}
