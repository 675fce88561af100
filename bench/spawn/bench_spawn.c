/* bench_spawn.c - spawn latency and throughput through the REST API.
 *
 *   bench-spawn BASE_URL PACKAGE_REF [N] [CLIENTS]
 *
 * Each client thread keeps one keep-alive connection and POSTs
 * /actors?wait=running with a manifest whose package is PACKAGE_REF and
 * static_package = true, so after the first spawn the package comes from the
 * cache (one warm-up spawn comes first: N + 1 actors in all). It prints p50/p99
 * latency (ms), spawns per second and the failures (the first one's status and
 * answer on stderr). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct client {
	const char *base, *package;
	int n;
	double *lat;
	int failures;
	long first_status;            /* the first failure's HTTP status (0: none, or no answer) */
	char first_error[256];        /* and its body's start, or curl's error */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
	char *body = u;             /* the start of the last answer, for a failure */
	size_t have = strlen(body), len = s * n;
	size_t room = 255 - have < len ? 255 - have : len;
	memcpy(body + have, p, room);
	body[have + room] = '\0';
	return s * n;
}

static void *run(void *arg)
{
	struct client *c = arg;
	CURL *h = curl_easy_init();
	char url[512], body[1024];
	snprintf(url, sizeof(url), "%s/actors?wait=running", c->base);
	snprintf(body, sizeof(body), "{\"manifest\":{\"name\":\"bench\",\"package\":\"%s\","
		 "\"static_package\":true}}", c->package);
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	char answer[256];
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
	for (int i = 0; i < c->n; i++) {
		double t0 = now_s();
		long status = 0;
		answer[0] = '\0';
		CURLcode rc = curl_easy_perform(h);
		if (rc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 201 && c->failures++ == 0) {
			c->first_status = status;
			snprintf(c->first_error, sizeof(c->first_error), "%s",
				 rc == CURLE_OK ? answer : curl_easy_strerror(rc));
		}
		c->lat[i] = (now_s() - t0) * 1000.0;
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-spawn BASE_URL PACKAGE_REF [N] [CLIENTS]\n");
		return 64;
	}
	int n = argc > 3 ? atoi(argv[3]) : 2000;
	int k = argc > 4 ? atoi(argv[4]) : 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct client *cs = calloc((size_t)k, sizeof(*cs));
	pthread_t *ts = calloc((size_t)k, sizeof(*ts));
	double *all = calloc((size_t)(n / k * k), sizeof(double));
	/* warm the package cache */
	struct client warm = {argv[1], argv[2], 1, calloc(1, sizeof(double)), 0, 0, ""};
	run(&warm);
	free(warm.lat);
	double t0 = now_s();
	for (int i = 0; i < k; i++) {
		cs[i] = (struct client){argv[1], argv[2], n / k, all + i * (n / k), 0, 0, ""};
		pthread_create(&ts[i], NULL, run, &cs[i]);
	}
	int failures = 0;
	for (int i = 0; i < k; i++) {
		pthread_join(ts[i], NULL);
		if (cs[i].failures && !failures)
			fprintf(stderr, "bench-spawn: first failure: HTTP %ld: %s\n",
				cs[i].first_status, cs[i].first_error);
		failures += cs[i].failures;
	}
	double secs = now_s() - t0;
	int total = n / k * k;
	qsort(all, (size_t)total, sizeof(double), cmp);
	printf("spawn (cached static package, wait=running): clients=%d spawns=%d "
	       "p50=%.3f ms p99=%.3f ms max=%.3f ms throughput=%.0f spawns/s failures=%d\n",
	       k, total, all[total / 2], all[total * 99 / 100], all[total - 1], total / secs,
	       failures);
	free(all);
	free(cs);
	free(ts);
	curl_global_cleanup();
	return failures ? 1 : 0;
}
