/*
 * fuzz_model.c — libFuzzer target for the trainer's model-file loader
 * (plugins/trainer/model_io.c): any file must load into a valid network or
 * be refused with a message, never crash, over-read or leak.
 *
 * The bytes go through the real file path: they are written to a memfd and
 * loaded as /proc/self/fd/N.  When byte 0 is odd, the rest is the file and
 * its last 4 bytes are replaced by the correct CRC-32, so the fuzzer gets
 * past the checksum to the shape and weight checks; otherwise the rest is
 * loaded as is.
 */
#include "model_io.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fix_crc = data[0] & 1;
    data++, size--;
    if (memfd < 0 && (memfd = memfd_create("fuzz_model", 0)) < 0)
        abort();
    uint8_t *file = malloc(size ? size : 1);
    if (!file)
        return 0;
    memcpy(file, data, size);
    if (fix_crc && size >= 4) {
        uint32_t c = nn_crc32(file, size - 4);
        for (int i = 0; i < 4; i++)
            file[size - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
    }
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, file, size, 0) != (ssize_t)size)
        abort();
    free(file);

    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    nn_net n;
    if (nn_model_load(&n, path, err, sizeof err) == 0) {
        /* a loaded network is consistent and finite */
        if (n.nparams != nn_net_count(n.in, n.hidden, n.out) || !n.params)
            abort();
        for (size_t i = 0; i < n.nparams; i++)
            if (!isfinite(n.params[i]))
                abort();
        nn_net_free(&n);
    } else if (!err[0]) {
        abort(); /* refused without a word */
    }
    return 0;
}
