/* log.h - one-line log records on stderr. Text (the default):
 *   2026-11-21T20:30:00Z info chain: msg key=value key="a value"
 * or JSON, one object a line:
 *   {"ts":"2026-11-21T20:30:00Z","level":"info","module":"chain","msg":"msg","key":"value"}
 * Threads: safe from any thread (one write(2) per record). */
#ifndef THEATER_UTIL_LOG_H
#define THEATER_UTIL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Records below `level` are dropped. Call once at start-up, before threads. */
void log_set_level(enum log_level level);
enum log_format { LOG_TEXT, LOG_JSON };
/* Call once at start-up, before threads. */
void log_set_format(enum log_format format);
/* 1 when a record at level would be written (skip building fields otherwise). */
int log_enabled(enum log_level level);
/* A record with fields: kv is name, value, name, value, ..., NULL. A value that
 * is a decimal number is a JSON number in the JSON format; others are strings. */
void log_fields(enum log_level level, const char *module, const char *msg,
		const char *const *kv);
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Rate-limited records (issue 16: a failing accept() logged 8.9 M identical lines
 * in a minute). Records with the same key (any stable pointer, usually the
 * format string of the call site) make at most one line per window (10 s by
 * default); the next line after a window carries how many were suppressed
 * ("(N more like this suppressed)", and a "suppressed" field). Up to 64 keys are
 * tracked at once; others take the slot used longest ago. */
void log_limited(const void *key, enum log_level level, const char *module, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));
/* For tests: the window in ms (0: the default). Call before threads. */
void log_set_limit_window_ms(unsigned ms);
/* log_limited keyed by the call site's format string: for records a loop or every
 * request, event or spawn can repeat while a failure lasts (a full disk, a broken
 * index, an unreachable cluster), one line per window instead of one per item. */
#define log_warn_limited(mod, fmt, ...) log_limited(fmt, LOG_WARN, mod, fmt, __VA_ARGS__)
#define log_error_limited(mod, fmt, ...) log_limited(fmt, LOG_ERROR, mod, fmt, __VA_ARGS__)

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
