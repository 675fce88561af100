/* supervisor.c - start-up recovery, stop/kill/delete, queries, subscriptions;
 * see supervisor.h. The spawn pipeline is in spawn.c, event recording in
 * record.c, the registry in actor.c. */
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/fetch.h"
#include "src/util/crypto.h"
#include "src/util/log.h"
#include "src/wasm/wasm.h"
#include "supervisor/channel.h"
#include "supervisor/durable.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"
#include "supervisor/spares.h"

/* ---- start-up ---- */

struct load_ctx {
	struct supervisor *s;
	char (*live)[37];             /* ended or failed now, before the API serves */
	size_t nlive, caplive;
	char (*eager)[37];            /* recovered in the background after it does */
	size_t neager, capeager;
	unsigned loaded, damaged, lazy, unopened;
	int dirfd;                    /* the chains folder, for one stat per trusted run */
};

static int list_push(char (**v)[37], size_t *n, size_t *cap, const char *id)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		char (*nv)[37] = realloc(*v, ncap * sizeof(**v));
		if (!nv)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	memcpy((*v)[(*n)++], id, 37);
	return 0;
}

/* A run whose chain the index vouches for, registered without opening its file
 * (chain_open_trusted): an ended run, or a running one whose head is marked
 * idle (it comes back lazily). The index's head row is written only after the
 * event is durable, and the file only grows past it, so a file that still ends
 * where the head's record ends holds exactly what the index says; any other size
 * (kill -9 between an append and its index row, a torn write) takes the full
 * open below. 1 when done. */
static int load_trusted(struct load_ctx *c, const struct db_run *r)
{
	int running = strcmp(r->status, "running") == 0;
	if (c->s->cfg.verify_full || !r->head_seq || r->head_offset == DB_NO_OFFSET ||
	    r->head_end == DB_NO_OFFSET ||
	    (supervisor_status_live(r->status) &&
	     !(running && r->head_idle && !c->s->cfg.recover_none)))
		return 0;
	struct chain_checkpoint cp = {.seq = r->head_seq, .offset = r->head_offset};
	struct chain *ch = NULL;
	struct err e = {0};
	if (hex_decode(r->head_hash, cp.hash, CHAIN_HASH_LEN) != ERR_OK ||
	    chain_open_trusted(c->s->chains_dir, c->dirfd, r->id, &cp, r->head_end, &ch,
			       &e) != ERR_OK)
		return 0;
	struct actor *a = actor_new(r);
	if (!a) {
		chain_close(ch);
		return 0;
	}
	a->sup = c->s;
	a->chain = ch;
	a->acked = a->durable_seq = r->head_seq;
	reg_add(c->s, a);
	c->loaded++;
	c->unopened++;
	if (running) {
		__atomic_store_n(&a->lazy, 1, __ATOMIC_RELEASE);
		c->lazy++;
	}
	return 1;
}

static int load_run(void *user, const struct db_run *r)
{
	struct load_ctx *c = user;
	if (strcmp(r->status, "deleted") == 0 || load_trusted(c, r))
		return 0;
	struct actor *a = actor_new(r);
	if (!a)
		return 0;
	a->sup = c->s;
	struct chain_open_report rep = {0};
	struct err e = {0};
	a->acked = r->head_seq;
	/* Incremental verification: the index's head is a checkpoint this server
	 * wrote after hashing and syncing the event; only what follows it is
	 * scanned (GET /actors/{id}/chain/verify checks everything). */
	struct chain_checkpoint cp = {.seq = r->head_seq, .offset = r->head_offset};
	int use_cp = !c->s->cfg.verify_full && r->head_seq && r->head_offset != DB_NO_OFFSET &&
		     hex_decode(r->head_hash, cp.hash, CHAIN_HASH_LEN) == ERR_OK;
	if (chain_open_from(c->s->chains_dir, r->id, r->head_seq, use_cp ? &cp : NULL, &a->chain,
			    &rep, &e) != ERR_OK) {
		log_error("supervisor", "chain of actor '%s' is damaged: %s (%llu events were "
			  "acknowledged; nothing is repaired)", r->id, e.msg,
			  (unsigned long long)r->head_seq);
		actor_set_damaged(a);
		c->damaged++;
	}
	if (rep.truncated_tail)
		log_warn("supervisor", "chain of actor '%s': truncated a torn last record "
			 "(%llu bytes)", r->id, (unsigned long long)rep.truncated_bytes);
	if (rep.damaged) {
		log_error("supervisor", "chain of actor '%s' is damaged at seq %llu: %s "
			  "(not repaired; appends refused)", r->id,
			  (unsigned long long)rep.first_bad_seq, rep.detail);
		actor_set_damaged(a);
		c->damaged++;
	}
	a->durable_seq = a->chain ? chain_length(a->chain) : 0;
	if (a->chain && !actor_damaged(a) && a->durable_seq > r->head_seq) {
		/* Events synced but not yet indexed when the server died. */
		const char *st = NULL;
		if (db_catch_up(c->s->cfg.db, r->id, a->chain, r->head_seq, &st, &e) != ERR_OK)
			log_error("supervisor", "cannot index the tail of '%s': %s", r->id, e.msg);
		struct db_run fresh;
		if (db_run_get(c->s->cfg.db, r->id, &fresh, &e) == ERR_OK) {
			free(a->run.status);
			free(a->run.reason);
			a->run.status = fresh.status;
			a->run.reason = fresh.reason;
			a->run.head_seq = fresh.head_seq;
			a->run.head_idle = fresh.head_idle;
			memcpy(a->run.head_hash, fresh.head_hash, sizeof(a->run.head_hash));
			fresh.status = fresh.reason = NULL;
			db_run_release(&fresh);
		}
	}
	if (strcmp(a->run.status, "deleted") == 0) {
		actor_unref(c->s, a);
		return 0;
	}
	reg_add(c->s, a);
	c->loaded++;
	int running = !c->s->cfg.recover_none && strcmp(a->run.status, "running") == 0;
	if (running && durable_idle_head(a)) {
		/* Idle when it was left: it comes back on its first need (durable_wake). */
		__atomic_store_n(&a->lazy, 1, __ATOMIC_RELEASE);
		c->lazy++;
	} else if (running && !actor_damaged(a)) {
		/* Open mail, timers or a crash mid-work: recovered in the background once
		 * the server listens (durable_background); its first need comes first. */
		if (list_push(&c->eager, &c->neager, &c->capeager, r->id) == 0) {
			__atomic_store_n(&a->recover_due, 1, __ATOMIC_RELEASE);
			__atomic_store_n(&a->lazy, 1, __ATOMIC_RELEASE);
		}
	} else if (supervisor_status_live(a->run.status)) {
		list_push(&c->live, &c->nlive, &c->caplive, r->id);
		/* out of memory: it stays as it is, live, without an instance */
	}
	return 0;
}

