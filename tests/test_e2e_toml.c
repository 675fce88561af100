/* test_e2e_toml.c - end to end: TOML manifests against the real theater-server
 * on 127.0.0.1 (port 0, temporary THEATER_HOME): a TOML body on POST /actors,
 * manifest_ref naming a TOML file, URL (served here) and store entry with a
 * package relative to the manifest, POST /manifests/validate, GET
 * /actors/{id}/manifest, and bad input (every invalid case of the toml-test
 * suite, 10 MB, 10,000 nested inline tables, wrong types, unknown and
 * unsupported handlers, bad policies) with the server and the actors spawned
 * before still up after each. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

/* The smallest module the actor ABI (docs/actor-abi.md) accepts: init keeps
 * the state it is given. */
static const char *MODULE_WAT =
	"(module (memory (export \"memory\") 1)"
	" (global $heap (mut i32) (i32.const 1024))"
	" (func (export \"theater_abi_version\") (result i32) (i32.const 1))"
	" (func (export \"theater_reset_heap\") (global.set $heap (i32.const 1024)))"
	" (func (export \"theater_alloc\") (param $n i32) (result i32) (local $p i32)"
	"  (local.set $p (global.get $heap))"
	"  (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))"
	" (func (export \"init\") (param $sp i32) (param $sl i32) (result i32)"
	"  (i32.store (i32.const 16) (i32.const 0))"
	"  (i32.store (i32.const 20) (local.get $sp))"
	"  (i32.store (i32.const 24) (local.get $sl))"
	"  (i32.store (i32.const 28) (i32.const 0))"
	"  (i32.store (i32.const 32) (i32.const 0))"
	"  (i32.const 16)))";

static const char *TOML_CT = "Content-Type: application/toml";
static const char *JSON_CT = "Content-Type: application/json";

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
	unsigned char *wasm;
	size_t wasm_len;
	char *survivor;          /* spawned first; must stay running through everything */
};

static struct env E;

/* ---- helpers ---- */

static long req_ct(const char *method, const char *path, const char *ct, const char *body,
		   size_t len, json_t **json_out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	struct http_result r;
	const char *h[] = {ct, NULL};
	assert_int_equal(http_do(method, u, body, len, ct ? h : NULL, &r), 0);
	free(u);
	if (json_out)
		*json_out = json_loadb(r.body, r.len, 0, NULL);
	long status = r.status;
	http_result_release(&r);
	return status;
}

static long req(const char *method, const char *path, const char *ct, const char *body,
		json_t **json_out)
{
	return req_ct(method, path, ct, body, body ? strlen(body) : 0, json_out);
}

static char *dump(const json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT) : strdup("(no json)");
}

static void assert_problem(json_t *j, const char *code, const char *detail_part)
{
	const char *got = json_string_value(json_object_get(j, "code"));
	const char *detail = json_string_value(json_object_get(j, "detail"));
	if (!got || strcmp(got, code) != 0 || !detail ||
	    (detail_part && !strstr(detail, detail_part)))
		fail_msg("expected problem '%s' with '%s', got %s", code,
			 detail_part ? detail_part : "", dump(j));
}

/* Spawns with the given body and content type, expecting a running actor. */
static char *spawn_ok(const char *ct, const char *body, json_t **actor_out)
{
	json_t *j = NULL;
	long st = req("POST", "/actors?wait=running&timeout=20", ct, body, &j);
	if (st != 201 || strcmp(json_string_value(json_object_get(j, "status")), "running"))
		fail_msg("spawn answered %ld: %s", st, dump(j));
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	if (actor_out)
		*actor_out = j;
	else
		json_decref(j);
	return id;
}

static json_t *get_json(const char *path, long want)
{
	json_t *j = NULL;
	long st = req("GET", path, NULL, NULL, &j);
	if (st != want)
		fail_msg("GET %s answered %ld, want %ld: %s", path, st, want, dump(j));
	return j;
}

static size_t count_actors(void)
{
	json_t *j = get_json("/actors?limit=500", 200);
	size_t n = json_array_size(json_object_get(j, "items"));
	json_decref(j);
	return n;
}

/* The server answers, and the first actor is still running. */
static void assert_intact(void)
{
	json_t *h = get_json("/health", 200);
	json_decref(h);
	char *path = tu_fmt("/actors/%s", E.survivor);
	json_t *a = get_json(path, 200);
	assert_string_equal(json_string_value(json_object_get(a, "status")), "running");
	json_decref(a);
	free(path);
}

