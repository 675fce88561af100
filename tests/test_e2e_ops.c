/* test_e2e_ops.c - what an operator sees, against a real theater-server:
 * GET /metrics (checked by Prometheus's own `promtool check metrics`, installed
 * with apt when missing and we are root, a failure otherwise), the access log
 * and lifecycle lines in both log formats. */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

static unsigned char *wasm;
static size_t wasm_len;

static int setup(void **state)
{
	(void)state;
	wasm = hello_actor_wasm(&wasm_len);
	return wasm ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(wasm);
	return 0;
}

/* One run that is running and one that failed (its package is not wasm);
 * returns the failed run's reason (malloc'd). */
static char *spawn_two(struct server_proc *sp)
{
	server_put_package(sp, "hello.wasm", wasm, wasm_len);
	server_put_package(sp, "notwasm.wasm", "plain text", 10);
	json_t *j = server_call_json(sp, "POST", "/actors?wait=running",
				     "{\"manifest\": {\"name\": \"hello\", \"package\": \"hello.wasm\"}}", 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	j = server_call_json(sp, "POST", "/actors?wait=running",
			     "{\"manifest\": {\"name\": \"bad\", \"package\": \"notwasm.wasm\"}}", 422);
	const char *full = json_string_value(json_object_get(j, "reason"));
	assert_non_null(full);
	char *reason = strndup(full, strcspn(full, ":"));   /* its kind: "invalid_package" */
	json_decref(j);
	return reason;
}

/* A connection to GET /events that stays open (an SSE client); returns the fd. */
static int open_stream(struct server_proc *sp)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(sp->port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	const char *rq = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
	assert_int_equal(write(fd, rq, strlen(rq)), (ssize_t)strlen(rq));
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);   /* the head: the stream is open */
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "200"));
	return fd;
}

