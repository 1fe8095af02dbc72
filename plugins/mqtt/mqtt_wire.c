/*
 * mqtt_wire.c — the raw-socket MQTT client that creates persistent sessions
 * without consuming anything (see mqtt_wire.h for why it exists).
 *
 * Two halves: a codec (packet building and parsing, pure) and one exchange
 * over a non-blocking TCP socket bounded by a single deadline:
 *   CONNECT (clean start 0) -> CONNACK [-> SUBSCRIBE QoS 1 -> SUBACK] -> DISCONNECT.
 * PUBLISH packets arriving in between are skipped in chunks, never
 * acknowledged and never held in memory whole.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_wire.h"

#define WIRE_MAX_CONTROL 65536 /* CONNACK/SUBACK/DISCONNECT bodies, properties included */
#define WIRE_PID 1             /* our only SUBSCRIBE's packet identifier */
#define WIRE_DRAIN_MS 500      /* after DISCONNECT: wait this long for the broker to close */

enum { P_CONNACK = 2, P_PUBLISH = 3, P_SUBACK = 9, P_DISCONNECT = 14, P_AUTH = 15 };

/* ------------------------------------------------------------------ codec */

size_t mqtt_wire_varint(uint8_t *out, uint32_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v) b |= 0x80;
        out[n++] = b;
    } while (v && n < 4);
    return n;
}

int mqtt_wire_varint_decode(const uint8_t *in, size_t len, uint32_t *v, size_t *used)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= len) return 1;
        val |= (uint32_t)(in[i] & 0x7F) << (7 * i);
        if (!(in[i] & 0x80)) {
            *v = val;
            *used = i + 1;
            return 0;
        }
    }
    return -1;
}

typedef mqtt_wire_buf wbuf;

