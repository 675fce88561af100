/* supervisor.h - actors: the registry, the spawn pipeline, lifecycle, event fan-out.
 *
 * The supervisor owns one `struct actor` per known run (loaded from SQLite and the
 * chain files at start, added by spawn). Every lifecycle step and, later, every
 * actor action is an event appended to the actor's chain (durable before it is
 * reported), indexed in SQLite, and handed to subscribers.
 *
 * Run statuses: starting -> running -> (stopped | failed | killed); `deleted` is a
 * tombstone that hides the run from the API while its chain file is kept.
 * Chain events written here: `spawned` (manifest, package reference and digest),
 * `started`, and exactly one terminal event per run: `stopped`, `failed` (with
 * `reason`) or `killed`. A spawn that fails before its package is known writes only
 * `failed`.
 *
 * Ownership: the supervisor borrows the db, store, resolver and chains folder given
 * in its config; they must outlive it.
 * Threads: every function may be called from any thread. Blocking work (fetches,
 * fsyncs) runs on the supervisor's worker pool; calls marked "async" return at once
 * and report through their callback, on a worker thread, exactly once.
 */
#ifndef THEATER_SUPERVISOR_H
#define THEATER_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "src/chain.h"
#include "src/db.h"
#include "src/resolve.h"
#include "src/headroom.h"
#include "src/store.h"
#include "src/util/err.h"
#include "src/util/json.h"
#include "supervisor/pool.h"

struct supervisor;
struct secrets;

struct supervisor_config {
	const char *chains_dir;
	struct db *db;
	struct store *store;
	struct resolver *resolver;
	unsigned workers;            /* worker threads; default 2 */
	size_t max_manifest_bytes;   /* for manifest_ref; default 1 MiB */
	/* Actor limits (a manifest may lower them, never raise them); 0 = default. */
	uint64_t fuel;               /* instructions per call [100,000,000] */
	uint64_t memory_bytes;       /* linear memory per actor [64 MiB] */
	uint32_t call_timeout_ms;    /* wall clock per call [5000] */
	uint32_t mailbox;            /* queued messages per actor [1024] */
	size_t max_message;          /* bytes per message or request [1 MiB] */
	int http_allow_private;      /* actors' http-client may reach loopback/private addresses */
	/* Issue 12 limits; 0 = default. */
	size_t mailbox_bytes;        /* queued message bytes per actor [64 MiB] */
	uint32_t max_actors;         /* live actors server-wide [10000] */
	uint32_t max_children;       /* live children per parent [1000] */
	uint64_t call_events;        /* host-call chain events per export call [100000] */
	uint64_t call_bytes;         /* host-call chain bytes per export call [64 MiB] */
	struct secrets *secrets;     /* granted to actors (environment, header templates); may be NULL */
	uint32_t http_timeout_ms;    /* send-http default timeout [60000] */
	uint32_t http_timeout_max_ms; /* cap of a handler's timeout_ms [600000] */
	int recover_none;            /* live runs end `failed` (server_restart) on start */
	uint32_t shutdown_grace_ms;  /* running calls may finish this long at shutdown [10000] */
	uint32_t idle_release_ms;    /* an instance idle this long is released; 0: never */
	int exits_after_shutdown;    /* the process ends after supervisor_shutdown: the
				      * instances' linear memories are left to the exit
				      * (wasm_memory_keep_at_exit) */
	/* Issue 16. */
	struct headroom *headroom;   /* spawns are refused (ERR_EXHAUSTED) without room; may be NULL */
	int verify_full;             /* start-up verifies every chain whole, not past the index's head */
	uint32_t spare_chains;       /* chain files made ahead of need (spares.h); 0: none, spawns
				      * create their own (the server's default: 1024) */
};

/* Opens every chain (truncating torn tails, verifying hashes; damage is logged and
 * reported by verify, never repaired), indexes chains SQLite does not know, and
 * recovers runs that were live when the server stopped or died (durable.h):
 * running again under the same id with the state of their last durable call and
 * their open mail delivered. With recover_none, or when recovery fails, they end
 * `failed` (reason `server_restart` or `recovery_failed`). */
enum err_code supervisor_new(const struct supervisor_config *cfg, struct supervisor **out,
			     struct err *err);
/* Refuses new work and stops taking mail; lets calls in progress finish for up to
 * shutdown_grace_ms (then interrupts them, recording nothing for them: their
 * mail runs again on the next start); finishes queued jobs; suspends every live
 * actor (a `suspended` event; the run stays live and is recovered on the next
 * start) and joins the workers. Subscriptions stay valid until unsubscribed. */
