/*
 * host.c — the host-function table handed to every plugin, and instance
 * life-cycle (options → create → start → destroy).
 */
#include "host.h"
#include "log.h"
#include "options.h"
#include "pipeline.h"
#include "record.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

volatile sig_atomic_t g_stop;
static char *g_state_dir;

void host_set_state_dir(const char *dir)
{
    free(g_state_dir);
    g_state_dir = dir ? xstrdup(dir) : NULL;
}

const char *host_state_dir(void)
{
    return g_state_dir ? g_state_dir : ".";
}

static void h_log(trib_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    trib_vlog(level, ctx ? ctx->name : NULL, fmt, ap);
    va_end(ap);
}

static int h_emit(trib_ctx *ctx, trib_record *rec, int timeout_ms)
{
    if (!ctx->pl) {
        rec_free(rec);
        return TRIB_ERR;
    }
    return pipeline_emit(ctx->pl, rec, 0, 0, timeout_ms);
}

static int h_emit_position(trib_ctx *ctx, uint64_t pos, int timeout_ms)
{
    if (!ctx->pl)
        return TRIB_ERR;
    return pipeline_emit(ctx->pl, NULL, 1, pos, timeout_ms);
}

static int h_stopping(trib_ctx *ctx)
{
    if (g_stop)
        return 1;
    return ctx && ctx->pl ? pipeline_stopping(ctx->pl) : 0;
}

static uint64_t h_pending(trib_ctx *ctx)
{
    return ctx->pl ? pipeline_pending(ctx->pl) : 0;
}

static void h_ack(trib_ctx *ctx, trib_record *rec, int status, const char *errmsg)
{
    if (ctx->pl)
        pipeline_ack(ctx->pl, rec, status, errmsg);
    else
        rec_free(rec);
}

static const char *h_state_dir(trib_ctx *ctx)
{
    (void)ctx;
    return host_state_dir();
}

static int metric_slot(trib_ctx *c, const char *name)
{
    for (int i = 0; i < c->nmetrics; i++)
        if (strcmp(c->mnames[i], name) == 0)
            return i;
    if (c->nmetrics == CTX_MAX_METRICS)
        return -1;
    c->mnames[c->nmetrics] = xstrdup(name);
    c->mvals[c->nmetrics] = 0;
    return c->nmetrics++;
}

static void h_metric_add(trib_ctx *c, const char *name, double v)
{
    pthread_mutex_lock(&c->mlock);
    int i = metric_slot(c, name);
    if (i >= 0)
        c->mvals[i] += v;
    pthread_mutex_unlock(&c->mlock);
}

static void h_metric_set(trib_ctx *c, const char *name, double v)
{
    pthread_mutex_lock(&c->mlock);
    int i = metric_slot(c, name);
    if (i >= 0)
        c->mvals[i] = v;
    pthread_mutex_unlock(&c->mlock);
}

double ctx_metric(trib_ctx *c, const char *name)
{
    double v = 0;
    pthread_mutex_lock(&c->mlock);
    for (int i = 0; i < c->nmetrics; i++)
        if (strcmp(c->mnames[i], name) == 0)
            v = c->mvals[i];
    pthread_mutex_unlock(&c->mlock);
    return v;
}

static const char *h_instance_name(trib_ctx *c)
{
    return c->name;
}

const trib_host trib_host_table = {
    .abi_major = TRIB_ABI_MAJOR,
    .abi_minor = TRIB_ABI_MINOR,
    .log = h_log,
    .opt_str = opts_str,
    .opt_int = opts_int,
    .opt_double = opts_double,
    .opt_bool = opts_bool,
    .opt_list = opts_list,
    .opt_map = opts_map,
    .opt_given = opts_given,
    .record_new = rec_new,
    .record_free = rec_free,
    .record_dup = rec_dup,
    .field_add = row_field_add,
    .field_get = row_field_get,
    .bytes_set = bytes_set,
    .str_set = str_set,
    .header_add = rec_header_add,
    .emit = h_emit,
    .emit_position = h_emit_position,
    .stopping = h_stopping,
    .pending = h_pending,
    .ack = h_ack,
    .state_dir = h_state_dir,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .instance_name = h_instance_name,
    .bytes_alloc = bytes_alloc,
    .intern = rec_intern,
};

/*
 * Where a plugin's create() error points: at the option it names first
 * ("slot \"X\": ...", "tables[2] ...", "option 'url': ...", "option
 * kafka.linger.ms: ..." for a key of the `kafka:` map), when the section
 * sets that option, else at the section itself.
 */
static const cnode *error_node(const cnode *section, const char *msg)
{
    int quoted = 0;
    if (strncmp(msg, "option ", 7) == 0) {
        msg += 7;
        quoted = *msg == '\'';
        msg += quoted;
    }
    size_t n = 0;
    while ((msg[n] >= 'a' && msg[n] <= 'z') || (msg[n] >= '0' && msg[n] <= '9') ||
           msg[n] == '_' || (msg[n] == '.' && n > 0))
        n++;
    char end = msg[n];
    if (n == 0 || n >= 256 || (quoted ? end != '\'' : end != ':' && end != ' ' && end != '['))
        return section;
    char key[256];
    memcpy(key, msg, n);
    key[n] = '\0';
    const cnode *at = cnode_get(section, key);
    char *dot = strchr(key, '.');
    if (!at && dot) { /* map.key: a key inside one of the section's maps */
        *dot = '\0';
        const cnode *map = cnode_get(section, key);
        at = map ? cnode_get(map, dot + 1) : NULL;
        if (!at)
            at = map;
    }
    return at ? at : section;
}

trib_ctx *instance_create(const plugin_lib *lib, const cnode *section, const char *where,
                          const char *const *reserved, char *err, size_t errlen)
{
    trib_opts *opts = opts_build(lib->desc->options, section, reserved, where, err, errlen);
    if (!opts)
        return NULL;
    trib_ctx *c = xcalloc(1, sizeof *c);
    c->name = xstrdup(where);
    c->lib = lib;
    c->p = lib->desc;
    c->opts = opts;
    pthread_mutex_init(&c->mlock, NULL);
    char perr[1024] = "";
    if (c->p->create(c, &trib_host_table, opts, &c->inst, perr, sizeof perr) != TRIB_OK) {
        if (section) {
            const cnode *at = error_node(section, perr);
            set_err(err, errlen, "%s:%d:%d: %s: %s", section->file, at->line, at->col, where,
                    perr[0] ? perr : "plugin failed to initialise");
        }
        else
            set_err(err, errlen, "%s: %s", where, perr[0] ? perr : "plugin failed to initialise");
        c->inst = NULL;
        instance_destroy(c);
        return NULL;
    }
    return c;
}

int instance_start(trib_ctx *c, char *err, size_t errlen)
{
    if (!c->p->start)
        return TRIB_OK;
    char perr[1024] = "";
    if (c->p->start(c->inst, perr, sizeof perr) != TRIB_OK) {
        set_err(err, errlen, "%s: %s", c->name, perr[0] ? perr : "failed to start");
        return TRIB_ERR;
    }
    return TRIB_OK;
}

void instance_destroy(trib_ctx *c)
{
    if (!c)
        return;
    if (c->inst && c->p->destroy)
        c->p->destroy(c->inst);
    opts_free(c->opts);
    for (int i = 0; i < c->nmetrics; i++)
        free((char *)c->mnames[i]);
    pthread_mutex_destroy(&c->mlock);
    free(c->name);
    free(c);
}
