/*
 * mnist.c — the `mnist` transform: turns a row of an MNIST table into the
 * message the reference TensorFlow notebook reads.
 *
 *   key   = the label as decimal text ("7")
 *   value = the pixel bytes as unsigned decimals joined by ',' (format csv,
 *           what tf.io.decode_csv reads) or the raw bytes (format raw)
 *
 * Rows whose label or pixels are NULL are dropped with a warning naming the
 * table and LSN; deletes and truncates (no `after` row) are dropped quietly.
 * A row whose columns have the wrong type is an error (errors.tolerance).
 */
#include <tributary/plugin.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mnist {
    trib_ctx *ctx;
    const trib_host *h;
    const char *pixels_field;
    const char *label_field;   /* NULL: find `labels`, then `label` */
    int raw;
    char lsnbuf[32];
    char *csv;                     /* scratch for the csv value, reused per record */
    size_t csv_cap;
} mnist;

/*
 * CSV text of each pixel value, "0," .. "255,": the text in bytes 0-3 (all
 * four used by "255,", so no NUL) and its length in byte 7.  A pixel costs
 * one 4-byte copy from one 8-byte entry.  The table is 2 KB, so it stays in
 * L1 while the other pipeline threads share the core; a 64K-entry table of
 * pixel pairs (576 KB) was a little faster with a warm cache but two to three
 * times slower when other threads shared the core, as in a running pipeline
 * (bench/mnist_bench.sh).
 */
static unsigned char px_csv[256][8];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_build(void)
{
    for (int i = 0; i < 256; i++) {
        char tmp[8] = {0};
        int n = snprintf(tmp, sizeof tmp, "%d,", i);
        memcpy(px_csv[i], tmp, 4);
        px_csv[i][7] = (unsigned char)n;
    }
}

static const trib_option mnist_options[] = {
    {"pixels_field", TRIB_OPT_STRING, "pixels", 0, NULL, "bytea column holding the image bytes", 0},
    {"label_field", TRIB_OPT_STRING, NULL, 0, NULL,
     "label column (default: `labels`, else `label`)", 0},
    {"format", TRIB_OPT_ENUM, "csv", 0, "csv|raw",
     "value as comma-separated pixel numbers, or the raw bytes", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static int mnist_create(trib_ctx *ctx, const trib_host *h, const trib_opts *o, void **inst,
                        char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mnist *m = calloc(1, sizeof *m);
    if (!m)
        return TRIB_ERR;
    m->ctx = ctx;
    m->h = h;
    m->pixels_field = h->opt_str(o, "pixels_field");
    m->label_field = h->opt_str(o, "label_field");
    m->raw = strcmp(h->opt_str(o, "format"), "raw") == 0;
    pthread_once(&tables_once, tables_build);
    *inst = m;
    return TRIB_OK;
}

static void mnist_destroy(void *inst)
{
    mnist *m = inst;
    if (m)
        free(m->csv);
    free(m);
}

static const char *lsn_str(mnist *m, const trib_record *r)
{
    trib_lsn_format(r->src.lsn, m->lsnbuf);
    return m->lsnbuf;
}

static int drop(mnist *m, trib_record **rec, const char *why, const char *col)
{
    trib_record *r = *rec;
    m->h->log(m->ctx, TRIB_LOG_WARN, "dropping a row of %s.%s at LSN %s%s: %s '%s'",
              r->src.schema ? r->src.schema : "?", r->src.table ? r->src.table : "?",
              lsn_str(m, r), r->src.snapshot ? " (snapshot)" : "", why, col);
    m->h->metric_add(m->ctx, "dropped", 1);
    m->h->record_free(r);
    *rec = NULL;
    return TRIB_OK;
}

static int fail(mnist *m, trib_record *r, const char *fmt, const char *col)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, col);
    m->h->log(m->ctx, TRIB_LOG_ERROR, "row of %s.%s at LSN %s: %s",
              r->src.schema ? r->src.schema : "?", r->src.table ? r->src.table : "?",
              lsn_str(m, r), msg);
    return TRIB_ERR;
}

