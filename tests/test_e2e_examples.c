/* test_e2e_examples.c - end to end: the example actors of examples/ (built from
 * C with clang into build/examples/<name>/<name>.wasm) run in the real
 * theater-server on 127.0.0.1 (port 0, temporary THEATER_HOME), spawned from
 * their own manifests and driven with libcurl as the README's curl session
 * drives them. The agent talks to a fake chat-completion endpoint started
 * here (tests/support/fixture_httpd.h) on 127.0.0.1, which the server may
 * reach because the test sets THEATER_HTTP_ALLOW_PRIVATE=1.
 *
 * Waits poll with a bound (never asserting a duration); the looper's limits
 * come from its manifest and the server runs with a huge fuel budget, so the
 * deadline test ends by the deadline whatever the machine's speed. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "src/util/crypto.h"
#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"
#include "tests/support/sse_client.h"

static const char *const EXAMPLES[] = {"counter", "echo", "kv", "supervisor", "looper", "agent",
				       NULL};

/* The fake endpoint's canned answer: an OpenAI-style chat completion. */
static const char *CHAT_ANSWER =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"test-model\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	"\"Hello! \\\"Quoted\\\", caf\\u00e9.\\nBye\"},\"finish_reason\":\"stop\"}],"
	"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}";
static const char *CHAT_REPLY = "Hello! \"Quoted\", caf\xc3\xa9.\nBye";

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
};

static struct env E;

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* One request; the response in *raw (release it) when raw is not NULL. */
static long call(const char *method, const char *path, const void *body, size_t len,
		 struct http_result *raw)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	struct http_result r;
	assert_int_equal(http_do(method, u, body, len, NULL, &r), 0);
	free(u);
	long status = r.status;
	if (raw)
		*raw = r;
	else
		http_result_release(&r);
	return status;
}

static long call_json(const char *method, const char *path, const char *body, json_t **out)
{
	struct http_result r;
	long status = call(method, path, body, body ? strlen(body) : 0, &r);
	if (out)
		*out = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
	http_result_release(&r);
	return status;
}

static char *actor_path(const char *id, const char *what)
{
	return tu_fmt("/actors/%s%s", id, what);
}

/* POST /actors?wait=running with body; the new id (malloc'd). */
static char *spawn(const char *body)
{
	json_t *j = NULL;
	long st = call_json("POST", "/actors?wait=running&timeout=30", body, &j);
	if (st != 201) {
		char *dump = j ? json_dumps(j, 0) : NULL;
		fail_msg("spawn %s answered %ld: %s", body, st, dump ? dump : "");
	}
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static char *spawn_example(const char *name, const char *format)
{
	char *body = tu_fmt("{\"manifest_ref\":\"%s/manifest.%s\"}", name, format);
	char *id = spawn(body);
	free(body);
	return id;
}

/* POST /messages: 202. */
static void send_msg(const char *id, const char *msg)
{
	char *p = actor_path(id, "/messages");
	struct http_result r;
	long st = call("POST", p, msg, strlen(msg), &r);
	if (st != 202)
		fail_msg("message to %s answered %ld: %s", id, st, r.body);
	http_result_release(&r);
	free(p);
}

/* POST /requests; the status, and the response in *r (release it). */
static long request(const char *id, const void *msg, size_t len, struct http_result *r)
{
	char *p = actor_path(id, "/requests");
	long st = call("POST", p, msg, len, r);
	free(p);
	return st;
}

/* A request expected to answer 200; the body (malloc'd, NUL-terminated). */
static char *ask(const char *id, const char *msg)
{
	struct http_result r;
	long st = request(id, msg, strlen(msg), &r);
	if (st != 200)
		fail_msg("request '%s' to %s answered %ld: %s", msg, id, st, r.body);
	char *body = r.body;
	r.body = NULL;
	http_result_release(&r);
	return body;
}

/* A request expected to fail with status and problem code; the detail
 * (malloc'd). */
static char *ask_fails(const char *id, const char *msg, long status, const char *code)
{
	struct http_result r;
	long st = request(id, msg, strlen(msg), &r);
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	const char *got = json_string_value(json_object_get(j, "code"));
	if (st != status || !got || strcmp(got, code) != 0)
		fail_msg("request '%s': expected %ld %s, got %ld: %s", msg, status, code, st, r.body);
	char *detail = strdup(json_string_value(json_object_get(j, "detail")));
	json_decref(j);
	http_result_release(&r);
	return detail;
}

static json_t *get_json(const char *id, const char *what)
{
	char *p = actor_path(id, what);
	json_t *j = NULL;
	long st = call_json("GET", p, NULL, &j);
	if (st != 200 || !j)
		fail_msg("GET %s answered %ld", p, st);
	free(p);
	return j;
}

static json_t *state_of(const char *id)
{
	return get_json(id, "/state");
}

static char *status_of(const char *id)
{
	json_t *a = get_json(id, "");
	char *s = strdup(json_string_value(json_object_get(a, "status")));
	json_decref(a);
	return s;
}

/* Polls until the run has `status` (at most 60 s, which is a bound, not a
 * measured duration); returns the run. */
static json_t *wait_status(const char *id, const char *status)
{
	for (int i = 0; i < 1200; i++) {
		json_t *a = get_json(id, "");
		if (strcmp(json_string_value(json_object_get(a, "status")), status) == 0)
			return a;
		json_decref(a);
		sleep_ms(50);
	}
	fail_msg("actor %s never became %s", id, status);
	return NULL;
}

/* The chain's events (the "items" of one page of up to 1000). */
static json_t *chain_of(const char *id)
{
	json_t *page = get_json(id, "/chain?limit=1000");
	json_t *items = json_incref(json_object_get(page, "items"));
	json_decref(page);
	return items;
}

/* The number of events of type (and, for "wasm", of that function). */
static size_t count_events(json_t *items, const char *type, const char *function)
{
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *e = json_array_get(items, i);
		if (strcmp(json_string_value(json_object_get(e, "event_type")), type) != 0)
			continue;
		const char *f = json_string_value(json_object_get(json_object_get(e, "data"),
								  "function"));
		if (!function || (f && strcmp(f, function) == 0))
			n++;
	}
	return n;
}

