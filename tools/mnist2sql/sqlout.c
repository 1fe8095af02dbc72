/*
 * sqlout.c — write a data set as SQL, quickly and atomically.
 *
 * Two formats:
 *   insert  CREATE TABLE on the first line, then one INSERT per line, so
 *           `head -5 f.sql | sed s/test/manual/ | psql` makes a new table
 *           with four rows, and each row streams as its own change;
 *   copy    CREATE TABLE, then one `COPY … FROM stdin` block: the bulk load.
 * Image bytes are bytea hex: E'\\x00ff…' in INSERTs (correct whatever
 * standard_conforming_strings says), \\x00ff… in COPY text (where the
 * backslash itself must be escaped).
 *
 * Speed: a 512-byte table maps each byte to its two hex digits, rows are
 * assembled in a large buffer and written with write(2) in multi-megabyte
 * chunks.  Output goes to a mkstemp file next to the target and is renamed
 * over it only when everything was written.
 */
#include "m2s.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUFSZ (4u << 20)
/* Longest row: fixed text (< 200 bytes with the table name) + hex. */
#define ROW_MAX (2 * M2S_PIXELS + 512)
#define TABLE_MAX 200

/* The text around the two values of one row. */
struct row_fmt {
    char pre[TABLE_MAX + 100];
    char mid[16];
    char post[16];
    size_t pre_len, mid_len, post_len;
    bool label_first;
};

struct writer {
    struct m2s_output *out;
    char *buf;
    size_t used;
    char hex[512];
};

int m2s_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return -1;
    }
    return 0;
}

int m2s_output_open(struct m2s_output *out, const char *dir, const char *name,
                    char *err, size_t errlen)
{
    out->fd = -1;
    out->tmp[0] = '\0';
    int n = snprintf(out->path, sizeof out->path, "%s/%s", dir, name);
    int m = snprintf(out->tmp, sizeof out->tmp, "%s/.%s.tmp.XXXXXX", dir, name);
    if (n < 0 || (size_t)n >= sizeof out->path || m < 0 || (size_t)m >= sizeof out->tmp) {
        snprintf(err, errlen, "%s: output path too long", dir);
        out->tmp[0] = '\0';
        return -1;
    }
    out->fd = mkstemp(out->tmp);
    if (out->fd < 0) {
        snprintf(err, errlen, "%s: cannot create a file in %s: %s", out->path, dir,
                 strerror(errno));
        out->tmp[0] = '\0';
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(out->fd, 0666 & ~mask) < 0) {
        snprintf(err, errlen, "%s: chmod: %s", out->tmp, strerror(errno));
        m2s_output_abort(out);
        return -1;
    }
    return 0;
}

void m2s_output_abort(struct m2s_output *out)
{
    if (out->fd >= 0)
        close(out->fd);
    out->fd = -1;
    if (out->tmp[0])
        unlink(out->tmp);
    out->tmp[0] = '\0';
}

int m2s_output_commit(struct m2s_output *out, char *err, size_t errlen)
{
    int rc = close(out->fd);
    out->fd = -1;
    if (rc < 0) {
        snprintf(err, errlen, "%s: close failed: %s", out->path, strerror(errno));
        m2s_output_abort(out);
        return -1;
    }
    if (rename(out->tmp, out->path) < 0) {
        snprintf(err, errlen, "%s: cannot rename %s into place: %s", out->path, out->tmp,
                 strerror(errno));
        m2s_output_abort(out);
        return -1;
    }
    out->tmp[0] = '\0';
    return 0;
}

static int flush_buf(struct writer *w, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < w->used) {
        ssize_t n = write(w->out->fd, w->buf + off, w->used - off);
        if (n < 0 && errno == EINTR && !m2s_interrupted)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: write failed: %s", w->out->path,
                     m2s_interrupted ? "interrupted" : strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    w->used = 0;
    return 0;
}

static void put(struct writer *w, const char *s, size_t len)
{
    memcpy(w->buf + w->used, s, len);
    w->used += len;
}

static void put_label(struct writer *w, unsigned v)
{
    char *p = w->buf + w->used;
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    w->used = (size_t)(p - w->buf);
}

static void put_hex(struct writer *w, const uint8_t *px)
{
    char *p = w->buf + w->used;
    for (size_t i = 0; i < M2S_PIXELS; i++) {
        memcpy(p, w->hex + 2 * px[i], 2);
        p += 2;
    }
    w->used += 2 * M2S_PIXELS;
}

static const char *shape_columns(enum m2s_shape shape)
{
    return shape == M2S_SHAPE_KEYED ? "label, pixels" : "pixels, labels";
}

