/*
 * options.c — checks a config section against a plugin's option table and
 * stores typed values.  Unknown keys, wrong types, bad enum values and
 * missing required options are reported with file:line:col and the key.
 */
#include "options.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct opt_val {
    const trib_option *decl;
    int given;
    int has;            /* a value (given or default) exists */
    char *str;
    int64_t i;
    double d;
    int b;
    char **items;       /* LIST items / MAP keys */
    char **values;      /* MAP values */
    size_t n;
} opt_val;

struct trib_opts {
    opt_val *v;
    size_t n;
};

const char *opt_type_name(trib_opt_type t)
{
    switch (t) {
    case TRIB_OPT_STRING: return "string";
    case TRIB_OPT_INT: return "int";
    case TRIB_OPT_DOUBLE: return "number";
    case TRIB_OPT_BOOL: return "bool";
    case TRIB_OPT_ENUM: return "enum";
    case TRIB_OPT_LIST: return "list";
    case TRIB_OPT_MAP: return "map";
    }
    return "?";
}

int parse_bool(const char *s)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

static int enum_ok(const char *choices, const char *s)
{
    size_t l = strlen(s);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t cl = bar ? (size_t)(bar - p) : strlen(p);
        if (cl == l && strncmp(p, s, l) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Parse a scalar text into v according to its declared type. */
static int set_scalar(opt_val *v, const char *s, char *why, size_t whylen)
{
    const trib_option *d = v->decl;
    char *end;
    switch (d->type) {
    case TRIB_OPT_STRING:
        break;
    case TRIB_OPT_ENUM:
        if (!enum_ok(d->choices, s)) {
            set_err(why, whylen, "must be one of %s, not '%s'", d->choices, s);
            return -1;
        }
        break;
    case TRIB_OPT_INT:
        errno = 0;
        v->i = strtoll(s, &end, 10);
        if (errno || end == s || *end) {
            set_err(why, whylen, "expects an integer, got '%s'", s);
            return -1;
        }
        break;
    case TRIB_OPT_DOUBLE:
        errno = 0;
        v->d = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v->d)) {
            set_err(why, whylen, "expects a number, got '%s'", s);
            return -1;
        }
        break;
    case TRIB_OPT_BOOL:
        v->b = parse_bool(s);
        if (v->b < 0) {
            set_err(why, whylen, "expects true or false, got '%s'", s);
            return -1;
        }
        break;
    case TRIB_OPT_LIST: /* a single scalar is a one-item list; defaults are comma-separated */
        for (const char *p = s; *p;) {
            const char *c = strchr(p, ',');
            size_t l = c ? (size_t)(c - p) : strlen(p);
            while (l && *p == ' ')
                p++, l--;
            while (l && p[l - 1] == ' ')
                l--;
            if (l) {
                v->items = xrealloc(v->items, (v->n + 1) * sizeof(char *));
                v->items[v->n++] = xstrndup(p, l);
            }
            if (!c)
                break;
            p = c + 1;
        }
        break;
    case TRIB_OPT_MAP:
        set_err(why, whylen, "expects a mapping");
        return -1;
    }
    free(v->str);
    v->str = xstrdup(s);
    v->has = 1;
    return 0;
}

static int set_node(opt_val *v, const cnode *n, char *why, size_t whylen)
{
    const trib_option *d = v->decl;
    if (d->type == TRIB_OPT_LIST && n->type == CN_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            if (n->items[i]->type != CN_SCALAR) {
                set_err(why, whylen, "list items must be scalars");
                return -1;
            }
            v->items = xrealloc(v->items, (v->n + 1) * sizeof(char *));
            v->items[v->n++] = xstrdup(n->items[i]->value);
        }
        v->has = 1;
        return 0;
    }
    if (d->type == TRIB_OPT_MAP && n->type == CN_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            if (n->items[i]->type != CN_SCALAR) {
                set_err(why, whylen, "values of '%s' must be scalars", n->keys[i]);
                return -1;
            }
            v->items = xrealloc(v->items, (v->n + 1) * sizeof(char *));
            v->values = xrealloc(v->values, (v->n + 1) * sizeof(char *));
            v->items[v->n] = xstrdup(n->keys[i]);
            v->values[v->n++] = xstrdup(n->items[i]->value);
        }
        v->has = 1;
        return 0;
    }
    if (n->type != CN_SCALAR) {
        set_err(why, whylen, "expects a %s, got %s", opt_type_name(d->type), cnode_type_name(n));
        return -1;
    }
    return set_scalar(v, n->value, why, whylen);
}

