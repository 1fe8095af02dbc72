/*
 * tests/internal/testhost.h — the one stand-in for the core that the unit
 * tests and test drivers use to drive a plugin without the engine.
 *
 * It is built on the core library (core/libtribcore.la): plugins are loaded
 * by core/loader.c, options are validated and typed by core/options.c from a
 * config section built in code (as if read from YAML), records are
 * core/record.c's, and log lines are printed by core/log.c.  What it adds is
 * what tests check: every ack (per record seq and per status, duplicates
 * counted), every log line (the text, and a count per level), the metrics,
 * and stopping on demand.  The source side (emit, emit_position, pending) is
 * left to hooks the test provides.
 *
 * Log lines up to INFO are printed on stderr; set TH_DEBUG=1 for all.
 */
#ifndef TRIB_TEST_HOST_H
#define TRIB_TEST_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <tributary/plugin.h>

/** The host table handed to plugins: the core's (core/host.c), with the
 *  functions that depend on the context replaced (set up before main). */
extern trib_host th_host;

/* ---- plugins --------------------------------------------------------- */

/** Load a plugin with the core's loader; exits with status 2 on failure. */
const trib_plugin *th_load(const char *path);
/** $TRIB_BUILDDIR/plugins/NAME/.libs/NAME.so, else transforms/NAME/... (TRIB_BUILDDIR defaults to "."). */
const char *th_plugin_path(const char *name);

/* ---- config sections: what the YAML would hold under `sink:` ---------- */

typedef struct th_section th_section;
th_section *th_section_new(void);
void th_section_free(th_section *s);
/** Option `name` = `value`; a later value replaces an earlier one. */
void th_set(th_section *s, const char *name, const char *value);
/** th_set from "name=value"; returns -1 (and sets nothing) without a '='. */
int th_set_kv(th_section *s, const char *kv);
/** Add `key: value` to the mapping option `name` (e.g. kafka's passthrough). */
void th_set_map(th_section *s, const char *name, const char *key, const char *value);

/* ---- instances: one context per plugin instance ----------------------- */

/** A context; `name` is the instance name ("sink", "source", ...). */
trib_ctx *th_ctx_new(const char *name);
/** Destroys the instance, if any, and everything the context captured. */
void th_ctx_free(trib_ctx *c);
/**
 * Options from `s` (NULL: none) through the core's validation, then
 * p->create and, when `start` is nonzero, p->start.  TRIB_OK, or TRIB_ERR
 * with the message in err (and no instance left).
 */
int th_create(trib_ctx *c, const trib_plugin *p, const th_section *s, int start, char *err,
              size_t errlen);
/** The instance made by th_create (NULL if none). */
void *th_inst(trib_ctx *c);
/** Destroy the instance and its options; what the context captured stays. */
void th_destroy(trib_ctx *c);

/** What host->stopping returns from now on. */
void th_set_stopping(trib_ctx *c, int on);
/** What host->state_dir returns (copied; NULL: none).  Default "/tmp". */
void th_set_state_dir(trib_ctx *c, const char *dir);

/** The source side, played by the test.  Unset: emit frees the record and
 *  fails (TRIB_ERR), as the core does outside a pipeline; pending is 0. */
typedef struct th_source_hooks {
    int (*emit)(trib_ctx *c, trib_record *rec, int timeout_ms);
    int (*emit_position)(trib_ctx *c, uint64_t pos, int timeout_ms);
    uint64_t (*pending)(trib_ctx *c);
} th_source_hooks;
void th_set_source(trib_ctx *c, const th_source_hooks *h);

/* ---- records ---------------------------------------------------------- */

/** A record with `topic`, `key` and `value` (NULL: left unset). */
trib_record *th_record(const char *topic, const void *key, size_t klen, const void *value,
                       size_t vlen);

/* ---- acks: the host frees an acked record, as the core does ----------- */

#define TH_NOT_ACKED 1
/** All ack calls so far, duplicates included. */
int th_ack_count(trib_ctx *c);
/** First acks of a record with `status` (TRIB_OK, TRIB_ERR, TRIB_STOP). */
int th_acks(trib_ctx *c, int status);
/** Acks of a record (by seq) that was acked before. */
int th_ack_dups(trib_ctx *c);
/** Status of the first ack of record `seq`; TH_NOT_ACKED if none. */
int th_ack_status(trib_ctx *c, uint64_t seq);
/** How often record `seq` was acked. */
int th_ack_times(trib_ctx *c, uint64_t seq);
/** errmsg of the last TRIB_ERR ack ("(none)" if it had none), "" before one. */
const char *th_last_error(trib_ctx *c);

/* ---- log and metrics -------------------------------------------------- */

/** Whether a line logged through `c` so far contains `s` (safe while plugin threads log). */
int th_log_contains(trib_ctx *c, const char *s);
/** Lines logged at `level` (TRIB_LOG_*). */
int th_log_count(trib_ctx *c, int level);
/** A counter (metric_add) or gauge (metric_set); 0 if never set. */
double th_metric(trib_ctx *c, const char *name);

void th_sleep_ms(int ms);

#endif
