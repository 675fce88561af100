/* test_e2e_replay.c - end to end: POST /actors/{id}/replay on a real
 * theater-server (127.0.0.1, port 0, temporary THEATER_HOME).
 *
 * Every example actor of examples/ is driven through some calls (the agent
 * against a fake chat-completion endpoint on 127.0.0.1) and its run replays
 * with no divergence: every recorded call is re-executed in a fresh instance
 * with its host calls answered from the chain. Then a small actor whose state
 * is the time a host call returned is replayed from a copy of its chain in
 * which that recorded time was changed and every hash recomputed: replay must
 * diverge exactly at that call. Errors: unknown run, a package that is gone,
 * a damaged chain.
 *
 * Waits poll with a bound; nothing asserts a duration. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/chain_rewrite.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

static const char *const EXAMPLES[] = {"counter", "echo", "kv", "supervisor", "looper", "agent",
				       NULL};

static const char *CHAT_ANSWER =
	"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"test-model\","
	"\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	"\"Hi from the fake model\"},\"finish_reason\":\"stop\"}]}";

/* clock: a message makes the state the 8 bytes of timing/now; a request
 * answers 16 random bytes; `variant` makes packages with other digests. */
static const char *CLOCK_WAT_HEAD =
	"(module\n"
	"  (import \"theater:simple/timing\" \"now\" (func $now (result i64)))\n"
	"  (import \"theater:simple/random\" \"random-bytes\" (func $rnd (param i32 i32) (result i32)))\n"
	"  (memory (export \"memory\") 1)\n"
	"  (global $top (mut i32) (i32.const 1024))\n"
	"  (func (export \"theater_abi_version\") (result i32) (i32.const 1))\n"
	"  (func (export \"variant\") (result i32) (i32.const ";
static const char *CLOCK_WAT_TAIL =
	"))\n"
	"  (func (export \"theater_alloc\") (param $n i32) (result i32) (local $p i32)\n"
	"    (local.set $p (global.get $top))\n"
	"    (global.set $top (i32.add (global.get $top) (local.get $n)))\n"
	"    (local.get $p))\n"
	"  (func (export \"theater_reset_heap\") (global.set $top (i32.const 1024)))\n"
	"  (func $result (param $sp i32) (param $sn i32) (param $op i32) (param $on i32) (result i32)\n"
	"    (i32.store (i32.const 0) (i32.const 0))\n"
	"    (i32.store (i32.const 4) (local.get $sp))\n"
	"    (i32.store (i32.const 8) (local.get $sn))\n"
	"    (i32.store (i32.const 12) (local.get $op))\n"
	"    (i32.store (i32.const 16) (local.get $on))\n"
	"    (i32.const 0))\n"
	"  (func (export \"init\") (param $sp i32) (param $sn i32) (result i32)\n"
	"    (call $result (local.get $sp) (local.get $sn) (i32.const 0) (i32.const 0)))\n"
	"  (func (export \"handle-send\") (param i32 i32 i32 i32) (result i32)\n"
	"    (i64.store (i32.const 64) (call $now))\n"
	"    (call $result (i32.const 64) (i32.const 8) (i32.const 0) (i32.const 0)))\n"
	"  (func (export \"handle-request\") (param $sp i32) (param $sn i32) (param i32 i32)\n"
	"    (result i32)\n"
	"    (drop (call $rnd (i32.const 128) (i32.const 16)))\n"
	"    (call $result (local.get $sp) (local.get $sn) (i32.const 128) (i32.const 16))))\n";

static const char *CLOCK_HANDLERS =
	"\"handler\":[{\"type\":\"runtime\"},{\"type\":\"timing\"},{\"type\":\"random\"}]";

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

static long call(const char *method, const char *path, const char *body, json_t **out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	struct http_result r;
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, NULL, &r), 0);
	free(u);
	if (out)
		*out = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
	long st = r.status;
	http_result_release(&r);
	return st;
}

