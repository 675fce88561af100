/* test_e2e_host.c - end to end: the host functions of the actor ABI (timing,
 * random, store, message-server, supervisor, http-client) exercised by a real
 * actor in the real theater-server on 127.0.0.1.
 *
 * The actor is tests/actors/host_driver.c, compiled here with clang for wasm32:
 * each request is one command line ("sleep 10", "store pub hello", ...) and the
 * answer starts with the host function's result code. Outbound HTTP goes to a
 * fixture server on 127.0.0.1, which the address policy refuses unless the
 * server runs with THEATER_HTTP_ALLOW_PRIVATE=1 (the main server here does; one
 * test starts a second server without it).
 */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/util/crypto.h"
#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

/* Every interface the driver imports but http-client. */
#define BASE_HANDLERS                                                                  \
	"{\"type\":\"runtime\"},{\"type\":\"message-server\"},"                        \
	"{\"type\":\"timing\",\"max_sleep_duration\":200},{\"type\":\"random\"},"     \
	"{\"type\":\"store\"},{\"type\":\"supervisor\"}"
/* ... and http-client without allowed_hosts: no host at all. */
#define ALL_HANDLERS BASE_HANDLERS ",{\"type\":\"http-client\"}"

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
	unsigned char *wasm;
	size_t wasm_len;
};

static struct env E;

/* ---- helpers ---- */


static long req_on(struct server_proc *sp, const char *method, const char *path,
		   const char *body, json_t **json_out, char **text_out)
{
	char *u = tu_fmt("%s%s", sp->base, path);
	struct http_result r;
	const char *h[] = {"Content-Type: application/json", NULL};
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, h, &r), 0);
	free(u);
	if (json_out)
		*json_out = json_loadb(r.body, r.len, 0, NULL);
	if (text_out)
		*text_out = strndup(r.body, r.len);
	long status = r.status;
	http_result_release(&r);
	return status;
}

static char *manifest_of(const char *name, const char *package, const char *handlers)
{
	return tu_fmt("{\"name\":\"%s\",\"version\":\"0.1.0\",\"package\":\"%s\","
		      "\"handler\":[%s]}", name, package, handlers);
}

static char *manifest(const char *name, const char *handlers)
{
	return manifest_of(name, "driver.wasm", handlers);
}

/* Spawns the driver with these handlers on sp; returns its id (malloc'd). */
static char *spawn_on(struct server_proc *sp, const char *name, const char *handlers)
{
	char *m = manifest(name, handlers);
	char *body = tu_fmt("{\"manifest\":%s}", m);
	json_t *j = NULL;
	long st = req_on(sp, "POST", "/actors?wait=running&timeout=20", body, &j, NULL);
	if (st != 201) {
		char *dump = j ? json_dumps(j, 0) : NULL;
		fail_msg("spawn of '%s' answered %ld: %s", name, st, dump ? dump : "");
	}
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	free(m);
	return id;
}

static char *spawn_driver(const char *name, const char *handlers)
{
	return spawn_on(&E.sp, name, handlers);
}

/* Sends one command to the driver; returns its answer (malloc'd). */
static char *cmd_on(struct server_proc *sp, const char *id, const char *command)
{
	char *path = tu_fmt("/actors/%s/requests?timeout=60", id);
	char *text = NULL;
	long st = req_on(sp, "POST", path, command, NULL, &text);
	if (st != 200)
		fail_msg("request '%.80s' answered %ld: %s", command, st, text);
	free(path);
	return text;
}

static char *cmd(const char *id, const char *command)
{
	return cmd_on(&E.sp, id, command);
}

/* The command's answer must be exactly `expect`. */
static void cmd_expect(const char *id, const char *command, const char *expect)
{
	char *got = cmd(id, command);
	if (strcmp(got, expect) != 0)
		fail_msg("'%.80s': expected '%s', got '%s'", command, expect, got);
	free(got);
}

