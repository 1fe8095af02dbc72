/*
 * log.c — levelled, thread-safe logging to stderr.  Each event is written
 * with a single write(2) so lines from different threads never interleave.
 */
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int g_level = TRIB_LOG_INFO; /* set once at start-up */
static int g_json;
static int g_clear_line; /* a status line may be on the terminal: erase it first */

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void log_set_level(int level) { g_level = level; }
int log_get_level(void) { return g_level; }
void log_set_json(int on) { g_json = on; }
void log_set_clear_line(int on) { g_clear_line = on; }

int log_level_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TRIB_LOG_WARN;
    return -1;
}

void trib_vlog(int level, const char *who, const char *fmt, va_list ap)
{
    if (level > g_level)
        return;
    if (level < 0)
        level = 0;
    if (level > 4)
        level = 4;
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t ml = strlen(msg);
    while (ml && msg[ml - 1] == '\n')
        msg[--ml] = '\0';

    strbuf b;
    sb_init(&b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (g_clear_line)
        sb_puts(&b, "\r\033[K");
    if (g_json) {
        sb_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", when, level_names[level]);
        if (who) {
            sb_puts(&b, ",\"plugin\":");
            sb_json_str(&b, who, strlen(who));
        }
        sb_puts(&b, ",\"msg\":");
        sb_json_str(&b, msg, ml);
        sb_puts(&b, "}\n");
    } else {
        sb_printf(&b, "%s %-5s %s%s%s\n", when, level_names[level], who ? "[" : "",
                  who ? who : "", who ? "] " : "");
        /* put the message before the newline */
        b.len--;
        sb_put(&b, msg, ml);
        sb_putc(&b, '\n');
    }
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
    sb_free(&b);
}

void trib_log(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    trib_vlog(level, who, fmt, ap);
    va_end(ap);
}
