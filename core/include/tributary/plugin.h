/*
 * tributary/plugin.h — the one public header for Tributary plugins.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * TRIB_PLUGIN_SYMBOL ("tributary_plugin"), a `const trib_plugin` descriptor.
 * The core dlopen()s the file, checks `abi_major`, and from then on talks to
 * the plugin only through the descriptor's callbacks.  The plugin talks to the
 * core only through the `trib_host` function table handed to `create`.
 * Plugins link against nothing of the core: this header and libc suffice.
 *
 * ABI policy (docs/abi.md): a minor bump may append fields at the END of
 * trib_host, trib_plugin and the ops tables, and add new enum values; a
 * major bump means anything else changed and the loader refuses plugins
 * built for another major.
 *
 * Threading: unless said otherwise a callback is called from one thread at a
 * time per instance.  Host functions are thread-safe unless said otherwise.
 *
 * Memory: records (trib_record) are allocated and freed only through the host
 * (record_new / record_free / the setters below); every string and buffer
 * inside a record is owned by the record, except strings from
 * trib_host.intern, which are shared and read-only.
 */
#ifndef TRIBUTARY_PLUGIN_H
#define TRIBUTARY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRIB_ABI_MAJOR 1
#define TRIB_ABI_MINOR 3

/** Name of the descriptor symbol every plugin exports. */
#define TRIB_PLUGIN_SYMBOL "tributary_plugin"

#if defined(__GNUC__)
#define TRIB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TRIB_EXPORT __attribute__((visibility("default")))
#else
#define TRIB_PRINTF(a, b)
#define TRIB_EXPORT
#endif

/* ------------------------------------------------------------------ */
/* Return codes                                                        */
/* ------------------------------------------------------------------ */
enum {
    TRIB_OK = 0,
    TRIB_ERR = -1,     /**< failure; a message was logged or written to err */
    TRIB_STOP = -2,    /**< the engine is stopping: return from run() */
    TRIB_EOF = -3,     /**< consumer: bounded read reached the end of data */
    TRIB_RETRY = -4    /**< transient failure (broker down): try again later */
};

/* Log levels for trib_host.log */
enum { TRIB_LOG_ERROR = 0, TRIB_LOG_WARN, TRIB_LOG_INFO, TRIB_LOG_DEBUG, TRIB_LOG_TRACE };

/* Roles a plugin may provide (bit mask in trib_plugin.roles) */
enum {
    TRIB_ROLE_SOURCE = 1u << 0,
    TRIB_ROLE_TRANSFORM = 1u << 1,
    TRIB_ROLE_SINK = 1u << 2,
    TRIB_ROLE_CONSUMER = 1u << 3,
    TRIB_ROLE_TRAINER = 1u << 4
};

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

/** How a field's value is held. */
typedef enum trib_val_kind {
    TRIB_VAL_NULL = 0,     /**< SQL NULL: data == NULL, len == 0 */
    TRIB_VAL_TEXT = 1,     /**< Postgres text output form, NUL-terminated, len excludes NUL */
    TRIB_VAL_BINARY = 2,   /**< raw bytes (bytea decoded from \x hex); NUL-terminated too */
    TRIB_VAL_UNCHANGED = 3 /**< unchanged TOASTed value not sent by Postgres: value unknown */
} trib_val_kind;

/** Well-known Postgres type OIDs (pg_type.oid) used by the converter. */
enum {
    TRIB_OID_BOOL = 16, TRIB_OID_BYTEA = 17, TRIB_OID_CHAR = 18, TRIB_OID_NAME = 19,
    TRIB_OID_INT8 = 20, TRIB_OID_INT2 = 21, TRIB_OID_INT4 = 23, TRIB_OID_TEXT = 25,
    TRIB_OID_OID = 26, TRIB_OID_JSON = 114, TRIB_OID_FLOAT4 = 700, TRIB_OID_FLOAT8 = 701,
    TRIB_OID_BPCHAR = 1042, TRIB_OID_VARCHAR = 1043, TRIB_OID_DATE = 1082,
    TRIB_OID_TIME = 1083, TRIB_OID_TIMESTAMP = 1114, TRIB_OID_TIMESTAMPTZ = 1184,
    TRIB_OID_NUMERIC = 1700, TRIB_OID_UUID = 2950, TRIB_OID_JSONB = 3802
};

