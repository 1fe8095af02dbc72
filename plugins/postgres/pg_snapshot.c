/*
 * pg_snapshot.c — the initial snapshot of the Postgres source and the
 * helpers that turn values into records and hand them to the core.
 *
 * The snapshot reads every configured table with COPY ... TO STDOUT inside a
 * REPEATABLE READ transaction that imported the snapshot exported by
 * CREATE_REPLICATION_SLOT, so rows read here and changes streamed from the
 * slot afterwards neither overlap nor leave a gap.  Rows are emitted as op
 * 'r'; the last one is held back one step so it can be flagged snapshot=2.
 *
 * The state file <state_dir>/<slot>.snapshot records that a snapshot was
 * completely delivered; it is written (tmp + rename) once the core commits
 * a position at or past the slot's consistent point.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg_internal.h"
#include "pgtext.h"

#define LOGE(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_ERROR, __VA_ARGS__)
#define LOGI(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_INFO, __VA_ARGS__)

/*
 * The engine's shared copy of a name that every record repeats (ABI 1.3):
 * records then point at it instead of each copying it.  An older engine, or
 * one out of memory, gets the name itself, which str_set/field_add copy.
 */
const char *pg_intern(pg_src *s, const char *str)
{
    const char *p = str && s->host->abi_minor >= 3 ? s->host->intern(str) : NULL;
    return p ? p : str;
}

trib_record *pg_record_new(pg_src *s, const pg_table *t, char op)
{
    const trib_host *h = s->host;
    trib_record *rec = h->record_new();
    if (!rec)
        return NULL;
    rec->op = op;
    rec->src.txid = -1;
    if (h->str_set(&rec->topic, t->ftopic) || h->str_set(&rec->src.name, s->fprefix) ||
        h->str_set(&rec->src.db, s->fdb) || h->str_set(&rec->src.schema, t->fschema) ||
        h->str_set(&rec->src.table, t->fname)) {
        h->record_free(rec);
        return NULL;
    }
    return rec;
}

int pg_add_value(pg_src *s, trib_row *row, const pg_col *c, trib_val_kind kind, const char *data,
                 size_t len)
{
    if (kind == TRIB_VAL_TEXT && c->type_oid == TRIB_OID_BYTEA) {
        /* decoded into a reusable buffer: field_add copies it anyway */
        if (len / 2 + 1 > s->bytea_cap) {
            char *nb = realloc(s->bytea_buf, len / 2 + 1);
            if (!nb) {
                snprintf(s->errbuf, sizeof s->errbuf, "out of memory for a %zu-byte bytea",
                         len / 2);
                return TRIB_ERR;
            }
            s->bytea_buf = nb;
            s->bytea_cap = len / 2 + 1;
        }
        size_t n = 0;
        if (pgt_bytea_hex(data, len, s->bytea_buf, &n, s->errbuf, sizeof s->errbuf) != 0)
            return TRIB_ERR;
        return s->host->field_add(row, c->fname, c->type_oid, c->type_mod, TRIB_VAL_BINARY,
                                  s->bytea_buf, n, c->is_key);
    }
    if (kind == TRIB_VAL_NULL || kind == TRIB_VAL_UNCHANGED)
        data = NULL, len = 0;
    if (s->host->field_add(row, c->fname, c->type_oid, c->type_mod, kind, data, len, c->is_key)) {
        snprintf(s->errbuf, sizeof s->errbuf, "out of memory adding column %s", c->name);
        return TRIB_ERR;
    }
    return TRIB_OK;
}

static int emit_timeout(pg_src *s)
{
    return s->status_interval_ms < 1000 ? (int)s->status_interval_ms : 1000;
}

int pg_emit(pg_src *s, trib_record *rec)
{
    for (;;) {
        int rc = s->host->emit(s->ctx, rec, emit_timeout(s));
        if (rc != TRIB_RETRY)
            return rc == TRIB_OK ? TRIB_OK : TRIB_STOP;
        pg_service(s); /* back-pressure: keep the walsender happy, then retry */
    }
}

