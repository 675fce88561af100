/* record.h - private to supervisor/: appending events; see record.c. */
#ifndef THEATER_SUPERVISOR_RECORD_H
#define THEATER_SUPERVISOR_RECORD_H

#include "supervisor/supervisor_int.h"

/* Appends `type` with `data` (steals it) to a's chain, durably; when status is not
 * NULL also moves the run to it (with reason). Indexes, updates the snapshot, fans
 * out, logs the lifecycle event and fires satisfied waiters. Takes a->rec_lock. */
enum err_code record_event(struct supervisor *s, struct actor *a, const char *type,
			   json_t *data, const char *status, const char *reason, struct err *err);
/* Like record_event; with defer_sync (and no status), the event is appended
 * without a sync and indexed and reported when the flusher (or the next synced
 * event, or record_sync) makes it durable. For events nobody is waiting on:
 * calls and host calls. */
enum err_code record_event_ex(struct supervisor *s, struct actor *a, const char *type,
			      json_t *data, const char *status, const char *reason, int defer_sync,
			      struct err *err);
/* record_event_ex that also reports the event's seq and the bytes of its data
 * (when appended; either output may be NULL). */
enum err_code record_event_seq(struct supervisor *s, struct actor *a, const char *type,
			       json_t *data, const char *status, const char *reason,
			       int defer_sync, uint64_t *seq_out, size_t *len_out,
			       struct err *err);
/* Mail bookkeeping for exactly-once delivery (docs/durability.md): appending a
 * `message-server/received` event opens its seq; a `wasm` event with "mail": seq
 * or a `message-server/dropped` event with "mails": [...] settles it. Every
 * `wasm` event gets "low" (the oldest open mail, where recovery scans from) and,
 * unless it carries the state, "state_seq" (the event that does).
 * record_mail_open re-opens a seq at recovery (rec_lock held). */
void record_mail_open(struct actor *a, uint64_t seq);
/* Notes that `from` sent a message recorded in `to`'s chain within its first
 * `upto` bytes, not yet synced: they are made durable before any of `from`'s own
 * events are (record_sync, synced appends), so a durable send is never lost. */
void record_send_dep(struct supervisor *s, struct actor *from, struct actor *to, uint64_t upto);
/* Copies a's pending send dependencies (each with a reference on its `to`), for
 * a batch sync that covers them (flusher.c). */
size_t record_deps_snapshot(struct supervisor *s, struct actor *a, struct send_dep **out);
/* The index's package of a run (db_run_set_package), or nothing when the run row
 * is not inserted yet (a->unindexed: the insert carries a->run's). Takes rec_lock. */
enum err_code record_index_package(struct supervisor *s, struct actor *a, const char *ref,
				   const char *sha256, struct err *err);
/* Inserts the run row of a spawn whose insert waited for its first indexed events
 * (a->unindexed), now: the spawn is being answered before that (a ?wait=running
 * that timed out). ERR_OK when the row is there, also before (a failure is logged).
 * Takes rec_lock. */
enum err_code record_index_run(struct supervisor *s, struct actor *a);
/* Makes a's deferred events durable, indexes and reports them (takes rec_lock). */
void record_sync(struct supervisor *s, struct actor *a);
/* flusher.c: marks a as having deferred events (takes the flusher lock). */
void flusher_mark(struct supervisor *s, struct actor *a);
/* flusher.c: a's run row is owed to the index (a spawn answered first), or was
 * written now; readers wait for what is owed (flusher_index_settle). rec_lock
 * held, or a's last reference. */
void flusher_index_owe(struct supervisor *s, struct actor *a);
void flusher_index_paid(struct supervisor *s, struct actor *a);
/* Waits (at most 2 s) for the index writes owed by spawns answered before now. */
void flusher_index_settle(struct supervisor *s);
/* Frees deferred events never reported (actor teardown). */
void record_release_pending(struct actor *a);
/* {"timestamp": now, "reason": ..., "detail": ...} (NULL members omitted). */
json_t *lifecycle_data(const char *reason, const char *detail);
/* Fires a list of waiters collected from an actor (no locks held). */
void waiters_fire(struct supervisor *s, struct waiter *list);
/* Answers w unless already answered, and drops one reference. */
void waiter_fire_one(struct supervisor *s, struct waiter *w);
/* Records the terminal `stopped` (kill = 0) or `killed` event of a live run whose
 * terminal_pending the caller has set (supervisor.c). */
void stop_record(struct supervisor *s, struct actor *a, int kill);
/* supervise.c: after a run's terminal event (no locks held). */
void supervise_run_ended(struct supervisor *s, struct actor *a, const char *status,
			 const char *reason);
/* supervise.c: the reason to record for a failure: `crash_loop` when the restart
 * policy would restart but its limit is reached, else reason. */
const char *supervise_fail_reason(struct supervisor *s, struct actor *a, const char *reason);
/* supervise.c: the manifest and module of a run from before this server started
 * (its package from the content store by digest, else fetched again and checked
 * against the digest). */
enum err_code supervise_reload(struct supervisor *s, struct actor *a, struct err *err);
/* Ends a run with `failed`, a stable reason and the error that caused it (its
 * message is the detail; its code is what a waiting spawn reports) (spawn.c). */
void spawn_fail(struct supervisor *s, struct actor *a, const char *reason, const struct err *why);

#endif
