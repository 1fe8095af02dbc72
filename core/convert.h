/*
 * convert.h — converters render a record's key and value as bytes for a
 * sink.  `json` produces Debezium's change-event envelope (schemaless, as
 * with Kafka Connect's JsonConverter schemas.enable=false); `raw` passes
 * bytes set by transforms through and leaves the rest empty.
 */
#ifndef TRIB_CONVERT_H
#define TRIB_CONVERT_H

#include <tributary/plugin.h>
#include "util.h"

typedef enum { CONV_JSON = 0, CONV_RAW } conv_kind;
typedef enum { BIN_BASE64 = 0, BIN_HEX } bin_mode;

typedef struct converter {
    conv_kind kind;
    bin_mode binary;
} converter;

/** Placeholder for unchanged TOASTed values (Debezium's default). */
#define TRIB_UNAVAILABLE "__debezium_unavailable_value"

/**
 * Fill rec->key / rec->value where a transform has not set them.  Returns
 * TRIB_OK, or TRIB_ERR with a message (record without a topic).
 */
int convert_record(const converter *c, trib_record *rec, char *err, size_t errlen);

/** Append one field value as JSON. */
void convert_field_json(strbuf *b, const trib_field *f, bin_mode binary);
/** Append a row as a JSON object (only key columns when keys_only). */
void convert_row_json(strbuf *b, const trib_row *row, bin_mode binary, int keys_only);

#endif
