/* test_e2e_sse.c - server-sent events end to end: replay then live, resume by
 * Last-Event-ID and ?after= with no gap and no duplicate, 204 once a finished
 * chain has been fully seen, and the lifecycle stream of all actors. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"
#include "tests/support/sse_client.h"

static struct server_proc SP;

/* SP.base + "/actors/" + id + tail */
static char *url(const char *id, const char *tail)
{
	return tu_fmt("%s/actors/%s%s", SP.base, id, tail);
}

static char *spawn_package(const char *package)
{
	char *u = tu_fmt("%s/actors?wait=running", SP.base);
	char *body = tu_fmt("{\"manifest\":{\"name\":\"streamed\",\"package\":\"%s\"}}",
			    package);
	struct http_result r;
	assert_int_equal(http_do("POST", u, body, strlen(body), NULL, &r), 0);
	assert_int_equal(r.status, 201);
	json_t *j = json_loads(r.body, 0, NULL);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	http_result_release(&r);
	free(body);
	free(u);
	return id;
}

static char *spawn(void)
{
	return spawn_package("m.wasm");
}

static void stop(const char *id)
{
	char *u = url(id, "/stop");
	struct http_result r;
	assert_int_equal(http_do("POST", u, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 204);
	http_result_release(&r);
	free(u);
}

/* The ids of the chain frames, checked consecutive from `first`; returns how many. */
static size_t check_ids(const struct sse_result *r, unsigned long first)
{
	unsigned long want = first;
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (!r->frames[i].id)
			continue;
		unsigned long got = strtoul(r->frames[i].id, NULL, 10);
		if (got != want)
			fail_msg("expected event id %lu, got %lu (gap or duplicate)", want, got);
		json_t *d = json_loads(r->frames[i].data, 0, NULL);
		assert_non_null(d);
		assert_int_equal(json_integer_value(json_object_get(d, "seq")), (json_int_t)got);
		json_decref(d);
		want++;
		n++;
	}
	return n;
}

static int has_event(const struct sse_result *r, const char *event)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->frames[i].event, event))
			return 1;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	assert_int_equal(server_start(&SP, NULL, NULL, NULL), 0);
	server_put_hello_package(&SP, "m.wasm");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	server_destroy(&SP);
	return 0;
}

static void test_replay_finished(void **state)
{
	(void)state;
	char *id = spawn();
	stop(id);
	char *u = url(id, "/chain");
	struct sse_result r;
	sse_collect(u, NULL, 0, 20, &r);
	assert_int_equal(r.status, 200);
	assert_true(r.saw_retry);
	assert_true(r.ended);
	assert_int_equal(check_ids(&r, 1), 4);
	assert_true(has_event(&r, "ready"));
	assert_string_equal(r.frames[r.n - 1].event, "ready");
	sse_result_release(&r);
	/* resume after 3: exactly event 4 */
	sse_collect(u, "3", 0, 20, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(check_ids(&r, 4), 1);
	sse_result_release(&r);
	/* ?after= does the same */
	char *after = tu_fmt("%s?after=1", u);
	sse_collect(after, NULL, 0, 20, &r);
	assert_int_equal(check_ids(&r, 2), 3);
	sse_result_release(&r);
	free(after);
	/* everything seen: 204, so EventSource stops reconnecting */
	sse_collect(u, "4", 0, 20, &r);
	assert_int_equal(r.status, 204);
	sse_result_release(&r);
	sse_collect(u, "junk", 0, 20, &r);
	assert_int_equal(r.status, 400);
	sse_result_release(&r);
	free(u);
	free(id);
}

struct live_arg {
	char *url;
	const char *last_id;
	long timeout_s;          /* 0: 30 */
	unsigned stall_ms;       /* a slow reader (sse_collect_slow) that stalls this long */
	size_t stop_after;       /* frames with an id, then it hangs up (0: to the end) */
	struct sse_result r;
};

static void *collect_thread(void *p)
{
	struct live_arg *a = p;
	long timeout_s = a->timeout_s ? a->timeout_s : 30;
	if (a->stall_ms)
		sse_collect_slow(a->url, a->stall_ms, timeout_s, &a->r);
	else
		sse_collect(a->url, a->last_id, a->stop_after, timeout_s, &a->r);
	return NULL;
}

static void test_live_then_end(void **state)
{
	(void)state;
	char *id = spawn();
	struct live_arg a = {.url = url(id, "/chain")};
	pthread_t t;
	pthread_create(&t, NULL, collect_thread, &a);
	usleep(300 * 1000);      /* let the stream replay and go live */
	stop(id);
	pthread_join(t, NULL);
	assert_int_equal(a.r.status, 200);
	assert_true(a.r.ended);
	assert_int_equal(check_ids(&a.r, 1), 4);
	json_t *last = NULL;
	for (size_t i = 0; i < a.r.n; i++)
		if (a.r.frames[i].id) {
			json_decref(last);
			last = json_loads(a.r.frames[i].data, 0, NULL);
		}
	assert_string_equal(json_string_value(json_object_get(last, "event_type")), "stopped");
	assert_non_null(json_object_get(last, "hash"));
	assert_non_null(json_object_get(last, "parent_hash"));
	assert_non_null(json_object_get(last, "timestamp"));
	assert_non_null(json_object_get(last, "data"));
	json_decref(last);
	sse_result_release(&a.r);
	free(a.url);
	free(id);
}

static void test_resume_live(void **state)
{
	(void)state;
	char *id = spawn();
	char *u = url(id, "/chain");
	struct sse_result r;
	sse_collect(u, NULL, 1, 20, &r);     /* read an event or two, then drop the connection */
	size_t got = check_ids(&r, 1);
	assert_true(got >= 1 && got <= 3);
	sse_result_release(&r);
	char last[8];
	snprintf(last, sizeof(last), "%zu", got);
	struct live_arg a = {.url = u, .last_id = last};
	pthread_t t;
	pthread_create(&t, NULL, collect_thread, &a);
	usleep(300 * 1000);
	stop(id);
	pthread_join(t, NULL);
	/* the rest replayed, then 4 live: no gap, no duplicate */
	assert_int_equal(check_ids(&a.r, got + 1), 4 - got);
	sse_result_release(&a.r);
	free(u);
	free(id);
}

/* A resume point past the chain's newest event (a client that read a longer
 * copy of the chain) resumes from the newest: the stream used to get nothing
 * until the chain's ids passed the client's. The same for the lifecycle log. */
static void test_resume_past_head(void **state)
{
	(void)state;
	char *id = spawn();
	struct live_arg a = {.url = url(id, "/chain"), .last_id = "1000"};
	pthread_t t;
	pthread_create(&t, NULL, collect_thread, &a);
	usleep(300 * 1000);
	stop(id);
	pthread_join(t, NULL);
	assert_int_equal(a.r.status, 200);
	assert_true(a.r.ended);
	assert_true(has_event(&a.r, "ready"));
	assert_int_equal(check_ids(&a.r, 4), 1);       /* `stopped`, after the 3 it had */
	sse_result_release(&a.r);
	free(a.url);
	char *u = tu_fmt("%s/events", SP.base);
	struct live_arg b = {.url = u, .last_id = "100000", .stop_after = 1};
	pthread_create(&t, NULL, collect_thread, &b);
	usleep(300 * 1000);
	char *id2 = spawn();
	pthread_join(t, NULL);
	assert_int_equal(b.r.status, 200);
	size_t i = 0;
	while (i < b.r.n && !b.r.frames[i].id)
		i++;
	assert_true(i < b.r.n);
	json_t *d = json_loads(b.r.frames[i].data, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(d, "actor_id")), id2);
	json_decref(d);
	sse_result_release(&b.r);
	free(u);
	free(id2);
	free(id);
}