static int set_csv(mnist *m, trib_record *r, const unsigned char *px, size_t n)
{
    /* Written straight into the record's value (ABI 1.1), or into our
     * buffer and copied with bytes_set by an older engine. */
    char *buf;
    if (m->h->abi_minor >= 1) {
        buf = m->h->bytes_alloc(&r->value, n * 4 + 4);
    } else {
        if (n * 4 + 4 > m->csv_cap) {
            char *nb = realloc(m->csv, n * 4 + 4);
            if (!nb)
                return TRIB_ERR;
            m->csv = nb;
            m->csv_cap = n * 4 + 4;
        }
        buf = m->csv;
    }
    /* each store may write past the text (up to 4n bytes in all); what
       follows overwrites it */
    char *o = buf;
    size_t i = 0;
    /* Eight pixels at a time: eight zeros (image borders, backgrounds: half
       of Fashion-MNIST's pixels, most of MNIST's) are one 16-byte store. */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, px + i, 8);
        if (w == 0) {
            memcpy(o, "0,0,0,0,0,0,0,0,", 16);
            o += 16;
            continue;
        }
        for (size_t j = i; j < i + 8; j += 2) {
            const unsigned char *a = px_csv[px[j]], *b = px_csv[px[j + 1]];
            memcpy(o, a, 4);
            o += a[7];
            memcpy(o, b, 4);
            o += b[7];
        }
    }
    for (; i + 1 < n; i += 2) { /* two independent loads per iteration */
        const unsigned char *a = px_csv[px[i]], *b = px_csv[px[i + 1]];
        memcpy(o, a, 4);
        o += a[7];
        memcpy(o, b, 4);
        o += b[7];
    }
    if (i < n) {
        memcpy(o, px_csv[px[i]], 4);
        o += px_csv[px[i]][7];
    }
    size_t len = n ? (size_t)(o - buf) - 1 : 0;
    if (m->h->abi_minor < 1)
        return m->h->bytes_set(&r->value, buf, len);
    r->value.len = len;
    buf[len] = '\0';
    return TRIB_OK;
}

static int mnist_apply(void *inst, trib_record **rec)
{
    mnist *m = inst;
    trib_record *r = *rec;
    if (!r->has_after) { /* delete or truncate: nothing to learn from */
        m->h->record_free(r);
        *rec = NULL;
        return TRIB_OK;
    }
    trib_field *px = m->h->field_get(&r->after, m->pixels_field);
    const char *lname = m->label_field;
    trib_field *lb = NULL;
    if (lname)
        lb = m->h->field_get(&r->after, lname);
    else if ((lb = m->h->field_get(&r->after, "labels")))
        lname = "labels";
    else if ((lb = m->h->field_get(&r->after, "label")))
        lname = "label";
    if (!px)
        return fail(m, r, "no column '%s' (set pixels_field)", m->pixels_field);
    if (!lb)
        return fail(m, r, "no label column '%s' (set label_field)", lname ? lname : "labels");
    if (px->kind == TRIB_VAL_NULL)
        return drop(m, rec, "NULL in", m->pixels_field);
    if (lb->kind == TRIB_VAL_NULL)
        return drop(m, rec, "NULL in", lname);
    if (px->kind == TRIB_VAL_UNCHANGED)
        return drop(m, rec, "unchanged TOASTed value (use REPLICA IDENTITY FULL) in", m->pixels_field);
    if (px->kind != TRIB_VAL_BINARY)
        return fail(m, r, "column '%s' is not bytea", m->pixels_field);
    char *end;
    long label = strtol(lb->data ? lb->data : "", &end, 10);
    if (lb->kind != TRIB_VAL_TEXT || end == lb->data || *end || label < 0)
        return fail(m, r, "label column '%s' does not hold a non-negative integer", lname);
    char key[24], *k = key + sizeof key;
    unsigned long u = (unsigned long)label;
    do
        *--k = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (m->h->bytes_set(&r->key, k, (size_t)(key + sizeof key - k)) != TRIB_OK)
        return TRIB_ERR;
    int rc = m->raw ? m->h->bytes_set(&r->value, px->data, px->len)
                    : set_csv(m, r, (const unsigned char *)px->data, px->len);
    return rc;
}

static const trib_transform_ops mnist_transform = {mnist_apply};

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_PLUGIN_ABI,
    "mnist",
    "0.1.0",
    "MNIST rows to (label, pixels) messages: key = label text, value = CSV or raw pixels",
    TRIB_ROLE_TRANSFORM,
    mnist_options,
    mnist_create,
    NULL,
    mnist_destroy,
    NULL,
    &mnist_transform,
    NULL,
    NULL,
    NULL,
};
