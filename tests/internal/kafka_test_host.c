/*
 * tests/internal/kafka_test_host.c — the minimal trib_host used by
 * test_kafka, and control of the tests/kafka_mock child process (see
 * kafka_test_host.h).  Test code: simple, not fast.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kafka_test_host.h"

/* ---- options ---------------------------------------------------------- */

#define TH_MAX_OPTS 64

struct trib_opts {
    const trib_option *table;
    const char *names[TH_MAX_OPTS], *values[TH_MAX_OPTS];
    int n;
    const char *mkeys[TH_MAX_OPTS], *mvals[TH_MAX_OPTS];
    const char *mname;
    int nm;
};

trib_opts *th_opts_new(const trib_option *table)
{
    trib_opts *o = calloc(1, sizeof *o);
    o->table = table;
    return o;
}

void th_opt(trib_opts *o, const char *name, const char *value)
{
    o->names[o->n] = name;
    o->values[o->n++] = value;
}

void th_opt_map(trib_opts *o, const char *name, const char *key, const char *value)
{
    o->mname = name;
    o->mkeys[o->nm] = key;
    o->mvals[o->nm++] = value;
}

void th_opts_free(trib_opts *o) { free(o); }

static const char *th_opt_str(const trib_opts *o, const char *name)
{
    for (int i = o->n - 1; i >= 0; i--)
        if (!strcmp(o->names[i], name))
            return o->values[i];
    for (const trib_option *t = o->table; t && t->name; t++)
        if (!strcmp(t->name, name))
            return t->default_value;
    return NULL;
}

static int64_t th_opt_int(const trib_opts *o, const char *name)
{
    const char *s = th_opt_str(o, name);
    return s ? strtoll(s, NULL, 10) : 0;
}

static double th_opt_double(const trib_opts *o, const char *name)
{
    const char *s = th_opt_str(o, name);
    return s ? strtod(s, NULL) : 0;
}

static int th_opt_bool(const trib_opts *o, const char *name)
{
    const char *s = th_opt_str(o, name);
    return s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
                 !strcmp(s, "1"));
}

static size_t th_opt_list(const trib_opts *o, const char *name, const char *const **items)
{
    *items = NULL;
    return 0;
}

static size_t th_opt_map_get(const trib_opts *o, const char *name, const char *const **keys,
                             const char *const **values)
{
    if (!o->mname || strcmp(o->mname, name)) {
        *keys = *values = NULL;
        return 0;
    }
    *keys = o->mkeys;
    *values = o->mvals;
    return (size_t)o->nm;
}

static int th_opt_given(const trib_opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->names[i], name))
            return 1;
    return 0;
}

/* ---- records ---------------------------------------------------------- */

static trib_record *th_record_new(void) { return calloc(1, sizeof(trib_record)); }

static void th_row_free(trib_row *r)
{
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].data);
    }
    free(r->fields);
}

static void th_record_free(trib_record *rec)
{
    if (!rec)
        return;
    free(rec->src.name);
    free(rec->src.db);
    free(rec->src.schema);
    free(rec->src.table);
    th_row_free(&rec->before);
    th_row_free(&rec->after);
    free(rec->topic);
    free(rec->key.data);
    free(rec->value.data);
    for (size_t i = 0; i < rec->nheaders; i++) {
        free(rec->headers[i].name);
        free(rec->headers[i].value);
    }
    free(rec->headers);
    free(rec->msg_id);
    free(rec);
}

static int th_bytes_set(trib_bytes *b, const void *data, size_t len)
{
    free(b->data);
    memset(b, 0, sizeof *b);
    if (!data && len == 0)
        return TRIB_OK;
    b->data = malloc(len + 1);
    if (!b->data)
        return TRIB_ERR;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    b->len = len;
    b->set = 1;
    return TRIB_OK;
}

static int th_str_set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return s && !*dst ? TRIB_ERR : TRIB_OK;
}

static int th_header_add(trib_record *rec, const char *name, const void *value, size_t len)
{
    trib_header *h = realloc(rec->headers, (rec->nheaders + 1) * sizeof *h);
    if (!h)
        return TRIB_ERR;
    rec->headers = h;
    h += rec->nheaders++;
    h->name = strdup(name);
    h->value = malloc(len + 1);
    memcpy(h->value, value, len);
    h->value[len] = '\0';
    h->len = len;
    return TRIB_OK;
}

static trib_record *th_record_dup(const trib_record *rec)
{
    trib_record *d = th_record_new();
    d->op = rec->op;
    d->seq = rec->seq;
    d->src.lsn = rec->src.lsn;
    th_str_set(&d->topic, rec->topic);
    if (rec->key.set)
        th_bytes_set(&d->key, rec->key.data, rec->key.len);
    if (rec->value.set)
        th_bytes_set(&d->value, rec->value.data, rec->value.len);
    for (size_t i = 0; i < rec->nheaders; i++)
        th_header_add(d, rec->headers[i].name, rec->headers[i].value, rec->headers[i].len);
    th_str_set(&d->msg_id, rec->msg_id);
    return d;
}

