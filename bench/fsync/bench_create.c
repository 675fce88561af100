/* bench_create.c - bench-create: what creating a file costs on a file system,
 * fresh and after deletes (issue 16 goal 6: every spawn's chain is a new file).
 *
 *   bench-create DIR [FILES]
 *
 * In DIR (made empty by the caller): creates FILES (20,000) empty files and closes
 * them, deletes them all, waits 2 s (ext4 without a journal counts an inode freed
 * in an earlier second as recently deleted, not one freed in the current one),
 * then creates FILES/10 more. Prints the mean time of one creation in each round.
 * On ext4 without a journal the second round pays for every recently freed inode
 * it skips (recently_deleted()); on a journaled ext4 it does not. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Creates (or, with del, removes) files prefix0 .. prefix<n-1> in dir; the seconds. */
static double round_of(const char *dir, const char *prefix, int n, int del)
{
	char path[4096];
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s%d", dir, prefix, i);
		if (del) {
			if (unlink(path) != 0) {
				perror(path);
				exit(1);
			}
			continue;
		}
		int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror(path);
			exit(1);
		}
		close(fd);
	}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench-create DIR [FILES]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 20000;
	if (n < 10) {
		fprintf(stderr, "bench-create: FILES must be at least 10\n");
		return 2;
	}
	double fresh = round_of(argv[1], "a", n, 0);
	round_of(argv[1], "a", n, 1);
	sleep(2);
	double after = round_of(argv[1], "b", n / 10, 0);
	round_of(argv[1], "b", n / 10, 1);
	printf("file creation: %.1f us each (%d files), %.1f us each after %d deletes "
	       "(%d files): %.1fx\n", fresh / n * 1e6, n, after / (n / 10) * 1e6, n, n / 10,
	       fresh > 0 ? (after / (n / 10)) / (fresh / n) : 0);
	return 0;
}
