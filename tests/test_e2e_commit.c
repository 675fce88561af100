/* test_e2e_commit.c - group commit of REST messages (supervisor/flusher.c, the
 * committer) against the real server: many concurrent senders to one actor and
 * to many actors are all acknowledged, every acknowledged message is in its
 * actor's chain once, in each sender's order, the chain verifies, and all of it
 * survives kill -9 right after the last acknowledgement; a spawn answered before
 * its index write (the flusher's) is listed, stopped cleanly and survives kill -9
 * inside that window. No durations asserted. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

static struct server_proc SP;
static const char *ARGS[] = {"--call-timeout-ms", "60000", "--mailbox", "100000", NULL};

#define SENDERS 16
#define PER_SENDER 25

static void start(void)
{
	assert_int_equal(server_start(&SP, NULL, ARGS, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	start();
	server_put_example_package(&SP, "counter");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	server_destroy(&SP);
	return 0;
}

static char *spawn_counter(void)
{
	json_t *j = server_call_json(&SP, "POST", "/actors?wait=running",
				     "{\"manifest\":{\"name\":\"c\",\"package\":\"counter.wasm\"}}",
				     201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

/* One sender: PER_SENDER messages "\"s<k> m<i>\"" (JSON strings: the counter
 * adds 1 for each), one at a time; counts the 202s. */
struct sender {
	const char *id;
	int k;
	int acked;
	long other;                /* the first status that was not 202 */
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	char *url = tu_fmt("%s/actors/%s/messages", SP.base, s->id);
	for (int i = 0; i < PER_SENDER; i++) {
		char body[64];
		int n = snprintf(body, sizeof(body), "\"s%02d m%03d\"", s->k, i);
		struct http_result r = {0};
		long st = http_do("POST", url, body, (size_t)n, NULL, &r) == 0 ? r.status : -1;
		if (st == 202)
			s->acked++;
		else if (!s->other)
			s->other = st;
		http_result_release(&r);
	}
	free(url);
	return NULL;
}

/* Runs n senders at once, sender k to ids[k % nids]; asserts every message was
 * acknowledged. */
static void run_senders(char **ids, int nids, int n)
{
	struct sender s[SENDERS];
	pthread_t th[SENDERS];
	for (int k = 0; k < n; k++) {
		s[k] = (struct sender){.id = ids[k % nids], .k = k};
		assert_int_equal(pthread_create(&th[k], NULL, sender_main, &s[k]), 0);
	}
	for (int k = 0; k < n; k++)
		pthread_join(th[k], NULL);        /* all of them before a failure leaves */
	for (int k = 0; k < n; k++) {
		if (s[k].acked != PER_SENDER)
			fail_msg("sender %d: %d of %d acknowledged (then %ld)", k, s[k].acked,
				 PER_SENDER, s[k].other);
	}
}

/* Checks the chain of id: it verifies, and its `received` sends are messages of
 * the senders k with k % nids == which, each once, in each sender's order.
 * Returns how many there are (pages list what is indexed, which may follow the
 * acknowledgement by a few milliseconds). */
static int chain_sends(const char *id, int nids, int which, int n)
{
	char *vp = tu_fmt("/actors/%s/chain/verify", id);
	json_t *v = server_call_json(&SP, "GET", vp, NULL, 200);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	free(vp);
	int next[SENDERS] = {0};
	int got = 0;
	unsigned long long after = 0;
	for (;;) {
		char *p = tu_fmt("/actors/%s/chain?after=%llu&limit=1000", id, after);
		json_t *pg = server_call_json(&SP, "GET", p, NULL, 200);
		free(p);
		json_t *items = json_object_get(pg, "items");
		size_t i, cnt = json_array_size(items);
		json_t *ev;
		json_array_foreach(items, i, ev) {
			after = (unsigned long long)json_integer_value(json_object_get(ev, "seq"));
			const char *ty = json_string_value(json_object_get(ev, "event_type"));
			json_t *d = json_object_get(ev, "data");
			const char *kind = json_string_value(json_object_get(d, "kind"));
			if (strcmp(ty, "message-server/received") != 0 || !kind ||
			    strcmp(kind, "send") != 0)
				continue;     /* the requests of count_of are not counted */
			const char *text = json_string_value(json_object_get(d, "data"));
			int k = -1, m = -1;
			if (!text || sscanf(text, "\"s%d m%d\"", &k, &m) != 2 || k < 0 ||
			    k >= n || k % nids != which)
				fail_msg("chain of %s: unexpected message %s", id,
					 text ? text : "(not text)");
			if (m != next[k])
				fail_msg("chain of %s: sender %d's message %d where %d was due", id,
					 k, m, next[k]);
			next[k]++;
			got++;
		}
		json_decref(pg);
		if (cnt < 1000)
			break;
	}
	return got;
}

