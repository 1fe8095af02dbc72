/*
 * nn.c — forward pass, back-propagation, Adam and initialisation of the
 * trainer's two-layer network (see nn.h).  Layer 1 (in x hidden) goes
 * through the nn_kernels table; layer 2 (hidden x out, out = 10) is small
 * and done here in plain loops.
 */
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG --------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nn_rng_seed(nn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t nn_rng_next(nn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float nn_rng_float(nn_rng *r)
{
    return (float)(nn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

uint32_t nn_rng_below(nn_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection */
    uint64_t m = (uint64_t)(uint32_t)(nn_rng_next(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t thresh = (uint32_t)-n % n;
        while (lo < thresh) {
            m = (uint64_t)(uint32_t)(nn_rng_next(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void nn_shuffle(nn_rng *r, uint32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = nn_rng_below(r, (uint32_t)i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* ---- parameters --------------------------------------------------- */
size_t nn_net_count(int in, int hidden, int out)
{
    return (size_t)in * hidden + hidden + (size_t)hidden * out + out;
}

int nn_net_init(nn_net *n, int in, int hidden, int out)
{
    memset(n, 0, sizeof *n);
    if (in <= 0 || hidden <= 0 || out <= 1 || in > (1 << 20) || hidden > (1 << 16) ||
        out > (1 << 12))
        return -1;
    n->in = in;
    n->hidden = hidden;
    n->out = out;
    n->nparams = nn_net_count(in, hidden, out);
    if (!(n->params = calloc(n->nparams, sizeof(float))))
        return -1;
    n->w1 = n->params;
    n->b1 = n->w1 + (size_t)in * hidden;
    n->w2 = n->b1 + hidden;
    n->b2 = n->w2 + (size_t)hidden * out;
    return 0;
}

void nn_net_free(nn_net *n)
{
    free(n->params);
    memset(n, 0, sizeof *n);
}

static void glorot(float *w, size_t count, int fan_in, int fan_out, nn_rng *r)
{
    float lim = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t i = 0; i < count; i++)
        w[i] = (2.0f * nn_rng_float(r) - 1.0f) * lim;
}

void nn_net_glorot(nn_net *n, nn_rng *r)
{
    memset(n->params, 0, n->nparams * sizeof(float));
    glorot(n->w1, (size_t)n->in * n->hidden, n->in, n->hidden, r);
    glorot(n->w2, (size_t)n->hidden * n->out, n->hidden, n->out, r);
}

void nn_hparams_default(nn_hparams *h)
{
    h->lr = 1e-3f;
    h->beta1 = 0.9f;
    h->beta2 = 0.999f;
    h->eps = 1e-7f;
}

/* ---- workspace ---------------------------------------------------- */
int nn_work_init(nn_work *w, nn_net *net, int max_batch, const nn_hparams *hp,
                 nn_backend backend)
{
    memset(w, 0, sizeof *w);
    w->net = net;
    w->k = nn_kernels_get(backend);
    w->hp = *hp;
    w->max_batch = max_batch;
    size_t bh = (size_t)max_batch * net->hidden, bo = (size_t)max_batch * net->out;
    w->grad = calloc(net->nparams, sizeof(float));
    w->m = calloc(net->nparams, sizeof(float));
    w->v = calloc(net->nparams, sizeof(float));
    w->h = malloc(bh * sizeof(float));
    w->dh = malloc(bh * sizeof(float));
    w->z = malloc(bo * sizeof(float));
    w->dz = malloc(bo * sizeof(float));
    for (int i = 0; i < 256; i++)
        w->lut[i] = (float)i / 255.0f;
    if (!w->grad || !w->m || !w->v || !w->h || !w->dh || !w->z || !w->dz ||
        nn_batch_x_init(&w->x, max_batch, net->in, w->k) != 0) {
        nn_work_free(w);
        return -1;
    }
    return 0;
}

void nn_work_free(nn_work *w)
{
    free(w->grad);
    free(w->m);
    free(w->v);
    free(w->h);
    free(w->dh);
    free(w->z);
    free(w->dz);
    nn_batch_x_free(&w->x);
    memset(w, 0, sizeof *w);
}

int nn_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* ---- forward / backward ------------------------------------------- */

/* z = h w2 + b2 for nb rows. */
static void layer2_forward(const nn_net *n, const float *h, int nb, float *z)
{
    int H = n->hidden, O = n->out;
    for (int s = 0; s < nb; s++) {
        float *zs = z + (size_t)s * O;
        const float *hs = h + (size_t)s * H;
        memcpy(zs, n->b2, sizeof(float) * (size_t)O);
        for (int j = 0; j < H; j++) {
            float a = hs[j];
            if (a == 0.0f)
                continue;
            const float *wr = n->w2 + (size_t)j * O;
            for (int o = 0; o < O; o++)
                zs[o] += a * wr[o];
        }
    }
}

/* In place: logits -> probabilities; returns -log p[label] (0 if label < 0). */
static double softmax_row(float *z, int O, int label)
{
    float mx = z[0];
    for (int o = 1; o < O; o++)
        mx = z[o] > mx ? z[o] : mx;
    double sum = 0;
    for (int o = 0; o < O; o++) {
        z[o] = expf(z[o] - mx);
        sum += z[o];
    }
    float inv = (float)(1.0 / sum);
    double loss = label >= 0 ? -(log((double)z[label]) - log(sum)) : 0.0;
    for (int o = 0; o < O; o++)
        z[o] *= inv;
    return loss;
}

static void forward(nn_work *w, const uint8_t *const *rows, int nb)
{
    nn_net *n = w->net;
    nn_batch_x_fill(&w->x, w->k, rows, nb, w->lut);
    w->k->fwd_relu(&w->x, nb, n->w1, n->b1, n->hidden, w->h);
    layer2_forward(n, w->h, nb, w->z);
}

/* Softmax + loss; dz = (p - onehot) / nb when want_dz.  Updates *st. */
static void head(nn_work *w, const uint8_t *labels, int nb, int want_dz, nn_batch_stats *st)
{
    int O = w->net->out;
    for (int s = 0; s < nb; s++) {
        float *z = w->z + (size_t)s * O;
        int lab = labels ? labels[s] : -1;
        if (st && lab >= 0 && nn_argmax(z, O) == lab)
            st->correct++;
        double l = softmax_row(z, O, lab);
        if (st)
            st->loss_sum += l;
        if (want_dz) {
            float *dz = w->dz + (size_t)s * O;
            for (int o = 0; o < O; o++)
                dz[o] = (z[o] - (o == lab ? 1.0f : 0.0f)) / (float)nb;
        }
    }
}

static void backward(nn_work *w, int nb)
{
    nn_net *n = w->net;
    int H = n->hidden, O = n->out;
    float *gw1 = w->grad, *gb1 = gw1 + (size_t)n->in * H, *gw2 = gb1 + H,
          *gb2 = gw2 + (size_t)H * O;
    memset(gb1, 0, sizeof(float) * ((size_t)H + (size_t)H * O + O));
    for (int s = 0; s < nb; s++) {
        const float *hs = w->h + (size_t)s * H, *dz = w->dz + (size_t)s * O;
        float *dh = w->dh + (size_t)s * H;
        for (int o = 0; o < O; o++)
            gb2[o] += dz[o];
        for (int j = 0; j < H; j++) {
            const float *wr = n->w2 + (size_t)j * O;
            float *gr = gw2 + (size_t)j * O;
            float acc = 0.0f;
            for (int o = 0; o < O; o++) {
                gr[o] += hs[j] * dz[o];
                acc += wr[o] * dz[o];
            }
            dh[j] = hs[j] > 0.0f ? acc : 0.0f;
            gb1[j] += dh[j];
        }
    }
    w->k->grad_w(&w->x, nb, w->dh, H, gw1);
}

static void adam_step(nn_work *w)
{
    const nn_hparams *hp = &w->hp;
    w->step++;
    double bc1 = 1.0 - pow(hp->beta1, (double)w->step);
    double bc2 = sqrt(1.0 - pow(hp->beta2, (double)w->step));
    nn_adam_update(w->net->params, w->grad, w->m, w->v, w->net->nparams, hp->beta1, hp->beta2,
                   (float)(hp->lr / bc1), (float)bc2, hp->eps);
}

void nn_train_batch(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    nn_batch_stats *st)
{
    forward(w, rows, nb);
    head(w, labels, nb, 1, st);
    backward(w, nb);
    adam_step(w);
}

void nn_infer_batch(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    float *probs, nn_batch_stats *st)
{
    forward(w, rows, nb);
    head(w, labels, nb, 0, st);
    if (probs)
        memcpy(probs, w->z, sizeof(float) * (size_t)nb * w->net->out);
}

double nn_loss_grad(nn_work *w, const uint8_t *const *rows, const uint8_t *labels, int nb,
                    int want_grad)
{
    nn_batch_stats st = {0, 0};
    forward(w, rows, nb);
    head(w, labels, nb, want_grad, &st);
    if (want_grad)
        backward(w, nb);
    return st.loss_sum / nb;
}