static char *spawn(const char *body)
{
	json_t *j = server_call_json(&E.sp, "POST", "/actors?wait=running&timeout=30", body, 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static char *spawn_example(const char *name)
{
	char *body = tu_fmt("{\"manifest_ref\":\"%s/manifest.json\"}", name);
	char *id = spawn(body);
	free(body);
	return id;
}

static void send_msg(const char *id, const char *msg)
{
	char *p = tu_fmt("/actors/%s/messages", id);
	assert_int_equal(call("POST", p, msg, NULL), 202);
	free(p);
}

/* A request; its status (the answer is not kept). */
static long request(const char *id, const char *msg)
{
	char *p = tu_fmt("/actors/%s/requests", id);
	long st = call("POST", p, msg, NULL);
	free(p);
	return st;
}

static json_t *get(const char *id, const char *what)
{
	char *p = tu_fmt("/actors/%s%s", id, what);
	json_t *j = server_call_json(&E.sp, "GET", p, NULL, 200);
	free(p);
	return j;
}

static void wait_status(const char *id, const char *status)
{
	for (int i = 0; i < 1200; i++) {
		json_t *a = get(id, "");
		int done = strcmp(json_string_value(json_object_get(a, "status")), status) == 0;
		json_decref(a);
		if (done)
			return;
		sleep_ms(50);
	}
	fail_msg("actor %s never became %s", id, status);
}

/* The seqs of the chain's `wasm` events (up to max), and the chain's length. */
static size_t wasm_seqs(const char *id, uint64_t *seqs, size_t max, uint64_t *length)
{
	json_t *page = get(id, "/chain?limit=1000");
	json_t *items = json_object_get(page, "items");
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *e = json_array_get(items, i);
		if (strcmp(json_string_value(json_object_get(e, "event_type")), "wasm") == 0 &&
		    n < max)
			seqs[n++] = (uint64_t)json_integer_value(json_object_get(e, "seq"));
	}
	*length = (uint64_t)json_integer_value(json_object_get(page, "length"));
	json_decref(page);
	return n;
}

static json_t *replay(const char *id, long want)
{
	char *p = tu_fmt("/actors/%s/replay", id);
	json_t *j = server_call_json(&E.sp, "POST", p, NULL, want);
	free(p);
	assert_non_null(j);
	return j;
}

/* Replays id and checks that every recorded call replayed the same way. */
static void assert_replays(const char *id, size_t min_calls)
{
	uint64_t seqs[1000], length;
	size_t calls = wasm_seqs(id, seqs, 1000, &length);
	json_t *r = replay(id, 200);
	char *dump = json_dumps(r, 0);
	if (!json_is_null(json_object_get(r, "diverged_at")))
		fail_msg("replay of %s diverged: %s", id, dump);
	assert_true(json_is_null(json_object_get(r, "expected")));
	assert_true(json_is_null(json_object_get(r, "got")));
	if ((size_t)json_integer_value(json_object_get(r, "replayed")) != calls)
		fail_msg("replay of %s: %zu calls in the chain, answer %s", id, calls, dump);
	assert_int_equal(json_integer_value(json_object_get(r, "events")), length);
	assert_true(calls >= min_calls);
	free(dump);
	json_decref(r);
}



static void put_clock(const char *name, int variant)
{
	char *wat = tu_fmt("%s%d%s", CLOCK_WAT_HEAD, variant, CLOCK_WAT_TAIL);
	size_t len;
	unsigned char *wasm = wat_compile(wat, &len);
	server_put_package(&E.sp, name, wasm, len);
	free(wasm);
	free(wat);
}

static char *spawn_clock(const char *package)
{
	char *body = tu_fmt("{\"manifest\":{\"name\":\"clock\",\"package\":\"%s\",%s}}", package,
			    CLOCK_HANDLERS);
	char *id = spawn(body);
	free(body);
	return id;
}

/* Starts the server again on the same home (after server_stop). */
static void restart_server(void)
{
	const char *args[] = {"--actor-fuel", "100G", NULL};
	assert_int_equal(server_start(&E.sp, E.sp.home, args, NULL), 0);
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
	const char *args[] = {"--actor-fuel", "100G", NULL};
	E.sp.home = tu_mkdtemp("theater-e2e-replay");
	E.sp.roots = tu_fmt("%s/packages", E.sp.home);
	mkdir(E.sp.roots, 0755);
	server_install_examples(&E.sp, EXAMPLES);
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

/* ---- every example replays ---- */

static void test_counter(void **state)
{
	(void)state;
	char *id = spawn_example("counter");
	send_msg(id, "5");
	send_msg(id, "not a number");
	send_msg(id, "-2");
	assert_int_equal(request(id, "get"), 200);
	assert_int_equal(request(id, "bogus"), 422);     /* an actor error replays too */
	assert_replays(id, 6);
	/* a restart keeps the last state: a fresh instance resumes with it */
	char *p = tu_fmt("/actors/%s/restart", id);
	json_decref(server_call_json(&E.sp, "POST", p, NULL, 200));
	free(p);
	wait_status(id, "running");
	send_msg(id, "7");
	assert_int_equal(request(id, "get"), 200);
	assert_replays(id, 8);
	/* a restart from the initial state runs init again */
	p = tu_fmt("/actors/%s/restart?state=initial", id);
	json_decref(server_call_json(&E.sp, "POST", p, NULL, 200));
	free(p);
	wait_status(id, "running");
	send_msg(id, "2");
	assert_int_equal(request(id, "get"), 200);
	assert_replays(id, 11);
	free(id);
}

static void test_echo(void **state)
{
	(void)state;
	char *id = spawn_example("echo");
	assert_int_equal(request(id, "hello"), 200);
	assert_int_equal(request(id, "caf\xc3\xa9 \"quoted\"\n"), 200);
	send_msg(id, "a message");
	/* bytes that are not text, and an input above the inline limit (kept in
	 * the content store by reference) */
	char big[6000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(request(id, big), 200);
	assert_replays(id, 5);
	free(id);
}

static void test_kv(void **state)
{
	(void)state;
	char *id = spawn_example("kv");
	assert_int_equal(request(id, "{\"op\":\"put\",\"key\":\"greeting\",\"value\":\"hello\"}"), 200);
	assert_int_equal(request(id, "{\"op\":\"put\",\"key\":\"other\",\"value\":\"v2\"}"), 200);
	assert_int_equal(request(id, "{\"op\":\"get\",\"key\":\"greeting\"}"), 200);
	assert_int_equal(request(id, "{\"op\":\"list\"}"), 200);
	assert_int_equal(request(id, "{\"op\":\"get\",\"key\":\"nothing\"}"), 422);
	assert_replays(id, 6);
	free(id);
}

static void test_supervisor(void **state)
{
	(void)state;
	char *id = spawn_example("supervisor");
	json_t *st = get(id, "/state");
	json_t *kids = json_object_get(st, "children");
	assert_int_equal(json_array_size(kids), 2);
	char *c0 = strdup(json_string_value(json_array_get(kids, 0)));
	json_decref(st);
	assert_int_equal(request(id, "{\"op\":\"list\"}"), 200);
	send_msg(c0, "3");
	assert_int_equal(request(c0, "get"), 200);
	/* the supervisor's spawns are answered from the record: no child is made */
	json_t *before = server_call_json(&E.sp, "GET", "/actors?limit=500", NULL, 200);
	size_t runs = json_array_size(json_object_get(before, "items"));
	json_decref(before);
	assert_replays(id, 2);
	assert_replays(c0, 3);
	json_t *after = server_call_json(&E.sp, "GET", "/actors?limit=500", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(after, "items")), runs);
	json_decref(after);
	free(c0);
	free(id);
}

static void test_looper(void **state)
{
	(void)state;
	/* out of fuel (the manifest's budget) */
	char *id = spawn_example("looper");
	assert_int_equal(request(id, "loop"), 502);
	wait_status(id, "failed");
	assert_replays(id, 2);
	free(id);
	/* cut by the wall-clock deadline (the server's budget is huge): replay
	 * gives the call exactly the fuel it had used */
	id = spawn("{\"manifest\":{\"name\":\"looper\",\"package\":\"looper/looper.wasm\","
		   "\"handler\":[{\"type\":\"runtime\"}],\"limits\":{\"call_timeout_ms\":300}}}");
	assert_int_equal(request(id, "loop"), 502);
	wait_status(id, "failed");
	assert_replays(id, 2);
	free(id);
}

static void test_agent(void **state)
{
	(void)state;
	unsigned port = fixture_httpd_port(E.web);
	char *url = fixture_httpd_url(E.web, "/v1/chat/completions");
	/* the key is a server secret the host fills in: replay never sees it */
	char *u = tu_fmt("%s/secrets/openai", E.sp.base);
	struct http_result hr;
	assert_int_equal(http_do("PUT", u, "sk-test-replay", 14, NULL, &hr), 0);
	assert_int_equal(hr.status / 100, 2);
	http_result_release(&hr);
	free(u);
	char *body = tu_fmt(
		"{\"manifest\":{\"name\":\"agent\",\"package\":\"agent/agent.wasm\",\"handler\":["
		"{\"type\":\"runtime\"},{\"type\":\"timing\",\"max_sleep_ms\":10000},"
		"{\"type\":\"message-server\"},{\"type\":\"http-client\",\"allowed_hosts\":"
		"[\"127.0.0.1:%u\"],\"allow_loopback_ports\":[%u],\"secrets\":[\"openai\"],"
		"\"timeout_ms\":20000}],\"initial_state\":{\"endpoint\":\"%s\",\"model\":"
		"\"test-model\",\"api_key_secret\":\"openai\",\"retry_backoff_ms\":10,"
		"\"messages\":[]}}}", port, port, url);
	char *id = spawn(body);
	assert_int_equal(request(id, "Hi there"), 200);
	send_msg(id, "reset");       /* processed before the next request: one mailbox */
	assert_int_equal(request(id, "And again?"), 200);
	unsigned hits = fixture_httpd_hits(E.web, "/v1/chat/completions");
	assert_replays(id, 4);
	/* the answers came from the chain, not from the endpoint */
	assert_int_equal(fixture_httpd_hits(E.web, "/v1/chat/completions"), hits);
	free(body);
	free(url);
	free(id);
}

/* ---- every host function replays (tests/actors/host_driver.c) ---- */


static char *driver_spawn(const char *name, unsigned short port)
{
	char *body = tu_fmt(
		"{\"manifest\":{\"name\":\"%s\",\"package\":\"driver.wasm\",\"handler\":["
		"{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
		"{\"type\":\"timing\",\"max_sleep_duration\":200},{\"type\":\"random\"},"
		"{\"type\":\"store\"},{\"type\":\"supervisor\"},{\"type\":\"http-client\","
		"\"allowed_hosts\":[\"127.0.0.1:%u\"]}]}}", name, port);
	char *id = spawn(body);
	free(body);
	return id;
}

static void driver_cmd(const char *id, const char *command)
{
	char *p = tu_fmt("/actors/%s/requests?timeout=60", id);
	json_t *j = NULL;
	long st = call("POST", p, command, &j);
	if (st != 200)
		fail_msg("driver command '%s' answered %ld", command, st);
	json_decref(j);
	free(p);
}

static void test_host_functions(void **state)
{
	(void)state;
	size_t len;
	unsigned char *wasm = server_compile_driver("", &len);
	server_put_package(&E.sp, "driver.wasm", wasm, len);
	free(wasm);
	unsigned short port = fixture_httpd_port(E.web);
	char *a = driver_spawn("driver-a", port), *b = driver_spawn("driver-b", port);
	const char *fixed[] = {"now", "sleep 5", "random 32", "uuid", "self",
			       "store pub hello", "get pub "
			       "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
			       "label pub greeting "
			       "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
			       "getlabel pub greeting", "getlabel pub nolabel", "children", "bad",
			       NULL};
	for (int i = 0; fixed[i]; i++)
		driver_cmd(a, fixed[i]);
	char *c = tu_fmt("send %s hello from a", b);
	driver_cmd(a, c);
	free(c);
	c = tu_fmt("request %s 5000 echo pong", b);
	driver_cmd(a, c);
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/v1/chat/completions\"}", port);
	driver_cmd(a, c);
	free(c);
	c = tu_fmt("spawn {\"k\":1} {\"name\":\"kid\",\"package\":\"driver.wasm\","
		   "\"handler\":[{\"type\":\"runtime\"}]}");
	driver_cmd(a, c);
	free(c);
	driver_cmd(a, "children");
	assert_replays(a, 18);
	assert_replays(b, 3);
	free(a);
	free(b);
}

/* ---- a forged record makes replay diverge ---- */

struct bump {
	uint64_t seq;               /* the timing/now event to change */
	int done;
};

/* Adds one to the last digit of the number after "return": (same length), and
 * to the same number in "output", so the forged record is consistent. */
static void bump_now(void *user, uint64_t seq, const char *type, const uint8_t *data,
		     size_t len, uint8_t **new_data, size_t *new_len)
{
	struct bump *b = user;
	if (seq != b->seq)
		return;
	assert_string_equal(type, "theater:simple/timing/now");
	char *text = strndup((const char *)data, len);
	const char *ret = strstr(text, "\"return\":");
	assert_non_null(ret);
	ret += strlen("\"return\":");
	size_t n = strspn(ret, "0123456789");
	assert_true(n > 0);
	char number[32], forged[32];
	snprintf(number, sizeof(number), "%.*s", (int)n, ret);
	memcpy(forged, number, n + 1);
	forged[n - 1] = forged[n - 1] == '9' ? '8' : (char)(forged[n - 1] + 1);
	for (char *p = strstr(text, number); p; p = strstr(p + n, number))
		memcpy(p, forged, n);
	*new_data = (uint8_t *)text;
	*new_len = len;
	b->done = 1;
}

/* Changes the recorded arguments of the random-bytes event: [128,16] -> [128,17]. */
static void forge_args(void *user, uint64_t seq, const char *type, const uint8_t *data,
		       size_t len, uint8_t **new_data, size_t *new_len)
{
	uint64_t *target = user;
	if (seq != *target)
		return;
	assert_string_equal(type, "theater:simple/random/random-bytes");
	char *text = strndup((const char *)data, len);
	char *at = strstr(text, "\"args\":[128,16]");
	assert_non_null(at);
	at[strlen("\"args\":[128,1")] = '7';
	*new_data = (uint8_t *)text;
	*new_len = len;
}

/* The seq of the last event of type. */
static uint64_t last_of(const char *id, const char *type, json_t **data_out)
{
	json_t *page = get(id, "/chain?limit=1000");
	json_t *items = json_object_get(page, "items");
	uint64_t seq = 0;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *e = json_array_get(items, i);
		if (strcmp(json_string_value(json_object_get(e, "event_type")), type) == 0) {
			seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
			if (data_out) {
				json_decref(*data_out);
				*data_out = json_incref(json_object_get(e, "data"));
			}
		}
	}
	json_decref(page);
	assert_true(seq > 0);
	return seq;
}

