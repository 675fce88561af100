/* test_e2e_sdk.c - end to end: the examples written with the Rust SDK
 * (examples/counter-rust, examples/agent-rust) and the AssemblyScript SDK
 * (examples/counter-assemblyscript, examples/agent-assemblyscript), built by
 * the normal build into build/examples/<name>/<name>.wasm, run in the real
 * theater-server on 127.0.0.1 (port 0, temporary THEATER_HOME), spawned from
 * their own manifests. The agents talk to a fake chat-completion endpoint
 * started here (tests/support/fixture_httpd.h) on 127.0.0.1, which the server
 * may reach because the test sets THEATER_HTTP_ALLOW_PRIVATE=1.
 *
 * Every test runs once per language: the SDKs must behave the same. */
#include "tests/support/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "src/util/crypto.h"
#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

static const char *const LANGS[] = {"rust", "assemblyscript", NULL};

static const char *CHAT_ANSWER =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"test-model\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	"\"Hello! \\\"Quoted\\\", caf\\u00e9.\\nBye\"},\"finish_reason\":\"stop\"}]}";
static const char *CHAT_REPLY = "Hello! \"Quoted\", caf\xc3\xa9.\nBye";

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
};

static struct env E;

/* One request; the response in *out (release it). */
static long call(const char *method, const char *path, const char *body, struct http_result *out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, NULL, out), 0);
	free(u);
	return out->status;
}

