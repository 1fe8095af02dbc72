/*
 * util.c — allocation, string buffers and the small encoders used by the
 * converter and the log.  Allocation failure is fatal: a CDC engine that
 * cannot allocate cannot make progress safely, and the slot keeps the data.
 */
#include "util.h"

#include <tributary/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
    fputs("tributary: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void sb_init(strbuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void sb_free(strbuf *b)
{
    free(b->data);
    sb_init(b);
}

void sb_reserve(strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void sb_putc(strbuf *b, char c)
{
    sb_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void sb_put(strbuf *b, const void *data, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *sb_steal(strbuf *b, size_t *len)
{
    if (!b->data)
        sb_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    sb_init(b);
    return p;
}

void sb_base64(strbuf *b, const unsigned char *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sb_reserve(b, (n + 2) / 3 * 4);
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void sb_hex(strbuf *b, const unsigned char *d, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    sb_reserve(b, n * 2);
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        *o++ = hx[d[i] >> 4];
        *o++ = hx[d[i] & 15];
    }
    b->len += n * 2;
    b->data[b->len] = '\0';
}

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        need = 2, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        need = 3, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        need = 4, min = 0x10000;
    else
        return 0;
    if (need > n)
        return 0;
    unsigned cp = c & (0x7F >> need);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

void sb_json_str(strbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    sb_reserve(b, n + 2);
    sb_putc(b, '"');
    size_t run = 0; /* start of a run of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char tmp[8];
        size_t l = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            l = utf8_len(s + i, n - i);
            /* not UTF-8: show the byte's value as \u00XX; a JSON reader cannot
               tell it from that code point, so byte-exact output uses hex */
            if (l == 0) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
                l = 1;
            }
        }
        if (esc) {
            sb_put(b, s + run, i - run);
            sb_puts(b, esc);
            run = i + l;
        }
        i += l;
    }
    sb_put(b, s + run, n - run);
    sb_putc(b, '"');
}

void lsn_format(uint64_t lsn, char out[32])
{
    trib_lsn_format(lsn, out);
}

int lsn_parse(const char *s, uint64_t *out)
{
    unsigned hi, lo;
    char tail;
    if (sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

int wake_open(int fds[2])
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0)
        return 0;
    fds[0] = fds[1] = -1;
    return -1;
}

void wake_poke(int wfd)
{
    if (wfd < 0)
        return;
    int saved = errno;
    char c = 1;
    ssize_t w = write(wfd, &c, 1); /* EAGAIN: the pipe is full, the waiter wakes anyway */
    (void)w;
    errno = saved;
}

void wake_drain(int rfd)
{
    char buf[64];
    if (rfd < 0)
        return;
    while (read(rfd, buf, sizeof buf) > 0)
        ;
}

void wake_close(int fds[2])
{
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *redact_secrets(const char *s)
{
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "");
    for (const char *p = s; *p;) {
        /* key=value form: password=secret */
        if (strncmp(p, "password", 8) == 0) {
            const char *q = p + 8;
            while (*q == ' ')
                q++;
            if (*q == '=') {
                q++;
                while (*q == ' ')
                    q++;
                sb_puts(&b, "password=****");
                if (*q == '\'') {
                    for (q++; *q && *q != '\''; q++)
                        if (*q == '\\' && q[1])
                            q++;
                    if (*q)
                        q++;
                } else {
                    while (*q && *q != ' ')
                        q++;
                }
                p = q;
                continue;
            }
        }
        /* URL form: scheme://user:secret@host */
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            const char *auth = p + 3, *at = strchr(auth, '@');
            const char *slash = strchr(auth, '/');
            if (at && (!slash || at < slash)) {
                const char *colon = memchr(auth, ':', (size_t)(at - auth));
                sb_put(&b, p, 3);
                if (colon) {
                    sb_put(&b, auth, (size_t)(colon - auth));
                    sb_puts(&b, ":****");
                } else {
                    sb_puts(&b, "****");
                }
                p = at;
                continue;
            }
        }
        sb_putc(&b, *p++);
    }
    return sb_steal(&b, NULL);
}
