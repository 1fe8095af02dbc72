/*
 * config.c — loads the YAML config with libyaml's event parser into a small
 * node tree.  Anchors/aliases are refused (a config should read top-down);
 * environment references are substituted in every scalar.
 */
#include "cfg.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    yaml_parser_t parser;
    const char *file;
    char *err;
    size_t errlen;
} loader;

static cnode *node_new(loader *L, cnode_type t, const yaml_event_t *ev)
{
    cnode *n = xcalloc(1, sizeof *n);
    n->type = t;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->file = L->file;
    return n;
}

static void node_free(cnode *n)
{
    if (!n)
        return;
    free(n->value);
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_lines);
    free(n->key_cols);
    free(n->items);
    free(n);
}

static void node_append(cnode *parent, char *key, int kl, int kc, cnode *child)
{
    parent->items = xrealloc(parent->items, (parent->n + 1) * sizeof *parent->items);
    if (parent->type == CN_MAP) {
        parent->keys = xrealloc(parent->keys, (parent->n + 1) * sizeof *parent->keys);
        parent->key_lines = xrealloc(parent->key_lines, (parent->n + 1) * sizeof(int));
        parent->key_cols = xrealloc(parent->key_cols, (parent->n + 1) * sizeof(int));
        parent->keys[parent->n] = key;
        parent->key_lines[parent->n] = kl;
        parent->key_cols[parent->n] = kc;
    }
    parent->items[parent->n++] = child;
}

static int next_event(loader *L, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&L->parser, ev)) {
        set_err(L->err, L->errlen, "%s:%zu:%zu: YAML syntax error: %s", L->file,
                L->parser.problem_mark.line + 1, L->parser.problem_mark.column + 1,
                L->parser.problem ? L->parser.problem : "unknown");
        return -1;
    }
    return 0;
}

static cnode *parse_node(loader *L, yaml_event_t *ev);

static cnode *parse_scalar(loader *L, yaml_event_t *ev)
{
    cnode *n = node_new(L, CN_SCALAR, ev);
    char sub_err[256];
    n->value = config_subst_env((const char *)ev->data.scalar.value, sub_err, sizeof sub_err);
    n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    if (!n->value) {
        set_err(L->err, L->errlen, "%s:%d:%d: %s", L->file, n->line, n->col, sub_err);
        node_free(n);
        return NULL;
    }
    return n;
}

static cnode *parse_collection(loader *L, yaml_event_t *start, int is_map)
{
    cnode *n = node_new(L, is_map ? CN_MAP : CN_SEQ, start);
    for (;;) {
        yaml_event_t ev;
        if (next_event(L, &ev) < 0)
            goto fail;
        if (ev.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&ev);
            return n;
        }
        char *key = NULL;
        int kl = 0, kc = 0;
        if (is_map) {
            if (ev.type != YAML_SCALAR_EVENT) {
                set_err(L->err, L->errlen, "%s:%zu:%zu: mapping keys must be plain scalars",
                        L->file, ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto fail;
            }
            key = xstrdup((const char *)ev.data.scalar.value);
            kl = (int)ev.start_mark.line + 1;
            kc = (int)ev.start_mark.column + 1;
            yaml_event_delete(&ev);
            if (cnode_key_index(n, key) >= 0) {
                set_err(L->err, L->errlen, "%s:%d:%d: duplicate key '%s'", L->file, kl, kc, key);
                free(key);
                goto fail;
            }
            if (next_event(L, &ev) < 0) {
                free(key);
                goto fail;
            }
        }
        cnode *child = parse_node(L, &ev);
        yaml_event_delete(&ev);
        if (!child) {
            free(key);
            goto fail;
        }
        node_append(n, key, kl, kc, child);
    }
fail:
    node_free(n);
    return NULL;
}