/* The seq of the last event of type before seq `before`. */
static uint64_t last_of_before(const char *id, const char *type, uint64_t before)
{
	json_t *page = get(id, "/chain?limit=1000");
	json_t *items = json_object_get(page, "items");
	uint64_t seq = 0;
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *e = json_array_get(items, i);
		uint64_t k = (uint64_t)json_integer_value(json_object_get(e, "seq"));
		if (k < before &&
		    strcmp(json_string_value(json_object_get(e, "event_type")), type) == 0)
			seq = k;
	}
	json_decref(page);
	assert_true(seq > 0);
	return seq;
}

static void remove_index(void)
{
	const char *names[] = {"theater.db", "theater.db-wal", "theater.db-shm", NULL};
	for (int i = 0; names[i]; i++) {
		char *p = tu_fmt("%s/%s", E.sp.home, names[i]);
		unlink(p);
		free(p);
	}
}

static void test_divergence(void **state)
{
	(void)state;
	put_clock("clock.wasm", 1);
	char *id = spawn_clock("clock.wasm");
	send_msg(id, "tick");
	send_msg(id, "tock");
	assert_int_equal(request(id, "random"), 200);
	assert_replays(id, 4);       /* random bytes come back from the store */
	uint64_t seqs[8], length;
	assert_int_equal(wasm_seqs(id, seqs, 8, &length), 4);   /* init, 2 sends, request */
	uint64_t second = seqs[2];
	/* what a host call's event holds for replay; random bytes only by reference */
	json_t *rd = NULL;
	last_of(id, "theater:simple/random/random-bytes", &rd);
	char *rdump = json_dumps(rd, 0);
	json_t *fx = json_array_get(json_object_get(rd, "effects"), 0);
	if (json_integer_value(json_object_get(fx, "write")) != 128 ||
	    json_integer_value(json_object_get(rd, "return")) != 16 ||
	    json_array_size(json_object_get(rd, "args")) != 2 ||
	    !json_object_get(json_object_get(fx, "data"), "ref") ||
	    json_object_get(json_object_get(fx, "data"), "b64"))
		fail_msg("unexpected random-bytes event: %s", rdump);
	free(rdump);
	json_decref(rd);
	/* a second run of the same package, whose random-bytes arguments are forged */
	char *other = spawn_clock("clock.wasm");
	assert_int_equal(request(other, "random"), 200);
	uint64_t forged = last_of(other, "theater:simple/random/random-bytes", NULL);
	/* the call's timing/now event: the last one before it (messages accepted
	 * meanwhile may be recorded in between) */
	uint64_t now_seq = last_of_before(id, "theater:simple/timing/now", second);
	/* the server is stopped; the chain is forged with valid hashes; the index is
	 * rebuilt from the chains at the next start */
	assert_int_equal(server_stop(&E.sp), 0);
	struct bump b = {.seq = now_seq};
	char *chains = tu_fmt("%s/chains", E.sp.home);
	assert_int_equal(chain_rewrite(chains, id, bump_now, &b), 0);
	assert_true(b.done);
	assert_int_equal(chain_rewrite(chains, other, forge_args, &forged), 0);
	remove_index();
	restart_server();
	json_t *v = get(id, "/chain/verify");
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	json_t *r = replay(id, 200);
	char *dump = json_dumps(r, 0);
	if ((uint64_t)json_integer_value(json_object_get(r, "diverged_at")) != second)
		fail_msg("expected a divergence at %llu: %s", (unsigned long long)second, dump);
	assert_int_equal(json_integer_value(json_object_get(r, "replayed")), 2);
	json_t *x = json_object_get(r, "expected"), *g = json_object_get(r, "got");
	assert_string_equal(json_string_value(json_object_get(x, "function")), "handle-send");
	assert_string_equal(json_string_value(json_object_get(g, "function")), "handle-send");
	const char *xs = json_string_value(json_object_get(x, "state_sha256"));
	const char *gs = json_string_value(json_object_get(g, "state_sha256"));
	assert_non_null(xs);
	assert_non_null(gs);
	assert_string_not_equal(xs, gs);
	free(dump);
	json_decref(r);
	/* the forged arguments: replay stops at that host call */
	r = replay(other, 200);
	dump = json_dumps(r, 0);
	if ((uint64_t)json_integer_value(json_object_get(r, "diverged_at")) != forged)
		fail_msg("expected a divergence at %llu: %s", (unsigned long long)forged, dump);
	x = json_object_get(r, "expected");
	g = json_object_get(r, "got");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(x, "args"), 1)), 17);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(g, "args"), 1)), 16);
	free(dump);
	json_decref(r);
	free(other);
	free(chains);
	free(id);
}

