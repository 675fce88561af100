/* test_e2e_api.c - end to end: the real theater-server on 127.0.0.1 (port 0,
 * temporary THEATER_HOME), packages served from files, from a local HTTP
 * server started here, and from the content store; driven with libcurl. */
#include "tests/support/testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"


struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
	unsigned char *wasm;
	size_t wasm_len;
};

static struct env E;

/* ---- helpers ---- */

static char *url(const char *path)
{
	return tu_fmt("%s%s", E.sp.base, path);
}

static long req(const char *method, const char *path, const char *body, json_t **json_out,
		struct http_result *raw)
{
	char *u = url(path);
	struct http_result r;
	const char *h[] = {"Content-Type: application/json", NULL};
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, h, &r), 0);
	free(u);
	if (json_out) {
		*json_out = json_loadb(r.body, r.len, 0, NULL);
	}
	long status = r.status;
	if (raw)
		*raw = r;
	else
		http_result_release(&r);
	return status;
}

static void assert_problem(json_t *j, const char *code)
{
	assert_non_null(j);
	const char *got = json_string_value(json_object_get(j, "code"));
	if (!got || strcmp(got, code) != 0) {
		char *dump = json_dumps(j, 0);
		fail_msg("expected problem code '%s', got %s", code, dump);
	}
	assert_non_null(json_string_value(json_object_get(j, "detail")));
}

/* GET path answers status with a problem of this code whose detail holds want and
 * no server path (THEATER_HOME or a chain file). */
static void expect_detail(const char *method, const char *path, const char *body, long status,
			  const char *code, const char *want)
{
	json_t *p = NULL;
	long got = req(method, path, body, &p, NULL);
	const char *detail = json_string_value(json_object_get(p, "detail"));
	if (got != status || !detail || !strstr(detail, want))
		fail_msg("%s %s answered %ld (want %ld): %s", method, path, got, status,
			 detail ? detail : "(no detail)");
	assert_problem(p, code);
	assert_null(strstr(detail, E.sp.home));
	assert_null(strstr(detail, ".chain"));
	json_decref(p);
}

static char *spawn_body(const char *name, const char *package, int static_package)
{
	return tu_fmt("{\"manifest\":{\"name\":\"%s\",\"version\":\"0.1.0\",\"package\":\"%s\","
		      "\"static_package\":%s,\"initial_state\":{\"n\":1}},"
		      "\"initial_state\":{\"m\":2}}", name, package,
		      static_package ? "true" : "false");
}

