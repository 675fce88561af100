/* spares.h - chain files created ahead of need.
 *
 * A spawn takes a spare (an empty file in the chains directory, created and made
 * durable by a background thread) and renames it to <id>.chain, so the file
 * system allocates no inode on the request path (issue 16: after churn, ext4's
 * allocator took half the CPU of a spawn). The rename's directory entry is made
 * durable by the chain's first sync (chain_set_dir_unsynced). */
#ifndef THEATER_SUPERVISOR_SPARES_H
#define THEATER_SUPERVISOR_SPARES_H

#include "src/util/err.h"

struct spares;

/* Removes spares a previous process left in dir and starts the refill thread.
 * NULL when out of memory or the thread cannot start (spawns then create files). */
struct spares *spares_start(const char *dir);
/* Stops the thread and removes the spares not taken. NULL ok. */
void spares_stop(struct spares *sp);
/* Renames a spare to `path`. ERR_OK, or ERR_NOT_FOUND when none is ready (the
 * caller creates the file itself); the entry is not durable yet. */
enum err_code spares_take(struct spares *sp, const char *path);

#endif
