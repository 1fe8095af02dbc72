/*
 * tests/internal/test_redis_url.c — unit test of the redis plugin's URL
 * parser: defaults, users and passwords (percent-encoded), IPv6, databases,
 * rejected forms, and that neither errors nor the redacted form leak the
 * password; and redis_info_field, which reads INFO replies.
 */
#include "redis.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void ok(const char *s, const char *host, int port, int db, const char *user, const char *pw,
               const char *redacted)
{
    redis_url u;
    char err[256] = "", buf[256];
    int ret = redis_url_parse(s, &u, err, sizeof err);
    EXPECT(ret == TRIB_OK);
    if (ret != TRIB_OK) {
        fprintf(stderr, "  %s: %s\n", s, err);
        return;
    }
    EXPECT(str_eq(u.host, host));
    EXPECT(u.port == port);
    EXPECT(u.db == db);
    EXPECT(str_eq(u.user, user));
    EXPECT(str_eq(u.password, pw));
    redis_url_redacted(&u, buf, sizeof buf);
    if (strcmp(buf, redacted) != 0)
        fprintf(stderr, "  redacted %s, want %s\n", buf, redacted);
    EXPECT(strcmp(buf, redacted) == 0);
    redis_url_free(&u);
}

static void bad(const char *s, const char *what)
{
    redis_url u;
    char err[256] = "";
    EXPECT(redis_url_parse(s, &u, err, sizeof err) == TRIB_ERR);
    if (!strstr(err, what))
        fprintf(stderr, "  %s: error '%s' lacks '%s'\n", s ? s : "(null)", err, what);
    EXPECT(strstr(err, what) != NULL);
    EXPECT(strstr(err, "hunter2") == NULL);
}

int main(void)
{
    ok("redis://127.0.0.1:6380/0", "127.0.0.1", 6380, 0, NULL, NULL, "redis://127.0.0.1:6380/0");
    ok("redis://localhost", "localhost", 6379, 0, NULL, NULL, "redis://localhost:6379/0");
    ok("redis://h:1/15", "h", 1, 15, NULL, NULL, "redis://h:1/15");
    ok("redis://h/", "h", 6379, 0, NULL, NULL, "redis://h:6379/0");
    ok("redis://:hunter2@h:7000/2", "h", 7000, 2, NULL, "hunter2", "redis://:***@h:7000/2");
    ok("redis://bob:hunter2@h:7000/2", "h", 7000, 2, "bob", "hunter2", "redis://bob:***@h:7000/2");
    ok("redis://bob@h", "h", 6379, 0, "bob", NULL, "redis://bob@h:6379/0");
    ok("redis://:p%40ss%3Aw%2Fd@h", "h", 6379, 0, NULL, "p@ss:w/d", "redis://:***@h:6379/0");
    ok("redis://:a@b@h:1", "h", 1, 0, NULL, "a@b", "redis://:***@h:1/0");
    ok("redis://[::1]:6390/3", "::1", 6390, 3, NULL, NULL, "redis://[::1]:6390/3");
    ok("redis://:@h", "h", 6379, 0, NULL, NULL, "redis://h:6379/0");

    bad(NULL, "empty");
    bad("", "empty");
    bad("http://h", "redis://");
    bad("rediss://h", "TLS");
    bad("redis://:hunter2@h:99999", "port");
    bad("redis://:hunter2@h:x", "port");
    bad("redis://:hunter2@h/db", "database");
    bad("redis://:hunter2@h/-1", "database");
    bad("redis://:hunter2%zz@h", "percent");
    bad("redis://:hunter2@h?timeout=1", "query");
    bad("redis://:hunter2@[::1", "'['");

    /* redis_info_field: INFO's "name:value" lines */
    const char info[] = "# Stats\r\ntotal_connections_received:7\r\nunexpected_error_replies:3\r\n"
                        "total_error_replies:42\r\nbad:x\r\nbig:99999999999999999999\r\nlast:5";
    struct {
        const char *name;
        long long want;
    } fields[] = {{"total_error_replies", 42}, {"error_replies", -1}, {"unexpected_error_replies", 3},
                  {"total_connections_received", 7}, {"bad", -1}, {"big", -1}, {"last", 5},
                  {"# Stats", -1}, {"missing", -1}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        long long got = redis_info_field(info, sizeof info - 1, fields[i].name);
        if (got != fields[i].want) {
            fprintf(stderr, "FAIL: info field %s: %lld, want %lld\n", fields[i].name, got,
                    fields[i].want);
            failures++;
        }
    }
    if (redis_info_field(info, 30, "total_error_replies") != -1) { /* cut before the line */
        fprintf(stderr, "FAIL: info field past the length\n");
        failures++;
    }

    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    else
        printf("test_redis_url: all ok\n");
    return failures ? 1 : 0;
}