static int is_reserved(const char *const *reserved, const char *key)
{
    for (; reserved && *reserved; reserved++)
        if (strcmp(*reserved, key) == 0)
            return 1;
    return 0;
}

trib_opts *opts_build(const trib_option *table, const cnode *section,
                      const char *const *reserved, const char *where, char *err, size_t errlen)
{
    trib_opts *o = xcalloc(1, sizeof *o);
    for (const trib_option *d = table; d && d->name; d++)
        o->n++;
    o->v = xcalloc(o->n, sizeof *o->v);
    char why[512];
    for (size_t i = 0; i < o->n; i++) {
        o->v[i].decl = &table[i];
        if (table[i].default_value && set_scalar(&o->v[i], table[i].default_value, why, sizeof why)) {
            set_err(err, errlen, "%s: bad default for option '%s': %s (plugin bug)", where,
                    table[i].name, why);
            opts_free(o);
            return NULL;
        }
    }
    for (size_t k = 0; section && k < section->n; k++) {
        const char *key = section->keys[k];
        if (is_reserved(reserved, key))
            continue;
        opt_val *v = NULL;
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->v[i].decl->name, key) == 0)
                v = &o->v[i];
        if (!v) {
            set_err(err, errlen, "%s:%d:%d: unknown key '%s' in %s", section->file,
                    section->key_lines[k], section->key_cols[k], key, where);
            opts_free(o);
            return NULL;
        }
        /* drop the default before applying the given value */
        for (size_t j = 0; j < v->n; j++) {
            free(v->items[j]);
            if (v->values)
                free(v->values[j]);
        }
        v->n = 0;
        v->given = 1;
        if (set_node(v, section->items[k], why, sizeof why)) {
            set_err(err, errlen, "%s:%d:%d: option '%s' in %s %s", section->file,
                    section->items[k]->line, section->items[k]->col, key, where, why);
            opts_free(o);
            return NULL;
        }
    }
    for (size_t i = 0; i < o->n; i++) {
        if (o->v[i].decl->required && !o->v[i].given) {
            if (section)
                set_err(err, errlen, "%s:%d:%d: missing required option '%s' in %s",
                        section->file, section->line, section->col, o->v[i].decl->name, where);
            else
                set_err(err, errlen, "missing required option '%s' in %s", o->v[i].decl->name,
                        where);
            opts_free(o);
            return NULL;
        }
    }
    return o;
}

void opts_free(trib_opts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        opt_val *v = &o->v[i];
        free(v->str);
        for (size_t j = 0; j < v->n; j++) {
            free(v->items[j]);
            if (v->values)
                free(v->values[j]);
        }
        free(v->items);
        free(v->values);
    }
    free(o->v);
    free(o);
}

static const opt_val *find(const trib_opts *o, const char *name)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (strcmp(o->v[i].decl->name, name) == 0)
            return &o->v[i];
    log_error("plugin asked for undeclared option '%s' (plugin bug)", name);
    return NULL;
}

const char *opts_str(const trib_opts *o, const char *name)
{
    const opt_val *v = find(o, name);
    return v && v->has ? v->str : NULL;
}

int64_t opts_int(const trib_opts *o, const char *name)
{
    const opt_val *v = find(o, name);
    return v && v->has ? v->i : 0;
}

double opts_double(const trib_opts *o, const char *name)
{
    const opt_val *v = find(o, name);
    if (!v || !v->has)
        return 0;
    return v->decl->type == TRIB_OPT_INT ? (double)v->i : v->d;
}

int opts_bool(const trib_opts *o, const char *name)
{
    const opt_val *v = find(o, name);
    return v && v->has ? v->b : 0;
}

size_t opts_list(const trib_opts *o, const char *name, const char *const **items)
{
    const opt_val *v = find(o, name);
    *items = v ? (const char *const *)v->items : NULL;
    return v ? v->n : 0;
}

size_t opts_map(const trib_opts *o, const char *name, const char *const **keys,
                const char *const **values)
{
    const opt_val *v = find(o, name);
    *keys = v ? (const char *const *)v->items : NULL;
    *values = v ? (const char *const *)v->values : NULL;
    return v ? v->n : 0;
}

int opts_given(const trib_opts *o, const char *name)
{
    const opt_val *v = find(o, name);
    return v ? v->given : 0;
}
