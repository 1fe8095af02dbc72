/*
 * pg_stream.c — the streaming half of the Postgres source: START_REPLICATION
 * on the slot, decoding pgoutput (pgoutput.c) into change records, marking a
 * position after every commit, Standby Status Updates with the position the
 * core confirmed, and reconnecting with backoff when the server goes away.
 *
 * Only positions the core committed (source->commit) are ever confirmed to
 * the server.  After a reconnect the slot replays from its confirmed
 * position; transactions already emitted in this run are skipped, as are the
 * changes of a transaction that was cut in the middle.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_internal.h"
#include "pgtext.h"

#define LOGE(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_ERROR, __VA_ARGS__)
#define LOGW(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_WARN, __VA_ARGS__)
#define LOGI(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_INFO, __VA_ARGS__)
#define LOGD(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_DEBUG, __VA_ARGS__)

enum { RC_LOST = 100 }; /* connection lost: reconnect */

int64_t pg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_send_status(pg_src *s, int force)
{
    if (!s->repl || !s->streaming)
        return;
    int64_t now = pg_mono_ms();
    uint64_t c = atomic_load(&s->committed);
    /* periodic, or soon after the confirmed position moved: a crash then
       replays at most confirm_interval_ms of acknowledged changes */
    int moved = c != s->sent_lsn && now - s->last_status_ms >= s->confirm_interval_ms;
    if (!force && !moved && now - s->last_status_ms < s->status_interval_ms)
        return;
    uint8_t msg[PGO_STATUS_LEN];
    pgo_build_status(msg, c, c, c, pgo_now_pg_us(), 0);
    if (PQputCopyData(s->repl, (const char *)msg, sizeof msg) != 1 || PQflush(s->repl) != 0)
        LOGD(s, "status update not sent: %s", pg_errmsg(s, s->repl));
    s->last_status_ms = now;
    if (c != s->sent_lsn) {
        char b[32];
        LOGD(s, "confirmed %s to slot \"%s\"", pgo_lsn_str(c, b, sizeof b), s->slot);
    }
    s->sent_lsn = c;
}

void pg_service(pg_src *s)
{
    /* we cannot read the stream while blocked, so we cannot see keepalive
       requests: send a status update at least every second instead */
    int64_t every = s->status_interval_ms < 1000 ? s->status_interval_ms : 1000;
    if (s->streaming && pg_mono_ms() - s->last_status_ms >= every)
        pg_send_status(s, 1);
}

/* ---- relation cache ------------------------------------------------- */

static void rel_clear(pg_rel *r)
{
    for (size_t i = 0; i < r->ncols; i++)
        free(r->cols[i].name);
    free(r->cols);
    r->cols = NULL;
    r->ncols = 0;
}

void pg_rels_free(pg_src *s)
{
    for (size_t i = 0; i < s->nrels; i++)
        rel_clear(&s->rels[i]);
    free(s->rels);
    s->rels = NULL;
    s->nrels = 0;
}

static pg_rel *rel_find(pg_src *s, uint32_t relid)
{
    for (size_t i = 0; i < s->nrels; i++)
        if (s->rels[i].relid == relid)
            return &s->rels[i];
    return NULL;
}

static pg_table *table_match(pg_src *s, const char *schema, const char *name)
{
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i].schema, schema) == 0 && strcmp(s->tables[i].name, name) == 0)
            return &s->tables[i];
    return NULL;
}

static int catalog_key(const pg_table *t, const char *col)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i].name, col) == 0)
            return t->cols[i].is_key;
    return 0;
}

static int rel_update(pg_src *s, const pgo_msg *m)
{
    pg_rel *r = rel_find(s, m->oid);
    if (!r) {
        pg_rel *grown = realloc(s->rels, (s->nrels + 1) * sizeof *grown);
        if (!grown)
            return TRIB_ERR;
        s->rels = grown;
        r = &s->rels[s->nrels++];
        memset(r, 0, sizeof *r);
        r->relid = m->oid;
    }
    rel_clear(r);
    r->table = table_match(s, m->nspname, m->name);
    r->replident = m->replident;
    r->cols = calloc(m->ncols + 1u, sizeof *r->cols);
    if (!r->cols)
        return TRIB_ERR;
    for (uint16_t i = 0; i < m->ncols; i++) {
        pg_col *c = &r->cols[i];
        if (!(c->name = strdup(m->cols[i].name)))
            return TRIB_ERR;
        c->fname = pg_intern(s, c->name);
        r->ncols = i + 1u;
        c->type_oid = m->cols[i].type_oid;
        c->type_mod = m->cols[i].type_mod;
        c->ident = m->cols[i].flags & 1;
        /* with REPLICA IDENTITY FULL every column is flagged: key on the primary key instead */
        c->is_key = r->table && r->replident == 'f' ? catalog_key(r->table, c->name) : c->ident;
    }
    LOGD(s, "relation %u %s.%s: %u column(s)%s", m->oid, m->nspname, m->name, m->ncols,
         r->table ? "" : " (not configured: ignored)");
    return TRIB_OK;
}

