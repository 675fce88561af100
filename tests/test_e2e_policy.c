/* test_e2e_policy.c - end to end: permission_policy enforced for every handler
 * that has one (random, timing, store, supervisor, message-server,
 * http-client), and the timeouts of outbound HTTP (handler timeout_ms, the
 * request's own, the server's default and cap, the policy's), with errors
 * returned to the actor, which keeps running.
 *
 * The actor is tests/actors/host_driver.c (one command per request, the
 * answer starts with the host function's result). The server runs with
 * --http-timeout-ms 1500 --http-timeout-max-ms 3000 and without
 * --http-allow-private: the fixture is reached through allow_loopback_ports.
 */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

#define BASE_HANDLERS                                                                  \
	"{\"type\":\"runtime\"},{\"type\":\"message-server\"},"                        \
	"{\"type\":\"timing\",\"max_sleep_ms\":2000},{\"type\":\"random\"},"           \
	"{\"type\":\"store\"},{\"type\":\"supervisor\"}"

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
	unsigned char *wasm;
	size_t wasm_len;
};

static struct env E;


static long call(const char *method, const char *path, const char *body, char **text_out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	const char *h[] = {"Content-Type: application/json", NULL};
	struct http_result r;
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, h, &r), 0);
	if (text_out)
		*text_out = strndup(r.body ? r.body : "", r.len);
	long st = r.status;
	http_result_release(&r);
	free(u);
	return st;
}

static json_t *call_json(const char *method, const char *path, const char *body, long want)
{
	char *text = NULL;
	long st = call(method, path, body, &text);
	if (st != want)
		fail_msg("%s %s answered %ld, not %ld: %s", method, path, st, want, text);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	return j;
}

/* http: the http-client handler (NULL: one with the fixture allowed); extra:
 * more top-level manifest members (",\"permission_policy\":{...}"). */
static char *spawn(const char *name, const char *http, const char *extra)
{
	unsigned port = fixture_httpd_port(E.web);
	char *dflt = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\","
			    "\"localhost:%u\"],\"allow_loopback_ports\":[%u]}", port, port, port);
	char *body = tu_fmt("{\"manifest\":{\"name\":\"%s\",\"package\":\"driver.wasm\","
			    "\"handler\":[" BASE_HANDLERS ",%s]%s}}", name, http ? http : dflt,
			    extra ? extra : "");
	json_t *j = call_json("POST", "/actors?wait=running&timeout=30", body, 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	free(dflt);
	return id;
}

static char *policy(const char *cap, const char *json)
{
	return tu_fmt(",\"permission_policy\":{\"%s\":%s}", cap, json);
}

static char *cmd(const char *id, const char *command)
{
	char *path = tu_fmt("/actors/%s/requests?timeout=60", id);
	char *text = NULL;
	long st = call("POST", path, command, &text);
	if (st != 200)
		fail_msg("request '%.80s' answered %ld: %s", command, st, text);
	free(path);
	return text;
}

static void cmd_expect(const char *id, const char *command, const char *expect)
{
	char *got = cmd(id, command);
	if (strcmp(got, expect) != 0)
		fail_msg("'%.100s': expected '%s', got '%s'", command, expect, got);
	free(got);
}

static int answer_rc(const char *answer)
{
	return (int)strtol(answer, NULL, 10);
}

static json_t *last_event(const char *id, const char *type)
{
	char *path = tu_fmt("/actors/%s/chain?limit=1000", id);
	json_t *page = call_json("GET", path, NULL, 200), *found = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(json_object_get(page, "items"), i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "event_type")), type) == 0)
			found = json_object_get(ev, "data");
	if (!found)
		fail_msg("no '%s' event in the chain of '%s'", type, id);
	json_incref(found);
	json_decref(page);
	free(path);
	return found;
}

static const char *out_error(const json_t *ev)
{
	const char *s = json_string_value(json_object_get(json_object_get(ev, "output"), "error"));
	return s ? s : "";
}

