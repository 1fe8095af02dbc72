/*
 * host.h — plugin instances and the host-function table they receive.
 */
#ifndef TRIB_HOST_H
#define TRIB_HOST_H

#include <pthread.h>
#include <signal.h>
#include <tributary/plugin.h>
#include "cfg.h"
#include "loader.h"

struct pipeline;

#define CTX_MAX_METRICS 32

struct trib_ctx {
    char *name;                 /* "sink (redis)" — used in logs and errors */
    const plugin_lib *lib;
    const trib_plugin *p;
    void *inst;
    trib_opts *opts;
    struct pipeline *pl;        /* set while `run` drives the instance */
    pthread_mutex_t mlock;
    const char *mnames[CTX_MAX_METRICS];
    double mvals[CTX_MAX_METRICS];
    int nmetrics;
};

extern const trib_host trib_host_table;

/** Set when SIGINT/SIGTERM arrived (or a fatal error asks everything to stop). */
extern volatile sig_atomic_t g_stop;
void host_set_state_dir(const char *dir);
const char *host_state_dir(void);

/**
 * Create an instance of `lib` from config section `section` (may be NULL).
 * `reserved` are keys the core consumes itself.  NULL with err on failure.
 */
trib_ctx *instance_create(const plugin_lib *lib, const cnode *section, const char *where,
                          const char *const *reserved, char *err, size_t errlen);
/** Call the plugin's start callback, if any. */
int instance_start(trib_ctx *c, char *err, size_t errlen);
void instance_destroy(trib_ctx *c);

double ctx_metric(trib_ctx *c, const char *name);

#endif
