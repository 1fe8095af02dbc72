/*
 * test_pgoutput_fuzz.c — libFuzzer target for the Postgres source's pure
 * parsers: the replication frame parser and pgoutput decoder (pgoutput.c)
 * and the COPY text / bytea / table-name parsers (pgtext.c).  Any input must
 * be rejected with a message or decoded, never crash, overrun or leak.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I core/include \
 *     tests/fuzz/fuzz_pgoutput.c plugins/postgres/pgoutput.c plugins/postgres/pgtext.c
 *
 * The first byte selects the parser; the rest is its input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"
#include "pgtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++, size--;
    /* a private copy, exactly `size` bytes (+1 for the COPY parser's NUL) */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    switch (sel % 4) {
    case 0: {
        pgo_msg m;
        if (pgo_decode((const uint8_t *)buf, size, &m, err, sizeof err) == 0)
            pgo_msg_free(&m);
        break;
    }
    case 1: {
        pgo_frame f;
        pgo_msg m;
        if (pgo_parse_frame((const uint8_t *)buf, size, &f, err, sizeof err) == 0 &&
            f.type == 'w' && pgo_decode(f.data, f.len, &m, err, sizeof err) == 0)
            pgo_msg_free(&m);
        break;
    }
    case 2: {
        pgt_field fields[8];
        size_t n = (size_t)(sel >> 2) % 9;
        int hdr = (sel >> 6) & 1; /* binary COPY: a first message, or a later one */
        char *bin = malloc(size + 1);
        if (bin) {
            memcpy(bin, buf, size);
            if (pgt_copy_binary(bin, size, &hdr, fields, n, err, sizeof err) == 1)
                for (size_t i = 0; i < n; i++)
                    if (fields[i].data && fields[i].len && fields[i].data[fields[i].len - 1] == 0x7f)
                        err[0] = 0; /* touch every byte range it returned */
            free(bin);
        }
        if (pgt_copy_row(buf, size, fields, n, err, sizeof err) == 0)
            for (size_t i = 0; i < n; i++)
                if (fields[i].data) {
                    char *out = malloc(fields[i].len / 2 + 1);
                    size_t olen;
                    if (out)
                        pgt_bytea_hex(fields[i].data, fields[i].len, out, &olen, err, sizeof err);
                    free(out);
                }
        break;
    }
    default: {
        char *s = NULL, *t = NULL;
        int fold;
        if (pgt_parse_table(buf, &s, &t, &fold, err, sizeof err) == 0) {
            free(s);
            free(t);
        }
        break;
    }
    }
    free(buf);
    return 0;
}
