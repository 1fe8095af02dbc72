/*
 * mqtt_wire.h — a tiny raw-socket MQTT (v5 and 3.1.1) client that does one
 * thing: make sure a persistent session with a subscription exists on the
 * broker, without ever consuming a message.
 *
 * Why not paho: paho-mqtt-c 1.3.12 acknowledges a QoS 1 PUBLISH (PUBACK) as
 * soon as it reads it, so opening a session that already holds queued
 * messages with paho would take them away from the consumer the session is
 * for.  This client sends CONNECT (clean start 0, session expiry), reads
 * CONNACK's session-present flag, SUBSCRIBEs at QoS 1 (new session or not: a
 * session can exist without the subscription, e.g. left by a process killed
 * between CONNACK and SUBACK), waits for SUBACK, sends DISCONNECT and closes.  Any
 * PUBLISH the broker sends meanwhile is read and dropped WITHOUT a PUBACK (or
 * PUBREC), so the broker keeps it in the session and delivers it again to the
 * next connection with that client id (MQTT v5 4.4, 3.1.1 4.4).
 *
 * Deliberately not sent: a Maximum Packet Size (a v5 broker DISCARDS messages
 * larger than the client's maximum instead of keeping them) and a will.
 * Receive Maximum is 1 (v5), so a session holding a backlog sends at most one
 * unacknowledged message to us.
 *
 * Pure except for mqtt_wire_ensure_session (sockets); no paho, no host
 * table, no global state: unit-tested by tests/internal/test_mqtt_wire.c.
 */
#ifndef TRIB_MQTT_WIRE_H
#define TRIB_MQTT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define MQTT_WIRE_V311 4 /* protocol level byte of MQTT 3.1.1 */
#define MQTT_WIRE_V5 5

/* Outcome of mqtt_wire_ensure_session. */
enum {
    MQTT_WIRE_OK = 0,
    MQTT_WIRE_TRANSIENT = 1, /* network, timeout, broker busy: try again later */
    MQTT_WIRE_REFUSED = -1   /* the broker refused (credentials, authorization, protocol) */
};

/** Where and how to connect.  Strings are borrowed. */
typedef struct mqtt_wire_params {
    const char *host;         /* name or address; IPv6 without brackets */
    const char *port;         /* service, "1883" */
    int version;              /* MQTT_WIRE_V5 or MQTT_WIRE_V311 */
    const char *username;     /* NULL: none */
    const char *password;     /* NULL: none; never appears in messages */
    int keepalive_s;
    uint32_t session_expiry_s;/* v5 Session Expiry Interval */
    int timeout_ms;           /* for the whole exchange */
} mqtt_wire_params;

/** What one exchange found out (filled as far as it got). */
typedef struct mqtt_wire_result {
    int session_present;      /* CONNACK flag */
    int subscribed;           /* SUBSCRIBE sent and granted */
    int granted_qos;          /* lowest QoS granted (when subscribed) */
    size_t publishes_skipped; /* PUBLISH packets read and left unacknowledged */
} mqtt_wire_result;

/**
 * Split "tcp://host:port" / "mqtt://[v6]:port" (port default 1883; userinfo
 * and a trailing path are ignored) into host and port.  0, or -1 if malformed.
 */
int mqtt_wire_parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen);

/**
 * Connect as client_id with a persistent session; subscribe to `filters` at
 * QoS 1 (always: a session can exist without its subscription); disconnect.
 * Never sends
 * PUBACK/PUBREC.  Returns MQTT_WIRE_OK, _TRANSIENT or _REFUSED with a one-line
 * reason in err that names host:port and the client id (never the password).
 */
int mqtt_wire_ensure_session(const mqtt_wire_params *p, const char *client_id,
                             const char *const *filters, int nfilters,
                             mqtt_wire_result *res, char *err, size_t errlen);

/* ---- the publishing connection of the sink (mqtt_sink.c) ---- */

/** What a v5 CONNACK allows (defaults for 3.1.1 and absent properties). */
typedef struct mqtt_wire_limits {
    unsigned receive_max;     /* QoS 1/2 publishes unacknowledged at once */
    int max_qos;
    uint32_t max_packet;      /* bytes, whole packet */
} mqtt_wire_limits;

/** Open a TCP connection (non-blocking socket) within p->timeout_ms: fd, or -1 with err
    set (`who` names the broker in it). */
