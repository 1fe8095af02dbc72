/*
 * fuzz_decode.c — libFuzzer target for the trainer's record decoding
 * (plugins/trainer/decode.c): the label key and the pixel value (CSV, a JSON
 * array of integers, or raw bytes).  Any key/value must decode or be
 * rejected with a NN_DEC_* kind, never read or write out of bounds.
 *
 * Input layout: byte 0 selects the format (auto/csv/raw), a small pixel
 * count instead of 784, and a missing key; byte 1 is the key length; then the key, then
 * the value.  Key and value are copied into exact-size buffers so that ASan
 * sees any over-read.
 */
#include "decode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPX_MAX 784

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    size_t klen = data[1];
    data += 2, size -= 2;
    if (klen > size)
        klen = size;
    static const nn_format fmts[] = {NN_FMT_AUTO, NN_FMT_CSV, NN_FMT_RAW};
    nn_format fmt = fmts[(sel & 3) % 3];
    /* bit 6: a small pixel count 1..16 (the count boundaries) instead of 784;
     * bit 7: no key at all */
    int npx = sel & 0x40 ? 1 + ((sel >> 2) & 15) : NPX_MAX;

    char *key = malloc(klen ? klen : 1), *val = malloc(size - klen ? size - klen : 1);
    uint8_t *px = malloc((size_t)npx);
    if (key && val && px) {
        memcpy(key, data, klen);
        memcpy(val, data + klen, size - klen);
        int lab = nn_decode_label(sel & 0x80 ? NULL : key, klen);
        if (lab > 9 || lab < -2)
            abort();
        int kind = nn_decode_pixels(val, size - klen, fmt, npx, px);
        if (kind < NN_DEC_OK || kind >= NN_DEC_KINDS || !nn_decode_kind(kind))
            abort();
    }
    free(key);
    free(val);
    free(px);
    return 0;
}