/** One column value of a row. */
typedef struct trib_field {
    char *name;            /**< column name */
    uint32_t type_oid;     /**< Postgres type OID */
    int32_t type_mod;      /**< atttypmod, -1 if none */
    trib_val_kind kind;
    int is_key;            /**< column is part of the replica identity / primary key */
    char *data;            /**< value bytes (see kind); always NUL-terminated when non-NULL */
    size_t len;
} trib_field;

/** A row: an ordered set of fields.  Grown with trib_host.field_add. */
typedef struct trib_row {
    trib_field *fields;
    size_t nfields;
    size_t cap;            /**< allocation size, managed by the host */
} trib_row;

/** Where a change came from (Debezium's "source" block). */
typedef struct trib_source_info {
    char *name;            /**< logical server name (topic_prefix) */
    char *db;
    char *schema;
    char *table;
    uint64_t lsn;          /**< LSN of the change (0 for snapshot rows) */
    uint64_t commit_lsn;   /**< end LSN of the commit of its transaction, when known */
    int64_t txid;          /**< transaction id, -1 if unknown */
    int64_t ts_ms;         /**< commit time, ms since the Unix epoch */
    int snapshot;          /**< 1 for rows read by the snapshot; 2 for the last one */
} trib_source_info;

/** A byte buffer owned by a record.  `set` distinguishes empty from absent. */
typedef struct trib_bytes {
    char *data;            /**< NUL-terminated for convenience; may contain NULs */
    size_t len;
    int set;
} trib_bytes;

typedef struct trib_header {
    char *name;
    char *value;
    size_t len;
} trib_header;

/**
 * A record: a change event (op != 0) travelling from a source through
 * transforms to a sink, or a message read back by a consumer (op == 0 unless
 * the message carried one).
 *
 * key/value: when `set`, the bytes are sent as is (a transform such as
 * `mnist` sets them).  When not set, the sink's converter renders them from
 * the structured change (Debezium JSON envelope; key = key columns).
 */
typedef struct trib_record {
    char op;               /**< 'r','c','u','d','t' or 0 */
    trib_source_info src;
    int has_before, has_after;
    trib_row before, after;
    char *topic;           /**< destination (sink) or origin (consumer) topic */
    trib_bytes key;
    trib_bytes value;
    trib_header *headers;
    size_t nheaders;
    char *msg_id;          /**< consumer: broker position ("partition/offset", stream id) */
    uint64_t seq;          /**< set by the core; plugins must not change it */
    void *core_private;    /**< reserved for the core */
} trib_record;

/* ------------------------------------------------------------------ */
/* Options: declared as data, validated by the core                    */
/* ------------------------------------------------------------------ */
typedef enum trib_opt_type {
    TRIB_OPT_STRING = 0,
    TRIB_OPT_INT,          /**< 64-bit signed integer */
    TRIB_OPT_DOUBLE,
    TRIB_OPT_BOOL,         /**< true/false/yes/no/on/off */
    TRIB_OPT_ENUM,         /**< string restricted to `choices` ("a|b|c") */
    TRIB_OPT_LIST,         /**< YAML sequence of strings (or one scalar) */
    TRIB_OPT_MAP           /**< YAML mapping of string -> scalar (passthrough) */
} trib_opt_type;

typedef struct trib_option {
    const char *name;
    trib_opt_type type;
    const char *default_value; /**< NULL: no default */
    int required;              /**< 1: must be given in the config */
    const char *choices;       /**< TRIB_OPT_ENUM: "a|b|c" */
    const char *description;   /**< one line, shown by `tributary plugins NAME` */
    int secret;                /**< 1: never log the value */
} trib_option;

/** Opaque: the typed values of one instance's options. */
typedef struct trib_opts trib_opts;
/** Opaque: the core's handle for one plugin instance. */
typedef struct trib_ctx trib_ctx;

