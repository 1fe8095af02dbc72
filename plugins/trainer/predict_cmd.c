/*
 * predict_cmd.c — `tributary predict`: load the model, consume
 * predict_topic as a stream in the group "<group_id>-predict" (a new group
 * starts at the end of the topic — only new records are classified; a
 * restart resumes after the last committed record), print each prediction,
 * publish it as JSON to "<topic>.predictions", optionally draw the image or
 * write it as a PNG, and reload the model file whenever it changes on disk.
 */
#include "trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model_io.h"

/* How often the model file is stat()ed for changes. */
#define RELOAD_CHECK_S 0.5

typedef struct predictor {
    trainer *t;
    const trib_broker *b;
    unsigned flags;
    const char *png_dir;
    nn_net net;
    nn_work w;
    struct stat st;     /* model file as last loaded */
    double checked;     /* nn_now() of the last stat */
    size_t count, labelled, correct, produce_failed;
} predictor;

static int load_model(predictor *p, char *err, size_t errlen)
{
    nn_net net;
    nn_work w;
    nn_hparams hp;
    struct stat st;
    if (stat(p->t->model_path, &st) != 0) {
        snprintf(err, errlen, "model file '%s': %s", p->t->model_path, strerror(errno));
        return -1;
    }
    if (nn_model_load(&net, p->t->model_path, err, errlen) != 0)
        return -1;
    if (net.in != TRAINER_PIXELS || net.out != TRAINER_CLASSES) {
        snprintf(err, errlen, "model file '%s': shapes %dx%dx%d, expected %dx*x%d",
                 p->t->model_path, net.in, net.hidden, net.out, TRAINER_PIXELS,
                 TRAINER_CLASSES);
        nn_net_free(&net);
        return -1;
    }
    nn_hparams_default(&hp);
    if (nn_work_init(&w, &net, 1, &hp, p->t->backend) != 0) {
        snprintf(err, errlen, "out of memory");
        nn_net_free(&net);
        return -1;
    }
    nn_work_free(&p->w);
    nn_net_free(&p->net);
    p->net = net;
    p->w = w;
    p->w.net = &p->net; /* the struct moved: re-point the workspace */
    p->st = st;
    return 0;
}

/* Reload when the file's mtime, size or inode changed; keep the old model on error. */
static void maybe_reload(predictor *p)
{
    struct stat st;
    double now = nn_now();
    if (now - p->checked < RELOAD_CHECK_S)
        return;
    p->checked = now;
    if (stat(p->t->model_path, &st) != 0)
        return;
    if (st.st_mtim.tv_sec == p->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == p->st.st_mtim.tv_nsec &&
        st.st_size == p->st.st_size && st.st_ino == p->st.st_ino)
        return;
    char err[512];
    if (load_model(p, err, sizeof err) != 0) {
        TLOG(p->t, TRIB_LOG_WARN, "model changed on disk but cannot be loaded, keeping the "
             "previous one: %s", err);
        p->st = st; /* do not retry until it changes again */
        return;
    }
    TLOG(p->t, TRIB_LOG_INFO, "reloaded model %s", p->t->model_path);
}

static void publish(predictor *p, const trib_record *in, int pred, const float *probs, int label)
{
    const trib_host *h = p->t->host;
    if (!p->b->ops->produce) {
        if (p->produce_failed++ == 0)
            TLOG(p->t, TRIB_LOG_WARN, "this broker plugin cannot publish: predictions are only "
                 "printed");
        return;
    }
    const char *topic = in->topic && *in->topic ? in->topic : p->t->predict_topic;
    char *json = render_prediction_json(pred, probs, TRAINER_CLASSES, label, in->msg_id);
    trib_record *out = h->record_new();
    size_t tl = strlen(topic);
    char *ptopic = malloc(tl + 13);
    int rc = TRIB_ERR;
    if (json && out && ptopic) {
        memcpy(ptopic, topic, tl);
        memcpy(ptopic + tl, ".predictions", 13);
        if (h->str_set(&out->topic, ptopic) == TRIB_OK &&
            (!in->key.set || h->bytes_set(&out->key, in->key.data, in->key.len) == TRIB_OK) &&
            h->bytes_set(&out->value, json, strlen(json)) == TRIB_OK)
            rc = p->b->ops->produce(p->b->inst, out, 5000);
    }
    if (rc != TRIB_OK && p->produce_failed++ == 0)
        TLOG(p->t, TRIB_LOG_WARN, "publishing the prediction of %s to %s.predictions failed",
             in->msg_id ? in->msg_id : "?", topic);
    free(ptopic);
    free(json);
    if (out)
        h->record_free(out);
}

