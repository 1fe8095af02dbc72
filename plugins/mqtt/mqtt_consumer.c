/*
 * mqtt_consumer.c — reading back what the sink published, through a persistent session.
 *
 * open(topic) connects with client id "<client_id>-<group>-<topic>", clean
 * start off and a session expiry of session_expiry_s, and subscribes at
 * QoS 1.  The broker then keeps the subscription and queues every QoS 1/2
 * message published while the consumer is away (mosquitto: persistence on,
 * max_queued_messages 0 or large enough), delivering it on the next open().
 * The topic is part of the client id so that a trainer reading the training
 * and the test topics one after the other has one session per topic, each
 * holding only its own messages.
 *
 * Delivery semantics (honest version).  paho 1.3.12 has no manual
 * acknowledgement, and for QoS 1 it sends the PUBACK as soon as it reads the
 * PUBLISH, before calling messageArrived (whose return value only makes paho
 * retry the callback from its own memory).  The callback copies the message
 * into an internal queue of at most queue_max records; when the queue is full
 * it waits for poll() to make room, so paho stops reading the socket and the
 * rest stays unacknowledged in TCP buffers and in the broker's session.
 * Delivery is therefore at-least-once up to the consumer's memory: at most
 * queue_max + 1 messages received but not yet polled are lost if the process
 * dies or closes before polling them (close() logs how many).  A bounded read
 * polls until EOF, so nothing is queued when it closes.  commit() is a no-op.
 *
 * Sessions the consumer finds ready.  The sink creates the session of each
 * group in `subscriber_groups` (default: `group_id`) before it first publishes
 * to a topic (mqtt_session.c), so a consumer of such a group — `tributary
 * train` reads with the default group — gets everything the sink published,
 * even when it subscribes for the first time after the publishing.  Reading
 * empties the session: a second reader of the same group gets only newer
 * messages.
 *
 * End of data.  MQTT has none.  A bounded read returns TRIB_EOF once no
 * message arrived for idle_eof_ms since the subscription was granted or
 * since the last message, whichever is later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_int.h"

typedef struct qitem {
    struct qitem *next;
    trib_record *rec;
} qitem;

typedef struct mqtt_consumer {
    mqtt_inst *in;
    MQTTAsync client;
    char *topic;              /* as asked */
    char *client_id;
    int bounded;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qitem *head, *tail;
    size_t qlen;
    uint64_t seq;
    size_t discarded;         /* received while closing */
    int nsub;                 /* topic filters subscribed (2 with key_in_topic) */
    int connected, ever_connected, subscribed, need_sub, failed, closing, disc_done;
    int64_t last_activity_ms;
    char err[300];
} mqtt_consumer;

