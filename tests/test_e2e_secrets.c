/* test_e2e_secrets.c - end to end: secrets (PUT/GET/DELETE /secrets), the
 * environment interface that reads granted secrets, http-client header
 * templates ({{secret:NAME}}) and the per-actor loopback allowance, against
 * a real theater-server on 127.0.0.1 and a fixture endpoint.
 *
 * The central test sets a random secret, has an actor use it through a
 * header template against a fixture that checks the header, and then
 * searches every file under THEATER_HOME (the database, its WAL, the chains,
 * the store, the server's log at debug level) and every API answer for the
 * value and its base64 and hex forms: the only file that may hold it is the
 * secret's own file.
 *
 * The actor is tests/actors/host_driver.c built with -DTHEATER_DRIVER_ENV.
 * The server runs WITHOUT --http-allow-private: the fixture on 127.0.0.1 is
 * reached only through a handler's allow_loopback_ports.
 */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/crypto.h"
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


/* One request; the answer's status, and its body as text (malloc'd). */
static long call(const char *method, const char *path, const void *body, size_t len,
		 const char *ctype, char **text_out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	char *hdr = tu_fmt("Content-Type: %s", ctype ? ctype : "application/json");
	const char *h[] = {hdr, NULL};
	struct http_result r;
	assert_int_equal(http_do(method, u, body, len, h, &r), 0);
	if (text_out)
		*text_out = strndup(r.body ? r.body : "", r.len);
	long st = r.status;
	http_result_release(&r);
	free(hdr);
	free(u);
	return st;
}

static json_t *call_json(const char *method, const char *path, const char *body, long want)
{
	char *text = NULL;
	long st = call(method, path, body, body ? strlen(body) : 0, NULL, &text);
	if (st != want)
		fail_msg("%s %s answered %ld, not %ld: %s", method, path, st, want, text);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	return j;
}

static void put_secret(const char *name, const char *value, long want)
{
	char *path = tu_fmt("/secrets/%s", name);
	char *text = NULL;
	long st = call("PUT", path, value, strlen(value), "application/octet-stream", &text);
	if (st != want)
		fail_msg("PUT %s answered %ld, not %ld: %s", path, st, want, text);
	free(text);
	free(path);
}

/* Every interface the driver imports but http-client and environment. */
#define BASE_HANDLERS                                                                  \
	"{\"type\":\"runtime\"},{\"type\":\"message-server\"},{\"type\":\"timing\"},"     \
	"{\"type\":\"random\"},{\"type\":\"store\"},{\"type\":\"supervisor\"}"

/* Spawns the driver with these http-client and environment handlers (NULL:
 * the handler without settings) and an optional permission_policy; returns
 * its id. */
static char *spawn(const char *name, const char *http, const char *envh, const char *policy)
{
	char *body = tu_fmt("{\"manifest\":{\"name\":\"%s\",\"package\":\"driver.wasm\","
			    "\"handler\":[" BASE_HANDLERS ",%s,%s]%s%s}}", name,
			    http ? http : "{\"type\":\"http-client\"}",
			    envh ? envh : "{\"type\":\"environment\"}",
			    policy ? ",\"permission_policy\":" : "", policy ? policy : "");
	json_t *j = call_json("POST", "/actors?wait=running&timeout=30", body, 201);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	return id;
}

static char *cmd(const char *id, const char *command)
{
	char *path = tu_fmt("/actors/%s/requests?timeout=60", id);
	char *text = NULL;
	long st = call("POST", path, command, strlen(command), "text/plain", &text);
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

static int answer_rc(const char *answer, const char **rest)
{
	char *end;
	long rc = strtol(answer, &end, 10);
	if (rest)
		*rest = *end == ' ' ? end + 1 : end;
	return (int)rc;
}

/* The data of the last event of this type in the chain (new reference). */
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
	return json_string_value(json_object_get(json_object_get(ev, "output"), "error"));
}

/* A random value of 40 hex digits (it must not occur anywhere by chance). */
static void random_value(char out[41])
{
	uint8_t b[20];
	assert_int_equal(random_bytes(b, sizeof(b)), ERR_OK);
	hex_encode(b, sizeof(b), out);
}

/* The forms a leak may take: raw, base64, hex (both cases). */
struct forms {
	char *v[5];
	size_t n;
};

