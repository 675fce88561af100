/* bench-park - parked actors per worker and the latency of the others (issue 11).
 *
 *   bench-park BASE PACKAGE N WAIT_MS
 *
 * Starts a slow HTTP endpoint on 127.0.0.1 (every request waits WAIT_MS, then
 * 200 "ok"), spawns N waiter actors and one more, sends each waiter one
 * request that makes it call the endpoint (send-http), all at once (libcurl
 * multi), and while they wait measures the other actor's request latency. It
 * prints how many calls were parked at once (the server's
 * theater_parked_calls), how long all N took, and the other actor's p50/p99
 * idle and while the N wait.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

static int WAIT_MS;
static int open_conns;          /* atomic: requests waiting at the endpoint */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the slow endpoint ---- */

static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	size_t got = 0;
	while (got < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	__atomic_add_fetch(&open_conns, 1, __ATOMIC_RELAXED);
	usleep((useconds_t)WAIT_MS * 1000);
	const char *rsp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	if (send(fd, rsp, strlen(rsp), MSG_NOSIGNAL) < 0)
		perror("bench-park: send");
	__atomic_sub_fetch(&open_conns, 1, __ATOMIC_RELAXED);
	close(fd);
	return NULL;
}

static void *accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 64 * 1024);
		if (pthread_create(&th, &at, serve_one, (void *)(intptr_t)fd) != 0)
			close(fd);
		pthread_attr_destroy(&at);
	}
	return NULL;
}

static int endpoint_start(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	pthread_t th;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) ||
	    pthread_create(&th, NULL, accept_loop, (void *)(intptr_t)lfd)) {
		perror("bench-park: endpoint");
		exit(1);
	}
	return ntohs(sa.sin_port);
}

/* ---- the API ---- */

struct text {
	char *p;
	size_t n;
};

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
	struct text *t = user;
	char *q = realloc(t->p, t->n + size * n + 1);
	if (!q)
		return 0;
	memcpy(q + t->n, p, size * n);
	t->n += size * n;
	q[t->n] = 0;
	t->p = q;
	return size * n;
}