static void timed_wait(mqtt_consumer *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

static void set_failed(mqtt_consumer *c, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    if (!c->failed) snprintf(c->err, sizeof c->err, "%s", msg);
    c->failed = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ messages */

/* Turn a paho message into a record; NULL with err set on bad data. */
static trib_record *to_record(mqtt_consumer *c, const char *topic, size_t tlen,
                              MQTTAsync_message *msg, char *err, size_t errlen)
{
    const trib_host *h = c->in->host;
    trib_record *rec = h->record_new();
    char idbuf[48];
    int ok = rec != NULL;
    size_t base = tlen;
    if (ok && c->in->conf.key_in_topic) { /* "<topic>/<escaped key>" or "<topic>" */
        const char *slash = memrchr(topic, '/', tlen);
        if (slash && (size_t)(slash - topic) == strlen(c->topic)) {
            size_t klen;
            char *key = mqtt_level_unescape(slash + 1, tlen - (size_t)(slash - topic) - 1, &klen);
            if (!key) {
                snprintf(err, errlen, "topic '%.*s': malformed escaped key", (int)tlen, topic);
                h->record_free(rec);
                return NULL;
            }
            ok = h->bytes_set(&rec->key, key, klen) == TRIB_OK;
            if (ok && klen == 0) rec->key.set = 1;
            free(key);
            base = (size_t)(slash - topic);
        }
    }
    char *t = ok ? strndup(topic, base) : NULL;
    ok = ok && t && h->str_set(&rec->topic, t) == TRIB_OK;
    free(t);
    ok = ok && h->bytes_set(&rec->value, msg->payload ? msg->payload : "",
                            (size_t)msg->payloadlen) == TRIB_OK;
    if (ok) rec->value.set = 1; /* an empty payload is an empty value, not none */
    snprintf(idbuf, sizeof idbuf, "%llu:%d", (unsigned long long)++c->seq, msg->msgid);
    ok = ok && h->str_set(&rec->msg_id, idbuf) == TRIB_OK;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        if (rec) h->record_free(rec);
        return NULL;
    }
    if (mqtt_props_to_record(h, rec, &msg->properties, err, errlen) != TRIB_OK) {
        h->record_free(rec);
        return NULL;
    }
    return rec;
}

static int on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *msg)
{
    mqtt_consumer *c = ctx;
    const trib_host *h = c->in->host;
    char err[300];

    pthread_mutex_lock(&c->mu);
    while (c->qlen >= (size_t)c->in->conf.queue_max && c->subscribed && !c->closing)
        timed_wait(c, 200);
    if (c->closing) { /* paho already acknowledged it: count it as discarded */
        c->discarded++;
        pthread_mutex_unlock(&c->mu);
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
        return 1;
    }
    pthread_mutex_unlock(&c->mu);

    trib_record *rec = to_record(c, topic, tlen ? (size_t)tlen : strlen(topic), msg, err, sizeof err);
    if (!rec) /* bad data never crashes: log it and skip the message */
        h->log(c->in->ctx, TRIB_LOG_ERROR, "skipping message on topic '%s': %s", topic, err);
    qitem *it = rec ? calloc(1, sizeof *it) : NULL;
    if (rec && !it) h->record_free(rec);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);

    pthread_mutex_lock(&c->mu);
    c->last_activity_ms = mqtt_now_ms();
    if (it) {
        it->rec = rec;
        if (c->tail) c->tail->next = it; else c->head = it;
        c->tail = it;
        c->qlen++;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return 1;
}

/* ------------------------------------------------------- subscription */

static void on_sub_ok(void *ctx, MQTTAsync_successData *d)
{
    mqtt_consumer *c = ctx;
    for (int i = 0; d && i < c->nsub; i++) /* paho: alt.qos for one filter, qosList for more */
        if ((c->nsub == 1 ? d->alt.qos : d->alt.qosList[i]) == 0x80) {
            set_failed(c, "broker refused the subscription");
            return;
        }
    pthread_mutex_lock(&c->mu);
    c->subscribed = 1;
    c->last_activity_ms = mqtt_now_ms();
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_sub_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    mqtt_consumer *c = ctx;
    /* paho: reasonCode for one filter, alt.sub.reasonCodes for more */
    for (int i = 0; d && c->nsub > 1 && i < d->alt.sub.reasonCodeCount; i++)
        if (d->alt.sub.reasonCodes[i] >= 0x80) {
            char e[200];
            snprintf(e, sizeof e, "broker refused the subscription: %s",
                     MQTTReasonCode_toString(d->alt.sub.reasonCodes[i]));
            set_failed(c, e);
            return;
        }
    if (d && d->reasonCode >= 0x80) {
        set_failed(c, "broker refused the subscription");
        return;
    }
    on_sub_ok(ctx, NULL);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *d)
{
    mqtt_consumer *c = ctx;
    c->in->host->log(c->in->ctx, TRIB_LOG_WARN, "subscribe to '%s' failed: %s; retrying", c->topic,
                     d && d->message ? d->message : mqtt_strerror(d ? d->code : -1));
    pthread_mutex_lock(&c->mu);
    c->need_sub = 1; /* poll() subscribes again */
    pthread_mutex_unlock(&c->mu);
}

