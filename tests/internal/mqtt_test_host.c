/*
 * mqtt_test_host.c — a minimal trib_host for driving one plugin without the core.
 *
 * Records are plain calloc'd trib_records; acks are counted per status, and
 * an ack arriving twice for one record is counted in acks_dup (each record
 * carries a marker in core_private that the first ack clears).
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt_test_host.h"

#define TH_MAX_OPTS 32

struct trib_opts {
    int n;
    char *key[TH_MAX_OPTS], *val[TH_MAX_OPTS];
    int given[TH_MAX_OPTS];
    char **list[TH_MAX_OPTS];   /* LIST options: the value split at commas */
    size_t nlist[TH_MAX_OPTS];
    const trib_option *table;
};

struct trib_ctx {
    th_host *th;
};

static th_host *the_host; /* test code: one host per process */
static struct trib_ctx the_ctx;
static char ack_marker;

static void th_log(trib_ctx *ctx, int level, const char *fmt, ...)
{
    if (level > TRIB_LOG_INFO && !ctx->th->verbose) return;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[mqtt %s] ", names[level < 0 || level > 4 ? 0 : level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char *o_lookup(const trib_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], name) == 0) return o->val[i];
    return NULL;
}
static const char *o_str(const trib_opts *o, const char *n) { return o_lookup(o, n); }
static int64_t o_int(const trib_opts *o, const char *n)
{
    const char *v = o_lookup(o, n);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double o_double(const trib_opts *o, const char *n)
{
    const char *v = o_lookup(o, n);
    return v ? strtod(v, NULL) : 0;
}
static int o_bool(const trib_opts *o, const char *n)
{
    const char *v = o_lookup(o, n);
    return v && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"));
}
/* "a,b" is a two-item list, "" an empty one (like the core's defaults). */
static size_t o_list(const trib_opts *o, const char *n, const char *const **items)
{
    trib_opts *m = (trib_opts *)o; /* split lazily, kept until the next th_create */
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->key[i], n) != 0) continue;
        if (!m->list[i]) {
            m->list[i] = calloc(strlen(o->val[i]) + 1, sizeof(char *));
            char *save = NULL, *copy = strdup(o->val[i]);
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                m->list[i][m->nlist[i]++] = strdup(t);
            free(copy);
        }
        *items = (const char *const *)m->list[i];
        return m->nlist[i];
    }
    return 0;
}
static size_t o_map(const trib_opts *o, const char *n, const char *const **k,
                    const char *const **v) { return 0; }
static int o_given(const trib_opts *o, const char *n)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], n) == 0) return o->given[i];
    return 0;
}

static trib_record *r_new(void)
{
    trib_record *r = calloc(1, sizeof *r);
    if (r) r->core_private = &ack_marker;
    return r;
}

static void r_free(trib_record *r)
{
    if (!r) return;
    free(r->topic);
    free(r->key.data);
    free(r->value.data);
    free(r->msg_id);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r);
}

static int b_set(trib_bytes *b, const void *data, size_t len)
{
    free(b->data);
    memset(b, 0, sizeof *b);
    if (!data && !len) return TRIB_OK;
    b->data = malloc(len + 1);
    if (!b->data) return TRIB_ERR;
    if (len) memcpy(b->data, data, len);
    b->data[len] = '\0';
    b->len = len;
    b->set = 1;
    return TRIB_OK;
}

static int s_set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return (!s || *dst) ? TRIB_OK : TRIB_ERR;
}

static int h_add(trib_record *r, const char *name, const void *value, size_t len)
{
    trib_header *h = realloc(r->headers, (r->nheaders + 1) * sizeof *h);
    if (!h) return TRIB_ERR;
    r->headers = h;
    h = &r->headers[r->nheaders];
    h->name = strdup(name);
    h->value = malloc(len + 1);
    if (!h->name || !h->value) return TRIB_ERR;
    memcpy(h->value, value, len);
    h->value[len] = '\0';
    h->len = len;
    r->nheaders++;
    return TRIB_OK;
}

static trib_record *r_dup(const trib_record *src)
{
    trib_record *r = r_new();
    if (!r) return NULL;
    r->op = src->op;
    r->src.lsn = src->src.lsn;
    s_set(&r->topic, src->topic);
    if (src->key.set) b_set(&r->key, src->key.data, src->key.len);
    if (src->value.set) b_set(&r->value, src->value.data, src->value.len);
    for (size_t i = 0; i < src->nheaders; i++)
        h_add(r, src->headers[i].name, src->headers[i].value, src->headers[i].len);
    return r;
}

static int h_stopping(trib_ctx *ctx)
{
    pthread_mutex_lock(&ctx->th->mu);
    int s = ctx->th->stop;
    pthread_mutex_unlock(&ctx->th->mu);
    return s;
}

static void h_ack(trib_ctx *ctx, trib_record *rec, int status, const char *err)
{
    th_host *th = ctx->th;
    pthread_mutex_lock(&th->mu);
    if (rec->core_private != &ack_marker) {
        th->acks_dup++;
    } else {
        rec->core_private = NULL;
        if (status == TRIB_OK) th->acks_ok++;
        else if (status == TRIB_STOP) th->acks_stop++;
        else th->acks_err++;
        if (status != TRIB_OK && err) snprintf(th->last_err, sizeof th->last_err, "%s", err);
    }
    pthread_cond_broadcast(&th->cv);
    pthread_mutex_unlock(&th->mu);
    /* the core frees acked records; so do we (a duplicate ack would be a
       use-after-free that ASan reports) */
    r_free(rec);
}

