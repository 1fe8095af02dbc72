/*
 * trainer.h — internals shared by the trainer plugin's files: the instance
 * (typed options and malformed-record counters) and the helpers that read
 * topics from the broker handed over by the core.
 *
 *   trainer.c      descriptor, options, create/destroy, record decoding
 *   consume.c      reading a topic into memory (bounded or as a stream)
 *   train_cmd.c    `tributary train`: fit, save, evaluate, online learning
 *   predict_cmd.c  `tributary predict`: live classification
 *   render.c       terminal art, PNG files, prediction JSON
 */
#ifndef TRIB_TRAINER_H
#define TRIB_TRAINER_H

#include <tributary/plugin.h>

#include "decode.h"
#include "nn.h"
#include "nn_data.h"

#define TRAINER_PIXELS 784 /* 28 x 28 */
#define TRAINER_CLASSES 10

typedef struct trainer {
    trib_ctx *ctx;
    const trib_host *host;
    int hidden, epochs, batch;
    double lr;
    uint64_t seed;
    const char *train_topic, *test_topic, *predict_topic, *model_path, *group_id;
    int64_t stream_timeout_ms, checkpoint_every;
    nn_format format;
    nn_backend backend;
    int online;
    size_t bad[NN_DEC_KINDS]; /* malformed records skipped, per kind */
} trainer;

#define TLOG(t, lvl, ...) (t)->host->log((t)->ctx, (lvl), __VA_ARGS__)

/**
 * Decode rec into px (TRAINER_PIXELS bytes) and *label.  need_label: a
 * missing/invalid label is malformed; otherwise *label = -1 for it.
 * Returns 0, or -1 when the record was counted and skipped (the first
 * record of each kind is reported with a warning).
 */
int trainer_decode(trainer *t, const trib_record *rec, int need_label, uint8_t *px, int *label);
/** Log how many malformed records were skipped, per kind (nothing if none). */
void trainer_report_bad(trainer *t, const char *what);
void trainer_reset_bad(trainer *t);

/** A consumer with its broker; closing it is the caller's job. */
typedef struct trainer_sub {
    const trib_broker *broker;
    void *c;
    const char *topic;
} trainer_sub;

int trainer_sub_open(trainer *t, trainer_sub *s, const trib_broker *b, const char *topic,
                     const char *group, int from_beginning, int bounded, int commit);
void trainer_sub_close(trainer_sub *s);

/**
 * Poll s until a record arrives, a bounded read ends, `idle_ms` pass without
 * a record (idle_ms < 0: wait forever) or the engine stops.  Returns 1 with
 * *out, 0 on idle timeout / end of data / stop, TRIB_ERR on a broker error.
 */
int trainer_next(trainer *t, trainer_sub *s, int64_t idle_ms, trib_record **out);

/**
 * Read records into d until the end (bounded) or idle_ms without records
 * (first_idle_ms before the first one).  If commit, the last record read is
 * committed.  0, or -1 on broker error.
 */
int trainer_read_all(trainer *t, trainer_sub *s, int64_t first_idle_ms, int64_t idle_ms,
                     int commit, nn_data *d);

/*
 * A consumer group may need seconds before it receives anything (Kafka's
 * group join and rebalance): the evaluation stream waits at least this long
 * for its first record, then stream_timeout_ms between records.
 */
#define TRAINER_JOIN_GRACE_MS 10000

int trainer_train(void *inst, const trib_broker *broker);
int trainer_predict(void *inst, const trib_broker *broker, unsigned flags, const char *png_dir);
/** Online learning after the first fit, reading s (online.c). */
int trainer_online(trainer *t, trainer_sub *s, nn_work *w);

/* render.c */
/** 28x28 image as terminal art (two characters per pixel) to f. */
void render_ascii(void *f, const uint8_t *px);
/** Write a grayscale PNG; 0 or -1 with err. */
int render_png(const char *path, const uint8_t *px, int w, int h, char *err, size_t errlen);
/** The prediction JSON value; returns a malloc'd string or NULL. */
char *render_prediction_json(int pred, const float *probs, int nprobs, int label,
                             const char *source);

#endif /* TRIB_TRAINER_H */
