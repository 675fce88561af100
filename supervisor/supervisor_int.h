/* supervisor_int.h - private to the supervisor layer: the actor record and registry.
 *
 * Lock order: actor rec_lock -> actor lock -> lifecycle lock. The registry lock
 * is a leaf: nothing is locked while it is held, so it may be taken anywhere.
 * `rec_lock` serializes everything appended to one actor's chain, so events reach
 * the index and subscribers in seq order. `lock` guards the snapshot, flags,
 * waiters and subscribers; subscriber callbacks run with it held.
 */
#ifndef THEATER_SUPERVISOR_INT_H
#define THEATER_SUPERVISOR_INT_H

#include <pthread.h>

#include "supervisor/engine.h"
#include "supervisor/supervisor.h"

struct supervisor_sub {
	struct supervisor_sub *next, *prev;
	supervisor_event_fn fn;
	void *user;
	struct actor *actor;          /* NULL: lifecycle stream (holds a reference) */
};

enum waiter_kind { WAIT_RUNNING, WAIT_END };

struct waiter {
	struct waiter *next;
	enum waiter_kind kind;
	spawn_done_fn spawn_done;     /* WAIT_RUNNING */
	supervisor_done_fn done;      /* WAIT_END */
	void *user;
	int fired;                    /* guarded by the actor lock */
	int refs;                     /* list + timer; guarded by the actor lock */
	struct actor *actor;          /* holds a reference */
	struct supervisor *sup;
};

struct actor_rt;
struct mail;

struct actor {
	struct actor *hnext;          /* registry bucket chain */
	/* The registry's kin chain (registry lock): actors whose parent_id hashes to
	 * the same bucket, so a parent's children are found without a walk of every
	 * actor. kprev is NULL when the actor is not in it (no parent, not registered). */
	struct actor *knext, **kprev;
	struct supervisor *sup;
	pthread_mutex_t lock;
	pthread_mutex_t rec_lock;
	int refs;                     /* guarded by the registry lock */
	struct db_run run;            /* snapshot */
	struct chain *chain;          /* NULL when it could not be opened */
	int damaged;                  /* atomic: chain damage found; appends refused */
	uint64_t acked;               /* events the index had acknowledged at start */
	int terminal_pending;         /* a stop/kill/fail is being recorded */
	int stop_requested;           /* 1 stop, 2 kill, while starting */
	struct waiter *waiters;
	struct supervisor_sub *subs;
	struct err fail_err;          /* why the spawn failed (code + message), for waiters */
	/* The running instance (runtime.c). rt is created by the spawn pipeline and
	 * used only by the one job that runs the actor at a time (`scheduled`). */
	struct actor_rt *rt;
	/* Lazy recovery (durable.c): a live run brought back at start-up without an
	 * instance (its chain says it was idle: no open mail, no timers); the first
	 * need (mail, a restart) recovers it under wake_lock. Atomic. */
	int lazy;
	int recover_due;              /* atomic: lazy, but its chain does not end idle: the
				       * background recovery (or a stop) wakes it */
	pthread_mutex_t wake_lock;
	int releasing;                /* lock: its idle instance is being released */
	int64_t active_ms;            /* lock: when it last took mail or was instantiated */
	/* Deferred requests (channel.c) and timers (timers.c) of the running
	 * instance; lock. Emptied when the instance goes (runtime_stop/suspend). */
	struct channel_tab *chan;
	struct timer_tab *timers;
	/* timers.c: held from a tick's computation until it is in the mailbox, and
	 * from a recorded table's snapshot until its event is in the chain, so the
	 * chain's order of tables and ticks is the order they were made in. Taken
	 * before lock and rec_lock, never while holding them. */
	pthread_mutex_t tick_lock;
	uint8_t *state;               /* lock: the current state bytes */
	size_t state_len;
	char state_sha[65];           /* lock: hex SHA-256 of state */
	json_t *initial_state;        /* lock: merged initial state, for restarts */
	struct mail *mail_head, *mail_tail;   /* lock */
	size_t mail_n, mail_cap;
	size_t mail_bytes;            /* lock: bytes queued (limits.mailbox_bytes) */
	size_t mail_reserved;         /* lock: places taken by mail being recorded */
	int scheduled;                /* lock: a run job is queued or running */
	struct supervisor_metrics metrics;    /* lock */
	/* Supervision (supervise.c). */
	struct manifest *manifest;    /* owned once running: the restart policy, limits */
	struct wasm_module *module;   /* a reference, to restart with the same digest */
	int64_t restarts_at[32];      /* lock: times (ms) of recent automatic restarts */
	unsigned nrestarts;
	int restart_pending;          /* lock: a restart job is scheduled */
	unsigned restart_gen;         /* lock: the number of that job, which alone may run
				       * it (one cancelled stays so) */
	int user_stopped;             /* lock: ended by stop/kill/delete: never restarted */
	int deleted;                  /* rec_lock and lock: `deleted` is being recorded or
				       * was; nothing is recorded after it (record.c) */
	int delete_held;              /* lock: a cluster's delete checked it was not live
				       * and writes its tombstone: nothing but `deleted`
				       * is recorded (supervisor_delete_hold) */
	/* Deferred durability (record.c): while defer_sync is set, events without a
	 * status change are appended without a sync and reach subscribers only when
	 * the next synced event makes them durable. defer_sync is set and cleared by
	 * the thread that starts a run, and read (atomic) by whichever thread records:
	 * others may, a child's notice while the parent's init runs; rec_lock guards
	 * the pending list. */
	int defer_sync;               /* atomic */
	/* rec_lock: the run row is not in the index yet (a spawn answered when it
	 * runs): the first index write inserts it (record.c), in the same transaction. */
	int unindexed;
	/* rec_lock: a spawn answered before its index write, which the flusher makes
	 * (record.c, "index later"); counted in the supervisor's index_owed */
	int index_owed;
	int dirty;                    /* flush_lock: on the flusher's list */
	struct pending_event *pending, *pending_tail;
	uint64_t durable_seq;         /* lock: the last seq on disk; what subscribers see */
	/* Durability (record.c, durable.c): the mail accepted into this chain (by the
	 * seq of its `message-server/received` event) that has no outcome yet, and
	 * the seq of the event that holds the current state bytes. rec_lock. */
	uint64_t *open_mail;
	size_t nopen, capopen;
	uint64_t open_untracked;      /* the oldest mail not tracked (out of memory), or 0 */
	uint64_t state_seq;
	int state_loaded;             /* lock: a->state is the run's (else load it) */
	/* Messages this actor sent whose `received` events are not yet known to be
	 * durable in the receivers' chains: they must be before this actor's own
	 * events are (record.c), so a durable send is never lost. deps_lock. */
	pthread_mutex_t deps_lock;
	struct send_dep {
		struct actor *to;     /* a reference */
		uint64_t upto;        /* bytes of its chain that hold the event */
	} *deps;
	size_t ndeps, capdeps;
};

