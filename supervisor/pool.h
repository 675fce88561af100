/* pool.h - a fixed pool of worker threads running short jobs, with delayed jobs.
 *
 * All blocking work of the server (fetches, chain syncs, engine calls) runs here,
 * never on an HTTP thread. Jobs run in submission order per due time; a job that
 * needs to wait (for example a stream that is backed up) re-submits itself with
 * pool_submit_after instead of sleeping.
 * Ownership: the pool does not own job arguments.
 * Threads: every function may be called from any thread, including from jobs.
 */
#ifndef THEATER_SUPERVISOR_POOL_H
#define THEATER_SUPERVISOR_POOL_H

#include <stdint.h>

#include "src/util/err.h"

struct pool;
typedef void (*pool_fn)(void *arg);

enum err_code pool_new(unsigned nthreads, struct pool **out, struct err *err);
/* Refuses new jobs, runs every queued job (delayed ones at once, so that
 * timeouts fire and nothing is left pending), joins. Jobs that try to submit
 * more get ERR_UNAVAILABLE and must clean up. The pool stays valid: every later
 * submit, from any thread, gets ERR_UNAVAILABLE, until pool_free. Called by
 * one thread (the owner's); again does nothing. Accepts NULL. */
void pool_stop(struct pool *p);
/* pool_stop, then frees. Accepts NULL. */
void pool_free(struct pool *p);
/* ERR_UNAVAILABLE once pool_stop began; ERR_NOMEM. */
enum err_code pool_submit(struct pool *p, pool_fn fn, void *arg);
enum err_code pool_submit_after(struct pool *p, uint32_t delay_ms, pool_fn fn, void *arg);
unsigned pool_threads(const struct pool *p);
/* Monotonic milliseconds (the clock the pool uses). */
int64_t pool_now_ms(void);

#endif
