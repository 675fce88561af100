/* test_e2e_durable.c - durable actors (docs/durability.md) against the real
 * server: state across clean stops and crashes, exactly-once processing of
 * accepted messages, a crash trial (THEATER_CRASH_TRIALS sets the count; the
 * default suite runs a few, `make test-long` many), state-keeping restarts, the
 * state of ended runs, one server per home, a graceful SIGTERM, and burst
 * spawns whose every 201 survives kill -9. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

static struct server_proc SP;
static const char *ARGS[] = {"--actor-fuel", "100G", "--call-timeout-ms", "60000", NULL};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A slow actor: handle-send spins 100,000 iterations per message byte, then
 * appends one byte to its state, so the state's length counts processed messages;
 * a request answers the state. */
static const char SLOW_WAT[] =
	"(module (memory (export \"memory\") 1)\n"
	" (global $top (mut i32) (i32.const 1024))\n"
	" (func (export \"theater_abi_version\") (result i32) (i32.const 1))\n"
	" (func $alloc (export \"theater_alloc\") (param $n i32) (result i32) (local $p i32)\n"
	"  (local.set $p (global.get $top))\n"
	"  (global.set $top (i32.add (global.get $top) (local.get $n)))\n"
	"  (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))\n"
	"   (then (drop (memory.grow (i32.const 1)))))\n"
	"  (local.get $p))\n"
	" (func (export \"theater_reset_heap\") (global.set $top (i32.const 1024)))\n"
	" (func $result (param $sp i32) (param $sn i32) (param $op i32) (param $on i32) (result i32)\n"
	"  (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (local.get $sp))\n"
	"  (i32.store (i32.const 8) (local.get $sn)) (i32.store (i32.const 12) (local.get $op))\n"
	"  (i32.store (i32.const 16) (local.get $on)) (i32.const 0))\n"
	" (func (export \"init\") (param $sp i32) (param $sn i32) (result i32)\n"
	"  (call $result (local.get $sp) (local.get $sn) (i32.const 0) (i32.const 0)))\n"
	" (func (export \"handle-send\") (param $sp i32) (param $sn i32) (param $mp i32)\n"
	"  (param $mn i32) (result i32) (local $i i32) (local $p i32)\n"
	"  (local.set $i (i32.mul (local.get $mn) (i32.const 100000)))\n"
	"  (block $done (loop $spin (br_if $done (i32.eqz (local.get $i)))\n"
	"   (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br $spin)))\n"
	"  (local.set $p (call $alloc (i32.add (local.get $sn) (i32.const 1))))\n"
	"  (memory.copy (local.get $p) (local.get $sp) (local.get $sn))\n"
	"  (i32.store8 (i32.add (local.get $p) (local.get $sn)) (i32.const 120))\n"
	"  (call $result (local.get $p) (i32.add (local.get $sn) (i32.const 1)) (i32.const 0)\n"
	"   (i32.const 0)))\n"
	" (func (export \"handle-request\") (param $sp i32) (param $sn i32) (param $mp i32)\n"
	"  (param $mn i32) (result i32)\n"
	"  (call $result (local.get $sp) (local.get $sn) (local.get $sp) (local.get $sn))))\n";

static void install_counter(void)
{
	server_put_example_package(&SP, "counter");
	size_t len;
	char *wat = strdup(SLOW_WAT);
	unsigned char *wasm = wat_compile(wat, &len);
	server_put_package(&SP, "slow.wasm", wasm, len);
	free(wasm);
	free(wat);
}

