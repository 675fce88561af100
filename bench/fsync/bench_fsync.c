/* bench_fsync.c - bench-fsync: the disk's single-writer fdatasync rate, the
 * ceiling that group commit is measured against (issue 16 goal 3).
 *
 *   bench-fsync DIR [SECONDS] [RECORD_BYTES]
 *
 * One thread appends RECORD_BYTES (200) to one file in DIR and fdatasyncs it,
 * again and again for SECONDS (2), and prints the rate and the p50 sync time.
 * This is what one writer that syncs every record can reach; a server that
 * makes every acknowledged message durable reaches more only by sharing syncs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-fsync DIR [SECONDS] [RECORD_BYTES]\n");
		return 2;
	}
	double secs = argc > 2 ? atof(argv[2]) : 2.0;
	size_t rec = argc > 3 ? (size_t)atol(argv[3]) : 200;
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench-fsync.%ld", argv[1], (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench-fsync: cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	char *buf = malloc(rec ? rec : 1);
	if (!buf)
		return 1;
	memset(buf, 'x', rec);
	size_t cap = 1 << 20, n = 0;
	double *lat = malloc(cap * sizeof(*lat));
	double t0 = now_s(), t = t0;
	while (t - t0 < secs && n < cap && lat) {
		if (write(fd, buf, rec) != (ssize_t)rec || fdatasync(fd) != 0) {
			fprintf(stderr, "bench-fsync: %s\n", strerror(errno));
			return 1;
		}
		double t1 = now_s();
		lat[n++] = t1 - t;
		t = t1;
	}
	close(fd);
	unlink(path);
	if (!n || !lat)
		return 1;
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("fdatasync ceiling: %.0f syncs/s (one writer, %zu B records, p50 %.3f ms, "
	       "p99 %.3f ms)\n", (double)n / (t - t0), rec, lat[n / 2] * 1e3,
	       lat[n * 99 / 100] * 1e3);
	free(lat);
	free(buf);
	return 0;
}