static void write_root_file(const char *rel, const void *data, size_t len)
{
	char *p = tu_fmt("%s/%s", E.sp.roots, rel);
	assert_int_equal(tu_write_file(p, data, len), 0);
	free(p);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = s ? strlen(s) : 0, m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	E.wasm = wat_compile(MODULE_WAT, &E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	const char *args[] = {"--max-body", "64K", "--fetch-allow-private", NULL};
	assert_int_equal(server_start(&E.sp, NULL, args, NULL), 0);
	write_root_file("counter.wasm", E.wasm, E.wasm_len);
	char *apps = tu_fmt("%s/apps", E.sp.roots);
	mkdir(apps, 0755);
	free(apps);
	write_root_file("apps/app.wasm", E.wasm, E.wasm_len);
	E.survivor = spawn_ok(TOML_CT, "name = \"survivor\"\npackage = \"counter.wasm\"\n", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	server_destroy(&E.sp);
	fixture_httpd_stop(E.web);
	free(E.wasm);
	free(E.survivor);
	return 0;
}

/* ---- tests ---- */

static void test_spawn_toml_body(void **state)
{
	(void)state;
	const char *toml =
		"# a theater manifest, as theater's users write it\n"
		"name = \"toml-counter\"\n"
		"version = \"0.1.0\"\n"
		"package = \"counter.wasm\"\n"
		"description = \"counts\"\n"
		"save_chain = true\n"
		"\n"
		"[initial_state]\n"
		"count = 7\n"
		"\n"
		"[[handler]]\n"
		"type = \"runtime\"\n"
		"\n"
		"[[handler]]\n"
		"type = \"timing\"\n"
		"max_sleep_duration = 1000\n"
		"min_sleep_duration = 1\n"
		"\n"
		"[permission_policy.timing]\n"
		"type = \"restrict\"\n"
		"config = { max_sleep_duration = 500, min_sleep_duration = 1 }\n";
	json_t *a = NULL;
	char *id = spawn_ok(TOML_CT, toml, &a);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "toml-counter");
	assert_true(ends_with(json_string_value(json_object_get(a, "package_ref")),
			      "/counter.wasm"));
	json_decref(a);
	/* the manifest comes back as JSON: the same model */
	char *path = tu_fmt("/actors/%s/manifest", id);
	json_t *m = get_json(path, 200);
	json_t *want = json_loads(
		"{\"name\":\"toml-counter\",\"version\":\"0.1.0\",\"package\":\"counter.wasm\","
		"\"description\":\"counts\",\"save_chain\":true,\"initial_state\":{\"count\":7},"
		"\"handler\":[{\"type\":\"runtime\"},{\"type\":\"timing\","
		"\"max_sleep_duration\":1000,\"min_sleep_duration\":1}],"
		"\"permission_policy\":{\"timing\":{\"type\":\"restrict\",\"config\":"
		"{\"max_sleep_duration\":500,\"min_sleep_duration\":1}}}}", 0, NULL);
	if (!json_equal(m, want))
		fail_msg("manifest: %s", dump(m));
	json_decref(want);
	json_decref(m);
	free(path);
	/* the chain's spawned event holds the JSON form and the initial state */
	char *chain = tu_fmt("/actors/%s/chain?limit=10", id);
	json_t *page = get_json(chain, 200);
	json_t *spawned = json_object_get(json_array_get(json_object_get(page, "items"), 0),
					  "data");
	assert_string_equal(json_string_value(json_object_get(json_object_get(spawned,
				"manifest"), "name")), "toml-counter");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(spawned,
				"initial_state"), "count")), 7);
	json_decref(page);
	free(chain);
	/* other TOML media types, and a charset parameter */
	free(spawn_ok("Content-Type: text/toml; charset=utf-8",
		      "name = \"t2\"\ncomponent = \"counter.wasm\"\n", NULL));
	free(spawn_ok("Content-Type: application/x-toml", "name = 't3'\npackage = 'counter.wasm'\n",
		      NULL));
	/* a manifest given as JSON comes back as given */
	char *jid = spawn_ok(JSON_CT, "{\"manifest\":{\"name\":\"j\",\"package\":\"counter.wasm\","
				      "\"static_package\":false}}", NULL);
	path = tu_fmt("/actors/%s/manifest", jid);
	m = get_json(path, 200);
	want = json_loads("{\"name\":\"j\",\"package\":\"counter.wasm\",\"static_package\":false}",
			  0, NULL);
	assert_true(json_equal(m, want));
	json_decref(want);
	json_decref(m);
	free(path);
	free(jid);
	/* GET manifest of nothing */
	json_t *p = get_json("/actors/3f0e8a5e-0000-4000-8000-000000000000/manifest", 404);
	assert_problem(p, "not_found", NULL);
	json_decref(p);
	p = get_json("/actors/nope/manifest", 400);
	assert_problem(p, "invalid_id", NULL);
	json_decref(p);
	/* a content type that is neither */
	assert_int_equal(req("POST", "/actors", "Content-Type: text/yaml", "name: x", &p), 415);
	assert_problem(p, "unsupported", "application/toml");
	json_decref(p);
	free(id);
	assert_intact();
}