void supervisor_shutdown(struct supervisor *s);
/* Frees (calls supervisor_shutdown first if needed). Every subscription must have
 * been unsubscribed. Accepts NULL. */
void supervisor_free(struct supervisor *s);

/* The worker pool (NULL after supervisor_shutdown), the database, and the headroom
 * check new work goes through (may be NULL: always room). */
struct pool *supervisor_pool(struct supervisor *s);
/* The index, for reading: first waits (at most 2 s) for the index writes of
 * spawns already answered (the flusher makes them within its window), so what a
 * client was told exists is listed. */
struct db *supervisor_db(struct supervisor *s);
/* The index without that wait: for tables no spawn writes (idempotency). */
struct db *supervisor_db_raw(struct supervisor *s);
struct headroom *supervisor_headroom(struct supervisor *s);
/* 1 while starting up or shutting down, for /ready. */
int supervisor_draining(const struct supervisor *s);

/* ---- spawn (async) ---- */

enum spawn_wait { SPAWN_WAIT_CREATED, SPAWN_WAIT_RUNNING };

struct spawn_request {
	json_t *manifest;            /* borrowed (the inline manifest), or NULL */
	const char *manifest_ref;    /* or a reference to fetch it from */
	json_t *initial_state;       /* borrowed, may be NULL */
	const char *parent_id;       /* may be NULL */
	int parent_remote;           /* the parent runs on another node (cluster/): its
				      * liveness is that node's to check, not here */
	enum spawn_wait wait;
	uint32_t timeout_ms;         /* for SPAWN_WAIT_RUNNING; 0 = 30 s */
};

/* Called once, possibly before supervisor_spawn returns. rc != ERR_OK with run ==
 * NULL: nothing was created (bad manifest, manifest_ref unreachable). Otherwise
 * run is a snapshot (borrowed for the call): status `starting` for
 * SPAWN_WAIT_CREATED; `running`, `failed` or (after the timeout) still
 * `starting` for SPAWN_WAIT_RUNNING. For a failed run, err (when not NULL) holds
 * the error that failed it (its code says what kind: ERR_FORBIDDEN_PATH,
 * ERR_FETCH_STATUS, ERR_NOT_WASM, ...). */
typedef void (*spawn_done_fn)(void *user, enum err_code rc, const struct err *err,
			      const struct db_run *run);
/* Async. Copies what it needs of req. ERR_UNAVAILABLE while draining (done not called). */
enum err_code supervisor_spawn(struct supervisor *s, const struct spawn_request *req,
			       spawn_done_fn done, void *user);

/* ---- lifecycle (async) ---- */

/* A run in this status may still run or hold an instance: starting, running or
 * stopping. */
int supervisor_status_live(const char *status);

/* Called once, possibly before the call that takes it returns. */
typedef void (*supervisor_done_fn)(void *user, enum err_code rc, const struct err *err);
/* Stop (kill = 0) or kill (kill = 1) a run. Done gets ERR_NOT_FOUND, ERR_NOT_MODIFIED
 * (stop of an ended run), ERR_CONFLICT (kill of an ended run) or ERR_OK once the
 * terminal event is durable. */
void supervisor_stop(struct supervisor *s, const char *id, int kill, supervisor_done_fn done,
		     void *user);
/* Delete a run (tombstone; the chain file is kept). ERR_CONFLICT while live unless
 * force, which kills it first. */
void supervisor_delete(struct supervisor *s, const char *id, int force, supervisor_done_fn done,
		       void *user);
/* A cluster's delete without force, before its tombstone (hold 1): checks that
 * the run is not live (ERR_CONFLICT; ERR_NOT_FOUND) and from then on records
 * nothing of it but `deleted` (a pending automatic restart is cancelled, a
 * manual one answers ERR_CONFLICT), so the run that was checked is the one
 * deleted. hold 0: the tombstone could not be written; the run may restart
 * again (its pending automatic restart stays cancelled). */
enum err_code supervisor_delete_hold(struct supervisor *s, const char *id, int hold,
				     struct err *err);

/* ---- actors at work: messages, requests, state (issue 4) ---- */

/* Puts a message in the mailbox of running actor `to`, an actor of this node
 * (from: the sender's actor id, or NULL). Messages from one sender arrive in
 * order. The acceptance is recorded in the receiver's chain before this returns.
 * ERR_NOT_FOUND, ERR_CONFLICT (not running), ERR_BUSY (mailbox full),
 * ERR_TOO_LARGE. Sync; may block on one fdatasync. */
