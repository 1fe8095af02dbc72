/*
 * plugins/kafka/kafka_consumer.c — reading back what the sink wrote.
 *
 * Two modes (trib_consume_opts.bounded):
 *  - streaming: a high-level consumer that subscribe()s to the topic in
 *    consumer group `group_id`; poll() returns 0 on a quiet timeout and the
 *    caller decides when inactivity means "done" (stream_timeout_ms).
 *  - bounded: at open we read the topic's partitions and each partition's
 *    high watermark, then assign() every non-empty partition ourselves (no
 *    rebalancing: a bounded read must see every partition, even when other
 *    members share the group).  A partition is finished once a message at
 *    watermark-1 or a partition-EOF event at/after the watermark was seen;
 *    poll() returns TRIB_EOF when all are finished.
 *
 * Offsets: auto-commit is always off, so nothing is committed behind the
 * caller's back.  commit(rec) stores offset+1 and starts an asynchronous
 * commit unless one is already in flight (commits coalesce); close() commits
 * what is stored synchronously.  from_beginning without commit starts every
 * partition at its beginning; otherwise the group's committed offsets are
 * used, auto.offset.reset (earliest/latest) when there are none.
 *
 * produce(): a separate producer handle, created on first use, serialised
 * by a mutex, waiting for the delivery report of each record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"

#define KAFKA_META_TIMEOUT_MS 10000

typedef struct kafka_consumer {
    kafka_inst *ki;            /* first: the handle opaque (see kafka_conf_base) */
    rd_kafka_t *rk;
    char *topic;
    trib_consume_opts o;
    /* bounded reads */
    int npart;
    int64_t *hwm;              /* high watermark at open, per partition id */
    char *done;                /* partition consumed up to hwm */
    int ndone;
    /* commits */
    int commit_inflight;
    int dirty;                 /* offsets stored since the last commit call */
    rd_kafka_resp_err_t last_err; /* last error logged (avoids floods) */
} kafka_consumer;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- callbacks (run inside rd_kafka_consumer_poll) ------------------ */

static void kafka_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    kafka_consumer *kc = opaque;
    kc->commit_inflight = 0;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        kc->ki->host->log(kc->ki->ctx, TRIB_LOG_WARN, "kafka: offset commit on topic %s failed: %s",
                          kc->topic, rd_kafka_err2str(err));
}

/* Streaming mode: join/leave partitions; from_beginning without commits
 * starts each newly assigned partition at its first retained offset. */
static void kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *kc = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    kc->ki->host->log(kc->ki->ctx, TRIB_LOG_DEBUG, "kafka: rebalance on topic %s: %s %d partition(s)",
                      kc->topic, rd_kafka_err2name(err), parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (kc->o.from_beginning && !kc->o.commit)
            for (int i = 0; i < parts->cnt; i++)
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        if (coop)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        return;
    }
    if (kc->dirty) { /* hand over what we processed before losing it */
        rd_kafka_commit(rk, NULL, 0);
        kc->dirty = 0;
    }
    if (coop)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, NULL);
}

/* ---- open ------------------------------------------------------------ */

