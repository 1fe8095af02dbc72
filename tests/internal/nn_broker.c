/*
 * nn_fakehost.c — the fake core and in-memory broker for the trainer's unit
 * tests (see nn_fakehost.h).
 */
#include "nn_fakehost.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- options ---- */
struct trib_opts {
    const trib_plugin *p;
    const char *const *kv;
};

trib_opts *fake_opts_new(const trib_plugin *p, const char *const *kv)
{
    trib_opts *o = calloc(1, sizeof *o);
    o->p = p;
    o->kv = kv;
    return o;
}

void fake_opts_free(trib_opts *o)
{
    free(o);
}

static const char *lookup(const trib_opts *o, const char *name, int *given)
{
    size_t n = strlen(name);
    for (const char *const *kv = o->kv; kv && *kv; kv++)
        if (!strncmp(*kv, name, n) && (*kv)[n] == '=') {
            *given = 1;
            return *kv + n + 1;
        }
    *given = 0;
    for (const trib_option *op = o->p->options; op->name; op++)
        if (!strcmp(op->name, name))
            return op->default_value;
    return NULL;
}

static const char *opt_str(const trib_opts *o, const char *name)
{
    int g;
    return lookup(o, name, &g);
}
static int64_t opt_int(const trib_opts *o, const char *name)
{
    const char *v = opt_str(o, name);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double opt_double(const trib_opts *o, const char *name)
{
    const char *v = opt_str(o, name);
    return v ? strtod(v, NULL) : 0;
}
static int opt_bool(const trib_opts *o, const char *name)
{
    const char *v = opt_str(o, name);
    return v && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"));
}
static int opt_given(const trib_opts *o, const char *name)
{
    int g;
    lookup(o, name, &g);
    return g;
}

/* ---- log ---- */
static void fake_log(trib_ctx *ctx, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (level == TRIB_LOG_WARN) {
        ctx->warnings++;
        snprintf(ctx->last_warning, sizeof ctx->last_warning, "%s", buf);
    }
    if (level == TRIB_LOG_ERROR)
        ctx->errors++;
    fprintf(stderr, "[trainer %d] %s\n", level, buf);
}

/* ---- records ---- */
static trib_record *record_new(void)
{
    return calloc(1, sizeof(trib_record));
}
static void record_free(trib_record *r)
{
    if (!r)
        return;
    free(r->topic);
    free(r->key.data);
    free(r->value.data);
    free(r->msg_id);
    free(r);
}
static int bytes_set(trib_bytes *b, const void *data, size_t len)
{
    free(b->data);
    memset(b, 0, sizeof *b);
    if (!data && !len)
        return TRIB_OK;
    b->data = malloc(len + 1);
    memcpy(b->data, data, len);
    b->data[len] = 0;
    b->len = len;
    b->set = 1;
    return TRIB_OK;
}
static int str_set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return TRIB_OK;
}
static int stopping(trib_ctx *ctx)
{
    return ctx->stopping;
}

const trib_host fake_host = {
    .abi_major = TRIB_ABI_MAJOR, .abi_minor = TRIB_ABI_MINOR, .log = fake_log,
    .opt_str = opt_str, .opt_int = opt_int, .opt_double = opt_double, .opt_bool = opt_bool,
    .opt_given = opt_given, .record_new = record_new, .record_free = record_free,
    .bytes_set = bytes_set, .str_set = str_set, .stopping = stopping,
};

/* ---- broker ---- */
fake_topic *fake_topic_get(fake_broker *b, const char *name, int create)
{
    for (int i = 0; i < b->ntopics; i++)
        if (!strcmp(b->topics[i].name, name))
            return &b->topics[i];
    if (!create || b->ntopics == 8)
        return NULL;
    fake_topic *t = &b->topics[b->ntopics++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

void fake_topic_add(fake_topic *t, const char *key, const void *value, size_t vlen)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->msgs = realloc(t->msgs, t->cap * sizeof *t->msgs);
    }
    fake_msg *m = &t->msgs[t->n++];
    m->key = key ? strdup(key) : NULL;
    m->klen = key ? strlen(key) : 0;
    m->value = malloc(vlen + 1);
    memcpy(m->value, value, vlen);
    m->value[vlen] = 0;
    m->vlen = vlen;
}

