/*
 * train_cmd.c — `tributary train`: read the training topic (bounded, from
 * the beginning) into memory, fit the network for `epochs`, save the model,
 * evaluate on the test topic read from its beginning and then as a stream,
 * and, with `online: true`, keep learning from new records.
 *
 * Which group reads.  The bounded read and the evaluation open their
 * consumers with group_id NULL, "the broker plugin's default group", because
 * that is the one name meaning "from the beginning" for every broker:
 *   kafka  the bounded read assign()s every partition at its start; the
 *          evaluation subscribes and starts each partition at its beginning
 *          whatever the group committed (nothing: it never commits);
 *   redis  XRANGE, resp. a group-less XREAD from 0 (no group left behind);
 *   mqtt   a broker keeps messages only for sessions that existed when they
 *          were published: the default group's session is the one the sink
 *          creates (subscriber_groups) before it first publishes to a topic.
 *          A new group name per run would be a brand-new, empty session.
 * Over MQTT reading also empties that session: a second `train` gets only
 * what was published since (see docs/trainer.md).
 */
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model_io.h"

typedef struct progress {
    int epoch, epochs, tty;
    double t0;
} progress;

/* A live bar on a terminal: records/s, running loss and accuracy. */
static void progress_bar(void *arg, size_t done, size_t total, double loss_sum, size_t correct)
{
    progress *p = arg;
    if (!p->tty || !done)
        return;
    int width = 30, fill = (int)((double)width * done / (total ? total : 1));
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    double dt = nn_now() - p->t0;
    fprintf(stderr, "\repoch %d/%d [%s] %zu/%zu %.0f rec/s loss %.4f acc %.4f ", p->epoch,
            p->epochs, bar, done, total, dt > 0 ? done / dt : 0.0, loss_sum / done,
            (double)correct / done);
    fflush(stderr);
}

static int fit(trainer *t, nn_work *w, const nn_data *d, nn_rng *rng)
{
    progress p = {0, t->epochs, isatty(2), 0};
    for (int e = 1; e <= t->epochs && !t->host->stopping(t->ctx); e++) {
        nn_epoch_stats st;
        p.epoch = e;
        p.t0 = nn_now();
        if (nn_fit_epoch(w, d, rng, progress_bar, &p, &st) != 0) {
            TLOG(t, TRIB_LOG_ERROR, "out of memory during epoch %d", e);
            return -1;
        }
        if (p.tty)
            fprintf(stderr, "\r%*s\r", 100, "");
        TLOG(t, TRIB_LOG_INFO,
             "epoch %d/%d: %zu records in %.2fs (%.0f records/s), loss %.4f, accuracy %.4f", e,
             t->epochs, st.count, st.seconds, st.seconds > 0 ? st.count / st.seconds : 0.0,
             st.loss_sum / st.count, (double)st.correct / st.count);
    }
    return 0;
}

static void print_confusion(const size_t *cm)
{
    printf("confusion matrix (rows: true label, columns: predicted):\n      ");
    for (int p = 0; p < TRAINER_CLASSES; p++)
        printf(" %6d", p);
    printf("\n");
    for (int l = 0; l < TRAINER_CLASSES; l++) {
        printf("  %2d: ", l);
        for (int p = 0; p < TRAINER_CLASSES; p++)
            printf(" %6zu", cm[l * TRAINER_CLASSES + p]);
        printf("\n");
    }
}

/* Read test_topic from its beginning, then as a stream; print the results. */
static int evaluate(trainer *t, const trib_broker *b, nn_work *w)
{
    trainer_sub s;
    nn_data d;
    nn_data_init(&d, TRAINER_PIXELS);
    if (trainer_sub_open(t, &s, b, t->test_topic, NULL, 1, 0, 0) != 0)
        return -1;
    trainer_reset_bad(t);
    int64_t first = t->stream_timeout_ms > TRAINER_JOIN_GRACE_MS ? t->stream_timeout_ms
                                                                 : TRAINER_JOIN_GRACE_MS;
    int rc = trainer_read_all(t, &s, first, t->stream_timeout_ms, 0, &d);
    trainer_sub_close(&s);
    trainer_report_bad(t, t->test_topic);
    if (rc == 0 && d.n == 0) {
        TLOG(t, TRIB_LOG_ERROR, "evaluation: no valid records on topic %s within %lld ms",
             t->test_topic, (long long)first);
        rc = -1;
    }
    if (rc == 0) {
        size_t cm[TRAINER_CLASSES * TRAINER_CLASSES] = {0};
        nn_epoch_stats st;
        nn_evaluate(w, &d, cm, &st);
        printf("evaluation on %s: %zu records, loss %.4f, accuracy %.4f\n", t->test_topic,
               st.count, st.loss_sum / st.count, (double)st.correct / st.count);
        print_confusion(cm);
        fflush(stdout);
    }
    nn_data_free(&d);
    return rc;
}

