/*
 * app.c — turns a config file into plugin instances: the top-level engine
 * settings, pipeline.source / transforms / sink, and trainer.  Every error
 * names file:line:col and the key.
 */
#include "cli.h"
#include "log.h"
#include "options.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Engine settings at the top level of the config. */
static const trib_option engine_options[] = {
    {"plugin_dir", TRIB_OPT_STRING, NULL, 0, NULL, "extra directory searched first for plugins", 0},
    {"state_dir", TRIB_OPT_STRING, ".tributary", 0, NULL,
     "directory for durable state (snapshot markers)", 0},
    {"log_level", TRIB_OPT_ENUM, "info", 0, "error|warn|info|debug|trace", "log verbosity", 0},
    {"log_format", TRIB_OPT_ENUM, "text", 0, "text|json", "log line format", 0},
    {"queue_size", TRIB_OPT_INT, "1024", 0, NULL, "records buffered between source and sink", 0},
    {"batch_size", TRIB_OPT_INT, "512", 0, NULL, "records handed to the sink at once", 0},
    {"shutdown_timeout_ms", TRIB_OPT_INT, "10000", 0, NULL,
     "how long a stop waits for in-flight records to be acknowledged", 0},
    {"status_interval_ms", TRIB_OPT_INT, "10000", 0, NULL,
     "how often `run` logs a status line (0: never)", 0},
    {"thread_nice", TRIB_OPT_INT, "10", 0, NULL,
     "nice increment of the pipeline's own threads (source, transforms, sender) over the "
     "broker client's, 0-19 (0: same priority)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static const trib_option errors_options[] = {
    {"tolerance", TRIB_OPT_ENUM, "none", 0, "none|all",
     "none: a failing transform stops the pipeline; all: skip or dead-letter the record", 0},
    {"deadletter_topic", TRIB_OPT_STRING, NULL, 0, NULL,
     "with tolerance all: send failed records here (JSON envelope)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static const char *const top_reserved[] = {"pipeline", "trainer", "errors", "metrics", NULL};
static const trib_option metrics_options[] = {
    {"listen", TRIB_OPT_STRING, NULL, 1, NULL,
     "HOST:PORT for the Prometheus endpoint (GET /metrics)", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static const char *const section_reserved[] = {"plugin", NULL};
static const char *const sink_reserved[] = {"plugin", "converter", "binary_handling", NULL};

static int need_map(const cnode *n, const char *what, char *err, size_t errlen)
{
    if (n->type != CN_MAP) {
        set_err(err, errlen, "%s:%d:%d: '%s' must be a mapping, not %s", n->file, n->line, n->col,
                what, cnode_type_name(n));
        return -1;
    }
    return 0;
}

/* Load the plugin named by section's `plugin:` key and create an instance. */
static trib_ctx *make_instance(const cnode *sec, const char *what, unsigned role,
                               const char *const *reserved, char *err, size_t errlen)
{
    if (need_map(sec, what, err, errlen))
        return NULL;
    const cnode *pn = cnode_get(sec, "plugin");
    if (!pn || pn->type != CN_SCALAR || !pn->value[0]) {
        set_err(err, errlen, "%s:%d:%d: missing 'plugin' in %s", sec->file, sec->line, sec->col,
                what);
        return NULL;
    }
    char lerr[1024];
    const plugin_lib *lib = loader_load(pn->value, role, lerr, sizeof lerr);
    if (!lib) {
        set_err(err, errlen, "%s:%d:%d: %s: %s", pn->file, pn->line, pn->col, what, lerr);
        return NULL;
    }
    char where[256];
    snprintf(where, sizeof where, "%s (%s)", what, lib->desc->name);
    return instance_create(lib, sec, where, reserved, err, errlen);
}

static int load_engine(app *a, char *err, size_t errlen)
{
    const cnode *root = a->cfg->root;
    trib_opts *eo = opts_build(engine_options, root, top_reserved, "the top level", err, errlen);
    if (!eo)
        return -1;
    if (opts_str(eo, "plugin_dir"))
        loader_set_dir(opts_str(eo, "plugin_dir"));
    host_set_state_dir(opts_str(eo, "state_dir"));
    int lvl = log_level_parse(opts_str(eo, "log_level"));
    if (!getenv("TRIBUTARY_LOG_LEVEL"))
        log_set_level(lvl);
    log_set_json(strcmp(opts_str(eo, "log_format"), "json") == 0);
    int64_t qs = opts_int(eo, "queue_size"), bs = opts_int(eo, "batch_size");
    int64_t st = opts_int(eo, "shutdown_timeout_ms");
    int64_t tn = opts_int(eo, "thread_nice");
    a->status_interval_ms = (int)opts_int(eo, "status_interval_ms");
    opts_free(eo);
    if (tn < 0 || tn > 19) {
        set_err(err, errlen, "%s: thread_nice must be between 0 and 19 (it is %lld)",
                a->cfg->file, (long long)tn);
        return -1;
    }
    if (qs < 1 || qs > 10000000 || bs < 1 || bs > 1000000 || st < 0) {
        set_err(err, errlen, "%s: queue_size, batch_size must be positive and shutdown_timeout_ms "
                             "not negative", a->cfg->file);
        return -1;
    }
    a->pcfg.queue_size = (size_t)qs;
    a->pcfg.batch_size = (size_t)bs;
    a->pcfg.shutdown_timeout_ms = (int)st;
    a->pcfg.thread_nice = (int)tn;

    const cnode *en = cnode_get(root, "errors");
    if (en && need_map(en, "errors", err, errlen))
        return -1;
    trib_opts *xo = opts_build(errors_options, en, NULL, "errors", err, errlen);
    if (!xo)
        return -1;
    a->pcfg.tolerance_all = strcmp(opts_str(xo, "tolerance"), "all") == 0;
    if (opts_str(xo, "deadletter_topic"))
        a->pcfg.deadletter_topic = xstrdup(opts_str(xo, "deadletter_topic"));
    opts_free(xo);

    const cnode *mn = cnode_get(root, "metrics");
    if (mn) {
        if (need_map(mn, "metrics", err, errlen))
            return -1;
        trib_opts *mo = opts_build(metrics_options, mn, NULL, "metrics", err, errlen);
        if (!mo)
            return -1;
        a->metrics_listen = xstrdup(opts_str(mo, "listen"));
        opts_free(mo);
    }
    return 0;
}

static int load_converter(app *a, const cnode *sink, char *err, size_t errlen)
{
    const cnode *c = cnode_get(sink, "converter");
    const cnode *b = cnode_get(sink, "binary_handling");
    a->pcfg.conv.kind = CONV_JSON;
    a->pcfg.conv.binary = BIN_BASE64;
    if (c) {
        if (c->type == CN_SCALAR && strcmp(c->value, "json") == 0)
            a->pcfg.conv.kind = CONV_JSON;
        else if (c->type == CN_SCALAR && strcmp(c->value, "raw") == 0)
            a->pcfg.conv.kind = CONV_RAW;
        else {
            set_err(err, errlen, "%s:%d:%d: option 'converter' in sink must be one of json|raw",
                    c->file, c->line, c->col);
            return -1;
        }
    }
    if (b) {
        if (b->type == CN_SCALAR && strcmp(b->value, "base64") == 0)
            a->pcfg.conv.binary = BIN_BASE64;
        else if (b->type == CN_SCALAR && strcmp(b->value, "hex") == 0)
            a->pcfg.conv.binary = BIN_HEX;
        else {
            set_err(err, errlen,
                    "%s:%d:%d: option 'binary_handling' in sink must be one of base64|hex",
                    b->file, b->line, b->col);
            return -1;
        }
    }
    return 0;
}

static int load_pipeline(app *a, const cnode *pl, unsigned what, char *err, size_t errlen)
{
    static const char *const keys[] = {"source", "transforms", "sink", NULL};
    if (need_map(pl, "pipeline", err, errlen))
        return -1;
    for (size_t i = 0; i < pl->n; i++) {
        int ok = 0;
        for (const char *const *k = keys; *k; k++)
            ok |= strcmp(pl->keys[i], *k) == 0;
        if (!ok) {
            set_err(err, errlen, "%s:%d:%d: unknown key '%s' in pipeline (expected source, "
                                 "transforms, sink)",
                    pl->file, pl->key_lines[i], pl->key_cols[i], pl->keys[i]);
            return -1;
        }
    }
    const cnode *sink = cnode_get(pl, "sink");
    if (!sink) {
        set_err(err, errlen, "%s:%d:%d: missing 'sink' in pipeline", pl->file, pl->line, pl->col);
        return -1;
    }
    if (need_map(sink, "pipeline.sink", err, errlen) || load_converter(a, sink, err, errlen))
        return -1;
    if (what & APP_BROKER) {
        a->broker = make_instance(sink, "sink", TRIB_ROLE_CONSUMER, sink_reserved, err, errlen);
        if (!a->broker)
            return -1;
    }
    if (!(what & APP_PIPELINE))
        return 0;
    const cnode *src = cnode_get(pl, "source");
    if (!src) {
        set_err(err, errlen, "%s:%d:%d: missing 'source' in pipeline", pl->file, pl->line, pl->col);
        return -1;
    }
    a->source = make_instance(src, "source", TRIB_ROLE_SOURCE, section_reserved, err, errlen);
    if (!a->source)
        return -1;
    const cnode *tr = cnode_get(pl, "transforms");
    if (tr && tr->type != CN_SEQ) {
        set_err(err, errlen, "%s:%d:%d: 'transforms' must be a list", tr->file, tr->line, tr->col);
        return -1;
    }
    if (tr && tr->n) {
        a->transforms = xcalloc(tr->n, sizeof *a->transforms);
        for (size_t i = 0; i < tr->n; i++) {
            char what_t[48];
            snprintf(what_t, sizeof what_t, "transforms[%zu]", i);
            a->transforms[i] = make_instance(tr->items[i], what_t, TRIB_ROLE_TRANSFORM,
                                             section_reserved, err, errlen);
            if (!a->transforms[i])
                return -1;
            a->ntransforms++;
        }
    }
    a->sink = make_instance(sink, "sink", TRIB_ROLE_SINK, sink_reserved, err, errlen);
    return a->sink ? 0 : -1;
}

int app_load(app *a, const char *path, unsigned what, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->cfg = config_load(path, err, errlen);
    if (!a->cfg)
        return -1;
    if (load_engine(a, err, errlen))
        return -1;
    const cnode *root = a->cfg->root;
    if (what & (APP_PIPELINE | APP_BROKER)) {
        const cnode *pl = cnode_get(root, "pipeline");
        if (!pl) {
            set_err(err, errlen, "%s: missing 'pipeline' section", a->cfg->file);
            return -1;
        }
        if (load_pipeline(a, pl, what, err, errlen))
            return -1;
    }
    if (what & APP_TRAINER) {
        const cnode *tn = cnode_get(root, "trainer");
        if (!tn) {
            set_err(err, errlen, "%s: missing 'trainer' section", a->cfg->file);
            return -1;
        }
        a->trainer = make_instance(tn, "trainer", TRIB_ROLE_TRAINER, section_reserved, err, errlen);
        if (!a->trainer)
            return -1;
    }
    const char *sd = host_state_dir();
    if ((what & APP_PIPELINE) && mkdir(sd, 0755) && errno != EEXIST) {
        set_err(err, errlen, "%s: cannot create state_dir '%s': %s", a->cfg->file, sd,
                strerror(errno));
        return -1;
    }
    return 0;
}

void app_free(app *a)
{
    instance_destroy(a->source);
    for (size_t i = 0; i < a->ntransforms; i++)
        instance_destroy(a->transforms[i]);
    free(a->transforms);
    instance_destroy(a->sink);
    instance_destroy(a->broker);
    instance_destroy(a->trainer);
    free(a->pcfg.deadletter_topic);
    free(a->metrics_listen);
    config_free(a->cfg);
    memset(a, 0, sizeof *a);
}

/* Poked by the signal handler so that a main loop blocked in poll() sees
   g_stop at once (set up once, before any thread starts). */
static int signal_wake[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    if (g_stop) { /* second signal: the user insists */
        static const char msg[] = "tributary: forced exit\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    g_stop = 1;
    wake_poke(signal_wake[1]);
}

int signal_wake_fd(void)
{
    return signal_wake[0];
}

void install_signal_handlers(void)
{
    if (signal_wake[0] < 0 && wake_open(signal_wake) != 0)
        log_warn("cannot create the signal wake-up pipe: %s; signals are noticed within 100 ms",
                 strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