/* A run that was live when the server stopped or died: back to work, or failed. */
static int recover_one(struct supervisor *s, struct actor *a)
{
	struct err why = {0};
	const char *reason = "server_restart";
	if (s->cfg.recover_none) {
		err_set(&why, ERR_UNAVAILABLE, "the server stopped while the actor was live "
			"(--recover none)");
	} else if (strcmp(a->run.status, "running") != 0) {
		err_set(&why, ERR_UNAVAILABLE, "the server stopped while the actor was %s",
			a->run.status);
	} else if (durable_recover(s, a, &why) == ERR_OK) {
		runtime_release(s, a);   /* instantiating held the actor's turn */
		return 1;
	} else {
		runtime_release(s, a);
		reason = "recovery_failed";
		log_error("supervisor", "cannot recover actor '%s': %s", a->run.id, why.msg);
	}
	spawn_fail(s, a, reason, &why);
	return 0;
}

static enum err_code load_runs(struct supervisor *s, struct err *err)
{
	struct load_ctx c = {.s = s};
	c.dirfd = open(s->chains_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *cursor = NULL;
	enum err_code rc = ERR_OK;
	do {
		struct db_run_filter f = {.limit = 500, .cursor = cursor};
		char *next = NULL;
		rc = db_run_list(s->cfg.db, &f, load_run, &c, &next, err);
		free(cursor);
		cursor = next;
	} while (!rc && cursor);
	free(cursor);
	/* Every run is known before any comes back, so parents find their children
	 * and messages find their receivers. */
	unsigned recovered = 0;
	for (size_t i = 0; !rc && i < c.nlive; i++) {
		struct actor *a = reg_find(s, c.live[i]);
		if (a)
			recovered += (unsigned)recover_one(s, a);
		actor_unref(s, a);
	}
	free(c.live);
	if (c.dirfd >= 0)
		close(c.dirfd);
	if (!rc)
		log_info("supervisor", "loaded %u runs (%u with damaged chains, %u chain files "
			 "left unopened); %u idle ones left to recover on first use, %zu to "
			 "recover in the background, %u of %zu others recovered", c.loaded,
			 c.damaged, c.unopened, c.lazy, c.neager, recovered, c.nlive);
	if (!rc) {
		s->eager = c.eager;
		__atomic_store_n(&s->eager_left, (uint64_t)c.neager, __ATOMIC_RELEASE);
		s->neager = c.neager;
	} else {
		free(c.eager);
	}
	return rc;
}

static void kick(struct supervisor *s, struct actor *a, void *u)
{
	(void)u;
	runtime_kick(s, a);
}

/* Every event written without a sync made durable with one syncfs (recovery,
 * shutdown: thousands of chains at once); see flusher_sync_batch. */
static void collect(struct supervisor *s, struct actor *a, void *u)
{
	(void)s;
	struct actor_list *l = u;
	if (l->n < l->cap)
		l->v[l->n++] = a;
}

static void sync_all(struct supervisor *s)
{
	pthread_mutex_lock(&s->reg_lock);
	size_t cap = s->nactors;
	pthread_mutex_unlock(&s->reg_lock);
	struct actor_list l = {.v = calloc(cap ? cap : 1, sizeof(struct actor *)), .cap = cap};
	if (!l.v)
		return;
	reg_foreach(s, collect, &l);
	for (size_t i = 0; i < l.n; i++)
		actor_ref(s, l.v[i]);
	flusher_sync_batch(s, l.v, l.n);
	for (size_t i = 0; i < l.n; i++)
		actor_unref(s, l.v[i]);
	free(l.v);
}

enum err_code supervisor_new(const struct supervisor_config *cfg, struct supervisor **out,
			     struct err *err)
{
	struct supervisor *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(err, ERR_NOMEM, "cannot allocate supervisor");
	s->cfg = *cfg;
	if (!s->cfg.max_manifest_bytes)
		s->cfg.max_manifest_bytes = 1 << 20;
	s->limits.fuel = cfg->fuel ? cfg->fuel : 100000000ull;
	s->limits.memory_bytes = cfg->memory_bytes ? cfg->memory_bytes : 64u << 20;
	s->limits.call_timeout_ms = cfg->call_timeout_ms ? cfg->call_timeout_ms : 5000;
	s->limits.mailbox = cfg->mailbox ? cfg->mailbox : 1024;
	s->limits.max_message = cfg->max_message ? cfg->max_message : 1u << 20;
	s->limits.mailbox_bytes = cfg->mailbox_bytes ? cfg->mailbox_bytes : (size_t)64 << 20;
	s->limits.max_actors = cfg->max_actors ? cfg->max_actors : 10000;
	s->limits.max_children = cfg->max_children ? cfg->max_children : 1000;
	s->limits.call_events = cfg->call_events ? cfg->call_events : 100000;
	s->limits.call_bytes = cfg->call_bytes ? cfg->call_bytes : (uint64_t)64 << 20;
	set_draining(s, 1);
	pthread_mutex_init(&s->life_lock, NULL);
	pthread_mutex_init(&s->live_lock, NULL);
	pthread_mutex_init(&s->flush_lock, NULL);
	pthread_cond_init(&s->flush_cond, NULL);
	pthread_cond_init(&s->settle_cond, NULL);
	flusher_windows(&s->flush_window_us, &s->flush_busy_us);
	s->tick_stall_ms = timers_test_stall();
	s->chains_dir = strdup(cfg->chains_dir);
	enum err_code rc = s->chains_dir ? reg_init(s) : ERR_NOMEM;
	if (rc) {
		err_set(err, rc, "cannot allocate supervisor");
		goto fail;
	}
	if ((rc = pool_new(cfg->workers ? cfg->workers : 2, &s->pool, err)) ||
	    (rc = engine_new(256, &s->engine, err)) || (rc = fetcher_new(&s->fetcher, err)) ||
	    (rc = flusher_start(s, err)))
		goto fail;
	unsigned runs = 0;
	uint64_t events = 0;
	int64_t t0 = now_ms();
	/* the sweep: no spawn runs yet, so an empty chain file with no run is no one's */
	if ((rc = db_rebuild_from_chains_sweep(cfg->db, s->chains_dir, &runs, &events, err)))
		goto fail;
	int64_t t1 = now_ms();
	s->life_head = db_lifecycle_head(cfg->db);
	__atomic_store_n(&s->recovering, 1, __ATOMIC_RELEASE);
	chain_fd_batch(1);      /* chain files closed meanwhile are synced by sync_all */
	struct err be = {0};
	int batch = db_batch_begin(cfg->db, &be) == ERR_OK;   /* one commit for them all */
	rc = load_runs(s, err);
	__atomic_store_n(&s->recovering, 0, __ATOMIC_RELEASE);
	if (rc) {
		if (batch)
			db_batch_end(cfg->db, &be);
		chain_fd_batch(0);
		goto fail;
	}
	int64_t t2 = now_ms();
	sync_all(s);            /* recovered events are durable before the API serves */
	chain_fd_batch(0);
	if (batch && db_batch_end(cfg->db, &be) != ERR_OK)
		log_error("supervisor", "cannot commit the index after recovery: %s", be.msg);
	log_info("supervisor", "start-up: index checked against the chains in %lld ms (%u "
		 "runs it lacked indexed from their chains), runs loaded and recovered in "
		 "%lld ms, synced in %lld ms", (long long)(t1 - t0), runs, (long long)(t2 - t1),
		 (long long)(now_ms() - t2));
	set_draining(s, 0);
	reg_foreach(s, kick, NULL);
	durable_background_start(s);
	durable_sweep_start(s);
	s->spares = spares_start(s->chains_dir, cfg->db, cfg->spare_chains);
	*out = s;
	return ERR_OK;
fail:
	supervisor_free(s);
	return rc;
}

/* ---- shutdown: actors are suspended, not stopped ---- */

static void count_busy(struct supervisor *s, struct actor *a, void *u)
{
	(void)s;
	*(unsigned *)u += (unsigned)runtime_busy(a);
}

static void interrupt_one(struct supervisor *s, struct actor *a, void *u)
{
	(void)s;
	(void)u;
	runtime_interrupt_for_shutdown(a);
}

/* An idle actor whose chain is durable and indexed up to its head is marked idle
 * in the index instead of getting a `suspended` event: at 100,000 actors those
 * appends and their syncfs were most of a stop (docs/decisions.md). The mark
 * commits with the shutdown's index transaction, after sync_all, so the index
 * never vouches for more than is on disk. Not in cluster mode: the node taking
 * the actors over reads the stream, not this index. 1 when marked. */
static int mark_idle(struct supervisor *s, struct actor *a)
{
	if (__atomic_load_n(&s->replica, __ATOMIC_ACQUIRE) || !a->chain || actor_damaged(a))
		return 0;
	int marked = 0;
	struct err e = {0};
	if (db_run_mark_idle(s->cfg.db, a->run.id, chain_length(a->chain), &marked, &e))
		log_warn_limited("supervisor", "cannot mark '%s' idle in the index: %s", a->run.id,
				 e.msg);
	return marked;
}

/* u: the count of actors marked idle (reg_foreach runs it on one thread). */
static void suspend_live(struct supervisor *s, struct actor *a, void *u)
{
	pthread_mutex_lock(&a->wake_lock);    /* a lazy actor being woken finishes first */
	pthread_mutex_lock(&a->lock);
	int go = a->rt && strcmp(a->run.status, "running") == 0 && !a->terminal_pending;
	int queued = a->mail_n != 0;
	pthread_mutex_unlock(&a->lock);
	if (!go) {
		runtime_stop(s, a);   /* nothing runs (a lazy actor: its chain is as it was) */
		pthread_mutex_unlock(&a->wake_lock);
		return;
	}
	pthread_mutex_lock(&a->rec_lock);
	int open = a->nopen != 0 || a->open_untracked != 0;
	pthread_mutex_unlock(&a->rec_lock);
	/* No open mail and no timer: the next start leaves it lazy. */
	int idle = !open && !queued && timers_count(a) == 0;
	if (idle && mark_idle(s, a)) {
		(*(unsigned *)u)++;
	} else {
		json_t *d = lifecycle_data("server_shutdown", NULL);
		if (idle)
			json_object_set_new(d, "idle", json_true());
		struct err e = {0};
		if (record_event_ex(s, a, "suspended", d, NULL, NULL, 1, &e))
			log_error_limited("supervisor", "cannot record suspension of '%s': %s",
					  a->run.id, e.msg);
	}
	runtime_suspend(s, a);
	pthread_mutex_unlock(&a->wake_lock);
}

void supervisor_shutdown(struct supervisor *s)
{
	if (!s || !s->pool || is_stopping(s))
		return;             /* shut down already (only this sets stopping) */
	set_draining(s, 1);
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
	/* Calls in progress may finish within the grace period; then they are cut
	 * short, which is not the actors' failure (their mail runs again). */
	uint32_t grace = s->cfg.shutdown_grace_ms ? s->cfg.shutdown_grace_ms : 10000;
	int64_t until = now_ms() + grace;
	unsigned busy = 1;
	while (s->registry_up && busy && now_ms() < until) {
		busy = 0;
		reg_foreach(s, count_busy, &busy);
		if (busy)
			usleep(5000);
	}
	if (s->registry_up && busy) {
		log_warn("supervisor", "%u calls still running after %u ms: interrupting them; "
			 "their messages run again on the next start", busy, grace);
		reg_foreach(s, interrupt_one, NULL);
	}
	flusher_commit_stop(s);
	/* Stopped, not freed: what still asks it for work (the cluster's watches
	 * and heartbeats, the HTTP threads, until they stop in turn) is refused
	 * (ERR_UNAVAILABLE), never handed a freed or NULL pool. */
	pool_stop(s->pool);
	/* Spawns answered before their index write (record.c, "index later") are
	 * indexed first, so an idle one is marked idle below like any other. */
	flusher_index_settle(s);
	int64_t t0 = now_ms(), t1 = t0;
	struct err be = {0};
	int batch = s->registry_up && db_batch_begin(s->cfg.db, &be) == ERR_OK;
	chain_fd_batch(1);   /* chain files closed meanwhile are synced by sync_all */
	/* The flusher stays out, as during recovery: one syncfs at the end makes every
	 * `suspended` event durable, not one per batch of 8 dirty chains. */
	__atomic_store_n(&s->recovering, 1, __ATOMIC_RELEASE);
	if (s->cfg.exits_after_shutdown)
		wasm_memory_keep_at_exit();   /* a third of suspending was munmap (perf) */
	unsigned marked = 0;
	if (s->registry_up)
		reg_foreach(s, suspend_live, &marked);
	/* transfers still running end now; their parked calls were let go above */
	fetcher_free(s->fetcher);
	s->fetcher = NULL;
	if (s->registry_up) {
		t1 = now_ms();
		sync_all(s);
	}
	__atomic_store_n(&s->recovering, 0, __ATOMIC_RELEASE);
	chain_fd_batch(0);
	if (batch && db_batch_end(s->cfg.db, &be) != ERR_OK)
		log_error("supervisor", "cannot commit the index at shutdown: %s", be.msg);
	if (s->registry_up)
		log_info("supervisor", "shutdown: actors suspended in %lld ms (%u marked idle in "
			 "the index, the others with a `suspended` event), synced in %lld ms",
			 (long long)(t1 - t0), marked, (long long)(now_ms() - t1));
	flusher_stop(s);
}

void supervisor_free(struct supervisor *s)
{
	if (!s)
		return;
	supervisor_shutdown(s);
	if (s->registry_up)
		reg_release(s);
	spares_stop(s->spares);
	pool_free(s->pool);
	engine_free(s->engine);
	pthread_mutex_destroy(&s->life_lock);
	pthread_mutex_destroy(&s->live_lock);
	pthread_mutex_destroy(&s->flush_lock);
	pthread_cond_destroy(&s->flush_cond);
	pthread_cond_destroy(&s->settle_cond);
	free(s->dirty);
	free(s->eager);
	free(s->chains_dir);
	free(s);
}

void supervisor_spare_chains(struct supervisor *s, uint64_t *ready, uint64_t *created)
{
	spares_counts(s->spares, ready, created);
}

struct pool *supervisor_pool(struct supervisor *s)
{
	return s->pool;
}

struct db *supervisor_db(struct supervisor *s)
{
	flusher_index_settle(s);
	return s->cfg.db;
}

struct db *supervisor_db_raw(struct supervisor *s)
{
	return s->cfg.db;
}

struct headroom *supervisor_headroom(struct supervisor *s)
{
	return s ? s->cfg.headroom : NULL;
}

struct store *supervisor_store(struct supervisor *s)
{
	return s->cfg.store;
}

static void child_of(struct supervisor *s, struct actor *a, void *u)
{
	(void)s;
	json_array_append_new(u, json_string(a->run.id));
}

json_t *supervisor_children(struct supervisor *s, const char *parent_id)
{
	json_t *ids = json_array();
	reg_foreach_child(s, parent_id, child_of, ids);
	return ids;
}

int supervisor_draining(const struct supervisor *s)
{
	return is_draining(s);
}

/* ---- stop, kill, delete ---- */

void stop_record(struct supervisor *s, struct actor *a, int kill)
{
	struct err e = {0};
	const char *type = kill ? "killed" : "stopped";
	const char *reason = kill ? "kill_requested" : "stop_requested";
	if (record_event(s, a, type, lifecycle_data(reason, NULL), type, reason, &e))
		log_error_limited("supervisor", "cannot record %s of '%s': %s", type, a->run.id,
				  e.msg);
}

struct stop_job {
	struct supervisor *s;
	struct actor *a;
	int kill;
};

static void job_stop(void *arg)
{
	struct stop_job *j = arg;
	stop_record(j->s, j->a, j->kill);
	actor_unref(j->s, j->a);
	free(j);
}

static struct waiter *end_waiter(struct supervisor *s, struct actor *a, supervisor_done_fn done,
				 void *user)
{
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->kind = WAIT_END;
	w->done = done;
	w->user = user;
	w->refs = 1;
	w->actor = a;
	w->sup = s;
	return w;
}

void supervisor_stop(struct supervisor *s, const char *id, int kill, supervisor_done_fn done,
		     void *user)
{
	struct err e = {0};
	struct actor *a = reg_find_or_answer(s, id, done, user);
	if (!a)
		return;
	if (__atomic_load_n(&a->recover_due, __ATOMIC_ACQUIRE)) {
		struct err we = {0};
		durable_wake(s, a, &we);   /* its open mail first, as if recovered at start */
	}
	struct waiter *w = end_waiter(s, a, done, user);
	struct stop_job *job = calloc(1, sizeof(*job));
	enum err_code rc = ERR_OK;
	int cancelled = 0;
	pthread_mutex_lock(&a->lock);
	if (!w || !job) {
		rc = err_set(&e, ERR_NOMEM, "cannot stop actor '%s'", id);
	} else if (!supervisor_status_live(a->run.status) && a->restart_pending) {
		a->restart_pending = 0;   /* it failed and was waiting to restart: not any more */
		a->user_stopped = 1;
		cancelled = 1;
	} else if (!supervisor_status_live(a->run.status)) {
		rc = kill ? err_set(&e, ERR_CONFLICT, "actor '%s' is already %s", id, a->run.status)
			  : err_set(&e, ERR_NOT_MODIFIED, "actor '%s' is already %s", id,
				    a->run.status);
	} else {
		a->user_stopped = 1;
		a->restart_pending = 0;   /* a pending automatic restart is cancelled */
		w->next = a->waiters;     /* w now owns the caller's actor reference */
		a->waiters = w;
		if (strcmp(a->run.status, "starting") == 0) {
			if (a->stop_requested < (kill ? 2 : 1))
				a->stop_requested = kill ? 2 : 1;
		} else if (runtime_request_stop(s, a, kill)) {
			/* the actor's own job records the end between calls */
		} else if (!a->terminal_pending) {
			a->terminal_pending = 1;
			*job = (struct stop_job){.s = s, .a = a, .kill = kill};
		}
	}
	int submit = job && job->a;
	pthread_mutex_unlock(&a->lock);
	if (cancelled) {
		free(w);
		free(job);
		actor_unref(s, a);
		done(user, ERR_OK, NULL);
		return;
	}
	if (rc) {
		free(w);
		free(job);
		actor_unref(s, a);
		done(user, rc, &e);
		return;
	}
	if (!submit) {
		free(job);
		return;
	}
	actor_ref(s, a);   /* the job's own reference */
	if (pool_submit(s->pool, job_stop, job) != ERR_OK)
		job_stop(job);
}

struct delete_ctx {
	struct supervisor *s;
	char id[37];
	supervisor_done_fn done;
	void *user;
	int tries;
};

static void delete_now(struct supervisor *s, const char *id, supervisor_done_fn done, void *user)
{
	struct err e = {0};
	struct actor *a = reg_find_or_answer(s, id, done, user);
	if (!a)
		return;
	/* The tombstone is an event of the chain, so a rebuilt index keeps it. A
	 * damaged chain refuses it; the index still records the deletion. The
	 * recording checks that the run is not live again (a restart between the
	 * caller's check and here: 409) and cancels a pending automatic restart. */
	enum err_code rc = record_event(s, a, "deleted", lifecycle_data("delete_requested", NULL),
					"deleted", NULL, &e);
	if (rc == ERR_CHAIN_DAMAGED)
		rc = ERR_OK;
	if (!rc)
		reg_remove(s, a);
	actor_unref(s, a);
	done(user, rc, rc ? &e : NULL);
}

static void delete_after_kill(void *user, enum err_code rc, const struct err *err);

/* A forced delete: live again between the kill and the tombstone (a restart asked
 * meanwhile) kills it again, twice at most. */
static void delete_forced(void *user, enum err_code rc, const struct err *err)
{
	struct delete_ctx *c = user;
	if (rc == ERR_CONFLICT && ++c->tries < 3) {
		supervisor_stop(c->s, c->id, 1, delete_after_kill, c);
		return;
	}
	c->done(c->user, rc, err);
	free(c);
}

static void delete_after_kill(void *user, enum err_code rc, const struct err *err)
{
	struct delete_ctx *c = user;
	if (rc && rc != ERR_CONFLICT) {
		c->done(c->user, rc, err);
		free(c);
		return;
	}
	delete_now(c->s, c->id, delete_forced, c);
}

enum err_code supervisor_delete_hold(struct supervisor *s, const char *id, int hold,
				     struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&a->lock);
	if (!hold) {
		a->delete_held = 0;
	} else if (a->deleted) {
		rc = err_set(err, ERR_NOT_FOUND, "actor '%s' was deleted", id);
	} else if (supervisor_status_live(a->run.status)) {
		rc = err_set(err, ERR_CONFLICT, "actor '%s' is %s; stop it first or use "
			     "?force=true", id, a->run.status);
	} else {
		a->delete_held = 1;
		a->restart_pending = 0;
	}
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	return rc;
}