static void put(wbuf *b, const void *d, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2 + 64;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put_u8(wbuf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put_u16(wbuf *b, unsigned v)
{
    uint8_t c[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, c, 2);
}

static void put_u32(wbuf *b, uint32_t v)
{
    uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, c, 4);
}

/* A UTF-8 string / binary data field: two length bytes, then the bytes. */
static void put_str(wbuf *b, const char *s, size_t n)
{
    put_u16(b, (unsigned)n);
    put(b, s, n);
}

void mqtt_wire_put(mqtt_wire_buf *b, const void *d, size_t n) { put(b, d, n); }

void mqtt_wire_put_str(mqtt_wire_buf *b, const char *s, size_t n) { put_str(b, s, n); }

void mqtt_wire_put_u8(mqtt_wire_buf *b, unsigned v) { put_u8(b, v); }

void mqtt_wire_put_publish(mqtt_wire_buf *b, int version, const char *topic, size_t tlen, int qos,
                           int dup, uint16_t pid, const uint8_t *props, size_t plen,
                           const void *payload, size_t paylen)
{
    uint8_t vi[4];
    size_t pvl = version == MQTT_WIRE_V5 ? mqtt_wire_varint(vi, (uint32_t)plen) : 0;
    size_t rem = 2 + tlen + (qos > 0 ? 2 : 0) + (version == MQTT_WIRE_V5 ? pvl + plen : 0) + paylen;
    uint8_t hdr[5];
    hdr[0] = (uint8_t)(0x30 | (dup && qos > 0 ? 0x08 : 0) | (qos << 1));
    size_t h = 1 + mqtt_wire_varint(hdr + 1, (uint32_t)rem);
    put(b, hdr, h);
    put_str(b, topic, tlen);
    if (qos > 0) put_u16(b, pid);
    if (version == MQTT_WIRE_V5) {
        put(b, vi, pvl);
        put(b, props, plen);
    }
    put(b, payload, paylen);
}

size_t mqtt_wire_publish_size(int version, size_t tlen, int qos, size_t plen, size_t paylen)
{
    uint8_t vi[4];
    size_t rem = 2 + tlen + (qos > 0 ? 2 : 0) +
                 (version == MQTT_WIRE_V5 ? mqtt_wire_varint(vi, (uint32_t)plen) + plen : 0) + paylen;
    return 1 + mqtt_wire_varint(vi, (uint32_t)(rem > 268435455u ? 268435455u : rem)) + rem;
}

void mqtt_wire_put_ack(mqtt_wire_buf *b, unsigned type_flags, uint16_t pid)
{
    uint8_t pkt[4] = {(uint8_t)type_flags, 2, (uint8_t)(pid >> 8), (uint8_t)pid};
    put(b, pkt, 4);
}

int mqtt_wire_frame(const uint8_t *buf, size_t len, unsigned *type_flags, size_t *hdr_len,
                    uint32_t *rem)
{
    if (len < 2) return 0;
    size_t used;
    int rc = mqtt_wire_varint_decode(buf + 1, len - 1, rem, &used);
    if (rc < 0) return -1;
    if (rc > 0) return 0;
    *type_flags = buf[0];
    *hdr_len = 1 + used;
    return len - *hdr_len >= *rem ? 1 : 0;
}

int mqtt_wire_ack(int version, const uint8_t *body, size_t len, uint16_t *pid, int *reason)
{
    if (len < 2) return -1;
    *pid = (uint16_t)((unsigned)body[0] << 8 | body[1]);
    *reason = 0;
    if (version != MQTT_WIRE_V5) return len == 2 ? 0 : -1;
    if (len >= 3) *reason = body[2];
    return 0; /* properties (reason string) are not needed */
}

/* Length of one v5 property's value (after its identifier) at p; 0 if unknown/overrun. */
static size_t prop_len(unsigned id, const uint8_t *p, size_t left)
{
    switch (id) {
    case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
        return left >= 1 ? 1 : 0;
    case 0x13: case 0x21: case 0x22: case 0x23:
        return left >= 2 ? 2 : 0;
    case 0x02: case 0x11: case 0x18: case 0x27:
        return left >= 4 ? 4 : 0;
    case 0x0B: {
        uint32_t v;
        size_t used;
        return mqtt_wire_varint_decode(p, left, &v, &used) == 0 ? used : 0;
    }
    case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1A: case 0x1C:
    case 0x1F: {
        if (left < 2) return 0;
        size_t n = 2 + ((size_t)p[0] << 8 | p[1]);
        return n <= left ? n : 0;
    }
    case 0x26: {
        if (left < 2) return 0;
        size_t a = 2 + ((size_t)p[0] << 8 | p[1]);
        if (a + 2 > left) return 0;
        size_t n = a + 2 + ((size_t)p[a] << 8 | p[a + 1]);
        return n <= left ? n : 0;
    }
    default:
        return 0;
    }
}

int mqtt_wire_connack_limits(int version, const uint8_t *body, size_t len, mqtt_wire_limits *lim)
{
    lim->receive_max = 65535;
    lim->max_qos = 2;
    lim->max_packet = 268435460u;
    if (version != MQTT_WIRE_V5 || len <= 2) return 0;
    uint32_t plen;
    size_t used, off = 2;
    if (mqtt_wire_varint_decode(body + off, len - off, &plen, &used) != 0 || plen > len - off - used)
        return -1;
    off += used;
    size_t end = off + plen;
    while (off < end) {
        unsigned id = body[off++];
        const uint8_t *v = body + off;
        size_t n = prop_len(id, v, end - off);
        if (n == 0) return -1;
        if (id == 0x21) lim->receive_max = (unsigned)v[0] << 8 | v[1];
        else if (id == 0x24) lim->max_qos = v[0];
        else if (id == 0x27)
            lim->max_packet = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
        off += n;
    }
    if (lim->receive_max == 0 || lim->max_packet == 0) return -1; /* protocol errors */
    return 0;
}

/* Prepend the fixed header to body; frees body. */
static uint8_t *frame(uint8_t type_flags, wbuf *body, size_t *len)
{
    uint8_t hdr[5];
    size_t h = 1;
    hdr[0] = type_flags;
    h += mqtt_wire_varint(hdr + 1, (uint32_t)body->len);
    uint8_t *out = body->oom ? NULL : malloc(h + body->len);
    if (out) {
        memcpy(out, hdr, h);
        if (body->len) memcpy(out + h, body->p, body->len);
        *len = h + body->len;
    }
    free(body->p);
    return out;
}

uint8_t *mqtt_wire_connect(const mqtt_wire_params *p, const char *client_id, size_t *len,
                           char *err, size_t errlen)
{
    size_t cl = strlen(client_id), ul = p->username ? strlen(p->username) : 0;
    size_t pl = p->password ? strlen(p->password) : 0;
    if (cl > 65535 || ul > 65535 || pl > 65535) {
        snprintf(err, errlen, "client id, user name or password is longer than 65535 bytes");
        return NULL;
    }
    if (p->version != MQTT_WIRE_V5 && p->password && !p->username) {
        snprintf(err, errlen, "MQTT 3.1.1 cannot send a password without a user name");
        return NULL;
    }
    wbuf b = {0};
    put_str(&b, "MQTT", 4);
    put_u8(&b, (unsigned)p->version);
    unsigned flags = 0; /* clean start / clean session 0: keep the session */
    if (p->username) flags |= 0x80;
    if (p->password) flags |= 0x40;
    put_u8(&b, flags);
    put_u16(&b, p->keepalive_s < 0 ? 0 : p->keepalive_s > 65535 ? 65535 : (unsigned)p->keepalive_s);
    if (p->version == MQTT_WIRE_V5) {
        put_u8(&b, 8);    /* property length */
        put_u8(&b, 0x11); /* Session Expiry Interval */
        put_u32(&b, p->session_expiry_s);
        put_u8(&b, 0x21); /* Receive Maximum: one unacknowledged message at a time */
        put_u16(&b, 1);
    }
    put_str(&b, client_id, cl);
    if (p->username) put_str(&b, p->username, ul);
    if (p->password) put_str(&b, p->password, pl);
    uint8_t *out = frame(0x10, &b, len);
    if (!out) snprintf(err, errlen, "out of memory");
    return out;
}

uint8_t *mqtt_wire_subscribe(int version, uint16_t pid, const char *const *filters, int n,
                             size_t *len)
{
    wbuf b = {0};
    put_u16(&b, pid);
    if (version == MQTT_WIRE_V5) put_u8(&b, 0); /* no properties */
    for (int i = 0; i < n; i++) {
        size_t fl = strlen(filters[i]);
        if (fl == 0 || fl > 65535) {
            free(b.p);
            return NULL;
        }
        put_str(&b, filters[i], fl);
        /* QoS 1; v5: No Local 0, Retain As Published 0, Retain Handling 1
         * (retained messages only for a new subscription: a renewal must not
         * queue them for the session again) */
        put_u8(&b, version == MQTT_WIRE_V5 ? 0x11 : 0x01);
    }
    return n > 0 ? frame(0x82, &b, len) : (free(b.p), NULL);
}

/* v5 properties at body+off: advance *off past them; -1 if they overrun. */
static int skip_props(const uint8_t *body, size_t len, size_t *off)
{
    uint32_t plen;
    size_t used;
    if (*off >= len || mqtt_wire_varint_decode(body + *off, len - *off, &plen, &used) != 0)
        return -1;
    if (plen > len - *off - used) return -1;
    *off += used + plen;
    return 0;
}

int mqtt_wire_connack(int version, const uint8_t *body, size_t len, int *present, int *code)
{
    if (len < 2 || (body[0] & 0xFE)) return -1;
    *present = body[0] & 1;
    *code = body[1];
    if (version != MQTT_WIRE_V5) return len == 2 ? 0 : -1;
    size_t off = 2;
    if (len == 2) return 0; /* properties omitted: lenient */
    return skip_props(body, len, &off) == 0 && off == len ? 0 : -1;
}

int mqtt_wire_suback(int version, const uint8_t *body, size_t len, uint16_t pid, int n,
                     int *codes)
{
    if (len < 2 || ((unsigned)body[0] << 8 | body[1]) != pid) return -1;
    size_t off = 2;
    if (version == MQTT_WIRE_V5 && skip_props(body, len, &off) != 0) return -1;
    if (n < 0 || len - off != (size_t)n) return -1;
    for (int i = 0; i < n; i++) codes[i] = body[off + (size_t)i];
    return 0;
}

const char *mqtt_wire_reason(int version, int code)
{
    static const struct {
        int code;
        const char *text;
    } v5[] = {{0x00, "success"}, {0x01, "granted QoS 1"}, {0x02, "granted QoS 2"},
              {0x80, "unspecified error"}, {0x81, "malformed packet"}, {0x82, "protocol error"},
              {0x83, "implementation specific error"}, {0x84, "unsupported protocol version"},
              {0x85, "client identifier not valid"}, {0x86, "bad user name or password"},
              {0x87, "not authorized"}, {0x88, "server unavailable"}, {0x89, "server busy"},
              {0x8A, "banned"}, {0x8B, "server shutting down"},
              {0x8C, "bad authentication method"}, {0x8D, "keep alive timeout"},
              {0x8E, "session taken over"}, {0x8F, "topic filter invalid"},
              {0x90, "topic name invalid"}, {0x91, "packet identifier in use"},
              {0x93, "receive maximum exceeded"}, {0x95, "packet too large"},
              {0x97, "quota exceeded"}, {0x98, "administrative action"},
              {0x99, "payload format invalid"}, {0x9A, "retain not supported"},
              {0x9B, "QoS not supported"}, {0x9C, "use another server"},
              {0x9D, "server moved"}, {0x9E, "shared subscriptions not supported"},
              {0x9F, "connection rate exceeded"}, {0xA0, "maximum connect time"},
              {0xA1, "subscription identifiers not supported"},
              {0xA2, "wildcard subscriptions not supported"}};
    static const char *const v3[] = {"accepted", "unacceptable protocol version",
                                     "client identifier rejected", "server unavailable",
                                     "bad user name or password", "not authorized"};
    if (version != MQTT_WIRE_V5) {
        if (code >= 0 && code <= 5) return v3[code];
        return code == 0x80 ? "subscription refused" : "unknown return code";
    }
    for (size_t i = 0; i < sizeof v5 / sizeof v5[0]; i++)
        if (v5[i].code == code) return v5[i].text;
    return "unknown reason code";
}

int mqtt_wire_reason_transient(int version, int code)
{
    if (version != MQTT_WIRE_V5) return code == 3;
    return code == 0x88 || code == 0x89 || code == 0x8B || code == 0x8E || code == 0x91 ||
           code == 0x97 || code == 0x9F || code == 0xA0;
}

int mqtt_wire_parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    const char *end = s + strcspn(s, "/?#"), *at = NULL;
    for (const char *q = s; q < end; q++)
        if (*q == '@') at = q;
    if (at) s = at + 1;
    const char *h = s, *hend, *pp = NULL;
    if (*s == '[') {
        h = s + 1;
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend) return -1;
        if (hend + 1 < end) {
            if (hend[1] != ':') return -1;
            pp = hend + 2;
        }
    } else {
        hend = memchr(s, ':', (size_t)(end - s));
        if (hend) pp = hend + 1;
        else hend = end;
    }
    size_t hl = (size_t)(hend - h), pl = pp ? (size_t)(end - pp) : 4;
    if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!pp) pp = "1883";
    for (size_t i = 0; i < pl; i++)
        if (pp[i] < '0' || pp[i] > '9') return -1;
    memcpy(port, pp, pl);
    port[pl] = '\0';
    return atoi(port) > 0 && atoi(port) < 65536 ? 0 : -1;
}

