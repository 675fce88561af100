/* durable.c - an actor brought back from its chain; see durable.h. */
#include "supervisor/durable.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"
#include "src/util/log.h"
#include "src/wasm/wasm.h"
#include "supervisor/channel.h"
#include "supervisor/evbytes.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

#define STATE_REF_PREFIX "store://theater-state/hash/"

/* Event seq of a's chain as a JSON object (NULL when it is not one). */
static json_t *read_json(struct actor *a, uint64_t seq, char *type, size_t type_size,
			 struct err *err)
{
	struct chain_event ev = {0};
	if (chain_read(a->chain, seq, &ev, err))
		return NULL;
	snprintf(type, type_size, "%s", ev.event_type);
	json_t *j = json_parse((const char *)ev.data, ev.data_len, 64, NULL);
	chain_event_release(&ev);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	if (!j)
		err_set(err, ERR_BAD_JSON, "event %llu of '%s' is not a JSON object",
			(unsigned long long)seq, a->run.id);
	return j;
}

/* The state bytes an event holds ("state" or "state_ref"). */
static enum err_code state_of(struct supervisor *s, const json_t *ev, uint8_t **out,
			      size_t *len, struct err *err)
{
	const json_t *inl = json_object_get(ev, "state");
	if (inl)
		return evbytes_load(s->cfg.store, inl, out, len, err);
	const char *ref = json_string_value(json_object_get(ev, "state_ref"));
	size_t n = strlen(STATE_REF_PREFIX);
	if (!ref || strncmp(ref, STATE_REF_PREFIX, n) != 0 || !sha256_hex_valid(ref + n))
		return err_set(err, ERR_CORRUPT, "an event names its state as '%s'",
			       ref ? ref : "nothing");
	return store_get(s->cfg.store, "theater-state", ref + n, 0, out, len, err);
}

struct found {
	uint64_t last_wasm;           /* seq of the newest `wasm` event; 0 if none */
	uint64_t low;                 /* its open-mail mark */
	uint64_t state_seq;           /* the event holding the state */
};

/* Reads back from the head to the newest `wasm` event (or an event that names
 * the state, such as `recovered`, or a `restarted` event, which sets it). */
static enum err_code find_marks(struct actor *a, struct found *f, struct err *err)
{
	memset(f, 0, sizeof(*f));
	char type[128];
	for (uint64_t seq = chain_length(a->chain); seq > 0; seq--) {
		json_t *j = read_json(a, seq, type, sizeof(type), err);
		if (!j)
			return err->code;
		int is_wasm = strcmp(type, "wasm") == 0;
		int restart = strcmp(type, "restarted") == 0;
		json_int_t st = json_integer_value(json_object_get(j, "state_seq"));
		if (is_wasm || restart || st > 0) {
			f->last_wasm = is_wasm ? seq : 0;
			f->low = (uint64_t)json_integer_value(json_object_get(j, "low"));
			if (restart || (is_wasm && (json_object_get(j, "state") ||
						    json_object_get(j, "state_ref"))))
				f->state_seq = seq;
			else
				f->state_seq = (uint64_t)st;
			/* `recovered` has no "low": the mail it redelivered is still open
			 * until calls settle it (which come after it). Scanning from the
			 * event itself lost that mail at the next recovery. */
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(j, "redelivered"), i, v) {
				uint64_t m = (uint64_t)json_integer_value(v);
				if (m && (!f->low || m < f->low))
					f->low = m;
			}
			json_decref(j);
			if (!f->low || f->low > seq)
				f->low = seq;
			return f->state_seq ? ERR_OK
					    : err_set(err, ERR_NOT_FOUND, "no state recorded");
		}
		json_decref(j);
	}
	return err_set(err, ERR_NOT_FOUND, "the chain of '%s' records no state", a->run.id);
}