enum err_code supervisor_send(struct supervisor *s, const char *to, const char *from,
			      const void *data, size_t len, struct err *err);
/* A send to an actor another node runs (the cluster's remote hook; ERR_NOT_FOUND
 * without one): ERR_OK, and done is called once, later, on another thread, when
 * the receiver's node accepted it (durable there) or it failed; or an error at
 * once (done is not called). The caller waits for done without holding a worker
 * (an actor's send parks). */
enum err_code supervisor_send_remote(struct supervisor *s, const char *to, const char *from,
				     const void *data, size_t len, supervisor_done_fn done,
				     void *user, struct err *err);
/* The same from the API, without blocking on the sync: errors found before the
 * message is written are returned (done is not called); else ERR_OK, and done
 * is called once, when the message is durable and queued (ERR_OK) or could not
 * be (ERR_IO, ERR_CONFLICT), from the committer thread or before this returns.
 * Concurrent senders share one fdatasync (group commit, supervisor/flusher.c). */
enum err_code supervisor_send_async(struct supervisor *s, const char *to, const void *data,
				    size_t len, supervisor_done_fn done, void *user,
				    struct err *err);
/* The answer to a request: rc ERR_OK with the response bytes (borrowed for the
 * call), ERR_TIMEOUT, ERR_WASM_TRAP / ERR_WASM_EXHAUSTED (the actor failed),
 * ERR_ACTOR_ERROR (the actor returned an error: err says which), ERR_CONFLICT (the
 * actor stopped first). Called once, on a worker thread. */
typedef void (*supervisor_reply_fn)(void *user, enum err_code rc, const struct err *err,
				    const uint8_t *data, size_t len);
/* Async. Errors that happen before the request is queued are returned (and
 * reply is not called): the same as supervisor_send. */
enum err_code supervisor_request(struct supervisor *s, const char *to, const char *from,
				 const void *data, size_t len, uint32_t timeout_ms,
				 supervisor_reply_fn reply, void *user, struct err *err);
/* A piece of a streamed answer (docs/actor-abi.md, "Deferred and streamed
 * answers"): the bytes the actor sent with send-chunk (borrowed for the call),
 * in order, before the reply. Called on the thread of the actor's call (or of
 * its host call), never after the reply began. */
typedef void (*supervisor_chunk_fn)(void *user, const uint8_t *data, size_t len);
/* supervisor_request, and chunk (may be NULL: chunks are recorded, not sent)
 * gets the pieces of the answer the actor streams; reply gets the full answer. */
enum err_code supervisor_request_stream(struct supervisor *s, const char *to, const char *from,
					const void *data, size_t len, uint32_t timeout_ms,
					supervisor_reply_fn reply, supervisor_chunk_fn chunk,
					void *user, struct err *err);
/* The current state bytes of a run (malloc'd). ERR_NOT_FOUND. */
enum err_code supervisor_state(struct supervisor *s, const char *id, uint8_t **data_out,
			       size_t *len_out, struct err *err);

struct supervisor_metrics {
	uint64_t calls, failures;    /* export calls made, of which failed */
	uint64_t fuel;               /* fuel used by all calls */
	uint64_t busy_us;            /* time spent in calls */
	uint64_t memory_bytes;       /* linear memory + engine objects of the instance */
	uint64_t mailbox_depth, mailbox_capacity;
	uint64_t messages, requests; /* accepted */
	uint32_t restarts;
};
enum err_code supervisor_metrics(struct supervisor *s, const char *id,
				 struct supervisor_metrics *out, struct err *err);
/* Restarts a run with the same package digest: a `restarted` event, then either
 * a new instance with the last good state (no init), or, with `initial` (or when
 * no state is recorded), init again with the initial state. Async like stop. */
void supervisor_restart(struct supervisor *s, const char *id, int initial,
			supervisor_done_fn done, void *user);
/* The ids of a run's live and ended children, as a new JSON array. */
json_t *supervisor_children(struct supervisor *s, const char *parent_id);
struct store *supervisor_store(struct supervisor *s);
/* 1 when actors' http-client may reach loopback, private and link-local addresses. */
int supervisor_http_allow_private(struct supervisor *s);
/* Calls parked now in a waiting host call, and parks since the start. */
void supervisor_parked_calls(struct supervisor *s, uint64_t *now, uint64_t *total);
/* The fetcher that runs actors' outbound HTTP (src/fetch.h). */
struct fetcher *supervisor_fetcher(struct supervisor *s);

/* ---- queries (sync, memory only, cheap) ---- */

