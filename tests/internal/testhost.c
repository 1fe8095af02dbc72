/*
 * tests/internal/testhost.c — the shared test host (see testhost.h): the
 * core's loader, options, records and log, plus what tests assert on.
 * Test code: simple, not fast.
 */
#include "testhost.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cfg.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "record.h"
#include "util.h"

/* ---- plugins --------------------------------------------------------- */

const trib_plugin *th_load(const char *path)
{
    char err[1024];
    const plugin_lib *lib = loader_load_file(path, err, sizeof err);
    if (!lib) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return lib->desc;
}

const char *th_plugin_path(const char *name)
{
    static char buf[4096];
    const char *b = getenv("TRIB_BUILDDIR");
    snprintf(buf, sizeof buf, "%s/plugins/%s/.libs/%s.so", b ? b : ".", name, name);
    if (access(buf, R_OK) != 0) /* a transform */
        snprintf(buf, sizeof buf, "%s/transforms/%s/.libs/%s.so", b ? b : ".", name, name);
    return buf;
}

/* ---- config sections: written as YAML, read by core/cfg.c -------------- */

typedef struct th_entry {
    char *name, *key; /* key set: an entry of the mapping option `name` */
    char *value;
} th_entry;

struct th_section {
    th_entry *e;
    size_t n;
};

th_section *th_section_new(void)
{
    return xcalloc(1, sizeof(th_section));
}

void th_section_free(th_section *s)
{
    for (size_t i = 0; s && i < s->n; i++) {
        free(s->e[i].name);
        free(s->e[i].key);
        free(s->e[i].value);
    }
    if (s)
        free(s->e);
    free(s);
}

static void put(th_section *s, const char *name, const char *key, const char *value)
{
    th_entry *e = NULL;
    for (size_t i = 0; i < s->n && !e; i++)
        if (strcmp(s->e[i].name, name) == 0 && !s->e[i].key == !key &&
            (!key || strcmp(s->e[i].key, key) == 0))
            e = &s->e[i];
    if (!e) {
        s->e = xrealloc(s->e, (s->n + 1) * sizeof *s->e);
        e = &s->e[s->n++];
        e->name = xstrdup(name);
        e->key = key ? xstrdup(key) : NULL;
        e->value = NULL;
    }
    free(e->value);
    e->value = xstrdup(value);
}

void th_set(th_section *s, const char *name, const char *value)
{
    put(s, name, NULL, value);
}

int th_set_kv(th_section *s, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return -1;
    char *name = xstrndup(kv, (size_t)(eq - kv));
    put(s, name, NULL, eq + 1);
    free(name);
    return 0;
}

void th_set_map(th_section *s, const char *name, const char *key, const char *value)
{
    put(s, name, key, value);
}

/* `key: value` with both double-quoted (JSON escapes are YAML's too) and
 * every $ doubled, so that the value is read back as given, not ${VAR}-substituted. */
static void yaml_pair(strbuf *b, const char *indent, const char *key, const char *value)
{
    strbuf v;
    sb_init(&v);
    for (const char *p = value; *p; p++) {
        if (*p == '$')
            sb_putc(&v, '$');
        sb_putc(&v, *p);
    }
    sb_puts(b, indent);
    sb_json_str(b, key, strlen(key));
    sb_puts(b, ": ");
    sb_json_str(b, v.data ? v.data : "", v.len);
    sb_putc(b, '\n');
    sb_free(&v);
}

/* The section as the YAML mapping a config file would hold. */
static char *section_yaml(const th_section *s, size_t *len)
{
    strbuf b;
    sb_init(&b);
    for (size_t i = 0; i < s->n; i++) {
        const th_entry *e = &s->e[i];
        if (!e->key) {
            yaml_pair(&b, "", e->name, e->value);
            continue;
        }
        size_t first = 0; /* a mapping is written once, at its first key */
        while (!s->e[first].key || strcmp(s->e[first].name, e->name) != 0)
            first++;
        if (first < i)
            continue;
        sb_json_str(&b, e->name, strlen(e->name));
        sb_puts(&b, ":\n");
        for (size_t j = i; j < s->n; j++)
            if (s->e[j].key && strcmp(s->e[j].name, e->name) == 0)
                yaml_pair(&b, "  ", s->e[j].key, s->e[j].value);
    }
    return sb_steal(&b, len);
}

/* ---- contexts ---------------------------------------------------------- */

typedef struct th_metric_val {
    char *name;
    double v;
} th_metric_val;