/* Spawns and waits for running; returns the id (malloc'd). */
static char *spawn_running(const char *name, const char *package, int static_package)
{
	char *body = spawn_body(name, package, static_package);
	json_t *j = NULL;
	long st = req("POST", "/actors?wait=running&timeout=10", body, &j, NULL);
	free(body);
	if (st != 201) {
		char *dump = j ? json_dumps(j, 0) : NULL;
		fail_msg("spawn of '%s' answered %ld: %s", package, st, dump ? dump : "");
	}
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static json_t *get_actor(const char *id)
{
	char *path = tu_fmt("/actors/%s", id);
	json_t *j = NULL;
	assert_int_equal(req("GET", path, NULL, &j, NULL), 200);
	free(path);
	return j;
}

static json_t *chain_page(const char *id)
{
	char *path = tu_fmt("/actors/%s/chain?limit=1000", id);
	json_t *j = NULL;
	assert_int_equal(req("GET", path, NULL, &j, NULL), 200);
	free(path);
	return j;
}

static void assert_verifies(const char *id, uint64_t min_length)
{
	char *path = tu_fmt("/actors/%s/chain/verify", id);
	json_t *j = NULL;
	assert_int_equal(req("GET", path, NULL, &j, NULL), 200);
	assert_true(json_is_true(json_object_get(j, "valid")));
	assert_true(json_integer_value(json_object_get(j, "length")) >= (json_int_t)min_length);
	json_decref(j);
	free(path);
}

static void assert_alive(void)
{
	assert_int_equal(req("GET", "/health", NULL, NULL, NULL), 200);
}

/* The server of these tests, on home (a new one when NULL). */
static void start_server(const char *home)
{
	/* the fixture is on loopback: allow exactly its address and port */
	char *allow = tu_fmt("127.0.0.1:%u", fixture_httpd_port(E.web));
	const char *args[] = {"--max-body", "64K", "--max-download", "1M", "--fetch-allow", allow,
			      NULL};
	assert_int_equal(server_start(&E.sp, home, args, NULL), 0);
	free(allow);
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	E.wasm = hello_actor_wasm(&E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_bytes(E.web, "/static.wasm", E.wasm, E.wasm_len);
	fixture_httpd_add_bytes(E.web, "/dynamic.wasm", E.wasm, E.wasm_len);
	fixture_httpd_add_bytes(E.web, "/text.wasm", "hello, not wasm", 15);
	fixture_httpd_add_status(E.web, "/missing.wasm", 404);
	fixture_httpd_add_redirect(E.web, "/loop.wasm", "/loop.wasm");
	fixture_httpd_add_huge(E.web, "/huge.wasm", 8u << 20, 0);
	fixture_httpd_add_slow(E.web, "/slow.wasm", 8000);
	start_server(NULL);
	server_put_package(&E.sp, "counter.wasm", E.wasm, E.wasm_len);
	server_put_package(&E.sp, "notwasm.wasm", "plain text", 10);
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

/* ---- tests ---- */

static void test_health_ready_version(void **state)
{
	(void)state;
	json_t *j = NULL;
	assert_int_equal(req("GET", "/health", NULL, &j, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
	json_decref(j);
	assert_int_equal(req("GET", "/ready", NULL, NULL, NULL), 200);
	assert_int_equal(req("GET", "/version", NULL, &j, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "theater");
	json_decref(j);
	assert_int_equal(req("GET", "/nope", NULL, &j, NULL), 404);
	assert_problem(j, "not_found");
	json_decref(j);
	struct http_result raw;
	assert_int_equal(req("PUT", "/actors", "{}", &j, &raw), 405);
	char *allow = http_header(&raw, "Allow");
	assert_non_null(allow);
	assert_non_null(strstr(allow, "POST"));
	free(allow);
	http_result_release(&raw);
	json_decref(j);
}

static void test_spawn_file(void **state)
{
	(void)state;
	char *id = spawn_running("counter", "counter.wasm", 0);
	json_t *a = get_actor(id);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "counter");
	assert_int_equal(strlen(json_string_value(json_object_get(a, "package_sha256"))), 64);
	json_decref(a);
	/* ETag and 304 */
	char *path = tu_fmt("/actors/%s", id);
	struct http_result raw;
	assert_int_equal(req("GET", path, NULL, NULL, &raw), 200);
	char *etag = http_header(&raw, "ETag");
	assert_non_null(etag);
	http_result_release(&raw);
	char *u = url(path), *inm = tu_fmt("If-None-Match: %s", etag);
	const char *h[] = {inm, NULL};
	assert_int_equal(http_do("GET", u, NULL, 0, h, &raw), 0);
	assert_int_equal(raw.status, 304);
	http_result_release(&raw);
	/* a weak tag and a list match too (RFC 9110 13.1.2); another tag does not */
	char *weak = tu_fmt("If-None-Match: W/%s", etag);
	char *list = tu_fmt("If-None-Match: \"other\", %s", etag);
	const char *other[] = {"If-None-Match: \"other\"", "If-None-Match: W/\"x\", \"y\""};
	const char *hw[] = {weak, NULL}, *hl[] = {list, NULL};
	assert_int_equal(http_do("GET", u, NULL, 0, hw, &raw), 0);
	assert_int_equal(raw.status, 304);
	http_result_release(&raw);
	assert_int_equal(http_do("GET", u, NULL, 0, hl, &raw), 0);
	assert_int_equal(raw.status, 304);
	http_result_release(&raw);
	for (size_t i = 0; i < 2; i++) {
		const char *ho[] = {other[i], NULL};
		assert_int_equal(http_do("GET", u, NULL, 0, ho, &raw), 0);
		assert_int_equal(raw.status, 200);
		http_result_release(&raw);
	}
	free(weak);
	free(list);
	/* the chain: spawned then started, with the merged initial state */
	json_t *page = chain_page(id);
	json_t *items = json_object_get(page, "items");
	assert_true(json_array_size(items) >= 2);
	json_t *first = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(first, "event_type")), "spawned");
	json_t *st = json_object_get(json_object_get(first, "data"), "initial_state");
	assert_int_equal(json_integer_value(json_object_get(st, "n")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "m")), 2);
	/* init ran (a `wasm` event), then `started`; each event links to the one before */
	json_t *init = json_array_get(items, 1);
	assert_string_equal(json_string_value(json_object_get(init, "event_type")), "wasm");
	assert_string_equal(json_string_value(json_object_get(json_object_get(init, "data"),
				"function")), "init");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 2),
				"event_type")), "started");
	assert_string_equal(json_string_value(json_object_get(init, "parent_hash")),
			    json_string_value(json_object_get(first, "hash")));
	json_decref(page);
	/* one event */
	char *ev = tu_fmt("/actors/%s/chain/events/1", id);
	json_t *e1 = NULL;
	assert_int_equal(req("GET", ev, NULL, &e1, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(e1, "seq")), 1);
	json_decref(e1);
	free(ev);
	ev = tu_fmt("/actors/%s/chain/events/99", id);
	assert_int_equal(req("GET", ev, NULL, NULL, NULL), 404);
	assert_verifies(id, 2);
	free(ev);
	/* No server path in the detail (it named the chain's file), and a seq beyond 64
	 * bits is malformed, not an event that was clamped to 2^64-1 and not found. */
	ev = tu_fmt("/actors/%s/chain/events/100", id);
	char *want = tu_fmt("actor '%s' has no event 100", id);
	expect_detail("GET", ev, NULL, 404, "not_found", want);
	free(want);
	free(ev);
	ev = tu_fmt("/actors/%s/chain/events/99999999999999999999", id);
	expect_detail("GET", ev, NULL, 400, "invalid_request", "from 1 to 18446744073709551615");
	free(ev);
	/* ?limit=: one message, the range really accepted, whichever side is missed */
	static const char *const bad_limits[] = {"0", "1001", "x", "-1", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
		ev = tu_fmt("/actors/%s/chain?limit=%s", id, bad_limits[i]);
		expect_detail("GET", ev, NULL, 400, "invalid_request",
			      "query parameter 'limit' must be an integer from 1 to 1000");
		free(ev);
		ev = tu_fmt("/store/demo-limits?limit=%s", bad_limits[i]);
		expect_detail("GET", ev, NULL, 400, "invalid_request",
			      "query parameter 'limit' must be an integer from 1 to 1000");
		free(ev);
	}
	ev = tu_fmt("/actors/%s/chain?limit=1000", id);
	assert_int_equal(req("GET", ev, NULL, NULL, NULL), 200);
	free(ev);
	free(inm);
	free(u);
	free(etag);
	free(path);
	free(id);
}