/* The result code at the start of an answer, and what follows the space. */
static int answer_rc(const char *answer, const char **rest)
{
	char *end;
	long rc = strtol(answer, &end, 10);
	if (rest)
		*rest = *end == ' ' ? end + 1 : end;
	return (int)rc;
}

static json_t *chain_items(struct server_proc *sp, const char *id)
{
	char *path = tu_fmt("/actors/%s/chain?limit=1000", id);
	json_t *page = NULL;
	assert_int_equal(req_on(sp, "GET", path, NULL, &page, NULL), 200);
	free(path);
	json_t *items = json_incref(json_object_get(page, "items"));
	json_decref(page);
	assert_non_null(items);
	return items;
}

/* The data of the last event of this type in the actor's chain (new ref). */
static json_t *last_event(struct server_proc *sp, const char *id, const char *type)
{
	json_t *items = chain_items(sp, id), *found = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(items, i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "event_type")), type) == 0)
			found = json_object_get(ev, "data");
	if (!found)
		fail_msg("no '%s' event in the chain of '%s'", type, id);
	json_incref(found);
	json_decref(items);
	return found;
}

static json_int_t event_result(const json_t *data)
{
	return json_integer_value(json_object_get(json_object_get(data, "output"), "result"));
}

static void assert_chain_valid(struct server_proc *sp, const char *id)
{
	char *path = tu_fmt("/actors/%s/chain/verify", id);
	json_t *j = NULL;
	assert_int_equal(req_on(sp, "GET", path, NULL, &j, NULL), 200);
	assert_true(json_is_true(json_object_get(j, "valid")));
	json_decref(j);
	free(path);
}

static char *actor_status(const char *id)
{
	char *path = tu_fmt("/actors/%s", id);
	json_t *j = NULL;
	assert_int_equal(req_on(&E.sp, "GET", path, NULL, &j, NULL), 200);
	char *status = strdup(json_string_value(json_object_get(j, "status")));
	json_decref(j);
	free(path);
	return status;
}

static void stop_actor(struct server_proc *sp, const char *id)
{
	char *path = tu_fmt("/actors/%s/stop", id);
	long st = req_on(sp, "POST", path, NULL, NULL, NULL);
	assert_true(st == 200 || st == 202 || st == 204 || st == 304);
	free(path);
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	E.wasm = server_compile_driver("", &E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	fixture_httpd_add_bytes(E.web, "/hello", "hi there", 8);
	fixture_httpd_add_bytes(E.web, "/binary", "\xff\xfe\x00\x01", 4);
	fixture_httpd_add_bytes(E.web, "/post", "posted", 6);
	fixture_httpd_add_bytes(E.web, "/private", "secret", 6);
	fixture_httpd_add_redirect(E.web, "/redirect", "/hello");
	const char *args[] = {"--workers", "4", NULL};
	setenv("THEATER_HTTP_ALLOW_PRIVATE", "1", 1);
	int rc = server_start(&E.sp, NULL, args, NULL);
	unsetenv("THEATER_HTTP_ALLOW_PRIVATE");
	assert_int_equal(rc, 0);
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

/* ---- tests ---- */

/* A module that imports interfaces its manifest does not grant does not start;
 * the problem names them. */
static void test_grants_required(void **state)
{
	(void)state;
	char *m = manifest("ungranted", "{\"type\":\"runtime\"}");
	char *body = tu_fmt("{\"manifest\":%s}", m);
	json_t *j = NULL;
	long st = req_on(&E.sp, "POST", "/actors?wait=running&timeout=20", body, &j, NULL);
	assert_int_equal(st, 422);
	const char *detail = json_string_value(json_object_get(j, "detail"));
	assert_non_null(detail);
	assert_non_null(strstr(detail, "timing"));
	assert_non_null(strstr(detail, "http-client"));
	json_decref(j);
	free(body);
	free(m);
}

static void test_timing(void **state)
{
	(void)state;
	char *id = spawn_driver("timing", ALL_HANDLERS);
	char *now = cmd(id, "now");
	long long ms = atoll(now), wall = (long long)time(NULL) * 1000;
	assert_true(ms > wall - 86400000LL && ms < wall + 86400000LL);
	free(now);
	cmd_expect(id, "sleep 0", "0");
	cmd_expect(id, "sleep 20", "0");
	cmd_expect(id, "sleep 200", "0");
	cmd_expect(id, "sleep 201", "-3");       /* over the handler's bound: not slept */
	cmd_expect(id, "sleep 60000", "-3");
	cmd_expect(id, "sleep -1", "-1");
	json_t *ev = last_event(&E.sp, id, "theater:simple/timing/sleep");
	assert_int_equal(event_result(ev), -1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "input"), "ms")), -1);
	json_decref(ev);
	ev = last_event(&E.sp, id, "theater:simple/timing/now");
	assert_int_equal(json_integer_value(json_object_get(ev, "output")), ms);
	json_decref(ev);
	assert_chain_valid(&E.sp, id);
	free(id);
}