struct trib_ctx {
    char *name;
    const trib_plugin *p;
    void *inst;
    trib_opts *opts;
    th_source_hooks src;
    char *state_dir;
    pthread_mutex_t mu;
    int stopping;
    /* acks */
    int nacks, ndups, by_status[3]; /* OK, ERR (and any other), STOP */
    int *status, *times;            /* by seq */
    size_t nseq;
    char last_err[512];
    /* log */
    strbuf log;
    int per_level[5];
    /* metrics */
    th_metric_val *metrics;
    size_t nmetrics;
};

trib_ctx *th_ctx_new(const char *name)
{
    trib_ctx *c = xcalloc(1, sizeof *c);
    c->name = xstrdup(name);
    c->state_dir = xstrdup("/tmp");
    pthread_mutex_init(&c->mu, NULL);
    sb_init(&c->log);
    if (getenv("TH_DEBUG"))
        log_set_level(TRIB_LOG_TRACE);
    return c;
}

void th_ctx_free(trib_ctx *c)
{
    if (!c)
        return;
    th_destroy(c);
    pthread_mutex_destroy(&c->mu);
    free(c->name);
    free(c->state_dir);
    free(c->status);
    free(c->times);
    sb_free(&c->log);
    for (size_t i = 0; i < c->nmetrics; i++)
        free(c->metrics[i].name);
    free(c->metrics);
    free(c);
}

int th_create(trib_ctx *c, const trib_plugin *p, const th_section *s, int start, char *err,
              size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    th_destroy(c);
    config *cfg = NULL;
    if (s && s->n) {
        size_t len;
        char *yaml = section_yaml(s, &len);
        cfg = config_parse("test", yaml, len, err, errlen);
        free(yaml);
        if (!cfg)
            return TRIB_ERR;
    }
    c->opts = opts_build(p->options, cfg ? cfg->root : NULL, NULL, c->name, err, errlen);
    config_free(cfg);
    if (!c->opts)
        return TRIB_ERR;
    c->p = p;
    if (p->create(c, &th_host, c->opts, &c->inst, err, errlen) != TRIB_OK) {
        c->inst = NULL;
        th_destroy(c);
        return TRIB_ERR;
    }
    if (start && p->start && p->start(c->inst, err, errlen) != TRIB_OK) {
        th_destroy(c);
        return TRIB_ERR;
    }
    return TRIB_OK;
}

void *th_inst(trib_ctx *c)
{
    return c->inst;
}

void th_destroy(trib_ctx *c)
{
    if (c->inst && c->p->destroy)
        c->p->destroy(c->inst);
    c->inst = NULL;
    opts_free(c->opts);
    c->opts = NULL;
}

void th_set_stopping(trib_ctx *c, int on)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = on;
    pthread_mutex_unlock(&c->mu);
}

void th_set_state_dir(trib_ctx *c, const char *dir)
{
    free(c->state_dir);
    c->state_dir = dir ? xstrdup(dir) : NULL;
}

void th_set_source(trib_ctx *c, const th_source_hooks *h)
{
    c->src = *h;
}

