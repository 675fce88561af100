/* headroom.c - room for more work (descriptors, memory); see headroom.h.
 *
 * Samples are refreshed by whichever caller finds them older than
 * HEADROOM_SAMPLE_MS; the others use the cached ones. Counting /proc/self/fd
 * walks a directory of every open descriptor, which is cheap because chain files
 * are bounded by the descriptor cache (src/chain_fds.c) and connections by the
 * server's connection limit.
 */
#include "src/headroom.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct headroom {
	pthread_mutex_t mu;
	uint64_t max_memory;
	unsigned fd_reserve;
	char *disk_path;                  /* NULL: no disk check */
	uint64_t disk_reserve;
	int64_t sampled_ms;               /* 0: never */
	int64_t fds_sampled_ms;
	struct headroom_stats st;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first unsigned number in a small file, or 0. */
static uint64_t read_u64_file(const char *path)
{
	FILE *f = fopen(path, "re");
	unsigned long long v = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* A "Key:   N kB" line of /proc/meminfo in bytes, or 0. */
static uint64_t meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	uint64_t v = 0;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		if (strncmp(line, key, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, "%llu", &kb) == 1) {
			v = (uint64_t)kb * 1024;
			break;
		}
	}
	if (f)
		fclose(f);
	return v;
}

uint64_t headroom_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1u << 20;
	return (uint64_t)rl.rlim_cur;
}

static uint64_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n > 0 ? n - 1 : 0;     /* the directory's own descriptor */
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size = 0, res = 0;
	if (f && fscanf(f, "%llu %llu", &size, &res) != 2)
		res = 0;
	if (f)
		fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The cgroup's limit (v2 memory.max) when it has one, else 0. */
static uint64_t cgroup_limit(void)
{
	FILE *f = fopen("/sys/fs/cgroup/memory.max", "re");
	char buf[64] = "";
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strncmp(buf, "max", 3) == 0 ? 0 : strtoull(buf, NULL, 10);
}

static uint64_t available_memory(void)
{
	uint64_t avail = meminfo("MemAvailable");
	uint64_t lim = cgroup_limit();
	if (lim) {
		uint64_t cur = read_u64_file("/sys/fs/cgroup/memory.current");
		uint64_t left = cur < lim ? lim - cur : 0;
		if (!avail || left < avail)
			avail = left;
	}
	return avail;
}

enum err_code headroom_new(const struct headroom_config *cfg, struct headroom **out,
			   struct err *err)
{
	struct headroom *h = calloc(1, sizeof(*h));
	*out = NULL;
	if (!h)
		return err_set(err, ERR_NOMEM, "out of memory");
	pthread_mutex_init(&h->mu, NULL);
	h->fd_reserve = cfg && cfg->fd_reserve ? cfg->fd_reserve : HEADROOM_FD_RESERVE;
	h->max_memory = cfg && cfg->max_memory ? cfg->max_memory : cgroup_limit();
	if (!h->max_memory)
		h->max_memory = meminfo("MemTotal");
	h->disk_reserve = cfg ? cfg->disk_reserve : 0;
	if (cfg && cfg->disk_path && h->disk_reserve && !(h->disk_path = strdup(cfg->disk_path))) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	*out = h;
	return ERR_OK;
}

void headroom_free(struct headroom *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h->disk_path);
	free(h);
}

/* Bytes free to unprivileged users on path's file system; UINT64_MAX when it
 * cannot be told (the check then never refuses on it). */
static uint64_t disk_free(const char *path)
{
	struct statvfs v;
	if (!path || statvfs(path, &v) != 0)
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
}

/* With h->mu held: fresh samples when the cached ones are old. */
static void sample_locked(struct headroom *h)
{
	int64_t now = mono_ms();
	if (h->sampled_ms && now - h->sampled_ms < HEADROOM_SAMPLE_MS)
		return;
	h->sampled_ms = now;
	h->st.fd_limit = headroom_fd_limit();
	/* Listing /proc/self/fd costs a lookup per descriptor (milliseconds with
	 * 10,000 chain files open): every HEADROOM_FD_SAMPLE_MS only. */
	if (!h->fds_sampled_ms || now - h->fds_sampled_ms >= HEADROOM_FD_SAMPLE_MS) {
		h->fds_sampled_ms = now;
		h->st.fds_open = count_fds();
	}
	h->st.max_memory = h->max_memory;
	h->st.rss = rss_bytes();
	h->st.mem_available = available_memory();
	h->st.disk_free = h->disk_path ? disk_free(h->disk_path) : UINT64_MAX;
}

enum err_code headroom_check(struct headroom *h, struct err *err)
{
	if (!h)
		return ERR_OK;
	pthread_mutex_lock(&h->mu);
	sample_locked(h);
	struct headroom_stats st = h->st;
	enum err_code rc = ERR_OK;
	if (st.fds_open + h->fd_reserve >= st.fd_limit)
		rc = err_set(err, ERR_EXHAUSTED, "file descriptors are nearly exhausted: %" PRIu64
			     " of %" PRIu64 " open, %u kept for work in flight", st.fds_open,
			     st.fd_limit, h->fd_reserve);
	else if (st.max_memory && st.rss >= st.max_memory / 10 * 9)
		rc = err_set(err, ERR_EXHAUSTED, "memory is nearly exhausted: %" PRIu64 " MiB "
			     "resident, the limit is %" PRIu64 " MiB (--max-memory)",
			     st.rss >> 20, st.max_memory >> 20);
	else if (st.mem_available && st.mem_available < HEADROOM_MEM_FREE_MIN)
		rc = err_set(err, ERR_EXHAUSTED, "memory is nearly exhausted: %" PRIu64 " MiB "
			     "left to the machine", st.mem_available >> 20);
	else if (st.disk_free < h->disk_reserve)
		rc = err_set(err, ERR_EXHAUSTED, "disk space is nearly exhausted: %" PRIu64 " MiB "
			     "free on the file system of '%s', %" PRIu64 " MiB kept for the events "
			     "of actors already running (--min-free-disk)", st.disk_free >> 20,
			     h->disk_path, h->disk_reserve >> 20);
	h->st.refusals += rc != ERR_OK;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void headroom_stats(struct headroom *h, struct headroom_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	sample_locked(h);
	*out = h->st;
	pthread_mutex_unlock(&h->mu);
}