/* The last event of type; borrowed from items. */
static json_t *last_event(json_t *items, const char *type)
{
	json_t *found = NULL;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *e = json_array_get(items, i);
		if (strcmp(json_string_value(json_object_get(e, "event_type")), type) == 0)
			found = e;
	}
	return found;
}

static void assert_verifies(const char *id)
{
	json_t *v = get_json(id, "/chain/verify");
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
}



static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	/* The server (a child process) inherits these: the agent may reach the
	 * fake endpoint on loopback, and nothing goes through a proxy. */
	setenv("THEATER_HTTP_ALLOW_PRIVATE", "1", 1);
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_bytes(E.web, "/v1/chat/completions", CHAT_ANSWER, strlen(CHAT_ANSWER));
	fixture_httpd_add_status(E.web, "/broken/v1/chat/completions", 500);
	const char *args[] = {"--actor-fuel", "100G", NULL};
	E.sp.home = tu_mkdtemp("theater-e2e-examples");
	E.sp.roots = tu_fmt("%s/packages", E.sp.home);
	mkdir(E.sp.roots, 0755);
	server_install_examples(&E.sp, EXAMPLES);
	assert_int_equal(server_start(&E.sp, NULL, args, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* a clean exit (in the ASan build: no leak, no error at shutdown) */
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

static void test_counter(void **state)
{
	(void)state;
	char *id = spawn_example("counter", "json");
	send_msg(id, "5");
	send_msg(id, "not a number");   /* adds 1 */
	send_msg(id, "-2");
	/* one mailbox: the request runs after the three messages */
	char *got = ask(id, "get");
	assert_string_equal(got, "4");
	free(got);
	json_t *st = state_of(id);
	assert_int_equal(json_integer_value(json_object_get(st, "count")), 4);
	json_decref(st);
	/* a bad request is an error and leaves the state alone */
	char *detail = ask_fails(id, "bogus", 422, "actor_error");
	assert_non_null(strstr(detail, "get"));
	free(detail);
	got = ask(id, "\"get\"");
	assert_string_equal(got, "4");
	free(got);
	json_t *chain = chain_of(id);
	assert_int_equal(count_events(chain, "wasm", "handle-send"), 3);
	assert_int_equal(count_events(chain, "wasm", "handle-request"), 3);
	assert_int_equal(count_events(chain, "message-server/received", NULL), 6);
	json_decref(chain);
	json_t *m = get_json(id, "/metrics");
	assert_int_equal(json_integer_value(json_object_get(m, "messages")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "requests")), 3);
	assert_int_equal(json_integer_value(json_object_get(m, "failures")), 1);
	json_decref(m);
	assert_verifies(id);
	free(id);
}

static void test_counter_toml_manifest(void **state)
{
	(void)state;
	char *id = spawn_example("counter", "toml");
	send_msg(id, "41");
	send_msg(id, "");
	char *got = ask(id, "get");
	assert_string_equal(got, "42");
	free(got);
	free(id);
	/* an initial state given at spawn wins over the manifest's */
	id = spawn("{\"manifest_ref\":\"counter/manifest.json\",\"initial_state\":{\"count\":100}}");
	got = ask(id, "get");
	assert_string_equal(got, "100");
	free(got);
	free(id);
	/* a state init cannot take fails the spawn, naming why */
	json_t *j = NULL;
	long st = call_json("POST", "/actors?wait=running&timeout=30",
			    "{\"manifest_ref\":\"counter/manifest.json\","
			    "\"initial_state\":{\"count\":\"many\"}}", &j);
	assert_true(st >= 400 && st < 500);
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "count"));
	const char *failed = json_string_value(json_object_get(j, "actor_id"));
	assert_non_null(failed);
	char *status = status_of(failed);
	assert_string_equal(status, "failed");
	free(status);
	json_decref(j);
}

