/*
 * plugins/redis/redis_sink.c — the sink: each batch becomes pipelined XADDs.
 *
 * One entry per record in the stream named by the record's topic, with the
 * fields `key` and `value` (binary-safe, omitted when not set), `op`, `lsn`
 * (the change's LSN as Postgres prints it, "16/B374D848"), `commit_lsn`
 * (its transaction's commit LSN, when known), `snapshot` ("true", or "last"
 * for the snapshot's last row) and the record's headers.
 *
 * send() is synchronous: it formats the batch's XADDs as RESP (a bounded
 * window ahead of the socket), writes them without blocking and reads the
 * replies while it is still writing, so Redis works on the batch while the
 * rest of it is being sent.  The framing and small arguments go into one
 * reusable buffer; large arguments (a record's value) are not copied: the
 * write gathers them from the records (sendmsg), which stay alive until
 * their reply is read.  Replies come in
 * order; each acknowledges its record (an ID: TRIB_OK; an error reply:
 * TRIB_ERR naming the stream and Redis' message).  When the connection
 * breaks or stays silent for command_timeout_ms, the records whose replies
 * were not read are resent on a new connection (so only those can be
 * duplicated); while Redis is unreachable send() blocks, which
 * back-pressures the engine, until it comes back or the engine stops
 * (remaining records are then acked TRIB_STOP and replayed by the source on
 * restart).  Since send() acks everything before it returns, flush() has
 * nothing to wait for.
 */
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* How far formatting may run ahead of the socket, and one read's size. */
#define WINDOW_BYTES (256 * 1024)
#define READ_BYTES (64 * 1024)
/* Arguments from this size on are written from the record, not copied. */
#define GATHER_MIN 512
#define IOV_BATCH 128

/* One piece of what is to be written: ri->wbuf[off, off+len) when p is NULL, else p[0, len). */
typedef struct redis_seg {
    const char *p;
    size_t off, len;
} redis_seg;

/* A RESP encoder: counts (buf == NULL) or writes at buf + len; with `gather`
 * set, large arguments become segments of ri->segs instead of copies. */
typedef struct resp {
    char *buf;
    size_t len;
    int nargs;
    redis_inst *gather;
} resp;

/* Room for `more` segments.  TRIB_ERR on ENOMEM. */
static int seg_reserve(redis_inst *ri, size_t more)
{
    if (ri->nseg + more <= ri->segcap)
        return TRIB_OK;
    size_t cap = ri->segcap ? ri->segcap * 2 : 256;
    while (cap < ri->nseg + more)
        cap *= 2;
    redis_seg *ns = realloc(ri->segs, cap * sizeof *ns);
    if (!ns)
        return TRIB_ERR;
    ri->segs = ns;
    ri->segcap = cap;
    return TRIB_OK;
}

/* Append a segment (room reserved by xadd_format). */
static void seg_push(redis_inst *ri, const char *p, size_t off, size_t len)
{
    if (len)
        ri->segs[ri->nseg++] = (redis_seg){p, off, len};
}

/* Close the buffered bytes up to `end` into a segment. */
static void seg_cut(redis_inst *ri, size_t end)
{
    if (end > ri->wmark) {
        seg_push(ri, NULL, ri->wmark, end - ri->wmark);
        ri->wmark = end;
    }
}

/* The numbers an XADD carries, formatted once per record. */
typedef struct xadd_nums {
    char maxlen[24];
    char lsn[24];
    char commit_lsn[24];
} xadd_nums;

