/*
 * mqtt_sink.c — publishing records and acknowledging them on PUBACK, over a
 * connection of our own (mqtt_wire.c's codec), not paho.
 *
 * Why not paho here: its asynchronous client costs 40-60 µs of CPU per QoS 1
 * message (a command queue, a thread hop and several allocations each), which
 * made the sink slower than `mosquitto_pub -l`; and paho 1.3.12 has a
 * use-after-free when the broker drops the connection under load.  Publishing
 * needs little of MQTT: CONNECT/CONNACK, PUBLISH, PUBACK (QoS 1), PUBREC/
 * PUBREL/PUBCOMP (QoS 2), PINGREQ/PINGRESP, DISCONNECT.  (The consumer still
 * uses paho: receiving is where its session handling earns its keep.)
 *
 * One I/O thread per sink owns the socket.  send() appends trackers
 * (mqtt_msg) to a FIFO and wakes it; the thread encodes queued messages into
 * its write buffer while fewer than the window (max_inflight, and the
 * broker's Receive Maximum) are unacknowledged, writes without blocking, and
 * reads acknowledgements:
 *   PUBACK / PUBCOMP (or, for QoS 0, the bytes written) -> host->ack(TRIB_OK)
 *   a v5 reason code >= 0x80 (the broker refused it)      -> host->ack(TRIB_ERR):
 *                                              the engine stops, confirming nothing past it
 *   connection lost -> every unacknowledged message goes back to the front of
 *                      the FIFO, in order, and is published again (DUP set, same
 *                      packet identifier) once reconnected: at-least-once,
 *                      duplicates only for records never acknowledged.
 * The session is persistent (clean start 0, session expiry), so a QoS 2
 * exchange cut after PUBREC resumes with PUBREL.
 *
 * Before a topic's first message, mqtt_session.c makes sure the sessions of
 * `subscriber_groups` exist (so that their consumers get everything); send()
 * blocks while it cannot, like it does for back-pressure.
 *
 * Back-pressure: at most max_inflight trackers exist; send() waits for room,
 * and gives up with TRIB_STOP acks only when the engine is stopping while the
 * broker is unreachable.  No lock is held while calling the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqtt_int.h"
#include "mqtt_wire.h"

#define WRITE_HIGH (256 * 1024) /* stop encoding when this much is waiting to be written */
#define READ_CHUNK (64 * 1024)

enum { M_QUEUED = 0, M_SENT, M_RELEASED /* QoS 2: PUBREC seen, PUBREL sent */ };

typedef struct mqtt_msg {
    struct mqtt_msg *prev, *next; /* outstanding list (all trackers not yet completed) */
    struct mqtt_msg *qnext;       /* FIFO of messages to write */
    struct mqtt_msg *sprev, *snext; /* written on this connection, awaiting their ack */
    mqtt_sink *s;
    trib_record *rec;
    uint16_t pid;                 /* 0: none assigned yet */
    int state, resend;
    int own_rec;                  /* produce(): rec is our copy, freed not acked */
    int waiter, abandoned, done, status;
    char err[256];
} mqtt_msg;

struct mqtt_sink {
    mqtt_inst *in;
    char *client_id;              /* client_id, or "<client_id>-produce" (see sink_get) */
    char who[300];                /* "tcp://host:port" for messages */
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* completions, connection state */
    mqtt_msg head;                /* sentinel of the outstanding list */
    size_t n_out;
    mqtt_msg *q_head, *q_tail;    /* to write (resends first) */
    int wake[2];                  /* pipe: send() -> I/O thread */
    int wake_pending;
    pthread_t io;
    int io_started;
    int connected, ever_connected, closing;
    /* owned by the I/O thread */
    int fd;
    mqtt_msg *s_head, *s_tail;    /* written, unacknowledged, oldest first */
    mqtt_msg **by_pid;            /* 65536 slots */
    size_t n_sent;
    uint16_t last_pid;
    mqtt_wire_limits lim;
    mqtt_wire_buf out, props;
    size_t out_off;
    mqtt_msg *qos0, *qos0_tail;   /* QoS 0 messages written to `out`, done when it drains */
    uint8_t *in_buf;
    size_t in_len;
    int64_t last_out_ms, last_in_ms, ping_sent_ms;
    int backoff_s;
};

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