/* ---- changes -------------------------------------------------------- */

static int add_tuple(pg_src *s, trib_row *row, const pg_rel *r, const pgo_tuple *t, int key_only)
{
    if (t->ncols != r->ncols) {
        snprintf(s->errbuf, sizeof s->errbuf, "tuple has %u column(s), relation has %zu",
                 t->ncols, r->ncols);
        return TRIB_ERR;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        const pgo_value *v = &t->cols[i];
        if (key_only && !r->cols[i].ident)
            continue; /* not sent: its value is unknown, so it is left out */
        trib_val_kind k = v->kind == 'n' ? TRIB_VAL_NULL
                        : v->kind == 'u' ? TRIB_VAL_UNCHANGED
                        : v->kind == 'b' ? TRIB_VAL_BINARY : TRIB_VAL_TEXT;
        if (pg_add_value(s, row, &r->cols[i], k, v->data, v->len) != TRIB_OK)
            return TRIB_ERR;
    }
    return TRIB_OK;
}

/* 1 when the change must not be emitted (replayed after a reconnect). */
static int skip_change(pg_src *s)
{
    s->txn_changes++;
    return s->skip_txn || s->txn_changes <= s->partial_changes;
}

static int emit_change(pg_src *s, const pg_rel *r, const pgo_msg *m, char op)
{
    char lsn[32];
    trib_record *rec = pg_record_new(s, r->table, op);
    if (!rec) {
        LOGE(s, "out of memory building a change record");
        return TRIB_ERR;
    }
    rec->src.lsn = s->change_lsn;
    rec->src.commit_lsn = s->txn_final_lsn;
    rec->src.txid = s->txn_xid;
    rec->src.ts_ms = s->txn_ts_ms;
    int rc = TRIB_OK;
    if (m && m->old_kind) {
        rec->has_before = 1;
        rc = add_tuple(s, &rec->before, r, &m->old_tuple, m->old_kind == 'K');
    }
    if (rc == TRIB_OK && m && m->has_new && op != 'd') {
        rec->has_after = 1;
        rc = add_tuple(s, &rec->after, r, &m->new_tuple, 0);
    }
    if (rc != TRIB_OK) {
        LOGE(s, "change to %s.%s at LSN %s: %s", r->table->schema, r->table->name,
             pgo_lsn_str(s->change_lsn, lsn, sizeof lsn), s->errbuf);
        s->host->record_free(rec);
        return TRIB_ERR;
    }
    return pg_emit(s, rec);
}

static pg_rel *change_rel(pg_src *s, uint32_t relid, int *rc)
{
    char lsn[32];
    pg_rel *r = rel_find(s, relid);
    *rc = TRIB_OK;
    if (!r) {
        LOGE(s, "change for relation %u at LSN %s arrived before its Relation message", relid,
             pgo_lsn_str(s->change_lsn, lsn, sizeof lsn));
        *rc = TRIB_ERR;
    }
    return r && r->table ? r : NULL;
}

static int on_begin(pg_src *s, const pgo_msg *m)
{
    s->in_txn = 1;
    s->txn_xid = m->xid;
    s->txn_final_lsn = m->lsn;
    s->txn_ts_ms = pgo_pgtime_to_unix_ms(m->ts);
    s->txn_changes = 0;
    /* already emitted before a reconnect: its commit precedes our last position */
    s->skip_txn = m->lsn < s->last_pos;
    if (m->lsn != s->partial_final_lsn)
        s->partial_changes = 0;
    else if (s->partial_changes)
        LOGI(s, "transaction %u replayed after a reconnect: skipping its first %" PRIu64
             " change(s), already emitted", m->xid, s->partial_changes);
    s->partial_final_lsn = 0;
    return TRIB_OK;
}

static int on_change(pg_src *s, const pgo_msg *m)
{
    int rc;
    if (m->type == 'T') {
        for (uint32_t i = 0; i < m->nrels; i++) {
            pg_rel *r = change_rel(s, m->relids[i], &rc);
            if (rc != TRIB_OK)
                return rc;
            if (r && !skip_change(s) && (rc = emit_change(s, r, NULL, 't')) != TRIB_OK)
                return rc;
        }
        return TRIB_OK;
    }
    pg_rel *r = change_rel(s, m->oid, &rc);
    if (rc != TRIB_OK || !r || skip_change(s))
        return rc;
    char op = m->type == 'I' ? 'c' : m->type == 'U' ? 'u' : 'd';
    return emit_change(s, r, m, op);
}

