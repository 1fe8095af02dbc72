/*
 * nn_kernels.c — dense algebra for the trainer's network: our own
 * sparsity-aware kernels (portable C, plus AVX2/FMA picked at run time) and
 * an OpenBLAS backend, behind the nn_kernels table (see nn_kernels.h).
 */
#include "nn_kernels.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_HAVE_X86 1
#define NN_AVX2 __attribute__((target("avx2,fma")))
#else
#define NN_HAVE_X86 0
#endif

/* ------------------------------------------------------------------ */
/* Portable kernels                                                    */
/* ------------------------------------------------------------------ */
static void fwd_relu_c(const nn_batch_x *x, int nb, const float *w, const float *b, int hid,
                       float *h)
{
    for (int s = 0; s < nb; s++) {
        float *hs = h + (size_t)s * hid;
        memcpy(hs, b, sizeof(float) * (size_t)hid);
        for (int t = x->row_ptr[s]; t < x->row_ptr[s + 1]; t++) {
            const float *wr = w + (size_t)x->col[t] * hid;
            float v = x->val[t];
            for (int j = 0; j < hid; j++)
                hs[j] += v * wr[j];
        }
        for (int j = 0; j < hid; j++)
            hs[j] = hs[j] > 0.0f ? hs[j] : 0.0f;
    }
}

static void grad_w_c(const nn_batch_x *x, int nb, const float *dh, int hid, float *dw)
{
    (void)nb;
    for (int k = 0; k < x->in; k++) {
        float *dr = dw + (size_t)k * hid;
        memset(dr, 0, sizeof(float) * (size_t)hid);
        for (int t = x->col_ptr[k]; t < x->col_ptr[k + 1]; t++) {
            const float *ds = dh + (size_t)x->row[t] * hid;
            float v = x->cval[t];
            for (int j = 0; j < hid; j++)
                dr[j] += v * ds[j];
        }
    }
}

static void adam_c(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2,
                   float step, float bc2, float eps)
{
    float inv_bc2 = 1.0f / bc2;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * inv_bc2 + eps);
    }
}

/* ------------------------------------------------------------------ */
/* AVX2 + FMA kernels: 64 hidden units in 8 registers per pass         */
/* ------------------------------------------------------------------ */
#if NN_HAVE_X86
NN_AVX2 static void axpy_block64(const int *idx, const float *val, int n, const float *base,
                                 size_t ld, int j, float *out, int relu, const float *init)
{
    __m256 a[8];
    for (int i = 0; i < 8; i++)
        a[i] = init ? _mm256_loadu_ps(init + j + 8 * i) : _mm256_setzero_ps();
    for (int t = 0; t < n; t++) {
        const float *r = base + (size_t)idx[t] * ld + j;
        __m256 xv = _mm256_set1_ps(val[t]);
        for (int i = 0; i < 8; i++)
            a[i] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(r + 8 * i), a[i]);
    }
    __m256 zero = _mm256_setzero_ps();
    for (int i = 0; i < 8; i++)
        _mm256_storeu_ps(out + j + 8 * i, relu ? _mm256_max_ps(a[i], zero) : a[i]);
}

NN_AVX2 static void axpy_block8(const int *idx, const float *val, int n, const float *base,
                                size_t ld, int j, float *out, int relu, const float *init)
{
    __m256 a = init ? _mm256_loadu_ps(init + j) : _mm256_setzero_ps();
    for (int t = 0; t < n; t++)
        a = _mm256_fmadd_ps(_mm256_set1_ps(val[t]),
                            _mm256_loadu_ps(base + (size_t)idx[t] * ld + j), a);
    _mm256_storeu_ps(out + j, relu ? _mm256_max_ps(a, _mm256_setzero_ps()) : a);
}