static void test_lifecycle_stream(void **state)
{
	(void)state;
	char *id = spawn();
	char *u = tu_fmt("%s/events", SP.base);
	struct sse_result r;
	sse_collect(u, NULL, 8, 20, &r);
	assert_int_equal(r.status, 200);
	unsigned long prev = 0;
	size_t n = 0;
	for (size_t i = 0; i < r.n; i++) {
		if (!r.frames[i].id)
			continue;
		unsigned long got = strtoul(r.frames[i].id, NULL, 10);
		assert_int_equal(got, prev + 1);
		prev = got;
		n++;
		assert_string_equal(r.frames[i].event, "lifecycle");
		json_t *d = json_loads(r.frames[i].data, 0, NULL);
		assert_non_null(json_object_get(d, "actor_id"));
		assert_non_null(json_object_get(d, "status"));
		/* only lifecycle events: calls and host calls stay in their chains */
		const char *t = json_string_value(json_object_get(d, "event_type"));
		assert_true(!strcmp(t, "spawned") || !strcmp(t, "started") ||
			    !strcmp(t, "stopped") || !strcmp(t, "failed") ||
			    !strcmp(t, "killed") || !strcmp(t, "restarted") ||
			    !strcmp(t, "deleted"));
		json_decref(d);
	}
	assert_true(n >= 8);
	sse_result_release(&r);
	/* resume: the next one is id 3 */
	sse_collect(u, "2", 1, 20, &r);
	assert_int_equal(r.n >= 1, 1);
	size_t i = 0;
	while (i < r.n && !r.frames[i].id)
		i++;
	assert_true(i < r.n);
	assert_string_equal(r.frames[i].id, "3");
	sse_result_release(&r);
	free(u);
	free(id);
}

/* Several streams of one chain, live: each gets the same frames, byte for byte
 * (the frame is built once and shared). */
