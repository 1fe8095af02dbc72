/*
 * test_pgoutput_host.c — a minimal stand-in for the core that drives the
 * `postgres` source plugin directly, so its behaviour can be tested without
 * the pipeline: back-pressure (emit returning TRIB_RETRY), commits that lag
 * or never come, and stops after N records.
 *
 *   test_pgoutput_host PLUGIN.so key=value... (tables=a,b is a list)
 *
 * Every emitted record is printed to stdout as one JSON line:
 *   {"op":"c","topic":"..","snap":0,"lsn":N,"txid":N,"before":{..},"after":{..}}
 * values: text as a JSON string, bytea as "\\x<hex>", NULL as null,
 * unchanged TOAST as "__unchanged__"; key columns are listed in "key".
 * Positions are printed as {"position":N}.
 *
 * Environment: HOST_STATE_DIR (state_dir), HOST_RETRY_EVERY=N (every Nth record
 * is first refused HOST_RETRY_TIMES times with TRIB_RETRY, each after the
 * emit timeout, as a full queue would), HOST_NO_COMMIT=1 (never call
 * commit), HOST_STOP_AFTER=N (stop after N records), HOST_STOP_FILE=PATH
 * (stop when it exists).  SIGINT/SIGTERM stop too.  Exit 0 when run()
 * returned TRIB_OK, 1 otherwise.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tributary/plugin.h>

struct trib_opts {
    const trib_option *table;
    int n;
    char **keys, **vals;
};

static atomic_int g_stop;
static atomic_uint_fast64_t g_last_pos, g_records, g_committed_records;
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;
static long g_retry_every, g_retry_times, g_stop_after;
static const char *g_stop_file;

static const char *find_val(const trib_opts *o, const char *name, int *given)
{
    for (int i = o->n - 1; i >= 0; i--) /* the last one given wins */
        if (strcmp(o->keys[i], name) == 0)
            return *given = 1, o->vals[i];
    *given = 0;
    for (const trib_option *t = o->table; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t->default_value;
    return NULL;
}

static const char *h_opt_str(const trib_opts *o, const char *n) { int g; return find_val(o, n, &g); }
static int64_t h_opt_int(const trib_opts *o, const char *n)
{
    const char *v = h_opt_str(o, n);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double h_opt_double(const trib_opts *o, const char *n)
{
    const char *v = h_opt_str(o, n);
    return v ? strtod(v, NULL) : 0;
}
static int h_opt_bool(const trib_opts *o, const char *n)
{
    const char *v = h_opt_str(o, n);
    return v && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"));
}
static size_t h_opt_list(const trib_opts *o, const char *n, const char *const **items)
{
    static _Thread_local char *parts[64]; /* test tool: fine */
    static _Thread_local char buf[4096];
    const char *v = h_opt_str(o, n);
    size_t k = 0;
    if (!v)
        return 0;
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p && k < 64;
         p = strtok_r(NULL, ",", &save))
        parts[k++] = p;
    *items = (const char *const *)parts;
    return k;
}
static size_t h_opt_map(const trib_opts *o, const char *n, const char *const **k,
                        const char *const **v) { return 0; }
static int h_opt_given(const trib_opts *o, const char *n) { int g; find_val(o, n, &g); return g; }

static void h_log(trib_ctx *ctx, int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    va_list ap;
    if (level > TRIB_LOG_INFO && !getenv("HOST_DEBUG"))
        return;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_out);
    fprintf(stderr, "[%s] source: ", names[level < 0 || level > 4 ? 4 : level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&g_out);
    va_end(ap);
}

static trib_record *h_record_new(void) { return calloc(1, sizeof(trib_record)); }
static void row_free(trib_row *r)
{
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].data);
    }
    free(r->fields);
}
static void h_record_free(trib_record *r)
{
    if (!r)
        return;
    row_free(&r->before);
    row_free(&r->after);
    free(r->topic);
    free(r->src.name), free(r->src.db), free(r->src.schema), free(r->src.table);
    free(r->key.data), free(r->value.data);
    free(r);
}
static int h_field_add(trib_row *row, const char *name, uint32_t oid, int32_t mod,
                       trib_val_kind kind, const void *data, size_t len, int is_key)
{
    if (row->nfields == row->cap) {
        size_t cap = row->cap ? row->cap * 2 : 8;
        trib_field *f = realloc(row->fields, cap * sizeof *f);
        if (!f)
            return TRIB_ERR;
        row->fields = f, row->cap = cap;
    }
    trib_field *f = &row->fields[row->nfields++];
    memset(f, 0, sizeof *f);
    f->name = strdup(name), f->type_oid = oid, f->type_mod = mod, f->kind = kind;
    f->is_key = is_key, f->len = len;
    if (data || kind == TRIB_VAL_TEXT || kind == TRIB_VAL_BINARY) {
        f->data = malloc(len + 1);
        if (len)
            memcpy(f->data, data, len);
        f->data[len] = '\0';
    }
    return TRIB_OK;
}
static int h_str_set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return s && !*dst ? TRIB_ERR : TRIB_OK;
}

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

