/*
 * mqtt_int.h — internals shared by the files of the `mqtt` plugin.
 *
 * The plugin is split in these files:
 *   mqtt.c          descriptor, option table, instance lifecycle, client ids
 *   mqtt_sink.c     publishing over our own connection (I/O thread): send/flush/
 *                   produce, acks on PUBACK/PUBCOMP, resends after reconnects
 *   mqtt_session.c  subscriber sessions created before a topic's first publish
 *   mqtt_wire.c     MQTT codec and the raw-socket client doing that without
 *                   consuming (mqtt_wire.h)
 *   mqtt_consumer.c subscribing with a persistent session, poll/commit/close
 *   mqtt_codec.c    pure helpers: UTF-8 checks, base64, topic-level escaping,
 *                   record <-> MQTT v5 user properties (unit-tested alone)
 * Everything lives in the instance; there is no global mutable state.
 */
#ifndef TRIB_MQTT_INT_H
#define TRIB_MQTT_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <MQTTAsync.h>
#include <tributary/plugin.h>

/** Validated configuration of one instance (strings owned). */
typedef struct mqtt_conf {
    char *url;
    char *client_id;        /**< configured or derived (see mqtt_default_client_id) */
    char *username;
    char *password;         /**< secret: never logged */
    char *group_id;         /**< consumer default group */
    int qos;                /**< 0, 1 or 2 */
    int version;            /**< MQTTVERSION_5 or MQTTVERSION_3_1_1 */
    int key_in_topic;       /**< key as the last topic level */
    int max_inflight;       /**< unacknowledged publishes before send() blocks */
    int64_t session_expiry_s;
    int idle_eof_ms;        /**< bounded read: silence that means "end of data" */
    int queue_max;          /**< consumer: received but not yet polled */
    int keepalive_s;
    int connect_timeout_s;
    int reconnect_max_s;
    char **sub_groups;      /**< subscriber_groups: sessions the sink creates */
    size_t n_sub_groups;
    char host[256], port[16]; /**< parsed from url (for the raw session client) */
} mqtt_conf;

typedef struct mqtt_sink mqtt_sink;
typedef struct mqtt_sessions mqtt_sessions;

/** One plugin instance. */
typedef struct mqtt_inst {
    trib_ctx *ctx;
    const trib_host *host;
    mqtt_conf conf;
    pthread_mutex_t lock;   /**< guards lazy creation of `sink` */
    mqtt_sink *sink;        /**< created on the first send/produce */
    mqtt_sessions *sessions;/**< topics whose subscriber sessions exist */
} mqtt_inst;

/* ---- mqtt.c ---- */
int64_t mqtt_now_ms(void);
/** Fill a connect-options struct common to sink and consumer clients. */
void mqtt_connect_opts(const mqtt_inst *in, MQTTAsync_connectOptions *co, MQTTProperties *props);
/** One line naming a paho return code. */
const char *mqtt_strerror(int rc);
/** Client id of a consumer session: "<client_id>-<group>-<topic>", with
    control characters, '+', '#' and '/' replaced by '_'.  malloc'd. */
char *mqtt_session_client_id(const mqtt_inst *in, const char *group, const char *topic);

/* ---- mqtt_session.c ---- */
mqtt_sessions *mqtt_sessions_new(void);
void mqtt_sessions_free(mqtt_sessions *ss);
/**
 * Before the first publish to `topic`: make sure the persistent session
 * <client_id>-<group>-<topic> exists and is subscribed to the topic for every
 * group of subscriber_groups (cached per topic; cheap afterwards).  Retries
 * with backoff while the broker is unreachable.  deadline_ms: 0 = until it
 * works or the engine stops, else a mqtt_now_ms() time.  Returns TRIB_OK,
 * TRIB_STOP (engine stopping), TRIB_RETRY (deadline passed) or TRIB_ERR (the
 * broker refused: err says why, naming broker, topic and session).
 */
int mqtt_sessions_ensure(mqtt_inst *in, const char *topic, int64_t deadline_ms, char *err,
                         size_t errlen);
/** The sink reconnected: re-check every topic's sessions before its next publish
    (the broker may have restarted without persistence).  Never blocks. */
void mqtt_sessions_invalidate(mqtt_inst *in);

/* ---- mqtt_sink.c ---- */
int mqtt_sink_send(void *inst, trib_record **recs, size_t n);
int mqtt_sink_flush(void *inst, int timeout_ms);
int mqtt_sink_produce(void *inst, const trib_record *rec, int timeout_ms);
void mqtt_sink_destroy(mqtt_sink *s);

/* ---- mqtt_consumer.c ---- */
void *mqtt_consumer_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                         size_t errlen);
int mqtt_consumer_poll(void *consumer, int timeout_ms, trib_record **out);
int mqtt_consumer_commit(void *consumer, const trib_record *rec);
void mqtt_consumer_close(void *consumer);

/* ---- mqtt_codec.c (pure; no paho client, no host needed except where given) ---- */
/** 1 when [s, s+len) is well-formed UTF-8 without NUL or other C0/C1 controls
    (what an MQTT UTF-8 string may safely carry to any broker). */
int mqtt_utf8_clean(const char *s, size_t len);
/** Base64 (RFC 4648, padded).  Returns a malloc'd NUL-terminated string or NULL. */
char *mqtt_b64_encode(const void *data, size_t len);
/** Decode base64; malloc'd buffer (NUL-terminated), *outlen set; NULL if malformed. */
char *mqtt_b64_decode(const char *s, size_t len, size_t *outlen);
/** Escape a key as one topic level: bytes outside [A-Za-z0-9._-~:=,;@!$&'()*]
    (notably '/', '+', '#', '%', NUL, non-ASCII) become %XX.  malloc'd. */
char *mqtt_level_escape(const void *data, size_t len);
/** Inverse of mqtt_level_escape; malloc'd, *outlen set; NULL if malformed. */
char *mqtt_level_unescape(const char *s, size_t len, size_t *outlen);
/** 1 when `topic` may be published to: non-empty clean UTF-8, no '+', '#'. */
int mqtt_topic_publishable(const char *topic);
/** Parse "X/Y" hex; 0 on malformed. */
uint64_t mqtt_lsn_parse(const char *s);

/**
 * Add user property (name, value) to props, base64-encoding the value (and
 * adding "<name>-encoding: base64") when it is not clean UTF-8.  Strings are
 * copied into `arena` entries that the caller frees with mqtt_props_free.
 */
int mqtt_props_add(MQTTProperties *props, const char *name, const void *value, size_t len);
/** Free props built with mqtt_props_add (their strings and array). */
void mqtt_props_free(MQTTProperties *props);
/** Build the user properties of a record: key (unless key_in_topic), op, lsn, headers. */
int mqtt_props_from_record(MQTTProperties *props, const trib_record *rec, int with_key);
struct mqtt_wire_buf;
/** The same user properties as mqtt_props_from_record, appended to b in wire form
    (each 0x26 name value; no length prefix): what the sink's own client sends. */
int mqtt_props_encode(struct mqtt_wire_buf *b, const trib_record *rec, int with_key);
/**
 * Fill rec's key (unless already set), op, src.lsn and headers from the
 * user properties of a received message, decoding "<name>-encoding: base64".
 * Returns TRIB_OK or TRIB_ERR with a message in err.
 */
int mqtt_props_to_record(const trib_host *h, trib_record *rec, MQTTProperties *props, char *err,
                         size_t errlen);

#endif /* TRIB_MQTT_INT_H */
