/*
 * pgoutput.c — bounds-checked decoder for the replication framing and the
 * pgoutput logical replication messages (see pgoutput.h).
 *
 * A tiny cursor (`rd`) does all reads; each read checks the remaining length
 * and on failure records the message type and the offset of the bad field.
 * Nothing here allocates except the arrays documented in pgoutput.h.
 */
#include "pgoutput.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    char mtype;
    char *err;
    size_t errlen;
} rd;

static int rd_fail(rd *r, const char *what)
{
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "malformed pgoutput '%c' message (%zu bytes): %s at offset %zu",
                 r->mtype >= 32 && r->mtype < 127 ? r->mtype : '?', r->len, what, r->off);
    return -1;
}

static int rd_need(rd *r, size_t n, const char *what)
{
    if (r->len - r->off < n)
        return rd_fail(r, what);
    return 0;
}

static int rd_u8(rd *r, uint8_t *v, const char *what)
{
    if (rd_need(r, 1, what))
        return -1;
    *v = r->p[r->off++];
    return 0;
}

static int rd_u16(rd *r, uint16_t *v, const char *what)
{
    if (rd_need(r, 2, what))
        return -1;
    *v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what)
{
    if (rd_need(r, 4, what))
        return -1;
    const uint8_t *q = r->p + r->off;
    *v = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
    r->off += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what)
{
    uint32_t hi, lo;
    if (rd_need(r, 8, what) || rd_u32(r, &hi, what) || rd_u32(r, &lo, what))
        return -1;
    *v = ((uint64_t)hi << 32) | lo;
    return 0;
}

/* A NUL-terminated string inside the buffer. */
static int rd_str(rd *r, const char **s, const char *what)
{
    const void *nul = memchr(r->p + r->off, 0, r->len - r->off);
    if (!nul)
        return rd_fail(r, what);
    *s = (const char *)(r->p + r->off);
    r->off = (size_t)((const uint8_t *)nul - r->p) + 1;
    return 0;
}

int pgo_parse_frame(const uint8_t *buf, size_t len, pgo_frame *out, char *err, size_t errlen)
{
    rd r = {buf, len, 0, buf && len ? (char)buf[0] : '?', err, errlen};
    uint8_t t, reply;
    uint64_t ts;
    memset(out, 0, sizeof *out);
    if (!buf || rd_u8(&r, &t, "empty replication frame"))
        return -1;
    out->type = (char)t;
    if (t == 'w') {
        if (rd_u64(&r, &out->wal_start, "XLogData start LSN") ||
            rd_u64(&r, &out->wal_end, "XLogData end LSN") ||
            rd_u64(&r, &ts, "XLogData send time"))
            return -1;
        out->send_time = (int64_t)ts;
        out->data = buf + r.off;
        out->len = len - r.off;
        if (out->len == 0)
            return rd_fail(&r, "XLogData without payload");
        return 0;
    }
    if (t == 'k') {
        if (rd_u64(&r, &out->wal_end, "keepalive WAL end") ||
            rd_u64(&r, &ts, "keepalive send time") || rd_u8(&r, &reply, "keepalive reply flag"))
            return -1;
        out->send_time = (int64_t)ts;
        out->reply_requested = reply != 0;
        return 0;
    }
    r.off = 0;
    return rd_fail(&r, "unknown replication frame type");
}

/* TupleData: Int16 ncols, then per column a kind byte and maybe Int32 len + bytes. */
static int rd_tuple(rd *r, pgo_tuple *t)
{
    if (rd_u16(r, &t->ncols, "tuple column count"))
        return -1;
    /* each column needs at least its kind byte: reject absurd counts before allocating */
    if (rd_need(r, t->ncols, "tuple column count exceeds message"))
        return -1;
    t->cols = calloc(t->ncols ? t->ncols : 1, sizeof *t->cols);
    if (!t->cols)
        return rd_fail(r, "out of memory for tuple");
    for (uint16_t i = 0; i < t->ncols; i++) {
        uint8_t kind;
        uint32_t vlen;
        if (rd_u8(r, &kind, "tuple column kind"))
            return -1;
        t->cols[i].kind = (char)kind;
        if (kind == 'n' || kind == 'u')
            continue;
        if (kind != 't' && kind != 'b') {
            r->off--;
            return rd_fail(r, "unknown tuple column kind");
        }
        if (rd_u32(r, &vlen, "tuple value length") || rd_need(r, vlen, "tuple value bytes"))
            return -1;
        t->cols[i].data = (const char *)(r->p + r->off);
        t->cols[i].len = vlen;
        r->off += vlen;
    }
    return 0;
}