static void test_spawn_url_cache(void **state)
{
	(void)state;
	char *ref = tu_fmt("http://127.0.0.1:%u/static.wasm", fixture_httpd_port(E.web));
	char *a = spawn_running("s1", ref, 1);
	char *b = spawn_running("s2", ref, 1);
	assert_int_equal(fixture_httpd_hits(E.web, "/static.wasm"), 1);
	/* the second spawn says it was served from the cache */
	json_t *page = chain_page(b);
	json_t *pkg = json_object_get(json_object_get(json_array_get(json_object_get(page,
				"items"), 0), "data"), "package");
	assert_true(json_is_true(json_object_get(pkg, "from_cache")));
	json_decref(page);
	json_t *j = NULL;
	assert_int_equal(req("GET", "/packages", NULL, &j, NULL), 200);
	json_t *items = json_object_get(j, "items");
	int found = 0;
	for (size_t i = 0; i < json_array_size(items); i++)
		if (!strcmp(json_string_value(json_object_get(json_array_get(items, i),
				"reference")), ref)) {
			found = 1;
			assert_true(json_integer_value(json_object_get(json_array_get(items, i),
					"hits")) >= 1);
		}
	assert_true(found);
	json_decref(j);
	/* without static_package every spawn fetches */
	char *dyn = tu_fmt("http://127.0.0.1:%u/dynamic.wasm", fixture_httpd_port(E.web));
	free(spawn_running("d1", dyn, 0));
	free(spawn_running("d2", dyn, 0));
	assert_int_equal(fixture_httpd_hits(E.web, "/dynamic.wasm"), 2);
	free(dyn);
	free(a);
	free(b);
	free(ref);
}

