/*
 * decode.h — turning a broker record into (label, pixels): the key holds the
 * label as decimal text ("0".."9"), the value 784 pixels either as CSV
 * unsigned numbers ("0,0,12,255,...") or as 784 raw bytes.  Pure functions:
 * the plugin counts and reports the failures (one warning per kind).
 */
#ifndef TRIB_DECODE_H
#define TRIB_DECODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum nn_format {
    NN_FMT_AUTO = 0, /* exactly npx bytes -> raw, anything else -> CSV */
    NN_FMT_CSV,
    NN_FMT_RAW
} nn_format;

/** Why a record was rejected. */
enum {
    NN_DEC_OK = 0,
    NN_DEC_BAD_LABEL,   /* key missing, not a number, or outside 0-9 */
    NN_DEC_BAD_COUNT,   /* not exactly npx pixels */
    NN_DEC_NON_NUMERIC, /* a CSV field is not an unsigned integer 0..255 */
    NN_DEC_KINDS
};

/** Human-readable name of a NN_DEC_* kind. */
const char *nn_decode_kind(int kind);

/** "auto" / "csv" / "raw" -> nn_format; -1 if unknown. */
int nn_format_parse(const char *s);

/**
 * Parse a label key.  Accepts optional surrounding blanks and double
 * quotes.  Returns 0..9, or -1 when absent/empty, -2 when invalid.
 */
int nn_decode_label(const char *key, size_t len);

/** Decode npx pixels from a value into out.  NN_DEC_OK or a NN_DEC_* kind. */
int nn_decode_pixels(const char *val, size_t len, nn_format fmt, int npx, uint8_t *out);

#endif /* TRIB_DECODE_H */