/* ---- a run recovered after a crash replays across its `recovered` event ---- */

static int has_event(const char *id, const char *type)
{
	json_t *page = get(id, "/chain?limit=1000");
	json_t *items = json_object_get(page, "items");
	int found = 0;
	for (size_t i = 0; i < json_array_size(items); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(items, i),
							     "event_type")), type) == 0)
			found = 1;
	json_decref(page);
	return found;
}

static void test_recovered(void **state)
{
	(void)state;
	char *id = spawn_example("counter");
	send_msg(id, "5");
	assert_int_equal(request(id, "get"), 200);
	server_crash(&E.sp);
	restart_server();
	wait_status(id, "running");
	send_msg(id, "3");
	assert_int_equal(request(id, "get"), 200);
	assert_true(has_event(id, "recovered"));
	assert_replays(id, 4);
	free(id);
}

/* ---- errors ---- */

static void expect_problem(const char *path, long status, const char *code)
{
	json_t *j = NULL;
	long st = call("POST", path, NULL, &j);
	const char *got = json_string_value(json_object_get(j, "code"));
	if (st != status || !got || strcmp(got, code) != 0) {
		char *dump = j ? json_dumps(j, 0) : NULL;
		fail_msg("POST %s: expected %ld %s, got %ld %s", path, status, code, st,
			 dump ? dump : "");
	}
	json_decref(j);
}

