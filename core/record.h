/*
 * record.h — the record model's allocation functions, exported to plugins
 * through the host table (see trib_host in <tributary/plugin.h>).
 */
#ifndef TRIB_RECORD_H
#define TRIB_RECORD_H

#include <tributary/plugin.h>

trib_record *rec_new(void);
void rec_free(trib_record *r);
trib_record *rec_dup(const trib_record *r);
void row_clear(trib_row *row);
int row_field_add(trib_row *row, const char *name, uint32_t type_oid, int32_t type_mod,
                  trib_val_kind kind, const void *data, size_t len, int is_key);
trib_field *row_field_get(const trib_row *row, const char *name);
int bytes_set(trib_bytes *b, const void *data, size_t len);
char *bytes_alloc(trib_bytes *b, size_t len);
int str_set(char **dst, const char *s);
int rec_header_add(trib_record *r, const char *name, const void *value, size_t len);
/** The interned copy of s (trib_host.intern, ABI 1.3); NULL when out of memory. */
const char *rec_intern(const char *s);
/** 1 when p points into the interned strings (never freed). */
int rec_interned(const char *p);
/** Value of header `name`, NULL if absent. */
const trib_header *rec_header_get(const trib_record *r, const char *name);

#endif