static void forms_of(const char *value, struct forms *f)
{
	size_t n = strlen(value);
	char *hex = malloc(2 * n + 1), *up = malloc(2 * n + 1);
	hex_encode((const uint8_t *)value, n, hex);
	for (size_t i = 0; i <= 2 * n; i++)
		up[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
	f->v[0] = strdup(value);
	f->v[1] = base64_encode(value, n);
	f->v[2] = hex;
	f->v[3] = up;
	f->n = 4;
}

static void forms_release(struct forms *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i]);
}

static int holds(const char *data, size_t len, const struct forms *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (memmem(data, len, f->v[i], strlen(f->v[i])))
			return 1;
	return 0;
}

/* Every regular file under dir that holds a form of the value, into hits
 * (paths relative to root), counting the files searched. */
static void search_tree(const char *root, const char *dir, const struct forms *f, json_t *hits,
			size_t *searched)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = tu_fmt("%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(lstat(p, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			search_tree(root, p, f, hits, searched);
		} else if (S_ISREG(st.st_mode)) {
			size_t len = 0;
			char *data = tu_read_file(p, &len);
			assert_non_null(data);
			(*searched)++;
			if (holds(data, len, f))
				json_array_append_new(hits, json_string(p + strlen(root)));
			free(data);
		}
		free(p);
	}
	closedir(d);
}

static void assert_not_in_answer(const char *path, const struct forms *f)
{
	char *text = NULL;
	call("GET", path, NULL, 0, NULL, &text);
	if (holds(text, strlen(text), f))
		fail_msg("GET %s shows the secret's value", path);
	free(text);
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	unsetenv("THEATER_HTTP_ALLOW_PRIVATE");
	E.wasm = server_compile_driver("-DTHEATER_DRIVER_ENV", &E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_echo(E.web, "/echo");
	fixture_httpd_add_bytes(E.web, "/hello", "hi", 2);
	const char *args[] = {"--workers", "4", "--log-level", "debug", NULL};
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

/* http-client handler JSON reaching the fixture through allow_loopback_ports. */
static char *http_handler(const char *extra)
{
	unsigned port = fixture_httpd_port(E.web);
	return tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"],"
		      "\"allow_loopback_ports\":[%u]%s%s}", port, port, extra ? "," : "",
		      extra ? extra : "");
}

/* ---- tests ---- */

static void test_secrets_api(void **state)
{
	(void)state;
	put_secret("api-one", "first value", 201);
	put_secret("api-one", "second value!", 200);
	json_t *j = call_json("GET", "/secrets/api-one", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "api-one");
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 13);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "fingerprint"))), 64);
	assert_non_null(json_string_value(json_object_get(j, "created_at")));
	assert_non_null(json_string_value(json_object_get(j, "updated_at")));
	char *dump = json_dumps(j, 0);
	assert_null(strstr(dump, "second value"));
	free(dump);
	/* the fingerprint is keyed: not the plain SHA-256 of the value */
	uint8_t d[32];
	char hex[65];
	sha256("second value!", 13, d);
	hex_encode(d, 32, hex);
	assert_string_not_equal(json_string_value(json_object_get(j, "fingerprint")), hex);
	char *fp = strdup(json_string_value(json_object_get(j, "fingerprint")));
	json_decref(j);
	/* the list: names and metadata */
	j = call_json("GET", "/secrets", NULL, 200);
	json_t *items = json_object_get(j, "items");
	int found = 0;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
		found |= !strcmp(json_string_value(json_object_get(it, "name")), "api-one");
	assert_true(found);
	dump = json_dumps(j, 0);
	assert_null(strstr(dump, "second value"));
	free(dump);
	json_decref(j);
	/* files: the folder 0700, the secret 0600 */
	struct stat st;
	char *dir = tu_fmt("%s/secrets", E.sp.home), *file = tu_fmt("%s/secrets/api-one", E.sp.home);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* An empty body (or none) is refused: it used to replace the value with
	 * nothing (200, size 0). The old value stays; no secret is created. */
	char *text = NULL;
	assert_int_equal(call("PUT", "/secrets/api-one", "", 0, "application/octet-stream",
			      &text), 400);
	assert_non_null(strstr(text, "\"code\":\"invalid_request\""));
	assert_non_null(strstr(text, "the body is empty: nothing to store"));
	free(text);
	assert_int_equal(call("PUT", "/secrets/api-one", NULL, 0, NULL, NULL), 400);
	assert_int_equal(call("PUT", "/secrets/api-empty", "", 0, "text/plain", NULL), 400);
	assert_int_equal(call("GET", "/secrets/api-empty", NULL, 0, NULL, NULL), 404);
	j = call_json("GET", "/secrets/api-one", NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 13);
	assert_string_equal(json_string_value(json_object_get(j, "fingerprint")), fp);
	json_decref(j);
	free(fp);
	/* bad names, too large, absent */
	assert_int_equal(call("PUT", "/secrets/.hidden", "x", 1, "text/plain", &text), 400);
	assert_non_null(strstr(text, "invalid_id"));
	free(text);
	assert_int_equal(call("PUT", "/secrets/a%20b", "x", 1, "text/plain", NULL), 400);
	char *big = malloc(64 * 1024 + 1);
	memset(big, 'k', 64 * 1024 + 1);
	assert_int_equal(call("PUT", "/secrets/big", big, 64 * 1024 + 1, "text/plain", &text), 413);
	free(text);
	free(big);
	assert_int_equal(call("GET", "/secrets/big", NULL, 0, NULL, NULL), 404);
	assert_int_equal(call("DELETE", "/secrets/api-one", NULL, 0, NULL, NULL), 204);
	assert_int_equal(call("DELETE", "/secrets/api-one", NULL, 0, NULL, &text), 404);
	assert_non_null(strstr(text, "not_found"));
	free(text);
	assert_int_equal(access(file, F_OK), -1);
	free(dir);
	free(file);
}

