/* timers.c - timers of an actor: one-shot and periodic ticks delivered as
 * calls of its handle-timer export; the host functions set-timer and
 * cancel-timer of theater:simple/timing. See channel.h and docs/actor-abi.md
 * ("Timers").
 *
 * A timer is named by the actor (setting a name again replaces the timer). Its
 * ticks are numbered from 1: tick n is due at first_due + (n - 1) * period (unix
 * milliseconds), so the numbering needs no counter to survive a restart. A tick
 * is mail of kind "timer" (a `message-server/received` event, like any message)
 * whose data is {"timer", "tick", "scheduled_ms", "missed"}: `missed` counts the
 * ticks that were due but not delivered before it (the server was down, or the
 * mailbox was full); they are never delivered late one by one.
 *
 * Every change (set-timer, cancel-timer) records the whole table in its event
 * ("timers"), and so does `recovered`; while the actor has timers, a
 * `timing/timers` event records it again once TIMERS_CHECKPOINT events went by
 * without one, so recovery reads back at most that far (plus one call's
 * events), however long the chain. At recovery the table is read back from
 * the newest such event, with the ticks delivered after it, and re-armed: a
 * one-shot timer that fell due while the server was down fires at once, a
 * periodic one fires once at once (with `missed`) and then keeps its schedule.
 * A restart of the actor (a `restarted` event) or the end of its run drops its
 * timers, like everything else of the instance.
 *
 * Each armed tick is one delayed job of the worker pool holding a reference on
 * the actor and the timer's generation (unique in the process: a table made
 * again after a restart reuses no generation of the jobs still armed); a job
 * whose timer was replaced, cancelled or dropped finds another generation and
 * does nothing. A timer's next tick is armed only once its tick is in the
 * mailbox (or skipped), so its ticks reach the mailbox, and the chain, in
 * order however late a job runs: a tick computed at recovery may be due
 * within a millisecond of the next one.
 *
 * A tick moves its timer on (next_tick, or a one-shot timer gone) before it is
 * in the chain, and a recorded table is taken before its event is written. The
 * actor's tick_lock is held across each of the two, so the chain never holds a
 * table that counts a tick it does not hold before it, nor the reverse (a crash
 * then lost that tick, or delivered it twice). The lock is taken before the
 * actor's lock and its record lock, and a tick holds it only while its mail is
 * written (never synced: mail from a timer is not acknowledged to anyone).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/log.h"
#include "supervisor/channel.h"
#include "supervisor/evbytes.h"
#include "supervisor/host.h"
#include "supervisor/record.h"

#define MOD "theater:simple/timing"
#define TIMERS_MAX 32
#define TIMER_NAME_MAX 64
#define TIMER_MIN_DEFAULT_MS 100
#define TIMER_MIN_FLOOR_MS 10
#define TIMER_MAX_MS ((int64_t)366 * 24 * 3600 * 1000)
#define TIMERS_CHECKPOINT 1024
#define CHECKPOINT_TYPE "timing/timers"

struct timer {
	char name[TIMER_NAME_MAX + 1];
	int64_t first_due_ms;         /* unix ms of tick 1 */
	int64_t period_ms;            /* 0: one-shot */
	uint64_t next_tick;           /* the tick armed next */
	uint64_t skipped;             /* ticks lost to a full mailbox, for `missed` */
	uint64_t gen;                 /* of the armed job */
};

struct timer_tab {
	struct timer v[TIMERS_MAX];
	size_t n;
	uint64_t table_seq;           /* about where the table was last recorded */
};

struct tick_job {
	struct supervisor *s;
	struct actor *a;              /* a reference */
	char name[TIMER_NAME_MAX + 1];
	uint64_t gen;
};

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timer *find_locked(struct actor *a, const char *name)
{
	for (size_t i = 0; a->timers && i < a->timers->n; i++)
		if (strcmp(a->timers->v[i].name, name) == 0)
			return &a->timers->v[i];
	return NULL;
}