static json_int_t in_int(const json_t *ev, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(ev, "input"), key));
}

static char *status_of(const char *id)
{
	char *path = tu_fmt("/actors/%s", id);
	json_t *j = call_json("GET", path, NULL, 200);
	char *s = strdup(json_string_value(json_object_get(j, "status")));
	json_decref(j);
	free(path);
	return s;
}

static void assert_running(const char *id)
{
	char *s = status_of(id);
	assert_string_equal(s, "running");
	free(s);
}

/* The last event of type is a denial naming permission_policy.<cap>. */
static void assert_denied_event(const char *id, const char *type, const char *cap)
{
	json_t *ev = last_event(id, type);
	char *want = tu_fmt("permission_policy.%s", cap);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "output"),
							    "result")), -3);
	if (!strstr(out_error(ev), want))
		fail_msg("%s: error '%s' does not name %s", type, out_error(ev), want);
	free(want);
	json_decref(ev);
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	unsetenv("THEATER_HTTP_ALLOW_PRIVATE");
	E.wasm = server_compile_driver("", &E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_bytes(E.web, "/hello", "hi there", 8);
	fixture_httpd_add_bytes(E.web, "/tiny", "ok", 2);
	fixture_httpd_add_slow(E.web, "/slow", 4000);
	const char *args[] = {"--workers", "4", "--http-timeout-ms", "1500",
			      "--http-timeout-max-ms", "3000", NULL};
	assert_int_equal(server_start(&E.sp, NULL, args, NULL), 0);
	server_put_package(&E.sp, "driver.wasm", E.wasm, E.wasm_len);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	server_destroy(&E.sp);
	fixture_httpd_stop(E.web);
	free(E.wasm);
	return 0;
}

/* ---- disallow ---- */

static void test_disallow_random(void **state)
{
	(void)state;
	char *p = policy("random", "{\"type\":\"disallow\"}");
	char *id = spawn("no-random", NULL, p);
	cmd_expect(id, "random 16", "-3");
	assert_denied_event(id, "theater:simple/random/random-bytes", "random");
	char *u = cmd(id, "uuid");
	assert_int_equal(answer_rc(u), -3);
	free(u);
	assert_denied_event(id, "theater:simple/random/generate-uuid", "random");
	cmd_expect(id, "sleep 1", "0");         /* the other capabilities still work */
	assert_running(id);
	free(id);
	free(p);
	/* "inherit" adds nothing */
	p = policy("random", "{\"type\":\"inherit\"}");
	id = spawn("inherit-random", NULL, p);
	char *got = cmd(id, "random 4");
	assert_int_equal(answer_rc(got), 4);
	free(got);
	free(id);
	free(p);
}

/* A policy is the manifest's: a run recovered after a restart keeps it. */
static void test_policy_survives_restart(void **state)
{
	(void)state;
	char *p = policy("random", "{\"type\":\"disallow\"}");
	char *id = spawn("no-random-durable", NULL, p);
	cmd_expect(id, "random 16", "-3");
	assert_int_equal(server_stop(&E.sp), 0);
	const char *args[] = {"--workers", "4", "--http-timeout-ms", "1500",
			      "--http-timeout-max-ms", "3000", NULL};
	assert_int_equal(server_start(&E.sp, E.sp.home, args, NULL), 0);
	assert_running(id);
	cmd_expect(id, "random 16", "-3");
	assert_denied_event(id, "theater:simple/random/random-bytes", "random");
	free(id);
	free(p);
}

static void test_disallow_timing(void **state)
{
	(void)state;
	char *p = policy("timing", "{\"type\":\"disallow\"}");
	char *id = spawn("no-timing", NULL, p);
	cmd_expect(id, "now", "-3");
	assert_denied_event(id, "theater:simple/timing/now", "timing");
	cmd_expect(id, "sleep 1", "-3");
	assert_denied_event(id, "theater:simple/timing/sleep", "timing");
	assert_running(id);
	free(id);
	free(p);
}