/* manifest_ref to a TOML file; the package is relative to the manifest. */
static void test_manifest_ref_file(void **state)
{
	(void)state;
	const char *m = "name = \"from-file\"\npackage = \"./app.wasm\"\n"
			"initial_state = { a = 1, b = 1 }\n[[handler]]\ntype = \"runtime\"\n";
	write_root_file("apps/app.toml", m, strlen(m));
	json_t *a = NULL;
	char *id = spawn_ok(JSON_CT, "{\"manifest_ref\":\"apps/app.toml\",\"initial_state\":"
				     "{\"b\":2}}", &a);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "from-file");
	if (!ends_with(json_string_value(json_object_get(a, "package_ref")), "/apps/app.wasm"))
		fail_msg("package_ref: %s", dump(a));
	assert_string_equal(json_string_value(json_object_get(a, "manifest_ref")), "apps/app.toml");
	json_decref(a);
	char *chain = tu_fmt("/actors/%s/chain?limit=10", id);
	json_t *page = get_json(chain, 200);
	json_t *st = json_object_get(json_object_get(json_array_get(json_object_get(page,
			"items"), 0), "data"), "initial_state");
	assert_int_equal(json_integer_value(json_object_get(st, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "b")), 2);   /* spawn-time wins */
	json_decref(page);
	free(chain);
	char *path = tu_fmt("/actors/%s/manifest", id);
	json_t *mj = get_json(path, 200);
	assert_string_equal(json_string_value(json_object_get(mj, "package")), "./app.wasm");
	json_decref(mj);
	free(path);
	free(id);
	/* the reference's form: initial_state as JSON text, merged the same way */
	const char *ref = "name = \"ref-form\"\nversion = \"0.1.0\"\npackage = \"./app.wasm\"\n"
			  "initial_state = '{\"a\": 1, \"b\": 1, \"nested\": {\"x\": true}}'\n"
			  "[[handler]]\ntype = \"runtime\"\n";
	write_root_file("apps/ref.toml", ref, strlen(ref));
	id = spawn_ok(JSON_CT, "{\"manifest_ref\":\"apps/ref.toml\",\"initial_state\":"
			       "{\"b\":2}}", NULL);
	chain = tu_fmt("/actors/%s/chain?limit=10", id);
	page = get_json(chain, 200);
	st = json_object_get(json_object_get(json_array_get(json_object_get(page, "items"), 0),
					     "data"), "initial_state");
	if (!json_is_object(st))
		fail_msg("initial_state: %s", dump(page));
	assert_int_equal(json_integer_value(json_object_get(st, "a")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "b")), 2);
	assert_true(json_is_true(json_object_get(json_object_get(st, "nested"), "x")));
	json_decref(page);
	free(chain);
	free(id);
	/* no extension: TOML because it does not start with '{' */
	write_root_file("apps/manifest", m, strlen(m));
	free(spawn_ok(JSON_CT, "{\"manifest_ref\":\"apps/manifest\"}", NULL));
	/* an absolute manifest path works the same */
	char *body = tu_fmt("{\"manifest_ref\":\"%s/apps/app.toml\"}", E.sp.roots);
	free(spawn_ok(JSON_CT, body, NULL));
	free(body);
	/* a bad TOML file by reference: the error names the file and the line */
	const char *bad = "name = \"x\"\npackage = \"app.wasm\"\n[[handler]]\ntype = \"runtime\"\n"
			  "colour = \"blue\"\n";
	write_root_file("apps/bad.toml", bad, strlen(bad));
	json_t *p = NULL;
	assert_int_equal(req("POST", "/actors", JSON_CT, "{\"manifest_ref\":\"apps/bad.toml\"}",
			     &p), 422);
	assert_problem(p, "unknown_key", "apps/bad.toml:5:10: unknown key 'colour'");
	json_decref(p);
	assert_int_equal(req("POST", "/actors", JSON_CT, "{\"manifest_ref\":\"apps/none.toml\"}",
			     &p), 404);
	assert_problem(p, "not_found", NULL);
	json_decref(p);
	assert_intact();
}