static void remove_locked(struct actor *a, struct timer *t)
{
	size_t i = (size_t)(t - a->timers->v);
	memmove(t, t + 1, (a->timers->n - i - 1) * sizeof(*t));
	a->timers->n--;
}

static int64_t due_of(const struct timer *t, uint64_t tick)
{
	return t->first_due_ms + (int64_t)(tick - 1) * t->period_ms;
}

static void tick_fire(void *arg);

static uint64_t last_gen;       /* of every timer armed in this process */

/* Arms t's next tick (a->lock held). */
static void arm_locked(struct supervisor *s, struct actor *a, struct timer *t)
{
	struct tick_job *j = calloc(1, sizeof(*j));
	if (!j || !s->pool) {
		free(j);
		log_error("timers", "cannot arm timer '%s' of '%s': out of memory", t->name,
			  a->run.id);
		return;
	}
	t->gen = __atomic_add_fetch(&last_gen, 1, __ATOMIC_RELAXED);
	*j = (struct tick_job){.s = s, .a = a, .gen = t->gen};
	memcpy(j->name, t->name, sizeof(j->name));
	int64_t wait = due_of(t, t->next_tick) - unix_ms();
	wait = wait < 0 ? 0 : wait > UINT32_MAX ? UINT32_MAX : wait;
	actor_ref(s, a);
	if (pool_submit_after(s->pool, (uint32_t)wait, tick_fire, j) != ERR_OK) {
		actor_unref(s, a);
		free(j);
	}
}

/* The tick to deliver now, as JSON text (malloc'd), and the timer moved on: a
 * one-shot timer is removed; a periodic one's next tick is armed by the caller
 * once this one is delivered. */
static char *tick_locked(struct actor *a, struct timer *t, uint64_t *tick_out)
{
	int64_t now = unix_ms();
	uint64_t n = t->next_tick, missed = t->skipped;
	if (t->period_ms && now >= t->first_due_ms) {
		uint64_t latest = (uint64_t)((now - t->first_due_ms) / t->period_ms) + 1;
		if (latest > n) {
			missed += latest - n;
			n = latest;
		}
	}
	json_t *j = json_pack("{s:s, s:I, s:I, s:I}", "timer", t->name, "tick", (json_int_t)n,
			      "scheduled_ms", (json_int_t)due_of(t, n), "missed",
			      (json_int_t)missed);
	char *text = j ? json_compact(j) : NULL;
	json_decref(j);
	t->skipped = 0;
	*tick_out = n;
	if (t->period_ms)
		t->next_tick = n + 1;
	else
		remove_locked(a, t);
	return text;
}

/* Puts the tick (text; NULL: it could not be made) in a's mailbox, then arms
 * the timer's next one unless it was replaced, cancelled or dropped meanwhile. */
static void deliver(struct supervisor *s, struct actor *a, const struct tick_job *j,
		    const char *text)
{
	struct err e = {0};
	int skipped = 1;
	if (!text)
		err_set(&e, ERR_NOMEM, "out of memory");
	else
		skipped = runtime_deliver_tick(s, a->run.id, text, strlen(text), &e) != ERR_OK;
	if (skipped)
		log_warn_limited("timers", "a tick of timer '%s' of '%s' is skipped: %s", j->name,
				 a->run.id, e.msg);
	pthread_mutex_lock(&a->lock);
	struct timer *t = find_locked(a, j->name);
	if (t && t->gen == j->gen) {
		t->skipped += (uint64_t)skipped;
		if (t->period_ms)
			arm_locked(s, a, t);
	}
	pthread_mutex_unlock(&a->lock);
}