void supervisor_delete(struct supervisor *s, const char *id, int force, supervisor_done_fn done,
		       void *user)
{
	struct err e = {0};
	struct actor *a = reg_find_or_answer(s, id, done, user);
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	int live = supervisor_status_live(a->run.status);
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	if (!live) {
		delete_now(s, id, done, user);
		return;
	}
	if (!force) {
		err_set(&e, ERR_CONFLICT, "actor '%s' is live; stop it first or use ?force=true",
			id);
		done(user, e.code, &e);
		return;
	}
	struct delete_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		err_set(&e, ERR_NOMEM, "cannot delete actor '%s'", id);
		done(user, e.code, &e);
		return;
	}
	*c = (struct delete_ctx){.s = s, .done = done, .user = user};
	memcpy(c->id, id, 37);
	supervisor_stop(s, id, 1, delete_after_kill, c);
}

/* ---- queries ---- */

enum err_code supervisor_get(struct supervisor *s, const char *id, struct db_run *out,
			     struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	pthread_mutex_lock(&a->lock);
	enum err_code rc = run_copy(&a->run, out);
	pthread_mutex_unlock(&a->lock);
	out->damaged = actor_damaged(a);
	actor_unref(s, a);
	return rc ? err_set(err, rc, "cannot copy actor '%s'", id) : ERR_OK;
}