static void start(const char *const *extra)
{
	assert_int_equal(server_start(&SP, NULL, extra ? extra : ARGS, NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	start(NULL);
	install_counter();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	server_destroy(&SP);
	return 0;
}

static char *spawn(const char *manifest)
{
	char *body = tu_fmt("{\"manifest\":%s}", manifest);
	json_t *j = server_call_json(&SP, "POST", "/actors?wait=running", body, 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	return id;
}

static char *spawn_counter(const char *extra)
{
	char *m = tu_fmt("{\"name\":\"c\",\"package\":\"counter.wasm\",\"initial_state\":"
			 "{\"count\":0}%s}", extra ? extra : "");
	char *id = spawn(m);
	free(m);
	return id;
}

static char *spawn_slow(void)
{
	return spawn("{\"name\":\"slow\",\"package\":\"slow.wasm\"}");
}

static long send_msg(const char *id, const char *body)
{
	char *url = tu_fmt("%s/actors/%s/messages", SP.base, id);
	struct http_result r = {0};
	long st = http_do("POST", url, body, strlen(body), NULL, &r) == 0 ? r.status : -1;
	http_result_release(&r);
	free(url);
	return st;
}

/* The answer to a request, as text (asserts 200). */
static char *ask(const char *id, const char *body)
{
	char *url = tu_fmt("%s/actors/%s/requests?timeout=120", SP.base, id);
	struct http_result r = {0};
	assert_int_equal(http_do("POST", url, body, strlen(body), NULL, &r), 0);
	if (r.status != 200)
		fail_msg("request to %s: %ld %s", id, r.status, r.body);
	char *out = strdup(r.body);
	http_result_release(&r);
	free(url);
	return out;
}

static long count_of(const char *id)
{
	char *got = ask(id, "get");
	long n = atol(got);
	free(got);
	return n;
}

/* A message the slow actor spends seconds on (400M iterations): malloc'd. */
static char *long_message(void)
{
	char *msg = malloc(4001);
	memset(msg, 'a', 4000);
	msg[4000] = 0;
	return msg;
}

/* GET /actors/<id><suffix>. */
static json_t *get_json(const char *suffix, const char *id, long want)
{
	char *p = tu_fmt("/actors/%s%s", id, suffix);
	json_t *j = server_call_json(&SP, "GET", p, NULL, want);
	free(p);
	return j;
}

/* Every event of a chain, oldest first. */
static json_t *chain_all(const char *id)
{
	json_t *all = json_array();
	unsigned long long after = 0;
	for (;;) {
		char *p = tu_fmt("/actors/%s/chain?after=%llu&limit=1000", id, after);
		json_t *pg = server_call_json(&SP, "GET", p, NULL, 200);
		free(p);
		json_t *items = json_object_get(pg, "items");
		size_t n = json_array_size(items);
		for (size_t i = 0; i < n; i++)
			json_array_append(all, json_array_get(items, i));
		if (n)
			after = (unsigned long long)json_integer_value(
				json_object_get(json_array_get(items, n - 1), "seq"));
		json_decref(pg);
		if (n < 1000)
			return all;
	}
}

static const char *type_of(json_t *ev)
{
	return json_string_value(json_object_get(ev, "event_type"));
}

struct tally {
	long received_sends;       /* `message-server/received` of kind send */
	long processed_sends;      /* handle-send `wasm` events with a mail seq */
	long dropped;
	int twice;                 /* a mail seq with two outcomes */
	long recovered;
};

static void tally_chain(const char *id, struct tally *t)
{
	memset(t, 0, sizeof(*t));
	json_t *all = chain_all(id);
	size_t n = json_array_size(all);
	char *seen = calloc(n + 2, 1);
	size_t i;
	json_t *ev;
	json_array_foreach(all, i, ev) {
		json_t *d = json_object_get(ev, "data");
		const char *ty = type_of(ev);
		if (strcmp(ty, "message-server/received") == 0 &&
		    strcmp(json_string_value(json_object_get(d, "kind")), "send") == 0)
			t->received_sends++;
		if (strcmp(ty, "recovered") == 0)
			t->recovered++;
		json_int_t mail = json_integer_value(json_object_get(d, "mail"));
		if (strcmp(ty, "wasm") == 0 && mail > 0) {
			if (strcmp(json_string_value(json_object_get(d, "function")),
				   "handle-send") == 0)
				t->processed_sends++;
			if ((size_t)mail <= n && seen[mail]++)
				t->twice = 1;
		}
		if (strcmp(ty, "message-server/dropped") == 0) {
			size_t k;
			json_t *v;
			json_array_foreach(json_object_get(d, "mails"), k, v) {
				json_int_t s = json_integer_value(v);
				t->dropped++;
				if ((size_t)s <= n && seen[s]++)
					t->twice = 1;
			}
		}
	}
	free(seen);
	json_decref(all);
}

/* id's chain holds n sends received and n processed, none twice. */
static void assert_sends_once(const char *id, int n)
{
	struct tally t;
	tally_chain(id, &t);
	assert_int_equal(t.received_sends, n);
	assert_int_equal(t.processed_sends, n);
	assert_false(t.twice);
}

static void assert_status(const char *id, const char *status)
{
	json_t *j = get_json("", id, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), status);
	json_decref(j);
}

/* ---- state across clean stops and crashes ---- */

static void test_state_survives_stop_and_crash(void **state)
{
	(void)state;
	char *id = spawn_counter(NULL);
	assert_int_equal(send_msg(id, "5"), 202);
	assert_int_equal(send_msg(id, "7"), 202);
	assert_int_equal(count_of(id), 12);
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	assert_status(id, "running");
	assert_int_equal(count_of(id), 12);
	assert_int_equal(send_msg(id, "30"), 202);
	assert_int_equal(count_of(id), 42);
	server_crash(&SP);
	start(NULL);
	assert_status(id, "running");
	assert_int_equal(count_of(id), 42);
	/* the chain continues and still verifies; each recovery is an event */
	json_t *v = get_json("/chain/verify", id, 200);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	struct tally t;
	tally_chain(id, &t);
	assert_int_equal(t.recovered, 2);
	assert_int_equal(t.received_sends, 3);
	assert_int_equal(t.processed_sends, 3);
	assert_false(t.twice);
	free(id);
}

/* ---- accepted messages are processed exactly once across a crash ---- */

static void test_accepted_messages_survive_a_crash(void **state)
{
	(void)state;
	char *id = spawn_slow();
	char msg[301];
	memset(msg, 'a', 300);     /* 30M iterations per message */
	msg[300] = 0;
	int accepted = 0;
	for (int i = 0; i < 8; i++)
		accepted += send_msg(id, msg) == 202;
	assert_int_equal(accepted, 8);
	server_crash(&SP);      /* most of them are still in the mailbox */
	start(NULL);
	char *st = ask(id, "state?");   /* queued behind the redelivered messages */
	assert_int_equal((int)strlen(st), 8);
	free(st);
	assert_sends_once(id, 8);
	free(id);
}

/* A second crash while the mail a recovery redelivered is still being handled:
 * the `recovered` event names that mail ("redelivered") but carries no "low",
 * and the next recovery scanned only from it, found nothing open and recorded
 * "redelivered": [] (and "idle"): two acknowledged messages never ran. */
static void test_redelivered_mail_survives_a_second_crash(void **state)
{
	(void)state;
	char *id = spawn_slow();
	char *msg = long_message();   /* far longer than the pauses below */
	assert_int_equal(send_msg(id, msg), 202);
	assert_int_equal(send_msg(id, msg), 202);
	server_crash(&SP);
	start(NULL);
	sleep_ms(200);             /* the first redelivered call is running */
	server_crash(&SP);
	start(NULL);
	char *st = ask(id, "state?");
	assert_int_equal((int)strlen(st), 2);
	free(st);
	assert_sends_once(id, 2);
	free(msg);
	free(id);
}

/* POST /kill of an actor busy in a long call interrupts the call and ends the run
 * `killed` (reason kill_requested), as for an idle actor; it ended `failed` with
 * reason "deadline" although the call had run for half a second. */
static void test_kill_busy_actor(void **state)
{
	(void)state;
	char *id = spawn_slow();
	char *msg = long_message();
	assert_int_equal(send_msg(id, msg), 202);
	sleep_ms(300);                                   /* in the call */
	char *k = tu_fmt("/actors/%s/kill", id);
	json_decref(server_call_json(&SP, "POST", k, NULL, 204));
	json_t *a = NULL;
	for (int i = 0; i < 200; i++) {
		json_decref(a);
		a = get_json("", id, 200);
		if (strcmp(json_string_value(json_object_get(a, "status")), "running") != 0)
			break;
		sleep_ms(50);
	}
	assert_string_equal(json_string_value(json_object_get(a, "status")), "killed");
	assert_string_equal(json_string_value(json_object_get(a, "reason")), "kill_requested");
	json_decref(a);
	server_assert_replays(&SP, id, 0);
	free(k);
	free(msg);
	free(id);
}

/* POST /restart of an actor busy in a long call interrupts the call, as a kill
 * does, and restarts it at once (the run ends `stopped`, then `restarted`); it
 * waited for the call, answered 504 after 10 s, refused requests with "is
 * running, not running" meanwhile, and never restarted. */
static void test_restart_busy_actor(void **state)
{
	(void)state;
	char *id = spawn_slow();
	char *msg = long_message();
	assert_int_equal(send_msg(id, "ab"), 202);
	char *st = ask(id, "state?");            /* the short one is processed */
	assert_string_equal(st, "x");
	free(st);
	assert_int_equal(send_msg(id, msg), 202);
	sleep_ms(300);                           /* in the long call */
	char *p = tu_fmt("/actors/%s/restart", id);
	json_t *r = server_call_json(&SP, "POST", p, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "running");
	json_decref(r);
	st = ask(id, "state?");                  /* the state of the last call that ended */
	assert_string_equal(st, "x");
	free(st);
	server_assert_replays(&SP, id, 0);
	free(p);
	free(msg);
	free(id);
}

/* A message over 4 KiB keeps its bytes in the content store and a reference in the
 * chain. When the store cannot keep them (here its folder is a file; in life a full
 * disk), the message is refused: acknowledged, its `received` event would hold only
 * their hash, and a crash before it was handled would lose it. */
static void test_unkept_message_refused(void **state)
{
	(void)state;
	char *id = spawn_counter(NULL);
	char *data_dir = tu_fmt("%s/store/theater-data", SP.home);
	tu_rmtree(data_dir);
	assert_int_equal(tu_write_file(data_dir, "x", 1), 0);
	char *big = malloc(8193);
	memset(big, 'b', 8192);
	big[8192] = 0;
	char *url = tu_fmt("%s/actors/%s/messages", SP.base, id);
	struct http_result r = {0};
	assert_int_equal(http_do("POST", url, big, 8192, NULL, &r), 0);
	if (r.status != 500 || !strstr(r.body, "\"code\":\"io_error\"") ||
	    !strstr(r.body, "cannot keep the message"))
		fail_msg("a message the store cannot keep: %ld %s", r.status, r.body);
	http_result_release(&r);
	assert_int_equal(send_msg(id, "inc"), 202);      /* small ones still go in the chain */
	assert_int_equal(unlink(data_dir), 0);
	assert_int_equal(send_msg(id, big), 202);
	server_crash(&SP);
	start(NULL);
	json_t *all = chain_all(id);
	size_t i, big_ones = 0;
	json_t *ev;
	json_array_foreach(all, i, ev) {
		json_t *d = json_object_get(json_object_get(ev, "data"), "data");
		if (strcmp(type_of(ev), "message-server/received") == 0 &&
		    json_integer_value(json_object_get(d, "size")) == 8192) {
			big_ones++;
			assert_non_null(json_object_get(d, "ref"));
		}
	}
	assert_int_equal(big_ones, 1);
	json_decref(all);
	free(url);
	free(big);
	free(data_dir);
	free(id);
}

/* ---- the crash trial ---- */

struct sender {
	const char *id;
	volatile int *stop;
	long sent, acked;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	while (!__atomic_load_n(s->stop, __ATOMIC_ACQUIRE)) {   /* TSan: no plain read */
		s->sent++;
		if (send_msg(s->id, "1") == 202)
			s->acked++;
	}
	return NULL;
}

static void test_crash_trial(void **state)
{
	(void)state;
	const char *env = getenv("THEATER_CRASH_TRIALS");
	int trials = env ? atoi(env) : 5;
	char *ids[2] = {spawn_counter(NULL), spawn_counter(NULL)};
	long acked[2] = {0, 0}, sent[2] = {0, 0};
	srand((unsigned)time(NULL));
	for (int trial = 0; trial < trials; trial++) {
		volatile int stop = 0;
		struct sender s[4];
		pthread_t th[4];
		for (int k = 0; k < 4; k++) {
			s[k] = (struct sender){.id = ids[k % 2], .stop = &stop};
			pthread_create(&th[k], NULL, sender_main, &s[k]);
		}
		sleep_ms(20 + rand() % 150);
		server_crash(&SP);
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		for (int k = 0; k < 4; k++) {
			pthread_join(th[k], NULL);
			acked[k % 2] += s[k].acked;
			sent[k % 2] += s[k].sent;
		}
		start(NULL);
		for (int k = 0; k < 2; k++) {
			assert_status(ids[k], "running");
			long count = count_of(ids[k]);
			struct tally t;
			tally_chain(ids[k], &t);
			/* every acknowledged message, and never one twice */
			if (count < acked[k] || count > sent[k] || count != t.received_sends ||
			    t.processed_sends != t.received_sends || t.twice)
				fail_msg("trial %d, actor %d: count %ld, acked %ld, sent %ld, "
					 "received %ld, processed %ld, twice %d", trial, k, count,
					 acked[k], sent[k], t.received_sends, t.processed_sends,
					 t.twice);
		}
	}
	printf("crash trial: %d trials, %ld + %ld acknowledged messages, none lost or "
	       "repeated\n", trials, acked[0], acked[1]);
	free(ids[0]);
	free(ids[1]);
}

/* ---- burst spawns: every 201 survives kill -9 (issue 16) ---- */

#define BURST_MAX 4096

struct spawner {
	volatile int *stop;
	char **ids;               /* the 201'd ids, BURST_MAX at most */
	int n;
};

static void *spawner_main(void *arg)
{
	struct spawner *sp = arg;
	char *url = tu_fmt("%s/actors?wait=running", SP.base);
	const char *body = "{\"manifest\":{\"name\":\"burst\",\"package\":\"counter.wasm\","
			   "\"static_package\":true,\"initial_state\":{\"count\":0}}}";
	while (!__atomic_load_n(sp->stop, __ATOMIC_ACQUIRE) && sp->n < BURST_MAX) {
		struct http_result r = {0};
		if (http_do("POST", url, body, strlen(body), NULL, &r) == 0 && r.status == 201) {
			json_t *j = json_loads(r.body, 0, NULL);
			const char *id = json_string_value(json_object_get(j, "id"));
			if (id)
				sp->ids[sp->n++] = strdup(id);
			json_decref(j);
		}
		http_result_release(&r);
	}
	free(url);
	return NULL;
}

/* Every run the list (the index) shows under name `burst`, into *ids. */
static size_t listed_burst(char ***ids)
{
	size_t n = 0, cap = 64;
	*ids = malloc(cap * sizeof(**ids));
	char *cursor = NULL;
	do {
		char *p = cursor ? tu_fmt("/actors?name=burst&limit=500&cursor=%s", cursor)
				 : tu_fmt("/actors?name=burst&limit=500");
		json_t *pg = server_call_json(&SP, "GET", p, NULL, 200);
		free(p);
		free(cursor);
		cursor = NULL;
		json_t *items = json_object_get(pg, "items");
		for (size_t i = 0; i < json_array_size(items); i++) {
			if (n == cap)
				*ids = realloc(*ids, (cap *= 2) * sizeof(**ids));
			(*ids)[n++] = strdup(json_string_value(
				json_object_get(json_array_get(items, i), "id")));
		}
		const char *next = json_string_value(json_object_get(pg, "next_cursor"));
		if (next && *next)
			cursor = strdup(next);
		json_decref(pg);
	} while (cursor);
	return n;
}

static int listed(char **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], id) == 0)
			return 1;
	return 0;
}