/* ---- echo ---- */

static void test_echo(void **state)
{
	(void)state;
	char *id = spawn_example("echo", "json");
	static const unsigned char bin[] = {'h', 'i', 0, 0xff, 0xfe, '\n', 'x', 0x80, 'z'};
	struct http_result r;
	assert_int_equal(request(id, bin, sizeof(bin), &r), 200);
	assert_int_equal(r.len, sizeof(bin));
	assert_memory_equal(r.body, bin, sizeof(bin));
	http_result_release(&r);
	send_msg(id, "hello, echo");
	char *got = ask(id, "{\"json\": true}");
	assert_string_equal(got, "{\"json\": true}");
	free(got);
	json_t *chain = chain_of(id);
	int saw_message = 0, saw_request = 0;
	for (size_t i = 0; i < json_array_size(chain); i++) {
		json_t *e = json_array_get(chain, i);
		if (strcmp(json_string_value(json_object_get(e, "event_type")),
			   "theater:simple/runtime/log") != 0)
			continue;
		const char *text = json_string_value(json_object_get(json_object_get(e, "data"),
								     "input"));
		if (text && strstr(text, "echo: message of 11 bytes: hello, echo"))
			saw_message = 1;
		if (text && strstr(text, "echo: request of 14 bytes"))
			saw_request = 1;
	}
	assert_true(saw_message);
	assert_true(saw_request);
	json_decref(chain);
	assert_verifies(id);
	free(id);
}

/* ---- kv ---- */

static char *sha256_hex_of(const char *s)
{
	uint8_t d[32];
	char *hex = malloc(65);
	sha256(s, strlen(s), d);
	hex_encode(d, 32, hex);
	return hex;
}

static void kv_put(const char *id, const char *key, const char *json_value, const char *value)
{
	char *req = tu_fmt("{\"op\":\"put\",\"key\":\"%s\",\"value\":%s}", key, json_value);
	char *got = ask(id, req);
	json_t *j = json_loads(got, 0, NULL);
	char *hash = sha256_hex_of(value);
	assert_string_equal(json_string_value(json_object_get(j, "key")), key);
	assert_string_equal(json_string_value(json_object_get(j, "hash")), hash);
	json_decref(j);
	free(hash);
	free(got);
	free(req);
}

static void kv_get(const char *id, const char *key, const char *value)
{
	char *req = tu_fmt("{\"op\":\"get\",\"key\":\"%s\"}", key);
	char *got = ask(id, req);
	json_t *j = json_loads(got, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "value")), value);
	json_decref(j);
	free(got);
	free(req);
}

