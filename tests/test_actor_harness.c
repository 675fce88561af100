/* test_actor_harness.c - `theater-wasm actor`, the offline harness, on the
 * examples' actors (the counter, echo and kv tests of the examples) and on the
 * host driver (tests/actors/host_driver.c) for every fake host function.
 *
 * Each case runs the real binary with --json and checks every call's line;
 * expected values are computed from the inputs (the counter after sends of
 * 5 and 7 answers 12). The C SDK's plain clang command of docs/sdk.md is run
 * here too, on the counter and the driver, so the documented line is tested.
 */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "src/util/json.h"

/* The plain command of docs/sdk.md (and theater/actor.h), up to its -I. */
#define PLAIN_CLANG "clang --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding " \
	"-Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384"

struct fx {
	char *dir;
	char *tool;
	char *driver;         /* the host driver, built with PLAIN_CLANG */
	char *plain_counter;  /* the counter, built with PLAIN_CLANG */
	char *greeter;        /* docs/sdk.md's first actor (sdk/c/greeter.c) */
};

static struct fx F;

struct result {
	int status;
	json_t *calls;        /* one object per --json line */
	char *err;
};

static char *example(const char *name)
{
	return tu_fmt("%s/examples/%s/%s.wasm", tu_binary_dir(), name, name);
}

/* Appends 'arg' shell-quoted. */
static void quote(char **cmd, const char *arg)
{
	size_t n = strlen(*cmd), extra = 3;
	for (const char *p = arg; *p; p++)
		extra += *p == '\'' ? 4 : 1;
	char *s = realloc(*cmd, n + extra + 1);
	assert_non_null(s);
	char *w = s + n;
	*w++ = ' ';
	*w++ = '\'';
	for (const char *p = arg; *p; p++) {
		if (*p == '\'') {
			memcpy(w, "'\\''", 4);
			w += 4;
		} else {
			*w++ = *p;
		}
	}
	*w++ = '\'';
	*w = '\0';
	*cmd = s;
}

/* Runs the tool with args (NULL-terminated) and --json; parses each line. */
static struct result run(const char *const *args)
{
	char *cmd = tu_fmt("'%s' actor --json", F.tool);
	for (; *args; args++)
		quote(&cmd, *args);
	char *errp = tu_fmt("%s/stderr", F.dir);
	char *full = tu_fmt("%s 2>'%s'", cmd, errp);
	FILE *p = popen(full, "r");
	assert_non_null(p);
	struct result r = {.calls = json_array()};
	char line[1 << 16];
	while (fgets(line, sizeof line, p)) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j)
			fail_msg("not a JSON line: %s", line);
		json_array_append_new(r.calls, j);
	}
	int st = pclose(p);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	r.err = tu_read_file(errp, NULL);
	free(cmd);
	free(full);
	free(errp);
	return r;
}

static void result_release(struct result *r)
{
	json_decref(r->calls);
	free(r->err);
}

static const json_t *call_at(const struct result *r, size_t i)
{
	const json_t *c = json_array_get(r->calls, i);
	if (!c)
		fail_msg("no call %zu (exit %d, stderr: %s)", i, r->status, r->err);
	return c;
}

static const char *field(const struct result *r, size_t i, const char *key)
{
	return json_string_value(json_object_get(call_at(r, i), key));
}

/* The state after call i, parsed as JSON. */
static json_t *state_at(const struct result *r, size_t i)
{
	const char *s = field(r, i, "state");
	assert_non_null(s);
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
	if (!j)
		fail_msg("state %zu is not JSON: %s", i, s);
	return j;
}

static int build_plain(const char *src, const char *out)
{
	char *cmd = tu_fmt(PLAIN_CLANG " -I '%s/sdk/include' -o '%s' '%s'", tu_source_dir(), out,
			   src);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "'%s' failed\n", cmd);
	free(cmd);
	return rc;
}