/* Four clients spawn as fast as they can (the spawns' syncs are shared); the
 * server is killed; every spawn that was answered 201 is back running, its
 * chain verifies, the index lists it, and it still answers. */
static void test_burst_spawns_survive_a_crash(void **state)
{
	(void)state;
	srand((unsigned)time(NULL));
	long total = 0;
	/* a 201 with ?wait=running means the index lists the run as running too */
	for (int i = 0; i < 8; i++) {
		char *id = spawn("{\"name\":\"burst\",\"package\":\"counter.wasm\","
				 "\"static_package\":true,\"initial_state\":{\"count\":0}}");
		char *p = tu_fmt("/actors?name=burst&status=running&limit=500");
		json_t *pg = server_call_json(&SP, "GET", p, NULL, 200);
		json_t *items = json_object_get(pg, "items");
		int found = 0;
		for (size_t k = 0; k < json_array_size(items); k++)
			found += strcmp(json_string_value(json_object_get(json_array_get(items, k),
									   "id")), id) == 0;
		assert_int_equal(found, 1);
		assert_int_equal(json_array_size(items), (size_t)i + 1);
		json_decref(pg);
		free(p);
		free(id);
	}
	for (int trial = 0; trial < 3; trial++) {
		volatile int stop = 0;
		struct spawner sp[4];
		pthread_t th[4];
		for (int k = 0; k < 4; k++) {
			sp[k] = (struct spawner){.stop = &stop, .ids = calloc(BURST_MAX, sizeof(char *))};
			pthread_create(&th[k], NULL, spawner_main, &sp[k]);
		}
		sleep_ms(150 + rand() % 300);
		server_crash(&SP);
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		for (int k = 0; k < 4; k++)
			pthread_join(th[k], NULL);
		start(NULL);
		char **all = NULL;
		size_t nall = listed_burst(&all);
		for (int k = 0; k < 4; k++) {
			for (int i = 0; i < sp[k].n; i++) {
				const char *id = sp[k].ids[i];
				assert_status(id, "running");
				if (!listed(all, nall, id))
					fail_msg("trial %d: spawned %s is not in the index", trial, id);
				json_t *v = get_json("/chain/verify", id, 200);
				if (!json_is_true(json_object_get(v, "valid")))
					fail_msg("trial %d: the chain of %s does not verify", trial, id);
				json_decref(v);
				total++;
			}
		}
		/* the last one of a client still runs its package */
		for (int k = 0; k < 4; k++)
			if (sp[k].n)
				assert_int_equal(count_of(sp[k].ids[sp[k].n - 1]), 0);
		for (size_t i = 0; i < nall; i++)
			free(all[i]);
		free(all);
		for (int k = 0; k < 4; k++) {
			for (int i = 0; i < sp[k].n; i++)
				free(sp[k].ids[i]);
			free(sp[k].ids);
		}
	}
	assert_true(total > 0);
	printf("burst spawns: %ld acknowledged spawns over 3 crashes, all back\n", total);
}