static void write_png(predictor *p, const trib_record *rec, const uint8_t *px, int pred)
{
    char path[4096], id[128], err[512];
    const char *m = rec->msg_id ? rec->msg_id : "";
    size_t j = 0;
    for (; *m && j < sizeof id - 1; m++) /* keep file names tame */
        id[j++] = (*m >= '0' && *m <= '9') || (*m >= 'a' && *m <= 'z') ||
                          (*m >= 'A' && *m <= 'Z') || *m == '-' ? *m : '_';
    id[j] = 0;
    snprintf(path, sizeof path, "%s/pred%d_%zu%s%s.png", p->png_dir, pred, p->count,
             j ? "_" : "", id);
    if (render_png(path, px, 28, 28, err, sizeof err) != 0)
        TLOG(p->t, TRIB_LOG_WARN, "%s", err);
}

static void classify(predictor *p, const trib_record *rec)
{
    uint8_t px[TRAINER_PIXELS];
    float probs[TRAINER_CLASSES];
    int label;
    if (trainer_decode(p->t, rec, 0, px, &label) != 0)
        return;
    const uint8_t *rows[1] = {px};
    nn_infer_batch(&p->w, rows, NULL, 1, probs, NULL);
    int pred = nn_argmax(probs, TRAINER_CLASSES);
    p->count++;
    if (label >= 0) {
        p->labelled++;
        p->correct += pred == label;
    }
    printf("%s: prediction %d (p=%.4f)", rec->msg_id ? rec->msg_id : "-", pred, probs[pred]);
    if (label >= 0)
        printf(" label %d %s", label, pred == label ? "ok" : "WRONG");
    printf("\n");
    if (p->flags & TRIB_PREDICT_SHOW)
        render_ascii(stdout, px);
    fflush(stdout);
    if (p->png_dir)
        write_png(p, rec, px, pred);
    publish(p, rec, pred, probs, label);
}

static int predict_loop(predictor *p)
{
    trainer *t = p->t;
    char group[512];
    snprintf(group, sizeof group, "%s-predict", t->group_id);
    trainer_sub s;
    if (trainer_sub_open(t, &s, p->b, t->predict_topic, group, 0, 0, 1) != 0)
        return -1;
    TLOG(t, TRIB_LOG_INFO, "classifying new records on %s (group %s) with %s", t->predict_topic,
         group, t->model_path);
    int rc;
    trib_record *rec;
    while ((rc = trainer_next(t, &s, (int64_t)(RELOAD_CHECK_S * 1000), &rec)) >= 0) {
        maybe_reload(p);
        if (rc == 1) {
            classify(p, rec);
            if (s.broker->ops->commit)
                s.broker->ops->commit(s.c, rec);
            t->host->record_free(rec);
        } else if (t->host->stopping(t->ctx)) {
            break;
        }
    }
    trainer_sub_close(&s);
    return rc >= 0 ? 0 : -1;
}

int trainer_predict(void *inst, const trib_broker *broker, unsigned flags, const char *png_dir)
{
    predictor p;
    char err[512];
    memset(&p, 0, sizeof p);
    p.t = inst;
    p.b = broker;
    p.flags = flags;
    p.png_dir = png_dir;
    if (png_dir && mkdir(png_dir, 0755) != 0 && errno != EEXIST) {
        TLOG(p.t, TRIB_LOG_ERROR, "--png %s: %s", png_dir, strerror(errno));
        return 1;
    }
    if (load_model(&p, err, sizeof err) != 0) {
        TLOG(p.t, TRIB_LOG_ERROR, "%s (run `tributary train` first?)", err);
        return 1;
    }
    p.checked = nn_now();
    trainer_reset_bad(p.t);
    int rc = predict_loop(&p);
    trainer_report_bad(p.t, p.t->predict_topic);
    if (p.labelled)
        TLOG(p.t, TRIB_LOG_INFO, "classified %zu records; accuracy on the %zu labelled: %.4f",
             p.count, p.labelled, (double)p.correct / p.labelled);
    else
        TLOG(p.t, TRIB_LOG_INFO, "classified %zu records", p.count);
    nn_work_free(&p.w);
    nn_net_free(&p.net);
    return rc == 0 ? 0 : 1;
}
