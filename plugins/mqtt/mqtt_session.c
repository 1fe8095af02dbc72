/*
 * mqtt_session.c — subscriber sessions that exist before anything is published.
 *
 * An MQTT broker queues a message only for sessions that exist (and are
 * subscribed) when it is published.  So before the sink publishes to a topic
 * for the first time, it makes sure that for every group G of the
 * `subscriber_groups` option (default: the `group_id` option, the group
 * `tributary train` reads with) the persistent session
 * "<client_id>-<G>-<topic>" — the very client id the plugin's consumer uses —
 * exists and is subscribed at QoS 1.  It subscribes even when the session
 * exists: a session can exist without its subscription (an earlier process
 * killed between CONNACK and SUBACK left one, and the present flag of the
 * next CONNACK cannot tell).  The raw-socket client of mqtt_wire.c
 * does it without acknowledging, hence without consuming, anything the
 * session may already hold.
 *
 * Cost: one short connection per group, once per topic per process (and
 * again after the sink had to reconnect: the broker may have lost its
 * sessions).  Side effect to know about: connecting with a client id that a
 * consumer is using right now takes the session over, so that consumer is
 * disconnected once and reconnects (paho does it within a second); nothing
 * queued is lost.
 *
 * The topic cache is a small open-addressing hash set guarded by a mutex that
 * is also held while probing, so concurrent send()/produce() calls for one
 * topic never probe twice.  Invalidation only bumps an atomic generation:
 * it is called from paho's callback thread and must never block.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt_int.h"
#include "mqtt_wire.h"

/* Sleep slice while waiting to retry: how fast a stop request is seen. */
#define SESS_SLICE_MS 100

enum { S_UNKNOWN = 0, S_READY, S_RETRY, S_REFUSED };

typedef struct sess_topic {
    char *topic;    /* NULL: empty slot */
    int state;
    unsigned gen;   /* S_READY: the generation it was checked in */
    char *err;      /* S_REFUSED: why (the engine stops; kept for later records) */
} sess_topic;

struct mqtt_sessions {
    pthread_mutex_t mu;
    atomic_uint gen;
    sess_topic *tab;
    size_t cap, n;  /* cap: a power of two */
};

mqtt_sessions *mqtt_sessions_new(void)
{
    mqtt_sessions *ss = calloc(1, sizeof *ss);
    if (!ss) return NULL;
    pthread_mutex_init(&ss->mu, NULL);
    atomic_init(&ss->gen, 0);
    return ss;
}

