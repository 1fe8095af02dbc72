/*
 * convert.c — the json converter: Debezium's envelope
 *   {"before":…,"after":…,"source":{…},"op":"c","ts_ms":…}
 * and a key of the key columns {"id":1}, or no key for tables without one.
 * Integers and booleans become JSON numbers and booleans; bytea is base64
 * (Debezium's default binary.handling.mode) or hex; numeric, timestamps and
 * everything else keep Postgres' text form as JSON strings.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_json_number(const char *s)
{
    /* Postgres integer output is always a valid JSON number; floats may be
       NaN/Infinity, which JSON cannot carry. */
    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' || *s == '+' ||
              *s == '-'))
            return 0;
    return 1;
}

void convert_field_json(strbuf *b, const trib_field *f, bin_mode binary)
{
    switch (f->kind) {
    case TRIB_VAL_NULL:
        sb_puts(b, "null");
        return;
    case TRIB_VAL_UNCHANGED:
        sb_json_str(b, TRIB_UNAVAILABLE, strlen(TRIB_UNAVAILABLE));
        return;
    case TRIB_VAL_BINARY:
        sb_putc(b, '"');
        if (binary == BIN_HEX)
            sb_hex(b, (const unsigned char *)f->data, f->len);
        else
            sb_base64(b, (const unsigned char *)f->data, f->len);
        sb_putc(b, '"');
        return;
    case TRIB_VAL_TEXT:
        break;
    }
    switch (f->type_oid) {
    case TRIB_OID_INT2:
    case TRIB_OID_INT4:
    case TRIB_OID_INT8:
    case TRIB_OID_OID:
    case TRIB_OID_FLOAT4:
    case TRIB_OID_FLOAT8:
        if (is_json_number(f->data)) {
            sb_put(b, f->data, f->len);
            return;
        }
        break;
    case TRIB_OID_BOOL:
        sb_puts(b, f->data[0] == 't' ? "true" : "false");
        return;
    default:
        break;
    }
    sb_json_str(b, f->data, f->len);
}

void convert_row_json(strbuf *b, const trib_row *row, bin_mode binary, int keys_only)
{
    sb_putc(b, '{');
    int first = 1;
    for (size_t i = 0; i < row->nfields; i++) {
        const trib_field *f = &row->fields[i];
        if (keys_only && !f->is_key)
            continue;
        if (!first)
            sb_putc(b, ',');
        first = 0;
        sb_json_str(b, f->name, strlen(f->name));
        sb_putc(b, ':');
        convert_field_json(b, f, binary);
    }
    sb_putc(b, '}');
}

static void put_kv_str(strbuf *b, const char *k, const char *v)
{
    sb_printf(b, ",\"%s\":", k);
    if (v)
        sb_json_str(b, v, strlen(v));
    else
        sb_puts(b, "null");
}

static void source_json(strbuf *b, const trib_record *r)
{
    const trib_source_info *s = &r->src;
    sb_printf(b, "{\"version\":\"%s\",\"connector\":\"postgresql\"", PACKAGE_VERSION);
    put_kv_str(b, "name", s->name);
    sb_printf(b, ",\"ts_ms\":%lld", (long long)s->ts_ms);
    sb_printf(b, ",\"snapshot\":\"%s\"",
              s->snapshot == 2 ? "last" : s->snapshot ? "true" : "false");
    put_kv_str(b, "db", s->db);
    put_kv_str(b, "schema", s->schema);
    put_kv_str(b, "table", s->table);
    if (s->txid >= 0)
        sb_printf(b, ",\"txId\":%lld", (long long)s->txid);
    else
        sb_puts(b, ",\"txId\":null");
    if (s->lsn)
        sb_printf(b, ",\"lsn\":%llu", (unsigned long long)s->lsn);
    else
        sb_puts(b, ",\"lsn\":null");
    sb_putc(b, '}');
}

static int has_key_columns(const trib_record *r)
{
    const trib_row *row = r->has_after ? &r->after : &r->before;
    for (size_t i = 0; i < row->nfields; i++)
        if (row->fields[i].is_key)
            return 1;
    return 0;
}

int convert_record(const converter *c, trib_record *rec, char *err, size_t errlen)
{
    if (!rec->topic) {
        set_err(err, errlen, "record has no topic");
        return TRIB_ERR;
    }
    if (c->kind == CONV_RAW)
        return TRIB_OK;
    strbuf b;
    if (!rec->key.set && (rec->has_after || rec->has_before) && has_key_columns(rec)) {
        sb_init(&b);
        convert_row_json(&b, rec->has_after ? &rec->after : &rec->before, c->binary, 1);
        free(rec->key.data);
        rec->key.len = b.len;
        rec->key.data = sb_steal(&b, NULL);
        rec->key.set = 1;
    }
    if (!rec->value.set) {
        sb_init(&b);
        sb_puts(&b, "{\"before\":");
        if (rec->has_before)
            convert_row_json(&b, &rec->before, c->binary, 0);
        else
            sb_puts(&b, "null");
        sb_puts(&b, ",\"after\":");
        if (rec->has_after)
            convert_row_json(&b, &rec->after, c->binary, 0);
        else
            sb_puts(&b, "null");
        sb_puts(&b, ",\"source\":");
        source_json(&b, rec);
        sb_printf(&b, ",\"op\":\"%c\",\"ts_ms\":%lld}", rec->op ? rec->op : 'c',
                  (long long)now_wall_ms());
        free(rec->value.data);
        rec->value.len = b.len;
        rec->value.data = sb_steal(&b, NULL);
        rec->value.set = 1;
    }
    return TRIB_OK;
}