/* One request on handle c; the answer's body in *t (reset first). */
static long call(CURL *c, const char *method, const char *url, const char *body, struct text *t)
{
	t->n = 0;
	if (t->p)
		t->p[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	curl_easy_setopt(c, CURLOPT_HTTPGET, body ? 0L : 1L);
	if (!body)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	long st = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

static void spawn(CURL *c, const char *base, const char *pkg, int port, char id[37])
{
	char url[512], body[1024];
	struct text t = {0};
	snprintf(url, sizeof(url), "%s/actors?wait=running", base);
	snprintf(body, sizeof(body),
		 "{\"manifest\":{\"name\":\"waiter\",\"package\":\"%s\",\"handler\":["
		 "{\"type\":\"timing\",\"max_sleep_ms\":600000},"
		 "{\"type\":\"http-client\",\"allowed_hosts\":[\"127.0.0.1\"],"
		 "\"allow_loopback_ports\":[%d],\"timeout_ms\":%d}]}}", pkg, port, WAIT_MS * 4 + 10000);
	long st = call(c, "POST", url, body, &t);
	const char *at = t.p ? strstr(t.p, "\"id\":\"") : NULL;
	if (st != 201 || !at) {
		fprintf(stderr, "bench-park: spawn answered %ld: %s\n", st, t.p ? t.p : "");
		exit(1);
	}
	memcpy(id, at + 6, 36);
	id[36] = 0;
	free(t.p);
}

static double metric(CURL *c, const char *base, const char *name)
{
	char url[512];
	struct text t = {0};
	snprintf(url, sizeof(url), "%s/metrics", base);
	call(c, "GET", url, NULL, &t);
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *at = t.p ? strstr(t.p, key) : NULL;
	double v = at ? atof(at + strlen(key)) : -1;
	free(t.p);
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* n requests to the other actor, one after another: p50 and p99 in ms. */
static int latency(CURL *c, const char *base, const char *id, int n, int stop_when_idle,
		   double *p50, double *p99)
{
	char url[512];
	struct text t = {0};
	double *lat = calloc((size_t)n, sizeof(double));
	int k = 0;
	snprintf(url, sizeof(url), "%s/actors/%s/requests", base, id);
	for (; k < n; k++) {
		if (stop_when_idle && __atomic_load_n(&open_conns, __ATOMIC_RELAXED) == 0)
			break;
		double t0 = now_s();
		if (call(c, "POST", url, "ping", &t) != 200) {
			fprintf(stderr, "bench-park: the other actor answered %s\n", t.p ? t.p : "");
			exit(1);
		}
		lat[k] = (now_s() - t0) * 1000;
	}
	qsort(lat, (size_t)k, sizeof(double), cmp_double);
	*p50 = k ? lat[k / 2] : 0;
	*p99 = k ? lat[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] : 0;
	free(lat);
	free(t.p);
	return k;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bench-park BASE PACKAGE N WAIT_MS\n");
		return 2;
	}
	const char *base = argv[1], *pkg = argv[2];
	int n = atoi(argv[3]);
	WAIT_MS = atoi(argv[4]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int port = endpoint_start();
	CURL *c = curl_easy_init();
	char (*ids)[37] = calloc((size_t)n, 37), other[37];
	for (int i = 0; i < n; i++)
		spawn(c, base, pkg, port, ids[i]);
	spawn(c, base, pkg, port, other);
	double idle50, idle99;
	latency(c, base, other, 200, 0, &idle50, &idle99);

	CURLM *m = curl_multi_init();
	CURL **hs = calloc((size_t)n, sizeof(*hs));
	struct text *ts = calloc((size_t)n, sizeof(*ts));
	char body[128], url[512];
	snprintf(body, sizeof(body), "http http://127.0.0.1:%d/slow", port);
	for (int i = 0; i < n; i++) {
		hs[i] = curl_easy_init();
		snprintf(url, sizeof(url), "%s/actors/%s/requests?timeout=300", base, ids[i]);
		curl_easy_setopt(hs[i], CURLOPT_URL, url);
		curl_easy_setopt(hs[i], CURLOPT_COPYPOSTFIELDS, body);
		curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, &ts[i]);
		curl_multi_add_handle(m, hs[i]);
	}
	double t0 = now_s(), all_parked = 0, peak = 0, p50 = 0, p99 = 0;
	int running = n, measured = 0, ok = 0, failed = 0;
	while (running) {
		curl_multi_perform(m, &running);
		int open = __atomic_load_n(&open_conns, __ATOMIC_RELAXED);
		if (!all_parked && open >= n) {
			all_parked = now_s() - t0;
			peak = metric(c, base, "theater_parked_calls");
			/* the other actor while all of them wait (client requests stop
			 * being driven meanwhile: they are all parked already) */
			measured = latency(c, base, other, 200, 1, &p50, &p99);
		}
		curl_multi_poll(m, NULL, 0, 50, NULL);
	}
	double all = now_s() - t0;
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		long st = 0;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
		ok += msg->data.result == CURLE_OK && st == 200;
		if ((msg->data.result != CURLE_OK || st != 200) && !failed++)
			fprintf(stderr, "bench-park: a waiter's request: %s, status %ld\n",
				curl_easy_strerror(msg->data.result), st);
	}
	long parks = (long)metric(c, base, "theater_parks_total");
	printf("parked: %d waiting calls at once (theater_parked_calls %.0f), all %d reached the "
	       "endpoint after %.2f s; all answered (%d x 200) in %.2f s for a %d ms wait "
	       "(parks so far %ld)\n", n, peak, n, all_parked, ok, all, WAIT_MS, parks);
	printf("other actor: idle p50 %.2f ms p99 %.2f ms; while %d wait (%d requests) p50 %.2f "
	       "ms p99 %.2f ms\n", idle50, idle99, n, measured, p50, p99);
	for (int i = 0; i < n; i++) {
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
		free(ts[i].p);
	}
	curl_multi_cleanup(m);
	curl_easy_cleanup(c);
	free(hs);
	free(ts);
	free(ids);
	return ok == n ? 0 : 1;
}
