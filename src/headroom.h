/* headroom.h - is there room for more work? File descriptors, memory and disk, checked
 * before the server takes on new work (issue 16), so that it answers 503
 * `resource_exhausted` while it still can, instead of failing halfway through a
 * spawn (or not answering at all) once a resource has run out.
 *
 * A check reads samples at most HEADROOM_SAMPLE_MS old: the process's resident
 * memory (/proc/self/statm) and the memory left to the machine or its cgroup;
 * and HEADROOM_FD_SAMPLE_MS old: the descriptors open (/proc/self/fd, against
 * RLIMIT_NOFILE; chain files and connections are bounded on their own, the check
 * keeps a reserve for the rest); and the space left to unprivileged users on the
 * file system of the server's home (statvfs), so that the actors already running
 * can still record their events when a burst of spawns fills the disk. So it costs a
 * mutex on hot paths and a few system calls now and then.
 *
 * Ownership: headroom_new returns an object freed by headroom_free.
 * Threads: every function may be called from any thread.
 * Errors: ERR_EXHAUSTED (the message says which resource and by how much),
 * ERR_NOMEM.
 */
#ifndef THEATER_HEADROOM_H
#define THEATER_HEADROOM_H

#include <stdint.h>

#include "src/util/err.h"

#define HEADROOM_SAMPLE_MS 100
#define HEADROOM_FD_SAMPLE_MS 1000
#define HEADROOM_FD_RESERVE 32            /* descriptors kept for work in flight */
#define HEADROOM_MEM_FREE_MIN (64u << 20) /* memory the machine (or cgroup) keeps free */

struct headroom_config {
	/* Resident memory the server may grow to; new work is refused from 90% of it.
	 * 0: the cgroup's memory.max when set, else the machine's memory. */
	uint64_t max_memory;
	/* Descriptors kept free; 0: HEADROOM_FD_RESERVE. */
	unsigned fd_reserve;
	/* A folder on the file system whose free space is checked (the home), and the
	 * bytes kept free there (0 or no folder: no check). */
	const char *disk_path;
	uint64_t disk_reserve;
};

struct headroom;

enum err_code headroom_new(const struct headroom_config *cfg, struct headroom **out,
			   struct err *err);
void headroom_free(struct headroom *h);   /* accepts NULL */

/* ERR_OK when there is room for one more unit of work (a spawn, a connection's
 * worth of descriptors); ERR_EXHAUSTED otherwise. A NULL h always has room. */
enum err_code headroom_check(struct headroom *h, struct err *err);

struct headroom_stats {
	uint64_t fd_limit, fds_open;     /* RLIMIT_NOFILE and descriptors open */
	uint64_t max_memory, rss;        /* bytes */
	uint64_t mem_available;          /* bytes the machine or cgroup has left */
	uint64_t disk_free;              /* bytes free to unprivileged users on the home's
					  * file system (UINT64_MAX: not checked) */
	uint64_t refusals;               /* checks that said no */
};
/* The latest samples (taking fresh ones when they are old). */
void headroom_stats(struct headroom *h, struct headroom_stats *out);

/* Descriptors the process may open (RLIMIT_NOFILE's soft limit). */
uint64_t headroom_fd_limit(void);

#endif