/* Damage found at run time (a read or a verify) stops appends; logged once. */
static void mark_damaged(struct actor *a, uint64_t seq, const char *why)
{
	pthread_mutex_lock(&a->rec_lock);
	if (!actor_damaged(a))
		log_error("supervisor", "chain of actor '%s' is damaged at seq %llu: %s; appends "
			  "stopped", a->run.id, (unsigned long long)seq, why);
	actor_set_damaged(a);
	pthread_mutex_unlock(&a->rec_lock);
}

/* A chain error as the API shows it: about the actor, not the chain's file, whose
 * path is the operator's business; the log keeps the original message. */
static enum err_code chain_err_for_client(const char *id, uint64_t seq, enum err_code rc,
					  const struct err *why, struct err *err)
{
	if (rc == ERR_NOT_FOUND)
		return err_set(err, rc, "actor '%s' has no event %llu", id,
			       (unsigned long long)seq);
	log_error_limited("supervisor", "actor '%s', event %llu: %s", id,
			  (unsigned long long)seq, why->msg);
	if (rc == ERR_CORRUPT)      /* the event's bytes fail their checks */
		return err_set(err, ERR_CHAIN_DAMAGED, "event %llu of actor '%s' is damaged (GET "
			       "/actors/%s/chain/verify says where; the server log says more)",
			       (unsigned long long)seq, id, id);
	return err_set(err, rc, "cannot read event %llu of actor '%s' (%s; the server log "
		       "says more)", (unsigned long long)seq, id, err_code_name(rc));
}

