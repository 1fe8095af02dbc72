/*
 * test_mqtt_wire.c — unit tests of plugins/mqtt/mqtt_wire.c: the codec, and
 * the session exchange against a scripted fake broker on loopback.
 *
 * What matters most: the client never acknowledges a PUBLISH (no PUBACK, no
 * PUBREC), whether it arrives before CONNACK's successor, before SUBACK or
 * while disconnecting, and however large it is; it subscribes whether or not
 * the session exists (a session can exist without its subscription); refusals and timeouts are classified
 * (transient vs refused) with messages naming the broker and the session and
 * never the password.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/mqtt/mqtt_wire.h"
#include "fakenet.h"

/* ------------------------------------------------------------------ codec */

static void test_varint(void)
{
    const uint32_t vals[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
    const size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 4, 4};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[4];
        uint32_t v;
        size_t used;
        size_t n = mqtt_wire_varint(b, vals[i]);
        CHECK(n == lens[i]);
        CHECK(mqtt_wire_varint_decode(b, n, &v, &used) == 0 && v == vals[i] && used == n);
        if (n > 1) CHECK(mqtt_wire_varint_decode(b, n - 1, &v, &used) == 1);
    }
    const uint8_t bad[5] = {0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    uint32_t v;
    size_t used;
    CHECK(mqtt_wire_varint_decode(bad, 5, &v, &used) == -1);
}

static void test_connect_bytes(void)
{
    mqtt_wire_params p = {"h", "1", MQTT_WIRE_V311, "u", "pw", 30, 0, 1000};
    size_t len;
    char err[200];
    uint8_t *pkt = mqtt_wire_connect(&p, "cid", &len, err, sizeof err);
    const uint8_t want[] = {0x10, 22, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC0, 0, 30,
                            0, 3, 'c', 'i', 'd', 0, 1, 'u', 0, 2, 'p', 'w'};
    CHECK(pkt && len == sizeof want && memcmp(pkt, want, len) == 0);
    free(pkt);

    mqtt_wire_params p5 = {"h", "1", MQTT_WIRE_V5, NULL, NULL, 0, 86400, 1000};
    pkt = mqtt_wire_connect(&p5, "x", &len, err, sizeof err);
    const uint8_t want5[] = {0x10, 22, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x00, 0, 0,
                             8, 0x11, 0, 1, 0x51, 0x80, 0x21, 0, 1, 0, 1, 'x'};
    CHECK(pkt && len == sizeof want5 && memcmp(pkt, want5, len) == 0);
    free(pkt);

    p.username = NULL; /* 3.1.1: a password needs a user name */
    CHECK(mqtt_wire_connect(&p, "cid", &len, err, sizeof err) == NULL);
    CHECK(strstr(err, "without a user name") != NULL);
}

static void test_subscribe_bytes(void)
{
    const char *f[2] = {"a/b", "a/b/+"};
    size_t len;
    uint8_t *pkt = mqtt_wire_subscribe(MQTT_WIRE_V5, 1, f, 2, &len);
    /* v5 options 0x11: QoS 1, Retain Handling 1 (retained only for a new subscription) */
    const uint8_t want[] = {0x82, 17, 0, 1, 0, 0, 3, 'a', '/', 'b', 0x11,
                            0, 5, 'a', '/', 'b', '/', '+', 0x11};
    CHECK(pkt && len == sizeof want && memcmp(pkt, want, len) == 0);
    free(pkt);
    pkt = mqtt_wire_subscribe(MQTT_WIRE_V311, 7, f, 1, &len);
    const uint8_t want3[] = {0x82, 8, 0, 7, 0, 3, 'a', '/', 'b', 1};
    CHECK(pkt && len == sizeof want3 && memcmp(pkt, want3, len) == 0);
    free(pkt);
    const char *empty[1] = {""};
    CHECK(mqtt_wire_subscribe(MQTT_WIRE_V5, 1, empty, 1, &len) == NULL);
}

