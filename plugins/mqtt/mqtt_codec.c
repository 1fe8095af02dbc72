/*
 * mqtt_codec.c — how a Tributary record is laid out on an MQTT message, and back.
 *
 * Pure helpers with no client connection, unit-tested by tests/internal/test_mqtt_codec.c.
 *
 * Wire format (MQTT v5):
 *   topic    = record topic (or "<topic>/<escaped key>" with key_in_topic)
 *   payload  = record value, byte for byte
 *   user properties:
 *     key           the record key, when set and not carried in the topic
 *     op            'r','c','u','d','t' when the record is a change
 *     lsn           the change's LSN in Postgres text form ("0/16B3748")
 *     <header>      each record header, in order
 *   MQTT user properties are UTF-8 strings that must not contain NUL, so a
 *   value that is not clean UTF-8 (binary keys, say) is sent base64-encoded
 *   with a companion property "<name>-encoding: base64".  The consumer side
 *   decodes it, so keys and headers round-trip byte-exact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_int.h"
#include "mqtt_wire.h"

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the UTF-8 sequence at s (at most `left` bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
    size_t n;
    uint32_t c = s[0], min;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { n = 2; c &= 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; c &= 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; c &= 0x07; min = 0x10000; }
    else return 0;
    if (n > left) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

int mqtt_utf8_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) return 0;
        /* MQTT forbids U+0000 and discourages controls; brokers differ, so avoid all. */
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return 0;
        if (cp == 0xFFFE || cp == 0xFFFF) return 0;
        i += n;
    }
    return 1;
}

/* --------------------------------------------------------------- base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *mqtt_b64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_val(unsigned char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

char *mqtt_b64_decode(const char *s, size_t len, size_t *outlen)
{
    if (len % 4 != 0) return NULL;
    char *out = malloc(len / 4 * 3 + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == len && j >= 2) { v[j] = 0; pad++; continue; }
            if (pad || (v[j] = b64_val((unsigned char)s[i + j])) < 0) { free(out); return NULL; }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[n++] = (char)(x >> 16);
        if (pad < 2) out[n++] = (char)(x >> 8);
        if (pad < 1) out[n++] = (char)x;
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* ----------------------------------------------------- topic-level keys */

static int level_safe(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("._-~:=,;@!$&'()*", c));
}

char *mqtt_level_escape(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = malloc(3 * len + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (level_safe(in[i])) *o++ = (char)in[i];
        else o += sprintf(o, "%%%02X", in[i]);
    }
    *o = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

char *mqtt_level_unescape(const char *s, size_t len, size_t *outlen)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') { out[n++] = s[i]; continue; }
        int hi = i + 2 < len ? hexval(s[i + 1]) : -1, lo = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) { free(out); return NULL; }
        out[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

int mqtt_topic_publishable(const char *topic)
{
    if (!topic || !*topic || strpbrk(topic, "+#")) return 0;
    return mqtt_utf8_clean(topic, strlen(topic));
}

/* ------------------------------------------------------------------ LSN */

uint64_t mqtt_lsn_parse(const char *s)
{
    unsigned hi, lo;
    char extra;
    if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &extra) != 2) return 0;
    return (uint64_t)hi << 32 | lo;
}

/* ------------------------------------------------------ user properties */

static int props_add_raw(MQTTProperties *props, const char *name, const char *value, size_t len)
{
    MQTTProperty p;
    memset(&p, 0, sizeof p);
    p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    p.value.data.data = (char *)name;
    p.value.data.len = (int)strlen(name);
    p.value.value.data = (char *)(value ? value : "");
    p.value.value.len = (int)len;
    return MQTTProperties_add(props, &p) == 0 ? TRIB_OK : TRIB_ERR; /* paho copies both */
}

int mqtt_props_add(MQTTProperties *props, const char *name, const void *value, size_t len)
{
    if (!mqtt_utf8_clean(name, strlen(name)) || len > 65535) return TRIB_ERR;
    if (mqtt_utf8_clean(value, len)) return props_add_raw(props, name, value, len);

    char *enc = mqtt_b64_encode(value, len);
    size_t nlen = strlen(name) + sizeof "-encoding";
    char *ename = malloc(nlen);
    int rc = TRIB_ERR;
    if (enc && ename && strlen(enc) <= 65535) {
        snprintf(ename, nlen, "%s-encoding", name);
        rc = props_add_raw(props, name, enc, strlen(enc));
        if (rc == TRIB_OK) rc = props_add_raw(props, ename, "base64", 6);
    }
    free(enc);
    free(ename);
    return rc;
}

void mqtt_props_free(MQTTProperties *props)
{
    MQTTProperties_free(props);
}

/* The (name, value) user properties of a record, in order: key (unless
   key_in_topic), op, lsn, headers; each handed to add(). */
typedef int (*prop_add_fn)(void *dst, const char *name, const void *value, size_t len);

static int record_props(const trib_record *rec, int with_key, prop_add_fn add, void *dst)
{
    char buf[40];
    if (with_key && rec->key.set && add(dst, "key", rec->key.data, rec->key.len) != TRIB_OK)
        return TRIB_ERR;
    if (rec->op) {
        buf[0] = rec->op;
        if (add(dst, "op", buf, 1) != TRIB_OK) return TRIB_ERR;
        size_t n = trib_lsn_format(rec->src.lsn, buf);
        if (add(dst, "lsn", buf, n) != TRIB_OK) return TRIB_ERR;
    }
    for (size_t i = 0; i < rec->nheaders; i++) {
        const trib_header *h = &rec->headers[i];
        if (add(dst, h->name, h->value, h->len) != TRIB_OK) return TRIB_ERR;
    }
    return TRIB_OK;
}

