/*
 * test_pgoutput_host.c — drives the `postgres` source plugin in the shared
 * test host (testhost.c) instead of the pipeline, so its behaviour can be
 * tested without it: back-pressure (emit returning TRIB_RETRY), commits that
 * lag or never come, and stops after N records.
 *
 *   test_pgoutput_host PLUGIN.so key=value... (tables=a,b is a list)
 *
 * Every emitted record is printed to stdout as one JSON line:
 *   {"op":"c","topic":"..","snap":0,"lsn":N,"txid":N,"before":{..},"after":{..}}
 * values: text as a JSON string, bytea as "\\x<hex>", NULL as null,
 * unchanged TOAST as "__unchanged__"; key columns are listed in "key".
 * "shared" counts the record's strings that are interned (trib_host.intern,
 * ABI 1.3): topic, the four source names and the field names.
 * Positions are printed as {"position":N}.
 *
 * Environment: HOST_STATE_DIR (state_dir), HOST_RETRY_EVERY=N (every Nth record
 * is first refused HOST_RETRY_TIMES times with TRIB_RETRY, each after the
 * emit timeout, as a full queue would), HOST_NO_COMMIT=1 (never call
 * commit), HOST_STOP_AFTER=N (stop after N records), HOST_STOP_FILE=PATH
 * (stop when it exists), HOST_ABI_MINOR=N (the host says it is 1.N: 2 for an
 * engine without intern).  SIGINT/SIGTERM stop too.  Exit 0 when run()
 * returned TRIB_OK, 1 otherwise.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhost.h"
#include "record.h"

static atomic_int g_signal;
static atomic_uint_fast64_t g_last_pos, g_records, g_committed_records;
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;
static long g_retry_every, g_retry_times, g_stop_after;
static const char *g_stop_file;

static void json_str(FILE *o, const char *s, size_t n)
{
    fputc('"', o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(o, "\\u%04x", c); /* bytes, not code points: good enough to compare */
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static void print_row(FILE *o, const char *name, const trib_row *r)
{
    fprintf(o, ",\"%s\":{", name);
    for (size_t i = 0; i < r->nfields; i++) {
        const trib_field *f = &r->fields[i];
        fprintf(o, "%s\"%s\":", i ? "," : "", f->name);
        if (f->kind == TRIB_VAL_NULL)
            fputs("null", o);
        else if (f->kind == TRIB_VAL_UNCHANGED)
            fputs("\"__unchanged__\"", o);
        else if (f->kind == TRIB_VAL_BINARY) {
            fputs("\"\\\\x", o);
            for (size_t k = 0; k < f->len; k++)
                fprintf(o, "%02x", (unsigned char)f->data[k]);
            fputc('"', o);
        } else
            json_str(o, f->data, f->len);
    }
    fputc('}', o);
    fprintf(o, ",\"%s_key\":[", name);
    for (size_t i = 0, n = 0; i < r->nfields; i++)
        if (r->fields[i].is_key)
            fprintf(o, "%s\"%s\"", n++ ? "," : "", r->fields[i].name);
    fputc(']', o);
}

static int shared_strings(const trib_record *r)
{
    int n = rec_interned(r->topic) + rec_interned(r->src.name) + rec_interned(r->src.db) +
            rec_interned(r->src.schema) + rec_interned(r->src.table);
    for (size_t i = 0; i < r->before.nfields; i++)
        n += rec_interned(r->before.fields[i].name);
    for (size_t i = 0; i < r->after.nfields; i++)
        n += rec_interned(r->after.fields[i].name);
    return n;
}

static int h_emit(trib_ctx *ctx, trib_record *rec, int timeout_ms)
{
    static _Thread_local long calls, retries;
    if (th_host.stopping(ctx)) {
        th_host.record_free(rec);
        return TRIB_STOP;
    }
    if (retries == 0 && g_retry_every && ++calls % g_retry_every == 0)
        retries = g_retry_times;
    if (retries > 0) { /* the queue is "full": block, then ask to be called again */
        retries--;
        usleep((useconds_t)timeout_ms * 1000);
        return TRIB_RETRY;
    }
    pthread_mutex_lock(&g_out);
    fprintf(stdout, "{\"op\":\"%c\",\"topic\":\"%s\",\"snap\":%d,\"lsn\":%" PRIu64
            ",\"commit_lsn\":%" PRIu64 ",\"txid\":%" PRId64 ",\"ts_ms\":%" PRId64
            ",\"db\":\"%s\",\"name\":\"%s\",\"shared\":%d",
            rec->op, rec->topic, rec->src.snapshot, rec->src.lsn, rec->src.commit_lsn,
            rec->src.txid, rec->src.ts_ms, rec->src.db, rec->src.name, shared_strings(rec));
    if (rec->has_before)
        print_row(stdout, "before", &rec->before);
    if (rec->has_after)
        print_row(stdout, "after", &rec->after);
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
    th_host.record_free(rec);
    uint64_t n = atomic_fetch_add(&g_records, 1) + 1;
    if (g_stop_after && (long)n >= g_stop_after)
        th_set_stopping(ctx, 1);
    return TRIB_OK;
}

