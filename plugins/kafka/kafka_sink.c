/*
 * plugins/kafka/kafka_sink.c — the Kafka sink: records -> rd_kafka_producev,
 * acknowledged only from librdkafka's delivery reports.
 *
 * Design:
 *  - send() produces each record with the record itself as msg_opaque and
 *    without copying key/value (the record outlives the message: it is freed
 *    only after host->ack, which happens in the delivery report).
 *  - A plugin-owned poll thread calls rd_kafka_poll(), which runs the
 *    delivery report callback: TRIB_OK on success, TRIB_STOP for messages we
 *    purged while stopping, TRIB_ERR (message names topic and error) for a
 *    permanent failure, after which the core confirms nothing past it.
 *  - Back-pressure: when librdkafka's queue is full send() waits (woken by
 *    the delivery reports once an eighth of what is outstanding is acked)
 *    and retries, until the engine asks to stop; what could not be queued is
 *    then acknowledged TRIB_STOP (replayed on restart).
 *  - Broker outages are retried by librdkafka up to message.timeout.ms
 *    (default 300000; 0 = forever, via the `kafka:` map); the idempotent
 *    producer keeps per-partition order across retries.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"

/* What librdkafka may hold of payloads not yet delivered, in KB, unless the
   `kafka:` map says otherwise: 8 MB.  librdkafka's own default (1 GB,
   100,000 messages) let a snapshot queue all of its rows: ~300 MB for 60,000
   MNIST rows, every page of it faulted in fresh.  A bounded queue reuses the
   same memory: 32 MB (the Java producer's buffer.memory) still cost ~20,000
   page faults per 60,000 rows; 8 MB costs ~11,000 and 10-25% less CPU at the
   same or better speed, and still holds ~60 ms of a 1 Gbit/s link, many times
   a broker round trip (docs/benchmarks.md, 2026-12-07). */
#define KAFKA_QUEUE_KBYTES "8192"
/* How long send() sleeps at most in one wait while the producer queue is
   full (it is woken as soon as an eighth of what is outstanding is acked). */
#define KAFKA_QFULL_WAIT_MS 50
/* How long destroy() waits for purged messages' delivery reports. */
#define KAFKA_PURGE_WAIT_MS 5000
/* How long send() waits for a new topic's metadata, and how many topics it
   remembers having asked for. */
#define KAFKA_META_WAIT_MS 1000
#define KAFKA_WARM_MAX 1024

/* ---- delivery reports ---------------------------------------------- */

static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_inst *ki = KAFKA_INST(opaque);
    trib_record *rec = m->_private;
    char msg[512];

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ki->host->ack(ki->ctx, rec, TRIB_OK, NULL);
    } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
               m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        ki->host->ack(ki->ctx, rec, TRIB_STOP, "not delivered: stopping");
    } else {
        snprintf(msg, sizeof msg, "kafka: delivery to topic %s failed: %s (%s)",
                 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
                 rd_kafka_err2name(m->err));
        ki->host->log(ki->ctx, TRIB_LOG_ERROR, "%s", msg);
        ki->host->metric_add(ki->ctx, "delivery_errors", 1);
        ki->host->ack(ki->ctx, rec, TRIB_ERR, msg);
    }
    long long left = atomic_fetch_sub(&ki->outstanding, 1) - 1;
    if (left <= atomic_load(&ki->room_below)) { /* send() waits for this much room */
        pthread_mutex_lock(&ki->room_mu);
        pthread_cond_broadcast(&ki->room_cv);
        pthread_mutex_unlock(&ki->room_mu);
    }
}