static void test_acks(void)
{
    int present, code, codes[2];
    const uint8_t c3[] = {0x01, 0x00}, c5[] = {0x00, 0x86, 3, 0x1F, 0, 0}, bad[] = {0x02, 0};
    CHECK(mqtt_wire_connack(MQTT_WIRE_V311, c3, 2, &present, &code) == 0 && present && !code);
    CHECK(mqtt_wire_connack(MQTT_WIRE_V5, c5, sizeof c5, &present, &code) == 0 && !present &&
          code == 0x86);
    CHECK(mqtt_wire_connack(MQTT_WIRE_V5, c5, sizeof c5 - 1, &present, &code) == -1);
    CHECK(mqtt_wire_connack(MQTT_WIRE_V311, bad, 2, &present, &code) == -1);
    CHECK(mqtt_wire_connack(MQTT_WIRE_V311, c3, 1, &present, &code) == -1);
    const uint8_t s5[] = {0, 1, 3, 0x1F, 0, 0, 0x01, 0x87}, s3[] = {0, 1, 0x80};
    CHECK(mqtt_wire_suback(MQTT_WIRE_V5, s5, sizeof s5, 1, 2, codes) == 0 && codes[0] == 1 &&
          codes[1] == 0x87);
    CHECK(mqtt_wire_suback(MQTT_WIRE_V5, s5, sizeof s5, 2, 2, codes) == -1); /* other pid */
    CHECK(mqtt_wire_suback(MQTT_WIRE_V5, s5, sizeof s5, 1, 1, codes) == -1); /* count */
    CHECK(mqtt_wire_suback(MQTT_WIRE_V311, s3, 3, 1, 1, codes) == 0 && codes[0] == 0x80);
    CHECK(strcmp(mqtt_wire_reason(MQTT_WIRE_V5, 0x87), "not authorized") == 0);
    CHECK(strcmp(mqtt_wire_reason(MQTT_WIRE_V311, 4), "bad user name or password") == 0);
    CHECK(mqtt_wire_reason_transient(MQTT_WIRE_V5, 0x89) && !mqtt_wire_reason_transient(5, 0x86));
    CHECK(mqtt_wire_reason_transient(MQTT_WIRE_V311, 3) && !mqtt_wire_reason_transient(4, 5));
}

/* What the sink's own publishing connection encodes and parses. */
static void test_publish_codec(void)
{
    mqtt_wire_buf b = {0};
    const uint8_t props[] = {0x26, 0, 1, 'k', 0, 1, 'v'};
    /* v5 QoS 1, dup: 0x3A, rem = 2+1 topic + 2 pid + 1+7 props + 3 payload = 16 */
    mqtt_wire_put_publish(&b, MQTT_WIRE_V5, "t", 1, 1, 1, 0x1234, props, sizeof props, "abc", 3);
    const uint8_t want5[] = {0x3A, 16, 0, 1, 't', 0x12, 0x34, 7, 0x26, 0, 1, 'k', 0, 1, 'v',
                             'a', 'b', 'c'};
    CHECK(b.len == sizeof want5 && memcmp(b.p, want5, b.len) == 0);
    CHECK(mqtt_wire_publish_size(MQTT_WIRE_V5, 1, 1, sizeof props, 3) == sizeof want5);
    /* 3.1.1 QoS 0: no pid, no properties, DUP never set */
    b.len = 0;
    mqtt_wire_put_publish(&b, MQTT_WIRE_V311, "t", 1, 0, 1, 7, props, sizeof props, "abc", 3);
    const uint8_t want3[] = {0x30, 6, 0, 1, 't', 'a', 'b', 'c'};
    CHECK(b.len == sizeof want3 && memcmp(b.p, want3, b.len) == 0);
    CHECK(mqtt_wire_publish_size(MQTT_WIRE_V311, 1, 0, 0, 3) == sizeof want3);
    /* a payload needing a 2-byte remaining length */
    static char big[300];
    b.len = 0;
    mqtt_wire_put_publish(&b, MQTT_WIRE_V311, "t", 1, 2, 0, 1, NULL, 0, big, sizeof big);
    CHECK(b.len == 3 + 305 && b.p[0] == 0x34 && b.p[1] == (305 & 0x7F) + 0x80 &&
          b.p[2] == 305 >> 7);
    CHECK(mqtt_wire_publish_size(MQTT_WIRE_V311, 1, 2, 0, sizeof big) == b.len);

    /* framing: whole packets only */
    unsigned tf;
    size_t hl;
    uint32_t rem;
    CHECK(mqtt_wire_frame(b.p, 1, &tf, &hl, &rem) == 0);
    CHECK(mqtt_wire_frame(b.p, 2, &tf, &hl, &rem) == 0);
    CHECK(mqtt_wire_frame(b.p, b.len - 1, &tf, &hl, &rem) == 0);
    CHECK(mqtt_wire_frame(b.p, b.len, &tf, &hl, &rem) == 1 && tf == 0x34 && hl == 3 && rem == 305);
    const uint8_t badlen[] = {0x40, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    CHECK(mqtt_wire_frame(badlen, sizeof badlen, &tf, &hl, &rem) == -1);

    /* acknowledgements */
    b.len = 0;
    mqtt_wire_put_ack(&b, 0x62, 0xBEEF);
    const uint8_t rel[] = {0x62, 2, 0xBE, 0xEF};
    CHECK(b.len == 4 && memcmp(b.p, rel, 4) == 0);
    uint16_t pid;
    int reason;
    const uint8_t a3[] = {0, 9}, a5[] = {0, 9, 0x87, 0}, a5short[] = {0, 9};
    CHECK(mqtt_wire_ack(MQTT_WIRE_V311, a3, 2, &pid, &reason) == 0 && pid == 9 && reason == 0);
    CHECK(mqtt_wire_ack(MQTT_WIRE_V311, a5, 4, &pid, &reason) == -1);
    CHECK(mqtt_wire_ack(MQTT_WIRE_V5, a5, 4, &pid, &reason) == 0 && pid == 9 && reason == 0x87);
    CHECK(mqtt_wire_ack(MQTT_WIRE_V5, a5short, 2, &pid, &reason) == 0 && reason == 0);
    CHECK(mqtt_wire_ack(MQTT_WIRE_V5, a5, 1, &pid, &reason) == -1);

    /* CONNACK limits: Receive Maximum, Maximum QoS, Maximum Packet Size, others skipped */
    mqtt_wire_limits lim;
    const uint8_t ca[] = {0, 0, 20, 0x21, 0, 20, 0x24, 1, 0x27, 0, 1, 0, 0,
                          0x1F, 0, 2, 'o', 'k', 0x26, 0, 0, 0, 0};
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V5, ca, sizeof ca, &lim) == 0 &&
          lim.receive_max == 20 && lim.max_qos == 1 && lim.max_packet == 65536);
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V5, ca, sizeof ca - 1, &lim) == -1);
    const uint8_t none[] = {0, 0, 0}, zero[] = {0, 0, 3, 0x21, 0, 0}, unk[] = {0, 0, 2, 0x7F, 0};
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V5, none, 3, &lim) == 0 && lim.receive_max == 65535 &&
          lim.max_qos == 2);
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V5, zero, sizeof zero, &lim) == -1);
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V5, unk, sizeof unk, &lim) == -1);
    CHECK(mqtt_wire_connack_limits(MQTT_WIRE_V311, ca, 2, &lim) == 0 && lim.receive_max == 65535);
    free(b.p);
}