static void test_kv(void **state)
{
	(void)state;
	char *id = spawn_example("kv", "json");
	kv_put(id, "greeting", "\"hello\"", "hello");
	kv_put(id, "quote.v1", "\"say \\\"hi\\\"\\n\\u00e9\"", "say \"hi\"\n\xc3\xa9");
	kv_get(id, "greeting", "hello");
	kv_get(id, "quote.v1", "say \"hi\"\n\xc3\xa9");
	kv_put(id, "greeting", "\"bonjour\"", "bonjour");
	kv_get(id, "greeting", "bonjour");
	/* the index in the state and the label in the store agree */
	json_t *st = state_of(id);
	char *h = sha256_hex_of("bonjour");
	json_t *index = json_object_get(st, "index");
	assert_int_equal(json_object_size(index), 2);
	assert_string_equal(json_string_value(json_object_get(index, "greeting")), h);
	assert_string_equal(json_string_value(json_object_get(st, "store")), "kv");
	json_decref(st);
	json_t *label = NULL;
	assert_int_equal(call_json("GET", "/store/kv/labels/greeting", NULL, &label), 200);
	assert_string_equal(json_string_value(json_object_get(label, "sha256")), h);
	json_decref(label);
	free(h);
	char *list = ask(id, "{\"op\":\"list\"}");
	json_t *l = json_loads(list, 0, NULL);
	assert_int_equal(json_object_size(l), 2);
	json_decref(l);
	free(list);
	/* errors, and nothing lost */
	free(ask_fails(id, "{\"op\":\"get\",\"key\":\"nothing\"}", 422, "actor_error"));
	free(ask_fails(id, "{\"op\":\"drop\",\"key\":\"greeting\"}", 422, "actor_error"));
	free(ask_fails(id, "{\"op\":\"put\",\"key\":\"../x\",\"value\":\"v\"}", 422,
		       "actor_error"));
	free(ask_fails(id, "{\"op\":\"put\",\"key\":\"n\",\"value\":5}", 422, "actor_error"));
	free(ask_fails(id, "not json", 422, "actor_error"));
	kv_get(id, "greeting", "bonjour");
	/* a new actor with an empty index finds the value by its label */
	char *other = spawn_example("kv", "toml");
	kv_get(other, "quote.v1", "say \"hi\"\n\xc3\xa9");
	json_t *chain = chain_of(id);
	assert_true(count_events(chain, "theater:simple/store/store", NULL) >= 3);
	assert_true(count_events(chain, "theater:simple/store/label", NULL) >= 3);
	json_decref(chain);
	assert_verifies(id);
	free(other);
	free(id);
}

/* ---- supervisor ---- */

static char *child_id(json_t *sup_state, size_t i)
{
	json_t *kids = json_object_get(sup_state, "children");
	const char *id = json_string_value(json_array_get(kids, i));
	assert_non_null(id);
	return strdup(id);
}

static void test_supervisor(void **state)
{
	(void)state;
	char *id = spawn_example("supervisor", "json");
	json_t *st = state_of(id);
	assert_int_equal(json_array_size(json_object_get(st, "children")), 2);
	char *c0 = child_id(st, 0), *c1 = child_id(st, 1);
	json_decref(st);
	/* list-children agrees with the state and with the API */
	char *list = ask(id, "{\"op\":\"list\"}");
	assert_non_null(strstr(list, c0));
	assert_non_null(strstr(list, c1));
	free(list);
	char *q = tu_fmt("/actors?parent=%s", id);
	json_t *j = NULL;
	assert_int_equal(call_json("GET", q, NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	free(q);
	/* the children are counters */
	send_msg(c0, "7");
	char *got = ask(c0, "get");
	assert_string_equal(got, "7");
	free(got);
	got = ask(id, "{\"op\":\"state\",\"index\":0}");
	assert_string_equal(got, "{\"count\":7}");
	free(got);
	/* restart: the child comes back with its last good state (docs/durability.md) */
	got = ask(id, "{\"op\":\"restart\",\"index\":0}");
	assert_non_null(strstr(got, c0));
	free(got);
	json_decref(wait_status(c0, "running"));
	got = ask(c0, "get");
	assert_string_equal(got, "7");
	free(got);
	json_t *chain = chain_of(c0);
	assert_int_equal(count_events(chain, "restarted", NULL), 1);
	json_decref(chain);
	/* stop one by id; the parent hears of it */
	char *stop = tu_fmt("{\"op\":\"stop\",\"id\":\"%s\"}", c1);
	free(ask(id, stop));
	json_decref(wait_status(c1, "stopped"));
	for (int i = 0; i < 600; i++) {
		st = state_of(id);
		int heard = json_integer_value(json_object_get(st, "exits")) +
			    json_integer_value(json_object_get(st, "errors")) >= 1;
		json_decref(st);
		if (heard)
			break;
		assert_true(i < 599);
		sleep_ms(50);
	}
	/* one more child on request */
	got = ask(id, "{\"op\":\"spawn\"}");
	json_t *spawned = json_loads(got, 0, NULL);
	const char *c2 = json_string_value(json_object_get(spawned, "id"));
	assert_non_null(c2);
	char *s2 = status_of(c2);
	assert_string_equal(s2, "running");
	free(s2);
	json_decref(spawned);
	free(got);
	free(ask_fails(id, "{\"op\":\"restart\",\"index\":9}", 422, "actor_error"));
	free(ask_fails(id, "{\"op\":\"explode\"}", 422, "actor_error"));
	assert_verifies(id);
	free(stop);
	free(c0);
	free(c1);
	free(id);
}

/* ---- looper ---- */

static void test_looper_fuel(void **state)
{
	(void)state;
	char *id = spawn_example("looper", "json");     /* limits.fuel = 50M */
	char *got = ask(id, "ping");
	assert_string_equal(got, "pong");
	free(got);
	send_msg(id, "go");
	json_t *a = wait_status(id, "failed");
	assert_non_null(strstr(json_string_value(json_object_get(a, "reason")), "fuel_exhausted"));
	json_decref(a);
	json_t *chain = chain_of(id);
	json_t *call = NULL;
	for (size_t i = 0; i < json_array_size(chain); i++) {
		json_t *e = json_array_get(chain, i);
		const char *f = json_string_value(json_object_get(json_object_get(e, "data"),
								  "function"));
		if (f && strcmp(f, "handle-send") == 0)
			call = e;
	}
	assert_non_null(call);
	assert_string_equal(json_string_value(json_object_get(json_object_get(call, "data"),
							      "error_code")), "wasm_exhausted");
	json_t *last = json_array_get(chain, json_array_size(chain) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "event_type")), "failed");
	json_decref(chain);
	assert_verifies(id);
	free(id);
}