static void test_random(void **state)
{
	(void)state;
	char *id = spawn_driver("random", ALL_HANDLERS);
	char *a = cmd(id, "random 16"), *b = cmd(id, "random 16");
	const char *ha, *hb;
	assert_int_equal(answer_rc(a, &ha), 16);
	assert_int_equal(answer_rc(b, &hb), 16);
	assert_int_equal(strlen(ha), 32);
	assert_string_not_equal(ha, hb);
	/* The chain has the SHA-256 of the bytes, never the bytes. */
	uint8_t bytes[16], d[32];
	char hex[65];
	assert_int_equal(hex_decode(hb, bytes, 16), ERR_OK);
	sha256(bytes, 16, d);
	hex_encode(d, 32, hex);
	json_t *ev = last_event(&E.sp, id, "theater:simple/random/random-bytes");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "output"),
							      "sha256")), hex);
	char *dump = json_dumps(ev, 0);
	assert_null(strstr(dump, hb));
	free(dump);
	json_decref(ev);
	cmd_expect(id, "random 0", "0");
	cmd_expect(id, "random 65537", "-5");
	char *u = cmd(id, "uuid");
	const char *uuid;
	assert_int_equal(answer_rc(u, &uuid), 36);
	assert_true(uuid_valid(uuid));
	assert_int_equal(uuid[14], '4');
	ev = last_event(&E.sp, id, "theater:simple/random/generate-uuid");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "output"),
							      "uuid")), uuid);
	json_decref(ev);
	free(u);
	free(a);
	free(b);
	free(id);
}

#define HELLO_HASH "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

static void test_store_round_trip(void **state)
{
	(void)state;
	char *id = spawn_driver("store", ALL_HANDLERS);
	cmd_expect(id, "store pub hello", "64 " HELLO_HASH);
	cmd_expect(id, "get pub " HELLO_HASH, "5 hello");
	cmd_expect(id, "label pub greeting " HELLO_HASH, "0");
	cmd_expect(id, "getlabel pub greeting", "5 hello");
	cmd_expect(id, "getlabel pub nolabel", "-2");
	cmd_expect(id, "get pub " ZERO_HASH, "-2");
	cmd_expect(id, "label pub other " ZERO_HASH, "-2");
	/* What the actor stored is in the server's store. */
	char *text = NULL;
	assert_int_equal(req_on(&E.sp, "GET", "/store/pub/hash/" HELLO_HASH, NULL, NULL, &text),
			 200);
	assert_string_equal(text, "hello");
	free(text);
	/* Bad ids, labels and hashes; the server's own stores. */
	cmd_expect(id, "store ../etc hello", "-1");
	cmd_expect(id, "store .hidden hello", "-1");
	cmd_expect(id, "label pub ../x " HELLO_HASH, "-1");
	cmd_expect(id, "get pub 2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
		   "-1");
	cmd_expect(id, "store theater-state hello", "-3");
	json_t *ev = last_event(&E.sp, id, "theater:simple/store/store");
	assert_int_equal(event_result(ev), -3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "input"),
							      "store")), "theater-state");
	json_decref(ev);
	ev = last_event(&E.sp, id, "theater:simple/store/get-by-label");
	assert_int_equal(event_result(ev), -2);
	json_decref(ev);
	ev = last_event(&E.sp, id, "theater:simple/store/get");
	assert_int_equal(event_result(ev), -1);
	json_decref(ev);
	ev = last_event(&E.sp, id, "theater:simple/store/label");
	assert_int_equal(event_result(ev), -1);
	json_decref(ev);
	assert_chain_valid(&E.sp, id);
	free(id);
}

