/* bench_actors.c - actor benchmarks through the REST API of a running
 * theater-server (issue 4). bench/actors/run.sh starts the server and runs
 * them; every figure is printed on one line.
 *
 *   bench-actors messages BASE_URL ACTOR_ID [N] [CLIENTS]
 *     POST /actors/{id}/messages (body "1") N times in all from CLIENTS
 *     threads, each on one keep-alive connection; prints accepted messages
 *     per second and latency percentiles, then asks the actor (a counter)
 *     "get", which queues behind the messages, so that the count shows every
 *     message was handled.
 *   bench-actors pingpong BASE_URL PACKAGE_REF [PAIRS] [N]
 *     spawns PAIRS pairs of the ping-pong actor (bench/actors/pingpong.c),
 *     introduces each to its peer, starts every rally with the message N and
 *     waits until every actor has handled its share; prints actor-to-actor
 *     messages per second and the chain events recorded meanwhile.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/json.h"

struct http {
	CURL *h;
	struct curl_slist *headers;
	char *body;
	size_t len, cap;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct http *c = user;
	size_t add = size * n;
	if (c->len + add + 1 > c->cap) {
		size_t cap = (c->len + add + 1) * 2;
		char *b = realloc(c->body, cap);
		if (!b)
			return 0;
		c->body = b;
		c->cap = cap;
	}
	memcpy(c->body + c->len, p, add);
	c->len += add;
	c->body[c->len] = 0;
	return add;
}

static void http_init(struct http *c)
{
	memset(c, 0, sizeof(*c));
	c->h = curl_easy_init();
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Expect:");
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 120L);
}

static void http_release(struct http *c)
{
	curl_slist_free_all(c->headers);
	curl_easy_cleanup(c->h);
	free(c->body);
}

/* One request on the connection (kept alive); the status, or 0 when the
 * transfer failed. The response body is in c->body until the next call. */
static long http_do(struct http *c, const char *method, const char *url, const char *body)
{
	long status = 0;
	c->len = 0;
	if (c->body)
		c->body[0] = 0;
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (curl_easy_perform(c->h) != CURLE_OK)
		return 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* A member of the JSON response (an integer), or -1. */
static long long json_int_of(const char *text, const char *key, const char *key2)
{
	json_t *j = json_loads(text ? text : "", 0, NULL);
	json_t *v = json_object_get(j, key);
	if (key2)
		v = json_object_get(v, key2);
	long long r = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
	json_decref(j);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- messages ---- */

struct sender {
	const char *url;
	int n, busy, failures;     /* busy: 429, the mailbox was full */
	double *lat;
};

static void *send_loop(void *arg)
{
	struct sender *s = arg;
	struct http c;
	http_init(&c);
	for (int i = 0; i < s->n; i++) {
		double t0 = now_s();
		long st = http_do(&c, "POST", s->url, "1");
		if (st == 429)
			s->busy++;
		else if (st != 202)
			s->failures++;
		s->lat[i] = (now_s() - t0) * 1000.0;
	}
	http_release(&c);
	return NULL;
}

static int bench_messages(const char *base, const char *id, int n, int k)
{
	char url[512], req[512];
	snprintf(url, sizeof(url), "%s/actors/%s/messages", base, id);
	snprintf(req, sizeof(req), "%s/actors/%s/requests", base, id);
	struct sender *s = calloc((size_t)k, sizeof(*s));
	pthread_t *t = calloc((size_t)k, sizeof(*t));
	int per = n / k, total = per * k, failures = 0, busy = 0;
	double *lat = calloc((size_t)total, sizeof(double));
	/* the counter before: the same counter may serve several rows */
	struct http c;
	http_init(&c);
	long start = http_do(&c, "POST", req, "get") == 200 ? atol(c.body) : -1;
	http_release(&c);
	double t0 = now_s();
	for (int i = 0; i < k; i++) {
		s[i] = (struct sender){url, per, 0, 0, lat + (size_t)i * (size_t)per};
		pthread_create(&t[i], NULL, send_loop, &s[i]);
	}
	for (int i = 0; i < k; i++) {
		pthread_join(t[i], NULL);
		failures += s[i].failures;
		busy += s[i].busy;
	}
	double accepted_s = now_s() - t0;
	http_init(&c);
	long st = http_do(&c, "POST", req, "get");
	double handled_s = now_s() - t0;
	qsort(lat, (size_t)total, sizeof(double), cmp_double);
	int ok = total - busy - failures;
	printf("REST messages (keep-alive, recorded before 202): clients=%d sent=%d "
	       "accepted=%.0f msg/s p50=%.3f ms p99=%.3f ms; all handled: %.0f msg/s; "
	       "counter=%s busy(429)=%d failures=%d\n", k, total, ok / accepted_s,
	       lat[total / 2], lat[(size_t)total * 99 / 100], ok / handled_s,
	       st == 200 ? c.body : "?", busy, failures);
	/* each accepted message adds 1 to the counter: a count below what was
	 * acknowledged is a lost message, above it a duplicate */
	int exact = st == 200 && start >= 0 && atol(c.body) - start == ok;
	if (st == 200 && !exact)
		fprintf(stderr, "bench-actors: MISMATCH: the counter went from %ld to %s with %d "
			"acknowledged messages\n", start, c.body, ok);
	http_release(&c);
	free(lat);
	free(s);
	free(t);
	return failures || !exact ? 1 : 0;
}

/* ---- ping-pong ---- */

/* Spawns one ping-pong actor; its id into id[37]. */
static int spawn_pingpong(struct http *c, const char *base, const char *pkg, char id[37])
{
	char url[512], body[1024];
	snprintf(url, sizeof(url), "%s/actors?wait=running", base);
	snprintf(body, sizeof(body), "{\"manifest\":{\"name\":\"pingpong\",\"package\":\"%s\","
		 "\"static_package\":true,\"handler\":[{\"type\":\"runtime\"},"
		 "{\"type\":\"message-server\"}]}}", pkg);
	long st = http_do(c, "POST", url, body);
	json_t *j = json_loads(c->body ? c->body : "", 0, NULL);
	const char *s = json_string_value(json_object_get(j, "id"));
	int ok = st == 201 && s && strlen(s) == 36;
	if (ok)
		memcpy(id, s, 37);
	else
		fprintf(stderr, "bench-actors: spawn answered %ld: %s\n", st, c->body ? c->body : "");
	json_decref(j);
	return ok ? 0 : -1;
}

static int introduce(struct http *c, const char *base, const char *id, const char *peer)
{
	char url[512], body[64];
	snprintf(url, sizeof(url), "%s/actors/%s/requests", base, id);
	snprintf(body, sizeof(body), "peer %s", peer);
	return http_do(c, "POST", url, body) == 200 ? 0 : -1;
}

static long long metric(struct http *c, const char *base, const char *id, const char *what)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/actors/%s/metrics", base, id);
	return http_do(c, "GET", url, NULL) == 200 ? json_int_of(c->body, what, NULL) : -1;
}

static long long chain_length(struct http *c, const char *base, const char *id)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/actors/%s", base, id);
	return http_do(c, "GET", url, NULL) == 200 ? json_int_of(c->body, "chain", "length") : -1;
}