/** Options for opening a consumer. */
typedef struct trib_consume_opts {
    const char *group_id;  /**< consumer group; NULL: the plugin's default */
    int from_beginning;    /**< 1: start at the earliest retained message */
    int bounded;           /**< 1: poll returns TRIB_EOF once it has read what was
                                there when the consumer was opened */
    int commit;            /**< 1: the caller will call commit() on processed records */
} trib_consume_opts;

/* ------------------------------------------------------------------ */
/* Host functions                                                      */
/* ------------------------------------------------------------------ */
typedef struct trib_host {
    uint32_t abi_major;
    uint32_t abi_minor;

    /** Log a line prefixed with the instance name.  Never pass secrets. */
    void (*log)(trib_ctx *ctx, int level, const char *fmt, ...) TRIB_PRINTF(3, 4);

    /* -- option values (valid for the life of the instance) -- */
    /** String/enum value, or NULL when unset without default. */
    const char *(*opt_str)(const trib_opts *o, const char *name);
    int64_t (*opt_int)(const trib_opts *o, const char *name);
    double (*opt_double)(const trib_opts *o, const char *name);
    int (*opt_bool)(const trib_opts *o, const char *name);
    /** LIST: number of items; item i via *items. */
    size_t (*opt_list)(const trib_opts *o, const char *name, const char *const **items);
    /** MAP: number of pairs; keys/values arrays. */
    size_t (*opt_map)(const trib_opts *o, const char *name, const char *const **keys,
                      const char *const **values);
    /** 1 when the option was given in the config (not defaulted). */
    int (*opt_given)(const trib_opts *o, const char *name);

    /* -- records -- */
    trib_record *(*record_new)(void);
    void (*record_free)(trib_record *rec);
    /** Deep copy. */
    trib_record *(*record_dup)(const trib_record *rec);
    /** Append a field (copies name and data).  Returns TRIB_OK or TRIB_ERR (ENOMEM). */
    int (*field_add)(trib_row *row, const char *name, uint32_t type_oid, int32_t type_mod,
                     trib_val_kind kind, const void *data, size_t len, int is_key);
    /** Find a field by name, NULL if absent. */
    trib_field *(*field_get)(const trib_row *row, const char *name);
    /** Replace a byte buffer (copies).  data == NULL && len == 0 clears it (set = 0). */
    int (*bytes_set)(trib_bytes *b, const void *data, size_t len);
    /** Replace a string (copies; NULL frees). */
    int (*str_set)(char **dst, const char *s);
    int (*header_add)(trib_record *rec, const char *name, const void *value, size_t len);

    /* -- source side -- */
    /**
     * Hand a record to the pipeline (ownership passes to the core).  Blocks
     * while the queue is full (back-pressure) but returns TRIB_RETRY after
     * `timeout_ms` so that a source can send keepalives, then call again with
     * the same record.  Returns TRIB_STOP when the engine is stopping (the
     * record is then freed by the core).
     */
    int (*emit)(trib_ctx *ctx, trib_record *rec, int timeout_ms);
    /**
     * Mark a position (e.g. a commit LSN): once every record emitted before
     * it is acknowledged, the core calls source->commit(pos).  Positions must
     * not decrease.  Same blocking rules as emit.
     */
    int (*emit_position)(trib_ctx *ctx, uint64_t pos, int timeout_ms);
    /** 1 once the engine asked the plugin to stop. */
    int (*stopping)(trib_ctx *ctx);
    /** Number of records emitted but not yet acknowledged. */
    uint64_t (*pending)(trib_ctx *ctx);

    /* -- sink side -- */
    /**
     * Acknowledge one record handed to sink->send: status TRIB_OK (delivered),
     * TRIB_ERR (permanently failed; `errmsg` says why and the engine stops,
     * confirming nothing past it), or TRIB_STOP (not delivered because the
     * engine is stopping while the broker is unreachable: nothing past it is
     * confirmed, and it is replayed on restart).  Exactly once per record,
     * from any thread.  The record must not be touched afterwards.
     */
    void (*ack)(trib_ctx *ctx, trib_record *rec, int status, const char *errmsg);

    /* -- misc -- */
    /** Directory for durable plugin state (created by the core). */
    const char *(*state_dir)(trib_ctx *ctx);
    /** Add `v` to a per-instance counter (shown in metrics). */
    void (*metric_add)(trib_ctx *ctx, const char *name, double v);
    /** Set a per-instance gauge. */
    void (*metric_set)(trib_ctx *ctx, const char *name, double v);
    /** Instance name as given by the config (e.g. "sink", "transforms[0]"). */
    const char *(*instance_name)(trib_ctx *ctx);

    /* -- since ABI 1.1: check abi_minor >= 1 before calling -- */
    /**
     * Replace a byte buffer with `len` uninitialised bytes for the caller to
     * fill in place (bytes_set without the copy).  Sets b->len = len,
     * b->set = 1, writes the NUL at data[len] and returns b->data.  The
     * caller may lower b->len afterwards; it then writes data[b->len] = 0.
     */
    char *(*bytes_alloc)(trib_bytes *b, size_t len);

    /* -- since ABI 1.3: check abi_minor >= 3 before calling -- */
    /**
     * The engine's shared, read-only copy of `s`, kept until the process
     * exits: the same pointer for the same string.  str_set and field_add
     * (its name) store such a pointer as is instead of copying it, and
     * freeing the record leaves it alone.  For the names a source repeats in
     * every record (topic, schema, table, column names), interned once when
     * they are learnt; never for per-record data, which would only grow the
     * table.  NULL when out of memory (copy as before).  A record's strings
     * may thus be shared: replace them with str_set, never write into them.
     */
    const char *(*intern)(const char *s);
} trib_host;

