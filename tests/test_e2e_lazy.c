/* test_e2e_lazy.c - lazy recovery (docs/durability.md, "Lazy recovery") against
 * the real server: after a clean stop, idle live actors come back listed
 * running without an instance (the theater_actors_loaded gauge of /metrics)
 * and without a new chain event; their first mail recovers them with their
 * state; an actor with a timer is recovered at start and ticks with no mail;
 * after a crash, an actor whose chain does not end idle is recovered at once.
 * Start-up leaves the chain files of idle and ended runs unopened (the
 * theater_chain_fds_open gauge) and recovers the others in the background
 * (theater_recovery_pending); an index that lags its chain (a kill -9 between
 * an append and its index row) is caught by the file's size. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

#define NCOUNTERS 12

static struct server_proc SP;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static char *spawn(const char *manifest)
{
	char *body = tu_fmt("{\"manifest\":%s}", manifest);
	json_t *j = server_call_json(&SP, "POST", "/actors?wait=running&timeout=60", body, 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	return id;
}

static long post(const char *id, const char *what, const char *body, char **answer)
{
	char *url = tu_fmt("%s/actors/%s/%s", SP.base, id, what);
	struct http_result r = {0};
	assert_int_equal(http_do("POST", url, body, strlen(body), NULL, &r), 0);
	long st = r.status;
	if (answer)
		*answer = strdup(r.body ? r.body : "");
	http_result_release(&r);
	free(url);
	return st;
}

static long count_of(const char *id)
{
	char *got = NULL;
	long st = post(id, "requests?timeout=120", "get", &got);
	if (st != 200)
		fail_msg("request to %s: %ld %s", id, st, got);
	long n = atol(got);
	free(got);
	return n;
}

/* The value of a sample of GET /metrics (a line "name value"). */
static long long metric(const char *name)
{
	return server_metric(&SP, name);
}

/* Once the background recovery of start-up is done. */
static void recovery_done(void)
{
	for (int i = 0; i < 1200 && metric("theater_recovery_pending") != 0; i++)
		sleep_ms(100);
	assert_int_equal(metric("theater_recovery_pending"), 0);
}

/* Every event of a chain, oldest first (a new array). */
static json_t *chain_all(const char *id)
{
	char *p = tu_fmt("/actors/%s/chain?limit=1000", id);
	json_t *pg = server_call_json(&SP, "GET", p, NULL, 200);
	free(p);
	json_t *items = json_incref(json_object_get(pg, "items"));
	json_decref(pg);
	return items;
}

static const char *type_at(json_t *all, size_t i)
{
	return json_string_value(json_object_get(json_array_get(all, i), "event_type"));
}

/* The chain once it lists at least n events (events are listed once indexed,
 * which the flusher does right after they are durable). */
static json_t *chain_wait(const char *id, size_t n)
{
	for (int i = 0; i < 600; i++) {
		json_t *all = chain_all(id);
		if (json_array_size(all) >= n)
			return all;
		json_decref(all);
		sleep_ms(100);
	}
	fail_msg("the chain of %s never listed %zu events", id, n);
	return NULL;
}

/* The chain once its last event is of this type. */
static json_t *chain_wait_last(const char *id, const char *type)
{
	for (int i = 0; i < 600; i++) {
		json_t *all = chain_all(id);
		size_t n = json_array_size(all);
		if (n && strcmp(type_at(all, n - 1), type) == 0)
			return all;
		json_decref(all);
		sleep_ms(100);
	}
	fail_msg("the chain of %s never ended on '%s'", id, type);
	return NULL;
}

static size_t chain_len(const char *id)
{
	json_t *all = chain_all(id);
	size_t n = json_array_size(all);
	json_decref(all);
	return n;
}