enum err_code supervisor_read_event(struct supervisor *s, const char *id, uint64_t seq,
				    struct chain_event *out, int64_t *timestamp_out,
				    struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	struct err why = {0};
	enum err_code rc = a->chain ? chain_read(a->chain, seq, out, &why)
				    : err_set(&why, ERR_CORRUPT, "its chain is not open");
	if (rc == ERR_CORRUPT && a->chain)
		mark_damaged(a, seq, why.msg);     /* as a verify that finds it */
	if (rc)
		rc = chain_err_for_client(id, seq, rc, &why, err);
	if (!rc && timestamp_out) {
		uint64_t off;
		struct err dbe;
		flusher_index_settle(s);
		if (db_event_get(s->cfg.db, id, seq, timestamp_out, &off, &dbe))
			*timestamp_out = 0;
	}
	actor_unref(s, a);
	return rc;
}

enum err_code supervisor_chain_check(struct supervisor *s, const char *id, struct err *err)
{
	struct actor *a = reg_find(s, id);
	int damaged = a && actor_damaged(a);
	actor_unref(s, a);
	return damaged ? err_set(err, ERR_CHAIN_DAMAGED, "the chain of actor '%s' is damaged "
				 "(GET /actors/%s/chain/verify says where)", id, id)
		       : ERR_OK;
}