json_t *durable_initial_state(struct actor *a, struct err *err)
{
	char type[128];
	json_t *j = a->chain ? read_json(a, 1, type, sizeof(type), err) : NULL;
	json_t *v = j && strcmp(type, "spawned") == 0 ? json_object_get(j, "initial_state") : NULL;
	v = v && !json_is_null(v) ? json_incref(v) : NULL;
	json_decref(j);
	return v;
}

/* The same as bytes (none when it records none). */
static enum err_code initial_state_of(struct actor *a, uint8_t **out, size_t *len,
				      struct err *err)
{
	err_clear(err);
	json_t *v = durable_initial_state(a, err);
	if (err->code)
		return err->code;
	char *text = v ? json_compact(v) : NULL;
	json_decref(v);
	*out = (uint8_t *)text;
	*len = text ? strlen(text) : 0;
	return ERR_OK;
}

static enum err_code load_state_at(struct supervisor *s, struct actor *a, uint64_t seq,
				   struct err *err)
{
	char type[128];
	uint8_t *st = NULL;
	size_t len = 0;
	enum err_code rc;
	for (;;) {
		json_t *j = read_json(a, seq, type, sizeof(type), err);
		if (!j)
			return err->code;
		/* A restart's "state" says which state it ran from, the last one (at
		 * its state_seq, always earlier) or the initial one: it holds no state
		 * bytes. Servers before 2026-12-07 pointed later events at a restart
		 * from the last state too (so its state_seq may be another restart),
		 * and read the word as the state. */
		json_int_t from = json_integer_value(json_object_get(j, "state_seq"));
		int last = strcmp(type, "restarted") == 0 &&
			   strcmp(json_string_value(json_object_get(j, "state")) ?: "", "last") == 0;
		if (strcmp(type, "restarted") != 0)
			rc = state_of(s, j, &st, &len, err);
		else if (!last)
			rc = initial_state_of(a, &st, &len, err);
		json_decref(j);
		if (!last)
			break;
		if (from <= 0 || (uint64_t)from >= seq)
			return err_set(err, ERR_CORRUPT, "event %llu of '%s' restarts from event %lld",
				       (unsigned long long)seq, a->run.id, (long long)from);
		seq = (uint64_t)from;
	}
	if (rc)
		return rc;
	actor_state_take(a, st, len);
	pthread_mutex_lock(&a->rec_lock);
	a->state_seq = seq;
	pthread_mutex_unlock(&a->rec_lock);
	return ERR_OK;
}

enum err_code durable_load_state(struct supervisor *s, struct actor *a, struct err *err)
{
	pthread_mutex_lock(&a->lock);
	int have = a->state_loaded;
	pthread_mutex_unlock(&a->lock);
	if (have)
		return ERR_OK;
	if (!a->chain)
		return err_set(err, ERR_CORRUPT, "the chain of '%s' cannot be read", a->run.id);
	struct found f;
	enum err_code rc = find_marks(a, &f, err);
	return rc ? rc : load_state_at(s, a, f.state_seq, err);
}

/* ---- the mail still to deliver ---- */

struct open_mail {
	uint64_t seq;
	json_t *ev;                   /* its received event */
};

struct mail_scan {
	struct open_mail *v;
	size_t n, cap;
};

static void settle(struct mail_scan *m, uint64_t seq)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].seq == seq) {
			json_decref(m->v[i].ev);
			memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof(*m->v));
			m->n--;
			return;
		}
}