/* ------------------------------------------------------------------ */
/* Role callback tables (any callback marked optional may be NULL)     */
/* ------------------------------------------------------------------ */

/** Source: produces records in its own thread. */
typedef struct trib_source_ops {
    /**
     * Run until host->stopping() or a fatal error; emit records and
     * positions through the host.  Returns TRIB_OK on a requested stop,
     * TRIB_ERR on a fatal error (message logged).
     */
    int (*run)(void *inst);
    /**
     * Everything up to `pos` is delivered: the source may confirm it
     * upstream.  Called from the pipeline thread, concurrently with run().
     */
    void (*commit)(void *inst, uint64_t pos);
    /** Optional: after run() returned and the final commit() was made;
        flush confirmations upstream and close connections. */
    void (*close)(void *inst);
} trib_source_ops;

/** Transform: one record in; changed in place, replaced, or dropped. */
typedef struct trib_transform_ops {
    /**
     * `*rec` may be modified in place, replaced (free the old one with
     * host->record_free) or dropped (free it and set *rec = NULL).
     * Return TRIB_ERR for a record that cannot be transformed (the core
     * applies errors.tolerance); *rec must then still be valid.
     */
    int (*apply)(void *inst, trib_record **rec);
} trib_transform_ops;

/** Sink: delivers batches and acknowledges each record asynchronously. */
typedef struct trib_sink_ops {
    /**
     * Take `n` records (topic, key.data, value.data are rendered by the
     * core's converter).  Must eventually call host->ack for every record,
     * possibly before returning.  Returns TRIB_OK, or TRIB_ERR if the sink
     * is unusable (then it must still ack every record it was given).
     */
    int (*send)(void *inst, trib_record **recs, size_t n);
    /** Wait up to timeout_ms for outstanding acks.  TRIB_OK when none left. */
    int (*flush)(void *inst, int timeout_ms);

    /* -- since ABI 1.2 (read only from plugins built with abi_minor >= 2) -- */
    /**
     * Optional.  For a sink whose send() may return with records not yet
     * acknowledged and that has no thread of its own to finish them (it
     * reads its broker's replies only when called): whenever the core has
     * nothing to hand over while such records are outstanding, it calls
     * drain() instead of sleeping, again and again until they are all
     * acknowledged or a new batch is ready.  Wait up to timeout_ms, and
     * return as soon as some acks were made.  TRIB_OK when none is left.
     * Sinks that ack from their own threads (delivery reports) leave it NULL.
     */
    int (*drain)(void *inst, int timeout_ms);
} trib_sink_ops;

