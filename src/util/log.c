/* log.c - stderr logging; see log.h. Level and format are set once before
 * threads start, which is why they may be file-scope variables (read-only
 * afterwards). A record is built in one buffer and written with one write(2),
 * so records from several threads never interleave. */
#include "src/util/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_ 4096

static enum log_level min_level = LOG_INFO;
static enum log_format format = LOG_TEXT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	min_level = level;
}

void log_set_format(enum log_format f)
{
	format = f;
}

int log_enabled(enum log_level level)
{
	return level >= min_level;
}

struct line {
	char b[LINE_MAX_];
	size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
	if (len > sizeof(l->b) - 2 - l->n)
		len = sizeof(l->b) - 2 - l->n;
	memcpy(l->b + l->n, s, len);
	l->n += len;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* 1 when s is well-formed UTF-8 (no overlong forms or surrogates checked: a
 * log line only has to stay parseable). */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0)
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

/* s as a JSON string, quotes included. Bytes of a string that is not UTF-8
 * are written as \u00XX, so the line stays valid JSON. */
static void put_json(struct line *l, const char *s)
{
	int raw = utf8_ok(s);
	put(l, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];
		if (ch >= 0x80 && !raw) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			put(l, esc, 6);
		} else if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			put(l, esc, 2);
		} else if (ch < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			put(l, esc, 6);
		} else {
			put(l, s, 1);
		}
	}
	put(l, "\"", 1);
}

static int is_number(const char *s)
{
	size_t i = 0, digits = 0;
	if (s[i] == '-')
		i++;
	for (; s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (digits == 0 || (digits > 1 && s[s[0] == '-'] == '0'))
		return 0;
	if (s[i] == '.') {
		size_t frac = 0;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			frac++;
		if (!frac)
			return 0;
	}
	return s[i] == '\0';
}

/* A text value: bare when it has no space, quote or '=', else quoted. */
static void put_text_value(struct line *l, const char *v)
{
	int bare = *v != '\0';
	for (const unsigned char *p = (const unsigned char *)v; *p && bare; p++)
		bare = *p > ' ' && *p != '"' && *p != '=' && *p != 0x7f;
	if (bare)
		puts_(l, v);
	else
		put_json(l, v);
}

static void emit(enum log_level level, const char *module, const char *msg,
		 const char *const *kv)
{
	struct line l = {.n = 0};
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (format == LOG_JSON) {
		puts_(&l, "{\"ts\":\"");
		puts_(&l, ts);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, level_names[level]);
		puts_(&l, "\",\"module\":");
		put_json(&l, module);
		puts_(&l, ",\"msg\":");
		put_json(&l, msg);
		for (; kv && kv[0]; kv += 2) {
			puts_(&l, ",");
			put_json(&l, kv[0]);
			puts_(&l, ":");
			if (is_number(kv[1]))
				puts_(&l, kv[1]);
			else
				put_json(&l, kv[1]);
		}
		if (l.n >= sizeof(l.b) - 2)     /* cut: keep the line valid JSON */
			l.n = (size_t)snprintf(l.b, sizeof(l.b), "{\"ts\":\"%s\",\"level\":\"%s\","
					       "\"msg\":\"(record too long)\"", ts, level_names[level]);
		puts_(&l, "}");
	} else {
		puts_(&l, ts);
		puts_(&l, " ");
		puts_(&l, level_names[level]);
		puts_(&l, " ");
		puts_(&l, module);
		puts_(&l, ": ");
		puts_(&l, msg);
		for (; kv && kv[0]; kv += 2) {
			puts_(&l, " ");
			puts_(&l, kv[0]);
			puts_(&l, "=");
			put_text_value(&l, kv[1]);
		}
	}
	l.b[l.n++] = '\n';
	ssize_t w = write(STDERR_FILENO, l.b, l.n);
	(void)w;
}

void log_fields(enum log_level level, const char *module, const char *msg,
		const char *const *kv)
{
	if (level >= min_level)
		emit(level, module, msg, kv);
}

/* The message of a printf-style call ("" when the format fails). */
static void format_msg(char *msg, size_t cap, const char *fmt, va_list ap)
{
	if (vsnprintf(msg, cap, fmt, ap) < 0)
		msg[0] = '\0';
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	format_msg(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, module, msg, NULL);
}

/* ---- rate-limited records ---- */

#define LIMIT_SLOTS 64
#define LIMIT_WINDOW_MS 10000

/* Process-wide like the log itself; guarded by limit_mu. */
static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;
static struct limit_slot {
	const void *key;
	int64_t since_ms;             /* start of the current window */
	uint64_t suppressed;          /* records dropped in it */
} limit_slots[LIMIT_SLOTS];
static unsigned limit_window_ms = LIMIT_WINDOW_MS;

void log_set_limit_window_ms(unsigned ms)
{
	limit_window_ms = ms ? ms : LIMIT_WINDOW_MS;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With limit_mu held: the slot of key, claiming a free one or the oldest. */
static struct limit_slot *limit_slot(const void *key)
{
	struct limit_slot *oldest = &limit_slots[0];
	for (int i = 0; i < LIMIT_SLOTS; i++) {
		if (limit_slots[i].key == key)
			return &limit_slots[i];
		if (!limit_slots[i].key || limit_slots[i].since_ms < oldest->since_ms)
			oldest = &limit_slots[i];
		if (!limit_slots[i].key)
			break;
	}
	oldest->key = key;
	oldest->since_ms = 0;
	oldest->suppressed = 0;
	return oldest;
}

void log_limited(const void *key, enum log_level level, const char *module, const char *fmt, ...)
{
	if (level < min_level)
		return;
	int64_t now = mono_ms();
	uint64_t dropped = 0;
	pthread_mutex_lock(&limit_mu);
	struct limit_slot *s = limit_slot(key);
	int go = s->since_ms == 0 || now - s->since_ms >= (int64_t)limit_window_ms;
	if (go) {
		dropped = s->suppressed;
		s->since_ms = now;
		s->suppressed = 0;
	} else {
		s->suppressed++;
	}
	pthread_mutex_unlock(&limit_mu);
	if (!go)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	format_msg(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!dropped) {
		emit(level, module, msg, NULL);
		return;
	}
	char n[24], text[2200];
	snprintf(n, sizeof(n), "%" PRIu64, dropped);
	snprintf(text, sizeof(text), "%s (%s more like this suppressed)", msg, n);
	const char *kv[] = {"suppressed", n, NULL};
	emit(level, module, text, kv);
}
