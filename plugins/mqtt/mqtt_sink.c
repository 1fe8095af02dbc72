/*
 * mqtt_sink.c — publishing records and acknowledging them on PUBACK.
 *
 * Every record handed to send() becomes a tracker (mqtt_msg) on the
 * outstanding list until paho reports the outcome of its publish:
 *   onSuccess  (PUBACK for QoS 1, PUBCOMP for QoS 2, written for QoS 0)
 *              -> host->ack(TRIB_OK)
 *   onFailure with a v5 reason code >= 0x80 (the broker refused it)
 *              -> host->ack(TRIB_ERR): the engine stops, confirming nothing past it
 *   any other failure (connection lost, buffer full)
 *              -> the tracker goes to the retry list and is published again
 *                 once connected: at-least-once, duplicates only for records
 *                 never acknowledged.
 * The client keeps its session across reconnects (clean start off), so paho
 * itself also resends in-flight QoS 1/2 messages after a reconnect.
 *
 * Before a topic's first message, mqtt_session.c makes sure the sessions of
 * `subscriber_groups` exist (so that their consumers get everything); send()
 * blocks while it cannot, like it does for back-pressure.
 *
 * Back-pressure: at most max_inflight trackers exist; send() waits for room,
 * and gives up with TRIB_STOP acks only when the engine is stopping while the
 * broker is unreachable.  No lock is held while calling paho or the host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_int.h"

typedef struct mqtt_msg {
    struct mqtt_msg *prev, *next; /* outstanding list */
    struct mqtt_msg *rnext;       /* retry list */
    mqtt_sink *s;
    trib_record *rec;
    int own_rec;                  /* produce(): rec is our copy, freed not acked */
    int waiter, abandoned, done, status;
    char err[256];
} mqtt_msg;

struct mqtt_sink {
    mqtt_inst *in;
    MQTTAsync client;
    char *client_id;              /* client_id, or "<client_id>-produce" (see sink_get) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mqtt_msg head;                /* sentinel of the outstanding list */
    size_t n_out;
    mqtt_msg *retry, *retry_tail; /* FIFO of publishes to send again */
    int connected, ever_connected, connecting, closing, disc_done;
    int64_t next_connect_ms;
    int backoff_s;
    pthread_t pump;               /* resends the retry list without waiting for traffic */
    int pump_started;
};

static void submit(mqtt_sink *s, mqtt_msg *m);

/* ------------------------------------------------------------ helpers */

