/* bench_chain.c - durable chain appends with group commit.
 *
 * For 1, 16 and 64 writer threads, in two modes (all writers on one chain; each
 * writer on its own chain), every writer appends ~300-byte JSON events with
 * chain_append (which returns only once the event is fdatasync'd) for a fixed
 * time. Prints events/s, p50/p99/max acknowledgement latency and how many
 * events each fdatasync covered, then verifies every chain it wrote.
 *
 * Environment: BENCH_DIR (default /tmp) holds the temp chains; BENCH_SECONDS
 * (default 2) is the time per configuration. Target (recorded, not asserted):
 * 20,000 events/s at 64 writers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "src/chain.h"

#define MAX_WRITERS 64
#define EVENT_BYTES 300
#define TMPFS_MAGIC_NUMBER 0x01021994

struct writer {
	struct chain *c;
	int id;
	pthread_barrier_t *start;
	atomic_int *stop;
	uint64_t *lat_ns;          /* one entry per acknowledged append */
	size_t n, cap;
	int failed;
};

struct config {
	const char *mode;
	int writers;
	int shared;                /* one chain for all writers */
};

struct result {
	uint64_t events, syncs;
	double seconds, p50_ms, p99_ms, max_ms;
	int verified;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A ~300-byte JSON event like the ones the supervisor writes. */
static size_t make_event(char *buf, size_t size, int writer, size_t i)
{
	int n = snprintf(buf, size,
			 "{\"timestamp\":%llu,\"writer\":%d,\"i\":%zu,\"function\":\"handle-send\","
			 "\"params\":{\"message\":\"",
			 (unsigned long long)(now_ns() / 1000000), writer, i);
	for (; n < EVENT_BYTES - 3; n++)
		buf[n] = (char)('a' + n % 26);
	memcpy(buf + n, "\"}}", 4);
	return (size_t)n + 3;
}

static int record_latency(struct writer *w, uint64_t ns)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		uint64_t *p = realloc(w->lat_ns, cap * sizeof(*p));
		if (!p)
			return -1;
		w->lat_ns = p;
		w->cap = cap;
	}
	w->lat_ns[w->n++] = ns;
	return 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char event[EVENT_BYTES + 64];
	struct err e = {0};
	pthread_barrier_wait(w->start);
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		size_t len = make_event(event, sizeof(event), w->id, w->n);
		uint64_t t0 = now_ns();
		if (chain_append(w->c, "wasm", event, len, NULL, &e) != ERR_OK) {
			fprintf(stderr, "bench-chain: append failed: %s\n", e.msg);
			w->failed = 1;
			break;
		}
		if (record_latency(w, now_ns() - t0) != 0) {
			w->failed = 1;
			break;
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_ms(const uint64_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)sorted[i] / 1e6;
}