static int dec_begin(rd *r, pgo_msg *m)
{
    uint64_t ts;
    if (rd_u64(r, &m->lsn, "final LSN") || rd_u64(r, &ts, "commit timestamp") ||
        rd_u32(r, &m->xid, "xid"))
        return -1;
    m->ts = (int64_t)ts;
    return 0;
}

static int dec_commit(rd *r, pgo_msg *m)
{
    uint64_t ts;
    if (rd_u8(r, &m->flags, "flags") || rd_u64(r, &m->lsn, "commit LSN") ||
        rd_u64(r, &m->end_lsn, "end LSN") || rd_u64(r, &ts, "commit timestamp"))
        return -1;
    m->ts = (int64_t)ts;
    return 0;
}

static int dec_relation(rd *r, pgo_msg *m)
{
    uint8_t ident;
    if (rd_u32(r, &m->oid, "relation oid") || rd_str(r, &m->nspname, "namespace") ||
        rd_str(r, &m->name, "relation name") || rd_u8(r, &ident, "replica identity") ||
        rd_u16(r, &m->ncols, "column count"))
        return -1;
    m->replident = (char)ident;
    /* a column takes at least 10 bytes: flags, name NUL, oid, typmod */
    if (rd_need(r, (size_t)m->ncols * 10, "column count exceeds message"))
        return -1;
    m->cols = calloc(m->ncols ? m->ncols : 1, sizeof *m->cols);
    if (!m->cols)
        return rd_fail(r, "out of memory for columns");
    for (uint16_t i = 0; i < m->ncols; i++) {
        pgo_relcol *c = &m->cols[i];
        uint32_t mod;
        if (rd_u8(r, &c->flags, "column flags") || rd_str(r, &c->name, "column name") ||
            rd_u32(r, &c->type_oid, "column type oid") || rd_u32(r, &mod, "column typmod"))
            return -1;
        c->type_mod = (int32_t)mod;
    }
    return 0;
}

static int dec_insert(rd *r, pgo_msg *m)
{
    uint8_t tag;
    if (rd_u32(r, &m->oid, "relation oid") || rd_u8(r, &tag, "tuple tag"))
        return -1;
    if (tag != 'N') {
        r->off--;
        return rd_fail(r, "expected 'N' tuple");
    }
    m->has_new = 1;
    return rd_tuple(r, &m->new_tuple);
}

static int dec_update_delete(rd *r, pgo_msg *m)
{
    uint8_t tag;
    if (rd_u32(r, &m->oid, "relation oid") || rd_u8(r, &tag, "tuple tag"))
        return -1;
    if (tag == 'K' || tag == 'O') {
        m->old_kind = (char)tag;
        if (rd_tuple(r, &m->old_tuple))
            return -1;
        if (m->type == 'D')
            return 0;
        if (rd_u8(r, &tag, "new tuple tag"))
            return -1;
    } else if (m->type == 'D') {
        r->off--;
        return rd_fail(r, "expected 'K' or 'O' tuple");
    }
    if (tag != 'N') {
        r->off--;
        return rd_fail(r, "expected 'N' tuple");
    }
    m->has_new = 1;
    return rd_tuple(r, &m->new_tuple);
}

