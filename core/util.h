/*
 * util.h — small helpers shared by the core: checked allocation, a growable
 * string buffer, and the encodings the converter needs (base64, hex, JSON
 * string escaping, Postgres LSN text).
 */
#ifndef TRIB_UTIL_H
#define TRIB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

void sb_init(strbuf *b);
void sb_free(strbuf *b);
void sb_reserve(strbuf *b, size_t extra);
void sb_putc(strbuf *b, char c);
void sb_put(strbuf *b, const void *data, size_t n);
void sb_puts(strbuf *b, const char *s);
void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Take ownership of the buffer's bytes (NUL-terminated); b becomes empty. */
char *sb_steal(strbuf *b, size_t *len);

/** Append `n` bytes as base64 (RFC 4648, padded). */
void sb_base64(strbuf *b, const unsigned char *data, size_t n);
/** Append `n` bytes as lowercase hex. */
void sb_hex(strbuf *b, const unsigned char *data, size_t n);
/** Append a JSON string literal (quotes included); invalid UTF-8 becomes \ufffd-free \u00XX escapes. */
void sb_json_str(strbuf *b, const char *s, size_t n);

/** Format an LSN as Postgres does: "16/B374D848". */
void lsn_format(uint64_t lsn, char out[32]);
/** Parse "X/Y"; returns 0 on success. */
int lsn_parse(const char *s, uint64_t *out);

/** Monotonic and wall clocks in milliseconds. */
int64_t now_mono_ms(void);
int64_t now_wall_ms(void);

/*
 * A wake-up pipe (self-pipe): any thread, or a signal handler, pokes it;
 * a thread blocked in poll() on fds[0] then wakes.  A poke made before the
 * waiter polls is not lost: the byte stays in the pipe until drained.
 */
/** Open a non-blocking, close-on-exec pipe; 0 on success, -1 (fds set to -1) on failure. */
int wake_open(int fds[2]);
/** Write one byte to fds[1] (async-signal-safe; errno preserved; no-op on -1). */
void wake_poke(int wfd);
/** Read everything pending on fds[0] (no-op on -1). */
void wake_drain(int rfd);
void wake_close(int fds[2]);

/** Copy a message into a caller's error buffer (printf-style). */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Hide secrets in a conninfo or URL: password=... and user:pass@ become ****. */
char *redact_secrets(const char *s);

#endif
