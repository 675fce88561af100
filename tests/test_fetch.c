/* test_fetch.c - src/fetch against the fixture HTTP server on 127.0.0.1. */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/fetch.h"
#include "tests/support/fixture_httpd.h"

static struct fixture_httpd *srv;

static int setup(void **state)
{
	(void)state;
	/* A proxy from the environment must not see our loopback requests. */
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	srv = fixture_httpd_start();
	return srv ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	fixture_httpd_stop(srv);
	srv = NULL;
	return 0;
}

/* Fetches path on the fixture; returns the code and keeps data in *data. */
static enum err_code get(const char *path, const struct fetch_limits *lim, uint8_t **data,
			 size_t *len, struct err *err)
{
	char *url = fixture_httpd_url(srv, path);
	assert_non_null(url);
	err_clear(err);
	enum err_code rc = fetch_url(url, lim, data, len, err);
	free(url);
	return rc;
}

static void test_ok(void **state)
{
	(void)state;
	fixture_httpd_add_bytes(srv, "/pkg.wasm", "\0asm\1\0\0\0", 8);
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/pkg.wasm?v=1", NULL, &data, &len, &err), ERR_OK);
	assert_int_equal(len, 8);
	assert_memory_equal(data, "\0asm\1\0\0\0", 8);
	free(data);
	assert_int_equal(fixture_httpd_hits(srv, "/pkg.wasm"), 1);
}

static void test_empty_body(void **state)
{
	(void)state;
	fixture_httpd_add_bytes(srv, "/empty", "", 0);
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/empty", NULL, &data, &len, &err), ERR_OK);
	assert_non_null(data);
	assert_int_equal(len, 0);
	free(data);
}

static void test_404(void **state)
{
	(void)state;
	uint8_t *data = (uint8_t *)"x";
	size_t len = 7;
	struct err err;
	assert_int_equal(get("/nope", NULL, &data, &len, &err), ERR_FETCH_STATUS);
	assert_null(data);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err.msg, "http status 404"));
	assert_non_null(strstr(err.msg, "/nope'"));
	fixture_httpd_add_status(srv, "/boom", 500);
	assert_int_equal(get("/boom", NULL, &data, &len, &err), ERR_FETCH_STATUS);
	assert_non_null(strstr(err.msg, "http status 500"));
	/* 204 is a success with an empty body. */
	fixture_httpd_add_status(srv, "/nocontent", 204);
	assert_int_equal(get("/nocontent", NULL, &data, &len, &err), ERR_OK);
	assert_int_equal(len, 0);
	free(data);
}

static void test_redirect_loop(void **state)
{
	(void)state;
	fixture_httpd_add_redirect(srv, "/loop", "/loop");
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/loop", NULL, &data, &len, &err), ERR_REDIRECTS);
	assert_non_null(strstr(err.msg, "too many redirects"));
	/* The first request plus the default five redirects, then it stops. */
	assert_int_equal(fixture_httpd_hits(srv, "/loop"), 1 + FETCH_DEFAULT_MAX_REDIRECTS);
}

/* /chain<n>/<i> redirects to /chain<n>/<i+1> up to <n>, which answers. */
static void add_chain(const char *name, int n)
{
	char path[64], next[64];
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/%s/%d", name, i);
		snprintf(next, sizeof(next), "/%s/%d", name, i + 1);
		fixture_httpd_add_redirect(srv, path, next);
	}
	snprintf(path, sizeof(path), "/%s/%d", name, n);
	fixture_httpd_add_bytes(srv, path, "end", 3);
}

static void test_redirect_chain(void **state)
{
	(void)state;
	uint8_t *data;
	size_t len;
	struct err err;
	add_chain("three", 3);
	assert_int_equal(get("/three/0", NULL, &data, &len, &err), ERR_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "end", 3);
	free(data);
	add_chain("six", 6);
	assert_int_equal(get("/six/0", NULL, &data, &len, &err), ERR_REDIRECTS);
	assert_int_equal(fixture_httpd_hits(srv, "/six/6"), 0);
	/* An explicit limit: 3 allowed, a chain of 3 passes, one of 4 fails. */
	struct fetch_limits lim = { .max_redirects = 3 };
	add_chain("four", 4);
	assert_int_equal(get("/three/0", &lim, &data, &len, &err), ERR_OK);
	free(data);
	assert_int_equal(get("/four/0", &lim, &data, &len, &err), ERR_REDIRECTS);
	/* Negative: no redirect at all. */
	lim.max_redirects = -1;
	assert_int_equal(get("/three/0", &lim, &data, &len, &err), ERR_REDIRECTS);
}