static void test_url(void)
{
    char h[64], p[16];
    CHECK(mqtt_wire_parse_url("tcp://127.0.0.1:1884", h, sizeof h, p, sizeof p) == 0 &&
          !strcmp(h, "127.0.0.1") && !strcmp(p, "1884"));
    CHECK(mqtt_wire_parse_url("mqtt://broker", h, sizeof h, p, sizeof p) == 0 &&
          !strcmp(h, "broker") && !strcmp(p, "1883"));
    CHECK(mqtt_wire_parse_url("tcp://[::1]:99/x", h, sizeof h, p, sizeof p) == 0 &&
          !strcmp(h, "::1") && !strcmp(p, "99"));
    CHECK(mqtt_wire_parse_url("tcp://u:pw@host:5/", h, sizeof h, p, sizeof p) == 0 &&
          !strcmp(h, "host") && !strcmp(p, "5"));
    CHECK(mqtt_wire_parse_url("tcp://:1883", h, sizeof h, p, sizeof p) == -1);
    CHECK(mqtt_wire_parse_url("tcp://h:x1", h, sizeof h, p, sizeof p) == -1);
    CHECK(mqtt_wire_parse_url("tcp://h:70000", h, sizeof h, p, sizeof p) == -1);
    CHECK(mqtt_wire_parse_url("tcp://[::1", h, sizeof h, p, sizeof p) == -1);
}

/* ------------------------------------------------------- the fake broker */

typedef struct fake {
    int lfd, port;
    int version;
    int present, connack_code, suback_code;
    int publish_after_connack, publish_before_suback; /* how many PUBLISHes to send */
    int silent, send_disconnect, send_auth;
    pthread_t th;
    int types[32], ntypes; /* packet types received from the client */
    int eof;               /* the client closed after its last packet */
} fake;

/* Read one packet from the client; returns its type or -1 at EOF. */
static int rd_packet(int fd)
{
    uint8_t h, b;
    uint32_t rem = 0;
    int shift = 0;
    if (fake_read(fd, &h, 1)) return -1;
    do {
        if (fake_read(fd, &b, 1)) return -1;
        rem |= (uint32_t)(b & 0x7F) << shift;
        shift += 7;
    } while (b & 0x80);
    uint8_t *body = malloc(rem + 1);
    int ok = fake_read(fd, body, rem) == 0;
    free(body);
    return ok ? h >> 4 : -1;
}