/* ---- restarts keep the last good state; ?state=initial starts afresh ---- */

static void test_restart_keeps_state(void **state)
{
	(void)state;
	char *id = spawn_counter(NULL);
	assert_int_equal(send_msg(id, "9"), 202);
	assert_int_equal(count_of(id), 9);
	char *p = tu_fmt("/actors/%s/restart", id);
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	assert_int_equal(count_of(id), 9);
	char *pi = tu_fmt("/actors/%s/restart?state=initial", id);
	json_decref(server_call_json(&SP, "POST", pi, NULL, 200));
	assert_int_equal(count_of(id), 0);
	char *bad = tu_fmt("/actors/%s/restart?state=newest", id);
	json_decref(server_call_json(&SP, "POST", bad, NULL, 400));
	/* an ended run answers its last state, also after a restart of the server */
	assert_int_equal(send_msg(id, "4"), 202);
	assert_int_equal(count_of(id), 4);
	char *stop = tu_fmt("/actors/%s/stop", id);
	json_decref(server_call_json(&SP, "POST", stop, NULL, 204));
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	char *sp = tu_fmt("%s/actors/%s/state", SP.base, id);
	struct http_result r = {0};
	assert_int_equal(http_do("GET", sp, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"count\":4}");
	http_result_release(&r);
	/* restarted, it runs again: no stopped_at from the run's earlier end */
	json_t *before = get_json("", id, 200);
	assert_true(json_is_string(json_object_get(before, "stopped_at")));
	json_decref(before);
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	json_t *after = get_json("", id, 200);
	assert_string_equal(json_string_value(json_object_get(after, "status")), "running");
	assert_true(json_is_null(json_object_get(after, "stopped_at")));
	json_decref(after);
	free(sp);
	free(stop);
	free(bad);
	free(pi);
	free(p);
	free(id);
}

/* A restart's event says which state it ran from ("state": "last" or
 * "initial"); it holds no state. Recovery once took that word for the state:
 * after a restart, an idle release, a crash or a clean stop brought the
 * counter back with the state `last`, and its next call failed. */
static void test_restart_then_recover(void **state)
{
	(void)state;
	char *id = spawn_counter(NULL);
	char *p = tu_fmt("/actors/%s/restart", id);
	char *sp = tu_fmt("/actors/%s/state", id);
	assert_int_equal(send_msg(id, "7"), 202);
	assert_int_equal(count_of(id), 7);        /* processed: a restart drops queued mail */
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	server_crash(&SP);
	start(NULL);
	assert_int_equal(count_of(id), 7);
	/* two restarts in a row with no call between, then a clean stop */
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	char *url = tu_fmt("%s%s", SP.base, sp);
	struct http_result r = {0};
	assert_int_equal(http_do("GET", url, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"count\":7}");     /* read from the chain, before any mail */
	http_result_release(&r);
	free(url);
	assert_int_equal(send_msg(id, "1"), 202);
	assert_int_equal(count_of(id), 8);
	/* an initial restart, then a crash before any other event */
	char *pi = tu_fmt("/actors/%s/restart?state=initial", id);
	json_decref(server_call_json(&SP, "POST", pi, NULL, 200));
	server_crash(&SP);
	start(NULL);
	assert_int_equal(count_of(id), 0);
	/* and an actor that goes idle after a restart comes back with its state */
	assert_int_equal(server_stop(&SP), 0);
	const char *idle[] = {"--idle-release-ms", "300", NULL};
	start(idle);
	assert_int_equal(send_msg(id, "3"), 202);
	assert_int_equal(count_of(id), 3);
	json_decref(server_call_json(&SP, "POST", p, NULL, 200));
	sleep_ms(1500);                                  /* released meanwhile */
	assert_int_equal(count_of(id), 3);
	server_assert_replays(&SP, id, 0);
	free(pi);
	free(sp);
	free(p);
	free(id);
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	/* the initial state of an initial restart is the spawn's own (merged with the
	 * spawn-time state, as its `spawned` event records), also for a server that
	 * did not spawn it: it was the manifest's alone after a restart of the server */
	json_t *sj = server_call_json(&SP, "POST", "/actors?wait=running",
				      "{\"manifest\":{\"name\":\"c\",\"package\":\"counter.wasm\","
				      "\"initial_state\":{\"count\":0}},\"initial_state\":{\"count\":3}}",
				      201);
	char *id2 = strdup(json_string_value(json_object_get(sj, "id")));
	json_decref(sj);
	assert_int_equal(send_msg(id2, "10"), 202);
	assert_int_equal(count_of(id2), 13);
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	char *pi2 = tu_fmt("/actors/%s/restart?state=initial", id2);
	json_decref(server_call_json(&SP, "POST", pi2, NULL, 200));
	assert_int_equal(count_of(id2), 3);
	server_assert_replays(&SP, id2, 0);
	free(pi2);
	free(id2);
}

/* The manifest's restart table says which state a policy restart uses. */
static void test_restart_state_in_manifest(void **state)
{
	(void)state;
	char *fresh = spawn_counter(",\"restart\":{\"policy\":\"on-failure\","
				    "\"state\":\"initial\"}");
	json_t *m = get_json("/manifest", fresh, 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "restart"),
							      "state")), "initial");
	json_decref(m);
	const char *body = "{\"manifest\":{\"name\":\"c\",\"package\":\"counter.wasm\","
			   "\"restart\":{\"state\":\"newest\"}}}";
	json_t *j = server_call_json(&SP, "POST", "/actors", body, 422);
	assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "initial"));
	json_decref(j);
	free(fresh);
}