static int paho_prop(void *dst, const char *name, const void *value, size_t len)
{
    return mqtt_props_add(dst, name, value, len);
}

int mqtt_props_from_record(MQTTProperties *props, const trib_record *rec, int with_key)
{
    return record_props(rec, with_key, paho_prop, props);
}

/* ---------------------------------------- user properties, wire encoding */

static int wire_prop(void *dst, const char *name, const void *value, size_t len)
{
    mqtt_wire_buf *b = dst;
    size_t nl = strlen(name);
    if (!mqtt_utf8_clean(name, nl) || nl > 65535 || len > 65535) return TRIB_ERR;
    if (mqtt_utf8_clean(value, len)) {
        mqtt_wire_put_u8(b, 0x26);
        mqtt_wire_put_str(b, name, nl);
        mqtt_wire_put_str(b, value ? value : "", len);
        return b->oom ? TRIB_ERR : TRIB_OK;
    }
    char *enc = mqtt_b64_encode(value, len);
    size_t el = enc ? strlen(enc) : 0;
    if (!enc || el > 65535 || nl + sizeof "-encoding" > 65535) {
        free(enc);
        return TRIB_ERR;
    }
    mqtt_wire_put_u8(b, 0x26);
    mqtt_wire_put_str(b, name, nl);
    mqtt_wire_put_str(b, enc, el);
    free(enc);
    mqtt_wire_put_u8(b, 0x26);
    mqtt_wire_put_u8(b, (unsigned)((nl + 9) >> 8));
    mqtt_wire_put_u8(b, (unsigned)((nl + 9) & 0xFF));
    mqtt_wire_put(b, name, nl);
    mqtt_wire_put(b, "-encoding", 9);
    mqtt_wire_put_str(b, "base64", 6);
    return b->oom ? TRIB_ERR : TRIB_OK;
}

int mqtt_props_encode(mqtt_wire_buf *b, const trib_record *rec, int with_key)
{
    return record_props(rec, with_key, wire_prop, b);
}

/* Value of user property `name` (first occurrence), or NULL. */
static const MQTTLenString *prop_find(MQTTProperties *props, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < props->count; i++) {
        MQTTProperty *p = &props->array[i];
        if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY && (size_t)p->value.data.len == n &&
            memcmp(p->value.data.data, name, n) == 0)
            return &p->value.value;
    }
    return NULL;
}

/* 1 when property p (name of length nlen) is "<X>-encoding" for an X present. */
static int is_encoding_companion(MQTTProperties *props, const MQTTLenString *name)
{
    static const char sfx[] = "-encoding";
    size_t sl = sizeof sfx - 1, nl = (size_t)name->len;
    if (nl <= sl || memcmp(name->data + nl - sl, sfx, sl) != 0) return 0;
    char base[256];
    if (nl - sl >= sizeof base) return 0;
    memcpy(base, name->data, nl - sl);
    base[nl - sl] = '\0';
    return prop_find(props, base) != NULL;
}

/* Decode property value v of `name` into a malloc'd buffer (honouring <name>-encoding). */
static char *prop_decode(MQTTProperties *props, const char *name, const MQTTLenString *v,
                         size_t *outlen)
{
    char ename[300];
    snprintf(ename, sizeof ename, "%s-encoding", name);
    const MQTTLenString *enc = prop_find(props, ename);
    if (enc && enc->len == 6 && memcmp(enc->data, "base64", 6) == 0)
        return mqtt_b64_decode(v->data, (size_t)v->len, outlen);
    char *out = malloc((size_t)v->len + 1);
    if (!out) return NULL;
    memcpy(out, v->data, (size_t)v->len);
    out[v->len] = '\0';
    *outlen = (size_t)v->len;
    return out;
}

int mqtt_props_to_record(const trib_host *h, trib_record *rec, MQTTProperties *props, char *err,
                         size_t errlen)
{
    for (int i = 0; i < props->count; i++) {
        MQTTProperty *p = &props->array[i];
        if (p->identifier != MQTTPROPERTY_CODE_USER_PROPERTY) continue;
        if (p->value.data.len >= 250 || is_encoding_companion(props, &p->value.data)) continue;
        char name[256];
        memcpy(name, p->value.data.data, (size_t)p->value.data.len);
        name[p->value.data.len] = '\0';
        size_t len;
        char *val = prop_decode(props, name, &p->value.value, &len);
        if (!val) {
            snprintf(err, errlen, "user property '%s': malformed base64 value", name);
            return TRIB_ERR;
        }
        int rc = TRIB_OK;
        if (strcmp(name, "key") == 0) {
            if (!rec->key.set) rc = h->bytes_set(&rec->key, val, len);
        } else {
            if (strcmp(name, "op") == 0 && len == 1) rec->op = val[0];
            if (strcmp(name, "lsn") == 0) rec->src.lsn = mqtt_lsn_parse(val);
            rc = h->header_add(rec, name, val, len);
        }
        free(val);
        if (rc != TRIB_OK) {
            snprintf(err, errlen, "out of memory decoding user property '%s'", name);
            return TRIB_ERR;
        }
    }
    return TRIB_OK;
}