/* manifest_ref to a URL: the package next to it is fetched from the same place. */
static void test_manifest_ref_url(void **state)
{
	(void)state;
	const char *m = "name = \"from-url\"\npackage = \"pkg.wasm\"\nstatic_package = false\n";
	fixture_httpd_add_bytes(E.web, "/m/app.toml", m, strlen(m));
	fixture_httpd_add_bytes(E.web, "/m/pkg.wasm", E.wasm, E.wasm_len);
	const char *m2 = "name = \"up\"\npackage = \"../lib/pkg.wasm\"\n";
	fixture_httpd_add_bytes(E.web, "/m/sub/up.toml", m2, strlen(m2));
	fixture_httpd_add_bytes(E.web, "/m/lib/pkg.wasm", E.wasm, E.wasm_len);
	char *ref = fixture_httpd_url(E.web, "/m/app.toml");
	char *body = tu_fmt("{\"manifest_ref\":\"%s\"}", ref);
	json_t *a = NULL;
	char *id = spawn_ok(JSON_CT, body, &a);
	char *want = fixture_httpd_url(E.web, "/m/pkg.wasm");
	assert_string_equal(json_string_value(json_object_get(a, "package_ref")), want);
	assert_int_equal(fixture_httpd_hits(E.web, "/m/pkg.wasm"), 1);
	json_decref(a);
	free(want);
	free(body);
	free(ref);
	free(id);
	ref = fixture_httpd_url(E.web, "/m/sub/up.toml");
	body = tu_fmt("{\"manifest_ref\":\"%s\"}", ref);
	id = spawn_ok(JSON_CT, body, &a);
	want = fixture_httpd_url(E.web, "/m/lib/pkg.wasm");
	assert_string_equal(json_string_value(json_object_get(a, "package_ref")), want);
	json_decref(a);
	free(want);
	free(body);
	free(ref);
	free(id);
	assert_intact();
}

static char *store_put(const char *store, const void *data, size_t len)
{
	char *path = tu_fmt("/store/%s", store);
	json_t *j = NULL;
	assert_int_equal(req_ct("POST", path, "Content-Type: application/octet-stream", data, len,
				&j), 201);
	char *hash = strdup(json_string_value(json_object_get(j, "sha256")));
	json_decref(j);
	free(path);
	return hash;
}

static void store_label(const char *store, const char *label, const char *hash)
{
	char *path = tu_fmt("/store/%s/labels/%s", store, label);
	char *body = tu_fmt("{\"hash\":\"%s\"}", hash);
	assert_int_equal(req("PUT", path, JSON_CT, body, NULL), 204);
	free(body);
	free(path);
}

/* manifest_ref to a store entry: a relative package is a label of that store. */
static void test_manifest_ref_store(void **state)
{
	(void)state;
	char *wasm_hash = store_put("apps", E.wasm, E.wasm_len);
	store_label("apps", "counter-v1", wasm_hash);
	const char *m = "name = \"from-store\"\npackage = \"counter-v1\"\n";
	char *m_hash = store_put("apps", m, strlen(m));
	store_label("apps", "counter-manifest", m_hash);
	json_t *a = NULL;
	char *id = spawn_ok(JSON_CT, "{\"manifest_ref\":\"store://apps/counter-manifest\"}", &a);
	assert_string_equal(json_string_value(json_object_get(a, "name")), "from-store");
	assert_string_equal(json_string_value(json_object_get(a, "package_ref")),
			    "store://apps/counter-v1");
	assert_string_equal(json_string_value(json_object_get(a, "package_sha256")), wasm_hash);
	json_decref(a);
	free(id);
	/* by hash, with the package by hash relative to the same store */
	char *m2 = tu_fmt("name = \"by-hash\"\npackage = \"hash/%s\"\n", wasm_hash);
	char *m2_hash = store_put("apps", m2, strlen(m2));
	char *body = tu_fmt("{\"manifest_ref\":\"store://apps/hash/%s\"}", m2_hash);
	id = spawn_ok(JSON_CT, body, &a);
	char *want = tu_fmt("store://apps/hash/%s", wasm_hash);
	assert_string_equal(json_string_value(json_object_get(a, "package_ref")), want);
	json_decref(a);
	free(want);
	free(body);
	free(m2_hash);
	free(m2);
	free(id);
	free(m_hash);
	free(wasm_hash);
	assert_intact();
}