static int on_message(pg_src *s, const pgo_msg *m)
{
    switch (m->type) {
    case 'B':
        return on_begin(s, m);
    case 'C':
        s->in_txn = 0;
        s->partial_changes = 0;
        if (s->skip_txn)
            return TRIB_OK;
        s->host->metric_add(s->ctx, "transactions", 1);
        s->host->metric_set(s->ctx, "last_commit_lsn", (double)m->end_lsn);
        s->host->metric_set(s->ctx, "last_commit_ts_ms", (double)s->txn_ts_ms);
        return pg_emit_position(s, m->end_lsn);
    case 'R':
        if (rel_update(s, m) != TRIB_OK) {
            LOGE(s, "out of memory caching relation %u", m->oid);
            return TRIB_ERR;
        }
        return TRIB_OK;
    case 'I': case 'U': case 'D': case 'T':
        return on_change(s, m);
    default: /* 'Y' type, 'O' origin, 'M' message: nothing to emit */
        return TRIB_OK;
    }
}

/* ---- the stream ----------------------------------------------------- */

static void capture(pg_src *s, const uint8_t *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    if (fwrite(len, 1, 4, s->capture) != 4 || fwrite(p, 1, n, s->capture) != n ||
        fflush(s->capture) != 0)
        LOGW(s, "capture_file: write failed: %s", strerror(errno));
}

static int on_frame(pg_src *s, const uint8_t *buf, size_t len)
{
    pgo_frame f;
    pgo_msg m;
    char lsn[32];
    if (pgo_parse_frame(buf, len, &f, s->errbuf, sizeof s->errbuf) != 0) {
        LOGE(s, "slot \"%s\": %s", s->slot, s->errbuf);
        return TRIB_ERR;
    }
    if (f.wal_end) /* replication lag = server_wal_end - confirmed position */
        s->host->metric_set(s->ctx, "server_wal_end", (double)f.wal_end);
    if (f.type == 'k') {
        if (f.reply_requested)
            pg_send_status(s, 1);
        if (!s->in_txn && f.wal_end > s->last_pos && s->host->pending(s->ctx) == 0)
            return pg_emit_position(s, f.wal_end); /* idle: let the slot release WAL */
        return TRIB_OK;
    }
    s->change_lsn = f.wal_start;
    if (s->capture)
        capture(s, f.data, f.len);
    if (pgo_decode(f.data, f.len, &m, s->errbuf, sizeof s->errbuf) != 0) {
        LOGE(s, "slot \"%s\" at LSN %s: %s", s->slot, pgo_lsn_str(f.wal_start, lsn, sizeof lsn),
             s->errbuf);
        return TRIB_ERR;
    }
    int rc = on_message(s, &m);
    pgo_msg_free(&m);
    return rc;
}

/* Connection-level failures are retried; anything else (slot or publication gone) is fatal. */
static int retryable(PGconn *c, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(c) == CONNECTION_BAD || !st)
        return 1;
    return strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "55006") == 0 ||
           strcmp(st, "53300") == 0;
}

static int start_replication(pg_src *s)
{
    char *qp = pgt_quote_ident(s->publication), *lit = qp ? pgt_quote_literal(qp) : NULL;
    size_t n = strlen(s->slot) + (lit ? strlen(lit) : 0) + 128;
    char *sql = malloc(n);
    int rc = TRIB_ERR;
    if (lit && sql) {
        snprintf(sql, n, "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 (proto_version '%" PRId64
                 "', publication_names %s)", s->slot, s->proto_version, lit);
        PGresult *r = PQexec(s->repl, sql);
        if (PQresultStatus(r) == PGRES_COPY_BOTH) {
            s->streaming = 1;
            s->last_status_ms = 0;
            rc = TRIB_OK;
        } else {
            rc = retryable(s->repl, r) ? RC_LOST : TRIB_ERR;
            char msg[256];
            snprintf(msg, sizeof msg, "%s", pg_errmsg(s, s->repl));
            snprintf(s->errbuf, sizeof s->errbuf,
                     "START_REPLICATION on slot \"%s\" (publication \"%s\") failed on %s: %s",
                     s->slot, s->publication, s->conn_desc, msg);
        }
        PQclear(r);
    }
    free(qp);
    free(lit);
    free(sql);
    return rc;
}

/* The COPY ended or failed: decide between reconnecting and giving up. */
static int stream_ended(pg_src *s)
{
    PGresult *r = PQgetResult(s->repl);
    int retry = retryable(s->repl, r) || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
        snprintf(s->errbuf, sizeof s->errbuf, "server ended the stream");
    else if (r && *PQresultErrorMessage(r))
        pg_first_line(s, PQresultErrorMessage(r));
    else
        pg_errmsg(s, s->repl);
    PQclear(r);
    while ((r = PQgetResult(s->repl)) != NULL)
        PQclear(r);
    if (retry)
        return RC_LOST;
    LOGE(s, "replication from slot \"%s\" (publication \"%s\") on %s failed: %s", s->slot,
         s->publication, s->conn_desc, s->errbuf);
    return TRIB_ERR;
}

