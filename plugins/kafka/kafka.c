/*
 * plugins/kafka/kafka.c — the `kafka` plugin: descriptor, option table and
 * instance lifecycle.
 *
 * One instance is both a sink (records -> Kafka, acknowledged from
 * librdkafka's delivery reports) and a consumer (Kafka -> records, used by
 * the trainer).  Options map to librdkafka properties; the `kafka:` map is
 * passed through verbatim and applied last, so it can override anything.
 * See kafka_sink.c and kafka_consumer.c for the two directions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "kafka.h"

static const trib_option kafka_options[] = {
    {"bootstrap_servers", TRIB_OPT_STRING, NULL, 1, NULL,
     "comma-separated host:port list of Kafka brokers (bootstrap.servers)", 0},
    {"compression", TRIB_OPT_ENUM, "lz4", 0, "none|gzip|lz4|zstd|snappy",
     "producer batch compression (compression.codec)", 0},
    {"acks", TRIB_OPT_ENUM, "all", 0, "all|1|0",
     "broker acknowledgements required before a record counts as delivered", 0},
    {"enable_idempotence", TRIB_OPT_BOOL, "true", 0, NULL,
     "idempotent producer: no duplicates or reordering from retries (needs acks: all)", 0},
    {"linger_ms", TRIB_OPT_INT, "5", 0, NULL,
     "how long the producer waits to fill a batch (linger.ms)", 0},
    {"group_id", TRIB_OPT_STRING, "tributary", 0, NULL,
     "consumer group used when reading back (trainer) unless the caller names one", 0},
    {"kafka", TRIB_OPT_MAP, NULL, 0, NULL,
     "any librdkafka property (e.g. security.protocol, sasl.password), applied last",
     1 /* may hold sasl.password / ssl.key.password */},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

/* ---- small helpers -------------------------------------------------- */

uint64_t kafka_parse_lsn(const char *s, size_t len)
{
    char tmp[40];
    unsigned hi, lo;
    if (!s || len == 0 || len >= sizeof tmp)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (sscanf(tmp, "%X/%X", &hi, &lo) != 2)
        return 0;
    return ((uint64_t)hi << 32) | lo;
}

int kafka_prop_is_secret(const char *key)
{
    static const char *const words[] = {"password", "secret", "key", "token", "jaas", "config"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(key, words[i]))
            return 1;
    return 0;
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, const char *what,
                   char *err, size_t errlen)
{
    char rkerr[512];
    if (rd_kafka_conf_set(conf, key, val, rkerr, sizeof rkerr) == RD_KAFKA_CONF_OK)
        return TRIB_OK;
    /* librdkafka's message may quote the value: hide it for secrets. */
    if (kafka_prop_is_secret(key))
        snprintf(err, errlen, "option %s: invalid value for librdkafka property \"%s\"", what,
                 key);
    else
        snprintf(err, errlen, "option %s: %s", what, rkerr);
    return TRIB_ERR;
}

/* ---- librdkafka callbacks shared by every handle --------------------- */

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafka_inst *ki = KAFKA_INST(rd_kafka_opaque(rk));
    /* Connection failures ("FAIL") are retried and also reach error_cb,
     * which reports them once as a warning: keep them at debug here.  The
     * rest is at most a warning: what fails for good reaches us as a
     * delivery report or a consumer error, and is reported there. */
    int lvl = strcmp(fac, "FAIL") == 0 ? TRIB_LOG_DEBUG
              : level <= LOG_WARNING   ? TRIB_LOG_WARN
              : level <= LOG_INFO      ? TRIB_LOG_INFO
                                       : TRIB_LOG_DEBUG;
    ki->host->log(ki->ctx, lvl, "librdkafka %s: %s", fac, buf);
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_inst *ki = KAFKA_INST(opaque);
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        ki->host->log(ki->ctx, TRIB_LOG_ERROR, "kafka %s: fatal error %s: %s", rd_kafka_name(rk),
                      rd_kafka_err2name(ferr), fatal);
        return;
    }
    /* Transport errors are retried by librdkafka: a warning, not a failure. */
    ki->host->log(ki->ctx, TRIB_LOG_WARN, "kafka %s: %s (%s)", rd_kafka_name(rk), reason,
                  rd_kafka_err2name(err));
}

rd_kafka_conf_t *kafka_conf_base(kafka_inst *ki, void *opaque, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    if (kafka_conf_set(conf, "bootstrap.servers", ki->bootstrap, "bootstrap_servers", err,
                       errlen) != TRIB_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int kafka_conf_apply_props(kafka_inst *ki, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    for (size_t i = 0; i < ki->nprops; i++) {
        char what[300];
        snprintf(what, sizeof what, "kafka.%s", ki->prop_keys[i]);
        if (kafka_conf_set(conf, ki->prop_keys[i], ki->prop_vals[i], what, err, errlen) != TRIB_OK)
            return TRIB_ERR;
    }
    return TRIB_OK;
}

/* ---- lifecycle ------------------------------------------------------ */

static void kafka_destroy(void *inst)
{
    kafka_inst *ki = inst;
    if (!ki)
        return;
    kafka_sink_destroy(ki);
    kafka_consumer_destroy_inst(ki);
    pthread_mutex_destroy(&ki->produce_lock);
    pthread_mutex_destroy(&ki->room_mu);
    pthread_cond_destroy(&ki->room_cv);
    free(ki);
}

static int kafka_create(trib_ctx *ctx, const trib_host *host, const trib_opts *opts,
                        void **inst, char *err, size_t errlen)
{
    kafka_inst *ki = calloc(1, sizeof *ki);
    if (!ki) {
        snprintf(err, errlen, "out of memory");
        return TRIB_ERR;
    }
    ki->self = ki;
    ki->ctx = ctx;
    ki->host = host;
    ki->opts = opts;
    pthread_mutex_init(&ki->produce_lock, NULL);
    atomic_init(&ki->poller_stop, 0);
    atomic_init(&ki->outstanding, 0);
    atomic_init(&ki->room_below, -1);
    pthread_mutex_init(&ki->room_mu, NULL);
    pthread_cond_init(&ki->room_cv, NULL);
    ki->bootstrap = host->opt_str(opts, "bootstrap_servers");
    ki->group_id = host->opt_str(opts, "group_id");
    if (!ki->bootstrap || !*ki->bootstrap) {
        snprintf(err, errlen, "option bootstrap_servers: must name at least one broker");
        kafka_destroy(ki);
        return TRIB_ERR;
    }
    if (!ki->group_id || !*ki->group_id)
        ki->group_id = "tributary";
    ki->nprops = host->opt_map(opts, "kafka", &ki->prop_keys, &ki->prop_vals);
    if (kafka_sink_create(ki, err, errlen) != TRIB_OK) {
        kafka_destroy(ki);
        return TRIB_ERR;
    }
    *inst = ki;
    return TRIB_OK;
}

static int kafka_start(void *inst, char *err, size_t errlen)
{
    return kafka_sink_start(inst, err, errlen);
}

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "kafka",
    "0.1.0",
    "Apache Kafka sink and consumer (librdkafka)",
    TRIB_ROLE_SINK | TRIB_ROLE_CONSUMER,
    kafka_options,
    kafka_create,
    kafka_start,
    kafka_destroy,
    NULL,
    NULL,
    &kafka_sink_ops,
    &kafka_consumer_ops,
    NULL,
};