/* A secret used through a header template reaches the endpoint, and its value
 * is nowhere else: not in any file under THEATER_HOME (database, WAL,
 * chains, store, log) but its own, not in any API answer. */
static void test_secret_never_found(void **state)
{
	(void)state;
	char value[41], bearer[64];
	random_value(value);
	snprintf(bearer, sizeof(bearer), "Bearer %s", value);
	put_secret("openai", value, 201);
	fixture_httpd_add_auth(E.web, "/v1/chat", "Authorization", bearer, NULL);
	char *h = http_handler("\"headers\":{\"Authorization\":\"Bearer {{secret:openai}}\"},"
			       "\"secrets\":[\"openai\"]");
	char *id = spawn("secret-user", h, NULL, NULL);
	unsigned port = fixture_httpd_port(E.web);
	/* the handler's header: the endpoint sees the value and says so */
	char *c = tu_fmt("http {\"method\":\"POST\",\"url\":\"http://127.0.0.1:%u/v1/chat\","
			 "\"body\":\"{}\"}", port);
	char *got = cmd(id, c);
	const char *rest;
	assert_true(answer_rc(got, &rest) > 0);
	assert_non_null(strstr(rest, "\"status\":200"));
	assert_non_null(strstr(rest, "authorized"));
	char *seen = fixture_httpd_last_header(E.web, "/v1/chat", "Authorization");
	assert_non_null(seen);
	assert_string_equal(seen, bearer);
	free(seen);
	free(got);
	free(c);
	/* the actor's own template, granted by `secrets`; the echo of the value is
	 * scrubbed before the actor sees it */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/echo\",\"headers\":{\"X-Key\":"
		   "\"k={{secret:openai}}\"}}", port);
	got = cmd(id, c);
	assert_true(answer_rc(got, &rest) > 0);
	assert_null(strstr(got, value));
	assert_non_null(strstr(got, "X-Key: k=[secret:openai]"));
	seen = fixture_httpd_last_header(E.web, "/echo", "X-Key");
	char *want = tu_fmt("k=%s", value);
	assert_string_equal(seen, want);
	free(want);
	free(seen);
	free(got);
	free(c);
	/* the chain names the secret and its fingerprint */
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	json_t *used = json_object_get(json_object_get(ev, "input"), "secrets");
	assert_int_equal(json_array_size(used), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(used, 0), "name")),
			    "openai");
	json_t *meta = call_json("GET", "/secrets/openai", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(json_array_get(used, 0),
							      "fingerprint")),
			    json_string_value(json_object_get(meta, "fingerprint")));
	json_decref(meta);
	json_decref(ev);
	/* nowhere in the API's answers */
	struct forms f;
	forms_of(value, &f);
	char *p1 = tu_fmt("/actors/%s/chain?limit=1000", id), *p2 = tu_fmt("/actors/%s/state", id);
	char *p3 = tu_fmt("/actors/%s", id), *p4 = tu_fmt("/actors/%s/manifest", id);
	const char *paths[] = {p1, p2, p3, p4, "/secrets", "/secrets/openai", "/actors"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		assert_not_in_answer(paths[i], &f);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	/* stop the server so everything is on disk, then search every file */
	assert_int_equal(server_stop(&E.sp), 0);
	json_t *hits = json_array();
	size_t searched = 0;
	search_tree(E.sp.home, E.sp.home, &f, hits, &searched);
	assert_true(searched >= 4);       /* the db, a chain, its meta, the log at least */
	if (json_array_size(hits) != 1 ||
	    strcmp(json_string_value(json_array_get(hits, 0)), "/secrets/openai") != 0) {
		char *d = json_dumps(hits, 0);
		fail_msg("the secret's value is in these files: %s", d);
	}
	json_decref(hits);
	forms_release(&f);
	const char *args[] = {"--workers", "4", "--log-level", "debug", NULL};
	assert_int_equal(server_start(&E.sp, E.sp.home, args, NULL), 0);
	free(id);
	free(h);
}