static int reserved_field(const char *name)
{
    static const char *const names[] = {"key",        "value",    "op", "lsn",
                                        "commit_lsn", "snapshot", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static char *put_uint(char *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static void arg(resp *w, const char *s, size_t len)
{
    w->nargs++;
    if (!w->buf) {
        w->len += len + 25; /* '$', up to 20 digits, two CRLFs */
        return;
    }
    char *o = w->buf + w->len;
    *o++ = '$';
    o = put_uint(o, len);
    *o++ = '\r';
    *o++ = '\n';
    if (w->gather && len >= GATHER_MIN) {
        seg_cut(w->gather, (size_t)(o - w->buf));
        seg_push(w->gather, s, 0, len);
    } else {
        if (len)
            memcpy(o, s, len);
        o += len;
    }
    *o++ = '\r';
    *o++ = '\n';
    w->len = (size_t)(o - w->buf);
}

static void arg_str(resp *w, const char *s)
{
    arg(w, s, strlen(s));
}

static void pair(resp *w, const char *name, const char *v, size_t len)
{
    arg_str(w, name);
    arg(w, v ? v : "", v ? len : 0);
}

static void pair_str(resp *w, const char *name, const char *v)
{
    pair(w, name, v, strlen(v));
}

static char *put_hex(char *o, uint32_t v)
{
    char tmp[8];
    int n = 0;
    do
        tmp[n++] = "0123456789ABCDEF"[v & 15];
    while ((v >>= 4) != 0);
    while (n)
        *o++ = tmp[--n];
    return o;
}

/* An LSN as Postgres prints it: "16/B374D848" (buf: at least 18 bytes). */
static void lsn_str(uint64_t lsn, char *buf)
{
    char *o = put_hex(buf, (uint32_t)(lsn >> 32));
    *o++ = '/';
    *put_hex(o, (uint32_t)lsn) = '\0';
}

static void xadd_nums_fill(const redis_inst *ri, const trib_record *rec, xadd_nums *nm)
{
    nm->maxlen[0] = nm->lsn[0] = nm->commit_lsn[0] = '\0';
    if (ri->maxlen > 0)
        snprintf(nm->maxlen, sizeof nm->maxlen, "%" PRId64, ri->maxlen);
    if (rec->op) {
        lsn_str(rec->src.lsn, nm->lsn);
        if (rec->src.commit_lsn)
            lsn_str(rec->src.commit_lsn, nm->commit_lsn);
    }
}

/* The arguments of XADD <topic> [MAXLEN ~ N] * field value ... */
static void xadd_args(const redis_inst *ri, const trib_record *rec, const xadd_nums *nm, resp *w)
{
    arg_str(w, "XADD");
    arg_str(w, rec->topic);
    if (ri->maxlen > 0) {
        arg_str(w, "MAXLEN");
        arg_str(w, "~");
        arg_str(w, nm->maxlen);
    }
    arg_str(w, "*");
    int first_field = w->nargs;
    if (rec->key.set)
        pair(w, "key", rec->key.data, rec->key.len);
    if (rec->value.set)
        pair(w, "value", rec->value.data, rec->value.len);
    if (rec->op) {
        pair(w, "op", &rec->op, 1);
        pair_str(w, "lsn", nm->lsn);
        if (rec->src.commit_lsn)
            pair_str(w, "commit_lsn", nm->commit_lsn);
    }
    if (rec->src.snapshot)
        pair_str(w, "snapshot", rec->src.snapshot == 2 ? "last" : "true");
    for (size_t i = 0; i < rec->nheaders; i++) {
        const trib_header *h = &rec->headers[i];
        if (!h->name || reserved_field(h->name))
            continue;
        pair(w, h->name, h->value, h->len);
    }
    if (w->nargs == first_field) /* XADD needs at least one field */
        pair(w, "value", "", 0);
}

/* Append one XADD to what is to be written; *bytes grows by its size.
 * TRIB_ERR on ENOMEM. */
static int xadd_format(redis_inst *ri, const trib_record *rec, size_t *bytes)
{
    xadd_nums nm;
    xadd_nums_fill(ri, rec, &nm);
    resp count = {NULL, 0, 0, NULL};
    xadd_args(ri, rec, &nm, &count);
    /* at most two segments per argument (buffered bytes, then a gathered one) and the tail */
    if (seg_reserve(ri, 2 * (size_t)count.nargs + 1) != TRIB_OK)
        return TRIB_ERR;
    size_t need = ri->wmark + count.len + 32; /* copies never exceed the counted size */
    if (need > ri->wcap) {
        size_t cap = ri->wcap ? ri->wcap * 2 : WINDOW_BYTES * 2;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(ri->wbuf, cap);
        if (!nb)
            return TRIB_ERR;
        ri->wbuf = nb;
        ri->wcap = cap;
    }
    char *o = ri->wbuf + ri->wmark;
    *o++ = '*';
    o = put_uint(o, (uint64_t)count.nargs);
    *o++ = '\r';
    *o++ = '\n';
    size_t start = ri->wmark, gathered = 0, nseg0 = ri->nseg;
    resp w = {ri->wbuf, (size_t)(o - ri->wbuf), 0, ri};
    xadd_args(ri, rec, &nm, &w);
    seg_cut(ri, w.len);
    for (size_t i = nseg0; i < ri->nseg; i++)
        if (ri->segs[i].p)
            gathered += ri->segs[i].len;
    *bytes += (w.len - start) + gathered;
    return TRIB_OK;
}

static void ack_err(redis_inst *ri, trib_record *rec, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "redis: XADD to stream '%s' at %s failed: %s",
             rec->topic ? rec->topic : "(none)", ri->cfg.where, what);
    ri->host->ack(ri->ctx, rec, TRIB_ERR, msg);
}

/*
 * Handle one reply.  Returns 1 when the record is finished (acked), 0 when it
 * must be retried (transient error reply).
 */
static int handle_reply(redis_inst *ri, trib_record *rec, redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING) {
        ri->host->ack(ri->ctx, rec, TRIB_OK, NULL);
        return 1;
    }
    if (redis_reply_transient(r)) {
        ri->host->log(ri->ctx, TRIB_LOG_WARN, "XADD to stream '%s': %s; will retry", rec->topic,
                      r->str);
        return 0;
    }
    ack_err(ri, rec, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
    return 1;
}

/* The state of one round of pipelined XADDs over todo[0..n). */
typedef struct round {
    trib_record **recs;
    size_t *todo;
    size_t n;        /* records in this round */
    size_t fmt;      /* todo[0..fmt) are formatted (written or in wbuf) */
    size_t nread;    /* todo[0..nread) got their reply */
    size_t keep;     /* todo[0..keep) must be sent again (transient errors) */
    size_t sidx, sskip; /* next to write: ri->segs[sidx], from its byte sskip */
    size_t unsent;   /* bytes formatted and not yet written */
    const char *lost; /* why the connection is unusable, or NULL */
} round;

/* Format records until the unwritten window is full; ENOMEM fails the rest. */
static void round_fill(redis_inst *ri, round *rd)
{
    if (rd->unsent == 0) { /* everything written: start the buffers over */
        ri->wmark = 0;
        ri->nseg = 0;
        rd->sidx = rd->sskip = 0;
    }
    while (rd->fmt < rd->n && rd->unsent < WINDOW_BYTES) {
        if (xadd_format(ri, rd->recs[rd->todo[rd->fmt]], &rd->unsent) != TRIB_OK) {
            for (size_t i = rd->fmt; i < rd->n; i++)
                ack_err(ri, rd->recs[rd->todo[i]], "out of memory building the command");
            rd->n = rd->fmt;
            break;
        }
        rd->fmt++;
    }
}

/* Write what the socket takes now.  1: progress, 0: none, -1: lost. */
static int round_write(redis_inst *ri, round *rd)
{
    struct iovec iov[IOV_BATCH];
    int k = 0;
    for (size_t i = rd->sidx; i < ri->nseg && k < IOV_BATCH; i++, k++) {
        const redis_seg *sg = &ri->segs[i];
        const char *base = sg->p ? sg->p : ri->wbuf + sg->off;
        size_t skip = i == rd->sidx ? rd->sskip : 0;
        iov[k].iov_base = (void *)(base + skip);
        iov[k].iov_len = sg->len - skip;
    }
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)k;
    ssize_t w = sendmsg(ri->sink.c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
        size_t left = (size_t)w;
        rd->unsent -= left;
        while (left) {
            size_t rem = ri->segs[rd->sidx].len - rd->sskip;
            if (left >= rem) {
                left -= rem;
                rd->sidx++;
                rd->sskip = 0;
            } else {
                rd->sskip += left;
                left = 0;
            }
        }
        return 1;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    rd->lost = w < 0 ? strerror(errno) : "write returned 0";
    return -1;
}

/* Read what has arrived and settle the records of complete replies. */
static int round_read(redis_inst *ri, round *rd)
{
    redisContext *c = ri->sink.c;
    char buf[READ_BYTES];
    ssize_t k = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k == 0) {
        rd->lost = "connection closed by the server";
        return -1;
    }
    if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        rd->lost = strerror(errno);
        return -1;
    }
    if (redisReaderFeed(c->reader, buf, (size_t)k) != REDIS_OK) {
        rd->lost = "out of memory reading replies";
        return -1;
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            rd->lost = "protocol error in a reply";
            return -1;
        }
        if (!reply)
            return 1;
        if (rd->nread >= rd->fmt) { /* a reply to nothing we sent */
            freeReplyObject(reply);
            rd->lost = "unexpected reply";
            return -1;
        }
        size_t t = rd->todo[rd->nread++];
        if (!handle_reply(ri, rd->recs[t], reply))
            rd->todo[rd->keep++] = t;
        freeReplyObject(reply);
    }
}