static void timed_wait(mqtt_sink *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static int stopping(mqtt_sink *s)
{
    return s->in->host->stopping && s->in->host->stopping(s->in->ctx);
}

/* Finish a tracker exactly once: ack (or wake the produce() waiter). */
static void complete(mqtt_msg *m, int status, const char *err)
{
    mqtt_sink *s = m->s;
    const trib_host *h = s->in->host;
    pthread_mutex_lock(&s->mu);
    if (m->done) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    m->done = 1;
    m->prev->next = m->next;
    m->next->prev = m->prev;
    s->n_out--;
    m->status = status;
    snprintf(m->err, sizeof m->err, "%s", err ? err : "");
    pthread_cond_broadcast(&s->cv);
    if (m->waiter && !m->abandoned) { /* produce() frees it */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_unlock(&s->mu);
    if (m->own_rec)
        h->record_free(m->rec);
    else
        h->ack(s->in->ctx, m->rec, status, err);
    free(m);
}

static mqtt_msg *msg_new(mqtt_sink *s, trib_record *rec, int own, int waiter)
{
    mqtt_msg *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->s = s;
    m->rec = rec;
    m->own_rec = own;
    m->waiter = waiter;
    pthread_mutex_lock(&s->mu);
    m->next = &s->head;
    m->prev = s->head.prev;
    s->head.prev->next = m;
    s->head.prev = m;
    s->n_out++;
    pthread_mutex_unlock(&s->mu);
    return m;
}

static int transient_rc(int rc)
{
    return rc == MQTTASYNC_DISCONNECTED || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT ||
           rc == MQTTASYNC_NO_MORE_MSGIDS || rc == MQTTASYNC_OPERATION_INCOMPLETE ||
           rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_MAX_BUFFERED ||
           rc == MQTTASYNC_FAILURE;
}

/* A publish that did not get through: resend later, or give up when stopping. */
static void retry_later(mqtt_msg *m)
{
    mqtt_sink *s = m->s;
    pthread_mutex_lock(&s->mu);
    int give_up = s->closing || (!s->connected && stopping(s));
    if (!give_up) { /* appended: resent in the order they failed */
        m->rnext = NULL;
        if (s->retry_tail) s->retry_tail->rnext = m;
        else s->retry = m;
        s->retry_tail = m;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (give_up) {
        complete(m, TRIB_STOP, "not acknowledged: engine stopping while the broker is unreachable");
        return;
    }
    if (s->in->host->metric_add) s->in->host->metric_add(s->in->ctx, "mqtt_resends", 1);
}

/* Publish everything on the retry list, oldest first: records refused before
   the first CONNACK (a whole snapshot burst) keep their order. */
static void drain_retries(mqtt_sink *s)
{
    pthread_mutex_lock(&s->mu);
    mqtt_msg *list = s->connected ? s->retry : NULL;
    if (list) s->retry = s->retry_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        mqtt_msg *m = list;
        list = m->rnext;
        submit(s, m);
    }
}

/* ----------------------------------------------------------- callbacks */

static void on_pub_ok(void *ctx, MQTTAsync_successData *d) { complete(ctx, TRIB_OK, NULL); }
static void on_pub_ok5(void *ctx, MQTTAsync_successData5 *d) { complete(ctx, TRIB_OK, NULL); }
static void on_pub_fail(void *ctx, MQTTAsync_failureData *d) { retry_later(ctx); }

static void on_pub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    mqtt_msg *m = ctx;
    if (d && d->reasonCode >= 0x80) { /* PUBACK/PUBREC with an error reason: permanent */
        char err[256];
        snprintf(err, sizeof err, "broker refused message on topic '%s': %s (reason 0x%02x)",
                 m->rec->topic, MQTTReasonCode_toString(d->reasonCode), (unsigned)d->reasonCode);
        complete(m, TRIB_ERR, err);
        return;
    }
    retry_later(m);
}

static void on_connected(void *ctx, char *cause)
{
    mqtt_sink *s = ctx;
    pthread_mutex_lock(&s->mu);
    int first = !s->ever_connected;
    s->connected = s->ever_connected = 1;
    s->connecting = 0;
    s->backoff_s = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!first) /* the broker may have restarted without its sessions */
        mqtt_sessions_invalidate(s->in);
    s->in->host->log(s->in->ctx, first ? TRIB_LOG_INFO : TRIB_LOG_WARN, "%s to %s as '%s'",
                     first ? "connected" : "reconnected", s->in->conf.url, s->client_id);
    drain_retries(s);
}

static void on_lost(void *ctx, char *cause)
{
    mqtt_sink *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->connected = 0;
    int closing = s->closing;
    pthread_mutex_unlock(&s->mu);
    if (!closing)
        s->in->host->log(s->in->ctx, TRIB_LOG_WARN,
                         "connection to %s lost; reconnecting, unacknowledged messages will be "
                         "resent", s->in->conf.url);
}

static void connect_failed(mqtt_sink *s, int code, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    s->connecting = 0;
    s->next_connect_ms = mqtt_now_ms() + 1000LL * s->backoff_s;
    int wait = s->backoff_s, closing = s->closing;
    s->backoff_s = s->backoff_s * 2 > s->in->conf.reconnect_max_s ? s->in->conf.reconnect_max_s
                                                                  : s->backoff_s * 2;
    pthread_mutex_unlock(&s->mu);
    if (closing) return;
    s->in->host->log(s->in->ctx, TRIB_LOG_WARN, "cannot connect to %s: %s (code %d); retrying in %d s",
                     s->in->conf.url, msg ? msg : mqtt_strerror(code), code, wait);
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *d)
{
    connect_failed(ctx, d ? d->code : -1, d ? d->message : NULL);
}

static void on_conn_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    connect_failed(ctx, d ? (d->reasonCode ? (int)d->reasonCode : d->code) : -1,
                   d && d->reasonCode ? MQTTReasonCode_toString(d->reasonCode)
                                      : (d ? d->message : NULL));
}

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *msg)
{
    MQTTAsync_freeMessage(&msg); /* the sink subscribes to nothing */
    MQTTAsync_free(topic);
    return 1;
}

static void on_disc(void *ctx, MQTTAsync_successData *d)
{
    mqtt_sink *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->disc_done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}