static void test_frames_identical(void **state)
{
	(void)state;
	enum { N = 4 };
	char *id = spawn();
	struct live_arg a[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		a[i] = (struct live_arg){.url = url(id, "/chain")};
		pthread_create(&t[i], NULL, collect_thread, &a[i]);
	}
	usleep(300 * 1000);
	stop(id);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i].r.status, 200);
		assert_true(a[i].r.ended);
		assert_int_equal(check_ids(&a[i].r, 1), 4);
	}
	for (int i = 1; i < N; i++) {
		size_t k = 0;
		for (size_t j = 0; j < a[0].r.n; j++) {
			if (!a[0].r.frames[j].id)
				continue;
			while (k < a[i].r.n && !a[i].r.frames[k].id)
				k++;
			assert_true(k < a[i].r.n);
			assert_string_equal(a[i].r.frames[k].id, a[0].r.frames[j].id);
			assert_string_equal(a[i].r.frames[k].event, a[0].r.frames[j].event);
			assert_string_equal(a[i].r.frames[k].data, a[0].r.frames[j].data);
			k++;
		}
	}
	for (int i = 0; i < N; i++) {
		sse_result_release(&a[i].r);
		free(a[i].url);
	}
	free(id);
}

/* A subscriber that stalls while 800 live events go out, and one that does not,
 * on a server whose sender sends 700 bytes per chunk: nearly every chunk ends
 * inside a frame (with 128 KiB chunks the kernel's send buffer takes a backlog of a
 * few MB first, so a cut would seldom be tested), and the stream keeps the cut
 * frame between chunks (the one frame of the ring a stream holds). Every frame
 * arrives whole, once, in order, and both see the same frames. */
static void test_slow_subscriber_backlog(void **state)
{
	(void)state;
	struct server_proc keep = SP;    /* the helpers use SP: this test's own server */
	memset(&SP, 0, sizeof(SP));
	setenv("THEATER_TEST_SEND_FILL", "700", 1);
	int started = server_start(&SP, NULL, NULL, NULL);
	unsetenv("THEATER_TEST_SEND_FILL");
	assert_int_equal(started, 0);
	server_put_example_package(&SP, "counter");
	char *id = spawn_package("counter.wasm");
	struct live_arg a[2] = {{.url = url(id, "/chain"), .timeout_s = 120, .stall_ms = 1000},
				{.url = url(id, "/chain"), .timeout_s = 120}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, collect_thread, &a[i]);
	usleep(300 * 1000);
	char *m = url(id, "/messages");
	long bad = 0;
	for (int i = 0; i < 400 && !bad; i++) {
		struct http_result r;
		if (http_do("POST", m, "1", 1, NULL, &r) != 0 || r.status != 202)
			bad = r.status ? r.status : -1;
		http_result_release(&r);
	}
	stop(id);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	server_destroy(&SP);
	SP = keep;
	assert_int_equal(bad, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a[i].r.status, 200);
		assert_true(a[i].r.ended);
	}
	size_t n = check_ids(&a[0].r, 1);
	assert_true(n >= 800);
	assert_int_equal(check_ids(&a[1].r, 1), n);
	for (size_t i = 0, j = 0; i < a[0].r.n; i++) {
		if (!a[0].r.frames[i].id)
			continue;
		while (!a[1].r.frames[j].id)
			j++;
		assert_string_equal(a[0].r.frames[i].data, a[1].r.frames[j].data);
		j++;
	}
	for (int i = 0; i < 2; i++) {
		sse_result_release(&a[i].r);
		free(a[i].url);
	}
	free(m);
	free(id);
}

/* theater_sse_clients from /metrics */
static long sse_clients(void)
{
	char *u = tu_fmt("%s/metrics", SP.base);
	struct http_result r;
	assert_int_equal(http_do("GET", u, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	const char *p = strstr(r.body, "\ntheater_sse_clients ");
	assert_non_null(p);
	long n = strtol(p + strlen("\ntheater_sse_clients "), NULL, 10);
	http_result_release(&r);
	free(u);
	return n;
}

/* A subscriber that hangs up while its stream waits (an idle actor: no event, no
 * write, and the next ping 15 s away) frees its slot at once. */
static void test_closed_subscriber_frees_slot(void **state)
{
	(void)state;
	char *id = spawn();
	for (int i = 0; i < 200 && sse_clients() != 0; i++)   /* earlier tests' streams */
		usleep(50 * 1000);
	assert_int_equal(sse_clients(), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {20, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(SP.port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	char *req = tu_fmt("GET /actors/%s/chain HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			   "Accept: text/event-stream\r\n\r\n", id);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	char got[16384];
	size_t len = 0;
	while (len < sizeof(got) - 1) {
		ssize_t n = recv(fd, got + len, sizeof(got) - 1 - len, 0);
		if (n <= 0)
			fail_msg("stream closed before 'ready' (%zd): %.*s", n, (int)len, got);
		len += (size_t)n;
		got[len] = 0;
		if (strstr(got, "event: ready"))
			break;
	}
	assert_int_equal(sse_clients(), 1);
	close(fd);
	long n = 1;
	for (int i = 0; i < 100 && (n = sse_clients()) != 0; i++)   /* well before a ping */
		usleep(50 * 1000);
	assert_int_equal(n, 0);
	free(req);
	stop(id);
	free(id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_finished),
		cmocka_unit_test(test_live_then_end),
		cmocka_unit_test(test_resume_live),
		cmocka_unit_test(test_resume_past_head),
		cmocka_unit_test(test_lifecycle_stream),
		cmocka_unit_test(test_frames_identical),
		cmocka_unit_test(test_slow_subscriber_backlog),
		cmocka_unit_test(test_closed_subscriber_frees_slot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
