/*
 * pg_catalog.c — everything the Postgres source asks of the server before it
 * streams: connections (normal and replication=database) with fixed session
 * settings, resolving the configured tables (columns, type OIDs, key
 * columns, replica identity), the publication and the replication slot.
 *
 * Errors are logged through the host as one line naming the table, slot or
 * publication and the server (conninfo without its password).
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pgtext.h"

#define LOGE(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_ERROR, __VA_ARGS__)
#define LOGW(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_WARN, __VA_ARGS__)
#define LOGI(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_INFO, __VA_ARGS__)

const char *pg_first_line(pg_src *s, const char *m)
{
    /* libpq's messages end with '\n' and may span lines: keep the first non-empty one */
    m += strspn(m, "\n");
    size_t n = strcspn(m, "\n");
    if (n >= sizeof s->errbuf)
        n = sizeof s->errbuf - 1;
    memmove(s->errbuf, m, n);
    s->errbuf[n] = '\0';
    if (!s->errbuf[0])
        snprintf(s->errbuf, sizeof s->errbuf, "connection closed");
    return s->errbuf;
}

const char *pg_errmsg(pg_src *s, PGconn *c)
{
    return pg_first_line(s, c ? PQerrorMessage(c) : "out of memory");
}

char *pg_describe_conninfo(const char *conninfo)
{
    static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user", NULL};
    char *err = NULL, out[512] = "";
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        PQfreemem(err);
        return strdup("(unparsable conninfo)");
    }
    for (int i = 0; shown[i]; i++)
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, shown[i]) == 0 && o->val && *o->val) {
                size_t n = strlen(out);
                snprintf(out + n, sizeof out - n, "%s%s=%s", n ? " " : "", o->keyword, o->val);
            }
    PQconninfoFree(opts);
    return strdup(out[0] ? out : "(libpq defaults)");
}

static int exec_ok(pg_src *s, PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    int st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        LOGE(s, "%s failed on %s: %s", what, s->conn_desc, pg_errmsg(s, c));
    PQclear(r);
    return ok ? TRIB_OK : TRIB_ERR;
}

/* Fix the text forms we parse: hex bytea, ISO dates, full float precision. */
static int set_session(pg_src *s, PGconn *c)
{
    char *tz = pgt_quote_literal(s->timezone);
    char sql[512];
    if (!tz)
        return TRIB_ERR;
    snprintf(sql, sizeof sql,
             "SET bytea_output = hex; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = postgres; "
             "SET extra_float_digits = 3; SET statement_timeout = 0; "
             "SET idle_in_transaction_session_timeout = 0; SET TimeZone = %s",
             tz);
    free(tz);
    return exec_ok(s, c, sql, "setting session parameters");
}

int pg_connect(pg_src *s, int replication, PGconn **out)
{
    const char *keys[6], *vals[6];
    int n = 0;
    keys[n] = "dbname", vals[n++] = s->conninfo;
    if (replication)
        keys[n] = "replication", vals[n++] = "database";
    keys[n] = "fallback_application_name", vals[n++] = s->app_name;
    keys[n] = "client_encoding", vals[n++] = s->client_encoding;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    *out = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", pg_errmsg(s, c));
        snprintf(s->errbuf, sizeof s->errbuf, "cannot connect to %s%s: %s", s->conn_desc,
                 replication ? " (replication)" : "", msg);
        PQfinish(c);
        return TRIB_ERR;
    }
    if (set_session(s, c) != TRIB_OK) {
        PQfinish(c);
        return TRIB_ERR;
    }
    s->server_version = PQserverVersion(c);
    *out = c;
    return TRIB_OK;
}