static void test_disallow_store(void **state)
{
	(void)state;
	char *p = policy("store", "{\"type\":\"disallow\"}");
	char *id = spawn("no-store", NULL, p);
	cmd_expect(id, "store pub hello", "-3");
	assert_denied_event(id, "theater:simple/store/store", "store");
	cmd_expect(id, "getlabel pub x", "-3");
	assert_denied_event(id, "theater:simple/store/get-by-label", "store");
	free(id);
	free(p);
}

static void test_disallow_supervisor(void **state)
{
	(void)state;
	char *p = policy("supervisor", "{\"type\":\"disallow\"}");
	char *id = spawn("no-supervisor", NULL, p);
	cmd_expect(id, "children", "-3");
	assert_denied_event(id, "theater:simple/supervisor/list-children", "supervisor");
	char *got = cmd(id, "spawn - {\"name\":\"c\",\"package\":\"driver.wasm\"}");
	assert_int_equal(answer_rc(got), -3);
	free(got);
	assert_denied_event(id, "theater:simple/supervisor/spawn", "supervisor");
	cmd_expect(id, "stop 00000000-0000-4000-8000-000000000000", "-3");
	free(id);
	free(p);
}

static void test_disallow_message_server(void **state)
{
	(void)state;
	char *other = spawn("target", NULL, NULL);
	char *p = policy("message_server", "{\"type\":\"disallow\"}");
	char *id = spawn("no-messages", NULL, p);
	char *c = tu_fmt("send %s hello", other);
	cmd_expect(id, c, "-3");
	assert_denied_event(id, "theater:simple/message-server-host/send", "message_server");
	free(c);
	c = tu_fmt("request %s 1000 echo hi", other);
	cmd_expect(id, c, "-3");
	assert_denied_event(id, "theater:simple/message-server-host/request", "message_server");
	free(c);
	/* without the policy the same request goes through */
	char *ok = spawn("messages", NULL, NULL);
	c = tu_fmt("request %s 5000 echo hi", other);
	cmd_expect(ok, c, "2 hi");
	free(c);
	free(ok);
	free(id);
	free(p);
	free(other);
}

static void test_disallow_http(void **state)
{
	(void)state;
	char *p = policy("http_client", "{\"type\":\"disallow\"}");
	char *id = spawn("no-http", NULL, p);
	unsigned before = fixture_httpd_hits(E.web, "/tiny");
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/tiny\"}", fixture_httpd_port(E.web));
	cmd_expect(id, c, "-3");
	assert_denied_event(id, "theater:simple/http-client/send-http", "http_client");
	assert_int_equal(fixture_httpd_hits(E.web, "/tiny"), before);
	free(c);
	free(id);
	free(p);
}

/* ---- restrict ---- */

static void test_restrict_random(void **state)
{
	(void)state;
	char *p = policy("random", "{\"type\":\"restrict\",\"config\":{\"max_bytes\":8,"
			 "\"max_int\":100,\"allow_crypto_secure\":true}}");
	char *id = spawn("random-8", NULL, p);
	char *got = cmd(id, "random 8");
	assert_int_equal(answer_rc(got), 8);
	free(got);
	cmd_expect(id, "random 9", "-5");
	free(id);
	free(p);
}

static void test_restrict_timing(void **state)
{
	(void)state;
	char *p = policy("timing", "{\"type\":\"restrict\",\"config\":{\"max_sleep_duration\":50,"
			 "\"min_sleep_duration\":5}}");
	char *id = spawn("timing-5-50", NULL, p);
	cmd_expect(id, "sleep 5", "0");
	cmd_expect(id, "sleep 50", "0");
	cmd_expect(id, "sleep 51", "-3");       /* the handler allows 2000; the policy 50 */
	cmd_expect(id, "sleep 4", "-3");
	json_t *ev = last_event(id, "theater:simple/timing/sleep");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "output"),
							    "min_sleep_ms")), 5);
	json_decref(ev);
	free(id);
	free(p);
}