/* ---- one server per home ---- */

static void test_one_server_per_home(void **state)
{
	(void)state;
	struct server_proc second = {0};
	second.home = strdup(SP.home);
	second.roots = strdup(SP.roots);
	assert_int_not_equal(server_start(&second, NULL, ARGS, NULL), 0);
	char *log = tu_read_file(second.log_path, NULL);
	/* both servers log to home/server.log; the refusal names the holder */
	char *pid = tu_fmt("pid %d", (int)SP.pid);
	if (!log || !strstr(log, "in use by another theater-server") || !strstr(log, pid))
		fail_msg("no clear refusal in the log: %s", log ? log : "(none)");
	free(pid);
	free(log);
	free(second.home);
	free(second.roots);
	/* the first one is untouched */
	json_decref(server_call_json(&SP, "GET", "/health", NULL, 200));
}

/* ---- SIGTERM: running calls finish; past the grace period they run again ---- */

/* Waits until the actor took its queued mail (a call is running or done). */
static void wait_mailbox_empty(const char *id)
{
	for (int i = 0; i < 2000; i++) {
		json_t *m = get_json("/metrics", id, 200);
		json_int_t depth = json_integer_value(json_object_get(json_object_get(m, "mailbox"),
								      "depth"));
		json_decref(m);
		if (depth == 0)
			return;
		sleep_ms(10);
	}
	fail_msg("the actor never took its message");
}