/* The handler's store_ids restricts the stores an actor may touch. */
static void test_store_ids(void **state)
{
	(void)state;
	char *id = spawn_driver("store-ids", "{\"type\":\"store\",\"store_ids\":[\"mine\"]},"
				"{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
				"{\"type\":\"timing\"},{\"type\":\"random\"},"
				"{\"type\":\"supervisor\"},{\"type\":\"http-client\"}");
	cmd_expect(id, "store mine hello", "64 " HELLO_HASH);
	cmd_expect(id, "store pub hello", "-3");
	cmd_expect(id, "get pub " HELLO_HASH, "-3");
	cmd_expect(id, "getlabel pub greeting", "-3");
	free(id);
	/* the reference's store_id (and base_path, which has no effect here) names
	 * the one store the actor may touch */
	id = spawn_driver("store-id", "{\"type\":\"store\",\"store_id\":\"mine\","
			  "\"base_path\":\"/tmp/theater-store-test\"},"
			  "{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
			  "{\"type\":\"timing\"},{\"type\":\"random\"},"
			  "{\"type\":\"supervisor\"},{\"type\":\"http-client\"}");
	cmd_expect(id, "store mine hello", "64 " HELLO_HASH);
	cmd_expect(id, "store pub hello", "-3");
	free(id);
}

/* Polls the actor's state until it equals want (messages are async). */
static void wait_state(const char *id, const char *want)
{
	char *path = tu_fmt("/actors/%s/state", id);
	char *text = NULL;
	for (int i = 0; i < 500; i++) {
		free(text);
		text = NULL;
		long st = req_on(&E.sp, "GET", path, NULL, NULL, &text);
		if (st == 200 && strcmp(text, want) == 0)
			break;
		usleep(20000);
	}
	if (strcmp(text, want) != 0)
		fail_msg("state of '%s' is '%s', not '%s'", id, text, want);
	free(text);
	free(path);
}

static void test_send_and_request(void **state)
{
	(void)state;
	char *a = spawn_driver("sender", ALL_HANDLERS), *b = spawn_driver("receiver", ALL_HANDLERS);
	char *c = tu_fmt("send %s hello from a", b);
	cmd_expect(a, c, "0");
	free(c);
	wait_state(b, "hello from a");
	/* request: b answers a with its own host call in the middle */
	c = tu_fmt("request %s 5000 echo pong", b);
	cmd_expect(a, c, "4 pong");
	free(c);
	c = tu_fmt("request %s 5000 uuid", b);
	char *got = cmd(a, c);
	const char *inner;
	assert_int_equal(answer_rc(got, &inner), 39);
	assert_int_equal(answer_rc(inner, NULL), 36);
	free(got);
	free(c);
	/* an answer later than the timeout: -4, and the late answer harms nobody */
	c = tu_fmt("request %s 50 sleep 200", b);
	cmd_expect(a, c, "-4");
	free(c);
	cmd_expect(b, "echo still here", "still here");
	/* to itself: refused, it could never answer */
	c = tu_fmt("request %s 1000 echo me", a);
	cmd_expect(a, c, "-1");
	free(c);
	cmd_expect(a, "send 00000000-0000-4000-8000-000000000000 x", "-2");
	cmd_expect(a, "send not-an-actor-id x", "-1");
	cmd_expect(a, "request 00000000-0000-4000-8000-000000000000 100 x", "-2");
	/* a stopped actor takes no more messages */
	stop_actor(&E.sp, b);
	c = tu_fmt("send %s late", b);
	char *late = cmd(a, c);
	assert_true(answer_rc(late, NULL) < 0);
	free(late);
	free(c);
	json_t *ev = last_event(&E.sp, a, "theater:simple/message-server-host/request");
	assert_int_equal(event_result(ev), -2);
	json_decref(ev);
	ev = last_event(&E.sp, a, "theater:simple/message-server-host/send");
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "input"), "to")),
			    b);
	json_decref(ev);
	assert_chain_valid(&E.sp, a);
	free(a);
	free(b);
}