static void test_restrict_http(void **state)
{
	(void)state;
	unsigned port = fixture_httpd_port(E.web);
	char *p = tu_fmt(",\"permission_policy\":{\"http_client\":{\"type\":\"restrict\",\"config\":"
			 "{\"allowed_methods\":[\"GET\"],\"allowed_hosts\":[\"127.0.0.1:%u\"],"
			 "\"max_request_bytes\":4,\"max_response_bytes\":5}}}", port);
	char *id = spawn("http-restricted", NULL, p);
	unsigned before = fixture_httpd_hits(E.web, "/tiny");
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/tiny\"}", port);
	char *got = cmd(id, c);
	assert_true(answer_rc(got) > 0);
	assert_int_equal(fixture_httpd_hits(E.web, "/tiny"), before + 1);
	free(got);
	free(c);
	/* a method outside allowed_methods */
	c = tu_fmt("http {\"method\":\"POST\",\"url\":\"http://127.0.0.1:%u/tiny\",\"body\":\"x\"}",
		   port);
	cmd_expect(id, c, "-3");
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	assert_non_null(strstr(out_error(ev), "allowed_methods"));
	json_decref(ev);
	free(c);
	/* a host the handler allows but the policy does not */
	c = tu_fmt("http {\"url\":\"http://localhost:%u/tiny\"}", port);
	cmd_expect(id, c, "-3");
	ev = last_event(id, "theater:simple/http-client/send-http");
	assert_non_null(strstr(out_error(ev), "permission_policy.http_client.allowed_hosts"));
	json_decref(ev);
	free(c);
	/* sizes */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/tiny\",\"body\":\"hello\"}", port);
	cmd_expect(id, c, "-5");
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/tiny"), before + 1);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\"}", port);
	cmd_expect(id, c, "-5");                /* 8 bytes, over max_response_bytes */
	free(c);
	assert_running(id);
	free(id);
	free(p);
}

/* ---- timeouts ---- */

/* A slow endpoint: the call's timeout is an error the actor handles; it goes
 * on running and answering. The reason is written once, with the cause. */
static void test_http_timeout_keeps_actor(void **state)
{
	(void)state;
	unsigned port = fixture_httpd_port(E.web);
	char *h = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"],"
			 "\"allow_loopback_ports\":[%u],\"timeout_ms\":300}", port, port);
	char *id = spawn("timeout", h, NULL);
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/slow\"}", port);
	cmd_expect(id, c, "-4");
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	const char *why = out_error(ev);
	assert_non_null(strstr(why, "did not answer within 300 ms"));
	assert_null(strstr(why, "deadline"));
	assert_int_equal(in_int(ev, "timeout_ms"), 300);
	json_decref(ev);
	free(c);
	assert_running(id);
	cmd_expect(id, "sleep 0", "0");
	/* the request may ask for less */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/slow\",\"timeout_ms\":100}", port);
	cmd_expect(id, c, "-4");
	ev = last_event(id, "theater:simple/http-client/send-http");
	assert_int_equal(in_int(ev, "timeout_ms"), 100);
	json_decref(ev);
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/tiny\",\"timeout_ms\":0}", port);
	cmd_expect(id, c, "-1");
	free(c);
	/* a refused connection is an error too, not the end of the actor */
	char *h2 = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:1\"],"
			  "\"allow_loopback_ports\":[1]}");
	char *id2 = spawn("refused", h2, NULL);
	cmd_expect(id2, "http {\"url\":\"http://127.0.0.1:1/\"}", "-6");
	assert_running(id2);
	free(id2);
	free(h2);
	free(id);
	free(h);
}

/* The server's default applies without timeout_ms; its cap bounds a larger
 * timeout_ms; the policy's `timeout` bounds both. */
