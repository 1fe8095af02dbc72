/*
 * plugins/redis/redis_url.c — parse `redis://[user:password@]host[:port][/db]`.
 *
 * The user and password may be percent-encoded (so a password can contain
 * '@', ':' or '/').  IPv6 hosts go in brackets.  Error messages never repeat
 * the password, and redis_url_redacted() gives a form that is safe to log.
 */
#include "redis.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copy s[0..n) percent-decoding it.  NULL on a bad escape or ENOMEM. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int set_err(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen,
             "option 'url': invalid redis url: %s (expected redis://[user:password@]host:port/db)",
             msg);
    return TRIB_ERR;
}

/* Parse the userinfo part "user:password" / ":password" / "password"-less user. */
static int parse_userinfo(const char *s, size_t n, redis_url *u, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (ulen > 0 && !(u->user = pct_decode(s, ulen)))
        return set_err(err, errlen, "bad percent-escape in the user name");
    if (colon && !(u->password = pct_decode(colon + 1, n - ulen - 1)))
        return set_err(err, errlen, "bad percent-escape in the password");
    if (u->password && u->password[0] == '\0') {
        free(u->password);
        u->password = NULL;
    }
    return TRIB_OK;
}

static int parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* host[:port] or [v6][:port] */
static int parse_hostport(const char *s, size_t n, redis_url *u, char *err, size_t errlen)
{
    const char *hs = s, *he, *portp = NULL;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return set_err(err, errlen, "unterminated '[' in host");
        hs = s + 1;
        he = rb;
        if (rb + 1 < s + n) {
            if (rb[1] != ':')
                return set_err(err, errlen, "junk after ']'");
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        he = colon ? colon : s + n;
        if (colon)
            portp = colon + 1;
    }
    u->host = he > hs ? strndup(hs, (size_t)(he - hs)) : strdup("127.0.0.1");
    if (!u->host)
        return set_err(err, errlen, "out of memory");
    u->port = 6379;
    if (portp && parse_port(portp, (size_t)(s + n - portp), &u->port) != 0)
        return set_err(err, errlen, "port must be a number 1..65535");
    return TRIB_OK;
}

static int parse_db(const char *s, redis_url *u, char *err, size_t errlen)
{
    u->db = 0;
    if (*s == '\0')
        return TRIB_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end != '\0' || errno || v < 0 || v > 1000000)
        return set_err(err, errlen, "the path must be a database number, e.g. /0");
    u->db = (int)v;
    return TRIB_OK;
}

int redis_url_parse(const char *s, redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (!s || !*s)
        return set_err(err, errlen, "empty");
    if (strncmp(s, "rediss://", 9) == 0)
        return set_err(err, errlen, "TLS (rediss://) is not supported by this build");
    if (strncmp(s, "redis://", 8) != 0)
        return set_err(err, errlen, "must start with redis://");
    const char *p = s + 8;
    if (strpbrk(p, "?#"))
        return set_err(err, errlen, "query parameters are not supported");
    const char *slash = strchr(p, '/');
    const char *auth_end = p + strcspn(p, "/");
    /* the last '@' before the path ends the userinfo (passwords may hold '@' unescaped) */
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    int rc = TRIB_OK;
    if (at) {
        rc = parse_userinfo(p, (size_t)(at - p), u, err, errlen);
        p = at + 1;
    }
    if (rc == TRIB_OK)
        rc = parse_hostport(p, (size_t)(auth_end - p), u, err, errlen);
    if (rc == TRIB_OK)
        rc = parse_db(slash ? slash + 1 : "", u, err, errlen);
    if (rc != TRIB_OK)
        redis_url_free(u);
    return rc;
}

void redis_url_free(redis_url *u)
{
    free(u->host);
    free(u->user);
    if (u->password) {
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    memset(u, 0, sizeof *u);
}

void redis_url_redacted(const redis_url *u, char *buf, size_t len)
{
    int v6 = u->host && strchr(u->host, ':') != NULL;
    snprintf(buf, len, "redis://%s%s%s%s%s%s:%d/%d", u->user ? u->user : "",
             u->password ? ":***" : "", (u->user || u->password) ? "@" : "", v6 ? "[" : "",
             u->host ? u->host : "?", v6 ? "]" : "", u->port, u->db);
}
