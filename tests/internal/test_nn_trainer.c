/*
 * test_nn_trainer.c — the trainer plugin driven through its descriptor
 * in the shared test host (testhost.c) against an in-memory broker
 * (nn_broker.c): `train` reads a topic with
 * malformed records mixed in, fits, saves, evaluates; `online` keeps
 * learning and checkpoints; `predict` classifies records arriving after it
 * started, publishes JSON predictions, writes PNGs and reloads a model file
 * replaced on disk.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model_io.h"
#include "nn_data.h"
#include "nn_broker.h"
#include "nn_testutil.h"

extern const trib_plugin tributary_plugin;

static char dir[] = "/tmp/test_nn_trainer.XXXXXX";
static char model[600], model_opt[620];

typedef struct scenario {
    uint64_t lcg;
    int idle;              /* idle calls on the watched topic */
    const char *watch;     /* topic whose idleness drives the scenario */
    int phase_records;     /* records to add per arrival */
    int biased_at;         /* idle call at which the model file is replaced (0: never) */
} scenario;

static void add_images(fake_topic *t, uint64_t *lcg, int n, int raw)
{
    uint8_t px[784];
    for (int i = 0; i < n; i++) {
        int c = (int)(nn_test_lcg(lcg) % 10);
        nn_test_image(lcg, c, px);
        fake_add_image(t, c, px, raw && i % 2);
    }
}

/* Save a model that answers 3 whatever the input. */
static void save_biased_model(void)
{
    nn_net n;
    char err[256];
    CHECK(nn_net_init(&n, 784, 8, 10) == 0);
    n.b2[3] = 50.0f;
    CHECK(nn_model_save(&n, model, err, sizeof err) == 0);
    nn_net_free(&n);
}

static void on_idle(fake_broker *b, const char *topic)
{
    scenario *s = b->user;
    if (strcmp(topic, s->watch) != 0)
        return;
    s->idle++;
    fake_topic *t = fake_topic_get(b, topic, 0);
    if (s->biased_at && s->idle == s->biased_at) {
        save_biased_model();
        th_sleep_ms(700); /* let predict's reload check come due */
        return;
    }
    if (s->idle == 1 || (s->biased_at && s->idle == s->biased_at + 1)) {
        add_images(t, &s->lcg, s->phase_records, 0);
        if (s->idle == 1) /* one unlabelled record too */
            fake_topic_add(t, NULL, t->msgs[t->n - 1].value, t->msgs[t->n - 1].vlen);
        return;
    }
    th_set_stopping(b->ctx, 1);
}

/* The trainer with options from "name=value" strings (NULL-terminated). */
static void *make(trib_ctx *ctx, const char *const *kv)
{
    char err[256];
    th_section *s = th_section_new();
    for (; *kv; kv++)
        th_set_kv(s, *kv);
    CHECKF(th_create(ctx, &tributary_plugin, s, 0, err, sizeof err) == TRIB_OK, "create: %s", err);
    th_section_free(s);
    return th_inst(ctx);
}

static double model_accuracy(uint64_t seed)
{
    nn_net n;
    nn_work w;
    nn_hparams hp;
    nn_data d;
    nn_epoch_stats st;
    char err[256];
    uint8_t px[784];
    nn_hparams_default(&hp);
    CHECK(nn_model_load(&n, model, err, sizeof err) == 0);
    if (!n.params)
        return 0;
    CHECK(nn_work_init(&w, &n, 32, &hp, NN_BACKEND_AUTO) == 0);
    nn_data_init(&d, 784);
    for (int i = 0; i < 500; i++) {
        int c = (int)(nn_test_lcg(&seed) % 10);
        nn_test_image(&seed, c, px);
        nn_data_push(&d, px, c);
    }
    nn_evaluate(&w, &d, NULL, &st);
    nn_data_free(&d);
    nn_work_free(&w);
    nn_net_free(&n);
    return (double)st.correct / st.count;
}