/* The deadline ends a loop; meanwhile the other actors answer. The proof of
 * "meanwhile" is in the chains: the counter's answer is recorded before the
 * looper's `failed` event (the deadline is 1.5 s; the counter answers at once). */
static void test_looper_deadline_others_answer(void **state)
{
	(void)state;
	char *looper = spawn("{\"manifest\":{\"name\":\"looper\",\"package\":"
			     "\"looper/looper.wasm\",\"limits\":{\"call_timeout_ms\":1500}}}");
	char *counter = spawn_example("counter", "json");
	char *echo = spawn_example("echo", "json");
	send_msg(looper, "go");
	/* wait until the looper has taken the message (its call is running) */
	for (int i = 0; i < 1200; i++) {
		json_t *m = get_json(looper, "/metrics");
		json_int_t depth = json_integer_value(json_object_get(json_object_get(m, "mailbox"),
								      "depth"));
		json_decref(m);
		if (depth == 0)
			break;
		sleep_ms(10);
	}
	send_msg(counter, "3");
	char *got = ask(counter, "get");
	assert_string_equal(got, "3");
	free(got);
	got = ask(echo, "still here");
	assert_string_equal(got, "still here");
	free(got);
	json_decref(wait_status(looper, "failed"));
	json_t *a = get_json(looper, "");
	assert_non_null(strstr(json_string_value(json_object_get(a, "reason")), "deadline"));
	json_decref(a);
	json_t *lc = chain_of(looper), *cc = chain_of(counter);
	const char *failed_at = json_string_value(json_object_get(last_event(lc, "failed"),
								 "timestamp"));
	const char *answered_at = json_string_value(json_object_get(last_event(cc, "wasm"),
								   "timestamp"));
	assert_non_null(failed_at);
	assert_non_null(answered_at);
	if (strcmp(answered_at, failed_at) >= 0)
		fail_msg("the counter answered at %s, after the looper failed at %s", answered_at,
			 failed_at);
	json_decref(lc);
	json_decref(cc);
	/* the others still answer afterwards */
	got = ask(counter, "get");
	assert_string_equal(got, "3");
	free(got);
	free(echo);
	free(counter);
	free(looper);
}

static void test_looper_request(void **state)
{
	(void)state;
	char *id = spawn("{\"manifest\":{\"name\":\"looper\",\"package\":\"looper/looper.wasm\","
			 "\"limits\":{\"fuel\":2000000}}}");
	free(ask_fails(id, "loop", 502, "wasm_exhausted"));
	json_decref(wait_status(id, "failed"));
	/* a message to a failed actor is refused */
	char *p = actor_path(id, "/messages");
	assert_int_equal(call("POST", p, "x", 1, NULL), 409);
	free(p);
	free(id);
}

/* ---- agent ---- */

/* The agent's handlers, as in examples/agent/manifest.json but for the
 * fixture on 127.0.0.1 (reached through allow_loopback_ports). */
static char *agent_handlers(void)
{
	unsigned port = fixture_httpd_port(E.web);
	return tu_fmt("[{\"type\":\"runtime\"},{\"type\":\"timing\",\"max_sleep_ms\":10000},"
		      "{\"type\":\"message-server\"},{\"type\":\"http-client\",\"allowed_hosts\":"
		      "[\"127.0.0.1:%u\"],\"allow_loopback_ports\":[%u],\"secrets\":[\"openai\"],"
		      "\"timeout_ms\":20000}]", port, port);
}

/* Spawns agent/agent.wasm against the fixture's path; extra: more state keys
 * (",\"retries\":1"). */