static rd_kafka_t *kafka_consumer_handle(kafka_consumer *kc, char *err, size_t errlen)
{
    kafka_inst *ki = kc->ki;
    const char *group = kc->o.group_id && *kc->o.group_id ? kc->o.group_id : ki->group_id;
    char rkerr[512];
    rd_kafka_conf_t *conf = kafka_conf_base(ki, kc, err, errlen);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_offset_commit_cb(conf, kafka_commit_cb);
    if (!kc->o.bounded)
        rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
    if (kafka_conf_set(conf, "client.id", "tributary", "client.id", err, errlen) ||
        kafka_conf_set(conf, "group.id", group, "group_id", err, errlen) ||
        kafka_conf_set(conf, "auto.offset.reset", kc->o.from_beginning ? "earliest" : "latest",
                       "auto.offset.reset", err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", "enable.auto.commit", err, errlen) ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", "enable.auto.offset.store", err,
                       errlen) ||
        kafka_conf_set(conf, "enable.partition.eof", kc->o.bounded ? "true" : "false",
                       "enable.partition.eof", err, errlen) ||
        kafka_conf_apply_props(ki, conf, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rkerr, sizeof rkerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create Kafka consumer: %s", rkerr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Number of partitions of kc->topic, from the cluster's metadata. */
static int kafka_partition_count(kafka_consumer *kc, char *err, size_t errlen)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(kc->rk, kc->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(kc->rk, 0, rkt, &md, KAFKA_META_TIMEOUT_MS);
    int n = -1;
    if (e)
        snprintf(err, errlen, "kafka: cannot read metadata of topic %s from %s: %s", kc->topic,
                 kc->ki->bootstrap, rd_kafka_err2str(e));
    else if (md->topic_cnt != 1 || md->topics[0].err)
        snprintf(err, errlen, "kafka: topic %s: %s", kc->topic,
                 rd_kafka_err2str(md->topic_cnt ? md->topics[0].err
                                                : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
    else
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Bounded read: remember each partition's watermark and assign the
 * non-empty ones. */
static int kafka_open_bounded(kafka_consumer *kc, char *err, size_t errlen)
{
    int n = kafka_partition_count(kc, err, errlen);
    if (n < 0)
        return TRIB_ERR;
    kc->npart = n;
    kc->hwm = calloc((size_t)n + 1, sizeof *kc->hwm);
    kc->done = calloc((size_t)n + 1, 1);
    if (!kc->hwm || !kc->done) {
        snprintf(err, errlen, "out of memory");
        return TRIB_ERR;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    int64_t start = kc->o.from_beginning && !kc->o.commit ? RD_KAFKA_OFFSET_BEGINNING
                                                          : RD_KAFKA_OFFSET_STORED;
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(kc->rk, kc->topic, p, &lo, &hi,
                                                                 KAFKA_META_TIMEOUT_MS);
        if (e) {
            snprintf(err, errlen, "kafka: cannot read the end offset of topic %s partition %d: %s",
                     kc->topic, p, rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(list);
            return TRIB_ERR;
        }
        kc->hwm[p] = hi;
        if (lo > 0 && kc->o.from_beginning) /* retention (or the test mock's 5 MB cap) */
            kc->ki->host->log(kc->ki->ctx, TRIB_LOG_WARN,
                              "kafka: topic %s partition %d: the first %" PRId64
                              " messages are no longer retained; reading from offset %" PRId64,
                              kc->topic, p, lo, lo);
        if (hi <= lo) {
            kc->done[p] = 1;
            kc->ndone++;
        } else {
            rd_kafka_topic_partition_list_add(list, kc->topic, p)->offset = start;
        }
    }
    rd_kafka_resp_err_t e = list->cnt ? rd_kafka_assign(kc->rk, list) : 0;
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        snprintf(err, errlen, "kafka: cannot assign topic %s: %s", kc->topic, rd_kafka_err2str(e));
        return TRIB_ERR;
    }
    return TRIB_OK;
}

static int kafka_open_stream(kafka_consumer *kc, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kc->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(kc->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        snprintf(err, errlen, "kafka: cannot subscribe to topic %s: %s", kc->topic,
                 rd_kafka_err2str(e));
        return TRIB_ERR;
    }
    return TRIB_OK;
}

static void kafka_close(void *consumer);

static void *kafka_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                        size_t errlen)
{
    kafka_consumer *kc = calloc(1, sizeof *kc);
    if (!kc || !topic || !(kc->topic = strdup(topic))) {
        snprintf(err, errlen, topic ? "out of memory" : "kafka: no topic to consume");
        free(kc);
        return NULL;
    }
    kc->ki = inst;
    kc->o = *o;
    kc->rk = kafka_consumer_handle(kc, err, errlen);
    kc->o.group_id = NULL; /* the caller's string: only used to build the handle */
    if (!kc->rk || (o->bounded ? kafka_open_bounded(kc, err, errlen)
                               : kafka_open_stream(kc, err, errlen)) != TRIB_OK) {
        kafka_close(kc);
        return NULL;
    }
    return kc;
}

/* ---- poll ------------------------------------------------------------ */

static void kafka_mark_done(kafka_consumer *kc, int32_t p)
{
    if (p < 0 || p >= kc->npart || kc->done[p])
        return;
    kc->done[p] = 1;
    kc->ndone++;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, kc->topic, p);
    rd_kafka_pause_partitions(kc->rk, list); /* nothing past the bound */
    rd_kafka_topic_partition_list_destroy(list);
}

/* 1 if the message lies beyond what a bounded read returns. */
static int kafka_beyond_bound(kafka_consumer *kc, const rd_kafka_message_t *m)
{
    int32_t p = m->partition;
    if (p < 0 || p >= kc->npart || kc->done[p] || m->offset >= kc->hwm[p])
        return 1;
    if (m->offset + 1 >= kc->hwm[p])
        kafka_mark_done(kc, p);
    return 0;
}

static trib_record *kafka_to_record(kafka_consumer *kc, const rd_kafka_message_t *m)
{
    const trib_host *h = kc->ki->host;
    rd_kafka_headers_t *hdrs = NULL;
    char id[64];
    trib_record *rec = h->record_new();
    if (!rec)
        return NULL;
    snprintf(id, sizeof id, "%" PRId32 "/%" PRId64, m->partition, m->offset);
    int rc = h->str_set(&rec->topic, rd_kafka_topic_name(m->rkt)) | h->str_set(&rec->msg_id, id);
    if (m->key)
        rc |= h->bytes_set(&rec->key, m->key, m->key_len);
    if (m->payload) /* "" keeps an empty value distinct from a null one */
        rc |= h->bytes_set(&rec->value, m->len ? m->payload : "", m->len);
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++) {
            rc |= h->header_add(rec, name, val ? val : "", val ? len : 0);
            if (strcmp(name, "op") == 0 && val && len == 1)
                rec->op = *(const char *)val;
            else if (strcmp(name, "lsn") == 0)
                rec->src.lsn = kafka_parse_lsn(val, len);
        }
    }
    if (rc != TRIB_OK) {
        h->record_free(rec);
        return NULL;
    }
    return rec;
}

/* An error event: partition EOF (bounded bookkeeping) or a broker/client
 * problem.  TRIB_ERR only for fatal errors. */
static int kafka_consumer_event(kafka_consumer *kc, const rd_kafka_message_t *m)
{
    kafka_inst *ki = kc->ki;
    char fatal[512];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (kc->o.bounded && m->partition >= 0 && m->partition < kc->npart &&
            m->offset >= kc->hwm[m->partition])
            kafka_mark_done(kc, m->partition);
        return TRIB_OK;
    }
    if (rd_kafka_fatal_error(kc->rk, fatal, sizeof fatal)) {
        ki->host->log(ki->ctx, TRIB_LOG_ERROR, "kafka: consumer of topic %s: fatal: %s",
                      kc->topic, fatal);
        return TRIB_ERR;
    }
    if (m->err != kc->last_err) /* retried by librdkafka; say it once */
        ki->host->log(ki->ctx, TRIB_LOG_WARN, "kafka: consumer of topic %s: %s", kc->topic,
                      rd_kafka_message_errstr(m));
    kc->last_err = m->err;
    return TRIB_OK;
}

static int kafka_poll(void *consumer, int timeout_ms, trib_record **out)
{
    kafka_consumer *kc = consumer;
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    *out = NULL;
    if (kc->dirty && !kc->commit_inflight) { /* commits that came in while one flew */
        kc->commit_inflight = 1;
        kc->dirty = 0;
        rd_kafka_commit(kc->rk, NULL, 1);
    }
    for (;;) {
        if (kc->o.bounded && kc->ndone >= kc->npart)
            return TRIB_EOF;
        long long left = deadline - now_ms();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(kc->rk, left > 0 ? (int)left : 0);
        if (m && m->err) {
            int rc = kafka_consumer_event(kc, m);
            rd_kafka_message_destroy(m);
            if (rc != TRIB_OK)
                return rc;
        } else if (m && kc->o.bounded && kafka_beyond_bound(kc, m)) {
            rd_kafka_message_destroy(m);
        } else if (m) {
            kc->last_err = 0;
            *out = kafka_to_record(kc, m);
            rd_kafka_message_destroy(m);
            if (!*out) {
                kc->ki->host->log(kc->ki->ctx, TRIB_LOG_ERROR, "kafka: out of memory");
                return TRIB_ERR;
            }
            return 1;
        }
        if (now_ms() >= deadline)
            return kc->o.bounded && kc->ndone >= kc->npart ? TRIB_EOF : 0;
    }
}

/* ---- commit / close -------------------------------------------------- */

static int kafka_commit(void *consumer, const trib_record *rec)
{
    kafka_consumer *kc = consumer;
    int32_t p;
    int64_t off;
    if (!rec || !rec->msg_id || sscanf(rec->msg_id, "%" SCNd32 "/%" SCNd64, &p, &off) != 2)
        return TRIB_ERR;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, rec->topic ? rec->topic : kc->topic, p)->offset =
        off + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(kc->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) { /* e.g. the partition was revoked: its new owner re-reads */
        kc->ki->host->log(kc->ki->ctx, TRIB_LOG_DEBUG, "kafka: cannot store offset %s: %s",
                          rec->msg_id, rd_kafka_err2str(e));
        return TRIB_OK;
    }
    kc->dirty = 1;
    if (!kc->commit_inflight) { /* one commit in flight; later ones coalesce */
        kc->commit_inflight = 1;
        kc->dirty = 0;
        rd_kafka_commit(kc->rk, NULL, 1);
    }
    return TRIB_OK;
}