static int h_emit(trib_ctx *ctx, trib_record *rec, int timeout_ms)
{
    static _Thread_local long calls, retries;
    if (atomic_load(&g_stop)) {
        h_record_free(rec);
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
            ",\"db\":\"%s\",\"name\":\"%s\"",
            rec->op, rec->topic, rec->src.snapshot, rec->src.lsn, rec->src.commit_lsn,
            rec->src.txid, rec->src.ts_ms, rec->src.db, rec->src.name);
    if (rec->has_before)
        print_row(stdout, "before", &rec->before);
    if (rec->has_after)
        print_row(stdout, "after", &rec->after);
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
    h_record_free(rec);
    uint64_t n = atomic_fetch_add(&g_records, 1) + 1;
    if (g_stop_after && (long)n >= g_stop_after)
        atomic_store(&g_stop, 1);
    return TRIB_OK;
}

static int h_emit_position(trib_ctx *ctx, uint64_t pos, int timeout_ms)
{
    if (atomic_load(&g_stop))
        return TRIB_STOP;
    pthread_mutex_lock(&g_out);
    fprintf(stdout, "{\"position\":%" PRIu64 "}\n", pos);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
    atomic_store(&g_last_pos, pos);
    return TRIB_OK;
}

static int h_stopping(trib_ctx *ctx)
{
    if (g_stop_file && access(g_stop_file, F_OK) == 0)
        atomic_store(&g_stop, 1);
    return atomic_load(&g_stop);
}
static uint64_t h_pending(trib_ctx *ctx)
{
    return atomic_load(&g_records) - atomic_load(&g_committed_records);
}
static const char *h_state_dir(trib_ctx *ctx) { return getenv("HOST_STATE_DIR"); }
static void h_metric(trib_ctx *ctx, const char *n, double v) {}
static const char *h_instance(trib_ctx *ctx) { return "source"; }

static const trib_host host = {
    TRIB_ABI_MAJOR, TRIB_ABI_MINOR, h_log, h_opt_str, h_opt_int, h_opt_double, h_opt_bool,
    h_opt_list, h_opt_map, h_opt_given, h_record_new, h_record_free, NULL, h_field_add, NULL,
    NULL, h_str_set, NULL, h_emit, h_emit_position, h_stopping, h_pending, NULL, h_state_dir,
    h_metric, h_metric, h_instance};

struct committer {
    const trib_plugin *p;
    void *inst;
    atomic_int done;
};

/* The "pipeline": everything printed counts as acknowledged; commit every 50 ms. */
static void *commit_thread(void *arg)
{
    struct committer *c = arg;
    uint64_t last = 0;
    while (!atomic_load(&c->done)) {
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

static void on_signal(int sig) { atomic_store(&g_stop, 1); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN.so key=value...\n", argv[0]);
        return 2;
    }
    void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const trib_plugin *p = dl ? dlsym(dl, TRIB_PLUGIN_SYMBOL) : NULL;
    if (!p) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    trib_opts o = {p->options, 0, calloc((size_t)argc, sizeof(char *)),
                   calloc((size_t)argc, sizeof(char *))};
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        o.keys[o.n] = argv[i], o.vals[o.n++] = eq + 1;
    }
    g_retry_every = getenv("HOST_RETRY_EVERY") ? atol(getenv("HOST_RETRY_EVERY")) : 0;
    g_retry_times = getenv("HOST_RETRY_TIMES") ? atol(getenv("HOST_RETRY_TIMES")) : 1;
    g_stop_after = getenv("HOST_STOP_AFTER") ? atol(getenv("HOST_STOP_AFTER")) : 0;
    g_stop_file = getenv("HOST_STOP_FILE");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    char err[512] = "";
    void *inst = NULL;
    if (p->create(NULL, &host, &o, &inst, err, sizeof err) != TRIB_OK) {
        fprintf(stderr, "create: %s\n", err);
        return 1;
    }
    struct committer c = {p, inst, 0};
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
    p->destroy(inst);
    free(o.keys);
    free(o.vals);
    dlclose(dl);
    fprintf(stderr, "run() returned %d\n", rc);
    return rc == TRIB_OK ? 0 : 1;
}