static void wake_io(mqtt_sink *s)
{
    pthread_mutex_lock(&s->mu);
    int need = !s->wake_pending;
    s->wake_pending = 1;
    pthread_mutex_unlock(&s->mu);
    if (need) {
        char c = 1;
        while (write(s->wake[1], &c, 1) < 0 && errno == EINTR) {}
    }
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
    return m;
}

/* Outstanding and queued for writing (caller holds s->mu). */
static void enqueue_locked(mqtt_sink *s, mqtt_msg *m)
{
    m->next = &s->head;
    m->prev = s->head.prev;
    s->head.prev->next = m;
    s->head.prev = m;
    s->n_out++;
    m->qnext = NULL;
    if (s->q_tail) s->q_tail->qnext = m;
    else s->q_head = m;
    s->q_tail = m;
}

/* ------------------------------------------------- the I/O thread's side */

static void sent_unlink(mqtt_sink *s, mqtt_msg *m)
{
    if (m->sprev) m->sprev->snext = m->snext;
    else s->s_head = m->snext;
    if (m->snext) m->snext->sprev = m->sprev;
    else s->s_tail = m->sprev;
    m->sprev = m->snext = NULL;
    if (m->pid) s->by_pid[m->pid] = NULL;
    s->n_sent--;
}

static uint16_t next_pid(mqtt_sink *s)
{
    for (;;) { /* the window is far below 65535, so a free one is near */
        s->last_pid = (uint16_t)(s->last_pid + 1);
        if (s->last_pid && !s->by_pid[s->last_pid]) return s->last_pid;
    }
}

static size_t window(mqtt_sink *s)
{
    size_t w = (size_t)s->in->conf.max_inflight;
    return w < s->lim.receive_max ? w : s->lim.receive_max;
}

/* A message that cannot be published at all. */
static void refuse(mqtt_sink *s, mqtt_msg *m, const char *err)
{
    if (m->pid) s->by_pid[m->pid] = NULL;
    m->pid = 0;
    complete(m, TRIB_ERR, err);
}

/* Encode one message into the write buffer; nonzero if it cannot be published
   at all (it has been completed with TRIB_ERR). */
