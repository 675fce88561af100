/* durable.h - private to the supervisor layer: an actor brought back from its
 * chain (docs/durability.md).
 *
 * The chain is the actor's memory. Every `wasm` event either holds the state the
 * call left ("state" inline, or "state_ref" into the content store) or names the
 * event that does ("state_seq"); every accepted mail is a
 * `message-server/received` event whose outcome is a later `wasm` event
 * ("mail": seq) or a `message-server/dropped` event, and every `wasm` event
 * carries "low", the oldest mail still open when it was written. So the state
 * of the last durable call and the mail still to deliver are found by reading
 * back from the head to the last `wasm` event, one jump to the state, and a
 * forward scan from "low".
 *
 * Threads: called at start-up (before the API serves) or from a worker job
 * that owns the actor (no call in progress).
 */
#ifndef THEATER_SUPERVISOR_DURABLE_H
#define THEATER_SUPERVISOR_DURABLE_H

#include "supervisor/supervisor_int.h"

#define DURABLE_PACKAGES_STORE "theater-packages"

/* Loads the state of a's last durable call from its chain into a->state (unless
 * a->state_loaded already). ERR_NOT_FOUND when the chain holds no state. */
enum err_code durable_load_state(struct supervisor *s, struct actor *a, struct err *err);
/* The initial state the run's `spawned` event records (the manifest's merged with
 * the spawn-time one): a new reference, NULL when it records none or the chain
 * cannot be read (then err says why). */
json_t *durable_initial_state(struct actor *a, struct err *err);

/* Brings a live run back after the server stopped or died: the same package
 * digest, the state of its last durable call, a `recovered` event (with the seq it
 * resumed from), and every accepted mail without an outcome delivered again, in
 * seq order. On failure the caller ends the run. */
enum err_code durable_recover(struct supervisor *s, struct actor *a, struct err *err);

/* Lazy recovery (docs/durability.md, "Lazy recovery"). 1 when the head event
 * of a's chain is a `suspended` or `recovered` event marked "idle" (no open
 * mail, no timers, nothing deferred): the run may stay without an instance
 * until it is needed. Reads one record. */
int durable_idle_head(struct actor *a);
/* Brings a lazy actor back (durable_recover, then its turn released) the first
 * time it is needed; a no-op for any other actor. Safe from any thread except
 * one holding a's locks; concurrent callers wait for the first. On failure the
 * run ends failed (recovery_failed) and the error is returned. */
enum err_code durable_wake(struct supervisor *s, struct actor *a, struct err *err);

/* Idle instances released (--idle-release-ms): an actor with an instance that
 * took no mail since idle_since and has nothing open (mail, timers, deferred
 * requests) records `suspended` ("reason": "idle", "idle": true), drops its
 * instance and becomes lazy: its next mail recovers it. 1 when released. */
int durable_release(struct supervisor *s, struct actor *a, int64_t idle_since);
/* Starts the periodic pass that releases idle instances (when configured). */
void durable_sweep_start(struct supervisor *s);
/* Starts recovering s->eager (the live runs start-up left lazy although they
 * must run: open mail, timers, a crash mid-work) in the background, a batch per
 * pool job, oldest first; a request to one of them recovers it first
 * (durable_wake). Called once, after start-up, before the API serves. */
void durable_background_start(struct supervisor *s);
/* Runs still waiting for that background recovery. Any thread. */
uint64_t durable_background_left(struct supervisor *s);

#endif
