/* test_log.c - log records: rate-limited records (issue 16: one failing accept()
 * loop wrote 8.9 M identical lines), in text and JSON. Captures stderr in a file. */
#include "tests/support/testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/util/log.h"

struct capture {
	char *path;
	int saved;
};

static void capture_begin(struct capture *c, const char *dir)
{
	c->path = tu_fmt("%s/stderr.txt", dir);
	int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
}

/* Restores stderr; returns what was written (malloc'd). */
static char *capture_end(struct capture *c)
{
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	char *text = tu_read_file(c->path, NULL);
	assert_non_null(text);
	free(c->path);
	return text;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static const char FLOOD[] = "accept failed: %s";
static const char OTHER[] = "another kind: %d";

static void test_limited_floods(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp("theater-log");
	struct capture c;
	log_set_limit_window_ms(300);
	capture_begin(&c, dir);
	for (int i = 0; i < 200000; i++)
		log_limited(FLOOD, LOG_WARN, "http", FLOOD, "too many open files");
	/* another key is limited on its own, not hidden by the first */
	for (int i = 0; i < 1000; i++)
		log_limited(OTHER, LOG_WARN, "http", OTHER, i);
	sleep_ms(400);
	log_limited(FLOOD, LOG_WARN, "http", FLOOD, "too many open files");
	char *text = capture_end(&c);
	/* one line in the first window, one after it with the count */
	assert_int_equal(count(text, "accept failed: too many open files"), 2);
	assert_non_null(strstr(text, "(199999 more like this suppressed)"));
	assert_non_null(strstr(text, "suppressed=199999"));
	assert_int_equal(count(text, "another kind:"), 1);
	assert_non_null(strstr(text, "another kind: 0"));
	assert_int_equal(count(text, "\n"), 3);
	free(text);
	tu_rmtree(dir);
	free(dir);
}

static void test_limited_json(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp("theater-log");
	static const char KEY[] = "json flood";
	struct capture c;
	log_set_limit_window_ms(200);
	log_set_format(LOG_JSON);
	capture_begin(&c, dir);
	for (int i = 0; i < 50; i++)
		log_limited(KEY, LOG_ERROR, "chain", "cannot sync chain '%s'", "x");
	sleep_ms(300);
	log_limited(KEY, LOG_ERROR, "chain", "cannot sync chain '%s'", "x");
	char *text = capture_end(&c);
	log_set_format(LOG_TEXT);
	assert_int_equal(count(text, "\n"), 2);
	assert_non_null(strstr(text, "\"suppressed\":49}"));
	/* below the level: nothing, and it does not count */
	log_set_level(LOG_ERROR);
	capture_begin(&c, dir);
	for (int i = 0; i < 10; i++)
		log_limited(KEY, LOG_WARN, "chain", "quiet %d", i);
	free(text);
	text = capture_end(&c);
	log_set_level(LOG_INFO);
	assert_string_equal(text, "");
	free(text);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limited_floods),
		cmocka_unit_test(test_limited_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