/* Templates that name a secret the handler does not grant, or one that is
 * not set, fail the call before anything is sent. */
static void test_template_refusals(void **state)
{
	(void)state;
	put_secret("granted", "g-value-123", 201);
	put_secret("other", "o-value-456", 201);
	char *h = http_handler("\"secrets\":[\"granted\",\"unset\"]");
	char *id = spawn("templates", h, NULL, NULL);
	unsigned port = fixture_httpd_port(E.web);
	unsigned before = fixture_httpd_hits(E.web, "/hello");
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"headers\":{\"X-A\":"
			 "\"{{secret:other}}\"}}", port);
	cmd_expect(id, c, "-3");
	free(c);
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	assert_non_null(strstr(out_error(ev), "secret 'other' is not granted"));
	json_decref(ev);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"headers\":{\"X-A\":"
		   "\"{{secret:unset}}\"}}", port);
	cmd_expect(id, c, "-2");
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"headers\":{\"X-A\":"
		   "\"{{secret:bad name}}\"}}", port);
	cmd_expect(id, c, "-1");
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before);
	/* granted: sent */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"headers\":{\"X-A\":"
		   "\"{{secret:granted}}\"}}", port);
	char *got = cmd(id, c);
	assert_true(answer_rc(got, NULL) > 0);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before + 1);
	free(got);
	free(c);
	free(id);
	free(h);
}

/* Loopback is refused without allow_loopback_ports (this server has no
 * --http-allow-private), and only the named port is opened. */
static void test_loopback_ports(void **state)
{
	(void)state;
	unsigned port = fixture_httpd_port(E.web);
	char *h = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"]}", port);
	char *id = spawn("no-loopback", h, NULL, NULL);
	unsigned before = fixture_httpd_hits(E.web, "/hello");
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\"}", port);
	cmd_expect(id, c, "-3");
	json_t *ev = last_event(id, "theater:simple/http-client/send-http");
	if (!strstr(out_error(ev), "allow_loopback_ports"))
		fail_msg("error: %s", out_error(ev));
	json_decref(ev);
	free(id);
	free(h);
	h = tu_fmt("{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1:%u\"],"
		   "\"allow_loopback_ports\":[%u]}", port, port == 65535 ? 1 : port + 1);
	id = spawn("other-port", h, NULL, NULL);
	cmd_expect(id, c, "-3");
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before);
	free(id);
	free(h);
	h = http_handler(NULL);
	id = spawn("loopback", h, NULL, NULL);
	char *got = cmd(id, c);
	assert_true(answer_rc(got, NULL) > 0);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before + 1);
	free(got);
	free(c);
	free(id);
	free(h);
	/* a bad port list is a manifest problem */
	char *body = tu_fmt("{\"manifest\":{\"name\":\"bad\",\"package\":\"driver.wasm\","
			    "\"handler\":[{\"type\":\"http-client\",\"allow_loopback_ports\":[0]}]}}");
	char *text = NULL;
	assert_int_equal(call("POST", "/actors", body, strlen(body), NULL, &text), 422);
	assert_non_null(strstr(text, "allow_loopback_ports"));
	free(text);
	free(body);
}

/* The environment interface: granted names only; the chain has the name and
 * fingerprint, not the value. */
