/* test_e2e_park.c - end to end: waiting host calls park the actor and free its
 * worker (issue 11, point 1), in the real theater-server on 127.0.0.1.
 *
 * The actor is tests/actors/host_driver.c (one command per request). Outbound
 * HTTP goes to a fixture "gate" that holds every request until the test opens
 * it, so the test knows exactly how many calls wait at once, without timing:
 * with two workers, hundreds of actors wait on the gate while another actor
 * keeps answering; a blocked worker would make that impossible. Also: the
 * call deadline counts running time only, a kill ends a parked call at once
 * (its mail dropped), a stop lets it finish, and a server stop leaves its
 * mail open so that it runs again after the restart.
 */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/fixture_httpd.h"
#include "tests/support/server_proc.h"

#define PARKED_N 200
#define WORKERS "2"

struct env {
	struct server_proc sp;
	struct fixture_httpd *web;
	unsigned char *wasm;
	size_t wasm_len;
};

static struct env E;

static char *handlers(void)
{
	return tu_fmt("{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
		      "{\"type\":\"timing\",\"max_sleep_ms\":600000},{\"type\":\"random\"},"
		      "{\"type\":\"store\"},{\"type\":\"supervisor\"},"
		      "{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1\"],"
		      "\"allow_loopback_ports\":[%u],\"timeout_ms\":120000}",
		      fixture_httpd_port(E.web));
}

static long req(const char *method, const char *path, const char *body, char **text_out)
{
	char *u = tu_fmt("%s%s", E.sp.base, path);
	struct http_result r;
	const char *h[] = {"Content-Type: application/json", NULL};
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, h, &r), 0);
	free(u);
	if (text_out)
		*text_out = strndup(r.body, r.len);
	long st = r.status;
	http_result_release(&r);
	return st;
}

/* Spawns a driver with the test's handlers (and limits, a JSON object or
 * NULL); returns its id. */
