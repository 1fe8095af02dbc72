/*
 * plugins/redis/redis_sink.c — the sink: each batch becomes pipelined XADDs.
 *
 * One entry per record in the stream named by the record's topic, with the
 * fields `key` and `value` (binary-safe, omitted when not set), `op`, `lsn`
 * (the change's LSN as Postgres prints it, "16/B374D848"), `commit_lsn`
 * (its transaction's commit LSN, when known), `snapshot` ("true", or "last"
 * for the snapshot's last row) and the record's headers.
 *
 * send() formats the batch's XADDs as RESP (a bounded window ahead of the
 * socket) and writes them without blocking; the replies are read in bulk
 * once the commands are written (see fl_pump).  It returns once the whole
 * batch is written and the replies of earlier batches are read.  The replies
 * of its own batch are read by the next send(), so Redis always has commands
 * queued while the engine prepares the next batch, or, when the engine has
 * nothing else to send, by drain() (ABI 1.2), and at shutdown by flush().
 * At most two batches are in flight.
 * The framing and small arguments go into one reusable buffer; large
 * arguments (a record's value) are not copied: the write gathers them from
 * the records (sendmsg), which stay alive until their reply is read.
 * With confirm: batch (the default) the XADDs go in quiet groups, confirmed
 * as a whole (see "confirmation units" below); with confirm: each, or on a
 * server that cannot do that, every XADD has its reply.
 * Replies come in order; each acknowledges its record (an ID: TRIB_OK; an
 * error reply: TRIB_ERR naming the stream and Redis' message; a transient
 * one such as BUSY or LOADING: sent again after a backoff).  When the
 * connection breaks or stays silent for command_timeout_ms, the records
 * whose replies were not read are resent on a new connection (so only those
 * can be duplicated); while Redis is unreachable send() blocks, which
 * back-pressures the engine, until it comes back or the engine stops
 * (remaining records are then acked TRIB_STOP and replayed by the source on
 * restart; so is whatever destroy() finds still in flight).
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
/* A quiet group ends at this many records or bytes. */
#define GROUP_MAX 1024
#define GROUP_BYTES (1024 * 1024)

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