static void test_http_timeout_bounds(void **state)
{
	(void)state;
	unsigned port = fixture_httpd_port(E.web);
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/tiny\"}", port);
	char *id = spawn("default", NULL, NULL);
	char *got = cmd(id, c);
	assert_true(answer_rc(got) > 0);
	free(got);
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	assert_int_equal(in_int(ev, "timeout_ms"), 1500);
	json_decref(ev);
	free(id);
	char *h = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"],"
			 "\"allow_loopback_ports\":[%u],\"timeout_ms\":600000}", port, port);
	id = spawn("capped", h, NULL);
	got = cmd(id, c);
	assert_true(answer_rc(got) > 0);
	free(got);
	ev = last_event(id, "theater:simple/http-client/send-http");
	assert_int_equal(in_int(ev, "timeout_ms"), 3000);
	json_decref(ev);
	free(id);
	char *p = policy("http_client", "{\"type\":\"restrict\",\"config\":{\"timeout\":250}}");
	id = spawn("policy-timeout", h, p);
	got = cmd(id, c);
	assert_true(answer_rc(got) > 0);
	free(got);
	ev = last_event(id, "theater:simple/http-client/send-http");
	assert_int_equal(in_int(ev, "timeout_ms"), 250);
	json_decref(ev);
	free(id);
	free(p);
	free(h);
	free(c);
}

/* A call over its deadline fails the run; the reason names the deadline once
 * ("deadline: the call ran longer ...", not "deadline: deadline: ..."). The
 * actor is hello.wat with a handle-request that never ends, and a deadline
 * of 10 ms, which it reaches long before its fuel runs out. */
static void test_deadline_reason_once(void **state)
{
	(void)state;
	char *wat = hello_actor_wat();
	const char *old = "(call $result (local.get $sp) (local.get $sn) (local.get $sp) "
			  "(local.get $sn))))";
	char *at = strstr(wat, old);
	assert_non_null(at);
	*at = '\0';
	char *spin = tu_fmt("%s(loop $l (br $l)) (i32.const 0)))", wat);
	size_t len = 0;
	unsigned char *bytes = wat_compile(spin, &len);
	server_put_package(&E.sp, "spin.wasm", bytes, len);
	json_t *j = call_json("POST", "/actors?wait=running&timeout=30",
			      "{\"manifest\":{\"name\":\"spin\",\"package\":\"spin.wasm\","
			      "\"limits\":{\"call_timeout_ms\":10}}}", 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	char *path = tu_fmt("/actors/%s/requests?timeout=60", id);
	char *text = NULL;
	long st = call("POST", path, "go", &text);
	if (st < 500)
		fail_msg("answered %ld: %s", st, text);
	free(text);
	char *p2 = tu_fmt("/actors/%s", id);
	j = call_json("GET", p2, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
	const char *reason = json_string_value(json_object_get(j, "reason"));
	assert_non_null(reason);
	const char *first = strstr(reason, "deadline");
	if (!first || strstr(first + 1, "deadline"))
		fail_msg("reason: '%s'", reason);
	json_decref(j);
	free(p2);
	free(path);
	free(id);
	free(bytes);
	free(spin);
	free(wat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disallow_random),
		cmocka_unit_test(test_policy_survives_restart),
		cmocka_unit_test(test_disallow_timing),
		cmocka_unit_test(test_disallow_store),
		cmocka_unit_test(test_disallow_supervisor),
		cmocka_unit_test(test_disallow_message_server),
		cmocka_unit_test(test_disallow_http),
		cmocka_unit_test(test_restrict_random),
		cmocka_unit_test(test_restrict_timing),
		cmocka_unit_test(test_restrict_http),
		cmocka_unit_test(test_http_timeout_keeps_actor),
		cmocka_unit_test(test_http_timeout_bounds),
		cmocka_unit_test(test_deadline_reason_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
