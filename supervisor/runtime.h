/* runtime.h - private to the supervisor layer: running an actor's code.
 *
 * An actor that is `running` has a runtime: its own engine store and instance of
 * the (shared, cached) module, the exports of the ABI (docs/actor-abi.md), the
 * grants of its manifest and its limits. Calls happen one at a time per actor,
 * on the worker pool: the mailbox feeds a job that is queued at most once
 * (`scheduled`). Every call is a `wasm` chain event; a trap, exhausted fuel or a
 * missed deadline fails the run.
 */
#ifndef THEATER_SUPERVISOR_RUNTIME_H
#define THEATER_SUPERVISOR_RUNTIME_H

#include "src/manifest.h"
#include "supervisor/supervisor_int.h"

/* Instantiates the module for a (checking grants and exports) and calls init
 * with the state (may be NULL). On failure the run is NOT ended here: the caller
 * records `failed` with *reason_out (a stable reason) and err.
 * On success the caller holds the actor's turn (`scheduled`): no job runs the
 * instance (mail from children, a stop) until it records `started` and calls
 * runtime_release. Without that, a child failing during the parent's init ran
 * the parent's handle-child-error on a second thread (issue 12, item 1). */
enum err_code runtime_start(struct supervisor *s, struct actor *a, const struct manifest *m,
			    struct wasm_module *module, const json_t *state,
			    const char **reason_out, struct err *err);
/* Instantiates the module for a with the state a already holds (a->state), without
 * calling init: recovery and restarts that keep the last state. Takes module. */
enum err_code runtime_resume(struct supervisor *s, struct actor *a, const struct manifest *m,
			     struct wasm_module *module, const char **reason_out, struct err *err);
/* Frees the instance and answers every queued mail with ERR_CONFLICT, recording
 * it as dropped. Called after a terminal event (the actor is no longer running). */
void runtime_stop(struct supervisor *s, struct actor *a);
/* Ends the start's hold on the actor's turn: queued mail or a stop request made
 * while starting now gets the actor's job. */
void runtime_release(struct supervisor *s, struct actor *a);
/* Server stop: frees the instance; queued mail stays open in the chain (the
 * next start delivers it); waiting requests are answered ERR_UNAVAILABLE. */
void runtime_suspend(struct supervisor *s, struct actor *a);
/* Server stop: no more mail is taken; a call in progress is interrupted and not
 * recorded (its mail runs again on the next start). */
void runtime_interrupt_for_shutdown(struct actor *a);
/* Queues mail recovered from the chain (its received event, seq) again, without
 * recording it anew; requests have no one to answer (their outcome is recorded). */
enum err_code runtime_redeliver(struct supervisor *s, struct actor *a, uint64_t seq,
				const json_t *received, struct err *err);
/* Schedules an actor that has queued mail (after start-up recovery). */
void runtime_kick(struct supervisor *s, struct actor *a);
/* 1 when a has an instance with nothing to do (no call, no mail, no stop) and
 * took no mail since before_ms; a->lock held. */
int runtime_idle_locked(struct supervisor *s, struct actor *a, int64_t before_ms);
/* 1 while a call is in progress (running or parked). */
int runtime_busy(struct actor *a);
/* Frees a runtime that is not in use (actor teardown). */
void runtime_free(struct actor_rt *rt);
/* Stop (RUNTIME_STOP) or kill (RUNTIME_KILL) of a running actor with an instance,
 * or a stop that interrupts the call in progress and ends a parked wait as a kill
 * does (RUNTIME_STOP_CUT: for a restart); a->lock held. Returns 0 when the actor
 * has no instance (the caller records the end itself). */
enum { RUNTIME_STOP = 0, RUNTIME_KILL = 1, RUNTIME_STOP_CUT = 2 };
int runtime_request_stop(struct supervisor *s, struct actor *a, int kill);
/* Queues handle-child-exit (error = 0) or handle-child-error for a running
 * parent that exports it; ERR_CONFLICT when it cannot take it. */
enum err_code runtime_notify_parent(struct supervisor *s, const char *parent, int error,
				    const char *info, size_t len);
/* Adds bytes a host call wrote to the chain to the running call's budget
 * (the thread running the call only). */
void runtime_account_bytes(struct actor *a, size_t bytes);
/* Counts one host call against the chain budget of the call in progress; 1 when
 * the budget is spent and the host call must be refused (HOST_ETOOBIG). */
int runtime_charge_host_call(struct actor *a);
/* Parking (host.c, host_wait_end): 1 when the host call running now may park
 * the call (a mail call, job thread); runtime_park records, on the job thread,
 * the wait the parked call waits for; runtime_unpark, from any thread, marks it
 * answered and schedules the actor's job, which resumes the call. */
int runtime_may_park(struct actor *a);
void runtime_park(struct actor *a, void *key);
void runtime_unpark(struct actor *a, void *key);
/* Runs fn(arg) on the worker pool after ms; ERR_UNAVAILABLE when stopping. */
enum err_code supervisor_after(struct supervisor *s, uint32_t ms, void (*fn)(void *), void *arg);
/* The guest's theater_alloc, for host_return_bytes. */
struct wasm_func *runtime_alloc_func(struct actor *a);

#endif
