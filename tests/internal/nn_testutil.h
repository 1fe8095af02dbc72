/*
 * nn_testutil.h — tiny assertion helpers and synthetic image data for the
 * trainer's unit tests (test_nn*.c).
 */
#ifndef NN_TESTUTIL_H
#define NN_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int nn_test_failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            nn_test_failures++;                                                            \
        }                                                                                  \
    } while (0)

#define CHECKF(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            nn_test_failures++;                                                            \
        }                                                                                  \
    } while (0)

/*
 * A learnable synthetic image: class c lights a 6x6 block at a class-specific
 * place with noisy intensities, plus sparse background noise.  `s` is a
 * caller-owned LCG state.
 */
static inline uint32_t nn_test_lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static inline void nn_test_image(uint64_t *s, int c, uint8_t *px)
{
    for (int i = 0; i < 784; i++)
        px[i] = nn_test_lcg(s) % 10 == 0 ? (uint8_t)(nn_test_lcg(s) % 120) : 0;
    int y0 = 2 + (c / 5) * 12 + (int)(nn_test_lcg(s) % 3), x0 = 1 + (c % 5) * 5 + (int)(nn_test_lcg(s) % 2);
    for (int y = y0; y < y0 + 6 && y < 28; y++)
        for (int x = x0; x < x0 + 4 && x < 28; x++)
            px[y * 28 + x] = (uint8_t)(150 + nn_test_lcg(s) % 106);
}

#endif