int mqtt_wire_dial(const mqtt_wire_params *p, const char *who, char *err, size_t errlen);
/** Send CONNECT (clean start 0, session expiry) on fd and read the CONNACK within
    p->timeout_ms; PUBLISHes before it are skipped.  MQTT_WIRE_OK with the CONNACK body
    (malloc'd) in *connack, or _TRANSIENT / _REFUSED with err set. */
int mqtt_wire_connect_exchange(int fd, const mqtt_wire_params *p, const char *client_id,
                               const char *who, uint8_t **connack, size_t *connack_len,
                               char *err, size_t errlen);
/** Limits announced in a CONNACK body: 0, or -1 if its properties are malformed. */
int mqtt_wire_connack_limits(int version, const uint8_t *body, size_t len, mqtt_wire_limits *lim);

/** A growable byte buffer; oom is set (and further puts ignored) when realloc fails. */
typedef struct mqtt_wire_buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} mqtt_wire_buf;
void mqtt_wire_put(mqtt_wire_buf *b, const void *d, size_t n);
void mqtt_wire_put_u8(mqtt_wire_buf *b, unsigned v);
/** Two length bytes, then n bytes (n <= 65535). */
void mqtt_wire_put_str(mqtt_wire_buf *b, const char *s, size_t n);
/** Append a PUBLISH: props are the v5 properties without their length (ignored for
    3.1.1); pid only used for QoS > 0; dup only for QoS > 0. */
void mqtt_wire_put_publish(mqtt_wire_buf *b, int version, const char *topic, size_t tlen, int qos,
                           int dup, uint16_t pid, const uint8_t *props, size_t plen,
                           const void *payload, size_t paylen);
/** Size mqtt_wire_put_publish would append. */
size_t mqtt_wire_publish_size(int version, size_t tlen, int qos, size_t plen, size_t paylen);
/** Append a 4-byte packet carrying only a packet identifier (PUBACK 0x40, PUBREL 0x62...). */
void mqtt_wire_put_ack(mqtt_wire_buf *b, unsigned type_flags, uint16_t pid);
/** Is a whole packet at buf?  1 with its first byte, header length and remaining length;
    0 if more bytes are needed; -1 if the length is malformed. */
int mqtt_wire_frame(const uint8_t *buf, size_t len, unsigned *type_flags, size_t *hdr_len,
                    uint32_t *rem);
/** PUBACK/PUBREC/PUBCOMP body: packet identifier and (v5) reason code (0 when absent). */
int mqtt_wire_ack(int version, const uint8_t *body, size_t len, uint16_t *pid, int *reason);

/* ---- codec (exposed for the unit tests) ---- */

/** Encode a Variable Byte Integer (v <= 268435455) into out[4]; returns its length. */
size_t mqtt_wire_varint(uint8_t *out, uint32_t v);
/** Decode one: 0 and *v, *used set; 1 when more bytes are needed; -1 if malformed. */
int mqtt_wire_varint_decode(const uint8_t *in, size_t len, uint32_t *v, size_t *used);
/** CONNECT packet (malloc'd, *len set) or NULL if a field does not fit (err set). */
uint8_t *mqtt_wire_connect(const mqtt_wire_params *p, const char *client_id, size_t *len,
                           char *err, size_t errlen);
/** SUBSCRIBE packet at QoS 1 for the filters (v5: Retain Handling 1), packet identifier pid. */
uint8_t *mqtt_wire_subscribe(int version, uint16_t pid, const char *const *filters, int n,
                             size_t *len);
/** Parse a CONNACK body: 0 with *present and *code set, -1 if malformed. */
int mqtt_wire_connack(int version, const uint8_t *body, size_t len, int *present, int *code);
/**
 * Parse a SUBACK body for packet identifier pid and n filters: 0 with codes[]
 * set, -1 if malformed or for another packet identifier.
 */
int mqtt_wire_suback(int version, const uint8_t *body, size_t len, uint16_t pid, int n,
                     int *codes);
/** Text of a CONNACK / SUBACK / DISCONNECT reason (v5) or return code (3.1.1). */
const char *mqtt_wire_reason(int version, int code);
/** 1 when a refusal with this code may succeed later (server busy, unavailable...). */
int mqtt_wire_reason_transient(int version, int code);

#endif /* TRIB_MQTT_WIRE_H */
