/* chain_int.h - private to chain.c and chain_fds.c: the chain record and the
 * descriptor cache that lends chains their file descriptors.
 *
 * A chain holds a descriptor only while the cache lets it: the cache keeps at
 * most chain_fd_cap() of them open, least recently used ones are closed (after
 * an fdatasync of what was written through them) and reopened on the next use.
 * Every use of a chain's file goes through chain_fd_get / chain_fd_put, which pin
 * the descriptor so it is never closed under a read, a write or a sync.
 *
 * Lock order: c->mu -> the cache's mutex (chain_fd_get may be called with c->mu
 * held; the cache never takes a chain's mu).
 */
#ifndef THEATER_CHAIN_INT_H
#define THEATER_CHAIN_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/chain.h"

struct chain {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* signalled when a sync finishes */
	char *path;
	uint64_t length, end, synced;
	uint8_t head[CHAIN_HASH_LEN];
	/* offsets[i] is the offset of event i+1. When the chain was opened from a
	 * checkpoint, entries below `loaded_from` are not loaded yet
	 * (chain.c: offsets_load); they are read from the file on first need. */
	uint64_t *offsets;
	size_t offsets_cap;
	uint64_t loaded_from;     /* events 1..loaded_from have no offsets yet */
	uint64_t base_end;        /* where the checkpoint's record starts, when loaded_from > 0 */
	int damaged;
	int broken_errno;         /* nonzero after a failed write or sync */
	int syncing;              /* a leader is inside fdatasync */
	uint64_t sync_count;
	unsigned sync_delay_us;
	/* The descriptor cache (chain_fds.c), under its mutex. */
	int fd;                   /* -1 while the cache holds none for this chain */
	unsigned pins;            /* uses in flight: never closed while > 0 */
	int fd_moving;            /* being opened or closed: others wait */
	struct chain *mru_prev, *mru_next;   /* in the cache's list while fd >= 0 */
	struct chain *tab_next;   /* the table of open chains, by file identity */
	dev_t dev;
	ino_t ino;
	int registered;
	uint64_t trusted_size;    /* chain_open_trusted: the size the file must have when
				   * first opened (0 once opened, or never trusted) */
	/* Atomics, read by the cache without c->mu. */
	int unsynced;             /* bytes were written that are not known durable */
	int evict_errno;          /* an fdatasync before closing the descriptor failed */
};

/* Registers c (its file identity from fd, already open and flock()ed) and lends
 * the descriptor to the cache, pinned once. ERR_CONFLICT when this process has
 * the same file open as another chain (fd is then left to the caller). */
enum err_code chain_fd_install(struct chain *c, int fd, struct err *err);
/* The chain's descriptor, pinned, reopening the file when the cache closed it
 * (ERR_IO, ERR_NOT_FOUND, ERR_CONFLICT when it cannot be). Pair a success with
 * chain_fd_put. */
enum err_code chain_fd_get(struct chain *c, int *fd_out, struct err *err);
void chain_fd_put(struct chain *c);
/* Takes c out of the cache (no use may be in flight) and returns its descriptor
 * or -1 when the cache had closed it. */
int chain_fd_release(struct chain *c);

#endif
