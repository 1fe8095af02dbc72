/*
 * mqtt.c — the `mqtt` broker plugin: descriptor, options and instance lifecycle.
 *
 * A sink publishing each record to the MQTT topic named by the record
 * (payload = value, key and change metadata as v5 user properties), and a
 * consumer reading them back through a persistent session.  The sink
 * publishes over a connection of its own (mqtt_sink.c on mqtt_wire.c's
 * codec); the consumer uses the asynchronous paho client (MQTTAsync; the
 * synchronous one waits for each PUBACK).
 *
 * Client ids.  Persistent sessions are keyed by client id, so the id must be
 * the same from one run to the next (a pid-based id would orphan a session on
 * the broker at every restart and the trainer would never see what was
 * published while it was away).  The default is therefore
 * "tributary-<host>-<8 hex digits>", the digits hashing the state directory:
 * stable across restarts, the same for `tributary run` and `tributary train`
 * of one config (so the trainer finds its sessions), different for two
 * pipelines on one host.  Consumers add "-<group>-<topic>" to it.
 *
 * Subscriber sessions.  A broker keeps messages only for sessions that exist
 * when they are published; the sink therefore creates the sessions of
 * `subscriber_groups` (default: `group_id`, the group `tributary train`
 * reads with) before its first publish to each topic (mqtt_session.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_int.h"
#include "mqtt_wire.h"

static const trib_option mqtt_options[] = {
    {"url", TRIB_OPT_STRING, NULL, 1, NULL, "broker address, tcp://host:port", 0},
    {"client_id", TRIB_OPT_STRING, NULL, 0, NULL,
     "MQTT client id (default tributary-<host>-<hash of state dir>; stable across restarts)", 0},
    {"qos", TRIB_OPT_ENUM, "1", 0, "0|1|2", "publish QoS; 1 acknowledges a record on PUBACK", 0},
    {"mqtt_version", TRIB_OPT_ENUM, "5", 0, "5|3.1.1", "protocol version", 0},
    {"key_in_topic", TRIB_OPT_BOOL, "false", 0, NULL,
     "publish to <topic>/<escaped key> (for 3.1.1, which has no user properties)", 0},
    {"max_inflight", TRIB_OPT_INT, "200", 0, NULL,
     "unacknowledged messages (also held while disconnected) before send blocks; the broker's "
     "Receive Maximum (v5) may lower the number on the wire", 0},
    {"username", TRIB_OPT_STRING, NULL, 0, NULL, "user name", 0},
    {"password", TRIB_OPT_STRING, NULL, 0, NULL, "password", 1},
    {"group_id", TRIB_OPT_STRING, "tributary", 0, NULL,
     "consumer: default group (`tributary train` reads with it); the session's client id is "
     "<client_id>-<group>-<topic>", 0},
    {"subscriber_groups", TRIB_OPT_LIST, NULL, 0, NULL,
     "sink: groups whose persistent sessions are created (subscribed, nothing consumed) before "
     "the first publish to a topic, so their consumers get every message (default: [group_id]; "
     "[] for none)", 0},
    {"session_expiry_s", TRIB_OPT_INT, "86400", 0, NULL,
     "how long the broker keeps a consumer's session (and its queued messages) while away", 0},
    {"idle_eof_ms", TRIB_OPT_INT, "2000", 0, NULL,
     "consumer: a bounded read ends after this long without a message", 0},
    {"queue_max", TRIB_OPT_INT, "1000", 0, NULL,
     "consumer: received messages held before reading from the broker pauses", 0},
    {"keepalive_s", TRIB_OPT_INT, "30", 0, NULL, "MQTT keep-alive interval", 0},
    {"connect_timeout_s", TRIB_OPT_INT, "10", 0, NULL, "time allowed for one connection attempt", 0},
    {"reconnect_max_s", TRIB_OPT_INT, "16", 0, NULL,
     "longest wait between reconnection attempts (doubles from 1 s)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

int64_t mqtt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *mqtt_strerror(int rc)
{
    const char *s = MQTTAsync_strerror(rc);
    return s ? s : "unknown error";
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Stable default client id; see the comment at the top of the file. */
static char *default_client_id(mqtt_inst *in)
{
    char host[64] = "localhost", *out;
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            *p = '-';
    const char *sd = in->host->state_dir ? in->host->state_dir(in->ctx) : NULL;
    uint32_t h = fnv1a(2166136261u, sd);
    if (asprintf(&out, "tributary-%.32s-%08x", host, h) < 0) return NULL;
    return out;
}

