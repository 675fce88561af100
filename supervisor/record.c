/* record.c - appending events to an actor's chain: durable append, index row,
 * snapshot update, fan-out to subscribers, lifecycle log, waiters.
 *
 * Everything for one actor goes through record_event with the actor's rec_lock
 * held, so the index, the subscribers and the lifecycle log see one actor's events
 * in seq order. Waiters are collected under the actor lock and fired after every
 * lock is released, because their callbacks may call back into the supervisor. */
#include "supervisor/record.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"
#include "src/util/log.h"

/* Ends a run (a tombstone after the end is not another end). */
static int is_terminal(const char *status)
{
	return status && !supervisor_status_live(status) && strcmp(status, "deleted") != 0;
}

/* Updates the snapshot after a durable append; called with a->lock held. */
static void apply(struct actor *a, const struct chain_event *ev, const char *type,
		  const char *status, const char *reason, int64_t ts)
{
	a->run.head_seq = ev->seq;
	a->run.head_idle = 0;         /* the index's mark was of the old head */
	hex_encode(ev->hash, CHAIN_HASH_LEN, a->run.head_hash);
	/* the type as appended: an append's chain_event does not carry it */
	size_t tl = type ? strlen(type) : 0;
	if (tl < sizeof(a->run.head_type))
		memcpy(a->run.head_type, type ? type : "", tl + 1);
	else
		a->run.head_type[0] = '\0';     /* too long to keep: the index has it */
	a->run.updated_at = ts;
	a->run.head_time = ts;
	if (!status)
		return;
	free(a->run.status);
	a->run.status = strdup(status);
	free(a->run.reason);
	a->run.reason = reason ? strdup(reason) : NULL;
	if (strcmp(status, "running") == 0)
		a->run.started_at = ts;
	if (is_terminal(status))
		a->run.stopped_at = ts;
	else if (supervisor_status_live(status))
		a->run.stopped_at = 0;    /* running again after a restart */
}

/* Moves the waiters that this status satisfies to *fire (called with a->lock). */
static void collect_waiters(struct actor *a, const char *status, struct waiter **fire)
{
	if (!status || strcmp(status, "starting") == 0)
		return;
	struct waiter **pp = &a->waiters;
	while (*pp) {
		struct waiter *w = *pp;
		if (w->kind == WAIT_RUNNING || is_terminal(status)) {
			*pp = w->next;
			w->next = *fire;
			*fire = w;
		} else {
			pp = &w->next;
		}
	}
}

/* An event appended without a sync, waiting for the next sync to be reported. */
struct pending_event {
	struct pending_event *next;
	struct supervisor_event ev;
	char type[128];
	uint8_t hash[32], parent[32];
	char *data;
	uint64_t offset;              /* for the index row, written when it is durable */
	uint64_t end;                 /* the record's end and idle mark, for the head */
	int idle;
	char status[16];              /* the status it moved the run to ("": none) */
};

static void fan_out(struct supervisor_sub *subs, const struct supervisor_event *ev)
{
	for (struct supervisor_sub *x = subs; x; x = x->next)
		x->fn(x->user, ev);
}

/* The lifecycle log is global: its ids are assigned under life_lock so that the
 * stream of all actors is delivered in id order. */
/* Lifecycle events are the status changes and `spawned`; calls and host calls
 * stay in their actor's chain. */
static int is_lifecycle(const struct supervisor_event *ev, const char *status)
{
	return status || strcmp(ev->event_type, "spawned") == 0;
}

static void lifecycle(struct supervisor *s, struct actor *a, struct supervisor_event *ev)
{
	struct err e = {0};
	uint64_t gid = 0;
	pthread_mutex_lock(&s->life_lock);
	if (db_lifecycle_append(s->cfg.db, a->run.id, ev->seq, ev->event_type, ev->status,
				ev->timestamp, (const char *)ev->data, &gid, &e) != ERR_OK) {
		pthread_mutex_unlock(&s->life_lock);
		log_error_limited("supervisor", "cannot record lifecycle event of '%s': %s",
				  a->run.id, e.msg);
		return;
	}
	s->life_head = gid;
	ev->global_id = gid;
	fan_out(s->life_subs, ev);
	pthread_mutex_unlock(&s->life_lock);
}