static void test_supervisor(void **state)
{
	(void)state;
	json_t *ev0, *ev;
	char *p = spawn_driver("parent", ALL_HANDLERS);
	char *other = spawn_driver("other", ALL_HANDLERS);
	char *m = manifest("child", ALL_HANDLERS);
	char *c = tu_fmt("spawn {\"k\":1} %s", m);
	char *got = cmd(p, c);
	const char *child_id;
	assert_int_equal(answer_rc(got, &child_id), 36);
	char *child = strdup(child_id);
	free(got);
	free(c);
	char *st = actor_status(child);
	assert_string_equal(st, "running");
	free(st);
	/* listed as a child, its state readable by the parent only */
	got = cmd(p, "children");
	assert_true(answer_rc(got, NULL) > 0);
	assert_non_null(strstr(got, child));
	free(got);
	c = tu_fmt("childstate %s", child);
	got = cmd(p, c);
	assert_true(answer_rc(got, NULL) > 0);
	assert_non_null(strstr(got, "\"k\""));
	free(got);
	cmd_expect(other, c, "-3");
	free(c);
	c = tu_fmt("restart %s", child);
	cmd_expect(other, c, "-3");
	cmd_expect(p, c, "0");
	free(c);
	st = actor_status(child);
	assert_string_equal(st, "running");
	free(st);
	ev0 = last_event(&E.sp, child, "restarted");
	json_decref(ev0);
	c = tu_fmt("stop %s", child);
	cmd_expect(other, c, "-3");
	cmd_expect(p, c, "0");
	st = actor_status(child);
	assert_string_equal(st, "stopped");
	free(st);
	cmd_expect(p, c, "0");                   /* already ended: nothing to do */
	free(c);
	c = tu_fmt("stop %s", other);           /* not its child */
	cmd_expect(p, c, "-3");
	free(c);
	cmd_expect(p, "stop 00000000-0000-4000-8000-000000000000", "-2");
	cmd_expect(p, "spawn - {\"name\":\"x\"}", "-1");
	/* a child whose package cannot be loaded: an error, with the reason recorded */
	char *bad = manifest_of("nopkg", "nothere.wasm", ALL_HANDLERS);
	c = tu_fmt("spawn - %s", bad);
	got = cmd(p, c);
	assert_true(answer_rc(got, NULL) < 0);
	free(got);
	free(c);
	free(bad);
	ev = last_event(&E.sp, p, "theater:simple/supervisor/spawn");
	assert_non_null(json_string_value(json_object_get(json_object_get(ev, "output"), "error")));
	json_decref(ev);
	cmd_expect(p, "spawn - not a manifest", "-1");
	ev = last_event(&E.sp, p, "theater:simple/supervisor/spawn");
	assert_int_equal(event_result(ev), -1);
	json_decref(ev);
	ev = last_event(&E.sp, p, "theater:simple/supervisor/restart-child");
	assert_int_equal(event_result(ev), 0);
	json_decref(ev);
	ev = last_event(&E.sp, p, "theater:simple/supervisor/get-child-state");
	assert_true(event_result(ev) > 0);
	json_decref(ev);
	ev = last_event(&E.sp, p, "theater:simple/supervisor/stop-child");
	assert_int_equal(event_result(ev), -2);
	json_decref(ev);
	ev = last_event(&E.sp, p, "theater:simple/supervisor/list-children");
	assert_true(json_array_size(json_object_get(json_object_get(ev, "output"), "children")) == 1);
	json_decref(ev);
	assert_chain_valid(&E.sp, p);
	free(m);
	free(child);
	free(p);
	free(other);
}