/* chain_sends until it has every message of those senders (30 s at most). */
static void check_chain(const char *id, int nids, int which, int n)
{
	int want = 0, got = 0;
	for (int k = which; k < n; k += nids)
		want += PER_SENDER;
	for (int tries = 0; tries < 300 && (got = chain_sends(id, nids, which, n)) < want;
	     tries++) {
		struct timespec ts = {0, 100000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(got, want);
}

/* The counter's count, once it has taken every message before the request. */
static long count_of(const char *id)
{
	char *url = tu_fmt("%s/actors/%s/requests?timeout=120", SP.base, id);
	struct http_result r = {0};
	assert_int_equal(http_do("POST", url, "get", 3, NULL, &r), 0);
	if (r.status != 200)
		fail_msg("request to %s: %ld %s", id, r.status, r.body);
	long n = atol(r.body);
	http_result_release(&r);
	free(url);
	return n;
}

static void test_many_senders_one_actor(void **state)
{
	(void)state;
	char *id = spawn_counter();
	run_senders(&id, 1, SENDERS);
	check_chain(id, 1, 0, SENDERS);
	assert_int_equal(count_of(id), SENDERS * PER_SENDER);
	server_crash(&SP);         /* every acknowledged message is on disk */
	start();
	check_chain(id, 1, 0, SENDERS);
	assert_int_equal(count_of(id), SENDERS * PER_SENDER);
	free(id);
}

/* Many chains in one batch: the committer syncs them with one syncfs. */
static void test_many_senders_many_actors(void **state)
{
	(void)state;
	char *ids[SENDERS];
	for (int k = 0; k < SENDERS; k++)
		ids[k] = spawn_counter();
	run_senders(ids, SENDERS, SENDERS);
	server_crash(&SP);         /* at once: nothing else syncs them meanwhile */
	start();
	for (int k = 0; k < SENDERS; k++) {
		check_chain(ids[k], SENDERS, k, SENDERS);
		assert_int_equal(count_of(ids[k]), PER_SENDER);
		free(ids[k]);
	}
}

static json_t *find_run(json_t *list, const char *id)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(list, "items"), i, r)
		if (strcmp(json_string_value(json_object_get(r, "id")), id) == 0)
			return r;
	return NULL;
}

/* A spawn is answered once its `started` is durable in the chain; the index write
 * (its run row, events and lifecycle rows, one transaction with other spawns')
 * follows on the flusher within its window. THEATER_TEST_FLUSH_WINDOW_MS makes
 * that window 1.5 s, long enough to read in: whatever reads the index after the
 * answer waits for it (the list, the chain's events with their times, the counts
 * of /metrics); a clean stop inside the window indexes it first (marked idle like
 * any idle actor); and a kill -9 inside the window loses nothing: the next start
 * indexes the chain the index lacked, and the actor runs again. */
static void test_spawn_answered_before_index(void **state)
{
	(void)state;
	assert_int_equal(server_stop(&SP), 0);
	setenv("THEATER_TEST_FLUSH_WINDOW_MS", "1500", 1);
	start();
	char *id = spawn_counter();
	json_t *list = server_call_json(&SP, "GET", "/actors?status=running", NULL, 200);
	json_t *row = find_run(list, id);
	if (!row)
		fail_msg("a spawn answered 201 is not listed: %s", json_dumps(list, 0));
	assert_string_equal(json_string_value(json_object_get(row, "status")), "running");
	json_decref(list);
	char *path = tu_fmt("/actors/%s/chain?limit=100", id);
	json_t *page = server_call_json(&SP, "GET", path, NULL, 200);
	json_t *events = json_object_get(page, "items");
	assert_true(json_array_size(events) >= 3);        /* spawned, init, started */
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev)
		if (!json_is_string(json_object_get(ev, "timestamp")))
			fail_msg("event %zu has no time from the index: %s", i,
				 json_dumps(ev, 0));
	json_decref(page);
	free(path);
	struct http_result m = {0};
	char *metrics = tu_fmt("%s/metrics", SP.base);
	assert_int_equal(http_do("GET", metrics, NULL, 0, NULL, &m), 0);
	assert_non_null(strstr(m.body, "theater_actors{status=\"running\"} 1\n"));
	http_result_release(&m);
	free(metrics);
	/* a clean stop inside the window indexes it first: both idle actors are
	 * marked idle in the index, neither gets a `suspended` event */
	char *id3 = spawn_counter();
	assert_int_equal(server_stop(&SP), 0);
	char *log = tu_read_file(SP.log_path, NULL);
	if (!log || !strstr(log, "(2 marked idle in the index"))
		fail_msg("a spawn answered just before a clean stop was not marked idle:\n%s", log);
	free(log);
	start();
	/* the second is answered, and the server killed inside the window */
	char *id2 = spawn_counter();
	server_crash(&SP);
	unsetenv("THEATER_TEST_FLUSH_WINDOW_MS");
	start();
	char *p2 = tu_fmt("/actors/%s", id2);
	json_t *j = server_call_json(&SP, "GET", p2, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	log = tu_read_file(SP.log_path, NULL);
	assert_non_null(log);
	if (!strstr(log, "(1 runs it lacked indexed from their chains)"))
		fail_msg("the start did not index the crashed spawn's chain:\n%s", log);
	free(log);
	char *msg = tu_fmt("/actors/%s/messages", id2);
	json_decref(server_call_json(&SP, "POST", msg, "5", 202));
	assert_int_equal(count_of(id2), 5);
	free(msg);
	free(p2);
	free(id2);
	free(id3);
	free(id);
}

/* Errors found before the write are answered at once and write nothing. */
static void test_refused_messages(void **state)
{
	(void)state;
	char *id = spawn_counter();
	char *url = tu_fmt("%s/actors/%s/messages", SP.base,
			   "00000000-0000-4000-8000-000000000000");
	struct http_result r = {0};
	assert_int_equal(http_do("POST", url, "1", 1, NULL, &r), 0);
	assert_int_equal(r.status, 404);
	http_result_release(&r);
	free(url);
	char *p = tu_fmt("/actors/%s/stop", id);
	json_decref(server_call_json(&SP, "POST", p, NULL, 204));
	free(p);
	url = tu_fmt("%s/actors/%s/messages", SP.base, id);
	assert_int_equal(http_do("POST", url, "1", 1, NULL, &r), 0);
	assert_int_equal(r.status, 409);
	http_result_release(&r);
	free(url);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_senders_one_actor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_senders_many_actors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_answered_before_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