void mqtt_sessions_free(mqtt_sessions *ss)
{
    if (!ss) return;
    for (size_t i = 0; i < ss->cap; i++) {
        free(ss->tab[i].topic);
        free(ss->tab[i].err);
    }
    free(ss->tab);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

void mqtt_sessions_invalidate(mqtt_inst *in)
{
    if (in->sessions) atomic_fetch_add(&in->sessions->gen, 1);
}

/* ------------------------------------------------------------- the cache */

static size_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static sess_topic *slot(sess_topic *tab, size_t cap, const char *topic)
{
    size_t i = hash(topic) & (cap - 1);
    while (tab[i].topic && strcmp(tab[i].topic, topic) != 0) i = (i + 1) & (cap - 1);
    return &tab[i];
}

static int grow(mqtt_sessions *ss)
{
    size_t cap = ss->cap ? ss->cap * 2 : 16;
    sess_topic *tab = calloc(cap, sizeof *tab);
    if (!tab) return -1;
    for (size_t i = 0; i < ss->cap; i++)
        if (ss->tab[i].topic) *slot(tab, cap, ss->tab[i].topic) = ss->tab[i];
    free(ss->tab);
    ss->tab = tab;
    ss->cap = cap;
    return 0;
}

static sess_topic *lookup_or_add(mqtt_sessions *ss, const char *topic)
{
    if ((ss->n + 1) * 2 > ss->cap && grow(ss) != 0) return NULL;
    sess_topic *e = slot(ss->tab, ss->cap, topic);
    if (!e->topic) {
        if (!(e->topic = strdup(topic))) return NULL;
        ss->n++;
    }
    return e;
}

/* ------------------------------------------------------------ the probes */

/* One group's session for topic: MQTT_WIRE_OK / _TRANSIENT / _REFUSED. */
static int probe_group(mqtt_inst *in, const char *group, const char *topic, char *err,
                       size_t errlen)
{
    const mqtt_conf *c = &in->conf;
    mqtt_wire_params p = {c->host, c->port, c->version == MQTTVERSION_5 ? MQTT_WIRE_V5
                                                                         : MQTT_WIRE_V311,
                          c->username, c->password, c->keepalive_s,
                          (uint32_t)c->session_expiry_s, c->connect_timeout_s * 1000};
    char *cid = mqtt_session_client_id(in, group, topic), *wild = NULL, werr[512];
    const char *filters[2] = {topic, NULL};
    int nf = 1;
    if (c->key_in_topic) { /* the consumer subscribes to both; so do we */
        if (asprintf(&wild, "%s/+", topic) < 0) wild = NULL;
        filters[nf++] = wild;
    }
    if (!cid || (c->key_in_topic && !wild)) {
        free(cid);
        free(wild);
        snprintf(err, errlen, "out of memory");
        return MQTT_WIRE_REFUSED;
    }
    mqtt_wire_result r;
    int rc = mqtt_wire_ensure_session(&p, cid, filters, nf, &r, werr, sizeof werr);
    if (rc != MQTT_WIRE_OK) {
        snprintf(err, errlen, "cannot create the subscriber session of group '%s' for topic "
                 "'%s': %s", group, topic, werr);
    } else if (!r.session_present) {
        in->host->log(in->ctx, TRIB_LOG_INFO, "created subscriber session '%s' (group '%s') "
                      "for topic '%s' on %s:%s", cid, group, topic, c->host, c->port);
    } else {
        in->host->log(in->ctx, TRIB_LOG_DEBUG, "subscriber session '%s' for topic '%s' exists, "
                      "subscription renewed (%zu queued message(s) left untouched)", cid, topic,
                      r.publishes_skipped);
    }
    if (rc == MQTT_WIRE_OK && r.subscribed && r.granted_qos < 1)
        in->host->log(in->ctx, TRIB_LOG_WARN, "broker granted only QoS 0 to session '%s': it "
                      "keeps no messages for it while it is away", cid);
    free(cid);
    free(wild);
    return rc;
}

static int probe_all(mqtt_inst *in, const char *topic, char *err, size_t errlen)
{
    for (size_t g = 0; g < in->conf.n_sub_groups; g++) {
        int rc = probe_group(in, in->conf.sub_groups[g], topic, err, errlen);
        if (rc != MQTT_WIRE_OK) return rc;
    }
    return MQTT_WIRE_OK;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int stopping(mqtt_inst *in)
{
    return in->host->stopping && in->host->stopping(in->ctx);
}

/* Probe until it works, the broker refuses, the engine stops or the deadline. */
static int ensure_retrying(mqtt_inst *in, sess_topic *e, unsigned gen, int64_t deadline_ms,
                           char *err, size_t errlen)
{
    int backoff = 1;
    for (;;) {
        int rc = probe_all(in, e->topic, err, errlen);
        if (rc == MQTT_WIRE_OK) {
            e->state = S_READY;
            e->gen = gen;
            return TRIB_OK;
        }
        if (rc == MQTT_WIRE_REFUSED) {
            size_t l = strlen(err);
            snprintf(err + l, errlen > l ? errlen - l : 0,
                     " (set subscriber_groups: [] to publish without creating sessions)");
            e->state = S_REFUSED;
            e->err = strdup(err);
            return TRIB_ERR;
        }
        e->state = S_RETRY;
        if (stopping(in)) return TRIB_STOP;
        if (deadline_ms && mqtt_now_ms() >= deadline_ms) return TRIB_RETRY;
        in->host->log(in->ctx, TRIB_LOG_WARN, "%s; retrying in %d s", err, backoff);
        for (int64_t wake = mqtt_now_ms() + 1000LL * backoff; mqtt_now_ms() < wake;) {
            if (stopping(in)) return TRIB_STOP;
            if (deadline_ms && mqtt_now_ms() >= deadline_ms) return TRIB_RETRY;
            sleep_ms(SESS_SLICE_MS);
        }
        backoff = backoff * 2 > in->conf.reconnect_max_s ? in->conf.reconnect_max_s : backoff * 2;
    }
}

int mqtt_sessions_ensure(mqtt_inst *in, const char *topic, int64_t deadline_ms, char *err,
                         size_t errlen)
{
    mqtt_sessions *ss = in->sessions;
    if (!ss || in->conf.n_sub_groups == 0) return TRIB_OK;
    unsigned gen = atomic_load(&ss->gen);
    int rc;
    pthread_mutex_lock(&ss->mu);
    sess_topic *e = lookup_or_add(ss, topic);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        rc = TRIB_ERR;
    } else if (e->state == S_READY && e->gen == gen) {
        rc = TRIB_OK;
    } else if (e->state == S_REFUSED) {
        snprintf(err, errlen, "%s", e->err ? e->err : "subscriber session refused");
        rc = TRIB_ERR;
    } else {
        rc = ensure_retrying(in, e, gen, deadline_ms, err, errlen);
    }
    pthread_mutex_unlock(&ss->mu);
    return rc;
}