static void assert_running(const char *id)
{
	char *p = tu_fmt("/actors/%s", id);
	json_t *j = server_call_json(&SP, "GET", p, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	free(p);
}

static void assert_chain_valid(const char *id)
{
	char *v = tu_fmt("/actors/%s/chain/verify", id);
	json_t *vj = server_call_json(&SP, "GET", v, NULL, 200);
	assert_true(json_is_true(json_object_get(vj, "valid")));
	json_decref(vj);
	free(v);
}

/* handle-timer calls recorded in the chain. */
static size_t ticks(const char *id)
{
	json_t *all = chain_all(id);
	size_t i, n = 0;
	json_t *ev;
	json_array_foreach(all, i, ev) {
		const char *fn = json_string_value(json_object_get(json_object_get(ev, "data"),
								   "function"));
		n += strcmp(type_at(all, i), "wasm") == 0 && fn &&
		     strcmp(fn, "handle-timer") == 0;
	}
	json_decref(all);
	return n;
}

/* A new home in SP with the counter and the stream actor as packages. */
static void new_home(void)
{
	memset(&SP, 0, sizeof(SP));
	SP.home = tu_mkdtemp("theater-e2e-lazy");
	SP.roots = tu_fmt("%s/packages", SP.home);
	mkdir(SP.roots, 0755);
	server_put_example_package(&SP, "counter");
	size_t len;
	unsigned char *wasm = server_compile_actor("tests/actors/stream_actor.c", "", &len);
	server_put_package(&SP, "stream.wasm", wasm, len);
	free(wasm);
}

static void test_idle_actors_come_back_lazily(void **state)
{
	(void)state;
	new_home();
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);

	char *ids[NCOUNTERS];
	size_t heads[NCOUNTERS];
	for (int i = 0; i < NCOUNTERS; i++) {
		ids[i] = spawn("{\"name\":\"c\",\"package\":\"counter.wasm\",\"initial_state\":"
			       "{\"count\":0}}");
		char *n = tu_fmt("%d", i + 1);
		assert_int_equal(post(ids[i], "messages", n, NULL), 202);
		free(n);
		assert_int_equal(count_of(ids[i]), i + 1);
		json_t *all = chain_wait(ids[i], 6);     /* spawn, its call, the message's two */
		heads[i] = json_array_size(all);
		json_decref(all);
	}
	char *ticker = spawn("{\"name\":\"ticker\",\"package\":\"stream.wasm\",\"handler\":"
			     "[{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
			     "{\"type\":\"timing\"}]}");
	char *got = NULL;
	assert_int_equal(post(ticker, "requests?timeout=60", "timer p 300 300", &got), 200);
	assert_string_equal(got, "0");
	free(got);
	assert_int_equal(metric("theater_actors_loaded"), NCOUNTERS + 1);

	/* a clean stop: every counter is idle, the ticker has a timer */
	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	recovery_done();
	/* only the ticker's chain file was opened: the index vouched for the others */
	assert_int_equal(metric("theater_chain_fds_open"), 1);
	/* an idle actor's chain is left as it was: the index marked it idle */
	for (int i = 0; i < NCOUNTERS; i++) {
		assert_running(ids[i]);
		json_t *all = chain_all(ids[i]);
		assert_int_equal(json_array_size(all), heads[i]);
		assert_string_equal(type_at(all, heads[i] - 1), "wasm");
		json_decref(all);
	}
	json_t *page = server_call_json(&SP, "GET", "/actors?status=running&limit=100", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(page, "items")), NCOUNTERS + 1);
	json_decref(page);
	/* only the ticker was recovered; it ticks without any mail from here */
	assert_int_equal(metric("theater_actors_loaded"), 1);
	size_t t0 = ticks(ticker);
	for (int i = 0; i < 600 && ticks(ticker) < t0 + 2; i++)
		sleep_ms(100);
	assert_true(ticks(ticker) >= t0 + 2);
	/* reading the state needs no instance */
	char *sp = tu_fmt("/actors/%s/state", ids[3]);
	json_t *st = server_call_json(&SP, "GET", sp, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(st, "count")), 4);
	json_decref(st);
	free(sp);
	assert_int_equal(metric("theater_actors_loaded"), 1);
	assert_int_equal(chain_len(ids[3]), heads[3]);

	/* the first mail recovers one counter, with its state */
	assert_int_equal(post(ids[0], "messages", "10", NULL), 202);
	assert_int_equal(count_of(ids[0]), 11);
	assert_int_equal(metric("theater_actors_loaded"), 2);
	json_t *all = chain_wait(ids[0], heads[0] + 2);
	assert_string_equal(type_at(all, heads[0]), "recovered");
	assert_string_equal(type_at(all, heads[0] + 1), "message-server/received");
	json_t *rd = json_object_get(json_array_get(all, heads[0]), "data");
	assert_string_equal(json_string_value(json_object_get(rd, "reason")), "shutdown");
	assert_int_equal(json_integer_value(json_object_get(rd, "resumed_from")),
			 (json_int_t)heads[0]);
	json_decref(all);
	/* a request is a first need too; the others are still untouched */
	assert_int_equal(count_of(ids[1]), 2);
	assert_int_equal(metric("theater_actors_loaded"), 3);
	for (int i = 2; i < NCOUNTERS; i++)
		assert_int_equal(chain_len(ids[i]), heads[i]);

	/* a crash: counter 0 ended on a call (recovered at once), counter 2 on its
	 * `suspended` event (still lazy); a stop needs no instance */
	server_crash(&SP);
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	recovery_done();
	assert_int_equal(metric("theater_actors_loaded"), 3);    /* counters 0, 1, the ticker */
	assert_int_equal(chain_len(ids[2]), heads[2]);
	assert_int_equal(count_of(ids[0]), 11);
	assert_int_equal(count_of(ids[2]), 3);
	char *stop = tu_fmt("/actors/%s/stop", ids[4]);
	json_decref(server_call_json(&SP, "POST", stop, NULL, 204));
	free(stop);
	char *p4 = tu_fmt("/actors/%s", ids[4]);
	for (int i = 0; i < 600; i++) {
		json_t *j = server_call_json(&SP, "GET", p4, NULL, 200);
		int done = strcmp(json_string_value(json_object_get(j, "status")), "stopped") == 0;
		json_decref(j);
		if (done)
			break;
		sleep_ms(100);
	}
	json_t *j4 = server_call_json(&SP, "GET", p4, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j4, "status")), "stopped");
	json_decref(j4);
	free(p4);
	all = chain_all(ids[4]);
	assert_int_equal(json_array_size(all), heads[4] + 1);
	assert_string_equal(type_at(all, heads[4]), "stopped");
	json_decref(all);
	/* every chain still verifies */
	for (int i = 0; i < NCOUNTERS; i++) {
		char *v = tu_fmt("/actors/%s/chain/verify", ids[i]);
		json_t *vj = server_call_json(&SP, "GET", v, NULL, 200);
		assert_true(json_is_true(json_object_get(vj, "valid")));
		json_decref(vj);
		free(v);
		free(ids[i]);
	}
	server_destroy(&SP);
	free(ticker);
}

