/*
 * pgtext.c — COPY text rows, bytea hex, quoting and table-name parsing for
 * the Postgres source (see pgtext.h).  Pure functions over strings.
 */
#include "pgtext.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* Hex digit values; 16 marks a non-digit.  A table keeps the bytea decode
   loop branch-free: it is the snapshot's hottest loop. */
static const unsigned char hexdig[256] = {
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 16, 16, 16, 16, 16, 16,
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 10, 11, 12, 13, 14, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Unescape one backslash sequence starting at in[*i] (after the '\\'). */
static char copy_unescape(const char *in, size_t end, size_t *i)
{
    char c = in[*i];
    (*i)++;
    switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    case 'x':
        if (*i < end && hexval((unsigned char)in[*i]) >= 0) {
            int v = hexval((unsigned char)in[(*i)++]);
            if (*i < end && hexval((unsigned char)in[*i]) >= 0)
                v = v * 16 + hexval((unsigned char)in[(*i)++]);
            return (char)v;
        }
        return 'x';
    default:
        if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int k = 0; k < 2 && *i < end && in[*i] >= '0' && in[*i] <= '7'; k++)
                v = v * 8 + (in[(*i)++] - '0');
            return (char)v;
        }
        return c; /* \\ and any other escaped character stand for themselves */
    }
}

