/*
 * pgtext.h — pure text helpers for the Postgres source: COPY text-format
 * rows, bytea hex decoding, identifier/literal quoting and the `tables`
 * option syntax.  No libpq, no I/O: unit-tested in tests/internal.
 */
#ifndef TRIB_PG_PGTEXT_H
#define TRIB_PG_PGTEXT_H

#include <stddef.h>

/** One field of a COPY text row, unescaped in place and NUL-terminated. */
typedef struct pgt_field {
    char *data;     /* NULL for SQL NULL */
    size_t len;
} pgt_field;

/**
 * Split and unescape one COPY TO STDOUT text-format row in place.  `line`
 * holds `len` bytes (a trailing '\n' is allowed) and must have room for one
 * more byte (a NUL) at line[len].  Fills exactly `ncols` fields; a row with
 * another column count is an error.  0 or -1 (err filled).
 */
int pgt_copy_row(char *line, size_t len, pgt_field *fields, size_t ncols, char *err,
                 size_t errlen);

/**
 * One CopyData message of a binary-format COPY TO STDOUT (the server sends one
 * message per tuple; the file header comes with the first).  *header_done
 * starts at 0 and is set once the header was read.  Fields point into msg
 * (not NUL-terminated).  Returns 1 for a tuple (exactly ncols fields), 0 for
 * the trailer, 2 for a header alone, -1 with err filled when malformed.
 */
int pgt_copy_binary(char *msg, size_t len, int *header_done, pgt_field *fields, size_t ncols,
                    char *err, size_t errlen);

/**
 * Decode bytea hex output ("\x0a0b...") into out (room for (len-2)/2 bytes;
 * out may equal in).  0 or -1 (err filled) for any other form.
 */
int pgt_bytea_hex(const char *in, size_t len, char *out, size_t *outlen, char *err,
                  size_t errlen);

/** "ident" with inner quotes doubled (malloc'ed, NULL on ENOMEM). */
char *pgt_quote_ident(const char *s);
/** 'literal' with inner single quotes doubled (malloc'ed). */
char *pgt_quote_literal(const char *s);

/**
 * Parse a `tables` entry: `table` (schema public), `schema.table`, where
 * either part may be double-quoted ("My.Table", with "" for a quote).
 * Unquoted parts are taken verbatim.  The schema and table are malloc'ed.
 * *folded (may be NULL) is set to 1 when an unquoted part has upper-case
 * letters, so a caller may retry the lookup with SQL's lower-case folding.
 */
int pgt_parse_table(const char *spec, char **schema, char **table, int *folded, char *err,
                    size_t errlen);

/** Lower-case ASCII letters in place. */
void pgt_ascii_lower(char *s);

/** 1 when `s` is a valid replication slot name: [a-z0-9_]{1,63}. */
int pgt_valid_slot_name(const char *s);

#endif /* TRIB_PG_PGTEXT_H */