static int h_emit_position(trib_ctx *ctx, uint64_t pos, int timeout_ms)
{
    if (th_host.stopping(ctx))
        return TRIB_STOP;
    pthread_mutex_lock(&g_out);
    fprintf(stdout, "{\"position\":%" PRIu64 "}\n", pos);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
    atomic_store(&g_last_pos, pos);
    return TRIB_OK;
}

static uint64_t h_pending(trib_ctx *ctx)
{
    return atomic_load(&g_records) - atomic_load(&g_committed_records);
}

struct committer {
    const trib_plugin *p;
    void *inst;
    trib_ctx *ctx;
    atomic_int done;
};

/* The "pipeline": everything printed counts as acknowledged; commit every
 * 50 ms.  It also turns a signal or the stop file into host->stopping. */
static void *commit_thread(void *arg)
{
    struct committer *c = arg;
    uint64_t last = 0;
    while (!atomic_load(&c->done)) {
        if (atomic_load(&g_signal) || (g_stop_file && access(g_stop_file, F_OK) == 0))
            th_set_stopping(c->ctx, 1);
        uint64_t records = atomic_load(&g_records), pos = atomic_load(&g_last_pos);
        if (pos > last && !getenv("HOST_NO_COMMIT")) {
            c->p->source->commit(c->inst, pos);
            last = pos;
        }
        atomic_store(&g_committed_records, records);
        usleep(50000);
    }
    return NULL;
}

static void on_signal(int sig) { atomic_store(&g_signal, 1); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN.so key=value...\n", argv[0]);
        return 2;
    }
    const trib_plugin *p = th_load(argv[1]); /* exits 2 when it cannot */
    th_section *s = th_section_new();
    for (int i = 2; i < argc; i++)
        th_set_kv(s, argv[i]); /* the last one given wins */
    g_retry_every = getenv("HOST_RETRY_EVERY") ? atol(getenv("HOST_RETRY_EVERY")) : 0;
    g_retry_times = getenv("HOST_RETRY_TIMES") ? atol(getenv("HOST_RETRY_TIMES")) : 1;
    g_stop_after = getenv("HOST_STOP_AFTER") ? atol(getenv("HOST_STOP_AFTER")) : 0;
    g_stop_file = getenv("HOST_STOP_FILE");
    if (getenv("HOST_ABI_MINOR"))
        th_host.abi_minor = (uint32_t)atoi(getenv("HOST_ABI_MINOR"));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    trib_ctx *ctx = th_ctx_new("source");
    th_set_state_dir(ctx, getenv("HOST_STATE_DIR"));
    th_set_source(ctx, &(th_source_hooks){h_emit, h_emit_position, h_pending});
    char err[512] = "";
    int created = th_create(ctx, p, s, 0, err, sizeof err);
    th_section_free(s);
    if (created != TRIB_OK) {
        fprintf(stderr, "create: %s\n", err);
        th_ctx_free(ctx);
        return 1;
    }
    void *inst = th_inst(ctx);
    struct committer c = {p, inst, ctx, 0};
    pthread_t th;
    pthread_create(&th, NULL, commit_thread, &c);
    int rc = p->source->run(inst);
    usleep(120000); /* let the committer catch up, as the core would before close */
    atomic_store(&c.done, 1);
    pthread_join(th, NULL);
    if (!getenv("HOST_NO_COMMIT"))
        p->source->commit(inst, atomic_load(&g_last_pos));
    if (p->source->close)
        p->source->close(inst);
    th_ctx_free(ctx);
    fprintf(stderr, "run() returned %d\n", rc);
    return rc == TRIB_OK ? 0 : 1;
}
