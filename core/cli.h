/*
 * cli.h — the commands behind `tributary COMMAND`, and the application
 * object they share: a loaded config with its plugin instances.
 */
#ifndef TRIB_CLI_H
#define TRIB_CLI_H

#include "cfg.h"
#include "host.h"
#include "pipeline.h"

typedef struct app {
    config *cfg;
    trib_ctx *source;
    trib_ctx **transforms;
    size_t ntransforms;
    trib_ctx *sink;
    trib_ctx *broker;   /* consumer built from the sink section (train/predict) */
    trib_ctx *trainer;
    pipeline_cfg pcfg;
    int status_interval_ms;
    char *metrics_listen;  /* metrics.listen, NULL when off */
} app;

enum { APP_PIPELINE = 1, APP_TRAINER = 2, APP_BROKER = 4 };

/** Load config `path` and create the instances `what` asks for. */
int app_load(app *a, const char *path, unsigned what, char *err, size_t errlen);
void app_free(app *a);
void install_signal_handlers(void);
/** Readable after SIGINT/SIGTERM set g_stop (poll it; drain with wake_drain); -1 if none. */
int signal_wake_fd(void);

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_consume(int argc, char **argv);

#endif