/* POST /actors?wait=running: the new id (malloc'd). */
static char *spawn(const char *body)
{
	json_t *j = server_call_json(&E.sp, "POST", "/actors?wait=running&timeout=60", body, 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static void send_msg(const char *id, const char *msg)
{
	char *p = tu_fmt("/actors/%s/messages", id);
	struct http_result r;
	if (call("POST", p, msg, &r) != 202)
		fail_msg("message '%s' to %s answered %ld: %s", msg, id, r.status, r.body);
	http_result_release(&r);
	free(p);
}

/* A request expected to answer 200; the body (malloc'd). */
static char *ask(const char *id, const char *msg)
{
	char *p = tu_fmt("/actors/%s/requests", id);
	struct http_result r;
	if (call("POST", p, msg, &r) != 200)
		fail_msg("request '%s' to %s answered %ld: %s", msg, id, r.status, r.body);
	char *body = r.body;
	r.body = NULL;
	http_result_release(&r);
	free(p);
	return body;
}

/* A request the actor refuses: 422 actor_error whose detail has the actor's
 * message. */
static void ask_refused(const char *id, const char *msg, const char *why)
{
	char *p = tu_fmt("/actors/%s/requests", id);
	struct http_result r;
	long st = call("POST", p, msg, &r);
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	const char *code = json_string_value(json_object_get(j, "code"));
	const char *detail = json_string_value(json_object_get(j, "detail"));
	if (st != 422 || !code || strcmp(code, "actor_error") != 0 || !detail || !strstr(detail, why))
		fail_msg("request '%s': expected actor_error with '%s', got %ld: %s", msg, why, st,
			 r.body);
	json_decref(j);
	http_result_release(&r);
	free(p);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static json_t *state_of(const char *id)
{
	char *p = tu_fmt("/actors/%s/state", id);
	json_t *j = server_call_json(&E.sp, "GET", p, NULL, 200);
	free(p);
	return j;
}

static void assert_count(const char *id, long long want)
{
	/* messages are asynchronous; a request is queued behind them */
	char *got = ask(id, "get");
	char *expect = tu_fmt("%lld", want);
	assert_string_equal(got, expect);
	free(expect);
	free(got);
	json_t *st = state_of(id);
	assert_int_equal(json_integer_value(json_object_get(st, "count")), want);
	json_decref(st);
}



static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	setenv("THEATER_HTTP_ALLOW_PRIVATE", "1", 1);
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_bytes(E.web, "/v1/chat/completions", CHAT_ANSWER, strlen(CHAT_ANSWER));
	fixture_httpd_add_status(E.web, "/broken/v1/chat/completions", 500);
	E.sp.home = tu_mkdtemp("theater-e2e-sdk");
	E.sp.roots = tu_fmt("%s/packages", E.sp.home);
	mkdir(E.sp.roots, 0755);
	for (int i = 0; LANGS[i]; i++) {
		char *counter = tu_fmt("counter-%s", LANGS[i]);
		char *agent = tu_fmt("agent-%s", LANGS[i]);
		server_install_example(&E.sp, counter);
		server_install_example(&E.sp, agent);
		free(counter);
		free(agent);
		/* the host-call driver, built from tests/sdk/hostcalls-<lang> */
		char *from = tu_fmt("%s/tests/sdk/hostcalls-%s.wasm", tu_binary_dir(), LANGS[i]);
		char *to = tu_fmt("%s/hostcalls-%s.wasm", E.sp.roots, LANGS[i]);
		server_copy_file(from, to);
		free(from);
		free(to);
	}
	const char *args[] = {"--actor-fuel", "100G", NULL};
	assert_int_equal(server_start(&E.sp, NULL, args, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int rc = server_stop(&E.sp);
	if (rc != 0) {
		char *log = tu_read_file(E.sp.log_path, NULL);
		fprintf(stderr, "theater-server exited with %d; its log:\n%s\n", rc,
			log ? log : "(none)");
		free(log);
	}
	server_destroy(&E.sp);
	fixture_httpd_stop(E.web);
	return rc == 0 ? 0 : -1;
}

/* ---- counter ---- */

static void counter_for(const char *lang)
{
	char *body = tu_fmt("{\"manifest_ref\":\"counter-%s/manifest.json\"}", lang);
	char *id = spawn(body);
	free(body);
	assert_count(id, 0);
	send_msg(id, "5");
	send_msg(id, "-2");
	send_msg(id, "not a number");   /* counts 1 */
	assert_count(id, 4);
	ask_refused(id, "bad", "the counter answers");
	assert_count(id, 4);            /* a refused request leaves the state */
	free(id);

	/* the TOML manifest as it is (initial_state as JSON text) */
	body = tu_fmt("{\"manifest_ref\":\"counter-%s/manifest.toml\"}", lang);
	id = spawn(body);
	free(body);
	send_msg(id, "2");
	assert_count(id, 2);
	free(id);

	/* the TOML manifest, with a spawn-time state merged into it */
	body = tu_fmt("{\"manifest_ref\":\"counter-%s/manifest.toml\","
		      "\"initial_state\":{\"count\":100}}", lang);
	id = spawn(body);
	free(body);
	send_msg(id, "1");
	assert_count(id, 101);
	free(id);

	/* a state the actor refuses fails init: the spawn answers an error */
	body = tu_fmt("{\"manifest_ref\":\"counter-%s/manifest.json\","
		      "\"initial_state\":{\"count\":\"many\"}}", lang);
	struct http_result r;
	long st = call("POST", "/actors?wait=running&timeout=60", body, &r);
	free(body);
	if (st == 201) {
		json_t *j = json_loadb(r.body, r.len, 0, NULL);
		assert_string_not_equal(json_string_value(json_object_get(j, "status")), "running");
		json_decref(j);
	} else {
		assert_true(st >= 400);
	}
	http_result_release(&r);
}

static void test_counter_rust(void **state)
{
	(void)state;
	counter_for("rust");
}

static void test_counter_assemblyscript(void **state)
{
	(void)state;
	counter_for("assemblyscript");
}

/* ---- agent ---- */

static char *agent_spawn(const char *lang, const char *endpoint_path)
{
	char *url = fixture_httpd_url(E.web, endpoint_path);
	char *body = tu_fmt("{\"manifest_ref\":\"agent-%s/manifest.json\",\"initial_state\":"
			    "{\"endpoint\":\"%s\",\"model\":\"test-model\","
			    "\"system\":\"Be brief.\",\"max_messages\":4}}", lang, url);
	char *id = spawn(body);
	free(body);
	free(url);
	return id;
}

static json_t *last_chat(const char *path)
{
	size_t len;
	char *body = fixture_httpd_last_body(E.web, path, &len);
	assert_non_null(body);
	json_t *j = json_loadb(body, len, 0, NULL);
	assert_non_null(j);
	free(body);
	return j;
}

static const char *field_at(json_t *messages, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(messages, i), key));
}

static void agent_for(const char *lang)
{
	const char *path = "/v1/chat/completions";
	unsigned hits = fixture_httpd_hits(E.web, path);
	char *id = agent_spawn(lang, path);
	char *got = ask(id, "Hi there, \"agent\"");
	assert_string_equal(got, CHAT_REPLY);
	free(got);
	json_t *chat = last_chat(path);
	char method[16];
	fixture_httpd_last_method(E.web, path, method);
	assert_string_equal(method, "POST");
	assert_string_equal(json_string_value(json_object_get(chat, "model")), "test-model");
	json_t *msgs = json_object_get(chat, "messages");
	assert_int_equal(json_array_size(msgs), 2);          /* system + user */
	assert_string_equal(field_at(msgs, 0, "role"), "system");
	assert_string_equal(field_at(msgs, 0, "content"), "Be brief.");
	assert_string_equal(field_at(msgs, 1, "role"), "user");
	assert_string_equal(field_at(msgs, 1, "content"), "Hi there, \"agent\"");
	json_decref(chat);

	/* the second turn sends the conversation so far */
	free(ask(id, "And again?"));
	chat = last_chat(path);
	msgs = json_object_get(chat, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	assert_string_equal(field_at(msgs, 2, "role"), "assistant");
	assert_string_equal(field_at(msgs, 2, "content"), CHAT_REPLY);
	assert_string_equal(field_at(msgs, 3, "content"), "And again?");
	json_decref(chat);

	/* the state keeps the last max_messages (4) turns */
	free(ask(id, "Third"));
	json_t *st = state_of(id);
	json_t *conv = json_object_get(st, "messages");
	assert_int_equal(json_array_size(conv), 4);
	assert_string_equal(field_at(conv, 0, "content"), "And again?");
	assert_string_equal(field_at(conv, 2, "content"), "Third");
	assert_string_equal(field_at(conv, 3, "content"), CHAT_REPLY);
	json_decref(st);
	assert_int_equal(fixture_httpd_hits(E.web, path), hits + 3);

	/* reset forgets the conversation */
	send_msg(id, "reset");
	free(ask(id, "Fresh start"));
	chat = last_chat(path);
	assert_int_equal(json_array_size(json_object_get(chat, "messages")), 2);
	json_decref(chat);
	free(id);

	/* an error status is the actor's error; the conversation stays */
	id = agent_spawn(lang, "/broken/v1/chat/completions");
	ask_refused(id, "Hello?", "error status");
	st = state_of(id);
	assert_int_equal(json_array_size(json_object_get(st, "messages")), 0);
	json_decref(st);
	free(id);

	/* a host the manifest does not allow: send-http is denied */
	char *body = tu_fmt("{\"manifest_ref\":\"agent-%s/manifest.json\",\"initial_state\":"
			    "{\"endpoint\":\"http://example.invalid/v1\",\"model\":\"m\"}}", lang);
	id = spawn(body);
	free(body);
	ask_refused(id, "Hello?", "send-http failed");
	free(id);
}

static void test_agent_rust(void **state)
{
	(void)state;
	agent_for("rust");
}

static void test_agent_assemblyscript(void **state)
{
	(void)state;
	agent_for("assemblyscript");
}

/* ---- every host wrapper ---- */

/* The driver's answer to a command (malloc'd). */
static char *hc(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *hc(const char *id, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return ask(id, cmd);
}

static void expect_hc(const char *id, const char *want, const char *cmd)
{
	char *got = ask(id, cmd);
	if (strcmp(got, want) != 0)
		fail_msg("'%s' answered '%s', expected '%s'", cmd, got, want);
	free(got);
}

/* "ok VALUE": VALUE (malloc'd); fails the test otherwise. */
static char *ok_value(char *answer, const char *cmd)
{
	if (strncmp(answer, "ok ", 3) != 0)
		fail_msg("'%s' answered '%s'", cmd, answer);
	char *v = strdup(answer + 3);
	free(answer);
	return v;
}

static void hostcalls_for(const char *lang)
{
	char *body = tu_fmt("{\"manifest\":{\"name\":\"hostcalls\",\"package\":\"hostcalls-%s.wasm\","
			    "\"handler\":[{\"type\":\"runtime\"},{\"type\":\"timing\",\"max_sleep_ms\":100},"
			    "{\"type\":\"random\"},{\"type\":\"store\"},{\"type\":\"message-server\"},"
			    "{\"type\":\"supervisor\"}]}}", lang);
	char *id = spawn(body);
	char *peer = spawn(body);     /* takes channels */
	free(body);

	/* channels: refused, accepted, a message, closed by the peer */
	char *cmd = tu_fmt("open %s reject", peer);
	expect_hc(id, "err denied not today", cmd);
	free(cmd);
	cmd = tu_fmt("open %s hello", peer);
	char *opened = ok_value(hc(id, "%s", cmd), cmd);
	free(cmd);
	char *ch = strtok(opened, " ");
	assert_true(atoll(ch) > 0);
	assert_string_equal(strtok(NULL, ""), "welcome");
	cmd = tu_fmt("chsend %s hi", ch);
	expect_hc(id, "ok", cmd);
	free(cmd);
	cmd = tu_fmt("chclose %s", ch);
	expect_hc(peer, "ok", cmd);
	expect_hc(id, "err not found", cmd);          /* closed by the peer */
	free(cmd);
	free(opened);
	free(peer);

	/* runtime */
	expect_hc(id, "ok", "log hello from the driver");
	char *self = ok_value(hc(id, "self"), "self");
	assert_string_equal(self, id);
	free(self);
	/* timing */
	char *now = ok_value(hc(id, "now"), "now");
	assert_true(atoll(now) > 1600000000000LL);      /* unix milliseconds, after 2020 */
	free(now);
	expect_hc(id, "ok", "sleep 1");
	expect_hc(id, "err denied", "sleep 5000");       /* beyond max_sleep_ms */
	/* random */
	expect_hc(id, "ok 16", "random 16");
	char *uuid = ok_value(hc(id, "uuid"), "uuid");
	assert_int_equal(strlen(uuid), 36);
	assert_true(uuid[8] == '-' && uuid[13] == '-' && uuid[18] == '-' && uuid[23] == '-');
	free(uuid);
	/* store */
	char *hash = ok_value(hc(id, "store notes hello world"), "store");
	assert_int_equal(strlen(hash), 64);
	uint8_t digest[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	sha256("hello world", 11, digest);
	hex_encode(digest, SHA256_LEN, hex);
	assert_string_equal(hash, hex);
	cmd = tu_fmt("get notes %s", hash);
	expect_hc(id, "ok hello world", cmd);
	free(cmd);
	cmd = tu_fmt("label notes greeting %s", hash);
	expect_hc(id, "ok", cmd);
	free(cmd);
	expect_hc(id, "ok hello world", "getlabel notes greeting");
	expect_hc(id, "err not found", "getlabel notes nothing");
	expect_hc(id, "err denied", "store theater-state x");   /* reserved store ids */
	free(hash);
	/* supervisor + message-server: a counter child in the same language */
	char *spawn_cmd = tu_fmt("spawn {\"name\":\"child\",\"package\":\"counter-%s/counter-%s.wasm\","
				 "\"handler\":[{\"type\":\"runtime\"}],\"initial_state\":{\"count\":0}}",
				 lang, lang);
	char *child = ok_value(ask(id, spawn_cmd), spawn_cmd);
	free(spawn_cmd);
	assert_int_equal(strlen(child), 36);
	char *want = tu_fmt("ok %s", child);
	expect_hc(id, want, "children");
	free(want);
	cmd = tu_fmt("send %s 5", child);
	expect_hc(id, "ok", cmd);
	free(cmd);
	cmd = tu_fmt("request %s get", child);
	expect_hc(id, "ok 5", cmd);                       /* queued behind the message */
	free(cmd);
	cmd = tu_fmt("childstate %s", child);
	expect_hc(id, "ok {\"count\":5}", cmd);
	free(cmd);
	cmd = tu_fmt("restart %s", child);
	expect_hc(id, "ok", cmd);
	free(cmd);
	cmd = tu_fmt("stop %s", child);
	expect_hc(id, "ok", cmd);
	expect_hc(id, "ok", cmd);                         /* already ended: still ok */
	free(cmd);
	char *bad = hc(id, "request 00000000-0000-0000-0000-000000000000 get");
	assert_true(strncmp(bad, "err ", 4) == 0);
	free(bad);
	free(child);
	/* theater_alloc answers 0 when memory cannot grow (beyond --actor-memory,
	 * 64 MiB by default), and the actor carries on */
	expect_hc(id, "ok some", "alloc 100000");
	expect_hc(id, "ok null", "alloc 200000000");
	expect_hc(id, "ok some", "alloc 100000");
	/* deferred and streamed answers, timers */
	expect_hc(id, "ok 0", "chunk a piece");          /* this client takes whole answers */
	expect_hc(id, "err not found", "respond 999999 late");
	expect_hc(id, "err not found", "fail 999999 late");
	expect_hc(id, "err denied", "timer t 1 0");       /* below min_timer_ms */
	expect_hc(id, "ok", "timer t 100 0");
	expect_hc(id, "ok", "timer u 60000 0");
	expect_hc(id, "ok", "cancel u");
	expect_hc(id, "err not found", "cancel u");
	json_t *st = NULL;
	for (int i = 0; i < 600; i++) {                   /* the tick of t arrives */
		json_decref(st);
		st = state_of(id);
		if (json_integer_value(json_object_get(st, "ticks")) == 1)
			break;
		sleep_ms(100);
	}
	assert_int_equal(json_integer_value(json_object_get(st, "ticks")), 1);
	json_decref(st);
	/* an unknown command is the actor's own error */
	ask_refused(id, "bogus", "unknown command");
	free(id);
}

static void test_hostcalls_rust(void **state)
{
	(void)state;
	hostcalls_for("rust");
}

static void test_hostcalls_assemblyscript(void **state)
{
	(void)state;
	hostcalls_for("assemblyscript");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_rust),
		cmocka_unit_test(test_counter_assemblyscript),
		cmocka_unit_test(test_agent_rust),
		cmocka_unit_test(test_agent_assemblyscript),
		cmocka_unit_test(test_hostcalls_rust),
		cmocka_unit_test(test_hostcalls_assemblyscript),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
