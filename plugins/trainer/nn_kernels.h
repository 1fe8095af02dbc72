/*
 * nn_kernels.h — the dense algebra of the trainer's network, behind a small
 * table so that two implementations can be measured against each other:
 *
 *   own   — kernels of our own that exploit the zero pixels of the images:
 *           the batch is kept as CSR (per sample) and CSC (per pixel) lists
 *           of non-zero inputs, so layer 1 costs O(non-zeros x hidden)
 *           instead of O(784 x hidden); AVX2/FMA when the CPU has it.
 *   blas  — cblas_sgemm from OpenBLAS on the dense batch.
 *
 * bench/train_bench.sh measures both; the default (NN_BACKEND_AUTO) is the
 * one that won there (docs/trainer.md records the numbers).
 */
#ifndef TRIB_NN_KERNELS_H
#define TRIB_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum nn_backend {
    NN_BACKEND_AUTO = 0,
    NN_BACKEND_OWN,
    NN_BACKEND_BLAS
} nn_backend;

/** One batch of inputs in the layouts the kernels want. */
typedef struct nn_batch_x {
    int cap, in;
    float *dense;            /* nb x in (BLAS only) */
    int *row_ptr, *col;      /* CSR: sample b's non-zeros are col/val[row_ptr[b]..row_ptr[b+1]) */
    float *val;
    int *col_ptr, *row;      /* CSC: pixel k's non-zeros are row/cval[col_ptr[k]..col_ptr[k+1]) */
    float *cval;
} nn_batch_x;

typedef struct nn_kernels {
    const char *name;
    int dense;  /* wants x->dense */
    int sparse; /* wants the CSR/CSC lists */
    /** h = relu(x w + b); x: nb x in, w: in x hid (row-major), h: nb x hid. */
    void (*fwd_relu)(const nn_batch_x *x, int nb, const float *w, const float *b, int hid,
                     float *h);
    /** dw = x^T dh; dh: nb x hid, dw: in x hid (overwritten). */
    void (*grad_w)(const nn_batch_x *x, int nb, const float *dh, int hid, float *dw);
} nn_kernels;

/** The implementation for `b` (AUTO: the measured winner). */
const nn_kernels *nn_kernels_get(nn_backend b);
/** "own" / "blas" / "auto" -> backend; -1 if unknown. */
int nn_backend_parse(const char *s);

int nn_batch_x_init(nn_batch_x *x, int cap, int in, const nn_kernels *k);
void nn_batch_x_free(nn_batch_x *x);
/** Convert nb rows of uint8 pixels (scaled through lut) into x. */
void nn_batch_x_fill(nn_batch_x *x, const nn_kernels *k, const uint8_t *const *rows, int nb,
                     const float lut[256]);

/**
 * Adam update over n parameters (PyTorch's formulation):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= step * m / (sqrt(v) / bc2 + eps)   with step = lr / (1 - b1^t), bc2 = sqrt(1 - b2^t).
 */
void nn_adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2,
                    float step, float bc2, float eps);

/** Limit OpenBLAS to `n` threads (no-op for our kernels). */
void nn_blas_threads(int n);

#endif /* TRIB_NN_KERNELS_H */