/* ------------------------------------------------------------ the socket */

typedef struct conn {
    int fd;
    int64_t deadline;
    char who[300];     /* "host:port, session '<client id>'" for messages */
    char *err;
    size_t errlen;
} conn;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` until the deadline: 0, or -1 with err set. */
static int wait_fd(conn *c, short events, const char *doing)
{
    for (;;) {
        int64_t left = c->deadline - now_ms();
        if (left <= 0) {
            snprintf(c->err, c->errlen, "MQTT broker %s: timed out %s", c->who, doing);
            return -1;
        }
        struct pollfd pfd = {c->fd, events, 0};
        int n = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) {
            snprintf(c->err, c->errlen, "MQTT broker %s: poll: %s", c->who, strerror(errno));
            return -1;
        }
    }
}

static int dial(conn *c, const mqtt_wire_params *p)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(p->host, p->port, &hints, &res);
    if (gai != 0) {
        snprintf(c->err, c->errlen, "MQTT broker %s: cannot resolve host: %s", c->who,
                 gai_strerror(gai));
        return -1;
    }
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol);
        if (c->fd < 0) {
            last = errno;
            continue;
        }
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        last = errno;
        if (errno == EINPROGRESS && wait_fd(c, POLLOUT, "connecting") == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            if (soerr == 0) break;
            last = soerr;
        } else if (errno == EINPROGRESS) {
            last = ETIMEDOUT;
        }
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd >= 0) {
        /* The sink gathers whole packets into large writes itself.  With
           Nagle on, the tail of each write waited for the broker's delayed
           ACK: a 60,000-row snapshot into mosquitto took 2-3 s, not 0.5 s. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return 0;
    }
    snprintf(c->err, c->errlen, "cannot connect to MQTT broker %s: %s", c->who,
             strerror(last ? last : ECONNREFUSED));
    return -1;
}

static int send_all(conn *c, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(c, POLLOUT, "sending") != 0) return -1;
        } else {
            snprintf(c->err, c->errlen, "MQTT broker %s: send: %s", c->who, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Read exactly len bytes (buf NULL: discard them).  0; 1 on EOF; -1 on error. */
static int read_exact(conn *c, uint8_t *buf, size_t len, const char *doing)
{
    uint8_t scratch[4096];
    while (len > 0) {
        uint8_t *dst = buf ? buf : scratch;
        size_t want = buf ? len : (len < sizeof scratch ? len : sizeof scratch);
        ssize_t n = recv(c->fd, dst, want, 0);
        if (n > 0) {
            len -= (size_t)n;
            if (buf) buf += n;
        } else if (n == 0) {
            snprintf(c->err, c->errlen, "MQTT broker %s closed the connection %s", c->who, doing);
            return 1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (wait_fd(c, POLLIN, doing) != 0) return -1;
        } else {
            snprintf(c->err, c->errlen, "MQTT broker %s: recv: %s", c->who, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/*
 * Next control packet other than PUBLISH (those are skipped, unacknowledged).
 * *body is malloc'd (caller frees).  Returns 0, or -1 with err set.
 */
static int read_packet(conn *c, int *type, uint8_t **body, size_t *len, size_t *skipped,
                       const char *doing)
{
    for (;;) {
        uint8_t hdr[5];
        uint32_t rem = 0;
        size_t used = 0, h = 1;
        if (read_exact(c, hdr, 1, doing) != 0) return -1;
        for (int more = 1; more == 1;) {
            if (read_exact(c, hdr + h, 1, doing) != 0) return -1;
            h++;
            more = mqtt_wire_varint_decode(hdr + 1, h - 1, &rem, &used);
            if (more < 0) {
                snprintf(c->err, c->errlen, "MQTT broker %s sent a malformed packet %s", c->who,
                         doing);
                return -1;
            }
        }
        *type = hdr[0] >> 4;
        if (*type == P_PUBLISH) { /* left in the session: no PUBACK, no PUBREC */
            if (read_exact(c, NULL, rem, doing) != 0) return -1;
            (*skipped)++;
            continue;
        }
        if (rem > WIRE_MAX_CONTROL) {
            snprintf(c->err, c->errlen, "MQTT broker %s sent a %u-byte control packet %s",
                     c->who, (unsigned)rem, doing);
            return -1;
        }
        *body = malloc(rem ? rem : 1);
        if (!*body) {
            snprintf(c->err, c->errlen, "out of memory");
            return -1;
        }
        if (read_exact(c, *body, rem, doing) != 0) {
            free(*body);
            *body = NULL;
            return -1;
        }
        *len = rem;
        return 0;
    }
}

/* A refusal by reason code: transient or not, with a message. */
static int refused(conn *c, int version, int code, const char *what)
{
    snprintf(c->err, c->errlen, "MQTT broker %s %s: %s (0x%02x)", c->who, what,
             mqtt_wire_reason(version, code), (unsigned)code);
    return mqtt_wire_reason_transient(version, code) ? MQTT_WIRE_TRANSIENT : MQTT_WIRE_REFUSED;
}

/* Read until `want` (CONNACK or SUBACK); handles DISCONNECT and AUTH. */
static int expect(conn *c, int version, int want, uint8_t **body, size_t *len,
                  mqtt_wire_result *res, const char *doing)
{
    for (;;) {
        int type;
        if (read_packet(c, &type, body, len, &res->publishes_skipped, doing) != 0)
            return MQTT_WIRE_TRANSIENT;
        if (type == want) return MQTT_WIRE_OK;
        int code = *len ? (*body)[0] : 0;
        free(*body);
        *body = NULL;
        if (type == P_DISCONNECT) return refused(c, version, code, "closed the connection");
        if (type == P_AUTH) {
            snprintf(c->err, c->errlen, "MQTT broker %s asks for enhanced authentication, "
                     "which is not supported", c->who);
            return MQTT_WIRE_REFUSED;
        }
        if (want == P_CONNACK) {
            snprintf(c->err, c->errlen, "MQTT broker %s sent packet type %d before CONNACK",
                     c->who, type);
            return MQTT_WIRE_REFUSED;
        }
        /* anything else (PUBREL of an old exchange, PINGRESP): ignore */
    }
}

static int do_connect(conn *c, const mqtt_wire_params *p, const char *client_id,
                      mqtt_wire_result *res)
{
    size_t len = 0;
    uint8_t *pkt = mqtt_wire_connect(p, client_id, &len, c->err, c->errlen), *body = NULL;
    if (!pkt) return MQTT_WIRE_REFUSED;
    int rc = send_all(c, pkt, len) == 0 ? MQTT_WIRE_OK : MQTT_WIRE_TRANSIENT;
    free(pkt);
    if (rc == MQTT_WIRE_OK) rc = expect(c, p->version, P_CONNACK, &body, &len, res, "before CONNACK");
    if (rc != MQTT_WIRE_OK) return rc;
    int code = 0;
    if (mqtt_wire_connack(p->version, body, len, &res->session_present, &code) != 0) {
        snprintf(c->err, c->errlen, "MQTT broker %s sent a malformed CONNACK", c->who);
        rc = MQTT_WIRE_REFUSED;
    } else if (code != 0) {
        rc = refused(c, p->version, code, "refused the connection");
    }
    free(body);
    return rc;
}

static int do_subscribe(conn *c, const mqtt_wire_params *p, const char *const *filters, int n,
                        mqtt_wire_result *res)
{
    size_t len = 0;
    uint8_t *pkt = mqtt_wire_subscribe(p->version, WIRE_PID, filters, n, &len), *body = NULL;
    if (!pkt) {
        snprintf(c->err, c->errlen, "MQTT broker %s: topic filter empty or too long", c->who);
        return MQTT_WIRE_REFUSED;
    }
    int rc = send_all(c, pkt, len) == 0 ? MQTT_WIRE_OK : MQTT_WIRE_TRANSIENT;
    free(pkt);
    if (rc == MQTT_WIRE_OK) rc = expect(c, p->version, P_SUBACK, &body, &len, res, "before SUBACK");
    if (rc != MQTT_WIRE_OK) return rc;
    int codes[8];
    if (n > 8 || mqtt_wire_suback(p->version, body, len, WIRE_PID, n, codes) != 0) {
        snprintf(c->err, c->errlen, "MQTT broker %s sent a malformed SUBACK", c->who);
        free(body);
        return MQTT_WIRE_REFUSED;
    }
    free(body);
    res->granted_qos = 2;
    for (int i = 0; i < n; i++) {
        if (codes[i] >= 0x80) {
            char what[300];
            snprintf(what, sizeof what, "refused the subscription to '%s'", filters[i]);
            return refused(c, p->version, codes[i], what);
        }
        if (codes[i] < res->granted_qos) res->granted_qos = codes[i];
    }
    res->subscribed = 1;
    return MQTT_WIRE_OK;
}

/* DISCONNECT (normal, no properties), then let the broker close first. */
static void do_disconnect(conn *c)
{
    static const uint8_t pkt[2] = {0xE0, 0x00};
    if (send_all(c, pkt, 2) != 0) return;
    shutdown(c->fd, SHUT_WR);
    int64_t end = now_ms() + WIRE_DRAIN_MS;
    if (end < c->deadline) c->deadline = end;
    uint8_t buf[4096];
    for (;;) { /* discard what is in flight (unacknowledged PUBLISHes) until EOF */
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        if (n < 0 && wait_fd(c, POLLIN, "closing") != 0) break;
    }
}

int mqtt_wire_dial(const mqtt_wire_params *p, const char *who, char *err, size_t errlen)
{
    conn c = {-1, now_ms() + (p->timeout_ms > 0 ? p->timeout_ms : 1), "", err, errlen};
    snprintf(c.who, sizeof c.who, "%s", who);
    return dial(&c, p) == 0 ? c.fd : -1;
}

int mqtt_wire_connect_exchange(int fd, const mqtt_wire_params *p, const char *client_id,
                               const char *who, uint8_t **connack, size_t *connack_len,
                               char *err, size_t errlen)
{
    conn c = {fd, now_ms() + (p->timeout_ms > 0 ? p->timeout_ms : 1), "", err, errlen};
    snprintf(c.who, sizeof c.who, "%s", who);
    mqtt_wire_result res = {0};
    size_t len = 0;
    uint8_t *pkt = mqtt_wire_connect(p, client_id, &len, err, errlen), *body = NULL;
    if (!pkt) return MQTT_WIRE_REFUSED;
    int rc = send_all(&c, pkt, len) == 0 ? MQTT_WIRE_OK : MQTT_WIRE_TRANSIENT;
    free(pkt);
    if (rc == MQTT_WIRE_OK) rc = expect(&c, p->version, P_CONNACK, &body, &len, &res, "before CONNACK");
    if (rc != MQTT_WIRE_OK) return rc;
    int present = 0, code = 0;
    if (mqtt_wire_connack(p->version, body, len, &present, &code) != 0) {
        snprintf(err, errlen, "MQTT broker %s sent a malformed CONNACK", who);
        rc = MQTT_WIRE_REFUSED;
    } else if (code != 0) {
        rc = refused(&c, p->version, code, "refused the connection");
    }
    if (rc != MQTT_WIRE_OK) {
        free(body);
        return rc;
    }
    *connack = body;
    *connack_len = len;
    return MQTT_WIRE_OK;
}

int mqtt_wire_ensure_session(const mqtt_wire_params *p, const char *client_id,
                             const char *const *filters, int nfilters,
                             mqtt_wire_result *res, char *err, size_t errlen)
{
    conn c = {-1, now_ms() + (p->timeout_ms > 0 ? p->timeout_ms : 1), "", err, errlen};
    int v6 = strchr(p->host, ':') != NULL;
    snprintf(c.who, sizeof c.who, "%s%s%s:%s (session '%.200s')", v6 ? "[" : "", p->host,
             v6 ? "]" : "", p->port, client_id);
    memset(res, 0, sizeof *res);
    if (nfilters < 1 || nfilters > 8) {
        snprintf(err, errlen, "between 1 and 8 topic filters expected");
        return MQTT_WIRE_REFUSED;
    }
    if (dial(&c, p) != 0) return MQTT_WIRE_TRANSIENT;
    int rc = do_connect(&c, p, client_id, res);
    /* Subscribe even when the session exists: it may exist without the
     * subscription (a process killed between CONNACK and SUBACK, or a client
     * that used the id for other filters), and a present flag says nothing
     * about subscriptions.  Re-subscribing replaces a subscription without
     * touching what the session holds; Receive Maximum 1 (v5) keeps what the
     * broker pushes before the SUBACK to one message. */
    if (rc == MQTT_WIRE_OK) rc = do_subscribe(&c, p, filters, nfilters, res);
    if (rc == MQTT_WIRE_OK) do_disconnect(&c);
    close(c.fd);
    return rc;
}
