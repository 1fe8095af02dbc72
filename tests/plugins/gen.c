/*
 * gen.c — test-only source: emits `count` synthetic MNIST-shaped rows
 * (labels int2, pixels bytea of 784 bytes) in transactions of `tx_size`
 * rows, each followed by a position marker (position = 100 * tx number).
 * On close it writes the last committed position to `commit_file`, so tests
 * can check the ack window end to end.  Every `null_every`-th row has NULL
 * pixels.  With `hold: true` it keeps running (emitting nothing) until the
 * engine stops, like a streaming source.  `pixels_hex` replaces the pixel
 * pattern with the given bytes, repeated to 784 (byte-exact output checks).
 *
 * As a sink it acknowledges nothing in send(): it holds the records until
 * the core calls drain() (ABI 1.2: when it has nothing else to send) or
 * flush(), and on destroy writes to `drain_file` how many records drain()
 * and flush() acknowledged.
 */
#include <tributary/plugin.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gen {
    trib_ctx *ctx;
    const trib_host *h;
    int64_t count, tx_size, null_every;
    int hold;
    const char *commit_file, *label_field;
    atomic_uint_fast64_t committed;
    const char *drain_file;
    unsigned char pat[784]; /* pixels_hex, decoded */
    size_t npat;            /* 0: the (i + j) % 256 pattern */
    trib_record **held; /* sink: records not yet acknowledged */
    size_t nheld, capheld;
    unsigned long by_drain, by_flush;
} gen;