static void test_sigterm_lets_calls_finish(void **state)
{
	(void)state;
	char *id = spawn_slow();
	char msg[201];
	memset(msg, 'a', 200);      /* 20M iterations: a call well inside the grace period */
	msg[200] = 0;
	assert_int_equal(send_msg(id, msg), 202);
	wait_mailbox_empty(id);
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	assert_status(id, "running");
	char *st = ask(id, "state?");
	assert_int_equal((int)strlen(st), 1);
	free(st);
	struct tally t;
	tally_chain(id, &t);
	assert_int_equal(t.processed_sends, 1);
	/* a grace period too short for the call: it is cut, not failed, and runs
	 * again on the next start, once */
	server_stop(&SP);
	const char *short_grace[] = {"--actor-fuel", "100G", "--call-timeout-ms", "60000",
				     "--shutdown-grace-ms", "20", NULL};
	start(short_grace);
	char big[2001];
	memset(big, 'a', 2000);     /* 200M iterations: far longer than 20 ms */
	big[2000] = 0;
	assert_int_equal(send_msg(id, big), 202);
	wait_mailbox_empty(id);
	assert_int_equal(server_stop(&SP), 0);
	char *log = tu_read_file(SP.log_path, NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "interrupting them"));
	free(log);
	start(NULL);
	assert_status(id, "running");
	st = ask(id, "state?");
	assert_int_equal((int)strlen(st), 2);
	free(st);
	tally_chain(id, &t);
	assert_int_equal(t.processed_sends, 2);
	assert_false(t.twice);
	json_t *all = chain_all(id);
	size_t i;
	json_t *ev;
	json_array_foreach(all, i, ev)
		assert_string_not_equal(type_of(ev), "failed");
	json_decref(all);
	free(id);
}

