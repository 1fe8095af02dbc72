/*
 * test_mqtt_sink.c — the MQTT sink's own publishing connection against a
 * scripted fake broker on loopback (the mqtt plugin is loaded as the engine
 * would, through the shared test host).
 *
 * What a real mosquitto cannot be made to do on demand, and what matters:
 *   1. the broker's Receive Maximum caps the unacknowledged publishes;
 *   2. a connection cut with publishes unacknowledged: after reconnecting to
 *      a session the broker kept, exactly those are sent again, in order,
 *      with DUP set and their packet identifiers; every record is acked once;
 *   3. QoS 2 cut after PUBREC resumes with PUBREL only (session kept), and is
 *      published again when the broker lost the session;
 *   4. a PUBACK reason >= 0x80 fails that record (TRIB_ERR naming the
 *      reason), the others go on;
 *   5. a message larger than the broker's Maximum Packet Size fails alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fakenet.h"
#include "testhost.h"

/* ------------------------------------------------------- the fake broker */

typedef struct pkt {
    unsigned tf;       /* first byte */
    uint8_t *body;
    size_t len;
} pkt;

/* Next packet (PINGREQ answered and skipped); 0, -1 at EOF, -2 when a
   receive timeout passes before its first byte. */
static int rd_pkt(int fd, pkt *p)
{
    for (;;) {
        uint8_t h, b;
        uint32_t rem = 0;
        int shift = 0;
        ssize_t r0 = recv(fd, &h, 1, 0);
        if (r0 < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
        if (r0 <= 0) return -1;
        do {
            if (fake_read(fd, &b, 1)) return -1;
            rem |= (uint32_t)(b & 0x7F) << shift;
            shift += 7;
        } while (b & 0x80);
        p->tf = h;
        p->len = rem;
        p->body = malloc(rem + 1);
        if (fake_read(fd, p->body, rem)) {
            free(p->body);
            return -1;
        }
        if ((h >> 4) == 12) { /* PINGREQ */
            const uint8_t pr[2] = {0xD0, 0};
            (void)!send(fd, pr, 2, MSG_NOSIGNAL);
            free(p->body);
            continue;
        }
        return 0;
    }
}

/* PUBACK/PUBREC/PUBCOMP (v5, with a reason code). */
static void wr_ack(int fd, unsigned type, uint16_t pid, int reason)
{
    uint8_t a[5] = {(uint8_t)(type << 4), 3, (uint8_t)(pid >> 8), (uint8_t)pid, (uint8_t)reason};
    fake_write(fd, a, 5);
}

/* CONNACK v5 with Receive Maximum and Maximum Packet Size. */
static void wr_connack(int fd, int present, unsigned recv_max, uint32_t max_packet)
{
    uint8_t c[] = {0x20, 11, (uint8_t)present, 0, 8, 0x21, (uint8_t)(recv_max >> 8),
                   (uint8_t)recv_max, 0x27, (uint8_t)(max_packet >> 24),
                   (uint8_t)(max_packet >> 16), (uint8_t)(max_packet >> 8), (uint8_t)max_packet};
    fake_write(fd, c, sizeof c);
}

/* A PUBLISH as the fake saw it. */
typedef struct seen {
    int qos, dup;
    uint16_t pid;
    char payload[32];
} seen;

static void parse_publish(const pkt *p, seen *s)
{
    size_t tl = (size_t)p->body[0] << 8 | p->body[1], off = 2 + tl;
    s->qos = (p->tf >> 1) & 3;
    s->dup = (p->tf >> 3) & 1;
    s->pid = 0;
    if (s->qos) {
        s->pid = (uint16_t)(p->body[off] << 8 | p->body[off + 1]);
        off += 2;
    }
    /* v5 properties: a one-byte length here (short user properties) */
    off += 1 + p->body[off];
    size_t n = p->len - off < sizeof s->payload - 1 ? p->len - off : sizeof s->payload - 1;
    memcpy(s->payload, p->body + off, n);
    s->payload[n] = '\0';
}

typedef struct fake {
    int lfd, port;
    int scenario;
    pthread_t th;
    int max_unacked;       /* scenario 1 */
    seen first[16], second[16];
    int nfirst, nsecond;
    int relsent_second;    /* scenario 3: PUBRELs seen on the second connection */
    int ok;
} fake;

static int accept_connect(fake *f)
{
    int fd = accept(f->lfd, NULL, NULL);
    pkt p;
    if (fd < 0 || rd_pkt(fd, &p) != 0 || (p.tf >> 4) != 1) return -1;
    free(p.body);
    return fd;
}

static void *fake_run(void *arg)
{
    fake *f = arg;
    pkt p;
    int fd = accept_connect(f);
    if (fd < 0) return NULL;
    switch (f->scenario) {
    case 1: { /* Receive Maximum 3: ack the oldest only when nothing more comes */
        wr_connack(fd, 0, 3, 1u << 20);
        struct timeval tv = {0, 150000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        seen q[32];
        int n = 0, acked = 0;
        while (acked < 20) {
            int r = n < 20 ? rd_pkt(fd, &p) : -2;
            if (r == 0) {
                parse_publish(&p, &q[n++]);
                free(p.body);
                if (n - acked > f->max_unacked) f->max_unacked = n - acked;
            } else if (r == -2 && acked < n) {
                wr_ack(fd, 4, q[acked++].pid, 0);
            } else {
                break;
            }
        }
        tv.tv_usec = 0;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        f->ok = acked == 20;
        break;
    }
    case 2: { /* 5 published, 2 acked, cut; session kept: 3 resent with DUP */
        wr_connack(fd, 0, 100, 1u << 20);
        for (int i = 0; i < 5 && rd_pkt(fd, &p) == 0; i++) {
            parse_publish(&p, &f->first[f->nfirst++]);
            free(p.body);
        }
        wr_ack(fd, 4, f->first[0].pid, 0);
        wr_ack(fd, 4, f->first[1].pid, 0);
        usleep(100000);
        close(fd);
        if ((fd = accept_connect(f)) < 0) return NULL;
        wr_connack(fd, 1, 100, 1u << 20);
        for (int i = 0; i < 3 && rd_pkt(fd, &p) == 0; i++) {
            parse_publish(&p, &f->second[f->nsecond++]);
            free(p.body);
            wr_ack(fd, 4, f->second[i].pid, 0);
        }
        f->ok = f->nsecond == 3;
        break;
    }
    case 3:   /* QoS 2: PUBREC, cut before PUBCOMP; session kept -> PUBREL only */
    case 4: { /* the same, session lost -> PUBLISH again */
        wr_connack(fd, 0, 100, 1u << 20);
        if (rd_pkt(fd, &p) != 0) break;
        parse_publish(&p, &f->first[f->nfirst++]);
        free(p.body);
        wr_ack(fd, 5, f->first[0].pid, 0);             /* PUBREC */
        if (rd_pkt(fd, &p) != 0 || (p.tf >> 4) != 6) break; /* PUBREL */
        free(p.body);
        close(fd);
        if ((fd = accept_connect(f)) < 0) return NULL;
        wr_connack(fd, f->scenario == 3, 100, 1u << 20);
        if (rd_pkt(fd, &p) != 0) break;
        if ((p.tf >> 4) == 6) {
            f->relsent_second++;
            wr_ack(fd, 7, (uint16_t)(p.body[0] << 8 | p.body[1]), 0); /* PUBCOMP */
        } else {
            parse_publish(&p, &f->second[f->nsecond++]);
            wr_ack(fd, 5, f->second[0].pid, 0);
            free(p.body);
            if (rd_pkt(fd, &p) != 0 || (p.tf >> 4) != 6) break;
            wr_ack(fd, 7, f->second[0].pid, 0);
        }
        free(p.body);
        f->ok = 1;
        break;
    }
    case 5: { /* the second of three is refused (0x97 quota exceeded) */
        wr_connack(fd, 0, 100, 1u << 20);
        for (int i = 0; i < 3 && rd_pkt(fd, &p) == 0; i++) {
            parse_publish(&p, &f->first[f->nfirst++]);
            free(p.body);
            wr_ack(fd, 4, f->first[i].pid, i == 1 ? 0x97 : 0);
        }
        f->ok = f->nfirst == 3;
        break;
    }
    case 6: { /* Maximum Packet Size 200: the 500-byte value never arrives */
        wr_connack(fd, 0, 100, 200);
        for (int i = 0; i < 2 && rd_pkt(fd, &p) == 0; i++) {
            parse_publish(&p, &f->first[f->nfirst++]);
            free(p.body);
            wr_ack(fd, 4, f->first[i].pid, 0);
        }
        f->ok = f->nfirst == 2;
        break;
    }
    }
    /* keep the connection until the client goes away */
    for (int r; (r = rd_pkt(fd, &p)) != -1;)
        if (r == 0) free(p.body);
    close(fd);
    return NULL;
}

static void fake_start(fake *f, int scenario)
{
    memset(f, 0, sizeof *f);
    f->scenario = scenario;
    f->lfd = fake_listen(&f->port);
    pthread_create(&f->th, NULL, fake_run, f);
}

static void fake_stop(fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* ---------------------------------------------------------------- driving */

static const trib_plugin *P;

static trib_ctx *sink_new(const fake *f, int qos)
{
    trib_ctx *c = th_ctx_new("sink");
    th_section *s = th_section_new();
    char url[64], q[8], err[512];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", f->port);
    snprintf(q, sizeof q, "%d", qos);
    th_set(s, "url", url);
    th_set(s, "qos", q);
    th_set(s, "client_id", "fake-test");
    th_set_kv(s, "subscriber_groups=");
    th_set(s, "reconnect_max_s", "1");
    int rc = th_create(c, P, s, 1, err, sizeof err);
    th_section_free(s);
    if (rc != TRIB_OK) {
        fprintf(stderr, "create: %s\n", err);
        exit(2);
    }
    return c;
}

static void send_n(trib_ctx *c, int n, size_t vlen)
{
    trib_record *recs[32];
    for (int i = 0; i < n; i++) {
        char v[600];
        memset(v, 'x', sizeof v);
        int l = snprintf(v, sizeof v, "m%d", i);
        v[l] = vlen > (size_t)l ? 'x' : '\0';
        recs[i] = th_record("t", "k", 1, v, vlen ? vlen : (size_t)l);
        recs[i]->seq = (uint64_t)i + 1;
    }
    CHECK(P->sink->send(th_inst(c), recs, (size_t)n) == TRIB_OK);
}

static void wait_acks(trib_ctx *c, int n)
{
    for (int i = 0; i < 200 && th_ack_count(c) < n; i++) th_sleep_ms(50);
}

int main(void)
{
    P = th_load(th_plugin_path("mqtt"));
    fake f;

    /* 1 */
    fake_start(&f, 1);
    trib_ctx *c = sink_new(&f, 1);
    send_n(c, 20, 0);
    wait_acks(c, 20);
    CHECK(th_acks(c, TRIB_OK) == 20 && th_ack_dups(c) == 0);
    th_destroy(c);
    fake_stop(&f);
    CHECK(f.ok && f.max_unacked == 3);
    if (f.max_unacked != 3) fprintf(stderr, "receive maximum: %d unacknowledged\n", f.max_unacked);
    th_ctx_free(c);

    /* 2 */
    fake_start(&f, 2);
    c = sink_new(&f, 1);
    send_n(c, 5, 0);
    wait_acks(c, 5);
    CHECK(th_acks(c, TRIB_OK) == 5 && th_ack_dups(c) == 0);
    th_destroy(c);
    fake_stop(&f);
    CHECK(f.ok && f.nfirst == 5 && f.nsecond == 3);
    for (int i = 0; i < 3 && i < f.nsecond; i++) {
        CHECK(f.second[i].dup == 1 && f.second[i].pid == f.first[i + 2].pid);
        CHECK(strcmp(f.second[i].payload, f.first[i + 2].payload) == 0);
    }
    for (int i = 0; i < f.nfirst; i++) CHECK(f.first[i].dup == 0);
    CHECK(th_log_contains(c, "lost; reconnecting") && th_log_contains(c, "reconnected to"));
    CHECK(th_metric(c, "mqtt_resends") == 3);
    th_ctx_free(c);

    /* 3 and 4 */
    for (int sc = 3; sc <= 4; sc++) {
        fake_start(&f, sc);
        c = sink_new(&f, 2);
        send_n(c, 1, 0);
        wait_acks(c, 1);
        CHECK(th_acks(c, TRIB_OK) == 1 && th_ack_dups(c) == 0);
        th_destroy(c);
        fake_stop(&f);
        CHECK(f.ok);
        if (sc == 3) CHECK(f.relsent_second == 1 && f.nsecond == 0);
        else CHECK(f.relsent_second == 0 && f.nsecond == 1 && f.second[0].qos == 2 &&
                   strcmp(f.second[0].payload, f.first[0].payload) == 0);
        th_ctx_free(c);
    }

    /* 5 */
    fake_start(&f, 5);
    c = sink_new(&f, 1);
    send_n(c, 3, 0);
    wait_acks(c, 3);
    CHECK(th_acks(c, TRIB_OK) == 2 && th_acks(c, TRIB_ERR) == 1);
    CHECK(th_ack_status(c, 2) == TRIB_ERR && strstr(th_last_error(c), "reason 0x97") &&
          strstr(th_last_error(c), "topic 't'"));
    th_destroy(c);
    fake_stop(&f);
    CHECK(f.ok);
    th_ctx_free(c);

    /* 6: records 1 and 3 are small, 2 carries 500 bytes */
    fake_start(&f, 6);
    c = sink_new(&f, 1);
    {
        trib_record *recs[3];
        for (int i = 0; i < 3; i++) {
            char v[500];
            memset(v, 'y', sizeof v);
            recs[i] = th_record("t", "k", 1, v, i == 1 ? sizeof v : 10);
            recs[i]->seq = (uint64_t)i + 1;
        }
        CHECK(P->sink->send(th_inst(c), recs, 3) == TRIB_OK);
    }
    wait_acks(c, 3);
    CHECK(th_acks(c, TRIB_OK) == 2 && th_ack_status(c, 2) == TRIB_ERR);
    CHECK(strstr(th_last_error(c), "maximum packet size") != NULL);
    th_destroy(c);
    fake_stop(&f);
    CHECK(f.ok && f.nfirst == 2);
    th_ctx_free(c);

    if (failures) {
        fprintf(stderr, "test_mqtt_sink: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_mqtt_sink: all passed\n");
    return 0;
}