/* A QoS 1 PUBLISH of `payload` bytes on topic "t" with packet id pid. */
static void wr_publish(int fd, uint16_t pid, size_t payload, int v5)
{
    size_t rem = 2 + 1 + 2 + (v5 ? 1 : 0) + payload;
    uint8_t hdr[5];
    size_t h = 1;
    hdr[0] = 0x32;
    h += mqtt_wire_varint(hdr + 1, (uint32_t)rem);
    uint8_t *p = calloc(1, h + rem);
    memcpy(p, hdr, h);
    uint8_t *q = p + h;
    *q++ = 0, *q++ = 1, *q++ = 't', *q++ = (uint8_t)(pid >> 8), *q++ = (uint8_t)pid;
    if (v5) *q++ = 0;
    fake_write(fd, p, h + rem);
    free(p);
}

static void *fake_run(void *arg)
{
    fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    int v5 = f->version == MQTT_WIRE_V5;
    f->types[f->ntypes++] = rd_packet(fd); /* CONNECT */
    if (f->silent) {
        while (rd_packet(fd) >= 0) {}
        close(fd);
        return NULL;
    }
    if (f->send_auth) {
        const uint8_t auth[] = {0xF0, 0};
        fake_write(fd, auth, 2);
    } else {
        uint8_t ca[5] = {0x20, (uint8_t)(v5 ? 3 : 2), (uint8_t)f->present, (uint8_t)f->connack_code, 0};
        fake_write(fd, ca, v5 ? 5 : 4);
    }
    for (int i = 0; i < f->publish_after_connack; i++)
        wr_publish(fd, (uint16_t)(100 + i), i == 0 ? 300000 : 784, v5); /* one bigger than any buffer */
    int t;
    while ((t = rd_packet(fd)) >= 0) {
        if (f->ntypes < 32) f->types[f->ntypes++] = t;
        if (t == 8) { /* SUBSCRIBE */
            for (int i = 0; i < f->publish_before_suback; i++) wr_publish(fd, (uint16_t)(200 + i), 10, v5);
            if (f->send_disconnect) {
                const uint8_t d[] = {0xE0, 1, 0x8E};
                fake_write(fd, d, 3);
                break;
            }
            uint8_t sa[6] = {0x90, (uint8_t)(v5 ? 4 : 3), 0, 1, 0, (uint8_t)f->suback_code};
            if (!v5) sa[4] = (uint8_t)f->suback_code;
            fake_write(fd, sa, v5 ? 6 : 5);
        }
        if (t == 14) break; /* DISCONNECT: close like a broker does */
    }
    f->eof = 1;
    close(fd);
    return NULL;
}

static void fake_start(fake *f)
{
    f->lfd = fake_listen(&f->port);
    pthread_create(&f->th, NULL, fake_run, f);
}

