/*
 * nn_broker.h — an in-memory broker for the trainer's unit tests: topics are
 * arrays of records, read and written through trib_consumer_ops.  The host
 * is the shared test host (testhost.h).
 */
#ifndef NN_BROKER_H
#define NN_BROKER_H

#include "testhost.h"

typedef struct fake_msg {
    char *key, *value; /* key NULL: no key */
    size_t klen, vlen;
} fake_msg;

typedef struct fake_topic {
    char name[256];
    fake_msg *msgs;
    size_t n, cap;
} fake_topic;

typedef struct fake_broker fake_broker;
/** Called when a streaming consumer of `topic` has nothing to read. */
typedef void (*fake_idle_fn)(fake_broker *b, const char *topic);

struct fake_broker {
    fake_topic topics[8];
    int ntopics;
    trib_ctx *ctx;            /* the trainer's: on_idle may stop it */
    int commits;
    char last_group[256];     /* "" for group_id NULL (the broker's default) */
    char groups[8][64];       /* group of each open, in order ("-" for NULL) */
    int nopens;
    fake_idle_fn on_idle;
    void *user;
};

extern const trib_consumer_ops fake_consumer_ops;

fake_topic *fake_topic_get(fake_broker *b, const char *name, int create);
void fake_topic_add(fake_topic *t, const char *key, const void *value, size_t vlen);
void fake_broker_free(fake_broker *b);
/** Append an image as a CSV (or raw) record with a label key. */
void fake_add_image(fake_topic *t, int label, const unsigned char *px, int raw);

#endif
