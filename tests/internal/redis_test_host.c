/*
 * tests/internal/redis_test_host.c — the minimal host of redis_test_host.h.
 * Just enough of trib_host for the redis plugin's tests: typed options with
 * defaults, record allocation, acks counted per record, a captured log.
 */
#include "redis_test_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void th_ctx_init(struct trib_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    pthread_mutex_init(&ctx->lock, NULL);
}

void th_ctx_free(struct trib_ctx *ctx)
{
    free(ctx->logbuf);
    pthread_mutex_destroy(&ctx->lock);
}

void th_opts_init(struct trib_opts *o, const trib_option *table)
{
    memset(o, 0, sizeof *o);
    o->table = table;
}

void th_opt(struct trib_opts *o, const char *name, const char *value)
{
    if (o->n < TH_MAX_OPTS) {
        o->names[o->n] = name;
        o->values[o->n] = value;
        o->n++;
    }
}

int th_log_contains(struct trib_ctx *ctx, const char *s)
{
    return ctx->logbuf && strstr(ctx->logbuf, s) != NULL;
}

static void th_log(trib_ctx *ctx, int level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%s] %s\n", level >= 0 && level <= 4 ? names[level] : "?", line);
    pthread_mutex_lock(&ctx->lock);
    size_t n = strlen(line);
    char *p = realloc(ctx->logbuf, ctx->loglen + n + 2);
    if (p) {
        memcpy(p + ctx->loglen, line, n);
        p[ctx->loglen + n] = '\n';
        p[ctx->loglen + n + 1] = '\0';
        ctx->logbuf = p;
        ctx->loglen += n + 1;
    }
    pthread_mutex_unlock(&ctx->lock);
}

static const char *opt_raw(const trib_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->names[i], name) == 0)
            return o->values[i];
    for (const trib_option *t = o->table; t && t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t->default_value;
    return NULL;
}

static const char *th_opt_str(const trib_opts *o, const char *name)
{
    return opt_raw(o, name);
}

static int64_t th_opt_int(const trib_opts *o, const char *name)
{
    const char *v = opt_raw(o, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

static double th_opt_double(const trib_opts *o, const char *name)
{
    const char *v = opt_raw(o, name);
    return v ? strtod(v, NULL) : 0;
}

static int th_opt_bool(const trib_opts *o, const char *name)
{
    const char *v = opt_raw(o, name);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0);
}

static int th_opt_given(const trib_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->names[i], name) == 0)
            return 1;
    return 0;
}

static trib_record *th_record_new(void)
{
    return calloc(1, sizeof(trib_record));
}

static void row_free(trib_row *r)
{
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].data);
    }
    free(r->fields);
}

static void th_record_free(trib_record *rec)
{
    if (!rec)
        return;
    row_free(&rec->before);
    row_free(&rec->after);
    free(rec->topic);
    free(rec->key.data);
    free(rec->value.data);
    for (size_t i = 0; i < rec->nheaders; i++) {
        free(rec->headers[i].name);
        free(rec->headers[i].value);
    }
    free(rec->headers);
    free(rec->msg_id);
    free(rec);
}

static int th_bytes_set(trib_bytes *b, const void *data, size_t len)
{
    free(b->data);
    memset(b, 0, sizeof *b);
    if (!data && len == 0)
        return TRIB_OK;
    if (!(b->data = malloc(len + 1)))
        return TRIB_ERR;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    b->len = len;
    b->set = 1;
    return TRIB_OK;
}

static int th_str_set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return !s || *dst ? TRIB_OK : TRIB_ERR;
}

static int th_header_add(trib_record *rec, const char *name, const void *value, size_t len)
{
    trib_header *h = realloc(rec->headers, (rec->nheaders + 1) * sizeof *h);
    if (!h)
        return TRIB_ERR;
    rec->headers = h;
    h = &rec->headers[rec->nheaders];
    h->name = strdup(name);
    h->value = malloc(len + 1);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return TRIB_ERR;
    }
    memcpy(h->value, value, len);
    h->value[len] = '\0';
    h->len = len;
    rec->nheaders++;
    return TRIB_OK;
}

static int th_stopping(trib_ctx *ctx)
{
    return ctx->stopping;
}

static void th_ack_fn(trib_ctx *ctx, trib_record *rec, int status, const char *errmsg)
{
    th_ack *a = rec->core_private;
    pthread_mutex_lock(&ctx->lock);
    ctx->nacks++;
    if (status == TRIB_OK)
        ctx->acks_ok++;
    else if (status == TRIB_STOP)
        ctx->acks_stop++;
    else
        ctx->acks_err++;
    if (status == TRIB_ERR && errmsg)
        snprintf(ctx->last_err, sizeof ctx->last_err, "%s", errmsg);
    if (a) {
        a->count++;
        a->status = status;
    }
    pthread_mutex_unlock(&ctx->lock);
}

static void th_metric(trib_ctx *ctx, const char *name, double v) {}
static const char *th_state_dir(trib_ctx *ctx)
{
    return "/tmp";
}
static const char *th_instance_name(trib_ctx *ctx)
{
    return "sink";
}

const trib_host th_host = {
    .abi_major = TRIB_ABI_MAJOR,
    .abi_minor = TRIB_ABI_MINOR,
    .log = th_log,
    .opt_str = th_opt_str,
    .opt_int = th_opt_int,
    .opt_double = th_opt_double,
    .opt_bool = th_opt_bool,
    .opt_given = th_opt_given,
    .record_new = th_record_new,
    .record_free = th_record_free,
    .bytes_set = th_bytes_set,
    .str_set = th_str_set,
    .header_add = th_header_add,
    .stopping = th_stopping,
    .ack = th_ack_fn,
    .state_dir = th_state_dir,
    .metric_add = th_metric,
    .metric_set = th_metric,
    .instance_name = th_instance_name,
};