static char *opt_dup(const trib_host *h, const trib_opts *o, const char *name)
{
    const char *v = h->opt_str(o, name);
    return v ? strdup(v) : NULL;
}

char *mqtt_session_client_id(const mqtt_inst *in, const char *group, const char *topic)
{
    char *id;
    if (asprintf(&id, "%s-%s-%s", in->conf.client_id, group, topic) < 0) return NULL;
    for (char *p = id; *p; p++) /* keep ids printable for broker logs */
        if ((unsigned char)*p < 0x21 || *p == '+' || *p == '#' || *p == '/') *p = '_';
    return id;
}

/* subscriber_groups: as given (an empty list turns the feature off), else group_id. */
static int groups_load(mqtt_inst *in, const trib_opts *o, char *err, size_t errlen)
{
    mqtt_conf *c = &in->conf;
    const char *const *items = NULL;
    size_t n = in->host->opt_list ? in->host->opt_list(o, "subscriber_groups", &items) : 0;
    int given = in->host->opt_given && in->host->opt_given(o, "subscriber_groups");
    const char *const dflt[1] = {c->group_id};
    if (!given && n == 0) {
        items = dflt;
        n = 1;
    }
    c->sub_groups = calloc(n ? n : 1, sizeof *c->sub_groups);
    if (!c->sub_groups) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        if (!items[i] || !*items[i]) {
            snprintf(err, errlen, "option 'subscriber_groups': item %zu is empty", i + 1);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[i], items[j]) == 0) {
                snprintf(err, errlen, "option 'subscriber_groups': '%s' is listed twice",
                         items[i]);
                return -1;
            }
        if (!(c->sub_groups[c->n_sub_groups++] = strdup(items[i])))
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

/* Read and check the options; 0 or -1 with err filled. */
static int conf_load(mqtt_inst *in, const trib_opts *o, char *err, size_t errlen)
{
    const trib_host *h = in->host;
    mqtt_conf *c = &in->conf;
    c->url = opt_dup(h, o, "url");
    c->client_id = opt_dup(h, o, "client_id");
    c->username = opt_dup(h, o, "username");
    c->password = opt_dup(h, o, "password");
    c->group_id = opt_dup(h, o, "group_id");
    const char *q = h->opt_str(o, "qos"), *v = h->opt_str(o, "mqtt_version");
    c->qos = q ? atoi(q) : 1;
    c->version = (v && strcmp(v, "3.1.1") == 0) ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
    c->key_in_topic = h->opt_bool(o, "key_in_topic");
    c->max_inflight = (int)h->opt_int(o, "max_inflight");
    c->session_expiry_s = h->opt_int(o, "session_expiry_s");
    c->idle_eof_ms = (int)h->opt_int(o, "idle_eof_ms");
    c->queue_max = (int)h->opt_int(o, "queue_max");
    c->keepalive_s = (int)h->opt_int(o, "keepalive_s");
    c->connect_timeout_s = (int)h->opt_int(o, "connect_timeout_s");
    c->reconnect_max_s = (int)h->opt_int(o, "reconnect_max_s");
    if (!c->group_id) c->group_id = strdup("tributary");
    if (!c->client_id) c->client_id = default_client_id(in);
    if (!c->url || !c->client_id || !c->group_id) {
        snprintf(err, errlen, "option 'url' is required");
        return -1;
    }
    if ((strncmp(c->url, "tcp://", 6) != 0 && strncmp(c->url, "mqtt://", 7) != 0) ||
        mqtt_wire_parse_url(c->url, c->host, sizeof c->host, c->port, sizeof c->port) != 0) {
        snprintf(err, errlen, "option 'url': '%s' is not tcp://host:port", c->url);
        return -1;
    }
    if (c->qos < 0 || c->qos > 2) {
        snprintf(err, errlen, "option 'qos': must be 0, 1 or 2");
        return -1;
    }
    if (c->max_inflight < 1 || c->max_inflight > 65535) {
        snprintf(err, errlen, "option 'max_inflight': %d is not within 1..65535", c->max_inflight);
        return -1;
    }
    if (c->session_expiry_s < 0 || c->session_expiry_s > 0xFFFFFFFFLL) {
        snprintf(err, errlen, "option 'session_expiry_s': must be within 0..4294967295");
        return -1;
    }
    if (c->idle_eof_ms < 1 || c->queue_max < 1 || c->keepalive_s < 0 ||
        c->connect_timeout_s < 1 || c->reconnect_max_s < 1) {
        snprintf(err, errlen, "options idle_eof_ms, queue_max, connect_timeout_s, "
                              "reconnect_max_s must be positive, keepalive_s not negative");
        return -1;
    }
    return groups_load(in, o, err, errlen);
}

