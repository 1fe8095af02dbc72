/*
 * decode.c — record key/value decoding for the trainer (see decode.h).  The
 * CSV parser is a single pass over the bytes without strtol or copies: it
 * runs once per record over the whole training topic.
 */
#include "decode.h"

#include <string.h>

const char *nn_decode_kind(int kind)
{
    switch (kind) {
    case NN_DEC_BAD_LABEL: return "label missing or outside 0-9";
    case NN_DEC_BAD_COUNT: return "wrong pixel count";
    case NN_DEC_NON_NUMERIC: return "non-numeric or out-of-range pixel value";
    default: return "ok";
    }
}

int nn_format_parse(const char *s)
{
    if (!s || !strcmp(s, "auto"))
        return NN_FMT_AUTO;
    if (!strcmp(s, "csv"))
        return NN_FMT_CSV;
    if (!strcmp(s, "raw"))
        return NN_FMT_RAW;
    return -1;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int nn_decode_label(const char *key, size_t len)
{
    if (!key)
        return -1;
    const char *p = key, *e = key + len;
    while (p < e && is_blank((unsigned char)*p))
        p++;
    while (e > p && is_blank((unsigned char)e[-1]))
        e--;
    if (e - p >= 2 && *p == '"' && e[-1] == '"') {
        p++;
        e--;
    }
    if (p == e)
        return -1;
    if (e - p == 1 && *p >= '0' && *p <= '9')
        return *p - '0';
    return -2;
}

static int decode_csv(const unsigned char *p, const unsigned char *e, int npx, uint8_t *out)
{
    int n = 0;
    while (p < e && is_blank(*p))
        p++;
    if (p < e && *p == '[') { /* tolerate a JSON array of integers */
        p++;
        while (e > p && is_blank(e[-1]))
            e--;
        if (e == p || e[-1] != ']')
            return NN_DEC_NON_NUMERIC;
        e--;
    }
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        unsigned acc = 0, digits = 0;
        while (p < e && (unsigned)(*p - '0') < 10u && digits < 4) {
            acc = acc * 10 + (unsigned)(*p - '0');
            p++;
            digits++;
        }
        if (!digits || acc > 255 || (p < e && (unsigned)(*p - '0') < 10u))
            return NN_DEC_NON_NUMERIC;
        if (n == npx)
            return NN_DEC_BAD_COUNT;
        out[n++] = (uint8_t)acc;
        while (p < e && is_blank(*p))
            p++;
        if (p == e)
            break;
        if (*p != ',')
            return NN_DEC_NON_NUMERIC;
        if (++p == e)
            return NN_DEC_NON_NUMERIC; /* trailing comma */
    }
    return n == npx ? NN_DEC_OK : NN_DEC_BAD_COUNT;
}

int nn_decode_pixels(const char *val, size_t len, nn_format fmt, int npx, uint8_t *out)
{
    if (!val)
        len = 0;
    if (fmt == NN_FMT_AUTO)
        fmt = len == (size_t)npx ? NN_FMT_RAW : NN_FMT_CSV;
    if (fmt == NN_FMT_RAW) {
        if (len != (size_t)npx)
            return NN_DEC_BAD_COUNT;
        memcpy(out, val, len);
        return NN_DEC_OK;
    }
    if (len == 0)
        return NN_DEC_BAD_COUNT;
    return decode_csv((const unsigned char *)val, (const unsigned char *)val + len, npx, out);
}