static int th_field_add(trib_row *row, const char *name, uint32_t oid, int32_t mod,
                        trib_val_kind kind, const void *data, size_t len, int is_key)
{
    return TRIB_ERR; /* not needed by the Kafka plugin */
}

static trib_field *th_field_get(const trib_row *row, const char *name) { return NULL; }

/* ---- per-instance context: acks and log --------------------------------- */

struct trib_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    int nacks;
    signed char status[TH_MAX_ACKS];
    unsigned char times[TH_MAX_ACKS];
    char last_err[512];
    char *log;
    size_t loglen;
};

trib_ctx *th_ctx_new(void)
{
    trib_ctx *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    th_reset_acks(c);
    return c;
}

void th_ctx_free(trib_ctx *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->log);
    free(c);
}

void th_reset_acks(trib_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    c->nacks = 0;
    memset(c->status, 1, sizeof c->status);
    memset(c->times, 0, sizeof c->times);
    c->last_err[0] = '\0';
    pthread_mutex_unlock(&c->mu);
}

void th_set_stopping(trib_ctx *c, int on)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = on;
    pthread_mutex_unlock(&c->mu);
}

static int th_stopping(trib_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    int s = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static void th_ack(trib_ctx *c, trib_record *rec, int status, const char *errmsg)
{
    pthread_mutex_lock(&c->mu);
    if (rec->seq < TH_MAX_ACKS) {
        c->status[rec->seq] = (signed char)status;
        c->times[rec->seq]++;
    }
    if (status == TRIB_ERR)
        snprintf(c->last_err, sizeof c->last_err, "%s", errmsg ? errmsg : "(none)");
    c->nacks++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    th_record_free(rec);
}

int th_ack_count(trib_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->nacks;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int th_ack_status(trib_ctx *c, uint64_t seq) { return c->status[seq]; }
int th_ack_times(trib_ctx *c, uint64_t seq) { return c->times[seq]; }
const char *th_last_error(trib_ctx *c) { return c->last_err; }

int th_wait_acks(trib_ctx *c, int n, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->nacks < n && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    int ok = c->nacks >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void th_log(trib_ctx *c, int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (level <= TRIB_LOG_INFO || getenv("TH_DEBUG"))
        fprintf(stderr, "[%s] %s\n", names[level < 0 || level > 4 ? 0 : level], line);
    pthread_mutex_lock(&c->mu);
    size_t n = strlen(line);
    char *p = realloc(c->log, c->loglen + n + 2);
    if (p) {
        c->log = p;
        memcpy(p + c->loglen, line, n);
        p[c->loglen + n] = '\n';
        c->loglen += n + 1;
        p[c->loglen] = '\0';
    }
    pthread_mutex_unlock(&c->mu);
}

const char *th_log_text(trib_ctx *c) { return c->log ? c->log : ""; }

static uint64_t th_pending(trib_ctx *c) { return 0; }
static const char *th_state_dir(trib_ctx *c) { return "/tmp"; }
static void th_metric(trib_ctx *c, const char *name, double v) {}
static const char *th_instance_name(trib_ctx *c) { return "sink"; }

const trib_host th_host = {
    .abi_major = TRIB_ABI_MAJOR,
    .abi_minor = TRIB_ABI_MINOR,
    .log = th_log,
    .opt_str = th_opt_str,
    .opt_int = th_opt_int,
    .opt_double = th_opt_double,
    .opt_bool = th_opt_bool,
    .opt_list = th_opt_list,
    .opt_map = th_opt_map_get,
    .opt_given = th_opt_given,
    .record_new = th_record_new,
    .record_free = th_record_free,
    .record_dup = th_record_dup,
    .field_add = th_field_add,
    .field_get = th_field_get,
    .bytes_set = th_bytes_set,
    .str_set = th_str_set,
    .header_add = th_header_add,
    .stopping = th_stopping,
    .pending = th_pending,
    .ack = th_ack,
    .state_dir = th_state_dir,
    .metric_add = th_metric,
    .metric_set = th_metric,
    .instance_name = th_instance_name,
};

/* ---- the mock cluster (tests/kafka_mock as a child process) ----------- */

int mock_start(mock *m, char *const argv[])
{
    int to[2], from[2];
    if (pipe(to) || pipe(from))
        return -1;
    m->pid = fork();
    if (m->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        execv(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    m->in = fdopen(to[1], "w");
    m->out = fdopen(from[0], "r");
    if (!fgets(m->bootstrap, sizeof m->bootstrap, m->out))
        return -1;
    m->bootstrap[strcspn(m->bootstrap, "\n")] = '\0';
    return 0;
}

int mock_cmd(mock *m, const char *cmd)
{
    char line[256];
    fprintf(m->in, "%s\n", cmd);
    fflush(m->in);
    if (!fgets(line, sizeof line, m->out))
        return -1;
    if (strncmp(line, "ok", 2)) {
        fprintf(stderr, "kafka_mock command '%s': %s", cmd, line);
        return -1;
    }
    return 0;
}

void mock_stop(mock *m)
{
    fclose(m->in); /* the mock keeps running without stdin: signal it */
    kill(m->pid, SIGTERM);
    waitpid(m->pid, NULL, 0);
    fclose(m->out);
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