static void test_train(void)
{
    trib_ctx *ctx = th_ctx_new("trainer");
    fake_broker b = {0};
    scenario sc = {123, 0, "train", 100, 0};
    b.ctx = ctx;
    b.user = &sc;
    b.on_idle = on_idle;
    uint64_t lcg = 99;
    fake_topic *tr = fake_topic_get(&b, "train", 1), *te = fake_topic_get(&b, "test", 1);
    add_images(tr, &lcg, 2000, 1);
    fake_topic_add(tr, "12", "1,2,3", 5);     /* label outside 0-9 */
    fake_topic_add(tr, "3", "1,2,3", 5);      /* wrong pixel count */
    fake_topic_add(tr, "3", "1,2,x", 5);      /* non-numeric */
    fake_topic_add(tr, "3", "1,2,x", 5);
    add_images(te, &lcg, 400, 0);
    const char *kv[] = {"train_topic=train", "test_topic=test", model_opt, "epochs=3", "hidden=32",
                        "seed=5", "stream_timeout_ms=300", "online=true", "checkpoint_every=40",
                        "group_id=t", NULL};
    void *inst = make(ctx, kv);
    trib_broker br = {&b, &fake_consumer_ops};
    int rc = tributary_plugin.trainer->train(inst, &br);
    CHECKF(rc == 0, "train returned %d", rc);
    CHECKF(th_log_count(ctx, TRIB_LOG_ERROR) == 0, "%d errors", th_log_count(ctx, TRIB_LOG_ERROR));
    CHECKF(th_log_count(ctx, TRIB_LOG_WARN) >= 3 + 3, "%d warnings", /* 3 first + 3 summaries */
           th_log_count(ctx, TRIB_LOG_WARN));
    CHECK(sc.idle >= 2);       /* online: 100 records arrived, then the stop */
    CHECK(b.commits >= 2);     /* bounded read + online checkpoints */
    /* online's live group of this run first; then the bounded read and the
       evaluation in the broker's default group (the one the MQTT sink creates
       sessions for) */
    CHECK(b.nopens == 3 && strncmp(b.groups[0], "t-train-", 8) == 0);
    CHECK(strcmp(b.groups[1], "-") == 0 && strcmp(b.groups[2], "-") == 0);
    double acc = model_accuracy(4242);
    printf("trainer (fake broker): accuracy %.4f\n", acc);
    CHECKF(acc >= 0.9, "accuracy %.4f", acc);
    th_ctx_free(ctx);
    fake_broker_free(&b);
}

static int count_pngs(const char *d)
{
    DIR *dp = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        n += strstr(e->d_name, ".png") != NULL && !strncmp(e->d_name, "pred", 4);
    if (dp)
        closedir(dp);
    return n;
}

static void test_predict(void)
{
    trib_ctx *ctx = th_ctx_new("trainer");
    fake_broker b = {0};
    scenario sc = {777, 0, "live", 20, 2};
    b.ctx = ctx;
    b.user = &sc;
    b.on_idle = on_idle;
    fake_topic *live = fake_topic_get(&b, "live", 1);
    add_images(live, &sc.lcg, 5, 0); /* before predict starts: not classified */
    const char *kv[] = {"train_topic=train", "test_topic=test", "predict_topic=live", model_opt,
                        "group_id=t", NULL};
    void *inst = make(ctx, kv);
    trib_broker br = {&b, &fake_consumer_ops};
    char png[700];
    snprintf(png, sizeof png, "%s/png", dir);
    int rc = tributary_plugin.trainer->predict(inst, &br, TRIB_PREDICT_SHOW, png);
    CHECKF(rc == 0, "predict returned %d", rc);
    CHECK(strcmp(b.last_group, "t-predict") == 0);
    fake_topic *out = fake_topic_get(&b, "live.predictions", 0);
    CHECK(out != NULL);
    if (!out)
        return;
    CHECKF(out->n == 41, "%zu predictions", out->n); /* 20 + 1 unlabelled + 20 */
    int correct = 0, threes = 0;
    for (size_t i = 0; i < out->n; i++) {
        const fake_msg *m = &out->msgs[i];
        int pred = -1, label = -1;
        CHECK(sscanf(m->value, "{\"prediction\":%d,\"probabilities\":[", &pred) == 1);
        CHECK(strstr(m->value, "\"source\":\"") != NULL);
        const char *l = strstr(m->value, "\"label\":");
        if (i == 20) {
            CHECK(l == NULL && m->key == NULL);
            continue;
        }
        CHECK(l && sscanf(l, "\"label\":%d", &label) == 1);
        CHECK(m->key && atoi(m->key) == label);
        if (i < 20)
            correct += pred == label;
        else
            threes += pred == 3;
    }
    CHECKF(correct >= 17, "%d/20 correct before the reload", correct);
    CHECKF(threes == 20, "%d/20 threes after the reload", threes);
    CHECKF(count_pngs(png) == 41, "%d PNGs", count_pngs(png));
    th_ctx_free(ctx);
    fake_broker_free(&b);

    /* a corrupt model: predict refuses with an error naming the file */
    FILE *f = fopen(model, "r+b");
    fseek(f, 200, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    trib_ctx *c2 = th_ctx_new("trainer");
    fake_broker b2 = {0};
    b2.ctx = c2;
    inst = make(c2, kv);
    trib_broker br2 = {&b2, &fake_consumer_ops};
    CHECK(tributary_plugin.trainer->predict(inst, &br2, 0, NULL) == 1 &&
          th_log_count(c2, TRIB_LOG_ERROR) == 1);
    th_ctx_free(c2);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(model, sizeof model, "%s/m.model", dir);
    snprintf(model_opt, sizeof model_opt, "model=%s", model);
    test_train();
    test_predict();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    if (nn_test_failures)
        fprintf(stderr, "test_nn_trainer: %d failure(s)\n", nn_test_failures);
    else
        printf("test_nn_trainer: all passed\n");
    return nn_test_failures ? 1 : 0;
}