static void tick_fire(void *arg)
{
	struct tick_job *j = arg;
	struct supervisor *s = j->s;
	struct actor *a = j->a;
	char *text = NULL;
	uint64_t tick = 0;
	int due = 0;
	pthread_mutex_lock(&a->tick_lock);
	if (!is_stopping(s)) {
		pthread_mutex_lock(&a->lock);
		struct timer *t = find_locked(a, j->name);
		due = t && t->gen == j->gen;
		if (due)
			text = tick_locked(a, t, &tick);
		pthread_mutex_unlock(&a->lock);
	}
	if (due && tick == 1 && s->tick_stall_ms) {
		unsigned ms = s->tick_stall_ms;
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	if (due)
		deliver(s, a, j, text);
	pthread_mutex_unlock(&a->tick_lock);
	free(text);
	actor_unref(s, a);
	free(j);
}

unsigned timers_test_stall(void)
{
	const char *env = getenv("THEATER_TEST_TICK_STALL_MS");
	int ms = env ? atoi(env) : 0;
	if (ms <= 0 || ms > 10000)
		return 0;
	log_warn("timers", "THEATER_TEST_TICK_STALL_MS=%d: each timer's first tick waits that "
		 "long before it is delivered (for tests; never in production)", ms);
	return (unsigned)ms;
}

void timers_drop_all(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	struct timer_tab *t = a->timers;
	a->timers = NULL;           /* armed jobs find nothing and end */
	pthread_mutex_unlock(&a->lock);
	free(t);
}

/* The table as recorded: [{"name", "first_due_ms", "period_ms", "next_tick"}]. */
static json_t *snapshot_locked(struct actor *a)
{
	json_t *v = json_array();
	for (size_t i = 0; a->timers && i < a->timers->n; i++) {
		const struct timer *t = &a->timers->v[i];
		json_array_append_new(v, json_pack("{s:s, s:I, s:I, s:I}", "name", t->name,
						   "first_due_ms", (json_int_t)t->first_due_ms,
						   "period_ms", (json_int_t)t->period_ms,
						   "next_tick", (json_int_t)t->next_tick));
	}
	return v;
}

/* ---- host functions ---- */

static int name_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > TIMER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-' || p[i] == '.' ||
		      p[i] == ':'))
			return 0;
	return 1;
}

static int32_t read_name(struct wasm_caller *c, struct host_call *k, uint32_t ptr, uint32_t len,
			 uint8_t **name)
{
	int32_t rc = host_read(c, ptr, len, TIMER_NAME_MAX, name);
	if (!rc && !name_ok(*name, len))
		rc = HOST_EINVAL;
	if (rc)
		err_set(&k->e, ERR_INVALID, "a timer name is 1 to 64 of A-Z a-z 0-9 _ - . :");
	else
		json_object_set_new(k->in, "name", json_string((const char *)*name));
	return rc;
}

/* The shortest delay and period: the handler's min_timer_ms (at least 10),
 * or permission_policy.timing's min_timer_ms when it restricts more. */
static int64_t min_ms(struct actor *a)
{
	const json_t *v = json_object_get(host_handler_config(a, GRANT_TIMING), "min_timer_ms");
	int64_t m = json_is_integer(v) ? (int64_t)json_integer_value(v) : TIMER_MIN_DEFAULT_MS;
	int64_t pol = host_policy_int(a, GRANT_TIMING, "min_timer_ms", -1);
	if (pol > m)
		m = pol;
	return m < TIMER_MIN_FLOOR_MS ? TIMER_MIN_FLOOR_MS : m;
}

/* The most timers: TIMERS_MAX, or the handler's max_timers when lower. */
static size_t max_timers(struct actor *a)
{
	const json_t *v = json_object_get(host_handler_config(a, GRANT_TIMING), "max_timers");
	json_int_t m = json_is_integer(v) ? json_integer_value(v) : TIMERS_MAX;
	return m < 0 ? 0 : m > TIMERS_MAX ? TIMERS_MAX : (size_t)m;
}