void waiter_fire_one(struct supervisor *s, struct waiter *w)
{
	struct actor *a = w->actor;
	struct db_run snap;
	pthread_mutex_lock(&a->lock);
	int already = w->fired;
	w->fired = 1;
	/* what the answer needs, read before our reference goes: the other holder
	 * (the list or the timer) may free w as soon as the lock is released */
	struct waiter fire = *w;
	int last = --w->refs == 0;
	enum err_code rc = already ? ERR_OK : run_copy(&a->run, &snap);
	struct err why = a->fail_err;
	pthread_mutex_unlock(&a->lock);
	if (!already) {
		if (fire.kind == WAIT_RUNNING)
			fire.spawn_done(fire.user, rc, why.code ? &why : NULL, rc ? NULL : &snap);
		else
			fire.done(fire.user, rc, NULL);
		if (rc == ERR_OK)
			db_run_release(&snap);
	}
	if (last) {
		actor_unref(s, a);
		free(w);
	}
}

void waiters_fire(struct supervisor *s, struct waiter *list)
{
	while (list) {
		struct waiter *w = list;
		list = w->next;
		waiter_fire_one(s, w);
	}
}

/* Queues an appended event to be indexed and reported later (status: the one it
 * moved the run to, or NULL). -1 when out of memory. */
static int defer(struct actor *a, const struct supervisor_event *ev, uint64_t offset,
		 uint64_t end, int idle, const char *status)
{
	struct pending_event *p = calloc(1, sizeof(*p));
	if (!p || !(p->data = malloc(ev->data_len + 1))) {
		free(p);
		return -1;  /* out of memory: subscribers will replay it from storage */
	}
	snprintf(p->status, sizeof(p->status), "%s", status ? status : "");
	p->ev = *ev;
	p->offset = offset;
	p->end = end;
	p->idle = idle;
	snprintf(p->type, sizeof(p->type), "%s", ev->event_type);
	memcpy(p->hash, ev->hash, 32);
	memcpy(p->parent, ev->parent_hash, 32);
	memcpy(p->data, ev->data, ev->data_len);
	p->data[ev->data_len] = 0;
	p->ev.event_type = p->type;
	p->ev.hash = p->hash;
	p->ev.parent_hash = p->parent;
	p->ev.data = (uint8_t *)p->data;
	p->ev.status = NULL;
	if (a->pending_tail)
		a->pending_tail->next = p;
	else
		a->pending = p;
	a->pending_tail = p;
	return 0;
}

static void lifecycle(struct supervisor *s, struct actor *a, struct supervisor_event *ev);

/* Inserts the run row of a spawn that deferred it (rec_lock held; inside the
 * caller's transaction). ERR_OK when the row is there (or was before); a failure
 * is logged, and not tried again. */
static enum err_code index_run(struct supervisor *s, struct actor *a)
{
	if (!a->unindexed)
		return ERR_OK;
	struct db_run snap;
	pthread_mutex_lock(&a->lock);
	enum err_code rc = run_copy(&a->run, &snap);
	pthread_mutex_unlock(&a->lock);
	int copied = rc == ERR_OK;
	struct err e = {0};
	if (copied)
		rc = db_run_insert(s->cfg.db, &snap, &e);
	if (rc)
		log_error_limited("supervisor", "cannot index the run '%s': %s", a->run.id,
				  copied ? e.msg : "out of memory");
	if (copied)
		db_run_release(&snap);
	a->unindexed = 0;
	return rc;
}