static int setup(void **state)
{
	(void)state;
	F.dir = tu_mkdtemp("theater-harness");
	F.tool = tu_fmt("%s/tools/theater-wasm/theater-wasm", tu_binary_dir());
	F.driver = tu_fmt("%s/driver.wasm", F.dir);
	F.plain_counter = tu_fmt("%s/counter.wasm", F.dir);
	F.greeter = tu_fmt("%s/greeter.wasm", F.dir);
	char *driver_src = tu_fmt("%s/tests/actors/host_driver.c", tu_source_dir());
	char *counter_src = tu_fmt("%s/examples/counter/counter.c", tu_source_dir());
	char *greeter_src = tu_fmt("%s/sdk/c/greeter.c", tu_source_dir());
	int rc = build_plain(driver_src, F.driver) || build_plain(counter_src, F.plain_counter) ||
		 build_plain(greeter_src, F.greeter);
	free(greeter_src);
	free(driver_src);
	free(counter_src);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(F.dir);
	free(F.dir);
	free(F.tool);
	free(F.driver);
	free(F.plain_counter);
	free(F.greeter);
	return 0;
}

static const char *response(const struct result *r, size_t i);

/* ---- the examples ---- */

/* The counter: sends add up, "get" answers the sum; anything else is refused
 * and leaves the count alone. Run on a module (CMake's or the plain line's). */
static void counter_case(const char *wasm)
{
	static const int sends[] = {5, 7, -3, 40};
	const char *args[32];
	size_t n = 0;
	char nums[4][8];
	args[n++] = wasm;
	args[n++] = "--init-state";
	args[n++] = "{\"count\":0}";
	int sum = 0;
	for (size_t i = 0; i < 4; i++) {
		snprintf(nums[i], sizeof nums[i], "%d", sends[i]);
		args[n++] = "--send";
		args[n++] = nums[i];
		sum += sends[i];
	}
	args[n++] = "--request";
	args[n++] = "get";
	args[n++] = "--request";
	args[n++] = "bogus";
	args[n] = NULL;
	struct result r = run(args);
	assert_int_equal(r.status, 3);          /* "bogus" is an actor error */
	assert_int_equal(json_array_size(r.calls), 7);
	assert_string_equal(field(&r, 0, "call"), "init");
	int running = 0;
	for (size_t i = 0; i < 4; i++) {
		running += sends[i];
		assert_string_equal(field(&r, 1 + i, "call"), "handle-send");
		assert_string_equal(field(&r, 1 + i, "status"), "ok");
		json_t *st = state_at(&r, 1 + i);
		assert_int_equal(json_integer_value(json_object_get(st, "count")), running);
		json_decref(st);
	}
	char *want = tu_fmt("%d", sum);
	assert_string_equal(field(&r, 5, "call"), "handle-request");
	assert_string_equal(field(&r, 5, "response"), want);
	assert_string_equal(field(&r, 6, "status"), "error");
	assert_non_null(strstr(field(&r, 6, "error"), "get"));
	assert_false(json_is_true(json_object_get(call_at(&r, 6), "state_changed")));
	json_t *st = state_at(&r, 6);
	assert_int_equal(json_integer_value(json_object_get(st, "count")), sum);
	json_decref(st);
	free(want);
	result_release(&r);
}

static void test_counter(void **state)
{
	(void)state;
	char *w = example("counter");
	counter_case(w);
	free(w);
}

static void test_counter_plain_clang(void **state)
{
	(void)state;
	counter_case(F.plain_counter);
	/* the documented command is the one tested here */
	char *doc = tu_fmt("%s/docs/sdk.md", tu_source_dir());
	char *text = tu_read_file(doc, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, PLAIN_CLANG " \\\n"));
	free(text);
	free(doc);
}

/* --manifest: its initial_state (JSON text, as the reference writes it) merged
 * with --init-state, and its grants checked. --state skips init. */