static void xadd_nums_fill(const redis_inst *ri, const trib_record *rec, xadd_nums *nm)
{
    nm->maxlen[0] = nm->lsn[0] = nm->commit_lsn[0] = '\0';
    if (ri->maxlen > 0)
        snprintf(nm->maxlen, sizeof nm->maxlen, "%" PRId64, ri->maxlen);
    if (rec->op) {
        trib_lsn_format(rec->src.lsn, nm->lsn);
        if (rec->src.commit_lsn)
            trib_lsn_format(rec->src.commit_lsn, nm->commit_lsn);
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
    /* ... and one more, for a quiet group's closing commands */
    if (seg_reserve(ri, 2 * (size_t)count.nargs + 2) != TRIB_OK)
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
static int handle_reply(redis_inst *ri, trib_record *rec, const redisReply *r)
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

/* ---- the records in flight -------------------------------------------------
 * ri->fl holds, oldest first, every record given to send() and not yet
 * acknowledged.  Its first ri->nfmt are formatted: their XADDs are written,
 * or in the segments still to write, and wait for their replies (which come
 * in order); the rest wait to be formatted.  All of it is guarded by ri->lock.
 */

/* ---- confirmation units ------------------------------------------------------
 * The formatted records, oldest first, are covered by units (a ring): a run
 * of records confirmed by a reply per XADD, or a quiet group confirmed as a
 * whole.  A quiet group is written as
 *     [INFO stats]  CLIENT REPLY OFF  XADD ... XADD  CLIENT REPLY ON  INFO stats
 * Redis sends no reply for the XADDs, which saves it a reply and a socket
 * write per few XADDs (5-12% of its CPU in the MNIST snapshot benchmark,
 * docs/benchmarks.md).  An XADD that fails still counts in Redis'
 * total_error_replies; so the group is confirmed when the counter of the
 * INFO after it equals the one before it (the previous group's closing INFO,
 * or the group's own leading one).  Any difference (an error of the group's
 * or of another client's; CONFIG RESETSTAT), or an unexpected reply, leaves
 * the group unconfirmed: the connection is dropped, everything not
 * confirmed is sent again with a reply per XADD (so entries of the group
 * that did land are duplicated, as after a lost connection), and the sink
 * stays with a reply per XADD.  Servers without CLIENT REPLY or the counter
 * (found at connect) get a reply per XADD from the start.
 */
typedef struct redis_unit {
    size_t n;  /* records */
    int quiet; /* a quiet group; else a reply per record */
    int lead;  /* the group starts with its own INFO stats */
} redis_unit;

/* Room for one more unit.  TRIB_ERR on ENOMEM. */
static int unit_room(redis_inst *ri)
{
    if (ri->u_len < ri->u_cap)
        return TRIB_OK;
    size_t cap = ri->u_cap ? ri->u_cap * 2 : 64;
    redis_unit *nu = malloc(cap * sizeof *nu);
    if (!nu)
        return TRIB_ERR;
    for (size_t i = 0; i < ri->u_len; i++)
        nu[i] = ri->units[(ri->u_head + i) % ri->u_cap];
    free(ri->units);
    ri->units = nu;
    ri->u_cap = cap;
    ri->u_head = 0;
    return TRIB_OK;
}

/* Append a unit (room made by unit_room); runs of replies merge. */
static void unit_add(redis_inst *ri, size_t n, int quiet, int lead)
{
    if (ri->u_len) {
        redis_unit *last = &ri->units[(ri->u_head + ri->u_len - 1) % ri->u_cap];
        if (!quiet && !last->quiet) {
            last->n += n;
            return;
        }
    }
    ri->units[(ri->u_head + ri->u_len++) % ri->u_cap] = (redis_unit){n, quiet, lead};
}

static void unit_pop(redis_inst *ri)
{
    ri->u_head = (ri->u_head + 1) % ri->u_cap;
    ri->u_len--;
    ri->u_step = 0;
}

static trib_record *fl_at(const redis_inst *ri, size_t i)
{
    return ri->fl[(ri->fl_head + i) % ri->fl_cap];
}

/* Append a record (TRIB_ERR on ENOMEM: the caller acks it). */
static int fl_push(redis_inst *ri, trib_record *rec)
{
    if (ri->fl_len == ri->fl_cap) {
        size_t cap = ri->fl_cap ? ri->fl_cap * 2 : 1024;
        trib_record **nf = malloc(cap * sizeof *nf);
        if (!nf)
            return TRIB_ERR;
        for (size_t i = 0; i < ri->fl_len; i++)
            nf[i] = fl_at(ri, i);
        free(ri->fl);
        ri->fl = nf;
        ri->fl_cap = cap;
        ri->fl_head = 0;
    }
    ri->fl[(ri->fl_head + ri->fl_len++) % ri->fl_cap] = rec;
    return TRIB_OK;
}

static trib_record *fl_pop(redis_inst *ri)
{
    trib_record *rec = ri->fl[ri->fl_head];
    ri->fl_head = (ri->fl_head + 1) % ri->fl_cap;
    ri->fl_len--;
    return rec;
}

/* Forget what was written: after a lost connection every record in flight is
 * formatted and sent again (so only records whose replies were not read can
 * be duplicated). */
static void fl_rewind(redis_inst *ri)
{
    ri->nfmt = 0;
    ri->unsent = 0;
    ri->wmark = 0;
    ri->nseg = 0;
    ri->sidx = ri->sskip = 0;
    ri->u_head = ri->u_len = 0;
    ri->u_step = 0;
    ri->chain = 0;
}

/* Acknowledge every record in flight with `status` and forget them. */
static void fl_ack_all(redis_inst *ri, int status, const char *msg)
{
    if (ri->unsent && ri->sink.c) /* a command half written: the connection is unusable */
        redis_conn_close(&ri->sink);
    fl_rewind(ri); /* the segments point into the records */
    while (ri->fl_len)
        ri->host->ack(ri->ctx, fl_pop(ri), status, msg);
}

/* The records not formatted yet fail (ENOMEM), newest first. */
static void fail_unformatted(redis_inst *ri, const char *what)
{
    while (ri->fl_len > ri->nfmt) {
        size_t last = (ri->fl_head + --ri->fl_len) % ri->fl_cap;
        ack_err(ri, ri->fl[last], what);
    }
}

/* Quiet groups: constant commands, written from here (not copied). */
static const char Q_INFO[] = "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n";
static const char Q_OFF[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n";
static const char Q_ON_INFO[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n"
                                "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n";

static void seg_const(redis_inst *ri, const char *s, size_t len)
{
    seg_push(ri, s, 0, len);
    ri->unsent += len;
}

/* Format one quiet group: [INFO stats] CLIENT REPLY OFF, XADD..., CLIENT
 * REPLY ON, INFO stats.  It leads with INFO stats unless the group before
 * it on this connection ends with one.  Groups start when the window is
 * half written, so each carries many records. */
static void fill_group(redis_inst *ri)
{
    if (ri->unsent >= WINDOW_BYTES / 2 || seg_reserve(ri, 2) != TRIB_OK)
        return;
    int lead = !ri->chain;
    size_t nseg0 = ri->nseg, unsent0 = ri->unsent, n0 = ri->nfmt;
    if (lead)
        seg_const(ri, Q_INFO, sizeof Q_INFO - 1);
    seg_const(ri, Q_OFF, sizeof Q_OFF - 1);
    while (ri->nfmt < ri->fl_len && ri->nfmt - n0 < GROUP_MAX && ri->unsent < GROUP_BYTES) {
        if (xadd_format(ri, fl_at(ri, ri->nfmt), &ri->unsent) != TRIB_OK) {
            fail_unformatted(ri, "out of memory building the command");
            break;
        }
        ri->nfmt++;
    }
    if (ri->nfmt == n0) { /* nothing formatted: take the prefix back */
        ri->nseg = nseg0;
        ri->unsent = unsent0;
        return;
    }
    seg_const(ri, Q_ON_INFO, sizeof Q_ON_INFO - 1); /* xadd_format left a segment free */
    unit_add(ri, ri->nfmt - n0, 1, lead);
    ri->chain = 1;
}

/* Format records until the unwritten window is full; ENOMEM fails the rest. */
static void fl_fill(redis_inst *ri)
{
    if (ri->unsent == 0) { /* everything written: start the buffers over */
        ri->wmark = 0;
        ri->nseg = 0;
        ri->sidx = ri->sskip = 0;
    }
    if (ri->nfmt == 0 && ri->nfmt < ri->fl_len)
        ri->idle_since = redis_now_ms(); /* the reply clock starts with the first command */
    if (ri->nfmt == ri->fl_len)
        return;
    if (unit_room(ri) != TRIB_OK) {
        if (ri->u_len == 0) /* nothing in flight will free a slot */
            fail_unformatted(ri, "out of memory");
        return;
    }
    if (!ri->confirm_each && !ri->quiet_off && ri->sink.quiet_ok) {
        fill_group(ri);
        return;
    }
    size_t n0 = ri->nfmt;
    while (ri->nfmt < ri->fl_len && ri->unsent < WINDOW_BYTES) {
        if (xadd_format(ri, fl_at(ri, ri->nfmt), &ri->unsent) != TRIB_OK) {
            fail_unformatted(ri, "out of memory building the command");
            break;
        }
        ri->nfmt++;
    }
    if (ri->nfmt > n0) {
        unit_add(ri, ri->nfmt - n0, 0, 0);
        ri->chain = 0;
    }
}

/* Write what the socket takes now.  1: progress, 0: none, -1: lost (*why set). */
static int fl_write(redis_inst *ri, const char **why)
{
    struct iovec iov[IOV_BATCH];
    int k = 0;
    for (size_t i = ri->sidx; i < ri->nseg && k < IOV_BATCH; i++, k++) {
        const redis_seg *sg = &ri->segs[i];
        const char *base = sg->p ? sg->p : ri->wbuf + sg->off;
        size_t skip = i == ri->sidx ? ri->sskip : 0;
        iov[k].iov_base = (void *)(base + skip);
        iov[k].iov_len = sg->len - skip;
    }
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)k;
    ssize_t w = sendmsg(ri->sink.c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
        size_t left = (size_t)w;
        ri->unsent -= left;
        while (left) {
            size_t rem = ri->segs[ri->sidx].len - ri->sskip;
            if (left >= rem) {
                left -= rem;
                ri->sidx++;
                ri->sskip = 0;
            } else {
                ri->sskip += left;
                left = 0;
            }
        }
        return 1;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    *why = w < 0 ? strerror(errno) : "write returned 0";
    return -1;
}

/* A quiet group that cannot be confirmed: say why, and give quiet groups up.
 * `v`: the counter after the group, or -1 when the reply was not an INFO. */
static int group_unconfirmed(redis_inst *ri, const redis_unit *u, const redisReply *r, long long v)
{
    char what[320];
    if (v >= 0)
        snprintf(what, sizeof what,
                 "its total_error_replies went from %lld to %lld (an error of this batch's or "
                 "another client's)",
                 ri->err_base, v);
    else
        snprintf(what, sizeof what, "it answered %.200s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "with an unexpected reply");
    ri->host->log(ri->ctx, TRIB_LOG_WARN,
                  "%zu XADDs sent to %s with replies off (confirm: batch) could not be "
                  "confirmed: %s; they are sent again with a reply each (those that landed are "
                  "duplicated), and from now on every XADD gets its own reply",
                  u->n, ri->cfg.where, what);
    ri->host->metric_add(ri->ctx, "unconfirmed_batches", 1);
    ri->quiet_off = 1;
    return -2;
}

/* The replies of a quiet group: [INFO stats,] +OK (CLIENT REPLY ON), INFO
 * stats.  0: taken; -2: the group cannot be confirmed. */
static int group_reply(redis_inst *ri, redis_unit *u, const redisReply *r)
{
    int step = ri->u_step++ + (u->lead ? 0 : 1);
    if (step == 1)
        return r->type == REDIS_REPLY_STATUS ? 0 : group_unconfirmed(ri, u, r, -1);
    long long v = r->type == REDIS_REPLY_STRING
                      ? redis_info_field(r->str, r->len, "total_error_replies")
                      : -1;
    if (v < 0)
        return group_unconfirmed(ri, u, r, -1);
    if (step == 0) {
        ri->err_base = v;
        return 0;
    }
    if (v != ri->err_base)
        return group_unconfirmed(ri, u, r, v);
    for (size_t i = 0; i < u->n; i++)
        ri->host->ack(ri->ctx, fl_pop(ri), TRIB_OK, NULL);
    ri->nfmt -= u->n;
    unit_pop(ri);
    return 0;
}

/* Take one reply for the oldest unit.  0, or -2 (group_reply). */
static int take_reply(redis_inst *ri, const redisReply *r)
{
    redis_unit *u = &ri->units[ri->u_head];
    if (u->quiet)
        return group_reply(ri, u, r);
    trib_record *rec = fl_pop(ri);
    ri->nfmt--;
    if (--u->n == 0)
        unit_pop(ri);
    if (!handle_reply(ri, rec, r)) { /* transient error: again, after a pause */
        ri->retry_pause = 1;
        if (fl_push(ri, rec) != TRIB_OK)
            ack_err(ri, rec, "out of memory");
    }
    return 0;
}

/* Read what has arrived and settle the records of complete replies.
 * 1: progress, 0: none, -1: lost (*why set), -2: a quiet group was not
 * confirmed (logged). */
static int fl_read(redis_inst *ri, const char **why)
{
    redisContext *c = ri->sink.c;
    char buf[READ_BYTES];
    ssize_t k = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k == 0) {
        *why = "connection closed by the server";
        return -1;
    }
    if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        *why = strerror(errno);
        return -1;
    }
    if (redisReaderFeed(c->reader, buf, (size_t)k) != REDIS_OK) {
        *why = "out of memory reading replies";
        return -1;
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            *why = "protocol error in a reply";
            return -1;
        }
        if (!reply)
            return 1;
        if (ri->u_len == 0) { /* a reply to nothing we sent */
            freeReplyObject(reply);
            *why = "unexpected reply";
            return -1;
        }
        int rc = take_reply(ri, reply);
        freeReplyObject(reply);
        if (rc < 0)
            return rc;
    }
}

/* The connection broke: log it, close it, and send everything again later. */
static void fl_lost(redis_inst *ri, const char *why)
{
    redisContext *c = ri->sink.c;
    c->err = REDIS_ERR_IO;
    snprintf(c->errstr, sizeof c->errstr, "%s", why);
    redis_conn_lost(&ri->sink, "XADD");
    fl_rewind(ri);
}

enum { PUMP_SEND, PUMP_FLUSH, PUMP_DRAIN };

/* Milliseconds from now until `deadline` (0 when it passed). */
static int ms_until(uint64_t deadline)
{
    uint64_t now = redis_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/*
 * Move the records in flight along: connect when needed, format, write and
 * read, until
 *   PUMP_SEND:  every record is written and at most `lag` wait for replies
 *               (no deadline: blocks while Redis is unreachable, until the
 *               engine stops, when everything left is acked TRIB_STOP);
 *   PUMP_FLUSH: every record is acknowledged, or timeout_ms passed;
 *   PUMP_DRAIN: as PUMP_FLUSH, but returns as soon as some were acknowledged.
 * TRIB_OK when the goal was reached (PUMP_DRAIN: nothing is left),
 * TRIB_RETRY when the time ran out or, for PUMP_DRAIN, records are left.
 */
static int fl_pump(redis_inst *ri, int mode, size_t lag, int timeout_ms)
{
    uint64_t deadline = redis_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (ri->fl_len == 0)
            return TRIB_OK;
        if (mode != PUMP_SEND && redis_now_ms() >= deadline)
            return TRIB_RETRY;
        if (!ri->sink.c) {
            int rc = mode == PUMP_SEND
                         ? redis_conn_ensure(&ri->sink)
                         : redis_conn_try(&ri->sink, ms_until(deadline));
            if (rc == TRIB_STOP) {
                ri->host->log(ri->ctx, TRIB_LOG_WARN,
                              "stopping while %s is unavailable: %zu records not delivered "
                              "(they will be replayed on restart)",
                              ri->cfg.where, ri->fl_len);
                fl_ack_all(ri, TRIB_STOP, "redis unavailable while stopping");
                return TRIB_OK;
            }
            if (rc != TRIB_OK)
                continue;
            redis_conn_timeout(&ri->sink, ri->cfg.command_timeout_ms);
            fl_rewind(ri);
        }
        if (ri->retry_pause && ri->nfmt == 0) { /* transient error replies: back off, resend */
            if (!ri->resend_at_ms) /* the pause outlasts short drain()/flush() calls */
                ri->resend_at_ms = redis_now_ms() + (uint64_t)redis_conn_backoff_next(&ri->sink);
            int wait = ms_until(ri->resend_at_ms);
            if (mode != PUMP_SEND && wait > ms_until(deadline))
                wait = ms_until(deadline);
            if (redis_conn_pause(&ri->sink, wait) == TRIB_STOP) {
                fl_ack_all(ri, TRIB_STOP, "redis kept refusing while stopping");
                return TRIB_OK;
            }
            if (redis_now_ms() < ri->resend_at_ms)
                continue; /* PUMP_FLUSH/PUMP_DRAIN: the deadline comes first */
            ri->retry_pause = 0;
            ri->resend_at_ms = 0;
        }
        if (!ri->retry_pause)
            fl_fill(ri);
        if (mode == PUMP_SEND && ri->nfmt == ri->fl_len && ri->unsent == 0 && ri->nfmt <= lag)
            return TRIB_OK;
        if (ri->fl_len == 0)
            return TRIB_OK;

        uint64_t now = redis_now_ms();
        int64_t left = (int64_t)ri->idle_since + ri->cfg.command_timeout_ms - (int64_t)now;
        if (left <= 0) {
            fl_lost(ri, "timed out waiting for replies");
            continue;
        }
        if (mode != PUMP_SEND && ms_until(deadline) < left)
            left = ms_until(deadline);
        /* While commands wait to be written, only writability wakes us: Redis
         * writes a few replies after every read of its own, and waking for each
         * of those costs both sides CPU.  The replies wait in the socket (at
         * most two batches' worth, a few tens of KB) and are read in bulk once
         * the commands are written. */
        struct pollfd p = {ri->sink.c->fd, ri->unsent ? POLLOUT : POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno != EINTR) {
            fl_lost(ri, strerror(errno));
            continue;
        }
        if (pr <= 0)
            continue;
        const char *why = NULL;
        int w = 0, r = 0;
        if (p.revents & POLLOUT)
            w = fl_write(ri, &why);
        if (w >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
            r = fl_read(ri, &why);
        if (r == -2) { /* resend what is not confirmed, with a reply each */
            redis_conn_close(&ri->sink);
            fl_rewind(ri);
            continue;
        }
        if (w < 0 || r < 0) {
            fl_lost(ri, why);
            continue;
        }
        if (w > 0 || r > 0)
            ri->idle_since = redis_now_ms();
        if (mode == PUMP_DRAIN && r > 0)
            return ri->fl_len ? TRIB_RETRY : TRIB_OK;
    }
}

/*
 * Queue the batch and write it; return once it is all written and the
 * replies of earlier batches are read (the replies of this one are read by
 * the next send(), or by drain()/flush() when the engine has nothing else
 * to send), so that Redis always has commands to work on.
 */
int redis_sink_send(void *inst, trib_record **recs, size_t n)
{
    redis_inst *ri = inst;
    size_t queued = 0;
    pthread_mutex_lock(&ri->lock);
    for (size_t i = 0; i < n; i++) {
        if (!recs[i]->topic || !recs[i]->topic[0])
            ack_err(ri, recs[i], "the record has no topic (stream name)");
        else if (fl_push(ri, recs[i]) != TRIB_OK)
            ack_err(ri, recs[i], "out of memory");
        else
            queued++;
    }
    fl_pump(ri, PUMP_SEND, queued, 0);
    pthread_mutex_unlock(&ri->lock);
    ri->host->metric_add(ri->ctx, "batches", 1);
    return TRIB_OK;
}

int redis_sink_flush(void *inst, int timeout_ms)
{
    redis_inst *ri = inst;
    pthread_mutex_lock(&ri->lock);
    int rc = fl_pump(ri, PUMP_FLUSH, 0, timeout_ms);
    pthread_mutex_unlock(&ri->lock);
    return rc;
}

int redis_sink_drain(void *inst, int timeout_ms)
{
    redis_inst *ri = inst;
    pthread_mutex_lock(&ri->lock);
    int rc = fl_pump(ri, PUMP_DRAIN, 0, timeout_ms);
    pthread_mutex_unlock(&ri->lock);
    return rc;
}

/* Whatever is still in flight when the instance goes: replayed on restart. */
void redis_sink_abandon(redis_inst *ri)
{
    if (ri->fl_len)
        ri->host->log(ri->ctx, TRIB_LOG_WARN,
                      "%zu record(s) not acknowledged by %s at shutdown; they will be replayed",
                      ri->fl_len, ri->cfg.where);
    fl_ack_all(ri, TRIB_STOP, "not acknowledged at shutdown");
    free(ri->fl);
    ri->fl = NULL;
    ri->fl_cap = ri->fl_head = 0;
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
    /* pipelined XADDs of send() still wait for replies on this connection */
    if (fl_pump(ri, PUMP_FLUSH, 0, timeout_ms) != TRIB_OK) {
        pthread_mutex_unlock(&ri->lock);
        free(cmd.buf);
        return TRIB_RETRY;
    }
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
    ri->chain = 0; /* the next quiet group measures its own starting point */
    pthread_mutex_unlock(&ri->lock);
    free(cmd.buf);
    return ret;
}