static const trib_option gen_options[] = {
    {"count", TRIB_OPT_INT, "100", 0, NULL, "rows to emit", 0},
    {"tx_size", TRIB_OPT_INT, "10", 0, NULL, "rows per transaction", 0},
    {"null_every", TRIB_OPT_INT, "0", 0, NULL, "every Nth row has NULL pixels (0: never)", 0},
    {"hold", TRIB_OPT_BOOL, "false", 0, NULL, "keep running until stopped", 0},
    {"commit_file", TRIB_OPT_STRING, NULL, 0, NULL, "write the last committed position here", 0},
    {"label_field", TRIB_OPT_STRING, "labels", 0, NULL, "name of the label column", 0},
    {"drain_file", TRIB_OPT_STRING, NULL, 0, NULL, "sink: write the drain/flush ack counts here", 0},
    {"pixels_hex", TRIB_OPT_STRING, NULL, 0, NULL, "pixel bytes in hex, repeated to 784", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static int gen_create(trib_ctx *ctx, const trib_host *h, const trib_opts *o, void **inst,
                      char *err, size_t errlen)
{
    gen *g = calloc(1, sizeof *g);
    g->ctx = ctx;
    g->h = h;
    g->count = h->opt_int(o, "count");
    g->tx_size = h->opt_int(o, "tx_size");
    g->null_every = h->opt_int(o, "null_every");
    g->hold = h->opt_bool(o, "hold");
    g->commit_file = h->opt_str(o, "commit_file");
    g->label_field = h->opt_str(o, "label_field");
    g->drain_file = h->opt_str(o, "drain_file");
    const char *hex = h->opt_str(o, "pixels_hex");
    for (size_t k = 0; hex && hex[k] && hex[k + 1] && g->npat < sizeof g->pat; k += 2) {
        unsigned v;
        if (sscanf(hex + k, "%2x", &v) != 1) {
            snprintf(err, errlen, "pixels_hex: not hex at offset %zu", k);
            free(g);
            return TRIB_ERR;
        }
        g->pat[g->npat++] = (unsigned char)v;
    }
    if (g->tx_size < 1) {
        snprintf(err, errlen, "tx_size must be at least 1");
        free(g);
        return TRIB_ERR;
    }
    *inst = g;
    return TRIB_OK;
}

static void ack_held(gen *g, unsigned long *count)
{
    for (size_t i = 0; i < g->nheld; i++)
        g->h->ack(g->ctx, g->held[i], TRIB_OK, NULL);
    *count += g->nheld;
    g->nheld = 0;
}

static void gen_destroy(void *inst)
{
    gen *g = inst;
    if (g->drain_file) {
        FILE *f = fopen(g->drain_file, "w");
        if (f) {
            fprintf(f, "drain %lu flush %lu\n", g->by_drain, g->by_flush);
            fclose(f);
        }
    }
    for (size_t i = 0; i < g->nheld; i++)
        g->h->ack(g->ctx, g->held[i], TRIB_STOP, "test sink destroyed");
    free(g->held);
    free(g);
}

static int sink_send(void *inst, trib_record **recs, size_t n)
{
    gen *g = inst;
    if (g->nheld + n > g->capheld) {
        size_t cap = (g->nheld + n) * 2;
        trib_record **nh = realloc(g->held, cap * sizeof *nh);
        if (!nh) {
            for (size_t i = 0; i < n; i++)
                g->h->ack(g->ctx, recs[i], TRIB_ERR, "out of memory");
            return TRIB_ERR;
        }
        g->held = nh;
        g->capheld = cap;
    }
    memcpy(g->held + g->nheld, recs, n * sizeof *recs);
    g->nheld += n;
    return TRIB_OK;
}

static int sink_drain(void *inst, int timeout_ms)
{
    (void)timeout_ms;
    gen *g = inst;
    ack_held(g, &g->by_drain);
    return TRIB_OK;
}

static int sink_flush(void *inst, int timeout_ms)
{
    (void)timeout_ms;
    gen *g = inst;
    ack_held(g, &g->by_flush);
    return TRIB_OK;
}

static const trib_sink_ops gen_sink = {.send = sink_send, .flush = sink_flush, .drain = sink_drain};

static int emit_retry(gen *g, trib_record *r, int marker, uint64_t pos)
{
    for (;;) {
        int rc = marker ? g->h->emit_position(g->ctx, pos, 100) : g->h->emit(g->ctx, r, 100);
        if (rc != TRIB_RETRY)
            return rc;
    }
}

static trib_record *make_row(gen *g, int64_t i)
{
    trib_record *r = g->h->record_new();
    r->op = 'c';
    g->h->str_set(&r->topic, "test.public.gen");
    g->h->str_set(&r->src.schema, "public");
    g->h->str_set(&r->src.table, "gen");
    r->src.lsn = (uint64_t)(i + 1);
    r->has_after = 1;
    char lab[8];
    int ll = snprintf(lab, sizeof lab, "%d", (int)(i % 10));
    unsigned char px[784];
    for (int j = 0; j < 784; j++)
        px[j] = g->npat ? g->pat[j % g->npat] : (unsigned char)((i + j) % 256);
    g->h->field_add(&r->after, "id", TRIB_OID_INT4, -1, TRIB_VAL_TEXT, lab, (size_t)ll, 1);
    g->h->field_add(&r->after, g->label_field, TRIB_OID_INT2, -1, TRIB_VAL_TEXT, lab, (size_t)ll, 0);
    if (g->null_every && (i + 1) % g->null_every == 0)
        g->h->field_add(&r->after, "pixels", TRIB_OID_BYTEA, -1, TRIB_VAL_NULL, NULL, 0, 0);
    else
        g->h->field_add(&r->after, "pixels", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, px, 784, 0);
    return r;
}

static int gen_run(void *inst)
{
    gen *g = inst;
    for (int64_t i = 0; i < g->count; i++) {
        if (emit_retry(g, make_row(g, i), 0, 0) == TRIB_STOP)
            return TRIB_OK;
        if ((i + 1) % g->tx_size == 0 || i + 1 == g->count)
            if (emit_retry(g, NULL, 1, (uint64_t)(i / g->tx_size + 1) * 100) == TRIB_STOP)
                return TRIB_OK;
    }
    while (g->hold && !g->h->stopping(g->ctx)) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return TRIB_OK;
}

static void gen_commit(void *inst, uint64_t pos)
{
    gen *g = inst;
    atomic_store(&g->committed, pos);
}

static void gen_close(void *inst)
{
    gen *g = inst;
    if (!g->commit_file)
        return;
    FILE *f = fopen(g->commit_file, "w");
    if (f) {
        fprintf(f, "%llu\n", (unsigned long long)atomic_load(&g->committed));
        fclose(f);
    }
}

static const trib_source_ops gen_source = {gen_run, gen_commit, gen_close};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "gen",
    "0.0.1",
    "test source: synthetic MNIST rows; test sink acking only in drain/flush",
    TRIB_ROLE_SOURCE | TRIB_ROLE_SINK,
    gen_options,
    gen_create,
    NULL,
    gen_destroy,
    &gen_source,
    NULL,
    &gen_sink,
    NULL,
    NULL,
};
