/*
 * cmd_train.c — `tributary train CONFIG` and `tributary predict CONFIG`:
 * build a consumer from the config's sink section (the same broker plugin
 * and connection the pipeline delivers to) and hand it to the trainer.
 */
#include "cli.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static int run_trainer(const char *path, int predict, unsigned flags, const char *png_dir)
{
    char err[2048];
    app a;
    install_signal_handlers();
    if (app_load(&a, path, APP_TRAINER | APP_BROKER, err, sizeof err) ||
        instance_start(a.broker, err, sizeof err) || instance_start(a.trainer, err, sizeof err)) {
        log_error("%s", err);
        app_free(&a);
        return 1;
    }
    trib_broker b = {a.broker->inst, a.broker->p->consumer};
    const trib_trainer_ops *t = a.trainer->p->trainer;
    int rc;
    if (predict && !t->predict) {
        log_error("%s does not support predict", a.trainer->name);
        rc = 1;
    } else {
        rc = predict ? t->predict(a.trainer->inst, &b, flags, png_dir) : t->train(a.trainer->inst, &b);
    }
    app_free(&a);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tributary train CONFIG\n");
        return 2;
    }
    return run_trainer(argv[1], 0, 0, NULL);
}

int cmd_predict(int argc, char **argv)
{
    const char *cfg = NULL, *png = NULL;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--show") == 0)
            flags |= TRIB_PREDICT_SHOW;
        else if (strcmp(argv[i], "--png") == 0 && i + 1 < argc)
            png = argv[++i];
        else if (argv[i][0] != '-' && !cfg)
            cfg = argv[i];
        else {
            fprintf(stderr, "usage: tributary predict CONFIG [--show] [--png DIR]\n");
            return 2;
        }
    }
    if (!cfg) {
        fprintf(stderr, "usage: tributary predict CONFIG [--show] [--png DIR]\n");
        return 2;
    }
    return run_trainer(cfg, 1, flags, png);
}