static int encode(mqtt_sink *s, mqtt_msg *m)
{
    const mqtt_conf *c = &s->in->conf;
    const trib_record *r = m->rec;
    char *topic = r->topic, *level = NULL, err[700];
    int v5 = c->version == MQTTVERSION_5, qos = c->qos;
    s->props.len = 0;
    s->props.oom = 0;
    if (qos > s->lim.max_qos) {
        snprintf(err, sizeof err, "broker %s allows QoS %d at most; qos is %d", s->who,
                 s->lim.max_qos, qos);
        refuse(s, m, err);
        return -1;
    }
    if (c->key_in_topic && r->key.set) {
        level = mqtt_level_escape(r->key.data, r->key.len);
        if (!level || asprintf(&topic, "%s/%s", r->topic, level) < 0) {
            free(level);
            refuse(s, m, "out of memory");
            return -1;
        }
    }
    size_t tlen = strlen(topic);
    const char *why = NULL;
    if (v5 && mqtt_props_encode(&s->props, r, !c->key_in_topic) != TRIB_OK)
        why = "a key or header is longer than 65535 bytes or has a name that is not UTF-8";
    else if (tlen > 65535)
        why = "topic longer than 65535 bytes";
    size_t need = why ? 0 : mqtt_wire_publish_size(c->version == MQTTVERSION_5 ? MQTT_WIRE_V5
                                                                              : MQTT_WIRE_V311,
                                                   tlen, qos, s->props.len, r->value.len);
    if (!why && need > s->lim.max_packet) {
        snprintf(err, sizeof err, "message of %zu bytes exceeds the maximum packet size of "
                 "broker %s (%u bytes)", need, s->who, (unsigned)s->lim.max_packet);
        why = err;
    }
    if (why) {
        char msg[1100];
        snprintf(msg, sizeof msg, "cannot publish to topic '%s': %s", r->topic, why);
        if (level) free(topic);
        free(level);
        refuse(s, m, msg);
        return -1;
    }
    int dup = m->resend && m->pid != 0;
    if (qos > 0 && !m->pid) {
        m->pid = next_pid(s);
        s->by_pid[m->pid] = m;
    }
    if (m->state == M_RELEASED) { /* QoS 2 cut after PUBREC: the broker has it */
        mqtt_wire_put_ack(&s->out, 0x62, m->pid);
    } else {
        mqtt_wire_put_publish(&s->out, v5 ? MQTT_WIRE_V5 : MQTT_WIRE_V311, topic, tlen, qos, dup,
                              m->pid, s->props.p, s->props.len, r->value.data, r->value.len);
        m->state = M_SENT;
    }
    if (level) free(topic);
    free(level);
    if (m->resend && s->in->host->metric_add)
        s->in->host->metric_add(s->in->ctx, "mqtt_resends", 1);
    if (qos == 0) {
        m->qnext = NULL;
        if (s->qos0_tail) s->qos0_tail->qnext = m;
        else s->qos0 = m;
        s->qos0_tail = m;
        return 0;
    }
    m->snext = NULL;
    m->sprev = s->s_tail;
    if (s->s_tail) s->s_tail->snext = m;
    else s->s_head = m;
    s->s_tail = m;
    s->n_sent++;
    return 0;
}

/* Move queued messages into the write buffer while the window allows. */
static void fill(mqtt_sink *s)
{
    size_t win = window(s);
    while (s->out.len - s->out_off < WRITE_HIGH && s->n_sent < win && !s->out.oom) {
        pthread_mutex_lock(&s->mu);
        mqtt_msg *m = s->q_head;
        if (m) {
            s->q_head = m->qnext;
            if (!s->q_head) s->q_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!m) break;
        encode(s, m);
    }
}

static void finish_qos0(mqtt_sink *s)
{
    mqtt_msg *m = s->qos0;
    s->qos0 = s->qos0_tail = NULL;
    while (m) {
        mqtt_msg *n = m->qnext;
        complete(m, TRIB_OK, NULL);
        m = n;
    }
}