static void on_disc5(void *ctx, MQTTAsync_successData5 *d) { on_disc(ctx, NULL); }
static void on_disc_fail(void *ctx, MQTTAsync_failureData *d) { on_disc(ctx, NULL); }
static void on_disc_fail5(void *ctx, MQTTAsync_failureData5 *d) { on_disc(ctx, NULL); }

/* ----------------------------------------------------------- publishing */

static int publish(mqtt_sink *s, mqtt_msg *m)
{
    const mqtt_conf *c = &s->in->conf;
    const trib_record *r = m->rec;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    char *topic = r->topic, *level = NULL;
    int rc;

    if (c->key_in_topic && r->key.set) {
        level = mqtt_level_escape(r->key.data, r->key.len);
        if (!level || asprintf(&topic, "%s/%s", r->topic, level) < 0) {
            free(level);
            return MQTTASYNC_FAILURE;
        }
    }
    msg.payload = r->value.len ? r->value.data : NULL;
    msg.payloadlen = (int)r->value.len;
    msg.qos = c->qos;
    ro.context = m;
    if (c->version == MQTTVERSION_5) {
        if (mqtt_props_from_record(&props, r, !c->key_in_topic) != TRIB_OK) {
            rc = MQTTASYNC_BAD_UTF8_STRING;
            goto out;
        }
        msg.properties = props;
        ro.onSuccess5 = on_pub_ok5;
        ro.onFailure5 = on_pub_fail5;
    } else {
        ro.onSuccess = on_pub_ok;
        ro.onFailure = on_pub_fail;
    }
    /* from here on m and r may already be acked and freed by paho's thread */
    rc = MQTTAsync_sendMessage(s->client, topic, &msg, &ro);
out:
    mqtt_props_free(&props);
    if (level) free(topic);
    free(level);
    return rc;
}

static void submit(mqtt_sink *s, mqtt_msg *m)
{
    int rc = publish(s, m);
    if (rc == MQTTASYNC_SUCCESS) return;
    if (transient_rc(rc)) {
        retry_later(m);
        return;
    }
    char err[256];
    snprintf(err, sizeof err, "cannot publish to topic '%s': %s", m->rec->topic, mqtt_strerror(rc));
    complete(m, TRIB_ERR, err);
}

/* ------------------------------------------------------- connection life */

static void start_connect(mqtt_sink *s)
{
    MQTTAsync_connectOptions co;
    MQTTProperties props = MQTTProperties_initializer;
    mqtt_connect_opts(s->in, &co, &props);
    co.context = s;
    if (s->in->conf.version == MQTTVERSION_5)
        co.onFailure5 = on_conn_fail5;
    else
        co.onFailure = on_conn_fail;
    pthread_mutex_lock(&s->mu);
    s->connecting = 1;
    pthread_mutex_unlock(&s->mu);
    int rc = MQTTAsync_connect(s->client, &co);
    MQTTProperties_free(&props);
    if (rc != MQTTASYNC_SUCCESS) connect_failed(s, rc, NULL);
}

/* Called from every wait loop: resend what failed, retry a first connect
   (paho's automatic reconnect takes over once a connection succeeded). */
static void tick(mqtt_sink *s)
{
    pthread_mutex_lock(&s->mu);
    int again = !s->ever_connected && !s->connecting && !s->closing &&
                mqtt_now_ms() >= s->next_connect_ms;
    if (again) s->connecting = 1; /* one caller starts it */
    int retries = s->retry != NULL && s->connected;
    pthread_mutex_unlock(&s->mu);
    if (again) start_connect(s);
    if (retries) drain_retries(s);
}

/* Publishes refused by paho (its in-flight window is still full when our
   PUBACK callback has already freed a slot) wait on the retry list; without
   this thread the last of a burst would stay there until the next send. */