static PGresult *query(pg_src *s, const char *sql, int n, const char *const *params,
                       const char *what)
{
    PGresult *r = PQexecParams(s->sql, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        LOGE(s, "%s failed on %s: %s", what, s->conn_desc, pg_errmsg(s, s->sql));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Find the table's oid; with fold set, retry with lower-cased names. */
static int find_table(pg_src *s, pg_table *t)
{
    static const char *sql =
        "SELECT c.oid, c.relreplident, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2";
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *p[2] = {t->schema, t->name};
        PGresult *r = query(s, sql, 2, p, "looking up a table");
        if (!r)
            return TRIB_ERR;
        if (PQntuples(r) == 1) {
            char kind = PQgetvalue(r, 0, 2)[0];
            t->oid = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
            t->replident = PQgetvalue(r, 0, 1)[0];
            PQclear(r);
            if (kind == 'p') {
                /* changes would arrive under the partitions' names: list those instead */
                LOGE(s, "\"%s\" (%s.%s) is a partitioned table in %s: list its partitions in "
                     "`tables` instead", t->spec, t->schema, t->name, s->conn_desc);
                return TRIB_ERR;
            }
            if (kind != 'r') {
                LOGE(s, "\"%s\" (%s.%s) is not a table (relkind '%c') in %s", t->spec,
                     t->schema, t->name, kind, s->conn_desc);
                return TRIB_ERR;
            }
            return TRIB_OK;
        }
        PQclear(r);
        if (!t->fold || attempt == 1)
            break;
        pgt_ascii_lower(t->schema);
        pgt_ascii_lower(t->name);
    }
    LOGE(s, "table \"%s\" (%s.%s) does not exist in %s", t->spec, t->schema, t->name,
         s->conn_desc);
    return TRIB_ERR;
}

/* Mark the key columns: the replica identity index if any, else the primary key. */
static int load_keys(pg_src *s, pg_table *t, const int *attnums)
{
    static const char *sql =
        "SELECT i.indkey::text FROM pg_catalog.pg_index i WHERE i.indrelid = $1 "
        "AND CASE WHEN $2 = 'i' THEN i.indisreplident ELSE i.indisprimary END";
    char oid[16], ident[2] = {t->replident, 0};
    snprintf(oid, sizeof oid, "%u", t->oid);
    const char *p[2] = {oid, ident};
    PGresult *r = query(s, sql, 2, p, "reading key columns");
    if (!r)
        return TRIB_ERR;
    if (PQntuples(r) > 0) {
        char *keys = PQgetvalue(r, 0, 0), *end;
        for (long k = strtol(keys, &end, 10); end != keys; k = strtol(keys, &end, 10)) {
            keys = end;
            for (size_t i = 0; i < t->ncols; i++)
                if (attnums[i] == k)
                    t->cols[i].is_key = 1;
        }
    }
    PQclear(r);
    return TRIB_OK;
}

/* The output function of a column's type, for the binary snapshot (pg_snapshot.c). */
#define OUT_FN                                                                                   \
    "(SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) "      \
    "FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_proc p ON p.oid = ty.typoutput "              \
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE ty.oid = a.atttypid)"

static int load_columns(pg_src *s, pg_table *t)
{
    const char *sql = s->server_version >= 120000
        ? "SELECT attname, atttypid, atttypmod, attnum, " OUT_FN " FROM pg_catalog.pg_attribute a "
          "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' "
          "ORDER BY attnum"
        : "SELECT attname, atttypid, atttypmod, attnum, " OUT_FN " FROM pg_catalog.pg_attribute a "
          "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum";
    char oid[16];
    snprintf(oid, sizeof oid, "%u", t->oid);
    const char *p[1] = {oid};
    PGresult *r = query(s, sql, 1, p, "reading columns");
    if (!r)
        return TRIB_ERR;
    int n = PQntuples(r), rc = TRIB_OK;
    int *attnums = calloc((size_t)n + 1, sizeof *attnums);
    t->cols = calloc((size_t)n + 1, sizeof *t->cols);
    if (!attnums || !t->cols) {
        PQclear(r);
        free(attnums);
        return TRIB_ERR;
    }
    for (int i = 0; i < n; i++) {
        t->cols[i].name = strdup(PQgetvalue(r, i, 0));
        t->cols[i].type_oid = (uint32_t)strtoul(PQgetvalue(r, i, 1), NULL, 10);
        t->cols[i].type_mod = (int32_t)strtol(PQgetvalue(r, i, 2), NULL, 10);
        attnums[i] = atoi(PQgetvalue(r, i, 3));
        if (!PQgetisnull(r, i, 4) && !(t->cols[i].out_fn = strdup(PQgetvalue(r, i, 4))))
            rc = TRIB_ERR;
        if (!t->cols[i].name)
            rc = TRIB_ERR;
        t->cols[i].fname = pg_intern(s, t->cols[i].name);
    }
    t->ncols = (size_t)n;
    PQclear(r);
    if (rc == TRIB_OK)
        rc = load_keys(s, t, attnums);
    free(attnums);
    return rc;
}