enum err_code supervisor_chain_head(struct supervisor *s, const char *id, uint64_t *length_out,
				    int *ended_out, struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	pthread_mutex_lock(&a->lock);
	*length_out = a->durable_seq;
	*ended_out = !supervisor_status_live(a->run.status);
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	return ERR_OK;
}

enum err_code supervisor_verify(struct supervisor *s, const char *id,
				struct chain_verify_result *out, struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	char *path = NULL;
	enum err_code rc;
	struct err cause = {0};
	if (a->chain) {
		rc = chain_verify(a->chain, out, &cause);
	} else if (asprintf(&path, "%s/%s.chain", s->chains_dir, id) < 0) {
		rc = err_set(&cause, ERR_NOMEM, "cannot verify '%s'", id);
	} else {
		rc = chain_verify_file(path, out, &cause);
		if (rc == ERR_NOT_FOUND) {
			memset(out, 0, sizeof(*out));
			out->first_bad_seq = 1;
			snprintf(out->detail, sizeof(out->detail), "the chain file is missing");
			rc = ERR_OK;
		}
	}
	/* A file that is consistent but shorter than what was acknowledged lost events. */
	if (!rc && out->length < a->acked && (out->valid || out->first_bad_seq > a->acked)) {
		char why[sizeof(out->detail) + 128];
		snprintf(why, sizeof(why), "%llu events were acknowledged but the file holds %llu%s%s",
			 (unsigned long long)a->acked, (unsigned long long)out->length,
			 out->detail[0] ? "; " : "", out->detail);
		memcpy(out->detail, why, sizeof(out->detail) - 1);
		out->detail[sizeof(out->detail) - 1] = 0;
		out->valid = 0;
		out->first_bad_seq = out->length + 1;
	}
	if (rc) {   /* the message names the file: for the log, not the client */
		log_error_limited("supervisor", "cannot verify the chain of actor '%s': %s", id,
				  cause.msg);
		err_set(err, rc, "cannot verify the chain of actor '%s' (%s; the server log "
			"says more)", id, err_code_name(rc));
	}
	if (!rc && !out->valid)
		mark_damaged(a, out->first_bad_seq, out->detail);
	free(path);
	actor_unref(s, a);
	return rc;
}