void mqtt_connect_opts(const mqtt_inst *in, MQTTAsync_connectOptions *co, MQTTProperties *props)
{
    const mqtt_conf *c = &in->conf;
    MQTTAsync_connectOptions v5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions v3 = MQTTAsync_connectOptions_initializer;
    *co = c->version == MQTTVERSION_5 ? v5 : v3;
    co->keepAliveInterval = c->keepalive_s;
    co->connectTimeout = c->connect_timeout_s;
    co->username = c->username;
    co->password = c->password;
    co->automaticReconnect = 1;
    co->minRetryInterval = 1;
    co->maxRetryInterval = c->reconnect_max_s;
    co->maxInflight = c->max_inflight;
    /* Keep the session across reconnects: the broker keeps our subscriptions
       and both sides resend unacknowledged QoS 1/2 messages. */
    if (c->version == MQTTVERSION_5) {
        MQTTProperty p;
        memset(&p, 0, sizeof p);
        p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
        p.value.integer4 = (unsigned)c->session_expiry_s;
        MQTTProperties_add(props, &p);
        co->cleanstart = 0;
        co->connectProperties = props;
    } else {
        co->cleansession = 0;
    }
}

static void conf_free(mqtt_conf *c)
{
    free(c->url);
    free(c->client_id);
    free(c->username);
    if (c->password) memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->group_id);
    for (size_t i = 0; i < c->n_sub_groups; i++) free(c->sub_groups[i]);
    free(c->sub_groups);
}

static void mqtt_destroy(void *p)
{
    mqtt_inst *in = p;
    if (!in) return;
    if (in->sink) mqtt_sink_destroy(in->sink);
    mqtt_sessions_free(in->sessions);
    pthread_mutex_destroy(&in->lock);
    conf_free(&in->conf);
    free(in);
}

static int mqtt_create(trib_ctx *ctx, const trib_host *host, const trib_opts *opts, void **out,
                       char *err, size_t errlen)
{
    mqtt_inst *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return TRIB_ERR;
    }
    in->ctx = ctx;
    in->host = host;
    pthread_mutex_init(&in->lock, NULL);
    in->sessions = mqtt_sessions_new();
    if (!in->sessions) {
        snprintf(err, errlen, "out of memory");
        mqtt_destroy(in);
        return TRIB_ERR;
    }
    if (conf_load(in, opts, err, errlen) != 0) {
        mqtt_destroy(in);
        return TRIB_ERR;
    }
    *out = in;
    return TRIB_OK;
}

static const trib_sink_ops mqtt_sink_ops = {.send = mqtt_sink_send, .flush = mqtt_sink_flush};

static const trib_consumer_ops mqtt_consumer_ops = {mqtt_consumer_open, mqtt_consumer_poll,
                                                    mqtt_consumer_commit, mqtt_consumer_close,
                                                    mqtt_sink_produce};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "mqtt",
    "0.1.0",
    "MQTT v5/3.1.1 sink (ack on PUBACK) and persistent-session consumer (paho MQTTAsync)",
    TRIB_ROLE_SINK | TRIB_ROLE_CONSUMER,
    mqtt_options,
    mqtt_create,
    NULL, /* start: the client connects on first use, so `tributary train` never
             opens the sink's session while `tributary run` holds it */
    mqtt_destroy,
    NULL,
    NULL,
    &mqtt_sink_ops,
    &mqtt_consumer_ops,
    NULL,
};