static int set_identity_full(pg_src *s, pg_table *t)
{
    char *qs = pgt_quote_ident(t->schema), *qt = pgt_quote_ident(t->name), sql[1024];
    int rc = TRIB_ERR;
    if (qs && qt) {
        snprintf(sql, sizeof sql, "ALTER TABLE %s.%s REPLICA IDENTITY FULL", qs, qt);
        rc = exec_ok(s, s->sql, sql, "ALTER TABLE ... REPLICA IDENTITY FULL");
        if (rc == TRIB_OK) {
            LOGI(s, "set REPLICA IDENTITY FULL on %s.%s", t->schema, t->name);
            t->replident = 'f';
        }
    }
    free(qs);
    free(qt);
    return rc;
}

int pg_resolve_tables(pg_src *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        pg_table *t = &s->tables[i];
        if (find_table(s, t) != TRIB_OK || load_columns(s, t) != TRIB_OK)
            return TRIB_ERR;
        /* replica identity matters only for streamed changes: initial_only streams none */
        if (s->replica_full && !s->initial_only && t->replident != 'f' &&
            set_identity_full(s, t) != TRIB_OK)
            return TRIB_ERR;
        int has_key = 0;
        for (size_t k = 0; k < t->ncols; k++)
            has_key |= t->cols[k].is_key;
        if (!has_key && !s->initial_only && (t->replident == 'd' || t->replident == 'n'))
            LOGW(s, "table %s.%s has no primary key and REPLICA IDENTITY %s: UPDATE and DELETE "
                 "on it will fail while it is published; set replica_identity: full",
                 t->schema, t->name, t->replident == 'd' ? "DEFAULT" : "NOTHING");
        size_t n = strlen(s->topic_prefix) + strlen(t->schema) + strlen(t->name) + 3;
        free(t->topic);
        t->topic = malloc(n);
        if (!t->topic)
            return TRIB_ERR;
        snprintf(t->topic, n, "%s.%s.%s", s->topic_prefix, t->schema, t->name);
        t->ftopic = pg_intern(s, t->topic);
        t->fschema = pg_intern(s, t->schema);
        t->fname = pg_intern(s, t->name);
    }
    return TRIB_OK;
}

/* "s"."t", "s"."t2" ... for the tables selected by `only` (NULL: all). */
static char *table_list(pg_src *s, const int *only)
{
    size_t cap = 1;
    for (size_t i = 0; i < s->ntables; i++)
        cap += 2 * (strlen(s->tables[i].schema) + strlen(s->tables[i].name)) + 8;
    char *out = calloc(1, cap);
    for (size_t i = 0; out && i < s->ntables; i++) {
        if (only && !only[i])
            continue;
        char *qs = pgt_quote_ident(s->tables[i].schema), *qt = pgt_quote_ident(s->tables[i].name);
        if (qs && qt) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s.%s", n ? ", " : "", qs, qt);
        }
        free(qs);
        free(qt);
    }
    return out;
}

static int publication_ddl(pg_src *s, const char *verb, const int *only)
{
    char *qp = pgt_quote_ident(s->publication), *list = table_list(s, only);
    int rc = TRIB_ERR;
    if (qp && list) {
        size_t n = strlen(qp) + strlen(list) + 64;
        char *sql = malloc(n);
        if (sql) {
            snprintf(sql, n, "%s PUBLICATION %s %s %s", verb, qp,
                     strcmp(verb, "CREATE") == 0 ? "FOR TABLE" : "ADD TABLE", list);
            rc = exec_ok(s, s->sql, sql, strcmp(verb, "CREATE") == 0 ? "CREATE PUBLICATION"
                                                                     : "ALTER PUBLICATION");
            if (rc == TRIB_OK)
                LOGI(s, "%s publication \"%s\": %s",
                     strcmp(verb, "CREATE") == 0 ? "created" : "added tables to", s->publication,
                     list);
            free(sql);
        }
    }
    free(qp);
    free(list);
    return rc;
}

