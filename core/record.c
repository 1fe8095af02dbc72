/*
 * record.c — allocation and copying of trib_record.  Every string and buffer
 * in a record is owned by the record and freed with it, except interned
 * strings (rec_intern): names a source repeats in every record (topic, table,
 * column names), kept once for the life of the process and shared by
 * pointer, which saves the Postgres source seven of the thirteen
 * allocations of an MNIST snapshot row, and the sink thread as many frees.
 */
#include "record.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The interned strings live in one reserved mapping, so "is this pointer
 * interned?" (asked for every string a record frees) is a range check.  The
 * mapping is read-only except while a string is being written into it under
 * the lock: a plugin writing into a shared name crashes at once instead of
 * changing every record's.  A hash set of offsets finds existing copies.
 */
#define INTERN_BYTES ((size_t)16 << 20)

static pthread_mutex_t ilock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(uintptr_t) ibase; /* start of the mapping; 0 until the first rec_intern */
static size_t iused, ipage;
static uint32_t *iset; /* offsets + 1; 0 = empty slot */
static size_t iset_cap, iset_len;

int rec_interned(const char *p)
{
    uintptr_t b = atomic_load_explicit(&ibase, memory_order_acquire);
    return b && (uintptr_t)p >= b && (uintptr_t)p < b + INTERN_BYTES;
}

static uint64_t str_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot holding `s`, or the empty slot where it belongs. */
static size_t iset_find(const char *base, const char *s, size_t len, uint64_t h)
{
    size_t i = (size_t)h & (iset_cap - 1);
    for (; iset[i]; i = (i + 1) & (iset_cap - 1)) {
        const char *e = base + iset[i] - 1;
        if (strlen(e) == len && memcmp(e, s, len) == 0)
            break;
    }
    return i;
}

static int iset_grow(const char *base)
{
    size_t ncap = iset_cap ? iset_cap * 2 : 256;
    uint32_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    uint32_t *old = iset;
    size_t ocap = iset_cap;
    iset = n;
    iset_cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i])
            continue;
        const char *e = base + old[i] - 1;
        size_t len = strlen(e);
        iset[iset_find(base, e, len, str_hash(e, len))] = old[i];
    }
    free(old);
    return 0;
}

const char *rec_intern(const char *s)
{
    if (!s)
        return NULL;
    if (rec_interned(s))
        return s;
    size_t len = strlen(s);
    const char *out = NULL;
    pthread_mutex_lock(&ilock);
    char *base = (char *)atomic_load_explicit(&ibase, memory_order_relaxed);
    if (!base) {
        void *m = mmap(NULL, INTERN_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (m == MAP_FAILED)
            goto done;
        base = m;
        ipage = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&ibase, (uintptr_t)base, memory_order_release);
    }
    if ((iset_len + 1) * 2 > iset_cap && iset_grow(base) != 0)
        goto done;
    uint64_t h = str_hash(s, len);
    size_t slot = iset_find(base, s, len, h);
    if (iset[slot]) {
        out = base + iset[slot] - 1;
        goto done;
    }
    if (len + 1 > INTERN_BYTES - iused) /* full: the caller keeps copying */
        goto done;
    char *from = base + iused / ipage * ipage;
    size_t span = (size_t)(base + iused + len + 1 - from);
    if (mprotect(from, span, PROT_READ | PROT_WRITE) != 0)
        goto done;
    memcpy(base + iused, s, len + 1);
    mprotect(from, span, PROT_READ);
    out = base + iused;
    iset[slot] = (uint32_t)iused + 1;
    iset_len++;
    iused += len + 1;
done:
    pthread_mutex_unlock(&ilock);
    return out;
}

/* free() for a record's strings: interned ones stay. */
static void sfree(char *p)
{
    if (!rec_interned(p))
        free(p);
}

trib_record *rec_new(void)
{
    trib_record *r = xcalloc(1, sizeof *r);
    r->src.txid = -1;
    return r;
}

void row_clear(trib_row *row)
{
    for (size_t i = 0; i < row->nfields; i++) {
        sfree(row->fields[i].name);
        free(row->fields[i].data);
    }
    free(row->fields);
    memset(row, 0, sizeof *row);
}

static void src_free(trib_source_info *s)
{
    sfree(s->name);
    sfree(s->db);
    sfree(s->schema);
    sfree(s->table);
}

void rec_free(trib_record *r)
{
    if (!r)
        return;
    src_free(&r->src);
    row_clear(&r->before);
    row_clear(&r->after);
    sfree(r->topic);
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

/* A record's copy of `s`: interned strings are shared, not copied. */
static char *dup_or_null(const char *s)
{
    return !s || rec_interned(s) ? (char *)s : xstrdup(s);
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
    f->name = dup_or_null(name);
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
    *dst = dup_or_null(s);
    sfree(old);
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
