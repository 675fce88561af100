/* bench-stream - streamed answers and timers (issue 11).
 *
 *   bench-stream BASE PACKAGE
 *
 * PACKAGE is tests/actors/stream_actor.c built for wasm32. Two figures:
 *  - a request answered as 200 chunks (POST /actors/{id}/requests with
 *    Accept: text/event-stream), 20 times: the time to the first `chunk` event
 *    and to the `done` event (p50, max);
 *  - 20 actors with a periodic 100 ms timer each, for 5 s: how late each tick
 *    was accepted (its `message-server/received` event's timestamp minus its
 *    scheduled_ms), p50 / p99 / max, and the ticks that reported `missed`.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "src/util/json.h"

#define STREAM_RUNS 20
#define TIMER_ACTORS 20
#define TIMER_SECONDS 5

static const char *BASE;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct body {
	char *p;
	size_t n;
	double t0, first, done;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, ptr, n);
	b->p = p;
	b->n += n;
	p[b->n] = 0;
	if (!b->first && strstr(p, "event: chunk"))
		b->first = now_ms() - b->t0;
	if (!b->done && strstr(p, "event: done"))
		b->done = now_ms() - b->t0;
	return n;
}

/* METHOD path with body; the answer (malloc'd) or NULL. */
static char *call(const char *method, const char *path, const char *body, const char *accept,
		  struct body *out)
{
	CURL *c = curl_easy_init();
	char url[512];
	snprintf(url, sizeof(url), "%s%s", BASE, path);
	struct curl_slist *h = curl_slist_append(NULL, body && body[0] == '{'
						 ? "Content-Type: application/json"
						 : "Content-Type: text/plain");
	if (accept) {
		char a[128];
		snprintf(a, sizeof(a), "Accept: %s", accept);
		h = curl_slist_append(h, a);
	}
	struct body b = {.t0 = now_ms()};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "bench-stream: %s %s: %s\n", method, path, curl_easy_strerror(rc));
		free(b.p);
		return NULL;
	}
	if (out)
		*out = b;
	return b.p;
}

static char *spawn(const char *package)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"manifest\":{\"name\":\"stream\",\"package\":\"%s\","
		 "\"handler\":[{\"type\":\"runtime\"},{\"type\":\"message-server\"},"
		 "{\"type\":\"timing\"}]}}", package);
	char *ans = call("POST", "/actors?wait=running", body, NULL, NULL);
	json_t *j = ans ? json_loads(ans, 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(j, "id"));
	char *out = id ? strdup(id) : NULL;
	if (!out)
		fprintf(stderr, "bench-stream: spawn failed: %s\n", ans ? ans : "");
	json_decref(j);
	free(ans);
	return out;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	return n ? v[(size_t)(p * (double)(n - 1) + 0.5)] : 0;
}

static int bench_streamed(const char *package)
{
	char *id = spawn(package);
	if (!id)
		return 1;
	char path[128];
	snprintf(path, sizeof(path), "/actors/%s/requests", id);
	double first[STREAM_RUNS], done[STREAM_RUNS];
	for (int i = 0; i < STREAM_RUNS; i++) {
		struct body b = {0};
		char *ans = call("POST", path, "stream 200 tok", "text/event-stream", &b);
		if (!ans || !b.done) {
			free(ans);
			free(id);
			return 1;
		}
		first[i] = b.first;
		done[i] = b.done;
		free(ans);
	}
	qsort(first, STREAM_RUNS, sizeof(double), cmp);
	qsort(done, STREAM_RUNS, sizeof(double), cmp);
	printf("streamed request, 200 chunks: first chunk p50 %.1f ms (max %.1f), done p50 %.1f "
	       "ms (max %.1f), %d runs\n", pct(first, STREAM_RUNS, 0.5), first[STREAM_RUNS - 1],
	       pct(done, STREAM_RUNS, 0.5), done[STREAM_RUNS - 1], STREAM_RUNS);
	free(id);
	return 0;
}

/* Unix ms of an RFC 3339 UTC timestamp with milliseconds. */
static double unix_ms_of(const char *t)
{
	struct tm tm = {0};
	int ms = 0;
	if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) * 1000.0 + ms;
}

/* Adds the lateness of every tick in the chain of id to v. */
static size_t collect(const char *id, double *v, size_t cap, size_t n, size_t *missed)
{
	char path[160];
	snprintf(path, sizeof(path), "/actors/%s/chain?limit=1000&type=message-server/received",
		 id);
	char *ans = call("GET", path, NULL, NULL, NULL);
	json_t *page = ans ? json_loads(ans, 0, NULL) : NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(json_object_get(page, "items"), i, ev) {
		json_t *d = json_object_get(ev, "data");
		const char *kind = json_string_value(json_object_get(d, "kind"));
		const char *text = json_string_value(json_object_get(d, "data"));
		if (!kind || strcmp(kind, "timer") != 0 || !text || n >= cap)
			continue;
		json_t *tick = json_loads(text, 0, NULL);
		double at = unix_ms_of(json_string_value(json_object_get(ev, "timestamp")));
		double due = (double)json_integer_value(json_object_get(tick, "scheduled_ms"));
		*missed += json_integer_value(json_object_get(tick, "missed")) > 0;
		json_decref(tick);
		if (at > 0)
			v[n++] = at - due;
	}
	json_decref(page);
	free(ans);
	return n;
}

static int bench_timers(const char *package)
{
	char *ids[TIMER_ACTORS];
	for (int i = 0; i < TIMER_ACTORS; i++) {
		if (!(ids[i] = spawn(package)))
			return 1;
		char path[128];
		snprintf(path, sizeof(path), "/actors/%s/requests", ids[i]);
		free(call("POST", path, "timer p 100 100", NULL, NULL));
	}
	sleep(TIMER_SECONDS);
	for (int i = 0; i < TIMER_ACTORS; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/actors/%s/requests", ids[i]);
		free(call("POST", path, "cancel p", NULL, NULL));
	}
	size_t cap = TIMER_ACTORS * 1000, n = 0, missed = 0;
	double *late = malloc(cap * sizeof(double));
	for (int i = 0; late && i < TIMER_ACTORS; i++)
		n = collect(ids[i], late, cap, n, &missed);
	for (int i = 0; i < TIMER_ACTORS; i++)
		free(ids[i]);
	if (!late || !n) {
		free(late);
		fprintf(stderr, "bench-stream: no ticks recorded\n");
		return 1;
	}
	qsort(late, n, sizeof(double), cmp);
	printf("timers: %d actors x 100 ms for %d s: %zu ticks (expected about %d), late p50 %.0f "
	       "ms, p99 %.0f ms, max %.0f ms; %zu ticks reported missed ones\n", TIMER_ACTORS,
	       TIMER_SECONDS, n, TIMER_ACTORS * TIMER_SECONDS * 10, pct(late, n, 0.5),
	       pct(late, n, 0.99), late[n - 1], missed);
	free(late);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench-stream BASE PACKAGE\n");
		return 2;
	}
	BASE = argv[1];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = bench_streamed(argv[2]) | bench_timers(argv[2]);
	curl_global_cleanup();
	return rc;
}
