/*
 * nn_fakehost.h — a stand-in for the core in the trainer's unit tests: a
 * trib_host with option values from a list of "name=value" strings (the
 * rest from the plugin's option table), and an in-memory broker whose topics
 * are arrays of records, implementing trib_consumer_ops.
 */
#ifndef NN_FAKEHOST_H
#define NN_FAKEHOST_H

#include <tributary/plugin.h>

typedef struct fake_msg {
    char *key, *value; /* key NULL: no key */
    size_t klen, vlen;
} fake_msg;

typedef struct fake_topic {
    char name[256];
    fake_msg *msgs;
    size_t n, cap;
} fake_topic;

struct trib_ctx {
    int stopping;
    int warnings, errors;
    char last_warning[1024];
};

typedef struct fake_broker fake_broker;
/** Called when a streaming consumer of `topic` has nothing to read. */
typedef void (*fake_idle_fn)(fake_broker *b, const char *topic);

struct fake_broker {
    fake_topic topics[8];
    int ntopics;
    struct trib_ctx *ctx;
    int commits;
    char last_group[256];     /* "" for group_id NULL (the broker's default) */
    char groups[8][64];       /* group of each open, in order ("-" for NULL) */
    int nopens;
    fake_idle_fn on_idle;
    void *user;
};

extern const trib_host fake_host;
extern const trib_consumer_ops fake_consumer_ops;

/** Options: NULL-terminated list of "name=value". */
trib_opts *fake_opts_new(const trib_plugin *p, const char *const *kv);
void fake_opts_free(trib_opts *o);

fake_topic *fake_topic_get(fake_broker *b, const char *name, int create);
void fake_topic_add(fake_topic *t, const char *key, const void *value, size_t vlen);
void fake_broker_free(fake_broker *b);
/** Append an image as a CSV (or raw) record with a label key. */
void fake_add_image(fake_topic *t, int label, const unsigned char *px, int raw);

#endif
