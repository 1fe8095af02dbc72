/*
 * nn_broker.c — the in-memory broker of the trainer's unit tests (see
 * nn_broker.h).
 */
#include "nn_broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        th_sleep_ms(timeout_ms);
        return 0;
    }
    fake_msg *m = &t->msgs[c->pos];
    trib_record *r = th_record(c->topic, m->key, m->klen, m->value, m->vlen);
    char id[64];
    snprintf(id, sizeof id, "%zu-0", c->pos);
    th_host.str_set(&r->msg_id, id);
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