static void test_counter_manifest(void **state)
{
	(void)state;
	char *w = example("counter");
	char *m = tu_fmt("%s/examples/counter/manifest.toml", tu_source_dir());
	const char *a1[] = {w, "--manifest", m, "--send", "2", "--request", "get", NULL};
	struct result r = run(a1);
	assert_int_equal(r.status, 0);
	assert_string_equal(field(&r, 2, "response"), "2");
	result_release(&r);
	const char *a2[] = {w, "--manifest", m, "--init-state", "{\"count\":100}", "--send", "1",
			    "--request", "get", NULL};
	r = run(a2);
	assert_int_equal(r.status, 0);
	assert_string_equal(field(&r, 2, "response"), "101");
	result_release(&r);
	const char *a3[] = {w, "--state", "{\"count\":30}", "--send", "12", "--request", "get", NULL};
	r = run(a3);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_array_size(r.calls), 2);   /* no init */
	assert_string_equal(field(&r, 1, "response"), "42");
	result_release(&r);
	free(m);
	free(w);
}

/* The walkthrough of docs/sdk.md, step 3, with its manifest. */
static void test_greeter_walkthrough(void **state)
{
	(void)state;
	char *m = tu_fmt("%s/sdk/c/manifest.toml", tu_source_dir());
	const char *args[] = {F.greeter, "--manifest", m, "--send", "Ada", "--send", "Grace",
			      "--request", "hello", "--request", "bye", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 3);
	assert_string_equal(field(&r, 0, "state"), "{\"names\":[]}");
	assert_string_equal(field(&r, 2, "state"), "{\"names\":[\"Ada\",\"Grace\"]}");
	assert_string_equal(response(&r, 3), "hello, Ada, Grace");
	assert_string_equal(field(&r, 4, "error"), "unknown request: ask \"hello\"");
	result_release(&r);
	free(m);
}

/* Echo answers every request with its bytes, binary included. */
static void test_echo(void **state)
{
	(void)state;
	char *w = example("echo");
	char *bin = tu_fmt("%s/bytes.bin", F.dir);
	unsigned char bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)(255 - i);
	tu_write_file(bin, bytes, sizeof bytes);
	const char *args[] = {w, "--request", "hello, world", "--request-file", bin, NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	assert_string_equal(field(&r, 1, "response"), "hello, world");
	const json_t *resp = json_object_get(call_at(&r, 2), "response");
	const json_t *in = json_object_get(call_at(&r, 2), "input");
	assert_true(json_is_object(resp));           /* not UTF-8: hex */
	assert_true(json_equal(resp, in));
	assert_int_equal(strlen(json_string_value(json_object_get(resp, "hex"))), 512);
	/* its log lines are host calls of the call that made them */
	const json_t *hc = json_object_get(call_at(&r, 1), "host_calls");
	assert_string_equal(json_string_value(json_object_get(json_array_get(hc, 0), "call")),
			    "theater:simple/runtime/log");
	result_release(&r);
	free(bin);
	free(w);
}

/* kv over the in-memory store: put, get, list, and errors that keep the state. */
static void test_kv(void **state)
{
	(void)state;
	char *w = example("kv");
	char *m = tu_fmt("%s/examples/kv/manifest.toml", tu_source_dir());
	const char *args[] = {
		w, "--manifest", m,
		"--request", "{\"op\":\"put\",\"key\":\"greeting\",\"value\":\"hi\"}",
		"--request", "{\"op\":\"put\",\"key\":\"n\",\"value\":\"5\"}",
		"--request", "{\"op\":\"get\",\"key\":\"greeting\"}",
		"--request", "{\"op\":\"list\"}",
		"--request", "{\"op\":\"get\",\"key\":\"nothing\"}",
		NULL,
	};
	struct result r = run(args);
	assert_int_equal(r.status, 3);
	json_t *got = json_loads(field(&r, 3, "response"), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(got, "value")), "hi");
	json_decref(got);
	json_t *list = json_loads(field(&r, 4, "response"), 0, NULL);
	assert_int_equal(json_object_size(list), 2);
	assert_non_null(json_object_get(list, "greeting"));
	json_decref(list);
	assert_string_equal(field(&r, 5, "status"), "error");
	json_t *st = state_at(&r, 5);
	assert_int_equal(json_object_size(json_object_get(st, "index")), 2);
	json_decref(st);
	result_release(&r);
	/* without the store grant the module does not link */
	char *echo_m = tu_fmt("%s/examples/echo/manifest.toml", tu_source_dir());
	const char *ungranted[] = {w, "--manifest", echo_m, NULL};
	r = run(ungranted);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "add [[handler]] type = \"store\""));
	result_release(&r);
	free(echo_m);
	free(m);
	free(w);
}