static void wait_input(pg_src *s)
{
    int64_t wait = atomic_load(&s->committed) != s->sent_lsn ? s->confirm_interval_ms
                                                               : s->status_interval_ms;
    int64_t left = wait - (pg_mono_ms() - s->last_status_ms);
    struct pollfd p = {PQsocket(s->repl), POLLIN, 0};
    poll(&p, 1, left < 0 ? 0 : left > 200 ? 200 : (int)left);
}

/* Returns TRIB_OK (stop requested), TRIB_ERR (fatal) or RC_LOST. */
static int stream_once(pg_src *s)
{
    for (;;) {
        char *buf = NULL;
        if (s->host->stopping(s->ctx)) {
            pg_send_status(s, 1);
            return TRIB_OK;
        }
        pg_send_status(s, 0);
        int n = PQgetCopyData(s->repl, &buf, 1);
        if (n == 0) {
            wait_input(s);
            if (!PQconsumeInput(s->repl)) {
                pg_errmsg(s, s->repl);
                return RC_LOST;
            }
            continue;
        }
        if (n == -1)
            return stream_ended(s);
        if (n == -2) {
            pg_errmsg(s, s->repl);
            return RC_LOST;
        }
        int rc = on_frame(s, (const uint8_t *)buf, (size_t)n);
        PQfreemem(buf);
        if (rc == TRIB_STOP)
            return TRIB_OK;
        if (rc != TRIB_OK)
            return rc;
    }
}

static void drop_connection(pg_src *s)
{
    if (s->in_txn && !s->skip_txn && s->txn_changes > s->partial_changes)
        s->partial_changes = s->txn_changes;
    if (s->in_txn)
        s->partial_final_lsn = s->txn_final_lsn;
    s->in_txn = 0;
    s->streaming = 0;
    PQfinish(s->repl);
    s->repl = NULL;
    pg_rels_free(s); /* the server sends Relation messages again on the new stream */
}

static int sleep_unless_stopping(pg_src *s, int64_t ms)
{
    for (int64_t end = pg_mono_ms() + ms; pg_mono_ms() < end;) {
        if (s->host->stopping(s->ctx))
            return 1;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return s->host->stopping(s->ctx);
}

static int reconnect(pg_src *s)
{
    int64_t delay = s->backoff_ms, start = pg_mono_ms();
    char lsn[32];
    drop_connection(s);
    for (int attempt = 1;; attempt++) {
        LOGW(s, "replication connection to %s lost (%s); reconnecting in %" PRId64
             " ms (attempt %d)", s->conn_desc, s->errbuf, delay, attempt);
        if (sleep_unless_stopping(s, delay))
            return TRIB_STOP;
        int rc = pg_connect(s, 1, &s->repl);
        if (rc == TRIB_OK) {
            rc = start_replication(s);
            if (rc == TRIB_OK) {
                LOGI(s, "reconnected to %s; resuming slot \"%s\" after %s", s->conn_desc,
                     s->slot, pgo_lsn_str(atomic_load(&s->committed), lsn, sizeof lsn));
                return TRIB_OK;
            }
            PQfinish(s->repl);
            s->repl = NULL;
            if (rc == TRIB_ERR) {
                LOGE(s, "%s", s->errbuf);
                return TRIB_ERR;
            }
        }
        if (s->reconnect_timeout_ms > 0 && pg_mono_ms() - start >= s->reconnect_timeout_ms) {
            LOGE(s, "giving up after %" PRId64 " ms of reconnect attempts: %s",
                 s->reconnect_timeout_ms, s->errbuf);
            return TRIB_ERR;
        }
        delay = delay * 2 > s->backoff_max_ms ? s->backoff_max_ms : delay * 2;
    }
}

int pg_stream(pg_src *s)
{
    char lsn[32];
    int rc = start_replication(s);
    if (rc == RC_LOST || rc == TRIB_ERR) {
        LOGE(s, "%s", s->errbuf);
        return TRIB_ERR;
    }
    uint64_t from = atomic_load(&s->committed);
    LOGI(s, "streaming from slot \"%s\" (publication \"%s\") after %s", s->slot,
         s->publication, pgo_lsn_str(from > s->slot_confirmed ? from : s->slot_confirmed, lsn,
                                     sizeof lsn));
    for (;;) {
        rc = stream_once(s);
        if (rc != RC_LOST)
            return rc;
        rc = reconnect(s);
        if (rc == TRIB_STOP)
            return TRIB_OK;
        if (rc != TRIB_OK)
            return TRIB_ERR;
    }
}