static void kafka_close(void *consumer)
{
    kafka_consumer *kc = consumer;
    if (!kc)
        return;
    if (kc->rk) {
        if (kc->dirty || kc->commit_inflight) {
            rd_kafka_resp_err_t e = rd_kafka_commit(kc->rk, NULL, 0);
            if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
                kc->ki->host->log(kc->ki->ctx, TRIB_LOG_WARN,
                                  "kafka: final offset commit on topic %s failed: %s", kc->topic,
                                  rd_kafka_err2str(e));
        }
        rd_kafka_consumer_close(kc->rk);
        rd_kafka_destroy(kc->rk);
    }
    free(kc->hwm);
    free(kc->done);
    free(kc->topic);
    free(kc);
}

/* ---- produce: one record, synchronously ------------------------------ */

typedef struct kafka_waiter {
    int done;
    int abandoned;             /* produce() timed out: the report frees it */
    rd_kafka_resp_err_t err;
} kafka_waiter;

static void kafka_sync_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_waiter *w = m->_private;
    if (w->abandoned) {
        free(w);
        return;
    }
    w->err = m->err;
    w->done = 1;
}

static int kafka_produce_wait(kafka_inst *ki, kafka_waiter *w, int timeout_ms)
{
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (!w->done) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        rd_kafka_poll(ki->sync_producer, left > 100 ? 100 : (int)left);
    }
    return w->done;
}

