/*
 * fuzz_mqtt.c — libFuzzer target for what the MQTT plugin parses of the
 * network and of received messages: the packet framing, CONNACK (and its v5
 * limits), SUBACK and PUBACK parsers of the sink's own connection
 * (mqtt_wire.c), the broker URL, and the text codecs that turn received user
 * properties and topic levels back into keys (mqtt_codec.c: base64, %XX
 * topic-level escapes, UTF-8 screening, LSN text).  Any input must be
 * rejected or decoded, never crash, overrun or leak.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I core/include -I plugins/mqtt \
 *     tests/fuzz/fuzz_mqtt.c plugins/mqtt/mqtt_wire.c plugins/mqtt/mqtt_codec.c \
 *     -lpaho-mqtt3as
 *
 * The first byte selects the parser (bit 7: MQTT v5 instead of 3.1.1); the
 * rest is its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_int.h"
#include "mqtt_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every packet of a byte stream, as the sink's reader takes them apart. */
static void packets(int version, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    for (;;) {
        unsigned tf;
        size_t hl;
        uint32_t rem;
        if (mqtt_wire_frame(buf + off, len - off, &tf, &hl, &rem) != 1)
            return;
        if (hl > len - off || rem > len - off - hl)
            abort(); /* a "whole packet" must lie inside the buffer */
        const uint8_t *body = buf + off + hl;
        int present, code, reason, codes[4];
        uint16_t pid;
        mqtt_wire_limits lim;
        switch (tf >> 4) {
        case 2: /* CONNACK */
            if (mqtt_wire_connack(version, body, rem, &present, &code) == 0) {
                (void)mqtt_wire_reason(version, code);
                (void)mqtt_wire_reason_transient(version, code);
            }
            (void)mqtt_wire_connack_limits(version, body, rem, &lim);
            break;
        case 4: /* PUBACK */
        case 5: /* PUBREC */
        case 7: /* PUBCOMP */
            if (mqtt_wire_ack(version, body, rem, &pid, &reason) == 0)
                (void)mqtt_wire_reason(version, reason);
            break;
        case 9: { /* SUBACK for up to 4 filters, for the identifier it carries */
            uint16_t own = rem >= 2 ? (uint16_t)(body[0] << 8 | body[1]) : 0;
            for (int n = 0; n <= 4; n++)
                if (mqtt_wire_suback(version, body, rem, own, n, codes) == 0)
                    for (int i = 0; i < n; i++)
                        (void)mqtt_wire_reason(version, codes[i]);
            break;
        }
        default:
            break;
        }
        off += hl + rem;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    int version = sel & 0x80 ? MQTT_WIRE_V5 : MQTT_WIRE_V311;
    data++, size--;
    /* a private copy, exactly `size` bytes, and a NUL-terminated one */
    uint8_t *buf = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    if (!buf || !str) {
        free(buf);
        free(str);
        return 0;
    }
    memcpy(buf, data, size);
    memcpy(str, data, size);
    str[size] = '\0';
    switch (sel % 8) {
    case 0:
        packets(version, buf, size);
        break;
    case 1: { /* variable byte integers: what decodes re-encodes to the same value */
        uint32_t v;
        size_t used;
        if (mqtt_wire_varint_decode(buf, size, &v, &used) == 0) {
            uint8_t enc[4];
            uint32_t back;
            size_t n = mqtt_wire_varint(enc, v), used2;
            if (used > 4 || mqtt_wire_varint_decode(enc, n, &back, &used2) != 0 || back != v)
                abort();
        }
        break;
    }
    case 2: { /* a CONNACK body on its own */
        int present, code;
        mqtt_wire_limits lim;
        (void)mqtt_wire_connack(version, buf, size, &present, &code);
        (void)mqtt_wire_connack_limits(version, buf, size, &lim);
        break;
    }
    case 3: { /* the broker URL of a config */
        char host[256], port[32];
        (void)mqtt_wire_parse_url(str, host, sizeof host, port, sizeof port);
        break;
    }
    case 4: { /* base64 (binary keys and headers in user properties) */
        size_t n;
        char *out = mqtt_b64_decode(str, size, &n);
        if (out) {
            char *again = mqtt_b64_encode(out, n);
            free(again);
        }
        free(out);
        break;
    }
    case 5: { /* %XX-escaped topic levels (3.1.1 keys): unescape, escape, unescape */
        size_t n;
        char *out = mqtt_level_unescape(str, size, &n);
        if (out) {
            char *esc = mqtt_level_escape(out, n);
            if (esc) {
                size_t n2;
                char *back = mqtt_level_unescape(esc, strlen(esc), &n2);
                if (!back || n2 != n || memcmp(back, out, n) != 0)
                    abort();
                free(back);
                free(esc);
            }
        }
        free(out);
        break;
    }
    case 6:
        (void)mqtt_utf8_clean(str, size);
        (void)mqtt_topic_publishable(str);
        break;
    default:
        (void)mqtt_lsn_parse(str);
        break;
    }
    free(buf);
    free(str);
    return 0;
}