static enum err_code scan_mail(struct actor *a, uint64_t from, struct mail_scan *m,
			       struct err *err)
{
	char type[128];
	uint64_t head = chain_length(a->chain);
	for (uint64_t seq = from; seq && seq <= head; seq++) {
		json_t *j = read_json(a, seq, type, sizeof(type), err);
		if (!j) {
			if (err->code != ERR_BAD_JSON)
				return err->code;
			continue;     /* an event that is not ours to read */
		}
		if (strcmp(type, "message-server/received") == 0) {
			if (m->n == m->cap) {
				size_t cap = m->cap ? m->cap * 2 : 16;
				struct open_mail *v = realloc(m->v, cap * sizeof(*v));
				if (!v) {
					json_decref(j);
					return err_set(err, ERR_NOMEM, "cannot recover mail");
				}
				m->v = v;
				m->cap = cap;
			}
			m->v[m->n++] = (struct open_mail){seq, j};
			continue;
		}
		if (strcmp(type, "wasm") == 0) {
			json_int_t ms = json_integer_value(json_object_get(j, "mail"));
			if (ms > 0)
				settle(m, (uint64_t)ms);
		} else if (strcmp(type, "message-server/dropped") == 0) {
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(j, "mails"), i, v)
				settle(m, (uint64_t)json_integer_value(v));
		}
		json_decref(j);
	}
	return ERR_OK;
}

static void scan_release(struct mail_scan *m)
{
	for (size_t i = 0; i < m->n; i++)
		json_decref(m->v[i].ev);
	free(m->v);
}

/* ---- recovery ---- */

static enum err_code load_module(struct supervisor *s, struct actor *a, struct err *err)
{
	if (a->module && a->manifest)
		return ERR_OK;
	return supervise_reload(s, a, err);
}

/* Why the run is being recovered, from its head event (type, data): after a
 * `suspended` head its reason; after any other head that a clean stop marked
 * idle in the index (mark_idle in supervisor.c: head_idle with no idle event
 * there) "shutdown"; else "crash". */
static const char *recover_reason(const struct actor *a, uint64_t head, const char *type,
				  json_t *data)
{
	if (strcmp(type, "suspended") == 0)
		return strcmp(json_string_value(json_object_get(data, "reason")) ?: "",
			      "idle") == 0 ? "idle" : "shutdown";
	if (a->run.head_idle && a->run.head_seq == head && strcmp(type, "recovered") != 0)
		return "shutdown";
	return "crash";
}

enum err_code durable_recover(struct supervisor *s, struct actor *a, struct err *err)
{
	if (!a->chain || actor_damaged(a))
		return err_set(err, ERR_CHAIN_DAMAGED, "the chain of actor '%s' is damaged",
			       a->run.id);
	uint64_t head = chain_length(a->chain);
	struct found f;
	struct mail_scan mail = {0};
	enum err_code rc = find_marks(a, &f, err);
	if (!rc)
		rc = load_state_at(s, a, f.state_seq, err);
	if (!rc)
		rc = scan_mail(a, f.low, &mail, err);
	if (!rc)
		rc = load_module(s, a, err);
	const char *reason = NULL;
	if (!rc) {
		rc = runtime_resume(s, a, a->manifest, wasm_module_ref(a->module), &reason, err);
	}
	if (rc) {
		scan_release(&mail);
		return rc;
	}
	char type[128] = "";
	json_t *last = head ? read_json(a, head, type, sizeof(type), err) : NULL;
	const char *why = recover_reason(a, head, type, last);
	json_t *d = lifecycle_data(why, NULL);
	json_decref(last);
	json_object_set_new(d, "resumed_from", json_integer((json_int_t)head));
	json_object_set_new(d, "state_seq", json_integer((json_int_t)f.state_seq));
	json_object_set_new(d, "state_sha256", json_string(a->state_sha));
	json_t *seqs = json_array();
	pthread_mutex_lock(&a->rec_lock);
	for (size_t i = 0; i < mail.n; i++) {
		record_mail_open(a, mail.v[i].seq);
		json_array_append_new(seqs, json_integer((json_int_t)mail.v[i].seq));
	}
	pthread_mutex_unlock(&a->rec_lock);
	json_object_set_new(d, "redelivered", seqs);
	rc = timers_recover(s, a, d, err);
	/* Nothing to deliver and no timer: the next start may leave it lazy. */
	if (!rc && mail.n == 0 && json_array_size(json_object_get(d, "timers")) == 0)
		json_object_set_new(d, "idle", json_true());
	if (rc)
		json_decref(d);
	else
		rc = record_event_ex(s, a, "recovered", d, NULL, NULL, 1, err);
	/* The open mail first, then the timers: a tick due at once comes after
	 * the mail that was waiting before it. */
	for (size_t i = 0; !rc && i < mail.n; i++)
		rc = runtime_redeliver(s, a, mail.v[i].seq, mail.v[i].ev, err);
	if (!rc)
		timers_arm_all(s, a);
	scan_release(&mail);
	return rc;
}