/* --idle-release-ms: an idle instance is dropped (a `suspended` event, reason
 * idle) and its next mail brings it back; one with a timer keeps its instance. */
static void test_idle_instances_released(void **state)
{
	(void)state;
	new_home();
	const char *args[] = {"--idle-release-ms", "300", NULL};
	assert_int_equal(server_start(&SP, SP.home, args, NULL), 0);
	char *c = spawn("{\"name\":\"c\",\"package\":\"counter.wasm\",\"initial_state\":"
			"{\"count\":0}}");
	char *ticker = spawn("{\"name\":\"ticker\",\"package\":\"stream.wasm\",\"handler\":"
			     "[{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
			     "{\"type\":\"timing\"}]}");
	char *got = NULL;
	assert_int_equal(post(ticker, "requests?timeout=60", "timer p 1000 1000", &got), 200);
	free(got);
	for (int round = 1; round <= 2; round++) {
		assert_int_equal(post(c, "messages", "5", NULL), 202);
		assert_int_equal(count_of(c), 5 * round);
		/* only the ticker keeps its instance once the counter is idle */
		for (int i = 0; i < 600 && metric("theater_actors_loaded") != 1; i++)
			sleep_ms(100);
		assert_int_equal(metric("theater_actors_loaded"), 1);
		json_t *all = chain_wait_last(c, "suspended");
		size_t n = json_array_size(all);
		json_t *d = json_object_get(json_array_get(all, n - 1), "data");
		assert_string_equal(json_string_value(json_object_get(d, "reason")), "idle");
		json_decref(all);
		assert_running(c);
		/* its next mail brings it back, state intact */
		assert_int_equal(count_of(c), 5 * round);
		all = chain_wait(c, n + 1);
		assert_string_equal(type_at(all, n), "recovered");
		d = json_object_get(json_array_get(all, n), "data");
		assert_string_equal(json_string_value(json_object_get(d, "reason")), "idle");
		json_decref(all);
	}
	assert_true(metric("theater_actor_releases_total") >= 2);
	/* released, then the server stops and starts: still lazy, still right */
	for (int i = 0; i < 600 && metric("theater_actors_loaded") != 1; i++)
		sleep_ms(100);
	json_t *last = chain_wait_last(c, "suspended");
	size_t before = json_array_size(last);
	json_decref(last);
	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(server_start(&SP, SP.home, args, NULL), 0);
	assert_int_equal(chain_len(c), before);
	assert_int_equal(count_of(c), 10);
	assert_chain_valid(c);
	server_destroy(&SP);
	free(c);
	free(ticker);
}

