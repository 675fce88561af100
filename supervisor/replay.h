/* replay.h - re-executing a run from its chain (POST /actors/{id}/replay).
 *
 * Replay walks a run's chain from its first event and re-executes every
 * recorded export call (`wasm` event: init, handle-send, handle-request, ...)
 * in a fresh instance of the same package digest, with the state the run had
 * before that call. Every host call the actor makes is answered from its
 * recorded event (the "effects" and "return" members, see host.h): no HTTP, no
 * spawn, no store write, no message. Each call's output (or error) and the
 * SHA-256 of its resulting state are compared with the record; the first
 * difference is the divergence. A `restarted` or `recovered` event starts a
 * fresh instance with the state the run restarted from.
 *
 * Package bytes: the spawn pipeline keeps every package in the content store
 * under store id "theater-packages" (durable.h), keyed by its SHA-256; replay
 * reads it from there, or takes the module the live actor still holds, or
 * fetches the package reference again when its digest still matches.
 *
 * Threads: any. The replay itself runs on the supervisor's worker pool.
 */
#ifndef THEATER_SUPERVISOR_REPLAY_H
#define THEATER_SUPERVISOR_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/json.h"

struct supervisor;

/* Called once, on a worker thread (or at once when the run is unknown). On
 * ERR_OK, answer (borrowed for the call) is {"replayed": <calls replayed
 * identically>, "events": <events examined>, "diverged_at": <seq or null>,
 * "expected": <recorded or null>, "got": <replayed or null>}. Errors:
 * ERR_NOT_FOUND (unknown or deleted run), ERR_CHAIN_DAMAGED (the chain cannot
 * be read whole), ERR_PACKAGE_UNAVAILABLE (the package bytes are gone),
 * ERR_CONFLICT (the chain was recorded without what replay needs, e.g. by an
 * older server), ERR_UNAVAILABLE (shutting down). */
typedef void (*replay_done_fn)(void *user, enum err_code rc, const struct err *err,
			       const json_t *answer);
/* Async. */
void supervisor_replay(struct supervisor *s, const char *id, replay_done_fn done, void *user);

#endif