static int dec_truncate(rd *r, pgo_msg *m)
{
    if (rd_u32(r, &m->nrels, "relation count") || rd_u8(r, &m->flags, "truncate options"))
        return -1;
    if (rd_need(r, (size_t)m->nrels * 4, "relation count exceeds message"))
        return -1;
    m->relids = calloc(m->nrels ? m->nrels : 1, sizeof *m->relids);
    if (!m->relids)
        return rd_fail(r, "out of memory for relation ids");
    for (uint32_t i = 0; i < m->nrels; i++)
        if (rd_u32(r, &m->relids[i], "relation oid"))
            return -1;
    return 0;
}

static int dec_other(rd *r, pgo_msg *m)
{
    switch (m->type) {
    case 'O':
        return rd_u64(r, &m->lsn, "origin LSN") || rd_str(r, &m->name, "origin name") ? -1 : 0;
    case 'Y':
        return rd_u32(r, &m->oid, "type oid") || rd_str(r, &m->nspname, "type namespace") ||
                       rd_str(r, &m->name, "type name")
                   ? -1
                   : 0;
    case 'M':
        if (rd_u8(r, &m->flags, "flags") || rd_u64(r, &m->lsn, "message LSN") ||
            rd_str(r, &m->name, "prefix") || rd_u32(r, &m->content_len, "content length") ||
            rd_need(r, m->content_len, "content bytes"))
            return -1;
        m->content = r->p + r->off;
        r->off += m->content_len;
        return 0;
    case 'S': case 'E': case 'c': case 'A':
        r->off = 0;
        return rd_fail(r, "streamed in-progress transactions are not supported");
    default:
        r->off = 0;
        return rd_fail(r, "unknown message type");
    }
}

int pgo_decode(const uint8_t *buf, size_t len, pgo_msg *out, char *err, size_t errlen)
{
    rd r = {buf, len, 0, buf && len ? (char)buf[0] : '?', err, errlen};
    uint8_t t;
    int rc;
    memset(out, 0, sizeof *out);
    if (!buf || rd_u8(&r, &t, "empty message"))
        return -1;
    out->type = (char)t;
    switch (t) {
    case 'B': rc = dec_begin(&r, out); break;
    case 'C': rc = dec_commit(&r, out); break;
    case 'R': rc = dec_relation(&r, out); break;
    case 'I': rc = dec_insert(&r, out); break;
    case 'U': case 'D': rc = dec_update_delete(&r, out); break;
    case 'T': rc = dec_truncate(&r, out); break;
    default: rc = dec_other(&r, out); break;
    }
    if (rc == 0 && r.off != r.len)
        rc = rd_fail(&r, "trailing bytes after message");
    if (rc != 0)
        pgo_msg_free(out);
    return rc;
}

void pgo_msg_free(pgo_msg *m)
{
    if (!m)
        return;
    free(m->cols);
    free(m->old_tuple.cols);
    free(m->new_tuple.cols);
    free(m->relids);
    m->cols = NULL;
    m->old_tuple.cols = m->new_tuple.cols = NULL;
    m->relids = NULL;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void pgo_build_status(uint8_t *out, uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                      int64_t now_pg_us, int reply_requested)
{
    out[0] = 'r';
    put64(out + 1, write_lsn);
    put64(out + 9, flush_lsn);
    put64(out + 17, apply_lsn);
    put64(out + 25, (uint64_t)now_pg_us);
    out[33] = reply_requested ? 1 : 0;
}

int64_t pgo_pgtime_to_unix_ms(int64_t pg_us)
{
    /* floor division so that pre-2000 timestamps round the same way */
    int64_t ms = pg_us / 1000;
    if (pg_us % 1000 < 0)
        ms--;
    return ms + PGO_EPOCH_OFFSET_S * 1000;
}

int64_t pgo_now_pg_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - PGO_EPOCH_OFFSET_S) * 1000000 + ts.tv_nsec / 1000;
}

const char *pgo_lsn_str(uint64_t lsn, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
    return buf;
}

int pgo_lsn_parse(const char *s, uint64_t *out)
{
    unsigned hi, lo;
    int n = 0;
    if (!s || sscanf(s, "%X/%X%n", &hi, &lo, &n) != 2 || s[n] != '\0')
        return -1;
    *out = ((uint64_t)hi << 32) | lo;
    return 0;
}