static void test_store(void **state)
{
	(void)state;
	char *u = url("/store/demo");
	struct http_result r;
	assert_int_equal(http_do("POST", u, E.wasm, E.wasm_len, NULL, &r), 0);
	assert_int_equal(r.status, 201);
	json_t *j = json_loads(r.body, 0, NULL);
	http_result_release(&r);
	const char *ref = json_string_value(json_object_get(j, "reference"));
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	assert_non_null(ref);
	assert_int_equal(strncmp(ref, "store://demo/hash/", 18), 0);
	free(spawn_running("stored", ref, 0));
	/* the bytes come back, immutable */
	char *get = tu_fmt("/store/demo/hash/%s", sha);
	assert_int_equal(req("GET", get, NULL, NULL, &r), 200);
	assert_int_equal(r.len, E.wasm_len);
	assert_memory_equal(r.body, E.wasm, E.wasm_len);
	char *cc = http_header(&r, "Cache-Control");
	assert_non_null(strstr(cc, "immutable"));
	free(cc);
	http_result_release(&r);
	/* labels */
	char *lab = tu_fmt("{\"hash\":\"%s\"}", sha);
	assert_int_equal(req("PUT", "/store/demo/labels/latest", lab, NULL, NULL), 204);
	json_t *l = NULL;
	assert_int_equal(req("GET", "/store/demo/labels/latest", NULL, &l, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(l, "sha256")), sha);
	json_decref(l);
	free(spawn_running("labelled", "store://demo/latest", 0));
	/* bad ids and labels */
	json_t *p = NULL;
	assert_int_equal(req("GET", "/store/demo/labels/a%2Fb", NULL, &p, NULL), 400);
	assert_problem(p, "invalid_id");
	json_decref(p);
	assert_int_equal(req("POST", "/store/%2e%2e", "x", &p, NULL), 400);
	assert_problem(p, "invalid_id");
	json_decref(p);
	assert_int_equal(req("GET", "/store/demo/labels/nothing", NULL, &p, NULL), 404);
	json_decref(p);
	assert_int_equal(req("PUT", "/store/demo/labels/x", "not a hash", &p, NULL), 400);
	json_decref(p);
	/* An object with a key besides "hash" is refused, naming it (it was 204, the key
	 * ignored), and a body that opens like JSON but is not is malformed_json (it
	 * was the generic "must be a content hash"). */
	char *extra = tu_fmt("{\"hash\":\"%s\",\"x\":1}", sha);
	expect_detail("PUT", "/store/demo/labels/latest", extra, 400, "invalid_request",
		      "unknown key 'x'");
	free(extra);
	expect_detail("PUT", "/store/demo/labels/latest", "{\"hash\": ", 400, "malformed_json",
		      "malformed json");
	expect_detail("PUT", "/store/demo/labels/latest", "[1]", 400, "invalid_request",
		      "the body must be a content hash");
	assert_int_equal(req("PUT", "/store/demo/labels/other", "{}", &p, NULL), 400);
	json_decref(p);
	assert_int_equal(req("GET", "/store/demo/labels/other", NULL, &p, NULL), 404);
	json_decref(p);
	char *ref_body = tu_fmt("store://demo/hash/%s\n", sha);
	assert_int_equal(req("PUT", "/store/demo/labels/byref", ref_body, NULL, NULL), 204);
	free(ref_body);
	/* another store's reference, or a path that only ends in a hash, names what the
	 * label would not (the part before the hash was ignored) */
	char *elsewhere = tu_fmt("store://zzz/hash/%s", sha), *path_like = tu_fmt("a/b/%s", sha);
	expect_detail("PUT", "/store/demo/labels/byref", elsewhere, 400, "invalid_request",
		      "store://demo/hash/");
	expect_detail("PUT", "/store/demo/labels/byref", path_like, 400, "invalid_request",
		      "store://demo/hash/");
	free(elsewhere);
	free(path_like);
	assert_int_equal(req("PUT", "/store/demo/labels/bare", sha, NULL, NULL), 204);
	free(lab);
	free(get);
	json_decref(j);
	free(u);
	assert_alive();
}