static void *pump_main(void *arg)
{
    mqtt_sink *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->closing) {
        timed_wait(s, 100);
        if (s->closing) break;
        pthread_mutex_unlock(&s->mu);
        tick(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static mqtt_sink *sink_create(mqtt_inst *in, const char *suffix)
{
    const mqtt_conf *c = &in->conf;
    mqtt_sink *s = calloc(1, sizeof *s);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    if (!s) return NULL;
    if (asprintf(&s->client_id, "%s%s", c->client_id, suffix) < 0) {
        free(s);
        return NULL;
    }
    s->in = in;
    s->head.next = s->head.prev = &s->head;
    s->backoff_s = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    co.MQTTVersion = c->version;
    /* no paho-side buffering while disconnected: publishes refused then go
       to our retry list.  paho 1.3.12's offline command buffer races with
       its reconnect logic (heap-use-after-free seen under ASan). */
    co.sendWhileDisconnected = 0;
    co.allowDisconnectedSendAtAnyTime = 0;
    co.maxBufferedMessages = c->max_inflight + 16;
    co.deleteOldestMessages = 0;
    co.restoreMessages = 0;
    co.persistQoS0 = 0;
    int rc = MQTTAsync_createWithOptions(&s->client, c->url, s->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc == MQTTASYNC_SUCCESS) rc = MQTTAsync_setCallbacks(s->client, s, on_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS) rc = MQTTAsync_setConnected(s->client, s, on_connected);
    if (rc != MQTTASYNC_SUCCESS) {
        in->host->log(in->ctx, TRIB_LOG_ERROR, "cannot create MQTT client for %s: %s", c->url,
                      mqtt_strerror(rc));
        mqtt_sink_destroy(s);
        return NULL;
    }
    if (c->version != MQTTVERSION_5 && !c->key_in_topic)
        in->host->log(in->ctx, TRIB_LOG_WARN, "MQTT 3.1.1 has no user properties: record keys, op "
                                              "and lsn are not sent (set key_in_topic: true)");
    start_connect(s);
    s->pump_started = pthread_create(&s->pump, NULL, pump_main, s) == 0;
    return s;
}

/*
 * The publishing client, created on first use.  A client id names one
 * session, and a broker disconnects the older of two connections using it:
 * `tributary predict` publishing its predictions while `tributary run` of the
 * same config publishes records would knock each other off forever.  So a
 * client first needed by produce() (predict) is "<client_id>-produce"; the
 * pipeline's send() uses client_id itself.
 */
static mqtt_sink *sink_get(mqtt_inst *in, const char *suffix)
{
    pthread_mutex_lock(&in->lock);
    if (!in->sink) in->sink = sink_create(in, suffix);
    mqtt_sink *s = in->sink;
    pthread_mutex_unlock(&in->lock);
    return s;
}

void mqtt_sink_destroy(mqtt_sink *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    int connected = s->connected;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->pump_started) pthread_join(s->pump, NULL);
    if (s->client && connected) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 1000;
        d.context = s;
        if (s->in->conf.version == MQTTVERSION_5) {
            d.onSuccess5 = on_disc5;
            d.onFailure5 = on_disc_fail5;
        } else {
            d.onSuccess = on_disc;
            d.onFailure = on_disc_fail;
        }
        if (MQTTAsync_disconnect(s->client, &d) == MQTTASYNC_SUCCESS) {
            int64_t end = mqtt_now_ms() + 3000;
            pthread_mutex_lock(&s->mu);
            while (!s->disc_done && mqtt_now_ms() < end) timed_wait(s, 50);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (s->client) MQTTAsync_destroy(&s->client);
    /* paho calls nothing after destroy: settle what is left */
    s->retry = s->retry_tail = NULL;
    while (s->head.next != &s->head)
        complete(s->head.next, TRIB_STOP, "not acknowledged by the broker before shutdown");
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->client_id);
    free(s);
}

/* -------------------------------------------------------- sink callbacks */

/* Wait until fewer than max_inflight are outstanding.  TRIB_STOP when the
   engine stops while the broker is unreachable, TRIB_RETRY at the deadline. */
static int wait_room(mqtt_sink *s, int64_t deadline)
{
    int rc = TRIB_OK;
    pthread_mutex_lock(&s->mu);
    while (s->n_out >= (size_t)s->in->conf.max_inflight) {
        if (!s->connected && stopping(s)) { rc = TRIB_STOP; break; }
        if (deadline && mqtt_now_ms() >= deadline) { rc = TRIB_RETRY; break; }
        pthread_mutex_unlock(&s->mu);
        tick(s);
        pthread_mutex_lock(&s->mu);
        if (s->n_out >= (size_t)s->in->conf.max_inflight) timed_wait(s, 100);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Why a record cannot be published at all, or NULL. */
static const char *unpublishable(const trib_record *r)
{
    if (!mqtt_topic_publishable(r->topic))
        return "record topic is not a valid MQTT topic (empty, '+'/'#' or not UTF-8)";
    if (r->value.len > 268435455u) return "record value exceeds MQTT's 256 MB payload limit";
    return NULL;
}

int mqtt_sink_send(void *inst, trib_record **recs, size_t n)
{
    mqtt_inst *in = inst;
    mqtt_sink *s = sink_get(in, "");
    char err[700];
    for (size_t i = 0; i < n; i++) {
        const char *why = s ? unpublishable(recs[i]) : "MQTT client could not be created";
        if (why) {
            snprintf(err, sizeof err, "%s (topic '%s')", why, recs[i]->topic ? recs[i]->topic : "");
            in->host->ack(in->ctx, recs[i], TRIB_ERR, err);
            continue;
        }
        /* the subscriber sessions must exist before the topic's first message */
        int ss = mqtt_sessions_ensure(in, recs[i]->topic, 0, err, sizeof err);
        if (ss == TRIB_ERR) {
            in->host->ack(in->ctx, recs[i], TRIB_ERR, err);
            continue;
        }
        if (ss != TRIB_OK || wait_room(s, 0) != TRIB_OK) {
            for (size_t j = i; j < n; j++)
                in->host->ack(in->ctx, recs[j], TRIB_STOP, "engine stopping while the broker "
                                                           "is unreachable");
            return TRIB_OK;
        }
        mqtt_msg *m = msg_new(s, recs[i], 0, 0);
        if (!m) {
            in->host->ack(in->ctx, recs[i], TRIB_ERR, "out of memory");
            continue;
        }
        submit(s, m);
    }
    return s ? TRIB_OK : TRIB_ERR;
}

int mqtt_sink_flush(void *inst, int timeout_ms)
{
    mqtt_inst *in = inst;
    pthread_mutex_lock(&in->lock);
    mqtt_sink *s = in->sink;
    pthread_mutex_unlock(&in->lock);
    if (!s) return TRIB_OK;
    int64_t deadline = mqtt_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&s->mu);
    while (s->n_out > 0 && mqtt_now_ms() < deadline) {
        pthread_mutex_unlock(&s->mu);
        tick(s);
        pthread_mutex_lock(&s->mu);
        if (s->n_out > 0) timed_wait(s, 50);
    }
    size_t left = s->n_out;
    pthread_mutex_unlock(&s->mu);
    if (left)
        in->host->log(in->ctx, TRIB_LOG_WARN, "flush: %zu message(s) still unacknowledged by %s",
                      left, in->conf.url);
    return left ? TRIB_RETRY : TRIB_OK;
}

int mqtt_sink_produce(void *inst, const trib_record *rec, int timeout_ms)
{
    mqtt_inst *in = inst;
    mqtt_sink *s = sink_get(in, "-produce");
    const char *why = s ? unpublishable(rec) : "MQTT client could not be created";
    if (why) {
        in->host->log(in->ctx, TRIB_LOG_ERROR, "produce: %s", why);
        return TRIB_ERR;
    }
    int64_t deadline = mqtt_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    char err[600];
    int rc = mqtt_sessions_ensure(in, rec->topic, deadline, err, sizeof err);
    if (rc != TRIB_OK) {
        if (rc == TRIB_ERR) in->host->log(in->ctx, TRIB_LOG_ERROR, "produce: %s", err);
        return rc;
    }
    rc = wait_room(s, deadline);
    trib_record *copy = rc == TRIB_OK ? in->host->record_dup(rec) : NULL;
    mqtt_msg *m = copy ? msg_new(s, copy, 1, 1) : NULL;
    if (!m) {
        if (copy) in->host->record_free(copy);
        return rc == TRIB_OK ? TRIB_ERR : rc;
    }
    submit(s, m);
    pthread_mutex_lock(&s->mu);
    while (!m->done && mqtt_now_ms() < deadline) {
        pthread_mutex_unlock(&s->mu);
        tick(s);
        pthread_mutex_lock(&s->mu);
        if (!m->done) timed_wait(s, 50);
    }
    if (!m->done) { /* complete() frees it later */
        m->abandoned = 1;
        pthread_mutex_unlock(&s->mu);
        return TRIB_RETRY;
    }
    pthread_mutex_unlock(&s->mu);
    rc = m->status;
    if (rc != TRIB_OK) in->host->log(in->ctx, TRIB_LOG_ERROR, "produce: %s", m->err);
    in->host->record_free(m->rec);
    free(m);
    return rc;
}