int pg_setup_publication(pg_src *s)
{
    const char *p1[1] = {s->publication};
    PGresult *r = query(s, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1",
                        1, p1, "looking up the publication");
    if (!r)
        return TRIB_ERR;
    int exists = PQntuples(r) == 1, all = exists && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists) {
        if (!s->create_publication) {
            LOGE(s, "publication \"%s\" does not exist in %s (create it, or set "
                 "create_publication: true)", s->publication, s->conn_desc);
            return TRIB_ERR;
        }
        return publication_ddl(s, "CREATE", NULL);
    }
    if (all)
        return TRIB_OK;
    int *missing = calloc(s->ntables + 1, sizeof *missing), nmissing = 0;
    if (!missing)
        return TRIB_ERR;
    for (size_t i = 0; i < s->ntables; i++) {
        const char *p[3] = {s->publication, s->tables[i].schema, s->tables[i].name};
        r = query(s, "SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 "
                     "AND schemaname = $2 AND tablename = $3", 3, p, "reading the publication");
        if (!r) {
            free(missing);
            return TRIB_ERR;
        }
        missing[i] = PQntuples(r) == 0;
        nmissing += missing[i];
        if (missing[i] && !s->create_publication)
            LOGE(s, "table %s.%s is not in publication \"%s\" (%s); add it, or set "
                 "create_publication: true", s->tables[i].schema, s->tables[i].name,
                 s->publication, s->conn_desc);
        PQclear(r);
    }
    int rc = TRIB_OK;
    if (nmissing)
        rc = s->create_publication ? publication_ddl(s, "ALTER", missing) : TRIB_ERR;
    free(missing);
    return rc;
}

int pg_slot_exists(pg_src *s, int *exists)
{
    const char *p[1] = {s->slot};
    PGresult *r = query(s, "SELECT plugin, database, confirmed_flush_lsn "
                           "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", 1, p,
                        "looking up the replication slot");
    if (!r)
        return TRIB_ERR;
    *exists = PQntuples(r) == 1;
    s->slot_confirmed = 0;
    if (*exists && !PQgetisnull(r, 0, 2))
        pgo_lsn_parse(PQgetvalue(r, 0, 2), &s->slot_confirmed);
    int rc = TRIB_OK;
    if (*exists && strcmp(PQgetvalue(r, 0, 0), "pgoutput") != 0) {
        LOGE(s, "replication slot \"%s\" in %s uses plugin \"%s\", not pgoutput: choose another "
             "slot name", s->slot, s->conn_desc, PQgetvalue(r, 0, 0));
        rc = TRIB_ERR;
    } else if (*exists && strcmp(PQgetvalue(r, 0, 1), s->dbname) != 0) {
        LOGE(s, "replication slot \"%s\" in %s belongs to database \"%s\", not \"%s\"", s->slot,
             s->conn_desc, PQgetvalue(r, 0, 1), s->dbname);
        rc = TRIB_ERR;
    }
    PQclear(r);
    return rc;
}

int pg_drop_slot(pg_src *s)
{
    const char *p[1] = {s->slot};
    PGresult *r = query(s, "SELECT pg_catalog.pg_drop_replication_slot($1)", 1, p,
                        "dropping the replication slot");
    if (!r)
        return TRIB_ERR;
    PQclear(r);
    LOGI(s, "dropped replication slot \"%s\"", s->slot);
    return TRIB_OK;
}

int pg_create_slot(pg_src *s, int export_snapshot, uint64_t *consistent, char **snap_name)
{
    char sql[256];
    if (s->server_version >= 150000)
        snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput (SNAPSHOT '%s')",
                 s->slot, export_snapshot ? "export" : "nothing");
    else
        snprintf(sql, sizeof sql, "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput %s", s->slot,
                 export_snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
    PGresult *r = PQexec(s->repl, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        LOGE(s, "cannot create replication slot \"%s\" in %s: %s", s->slot, s->conn_desc,
             pg_errmsg(s, s->repl));
        PQclear(r);
        return TRIB_ERR;
    }
    int fc = PQfnumber(r, "consistent_point"), fs = PQfnumber(r, "snapshot_name");
    *snap_name = NULL;
    if (fc < 0 || pgo_lsn_parse(PQgetvalue(r, 0, fc), consistent) != 0) {
        LOGE(s, "CREATE_REPLICATION_SLOT \"%s\" returned no consistent point", s->slot);
        PQclear(r);
        return TRIB_ERR;
    }
    if (export_snapshot && fs >= 0 && !PQgetisnull(r, 0, fs))
        *snap_name = strdup(PQgetvalue(r, 0, fs));
    PQclear(r);
    if (export_snapshot && !*snap_name) {
        LOGE(s, "CREATE_REPLICATION_SLOT \"%s\" exported no snapshot", s->slot);
        return TRIB_ERR;
    }
    char lsn[32];
    s->slot_confirmed = *consistent;
    LOGI(s, "created replication slot \"%s\" at %s", s->slot, pgo_lsn_str(*consistent, lsn, 32));
    return TRIB_OK;
}
