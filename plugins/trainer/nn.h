/*
 * nn.h — the trainer's neural network: a two-layer perceptron for 28x28
 * images (in -> Dense(hidden, ReLU) -> Dense(out) logits), softmax
 * cross-entropy on integer labels, Adam, Glorot-uniform initialisation and a
 * private xoshiro256** generator so that a seed makes a run reproducible.
 *
 * Inputs are uint8 pixels; the network sees pixel / 255.  Everything here is
 * plain data owned by the caller: no global state, no I/O (see model_io.h
 * for the file format and nn_kernels.h for the dense algebra).
 */
#ifndef TRIB_NN_H
#define TRIB_NN_H

#include <stddef.h>
#include <stdint.h>

#include "nn_kernels.h"

/* ---- random numbers: xoshiro256**, seeded through splitmix64 ---- */
typedef struct nn_rng {
    uint64_t s[4];
} nn_rng;

void nn_rng_seed(nn_rng *r, uint64_t seed);
uint64_t nn_rng_next(nn_rng *r);
/** Uniform float in [0, 1). */
float nn_rng_float(nn_rng *r);
/** Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t nn_rng_below(nn_rng *r, uint32_t n);
/** Fisher-Yates shuffle of idx[0..n). */
void nn_shuffle(nn_rng *r, uint32_t *idx, size_t n);

/* ---- the network's parameters ---- */
typedef struct nn_net {
    int in, hidden, out;
    float *params;   /* one block: w1 | b1 | w2 | b2 (so Adam walks it once) */
    size_t nparams;
    float *w1;       /* in x hidden, row-major: w1[i * hidden + j] */
    float *b1;       /* hidden */
    float *w2;       /* hidden x out */
    float *b2;       /* out */
} nn_net;

/** Allocate a zeroed network; TRIB-style 0 / -1 (ENOMEM or bad shape). */
int nn_net_init(nn_net *n, int in, int hidden, int out);
void nn_net_free(nn_net *n);
/** Glorot-uniform weights (limit sqrt(6 / (fan_in + fan_out))), zero biases. */
void nn_net_glorot(nn_net *n, nn_rng *r);
size_t nn_net_count(int in, int hidden, int out);

/* ---- hyper-parameters ---- */
typedef struct nn_hparams {
    float lr, beta1, beta2, eps;
} nn_hparams;

void nn_hparams_default(nn_hparams *h); /* 1e-3, 0.9, 0.999, 1e-7 */

/* ---- a training / inference workspace for batches of up to max_batch ---- */
typedef struct nn_work {
    nn_net *net;
    const nn_kernels *k;
    nn_hparams hp;
    int max_batch;
    long step;              /* Adam time step */
    float *grad, *m, *v;    /* same layout as net->params */
    float *h, *z, *dz, *dh; /* activations and their gradients */
    nn_batch_x x;           /* the batch's inputs in the kernels' layouts */
    float lut[256];         /* pixel -> pixel / 255 */
} nn_work;

int nn_work_init(nn_work *w, nn_net *net, int max_batch, const nn_hparams *hp,
                 nn_backend backend);
void nn_work_free(nn_work *w);

/** Per-batch outcome. */
typedef struct nn_batch_stats {
    double loss_sum; /* summed cross-entropy over the batch */
    int correct;     /* argmax == label */
} nn_batch_stats;

/**
 * One Adam step on a batch: rows[b] points at net->in pixels, labels[b] in
 * [0, out).  Returns the batch's loss sum and correct count in *st.
 */
void nn_train_batch(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    nn_batch_stats *st);

/**
 * Forward only.  probs (nb x out) receives softmax probabilities; when
 * labels is not NULL, *st gets loss and accuracy.
 */
void nn_infer_batch(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    float *probs, nn_batch_stats *st);

/**
 * Compute the loss of a batch and (optionally) the gradient into w->grad,
 * without updating anything: used by the gradient check.
 */
double nn_loss_grad(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    int want_grad);

/** Index of the largest of v[0..n). */
int nn_argmax(const float *v, int n);

#endif /* TRIB_NN_H */
