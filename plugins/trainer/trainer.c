/*
 * trainer.c — the `trainer` plugin: descriptor, option table, instance
 * lifecycle and record decoding with per-kind malformed counters.  The
 * commands themselves live in train_cmd.c and predict_cmd.c.
 */
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const trib_option trainer_options[] = {
    {"train_topic", TRIB_OPT_STRING, NULL, 1, NULL, "topic holding the labelled training records", 0},
    {"test_topic", TRIB_OPT_STRING, NULL, 1, NULL, "topic holding the labelled test records", 0},
    {"predict_topic", TRIB_OPT_STRING, NULL, 0, NULL, "topic `predict` classifies (default: test_topic)", 0},
    {"model", TRIB_OPT_STRING, "mnist.model", 0, NULL, "model file written by train, read by predict", 0},
    {"hidden", TRIB_OPT_INT, "128", 0, NULL, "units of the hidden ReLU layer", 0},
    {"epochs", TRIB_OPT_INT, "5", 0, NULL, "passes over the training topic", 0},
    {"batch_size", TRIB_OPT_INT, "32", 0, NULL, "mini-batch size", 0},
    {"learning_rate", TRIB_OPT_DOUBLE, "0.001", 0, NULL, "Adam learning rate", 0},
    {"seed", TRIB_OPT_INT, NULL, 0, NULL, "random seed for a reproducible run (default: random)", 0},
    {"stream_timeout_ms", TRIB_OPT_INT, "9000", 0, NULL, "evaluation ends after this long without new test records", 0},
    {"format", TRIB_OPT_ENUM, "auto", 0, "auto|csv|raw", "pixel encoding of record values (auto: 784 bytes = raw, else CSV)", 0},
    {"group_id", TRIB_OPT_STRING, "tributary-trainer", 0, NULL, "prefix of the consumer groups of predict (<group_id>-predict) and online learning; train and evaluation read with the broker's default group", 0},
    {"online", TRIB_OPT_BOOL, "false", 0, NULL, "after the first fit keep learning from new training records", 0},
    {"checkpoint_every", TRIB_OPT_INT, "1000", 0, NULL, "online: save the model every N new records", 0},
    {"kernels", TRIB_OPT_ENUM, "auto", 0, "auto|blas|own", "dense algebra: OpenBLAS or our sparse kernels (auto: the benchmark's winner)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static int check_range(const char *key, int64_t v, int64_t lo, int64_t hi, char *err, size_t len)
{
    if (v >= lo && v <= hi)
        return 0;
    snprintf(err, len, "option '%s': %lld is outside %lld..%lld", key, (long long)v,
             (long long)lo, (long long)hi);
    return -1;
}

static int read_options(trainer *t, const trib_opts *o, char *err, size_t len)
{
    const trib_host *h = t->host;
    int64_t hid = h->opt_int(o, "hidden"), ep = h->opt_int(o, "epochs");
    int64_t bs = h->opt_int(o, "batch_size");
    t->stream_timeout_ms = h->opt_int(o, "stream_timeout_ms");
    t->checkpoint_every = h->opt_int(o, "checkpoint_every");
    if (check_range("hidden", hid, 1, 65536, err, len) ||
        check_range("epochs", ep, 1, 100000, err, len) ||
        check_range("batch_size", bs, 1, 4096, err, len) ||
        check_range("stream_timeout_ms", t->stream_timeout_ms, 0, 86400000, err, len) ||
        check_range("checkpoint_every", t->checkpoint_every, 1, INT64_MAX, err, len))
        return -1;
    t->hidden = (int)hid;
    t->epochs = (int)ep;
    t->batch = (int)bs;
    t->lr = h->opt_double(o, "learning_rate");
    if (!(t->lr > 0 && t->lr < 10)) {
        snprintf(err, len, "option 'learning_rate': %g must be > 0 and < 10", t->lr);
        return -1;
    }
    t->train_topic = h->opt_str(o, "train_topic");
    t->test_topic = h->opt_str(o, "test_topic");
    t->predict_topic = h->opt_str(o, "predict_topic");
    if (!t->predict_topic)
        t->predict_topic = t->test_topic;
    t->model_path = h->opt_str(o, "model");
    t->group_id = h->opt_str(o, "group_id");
    t->online = h->opt_bool(o, "online");
    t->format = (nn_format)nn_format_parse(h->opt_str(o, "format"));
    t->backend = (nn_backend)nn_backend_parse(h->opt_str(o, "kernels"));
    if ((int)t->format < 0 || (int)t->backend < 0 || !t->train_topic || !t->test_topic ||
        !t->model_path || !*t->model_path || !t->group_id) {
        snprintf(err, len, "invalid trainer options (format, kernels, topics, model, group_id)");
        return -1;
    }
    if (h->opt_given(o, "seed"))
        t->seed = (uint64_t)h->opt_int(o, "seed");
    else
        t->seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    return 0;
}

static int trainer_create(trib_ctx *ctx, const trib_host *host, const trib_opts *opts,
                          void **inst, char *err, size_t errlen)
{
    trainer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return TRIB_ERR;
    }
    t->ctx = ctx;
    t->host = host;
    if (read_options(t, opts, err, errlen) != 0) {
        free(t);
        return TRIB_ERR;
    }
    /* one BLAS thread: faster than two for batch-32 products (bench/nn_bench) */
    nn_blas_threads(1);
    *inst = t;
    return TRIB_OK;
}

static void trainer_destroy(void *inst)
{
    free(inst);
}

void trainer_reset_bad(trainer *t)
{
    memset(t->bad, 0, sizeof t->bad);
}

int trainer_decode(trainer *t, const trib_record *rec, int need_label, uint8_t *px, int *label)
{
    int kind = NN_DEC_OK;
    int lab = rec->key.set ? nn_decode_label(rec->key.data, rec->key.len) : -1;
    if (lab < 0 && need_label)
        kind = NN_DEC_BAD_LABEL;
    else
        kind = nn_decode_pixels(rec->value.set ? rec->value.data : NULL, rec->value.len,
                                t->format, TRAINER_PIXELS, px);
    if (kind == NN_DEC_OK) {
        *label = lab < 0 ? -1 : lab;
        return 0;
    }
    if (t->bad[kind]++ == 0)
        TLOG(t, TRIB_LOG_WARN,
             "skipping malformed record %s on topic %s: %s (further records of this kind are "
             "counted, not reported)",
             rec->msg_id ? rec->msg_id : "?", rec->topic ? rec->topic : "?",
             nn_decode_kind(kind));
    return -1;
}

void trainer_report_bad(trainer *t, const char *what)
{
    for (int k = 1; k < NN_DEC_KINDS; k++)
        if (t->bad[k])
            TLOG(t, TRIB_LOG_WARN, "%s: skipped %zu malformed record(s): %s", what, t->bad[k],
                 nn_decode_kind(k));
}

static const trib_trainer_ops trainer_ops = {trainer_train, trainer_predict};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "trainer",
    "0.1.0",
    "trains and serves a 784-hidden-10 classifier on image records from a broker",
    TRIB_ROLE_TRAINER,
    trainer_options,
    trainer_create,
    NULL,
    trainer_destroy,
    NULL,
    NULL,
    NULL,
    NULL,
    &trainer_ops,
};