static void test_redirect_to_other_scheme(void **state)
{
	(void)state;
	fixture_httpd_add_redirect(srv, "/to-file", "file:///etc/passwd");
	fixture_httpd_add_redirect(srv, "/to-ftp", "ftp://127.0.0.1/x");
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/to-file", NULL, &data, &len, &err), ERR_FETCH);
	assert_null(data);
	assert_int_equal(get("/to-ftp", NULL, &data, &len, &err), ERR_FETCH);
	assert_null(data);
}

static void check_too_large(const char *path, int with_cl)
{
	const size_t huge = (size_t)100 << 20;
	fixture_httpd_add_huge(srv, path, huge, with_cl);
	struct fetch_limits lim = { .max_bytes = 256 * 1024 };
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get(path, &lim, &data, &len, &err), ERR_TOO_LARGE);
	assert_null(data);
	assert_non_null(strstr(err.msg, "larger than 262144 bytes"));
	/* The download stopped early: far less than the 100 MB were sent. */
	assert_int_equal(fixture_httpd_wait_idle(srv, 10000), 0);
	uint64_t sent = fixture_httpd_bytes_sent(srv, path);
	assert_true(sent < huge / 4);
	if (with_cl)
		assert_true(sent < huge / 10);
}

static void test_too_large(void **state)
{
	(void)state;
	check_too_large("/huge-cl", 1);
	check_too_large("/huge-stream", 0);
}

static void test_exact_cap(void **state)
{
	(void)state;
	fixture_httpd_add_huge(srv, "/exact", 1000, 0);
	struct fetch_limits lim = { .max_bytes = 1000 };
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/exact", &lim, &data, &len, &err), ERR_OK);
	assert_int_equal(len, 1000);
	free(data);
	lim.max_bytes = 999;
	assert_int_equal(get("/exact", &lim, &data, &len, &err), ERR_TOO_LARGE);
}

static void test_content_length_lie(void **state)
{
	(void)state;
	/* Claims 10 bytes, sends 1 MiB: only the announced 10 are taken. */
	fixture_httpd_add_lie(srv, "/lie-short", 10, 1 << 20);
	uint8_t *data;
	size_t len;
	struct err err;
	enum err_code rc = get("/lie-short", NULL, &data, &len, &err);
	if (rc == ERR_OK) {
		assert_int_equal(len, 10);
		free(data);
	} else {
		assert_int_equal(rc, ERR_FETCH);
	}
	/* Claims 1 MiB, sends 10 bytes and closes: a failed transfer. */
	fixture_httpd_add_lie(srv, "/lie-long", 1 << 20, 10);
	assert_int_equal(get("/lie-long", NULL, &data, &len, &err), ERR_FETCH);
	assert_null(data);
}