static json_t *validate(const char *ct, const char *body, long want_status)
{
	json_t *j = NULL;
	long st = req("POST", "/manifests/validate", ct, body, &j);
	if (st != want_status)
		fail_msg("validate answered %ld, want %ld: %s", st, want_status, dump(j));
	return j;
}

/* The problem list has an entry with this code and path (and line, when > 0). */
static void assert_has_problem(json_t *v, const char *code, const char *path, int line)
{
	json_t *probs = json_object_get(v, "problems");
	for (size_t i = 0; i < json_array_size(probs); i++) {
		json_t *p = json_array_get(probs, i);
		if (strcmp(json_string_value(json_object_get(p, "code")), code) == 0 &&
		    strcmp(json_string_value(json_object_get(p, "path")), path) == 0 &&
		    (line == 0 || json_integer_value(json_object_get(p, "line")) == line)) {
			assert_non_null(json_string_value(json_object_get(p, "message")));
			return;
		}
	}
	fail_msg("no problem %s at %s (line %d) in %s", code, path, line, dump(v));
}

static void test_validate(void **state)
{
	(void)state;
	size_t before = count_actors();
	/* valid TOML: the JSON form comes back */
	json_t *v = validate(TOML_CT, "name = \"ok\"\npackage = \"counter.wasm\"\n"
				      "[[handler]]\ntype = \"store\"\n", 200);
	assert_true(json_is_true(json_object_get(v, "valid")));
	assert_string_equal(json_string_value(json_object_get(v, "format")), "toml");
	assert_int_equal(json_array_size(json_object_get(v, "problems")), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "manifest"),
				"name")), "ok");
	json_decref(v);
	/* several problems, all of them, with positions */
	const char *bad =
		"name = 42\n"                              /* 1 wrong type */
		"pakage = \"counter.wasm\"\n"              /* 2 unknown key (+ missing package) */
		"[[handler]]\n"                            /* 3 */
		"tpye = \"runtime\"\n"                     /* 4 unknown key, type missing */
		"[[handler]]\n"                            /* 5 */
		"type = \"teleport\"\n"                    /* 6 unknown handler */
		"[[handler]]\n"                            /* 7 */
		"type = \"process\"\n"                     /* 8 unsupported */
		"[permission_policy.timing]\n"             /* 9 */
		"type = \"sometimes\"\n";                  /* 10 bad policy type */
	v = validate(TOML_CT, bad, 200);
	assert_true(json_is_false(json_object_get(v, "valid")));
	assert_has_problem(v, "wrong_type", "name", 1);
	assert_has_problem(v, "unknown_key", "pakage", 2);
	assert_has_problem(v, "missing_field", "package", 0);
	assert_has_problem(v, "unknown_key", "handler[0].tpye", 4);
	assert_has_problem(v, "missing_field", "handler[0].type", 3);
	assert_has_problem(v, "unknown_handler", "handler[1].type", 6);
	assert_has_problem(v, "unsupported_handler", "handler[2].type", 8);
	assert_has_problem(v, "invalid_value", "permission_policy.timing.type", 10);
	assert_int_equal(json_array_size(json_object_get(v, "problems")), 8);
	assert_int_equal(json_integer_value(json_object_get(v, "problem_count")), 8);
	assert_null(json_object_get(v, "manifest"));
	json_decref(v);
	/* TOML that does not parse: one problem, where */
	v = validate(TOML_CT, "name = \"x\"\npackage = = 1\n", 200);
	assert_has_problem(v, "invalid_toml", "", 2);
	json_decref(v);
	/* a JSON manifest as the body, and inside the spawn envelope */
	v = validate(JSON_CT, "{\"name\":\"j\",\"package\":\"counter.wasm\"}", 200);
	assert_true(json_is_true(json_object_get(v, "valid")));
	assert_string_equal(json_string_value(json_object_get(v, "format")), "json");
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest\":{\"name\":\"j\",\"pakage\":\"x\",\"handler\":"
			      "[{\"type\":\"filesystem\"}]}}", 200);
	assert_true(json_is_false(json_object_get(v, "valid")));
	assert_has_problem(v, "unknown_key", "pakage", 0);
	assert_has_problem(v, "missing_field", "package", 0);
	assert_has_problem(v, "unsupported_handler", "handler[0].type", 0);
	assert_null(json_object_get(json_array_get(json_object_get(v, "problems"), 0), "line"));
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest\": [", 200);
	assert_has_problem(v, "malformed_json", "", 0);
	json_decref(v);
	/* by reference: fetched, checked, and where the package resolves */
	const char *m = "name = \"ref\"\npackage = \"app.wasm\"\n";
	write_root_file("apps/valid.toml", m, strlen(m));
	v = validate(JSON_CT, "{\"manifest_ref\":\"apps/valid.toml\"}", 200);
	assert_true(json_is_true(json_object_get(v, "valid")));
	assert_string_equal(json_string_value(json_object_get(v, "package_ref")), "apps/app.wasm");
	assert_string_equal(json_string_value(json_object_get(v, "manifest_ref")),
			    "apps/valid.toml");
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest_ref\":\"apps/bad.toml\"}", 200);
	assert_has_problem(v, "unknown_key", "handler[0].colour", 5);
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest_ref\":\"apps/missing.toml\"}", 404);
	assert_problem(v, "not_found", "apps/missing.toml");
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest_ref\":\"x\",\"manifest\":{}}", 400);
	json_decref(v);
	v = validate(JSON_CT, "{\"manifest_ref\":\"x\",\"extra\":1}", 422);
	assert_problem(v, "unknown_key", "extra");
	json_decref(v);
	v = validate("Content-Type: text/plain", "name = 'x'", 415);
	assert_problem(v, "unsupported", NULL);
	json_decref(v);
	/* validation spawns nothing */
	assert_int_equal(count_actors(), before);
	assert_intact();
}

