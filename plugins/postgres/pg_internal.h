/*
 * pg_internal.h — state shared by the files of the `postgres` source plugin:
 * postgres.c (descriptor, options, lifecycle), pg_catalog.c (connections,
 * tables, publication, slot), pg_snapshot.c (initial snapshot and its state
 * file) and pg_stream.c (the pgoutput stream, positions, reconnects).
 *
 * One pg_src per plugin instance; no global mutable state.  Only
 * `committed`, `snap_lsn` and `snap_written` are touched from the pipeline
 * thread (source->commit); everything else belongs to the run() thread.
 */
#ifndef TRIB_PG_INTERNAL_H
#define TRIB_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <tributary/plugin.h>

#include "pgoutput.h"

typedef struct pg_col {
    char *name;
    const char *fname;     /* the name records carry: pg_intern(name) */
    uint32_t type_oid;
    int32_t type_mod;
    int is_key;            /* part of the record key (primary key / identity index) */
    int ident;             /* pgoutput flagged it as replica identity ('K' tuples carry it) */
    char *out_fn;          /* snapshot: schema-qualified, quoted output function of the type */
} pg_col;

/** A configured table, resolved against the catalog at start-up. */
typedef struct pg_table {
    char *schema, *name;   /* catalog names */
    char *spec;            /* as written in `tables` */
    int fold;              /* unquoted upper-case parts: retry lower-cased */
    uint32_t oid;
    char replident;        /* pg_class.relreplident */
    char *topic;           /* <topic_prefix>.<schema>.<table> */
    const char *ftopic, *fschema, *fname; /* pg_intern() of topic, schema, name */
    pg_col *cols;          /* catalog columns in attnum order (generated ones excluded) */
    size_t ncols;
} pg_table;

/** Relation cache entry built from pgoutput 'R' messages. */
typedef struct pg_rel {
    uint32_t relid;
    pg_table *table;       /* NULL: not a configured table, changes are skipped */
    char replident;
    pg_col *cols;
    size_t ncols;
} pg_rel;

typedef struct pg_src {
    trib_ctx *ctx;
    const trib_host *host;

    /* options */
    const char *conninfo, *slot, *publication, *snapshot_mode, *topic_prefix;
    const char *client_encoding, *timezone, *app_name, *capture_path;
    int64_t status_interval_ms, confirm_interval_ms, proto_version;
    int64_t backoff_ms, backoff_max_ms, reconnect_timeout_ms;
    int replica_full, create_publication;
    int initial_only;      /* snapshot: initial_only — no slot, publication or state file */

    pg_table *tables;
    size_t ntables;
    char *conn_desc;       /* conninfo without secrets, for messages */
    char *dbname;
    const char *fprefix, *fdb; /* pg_intern() of topic_prefix, dbname */
    char *state_path;      /* <state_dir>/<slot>.snapshot (NULL with initial_only) */

    PGconn *repl;          /* replication=database connection (never with initial_only) */
    PGconn *sql;           /* normal connection (setup and snapshot only) */
    int streaming;         /* repl is in COPY BOTH mode */
    int server_version;

    /* positions */
    _Atomic uint64_t committed;    /* last position the core confirmed */
    _Atomic uint64_t snap_lsn;     /* write the state file once committed >= this (0: no) */
    atomic_int snap_written;
    uint64_t last_pos;             /* last position handed to emit_position */
    uint64_t slot_confirmed;       /* the slot's confirmed_flush_lsn at start-up */
    uint64_t sent_lsn;             /* last flush LSN sent in a status update */
    int64_t last_status_ms;        /* monotonic ms of the last status update */

    /* current transaction */
    int in_txn, skip_txn;
    uint32_t txn_xid;
    uint64_t txn_final_lsn;
    int64_t txn_ts_ms;
    uint64_t txn_changes;          /* changes emitted in this transaction */
    uint64_t change_lsn;           /* XLogData start of the message being handled */
    /* after a reconnect inside a transaction: changes already emitted */
    uint64_t partial_final_lsn, partial_changes;

    pg_rel *rels;
    size_t nrels;
    FILE *capture;
    int closed;
    char errbuf[512];
    char *bytea_buf;       /* scratch for decoding bytea hex (source thread only) */
    int snapshot_binary;   /* snapshot_format: binary */
    size_t bytea_cap;
} pg_src;

/* pg_catalog.c */
/* on a connection failure: TRIB_ERR, nothing logged, the reason in s->errbuf */
int pg_connect(pg_src *s, int replication, PGconn **out);
int pg_resolve_tables(pg_src *s);
int pg_setup_publication(pg_src *s);
int pg_slot_exists(pg_src *s, int *exists);
int pg_drop_slot(pg_src *s);
int pg_create_slot(pg_src *s, int export_snapshot, uint64_t *consistent, char **snap_name);
char *pg_describe_conninfo(const char *conninfo);
const char *pg_errmsg(pg_src *s, PGconn *c); /* last error, one line, in s->errbuf */
const char *pg_first_line(pg_src *s, const char *msg); /* likewise for any message */

/* pg_snapshot.c */
int pg_run_snapshot(pg_src *s, const char *snap_name, uint64_t consistent);
int pg_state_exists(pg_src *s);
void pg_state_remove(pg_src *s);
void pg_state_maybe_write(pg_src *s, uint64_t committed);
trib_record *pg_record_new(pg_src *s, const pg_table *t, char op);
const char *pg_intern(pg_src *s, const char *str);
int pg_emit(pg_src *s, trib_record *rec);
int pg_emit_position(pg_src *s, uint64_t pos);
int pg_add_value(pg_src *s, trib_row *row, const pg_col *c, trib_val_kind kind, const char *data,
                 size_t len);

/* pg_stream.c */
int pg_stream(pg_src *s);
/* While emit() is back-pressured: send status updates so the walsender stays. */
void pg_service(pg_src *s);
void pg_send_status(pg_src *s, int force);
void pg_rels_free(pg_src *s);
int64_t pg_mono_ms(void);

#endif /* TRIB_PG_INTERNAL_H */