/* out[0..hid) = (init or 0) + sum_t val[t] * base[idx[t]][0..hid), optionally ReLU'd. */
NN_AVX2 static void gather_axpy(const int *idx, const float *val, int n, const float *base,
                                int hid, float *out, int relu, const float *init)
{
    int j = 0;
    for (; j + 64 <= hid; j += 64)
        axpy_block64(idx, val, n, base, (size_t)hid, j, out, relu, init);
    for (; j + 8 <= hid; j += 8)
        axpy_block8(idx, val, n, base, (size_t)hid, j, out, relu, init);
    for (; j < hid; j++) {
        float a = init ? init[j] : 0.0f;
        for (int t = 0; t < n; t++)
            a += val[t] * base[(size_t)idx[t] * hid + j];
        out[j] = relu && a < 0.0f ? 0.0f : a;
    }
}

NN_AVX2 static void fwd_relu_avx2(const nn_batch_x *x, int nb, const float *w, const float *b,
                                  int hid, float *h)
{
    for (int s = 0; s < nb; s++) {
        int o = x->row_ptr[s];
        gather_axpy(x->col + o, x->val + o, x->row_ptr[s + 1] - o, w, hid,
                    h + (size_t)s * hid, 1, b);
    }
}

NN_AVX2 static void grad_w_avx2(const nn_batch_x *x, int nb, const float *dh, int hid,
                                float *dw)
{
    (void)nb;
    for (int k = 0; k < x->in; k++) {
        int o = x->col_ptr[k];
        gather_axpy(x->row + o, x->cval + o, x->col_ptr[k + 1] - o, dh, hid,
                    dw + (size_t)k * hid, 0, NULL);
    }
}

NN_AVX2 static void adam_avx2(float *p, const float *g, float *m, float *v, size_t n, float b1,
                              float b2, float step, float bc2, float eps)
{
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
    const __m256 c1 = _mm256_set1_ps(1.0f - b1), c2 = _mm256_set1_ps(1.0f - b2);
    const __m256 inv = _mm256_set1_ps(1.0f / bc2), ve = _mm256_set1_ps(eps);
    const __m256 vs = _mm256_set1_ps(step);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, gi));
        __m256 vi = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + i),
                                    _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
        __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), inv, ve);
        __m256 pi = _mm256_sub_ps(_mm256_loadu_ps(p + i),
                                  _mm256_div_ps(_mm256_mul_ps(vs, mi), den));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, pi);
    }
    adam_c(p + i, g + i, m + i, v + i, n - i, b1, b2, step, bc2, eps);
}

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
static int cpu_has_avx2(void) { return 0; }
#endif

/* ------------------------------------------------------------------ */
/* OpenBLAS backend                                                    */
/* ------------------------------------------------------------------ */
static void fwd_relu_blas(const nn_batch_x *x, int nb, const float *w, const float *b, int hid,
                          float *h)
{
    for (int s = 0; s < nb; s++)
        memcpy(h + (size_t)s * hid, b, sizeof(float) * (size_t)hid);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hid, x->in, 1.0f, x->dense,
                x->in, w, hid, 1.0f, h, hid);
    for (size_t i = 0; i < (size_t)nb * hid; i++)
        h[i] = h[i] > 0.0f ? h[i] : 0.0f;
}

static void grad_w_blas(const nn_batch_x *x, int nb, const float *dh, int hid, float *dw)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, x->in, hid, nb, 1.0f, x->dense, x->in,
                dh, hid, 0.0f, dw, hid);
}

void nn_blas_threads(int n)
{
    openblas_set_num_threads(n);
}

/* ------------------------------------------------------------------ */
static const nn_kernels k_own_c = {"own", 0, 1, fwd_relu_c, grad_w_c};
#if NN_HAVE_X86
static const nn_kernels k_own_avx2 = {"own-avx2", 0, 1, fwd_relu_avx2, grad_w_avx2};
#endif
static const nn_kernels k_blas = {"blas", 1, 0, fwd_relu_blas, grad_w_blas};

/*
 * AUTO is OpenBLAS: on the development machine (2-core AMD EPYC, AVX-512)
 * bench/nn_bench measured 0.57 s/epoch for sgemm on one thread, 0.65 s on
 * two, and 0.81 s for our AVX2 sparse kernels (Fashion-MNIST, hidden 128,
 * batch 32).  Re-run bench/train_bench.sh before changing this.
 */