enum err_code record_index_run(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->rec_lock);
	enum err_code rc = index_run(s, a);
	pthread_mutex_unlock(&a->rec_lock);
	return rc;
}

enum err_code record_index_package(struct supervisor *s, struct actor *a, const char *ref,
				   const char *sha256, struct err *err)
{
	pthread_mutex_lock(&a->rec_lock);
	int later = a->unindexed;     /* the insert carries it */
	enum err_code rc = later ? ERR_OK : db_run_set_package(s->cfg.db, a->run.id, ref, sha256, err);
	pthread_mutex_unlock(&a->rec_lock);
	return rc;
}

/* Indexes the deferred events, now durable, together with `own` (the synced
 * event, may be NULL), the head and a status change (rec_lock held; a spawn's
 * run row too: the callers hold a batch then, so it is one commit). */
static void index_durable(struct supervisor *s, struct actor *a, const struct db_event_row *own,
			  uint64_t head_seq, const char *head_hash, const char *status,
			  const char *reason, int64_t ts)
{
	size_t n = own ? 1 : 0;
	for (struct pending_event *q = a->pending; q; q = q->next)
		n++;
	struct db_event_row *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t k = 0;
	for (struct pending_event *q = a->pending; rows && q; q = q->next)
		rows[k++] = (struct db_event_row){q->ev.seq, q->offset, q->ev.timestamp, q->type,
						  q->end, q->idle};
	if (rows && own)
		rows[k++] = *own;
	struct err dbe = {0};
	index_run(s, a);
	if (!rows || db_record_events(s->cfg.db, a->run.id, rows, k, head_seq, head_hash, status,
				      reason, ts, &dbe))
		log_error_limited("supervisor", "index of '%s' lags its chain: %s", a->run.id,
				  rows ? dbe.msg : "out of memory");
	free(rows);
}

/* Reports the deferred events, now durable and indexed (rec_lock held). */
static void flush_pending(struct supervisor *s, struct actor *a)
{
	struct pending_event *p = a->pending;
	a->pending = a->pending_tail = NULL;
	while (p) {
		struct pending_event *next = p->next;
		const char *status = p->status[0] ? p->status : NULL;
		pthread_mutex_lock(&a->lock);
		p->ev.status = status ? status : a->run.status;
		fan_out(a->subs, &p->ev);
		pthread_mutex_unlock(&a->lock);
		if (is_lifecycle(&p->ev, status))
			lifecycle(s, a, &p->ev);
		free(p->data);
		free(p);
		p = next;
	}
}

void record_release_pending(struct actor *a)
{
	while (a->pending) {
		struct pending_event *next = a->pending->next;
		free(a->pending->data);
		free(a->pending);
		a->pending = next;
	}
	a->pending_tail = NULL;
}

/* ---- mail outcomes and the state's place (rec_lock held) ---- */

void record_mail_open(struct actor *a, uint64_t seq)
{
	if (a->nopen == a->capopen) {
		size_t cap = a->capopen ? a->capopen * 2 : 16;
		uint64_t *n = realloc(a->open_mail, cap * sizeof(*n));
		if (!n) {
			/* Out of memory: not tracked, so `low` never passes it (recovery
			 * then scans from here; it finds the mail's outcome if it has one). */
			if (!a->open_untracked || seq < a->open_untracked)
				a->open_untracked = seq;
			return;
		}
		a->open_mail = n;
		a->capopen = cap;
	}
	a->open_mail[a->nopen++] = seq;
}

static void mail_settle(struct actor *a, uint64_t seq)
{
	for (size_t i = 0; i < a->nopen; i++)
		if (a->open_mail[i] == seq) {
			memmove(a->open_mail + i, a->open_mail + i + 1,
				(a->nopen - i - 1) * sizeof(*a->open_mail));
			a->nopen--;
			return;
		}
}

/* The oldest mail without an outcome, or `next` (the seq the event will get)
 * when there is none: recovery scans forward from here. */
