/*
 * postgres.c — the `postgres` source plugin: Postgres change data capture
 * through a logical replication slot and the built-in pgoutput plugin.
 *
 * This file holds the descriptor, the option table, the instance lifecycle
 * and run()'s start-up sequence: resolve tables, ensure the publication,
 * decide about the slot and the snapshot, then stream (pg_stream.c).
 *
 *   slot absent                       -> create it, snapshot (initial|always)
 *   slot present, state file present  -> stream (initial)
 *   slot present, no state file       -> interrupted snapshot: drop, recreate,
 *                                        snapshot again (initial)
 *   always                            -> drop, recreate, snapshot every start
 *   never                             -> create the slot if absent, no snapshot
 *   initial_only                      -> no slot, no publication, no state file:
 *                                        snapshot in a plain REPEATABLE READ
 *                                        transaction, then run() returns and the
 *                                        core exits once the sink acknowledged all
 */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"
#include "pgtext.h"

#define LOGE(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_ERROR, __VA_ARGS__)
#define LOGW(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_WARN, __VA_ARGS__)
#define LOGI(s, ...) (s)->host->log((s)->ctx, TRIB_LOG_INFO, __VA_ARGS__)

static const trib_option pg_options[] = {
    {"conninfo", TRIB_OPT_STRING, NULL, 1, NULL,
     "libpq connection string or URI of the source database", 1},
    {"slot", TRIB_OPT_STRING, "tributary", 0, NULL,
     "logical replication slot name ([a-z0-9_], created if absent)", 0},
    {"publication", TRIB_OPT_STRING, "tributary", 0, NULL,
     "publication streamed from the slot", 0},
    {"tables", TRIB_OPT_LIST, NULL, 1, NULL,
     "tables to capture: schema.table or table (= public.table); \"quote\" odd names", 0},
    {"snapshot", TRIB_OPT_ENUM, "initial", 0, "initial|never|always|initial_only",
     "initial: snapshot once per slot; always: on every start; never: changes only; "
     "initial_only: snapshot, then exit once the sink acknowledged every row (no slot, "
     "publication or state file)", 0},
    {"snapshot_format", TRIB_OPT_ENUM, "binary", 0, "binary|text",
     "COPY format of the snapshot: binary sends bytea raw (half the bytes, no hex on either "
     "side) and other columns through their type's output function, as text does", 0},
    {"topic_prefix", TRIB_OPT_STRING, "tributary", 0, NULL,
     "topics are <topic_prefix>.<schema>.<table>; also source.name", 0},
    {"status_interval_ms", TRIB_OPT_INT, "10000", 0, NULL,
     "interval between standby status updates confirming positions", 0},
    {"confirm_interval_ms", TRIB_OPT_INT, "1000", 0, NULL,
     "confirm a newly acknowledged position to the slot within this time (bounds replay after a crash)", 0},
    {"proto_version", TRIB_OPT_INT, "1", 0, NULL, "pgoutput protocol version (1-4)", 0},
    {"replica_identity", TRIB_OPT_ENUM, "keep", 0, "keep|full",
     "full: ALTER TABLE ... REPLICA IDENTITY FULL on captured tables (old rows in u/d)", 0},
    {"create_publication", TRIB_OPT_BOOL, "true", 0, NULL,
     "create the publication, or add missing tables to it; false: it must exist", 0},
    {"client_encoding", TRIB_OPT_STRING, "UTF8", 0, NULL,
     "encoding of text values (snapshot and stream alike)", 0},
    {"timezone", TRIB_OPT_STRING, "UTC", 0, NULL,
     "session TimeZone used to render timestamptz values", 0},
    {"application_name", TRIB_OPT_STRING, "tributary", 0, NULL,
     "application_name of the connections unless conninfo sets one", 0},
    {"reconnect_backoff_ms", TRIB_OPT_INT, "500", 0, NULL,
     "first delay before reconnecting after the server went away (doubles)", 0},
    {"reconnect_backoff_max_ms", TRIB_OPT_INT, "30000", 0, NULL,
     "longest delay between reconnect attempts", 0},
    {"reconnect_timeout_ms", TRIB_OPT_INT, "0", 0, NULL,
     "give up (fatal) after reconnecting this long; 0 = retry forever", 0},
    {"capture_file", TRIB_OPT_STRING, NULL, 0, NULL,
     "debug: append every raw pgoutput message (4-byte length + bytes) to this file", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static void tables_free(pg_src *s)
{
    for (size_t i = 0; i < s->ntables; i++) {
        pg_table *t = &s->tables[i];
        for (size_t k = 0; k < t->ncols; k++) {
            free(t->cols[k].name);
            free(t->cols[k].out_fn);
        }
        free(t->cols);
        free(t->schema);
        free(t->name);
        free(t->spec);
        free(t->topic);
    }
    free(s->tables);
    s->tables = NULL;
    s->ntables = 0;
}

static void pg_destroy(void *inst);

static int parse_tables(pg_src *s, const trib_opts *o, char *err, size_t errlen)
{
    const char *const *items = NULL;
    size_t n = s->host->opt_list(o, "tables", &items);
    if (n == 0) {
        snprintf(err, errlen, "tables: list at least one table");
        return TRIB_ERR;
    }
    s->tables = calloc(n, sizeof *s->tables);
    if (!s->tables)
        return TRIB_ERR;
    for (size_t i = 0; i < n; i++) {
        pg_table *t = &s->tables[s->ntables];
        char why[128];
        if (pgt_parse_table(items[i], &t->schema, &t->name, &t->fold, why, sizeof why) != 0) {
            snprintf(err, errlen, "tables[%zu] \"%s\": %s", i, items[i], why);
            return TRIB_ERR;
        }
        s->ntables++;
        if (!(t->spec = strdup(items[i])))
            return TRIB_ERR;
        for (size_t k = 0; k + 1 < s->ntables; k++)
            if (!strcmp(s->tables[k].schema, t->schema) && !strcmp(s->tables[k].name, t->name)) {
                snprintf(err, errlen, "tables: %s.%s is listed twice", t->schema, t->name);
                return TRIB_ERR;
            }
    }
    return TRIB_OK;
}

static int read_options(pg_src *s, const trib_opts *o, char *err, size_t errlen)
{
    const trib_host *h = s->host;
    s->conninfo = h->opt_str(o, "conninfo");
    s->slot = h->opt_str(o, "slot");
    s->publication = h->opt_str(o, "publication");
    s->snapshot_mode = h->opt_str(o, "snapshot");
    s->initial_only = s->snapshot_mode && strcmp(s->snapshot_mode, "initial_only") == 0;
    s->snapshot_binary = strcmp(h->opt_str(o, "snapshot_format"), "binary") == 0;
    s->topic_prefix = h->opt_str(o, "topic_prefix");
    s->client_encoding = h->opt_str(o, "client_encoding");
    s->timezone = h->opt_str(o, "timezone");
    s->app_name = h->opt_str(o, "application_name");
    s->capture_path = h->opt_str(o, "capture_file");
    s->status_interval_ms = h->opt_int(o, "status_interval_ms");
    s->confirm_interval_ms = h->opt_int(o, "confirm_interval_ms");
    s->proto_version = h->opt_int(o, "proto_version");
    s->backoff_ms = h->opt_int(o, "reconnect_backoff_ms");
    s->backoff_max_ms = h->opt_int(o, "reconnect_backoff_max_ms");
    s->reconnect_timeout_ms = h->opt_int(o, "reconnect_timeout_ms");
    const char *ri = h->opt_str(o, "replica_identity");
    s->replica_full = ri && strcmp(ri, "full") == 0;
    s->create_publication = h->opt_bool(o, "create_publication");
    if (!s->conninfo || !*s->conninfo)
        return snprintf(err, errlen, "conninfo: required"), TRIB_ERR;
    if (!pgt_valid_slot_name(s->slot))
        return snprintf(err, errlen, "slot \"%s\": use 1-63 characters of [a-z0-9_]",
                        s->slot ? s->slot : ""), TRIB_ERR;
    if (!s->publication || !*s->publication)
        return snprintf(err, errlen, "publication: must not be empty"), TRIB_ERR;
    if (s->confirm_interval_ms < 10 || s->confirm_interval_ms > 3600000)
        return snprintf(err, errlen, "confirm_interval_ms: %lld is outside 10..3600000",
                        (long long)s->confirm_interval_ms), TRIB_ERR;
    if (s->status_interval_ms < 100 || s->status_interval_ms > 3600000)
        return snprintf(err, errlen, "status_interval_ms: %lld is outside 100..3600000",
                        (long long)s->status_interval_ms), TRIB_ERR;
    if (s->proto_version < 1 || s->proto_version > 4)
        return snprintf(err, errlen, "proto_version: %lld is not 1..4",
                        (long long)s->proto_version), TRIB_ERR;
    if (s->backoff_ms < 10 || s->backoff_max_ms < s->backoff_ms || s->reconnect_timeout_ms < 0)
        return snprintf(err, errlen, "reconnect_backoff_ms must be >= 10 and <= "
                        "reconnect_backoff_max_ms; reconnect_timeout_ms >= 0"), TRIB_ERR;
    return TRIB_OK;
}

static int pg_create(trib_ctx *ctx, const trib_host *host, const trib_opts *opts, void **inst,
                     char *err, size_t errlen)
{
    pg_src *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, errlen, "out of memory"), TRIB_ERR;
    s->ctx = ctx;
    s->host = host;
    s->closed = 1; /* nothing to close until run() connects */
    if (read_options(s, opts, err, errlen) != TRIB_OK ||
        parse_tables(s, opts, err, errlen) != TRIB_OK)
        goto fail;
    char *perr = NULL;
    PQconninfoOption *ci = PQconninfoParse(s->conninfo, &perr);
    if (!ci) {
        /* libpq's message may quote the string: do not echo it (it may hold a password) */
        PQfreemem(perr);
        snprintf(err, errlen, "conninfo: not a valid libpq connection string or URI");
        goto fail;
    }
    PQconninfoFree(ci);
    if (!(s->conn_desc = pg_describe_conninfo(s->conninfo)))
        goto fail;
    *inst = s;
    return TRIB_OK;
fail:
    if (!err[0])
        snprintf(err, errlen, "out of memory");
    pg_destroy(s);
    return TRIB_ERR;
}

static int state_path_init(pg_src *s)
{
    const char *dir = s->host->state_dir ? s->host->state_dir(s->ctx) : NULL;
    if (!dir || !*dir) {
        LOGW(s, "no state_dir: keeping the snapshot state file in the current directory");
        dir = ".";
    }
    size_t n = strlen(dir) + strlen(s->slot) + 16;
    if (!(s->state_path = malloc(n)))
        return TRIB_ERR;
    snprintf(s->state_path, n, "%s/%s.snapshot", dir, s->slot);
    return TRIB_OK;
}

/* Slot and snapshot decisions (see the table at the top of the file). */
static int prepare_slot(pg_src *s)
{
    int exists = 0, snap = 0, create = 0, rc;
    const char *mode = s->snapshot_mode ? s->snapshot_mode : "initial";
    if (pg_slot_exists(s, &exists) != TRIB_OK)
        return TRIB_ERR;
    if (strcmp(mode, "never") == 0) {
        create = !exists;
    } else if (strcmp(mode, "always") == 0 || !exists) {
        snap = create = 1;
    } else if (!pg_state_exists(s)) {
        LOGW(s, "slot \"%s\" exists but %s does not: the last snapshot was interrupted; "
             "dropping the slot and taking the snapshot again", s->slot, s->state_path);
        snap = create = 1;
    }
    if (exists && snap && pg_drop_slot(s) != TRIB_OK)
        return TRIB_ERR;
    if (snap)
        pg_state_remove(s);
    if (!create) {
        LOGI(s, "slot \"%s\" exists; no snapshot", s->slot);
        return TRIB_OK;
    }
    uint64_t consistent = 0;
    char *snap_name = NULL;
    if (pg_create_slot(s, snap, &consistent, &snap_name) != TRIB_OK)
        return TRIB_ERR;
    rc = snap ? pg_run_snapshot(s, snap_name, consistent) : TRIB_OK;
    free(snap_name);
    return rc;
}

/*
 * snapshot: initial_only — a one-off export: the tables are read in a plain
 * REPEATABLE READ transaction (no exported snapshot to import), nothing is
 * left behind on the server or in state_dir, and no position is emitted, so
 * commit() never has anything to confirm.  Returning TRIB_OK makes the core
 * drain the queue, wait for the sink's acknowledgements and exit 0; stopped
 * before the snapshot was read it returns TRIB_ERR (exit 1: incomplete).
 */
static int run_initial_only(pg_src *s)
{
    int rc = pg_run_snapshot(s, NULL, 0);
    PQfinish(s->sql);
    s->sql = NULL;
    if (rc == TRIB_STOP) { /* a one-off run has no slot to resume from: it failed */
        LOGE(s, "snapshot (initial_only) stopped before it was complete: the run is incomplete");
        return TRIB_ERR;
    }
    if (rc != TRIB_OK)
        return TRIB_ERR;
    LOGI(s, "snapshot (initial_only) read completely; exiting once the sink has acknowledged "
         "every row");
    return TRIB_OK;
}

static int pg_run(void *inst)
{
    pg_src *s = inst;
    s->closed = 0;
    if (!s->initial_only && state_path_init(s) != TRIB_OK)
        return TRIB_ERR;
    if (pg_connect(s, 0, &s->sql) != TRIB_OK) {
        LOGE(s, "%s", s->errbuf);
        return TRIB_ERR;
    }
    free(s->dbname);
    if (!(s->dbname = strdup(PQdb(s->sql))))
        return TRIB_ERR;
    s->fdb = pg_intern(s, s->dbname);
    s->fprefix = pg_intern(s, s->topic_prefix);
    if (pg_resolve_tables(s) != TRIB_OK)
        return TRIB_ERR;
    if (s->initial_only)
        return run_initial_only(s);
    if (pg_setup_publication(s) != TRIB_OK)
        return TRIB_ERR;
    if (pg_connect(s, 1, &s->repl) != TRIB_OK) {
        LOGE(s, "%s (does the role have the REPLICATION attribute?)", s->errbuf);
        return TRIB_ERR;
    }
    int rc = prepare_slot(s);
    if (s->sql) {
        PQfinish(s->sql); /* not needed while streaming */
        s->sql = NULL;
    }
    if (rc == TRIB_STOP)
        return TRIB_OK;
    if (rc != TRIB_OK)
        return TRIB_ERR;
    if (s->capture_path && !(s->capture = fopen(s->capture_path, "ab")))
        LOGW(s, "capture_file %s: cannot open; not capturing", s->capture_path);
    return pg_stream(s);
}

static void pg_commit(void *inst, uint64_t pos)
{
    pg_src *s = inst;
    uint64_t cur = atomic_load(&s->committed);
    while (pos > cur && !atomic_compare_exchange_weak(&s->committed, &cur, pos))
        ;
    pg_state_maybe_write(s, atomic_load(&s->committed));
}

static void pg_close(void *inst)
{
    pg_src *s = inst;
    char lsn[32];
    if (s->closed)
        return;
    s->closed = 1;
    if (s->repl && s->streaming) {
        pg_send_status(s, 1);
        LOGI(s, "stopped; confirmed %s to slot \"%s\"",
             pgo_lsn_str(atomic_load(&s->committed), lsn, sizeof lsn), s->slot);
        PQputCopyEnd(s->repl, NULL);
        PQflush(s->repl);
    }
    s->streaming = 0;
    PQfinish(s->repl);
    PQfinish(s->sql);
    s->repl = s->sql = NULL;
    if (s->capture)
        fclose(s->capture);
    s->capture = NULL;
}

static void pg_destroy(void *inst)
{
    pg_src *s = inst;
    if (!s)
        return;
    pg_close(s);
    pg_rels_free(s);
    tables_free(s);
    free(s->conn_desc);
    free(s->bytea_buf);
    free(s->dbname);
    free(s->state_path);
    free(s);
}

static const trib_source_ops pg_source_ops = {pg_run, pg_commit, pg_close};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "postgres",
    "0.1.0",
    "Postgres change data capture: snapshot, then pgoutput logical replication",
    TRIB_ROLE_SOURCE,
    pg_options,
    pg_create,
    NULL,
    pg_destroy,
    &pg_source_ops,
    NULL,
    NULL,
    NULL,
    NULL,
};