static char *http_handlers(unsigned short port)
{
	return tu_fmt(BASE_HANDLERS ",{\"type\":\"http-client\",\"allowed_hosts\":"
		      "[\"127.0.0.1:%u\",\"localhost:%u\"]}", port, port);
}

/* The JSON after the result code of a send-http answer. */
static json_t *http_answer(const char *answer)
{
	const char *rest;
	if (answer_rc(answer, &rest) <= 0)
		fail_msg("send-http failed: %s", answer);
	json_t *j = json_loads(rest, 0, NULL);
	assert_non_null(j);
	return j;
}

static void test_http_client(void **state)
{
	(void)state;
	unsigned short port = fixture_httpd_port(E.web);
	char *h = http_handlers(port);
	char *id = spawn_driver("http", h);
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\"}", port);
	char *got = cmd(id, c);
	json_t *r = http_answer(got);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
	assert_string_equal(json_string_value(json_object_get(r, "body")), "hi there");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "headers"),
							      "content-length")), "8");
	json_decref(r);
	free(got);
	free(c);
	/* POST with a body and a secret header: sent, but not recorded */
	c = tu_fmt("http {\"method\":\"POST\",\"url\":\"http://localhost:%u/post?api_key=sekrit-43&x=1\","
		   "\"headers\":{\"Authorization\":\"Bearer sekrit-42\",\"X-Test\":\"1\"},"
		   "\"body\":\"ping\"}", port);
	got = cmd(id, c);
	r = http_answer(got);
	assert_string_equal(json_string_value(json_object_get(r, "body")), "posted");
	char method[16];
	fixture_httpd_last_method(E.web, "/post", method);
	assert_string_equal(method, "POST");
	size_t blen = 0;
	char *sent = fixture_httpd_last_body(E.web, "/post", &blen);
	assert_string_equal(sent, "ping");
	free(sent);
	json_decref(r);
	free(got);
	free(c);
	json_t *ev = last_event(&E.sp, id, "theater:simple/http-client/send-http");
	json_t *hdrs = json_object_get(json_object_get(ev, "input"), "headers");
	assert_string_equal(json_string_value(json_object_get(hdrs, "Authorization")), "[redacted]");
	assert_string_equal(json_string_value(json_object_get(hdrs, "X-Test")), "1");
	char *want_url = tu_fmt("http://localhost:%u/post?api_key=[redacted]&x=1", port);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "input"), "url")),
			    want_url);
	free(want_url);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "output"),
							    "status")), 200);
	/* (the command that carried the header is in the `wasm` event: the test's
	 * own doing; the host's event must not have it) */
	char *dump = json_dumps(ev, 0);
	assert_null(strstr(dump, "sekrit-42"));
	assert_null(strstr(dump, "sekrit-43"));
	free(dump);
	json_decref(ev);
	/* a body that is not UTF-8 comes back as base64 */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/binary\"}", port);
	got = cmd(id, c);
	r = http_answer(got);
	assert_string_equal(json_string_value(json_object_get(r, "body_b64")), "//4AAQ==");
	json_decref(r);
	free(got);
	free(c);
	/* redirects are answers, not followed */
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/redirect\"}", port);
	got = cmd(id, c);
	r = http_answer(got);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 302);
	json_decref(r);
	free(got);
	free(c);
	assert_chain_valid(&E.sp, id);
	free(id);
	free(h);
}

