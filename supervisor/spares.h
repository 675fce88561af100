/* spares.h - chain files created ahead of need, already named.
 *
 * A spare is an EMPTY "<uuid>.chain" file with no run row: a background thread
 * makes them in batches (the uuid v4, a row in the index's spares table, the
 * file created O_EXCL, one directory fsync per batch) and only then hands them
 * out. A spawn takes a ready spare's id as its actor id: no inode allocation, no
 * rename and no directory sync on the request path (issue 16: after churn,
 * ext4's allocator took half the CPU of a spawn), since the name is durable.
 *
 * The pool outlives the process: spares are kept at stop and taken back at the
 * next start from the spares table (ids that became runs dropped, each other one
 * checked empty with one stat), without listing the chains directory. Why an
 * unused spare is never an actor, and the crash cases: docs/decisions.md.
 *
 * Threads: spares_take and the getters from any thread; start/stop from one. */
#ifndef THEATER_SUPERVISOR_SPARES_H
#define THEATER_SUPERVISOR_SPARES_H

#include <stddef.h>
#include <stdint.h>

#include "src/db.h"
#include "src/util/err.h"

struct spares;

/* Starts the refill thread keeping `target` spares in dir (the thread first takes
 * back the spares a previous process kept). dir and db are borrowed and must
 * outlive the pool. NULL when target is 0 (the spares an earlier start kept are
 * then removed), out of memory, or the thread cannot start: spawns then create
 * their own files. */
struct spares *spares_start(const char *dir, struct db *db, unsigned target);
/* Stops the thread; the spares not taken stay on disk for the next start. NULL ok. */
void spares_stop(struct spares *sp);
/* Takes a ready spare: its id into id_out. ERR_NOT_FOUND when none is ready (the
 * caller makes an id and creates the file itself). */
enum err_code spares_take(struct spares *sp, char id_out[37]);
/* The id was handed to a client without a run row (a spawn answered at its
 * wait's timeout whose row could not be inserted): its spares row goes now, so a
 * crash cannot make it a spare again. */
void spares_forget(struct spares *sp, const char *id);
/* Spares ready now, and files created by this process (both 0 for NULL). */
void spares_counts(struct spares *sp, uint64_t *ready_out, uint64_t *created_out);

#endif