/* Bounded read of the training topic (the broker's default group); 0 or -1. */
static int load_training(trainer *t, const trib_broker *b, nn_data *d)
{
    trainer_sub s;
    if (trainer_sub_open(t, &s, b, t->train_topic, NULL, 1, 1, 0) != 0)
        return -1;
    trainer_reset_bad(t);
    double t0 = nn_now();
    int rc = trainer_read_all(t, &s, -1, -1, 0, d);
    trainer_sub_close(&s);
    trainer_report_bad(t, t->train_topic);
    if (rc != 0)
        return -1;
    if (t->host->stopping(t->ctx))
        return -1;
    if (d->n == 0) {
        TLOG(t, TRIB_LOG_ERROR, "no valid training records on topic %s", t->train_topic);
        return -1;
    }
    TLOG(t, TRIB_LOG_INFO, "read %zu training records from %s in %.2fs", d->n, t->train_topic,
         nn_now() - t0);
    return 0;
}

int trainer_train(void *inst, const trib_broker *broker)
{
    trainer *t = inst;
    char group[512], err[512];
    snprintf(group, sizeof group, "%s-train-%lld-%d", t->group_id, (long long)time(NULL),
             (int)getpid());
    nn_data d;
    nn_net net;
    nn_work w;
    nn_rng rng;
    nn_hparams hp;
    int rc = 1;
    trainer_sub live = {0};
    nn_data_init(&d, TRAINER_PIXELS);
    memset(&net, 0, sizeof net);
    memset(&w, 0, sizeof w);
    /*
     * Online: subscribe (a new group of this run, positioned at the end) BEFORE the
     * bounded read, so that records arriving while we read and fit are
     * waiting for the online loop instead of being missed.  A record
     * produced between the two opens may be seen twice (at least once).
     */
    if (t->online && trainer_sub_open(t, &live, broker, t->train_topic, group, 0, 0, 1) != 0)
        goto out;
    if (load_training(t, broker, &d) != 0)
        goto out;
    nn_hparams_default(&hp);
    hp.lr = (float)t->lr;
    nn_rng_seed(&rng, t->seed);
    if (nn_net_init(&net, TRAINER_PIXELS, t->hidden, TRAINER_CLASSES) != 0 ||
        nn_work_init(&w, &net, t->batch, &hp, t->backend) != 0) {
        TLOG(t, TRIB_LOG_ERROR, "out of memory for a %d-unit network", t->hidden);
        goto out;
    }
    nn_net_glorot(&net, &rng);
    TLOG(t, TRIB_LOG_INFO, "training 784-%d-10 (%s kernels, seed %llu) for %d epochs",
         t->hidden, w.k->name, (unsigned long long)t->seed, t->epochs);
    if (fit(t, &w, &d, &rng) != 0 || t->host->stopping(t->ctx))
        goto out;
    nn_data_free(&d);
    if (nn_model_save(&net, t->model_path, err, sizeof err) != 0) {
        TLOG(t, TRIB_LOG_ERROR, "%s", err);
        goto out;
    }
    TLOG(t, TRIB_LOG_INFO, "model saved to %s", t->model_path);
    if (evaluate(t, broker, &w) != 0)
        goto out;
    rc = t->online ? (trainer_online(t, &live, &w) == 0 ? 0 : 1) : 0;
out:
    trainer_sub_close(&live);
    nn_work_free(&w);
    nn_net_free(&net);
    nn_data_free(&d);
    return rc;
}