struct supervisor {
	struct supervisor_config cfg;
	/* Cluster hooks, set while workers run: readers load the pointer (acquire)
	 * and find a stable copy (set once; a later set to NULL leaves the copy). */
	struct supervisor_replica replica_copy;
	const struct supervisor_replica *replica;   /* atomic; NULL: no replication */
	struct supervisor_remote remote_copy;
	const struct supervisor_remote *remote;     /* atomic; NULL: no other nodes */
	char *chains_dir;
	struct spares *spares;        /* spare chain files for spawns (spares.c); may be NULL */
	struct pool *pool;            /* stopped by supervisor_shutdown, freed by _free */
	struct engine *engine;
	struct fetcher *fetcher;      /* actors' outbound HTTP (send-http), one thread */
	uint64_t parked, parks;       /* atomic: calls parked now, parks since the start */
	uint64_t loaded;              /* atomic: actors with an instance (a->rt) */
	uint64_t released;            /* atomic: idle instances released since the start */
	/* durable.c: live runs that must run (open mail, timers, a crash mid-work),
	 * recovered in the background after start-up; the pool's one background job
	 * owns eager_next. eager_left (atomic) counts the ones not done yet. */
	char (*eager)[37];
	size_t neager, eager_next;
	uint64_t eager_left;
	pthread_mutex_t reg_lock;
	struct actor **buckets;
	struct actor **kin;           /* by parent id, as many as buckets (actor.c) */
	size_t nbuckets, nactors;
	uint64_t registered;          /* reg_add calls so far (written under reg_lock) */
	int registry_up;              /* reg_init done, reg_release not: set before any
				       * thread runs (buckets moves as the table grows) */
	pthread_mutex_t life_lock;
	struct supervisor_sub *life_subs;
	uint64_t life_head;           /* last lifecycle id; guarded by life_lock */
	int draining;                 /* atomic: set_draining / is_draining */
	int stopping;                 /* atomic: the server stops; no mail is taken */
	int recovering;               /* atomic: start-up recovery or shutdown's suspension;
				       * the flusher stays out, one sync at its end */
	/* spawn.c: the live count for --max-actors, recounted at most every
	 * LIVE_RECOUNT_MS (a walk of every actor, a pool job: live_walking) plus the
	 * actors registered since its snapshot (live_registered: `registered` then). */
	pthread_mutex_t live_lock;
	int64_t live_counted_ms, live_walk_ms;
	uint32_t live_counted;
	uint64_t live_registered;
	int live_walking;
	/* flusher.c */
	pthread_t flusher;
	pthread_mutex_t flush_lock;
	pthread_cond_t flush_cond;
	struct actor **dirty;         /* flush_lock: actors with deferred events (refs) */
	size_t ndirty, capdirty;
	int flush_stop, flusher_running;
	/* Spawns answered whose run row the flusher has still to index (atomic:
	 * raised without a lock, lowered under flush_lock, which broadcasts
	 * settle_cond at 0): readers of the index wait for them (flusher_index_settle). */
	int index_owed;
	uint64_t batches_taken, batches_done;   /* flush_lock: the flusher's rounds */
	pthread_cond_t settle_cond;
	unsigned flush_window_us;     /* the flusher gathers marks this long, */
	unsigned flush_busy_us;       /* or this long when its last round just ended */
	unsigned tick_stall_ms;       /* tests: each timer's first tick waits this long */
	/* flusher.c, the committer: acknowledgements waiting for a sync (flush_lock) */
	pthread_t committer;
	pthread_cond_t commit_cond;
	struct commit_wait *commits, *commits_tail;
	int commit_stop, committer_running;
	struct runtime_limits {
		uint64_t fuel;            /* per call */
		uint64_t memory_bytes;    /* per instance */
		uint32_t call_timeout_ms;
		uint32_t mailbox;
		size_t max_message;
		size_t mailbox_bytes;     /* queued bytes per actor */
		uint32_t max_actors;      /* live actors, server-wide */
		uint32_t max_children;    /* live children per parent */
		uint64_t call_events;     /* host-call events per export call */
		uint64_t call_bytes;      /* host-call event bytes per export call */
	} limits;
};