static void on_sub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    mqtt_consumer *c = ctx;
    if (d && d->reasonCode >= 0x80) {
        char e[200];
        snprintf(e, sizeof e, "broker refused the subscription: %s",
                 MQTTReasonCode_toString(d->reasonCode));
        set_failed(c, e);
        return;
    }
    MQTTAsync_failureData f = {d ? d->token : 0, d ? d->code : -1, d ? d->message : NULL};
    on_sub_fail(ctx, &f);
}

/* (Re)subscribe: harmless when the session already holds the subscription,
   necessary when the broker lost it (restarted without persistence). */
static void subscribe(mqtt_consumer *c)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    char *topics[2] = {c->topic, NULL};
    int qos[2] = {1, 1}, n = 1, rc;
    char *wild = NULL;
    ro.context = c;
    if (c->in->conf.version == MQTTVERSION_5) {
        ro.onSuccess5 = on_sub_ok5;
        ro.onFailure5 = on_sub_fail5;
    } else {
        ro.onSuccess = on_sub_ok;
        ro.onFailure = on_sub_fail;
    }
    if (c->in->conf.key_in_topic && asprintf(&wild, "%s/+", c->topic) >= 0) {
        topics[1] = wild;
        n = 2;
    }
    c->nsub = n;
    rc = MQTTAsync_subscribeMany(c->client, n, topics, qos, &ro);
    free(wild);
    if (rc != MQTTASYNC_SUCCESS)
        c->in->host->log(c->in->ctx, TRIB_LOG_WARN, "subscribe to '%s': %s", c->topic,
                         mqtt_strerror(rc));
}

static void on_connected(void *ctx, char *cause)
{
    mqtt_consumer *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->connected = c->ever_connected = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    subscribe(c);
}

static void on_lost(void *ctx, char *cause)
{
    mqtt_consumer *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->connected = 0;
    pthread_mutex_unlock(&c->mu);
    c->in->host->log(c->in->ctx, TRIB_LOG_WARN, "consumer of '%s': connection to %s lost; "
                     "reconnecting", c->topic, c->in->conf.url);
}

/* A failed first connection fails open(); later ones are paho's automatic
   reconnection attempts and only logged. */
static void conn_failed(mqtt_consumer *c, const char *e)
{
    pthread_mutex_lock(&c->mu);
    int ever = c->ever_connected;
    pthread_mutex_unlock(&c->mu);
    if (ever)
        c->in->host->log(c->in->ctx, TRIB_LOG_WARN, "consumer of '%s': %s; retrying", c->topic, e);
    else
        set_failed(c, e);
}

/* MQTT 3.1.1 CONNACK return codes 1-5. */
static const char *connack_v3(int code)
{
    static const char *const names[] = {"unacceptable protocol version",
                                        "client identifier rejected", "server unavailable",
                                        "bad user name or password", "not authorized"};
    return code >= 1 && code <= 5 ? names[code - 1] : "refused";
}

/* paho reports a refusing CONNACK as message "CONNACK return code" with the
   broker's code in `code` (v5: a reason code >= 0x80, 3.1.1: 1-5). */
static int connack_refusal(const char *message, int code)
{
    return message && strstr(message, "CONNACK") && code > 0;
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *d)
{
    char e[300];
    const char *url = ((mqtt_consumer *)ctx)->in->conf.url;
    if (d && connack_refusal(d->message, d->code))
        snprintf(e, sizeof e, "cannot connect to %s: the broker refused the connection: %s "
                 "(return code %d)", url, connack_v3(d->code), d->code);
    else
        snprintf(e, sizeof e, "cannot connect to %s: %s", url,
                 d && d->message ? d->message : mqtt_strerror(d ? d->code : -1));
    conn_failed(ctx, e);
}