static uint64_t mail_low(const struct actor *a, uint64_t next)
{
	uint64_t low = a->open_untracked && a->open_untracked < next ? a->open_untracked : next;
	for (size_t i = 0; i < a->nopen; i++)
		if (a->open_mail[i] < low)
			low = a->open_mail[i];
	return low;
}

/* Whether an event sets the state: a call's new state ("state" or "state_ref"),
 * or a restart from the initial state. A restart's "state" is which state it
 * ran from ("initial", or "last": the one it had, which it does not move), not
 * the state itself (durable.c). */
static int carries_state(const char *type, const json_t *data)
{
	if (strcmp(type, "restarted") == 0)
		return strcmp(json_string_value(json_object_get(data, "state")) ?: "", "last") != 0;
	return strcmp(type, "wasm") == 0 &&
	       (json_object_get(data, "state") || json_object_get(data, "state_ref"));
}

/* Before an append: settle the mail this event ends, mark `wasm` events with the
 * low-water mark of open mail and where the state lives. */
static void durable_before(struct actor *a, const char *type, json_t *data)
{
	if (!json_is_object(data))
		return;
	if (strcmp(type, "message-server/dropped") == 0) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(data, "mails"), i, v)
			mail_settle(a, (uint64_t)json_integer_value(v));
		return;
	}
	if (strcmp(type, "wasm") != 0)
		return;
	json_t *m = json_object_get(data, "mail");
	if (json_is_integer(m))
		mail_settle(a, (uint64_t)json_integer_value(m));
	uint64_t next = (a->chain ? chain_length(a->chain) : 0) + 1;
	json_object_set_new(data, "low", json_integer((json_int_t)mail_low(a, next)));
	if (!carries_state(type, data) && a->state_seq)
		json_object_set_new(data, "state_seq", json_integer((json_int_t)a->state_seq));
}

static void durable_after(struct actor *a, const char *type, const json_t *data, uint64_t seq)
{
	if (carries_state(type, data))
		a->state_seq = seq;
	if (strcmp(type, "message-server/received") == 0)
		record_mail_open(a, seq);
}

/* ---- sends before the sender's own events ---- */

void record_send_dep(struct supervisor *s, struct actor *from, struct actor *to, uint64_t upto)
{
	if (from == to)
		return;       /* its own chain: covered by its own sync */
	pthread_mutex_lock(&from->deps_lock);
	if (from->ndeps == from->capdeps) {
		size_t cap = from->capdeps ? from->capdeps * 2 : 8;
		struct send_dep *v = realloc(from->deps, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&from->deps_lock);
			struct err e = {0};
			chain_sync_upto(to->chain, upto, &e);   /* out of memory: sync now */
			return;
		}
		from->deps = v;
		from->capdeps = cap;
	}
	actor_ref(s, to);
	from->deps[from->ndeps++] = (struct send_dep){to, upto};
	pthread_mutex_unlock(&from->deps_lock);
}

/* Makes what a's sends wrote into other chains durable before a's own events
 * become durable, so a recorded send is never lost (docs/durability.md). */
static void satisfy_deps(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->deps_lock);
	struct send_dep *v = a->deps;
	size_t n = a->ndeps;
	a->deps = NULL;
	a->ndeps = a->capdeps = 0;
	pthread_mutex_unlock(&a->deps_lock);
	for (size_t i = 0; i < n; i++) {
		struct err e = {0};
		if (v[i].to->chain && chain_sync_upto(v[i].to->chain, v[i].upto, &e))
			log_error_limited("supervisor", "cannot sync the chain of '%s': %s",
					  v[i].to->run.id, e.msg);
		actor_unref(s, v[i].to);
	}
	free(v);
}

