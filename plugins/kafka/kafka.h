/*
 * plugins/kafka/kafka.h — internal declarations shared by the Kafka plugin's
 * files (not installed).
 *
 * kafka.c          descriptor, option table, create/start/destroy, the
 *                  librdkafka configuration shared by producer and consumer
 * kafka_sink.c     the sink: produce, delivery reports -> host->ack, flush
 * kafka_consumer.c the consumer: group/bounded reads, commit, produce()
 */
#ifndef TRIB_KAFKA_H
#define TRIB_KAFKA_H

#include <pthread.h>
#include <stdatomic.h>
#include <librdkafka/rdkafka.h>
#include <tributary/plugin.h>

/** One plugin instance (the `sink:` section of a config). */
typedef struct kafka_inst {
    struct kafka_inst *self;   /* first: handle opaques point at a kafka_inst * */
    trib_ctx *ctx;
    const trib_host *host;
    const trib_opts *opts;

    const char *bootstrap;     /* bootstrap_servers */
    const char *group_id;      /* default consumer group */
    size_t nprops;             /* passthrough `kafka:` map (owned by opts) */
    const char *const *prop_keys;
    const char *const *prop_vals;

    /* sink side */
    rd_kafka_conf_t *pconf;    /* checked by create(), consumed by start() */
    rd_kafka_t *producer;      /* created by start(); delivery reports -> ack */
    pthread_t poller;          /* serves delivery reports (kafka_sink.c) */
    int poller_running;
    atomic_int poller_stop;
    atomic_llong outstanding;  /* records handed to librdkafka, not yet acked */
    /* send() waiting for room in librdkafka's full queue: it sleeps on
       room_cv until the delivery reports bring outstanding down to
       room_below (-1: nobody waits) */
    pthread_mutex_t room_mu;
    pthread_cond_t room_cv;
    atomic_llong room_below;
    char **warm_topics;        /* topics whose metadata send() asked for (kafka_sink.c) */
    size_t n_warm;
    const char *last_topic;    /* the last record's topic (one of warm_topics) */

    /* consumer side: produce() uses its own handle, created on first use */
    pthread_mutex_t produce_lock;
    rd_kafka_t *sync_producer;
} kafka_inst;

/* ---- kafka.c: configuration helpers -------------------------------- */

/** Set one librdkafka property; on failure writes "what: error" to err. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, const char *what,
                   char *err, size_t errlen);
/**
 * A new configuration with bootstrap.servers and logging/errors routed to
 * the host.  `opaque` becomes the handle's opaque and must point at a
 * `kafka_inst *` (&ki->self, or a struct whose first member is one), so
 * every callback finds the instance as *(kafka_inst **)opaque.  The caller
 * adds role settings, then kafka_conf_apply_props().  NULL on error.
 */
rd_kafka_conf_t *kafka_conf_base(kafka_inst *ki, void *opaque, char *err, size_t errlen);
/** The instance behind a handle opaque (see kafka_conf_base). */
#define KAFKA_INST(opaque) (*(kafka_inst **)(opaque))
/** Apply the passthrough `kafka:` map (last, so it overrides). */
int kafka_conf_apply_props(kafka_inst *ki, rd_kafka_conf_t *conf, char *err, size_t errlen);
/** 1 if a librdkafka property name looks like it holds a secret. */
int kafka_prop_is_secret(const char *key);

/* ---- kafka_sink.c --------------------------------------------------- */
typedef void (*kafka_dr_fn)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/** A producer configuration from the instance's options; NULL on error. */
rd_kafka_conf_t *kafka_producer_conf(kafka_inst *ki, kafka_dr_fn dr_cb, char *err, size_t errlen);
/** rd_kafka_new on `conf` (consumed either way); NULL on error. */
rd_kafka_t *kafka_producer_new(kafka_inst *ki, rd_kafka_conf_t *conf, char *err, size_t errlen);
int kafka_sink_create(kafka_inst *ki, char *err, size_t errlen);
int kafka_sink_start(kafka_inst *ki, char *err, size_t errlen);
void kafka_sink_destroy(kafka_inst *ki);
extern const trib_sink_ops kafka_sink_ops;
/** The `op` and `lsn` headers plus the record's own headers; NULL if none. */
rd_kafka_headers_t *kafka_headers(const trib_record *rec);

/* ---- kafka_consumer.c ----------------------------------------------- */
void kafka_consumer_destroy_inst(kafka_inst *ki);
extern const trib_consumer_ops kafka_consumer_ops;

/** Parse "X/Y"; 0 on error. */
uint64_t kafka_parse_lsn(const char *s, size_t len);

#endif /* TRIB_KAFKA_H */