static void make_row_fmt(struct row_fmt *f, const char *table,
                         const struct m2s_write_opts *o)
{
    bool keyed = o->shape == M2S_SHAPE_KEYED;
    f->label_first = keyed;
    if (o->format == M2S_FORMAT_COPY) {
        snprintf(f->pre, sizeof f->pre, "%s", keyed ? "" : "\\\\x");
        snprintf(f->mid, sizeof f->mid, "%s", keyed ? "\t\\\\x" : "\t");
        snprintf(f->post, sizeof f->post, "\n");
    } else {
        snprintf(f->pre, sizeof f->pre, "INSERT INTO %s (%s) VALUES (%s", table,
                 shape_columns(o->shape), keyed ? "" : "E'\\\\x");
        snprintf(f->mid, sizeof f->mid, "%s", keyed ? ", E'\\\\x" : "', ");
        snprintf(f->post, sizeof f->post, "%s", keyed ? "');\n" : ");\n");
    }
    f->pre_len = strlen(f->pre);
    f->mid_len = strlen(f->mid);
    f->post_len = strlen(f->post);
}

static void put_header(struct writer *w, const char *table, const struct m2s_write_opts *o)
{
    char line[TABLE_MAX + 200];
    int n = 0;
    if (o->create) {
        n = snprintf(line, sizeof line, "CREATE TABLE %s (%s);\n", table,
                     o->shape == M2S_SHAPE_KEYED
                         ? "id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA"
                         : "pixels BYTEA, labels SMALLINT");
        put(w, line, (size_t)n);
    }
    if (o->format == M2S_FORMAT_COPY) {
        n = snprintf(line, sizeof line, "COPY %s (%s) FROM stdin;\n", table,
                     shape_columns(o->shape));
        put(w, line, (size_t)n);
    }
}

static void progress(const struct m2s_output *out, uint32_t i, uint32_t rows)
{
    fprintf(stderr, "\rwriting %s: %3u%%", out->path,
            rows ? (unsigned)((uint64_t)i * 100 / rows) : 100u);
    if (i == rows)
        fputc('\n', stderr);
}

static int write_rows(struct writer *w, const struct row_fmt *f, const struct m2s_set *set,
                      uint32_t rows, bool show, char *err, size_t errlen)
{
    uint32_t step = rows / 100 ? rows / 100 : 1;
    for (uint32_t i = 0; i < rows; i++) {
        if (OUT_BUFSZ - w->used < ROW_MAX && flush_buf(w, err, errlen) < 0)
            return -1;
        const uint8_t *px = set->pixels + (size_t)i * M2S_PIXELS;
        put(w, f->pre, f->pre_len);
        if (f->label_first)
            put_label(w, set->labels[i]);
        else
            put_hex(w, px);
        put(w, f->mid, f->mid_len);
        if (f->label_first)
            put_hex(w, px);
        else
            put_label(w, set->labels[i]);
        put(w, f->post, f->post_len);
        if (show && i % step == 0)
            progress(w->out, i, rows);
        if (m2s_interrupted) {
            snprintf(err, errlen, "%s: interrupted", w->out->path);
            return -1;
        }
    }
    if (show)
        progress(w->out, rows, rows);
    return 0;
}

int m2s_write_sql(struct m2s_output *out, const char *table,
                  const struct m2s_set *set, const struct m2s_write_opts *opts,
                  char *err, size_t errlen)
{
    if (strlen(table) > TABLE_MAX) {
        snprintf(err, errlen, "table name too long: %s", table);
        return -1;
    }
    struct writer w = { .out = out, .used = 0 };
    w.buf = malloc(OUT_BUFSZ);
    if (!w.buf) {
        snprintf(err, errlen, "%s: out of memory", out->path);
        return -1;
    }
    static const char digits[] = "0123456789abcdef";
    for (int b = 0; b < 256; b++) {
        w.hex[2 * b] = digits[b >> 4];
        w.hex[2 * b + 1] = digits[b & 15];
    }
    struct row_fmt f;
    make_row_fmt(&f, table, opts);
    uint32_t rows = opts->limit && opts->limit < set->count ? opts->limit : set->count;
    put_header(&w, table, opts);
    int rc = write_rows(&w, &f, set, rows, opts->progress, err, errlen);
    if (rc == 0 && opts->format == M2S_FORMAT_COPY)
        put(&w, "\\.\n", 3);
    if (rc == 0)
        rc = flush_buf(&w, err, errlen);
    free(w.buf);
    return rc;
}