static void *kafka_poll_thread(void *arg)
{
    kafka_inst *ki = arg;
    pthread_setname_np(pthread_self(), "kafka:reports");
    while (!atomic_load(&ki->poller_stop))
        rd_kafka_poll(ki->producer, 100);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------ */

rd_kafka_conf_t *kafka_producer_conf(kafka_inst *ki, kafka_dr_fn dr_cb, char *err, size_t errlen)
{
    const trib_host *h = ki->host;
    const char *acks = h->opt_str(ki->opts, "acks");
    const char *codec = h->opt_str(ki->opts, "compression");
    int idem = h->opt_bool(ki->opts, "enable_idempotence");
    char linger[32];

    if (idem && acks && strcmp(acks, "all") != 0) {
        snprintf(err, errlen, "option acks: %s requires enable_idempotence: false "
                              "(an idempotent producer needs acks: all)", acks);
        return NULL;
    }
    snprintf(linger, sizeof linger, "%" PRId64, h->opt_int(ki->opts, "linger_ms"));

    rd_kafka_conf_t *conf = kafka_conf_base(ki, &ki->self, err, errlen);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    if (kafka_conf_set(conf, "client.id", "tributary", "client.id", err, errlen) ||
        kafka_conf_set(conf, "acks", acks ? acks : "all", "acks", err, errlen) ||
        kafka_conf_set(conf, "enable.idempotence", idem ? "true" : "false",
                       "enable_idempotence", err, errlen) ||
        kafka_conf_set(conf, "compression.codec", codec ? codec : "none", "compression", err,
                       errlen) ||
        kafka_conf_set(conf, "linger.ms", linger, "linger_ms", err, errlen) ||
        kafka_conf_set(conf, "queue.buffering.max.kbytes", KAFKA_QUEUE_KBYTES,
                       "kafka.queue.buffering.max.kbytes", err, errlen) ||
        kafka_conf_apply_props(ki, conf, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_t *kafka_producer_new(kafka_inst *ki, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    char rkerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof rkerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create the Kafka producer for %s: %s", ki->bootstrap,
                 rkerr);
    }
    return rk; /* on success librdkafka owns conf */
}

/* Options are checked here, without connecting (`tributary check`); the
 * producer itself is created by start(). */
int kafka_sink_create(kafka_inst *ki, char *err, size_t errlen)
{
    ki->pconf = kafka_producer_conf(ki, kafka_dr_cb, err, errlen);
    return ki->pconf ? TRIB_OK : TRIB_ERR;
}

int kafka_sink_start(kafka_inst *ki, char *err, size_t errlen)
{
    if (ki->poller_running)
        return TRIB_OK;
    if (!ki->producer) {
        if (!ki->pconf) {
            snprintf(err, errlen, "the Kafka producer could not be created earlier");
            return TRIB_ERR;
        }
        ki->producer = kafka_producer_new(ki, ki->pconf, err, errlen);
        ki->pconf = NULL;
        if (!ki->producer)
            return TRIB_ERR;
    }
    atomic_store(&ki->poller_stop, 0);
    if (pthread_create(&ki->poller, NULL, kafka_poll_thread, ki) != 0) {
        snprintf(err, errlen, "cannot start the Kafka delivery-report thread");
        return TRIB_ERR;
    }
    ki->poller_running = 1;
    return TRIB_OK;
}

/* Give up on everything still queued or in flight: each gets TRIB_STOP. */
static void kafka_sink_purge(kafka_inst *ki)
{
    long long left = atomic_load(&ki->outstanding);
    if (left <= 0)
        return;
    ki->host->log(ki->ctx, TRIB_LOG_WARN,
                  "kafka: %lld record(s) not delivered at shutdown; they will be replayed", left);
    rd_kafka_purge(ki->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int waited = 0; atomic_load(&ki->outstanding) > 0 && waited < KAFKA_PURGE_WAIT_MS;
         waited += 100)
        rd_kafka_poll(ki->producer, 100);
}

void kafka_sink_destroy(kafka_inst *ki)
{
    for (size_t i = 0; i < ki->n_warm; i++)
        free(ki->warm_topics[i]);
    free(ki->warm_topics);
    ki->warm_topics = NULL;
    ki->n_warm = 0;
    ki->last_topic = NULL;
    if (ki->pconf) {
        rd_kafka_conf_destroy(ki->pconf);
        ki->pconf = NULL;
    }
    if (ki->poller_running) {
        /* wake the poller out of its rd_kafka_poll() at once: a plain flag
           would cost up to a whole poll timeout at every shutdown */
        atomic_store(&ki->poller_stop, 1);
        rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(ki->producer);
        if (mainq) {
            rd_kafka_queue_yield(mainq);
            rd_kafka_queue_destroy(mainq);
        }
        pthread_join(ki->poller, NULL);
        ki->poller_running = 0;
    }
    if (!ki->producer)
        return;
    rd_kafka_poll(ki->producer, 0);
    kafka_sink_purge(ki);
    rd_kafka_destroy(ki->producer);
    ki->producer = NULL;
}

/* ---- send ------------------------------------------------------------ */

rd_kafka_headers_t *kafka_headers(const trib_record *rec)
{
    if (!rec->op && rec->nheaders == 0)
        return NULL;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(rec->nheaders + 2);
    if (rec->op) {
        char lsn[40];
        uint64_t pos = rec->src.lsn ? rec->src.lsn : rec->src.commit_lsn;
        size_t n = trib_lsn_format(pos, lsn); /* per message: not snprintf */
        rd_kafka_header_add(hdrs, "op", -1, &rec->op, 1);
        rd_kafka_header_add(hdrs, "lsn", -1, lsn, (ssize_t)n);
    }
    for (size_t i = 0; i < rec->nheaders; i++)
        rd_kafka_header_add(hdrs, rec->headers[i].name, -1, rec->headers[i].value,
                            (ssize_t)rec->headers[i].len);
    return hdrs;
}

static int kafka_fail_record(kafka_inst *ki, trib_record *rec, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "kafka: cannot produce to topic %s: %s",
             rec->topic ? rec->topic : "(none)", why);
    ki->host->log(ki->ctx, TRIB_LOG_ERROR, "%s", msg);
    ki->host->ack(ki->ctx, rec, TRIB_ERR, msg);
    return TRIB_ERR;
}

/*
 * A topic that first appears after the producer connected is only looked up
 * by librdkafka's periodic metadata refresh (about a second later); until
 * then all its messages wait unpartitioned, and a snapshot stalls.  So ask
 * for a new topic's metadata once, right away (bounded wait; if the broker
 * is unreachable, librdkafka keeps retrying on its own as before).
 */
static void kafka_topic_warm(kafka_inst *ki, const char *topic)
{
    if (ki->last_topic && strcmp(ki->last_topic, topic) == 0)
        return;
    for (size_t i = 0; i < ki->n_warm; i++)
        if (strcmp(ki->warm_topics[i], topic) == 0) {
            ki->last_topic = ki->warm_topics[i];
            return;
        }
    if (ki->n_warm < KAFKA_WARM_MAX) {
        char *copy = strdup(topic);
        char **grown = realloc(ki->warm_topics, (ki->n_warm + 1) * sizeof *grown);
        if (grown)
            ki->warm_topics = grown;
        if (!copy || !grown) {
            free(copy);
            return;
        }
        ki->warm_topics[ki->n_warm++] = copy;
        ki->last_topic = copy;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(ki->producer, topic, NULL);
    if (!rkt)
        return;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(ki->producer, 0, rkt, &md, KAFKA_META_WAIT_MS) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
}

/*
 * librdkafka's queue is full: sleep until the delivery reports (served by
 * the poller thread) have freed an eighth of what is outstanding, so that
 * the next producev calls find room for a run of messages.  Polling here
 * instead would race the poller for the reports and mostly sleep out its
 * timeout while the broker thread ran dry.
 */
static void kafka_wait_room(kafka_inst *ki)
{
    long long out = atomic_load(&ki->outstanding);
    long long target = out - (out / 8 > 0 ? out / 8 : 1);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += KAFKA_QFULL_WAIT_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ki->room_mu);
    atomic_store(&ki->room_below, target);
    while (atomic_load(&ki->outstanding) > target &&
           pthread_cond_timedwait(&ki->room_cv, &ki->room_mu, &dl) == 0)
        ;
    atomic_store(&ki->room_below, -1);
    pthread_mutex_unlock(&ki->room_mu);
}

/*
 * Hand one record to librdkafka.  TRIB_OK: queued (acked later from its
 * delivery report); TRIB_ERR: acked as failed; TRIB_STOP: not queued
 * because the engine is stopping (the caller acks it).
 */
static int kafka_produce_one(kafka_inst *ki, trib_record *rec, int *warned)
{
    if (!rec->topic || !*rec->topic)
        return kafka_fail_record(ki, rec, "record has no topic");
    kafka_topic_warm(ki, rec->topic);
    rd_kafka_headers_t *hdrs = kafka_headers(rec);
    const void *key = rec->key.set || rec->key.data ? rec->key.data : NULL;
    const void *val = rec->value.set || rec->value.data ? rec->value.data : NULL;
    int alone = 0; /* times the queue was full with none of ours in it */
    for (;;) {
        atomic_fetch_add(&ki->outstanding, 1); /* the report may come first */
        rd_kafka_resp_err_t e = rd_kafka_producev(
            ki->producer, RD_KAFKA_V_TOPIC(rec->topic), RD_KAFKA_V_KEY(key, key ? rec->key.len : 0),
            RD_KAFKA_V_VALUE((void *)val, val ? rec->value.len : 0), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return TRIB_OK; /* headers now belong to librdkafka */
        atomic_fetch_sub(&ki->outstanding, 1);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            return kafka_fail_record(ki, rec, rd_kafka_err2str(e));
        }
        if (ki->host->stopping(ki->ctx)) {
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            return TRIB_STOP;
        }
        /* Full with nothing of ours in it (twice, a wait apart: the last
           report's message is freed just after its callback): this one
           message is larger than the whole queue, and waiting cannot help. */
        alone = atomic_load(&ki->outstanding) == 0 ? alone + 1 : 0;
        if (alone >= 2) {
            char why[300];
            snprintf(why, sizeof why,
                     "a message of %zu bytes does not fit in librdkafka's queue even when it is "
                     "empty (raise kafka.queue.buffering.max.kbytes, default %s)",
                     (key ? rec->key.len : 0) + (val ? rec->value.len : 0), KAFKA_QUEUE_KBYTES);
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            return kafka_fail_record(ki, rec, why);
        }
        if (!*warned) {
            ki->host->log(ki->ctx, TRIB_LOG_DEBUG,
                          "kafka: producer queue full (%lld outstanding), waiting for the broker",
                          (long long)atomic_load(&ki->outstanding));
            *warned = 1;
        }
        ki->host->metric_add(ki->ctx, "queue_full_waits", 1);
        kafka_wait_room(ki);
    }
}

static int kafka_send(void *inst, trib_record **recs, size_t n)
{
    kafka_inst *ki = inst;
    char err[256];
    int warned = 0;
    size_t i;

    if (!ki->poller_running && kafka_sink_start(ki, err, sizeof err) != TRIB_OK) {
        for (i = 0; i < n; i++)
            ki->host->ack(ki->ctx, recs[i], TRIB_ERR, err);
        return TRIB_ERR;
    }
    for (i = 0; i < n; i++)
        if (kafka_produce_one(ki, recs[i], &warned) == TRIB_STOP)
            break;
    for (; i < n; i++)
        ki->host->ack(ki->ctx, recs[i], TRIB_STOP, "not produced: stopping");
    return TRIB_OK;
}

static long long kafka_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait up to timeout_ms for outstanding delivery reports: TRIB_OK when none
 * is left, TRIB_RETRY otherwise.  Nothing is given up here (the core calls
 * flush repeatedly until its shutdown_timeout_ms); destroy() purges what is
 * still undelivered and acknowledges it TRIB_STOP.
 */
static int kafka_flush(void *inst, int timeout_ms)
{
    kafka_inst *ki = inst;
    long long deadline = kafka_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    if (!ki->producer)
        return TRIB_OK; /* never started: nothing sent */
    do {
        rd_kafka_flush(ki->producer, 50);
        if (atomic_load(&ki->outstanding) == 0)
            return TRIB_OK;
    } while (kafka_now_ms() < deadline);
    return TRIB_RETRY;
}

const trib_sink_ops kafka_sink_ops = {
    .send = kafka_send,
    .flush = kafka_flush,
};