static void fake_stop(fake *f)
{
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

static int has_type(const fake *f, int t)
{
    for (int i = 0; i < f->ntypes; i++)
        if (f->types[i] == t) return 1;
    return 0;
}

/* Run one exchange against f; returns the outcome, fills res and err. */
static int exchange(fake *f, int timeout_ms, mqtt_wire_result *res, char *err,
                    size_t errlen)
{
    char port[16];
    fake_start(f);
    snprintf(port, sizeof port, "%d", f->port);
    mqtt_wire_params p = {"127.0.0.1", port, f->version, "user", "s3cret-pw", 30, 600, timeout_ms};
    const char *filters[1] = {"tf.public.mnist_train"};
    int rc = mqtt_wire_ensure_session(&p, "cid-tributary-t", filters, 1, res, err, errlen);
    fake_stop(f);
    return rc;
}

static void test_exchanges(int version)
{
    mqtt_wire_result r;
    char err[600];
    int v5 = version == MQTT_WIRE_V5;

    /* new session: subscribe; PUBLISHes before SUBACK are left unacknowledged */
    fake f = {.version = version, .suback_code = 1, .publish_before_suback = 3};
    CHECK(exchange(&f, 3000, &r, err, sizeof err) == MQTT_WIRE_OK);
    CHECK(!r.session_present && r.subscribed && r.granted_qos == 1 && r.publishes_skipped == 3);
    CHECK(f.ntypes == 3 && f.types[0] == 1 && f.types[1] == 8 && f.types[2] == 14);
    CHECK(!has_type(&f, 4) && !has_type(&f, 5) && f.eof);

    /* existing session with a backlog (one PUBLISH of 300 kB): subscribed again (the session
     * may exist without its subscription: a process killed between CONNACK and SUBACK),
     * the backlog left unacknowledged */
    fake g = {.version = version, .present = 1, .suback_code = 1, .publish_after_connack = 3};
    CHECK(exchange(&g, 3000, &r, err, sizeof err) == MQTT_WIRE_OK);
    CHECK(r.session_present && r.subscribed && r.granted_qos == 1 && r.publishes_skipped == 3);
    CHECK(g.ntypes == 3 && g.types[0] == 1 && g.types[1] == 8 && g.types[2] == 14);
    CHECK(!has_type(&g, 4) && !has_type(&g, 5) && g.eof);

    /* bad credentials: refused, and the message names the broker, not the password */
    fake i = {.version = version, .connack_code = v5 ? 0x86 : 4};
    CHECK(exchange(&i, 3000, &r, err, sizeof err) == MQTT_WIRE_REFUSED);
    CHECK(strstr(err, "bad user name or password") && strstr(err, "127.0.0.1:") &&
          strstr(err, "cid-tributary-t") && !strstr(err, "s3cret"));

    /* server unavailable / busy: transient */
    fake j = {.version = version, .connack_code = v5 ? 0x89 : 3};
    CHECK(exchange(&j, 3000, &r, err, sizeof err) == MQTT_WIRE_TRANSIENT);

    /* subscription refused: refused, naming the topic */
    fake k = {.version = version, .suback_code = v5 ? 0x87 : 0x80};
    CHECK(exchange(&k, 3000, &r, err, sizeof err) == MQTT_WIRE_REFUSED);
    CHECK(strstr(err, "tf.public.mnist_train") != NULL);

    /* a broker that never answers: transient, within the timeout */
    fake l = {.version = version, .silent = 1};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(exchange(&l, 300, &r, err, sizeof err) == MQTT_WIRE_TRANSIENT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(strstr(err, "timed out") != NULL);
    CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
}

static void test_v5_only(void)
{
    mqtt_wire_result r;
    char err[600];
    fake a = {.version = MQTT_WIRE_V5, .send_disconnect = 1}; /* session taken over */
    CHECK(exchange(&a, 3000, &r, err, sizeof err) == MQTT_WIRE_TRANSIENT);
    CHECK(strstr(err, "session taken over") != NULL);
    fake b = {.version = MQTT_WIRE_V5, .send_auth = 1};
    CHECK(exchange(&b, 3000, &r, err, sizeof err) == MQTT_WIRE_REFUSED);
    CHECK(strstr(err, "enhanced authentication") != NULL);
}

static void test_unreachable(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* a free port, closed again */
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    char ps[16], err[600];
    snprintf(ps, sizeof ps, "%d", ntohs(a.sin_port));
    mqtt_wire_params p = {"127.0.0.1", ps, MQTT_WIRE_V5, NULL, NULL, 30, 600, 1000};
    const char *filters[1] = {"t"};
    mqtt_wire_result r;
    CHECK(mqtt_wire_ensure_session(&p, "c", filters, 1, &r, err, sizeof err) ==
          MQTT_WIRE_TRANSIENT);
    CHECK(strstr(err, "cannot connect") != NULL);
}

/* The publishing connection turns Nagle off: the sink gathers whole packets
 * itself, and with Nagle on the tail of each write waited for the broker's
 * delayed ACK (a 60,000-row snapshot into mosquitto took 2-3 s, not 0.5 s). */
static void test_nodelay(void)
{
    int port, lfd = fake_listen(&port);
    char ps[16], err[600];
    snprintf(ps, sizeof ps, "%d", port);
    mqtt_wire_params p = {"127.0.0.1", ps, MQTT_WIRE_V5, NULL, NULL, 30, 600, 1000};
    int fd = mqtt_wire_dial(&p, "fake", err, sizeof err);
    CHECK(fd >= 0);
    int on = 0;
    socklen_t ol = sizeof on;
    CHECK(fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &ol) == 0 && on == 1);
    if (fd >= 0) close(fd);
    close(lfd);
}

int main(void)
{
    test_varint();
    test_connect_bytes();
    test_subscribe_bytes();
    test_acks();
    test_publish_codec();
    test_url();
    test_exchanges(MQTT_WIRE_V5);
    test_exchanges(MQTT_WIRE_V311);
    test_v5_only();
    test_unreachable();
    test_nodelay();
    if (failures) {
        fprintf(stderr, "test_mqtt_wire: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_mqtt_wire: all passed\n");
    return 0;
}