/* Spawning a bad TOML body (len 0: strlen) fails with `status` and `code`
 * (detail containing `part`), creates no run, and leaves everything else as
 * it was. */
static void spawn_fails(const char *body, size_t len, long status, const char *code,
			const char *part)
{
	size_t before = count_actors();
	json_t *j = NULL;
	long st = req_ct("POST", "/actors?wait=running", TOML_CT, body, len ? len : strlen(body),
			 &j);
	if (st != status)
		fail_msg("expected %ld %s, got %ld: %s", status, code, st, dump(j));
	assert_problem(j, code, part);
	json_decref(j);
	assert_int_equal(count_actors(), before);
	assert_intact();
}

static void test_bad_input(void **state)
{
	(void)state;
	const char *id = "name = \"bad\"\npackage = \"counter.wasm\"\n";
	char *t;
	spawn_fails("name = 42\npackage = \"counter.wasm\"\n", 0, 422, "invalid_manifest",
		    "manifest:1:8: manifest field 'name' must be a string, found an integer");
	t = tu_fmt("%sstatic_package = \"yes\"\n", id);
	spawn_fails(t, 0, 422, "invalid_manifest", "manifest:3:18:");
	free(t);
	spawn_fails("package = \"counter.wasm\"\n", 0, 422, "missing_field", "'name'");
	spawn_fails("name = \"x\"\n", 0, 422, "missing_field", "'package'");
	t = tu_fmt("%s[[handler]]\ntype = \"teleport\"\n", id);
	spawn_fails(t, 0, 422, "invalid_manifest",
		    "manifest:4:8: unknown handler type 'teleport'");
	free(t);
	t = tu_fmt("%s[[handler]]\ntype = \"filesystem\"\npath = \"/tmp\"\n"
		   "[[handler]]\ntype = \"process\"\n", id);
	spawn_fails(t, 0, 422, "invalid_manifest", "manifest uses handler types that "
		    "this server does not implement yet: 'filesystem', 'process'");
	free(t);
	t = tu_fmt("%s[permission_policy.file_system]\ntype = \"grant-all\"\n", id);
	spawn_fails(t, 0, 422, "invalid_manifest", "manifest:4:8: manifest field "
		    "'permission_policy.file_system.type' must be one of");
	free(t);
	t = tu_fmt("%s[permission_policy.file_sytem]\ntype = \"disallow\"\n", id);
	spawn_fails(t, 0, 422, "unknown_key", "did you mean 'file_system'?");
	free(t);
	spawn_fails("name = \"x\"\npackage = counter.wasm\n", 0, 400, "invalid_request",
		    "manifest:2:11:");
	/* 10,000 nested inline tables (fits the 64 KiB body limit) */
	size_t n = 10000, len = 0;
	char *deep = malloc(100 + 6 * n);
	len = (size_t)sprintf(deep, "%sinitial_state = ", id);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(deep + len, "{a=");
	deep[len++] = '1';
	memset(deep + len, '}', n);
	len += n;
	spawn_fails(deep, len, 400, "too_deep", "manifest:3:");
	free(deep);
	/* 10 MB: the body limit, and a manifest_ref file */
	size_t big = 10u << 20;
	char *huge = malloc(big);
	memset(huge, '#', big);
	spawn_fails(huge, big, 413, "too_large", NULL);
	write_root_file("huge.toml", huge, big);
	free(huge);
	size_t before = count_actors();
	json_t *j = NULL;
	assert_int_equal(req("POST", "/actors", JSON_CT, "{\"manifest_ref\":\"huge.toml\"}", &j),
			 413);
	assert_problem(j, "too_large", "huge.toml");
	json_decref(j);
	assert_int_equal(req("POST", "/manifests/validate", JSON_CT,
			     "{\"manifest_ref\":\"huge.toml\"}", &j), 413);
	json_decref(j);
	assert_int_equal(count_actors(), before);
	assert_intact();
}