/* Renames "effects" in every host-call event, as a server without replay wrote them. */
static void strip_effects(void *user, uint64_t seq, const char *type, const uint8_t *data,
			  size_t len, uint8_t **new_data, size_t *new_len)
{
	(void)user;
	(void)seq;
	(void)type;
	char *text = strndup((const char *)data, len);
	char *at = strstr(text, "\"effects\":");
	if (!at) {
		free(text);
		return;
	}
	memcpy(at, "\"effectz\":", strlen("\"effectz\":"));
	*new_data = (uint8_t *)text;
	*new_len = len;
}

static void test_errors(void **state)
{
	(void)state;
	expect_problem("/actors/00000000-0000-4000-8000-000000000000/replay", 404, "not_found");
	expect_problem("/actors/not-an-id/replay", 400, "invalid_id");
	/* the package is gone from the roots and from the store */
	put_clock("gone.wasm", 2);
	char *gone = spawn_clock("gone.wasm");
	send_msg(gone, "tick");
	json_t *run = get(gone, "");
	char *sha = strdup(json_string_value(json_object_get(run, "package_sha256")));
	json_decref(run);
	/* a damaged chain */
	char *hurt = spawn_example("counter");
	send_msg(hurt, "1");
	send_msg(hurt, "2");
	assert_int_equal(request(hurt, "get"), 200);
	/* a chain written without what replay needs (as by an older server) */
	char *old = spawn_example("counter");
	send_msg(old, "4");
	assert_int_equal(request(old, "get"), 200);
	assert_int_equal(server_stop(&E.sp), 0);
	char *chains = tu_fmt("%s/chains", E.sp.home);
	assert_int_equal(chain_rewrite(chains, old, strip_effects, NULL), 0);
	free(chains);
	remove_index();
	char *pkg = tu_fmt("%s/gone.wasm", E.sp.roots);
	char *kept = tu_fmt("%s/store/theater-packages/data/%s", E.sp.home, sha);
	assert_int_equal(unlink(pkg), 0);
	assert_int_equal(unlink(kept), 0);
	char *file = tu_fmt("%s/chains/%s.chain", E.sp.home, hurt);
	size_t len;
	char *bytes = tu_read_file(file, &len);
	char *at = strstr(bytes, "\"input\":\"1\"");
	assert_non_null(at);
	at[9] = '9';                          /* a changed byte before the tail */
	assert_int_equal(tu_write_file(file, bytes, len), 0);
	free(bytes);
	restart_server();
	char *p = tu_fmt("/actors/%s/replay", gone);
	expect_problem(p, 422, "package_unavailable");
	free(p);
	p = tu_fmt("/actors/%s/replay", hurt);
	expect_problem(p, 409, "chain_damaged");
	free(p);
	p = tu_fmt("/actors/%s/replay", old);
	expect_problem(p, 409, "conflict");
	free(p);
	free(old);
	free(file);
	free(pkg);
	free(kept);
	free(sha);
	free(hurt);
	free(gone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_supervisor),
		cmocka_unit_test(test_looper),
		cmocka_unit_test(test_agent),
		cmocka_unit_test(test_host_functions),
		cmocka_unit_test(test_recovered),
		cmocka_unit_test(test_divergence),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