/* Write what we can: 0, or -1 when the connection failed. */
static int flush_out(mqtt_sink *s)
{
    while (s->out_off < s->out.len) {
        ssize_t n = send(s->fd, s->out.p + s->out_off, s->out.len - s->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            s->out_off += (size_t)n;
            s->last_out_ms = mqtt_now_ms();
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    s->out.len = s->out_off = 0;
    finish_qos0(s);
    return 0;
}

/* One acknowledgement packet; -1 when the connection must be dropped. */
static int on_packet(mqtt_sink *s, unsigned tf, const uint8_t *body, size_t len)
{
    int version = s->in->conf.version == MQTTVERSION_5 ? MQTT_WIRE_V5 : MQTT_WIRE_V311;
    unsigned type = tf >> 4;
    uint16_t pid;
    int reason;
    char err[600];
    switch (type) {
    case 4:  /* PUBACK */
    case 5:  /* PUBREC */
    case 7: { /* PUBCOMP */
        if (mqtt_wire_ack(version, body, len, &pid, &reason) != 0) return -1;
        mqtt_msg *m = s->by_pid[pid];
        if (!m) return 0; /* a late duplicate */
        if (type == 5 && reason < 0x80) {
            m->state = M_RELEASED;
            mqtt_wire_put_ack(&s->out, 0x62, pid);
            return 0;
        }
        sent_unlink(s, m);
        if (reason >= 0x80) {
            snprintf(err, sizeof err, "broker refused message on topic '%s': %s (reason 0x%02x)",
                     m->rec->topic, mqtt_wire_reason(MQTT_WIRE_V5, reason), (unsigned)reason);
            complete(m, TRIB_ERR, err);
        } else {
            complete(m, TRIB_OK, NULL);
        }
        return 0;
    }
    case 3: /* PUBLISH: we subscribe to nothing; acknowledge so the broker moves on */
        if ((tf & 0x06) && len >= 2) {
            size_t tl = (size_t)body[0] << 8 | body[1];
            if (len >= 2 + tl + 2) {
                pid = (uint16_t)(body[2 + tl] << 8 | body[3 + tl]);
                mqtt_wire_put_ack(&s->out, (tf & 0x06) == 0x02 ? 0x40 : 0x50, pid);
            }
        }
        return 0;
    case 6: /* PUBREL (of a QoS 2 PUBLISH to us): complete it */
        if (mqtt_wire_ack(version, body, len, &pid, &reason) == 0) mqtt_wire_put_ack(&s->out, 0x70, pid);
        return 0;
    case 13: /* PINGRESP */
        s->ping_sent_ms = 0;
        return 0;
    case 14: /* DISCONNECT */
        s->in->host->log(s->in->ctx, TRIB_LOG_WARN, "broker %s closed the connection: %s",
                         s->who, len ? mqtt_wire_reason(version, body[0]) : "no reason given");
        return -1;
    default:
        return 0;
    }
}

/* Read and handle what arrived: 0, or -1 when the connection is gone. */
static int read_in(mqtt_sink *s)
{
    for (;;) {
        if (s->in_len == READ_CHUNK) return -1; /* an ack never is this large */
        ssize_t n = recv(s->fd, s->in_buf + s->in_len, READ_CHUNK - s->in_len, 0);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        s->in_len += (size_t)n;
        s->last_in_ms = mqtt_now_ms();
        size_t off = 0;
        for (;;) {
            unsigned tf;
            size_t hl;
            uint32_t rem;
            int f = mqtt_wire_frame(s->in_buf + off, s->in_len - off, &tf, &hl, &rem);
            if (f < 0) return -1;
            if (f == 0) break; /* a full buffer without a whole packet fails above */
            if (on_packet(s, tf, s->in_buf + off + hl, rem) != 0) return -1;
            off += hl + rem;
        }
        memmove(s->in_buf, s->in_buf + off, s->in_len - off);
        s->in_len -= off;
    }
    return 0;
}

/* The connection is gone: unacknowledged messages go back to the front of the
   FIFO, oldest first, to be published again. */
static void drop_connection(mqtt_sink *s, int log)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->out.len = s->out_off = 0;
    s->in_len = 0;
    /* QoS 0 messages written to a dead socket: sent again too */
    mqtt_msg *q0 = s->qos0;
    s->qos0 = s->qos0_tail = NULL;
    pthread_mutex_lock(&s->mu);
    mqtt_msg *first = NULL, *last = NULL;
    for (mqtt_msg *m = s->s_head; m; m = m->snext) {
        m->resend = 1;
        if (last) last->qnext = m;
        else first = m;
        last = m;
    }
    for (mqtt_msg *m = q0; m;) {
        mqtt_msg *n = m->qnext;
        m->resend = 1;
        if (last) last->qnext = m;
        else first = m;
        last = m;
        m = n;
    }
    if (first) {
        last->qnext = s->q_head;
        if (!s->q_head) s->q_tail = last;
        s->q_head = first;
    }
    s->s_head = s->s_tail = NULL;
    s->n_sent = 0; /* by_pid keeps the identifiers: a resend reuses them */
    s->connected = 0;
    int closing = s->closing;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (log && !closing)
        s->in->host->log(s->in->ctx, TRIB_LOG_WARN,
                         "connection to %s lost; reconnecting, unacknowledged messages will be "
                         "resent", s->in->conf.url);
}

static mqtt_wire_params wire_params(const mqtt_inst *in)
{
    const mqtt_conf *c = &in->conf;
    mqtt_wire_params p = {c->host, c->port, c->version == MQTTVERSION_5 ? MQTT_WIRE_V5
                                                                        : MQTT_WIRE_V311,
                          c->username, c->password, c->keepalive_s,
                          (uint32_t)c->session_expiry_s, c->connect_timeout_s * 1000};
    return p;
}

/* One connection attempt: 0 when connected. */
static int try_connect(mqtt_sink *s)
{
    mqtt_wire_params p = wire_params(s->in);
    char err[600];
    uint8_t *ack = NULL;
    size_t acklen = 0;
    int fd = mqtt_wire_dial(&p, s->who, err, sizeof err), rc = MQTT_WIRE_TRANSIENT;
    if (fd >= 0) {
        rc = mqtt_wire_connect_exchange(fd, &p, s->client_id, s->who, &ack, &acklen, err,
                                        sizeof err);
        if (rc == MQTT_WIRE_OK && mqtt_wire_connack_limits(p.version, ack, acklen, &s->lim) != 0) {
            snprintf(err, sizeof err, "broker %s sent a malformed CONNACK", s->who);
            rc = MQTT_WIRE_TRANSIENT;
        }
    }
    int present = rc == MQTT_WIRE_OK && acklen > 0 && (ack[0] & 1);
    free(ack);
    if (rc != MQTT_WIRE_OK) {
        if (fd >= 0) close(fd);
        int wait = s->backoff_s;
        s->backoff_s = s->backoff_s * 2 > s->in->conf.reconnect_max_s ? s->in->conf.reconnect_max_s
                                                                      : s->backoff_s * 2;
        if (s->backoff_s < 1) s->backoff_s = 1;
        pthread_mutex_lock(&s->mu);
        int closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (!closing)
            s->in->host->log(s->in->ctx, TRIB_LOG_WARN, "%s; retrying in %d s", err, wait);
        return wait;
    }
    s->fd = fd;
    s->backoff_s = 1;
    s->last_in_ms = s->last_out_ms = mqtt_now_ms();
    s->ping_sent_ms = 0;
    if (!present) { /* the broker knows none of our identifiers: start afresh */
        pthread_mutex_lock(&s->mu);
        for (mqtt_msg *m = s->q_head; m; m = m->qnext)
            if (m->pid) {
                s->by_pid[m->pid] = NULL;
                m->pid = 0;
                m->state = M_QUEUED;
            }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    int first = !s->ever_connected;
    s->connected = s->ever_connected = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!first) /* the broker may have restarted without its sessions */
        mqtt_sessions_invalidate(s->in);
    s->in->host->log(s->in->ctx, first ? TRIB_LOG_INFO : TRIB_LOG_WARN, "%s to %s as '%s'",
                     first ? "connected" : "reconnected", s->in->conf.url, s->client_id);
    return 0;
}

/* Not connected while the engine stops: nothing queued will get through. */
static void give_up_queued(mqtt_sink *s)
{
    pthread_mutex_lock(&s->mu);
    mqtt_msg *m = s->q_head;
    s->q_head = s->q_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (m) {
        mqtt_msg *n = m->qnext;
        if (m->pid) s->by_pid[m->pid] = NULL;
        complete(m, TRIB_STOP, "not acknowledged: engine stopping while the broker is unreachable");
        m = n;
    }
}

/* Empty the pipe, then allow the next wake_io() to write: a message queued in
   between is seen by the fill() that follows (it was queued under s->mu
   before wake_io() found wake_pending set). */
static void drain_wake(mqtt_sink *s)
{
    char buf[64];
    while (read(s->wake[0], buf, sizeof buf) > 0) {}
    pthread_mutex_lock(&s->mu);
    s->wake_pending = 0;
    pthread_mutex_unlock(&s->mu);
}

/* Wait up to ms for a wake-up (send() or close). */
static void idle(mqtt_sink *s, int ms)
{
    struct pollfd pfd = {s->wake[0], POLLIN, 0};
    if (poll(&pfd, 1, ms) > 0) drain_wake(s);
}

static void *io_main(void *arg)
{
    mqtt_sink *s = arg;
    pthread_setname_np(pthread_self(), "mqtt:io");
    int ka_ms = s->in->conf.keepalive_s > 0 ? s->in->conf.keepalive_s * 1000 : 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (closing) break;
        if (s->fd < 0) {
            int wait = try_connect(s);
            if (wait > 0) {
                for (int64_t end = mqtt_now_ms() + 1000LL * wait; mqtt_now_ms() < end;) {
                    if (stopping(s)) give_up_queued(s);
                    pthread_mutex_lock(&s->mu);
                    closing = s->closing;
                    pthread_mutex_unlock(&s->mu);
                    if (closing) break;
                    idle(s, 100);
                }
                continue;
            }
        }
        fill(s);
        if (s->out.oom) {
            s->in->host->log(s->in->ctx, TRIB_LOG_ERROR, "out of memory encoding MQTT messages");
            drop_connection(s, 0);
            free(s->out.p);
            memset(&s->out, 0, sizeof s->out);
            continue;
        }
        if (flush_out(s) != 0) {
            drop_connection(s, 1);
            continue;
        }
        int64_t now = mqtt_now_ms();
        int timeout = 1000;
        if (ka_ms) {
            if (s->ping_sent_ms && now - s->ping_sent_ms > ka_ms) { /* no PINGRESP */
                s->in->host->log(s->in->ctx, TRIB_LOG_WARN, "broker %s did not answer a ping "
                                 "within %d s", s->who, s->in->conf.keepalive_s);
                drop_connection(s, 1);
                continue;
            }
            if (!s->ping_sent_ms && now - s->last_out_ms >= ka_ms * 3 / 4) {
                mqtt_wire_put_u8(&s->out, 0xC0);
                mqtt_wire_put_u8(&s->out, 0x00);
                s->ping_sent_ms = now;
                continue;
            }
            int64_t until = s->last_out_ms + ka_ms * 3 / 4 - now;
            if (until < timeout) timeout = until < 1 ? 1 : (int)until;
        }
        pthread_mutex_lock(&s->mu);
        int more = s->q_head != NULL && s->n_sent < window(s);
        pthread_mutex_unlock(&s->mu);
        struct pollfd pf[2] = {{s->fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
        if (s->out_off < s->out.len) pf[0].events |= POLLOUT;
        if (more && !(pf[0].events & POLLOUT)) continue; /* room for more right now */
        int n = poll(pf, 2, timeout);
        if (n < 0 && errno != EINTR) {
            drop_connection(s, 1);
            continue;
        }
        if (n <= 0) continue;
        if (pf[1].revents) drain_wake(s);
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (read_in(s) != 0) {
                drop_connection(s, 1);
                continue;
            }
        }
    }
    /* closing: say goodbye if connected, so the broker keeps the session cleanly */
    if (s->fd >= 0) {
        flush_out(s);
        static const uint8_t disc[2] = {0xE0, 0x00};
        (void)!send(s->fd, disc, 2, MSG_NOSIGNAL);
        shutdown(s->fd, SHUT_WR);
        close(s->fd);
        s->fd = -1;
    }
    return NULL;
}

/* ------------------------------------------------------- connection life */

static mqtt_sink *sink_create(mqtt_inst *in, const char *suffix)
{
    const mqtt_conf *c = &in->conf;
    mqtt_sink *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->fd = -1;
    s->wake[0] = s->wake[1] = -1;
    if (asprintf(&s->client_id, "%s%s", c->client_id, suffix) < 0) {
        free(s);
        return NULL;
    }
    s->in = in;
    s->head.next = s->head.prev = &s->head;
    s->backoff_s = 1;
    s->lim.receive_max = 65535;
    s->lim.max_qos = 2;
    s->lim.max_packet = 268435460u;
    snprintf(s->who, sizeof s->who, "%s", c->url);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->by_pid = calloc(65536, sizeof *s->by_pid);
    s->in_buf = malloc(READ_CHUNK);
    if (!s->by_pid || !s->in_buf || pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pthread_create(&s->io, NULL, io_main, s) != 0) {
        in->host->log(in->ctx, TRIB_LOG_ERROR, "cannot create the MQTT client for %s: %s", c->url,
                      strerror(errno ? errno : ENOMEM));
        mqtt_sink_destroy(s);
        return NULL;
    }
    s->io_started = 1;
    if (c->version != MQTTVERSION_5 && !c->key_in_topic)
        in->host->log(in->ctx, TRIB_LOG_WARN, "MQTT 3.1.1 has no user properties: record keys, op "
                                              "and lsn are not sent (set key_in_topic: true)");
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
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->io_started) {
        char c = 1;
        (void)!write(s->wake[1], &c, 1);
        pthread_join(s->io, NULL);
    }
    /* the I/O thread is gone: settle what is left */
    s->q_head = s->q_tail = NULL;
    s->s_head = s->s_tail = NULL;
    s->qos0 = s->qos0_tail = NULL;
    while (s->head.next != &s->head)
        complete(s->head.next, TRIB_STOP, "not acknowledged by the broker before shutdown");
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    free(s->out.p);
    free(s->props.p);
    free(s->in_buf);
    free(s->by_pid);
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
        timed_wait(s, 100);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int is_full(mqtt_sink *s)
{
    pthread_mutex_lock(&s->mu);
    int full = s->n_out >= (size_t)s->in->conf.max_inflight;
    pthread_mutex_unlock(&s->mu);
    return full;
}

/* Why a record cannot be published at all, or NULL. */
static const char *unpublishable(const trib_record *r)
{
    if (!mqtt_topic_publishable(r->topic))
        return "record topic is not a valid MQTT topic (empty, '+'/'#' or not UTF-8)";
    if (r->value.len > 268435455u) return "record value exceeds MQTT's 256 MB payload limit";
    return NULL;
}

static void submit(mqtt_sink *s, mqtt_msg *m)
{
    pthread_mutex_lock(&s->mu);
    enqueue_locked(s, m);
    pthread_mutex_unlock(&s->mu);
}

int mqtt_sink_send(void *inst, trib_record **recs, size_t n)
{
    mqtt_inst *in = inst;
    mqtt_sink *s = sink_get(in, "");
    char err[700];
    int queued = 0;
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
        if (ss == TRIB_OK && queued && is_full(s)) {
            wake_io(s); /* let it write what is queued before waiting for room */
            queued = 0;
        }
        if (ss != TRIB_OK || wait_room(s, 0) != TRIB_OK) {
            for (size_t j = i; j < n; j++)
                in->host->ack(in->ctx, recs[j], TRIB_STOP, "engine stopping while the broker "
                                                           "is unreachable");
            if (queued) wake_io(s);
            return TRIB_OK;
        }
        mqtt_msg *m = msg_new(s, recs[i], 0, 0);
        if (!m) {
            in->host->ack(in->ctx, recs[i], TRIB_ERR, "out of memory");
            continue;
        }
        submit(s, m);
        queued = 1;
    }
    if (queued) wake_io(s);
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
    while (s->n_out > 0 && mqtt_now_ms() < deadline) timed_wait(s, 50);
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
    wake_io(s);
    pthread_mutex_lock(&s->mu);
    while (!m->done && mqtt_now_ms() < deadline) timed_wait(s, 50);
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