/* --tick delivers timer ticks (handle-timer) numbered per timer, as the server
 * does; an actor without handle-timer cannot take one. */
static void test_ticks(void **state)
{
	(void)state;
	char *w = tu_fmt("%s/tests/sdk/hostcalls-rust.wasm", tu_binary_dir());
	const char *args[] = {w, "--now", "1800000000000", "--tick", "t", "--tick", "t",
			      "--tick", "u", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_array_size(r.calls), 4);    /* init and three ticks */
	assert_string_equal(field(&r, 2, "call"), "handle-timer");
	json_t *tk = json_loads(field(&r, 2, "input"), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(tk, "timer")), "t");
	assert_int_equal(json_integer_value(json_object_get(tk, "tick")), 2);
	assert_int_equal(json_integer_value(json_object_get(tk, "scheduled_ms")), 1800000000000LL);
	assert_int_equal(json_integer_value(json_object_get(tk, "missed")), 0);
	json_decref(tk);
	tk = json_loads(field(&r, 3, "input"), 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(tk, "tick")), 1);   /* "u" */
	json_decref(tk);
	assert_string_equal(field(&r, 3, "state"), "{\"ticks\":3}");
	result_release(&r);
	free(w);
	w = example("echo");
	const char *none[] = {w, "--tick", "t", NULL};
	r = run(none);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "handle-timer"));
	result_release(&r);
	free(w);
}

/* A trap ends the run: the calls after it do not run. */
static void test_trap(void **state)
{
	(void)state;
	char *w = example("looper");
	const char *args[] = {w, "--fuel", "100000", "--send", "go", "--send", "again", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 2);
	assert_int_equal(json_array_size(r.calls), 2);
	assert_string_equal(field(&r, 1, "status"), "trap");
	assert_non_null(strstr(field(&r, 1, "error"), "fuel"));
	result_release(&r);
	free(w);
}

/* ---- the fakes, through the host driver ---- */

static const char *response(const struct result *r, size_t i)
{
	const char *s = field(r, i, "response");
	if (!s)
		fail_msg("call %zu has no response (status %s)", i, field(r, i, "status"));
	return s;
}

static void test_fake_random_and_clock(void **state)
{
	(void)state;
	const char *a1[] = {F.driver, "--seed", "7", "--now", "5000", "--request", "random 16",
			    "--request", "now", "--request", "sleep 250", "--request", "now",
			    "--request", "uuid", NULL};
	struct result r1 = run(a1), r2 = run(a1);
	assert_int_equal(r1.status, 0);
	/* deterministic with a seed */
	assert_string_equal(response(&r1, 1), response(&r2, 1));
	assert_string_equal(response(&r1, 5), response(&r2, 5));
	assert_int_equal(strlen(response(&r1, 1)), 3 + 32);      /* "16 " + 32 hex */
	assert_string_equal(response(&r1, 2), "5000");
	assert_string_equal(response(&r1, 3), "0");
	assert_string_equal(response(&r1, 4), "5250");           /* sleep advanced the clock */
	assert_int_equal(strncmp(response(&r1, 5), "36 ", 3), 0);
	assert_int_equal(response(&r1, 5)[3 + 14], '4');         /* a v4 uuid */
	const char *a3[] = {F.driver, "--seed", "8", "--request", "random 16", NULL};
	struct result r3 = run(a3);
	assert_string_not_equal(response(&r3, 1), response(&r1, 1));
	result_release(&r1);
	result_release(&r2);
	result_release(&r3);
}

