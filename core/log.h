/*
 * log.h — the engine's log: levels, one line per event on stderr, as plain
 * text or as JSON objects (log_format: json) for log shippers.
 */
#ifndef TRIB_LOG_H
#define TRIB_LOG_H

#include <stdarg.h>
#include <tributary/plugin.h>

void log_set_level(int level);
int log_get_level(void);
void log_set_json(int on);
/** Erase the terminal's current line before each log line (status line shown). */
void log_set_clear_line(int on);
/** Parse "error|warn|info|debug|trace"; -1 if unknown. */
int log_level_parse(const char *s);

void trib_log(int level, const char *who, const char *fmt, ...) TRIB_PRINTF(3, 4);
void trib_vlog(int level, const char *who, const char *fmt, va_list ap);

#define log_error(...) trib_log(TRIB_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) trib_log(TRIB_LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) trib_log(TRIB_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) trib_log(TRIB_LOG_DEBUG, NULL, __VA_ARGS__)

#endif