/* Sum of a metric over all actors. */
static long long sum_metric(struct http *c, const char *base, char (*ids)[37], int n,
			    const char *what)
{
	long long sum = 0;
	for (int i = 0; i < n; i++) {
		long long v = metric(c, base, ids[i], what);
		if (v < 0)
			return -1;
		sum += v;
	}
	return sum;
}

static long long sum_chains(struct http *c, const char *base, char (*ids)[37], int n)
{
	long long sum = 0;
	for (int i = 0; i < n; i++)
		sum += chain_length(c, base, ids[i]);
	return sum;
}

static int bench_pingpong(const char *base, const char *pkg, int pairs, int n)
{
	struct http c;
	http_init(&c);
	int actors = 2 * pairs, rc = 1;
	char (*ids)[37] = calloc((size_t)actors, sizeof(*ids));
	for (int i = 0; i < actors; i++)
		if (spawn_pingpong(&c, base, pkg, ids[i]))
			goto done;
	for (int i = 0; i < actors; i += 2)
		if (introduce(&c, base, ids[i], ids[i + 1]) || introduce(&c, base, ids[i + 1], ids[i]))
			goto done;
	/* each actor has made 2 calls (init, peer); a rally from N is N + 1 calls */
	long long want = (long long)actors * 2 + (long long)pairs * (n + 1);
	long long events0 = sum_chains(&c, base, ids, actors);
	char url[512], body[32];
	snprintf(body, sizeof(body), "%d", n);
	double t0 = now_s();
	for (int i = 0; i < actors; i += 2) {
		snprintf(url, sizeof(url), "%s/actors/%s/messages", base, ids[i]);
		if (http_do(&c, "POST", url, body) != 202)
			goto done;
	}
	long long calls = 0;
	for (double last = now_s(); calls < want; sleep_ms(5)) {
		long long now = sum_metric(&c, base, ids, actors, "calls");
		if (now != calls)
			last = now_s();
		calls = now;
		if (now < 0 || now_s() - last > 30) {
			fprintf(stderr, "bench-actors: the rallies stopped at %lld of %lld calls\n",
				now, want);
			goto done;
		}
	}
	double secs = now_s() - t0;
	long long failures = sum_metric(&c, base, ids, actors, "failures");
	long long events = sum_chains(&c, base, ids, actors) - events0;
	long long messages = (long long)pairs * n;
	printf("actor-to-actor ping-pong (message-server send, recorded in both chains): "
	       "pairs=%d messages=%lld throughput=%.0f msg/s chain_events=%lld (%.0f events/s) "
	       "failures=%lld\n", pairs, messages, messages / secs, events, events / secs,
	       failures);
	rc = failures ? 1 : 0;
done:
	if (rc && c.body)
		fprintf(stderr, "bench-actors: last answer: %s\n", c.body);
	free(ids);
	http_release(&c);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 64;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc >= 4 && strcmp(argv[1], "messages") == 0) {
		int n = argc > 4 ? atoi(argv[4]) : 20000, k = argc > 5 ? atoi(argv[5]) : 4;
		rc = n > 0 && k > 0 && n >= k ? bench_messages(argv[2], argv[3], n, k) : 64;
	} else if (argc >= 4 && strcmp(argv[1], "pingpong") == 0) {
		int pairs = argc > 4 ? atoi(argv[4]) : 4, n = argc > 5 ? atoi(argv[5]) : 20000;
		rc = pairs > 0 && n > 0 ? bench_pingpong(argv[2], argv[3], pairs, n) : 64;
	}
	if (rc == 64)
		fprintf(stderr, "usage: bench-actors messages BASE_URL ACTOR_ID [N] [CLIENTS]\n"
				"       bench-actors pingpong BASE_URL PACKAGE_REF [PAIRS] [N]\n");
	curl_global_cleanup();
	return rc;
}