static void test_manifest_ref(void **state)
{
	(void)state;
	char *path = tu_fmt("%s/counter.json", E.sp.roots);
	const char *m = "{\"name\":\"from-ref\",\"package\":\"counter.wasm\"}";
	assert_int_equal(tu_write_file(path, m, strlen(m)), 0);
	json_t *j = NULL;
	assert_int_equal(req("POST", "/actors?wait=running",
			     "{\"manifest_ref\":\"counter.json\"}", &j, NULL), 201);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "from-ref");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	assert_int_equal(req("POST", "/actors", "{\"manifest_ref\":\"nothere.json\"}", &j,
			     NULL), 404);
	assert_problem(j, "not_found");
	json_decref(j);
	free(path);
}

static void test_stop_kill_delete(void **state)
{
	(void)state;
	char *id = spawn_running("lifecycle", "counter.wasm", 0);
	char *stop = tu_fmt("/actors/%s/stop", id), *kill = tu_fmt("/actors/%s/kill", id);
	char *del = tu_fmt("/actors/%s", id), *force = tu_fmt("/actors/%s?force=true", id);
	assert_int_equal(req("DELETE", del, NULL, NULL, NULL), 409);
	assert_int_equal(req("POST", stop, NULL, NULL, NULL), 204);
	json_t *a = get_actor(id);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "stopped");
	json_decref(a);
	assert_int_equal(req("POST", stop, NULL, NULL, NULL), 304);
	json_t *p = NULL;
	assert_int_equal(req("POST", kill, NULL, &p, NULL), 409);
	assert_problem(p, "conflict");
	json_decref(p);
	/* exactly one terminal event */
	json_t *page = chain_page(id);
	json_t *items = json_object_get(page, "items");
	assert_int_equal(json_array_size(items), 4);     /* spawned, wasm (init), started, stopped */
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 3),
				"event_type")), "stopped");
	json_decref(page);
	assert_int_equal(req("DELETE", del, NULL, NULL, NULL), 204);
	assert_int_equal(req("GET", del, NULL, NULL, NULL), 404);
	assert_int_equal(req("DELETE", del, NULL, NULL, NULL), 404);
	char *file = tu_fmt("%s/chains/%s.chain", E.sp.home, id);
	struct stat sb;
	assert_int_equal(stat(file, &sb), 0);     /* the chain is kept */
	free(file);
	/* kill, and force-delete of a live actor */
	char *id2 = spawn_running("killme", "counter.wasm", 0);
	char *kill2 = tu_fmt("/actors/%s/kill", id2);
	assert_int_equal(req("POST", kill2, NULL, NULL, NULL), 204);
	a = get_actor(id2);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "killed");
	json_decref(a);
	char *id3 = spawn_running("forced", "counter.wasm", 0);
	char *force3 = tu_fmt("/actors/%s?force=true", id3);
	assert_int_equal(req("DELETE", force3, NULL, NULL, NULL), 204);
	free(force3);
	free(id3);
	free(kill2);
	free(id2);
	free(stop);
	free(kill);
	free(del);
	free(force);
	free(id);
}

static void test_list(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		free(spawn_running("listed", "counter.wasm", 0));
	json_t *j = NULL;
	assert_int_equal(req("GET", "/actors?name=listed&limit=2", NULL, &j, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
	const char *cursor = json_string_value(json_object_get(j, "next_cursor"));
	assert_non_null(cursor);
	char *next = tu_fmt("/actors?name=listed&limit=2&cursor=%s", cursor);
	json_t *k = NULL;
	assert_int_equal(req("GET", next, NULL, &k, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(k, "items")), 1);
	assert_true(json_is_null(json_object_get(k, "next_cursor")));
	json_decref(k);
	free(next);
	json_decref(j);
	assert_int_equal(req("GET", "/actors?status=running&limit=500", NULL, &j, NULL), 200);
	json_t *items = json_object_get(j, "items");
	for (size_t i = 0; i < json_array_size(items); i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(items, i),
					"status")), "running");
	json_decref(j);
	assert_int_equal(req("GET", "/actors?limit=0", NULL, &j, NULL), 400);
	json_decref(j);
	assert_int_equal(req("GET", "/actors?limit=501", NULL, &j, NULL), 400);
	json_decref(j);
	assert_int_equal(req("GET", "/actors?status=bogus", NULL, &j, NULL), 400);
	json_decref(j);
	assert_int_equal(req("GET", "/actors?cursor=garbage", NULL, &j, NULL), 400);
	json_decref(j);
}

