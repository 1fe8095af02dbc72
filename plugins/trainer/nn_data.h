/*
 * nn_data.h — labelled image sets held in memory (uint8 pixels), IDX file
 * loading (for the bench and tests), and the epoch / evaluation loops that
 * drive nn.h over a set.
 */
#ifndef TRIB_NN_DATA_H
#define TRIB_NN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

typedef struct nn_data {
    int in;         /* pixels per image */
    size_t n, cap;
    uint8_t *px;    /* n x in */
    uint8_t *label; /* n */
} nn_data;

void nn_data_init(nn_data *d, int in);
void nn_data_free(nn_data *d);
/** Append one image; 0 or -1 (ENOMEM). */
int nn_data_push(nn_data *d, const uint8_t *px, int label);

/**
 * Load an IDX image file (idx3, uint8) and its label file (idx1) — plain,
 * not gzipped — keeping at most `limit` items (0: all).  0 or -1 with a
 * message in err.
 */
int nn_data_load_idx(nn_data *d, const char *images, const char *labels, size_t limit,
                     char *err, size_t errlen);

/** Called every `every` batches during an epoch (may be NULL). */
typedef void (*nn_progress_fn)(void *arg, size_t done, size_t total, double loss_sum,
                               size_t correct);

typedef struct nn_epoch_stats {
    size_t count, correct;
    double loss_sum;
    double seconds;
} nn_epoch_stats;

/** One epoch: reshuffle, then Adam over mini-batches of w->max_batch. */
int nn_fit_epoch(nn_work *w, const nn_data *d, nn_rng *r, nn_progress_fn cb, void *arg,
                 nn_epoch_stats *st);

/** Loss / accuracy over d; confusion[true * out + predicted] counts (may be NULL). */
void nn_evaluate(nn_work *w, const nn_data *d, size_t *confusion, nn_epoch_stats *st);

double nn_now(void);

#endif /* TRIB_NN_DATA_H */