static int32_t set_timer(struct actor *a, struct host_call *k, const char *name, int64_t delay,
			 int64_t period)
{
	int64_t min = min_ms(a);
	if (!runtime_has_timer_export(a))
		return err_set(&k->e, ERR_INVALID, "the actor does not export handle-timer"), HOST_EINVAL;
	if (delay < 0 || period < 0 || delay > TIMER_MAX_MS || period > TIMER_MAX_MS)
		return err_set(&k->e, ERR_INVALID, "delay and period are 0 to a year of "
			       "milliseconds"), HOST_EINVAL;
	if (delay < min || (period && period < min))
		return err_set(&k->e, ERR_FORBIDDEN_PATH, "delay and period must be at least "
			       "%lld ms (min_timer_ms)", (long long)min), HOST_EDENIED;
	struct supervisor *s = host_supervisor(a);
	int32_t rc = 0;
	pthread_mutex_lock(&a->lock);
	if (!a->timers)
		a->timers = calloc(1, sizeof(*a->timers));
	struct timer *t = a->timers ? find_locked(a, name) : NULL;
	if (!a->timers) {
		rc = HOST_EFAILED;
		err_set(&k->e, ERR_NOMEM, "out of memory");
	} else if (!t && a->timers->n >= max_timers(a)) {
		rc = HOST_EDENIED;
		err_set(&k->e, ERR_FORBIDDEN_PATH, "the actor has %zu timers, its limit "
			"(max_timers)", a->timers->n);
	} else {
		if (!t)
			t = &a->timers->v[a->timers->n++];
		*t = (struct timer){.first_due_ms = unix_ms() + delay, .period_ms = period,
				    .next_tick = 1};
		snprintf(t->name, sizeof(t->name), "%s", name);
		arm_locked(s, a, t);
	}
	json_object_set_new(k->out, "timers", snapshot_locked(a));
	if (a->timers)
		a->timers->table_seq = chain_length(a->chain) + 1;   /* this call's event */
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static enum err_code t_set(struct wasm_caller *c, void *user, const struct wasm_value *args,
			   struct wasm_value *results, struct err *err)
{
	(void)err;
	if (host_disallowed(user, GRANT_TIMING, MOD, "set-timer", results, 0))
		return ERR_OK;
	struct host_call k;
	uint8_t *name = NULL;
	int64_t delay = (int64_t)args[2].of.i64, period = (int64_t)args[3].of.i64;
	host_call_init(&k);
	json_object_set_new(k.in, "delay_ms", json_integer(delay));
	json_object_set_new(k.in, "period_ms", json_integer(period));
	k.rc = read_name(c, &k, args[0].of.i32, args[1].of.i32, &name);
	struct actor *a = user;
	pthread_mutex_lock(&a->tick_lock);    /* until the table is in the chain */
	if (!k.rc)
		k.rc = set_timer(a, &k, (const char *)name, delay, period);
	free(name);
	host_call_end(&k, a, MOD, "set-timer", results);
	pthread_mutex_unlock(&a->tick_lock);
	return ERR_OK;
}

static enum err_code t_cancel(struct wasm_caller *c, void *user, const struct wasm_value *args,
			      struct wasm_value *results, struct err *err)
{
	struct actor *a = user;
	(void)err;
	if (host_disallowed(a, GRANT_TIMING, MOD, "cancel-timer", results, 0))
		return ERR_OK;
	struct host_call k;
	uint8_t *name = NULL;
	host_call_init(&k);
	k.rc = read_name(c, &k, args[0].of.i32, args[1].of.i32, &name);
	pthread_mutex_lock(&a->tick_lock);    /* until the table is in the chain */
	if (!k.rc) {
		pthread_mutex_lock(&a->lock);
		struct timer *t = find_locked(a, (const char *)name);
		if (t)
			remove_locked(a, t);
		else
			k.rc = HOST_ENOTFOUND;
		json_object_set_new(k.out, "timers", snapshot_locked(a));
		if (a->timers)
			a->timers->table_seq = chain_length(a->chain) + 1;
		pthread_mutex_unlock(&a->lock);
		if (k.rc)
			err_set(&k.e, ERR_NOT_FOUND, "no timer '%s'", (const char *)name);
	}
	free(name);
	host_call_end(&k, a, MOD, "cancel-timer", results);
	pthread_mutex_unlock(&a->tick_lock);
	return ERR_OK;
}

const struct host_fn host_timer_fns[] = {
	{MOD, "set-timer", GRANT_TIMING, 4, 1, {WASM_I32, WASM_I32, WASM_I64, WASM_I64},
	 {WASM_I32}, t_set},
	{MOD, "cancel-timer", GRANT_TIMING, 2, 1, {WASM_I32, WASM_I32}, {WASM_I32}, t_cancel},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};

/* ---- recovery ---- */

/* A tick delivered after the snapshot: the timer's ticks up to it are done. */
struct seen_tick {
	char name[TIMER_NAME_MAX + 1];
	uint64_t tick;
};

static int interesting(const char *type)
{
	static const char *const types[] = {"recovered", MOD "/set-timer", MOD "/cancel-timer",
					    CHECKPOINT_TYPE, "message-server/received", "restarted",
					    "spawned"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return 1;
	return 0;
}

/* Event seq's data as JSON when its type is one the scan reads (else NULL,
 * unparsed: `wasm` events can be large). */
static json_t *event_json(struct actor *a, uint64_t seq, char *type, size_t type_size)
{
	struct chain_event ev = {0};
	struct err e = {0};
	type[0] = 0;
	if (chain_read(a->chain, seq, &ev, &e))
		return NULL;
	snprintf(type, type_size, "%s", ev.event_type);
	json_t *j = interesting(type) ? json_loadb((const char *)ev.data, ev.data_len, 0, NULL)
				      : NULL;
	chain_event_release(&ev);
	return j;
}

/* The tick a `received` event of kind timer holds; 0 when it is not one. */
static int tick_of(struct supervisor *s, const json_t *ev, struct seen_tick *out)
{
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	uint8_t *data = NULL;
	size_t len = 0;
	struct err e = {0};
	if (!kind || strcmp(kind, "timer") != 0 ||
	    evbytes_load(s->cfg.store, json_object_get(ev, "data"), &data, &len, &e))
		return 0;
	json_t *j = json_loadb((const char *)data, len, 0, NULL);
	free(data);
	const char *name = json_string_value(json_object_get(j, "timer"));
	int ok = name && strlen(name) <= TIMER_NAME_MAX;
	if (ok) {
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->tick = (uint64_t)json_integer_value(json_object_get(j, "tick"));
	}
	json_decref(j);
	return ok;
}

/* The newest recorded table (a new reference, NULL when there is none) and the
 * ticks delivered after it (*seen, malloc'd). */
static json_t *find_snapshot(struct supervisor *s, struct actor *a, struct seen_tick **seen,
			     size_t *nseen, uint64_t *read_out)
{
	char type[128];
	size_t cap = 0;
	*seen = NULL;
	*nseen = 0;
	*read_out = 0;
	for (uint64_t seq = chain_length(a->chain); seq > 0; seq--) {
		json_t *j = event_json(a, seq, type, sizeof(type));
		json_t *snap = NULL;
		int end = strcmp(type, "restarted") == 0 || strcmp(type, "spawned") == 0;
		++*read_out;
		if (strcmp(type, "recovered") == 0 || strcmp(type, CHECKPOINT_TYPE) == 0)
			snap = json_object_get(j, "timers");
		else if (strcmp(type, MOD "/set-timer") == 0 || strcmp(type, MOD "/cancel-timer") == 0)
			snap = json_object_get(json_object_get(j, "output"), "timers");
		if (json_is_array(snap)) {
			json_incref(snap);
			json_decref(j);
			return snap;
		}
		struct seen_tick t;
		if (!end && strcmp(type, "message-server/received") == 0 && tick_of(s, j, &t)) {
			if (*nseen == cap) {
				cap = cap ? cap * 2 : 16;
				struct seen_tick *v = realloc(*seen, cap * sizeof(*v));
				if (!v) {
					json_decref(j);
					return NULL;
				}
				*seen = v;
			}
			(*seen)[(*nseen)++] = t;
		}
		json_decref(j);
		if (end)
			break;
	}
	return NULL;
}

enum err_code timers_recover(struct supervisor *s, struct actor *a, json_t *recovered,
			     struct err *err)
{
	if (!runtime_has_timer_export(a) || !a->chain)
		return ERR_OK;      /* it cannot have timers */
	struct seen_tick *seen = NULL;
	size_t nseen = 0;
	uint64_t nread = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *snap = find_snapshot(s, a, &seen, &nseen, &nread);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long us = (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
		       (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (nread >= 256)
		log_info("timers", "timers of '%s': read %llu events back to the newest table "
			 "in %lld us", a->run.id, (unsigned long long)nread, us);
	struct timer_tab *tab = calloc(1, sizeof(*tab));
	if (!tab) {
		json_decref(snap);
		free(seen);
		return err_set(err, ERR_NOMEM, "cannot recover the timers of '%s'", a->run.id);
	}
	size_t i;
	json_t *v;
	json_array_foreach(snap, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (!name || strlen(name) > TIMER_NAME_MAX || tab->n == TIMERS_MAX)
			continue;
		struct timer *t = &tab->v[tab->n++];
		*t = (struct timer){
			.first_due_ms = json_integer_value(json_object_get(v, "first_due_ms")),
			.period_ms = json_integer_value(json_object_get(v, "period_ms")),
			.next_tick = (uint64_t)json_integer_value(json_object_get(v, "next_tick")),
		};
		snprintf(t->name, sizeof(t->name), "%s", name);
		if (t->period_ms < 0 || !t->next_tick)
			tab->n--;
	}
	json_decref(snap);
	pthread_mutex_lock(&a->lock);
	free(a->timers);
	a->timers = tab;
	for (size_t k = 0; k < nseen; k++) {
		struct timer *t = find_locked(a, seen[k].name);
		if (t && !t->period_ms)
			remove_locked(a, t);
		else if (t && seen[k].tick >= t->next_tick)
			t->next_tick = seen[k].tick + 1;
	}
	json_object_set_new(recovered, "timers", snapshot_locked(a));
	tab->table_seq = chain_length(a->chain) + 1;   /* the `recovered` event */
	pthread_mutex_unlock(&a->lock);
	free(seen);
	return ERR_OK;
}

/* Whether a table is due (a->lock held). */
static int checkpoint_due_locked(struct actor *a)
{
	uint64_t head = a->chain ? chain_length(a->chain) : 0;
	return a->timers && a->timers->n && head >= a->timers->table_seq + TIMERS_CHECKPOINT;
}

void timers_checkpoint(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->lock);     /* after every call: most have nothing to do */
	int due = checkpoint_due_locked(a);
	pthread_mutex_unlock(&a->lock);
	if (!due)
		return;
	pthread_mutex_lock(&a->tick_lock);
	pthread_mutex_lock(&a->lock);
	uint64_t head = a->chain ? chain_length(a->chain) : 0;
	json_t *snap = checkpoint_due_locked(a) ? snapshot_locked(a) : NULL;
	if (snap)
		a->timers->table_seq = head + 1;
	pthread_mutex_unlock(&a->lock);
	struct err e = {0};
	if (snap && record_event_ex(s, a, CHECKPOINT_TYPE, json_pack("{s:o}", "timers", snap), NULL,
				    NULL, 1, &e))
		log_error_limited("timers", "cannot record the timers of '%s': %s", a->run.id,
				  e.msg);
	pthread_mutex_unlock(&a->tick_lock);
}

void timers_arm_all(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; a->timers && i < a->timers->n; i++)
		arm_locked(s, a, &a->timers->v[i]);
	pthread_mutex_unlock(&a->lock);
}

size_t timers_count(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	size_t n = a->timers ? a->timers->n : 0;
	pthread_mutex_unlock(&a->lock);
	return n;
}