/* Wait for the socket; write and read.  TRIB_OK or TRIB_ERR (lost). */
static int round_step(redis_inst *ri, round *rd, uint64_t *idle_since)
{
    int timeout = ri->cfg.command_timeout_ms;
    int left = (int)((int64_t)*idle_since + timeout - (int64_t)redis_now_ms());
    if (left <= 0) {
        rd->lost = "timed out waiting for replies";
        return TRIB_ERR;
    }
    struct pollfd p = {ri->sink.c->fd, POLLIN, 0};
    if (rd->unsent)
        p.events |= POLLOUT;
    int pr = poll(&p, 1, left);
    if (pr < 0 && errno != EINTR) {
        rd->lost = strerror(errno);
        return TRIB_ERR;
    }
    if (pr <= 0)
        return TRIB_OK;
    int w = 0, r = 0;
    if (p.revents & POLLOUT)
        w = round_write(ri, rd);
    if (w >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
        r = round_read(ri, rd);
    if (w < 0 || r < 0)
        return TRIB_ERR;
    if (w > 0 || r > 0)
        *idle_since = redis_now_ms();
    return TRIB_OK;
}

/*
 * One round: pipeline XADDs for todo[0..n), writing and reading at once.
 * Compacts todo to the records still to send and returns their count.
 */
static size_t xadd_round(redis_inst *ri, trib_record **recs, size_t *todo, size_t n)
{
    round rd = {recs, todo, n, 0, 0, 0, 0, 0, 0, NULL};
    uint64_t idle_since = redis_now_ms();
    for (;;) {
        round_fill(ri, &rd);
        if (rd.nread == rd.fmt && rd.fmt == rd.n)
            break;
        if (round_step(ri, &rd, &idle_since) != TRIB_OK)
            break;
    }
    if (rd.lost) {
        redisContext *c = ri->sink.c;
        c->err = REDIS_ERR_IO;
        snprintf(c->errstr, sizeof c->errstr, "%s", rd.lost);
        redis_conn_lost(&ri->sink, "XADD");
    }
    for (size_t i = rd.nread; i < rd.n; i++) /* replies never read: resend */
        todo[rd.keep++] = todo[i];
    return rd.keep;
}

static void ack_all(redis_inst *ri, trib_record **recs, const size_t *todo, size_t n, int status,
                    const char *msg)
{
    for (size_t i = 0; i < n; i++)
        ri->host->ack(ri->ctx, recs[todo[i]], status, msg);
}

int redis_sink_send(void *inst, trib_record **recs, size_t n)
{
    redis_inst *ri = inst;
    size_t *todo = malloc((n ? n : 1) * sizeof *todo), ntodo = 0;
    if (!todo) {
        for (size_t i = 0; i < n; i++)
            ack_err(ri, recs[i], "out of memory");
        return TRIB_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if (!recs[i]->topic || !recs[i]->topic[0])
            ack_err(ri, recs[i], "the record has no topic (stream name)");
        else
            todo[ntodo++] = i;
    }
    pthread_mutex_lock(&ri->lock);
    while (ntodo > 0) {
        if (redis_conn_ensure(&ri->sink) != TRIB_OK)
            break;
        redis_conn_timeout(&ri->sink, ri->cfg.command_timeout_ms);
        ntodo = xadd_round(ri, recs, todo, ntodo);
        if (ntodo > 0 && ri->sink.c && redis_conn_backoff(&ri->sink, -1) == TRIB_STOP)
            break; /* transient error replies, and we are asked to stop */
    }
    pthread_mutex_unlock(&ri->lock);
    if (ntodo > 0) {
        ri->host->log(ri->ctx, TRIB_LOG_WARN,
                      "stopping while %s is unavailable: %zu records not delivered "
                      "(they will be replayed on restart)",
                      ri->cfg.where, ntodo);
        ack_all(ri, recs, todo, ntodo, TRIB_STOP, "redis unavailable while stopping");
    }
    ri->host->metric_add(ri->ctx, "batches", 1);
    free(todo);
    return TRIB_OK;
}

int redis_sink_flush(void *inst, int timeout_ms)
{
    (void)inst;
    (void)timeout_ms;
    return TRIB_OK; /* send() acknowledges every record before it returns */
}

/* XADD one record now; TRIB_OK, TRIB_RETRY (Redis unreachable) or TRIB_ERR. */
int redis_produce(void *inst, const trib_record *rec, int timeout_ms)
{
    redis_inst *ri = inst;
    if (!rec->topic || !rec->topic[0]) {
        ri->host->log(ri->ctx, TRIB_LOG_ERROR, "produce: the record has no topic");
        return TRIB_ERR;
    }
    xadd_nums nm;
    xadd_nums_fill(ri, rec, &nm);
    resp count = {NULL, 0, 0, NULL};
    xadd_args(ri, rec, &nm, &count);
    resp cmd = {malloc(count.len + 32), 0, 0, NULL};
    if (!cmd.buf)
        return TRIB_ERR;
    char *o = cmd.buf;
    *o++ = '*';
    o = put_uint(o, (uint64_t)count.nargs);
    *o++ = '\r';
    *o++ = '\n';
    cmd.len = (size_t)(o - cmd.buf);
    xadd_args(ri, rec, &nm, &cmd);
    pthread_mutex_lock(&ri->lock);
    uint64_t deadline = redis_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int ret = TRIB_RETRY;
    for (;;) {
        char err[320];
        if (!ri->sink.c && redis_conn_open(&ri->sink, err, sizeof err) != TRIB_OK)
            ri->host->log(ri->ctx, TRIB_LOG_WARN, "produce: %s", err);
        if (ri->sink.c) {
            redis_conn_timeout(&ri->sink, ri->cfg.command_timeout_ms);
            void *reply = NULL;
            if (redisAppendFormattedCommand(ri->sink.c, cmd.buf, cmd.len) != REDIS_OK ||
                redisGetReply(ri->sink.c, &reply) != REDIS_OK)
                reply = NULL;
            redisReply *r = reply;
            if (!r) {
                redis_conn_lost(&ri->sink, "XADD");
            } else {
                ret = r->type == REDIS_REPLY_STRING ? TRIB_OK
                      : redis_reply_transient(r)    ? TRIB_RETRY
                                                    : TRIB_ERR;
                if (ret == TRIB_ERR)
                    ri->host->log(ri->ctx, TRIB_LOG_ERROR, "produce: XADD to stream '%s': %s",
                                  rec->topic, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
                freeReplyObject(r);
            }
        }
        if (ret != TRIB_RETRY || redis_now_ms() >= deadline)
            break;
        int left = (int)(deadline - redis_now_ms());
        if (redis_conn_backoff(&ri->sink, left) == TRIB_STOP)
            break;
    }
    pthread_mutex_unlock(&ri->lock);
    free(cmd.buf);
    return ret;
}