static char *spawn(const char *name, const char *limits)
{
	char *hs = handlers();
	char *body = tu_fmt("{\"manifest\":{\"name\":\"%s\",\"version\":\"0.1.0\","
			    "\"package\":\"driver.wasm\",\"handler\":[%s]%s%s}}", name, hs,
			    limits ? ",\"limits\":" : "", limits ? limits : "");
	json_t *j = server_call_json(&E.sp, "POST", "/actors?wait=running&timeout=30", body, 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	free(hs);
	return id;
}

/* One command as a request; the answer's status and text. */
static long cmd(const char *id, const char *command, char **text_out)
{
	char *path = tu_fmt("/actors/%s/requests?timeout=120", id);
	long st = req("POST", path, command, text_out);
	free(path);
	return st;
}

static void cmd_expect(const char *id, const char *command, const char *expect)
{
	char *got = NULL;
	long st = cmd(id, command, &got);
	if (st != 200 || strcmp(got, expect) != 0)
		fail_msg("'%s': expected 200 '%s', got %ld '%s'", command, expect, st, got);
	free(got);
}

static char *gate_cmd(const char *gate)
{
	return tu_fmt("http {\"url\":\"http://127.0.0.1:%u%s\"}", fixture_httpd_port(E.web), gate);
}

/* A request sent from its own thread (a client waiting on a parked call). */
struct pending {
	pthread_t th;
	char *id, *command;
	long status;
	char *answer;
};

static void *pending_main(void *arg)
{
	struct pending *p = arg;
	p->status = cmd(p->id, p->command, &p->answer);
	return NULL;
}

static void pending_start(struct pending *p, const char *id, const char *command)
{
	memset(p, 0, sizeof(*p));
	p->id = strdup(id);
	p->command = strdup(command);
	assert_int_equal(pthread_create(&p->th, NULL, pending_main, p), 0);
}

static void pending_join(struct pending *p)
{
	pthread_join(p->th, NULL);
	free(p->id);
	free(p->command);
}

/* Waits (up to 120 s) until gate has had n requests. */
static void wait_gate(const char *gate, unsigned n)
{
	for (int i = 0; i < 12000 && fixture_httpd_hits(E.web, gate) < n; i++)
		usleep(10000);
	if (fixture_httpd_hits(E.web, gate) < n)
		fail_msg("only %u of %u requests reached %s", fixture_httpd_hits(E.web, gate), n,
			 gate);
}

static long long metric(const char *name)
{
	return server_metric(&E.sp, name);
}

static json_t *chain_of_type(const char *id, const char *type)
{
	char *p = tu_fmt("/actors/%s/chain?type=%s&limit=1000", id, type);
	json_t *pg = server_call_json(&E.sp, "GET", p, NULL, 200);
	free(p);
	json_t *items = json_incref(json_object_get(pg, "items"));
	json_decref(pg);
	return items;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void start_server(const char *home)
{
	const char *args[] = {"--workers", WORKERS, "--shutdown-grace-ms", "300", NULL};
	assert_int_equal(server_start(&E.sp, home, args, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&E, 0, sizeof(E));
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	E.wasm = server_compile_driver("", &E.wasm_len);
	E.web = fixture_httpd_start();
	assert_non_null(E.web);
	start_server(NULL);
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

/* Hundreds of actors wait on HTTP at once with two workers, while another
 * actor answers; then every one of them gets its answer. */
static void test_parked_http_frees_workers(void **state)
{
	(void)state;
	fixture_httpd_add_gate(E.web, "/gate");
	char *ids[PARKED_N];
	for (int i = 0; i < PARKED_N; i++) {
		char *name = tu_fmt("waiter-%d", i);
		ids[i] = spawn(name, NULL);
		free(name);
	}
	char *counter = spawn("counter", NULL);
	char *gc = gate_cmd("/gate");
	struct pending *p = calloc(PARKED_N, sizeof(*p));
	assert_non_null(p);
	for (int i = 0; i < PARKED_N; i++)
		pending_start(&p[i], ids[i], gc);
	wait_gate("/gate", PARKED_N);
	/* all of them wait at once: no worker is held */
	assert_true(metric("theater_parked_calls") >= PARKED_N);
	int64_t lat[50];
	for (int i = 0; i < 50; i++) {
		int64_t t0 = mono_us();
		cmd_expect(counter, "echo hi", "hi");
		lat[i] = mono_us() - t0;
	}
	qsort(lat, 50, sizeof(lat[0]), cmp_i64);
	printf("# %d actors parked on HTTP with %s workers; another actor answered 50 "
	       "requests: p50 %.2f ms, p99 %.2f ms\n", PARKED_N, WORKERS, lat[25] / 1000.0,
	       lat[49] / 1000.0);
	assert_int_equal(fixture_httpd_hits(E.web, "/gate"), PARKED_N);   /* none answered yet */
	fixture_httpd_open_gate(E.web, "/gate");
	for (int i = 0; i < PARKED_N; i++) {
		pending_join(&p[i]);
		if (p[i].status != 200 || atoi(p[i].answer) <= 0 ||
		    !strstr(p[i].answer, "\"body\":\"gate\""))
			fail_msg("waiter %d: %ld %s", i, p[i].status, p[i].answer);
		free(p[i].answer);
		free(ids[i]);
	}
	assert_true(metric("theater_parked_calls") == 0);
	assert_true(metric("theater_parks_total") >= PARKED_N);
	free(p);
	free(gc);
	free(counter);
}

/* The call deadline counts running time: a call that sleeps (parked) five
 * times longer than its deadline ends well; a call that spins past it fails. */
static void test_deadline_counts_running_time(void **state)
{
	(void)state;
	char *id = spawn("sleeper", "{\"call_timeout_ms\":300}");
	cmd_expect(id, "sleep 1500", "0");
	cmd_expect(id, "echo still here", "still here");
	/* a request to another actor parks too */
	char *other = spawn("other", NULL);
	char *c = tu_fmt("request %s 10000 sleep 1000", other);
	char *got = NULL;
	assert_int_equal(cmd(id, c, &got), 200);
	/* the length of the other's answer, then its answer: "0" (slept) */
	assert_string_equal(got, "1 0");
	free(got);
	free(c);
	free(other);
	free(id);
}

/* Spawns actor `name` and has it ask gate (which holds the request) from a
 * request of its own (p): returns once its call is parked on the gate. */
static char *park_on_gate(const char *gate, const char *name, struct pending *p)
{
	fixture_httpd_add_gate(E.web, gate);
	char *id = spawn(name, NULL);
	char *c = gate_cmd(gate);
	unsigned before = fixture_httpd_hits(E.web, gate);
	pending_start(p, id, c);
	wait_gate(gate, before + 1);
	free(c);
	return id;
}

/* id's `message-server/dropped` events once there are some (written without a
 * sync of their own: indexed by the flusher shortly after). */
static json_t *wait_dropped(const char *id)
{
	json_t *dropped = NULL;
	for (int i = 0; i < 1000 && json_array_size(dropped) == 0; i++) {
		json_decref(dropped);
		dropped = chain_of_type(id, "message-server/dropped");
		if (json_array_size(dropped) == 0)
			usleep(10000);
	}
	return dropped;
}

/* A kill ends a parked call at once: its client hears the actor stopped, and
 * the mail's one outcome is `dropped` (actor_ended). */
static void test_kill_parked(void **state)
{
	(void)state;
	struct pending p;
	char *id = park_on_gate("/gate-kill", "killed", &p);
	char *path = tu_fmt("/actors/%s/kill", id);
	assert_int_equal(req("POST", path, NULL, NULL), 204);
	pending_join(&p);
	assert_int_equal(p.status, 409);
	free(p.answer);
	json_t *dropped = wait_dropped(id);
	assert_int_equal(json_array_size(dropped), 1);
	json_t *d = json_object_get(json_array_get(dropped, 0), "data");
	assert_string_equal(json_string_value(json_object_get(d, "reason")), "actor_ended");
	json_decref(dropped);
	json_t *calls = chain_of_type(id, "wasm");
	size_t i;
	json_t *ev;
	json_array_foreach(calls, i, ev)     /* only init: the parked call never ended */
		assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"),
								      "function")), "init");
	json_decref(calls);
	fixture_httpd_open_gate(E.web, "/gate-kill");
	free(path);
	free(id);
}

/* A restart ends a parked call at once too (an agent waiting on a model), and
 * restarts the actor: the call's client hears 409, its mail is dropped
 * (actor_ended), and the new instance answers. */
static void test_restart_parked(void **state)
{
	(void)state;
	struct pending p;
	char *id = park_on_gate("/gate-restart-parked", "restart-parked", &p);
	char *path = tu_fmt("/actors/%s/restart", id);
	assert_int_equal(req("POST", path, NULL, NULL), 200);
	pending_join(&p);
	assert_int_equal(p.status, 409);
	free(p.answer);
	json_t *dropped = wait_dropped(id);
	assert_int_equal(json_array_size(dropped), 1);
	json_decref(dropped);
	json_t *r = chain_of_type(id, "restarted");
	assert_int_equal(json_array_size(r), 1);
	json_decref(r);
	fixture_httpd_open_gate(E.web, "/gate-restart-parked");
	free(path);
	free(id);
}

struct stopper {
	pthread_t th;
	char *path;
	long status;
};

static void *stopper_main(void *arg)
{
	struct stopper *st = arg;
	__atomic_store_n(&st->status, req("POST", st->path, NULL, NULL), __ATOMIC_RELEASE);
	return NULL;
}

/* A stop lets the parked call finish first: its client gets the answer. */
static void test_stop_waits_for_parked(void **state)
{
	(void)state;
	struct pending p;
	char *id = park_on_gate("/gate-stop", "stopped", &p);
	/* POST /stop answers once the actor ended: from its own thread */
	struct stopper st = {.path = tu_fmt("/actors/%s/stop", id)};
	assert_int_equal(pthread_create(&st.th, NULL, stopper_main, &st), 0);
	char *actor = tu_fmt("/actors/%s", id);
	usleep(200000);
	json_t *j = server_call_json(&E.sp, "GET", actor, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	assert_int_equal(__atomic_load_n(&st.status, __ATOMIC_ACQUIRE), 0);   /* it waits */
	fixture_httpd_open_gate(E.web, "/gate-stop");
	pending_join(&p);
	assert_int_equal(p.status, 200);
	assert_non_null(strstr(p.answer, "gate"));
	free(p.answer);
	pthread_join(st.th, NULL);
	assert_int_equal(st.status, 204);
	char *path = st.path;
	for (int i = 0; i < 3000; i++) {
		j = server_call_json(&E.sp, "GET", actor, NULL, 200);
		int done = strcmp(json_string_value(json_object_get(j, "status")), "stopped") == 0;
		json_decref(j);
		if (done)
			break;
		usleep(10000);
	}
	j = server_call_json(&E.sp, "GET", actor, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "stopped");
	json_decref(j);
	free(actor);
	free(path);
	free(id);
}

/* A server stop does not wait for a parked call past its grace period: the
 * call is let go unrecorded, its mail stays open, and after the restart it runs
 * again (a new request reaches the gate) and ends once. */
static void test_shutdown_redelivers_parked(void **state)
{
	(void)state;
	fixture_httpd_add_gate(E.web, "/gate-restart");
	char *id = spawn("restarted", NULL);
	char *c = tu_fmt("http {\"url\":\"http://127.0.0.1:%u/gate-restart\"}",
			 fixture_httpd_port(E.web));
	char *path = tu_fmt("/actors/%s/messages", id);
	/* a send runs handle-send, which only keeps the message: use a request */
	struct pending p;
	pending_start(&p, id, c);
	for (int i = 0; i < 6000 && fixture_httpd_hits(E.web, "/gate-restart") == 0; i++)
		usleep(10000);
	char *home = strdup(E.sp.home);
	assert_int_equal(server_stop(&E.sp), 0);
	pending_join(&p);
	assert_int_equal(p.status, 503);
	free(p.answer);
	start_server(home);
	for (int i = 0; i < 6000 && fixture_httpd_hits(E.web, "/gate-restart") < 2; i++)
		usleep(10000);
	assert_int_equal(fixture_httpd_hits(E.web, "/gate-restart"), 2);
	fixture_httpd_open_gate(E.web, "/gate-restart");
	json_t *calls = NULL;
	size_t ended = 0;
	for (int i = 0; i < 3000 && ended == 0; i++) {
		json_decref(calls);
		calls = chain_of_type(id, "wasm");
		size_t k;
		json_t *ev;
		ended = 0;
		json_array_foreach(calls, k, ev)
			ended += json_object_get(json_object_get(ev, "data"), "mail") != NULL;
		if (!ended)
			usleep(10000);
	}
	assert_int_equal(ended, 1);
	json_decref(calls);
	free(home);
	free(path);
	free(c);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parked_http_frees_workers),
		cmocka_unit_test(test_deadline_counts_running_time),
		cmocka_unit_test(test_kill_parked),
		cmocka_unit_test(test_restart_parked),
		cmocka_unit_test(test_stop_waits_for_parked),
		cmocka_unit_test(test_shutdown_redelivers_parked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