static void test_http_refusals(void **state)
{
	(void)state;
	unsigned short port = fixture_httpd_port(E.web);
	char *h = http_handlers(port);
	char *id = spawn_driver("http-refusals", h);
	unsigned before = fixture_httpd_hits(E.web, "/hello");
	/* hosts and ports not in allowed_hosts */
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.2:%u/hello\"}", port);
	cmd_expect(id, c, "-3");
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\"}", port == 65535 ? 1 : port + 1);
	cmd_expect(id, c, "-3");
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before);
	/* malformed requests */
	cmd_expect(id, "http not json", "-1");
	cmd_expect(id, "http {\"method\":\"GET\"}", "-1");
	cmd_expect(id, "http {\"url\":\"file:///etc/passwd\"}", "-1");
	cmd_expect(id, "http {\"url\":\"ftp://127.0.0.1/\"}", "-1");
	c = tu_fmt("http {\"url\":\"http://u:p@127.0.0.1:%u/hello\"}", port);
	cmd_expect(id, c, "-1");
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"headers\":{\"Host\":\"x\"}}", port);
	cmd_expect(id, c, "-1");
	free(c);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\",\"bogus\":1}", port);
	cmd_expect(id, c, "-1");
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before);
	free(id);
	/* an http-client handler without allowed_hosts allows nothing */
	id = spawn_driver("http-none", ALL_HANDLERS);
	c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/hello\"}", port);
	cmd_expect(id, c, "-3");
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/hello"), before);
	free(id);
	free(h);
}

/* Without THEATER_HTTP_ALLOW_PRIVATE the address connected is checked: the
 * fixture on 127.0.0.1 is allowed by allowed_hosts but never reached, by
 * address or by a name that resolves to it. */
static void test_http_private_address_refused(void **state)
{
	(void)state;
	struct server_proc sp = {0};
	unsetenv("THEATER_HTTP_ALLOW_PRIVATE");
	assert_int_equal(server_start(&sp, NULL, NULL, NULL), 0);
	char *p = tu_fmt("%s/driver.wasm", sp.roots);
	assert_int_equal(tu_write_file(p, E.wasm, E.wasm_len), 0);
	free(p);
	unsigned short port = fixture_httpd_port(E.web);
	char *h = http_handlers(port);
	char *id = spawn_on(&sp, "private", h);
	unsigned before = fixture_httpd_hits(E.web, "/private");
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/private\"}", port);
	char *got = cmd_on(&sp, id, c);
	assert_string_equal(got, "-3");
	free(got);
	free(c);
	c = tu_fmt("http {\"url\":\"http://localhost:%u/private\"}", port);
	got = cmd_on(&sp, id, c);
	assert_string_equal(got, "-3");
	free(got);
	free(c);
	assert_int_equal(fixture_httpd_hits(E.web, "/private"), before);
	json_t *ev = last_event(&sp, id, "theater:simple/http-client/send-http");
	assert_int_equal(event_result(ev), -3);
	const char *why = json_string_value(json_object_get(json_object_get(ev, "output"), "error"));
	assert_non_null(why);
	assert_non_null(strstr(why, "loopback"));
	json_decref(ev);
	free(id);
	free(h);
	server_destroy(&sp);
}

/* Pointers outside the actor's memory give -1 from every function and do not
 * hurt the actor or the server. */
static void test_bad_pointers(void **state)
{
	(void)state;
	unsigned short port = fixture_httpd_port(E.web);
	char *h = http_handlers(port);
	char *id = spawn_driver("bad", h);
	cmd_expect(id, "bad", "-1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1");
	char *st = actor_status(id);
	assert_string_equal(st, "running");
	free(st);
	cmd_expect(id, "sleep 0", "0");
	assert_chain_valid(&E.sp, id);
	free(id);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grants_required),
		cmocka_unit_test(test_timing),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_store_round_trip),
		cmocka_unit_test(test_store_ids),
		cmocka_unit_test(test_send_and_request),
		cmocka_unit_test(test_supervisor),
		cmocka_unit_test(test_http_client),
		cmocka_unit_test(test_http_refusals),
		cmocka_unit_test(test_http_private_address_refused),
		cmocka_unit_test(test_bad_pointers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