static void test_bad_input(void **state)
{
	(void)state;
	char *keep = spawn_running("survivor", "counter.wasm", 0);
	json_t *j = NULL;
	assert_int_equal(req("POST", "/actors", "{\"manifest\": {", &j, NULL), 400);
	assert_problem(j, "malformed_json");
	json_decref(j);
	char *deep = malloc(20001);
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	deep[20000] = 0;
	assert_int_equal(req("POST", "/actors", deep, &j, NULL), 400);
	assert_problem(j, "too_deep");
	json_decref(j);
	free(deep);
	char *big = malloc(200001);
	memset(big, ' ', 200000);
	big[200000] = 0;
	assert_int_equal(req("POST", "/actors", big, &j, NULL), 413);
	assert_problem(j, "too_large");
	json_decref(j);
	free(big);
	assert_int_equal(req("POST", "/actors",
			     "{\"manifest\":{\"name\":\"x\",\"package\":\"a.wasm\",\"pakage\":1}}",
			     &j, NULL), 422);
	assert_problem(j, "unknown_key");
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "pakage"));
	json_decref(j);
	assert_int_equal(req("POST", "/actors", "{\"manifest\":{\"name\":\"x\"}}", &j, NULL), 422);
	assert_problem(j, "missing_field");
	json_decref(j);
	assert_int_equal(req("POST", "/actors", "{\"bogus\":1}", &j, NULL), 422);
	assert_problem(j, "unknown_key");
	json_decref(j);
	assert_int_equal(req("GET", "/actors/3f0e8a5e-0000-4000-8000-000000000000", NULL, &j,
			     NULL), 404);
	assert_problem(j, "not_found");
	json_decref(j);
	assert_int_equal(req("GET", "/actors/not-an-id", NULL, &j, NULL), 400);
	assert_problem(j, "invalid_id");
	json_decref(j);
	/* a path segment too long for any id: 400 (it was 404 "no route" from 512 bytes) */
	char *longseg = malloc(2100);
	memcpy(longseg, "/actors/", 8);
	memset(longseg + 8, 'a', 2000);
	longseg[2008] = 0;
	assert_int_equal(req("GET", longseg, NULL, &j, NULL), 400);
	assert_problem(j, "invalid_id");
	json_decref(j);
	free(longseg);
	/* queries: a malformed escape or %00 (libmicrohttpd kept '%ZZ' as it was and
	 * ended 'limit=1%00' at the NUL), one parameter twice (but `type`), a store
	 * cursor that no page gave; a body where the route takes none */
	static const char *const bad_queries[] = {
		"/actors?name=%ZZ", "/actors?name=%", "/actors?limit=1%00", "/actors?status=running%00",
		"/actors?limit=5&limit=6", "/store/nostore?cursor=bogus",
	};
	for (size_t i = 0; i < sizeof(bad_queries) / sizeof(bad_queries[0]); i++) {
		long st = req("GET", bad_queries[i], NULL, &j, NULL);
		if (st != 400)
			fail_msg("GET %s answered %ld, not 400", bad_queries[i], st);
		assert_problem(j, "invalid_request");
		json_decref(j);
	}
	char *twice = tu_fmt("/actors/%s/chain?type=wasm&type=started&limit=5", keep);
	assert_int_equal(req("GET", twice, NULL, &j, NULL), 200);   /* `type` repeats */
	json_decref(j);
	free(twice);
	char *sp = tu_fmt("/actors/%s/chain?limit=5", keep), *sl = url(sp);
	free(sp);
	const char *sse[] = {"Accept: text/event-stream", NULL};
	struct http_result sr;
	assert_int_equal(http_do("GET", sl, NULL, 0, sse, &sr), 0);
	assert_int_equal(sr.status, 400);        /* a stream has no pages: it was ignored */
	http_result_release(&sr);
	free(sl);
	char *stop = tu_fmt("/actors/%s/stop", keep);
	assert_int_equal(req("POST", stop, "x", &j, NULL), 413);
	assert_problem(j, "too_large");
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "takes no request body"));
	json_decref(j);
	free(stop);
	assert_alive();
	/* what stood before is untouched */
	json_t *a = get_actor(keep);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "running");
	json_decref(a);
	free(keep);
}

