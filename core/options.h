/*
 * options.h — typed option values built from a plugin's trib_option table
 * and its config section.  One table drives parsing, validation and the
 * `tributary plugins NAME` listing.
 */
#ifndef TRIB_OPTIONS_H
#define TRIB_OPTIONS_H

#include <tributary/plugin.h>
#include "cfg.h"

/**
 * Validate `section` (a mapping, or NULL for "no options") against `table`.
 * `reserved` lists keys the core handles itself (NULL-terminated).  `where`
 * names the section in messages, e.g. "sink (redis)".  Returns NULL with
 * "file:line:col: ..." in err on the first problem.
 */
trib_opts *opts_build(const trib_option *table, const cnode *section,
                      const char *const *reserved, const char *where, char *err,
                      size_t errlen);
void opts_free(trib_opts *o);

const char *opts_str(const trib_opts *o, const char *name);
int64_t opts_int(const trib_opts *o, const char *name);
double opts_double(const trib_opts *o, const char *name);
int opts_bool(const trib_opts *o, const char *name);
size_t opts_list(const trib_opts *o, const char *name, const char *const **items);
size_t opts_map(const trib_opts *o, const char *name, const char *const **keys,
                const char *const **values);
int opts_given(const trib_opts *o, const char *name);

const char *opt_type_name(trib_opt_type t);
/** Parse a boolean word; -1 if not one. */
int parse_bool(const char *s);

#endif