/* Runs SQL on the home's index (server stopped); fails the test on error. */
static void index_exec(const char *sql)
{
	char *path = tu_fmt("%s/theater.db", SP.home);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	free(path);
}

/* The state a kill -9 leaves between a chain append and its index row: the
 * chain has event n, the index's head is n - 1. Here the index even claims
 * that head is idle and ends where event n starts, so only the file's size
 * tells: a start that trusted it would put the next event over event n. */
static void test_index_lags_chain(void **state)
{
	(void)state;
	new_home();
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	char *c = spawn("{\"name\":\"c\",\"package\":\"counter.wasm\",\"initial_state\":"
			"{\"count\":0}}");
	assert_int_equal(post(c, "messages", "7", NULL), 202);
	assert_int_equal(count_of(c), 7);
	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	json_t *all = chain_all(c);
	size_t n = json_array_size(all);
	char *head_type = strdup(type_at(all, n - 1));
	char *parent = strdup(json_string_value(json_object_get(json_array_get(all, n - 1),
								 "parent_hash")));
	json_decref(all);
	assert_int_equal(server_stop(&SP), 0);

	char *sql = tu_fmt("UPDATE runs SET head_seq = %zu, head_hash = '%s', head_idle = 1, "
			   "head_end = (SELECT byte_offset FROM events WHERE actor_id = '%s' AND "
			   "seq = %zu) WHERE id = '%s'", n - 1, parent, c, n, c);
	index_exec(sql);
	free(sql);
	sql = tu_fmt("DELETE FROM events WHERE actor_id = '%s' AND seq = %zu", c, n);
	index_exec(sql);
	free(sql);

	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	recovery_done();
	/* the start indexed event n again; its head (the counter's call, not an idle
	 * event) is recovered after event n, not over it */
	assert_int_equal(count_of(c), 7);
	all = chain_wait(c, n + 1);
	assert_string_equal(type_at(all, n - 1), head_type);
	assert_string_equal(type_at(all, n), "recovered");
	json_t *rd = json_object_get(json_array_get(all, n), "data");
	assert_int_equal(json_integer_value(json_object_get(rd, "resumed_from")), (json_int_t)n);
	json_decref(all);
	assert_chain_valid(c);
	server_destroy(&SP);
	free(head_type);
	free(parent);
	free(c);
}

/* Live runs with work left at a crash (here: timers) come back in the
 * background after the server listens; a request to one of them recovers it
 * first; every one ends up with an instance, ticking. */
static void test_background_recovery(void **state)
{
	(void)state;
	enum { NTICKERS = 24 };
	new_home();
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	char *t[NTICKERS];
	for (int i = 0; i < NTICKERS; i++) {
		t[i] = spawn("{\"name\":\"ticker\",\"package\":\"stream.wasm\",\"handler\":"
			     "[{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
			     "{\"type\":\"timing\"}]}");
		char *got = NULL;
		assert_int_equal(post(t[i], "requests?timeout=60", "timer p 200 200", &got), 200);
		free(got);
	}
	server_crash(&SP);
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	/* the API answers whatever the background recovery has done so far */
	assert_true(metric("theater_recovery_pending") <= NTICKERS);
	char *got = NULL;
	assert_int_equal(post(t[NTICKERS - 1], "requests?timeout=60", "timer q 100000 0", &got),
			 200);
	free(got);
	recovery_done();
	assert_int_equal(metric("theater_actors_loaded"), NTICKERS);
	for (int i = 0; i < NTICKERS; i++) {
		size_t t0 = ticks(t[i]);
		for (int k = 0; k < 600 && ticks(t[i]) < t0 + 1; k++)
			sleep_ms(100);
		assert_true(ticks(t[i]) >= t0 + 1);
		free(t[i]);
	}
	server_destroy(&SP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_actors_come_back_lazily),
		cmocka_unit_test(test_idle_instances_released),
		cmocka_unit_test(test_index_lags_chain),
		cmocka_unit_test(test_background_recovery),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
