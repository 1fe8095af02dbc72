/*
 * nn_data.c — in-memory image sets, IDX loading, and the epoch and
 * evaluation loops (see nn_data.h).
 */
#include "nn_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double nn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void nn_data_init(nn_data *d, int in)
{
    memset(d, 0, sizeof *d);
    d->in = in;
}

void nn_data_free(nn_data *d)
{
    free(d->px);
    free(d->label);
    nn_data_init(d, d->in);
}

static int reserve(nn_data *d, size_t want)
{
    if (want <= d->cap)
        return 0;
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < want)
        cap *= 2;
    uint8_t *px = realloc(d->px, cap * (size_t)d->in);
    if (!px)
        return -1;
    d->px = px;
    uint8_t *lb = realloc(d->label, cap);
    if (!lb)
        return -1;
    d->label = lb;
    d->cap = cap;
    return 0;
}

int nn_data_push(nn_data *d, const uint8_t *px, int label)
{
    if (reserve(d, d->n + 1) != 0)
        return -1;
    memcpy(d->px + d->n * (size_t)d->in, px, (size_t)d->in);
    d->label[d->n++] = (uint8_t)label;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read an IDX header: magic 0x000008NN (uint8, NN dims), then NN big-endian sizes. */
static FILE *idx_open(const char *path, int want_dims, uint32_t *dims, char *err, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char h[16];
    size_t need = 4 + 4 * (size_t)want_dims;
    if (fread(h, 1, need, f) != need || h[0] || h[1] || h[2] != 0x08 || h[3] != want_dims) {
        snprintf(err, len, "%s: not an uncompressed uint8 IDX file with %d dimension(s)", path,
                 want_dims);
        fclose(f);
        return NULL;
    }
    for (int i = 0; i < want_dims; i++)
        dims[i] = be32(h + 4 + 4 * i);
    return f;
}

int nn_data_load_idx(nn_data *d, const char *images, const char *labels, size_t limit,
                     char *err, size_t errlen)
{
    uint32_t di[3], dl[1];
    FILE *fi = idx_open(images, 3, di, err, errlen), *fl = NULL;
    if (!fi)
        return -1;
    if (!(fl = idx_open(labels, 1, dl, err, errlen)))
        goto fail;
    if (di[0] != dl[0] || di[1] * di[2] != (uint32_t)d->in) {
        snprintf(err, errlen, "%s/%s: %u images of %ux%u vs %u labels (want %d pixels)",
                 images, labels, di[0], di[1], di[2], dl[0], d->in);
        goto fail;
    }
    size_t n = limit && limit < di[0] ? limit : di[0];
    if (reserve(d, d->n + n) != 0) {
        snprintf(err, errlen, "out of memory for %zu images", n);
        goto fail;
    }
    if (fread(d->px + d->n * (size_t)d->in, (size_t)d->in, n, fi) != n ||
        fread(d->label + d->n, 1, n, fl) != n) {
        snprintf(err, errlen, "%s: truncated IDX data", images);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (d->label[d->n + i] > 9) {
            snprintf(err, errlen, "%s: label %u at item %zu outside 0-9", labels,
                     d->label[d->n + i], i);
            goto fail;
        }
    }
    d->n += n;
    fclose(fi);
    fclose(fl);
    return 0;
fail:
    fclose(fi);
    if (fl)
        fclose(fl);
    return -1;
}

int nn_fit_epoch(nn_work *w, const nn_data *d, nn_rng *r, nn_progress_fn cb, void *arg,
                 nn_epoch_stats *st)
{
    memset(st, 0, sizeof *st);
    uint32_t *perm = malloc(sizeof(uint32_t) * (d->n ? d->n : 1));
    const uint8_t **rows = malloc(sizeof(*rows) * (size_t)w->max_batch);
    uint8_t *labels = malloc((size_t)w->max_batch);
    if (!perm || !rows || !labels) {
        free(perm);
        free(rows);
        free(labels);
        return -1;
    }
    double t0 = nn_now();
    for (size_t i = 0; i < d->n; i++)
        perm[i] = (uint32_t)i;
    nn_shuffle(r, perm, d->n);
    size_t batches = 0;
    for (size_t i = 0; i < d->n; i += (size_t)w->max_batch) {
        int nb = (int)(d->n - i < (size_t)w->max_batch ? d->n - i : (size_t)w->max_batch);
        for (int b = 0; b < nb; b++) {
            rows[b] = d->px + (size_t)perm[i + b] * d->in;
            labels[b] = d->label[perm[i + b]];
        }
        nn_batch_stats bs = {0, 0};
        nn_train_batch(w, rows, labels, nb, &bs);
        st->loss_sum += bs.loss_sum;
        st->correct += (size_t)bs.correct;
        st->count += (size_t)nb;
        if (cb && (++batches % 64 == 0))
            cb(arg, st->count, d->n, st->loss_sum, st->correct);
    }
    st->seconds = nn_now() - t0;
    free(perm);
    free(rows);
    free(labels);
    return 0;
}

void nn_evaluate(nn_work *w, const nn_data *d, size_t *confusion, nn_epoch_stats *st)
{
    memset(st, 0, sizeof *st);
    double t0 = nn_now();
    int O = w->net->out, B = w->max_batch;
    const uint8_t *rows[256];
    if (B > 256)
        B = 256;
    for (size_t i = 0; i < d->n; i += (size_t)B) {
        int nb = (int)(d->n - i < (size_t)B ? d->n - i : (size_t)B);
        for (int b = 0; b < nb; b++)
            rows[b] = d->px + (i + b) * (size_t)d->in;
        nn_batch_stats bs = {0, 0};
        nn_infer_batch(w, rows, d->label + i, nb, NULL, &bs);
        st->loss_sum += bs.loss_sum;
        st->correct += (size_t)bs.correct;
        st->count += (size_t)nb;
        if (confusion) {
            for (int b = 0; b < nb; b++) {
                /* w->z holds the probabilities of the batch just inferred */
                int p = nn_argmax(w->z + (size_t)b * O, O);
                confusion[(size_t)d->label[i + b] * O + p]++;
            }
        }
    }
    st->seconds = nn_now() - t0;
}