/* The draining flag is read by any thread without a lock. */
static inline int is_draining(const struct supervisor *s)
{
	return __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
}

static inline void set_draining(struct supervisor *s, int v)
{
	__atomic_store_n(&s->draining, v, __ATOMIC_RELEASE);
}

/* The damaged flag is read by any thread without a lock. */
static inline int actor_damaged(const struct actor *a)
{
	return __atomic_load_n(&a->damaged, __ATOMIC_RELAXED);
}

static inline void actor_set_damaged(struct actor *a)
{
	__atomic_store_n(&a->damaged, 1, __ATOMIC_RELAXED);
}

static inline int is_stopping(const struct supervisor *s)
{
	return __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE);
}

/* flusher.c */
enum err_code flusher_start(struct supervisor *s, struct err *err);
/* How long the flusher gathers marks: 1 ms, 5 ms while marks keep coming
 * (THEATER_TEST_FLUSH_WINDOW_MS sets both, in tests). */
void flusher_windows(unsigned *quiet_us, unsigned *busy_us);
/* Stops the thread after a last pass; later marks sync at once. */
void flusher_stop(struct supervisor *s);
/* Makes the written events of n actors durable and reports them: with one
 * syncfs when there are several, else one fdatasync each. */
void flusher_sync_batch(struct supervisor *s, struct actor **v, size_t n);
/* Group commit for writers that wait: calls fn(s, arg, rc, err) once what a's
 * chain holds up to byte `upto` is durable (and acknowledged by the stream in
 * cluster mode). The committer thread syncs once for everything queued while
 * its previous sync ran, holding no actor lock, then calls every fn of the
 * batch in queue order. When the committer is not running, syncs and calls fn
 * before returning. Takes no reference: fn's arg keeps a alive. */
typedef void (*flusher_commit_fn)(struct supervisor *s, void *arg, enum err_code rc,
				  const struct err *err);
void flusher_commit(struct supervisor *s, struct actor *a, uint64_t upto,
		    flusher_commit_fn fn, void *arg);
/* Answers what is queued, then lets later commits sync at once (before the
 * pool stops: the continuations schedule actors). */
void flusher_commit_stop(struct supervisor *s);
struct actor_list {
	struct actor **v;
	size_t n, cap;
};

/* registry (actor.c) */
enum err_code reg_init(struct supervisor *s);
void reg_release(struct supervisor *s);
enum err_code reg_add(struct supervisor *s, struct actor *a);   /* takes the caller's reference */
void reg_remove(struct supervisor *s, struct actor *a);
struct actor *reg_find(struct supervisor *s, const char *id);    /* new reference or NULL */
uint64_t reg_registered(struct supervisor *s);                   /* reg_add calls so far */
/* reg_find, or NULL after answering done(user, ERR_NOT_FOUND, ...). */
struct actor *reg_find_or_answer(struct supervisor *s, const char *id, supervisor_done_fn done,
				 void *user);
/* fn for each registered actor whose parent is parent_id, a reference held
 * meanwhile (the registry lock not): costs the children, not every actor. */
void reg_foreach_child(struct supervisor *s, const char *parent_id,
		       void (*fn)(struct supervisor *s, struct actor *a, void *u), void *u);
/* Calls fn for every actor with a reference held; fn may block. Returns the
 * registry's `registered` at the instant the actors were taken. */
uint64_t reg_foreach(struct supervisor *s, void (*fn)(struct supervisor *s, struct actor *a, void *u),
		 void *u);
struct actor *actor_new(const struct db_run *run);              /* one reference */
void actor_ref(struct supervisor *s, struct actor *a);
void actor_unref(struct supervisor *s, struct actor *a);
enum err_code run_copy(const struct db_run *src, struct db_run *dst);
/* Installs state (taken) as a's state, with its hash (takes a->lock). */
void actor_state_take(struct actor *a, uint8_t *state, size_t len);
int64_t now_ms(void);

#endif