static char *agent_spawn_with(const char *endpoint_path, const char *extra)
{
	char *url = fixture_httpd_url(E.web, endpoint_path);
	char *h = agent_handlers();
	char *body = tu_fmt("{\"manifest\":{\"name\":\"agent\",\"package\":\"agent/agent.wasm\","
			    "\"handler\":%s,\"initial_state\":{\"endpoint\":\"%s\",\"model\":"
			    "\"test-model\",\"api_key_secret\":\"openai\",\"system\":\"Be brief.\","
			    "\"retry_backoff_ms\":10,\"messages\":[]%s}}}", h, url, extra ? extra : "");
	char *id = spawn(body);
	free(body);
	free(h);
	free(url);
	return id;
}

static char *agent_spawn(const char *endpoint_path)
{
	return agent_spawn_with(endpoint_path, NULL);
}

/* PUT /secrets/openai with a fresh random key; the key (malloc'd). */
static char *agent_key(void)
{
	uint8_t b[16];
	char hex[33];
	assert_int_equal(random_bytes(b, sizeof(b)), ERR_OK);
	hex_encode(b, sizeof(b), hex);
	char *key = tu_fmt("sk-test-%s", hex);
	assert_int_equal(call("PUT", "/secrets/openai", key, strlen(key), NULL) / 100, 2);
	return key;
}

/* The chat-completion request the endpoint received last. */
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

static const char *role_at(json_t *messages, size_t i)
{
	return json_string_value(json_object_get(json_array_get(messages, i), "role"));
}

static const char *content_at(json_t *messages, size_t i)
{
	return json_string_value(json_object_get(json_array_get(messages, i), "content"));
}

/* The key reaches the endpoint as a bearer token (the endpoint checks it),
 * and is nowhere in the agent's state or chain. */
static void test_agent(void **state)
{
	(void)state;
	const char *path = "/v1/chat/completions";
	char *key = agent_key(), *bearer = tu_fmt("Bearer %s", key);
	fixture_httpd_add_auth(E.web, path, "Authorization", bearer, CHAT_ANSWER);
	char *id = agent_spawn(path);
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
	assert_string_equal(role_at(msgs, 0), "system");
	assert_string_equal(role_at(msgs, 1), "user");
	assert_string_equal(content_at(msgs, 1), "Hi there, \"agent\"");
	json_decref(chat);
	/* the second turn sends the conversation so far */
	got = ask(id, "And again?");
	free(got);
	chat = last_chat(path);
	msgs = json_object_get(chat, "messages");
	assert_int_equal(json_array_size(msgs), 4);
	assert_string_equal(role_at(msgs, 2), "assistant");
	assert_string_equal(content_at(msgs, 2), CHAT_REPLY);
	assert_string_equal(content_at(msgs, 3), "And again?");
	json_decref(chat);
	assert_int_equal(fixture_httpd_hits(E.web, path), 2);
	json_t *st = state_of(id);
	json_t *conv = json_object_get(st, "messages");
	assert_int_equal(json_array_size(conv), 4);
	assert_string_equal(content_at(conv, 3), CHAT_REPLY);
	assert_string_equal(json_string_value(json_object_get(st, "api_key_secret")), "openai");
	char *dump = json_dumps(st, 0);
	assert_null(strstr(dump, key));
	free(dump);
	json_decref(st);
	json_t *chain = chain_of(id);
	assert_int_equal(count_events(chain, "theater:simple/http-client/send-http", NULL), 2);
	dump = json_dumps(chain, 0);
	assert_null(strstr(dump, key));
	free(dump);
	json_decref(chain);
	/* reset forgets the conversation */
	send_msg(id, "reset");
	free(ask(id, "Fresh start"));
	chat = last_chat(path);
	assert_int_equal(json_array_size(json_object_get(chat, "messages")), 2);
	json_decref(chat);
	assert_verifies(id);
	free(id);
	/* a wrong key: the endpoint says 401, the agent reports it */
	assert_int_equal(call("PUT", "/secrets/openai", "sk-wrong", 8, NULL), 200);
	id = agent_spawn(path);
	char *detail = ask_fails(id, "hello?", 422, "actor_error");
	assert_non_null(strstr(detail, "error status"));
	free(detail);
	free(id);
	fixture_httpd_add_bytes(E.web, path, CHAT_ANSWER, strlen(CHAT_ANSWER));
	free(bearer);
	free(key);
}

/* 429 and 5xx are retried with backoff (timing/sleep); the answer comes when
 * the endpoint recovers, and not after the retries run out. */
