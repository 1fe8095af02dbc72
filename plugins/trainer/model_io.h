/*
 * model_io.h — the trainer's model file: save (temp file + fsync + rename)
 * and a validating loader.  The format is documented in docs/model-format.md:
 *
 *   0  8  magic "TRIBMODL"
 *   8  4  format version (1), little-endian u32 like every integer here
 *  12  4  architecture (1 = dense-relu-dense-softmax)
 *  16  4  in      20  4  hidden      24  4  out      28  4  reserved (0)
 *  32  .  float32 LE: w1[in][hidden], b1[hidden], w2[hidden][out], b2[out]
 * end-4 4 CRC-32 (IEEE, as zlib's crc32) of every byte before it
 */
#ifndef TRIB_MODEL_IO_H
#define TRIB_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

#define NN_MODEL_MAGIC "TRIBMODL"
#define NN_MODEL_VERSION 1u
#define NN_MODEL_ARCH 1u
#define NN_MODEL_HEADER 32u

uint32_t nn_crc32(const void *data, size_t len);

/** Write `n` to `path` atomically.  0, or -1 with a message in err. */
int nn_model_save(const nn_net *n, const char *path, char *err, size_t errlen);

/**
 * Load `path` into a freshly initialised *n (the caller frees it with
 * nn_net_free).  Validates magic, version, shapes, size, checksum and that
 * every weight is finite.  0, or -1 with a one-line message in err.
 */
int nn_model_load(nn_net *n, const char *path, char *err, size_t errlen);

#endif /* TRIB_MODEL_IO_H */
