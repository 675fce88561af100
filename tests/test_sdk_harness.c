/* test_sdk_harness.c - the Rust and AssemblyScript examples under
 * `theater-wasm actor`, the offline harness (docs/sdk.md): no server. The
 * counters run from their TOML manifests (initial_state as JSON text); the
 * agents talk to the harness's HTTP fixture and keep the conversation. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "src/util/json.h"


static char *dir;

struct result {
	int status;
	json_t *calls;        /* one object per --json line */
};

/* Runs theater-wasm actor --json with args (each shell-quoted with '...';
 * none contains a quote). */
static struct result run(const char *const *args)
{
	char *cmd = tu_fmt("'%s/tools/theater-wasm/theater-wasm' actor --json", tu_binary_dir());
	for (; *args; args++) {
		char *next = tu_fmt("%s '%s'", cmd, *args);
		free(cmd);
		cmd = next;
	}
	FILE *p = popen(cmd, "r");
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
	free(cmd);
	return r;
}

static const char *field(const struct result *r, size_t i, const char *key)
{
	const json_t *c = json_array_get(r->calls, i);
	if (!c)
		fail_msg("no call %zu (exit %d)", i, r->status);
	return json_string_value(json_object_get(c, key));
}

static json_t *state_at(const struct result *r, size_t i)
{
	json_t *j = json_loads(field(r, i, "state"), 0, NULL);
	assert_non_null(j);
	return j;
}

static char *example_file(const char *name, const char *file, int built)
{
	return tu_fmt("%s/examples/%s/%s", built ? tu_binary_dir() : tu_source_dir(), name, file);
}

static void counter_for(const char *lang)
{
	char *name = tu_fmt("counter-%s", lang);
	char *wasmf = tu_fmt("%s.wasm", name);
	char *wasm = example_file(name, wasmf, 1);
	char *manifest = example_file(name, "manifest.toml", 0);
	const char *args[] = {wasm, "--manifest", manifest, "--send", "5", "--send", "7",
			      "--send", "x", "--request", "get", "--request", "bogus", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 3);              /* "bogus" is the actor's error */
	assert_int_equal(json_array_size(r.calls), 6);
	assert_string_equal(field(&r, 0, "call"), "init");
	json_t *st = state_at(&r, 0);               /* the manifest's '{"count": 0}' */
	assert_int_equal(json_integer_value(json_object_get(st, "count")), 0);
	json_decref(st);
	assert_string_equal(field(&r, 4, "call"), "handle-request");
	assert_string_equal(field(&r, 4, "status"), "ok");
	assert_string_equal(field(&r, 4, "response"), "13");   /* 5 + 7 + 1 */
	assert_string_equal(field(&r, 5, "status"), "error");
	assert_non_null(strstr(field(&r, 5, "error"), "the counter answers"));
	st = state_at(&r, 5);                       /* unchanged by the refusal */
	assert_int_equal(json_integer_value(json_object_get(st, "count")), 13);
	json_decref(st);
	json_decref(r.calls);
	free(manifest);
	free(wasm);
	free(wasmf);
	free(name);
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

static void agent_for(const char *lang)
{
	char *name = tu_fmt("agent-%s", lang);
	char *wasmf = tu_fmt("%s.wasm", name);
	char *wasm = example_file(name, wasmf, 1);
	char *manifest = example_file(name, "manifest.json", 0);
	char *fixture = tu_fmt("%s/http.json", dir);
	const char *fx =
		"{\"POST http://127.0.0.1:9/v1/chat/completions\": {\"status\": 200, \"body\":"
		" \"{\\\"choices\\\":[{\\\"message\\\":{\\\"role\\\":\\\"assistant\\\","
		"\\\"content\\\":\\\"Hi, human.\\\"}}]}\"},"
		" \"POST http://127.0.0.1:9/broken\": {\"status\": 500, \"body\": \"down\"}}";
	assert_int_equal(tu_write_file(fixture, fx, strlen(fx)), 0);
	const char *args[] = {wasm, "--manifest", manifest, "--http-fixture", fixture,
			      "--init-state",
			      "{\"endpoint\":\"http://127.0.0.1:9/v1/chat/completions\","
			      "\"model\":\"m\"}",
			      "--request", "Hello", "--request", "Again", "--send", "reset", NULL};
	struct result r = run(args);
	assert_int_equal(r.status, 0);
	assert_string_equal(field(&r, 1, "response"), "Hi, human.");
	assert_string_equal(field(&r, 2, "response"), "Hi, human.");
	json_t *st = state_at(&r, 2);
	json_t *msgs = json_object_get(st, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
			    "Hello");
	/* the manifest's system prompt survived the merge with the init state */
	assert_non_null(json_string_value(json_object_get(st, "system")));
	json_decref(st);
	st = state_at(&r, 3);                        /* reset */
	assert_int_equal(json_array_size(json_object_get(st, "messages")), 0);
	json_decref(st);
	json_decref(r.calls);

	/* an error status is the actor's error */
	const char *args2[] = {wasm, "--manifest", manifest, "--http-fixture", fixture,
			       "--init-state",
			       "{\"endpoint\":\"http://127.0.0.1:9/broken\",\"model\":\"m\"}",
			       "--request", "Hello", NULL};
	r = run(args2);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(field(&r, 1, "error"), "error status"));
	json_decref(r.calls);
	free(fixture);
	free(manifest);
	free(wasm);
	free(wasmf);
	free(name);
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

static int setup(void **state)
{
	(void)state;
	dir = tu_mkdtemp("theater-sdk-harness");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_rust),
		cmocka_unit_test(test_counter_assemblyscript),
		cmocka_unit_test(test_agent_rust),
		cmocka_unit_test(test_agent_assemblyscript),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