/* ---- subscriptions ---- */

enum err_code supervisor_subscribe(struct supervisor *s, const char *actor_id,
				   supervisor_event_fn fn, void *user, uint64_t *head_out,
				   struct supervisor_sub **out, struct err *err)
{
	struct actor *a = NULL;
	if (actor_id && !(a = reg_find(s, actor_id)))
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", actor_id);
	struct supervisor_sub *sub = calloc(1, sizeof(*sub));
	if (!sub) {
		actor_unref(s, a);
		return err_set(err, ERR_NOMEM, "cannot subscribe");
	}
	sub->fn = fn;
	sub->user = user;
	sub->actor = a;    /* keeps the reference */
	pthread_mutex_t *lock = a ? &a->lock : &s->life_lock;
	struct supervisor_sub **list = a ? &a->subs : &s->life_subs;
	pthread_mutex_lock(lock);
	*head_out = a ? a->durable_seq : s->life_head;
	sub->next = *list;
	if (*list)
		(*list)->prev = sub;
	*list = sub;
	pthread_mutex_unlock(lock);
	*out = sub;
	return ERR_OK;
}

void supervisor_unsubscribe(struct supervisor *s, struct supervisor_sub *sub)
{
	if (!sub)
		return;
	struct actor *a = sub->actor;
	pthread_mutex_t *lock = a ? &a->lock : &s->life_lock;
	struct supervisor_sub **list = a ? &a->subs : &s->life_subs;
	pthread_mutex_lock(lock);
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		*list = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	pthread_mutex_unlock(lock);
	actor_unref(s, a);
	free(sub);
}

struct life_ctx {
	void (*cb)(void *user, const struct supervisor_event *ev);
	void *user;
};

static int life_row(void *user, const struct db_lifecycle_row *r)
{
	struct life_ctx *c = user;
	struct supervisor_event ev = {
		.actor_id = r->actor_id, .seq = r->seq, .event_type = r->event_type,
		.data = (const uint8_t *)r->data, .data_len = strlen(r->data),
		.timestamp = r->timestamp, .global_id = r->id, .status = r->status,
		.terminal = r->status && !supervisor_status_live(r->status),
	};
	c->cb(c->user, &ev);
	return 0;
}