void fake_add_image(fake_topic *t, int label, const unsigned char *px, int raw)
{
    char key[16], buf[784 * 4 + 1];
    snprintf(key, sizeof key, "%d", label);
    if (raw) {
        fake_topic_add(t, key, px, 784);
        return;
    }
    size_t n = 0;
    for (int i = 0; i < 784; i++)
        n += (size_t)sprintf(buf + n, i ? ",%u" : "%u", px[i]);
    fake_topic_add(t, key, buf, n);
}

void fake_broker_free(fake_broker *b)
{
    for (int i = 0; i < b->ntopics; i++) {
        for (size_t j = 0; j < b->topics[i].n; j++) {
            free(b->topics[i].msgs[j].key);
            free(b->topics[i].msgs[j].value);
        }
        free(b->topics[i].msgs);
    }
    b->ntopics = 0;
}

typedef struct fake_consumer {
    fake_broker *b;
    char topic[256];
    size_t pos, end;
    int bounded;
} fake_consumer;

static void *c_open(void *inst, const char *topic, const trib_consume_opts *o, char *err,
                    size_t len)
{
    fake_broker *b = inst;
    fake_topic *t = fake_topic_get(b, topic, 1);
    if (!t) {
        snprintf(err, len, "too many topics");
        return NULL;
    }
    fake_consumer *c = calloc(1, sizeof *c);
    c->b = b;
    snprintf(c->topic, sizeof c->topic, "%s", topic);
    c->pos = o->from_beginning ? 0 : t->n;
    c->end = t->n;
    c->bounded = o->bounded;
    snprintf(b->last_group, sizeof b->last_group, "%s", o->group_id ? o->group_id : "");
    if (b->nopens < 8)
        snprintf(b->groups[b->nopens++], sizeof b->groups[0], "%s", o->group_id ? o->group_id : "-");
    return c;
}

static int c_poll(void *consumer, int timeout_ms, trib_record **out)
{
    fake_consumer *c = consumer;
    fake_topic *t = fake_topic_get(c->b, c->topic, 0);
    if (c->bounded && c->pos >= c->end)
        return TRIB_EOF;
    if (c->pos >= t->n) {
        if (c->b->on_idle) {
            c->b->on_idle(c->b, c->topic);
            t = fake_topic_get(c->b, c->topic, 0);
            if (c->pos < t->n)
                return c_poll(consumer, timeout_ms, out);
        }
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    fake_msg *m = &t->msgs[c->pos];
    trib_record *r = record_new();
    char id[64];
    snprintf(id, sizeof id, "%zu-0", c->pos);
    str_set(&r->msg_id, id);
    str_set(&r->topic, c->topic);
    if (m->key)
        bytes_set(&r->key, m->key, m->klen);
    bytes_set(&r->value, m->value, m->vlen);
    c->pos++;
    *out = r;
    return 1;
}

static int c_commit(void *consumer, const trib_record *rec)
{
    ((fake_consumer *)consumer)->b->commits++;
    (void)rec;
    return TRIB_OK;
}

static void c_close(void *consumer)
{
    free(consumer);
}

static int c_produce(void *inst, const trib_record *rec, int timeout_ms)
{
    fake_topic *t = fake_topic_get(inst, rec->topic, 1);
    if (!t)
        return TRIB_ERR;
    fake_topic_add(t, rec->key.set ? rec->key.data : NULL, rec->value.data, rec->value.len);
    return TRIB_OK;
}

const trib_consumer_ops fake_consumer_ops = {c_open, c_poll, c_commit, c_close, c_produce};
