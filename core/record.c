/*
 * record.c — allocation and copying of trib_record.  Every string and buffer
 * in a record is owned by the record and freed with it.
 */
#include "record.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

trib_record *rec_new(void)
{
    trib_record *r = xcalloc(1, sizeof *r);
    r->src.txid = -1;
    return r;
}

void row_clear(trib_row *row)
{
    for (size_t i = 0; i < row->nfields; i++) {
        free(row->fields[i].name);
        free(row->fields[i].data);
    }
    free(row->fields);
    memset(row, 0, sizeof *row);
}

static void src_free(trib_source_info *s)
{
    free(s->name);
    free(s->db);
    free(s->schema);
    free(s->table);
}

void rec_free(trib_record *r)
{
    if (!r)
        return;
    src_free(&r->src);
    row_clear(&r->before);
    row_clear(&r->after);
    free(r->topic);
    free(r->key.data);
    free(r->value.data);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->msg_id);
    free(r);
}

static char *memdup0(const void *data, size_t len)
{
    char *p = xmalloc(len + 1);
    if (len)
        memcpy(p, data, len);
    p[len] = '\0';
    return p;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void row_copy(trib_row *dst, const trib_row *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->nfields; i++) {
        const trib_field *f = &src->fields[i];
        row_field_add(dst, f->name, f->type_oid, f->type_mod, f->kind, f->data, f->len, f->is_key);
    }
}

static void bytes_copy(trib_bytes *dst, const trib_bytes *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->set)
        bytes_set(dst, src->data ? src->data : "", src->len);
}

trib_record *rec_dup(const trib_record *r)
{
    trib_record *d = rec_new();
    d->op = r->op;
    d->src = r->src;
    d->src.name = dup_or_null(r->src.name);
    d->src.db = dup_or_null(r->src.db);
    d->src.schema = dup_or_null(r->src.schema);
    d->src.table = dup_or_null(r->src.table);
    d->has_before = r->has_before;
    d->has_after = r->has_after;
    row_copy(&d->before, &r->before);
    row_copy(&d->after, &r->after);
    d->topic = dup_or_null(r->topic);
    bytes_copy(&d->key, &r->key);
    bytes_copy(&d->value, &r->value);
    for (size_t i = 0; i < r->nheaders; i++)
        rec_header_add(d, r->headers[i].name, r->headers[i].value, r->headers[i].len);
    d->msg_id = dup_or_null(r->msg_id);
    d->seq = r->seq;
    return d;
}

int row_field_add(trib_row *row, const char *name, uint32_t type_oid, int32_t type_mod,
                  trib_val_kind kind, const void *data, size_t len, int is_key)
{
    if (!name)
        return TRIB_ERR;
    if (row->nfields == row->cap) {
        row->cap = row->cap ? row->cap * 2 : 8;
        row->fields = xrealloc(row->fields, row->cap * sizeof *row->fields);
    }
    trib_field *f = &row->fields[row->nfields++];
    memset(f, 0, sizeof *f);
    f->name = xstrdup(name);
    f->type_oid = type_oid;
    f->type_mod = type_mod;
    f->kind = kind;
    f->is_key = is_key;
    if (kind == TRIB_VAL_TEXT || kind == TRIB_VAL_BINARY) {
        f->data = memdup0(data, len);
        f->len = len;
    }
    return TRIB_OK;
}

trib_field *row_field_get(const trib_row *row, const char *name)
{
    for (size_t i = 0; i < row->nfields; i++)
        if (strcmp(row->fields[i].name, name) == 0)
            return &row->fields[i];
    return NULL;
}

int bytes_set(trib_bytes *b, const void *data, size_t len)
{
    char *old = b->data; /* freed last: `data` may point into it */
    trib_bytes nb = {NULL, 0, 0};
    if (data) {
        nb.data = memdup0(data, len);
        nb.len = len;
        nb.set = 1;
    } else if (len) {
        return TRIB_ERR;
    }
    *b = nb;
    free(old);
    return TRIB_OK;
}

char *bytes_alloc(trib_bytes *b, size_t len)
{
    free(b->data);
    b->data = xmalloc(len + 1);
    b->data[len] = '\0';
    b->len = len;
    b->set = 1;
    return b->data;
}

int str_set(char **dst, const char *s)
{
    char *old = *dst;
    *dst = s ? xstrdup(s) : NULL;
    free(old);
    return TRIB_OK;
}

int rec_header_add(trib_record *r, const char *name, const void *value, size_t len)
{
    if (!name || (!value && len))
        return TRIB_ERR;
    r->headers = xrealloc(r->headers, (r->nheaders + 1) * sizeof *r->headers);
    trib_header *h = &r->headers[r->nheaders++];
    h->name = xstrdup(name);
    h->value = memdup0(value, len);
    h->len = len;
    return TRIB_OK;
}

const trib_header *rec_header_get(const trib_record *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return &r->headers[i];
    return NULL;
}