static void test_timeout(void **state)
{
	(void)state;
	fixture_httpd_add_slow(srv, "/slow", 20000);
	struct fetch_limits lim = { .total_timeout_ms = 300 };
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(get("/slow", &lim, &data, &len, &err), ERR_TIMEOUT);
	assert_null(data);
	assert_non_null(strstr(err.msg, "timed out"));
	/* A short delay under a generous timeout succeeds. */
	fixture_httpd_add_slow(srv, "/slowish", 50);
	lim.total_timeout_ms = 20000;
	assert_int_equal(get("/slowish", &lim, &data, &len, &err), ERR_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(data, "slow", 4);
	free(data);
}

/* A fetch still running after FETCH_PROGRESS_S logs progress lines naming the
 * URL without its query (which may hold a secret), and one line when it ends. */
static void test_progress_logged(void **state)
{
	(void)state;
	fixture_httpd_add_slow(srv, "/long.wasm", (FETCH_PROGRESS_S + 1) * 1000);
	char *dir = tu_mkdtemp("fetch-log");
	char *path = tu_fmt("%s/stderr", dir);
	fflush(stderr);
	int saved = dup(2);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	dup2(fileno(f), 2);
	uint8_t *data;
	size_t len;
	struct err err;
	struct fetch_limits lim = { .total_timeout_ms = 60000 };
	enum err_code rc = get("/long.wasm?token=s3cret", &lim, &data, &len, &err);
	dup2(saved, 2);
	close(saved);
	fclose(f);
	assert_int_equal(rc, ERR_OK);
	free(data);
	char *log = tu_read_file(path, NULL);
	assert_non_null(log);
	printf("%s", log);
	assert_non_null(strstr(log, "info fetch: 'http://127.0.0.1:"));
	assert_non_null(strstr(log, "/long.wasm': 0.0 MiB after "));
	assert_non_null(strstr(log, "/long.wasm': done after "));
	assert_null(strstr(log, "s3cret"));
	free(log);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

static void test_schemes_refused(void **state)
{
	(void)state;
	const char *bad[] = { "ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/",
			      "127.0.0.1/x", "", "httpx://127.0.0.1/", "/etc/passwd" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *data;
		size_t len;
		struct err err;
		assert_int_equal(fetch_url(bad[i], NULL, &data, &len, &err), ERR_BAD_REFERENCE);
		assert_null(data);
	}
	assert_true(fetch_url_allowed("HTTP://127.0.0.1/"));
	assert_true(fetch_url_allowed("https://x/"));
	assert_false(fetch_url_allowed(NULL));
}

static void test_url_too_long(void **state)
{
	(void)state;
	char *url = malloc(FETCH_MAX_URL + 64);
	assert_non_null(url);
	strcpy(url, "http://127.0.0.1/");
	size_t n = strlen(url);
	memset(url + n, 'a', FETCH_MAX_URL);
	url[n + FETCH_MAX_URL] = '\0';
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(fetch_url(url, NULL, &data, &len, &err), ERR_BAD_REFERENCE);
	free(url);
}

/* A port that was just free: bind, read the port, close. */
static unsigned short dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_connection_refused(void **state)
{
	(void)state;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", (unsigned)dead_port());
	uint8_t *data;
	size_t len;
	struct err err;
	assert_int_equal(fetch_url(url, NULL, &data, &len, &err), ERR_FETCH);
	assert_null(data);
	assert_non_null(strstr(err.msg, "fetch 'http://127.0.0.1:"));
}

static void test_request_post(void **state)
{
	(void)state;
	fixture_httpd_add_bytes(srv, "/echo", "ok", 2);
	char *url = fixture_httpd_url(srv, "/echo");
	const char *hdrs[] = { "Content-Type: application/json", "X-Test: 1" };
	struct fetch_request req = { .method = "POST", .url = url, .headers = hdrs, .nheaders = 2,
				     .body = "{\"a\":1}", .body_len = 7 };
	struct fetch_response resp;
	struct err err;
	assert_int_equal(fetch_request(&req, NULL, &resp, &err), ERR_OK);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 2);
	assert_non_null(strstr(resp.headers, "Content-Length: 2"));
	fetch_response_release(&resp);
	char method[16];
	fixture_httpd_last_method(srv, "/echo", method);
	assert_string_equal(method, "POST");
	size_t blen = 0;
	char *body = fixture_httpd_last_body(srv, "/echo", &blen);
	assert_non_null(body);
	assert_string_equal(body, "{\"a\":1}");
	free(body);
	/* Non-2xx is a response, not an error, without fail_on_status. */
	req.url = "http://127.0.0.1:1/";
	free(url);
	url = fixture_httpd_url(srv, "/missing");
	req.url = url;
	req.body = NULL;
	req.method = "DELETE";
	assert_int_equal(fetch_request(&req, NULL, &resp, &err), ERR_OK);
	assert_int_equal(resp.status, 404);
	fetch_response_release(&resp);
	/* Header injection and bad methods are refused. */
	const char *evil[] = { "X-A: 1\r\nX-B: 2" };
	req.headers = evil;
	req.nheaders = 1;
	assert_int_equal(fetch_request(&req, NULL, &resp, &err), ERR_INVALID);
	req.headers = NULL;
	req.nheaders = 0;
	req.method = "GET /x";
	assert_int_equal(fetch_request(&req, NULL, &resp, &err), ERR_INVALID);
	free(url);
	fetch_response_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_404),
		cmocka_unit_test(test_redirect_loop),
		cmocka_unit_test(test_redirect_chain),
		cmocka_unit_test(test_redirect_to_other_scheme),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_exact_cap),
		cmocka_unit_test(test_content_length_lie),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_progress_logged),
		cmocka_unit_test(test_schemes_refused),
		cmocka_unit_test(test_url_too_long),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_request_post),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