int pgt_copy_row(char *line, size_t len, pgt_field *fields, size_t ncols, char *err,
                 size_t errlen)
{
    size_t i = 0, col = 0;
    if (len > 0 && line[len - 1] == '\n')
        len--;
    while (col < ncols) {
        size_t start = i, out = i;
        if (i + 2 <= len && line[i] == '\\' && line[i + 1] == 'N' &&
            (i + 2 == len || line[i + 2] == '\t')) {
            fields[col].data = NULL;
            fields[col].len = 0;
            i += 2;
        } else {
            /* the field ends at the next tab; copy runs between backslashes
               with memmove (bytea fields are long runs after one "\\") */
            const char *tab = memchr(line + i, '\t', len - i);
            size_t end = tab ? (size_t)(tab - line) : len;
            while (i < end) {
                const char *bs = memchr(line + i, '\\', end - i);
                size_t run = (bs ? (size_t)(bs - line) : end) - i;
                if (out != i)
                    memmove(line + out, line + i, run);
                out += run;
                i += run;
                if (i >= end)
                    break;
                if (++i >= end) {
                    snprintf(err, errlen, "COPY row: dangling backslash at offset %zu", i - 1);
                    return -1;
                }
                line[out++] = copy_unescape(line, end, &i);
            }
            fields[col].data = line + start;
            fields[col].len = out - start;
        }
        col++;
        if (i < len && line[i] == '\t') {
            if (col == ncols) {
                snprintf(err, errlen, "COPY row: more than %zu columns (offset %zu)", ncols, i);
                return -1;
            }
            if (fields[col - 1].data)
                line[start + fields[col - 1].len] = '\0';
            i++;
        } else if (col < ncols) {
            snprintf(err, errlen, "COPY row: %zu columns, expected %zu", col, ncols);
            return -1;
        } else if (fields[col - 1].data) {
            line[start + fields[col - 1].len] = '\0';
        }
    }
    if (ncols == 0 && len != 0) {
        snprintf(err, errlen, "COPY row: data for a table without columns");
        return -1;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pgt_copy_binary(char *msg, size_t len, int *header_done, pgt_field *fields, size_t ncols,
                    char *err, size_t errlen)
{
    static const char sig[11] = "PGCOPY\n\377\r\n\0";
    const unsigned char *p = (const unsigned char *)msg;
    size_t off = 0;
    if (!*header_done) {
        if (len < 19 || memcmp(p, sig, 11) != 0) {
            snprintf(err, errlen, "binary COPY: bad or truncated header");
            return -1;
        }
        uint32_t ext = be32(p + 15);
        if (be32(p + 11) & 0x00010000u) {
            snprintf(err, errlen, "binary COPY: OIDs included (unsupported)");
            return -1;
        }
        if (ext > len - 19) {
            snprintf(err, errlen, "binary COPY: truncated header extension");
            return -1;
        }
        off = 19 + ext;
        *header_done = 1;
        if (off == len)
            return 2;
    }
    if (len - off < 2) {
        snprintf(err, errlen, "binary COPY: truncated tuple (offset %zu)", off);
        return -1;
    }
    int16_t nf = (int16_t)((unsigned)p[off] << 8 | p[off + 1]);
    off += 2;
    if (nf == -1) {
        if (off != len) {
            snprintf(err, errlen, "binary COPY: data after the trailer");
            return -1;
        }
        return 0;
    }
    if (nf < 0 || (size_t)nf != ncols) {
        snprintf(err, errlen, "binary COPY row: %d columns, expected %zu", (int)nf, ncols);
        return -1;
    }
    for (size_t i = 0; i < ncols; i++) {
        if (len - off < 4) {
            snprintf(err, errlen, "binary COPY row: truncated at column %zu", i + 1);
            return -1;
        }
        int32_t fl = (int32_t)be32(p + off);
        off += 4;
        if (fl == -1) {
            fields[i].data = NULL;
            fields[i].len = 0;
            continue;
        }
        if (fl < 0 || (size_t)fl > len - off) {
            snprintf(err, errlen, "binary COPY row: column %zu: bad length %d", i + 1, (int)fl);
            return -1;
        }
        fields[i].data = msg + off;
        fields[i].len = (size_t)fl;
        off += (size_t)fl;
    }
    if (off != len) {
        snprintf(err, errlen, "binary COPY row: %zu bytes after the last column", len - off);
        return -1;
    }
    return 1;
}

/*
 * Decode two hex digits to *o; returns 1 if either is not a hex digit.
 * Branch-free arithmetic instead of table lookups, so that loops over it
 * vectorize: (c & 15) + 9 * (c >> 6) is the value of 0-9, a-f and A-F.
 */
static inline unsigned char hex_pair(const unsigned char *p, unsigned char *o)
{
    unsigned char a = p[0], b = p[1];
    unsigned char va = (unsigned char)((a & 15) + 9 * (a >> 6));
    unsigned char vb = (unsigned char)((b & 15) + 9 * (b >> 6));
    unsigned char da = (unsigned char)(a - '0'), db = (unsigned char)(b - '0');
    unsigned char la = (unsigned char)((a | 0x20) - 'a'), lb = (unsigned char)((b | 0x20) - 'a');
    *o = (unsigned char)(va << 4 | vb);
    return (unsigned char)((da > 9) & (la > 5)) | (unsigned char)((db > 9) & (lb > 5));
}

int pgt_bytea_hex(const char *in, size_t len, char *out, size_t *outlen, char *err,
                  size_t errlen)
{
    if (len < 2 || in[0] != '\\' || in[1] != 'x') {
        snprintf(err, errlen, "bytea value is not in hex format (set bytea_output = hex)");
        return -1;
    }
    if ((len - 2) % 2 != 0) {
        snprintf(err, errlen, "bytea hex value has an odd number of digits (%zu)", len - 2);
        return -1;
    }
    size_t n = (len - 2) / 2;
    const unsigned char *p = (const unsigned char *)in + 2;
    unsigned char *o = (unsigned char *)out, bad = 0;
    size_t k = 0;
    for (; k + 16 <= n; k += 16) {
        /* a fixed-size loop into a local block vectorizes; the block is
           stored after its input was read, so in-place decoding works */
        unsigned char blk[16];
        for (int j = 0; j < 16; j++)
            bad |= hex_pair(p + 2 * k + 2 * j, blk + j);
        memcpy(o + k, blk, sizeof blk);
    }
    for (; k < n; k++)
        bad |= hex_pair(p + 2 * k, o + k);
    if (bad) { /* find the first bad digit for the message */
        size_t i = 0;
        while (i < 2 * n && hexdig[p[i]] != 16)
            i++;
        snprintf(err, errlen, "bytea hex value has a bad digit at offset %zu", 2 + i);
        return -1;
    }
    *outlen = n;
    return 0;
}

static char *quote_with(const char *s, char q)
{
    size_t n = 2;
    for (const char *p = s; *p; p++)
        n += *p == q ? 2 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    *o++ = q;
    for (const char *p = s; *p; p++) {
        if (*p == q)
            *o++ = q;
        *o++ = *p;
    }
    *o++ = q;
    *o = '\0';
    return out;
}

char *pgt_quote_ident(const char *s) { return quote_with(s, '"'); }
char *pgt_quote_literal(const char *s) { return quote_with(s, '\''); }

/* Read one name part starting at *p; stops at an unquoted '.' or the end. */
static char *parse_part(const char **p, int *quoted, int *upper, char *err, size_t errlen)
{
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *quoted = 0;
    if (*s == '"') {
        *quoted = 1;
        s++;
        for (;;) {
            if (*s == '\0') {
                snprintf(err, errlen, "unterminated quoted identifier");
                free(out);
                return NULL;
            }
            if (*s == '"' && s[1] == '"') {
                out[n++] = '"';
                s += 2;
            } else if (*s == '"') {
                s++;
                break;
            } else {
                out[n++] = *s++;
            }
        }
    } else {
        while (*s && *s != '.') {
            if (*s == '"') {
                snprintf(err, errlen, "unexpected '\"' inside an unquoted name");
                free(out);
                return NULL;
            }
            if (isupper((unsigned char)*s))
                *upper = 1;
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    *p = s;
    if (n == 0) {
        snprintf(err, errlen, "empty name");
        free(out);
        return NULL;
    }
    return out;
}

int pgt_parse_table(const char *spec, char **schema, char **table, int *folded, char *err,
                    size_t errlen)
{
    const char *p = spec;
    int q1 = 0, q2 = 0, upper = 0;
    char *a = NULL, *b = NULL;
    *schema = *table = NULL;
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty table name");
        return -1;
    }
    a = parse_part(&p, &q1, &upper, err, errlen);
    if (!a)
        return -1;
    if (*p == '.') {
        p++;
        b = parse_part(&p, &q2, &upper, err, errlen);
        if (!b) {
            free(a);
            return -1;
        }
    }
    if (*p != '\0') {
        snprintf(err, errlen, "unexpected text after the table name: \"%s\"", p);
        free(a);
        free(b);
        return -1;
    }
    if (b) {
        *schema = a;
        *table = b;
    } else {
        *schema = strdup("public");
        *table = a;
        if (!*schema) {
            free(a);
            *table = NULL;
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (folded)
        *folded = upper;
    return 0;
}

void pgt_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

int pgt_valid_slot_name(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 63;
}