static void assert_line(const char *text, const char *line)
{
	char *want = tu_fmt("\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("/metrics has no line '%s':\n%s", line, text);
	free(want);
}

static void test_metrics_promtool(void **state)
{
	(void)state;
	tu_need_promtool();
	struct server_proc sp = {0};
	assert_int_equal(server_start(&sp, NULL, NULL, NULL), 0);
	char *reason = spawn_two(&sp);
	int fd = open_stream(&sp);
	struct http_result r;
	char *url = tu_fmt("%s/metrics", sp.base);
	assert_int_equal(http_do("GET", url, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	char *ctype = http_header(&r, "Content-Type");
	assert_non_null(strstr(ctype, "text/plain; version=0.0.4"));
	free(ctype);
	printf("%s", r.body);
	char *text = tu_fmt("\n%s", r.body);
	assert_line(text, "theater_actors{status=\"running\"} 1");
	assert_line(text, "theater_actors{status=\"failed\"} 1");
	assert_line(text, "theater_actor_spawns_total 1");
	char *fl = tu_fmt("theater_actor_failures_total{reason=\"%s\"} 1", reason);
	assert_line(text, fl);
	assert_line(text, "theater_sse_clients 1");
	assert_line(text, "theater_actor_restarts_total 0");
	assert_non_null(strstr(text, "\ntheater_http_request_duration_seconds_count{method=\"POST\","
				     "route=\"/actors\",code=\"2xx\"} 1\n"));
	assert_non_null(strstr(text, "\ntheater_http_request_duration_seconds_count{method=\"POST\","
				     "route=\"/actors\",code=\"4xx\"} 1\n"));
	assert_non_null(strstr(text, "\ntheater_chain_fsync_duration_seconds_count "));
	assert_null(strstr(text, "\ntheater_chain_fsync_duration_seconds_count 0\n"));
	assert_null(strstr(text, "actor_id"));     /* no per-actor label */

	/* promtool's verdict on the exact bytes. */
	char *path = tu_fmt("%s/metrics.txt", sp.home);
	assert_int_equal(tu_write_file(path, r.body, r.len), 0);
	char *cmd = tu_fmt("promtool check metrics < '%s'", path);
	int rc = system(cmd);
	assert_int_equal(rc, 0);

	/* A restart and a second scrape: counters move, the stream closed. */
	close(fd);
	http_result_release(&r);
	json_t *list = server_call_json(&sp, "GET", "/actors?status=running", NULL, 200);
	const char *id = json_string_value(json_object_get(json_array_get(json_object_get(list, "items"), 0), "id"));
	char *restart = tu_fmt("/actors/%s/restart", id);
	json_decref(server_call_json(&sp, "POST", restart, NULL, 200));
	json_decref(list);
	for (int tries = 0; tries < 100; tries++) {     /* the server notices the close */
		assert_int_equal(http_do("GET", url, NULL, 0, NULL, &r), 0);
		if (strstr(r.body, "\ntheater_sse_clients 0\n"))
			break;
		http_result_release(&r);
		usleep(100 * 1000);
	}
	free(text);
	text = tu_fmt("\n%s", r.body);
	assert_line(text, "theater_sse_clients 0");
	assert_line(text, "theater_actor_restarts_total 1");
	assert_int_equal(tu_write_file(path, r.body, r.len), 0);
	assert_int_equal(system(cmd), 0);
	http_result_release(&r);
	free(restart);
	free(cmd);
	free(path);
	free(fl);
	free(text);
	free(url);
	free(reason);
	server_destroy(&sp);
}

/* The server's log, one record a line. */
static char *read_log(struct server_proc *sp)
{
	char *log = tu_read_file(sp->log_path, NULL);
	assert_non_null(log);
	return log;
}

static void test_logs_json(void **state)
{
	(void)state;
	struct server_proc sp = {0};
	const char *args[] = {"--log-format", "json", NULL};
	assert_int_equal(server_start(&sp, NULL, args, NULL), 0);
	char *reason = spawn_two(&sp);
	json_decref(server_call_json(&sp, "GET", "/actors?stauts=running", NULL, 400));
	/* A path that is not UTF-8 once decoded still makes a JSON line. */
	json_decref(server_call_json(&sp, "GET", "/actors/%FF%22%0a", NULL, 400));
	assert_int_equal(server_stop(&sp), 0);
	char *log = read_log(&sp);
	int requests = 0, spawned = 0, failed = 0, bad_query = 0;
	for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		if (!j)
			fail_msg("a log line is not JSON (%s): %s", je.text, line);
		const char *msg = json_string_value(json_object_get(j, "msg"));
		assert_non_null(json_string_value(json_object_get(j, "ts")));
		assert_non_null(json_string_value(json_object_get(j, "level")));
		assert_non_null(json_string_value(json_object_get(j, "module")));
		assert_non_null(msg);
		if (strcmp(msg, "request") == 0) {
			requests++;
			assert_true(json_is_integer(json_object_get(j, "status")));
			assert_true(json_is_number(json_object_get(j, "duration_ms")));
			assert_true(json_is_integer(json_object_get(j, "bytes")));
			assert_non_null(json_string_value(json_object_get(j, "method")));
			const char *route = json_string_value(json_object_get(j, "route"));
			assert_non_null(route);
			if (strcmp(route, "/actors") == 0 &&
			    json_integer_value(json_object_get(j, "status")) == 400)
				bad_query++;
		} else if (strcmp(msg, "spawned") == 0) {
			spawned++;
			assert_string_equal(json_string_value(json_object_get(j, "module")), "actor");
			assert_non_null(json_string_value(json_object_get(j, "actor")));
		} else if (strcmp(msg, "failed") == 0 &&
			   json_object_get(j, "reason") &&
			   strncmp(json_string_value(json_object_get(j, "reason")), reason,
				   strlen(reason)) == 0) {
			failed++;
			assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
		}
		json_decref(j);
	}
	assert_int_equal(requests, 4);   /* two spawns, the bad query, the bad path */
	assert_int_equal(bad_query, 1);
	assert_true(spawned >= 1);
	assert_int_equal(failed, 1);
	free(log);
	free(reason);
	server_destroy(&sp);
}

/* A home on ext4 without a journal is said once at start (a warning naming the
 * home and docs/operations.md); with a journal, nothing. The server reads a sysfs
 * tree made for the home's own device (THEATER_TEST_SYSFS): the kernel's would
 * say what this machine has. */
static void test_home_fs_warning(void **state)
{
	(void)state;
	static const char *const said = "is on ext4 without a journal";
	for (int journal = 0; journal < 2; journal++) {
		char *home = tu_mkdtemp("theater-fs");
		char *sys = tu_mkdtemp("theater-sysfs");
		assert_int_equal(tu_fake_sysfs(sys, home, "vdq", journal ? "77\n" : "<none>\n"), 0);
		setenv("THEATER_TEST_SYSFS", sys, 1);
		struct server_proc sp = {0};
		int started = server_start(&sp, home, NULL, NULL);
		unsetenv("THEATER_TEST_SYSFS");
		assert_int_equal(started, 0);
		assert_int_equal(server_stop(&sp), 0);
		char *log = read_log(&sp);
		char *line = strstr(log, said);
		printf("# journal %s: %s\n", journal ? "yes" : "no", line ? "warned" : "no warning");
		if (journal) {
			assert_null(line);
		} else {
			char *want = tu_fmt(" warn main: '%s' %s", home, said);
			assert_non_null(strstr(log, want));
			assert_non_null(strstr(log, "docs/operations.md"));
			assert_null(strstr(line + 1, said));        /* once */
			free(want);
		}
		free(log);
		server_destroy(&sp);
		tu_rmtree(sys);
		free(sys);
		free(home);
	}
}

static void test_logs_text(void **state)
{
	(void)state;
	struct server_proc sp = {0};
	assert_int_equal(server_start(&sp, NULL, NULL, NULL), 0);
	char *reason = spawn_two(&sp);
	json_decref(server_call_json(&sp, "GET", "/store/nope", NULL, 404));
	assert_int_equal(server_stop(&sp), 0);
	char *log = read_log(&sp);
	printf("%s", log);
	assert_non_null(strstr(log, " info http: request method=POST route=/actors "
				   "path=/actors status=201 duration_ms="));
	assert_non_null(strstr(log, " info http: request method=GET route=/store/{store_id} "
				   "path=/store/nope status=404 duration_ms="));
	assert_non_null(strstr(log, " info actor: spawned actor="));
	char *failed = tu_fmt(" warn actor: failed actor=");
	assert_non_null(strstr(log, failed));
	free(failed);
	failed = tu_fmt("status=failed reason=%s detail=\"package is not a webassembly", reason);
	assert_non_null(strstr(log, failed));
	free(failed);
	free(log);
	free(reason);
	server_destroy(&sp);
}

static void test_log_format_refused(void **state)
{
	(void)state;
	char *cmd = tu_fmt("'%s/theater-server' --log-format xml --health-check 2>&1",
			   tu_binary_dir());
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char out[512] = "";
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int rc = pclose(p);
	assert_true(rc != 0);
	assert_non_null(strstr(out, "--log-format: 'xml' is not text or json"));
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_promtool),
		cmocka_unit_test(test_logs_json),
		cmocka_unit_test(test_logs_text),
		cmocka_unit_test(test_home_fs_warning),
		cmocka_unit_test(test_log_format_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