static void test_environment(void **state)
{
	(void)state;
	put_secret("env-a", "value-a-789", 201);
	put_secret("env-b", "value-b-012", 201);
	put_secret("pre_x", "value-x-345", 201);
	char *id = spawn("env", NULL, "{\"type\":\"environment\",\"allowed_vars\":[\"env-a\",\"env-b\","
			 "\"env-missing\"],\"allowed_prefixes\":[\"pre_\"],\"denied_vars\":"
			 "[\"env-b\"]}", NULL);
	cmd_expect(id, "env env-a", "11 value-a-789");
	cmd_expect(id, "env pre_x", "11 value-x-345");
	cmd_expect(id, "env env-b", "-3");            /* denied wins */
	cmd_expect(id, "env api-zzz", "-3");          /* not granted */
	cmd_expect(id, "env env-missing", "-2");      /* granted, not set */
	cmd_expect(id, "env bad/name", "-1");
	cmd_expect(id, "exists env-a", "1");
	cmd_expect(id, "exists env-missing", "0");
	cmd_expect(id, "exists env-b", "-3");
	char *got = cmd(id, "listenv");
	const char *rest;
	assert_true(answer_rc(got, &rest) > 0);
	assert_string_equal(rest, "[\"env-a\",\"pre_x\"]");
	free(got);
	json_t *ev = last_event(id, "theater:simple/environment/get-var");
	char *dump = json_dumps(ev, 0);
	assert_null(strstr(dump, "value-"));
	free(dump);
	json_decref(ev);
	ev = last_event(id, "theater:simple/environment/exists");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "output"),
							    "result")), -3);
	json_decref(ev);
	/* the get-var event of a granted name carries the fingerprint */
	cmd_expect(id, "env env-a", "11 value-a-789");
	ev = last_event(id, "theater:simple/environment/get-var");
	json_t *meta = call_json("GET", "/secrets/env-a", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "output"),
							      "fingerprint")),
			    json_string_value(json_object_get(meta, "fingerprint")));
	json_decref(meta);
	dump = json_dumps(ev, 0);
	assert_null(strstr(dump, "value-a"));
	free(dump);
	json_decref(ev);
	free(id);
	/* permission_policy.environment narrows and disallows */
	id = spawn("env-restricted", NULL, "{\"type\":\"environment\",\"allowed_vars\":[\"env-a\"],"
		   "\"allowed_prefixes\":[\"pre_\"]}", "{\"environment\":{\"type\":\"restrict\","
		   "\"config\":{\"allow_list_all\":false,\"allowed_vars\":[\"env-a\"]}}}");
	cmd_expect(id, "env env-a", "11 value-a-789");
	cmd_expect(id, "env pre_x", "-3");
	free(id);
	id = spawn("env-disallowed", NULL, "{\"type\":\"environment\",\"allowed_vars\":[\"env-a\"]}",
		   "{\"environment\":{\"type\":\"disallow\"}}");
	cmd_expect(id, "env env-a", "-3");
	cmd_expect(id, "listenv", "-3");
	ev = last_event(id, "theater:simple/environment/get-var");
	assert_non_null(strstr(out_error(ev), "permission_policy.environment"));
	json_decref(ev);
	free(id);
}

/* An actor cannot hand its children secrets it was not granted. */
static void test_children_cannot_widen(void **state)
{
	(void)state;
	put_secret("parent-key", "pk-value-1", 201);
	put_secret("other-key", "ok-value-2", 201);
	char *h = http_handler("\"secrets\":[\"parent-key\"]");
	char *id = spawn("parent", h, "{\"type\":\"environment\",\"allowed_vars\":"
			 "[\"parent-key\"]}", NULL);
	static const char *const children[] = {
		"{\"type\":\"environment\",\"allowed_vars\":[\"other-key\"]}",
		"{\"type\":\"environment\",\"allowed_prefixes\":[\"o\"]}",
		"{\"type\":\"environment\",\"allow_list_all\":true}",
		"{\"type\":\"http-client\",\"secrets\":[\"other-key\"]}",
		"{\"type\":\"http-client\",\"headers\":{\"A\":\"{{secret:other-key}}\"}}",
		"{\"type\":\"http-client\",\"allow_loopback_ports\":[1]}",
	};
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		char *c = tu_fmt("spawn - {\"name\":\"child\",\"package\":\"driver.wasm\","
				 "\"handler\":[%s]}", children[i]);
		char *got = cmd(id, c);
		if (answer_rc(got, NULL) != -3)
			fail_msg("child %zu: expected -3, got '%s'", i, got);
		free(got);
		free(c);
	}
	free(id);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_api),
		cmocka_unit_test(test_secret_never_found),
		cmocka_unit_test(test_template_refusals),
		cmocka_unit_test(test_loopback_ports),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_children_cannot_widen),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