/* ---- Idempotency-Key ---- */

static long post_key(const char *path, const char *body, const char *key,
		     struct http_result *r)
{
	char *url = tu_fmt("%s%s", SP.base, path);
	char *h = tu_fmt("Idempotency-Key: %s", key);
	const char *headers[] = {h, "Content-Type: application/json", NULL};
	assert_int_equal(http_do("POST", url, body, strlen(body), headers, r), 0);
	free(url);
	free(h);
	return r->status;
}

static int replayed(const struct http_result *r)
{
	char *v = http_header(r, "Idempotent-Replayed");
	int yes = v && strcmp(v, "true") == 0;
	free(v);
	return yes;
}

static void test_idempotency_keys(void **state)
{
	(void)state;
	struct http_result r = {0};
	const char *spawn_body = "{\"manifest\":{\"name\":\"idem\",\"package\":\"counter.wasm\"}}";
	assert_int_equal(post_key("/actors?wait=running", spawn_body, "spawn-1", &r), 201);
	assert_false(replayed(&r));
	json_t *j = json_loads(r.body, 0, NULL);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	char *first = strdup(r.body);
	http_result_release(&r);
	/* the retry gets the first outcome: the same run, not a second one */
	assert_int_equal(post_key("/actors?wait=running", spawn_body, "spawn-1", &r), 201);
	assert_true(replayed(&r));
	assert_string_equal(r.body, first);
	http_result_release(&r);
	json_t *list = server_call_json(&SP, "GET", "/actors?name=idem", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(list, "items")), 1);
	json_decref(list);
	/* The query is part of the request: the same key and body with another query
	 * is another request (it replayed the first answer before). */
	assert_int_equal(post_key("/actors?wait=created", spawn_body, "spawn-1", &r), 422);
	assert_false(replayed(&r));
	assert_non_null(strstr(r.body, "idempotency_key_reused"));
	http_result_release(&r);
	assert_int_equal(post_key("/actors", spawn_body, "spawn-1", &r), 422);
	http_result_release(&r);
	char *mp = tu_fmt("/actors/%s/messages", id);
	assert_int_equal(post_key(mp, "5", "msg-1", &r), 202);
	http_result_release(&r);
	assert_int_equal(post_key(mp, "5", "msg-1", &r), 202);
	assert_true(replayed(&r));
	http_result_release(&r);
	assert_int_equal(count_of(id), 5);
	/* the same key with another request is refused */
	assert_int_equal(post_key(mp, "6", "msg-1", &r), 422);
	assert_non_null(strstr(r.body, "idempotency_key_reused"));
	http_result_release(&r);
	assert_int_equal(post_key(mp, "6", "bad key", &r), 400);
	http_result_release(&r);
	/* requests: the first answer comes back */
	char *rp = tu_fmt("/actors/%s/requests", id);
	assert_int_equal(post_key(rp, "get", "req-1", &r), 200);
	assert_string_equal(r.body, "5");
	http_result_release(&r);
	assert_int_equal(send_msg(id, "1"), 202);
	assert_int_equal(post_key(rp, "get", "req-1", &r), 200);
	assert_true(replayed(&r));
	assert_string_equal(r.body, "5");
	http_result_release(&r);
	/* keys are remembered across restarts */
	assert_int_equal(server_stop(&SP), 0);
	start(NULL);
	assert_int_equal(post_key(mp, "5", "msg-1", &r), 202);
	assert_true(replayed(&r));
	http_result_release(&r);
	assert_int_equal(count_of(id), 6);
	free(rp);
	free(mp);
	free(first);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_survives_stop_and_crash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_accepted_messages_survive_a_crash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_redelivered_mail_survives_a_second_crash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kill_busy_actor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_busy_actor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unkept_message_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_trial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_spawns_survive_a_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_then_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_state_in_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_server_per_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_lets_calls_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency_keys, setup, teardown),
	};
	const char *only = getenv("THEATER_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