/* How many runs are live (starting, running, stopping): a node's load. The count
 * --max-actors keeps (spawn.c): runs ended since its last walk, a quarter second or
 * more ago, are still in it; no walk of every actor on the caller's path. */
uint64_t supervisor_live_count(struct supervisor *s);
/* How many actors have an instance now (live runs recovered lazily have none
 * until their first mail; docs/durability.md). */
uint64_t supervisor_loaded_count(struct supervisor *s);
/* Idle instances released since the start (--idle-release-ms). */
uint64_t supervisor_released_count(struct supervisor *s);
/* Live runs start-up left for the background recovery that are not back yet. */
uint64_t supervisor_recovery_pending(struct supervisor *s);
/* Spare chain files ready now, and created by this process (spares.h). */
void supervisor_spare_chains(struct supervisor *s, uint64_t *ready, uint64_t *created);

/* Snapshot of one run; ERR_NOT_FOUND (also for deleted runs). out: db_run_release. */
enum err_code supervisor_get(struct supervisor *s, const char *id, struct db_run *out,
			     struct err *err);

/* ---- chains ---- */

struct supervisor_event {
	const char *actor_id;
	uint64_t seq;
	const uint8_t *hash, *parent_hash;   /* 32 bytes each */
	const char *event_type;
	const uint8_t *data;
	size_t data_len;
	int64_t timestamp;                   /* unix ms */
	uint64_t global_id;                  /* lifecycle stream position; 0 on chain streams */
	const char *status;                  /* lifecycle stream: run status after the event */
	int terminal;                        /* this event ended the run */
};

/* Reads one event of a run's chain (sync; a file read). out: chain_event_release. */
enum err_code supervisor_read_event(struct supervisor *s, const char *id, uint64_t seq,
				    struct chain_event *out, int64_t *timestamp_out,
				    struct err *err);
/* Head and whether the run has ended (no more events will come). */
enum err_code supervisor_chain_head(struct supervisor *s, const char *id, uint64_t *length_out,
				    int *ended_out, struct err *err);
/* ERR_CHAIN_DAMAGED (with a message for clients) when damage was found in the
 * run's chain (a read, a verify or an append found it); ERR_OK otherwise, also
 * for an unknown id. */
enum err_code supervisor_chain_check(struct supervisor *s, const char *id, struct err *err);
enum err_code supervisor_verify(struct supervisor *s, const char *id,
				struct chain_verify_result *out, struct err *err);

/* Subscriptions. With actor_id, fn gets every new event of that run's chain; with
 * NULL, the lifecycle events of all runs (global_id set). *head_out is the last seq
 * (or global id) already stored when the subscription began: replay up to it from
 * storage, then take live events above it. fn runs on the recording thread with the
 * subscription's lock held: it must not block and must not call back into the
 * supervisor. After supervisor_unsubscribe returns, fn is not running and never runs
 * again. ERR_NOT_FOUND for an unknown run. */
typedef void (*supervisor_event_fn)(void *user, const struct supervisor_event *ev);
struct supervisor_sub;
enum err_code supervisor_subscribe(struct supervisor *s, const char *actor_id,
				   supervisor_event_fn fn, void *user, uint64_t *head_out,
				   struct supervisor_sub **out, struct err *err);
void supervisor_unsubscribe(struct supervisor *s, struct supervisor_sub *sub);

/* ---- cluster hooks (issue 15, cluster/) ---- */

/* Replication of every chain event. publish gets each event right after it is
 * appended (under the actor's record lock, so in seq order per actor; it must
 * not block and must not call back into the supervisor); wait returns once
 * everything published so far is acknowledged by the replicas. The supervisor
 * calls wait before it reports a synced event (to subscribers, waiters, the
 * API): group commit covers both the local sync and the stream's
 * acknowledgement. A failed wait is logged and returned where an API call
 * waits on it (a message, 503). confirm (may be NULL) runs after a wait that
 * succeeded and before the API acknowledges an actor's events (a message's 202):
 * whether the actor is still this node's, so that a node which lost it to
 * another and has not heard yet does not acknowledge what the new owner's copy
 * lacks; its error is the API's answer. */
struct supervisor_replica {
	void (*publish)(void *user, const struct supervisor_event *ev);
	enum err_code (*wait)(void *user, struct err *err);
	enum err_code (*confirm)(void *user, const char *actor_id, struct err *err);
	void *user;
};
/* Installs r (NULL: none). Call once, before actors are spawned through the API. */
void supervisor_set_replica(struct supervisor *s, const struct supervisor_replica *r);
/* Mail for actors this node does not know (another node runs them):
 * supervisor_send_remote, supervisor_send_async and supervisor_request hand it
 * to these when the receiver is not found here. send: ERR_OK and done called
 * once, later, from another thread (ERR_OK: durable in the receiver's chain),
 * or an error at once; request: reply called once. */