size_t record_deps_snapshot(struct supervisor *s, struct actor *a, struct send_dep **out)
{
	pthread_mutex_lock(&a->deps_lock);
	size_t n = a->ndeps;
	struct send_dep *v = n ? malloc(n * sizeof(*v)) : NULL;
	if (!v)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		v[i] = a->deps[i];
		actor_ref(s, v[i].to);
	}
	pthread_mutex_unlock(&a->deps_lock);
	*out = v;
	return n;
}

/* Cluster mode: what was synced is also acknowledged by the stream before
 * anyone hears of it (group commit over both). */
static void replica_wait_logged(struct supervisor *s, struct actor *a)
{
	struct err e = {0};
	const struct supervisor_replica *r = __atomic_load_n(&s->replica, __ATOMIC_ACQUIRE);
	if (r && r->wait && r->wait(r->user, &e))
		log_error_limited("supervisor",
				  "events of '%s' are durable here but not replicated: %s",
				  a->run.id, e.msg);
}

enum err_code record_event(struct supervisor *s, struct actor *a, const char *type,
			   json_t *data, const char *status, const char *reason, struct err *err)
{
	return record_event_ex(s, a, type, data, status, reason, 0, err);
}

void record_sync(struct supervisor *s, struct actor *a)
{
	satisfy_deps(s, a);
	pthread_mutex_lock(&a->rec_lock);
	if (a->pending && a->chain) {
		struct err e = {0};
		if (chain_sync(a->chain, &e) == ERR_OK) {
			pthread_mutex_lock(&a->lock);
			a->durable_seq = a->pending_tail->ev.seq;
			uint64_t seq = a->run.head_seq;
			char hash[65];
			memcpy(hash, a->run.head_hash, sizeof(hash));
			pthread_mutex_unlock(&a->lock);
			replica_wait_logged(s, a);
			struct err be = {0};   /* a spawn's run row, events and `spawned` row */
			int batch = a->unindexed && db_batch_begin(s->cfg.db, &be) == ERR_OK;
			index_durable(s, a, NULL, seq, hash, NULL, NULL, 0);
			flush_pending(s, a);
			flusher_index_paid(s, a);
			if (batch && db_batch_end(s->cfg.db, &be))
				log_error_limited("supervisor",
						  "cannot commit the index of '%s': %s", a->run.id,
						  be.msg);
		} else {
			log_error_limited("supervisor", "cannot sync the chain of '%s': %s",
					  a->run.id, e.msg);
		}
	}
	pthread_mutex_unlock(&a->rec_lock);
}

enum err_code record_event_ex(struct supervisor *s, struct actor *a, const char *type,
			      json_t *data, const char *status, const char *reason, int defer_sync,
			      struct err *err)
{
	return record_event_seq(s, a, type, data, status, reason, defer_sync, NULL, NULL, err);
}

/* rec_lock held. Nothing is recorded after a run's `deleted`, and `deleted` only on
 * a run that is not live: the check and the append are one step under rec_lock, so a
 * restart cannot record `restarted` between a delete's check and its tombstone (it
 * then ran an instance of a deleted actor). A pending automatic restart is cancelled.
 * Sets *deleting when this append is the tombstone. */