/* ---- lazy recovery ---- */

int durable_idle_head(struct actor *a)
{
	uint64_t head = a->chain ? chain_length(a->chain) : 0;
	if (!head || actor_damaged(a))
		return 0;
	struct chain_event ev = {0};
	struct err e = {0};
	if (chain_read(a->chain, head, &ev, &e))
		return 0;
	int idle = 0;
	if (strcmp(ev.event_type, "suspended") == 0 || strcmp(ev.event_type, "recovered") == 0) {
		json_t *j = json_parse((const char *)ev.data, ev.data_len, 64, NULL);
		idle = json_is_true(json_object_get(j, "idle"));
		json_decref(j);
	}
	chain_event_release(&ev);
	return idle;
}

enum err_code durable_wake(struct supervisor *s, struct actor *a, struct err *err)
{
	if (!__atomic_load_n(&a->lazy, __ATOMIC_ACQUIRE))
		return ERR_OK;
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&a->wake_lock);
	if (!__atomic_load_n(&a->lazy, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&a->wake_lock);
		return ERR_OK;
	}
	pthread_mutex_lock(&a->lock);
	int go = strcmp(a->run.status, "running") == 0 && !a->terminal_pending && !a->rt;
	pthread_mutex_unlock(&a->lock);
	if (!go || is_stopping(s)) {
		/* ended meanwhile (a stop needs no instance), or the server stops: it
		 * stays as its chain left it */
		if (!go) {
			__atomic_store_n(&a->lazy, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&a->recover_due, 0, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&a->wake_lock);
		return ERR_OK;
	}
	rc = durable_recover(s, a, err);
	runtime_release(s, a);     /* instantiating held the actor's turn */
	__atomic_store_n(&a->lazy, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&a->recover_due, 0, __ATOMIC_RELEASE);
	if (rc) {
		log_error("supervisor", "cannot recover actor '%s': %s", a->run.id, err->msg);
		spawn_fail(s, a, "recovery_failed", err);
	}
	pthread_mutex_unlock(&a->wake_lock);
	return rc;
}

/* ---- idle instances released ---- */