static cnode *parse_node(loader *L, yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return parse_scalar(L, ev);
    case YAML_MAPPING_START_EVENT:
        return parse_collection(L, ev, 1);
    case YAML_SEQUENCE_START_EVENT:
        return parse_collection(L, ev, 0);
    case YAML_ALIAS_EVENT:
        set_err(L->err, L->errlen, "%s:%zu:%zu: YAML aliases are not supported", L->file,
                ev->start_mark.line + 1, ev->start_mark.column + 1);
        return NULL;
    default:
        set_err(L->err, L->errlen, "%s:%zu:%zu: unexpected YAML event", L->file,
                ev->start_mark.line + 1, ev->start_mark.column + 1);
        return NULL;
    }
}

config *config_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    config *c = xcalloc(1, sizeof *c);
    c->file = xstrdup(name);
    loader L = {.file = c->file, .err = err, .errlen = errlen};
    yaml_parser_initialize(&L.parser);
    yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
    yaml_event_t ev;
    cnode *root = NULL;
    int ok = 0;
    /* stream start, document start, node, document end, stream end */
    while (next_event(&L, &ev) == 0) {
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            ok = 1;
            break;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            if (root) {
                set_err(err, errlen, "%s:%zu: only one YAML document is allowed", name,
                        ev.start_mark.line + 1);
                yaml_event_delete(&ev);
                break;
            }
            root = parse_node(&L, &ev);
            yaml_event_delete(&ev);
            if (!root)
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&L.parser);
    if (ok && !root) {
        set_err(err, errlen, "%s: the config is empty", name);
        ok = 0;
    }
    if (ok && root->type != CN_MAP) {
        set_err(err, errlen, "%s:%d:%d: the config must be a mapping (pipeline:, trainer:, ...)",
                name, root->line, root->col);
        ok = 0;
    }
    if (!ok) {
        node_free(root);
        free(c->file);
        free(c);
        return NULL;
    }
    c->root = root;
    return c;
}

config *config_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open config: %s", path, strerror(errno));
        return NULL;
    }
    strbuf b;
    sb_init(&b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_put(&b, buf, n);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        set_err(err, errlen, "%s: cannot read config", path);
        sb_free(&b);
        return NULL;
    }
    config *c = config_parse(path, b.data ? b.data : "", b.len, err, errlen);
    sb_free(&b);
    return c;
}

void config_free(config *c)
{
    if (!c)
        return;
    node_free(c->root);
    free(c->file);
    free(c);
}

int cnode_key_index(const cnode *map, const char *key)
{
    if (!map || map->type != CN_MAP)
        return -1;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return (int)i;
    return -1;
}

cnode *cnode_get(const cnode *map, const char *key)
{
    int i = cnode_key_index(map, key);
    return i < 0 ? NULL : map->items[i];
}

const char *cnode_type_name(const cnode *n)
{
    return n->type == CN_MAP ? "a mapping" : n->type == CN_SEQ ? "a list" : "a scalar";
}

char *config_subst_env(const char *s, char *err, size_t errlen)
{
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "");
    for (const char *p = s; *p;) {
        if (p[0] == '$' && p[1] == '$') { /* $$ escapes a literal $ */
            sb_putc(&b, '$');
            p += 2;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            sb_putc(&b, *p++);
            continue;
        }
        const char *end = strchr(p + 2, '}');
        if (!end) {
            set_err(err, errlen, "unterminated ${ in \"%s\"", s);
            sb_free(&b);
            return NULL;
        }
        char *ref = xstrndup(p + 2, (size_t)(end - p - 2));
        char *def = strstr(ref, ":-");
        if (def) {
            *def = '\0';
            def += 2;
        }
        int valid = ref[0] != '\0';
        for (char *q = ref; *q; q++)
            if (!(*q == '_' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (q != ref && *q >= '0' && *q <= '9')))
                valid = 0;
        if (!valid) {
            set_err(err, errlen, "bad environment reference ${%s}", ref);
            free(ref);
            sb_free(&b);
            return NULL;
        }
        const char *v = getenv(ref);
        if (!v || (!*v && def))
            v = def;
        if (!v) {
            set_err(err, errlen, "environment variable %s is not set (use ${%s:-default})", ref,
                    ref);
            free(ref);
            sb_free(&b);
            return NULL;
        }
        sb_puts(&b, v);
        free(ref);
        p = end + 1;
    }
    return sb_steal(&b, NULL);
}