/* Spawns expecting the wait to report a failure with `code` and `status`. */
static void spawn_fails(const char *package, long status, const char *code)
{
	char *body = spawn_body("bad", package, 0);
	json_t *j = NULL;
	long got = req("POST", "/actors?wait=running&timeout=20", body, &j, NULL);
	if (got != status) {
		char *dump = j ? json_dumps(j, 0) : NULL;
		fail_msg("spawn of '%s': expected %ld, got %ld: %s", package, status, got,
			 dump ? dump : "");
	}
	assert_problem(j, code);
	const char *id = json_string_value(json_object_get(j, "actor_id"));
	assert_non_null(id);
	json_t *a = get_actor(id);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "failed");
	json_decref(a);
	assert_verifies(id, 1);
	json_decref(j);
	free(body);
}

static void test_bad_packages(void **state)
{
	(void)state;
	char *canary = tu_fmt("%s/../outside.wasm", E.sp.roots);
	assert_int_equal(tu_write_file(canary, E.wasm, E.wasm_len), 0);
	spawn_fails("../outside.wasm", 403, "path_forbidden");
	spawn_fails(canary, 403, "path_forbidden");
	spawn_fails("/etc/passwd", 403, "path_forbidden");
	spawn_fails("notwasm.wasm", 422, "not_wasm");
	spawn_fails("nothere.wasm", 404, "not_found");
	char *u = tu_fmt("http://127.0.0.1:%u/missing.wasm", fixture_httpd_port(E.web));
	spawn_fails(u, 502, "fetch_status");
	free(u);
	u = tu_fmt("http://127.0.0.1:%u/loop.wasm", fixture_httpd_port(E.web));
	spawn_fails(u, 502, "too_many_redirects");
	free(u);
	u = tu_fmt("http://127.0.0.1:%u/huge.wasm", fixture_httpd_port(E.web));
	spawn_fails(u, 413, "too_large");
	free(u);
	u = tu_fmt("http://127.0.0.1:%u/text.wasm", fixture_httpd_port(E.web));
	spawn_fails(u, 422, "not_wasm");
	free(u);
	unlink(canary);
	free(canary);
	assert_alive();
}

/* A ?wait=running spawn answered at its timeout, its package still downloading, is
 * a run from the answer on: listed as `starting`, and after a crash still there,
 * ended `failed` by the next start (it was an empty file the start removed). */
static void test_answered_at_timeout(void **state)
{
	(void)state;
	char *u = tu_fmt("http://127.0.0.1:%u/slow.wasm", fixture_httpd_port(E.web));
	char *body = spawn_body("slowpkg", u, 0);
	json_t *j = NULL;
	assert_int_equal(req("POST", "/actors?wait=running&timeout=1", body, &j, NULL), 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "starting");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	assert_int_equal(req("GET", "/actors?status=starting&name=slowpkg", NULL, &j, NULL), 200);
	json_t *items = json_object_get(j, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
			    id);
	json_decref(j);
	server_crash(&E.sp);                  /* the download is still waiting */
	start_server(E.sp.home);
	char *path = tu_fmt("/actors/%s", id);
	const char *st = NULL;
	for (int i = 0; i < 600; i++) {       /* recovery ends it once the server listens */
		j = NULL;
		assert_int_equal(req("GET", path, NULL, &j, NULL), 200);
		st = json_string_value(json_object_get(j, "status"));
		if (st && strcmp(st, "failed") == 0)
			break;
		json_decref(j);
		j = NULL;
		usleep(50000);
	}
	assert_non_null(j);
	assert_string_equal(st, "failed");
	const char *reason = json_string_value(json_object_get(j, "reason"));
	assert_non_null(reason);
	assert_int_equal(strncmp(reason, "server_restart", 14), 0);
	json_decref(j);
	free(path);
	free(id);
	free(body);
	free(u);
	assert_alive();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_ready_version),
		cmocka_unit_test(test_spawn_file),
		cmocka_unit_test(test_spawn_url_cache),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_manifest_ref),
		cmocka_unit_test(test_stop_kill_delete),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bad_packages),
		cmocka_unit_test(test_answered_at_timeout),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