/* Every invalid case of the toml-test suite as a spawn body and as a
 * validation: refused with a position, and the server stays up. */
static void test_toml_suite_invalid(void **state)
{
	(void)state;
	const char *env = getenv("THEATER_TOML_TEST");
	char *dir = env && *env ? strdup(env) : tu_fmt("%s/../shared/toml-test", tu_source_dir());
	char *list_path = tu_fmt("%s/files-toml-1.0.0", dir);
	char *list = tu_read_file(list_path, NULL);
	free(list_path);
	if (!list) {
		free(dir);
		skip();   /* the suite lives outside the repository */
	}
	size_t before = count_actors();
	int cases = 0;
	for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "invalid/", 8) != 0 || !ends_with(line, ".toml"))
			continue;
		char *path = tu_fmt("%s/%s", dir, line);
		size_t len;
		char *text = tu_read_file(path, &len);
		assert_non_null(text);
		json_t *j = NULL;
		long st = req_ct("POST", "/actors", TOML_CT, text, len, &j);
		const char *code = json_string_value(json_object_get(j, "code"));
		if (st != 400 || !code || (strcmp(code, "invalid_request") && strcmp(code, "too_deep")))
			fail_msg("%s: answered %ld %s", line, st, dump(j));
		assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "manifest:"));
		json_decref(j);
		if (cases % 8 == 0) {     /* and through validation (a sample, to stay quick) */
			st = req_ct("POST", "/manifests/validate", TOML_CT, text, len, &j);
			assert_int_equal(st, 200);
			assert_true(json_is_false(json_object_get(j, "valid")));
			json_decref(j);
		}
		cases++;
		free(text);
		free(path);
	}
	assert_true(cases > 300);
	assert_int_equal(count_actors(), before);
	free(list);
	free(dir);
	assert_intact();
}

/* Last: the server exits cleanly on SIGTERM; in the ASan build a leak or a
 * memory error in the server would make this fail (and shows its log). */
static void test_clean_exit(void **state)
{
	(void)state;
	int rc = server_stop(&E.sp);
	char *log = tu_read_file(E.sp.log_path, NULL);
	if (rc != 0 || (log && strstr(log, "Sanitizer")))
		fail_msg("server exited with %d; its log:\n%s", rc, log ? log : "(none)");
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_toml_body),
		cmocka_unit_test(test_manifest_ref_file),
		cmocka_unit_test(test_manifest_ref_url),
		cmocka_unit_test(test_manifest_ref_store),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_toml_suite_invalid),
		cmocka_unit_test(test_clean_exit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