int pg_emit_position(pg_src *s, uint64_t pos)
{
    if (pos <= s->last_pos)
        return TRIB_OK;
    for (;;) {
        int rc = s->host->emit_position(s->ctx, pos, emit_timeout(s));
        if (rc == TRIB_OK) {
            s->last_pos = pos;
            return TRIB_OK;
        }
        if (rc != TRIB_RETRY)
            return TRIB_STOP;
        pg_service(s);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static trib_record *row_record(pg_src *s, const pg_table *t, pgt_field *f, int binary)
{
    trib_record *rec = pg_record_new(s, t, 'r');
    if (!rec) {
        snprintf(s->errbuf, sizeof s->errbuf, "out of memory");
        return NULL;
    }
    rec->src.snapshot = 1;
    rec->src.ts_ms = now_ms();
    rec->has_after = 1;
    for (size_t i = 0; i < t->ncols; i++) {
        trib_val_kind k = !f[i].data ? TRIB_VAL_NULL
                          : binary && t->cols[i].type_oid == TRIB_OID_BYTEA ? TRIB_VAL_BINARY
                                                                            : TRIB_VAL_TEXT;
        if (pg_add_value(s, &rec->after, &t->cols[i], k, f[i].data, f[i].len) != TRIB_OK) {
            s->host->record_free(rec);
            return NULL;
        }
    }
    return rec;
}

/*
 * Binary format (snapshot_format: binary, the default): bytea columns travel
 * raw, every other column as the text its type's output function makes —
 * the very text a text-format COPY (and pgoutput) would carry, NULLs kept
 * (output functions are strict) — so records are the same either way, but
 * the server does not hex-encode bytea and we do not decode or unescape.
 */
static int binary_ok(const pg_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (t->cols[i].type_oid != TRIB_OID_BYTEA && !t->cols[i].out_fn)
            return 0;
    return 1;
}

static char *copy_sql(const pg_table *t, int binary)
{
    size_t cap = 2 * (strlen(t->schema) + strlen(t->name)) + 80;
    for (size_t i = 0; i < t->ncols; i++)
        cap += 2 * strlen(t->cols[i].name) + 4 + (t->cols[i].out_fn ? strlen(t->cols[i].out_fn) + 2 : 0);
    char *sql = malloc(cap), *qs = pgt_quote_ident(t->schema), *qt = pgt_quote_ident(t->name);
    if (sql && qs && qt) {
        size_t n = (size_t)snprintf(sql, cap, "COPY (SELECT ");
        for (size_t i = 0; i < t->ncols; i++) {
            const pg_col *c = &t->cols[i];
            char *qc = pgt_quote_ident(c->name);
            if (binary && c->type_oid != TRIB_OID_BYTEA)
                n += (size_t)snprintf(sql + n, cap - n, "%s%s(%s)", i ? ", " : "", c->out_fn,
                                      qc ? qc : "");
            else
                n += (size_t)snprintf(sql + n, cap - n, "%s%s", i ? ", " : "", qc ? qc : "");
            free(qc);
        }
        snprintf(sql + n, cap - n, " FROM ONLY %s.%s) TO STDOUT%s", qs, qt,
                 binary ? " (FORMAT binary)" : "");
    }
    free(qs);
    free(qt);
    return sql;
}

/* Read one table; each row is emitted after the next one is read (*held). */
/* Progress metrics "snapshot_rows:<schema.table>" / "snapshot_estimate:…"
   (pg_class.reltuples), shown by `tributary run` and the metrics endpoint. */
static void progress(pg_src *s, const pg_table *t, const char *what, double v)
{
    char name[300];
    snprintf(name, sizeof name, "%s:%s.%s", what, t->schema, t->name);
    s->host->metric_set(s->ctx, name, v);
}

static void estimate_rows(pg_src *s, const pg_table *t)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT reltuples::bigint FROM pg_class WHERE oid = %u", t->oid);
    PGresult *r = PQexec(s->sql, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        progress(s, t, "snapshot_estimate", strtod(PQgetvalue(r, 0, 0), NULL));
    PQclear(r);
    progress(s, t, "snapshot_rows", 0);
}

static int snapshot_table(pg_src *s, const pg_table *t, trib_record **held, uint64_t *rows)
{
    uint64_t first = *rows;
    estimate_rows(s, t);
    int binary = s->snapshot_binary && binary_ok(t), header_done = 0;
    char *sql = copy_sql(t, binary), *buf = NULL;
    pgt_field *f = calloc(t->ncols + 1, sizeof *f);
    int rc = TRIB_ERR, n;
    PGresult *r = sql && f ? PQexec(s->sql, sql) : NULL;
    free(sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        LOGE(s, "snapshot of %s.%s failed on %s: %s", t->schema, t->name, s->conn_desc,
             pg_errmsg(s, s->sql));
        PQclear(r);
        free(f);
        return TRIB_ERR;
    }
    PQclear(r);
    while ((n = PQgetCopyData(s->sql, &buf, 0)) > 0) {
        trib_record *rec = NULL;
        if (binary) {
            int k = pgt_copy_binary(buf, (size_t)n, &header_done, f, t->ncols, s->errbuf,
                                    sizeof s->errbuf);
            if (k == 0 || k == 2) { /* trailer, or the header alone */
                PQfreemem(buf);
                continue;
            }
            if (k == 1)
                rec = row_record(s, t, f, 1);
        } else if (pgt_copy_row(buf, (size_t)n, f, t->ncols, s->errbuf, sizeof s->errbuf) == 0) {
            rec = row_record(s, t, f, 0);
        }
        PQfreemem(buf);
        if (!rec) {
            LOGE(s, "snapshot of %s.%s, row %" PRIu64 ": %s", t->schema, t->name, *rows + 1,
                 s->errbuf);
            goto drain;
        }
        if (++*rows % 1024 == 0)
            progress(s, t, "snapshot_rows", (double)(*rows - first));
        if (*held && pg_emit(s, *held) != TRIB_OK) {
            *held = NULL;
            s->host->record_free(rec);
            rc = TRIB_STOP;
            goto drain;
        }
        *held = rec;
    }
    if (n == -2) {
        LOGE(s, "snapshot of %s.%s: connection to %s lost: %s", t->schema, t->name, s->conn_desc,
             pg_errmsg(s, s->sql));
        goto drain;
    }
    rc = TRIB_OK;
    progress(s, t, "snapshot_rows", (double)(*rows - first));
drain:
    /* after an early exit the COPY is still running: abandon it with the connection */
    if (rc != TRIB_OK) {
        PQfinish(s->sql);
        s->sql = NULL;
        free(f);
        return rc;
    }
    while ((r = PQgetResult(s->sql)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            LOGE(s, "snapshot of %s.%s failed on %s: %s", t->schema, t->name, s->conn_desc,
                 pg_errmsg(s, s->sql));
            rc = TRIB_ERR;
        }
        PQclear(r);
    }
    free(f);
    return rc;
}

static int begin_snapshot(pg_src *s, const char *snap_name)
{
    char *lit = pgt_quote_literal(snap_name ? snap_name : ""), sql[256];
    if (!lit)
        return TRIB_ERR;
    snprintf(sql, sizeof sql, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY%s%s",
             snap_name ? "; SET TRANSACTION SNAPSHOT " : "", snap_name ? lit : "");
    free(lit);
    PGresult *r = PQexec(s->sql, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        LOGE(s, "cannot start the snapshot transaction on %s: %s", s->conn_desc,
             pg_errmsg(s, s->sql));
    PQclear(r);
    return ok ? TRIB_OK : TRIB_ERR;
}

int pg_run_snapshot(pg_src *s, const char *snap_name, uint64_t consistent)
{
    trib_record *held = NULL;
    uint64_t rows = 0;
    char lsn[32];
    if (begin_snapshot(s, snap_name) != TRIB_OK)
        return TRIB_ERR;
    if (snap_name)
        LOGI(s, "snapshot of %zu table(s) at %s started", s->ntables,
             pgo_lsn_str(consistent, lsn, sizeof lsn));
    else
        LOGI(s, "snapshot of %zu table(s) started (initial_only: no slot, no streaming)",
             s->ntables);
    for (size_t i = 0; i < s->ntables; i++) {
        uint64_t before = rows;
        int rc = snapshot_table(s, &s->tables[i], &held, &rows);
        if (rc != TRIB_OK) {
            if (held)
                s->host->record_free(held);
            return rc;
        }
        LOGI(s, "snapshot: %" PRIu64 " row(s) from %s.%s", rows - before, s->tables[i].schema,
             s->tables[i].name);
    }
    PQclear(PQexec(s->sql, "COMMIT"));
    if (held) {
        held->src.snapshot = 2;
        if (pg_emit(s, held) != TRIB_OK)
            return TRIB_STOP;
    }
    s->host->metric_add(s->ctx, "snapshot_rows", (double)rows);
    if (snap_name)
        LOGI(s, "snapshot finished: %" PRIu64 " row(s); streaming from %s", rows, lsn);
    else
        LOGI(s, "snapshot finished: %" PRIu64 " row(s)", rows);
    atomic_store(&s->snap_lsn, consistent);
    return pg_emit_position(s, consistent);
}

int pg_state_exists(pg_src *s)
{
    struct stat st;
    return s->state_path && stat(s->state_path, &st) == 0;
}

void pg_state_remove(pg_src *s)
{
    if (s->state_path && unlink(s->state_path) != 0 && errno != ENOENT)
        LOGE(s, "cannot remove %s: %s", s->state_path, strerror(errno));
}

static int write_state(pg_src *s, uint64_t lsn)
{
    size_t n = strlen(s->state_path) + 8;
    char *tmp = malloc(n), buf[32];
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp", s->state_path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "slot=%s\nconsistent_point=%s\n", s->slot,
                          pgo_lsn_str(lsn, buf, sizeof buf)) > 0;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = 0;
    ok = ok && rename(tmp, s->state_path) == 0;
    if (!ok) {
        LOGE(s, "cannot write snapshot state %s: %s", s->state_path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

void pg_state_maybe_write(pg_src *s, uint64_t committed)
{
    uint64_t want = atomic_load(&s->snap_lsn);
    if (!want || committed < want || !s->state_path || atomic_exchange(&s->snap_written, 1))
        return;
    if (write_state(s, want) == 0)
        LOGI(s, "snapshot delivered; recorded in %s", s->state_path);
    else
        atomic_store(&s->snap_written, 0); /* try again at the next commit */
}