int durable_release(struct supervisor *s, struct actor *a, int64_t idle_since)
{
	pthread_mutex_lock(&a->wake_lock);
	pthread_mutex_lock(&a->lock);
	int go = !__atomic_load_n(&a->lazy, __ATOMIC_ACQUIRE) &&
		 runtime_idle_locked(s, a, idle_since);
	if (go) {
		a->scheduled = 1;       /* holds its turn: no job runs it meanwhile */
		a->releasing = 1;       /* accept_mail waits for the release, then wakes it */
	}
	pthread_mutex_unlock(&a->lock);
	if (!go) {
		pthread_mutex_unlock(&a->wake_lock);
		return 0;
	}
	pthread_mutex_lock(&a->rec_lock);
	int open = a->nopen != 0 || a->open_untracked != 0;
	pthread_mutex_unlock(&a->rec_lock);
	struct err e = {0};
	go = !open && timers_count(a) == 0 && channel_count(a) == 0 && !channel_has_answers(a);
	if (go) {
		json_t *d = lifecycle_data("idle", NULL);
		json_object_set_new(d, "idle", json_true());
		go = record_event_ex(s, a, "suspended", d, NULL, NULL, 1, &e) == ERR_OK;
	}
	if (go) {
		runtime_suspend(s, a);   /* frees the instance; no mail was let in */
		__atomic_store_n(&a->lazy, 1, __ATOMIC_RELEASE);
		__atomic_add_fetch(&s->released, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&a->lock);
	a->releasing = 0;
	int stop = a->stop_requested;
	pthread_mutex_unlock(&a->lock);
	runtime_release(s, a);           /* its turn back (schedules a stop that came) */
	pthread_mutex_unlock(&a->wake_lock);
	if (go && stop)                  /* a stop asked while it was released: back to */
		durable_wake(s, a, &e);  /* run it (its job records the end) */
	return go;
}

struct sweep {
	struct supervisor *s;
	int64_t before;
	unsigned budget, released, idle_left;
};

static void sweep_one(struct supervisor *s, struct actor *a, void *u)
{
	struct sweep *w = u;
	pthread_mutex_lock(&a->lock);
	int idle = runtime_idle_locked(s, a, w->before);
	pthread_mutex_unlock(&a->lock);
	if (!idle)
		return;
	if (w->released >= w->budget) {
		w->idle_left++;
		return;
	}
	w->released += (unsigned)durable_release(s, a, w->before);
}

#define SWEEP_BUDGET 1000      /* releases per pass, so one pass holds a worker briefly */

static void sweep_job(void *arg)
{
	struct supervisor *s = arg;
	uint32_t idle_ms = s->cfg.idle_release_ms;
	if (is_stopping(s) || is_draining(s) || !idle_ms)
		return;
	struct sweep w = {.s = s, .before = now_ms() - idle_ms, .budget = SWEEP_BUDGET};
	reg_foreach(s, sweep_one, &w);
	if (w.released)
		log_debug("supervisor", "released %u idle instances (%u more idle)", w.released,
			  w.idle_left);
	uint32_t next = idle_ms / 4 < 5000 ? idle_ms / 4 : 5000;
	if (w.idle_left)
		next = 50;               /* more to release: soon, a pass at a time */
	supervisor_after(s, next ? next : 1, sweep_job, s);
}

void durable_sweep_start(struct supervisor *s)
{
	if (s->cfg.idle_release_ms)
		supervisor_after(s, s->cfg.idle_release_ms, sweep_job, s);
}

/* ---- live runs recovered in the background after start-up ---- */

#define BACKGROUND_BATCH 32    /* recoveries per job, so requests get workers between */

static void background_job(void *arg)
{
	struct supervisor *s = arg;
	unsigned done = 0;
	while (!is_stopping(s) && done < BACKGROUND_BATCH && s->eager_next < s->neager) {
		struct actor *a = reg_find(s, s->eager[s->eager_next++]);
		struct err e = {0};
		if (a)
			durable_wake(s, a, &e);   /* logs and fails the run itself */
		actor_unref(s, a);
		__atomic_sub_fetch(&s->eager_left, 1, __ATOMIC_RELEASE);
		done++;
	}
	if (is_stopping(s) || s->eager_next >= s->neager) {
		if (s->neager)
			log_info("supervisor", "background recovery: %zu of %zu live runs done",
				 s->eager_next, s->neager);
		return;    /* the rest stay as their chains left them: the next start */
	}
	if (supervisor_after(s, 0, background_job, s) != ERR_OK)
		log_error("supervisor", "background recovery stopped with %zu runs left",
			  s->neager - s->eager_next);
}

void durable_background_start(struct supervisor *s)
{
	if (s->neager && supervisor_after(s, 0, background_job, s) != ERR_OK)
		log_error("supervisor", "cannot start the background recovery of %zu runs",
			  s->neager);
}

uint64_t durable_background_left(struct supervisor *s)
{
	return __atomic_load_n(&s->eager_left, __ATOMIC_ACQUIRE);
}