struct supervisor_remote {
	enum err_code (*send)(void *user, const char *to, const char *from, const void *data,
			      size_t len, supervisor_done_fn done, void *done_user,
			      struct err *err);
	enum err_code (*request)(void *user, const char *to, const char *from, const void *data,
				 size_t len, uint32_t timeout_ms, supervisor_reply_fn reply,
				 void *reply_user, struct err *err);
	/* Supervision across nodes. notice: a child ended and its parent runs
	 * elsewhere (info: the JSON handle-child-exit / handle-child-error gets);
	 * must not block. child: stop (restart 0) or restart a child that runs
	 * elsewhere, once its node confirms `parent` is its parent; done is called
	 * once (ERR_NOT_MODIFIED: a stopped child had ended). ERR_NOT_FOUND, at
	 * once, when no node is known to run it. */
	void (*notice)(void *user, const char *parent, int error, const char *info, size_t len);
	enum err_code (*child)(void *user, const char *child, const char *parent, int restart,
			       supervisor_done_fn done, void *done_user, struct err *err);
	/* Children on other nodes (docs/cluster.md "Children across nodes").
	 * spawn: where req's child runs (req->parent_id set): *here_out = 1 and
	 * nothing else happens when it runs on this node; else done is called once
	 * with the run the other node created (ERR_NOT_FOUND: the node the
	 * manifest names is not up). children: reply once with a JSON array of
	 * parent's children on the other nodes. child_state: reply once with the
	 * state of child, once its node confirms parent is its parent
	 * (ERR_NOT_FOUND, ERR_FORBIDDEN_PATH). orphans: parent ended here: its
	 * children on the other nodes are stopped; must not block. */
	enum err_code (*spawn)(void *user, const struct spawn_request *req, int *here_out,
			       spawn_done_fn done, void *done_user, struct err *err);
	enum err_code (*children)(void *user, const char *parent, supervisor_reply_fn reply,
				  void *reply_user, struct err *err);
	enum err_code (*child_state)(void *user, const char *child, const char *parent,
				     supervisor_reply_fn reply, void *reply_user, struct err *err);
	void (*orphans)(void *user, const char *parent);
	void *user;
};
void supervisor_set_remote(struct supervisor *s, const struct supervisor_remote *r);
/* A notice from another node for a parent this node runs: delivered like a
 * local child's (handle-child-exit, or -error when error). ERR_NOT_FOUND,
 * ERR_CONFLICT (the parent does not listen, or stops). */
enum err_code supervisor_notify_parent(struct supervisor *s, const char *parent, int error,
				       const char *info, size_t len);
/* The remote child hook (ERR_NOT_FOUND without one). */
enum err_code supervisor_remote_child(struct supervisor *s, const char *child,
				      const char *parent, int restart, supervisor_done_fn done,
				      void *done_user, struct err *err);
/* The installed remote hooks (NULL: a single node). */
const struct supervisor_remote *supervisor_remote_hooks(struct supervisor *s);
/* wait of the installed replica (ERR_OK without one). */
enum err_code supervisor_replica_wait(struct supervisor *s, struct err *err);
/* confirm of the installed replica for actor_id (ERR_OK without one). */
enum err_code supervisor_replica_confirm(struct supervisor *s, const char *actor_id,
					 struct err *err);
/* wait, then confirm for actor_id: before the API acknowledges its events. */
enum err_code supervisor_replica_ack(struct supervisor *s, const char *actor_id,
				     struct err *err);
/* Takes over a run whose chain file another node wrote into chains_dir (a
 * failover): indexes it, loads it and recovers it like a run found at start-up
 * (durable.h). ERR_CONFLICT when the run is already known here. */
enum err_code supervisor_adopt(struct supervisor *s, const char *actor_id, struct err *err);
/* The folder of the chain files. */
const char *supervisor_chains_dir(struct supervisor *s);

/* Lifecycle events stored after global position `after`, oldest first, at most
 * limit; cb per event (data is the lifecycle JSON). */
enum err_code supervisor_lifecycle_after(struct supervisor *s, uint64_t after, unsigned limit,
					 void (*cb)(void *user, const struct supervisor_event *ev),
					 void *user, struct err *err);

#endif