trib_record *th_record(const char *topic, const void *key, size_t klen, const void *value,
                       size_t vlen)
{
    trib_record *r = rec_new();
    str_set(&r->topic, topic);
    if (key)
        bytes_set(&r->key, key, klen);
    if (value)
        bytes_set(&r->value, value, vlen);
    return r;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- host functions ----------------------------------------------------- */

static void h_log(trib_ctx *c, int level, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (level < TRIB_LOG_ERROR)
        level = TRIB_LOG_ERROR;
    if (level > TRIB_LOG_TRACE)
        level = TRIB_LOG_TRACE;
    if (c) {
        pthread_mutex_lock(&c->mu);
        sb_puts(&c->log, line);
        sb_putc(&c->log, '\n');
        c->per_level[level]++;
        pthread_mutex_unlock(&c->mu);
    }
    trib_log(level, c ? c->name : NULL, "%s", line);
}

static int h_emit(trib_ctx *c, trib_record *rec, int timeout_ms)
{
    if (c->src.emit)
        return c->src.emit(c, rec, timeout_ms);
    rec_free(rec);
    return TRIB_ERR;
}

static int h_emit_position(trib_ctx *c, uint64_t pos, int timeout_ms)
{
    return c->src.emit_position ? c->src.emit_position(c, pos, timeout_ms) : TRIB_ERR;
}

static int h_stopping(trib_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    int s = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static uint64_t h_pending(trib_ctx *c)
{
    return c->src.pending ? c->src.pending(c) : 0;
}

static void h_ack(trib_ctx *c, trib_record *rec, int status, const char *errmsg)
{
    pthread_mutex_lock(&c->mu);
    if (rec->seq >= c->nseq) {
        size_t n = rec->seq + 1 > 2 * c->nseq ? rec->seq + 1 : 2 * c->nseq;
        c->status = xrealloc(c->status, n * sizeof *c->status);
        c->times = xrealloc(c->times, n * sizeof *c->times);
        for (size_t i = c->nseq; i < n; i++)
            c->status[i] = TH_NOT_ACKED, c->times[i] = 0;
        c->nseq = n;
    }
    c->nacks++;
    if (c->times[rec->seq]++) {
        c->ndups++;
    } else {
        c->status[rec->seq] = status;
        c->by_status[status == TRIB_OK ? 0 : status == TRIB_STOP ? 2 : 1]++;
    }
    if (status == TRIB_ERR)
        snprintf(c->last_err, sizeof c->last_err, "%s", errmsg ? errmsg : "(none)");
    pthread_mutex_unlock(&c->mu);
    rec_free(rec);
}

static const char *h_state_dir(trib_ctx *c)
{
    return c->state_dir;
}

static th_metric_val *metric_slot(trib_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->nmetrics; i++)
        if (strcmp(c->metrics[i].name, name) == 0)
            return &c->metrics[i];
    c->metrics = xrealloc(c->metrics, (c->nmetrics + 1) * sizeof *c->metrics);
    c->metrics[c->nmetrics].name = xstrdup(name);
    c->metrics[c->nmetrics].v = 0;
    return &c->metrics[c->nmetrics++];
}

static void h_metric_add(trib_ctx *c, const char *name, double v)
{
    pthread_mutex_lock(&c->mu);
    metric_slot(c, name)->v += v;
    pthread_mutex_unlock(&c->mu);
}

static void h_metric_set(trib_ctx *c, const char *name, double v)
{
    pthread_mutex_lock(&c->mu);
    metric_slot(c, name)->v = v;
    pthread_mutex_unlock(&c->mu);
}

static const char *h_instance_name(trib_ctx *c)
{
    return c->name;
}

/* The core's own host table (core/host.c): its option and record functions
 * are used as they are; what depends on the context is replaced. */
extern const trib_host trib_host_table;
trib_host th_host;

__attribute__((constructor)) static void th_host_init(void)
{
    th_host = trib_host_table;
    th_host.log = h_log;
    th_host.emit = h_emit;
    th_host.emit_position = h_emit_position;
    th_host.stopping = h_stopping;
    th_host.pending = h_pending;
    th_host.ack = h_ack;
    th_host.state_dir = h_state_dir;
    th_host.metric_add = h_metric_add;
    th_host.metric_set = h_metric_set;
    th_host.instance_name = h_instance_name;
}

/* ---- what tests assert on ---------------------------------------------- */

static int locked_int(trib_ctx *c, const int *p)
{
    pthread_mutex_lock(&c->mu);
    int v = *p;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int th_ack_count(trib_ctx *c)
{
    return locked_int(c, &c->nacks);
}

int th_acks(trib_ctx *c, int status)
{
    return locked_int(c, &c->by_status[status == TRIB_OK ? 0 : status == TRIB_STOP ? 2 : 1]);
}

int th_ack_dups(trib_ctx *c)
{
    return locked_int(c, &c->ndups);
}

int th_ack_status(trib_ctx *c, uint64_t seq)
{
    pthread_mutex_lock(&c->mu);
    int v = seq < c->nseq ? c->status[seq] : TH_NOT_ACKED;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int th_ack_times(trib_ctx *c, uint64_t seq)
{
    pthread_mutex_lock(&c->mu);
    int v = seq < c->nseq ? c->times[seq] : 0;
    pthread_mutex_unlock(&c->mu);
    return v;
}

const char *th_last_error(trib_ctx *c)
{
    return c->last_err;
}

int th_log_contains(trib_ctx *c, const char *s)
{
    pthread_mutex_lock(&c->mu);
    int found = c->log.data && strstr(c->log.data, s) != NULL;
    pthread_mutex_unlock(&c->mu);
    return found;
}

int th_log_count(trib_ctx *c, int level)
{
    return level >= 0 && level <= TRIB_LOG_TRACE ? locked_int(c, &c->per_level[level]) : 0;
}

double th_metric(trib_ctx *c, const char *name)
{
    double v = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nmetrics; i++)
        if (strcmp(c->metrics[i].name, name) == 0)
            v = c->metrics[i].v;
    pthread_mutex_unlock(&c->mu);
    return v;
}