static void on_conn_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    char e[300];
    const char *url = ((mqtt_consumer *)ctx)->in->conf.url;
    int reason = !d ? 0 : d->reasonCode ? (int)d->reasonCode
                       : connack_refusal(d->message, d->code) ? d->code : 0;
    if (reason >= 0x80)
        snprintf(e, sizeof e, "cannot connect to %s: the broker refused the connection: %s "
                 "(reason 0x%02x)", url, MQTTReasonCode_toString((enum MQTTReasonCodes)reason),
                 reason);
    else
        snprintf(e, sizeof e, "cannot connect to %s: %s", url,
                 d && d->message ? d->message : mqtt_strerror(d ? d->code : -1));
    conn_failed(ctx, e);
}

static void on_disc(void *ctx, MQTTAsync_successData *d)
{
    mqtt_consumer *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->disc_done = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}
static void on_disc5(void *ctx, MQTTAsync_successData5 *d) { on_disc(ctx, NULL); }
static void on_disc_fail(void *ctx, MQTTAsync_failureData *d) { on_disc(ctx, NULL); }
static void on_disc_fail5(void *ctx, MQTTAsync_failureData5 *d) { on_disc(ctx, NULL); }

/* ----------------------------------------------------------- lifecycle */

static int connect_and_subscribe(mqtt_consumer *c, char *err, size_t errlen)
{
    const mqtt_conf *cf = &c->in->conf;
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co;
    MQTTProperties props = MQTTProperties_initializer;
    cro.MQTTVersion = cf->version;
    int rc = MQTTAsync_createWithOptions(&c->client, cf->url, c->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &cro);
    if (rc == MQTTASYNC_SUCCESS) rc = MQTTAsync_setCallbacks(c->client, c, on_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS) rc = MQTTAsync_setConnected(c->client, c, on_connected);
    if (rc == MQTTASYNC_SUCCESS) {
        mqtt_connect_opts(c->in, &co, &props);
        co.context = c;
        if (cf->version == MQTTVERSION_5)
            co.onFailure5 = on_conn_fail5;
        else
            co.onFailure = on_conn_fail;
        rc = MQTTAsync_connect(c->client, &co);
        MQTTProperties_free(&props);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "MQTT client for %s: %s", cf->url, mqtt_strerror(rc));
        return TRIB_ERR;
    }
    int64_t end = mqtt_now_ms() + 1000LL * cf->connect_timeout_s + 2000;
    pthread_mutex_lock(&c->mu);
    /* Return once the subscription is granted, so that the session holds it
       even if the caller closes at once (on_message does not wait for room
       before then: with a session present the broker delivers before the SUBACK). */
    /* messages arriving prove the session's subscription exists (a broker
       with a backlog delivers it before the SUBACK; a session probe from a
       sink may also delay our SUBACK): they are already acknowledged by paho,
       so failing now would lose them */
    while (!c->subscribed && !c->failed && c->qlen == 0 && mqtt_now_ms() < end) {
        if (c->need_sub && c->connected) {
            c->need_sub = 0;
            pthread_mutex_unlock(&c->mu);
            subscribe(c);
            pthread_mutex_lock(&c->mu);
        }
        timed_wait(c, 50);
    }
    rc = (c->subscribed || c->qlen > 0) && !c->failed ? TRIB_OK : TRIB_ERR;
    if (rc != TRIB_OK)
        snprintf(err, errlen, "consumer of '%s': %s", c->topic,
                 c->failed ? c->err : "timed out connecting and subscribing");
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void *mqtt_consumer_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                         size_t errlen)
{
    mqtt_inst *in = inst;
    if (!mqtt_topic_publishable(topic)) {
        snprintf(err, errlen, "'%s' is not an MQTT topic name", topic ? topic : "");
        return NULL;
    }
    mqtt_consumer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->in = in;
    c->bounded = o && o->bounded;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->topic = strdup(topic);
    c->client_id = mqtt_session_client_id(in, o && o->group_id ? o->group_id : in->conf.group_id, topic);
    if (!c->topic || !c->client_id) {
        snprintf(err, errlen, "out of memory");
        mqtt_consumer_close(c);
        return NULL;
    }
    if (connect_and_subscribe(c, err, errlen) != TRIB_OK) {
        mqtt_consumer_close(c);
        return NULL;
    }
    in->host->log(in->ctx, TRIB_LOG_INFO, "subscribed to '%s' on %s (session '%s')", topic,
                  in->conf.url, c->client_id);
    return c;
}