/** Consumer: reads back what the plugin's sink side delivered. */
typedef struct trib_consumer_ops {
    /** Open a consumer of `topic`; NULL on error (message in err). */
    void *(*open)(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                  size_t errlen);
    /**
     * Wait up to timeout_ms for the next message.  Returns 1 with *out set
     * (caller frees with host->record_free), 0 on timeout, TRIB_EOF at the end of a
     * bounded read, TRIB_ERR on a fatal error.
     */
    int (*poll)(void *consumer, int timeout_ms, trib_record **out);
    /** Mark `rec` (and everything before it) processed.  Optional. */
    int (*commit)(void *consumer, const trib_record *rec);
    void (*close)(void *consumer);
    /** Optional: publish `rec` (topic/key/value set) and wait for the ack. */
    int (*produce)(void *inst, const trib_record *rec, int timeout_ms);
} trib_consumer_ops;

/** What the core gives a trainer: a broker endpoint built from `sink:`. */
typedef struct trib_broker {
    void *inst;                      /**< the broker plugin instance */
    const trib_consumer_ops *ops;    /**< its consumer callbacks */
} trib_broker;

/** Trainer: train / predict commands. */
typedef struct trib_trainer_ops {
    /** `tributary train`: returns a process exit status (0 = success). */
    int (*train)(void *inst, const trib_broker *broker);
    /** `tributary predict`; `flags` carry CLI switches (TRIB_PREDICT_*). */
    int (*predict)(void *inst, const trib_broker *broker, unsigned flags, const char *png_dir);
} trib_trainer_ops;

enum { TRIB_PREDICT_SHOW = 1u << 0 };

/* ------------------------------------------------------------------ */
/* The descriptor                                                      */
/* ------------------------------------------------------------------ */
typedef struct trib_plugin {
    uint32_t abi_major;         /**< TRIB_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;
    const char *name;           /**< config name: `plugin: NAME` */
    const char *version;
    const char *description;    /**< one line */
    unsigned roles;             /**< TRIB_ROLE_* bits */
    const trib_option *options; /**< terminated by an entry with name == NULL */

    /**
     * Create an instance.  `ctx` identifies it in host calls; `opts` holds
     * validated option values.  Returns TRIB_OK and sets *inst, or TRIB_ERR
     * with a message in err.  A message that starts with the option's name
     * ("slot: ...", "tables[2] ...") is shown at that option's line in the
     * config; any other at the plugin's section.
     */
    int (*create)(trib_ctx *ctx, const trib_host *host, const trib_opts *opts, void **inst,
                  char *err, size_t errlen);
    /** Optional: connect / start threads.  Called before data flows. */
    int (*start)(void *inst, char *err, size_t errlen);
    void (*destroy)(void *inst);

    const trib_source_ops *source;
    const trib_transform_ops *transform;
    const trib_sink_ops *sink;
    const trib_consumer_ops *consumer;
    const trib_trainer_ops *trainer;
} trib_plugin;

/** Convenience for plugin authors: fill abi_major/abi_minor. */
#define TRIB_PLUGIN_ABI TRIB_ABI_MAJOR, TRIB_ABI_MINOR

/** Room for an LSN as Postgres prints it ("FFFFFFFF/FFFFFFFF") and its NUL. */
#define TRIB_LSN_BUFSZ 18

/**
 * Write `lsn` as Postgres prints it ("16/B374D848": both halves in
 * upper-case hex without leading zeros) into buf (TRIB_LSN_BUFSZ bytes) and
 * return its length.  Header-only (no ABI), and cheap enough for a header
 * on every message.
 */
static inline size_t trib_lsn_format(uint64_t lsn, char *buf)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = buf;
    for (int half = 1; half >= 0; half--) {
        uint32_t v = (uint32_t)(lsn >> (32 * half));
        int shift = 28;
        while (shift > 0 && ((v >> shift) & 15u) == 0)
            shift -= 4;
        for (; shift >= 0; shift -= 4)
            *o++ = hex[(v >> shift) & 15u];
        if (half)
            *o++ = '/';
    }
    *o = '\0';
    return (size_t)(o - buf);
}

#ifdef __cplusplus
}
#endif
#endif /* TRIBUTARY_PLUGIN_H */