static void latency_stats(struct writer *ws, int n, struct result *r)
{
	size_t total = 0, k = 0;
	for (int i = 0; i < n; i++)
		total += ws[i].n;
	uint64_t *all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		return;
	for (int i = 0; i < n; i++) {
		memcpy(all + k, ws[i].lat_ns, ws[i].n * sizeof(*all));
		k += ws[i].n;
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	r->events = total;
	r->p50_ms = percentile_ms(all, total, 0.50);
	r->p99_ms = percentile_ms(all, total, 0.99);
	r->max_ms = total ? (double)all[total - 1] / 1e6 : 0;
	free(all);
}

static int open_chains(const char *dir, const struct config *cfg, struct chain **chains)
{
	int n = cfg->shared ? 1 : cfg->writers;
	for (int i = 0; i < n; i++) {
		char id[32];
		struct err e = {0};
		snprintf(id, sizeof(id), "bench-%d", i);
		if (chain_open(dir, id, &chains[i], NULL, &e) != ERR_OK) {
			fprintf(stderr, "bench-chain: %s\n", e.msg);
			return -1;
		}
	}
	return n;
}

/* Verifies, closes and deletes the chains; returns 1 when all verified. */
static int finish_chains(struct chain **chains, int n, struct result *r)
{
	int ok = 1;
	for (int i = 0; i < n; i++) {
		struct chain_verify_result vr;
		r->syncs += chain_sync_count(chains[i]);
		if (chain_verify(chains[i], &vr, NULL) != ERR_OK || !vr.valid)
			ok = 0;
		char *path = strdup(chain_path(chains[i]));
		chain_close(chains[i]);
		if (path)
			unlink(path);
		free(path);
	}
	return ok;
}

static int run_threads(struct writer *ws, const struct config *cfg, struct chain **chains,
		       double seconds, struct result *r)
{
	pthread_t th[MAX_WRITERS];
	pthread_barrier_t start;
	atomic_int stop = 0;
	int failed = 0;
	pthread_barrier_init(&start, NULL, (unsigned)cfg->writers + 1);
	for (int i = 0; i < cfg->writers; i++) {
		ws[i] = (struct writer){.c = chains[cfg->shared ? 0 : i], .id = i,
					.start = &start, .stop = &stop};
		if (pthread_create(&th[i], NULL, writer_main, &ws[i]) != 0) {
			fprintf(stderr, "bench-chain: cannot start thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	uint64_t t0 = now_ns();
	struct timespec ts = {.tv_sec = (time_t)seconds,
			      .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < cfg->writers; i++) {
		pthread_join(th[i], NULL);
		failed |= ws[i].failed;
	}
	r->seconds = (double)(now_ns() - t0) / 1e9;
	pthread_barrier_destroy(&start);
	return failed ? -1 : 0;
}

static int run_config(const char *base, const struct config *cfg, double seconds,
		      struct result *r)
{
	static struct writer ws[MAX_WRITERS];
	struct chain *chains[MAX_WRITERS] = {0};
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/theater-bench-chain-XXXXXX", base);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench-chain: cannot create a temp dir in '%s': %s\n", base,
			strerror(errno));
		return -1;
	}
	memset(r, 0, sizeof(*r));
	int n = open_chains(dir, cfg, chains);
	int rc = n < 0 ? -1 : run_threads(ws, cfg, chains, seconds, r);
	if (n > 0)
		r->verified = finish_chains(chains, n, r);
	latency_stats(ws, cfg->writers, r);
	for (int i = 0; i < cfg->writers; i++) {
		free(ws[i].lat_ns);
		ws[i].lat_ns = NULL;
	}
	rmdir(dir);
	return rc;
}

static void print_fs_note(const char *base)
{
	struct statfs sf;
	if (statfs(base, &sf) == 0 && (unsigned long)sf.f_type == TMPFS_MAGIC_NUMBER)
		printf("note: %s is tmpfs, where fdatasync costs nothing; set BENCH_DIR to a disk\n",
		       base);
}

int main(void)
{
	static const struct config configs[] = {
		{"one chain", 1, 1},  {"one chain", 16, 1},  {"one chain", 64, 1},
		{"own chains", 1, 0}, {"own chains", 16, 0}, {"own chains", 64, 0},
	};
	const char *base = getenv("BENCH_DIR");
	const char *secs = getenv("BENCH_SECONDS");
	double seconds = secs && atof(secs) > 0 ? atof(secs) : 2.0;
	int status = 0;
	if (!base || !*base)
		base = "/tmp";
	printf("chain benchmark: durable appends (fdatasync, group commit), %d-byte JSON events,"
	       " %.1f s per row, in %s\n", EVENT_BYTES, seconds, base);
	print_fs_note(base);
	printf("%-11s %7s %9s %10s %8s %8s %8s %8s %9s\n", "mode", "writers", "events",
	       "events/s", "p50 ms", "p99 ms", "max ms", "syncs", "ev/sync");
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
		struct result r;
		if (run_config(base, &configs[i], seconds, &r) != 0 || !r.verified)
			status = 1;
		printf("%-11s %7d %9llu %10.0f %8.3f %8.3f %8.3f %8llu %9.1f%s\n", configs[i].mode,
		       configs[i].writers, (unsigned long long)r.events,
		       r.seconds > 0 ? (double)r.events / r.seconds : 0, r.p50_ms, r.p99_ms, r.max_ms,
		       (unsigned long long)r.syncs,
		       r.syncs ? (double)r.events / (double)r.syncs : 0,
		       r.verified ? "" : "  (VERIFY FAILED)");
		fflush(stdout);
	}
	printf("target: 20000 events/s at 64 writers (recorded, not asserted)\n");
	return status;
}