static int kafka_produce(void *inst, const trib_record *rec, int timeout_ms)
{
    kafka_inst *ki = inst;
    char err[512];
    int rc = TRIB_ERR;
    pthread_mutex_lock(&ki->produce_lock);
    if (!ki->sync_producer) {
        rd_kafka_conf_t *conf = kafka_producer_conf(ki, kafka_sync_dr_cb, err, sizeof err);
        if (conf)
            ki->sync_producer = kafka_producer_new(ki, conf, err, sizeof err);
    }
    kafka_waiter *w = calloc(1, sizeof *w);
    if (!ki->sync_producer || !w || !rec->topic) {
        ki->host->log(ki->ctx, TRIB_LOG_ERROR, "kafka: produce: %s",
                      !ki->sync_producer ? err : !w ? "out of memory" : "record has no topic");
        free(w);
        pthread_mutex_unlock(&ki->produce_lock);
        return TRIB_ERR;
    }
    const void *key = rec->key.set || rec->key.data ? rec->key.data : NULL;
    const void *val = rec->value.set || rec->value.data ? rec->value.data : NULL;
    rd_kafka_headers_t *hdrs = kafka_headers(rec);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        ki->sync_producer, RD_KAFKA_V_TOPIC(rec->topic), RD_KAFKA_V_KEY(key, key ? rec->key.len : 0),
        RD_KAFKA_V_VALUE((void *)val, val ? rec->value.len : 0), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (e) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        free(w);
        ki->host->log(ki->ctx, TRIB_LOG_ERROR, "kafka: cannot produce to topic %s: %s",
                      rec->topic, rd_kafka_err2str(e));
        rc = e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? TRIB_RETRY : TRIB_ERR;
    } else if (!kafka_produce_wait(ki, w, timeout_ms)) {
        w->abandoned = 1; /* freed by its delivery report, whenever it comes */
        rc = TRIB_RETRY;
    } else {
        if (w->err)
            ki->host->log(ki->ctx, TRIB_LOG_ERROR, "kafka: delivery to topic %s failed: %s",
                          rec->topic, rd_kafka_err2str(w->err));
        rc = w->err ? TRIB_ERR : TRIB_OK;
        free(w);
    }
    pthread_mutex_unlock(&ki->produce_lock);
    return rc;
}

void kafka_consumer_destroy_inst(kafka_inst *ki)
{
    if (!ki->sync_producer)
        return;
    rd_kafka_purge(ki->sync_producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(ki->sync_producer, 1000); /* serves reports: frees abandoned waiters */
    rd_kafka_destroy(ki->sync_producer);
    ki->sync_producer = NULL;
}

const trib_consumer_ops kafka_consumer_ops = {
    .open = kafka_open,
    .poll = kafka_poll,
    .commit = kafka_commit,
    .close = kafka_close,
    .produce = kafka_produce,
};