int mqtt_consumer_poll(void *consumer, int timeout_ms, trib_record **out)
{
    mqtt_consumer *c = consumer;
    int64_t deadline = mqtt_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->head) {
            qitem *it = c->head;
            c->head = it->next;
            if (!c->head) c->tail = NULL;
            c->qlen--;
            *out = it->rec;
            free(it);
            pthread_cond_broadcast(&c->cv); /* room for a waiting callback */
            rc = 1;
            break;
        }
        if (c->need_sub && c->connected) {
            c->need_sub = 0;
            pthread_mutex_unlock(&c->mu);
            subscribe(c);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (c->failed) {
            c->in->host->log(c->in->ctx, TRIB_LOG_ERROR, "consumer of '%s': %s", c->topic, c->err);
            rc = TRIB_ERR;
            break;
        }
        int64_t now = mqtt_now_ms(), wake = deadline;
        if (c->bounded && c->subscribed) {
            int64_t eof_at = c->last_activity_ms + c->in->conf.idle_eof_ms;
            if (now >= eof_at) {
                if (c->seq == 0) /* the usual reason: the session did not exist yet */
                    c->in->host->log(c->in->ctx, TRIB_LOG_WARN,
                                     "session '%s' held no message for '%s': a broker keeps "
                                     "messages only for sessions that existed when they were "
                                     "published (the sink creates those of its "
                                     "subscriber_groups) and delivers each to a session once",
                                     c->client_id, c->topic);
                rc = TRIB_EOF;
                break;
            }
            if (eof_at < wake) wake = eof_at;
        }
        if (now >= deadline) break; /* timeout: 0 */
        int64_t ms = wake - now;
        timed_wait(c, (int)(ms > 200 ? 200 : ms < 1 ? 1 : ms));
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int mqtt_consumer_commit(void *consumer, const trib_record *rec)
{
    return TRIB_OK; /* acknowledged on receipt; see the comment at the top of the file */
}

void mqtt_consumer_close(void *consumer)
{
    mqtt_consumer *c = consumer;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    int connected = c->connected;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->client && connected) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 1000;
        d.context = c;
        if (c->in->conf.version == MQTTVERSION_5) {
            d.onSuccess5 = on_disc5;
            d.onFailure5 = on_disc_fail5;
        } else {
            d.onSuccess = on_disc;
            d.onFailure = on_disc_fail;
        }
        if (MQTTAsync_disconnect(c->client, &d) == MQTTASYNC_SUCCESS) {
            int64_t end = mqtt_now_ms() + 3000;
            pthread_mutex_lock(&c->mu);
            while (!c->disc_done && mqtt_now_ms() < end) timed_wait(c, 50);
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (c->client) MQTTAsync_destroy(&c->client);
    if (c->qlen + c->discarded)
        c->in->host->log(c->in->ctx, TRIB_LOG_WARN, "consumer of '%s': %zu received message(s) "
                         "not polled are discarded (already acknowledged to the broker)",
                         c->topic, c->qlen + c->discarded);
    while (c->head) {
        qitem *it = c->head;
        c->head = it->next;
        c->in->host->record_free(it->rec);
        free(it);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->topic);
    free(c->client_id);
    free(c);
}
