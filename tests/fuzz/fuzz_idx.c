/*
 * fuzz_idx.c — libFuzzer target for mnist2sql's IDX reader
 * (tools/mnist2sql/idx.c), gzip-compressed or plain: any file must be read
 * and validated or refused with a message, never crash, over-read or leak.
 *
 * The reader opens a path through zlib, so the bytes (after a selector byte
 * choosing images or labels) are written to a memfd and read as
 * /proc/self/fd/N: the real code path, without touching the disk.
 */
#include "m2s.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile sig_atomic_t m2s_interrupted = 0; /* defined by main.c in the tool */

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum m2s_idx_kind kind = data[0] & 1 ? M2S_IDX_LABELS : M2S_IDX_IMAGES;
    data++, size--;
    if (memfd < 0 && (memfd = memfd_create("fuzz_idx", 0)) < 0)
        abort();
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size)
        abort();

    char path[64], err[M2S_ERRLEN];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    uint32_t count = 0;
    uint8_t *items = NULL;
    err[0] = '\0';
    if (m2s_idx_read_as(path, "fuzz.idx", kind, &count, &items, err, sizeof err) == 0) {
        size_t item = kind == M2S_IDX_IMAGES ? M2S_PIXELS : 1;
        /* the header's count matches the data read: touch every byte */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)count * item; i++)
            sum += items[i];
        (void)sum;
        free(items);
    } else if (!err[0]) {
        abort(); /* refused without a word */
    }
    return 0;
}