enum err_code supervisor_lifecycle_after(struct supervisor *s, uint64_t after, unsigned limit,
					 void (*cb)(void *user, const struct supervisor_event *ev),
					 void *user, struct err *err)
{
	struct life_ctx c = {.cb = cb, .user = user};
	flusher_index_settle(s);
	return db_lifecycle_after(s->cfg.db, after, limit, life_row, &c, err);
}

uint64_t supervisor_loaded_count(struct supervisor *s)
{
	return __atomic_load_n(&s->loaded, __ATOMIC_RELAXED);
}

uint64_t supervisor_released_count(struct supervisor *s)
{
	return __atomic_load_n(&s->released, __ATOMIC_RELAXED);
}

uint64_t supervisor_recovery_pending(struct supervisor *s)
{
	return durable_background_left(s);
}

/* ---- cluster hooks ---- */

void supervisor_set_replica(struct supervisor *s, const struct supervisor_replica *r)
{
	if (r && !__atomic_load_n(&s->replica, __ATOMIC_ACQUIRE))
		s->replica_copy = *r;
	__atomic_store_n(&s->replica, r ? &s->replica_copy : NULL, __ATOMIC_RELEASE);
}

enum err_code supervisor_replica_wait(struct supervisor *s, struct err *err)
{
	const struct supervisor_replica *r = __atomic_load_n(&s->replica, __ATOMIC_ACQUIRE);
	return r && r->wait ? r->wait(r->user, err) : ERR_OK;
}

enum err_code supervisor_replica_confirm(struct supervisor *s, const char *actor_id,
					 struct err *err)
{
	const struct supervisor_replica *r = __atomic_load_n(&s->replica, __ATOMIC_ACQUIRE);
	return r && r->confirm ? r->confirm(r->user, actor_id, err) : ERR_OK;
}

enum err_code supervisor_replica_ack(struct supervisor *s, const char *actor_id,
				     struct err *err)
{
	enum err_code rc = supervisor_replica_wait(s, err);
	return rc ? rc : supervisor_replica_confirm(s, actor_id, err);
}

void supervisor_set_remote(struct supervisor *s, const struct supervisor_remote *r)
{
	if (r && !__atomic_load_n(&s->remote, __ATOMIC_ACQUIRE))
		s->remote_copy = *r;
	__atomic_store_n(&s->remote, r ? &s->remote_copy : NULL, __ATOMIC_RELEASE);
}

enum err_code supervisor_notify_parent(struct supervisor *s, const char *parent, int error,
				       const char *info, size_t len)
{
	return runtime_notify_parent(s, parent, error, info, len);
}

enum err_code supervisor_remote_child(struct supervisor *s, const char *child,
				      const char *parent, int restart, supervisor_done_fn done,
				      void *done_user, struct err *err)
{
	const struct supervisor_remote *r = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
	if (!r || !r->child)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", child);
	return r->child(r->user, child, parent, restart, done, done_user, err);
}

const struct supervisor_remote *supervisor_remote_hooks(struct supervisor *s)
{
	return __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
}

const char *supervisor_chains_dir(struct supervisor *s)
{
	return s->chains_dir;
}

enum err_code supervisor_adopt(struct supervisor *s, const char *actor_id, struct err *err)
{
	struct actor *known = reg_find(s, actor_id);
	if (known) {
		pthread_mutex_lock(&known->lock);
		int live = supervisor_status_live(known->run.status);
		pthread_mutex_unlock(&known->lock);
		if (!live)               /* an ended copy (fenced here once): the chain */
			reg_remove(s, known);   /* from elsewhere replaces it, and its index */
		actor_unref(s, known);
		if (live)
			return err_set(err, ERR_CONFLICT, "actor '%s' is already known here",
				       actor_id);
		struct err de = {0};
		enum err_code drc = db_run_delete(s->cfg.db, actor_id, &de);
		if (drc && drc != ERR_NOT_FOUND)
			return err_set(err, drc, "%s", de.msg);
	}
	enum err_code rc = db_rebuild_chain(s->cfg.db, s->chains_dir, actor_id, NULL, err);
	struct db_run r = {0};
	if (!rc)
		rc = db_run_get(s->cfg.db, actor_id, &r, err);
	if (rc)
		return rc;
	struct load_ctx c = {.s = s, .dirfd = -1};
	load_run(&c, &r);
	db_run_release(&r);
	free(c.live);
	free(c.eager);
	struct actor *a = reg_find(s, actor_id);
	if (!a)
		return err_set(err, ERR_CORRUPT, "the chain of '%s' could not be loaded", actor_id);
	int live = c.nlive > 0 || c.neager > 0;
	struct err we = {0};
	int ok = c.nlive ? recover_one(s, a) : c.neager ? durable_wake(s, a, &we) == ERR_OK : 1;
	if (live && ok) {
		struct actor *list[1] = {a};
		flusher_sync_batch(s, list, 1);
		runtime_kick(s, a);
	}
	actor_unref(s, a);
	return ok ? ERR_OK : err_set(err, ERR_UNAVAILABLE, "actor '%s' could not be recovered "
				     "(its run ended failed: recovery_failed)", actor_id);
}