static const char *h_state_dir(trib_ctx *ctx) { return "/tmp/tributary-mqtt-test"; }
static void h_metric_add(trib_ctx *ctx, const char *name, double v)
{
    if (strcmp(name, "mqtt_resends") == 0) {
        pthread_mutex_lock(&ctx->th->mu);
        ctx->th->resends += (unsigned long)v;
        pthread_mutex_unlock(&ctx->th->mu);
    }
}
static void h_metric_set(trib_ctx *ctx, const char *name, double v) {}
static const char *h_name(trib_ctx *ctx) { return "sink"; }

const char *th_plugin_path(const char *name)
{
    static char buf[1024];
    const char *b = getenv("TRIB_BUILDDIR");
    snprintf(buf, sizeof buf, "%s/plugins/%s/.libs/%s.so", b ? b : ".", name, name);
    return buf;
}

void th_init(th_host *th, const char *so_path)
{
    memset(th, 0, sizeof *th);
    pthread_mutex_init(&th->mu, NULL);
    pthread_cond_init(&th->cv, NULL);
    th->verbose = getenv("TH_VERBOSE") != NULL;
    trib_host *h = &th->host;
    h->abi_major = TRIB_ABI_MAJOR;
    h->abi_minor = TRIB_ABI_MINOR;
    h->log = th_log;
    h->opt_str = o_str;
    h->opt_int = o_int;
    h->opt_double = o_double;
    h->opt_bool = o_bool;
    h->opt_list = o_list;
    h->opt_map = o_map;
    h->opt_given = o_given;
    h->record_new = r_new;
    h->record_free = r_free;
    h->record_dup = r_dup;
    h->bytes_set = b_set;
    h->str_set = s_set;
    h->header_add = h_add;
    h->stopping = h_stopping;
    h->ack = h_ack;
    h->state_dir = h_state_dir;
    h->metric_add = h_metric_add;
    h->metric_set = h_metric_set;
    h->instance_name = h_name;
    th->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!th->dl) {
        fprintf(stderr, "dlopen %s: %s\n", so_path, dlerror());
        exit(2);
    }
    th->plugin = dlsym(th->dl, TRIB_PLUGIN_SYMBOL);
    if (!th->plugin || th->plugin->abi_major != TRIB_ABI_MAJOR) {
        fprintf(stderr, "%s: no compatible descriptor\n", so_path);
        exit(2);
    }
    the_host = th;
    the_ctx.th = th;
}

/* Options: defaults from the plugin's table, then "key=value" overrides. */
void *th_create(th_host *th, const char *const *kv)
{
    static trib_opts o; /* lives as long as the instance; one at a time in tests */
    for (int i = 0; i < o.n; i++) {
        free(o.key[i]);
        free(o.val[i]);
        for (size_t j = 0; j < o.nlist[i]; j++) free(o.list[i][j]);
        free(o.list[i]);
    }
    memset(&o, 0, sizeof o);
    for (const trib_option *op = th->plugin->options; op->name && o.n < TH_MAX_OPTS; op++) {
        if (!op->default_value) continue;
        o.key[o.n] = strdup(op->name);
        o.val[o.n++] = strdup(op->default_value);
    }
    for (; kv && *kv && o.n < TH_MAX_OPTS; kv++) {
        const char *eq = strchr(*kv, '=');
        if (!eq) continue;
        char *k = strndup(*kv, (size_t)(eq - *kv));
        int i;
        for (i = 0; i < o.n && strcmp(o.key[i], k); i++) {}
        if (i == o.n) {
            o.key[o.n++] = k;
        } else {
            free(k);
            free(o.val[i]);
        }
        o.val[i] = strdup(eq + 1);
        o.given[i] = 1;
    }
    void *inst = NULL;
    char err[512] = "";
    if (th->plugin->create(&the_ctx, &th->host, &o, &inst, err, sizeof err) != TRIB_OK) {
        fprintf(stderr, "create: %s\n", err);
        return NULL;
    }
    if (th->plugin->start && th->plugin->start(inst, err, sizeof err) != TRIB_OK) {
        fprintf(stderr, "start: %s\n", err);
        th->plugin->destroy(inst);
        return NULL;
    }
    return inst;
}

void th_destroy(th_host *th, void *inst)
{
    if (inst) th->plugin->destroy(inst);
}

unsigned long th_wait_acks(th_host *th, unsigned long n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&th->mu);
    while (th->acks_ok + th->acks_err + th->acks_stop < n)
        if (pthread_cond_timedwait(&th->cv, &th->mu, &ts) != 0) break;
    unsigned long t = th->acks_ok + th->acks_err + th->acks_stop;
    pthread_mutex_unlock(&th->mu);
    return t;
}

trib_record *th_record(th_host *th, const char *topic, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
    trib_record *r = r_new();
    s_set(&r->topic, topic);
    if (key) b_set(&r->key, key, klen);
    b_set(&r->value, val, vlen);
    return r;
}

void th_set_stop(th_host *th, int stop)
{
    pthread_mutex_lock(&th->mu);
    th->stop = stop;
    pthread_mutex_unlock(&th->mu);
}