static void test_fake_messages(void **state)
{
	(void)state;
	const char *peer = "00000000-0000-4000-8000-0000000000aa";
	char *req = tu_fmt("request %s 1000 ping", peer), *snd = tu_fmt("send %s hi", peer);
	const char *args[] = {F.driver, "--answer", "pong", "--answer", "{\"n\":2}",
			      "--request", req, "--request", req, "--request", req,
			      "--request", snd, "--request", "self", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	assert_string_equal(response(&r, 1), "4 pong");
	assert_string_equal(response(&r, 2), "7 {\"n\":2}");
	assert_string_equal(response(&r, 3), "-6");              /* no answer left */
	assert_string_equal(response(&r, 4), "0");
	const json_t *hc = json_array_get(json_object_get(call_at(&r, 4), "host_calls"), 0);
	assert_string_equal(json_string_value(json_object_get(hc, "call")),
			    "theater:simple/message-server-host/send");
	assert_string_equal(json_string_value(json_object_get(json_object_get(hc, "input"), "to")),
			    peer);
	assert_string_equal(response(&r, 5), "36 00000000-0000-4000-8000-000000000001");
	result_release(&r);
	free(req);
	free(snd);
}

static void test_fake_store_and_http(void **state)
{
	(void)state;
	/* sha-256 of "hello" */
	const char *h = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	char *get = tu_fmt("get s %s", h), *label = tu_fmt("label s greet %s", h);
	char *fixture = tu_fmt("%s/http.json", F.dir);
	const char *fx = "{\"GET http://example.test/a\": {\"status\": 200, \"body\": \"A\"},"
			 " \"http://example.test/b\": {\"status\": 404, \"body\": \"\"}}";
	tu_write_file(fixture, fx, strlen(fx));
	const char *args[] = {
		F.driver, "--http-fixture", fixture,
		"--request", "store s hello", "--request", get, "--request", label,
		"--request", "getlabel s greet", "--request", "getlabel s nope",
		"--request", "http {\"method\":\"GET\",\"url\":\"http://example.test/a\"}",
		"--request", "http {\"method\":\"POST\",\"url\":\"http://example.test/b\"}",
		"--request", "http {\"method\":\"GET\",\"url\":\"http://example.test/c\"}",
		NULL,
	};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	char *stored = tu_fmt("64 %s", h);
	assert_string_equal(response(&r, 1), stored);
	assert_string_equal(response(&r, 2), "5 hello");
	assert_string_equal(response(&r, 3), "0");
	assert_string_equal(response(&r, 4), "5 hello");
	assert_string_equal(response(&r, 5), "-2");
	assert_non_null(strstr(response(&r, 6), "\"status\":200"));
	assert_non_null(strstr(response(&r, 7), "\"status\":404"));
	assert_string_equal(response(&r, 8), "-6");              /* not in the fixture */
	result_release(&r);
	free(stored);
	free(fixture);
	free(get);
	free(label);
}

static void test_fake_supervisor(void **state)
{
	(void)state;
	const char *child = "00000000-0000-4000-8000-000000000002";
	char *stop = tu_fmt("stop %s", child), *restart = tu_fmt("restart %s", child);
	char *cstate = tu_fmt("childstate %s", child);
	const char *args[] = {
		F.driver, "--request", "spawn {\"count\":3} {\"name\":\"c\",\"package\":\"c.wasm\"}",
		"--request", "children", "--request", cstate, "--request", restart,
		"--request", stop, "--request", "children", "--request", stop, "--request", "bad",
		NULL,
	};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	char *spawned = tu_fmt("0 %s", child);
	assert_string_equal(response(&r, 1), spawned);
	char *listed = tu_fmt("40 [\"%s\"]", child);
	assert_string_equal(response(&r, 2), listed);
	assert_string_equal(response(&r, 3), "11 {\"count\":3}");
	assert_string_equal(response(&r, 4), "0");
	assert_string_equal(response(&r, 5), "0");
	assert_string_equal(response(&r, 6), "2 []");
	assert_string_equal(response(&r, 7), "-3");              /* not a child any more */
	/* out-of-bounds pointers to every function are -1, never a crash: the
	 * same answers as the server's (test_e2e_host's test of "bad") */
	assert_string_equal(response(&r, 8), "-1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1");
	result_release(&r);
	free(spawned);
	free(listed);
	free(stop);
	free(restart);
	free(cstate);
}

/* Modules that do not speak the ABI are refused, saying why; a bad result
 * record is a trap, as on the server. */
static void test_bad_modules(void **state)
{
	(void)state;
	static const struct {
		const char *wat;
		int status;
		const char *says;
	} cases[] = {
		{"(module (func (export \"init\") (param i32 i32) (result i32) i32.const 0))",
		 1, "does not export its 'memory'"},
		{"(module (memory (export \"memory\") 1)"
		 " (func (export \"theater_abi_version\") (result i32) i32.const 2)"
		 " (func (export \"theater_alloc\") (param i32) (result i32) i32.const 1024))",
		 1, "theater_abi_version failed or is not 1"},
		{"(module (import \"wasi_snapshot_preview1\" \"fd_write\""
		 " (func (param i32 i32 i32 i32) (result i32))) (memory (export \"memory\") 1))",
		 1, "not in the actor abi"},
		{"(module (memory (export \"memory\") 1)"
		 " (func (export \"theater_abi_version\") (result i32) i32.const 1)"
		 " (func (export \"theater_alloc\") (param i32) (result i32) i32.const 1024)"
		 " (func (export \"init\") (param i32 i32) (result i32) i32.const 65530))",
		 2, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *wat = tu_fmt("%s/bad%zu.wat", F.dir, i), *wasm = tu_fmt("%s/bad%zu.wasm", F.dir, i);
		tu_write_file(wat, cases[i].wat, strlen(cases[i].wat));
		char *cmd = tu_fmt("wat2wasm '%s' -o '%s'", wat, wasm);
		assert_int_equal(system(cmd), 0);
		const char *args[] = {wasm, "--send", "x", NULL};
		struct result r = run(args);
		assert_int_equal(r.status, cases[i].status);
		if (cases[i].says && !strstr(r.err, cases[i].says))
			fail_msg("case %zu: stderr %s", i, r.err);
		if (!cases[i].says)
			assert_non_null(strstr(field(&r, 0, "error"), "invalid_result"));
		result_release(&r);
		free(cmd);
		free(wat);
		free(wasm);
	}
}

static void test_usage(void **state)
{
	(void)state;
	const char *a1[] = {"--bogus", NULL};
	struct result r = run(a1);
	assert_int_equal(r.status, 64);
	result_release(&r);
	char *missing = tu_fmt("%s/none.wasm", F.dir);
	const char *a2[] = {missing, NULL};
	r = run(a2);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "cannot read"));
	result_release(&r);
	char *w = example("counter");
	const char *a3[] = {w, "--state", "{}", "--init-state", "{}", NULL};
	r = run(a3);
	assert_int_equal(r.status, 64);
	result_release(&r);
	free(w);
	free(missing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_counter_plain_clang),
		cmocka_unit_test(test_counter_manifest),
		cmocka_unit_test(test_greeter_walkthrough),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_trap),
		cmocka_unit_test(test_fake_random_and_clock),
		cmocka_unit_test(test_fake_messages),
		cmocka_unit_test(test_fake_store_and_http),
		cmocka_unit_test(test_fake_supervisor),
		cmocka_unit_test(test_bad_modules),
		cmocka_unit_test(test_ticks),
		cmocka_unit_test(test_usage),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
