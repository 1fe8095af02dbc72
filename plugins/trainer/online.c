/*
 * online.c — online learning for `tributary train` with `online: true`:
 * after the first fit, keep consuming the training topic through the group
 * consumer train_cmd.c opened before the bounded read, take an Adam step on every mini-batch of new labelled
 * records, and checkpoint the model every `checkpoint_every` records (the
 * group position is committed only after the checkpoint that covers it).
 */
#include "trainer.h"

#include <stdlib.h>
#include <string.h>

#include "model_io.h"

/* A partial batch is trained on after this long without new records. */
#define ONLINE_FLUSH_MS 1000

typedef struct online_state {
    uint8_t *px;        /* batch x 784 */
    uint8_t *labels;
    const uint8_t **rows;
    int n;
    trib_record *last;  /* newest record consumed, committed at checkpoints */
    int64_t since_ckpt; /* records trained on since the last checkpoint */
    int64_t total;
} online_state;

static int checkpoint(trainer *t, trainer_sub *s, nn_work *w, online_state *o)
{
    char err[512];
    if (nn_model_save(w->net, t->model_path, err, sizeof err) != 0) {
        TLOG(t, TRIB_LOG_ERROR, "online checkpoint: %s", err);
        return -1;
    }
    if (o->last && s->broker->ops->commit)
        s->broker->ops->commit(s->c, o->last);
    TLOG(t, TRIB_LOG_INFO, "online: checkpoint after %lld new records saved to %s",
         (long long)o->total, t->model_path);
    o->since_ckpt = 0;
    return 0;
}

static void step(trainer *t, nn_work *w, online_state *o)
{
    nn_batch_stats st = {0, 0};
    nn_train_batch(w, o->rows, o->labels, o->n, &st);
    TLOG(t, TRIB_LOG_DEBUG, "online: batch of %d, loss %.4f, accuracy %.3f", o->n,
         st.loss_sum / o->n, (double)st.correct / o->n);
    o->since_ckpt += o->n;
    o->total += o->n;
    o->n = 0;
}

static int online_loop(trainer *t, trainer_sub *s, nn_work *w, online_state *o)
{
    trib_record *rec;
    int rc, label;
    while (!t->host->stopping(t->ctx)) {
        rc = trainer_next(t, s, o->n ? ONLINE_FLUSH_MS : -1, &rec);
        if (rc == TRIB_ERR)
            return -1;
        if (rc == 1) {
            uint8_t *px = o->px + (size_t)o->n * TRAINER_PIXELS;
            if (trainer_decode(t, rec, 1, px, &label) == 0)
                o->labels[o->n++] = (uint8_t)label;
            if (o->last)
                t->host->record_free(o->last);
            o->last = rec;
        }
        if (o->n && (o->n == t->batch || rc == 0))
            step(t, w, o);
        if (o->since_ckpt >= t->checkpoint_every && checkpoint(t, s, w, o) != 0)
            return -1;
    }
    return 0;
}

int trainer_online(trainer *t, trainer_sub *s, nn_work *w)
{
    online_state o;
    memset(&o, 0, sizeof o);
    o.px = malloc((size_t)t->batch * TRAINER_PIXELS);
    o.labels = malloc((size_t)t->batch);
    o.rows = malloc(sizeof(*o.rows) * (size_t)t->batch);
    int rc = -1;
    if (!o.px || !o.labels || !o.rows)
        goto out;
    for (int i = 0; i < t->batch; i++)
        o.rows[i] = o.px + (size_t)i * TRAINER_PIXELS;
    TLOG(t, TRIB_LOG_INFO, "online: learning from new records on %s", t->train_topic);
    trainer_reset_bad(t);
    rc = online_loop(t, s, w, &o);
    if (o.n)
        step(t, w, &o);
    if (rc == 0 && o.since_ckpt > 0)
        rc = checkpoint(t, s, w, &o);
    trainer_report_bad(t, t->train_topic);
out:
    if (o.last)
        t->host->record_free(o.last);
    free(o.px);
    free(o.labels);
    free(o.rows);
    return rc;
}