const nn_kernels *nn_kernels_get(nn_backend b)
{
    if (b == NN_BACKEND_BLAS || b == NN_BACKEND_AUTO)
        return &k_blas;
#if NN_HAVE_X86
    if (cpu_has_avx2())
        return &k_own_avx2;
#endif
    return &k_own_c;
}

int nn_backend_parse(const char *s)
{
    if (!s || !strcmp(s, "auto"))
        return NN_BACKEND_AUTO;
    if (!strcmp(s, "own"))
        return NN_BACKEND_OWN;
    if (!strcmp(s, "blas"))
        return NN_BACKEND_BLAS;
    return -1;
}

void nn_adam_update(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2,
                    float step, float bc2, float eps)
{
#if NN_HAVE_X86
    if (cpu_has_avx2()) {
        adam_avx2(p, g, m, v, n, b1, b2, step, bc2, eps);
        return;
    }
#endif
    adam_c(p, g, m, v, n, b1, b2, step, bc2, eps);
}

/* ------------------------------------------------------------------ */
/* Batch layouts                                                       */
/* ------------------------------------------------------------------ */
int nn_batch_x_init(nn_batch_x *x, int cap, int in, const nn_kernels *k)
{
    memset(x, 0, sizeof *x);
    x->cap = cap;
    x->in = in;
    size_t cells = (size_t)cap * in;
    if (k->dense && !(x->dense = malloc(sizeof(float) * cells)))
        return -1;
    if (k->sparse) {
        x->row_ptr = malloc(sizeof(int) * ((size_t)cap + 1));
        x->col = malloc(sizeof(int) * cells);
        x->val = malloc(sizeof(float) * cells);
        x->col_ptr = malloc(sizeof(int) * ((size_t)in + 1));
        x->row = malloc(sizeof(int) * cells);
        x->cval = malloc(sizeof(float) * cells);
        if (!x->row_ptr || !x->col || !x->val || !x->col_ptr || !x->row || !x->cval)
            return -1;
    }
    return 0;
}

void nn_batch_x_free(nn_batch_x *x)
{
    free(x->dense);
    free(x->row_ptr);
    free(x->col);
    free(x->val);
    free(x->col_ptr);
    free(x->row);
    free(x->cval);
    memset(x, 0, sizeof *x);
}

static void fill_sparse(nn_batch_x *x, const uint8_t *const *rows, int nb, const float lut[256])
{
    int in = x->in, n = 0;
    memset(x->col_ptr, 0, sizeof(int) * ((size_t)in + 1));
    for (int s = 0; s < nb; s++) {
        const uint8_t *r = rows[s];
        x->row_ptr[s] = n;
        for (int k = 0; k < in; k++) {
            if (r[k]) {
                x->col[n] = k;
                x->val[n++] = lut[r[k]];
                x->col_ptr[k + 1]++;
            }
        }
    }
    x->row_ptr[nb] = n;
    for (int k = 0; k < in; k++)
        x->col_ptr[k + 1] += x->col_ptr[k];
    /* scatter into CSC; samples come in order, so each column stays sorted */
    for (int s = 0; s < nb; s++) {
        for (int t = x->row_ptr[s]; t < x->row_ptr[s + 1]; t++) {
            int k = x->col[t];
            int pos = x->col_ptr[k]++;
            x->row[pos] = s;
            x->cval[pos] = x->val[t];
        }
    }
    /* the cursors advanced col_ptr[k] to the start of column k+1: shift back */
    for (int k = in; k > 0; k--)
        x->col_ptr[k] = x->col_ptr[k - 1];
    x->col_ptr[0] = 0;
}

void nn_batch_x_fill(nn_batch_x *x, const nn_kernels *k, const uint8_t *const *rows, int nb,
                     const float lut[256])
{
    if (k->dense) {
        for (int s = 0; s < nb; s++)
            for (int i = 0; i < x->in; i++)
                x->dense[(size_t)s * x->in + i] = lut[rows[s][i]];
    }
    if (k->sparse)
        fill_sparse(x, rows, nb, lut);
}
