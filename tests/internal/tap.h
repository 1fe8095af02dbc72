/*
 * tap.h — a minimal TAP producer for C unit tests: ok(cond, name),
 * is_str(got, want, name), done_testing().  Exit status is the number of
 * failures (capped), so automake's driver sees failures too.
 */
#ifndef TRIB_TAP_H
#define TRIB_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_fail;

#define ok(cond, ...)                                                                            \
    do {                                                                                         \
        int ok_ = !!(cond);                                                                      \
        printf("%s %d - ", ok_ ? "ok" : "not ok", ++tap_n);                                      \
        printf(__VA_ARGS__);                                                                     \
        printf("\n");                                                                            \
        if (!ok_) {                                                                              \
            tap_fail++;                                                                          \
            printf("#   failed at %s:%d\n", __FILE__, __LINE__);                                 \
        }                                                                                        \
    } while (0)

#define is_str(got, want, ...)                                                                   \
    do {                                                                                         \
        const char *g_ = (got), *w_ = (want);                                                    \
        int same_ = g_ && w_ && strcmp(g_, w_) == 0;                                             \
        ok(same_, __VA_ARGS__);                                                                  \
        if (!same_)                                                                              \
            printf("#   got:  '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");  \
    } while (0)

#define has_str(got, want, ...)                                                                  \
    do {                                                                                         \
        const char *g_ = (got), *w_ = (want);                                                    \
        int has_ = g_ && w_ && strstr(g_, w_) != NULL;                                           \
        ok(has_, __VA_ARGS__);                                                                   \
        if (!has_)                                                                               \
            printf("#   got:  '%s'\n#   want substring: '%s'\n", g_ ? g_ : "(null)", w_);       \
    } while (0)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_fail > 100 ? 100 : tap_fail;
}

#endif
