/*
 * config.h — the YAML configuration as a tree of nodes that remember their
 * file, line and column, so every later error can point at the text.
 * Scalars have ${VAR} and ${VAR:-default} substituted at load time.
 */
#ifndef TRIB_CFG_H
#define TRIB_CFG_H

#include <stddef.h>

typedef enum { CN_SCALAR, CN_MAP, CN_SEQ } cnode_type;

typedef struct cnode cnode;
struct cnode {
    cnode_type type;
    char *value;        /* CN_SCALAR: substituted text */
    int quoted;         /* scalar was quoted in YAML (so "true" stays a string) */
    int line, col;      /* 1-based position in the file */
    char **keys;        /* CN_MAP: keys (parallel to items) */
    int *key_lines, *key_cols;
    cnode **items;      /* CN_MAP values / CN_SEQ items */
    size_t n;
    const char *file;   /* shared, owned by the config */
};

typedef struct config {
    char *file;
    cnode *root;
} config;

/** Load `path`.  NULL on error, with "file:line:col: message" in err. */
config *config_load(const char *path, char *err, size_t errlen);
/** Parse YAML text (for tests); `name` is used in messages. */
config *config_parse(const char *name, const char *text, size_t len, char *err, size_t errlen);
void config_free(config *c);

/** Map lookup; NULL if absent or `map` is not a mapping. */
cnode *cnode_get(const cnode *map, const char *key);
/** Index of key in map, or -1. */
int cnode_key_index(const cnode *map, const char *key);
const char *cnode_type_name(const cnode *n);

/** Substitute ${VAR} / ${VAR:-default} in s (malloc'd result), NULL with err on a bad reference. */
char *config_subst_env(const char *s, char *err, size_t errlen);

#endif