static void test_agent_retries(void **state)
{
	(void)state;
	free(agent_key());
	const char *path = "/limited/v1/chat/completions";
	fixture_httpd_add_sequence(E.web, path, 2, 429, "{\"error\":\"rate limited\"}", CHAT_ANSWER);
	unsigned before = fixture_httpd_hits(E.web, path);
	char *id = agent_spawn(path);
	char *got = ask(id, "are you there?");
	assert_string_equal(got, CHAT_REPLY);
	free(got);
	assert_int_equal(fixture_httpd_hits(E.web, path), before + 3);
	json_t *chain = chain_of(id);
	assert_int_equal(count_events(chain, "theater:simple/http-client/send-http", NULL), 3);
	assert_int_equal(count_events(chain, "theater:simple/timing/sleep", NULL), 2);
	json_decref(chain);
	free(id);
	/* a 503 that lasts: retries (1) run out, an error, the conversation unchanged */
	fixture_httpd_add_sequence(E.web, path, 100, 503, "overloaded", CHAT_ANSWER);
	before = fixture_httpd_hits(E.web, path);
	id = agent_spawn_with(path, ",\"retries\":1");
	char *detail = ask_fails(id, "hello?", 422, "actor_error");
	assert_non_null(strstr(detail, "error status"));
	assert_non_null(strstr(detail, "overloaded"));
	free(detail);
	assert_int_equal(fixture_httpd_hits(E.web, path), before + 2);
	json_t *st = state_of(id);
	assert_int_equal(json_array_size(json_object_get(st, "messages")), 0);
	json_decref(st);
	free(id);
}

/* The model calls a tool; the agent asks the actor named for it (the echo
 * example) and sends the answer back; the model's next message is the reply. */
static void test_agent_tools(void **state)
{
	(void)state;
	free(agent_key());
	const char *path = "/tools/v1/chat/completions";
	static const char *TOOL_CALL =
		"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
		"\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
		"\"echo\",\"arguments\":\"{\\\"text\\\":\\\"ping\\\"}\"}}]},\"finish_reason\":"
		"\"tool_calls\"}]}";
	fixture_httpd_add_sequence(E.web, path, 1, 200, TOOL_CALL, CHAT_ANSWER);
	char *echo = spawn_example("echo", "json");
	char *tools = tu_fmt(",\"tools\":{\"echo\":{\"actor\":\"%s\",\"description\":\"echoes its "
			     "input\",\"parameters\":{\"type\":\"object\",\"properties\":{\"text\":"
			     "{\"type\":\"string\"}}}}}", echo);
	char *id = agent_spawn_with(path, tools);
	char *got = ask(id, "use the tool");
	assert_string_equal(got, CHAT_REPLY);
	free(got);
	json_t *chat = last_chat(path);
	json_t *offered = json_object_get(chat, "tools");
	assert_int_equal(json_array_size(offered), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_array_get(offered, 0), "function"), "name")), "echo");
	json_t *msgs = json_object_get(chat, "messages");
	assert_int_equal(json_array_size(msgs), 4);           /* system, user, tool call, tool */
	assert_string_equal(role_at(msgs, 2), "assistant");
	assert_non_null(json_object_get(json_array_get(msgs, 2), "tool_calls"));
	assert_string_equal(role_at(msgs, 3), "tool");
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3),
							      "tool_call_id")), "call_1");
	assert_string_equal(content_at(msgs, 3), "{\"text\":\"ping\"}");
	json_decref(chat);
	json_t *st = state_of(id);
	assert_int_equal(json_array_size(json_object_get(st, "messages")), 4);
	json_decref(st);
	json_t *chain = chain_of(id);
	assert_int_equal(count_events(chain, "theater:simple/message-server-host/request", NULL), 1);
	json_decref(chain);
	free(id);
	free(tools);
	free(echo);
}