static enum err_code delete_gate(struct actor *a, const char *type, int *deleting,
				 struct err *err)
{
	enum err_code rc = ERR_OK;
	*deleting = 0;
	pthread_mutex_lock(&a->lock);
	if (a->deleted) {
		rc = err_set(err, ERR_NOT_FOUND, "actor '%s' was deleted", a->run.id);
	} else if (a->delete_held && strcmp(type, "deleted") != 0) {
		rc = err_set(err, ERR_CONFLICT, "actor '%s' is being deleted", a->run.id);
	} else if (strcmp(type, "deleted") == 0) {
		if (supervisor_status_live(a->run.status)) {
			rc = err_set(err, ERR_CONFLICT, "actor '%s' is %s; stop it first or use "
				     "?force=true", a->run.id, a->run.status);
		} else {
			a->deleted = *deleting = 1;
			a->restart_pending = 0;
			a->user_stopped = 1;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* The tombstone was not recorded (a damaged chain counts as recorded: its index
 * row says `deleted`): a DELETE may try again. */
static void undelete(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	a->deleted = 0;
	pthread_mutex_unlock(&a->lock);
}

enum err_code record_event_seq(struct supervisor *s, struct actor *a, const char *type,
			       json_t *data, const char *status, const char *reason,
			       int defer_sync, uint64_t *seq_out, size_t *len_out,
			       struct err *err)
{
	struct chain_event ev = {0};
	struct waiter *fire = NULL;
	int64_t ts = now_ms();
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&a->rec_lock);
	int deleting;
	rc = delete_gate(a, type, &deleting, err);
	if (rc) {
		pthread_mutex_unlock(&a->rec_lock);
		json_decref(data);
		return rc;
	}
	durable_before(a, type, data);
	char *text = json_compact(data);
	size_t len = text ? strlen(text) : 0;
	if (!text) {
		if (deleting)
			undelete(a);
		pthread_mutex_unlock(&a->rec_lock);
		json_decref(data);
		return err_set(err, ERR_NOMEM, "cannot serialize event '%s'", type);
	}
	if (!a->chain || actor_damaged(a)) {
		rc = err_set(err, ERR_CHAIN_DAMAGED, "the chain of actor '%s' is damaged: nothing "
			     "more is appended to it (GET /actors/%s/chain/verify says where)",
			     a->run.id, a->run.id);
		goto status_only;
	}
	int deferred = (__atomic_load_n(&a->defer_sync, __ATOMIC_ACQUIRE) || defer_sync) &&
		       !status;
	if (!deferred)
		satisfy_deps(s, a);     /* this sync makes every earlier append durable */
	rc = deferred ? chain_append_nosync(a->chain, type, text, len, &ev, err)
		      : chain_append(a->chain, type, text, len, &ev, err);
	if (rc) {
		if (a->chain && chain_damaged(a->chain)) {
			actor_set_damaged(a);   /* damage found at run time stops appends */
			rc = ERR_CHAIN_DAMAGED;
			if (err)
				err->code = rc;
		}
		goto status_only;
	}
	durable_after(a, type, data, ev.seq);
	/* The head's idle mark goes to the index too (a start leaves such a run's
	 * chain unopened: supervisor.c, load_run). */
	int idle = json_is_true(json_object_get(data, "idle")) &&
		   (strcmp(type, "suspended") == 0 || strcmp(type, "recovered") == 0);
	json_decref(data);
	data = NULL;
	if (seq_out)
		*seq_out = ev.seq;
	if (len_out)
		*len_out = len;
	struct supervisor_event sev = {
		.actor_id = a->run.id, .seq = ev.seq, .hash = ev.hash,
		.parent_hash = ev.parent_hash, .event_type = type, .data = (uint8_t *)text,
		.data_len = len, .timestamp = ts, .terminal = is_terminal(status),
	};
	const struct supervisor_replica *rep = __atomic_load_n(&s->replica, __ATOMIC_ACQUIRE);
	if (rep && rep->publish)      /* cluster mode: to the stream, in seq order */
		rep->publish(rep->user, &sev);
	if (deferred) {
		pthread_mutex_lock(&a->lock);
		apply(a, &ev, type, NULL, NULL, ts);
		pthread_mutex_unlock(&a->lock);
		defer(a, &sev, ev.offset, ev.end, idle, NULL);
		goto to_flusher;
	}
	pthread_mutex_lock(&a->lock);
	a->durable_seq = ev.seq;      /* the sync covered every earlier append too */
	pthread_mutex_unlock(&a->lock);
	replica_wait_logged(s, a);
	/* Index later: a spawn's `started` (its first index write: the run row, its
	 * first events and lifecycle rows) is durable in the chain; the answer need
	 * not wait for the index transaction too. The event joins the deferred ones
	 * and the flusher indexes and reports them within its window, in one
	 * transaction with other spawns'; readers of the index wait for it
	 * (flusher_index_settle), and a crash before it leaves a chain the next
	 * start indexes. Single node only: a cluster's checks list the index. */
	if (a->unindexed && status && strcmp(status, "running") == 0 && !rep &&
	    !__atomic_load_n(&s->recovering, __ATOMIC_ACQUIRE) &&
	    defer(a, &sev, ev.offset, ev.end, idle, status) == 0) {
		pthread_mutex_lock(&a->lock);
		apply(a, &ev, type, status, reason, ts);
		collect_waiters(a, status, &fire);
		pthread_mutex_unlock(&a->lock);
		flusher_index_owe(s, a);
		goto to_flusher;
	}
	char hash[65];
	hex_encode(ev.hash, CHAIN_HASH_LEN, hash);
	struct db_event_row row = {.seq = ev.seq, .offset = ev.offset, .timestamp = ts,
				   .event_type = type, .end = ev.end, .idle = idle};
	/* A status change or a spawn's first index write (a->unindexed): the run
	 * row, events, status and lifecycle rows go in one transaction. */
	struct err be = {0};
	int batch = (a->unindexed || status) && db_batch_begin(s->cfg.db, &be) == ERR_OK;
	index_durable(s, a, &row, ev.seq, hash, status, reason, ts);
	flush_pending(s, a);
	flusher_index_paid(s, a);
	pthread_mutex_lock(&a->lock);
	apply(a, &ev, type, status, reason, ts);
	sev.status = a->run.status;
	fan_out(a->subs, &sev);
	collect_waiters(a, status, &fire);
	pthread_mutex_unlock(&a->lock);
	if (is_lifecycle(&sev, status))
		lifecycle(s, a, &sev);
	if (batch && db_batch_end(s->cfg.db, &be))
		log_error_limited("supervisor", "cannot commit the index of '%s': %s", a->run.id,
				  be.msg);
	pthread_mutex_unlock(&a->rec_lock);
	chain_event_release(&ev);
	free(text);
	waiters_fire(s, fire);
	if (is_terminal(status))
		supervise_run_ended(s, a, status, reason);
	return ERR_OK;

to_flusher:   /* indexed and reported by the flusher: deferred, or index later */
	pthread_mutex_unlock(&a->rec_lock);
	chain_event_release(&ev);
	free(text);
	flusher_mark(s, a);
	waiters_fire(s, fire);
	return ERR_OK;

status_only:
	json_decref(data);
	if (deleting && rc != ERR_CHAIN_DAMAGED)
		undelete(a);
	/* The chain refused the event; the status still changes so the run is not
	 * left looking live. */
	if (status) {
		struct err dbe2 = {0};
		index_run(s, a);
		db_run_set_status(s->cfg.db, a->run.id, status, reason, ts, &dbe2);
		flusher_index_paid(s, a);
		pthread_mutex_lock(&a->lock);
		free(a->run.status);
		a->run.status = strdup(status);
		free(a->run.reason);
		a->run.reason = reason ? strdup(reason) : NULL;
		if (is_terminal(status))
			a->run.stopped_at = ts;
		else if (supervisor_status_live(status))
			a->run.stopped_at = 0;
		a->run.updated_at = ts;
		collect_waiters(a, status, &fire);
		pthread_mutex_unlock(&a->lock);
	}
	pthread_mutex_unlock(&a->rec_lock);
	free(text);
	waiters_fire(s, fire);
	if (is_terminal(status))
		supervise_run_ended(s, a, status, reason);
	return rc;
}

json_t *lifecycle_data(const char *reason, const char *detail)
{
	json_t *o = json_object();
	json_object_set_new(o, "timestamp", json_integer(now_ms()));
	if (reason)
		json_object_set_new(o, "reason", json_string(reason));
	if (detail)
		json_object_set_new(o, "detail", json_string(detail));
	return o;
}