static void test_agent_errors(void **state)
{
	(void)state;
	free(agent_key());
	/* the endpoint answers 500 (retries 0): an error, the conversation unchanged */
	char *id = agent_spawn_with("/broken/v1/chat/completions", ",\"retries\":0");
	char *detail = ask_fails(id, "hello?", 422, "actor_error");
	assert_non_null(strstr(detail, "error status"));
	free(detail);
	json_t *st = state_of(id);
	assert_int_equal(json_array_size(json_object_get(st, "messages")), 0);
	json_decref(st);
	free(id);
	/* a host that allowed_hosts does not name is refused before any connection */
	unsigned before = fixture_httpd_hits(E.web, "/v1/chat/completions");
	char *url = fixture_httpd_url(E.web, "/v1/chat/completions");
	char *body = tu_fmt("{\"manifest\":{\"name\":\"agent\",\"package\":\"agent/agent.wasm\","
			    "\"handler\":[{\"type\":\"timing\"},{\"type\":\"message-server\"},"
			    "{\"type\":\"http-client\",\"allowed_hosts\":[\"localhost\"]}]},"
			    "\"initial_state\":{\"endpoint\":\"%s\",\"model\":\"m-1\",\"retries\":0}}",
			    url);
	id = spawn(body);
	detail = ask_fails(id, "hello?", 422, "actor_error");
	assert_non_null(strstr(detail, "denied"));
	free(detail);
	assert_int_equal(fixture_httpd_hits(E.web, "/v1/chat/completions"), before);
	free(id);
	free(body);
	free(url);
	/* a secret the handler does not grant is refused too, before any connection */
	unsigned port = fixture_httpd_port(E.web);
	url = fixture_httpd_url(E.web, "/v1/chat/completions");
	body = tu_fmt("{\"manifest\":{\"name\":\"agent\",\"package\":\"agent/agent.wasm\","
		      "\"handler\":[{\"type\":\"timing\"},{\"type\":\"message-server\"},"
		      "{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"],"
		      "\"secrets\":[\"openai\"]}]},\"initial_state\":{\"endpoint\":\"%s\","
		      "\"model\":\"m-1\",\"api_key_secret\":\"not-granted\",\"retries\":0}}",
		      port, url);
	id = spawn(body);
	detail = ask_fails(id, "hello?", 422, "actor_error");
	assert_non_null(strstr(detail, "denied"));
	free(detail);
	assert_int_equal(fixture_httpd_hits(E.web, "/v1/chat/completions"), before);
	free(id);
	free(body);
	free(url);
	/* without the http-client grant the agent does not even spawn */
	json_t *j = NULL;
	assert_int_equal(call_json("POST", "/actors?wait=running&timeout=30",
				   "{\"manifest\":{\"name\":\"agent\",\"package\":"
				   "\"agent/agent.wasm\"}}", &j), 422);
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "http-client"));
	json_decref(j);
	/* the example's own manifest spawns as it is (https to a named host) */
	id = spawn_example("agent", "json");
	st = state_of(id);
	assert_string_equal(json_string_value(json_object_get(st, "endpoint")),
			    "https://api.openai.com/v1/chat/completions");
	json_decref(st);
	free(id);
	id = spawn_example("agent", "toml");
	free(id);
}

/* ---- the README session: spawn, send, request, watch the chain, stop ---- */

/* Frames that carry a chain event (an id); "ready" has none. */
static size_t events_in(const struct sse_result *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->frames[i].id != NULL;
	return n;
}

static void test_readme_session(void **state)
{
	(void)state;
	char *id = spawn_example("counter", "json");
	send_msg(id, "5");
	char *got = ask(id, "get");
	assert_string_equal(got, "5");
	free(got);
	json_t *v = get_json(id, "/chain/verify");
	size_t length = (size_t)json_integer_value(json_object_get(v, "length"));
	json_decref(v);
	char *u = tu_fmt("%s/actors/%s/chain", E.sp.base, id);
	struct sse_result r;
	assert_int_equal(sse_collect(u, NULL, length, 30, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(events_in(&r), length);
	int saw_send = 0;
	for (size_t i = 0; i < r.n; i++)
		if (r.frames[i].id && strstr(r.frames[i].data, "handle-send"))
			saw_send = 1;
	assert_true(saw_send);
	sse_result_release(&r);
	char *stop = actor_path(id, "/stop");
	assert_int_equal(call("POST", stop, NULL, 0, NULL), 204);
	char *st = status_of(id);
	assert_string_equal(st, "stopped");
	free(st);
	/* the stream of an ended actor replays and ends */
	assert_int_equal(sse_collect(u, NULL, 0, 30, &r), 0);
	assert_true(r.ended);
	assert_int_equal(events_in(&r), length + 1);
	const struct sse_frame *last = NULL;
	for (size_t i = 0; i < r.n; i++)
		if (r.frames[i].id)
			last = &r.frames[i];
	assert_non_null(last);
	json_t *ev = json_loads(last->data, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(ev, "event_type")), "stopped");
	json_decref(ev);
	sse_result_release(&r);
	free(stop);
	free(u);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_counter_toml_manifest),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_supervisor),
		cmocka_unit_test(test_looper_fuel),
		cmocka_unit_test(test_looper_deadline_others_answer),
		cmocka_unit_test(test_looper_request),
		cmocka_unit_test(test_agent),
		cmocka_unit_test(test_agent_retries),
		cmocka_unit_test(test_agent_tools),
		cmocka_unit_test(test_agent_errors),
		cmocka_unit_test(test_readme_session),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
