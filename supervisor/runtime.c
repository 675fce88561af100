/* runtime.c - actors at work: instantiation, the ABI calls, mailboxes, limits;
 * see runtime.h and docs/actor-abi.md.
 *
 * Threading: an actor's instance is touched only by the job that holds the
 * actor's `scheduled` flag (one at a time). Other threads reach it only to
 * interrupt it (stop, kill, a deadline), under the actor lock, through
 * wasm_store_interrupt, which is thread-safe. The runtime is freed by the job
 * (or at shutdown, when no job runs), with a->rt cleared under the lock first.
 *
 * Parking: a waiting host call (host_wait_end) suspends the call inside the
 * store; the job then ends without giving up the actor's turn to other mail
 * (rt->parked), and the wait's answer, from any thread, marks it ready and
 * schedules the job again (runtime_unpark), which resumes the call. A kill or
 * the runtime's end lets a parked call go (its token freed with the store). */
#include "supervisor/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/channel.h"
#include "supervisor/durable.h"
#include "supervisor/evbytes.h"
#include "supervisor/host.h"
#include "supervisor/record.h"

#define STATE_INLINE_MAX 1024
#define STATE_STORE_ID "theater-state"
#define BATCH 16

struct reply {
	supervisor_reply_fn fn;
	supervisor_chunk_fn chunk;    /* NULL: the client takes whole answers */
	void *user;
	int answered;                 /* under the actor lock */
	int refs;                     /* under the actor lock: mail + timer */
};

enum mail_kind { MAIL_SEND, MAIL_REQUEST, MAIL_CHILD_EXIT, MAIL_CHILD_ERROR, MAIL_TIMER,
		 MAIL_CHAN_OPEN, MAIL_CHAN_MSG, MAIL_CHAN_CLOSE, MAIL_KINDS };
#define IS_CHILD_MAIL(k) ((k) == MAIL_CHILD_EXIT || (k) == MAIL_CHILD_ERROR)
/* Notices that must arrive: they take no place in the mailbox's limits. */
#define IS_NOTICE(k) (IS_CHILD_MAIL(k) || (k) == MAIL_CHAN_CLOSE)
#define IS_CHAN_MAIL(k) ((k) == MAIL_CHAN_MSG || (k) == MAIL_CHAN_CLOSE)

struct mail {
	struct mail *next;
	enum mail_kind kind;
	uint8_t *data;
	size_t len;
	char from[37];
	struct reply *reply;          /* requests */
	uint64_t seq;                 /* its `message-server/received` event */
};

struct actor_rt {
	struct supervisor *sup;
	struct wasm_module *module;
	struct wasm_store *store;
	struct wasm_instance *inst;
	struct wasm_memory *mem;
	struct wasm_func *f_alloc, *f_reset, *f_init, *f_send, *f_request;
	struct wasm_func *f_child_exit, *f_child_error, *f_timer;
	struct wasm_func *f_chan_open, *f_chan_msg, *f_chan_close;
	struct mail *cur;             /* the mail of the call in progress (channel.h) */
	unsigned grants;
	json_t *handlers;             /* type -> config object */
	json_t *no_config;            /* {} for a granted handler without settings */
	struct host_link *link;       /* binds the imports; records host calls' effects */
	uint32_t call_timeout_ms;
	uint64_t call_id;             /* under the actor lock; unique in the process */
	int in_call;                  /* under the actor lock */
	int cut;                      /* under the actor lock: a stop for a restart
				       * interrupts the call, as a kill does */
	int shutdown;
	char shutdown_reason[128];
	/* What one export call has written to the chain through host calls (issue 12):
	 * past a budget, host calls are refused (HOST_ETOOBIG) and only counted. Touched
	 * only by the thread running the call. */
	uint64_t call_events, call_bytes, call_refused;
	int suspending;               /* under the actor lock: the server is stopping;
				       * an interrupted call is not the actor's failure */
	/* Parking (a waiting host call suspended the call; see host_wait_end). */
	int may_park;                 /* the running call is a mail call (job thread) */
	int parked;                   /* under the actor lock: the store holds a parked call */
	void *park_key;               /* under the actor lock: the wait it waits for */
	int park_ready;               /* under the actor lock: answered; resume it */
	struct mail *park_mail;       /* the parked call's mail (job thread) */
	int64_t call_t0;              /* the call's start (mono us), job thread */
	int64_t ran_us;               /* running time of the call so far, job thread */
};

struct call_out {
	int status;                   /* 0 ok, 1 the actor returned an error */
	uint8_t *state;               /* new state (malloc'd) or NULL when unchanged */
	size_t state_len;
	uint8_t *out;                 /* response or error message (malloc'd) */
	size_t out_len;
	uint64_t fuel, us;
	int interrupted;              /* cut short by wasm_store_interrupt, not its fuel */
};

static void call_out_release(struct call_out *o)
{
	free(o->state);
	free(o->out);
	memset(o, 0, sizeof(*o));
}

/* ---- instantiation ---- */

static unsigned grants_of(const struct manifest *m, json_t *handlers)
{
	unsigned g = GRANT_RUNTIME;
	for (size_t i = 0; i < m->nhandlers; i++) {
		unsigned bit = host_grant_of(m->handlers[i].type);
		g |= bit;
		if (bit && m->handlers[i].config)
			json_object_set(handlers, m->handlers[i].type, m->handlers[i].config);
		else if (bit)
			json_object_set_new(handlers, m->handlers[i].type, json_object());
	}
	return g;
}

/* Checks every import before anything is instantiated, so the error can name all
 * the missing grants at once. */
static enum err_code check_imports(struct actor_rt *rt, const char **reason, struct err *err)
{
	char missing[256] = "";
	size_t n = wasm_module_import_count(rt->module);
	for (size_t i = 0; i < n; i++) {
		struct wasm_import_desc d;
		wasm_module_import(rt->module, i, &d);
		const struct host_fn *h = d.kind == WASM_EXTERN_FUNC
			? host_find(d.module, d.module_len, d.name, d.name_len) : NULL;
		if (!h) {
			*reason = "unknown_import";
			return err_set(err, ERR_WASM_LINK, "the module imports '%.*s' '%.*s', which "
				       "theater does not provide (see docs/actor-abi.md)",
				       (int)d.module_len, d.module, (int)d.name_len, d.name);
		}
		if (!(rt->grants & h->grant) && !strstr(missing, host_grant_name(h->grant))) {
			size_t len = strlen(missing);
			snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? ", " : "",
				 host_grant_name(h->grant));
		}
	}
	if (missing[0]) {
		*reason = "ungranted_import";
		return err_set(err, ERR_WASM_LINK, "the module imports interfaces its manifest does "
			       "not grant; add [[handler]] entries of type: %s", missing);
	}
	return ERR_OK;
}

static int same_type(const struct host_fn *h, const struct wasm_functype *t)
{
	if (t->nparams != h->nparams || t->nresults != h->nresults)
		return 0;
	for (uint32_t i = 0; i < t->nparams; i++)
		if (t->params[i] != h->params[i])
			return 0;
	return t->nresults == 0 || t->results[0] == h->results[0];
}

struct bind_ctx {
	struct actor *a;
	struct actor_rt *rt;
	char bad[200];
};

int runtime_charge_host_call(struct actor *a)
{
	struct actor_rt *rt = a->rt;
	struct supervisor *s = a->sup;
	if (!rt)
		return 0;
	if (rt->call_events >= s->limits.call_events || rt->call_bytes >= s->limits.call_bytes) {
		if (rt->call_refused++ == 0)
			log_warn("runtime", "actor '%s' passed the chain budget of one call (%llu "
				 "events, %llu bytes): further host calls are refused",
				 a->run.id, (unsigned long long)rt->call_events,
				 (unsigned long long)rt->call_bytes);
		return 1;
	}
	rt->call_events++;
	return 0;
}

void runtime_account_bytes(struct actor *a, size_t bytes)
{
	if (a->rt)
		a->rt->call_bytes += bytes;
}

static int bind_import(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct bind_ctx *b = user;
	const struct host_fn *h = host_find(d->module, d->module_len, d->name, d->name_len);
	if (!h || !same_type(h, &d->func)) {
		snprintf(b->bad, sizeof(b->bad), "'%.*s' '%.*s' has the wrong type",
			 (int)d->module_len, d->module, (int)d->name_len, d->name);
		return -1;
	}
	out->kind = WASM_EXTERN_FUNC;
	return host_link_bind(b->rt->link, b->rt->store, h, &out->of.func, NULL) ? -1 : 0;
}

static struct wasm_func *export_func(struct actor_rt *rt, const char *name)
{
	struct wasm_extern e;
	if (wasm_instance_export(rt->inst, name, &e) || e.kind != WASM_EXTERN_FUNC)
		return NULL;
	return e.of.func;
}

static enum err_code find_exports(struct actor_rt *rt, const char **reason, struct err *err)
{
	struct wasm_extern e;
	*reason = "missing_export";
	if (wasm_instance_export(rt->inst, "memory", &e) || e.kind != WASM_EXTERN_MEMORY)
		return err_set(err, ERR_WASM_LINK, "the module does not export its 'memory'");
	rt->mem = e.of.memory;
	struct wasm_func *ver = export_func(rt, "theater_abi_version");
	rt->f_alloc = export_func(rt, "theater_alloc");
	rt->f_reset = export_func(rt, "theater_reset_heap");
	rt->f_init = export_func(rt, "init");
	rt->f_send = export_func(rt, "handle-send");
	rt->f_request = export_func(rt, "handle-request");
	rt->f_child_exit = export_func(rt, "handle-child-exit");
	rt->f_child_error = export_func(rt, "handle-child-error");
	rt->f_timer = export_func(rt, "handle-timer");
	rt->f_chan_open = export_func(rt, "handle-channel-open");
	rt->f_chan_msg = export_func(rt, "handle-channel-message");
	rt->f_chan_close = export_func(rt, "handle-channel-close");
	if (!ver || !rt->f_alloc || !rt->f_init)
		return err_set(err, ERR_WASM_LINK, "the module lacks a required export of the "
			       "actor abi: %s", !ver ? "theater_abi_version"
			       : !rt->f_alloc ? "theater_alloc" : "init");
	struct wasm_value v;
	if (wasm_func_call(rt->store, ver, NULL, 0, &v, 1, err) || v.type != WASM_I32)
		return err_set(err, ERR_WASM_LINK, "theater_abi_version failed or has the wrong "
			       "type");
	if (v.of.i32 != 1) {
		*reason = "unsupported_abi";
		return err_set(err, ERR_WASM_LINK, "the module speaks actor abi version %u; this "
			       "server speaks version 1", v.of.i32);
	}
	return ERR_OK;
}

static void limits_for(struct supervisor *s, const struct manifest *m,
		       struct wasm_store_limits *l, uint32_t *timeout_ms)
{
	uint64_t fuel = s->limits.fuel, mem = s->limits.memory_bytes;
	uint32_t t = s->limits.call_timeout_ms;
	/* A manifest may lower its limits, never raise them above the server's. */
	if (m->limits.fuel && m->limits.fuel < fuel)
		fuel = m->limits.fuel;
	if (m->limits.memory_bytes && m->limits.memory_bytes < mem)
		mem = m->limits.memory_bytes;
	if (m->limits.call_timeout_ms && m->limits.call_timeout_ms < t)
		t = (uint32_t)m->limits.call_timeout_ms;
	*l = (struct wasm_store_limits){.fuel = fuel, .max_memory_pages = (uint32_t)(mem >> 16)};
	if (!l->max_memory_pages)
		l->max_memory_pages = 1;
	*timeout_ms = t;
}

static void mail_free(struct mail *m);

void runtime_free(struct actor_rt *rt)
{
	if (!rt)
		return;
	if (rt->store && wasm_store_suspended(rt->store)) {   /* a parked call let go */
		host_park_free(wasm_store_suspend_token(rt->store));
		__atomic_sub_fetch(&rt->sup->parked, 1, __ATOMIC_RELAXED);
	}
	if (rt->park_mail)
		mail_free(rt->park_mail);
	wasm_store_free(rt->store);
	wasm_module_free(rt->module);
	json_decref(rt->handlers);
	json_decref(rt->no_config);
	host_link_free(rt->link);
	free(rt);
}

/* ---- calls ---- */

struct watchdog {
	struct supervisor *s;
	struct actor *a;
	uint64_t call_id;
};

static void watchdog_fire(void *arg)
{
	struct watchdog *w = arg;
	pthread_mutex_lock(&w->a->lock);
	if (w->a->rt && w->a->rt->in_call && w->a->rt->call_id == w->call_id)
		wasm_store_interrupt(w->a->rt->store);
	pthread_mutex_unlock(&w->a->lock);
	actor_unref(w->s, w->a);
	free(w);
}

static void arm_watchdog(struct supervisor *s, struct actor *a, uint64_t call_id,
			 uint32_t timeout_ms)
{
	struct watchdog *w = malloc(sizeof(*w));
	if (!w)
		return;
	*w = (struct watchdog){s, a, call_id};
	actor_ref(s, a);
	if (!s->pool || pool_submit_after(s->pool, timeout_ms, watchdog_fire, w) != ERR_OK) {
		actor_unref(s, a);
		free(w);
	}
}

/* Copies bytes into fresh guest memory from theater_alloc. */
static enum err_code place(struct actor_rt *rt, const uint8_t *data, size_t len, uint32_t *ptr,
			   struct err *err)
{
	if (len > INT32_MAX)
		return err_set(err, ERR_TOO_LARGE, "input of %zu bytes is too large", len);
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	enum err_code rc = wasm_func_call(rt->store, rt->f_alloc, &arg, 1, &res, 1, err);
	if (rc)
		return rc;
	if (res.of.i32 == 0 && len)
		return err_set(err, ERR_WASM_TRAP, "theater_alloc(%zu) returned 0 (out of memory)",
			       len);
	*ptr = res.of.i32;
	return len ? wasm_memory_write(rt->mem, *ptr, data, len, err) : ERR_OK;
}

/* Reads the result record and what it points to. */
static enum err_code read_result(struct actor_rt *rt, uint32_t addr, const uint8_t *old_state,
				 size_t old_len, struct call_out *out, struct err *err)
{
	uint32_t rec[5];
	if (wasm_memory_read(rt->mem, addr, rec, sizeof(rec), err))
		return err_set(err, ERR_INVALID_RESULT, "invalid_result: the result record at %u is out "
			       "of bounds", addr);
	if (rec[0] > 1)
		return err_set(err, ERR_INVALID_RESULT, "invalid_result: status %u is not 0 or 1", rec[0]);
	out->status = (int)rec[0];
	if (rec[4]) {
		out->out = malloc(rec[4] + 1);
		if (!out->out || wasm_memory_read(rt->mem, rec[3], out->out, rec[4], err))
			return err_set(err, ERR_INVALID_RESULT, "invalid_result: the output (%u, %u) is out "
				       "of bounds", rec[3], rec[4]);
		out->out[rec[4]] = 0;
		out->out_len = rec[4];
	}
	if (out->status == 1)
		return ERR_OK;
	uint8_t *st = malloc(rec[2] + 1);
	if (!st || wasm_memory_read(rt->mem, rec[1], st, rec[2], err)) {
		free(st);
		return err_set(err, ERR_INVALID_RESULT, "invalid_result: the state (%u, %u) is out of "
			       "bounds", rec[1], rec[2]);
	}
	if (rec[2] == old_len && (old_len == 0 || memcmp(st, old_state, old_len) == 0)) {
		free(st);      /* unchanged */
		return ERR_OK;
	}
	out->state = st;
	out->state_len = rec[2];
	return ERR_OK;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Call ids are unique in the process, not per instance: a watchdog left by a
 * call of the instance before a restart never matches a call of the new one. */
static uint64_t last_call_id;

/* Runs one stretch of a call: its start (f) or, f NULL, the resumption of its
 * parked host call. The deadline counts running time only: each stretch gets
 * what the call has left, under a new call id (an older watchdog finds
 * nothing to interrupt). ERR_WASM_SUSPEND: the call parked. */
static enum err_code run_stretch(struct supervisor *s, struct actor *a, struct wasm_func *f,
				 const struct wasm_value *args, size_t nargs, int parkable,
				 struct wasm_value *res, struct err *err)
{
	struct actor_rt *rt = a->rt;
	int64_t budget = (int64_t)rt->call_timeout_ms * 1000 - rt->ran_us;
	uint32_t left = budget <= 1000 ? 1 : (uint32_t)(budget / 1000);
	void *token = f ? NULL : wasm_store_suspend_token(rt->store);
	pthread_mutex_lock(&a->lock);
	uint64_t id = __atomic_add_fetch(&last_call_id, 1, __ATOMIC_RELAXED);
	rt->call_id = id;
	rt->in_call = 1;
	rt->parked = 0;
	rt->park_key = NULL;
	rt->park_ready = 0;
	pthread_mutex_unlock(&a->lock);
	arm_watchdog(s, a, id, left);
	rt->may_park = parkable;
	int64_t t = mono_us();
	enum err_code rc = f ? wasm_func_call(rt->store, f, args, nargs, res, 1, err)
			     : wasm_store_resume_call(rt->store, host_park_resume, token, res, 1, err);
	rt->ran_us += mono_us() - t;
	rt->may_park = 0;
	host_park_free(token);    /* the resumed one; a new park has its own */
	pthread_mutex_lock(&a->lock);
	rt->in_call = 0;
	rt->parked = rc == ERR_WASM_SUSPEND;
	pthread_mutex_unlock(&a->lock);
	if (token)
		__atomic_sub_fetch(&s->parked, 1, __ATOMIC_RELAXED);
	if (rc == ERR_WASM_SUSPEND) {
		__atomic_add_fetch(&s->parked, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->parks, 1, __ATOMIC_RELAXED);
	}
	return rc;
}

/* Starts one export call with the current state (and a message when msg is
 * not NULL). ERR_WASM_SUSPEND: it parked; call_end finishes it once resumed. */
static enum err_code call_start(struct supervisor *s, struct actor *a, struct wasm_func *f,
				const uint8_t *msg, size_t msg_len, int parkable,
				struct wasm_value *res, struct err *err)
{
	struct actor_rt *rt = a->rt;
	uint32_t sp = 0, mp = 0;
	enum err_code rc = ERR_OK;
	rt->call_t0 = mono_us();
	rt->ran_us = 0;
	if (rt->f_reset)
		rc = wasm_func_call(rt->store, rt->f_reset, NULL, 0, NULL, 0, err);
	if (!rc)
		rc = place(rt, a->state, a->state_len, &sp, err);
	if (!rc && msg)
		rc = place(rt, msg, msg_len, &mp, err);
	if (rc)
		return rc;
	struct wasm_value args[4] = {
		{.type = WASM_I32, .of.i32 = sp}, {.type = WASM_I32, .of.i32 = (uint32_t)a->state_len},
		{.type = WASM_I32, .of.i32 = mp}, {.type = WASM_I32, .of.i32 = (uint32_t)msg_len},
	};
	rt->call_events = rt->call_bytes = rt->call_refused = 0;
	return run_stretch(s, a, f, args, msg ? 4 : 2, parkable, res, err);
}

/* The outcome of a call that returned (rc is not ERR_WASM_SUSPEND). */
static enum err_code call_end(struct actor *a, enum err_code rc, const struct wasm_value *res,
			      struct call_out *out, struct err *err)
{
	struct actor_rt *rt = a->rt;
	out->fuel = wasm_store_fuel_used_last(rt->store);
	out->interrupted = rc == ERR_WASM_EXHAUSTED && strstr(err->msg, "interrupted");
	if (out->interrupted)
		err_set(err, ERR_WASM_EXHAUSTED, "deadline: the call ran longer than %u ms "
			"(or the actor was killed)", rt->call_timeout_ms);
	if (!rc)
		rc = read_result(rt, res->of.i32, a->state, a->state_len, out, err);
	out->us = (uint64_t)(mono_us() - rt->call_t0);
	return rc;
}

/* A call that may not park (init): a waiting host call blocks its worker. */
static enum err_code call(struct supervisor *s, struct actor *a, struct wasm_func *f,
			  const uint8_t *msg, size_t msg_len, struct call_out *out,
			  struct err *err)
{
	struct wasm_value res;
	enum err_code rc = call_start(s, a, f, msg, msg_len, 0, &res, err);
	return call_end(a, rc, &res, out, err);
}

/* The state as it goes into an event: inline when small, else by hash (and stored
 * in the content store when it changed). */
static void state_json(struct supervisor *s, json_t *ev, const struct call_out *o,
		       const struct actor *a, char hex[65])
{
	const uint8_t *st = o->state;
	size_t len = o->state_len;
	if (o->state) {            /* only a new state is hashed; the old one's is kept */
		uint8_t d[32];
		sha256(st, len, d);
		hex_encode(d, 32, hex);
	} else {
		memcpy(hex, a->state_sha, 65);
	}
	json_object_set_new(ev, "state_sha256", json_string(hex));
	json_object_set_new(ev, "state_changed", json_boolean(o->state != NULL));
	if (!o->state)
		return;
	if (len <= STATE_INLINE_MAX) {
		json_object_set_new(ev, "state", host_bytes_json(st, len));
		return;
	}
	char h[65], ref[128];
	struct err e = {0};
	if (s->cfg.store && store_put(s->cfg.store, STATE_STORE_ID, st, len, h, &e) == ERR_OK) {
		snprintf(ref, sizeof(ref), "store://%s/hash/%s", STATE_STORE_ID, h);
		json_object_set_new(ev, "state_ref", json_string(ref));
	}
}

/* Records the `wasm` event of a call and applies its new state. */
static void record_call(struct supervisor *s, struct actor *a, const char *fn,
			const uint8_t *msg, size_t msg_len, uint64_t mail, struct call_out *o,
			enum err_code rc, const struct err *err)
{
	char sha[65] = "";
	json_t *ev = json_pack("{s:s, s:I, s:I}", "function", fn, "fuel", (json_int_t)o->fuel,
			       "duration_us", (json_int_t)o->us);
	if (mail)
		json_object_set_new(ev, "mail", json_integer((json_int_t)mail));
	if (msg)
		json_object_set_new(ev, "input", evbytes_json(s->cfg.store, msg, msg_len, NULL));
	if (a->rt && a->rt->call_refused)
		json_object_set_new(ev, "host_calls_refused", json_integer(
			(json_int_t)a->rt->call_refused));
	if (rc) {
		json_object_set_new(ev, "error", json_string(err->msg));
		json_object_set_new(ev, "error_code", json_string(err_code_name(rc)));
	} else if (o->status) {
		json_object_set_new(ev, "error", evbytes_json(s->cfg.store, o->out, o->out_len, NULL));
	} else {
		state_json(s, ev, o, a, sha);
		if (o->out)
			json_object_set_new(ev, "output", evbytes_json(s->cfg.store, o->out, o->out_len,
								     NULL));
	}
	pthread_mutex_lock(&a->lock);
	a->metrics.calls++;
	a->metrics.fuel += o->fuel;
	a->metrics.busy_us += o->us;
	if (rc || o->status)
		a->metrics.failures++;
	if (!rc && !o->status && o->state) {
		free(a->state);
		a->state = o->state;
		a->state_len = o->state_len;
		memcpy(a->state_sha, sha, sizeof(a->state_sha));
		o->state = NULL;
	}
	pthread_mutex_unlock(&a->lock);
	struct err e = {0};
	if (record_event_ex(s, a, "wasm", ev, NULL, NULL, 1, &e))
		log_error_limited("runtime", "cannot record a call of '%s': %s", a->run.id, e.msg);
}

/* The unchanged state as a "new" one, so that its event carries the bytes. */
static void force_state(struct actor *a, struct call_out *o)
{
	pthread_mutex_lock(&a->lock);
	o->state = malloc(a->state_len + 1);
	if (o->state) {
		if (a->state_len)
			memcpy(o->state, a->state, a->state_len);
		o->state_len = a->state_len;
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- start and stop ---- */

/* The state as bytes: its compact JSON (nothing when there is none). */
static void state_bytes_of(const json_t *state, uint8_t **bytes, size_t *len)
{
	*bytes = NULL;
	*len = 0;
	char *text = state ? json_compact(state) : NULL;
	if (text) {
		*bytes = (uint8_t *)text;
		*len = strlen(text);
	}
}

/* Instantiates the module for a (checking grants and exports) and installs
 * `state` (taken) as its state; a->rt is set. Takes module. */
static enum err_code instantiate(struct supervisor *s, struct actor *a, const struct manifest *m,
				 struct wasm_module *module, uint8_t *state, size_t state_len,
				 const char **reason_out, struct err *err)
{
	struct actor_rt *rt = calloc(1, sizeof(*rt));
	enum err_code rc;
	*reason_out = "invalid_package";
	if (!rt) {
		wasm_module_free(module);
		free(state);
		return err_set(err, ERR_NOMEM, "cannot allocate the actor runtime");
	}
	rt->sup = s;
	rt->module = module;
	rt->handlers = json_object();
	rt->no_config = json_object();
	rt->grants = grants_of(m, rt->handlers);
	struct wasm_store_limits lim;
	limits_for(s, m, &lim, &rt->call_timeout_ms);
	if ((rc = check_imports(rt, reason_out, err)) ||
	    (rc = wasm_store_new(&lim, &rt->store, err)))
		goto fail;
	if (!(rt->link = host_link_new(a, wasm_module_import_count(module)))) {
		rc = err_set(err, ERR_NOMEM, "cannot allocate the import bindings");
		goto fail;
	}
	struct bind_ctx b = {.a = a, .rt = rt};
	if ((rc = wasm_instance_new_resolved(rt->store, module, bind_import, &b, &rt->inst, err))) {
		*reason_out = rc == ERR_WASM_LINK ? "unlinkable" : "init_failed";
		if (b.bad[0])
			err_set(err, rc, "import %s", b.bad);
		goto fail;
	}
	if ((rc = find_exports(rt, reason_out, err)))
		goto fail;
	actor_state_take(a, state, state_len);
	pthread_mutex_lock(&a->lock);
	a->rt = rt;
	a->active_ms = now_ms();
	__atomic_add_fetch(&s->loaded, 1, __ATOMIC_RELAXED);
	a->scheduled = 1;         /* the start holds the actor's turn: see runtime_release */
	a->metrics.mailbox_capacity = s->limits.mailbox;
	pthread_mutex_unlock(&a->lock);
	return ERR_OK;
fail:
	free(state);
	pthread_mutex_lock(&a->lock);
	a->state_loaded = 0;      /* the state it had is still in the chain */
	pthread_mutex_unlock(&a->lock);
	runtime_free(rt);
	return rc;
}

enum err_code runtime_start(struct supervisor *s, struct actor *a, const struct manifest *m,
			    struct wasm_module *module, const json_t *state,
			    const char **reason_out, struct err *err)
{
	uint8_t *st;
	size_t st_len;
	state_bytes_of(state, &st, &st_len);
	enum err_code rc = instantiate(s, a, m, module, st, st_len, reason_out, err);
	if (rc)
		return rc;
	struct call_out o = {0};
	rc = call(s, a, a->rt->f_init, NULL, 0, &o, err);
	if (!rc && !o.status && !o.state)
		force_state(a, &o);   /* init's event always holds the whole state */
	record_call(s, a, "init", NULL, 0, 0, &o, rc, err);
	if (!rc && o.status) {
		rc = err_set(err, ERR_INVALID, "init returned an error: %.*s", (int)o.out_len,
			     o.out ? (const char *)o.out : "");
	}
	call_out_release(&o);
	if (rc) {
		*reason_out = rc == ERR_WASM_EXHAUSTED ? "init_exhausted" : "init_failed";
		runtime_stop(s, a);       /* frees rt, answers mail queued during init */
		runtime_release(s, a);
	}
	return rc;
}

enum err_code runtime_resume(struct supervisor *s, struct actor *a, const struct manifest *m,
			     struct wasm_module *module, const char **reason_out, struct err *err)
{
	pthread_mutex_lock(&a->lock);
	uint8_t *st = a->state;
	size_t len = a->state_len;
	a->state = NULL;
	a->state_len = 0;
	pthread_mutex_unlock(&a->lock);
	return instantiate(s, a, m, module, st, len, reason_out, err);
}

static void schedule_locked(struct supervisor *s, struct actor *a);

void runtime_release(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	a->scheduled = 0;
	if (a->rt && (a->mail_head || a->stop_requested) && !is_draining(s))
		schedule_locked(s, a);    /* mail or a stop that came while starting; at
					   * start-up runtime_kick does it once all are back */
	pthread_mutex_unlock(&a->lock);
}

static void answer(struct supervisor *s, struct actor *a, struct reply *r, enum err_code rc,
		   const struct err *err, const uint8_t *data, size_t len)
{
	if (!r)
		return;
	pthread_mutex_lock(&a->lock);
	int go = !r->answered;
	r->answered = 1;
	int last = --r->refs == 0;
	supervisor_reply_fn fn = r->fn;   /* read under the lock: once it is released, */
	void *user = r->user;             /* the other owner may free r (TSan found it) */
	pthread_mutex_unlock(&a->lock);
	if (go)
		fn(user, rc, err, data, len);
	if (last)
		free(r);
	(void)s;
}

static void mail_free(struct mail *m)
{
	free(m->data);
	free(m);
}

/* Records that queued mail will never be processed: one outcome for each. */
static void record_dropped(struct supervisor *s, struct actor *a, const struct mail *list,
			   const char *reason)
{
	json_t *seqs = json_array();
	for (const struct mail *m = list; m; m = m->next)
		if (m->seq)
			json_array_append_new(seqs, json_integer((json_int_t)m->seq));
	if (json_array_size(seqs) == 0) {
		json_decref(seqs);
		return;
	}
	json_t *ev = json_pack("{s:o, s:s}", "mails", seqs, "reason", reason);
	struct err e = {0};
	if (record_event_ex(s, a, "message-server/dropped", ev, NULL, NULL, 1, &e))
		log_error_limited("runtime", "cannot record dropped mail of '%s': %s", a->run.id,
				  e.msg);
}

/* Takes the instance and the queued mail away from a (lock held inside). */
static struct mail *take_all(struct actor *a, struct actor_rt **rt_out)
{
	pthread_mutex_lock(&a->lock);
	*rt_out = a->rt;
	if (a->rt)
		__atomic_sub_fetch(&a->sup->loaded, 1, __ATOMIC_RELAXED);
	a->rt = NULL;
	struct mail *list = a->mail_head;
	if (*rt_out && (*rt_out)->park_mail) {    /* the parked call's mail comes first */
		(*rt_out)->park_mail->next = list;
		list = (*rt_out)->park_mail;
		(*rt_out)->park_mail = NULL;
	}
	a->mail_head = a->mail_tail = NULL;
	a->mail_n = 0;
	a->mail_bytes = 0;
	pthread_mutex_unlock(&a->lock);
	return list;
}

static void answer_all(struct supervisor *s, struct actor *a, struct mail *list,
		       const struct err *e)
{
	while (list) {
		struct mail *m = list;
		list = m->next;
		answer(s, a, m->reply, e->code, e, NULL, 0);
		mail_free(m);
	}
}

void runtime_stop(struct supervisor *s, struct actor *a)
{
	struct actor_rt *rt;
	struct mail *list = take_all(a, &rt);
	record_dropped(s, a, list, "actor_ended");
	struct err e;
	err_set(&e, ERR_CONFLICT, "actor '%s' stopped before it answered", a->run.id);
	answer_all(s, a, list, &e);
	channel_drop_all(s, a, &e);
	timers_drop_all(a);
	runtime_free(rt);
}

void runtime_suspend(struct supervisor *s, struct actor *a)
{
	struct actor_rt *rt;
	struct mail *list = take_all(a, &rt);
	/* The mail stays open in the chain: the next start delivers it. */
	struct err e;
	err_set(&e, ERR_UNAVAILABLE, "the server is stopping; the request will be processed "
		"when it starts again");
	answer_all(s, a, list, &e);
	err_set(&e, ERR_UNAVAILABLE, "the server is stopping; the actor deferred this request "
		"and cannot answer it after the restart");
	channel_drop_all(s, a, &e);
	timers_drop_all(a);
	runtime_free(rt);
}

void runtime_interrupt_for_shutdown(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	if (a->rt) {
		a->rt->suspending = 1;   /* a parked call is not resumed: its mail runs again */
		if (a->rt->in_call)
			wasm_store_interrupt(a->rt->store);
	}
	pthread_mutex_unlock(&a->lock);
}

int runtime_idle_locked(struct supervisor *s, struct actor *a, int64_t before_ms)
{
	return a->rt && !a->scheduled && !a->mail_n && !a->mail_reserved && !a->stop_requested &&
	       !a->terminal_pending && !a->releasing && !a->rt->parked && !a->rt->in_call &&
	       a->active_ms < before_ms && strcmp(a->run.status, "running") == 0 &&
	       !is_stopping(s);
}

int runtime_busy(struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	int busy = a->rt && (a->rt->in_call || a->rt->parked);
	pthread_mutex_unlock(&a->lock);
	return busy;
}

/* ---- the mailbox job ---- */

static const char *fail_reason(enum err_code rc, const struct err *err)
{
	if (rc == ERR_WASM_TRAP)
		return "trap";
	if (rc == ERR_WASM_EXHAUSTED)
		return strstr(err->msg, "deadline") ? "deadline"
		       : strstr(err->msg, "stack") ? "stack_exhausted" : "fuel_exhausted";
	return "invalid_result";
}

static const char *const call_names[] = {"handle-send", "handle-request", "handle-child-exit",
					 "handle-child-error", "handle-timer",
					 "handle-channel-open", "handle-channel-message",
					 "handle-channel-close"};

/* What a finished mail call leads to: its event, its answer, a failure. */
static void conclude(struct supervisor *s, struct actor *a, struct mail *m, enum err_code rc,
		     const struct wasm_value *res, struct err *e)
{
	struct actor_rt *rt = a->rt;
	struct call_out o = {0};
	rc = call_end(a, rc, res, &o, e);
	pthread_mutex_lock(&a->lock);
	int suspending = rt->suspending;
	int killed = o.interrupted && (a->stop_requested == 2 || rt->cut);
	int for_restart = a->stop_requested != 2;
	rt->cur = NULL;
	pthread_mutex_unlock(&a->lock);
	if (killed)   /* interrupted by POST /kill or a restart, not by its deadline */
		err_set(e, ERR_WASM_EXHAUSTED, "killed: the call was interrupted by %s",
			for_restart ? "a restart" : "a kill");
	if (rc == ERR_WASM_EXHAUSTED && suspending) {
		/* Cut short by the server's stop: not the actor's failure. Nothing is
		 * recorded for the call, so its mail stays open and runs again. */
		err_set(e, ERR_UNAVAILABLE, "the server is stopping; the request will be "
			"processed when it starts again");
		answer(s, a, m->reply, ERR_UNAVAILABLE, e, NULL, 0);
		call_out_release(&o);
		return;
	}
	record_call(s, a, call_names[m->kind], m->data, m->len, m->seq, &o, rc, e);
	timers_checkpoint(s, a);
	if (m->reply || channel_has_answers(a))
		record_sync(s, a);    /* what the answer reports is on disk before it goes */
	channel_flush(s, a);      /* deferred requests this call answered */
	if (!rc && !o.status && m->kind == MAIL_CHAN_OPEN &&
	    channel_accept(s, a, m->data, m->len, e)) {
		answer(s, a, m->reply, e->code, e, NULL, 0);   /* accepted past the limit */
		call_out_release(&o);
		return;
	}
	if (rc && killed) {
		/* Not a failure: the job ends the run with `killed` next (finish), as a
		 * kill between calls does; the call's event above keeps replay exact. */
		answer(s, a, m->reply, ERR_CONFLICT, e, NULL, 0);
	} else if (rc) {
		/* The failure is recorded before the caller hears of it, so whoever gets
		 * the answer sees the run failed. The policy may restart it. */
		spawn_fail(s, a, fail_reason(rc, e), e);
		answer(s, a, m->reply, rc, e, NULL, 0);
		runtime_stop(s, a);
	} else if (o.status) {
		err_set(e, ERR_ACTOR_ERROR, "the actor returned an error: %.*s", (int)o.out_len,
			o.out ? (const char *)o.out : "");
		answer(s, a, m->reply, ERR_ACTOR_ERROR, e, o.out, o.out_len);
	} else {
		answer(s, a, m->reply, ERR_OK, NULL, o.out ? o.out : (const uint8_t *)"",
		       o.out_len);
	}
	call_out_release(&o);
}

/* Runs the call for m. Returns 1 when it parked (the runtime keeps m until it
 * resumes), else 0 (m is the caller's to free). */
static int process(struct supervisor *s, struct actor *a, struct mail *m)
{
	struct actor_rt *rt = a->rt;
	struct wasm_func *const funcs[] = {rt->f_send, rt->f_request, rt->f_child_exit,
					   rt->f_child_error, rt->f_timer, rt->f_chan_open,
					   rt->f_chan_msg, rt->f_chan_close};
	struct wasm_func *f = funcs[m->kind];
	struct err e = {0};
	struct mail one = *m;
	one.next = NULL;
	if (IS_CHAN_MAIL(m->kind) && !channel_mail_check(a, m->kind == MAIL_CHAN_CLOSE, m->data,
							  m->len)) {
		record_dropped(s, a, &one, "channel_closed");   /* it closed the channel itself */
		return 0;
	}
	if (!f)
		record_dropped(s, a, &one, "not_exported");
	if (!f && m->kind >= MAIL_CHILD_EXIT && m->kind != MAIL_CHAN_OPEN)
		return 0;    /* a parent need not listen to its children, nor anyone to ticks */
	if (!f) {
		err_set(&e, ERR_UNSUPPORTED, "the actor does not export '%s'", call_names[m->kind]);
		answer(s, a, m->reply, ERR_UNSUPPORTED, &e, NULL, 0);
		return 0;
	}
	struct wasm_value res;
	pthread_mutex_lock(&a->lock);
	rt->cur = m;              /* also while parked: its chunks may still be relayed */
	pthread_mutex_unlock(&a->lock);
	enum err_code rc = call_start(s, a, f, m->data, m->len, 1, &res, &e);
	if (rc == ERR_WASM_SUSPEND) {
		rt->park_mail = m;
		return 1;
	}
	conclude(s, a, m, rc, &res, &e);
	return 0;
}

/* Resumes the parked call once its wait is over; 1 when it parked again. */
static int resume(struct supervisor *s, struct actor *a)
{
	struct actor_rt *rt = a->rt;
	struct mail *m = rt->park_mail;
	struct wasm_value res;
	struct err e = {0};
	enum err_code rc = run_stretch(s, a, NULL, NULL, 0, 1, &res, &e);
	if (rc == ERR_WASM_SUSPEND)
		return 1;
	rt->park_mail = NULL;
	conclude(s, a, m, rc, &res, &e);
	mail_free(m);
	return 0;
}

static void job_run(void *arg);

/* Schedules the actor's job unless it is queued or running; a->lock held. */
static void schedule_locked(struct supervisor *s, struct actor *a)
{
	if (a->scheduled || !s->pool)
		return;
	a->scheduled = 1;
	actor_ref(s, a);       /* the job's; the registry lock is a leaf lock */
	if (pool_submit(s->pool, job_run, a) != ERR_OK) {
		a->scheduled = 0;
		actor_unref(s, a);
	}
}

/* The run ends on request: stop/kill (terminal event) or runtime/shutdown. */
static void finish(struct supervisor *s, struct actor *a, int kind, const char *why)
{
	pthread_mutex_lock(&a->lock);
	int go = !a->terminal_pending && supervisor_status_live(a->run.status);
	a->terminal_pending = 1;
	pthread_mutex_unlock(&a->lock);
	if (go && kind == 3) {
		struct err e = {0};
		record_event(s, a, "stopped", lifecycle_data("shutdown", why), "stopped",
			     "shutdown", &e);
	} else if (go) {
		stop_record(s, a, kind == 2);
	}
	runtime_stop(s, a);
}

/* After a call: the actor asked to end its run (runtime/shutdown). */
static int shut_down(struct supervisor *s, struct actor *a)
{
	struct actor_rt *rt = a->rt;
	if (!rt || !rt->shutdown)
		return 0;
	finish(s, a, 3, rt->shutdown_reason);
	pthread_mutex_lock(&a->lock);
	a->scheduled = 0;
	pthread_mutex_unlock(&a->lock);
	return 1;
}

/* The actor's job: runs up to BATCH calls, then yields the worker. A parked
 * call holds the actor's turn (no other mail runs) but not the worker: the job
 * ends and the wait's answer schedules it again (runtime_unpark). A kill ends a
 * parked call at once; a stop lets it finish first. */
static void job_run(void *arg)
{
	struct actor *a = arg;
	struct supervisor *s = a->sup;
	for (int n = 0; n < BATCH; n++) {
		pthread_mutex_lock(&a->lock);
		int stop = a->rt ? a->stop_requested : 0;
		int parked = a->rt && a->rt->parked && stop < 2 && !a->rt->cut;
		int go_on = parked && a->rt->park_ready && !a->rt->suspending;
		struct mail *m = a->rt && !parked && !stop && !a->rt->suspending && !is_stopping(s)
				 ? a->mail_head : NULL;
		if (m) {
			a->active_ms = now_ms();
			a->mail_head = m->next;
			if (!a->mail_head)
				a->mail_tail = NULL;
			a->mail_n--;
			a->mail_bytes -= m->len;
		}
		if ((parked && !go_on) || (!parked && !m && !stop))
			a->scheduled = 0;
		pthread_mutex_unlock(&a->lock);
		if (parked && !go_on)
			break;       /* waits; the answer schedules the job again */
		if (go_on) {
			if (!resume(s, a) && shut_down(s, a))
				break;
			continue;
		}
		if (stop) {
			finish(s, a, stop, NULL);
			pthread_mutex_lock(&a->lock);
			a->scheduled = 0;
			pthread_mutex_unlock(&a->lock);
			break;
		}
		if (!m)
			break;
		if (process(s, a, m))
			continue;    /* parked: the loop sees whether it is answered already */
		mail_free(m);
		if (shut_down(s, a))
			break;
	}
	pthread_mutex_lock(&a->lock);
	int again = a->scheduled;
	pthread_mutex_unlock(&a->lock);
	if (again && s->pool && pool_submit(s->pool, job_run, a) == ERR_OK)
		return;         /* keeps the reference for the next batch */
	if (again) {
		pthread_mutex_lock(&a->lock);
		a->scheduled = 0;
		pthread_mutex_unlock(&a->lock);
	}
	actor_unref(s, a);
}

/* ---- the public side: send, request, state, metrics ---- */

/* ERR_CONFLICT unless a is running and not stopping, ERR_BUSY when its mailbox
 * is full (a->lock held). */
static enum err_code can_take_mail(struct supervisor *s, struct actor *a, size_t len,
				   struct err *err)
{
	if (!a->rt || strcmp(a->run.status, "running") != 0 || a->stop_requested)
		return err_set(err, ERR_CONFLICT, "actor '%s' is %s, not running", a->run.id,
			       a->stop_requested && !strcmp(a->run.status, "running")
			       ? (a->stop_requested == 2 ? "being killed" : "stopping")
			       : a->run.status);
	if (a->mail_n + a->mail_reserved >= s->limits.mailbox)
		return err_set(err, ERR_BUSY, "the mailbox of actor '%s' is full (%zu messages)",
			       a->run.id, a->mail_n);
	if (len > s->limits.mailbox_bytes - a->mail_bytes)
		return err_set(err, ERR_BUSY, "the mailbox of actor '%s' is full (%zu bytes "
			       "queued, limit %zu)", a->run.id, a->mail_bytes,
			       s->limits.mailbox_bytes);
	return ERR_OK;
}

/* Locks a->lock with a awake: a lazy actor is recovered first (a failure ends
 * its run, so it takes no mail), and a release in progress is waited for. */
static void lock_awake(struct supervisor *s, struct actor *a)
{
	for (int tries = 0;; tries++) {
		struct err we = {0};
		durable_wake(s, a, &we);
		pthread_mutex_lock(&a->lock);
		int wait = (a->releasing || __atomic_load_n(&a->lazy, __ATOMIC_ACQUIRE)) &&
			   tries < 100 && !is_stopping(s);
		if (!wait)
			return;
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_lock(&a->wake_lock);     /* the release ends; then wake it */
		pthread_mutex_unlock(&a->wake_lock);
	}
}

static const char *const mail_kind_names[] = {"send", "request", "child-exit", "child-error",
					       "timer", "channel-open", "channel-message",
					       "channel-close"};

/* Puts m at the end of a's mailbox (a->lock held). */
static void mail_append_locked(struct actor *a, struct mail *m)
{
	if (a->mail_tail)
		a->mail_tail->next = m;
	else
		a->mail_head = m;
	a->mail_tail = m;
	a->mail_n++;
	a->mail_bytes += m->len;
}

/* The end of accepting mail once its `received` event is durable (or failed
 * with rc): gives back the reserved place and queues the mail, or gives it its
 * `dropped` outcome when the actor ended meanwhile. Frees m on failure; a's
 * reference stays the caller's. */
static enum err_code accept_finish(struct supervisor *s, struct actor *a, struct mail *m,
				   enum err_code rc, struct err *err)
{
	pthread_mutex_lock(&a->lock);
	a->mail_reserved--;
	int gone = !rc && !a->rt;
	if (!rc && !gone) {
		mail_append_locked(a, m);
		if (m->kind == MAIL_REQUEST)
			a->metrics.requests++;
		else if (m->kind == MAIL_SEND)
			a->metrics.messages++;
		schedule_locked(s, a);
	}
	pthread_mutex_unlock(&a->lock);
	if (gone) {
		record_dropped(s, a, m, "actor_ended");
		rc = err_set(err, ERR_CONFLICT, "actor '%s' ended before it could take the message",
			     a->run.id);
	}
	if (rc) {
		m->reply = NULL;
		mail_free(m);
	}
	return rc;
}

/* Mail from the API waiting for the committer's sync (accept_mail with done). */
struct accepting {
	struct actor *a;              /* a reference */
	struct mail *m;
	supervisor_done_fn done;
	void *user;
};

static void accept_synced(struct supervisor *s, void *arg, enum err_code rc,
			  const struct err *why)
{
	struct accepting *x = arg;
	struct err e = {0};
	if (rc)
		e = *why;
	rc = accept_finish(s, x->a, x->m, rc, &e);
	actor_unref(s, x->a);
	x->done(x->user, rc, rc ? &e : NULL);
	free(x);
}

/* Accepts mail for actor `to`: checks it can take it (reserving a place), records
 * its `message-server/received` event (durable before this returns: it is what
 * recovery delivers), then queues it. Mail recorded but no longer deliverable
 * (the actor stopped meanwhile) gets its `dropped` outcome. *out: a reference.
 * With `done` (mail from the API): returns once the event is written, *out
 * NULL; the committer makes it durable together with other writers' events,
 * then queues it and calls done (group commit). */
static enum err_code accept_mail_ex(struct supervisor *s, const char *to, const char *from,
				    enum mail_kind kind, const void *data, size_t len,
				    struct reply *r, struct actor **out, supervisor_done_fn done,
				    void *user, struct err *err)
{
	if (len > s->limits.max_message)
		return err_set(err, ERR_TOO_LARGE, "the message is %zu bytes; the limit is %zu",
			       len, s->limits.max_message);
	struct actor *a = reg_find(s, to);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", to);
	struct mail *m = calloc(1, sizeof(*m));
	uint8_t *copy = malloc(len ? len : 1);
	enum err_code rc = ERR_OK;
	if (!m || !copy) {
		rc = err_set(err, ERR_NOMEM, "cannot queue a message");
		goto fail;
	}
	memcpy(copy, data, len);
	*m = (struct mail){.kind = kind, .data = copy, .len = len, .reply = r};
	copy = NULL;
	if (from)
		snprintf(m->from, sizeof(m->from), "%s", from);
	lock_awake(s, a);
	rc = IS_NOTICE(kind) ? (a->rt ? ERR_OK : ERR_CONFLICT)
				     : can_take_mail(s, a, len, err);
	if (!rc)
		a->mail_reserved++;
	pthread_mutex_unlock(&a->lock);
	if (rc)
		goto fail;
	struct err se = {0};
	json_t *ev = json_pack("{s:s, s:s, s:I}", "from",
			       from ? from : kind == MAIL_TIMER ? "timer"
			       : IS_NOTICE(kind) ? "supervisor" : "api", "kind",
			       mail_kind_names[kind], "size", (json_int_t)len);
	json_object_set_new(ev, "data", evbytes_json(s->cfg.store, data, len, &se));
	if (se.code) {
		/* What recovery delivers is kept whole (evbytes.h): bytes the content
		 * store cannot keep (a full disk) would leave only their hash in the
		 * chain, so the message is refused rather than acknowledged: a failure
		 * of this server's storage whatever the store's own code says. */
		json_decref(ev);
		rc = err_set(err, ERR_IO, "cannot keep the message's %zu bytes: %s", len, se.msg);
		accept_finish(s, a, m, rc, err);
		m = NULL;
		goto fail;
	}
	/* From another actor: written now, durable before the sender's own events
	 * are (record_send_dep). From the API: durable before it is acknowledged,
	 * synced outside the actor's record lock so that concurrent senders share
	 * one fdatasync (group commit); the flusher indexes and reports it. */
	struct actor *sender = from ? reg_find(s, from) : NULL;
	int api = !from && kind < MAIL_CHILD_EXIT;
	rc = record_event_seq(s, a, "message-server/received", ev, NULL, NULL, sender || api,
			      &m->seq, NULL, err);
	if (!rc && sender && a->chain)
		record_send_dep(s, sender, a, chain_written(a->chain));
	actor_unref(s, sender);
	if (!rc && api && done) {
		struct accepting *x = malloc(sizeof(*x));
		if (x) {
			*x = (struct accepting){a, m, done, user};
			*out = NULL;
			flusher_commit(s, a, a->chain ? chain_written(a->chain) : 0,
				       accept_synced, x);
			return ERR_OK;
		}
	}
	if (!rc && api && a->chain)
		rc = chain_sync_upto(a->chain, chain_written(a->chain), err);
	if (!rc && api)               /* cluster mode: and acknowledged by the stream */
		rc = supervisor_replica_ack(s, a->run.id, err);
	rc = accept_finish(s, a, m, rc, err);
	m = NULL;
	if (rc)
		goto fail;
	if (done) {
		actor_unref(s, a);
		*out = NULL;
		done(user, ERR_OK, NULL);
		return ERR_OK;
	}
	*out = a;
	return ERR_OK;
fail:
	if (m)
		m->reply = NULL;
	if (m)
		mail_free(m);
	free(copy);
	actor_unref(s, a);
	return rc;
}

static enum err_code accept_mail(struct supervisor *s, const char *to, const char *from,
				 enum mail_kind kind, const void *data, size_t len,
				 struct reply *r, struct actor **out, struct err *err)
{
	return accept_mail_ex(s, to, from, kind, data, len, r, out, NULL, NULL, err);
}

enum err_code supervisor_send_remote(struct supervisor *s, const char *to, const char *from,
				     const void *data, size_t len, supervisor_done_fn done,
				     void *user, struct err *err)
{
	const struct supervisor_remote *rm = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
	if (!rm || !rm->send)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", to);
	return rm->send(rm->user, to, from, data, len, done, user, err);
}

enum err_code supervisor_send_async(struct supervisor *s, const char *to, const void *data,
				    size_t len, supervisor_done_fn done, void *user,
				    struct err *err)
{
	struct actor *a = NULL;
	enum err_code rc = accept_mail_ex(s, to, NULL, MAIL_SEND, data, len, NULL, &a, done,
					  user, err);
	if (rc == ERR_NOT_FOUND && supervisor_remote_hooks(s))   /* another node's actor */
		rc = supervisor_send_remote(s, to, NULL, data, len, done, user, err);
	return rc;
}

enum err_code supervisor_send(struct supervisor *s, const char *to, const char *from,
			      const void *data, size_t len, struct err *err)
{
	struct actor *a = NULL;
	enum err_code rc = accept_mail(s, to, from, MAIL_SEND, data, len, NULL, &a, err);
	if (rc)
		return rc;
	actor_unref(s, a);
	return ERR_OK;
}

struct req_timer {
	struct supervisor *s;
	struct actor *a;
	struct reply *r;
	uint32_t ms;
};

static void request_timeout(void *arg)
{
	struct req_timer *t = arg;
	struct err e;
	if (is_stopping(t->s))     /* the pool runs every timer at once when it stops */
		err_set(&e, ERR_UNAVAILABLE, "the server is stopping; the request will be "
			"processed when it starts again");
	else
		err_set(&e, ERR_TIMEOUT, "the actor did not answer within %u ms", t->ms);
	answer(t->s, t->a, t->r, e.code, &e, NULL, 0);
	actor_unref(t->s, t->a);
	free(t);
}

enum err_code supervisor_request(struct supervisor *s, const char *to, const char *from,
				 const void *data, size_t len, uint32_t timeout_ms,
				 supervisor_reply_fn reply, void *user, struct err *err)
{
	return supervisor_request_stream(s, to, from, data, len, timeout_ms, reply, NULL, user,
					 err);
}

static enum err_code request_kind(struct supervisor *s, enum mail_kind kind, const char *to,
				  const char *from, const void *data, size_t len,
				  uint32_t timeout_ms, supervisor_reply_fn reply,
				  supervisor_chunk_fn chunk, void *user, struct err *err);

enum err_code supervisor_request_stream(struct supervisor *s, const char *to, const char *from,
					const void *data, size_t len, uint32_t timeout_ms,
					supervisor_reply_fn reply, supervisor_chunk_fn chunk,
					void *user, struct err *err)
{
	return request_kind(s, MAIL_REQUEST, to, from, data, len, timeout_ms, reply, chunk, user,
			    err);
}

enum err_code runtime_channel_open(struct supervisor *s, const char *to, const char *from,
				   const void *data, size_t len, uint32_t timeout_ms,
				   supervisor_reply_fn reply, void *user, struct err *err)
{
	return request_kind(s, MAIL_CHAN_OPEN, to, from, data, len, timeout_ms, reply, NULL, user,
			    err);
}

enum err_code runtime_channel_deliver(struct supervisor *s, const char *to, const char *from,
				      int close, const void *data, size_t len, struct err *err)
{
	struct actor *a = NULL;
	enum err_code rc = accept_mail(s, to, from, close ? MAIL_CHAN_CLOSE : MAIL_CHAN_MSG, data,
				       len, NULL, &a, err);
	if (!rc)
		actor_unref(s, a);
	return rc;
}

static enum err_code request_kind(struct supervisor *s, enum mail_kind kind, const char *to,
				  const char *from, const void *data, size_t len,
				  uint32_t timeout_ms, supervisor_reply_fn reply,
				  supervisor_chunk_fn chunk, void *user, struct err *err)
{
	struct reply *r = calloc(1, sizeof(*r));
	struct req_timer *t = calloc(1, sizeof(*t));
	if (!r || !t) {
		free(r);
		free(t);
		return err_set(err, ERR_NOMEM, "cannot queue a request");
	}
	*r = (struct reply){.fn = reply, .chunk = chunk, .user = user, .refs = 2};
	struct actor *a = NULL;
	enum err_code rc = accept_mail(s, to, from, kind, data, len, r, &a, err);
	if (rc) {
		free(r);
		free(t);
		const struct supervisor_remote *rm = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
		if (rc == ERR_NOT_FOUND && rm && rm->request && kind == MAIL_REQUEST)   /* cluster: another node's */
			return rm->request(rm->user, to, from, data, len, timeout_ms, reply, user,
					   err);
		return rc;
	}
	*t = (struct req_timer){s, a, r, timeout_ms ? timeout_ms : 30000};
	if (pool_submit_after(s->pool, t->ms, request_timeout, t) != ERR_OK)
		request_timeout(t);   /* shutting down: answer now */
	return ERR_OK;
}

enum err_code supervisor_state(struct supervisor *s, const char *id, uint8_t **data_out,
			       size_t *len_out, struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	struct err le = {0};
	pthread_mutex_lock(&a->lock);
	int have = a->state_loaded || a->rt;
	pthread_mutex_unlock(&a->lock);
	if (!have && durable_load_state(s, a, &le) != ERR_OK && le.code != ERR_NOT_FOUND) {
		actor_unref(s, a);
		return err_set(err, le.code, "%s", le.msg);
	}
	pthread_mutex_lock(&a->lock);
	size_t n = a->state_len;
	uint8_t *copy = malloc(n + 1);
	if (copy) {
		if (n)
			memcpy(copy, a->state, n);
		copy[n] = 0;
	}
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	if (!copy)
		return err_set(err, ERR_NOMEM, "cannot copy the state");
	*data_out = copy;
	*len_out = n;
	return ERR_OK;
}

enum err_code supervisor_metrics(struct supervisor *s, const char *id,
				 struct supervisor_metrics *out, struct err *err)
{
	struct actor *a = reg_find(s, id);
	if (!a)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", id);
	pthread_mutex_lock(&a->lock);
	*out = a->metrics;
	out->mailbox_depth = a->mail_n;
	out->mailbox_capacity = s->limits.mailbox;
	if (a->rt)
		out->memory_bytes = wasm_store_footprint(a->rt->store);
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	return ERR_OK;
}

/* Stop or kill of a running actor with an instance: the actor's own job records
 * the terminal event between calls; a kill also interrupts the call in progress,
 * and so does a stop for a restart (RUNTIME_STOP_CUT: the run ends `stopped`). */
int runtime_request_stop(struct supervisor *s, struct actor *a, int kill)
{
	if (!a->rt)
		return 0;
	if (a->stop_requested < (kill == RUNTIME_KILL ? 2 : 1))
		a->stop_requested = kill == RUNTIME_KILL ? 2 : 1;
	if (kill == RUNTIME_STOP_CUT)
		a->rt->cut = 1;
	if (kill && a->rt->in_call)
		wasm_store_interrupt(a->rt->store);
	schedule_locked(s, a);
	return 1;
}

/* ---- for host functions ---- */

int runtime_may_park(struct actor *a)
{
	return a->rt && a->rt->may_park;
}

void runtime_park(struct actor *a, void *key)
{
	pthread_mutex_lock(&a->lock);
	a->rt->park_key = key;
	a->rt->park_ready = 0;
	pthread_mutex_unlock(&a->lock);
}

void runtime_unpark(struct actor *a, void *key)
{
	struct supervisor *s = a->sup;
	pthread_mutex_lock(&a->lock);
	if (a->rt && a->rt->park_key == key && !a->rt->park_ready) {
		a->rt->park_ready = 1;
		if (!a->rt->suspending)
			schedule_locked(s, a);
	}
	pthread_mutex_unlock(&a->lock);
}

enum err_code supervisor_after(struct supervisor *s, uint32_t ms, void (*fn)(void *), void *arg)
{
	return s->pool ? pool_submit_after(s->pool, ms, fn, arg) : ERR_UNAVAILABLE;
}

const char *host_actor_id(struct actor *a)
{
	return a->run.id;
}

struct supervisor *host_supervisor(struct actor *a)
{
	return a->sup;
}

const json_t *host_handler_config(struct actor *a, unsigned grant)
{
	const json_t *c = a->rt ? json_object_get(a->rt->handlers, host_grant_name(grant)) : NULL;
	return c ? c : a->rt ? a->rt->no_config : NULL;
}

unsigned host_actor_grants(struct actor *a)
{
	return a->rt ? a->rt->grants : 0;
}

void supervisor_parked_calls(struct supervisor *s, uint64_t *now, uint64_t *total)
{
	*now = __atomic_load_n(&s->parked, __ATOMIC_RELAXED);
	*total = __atomic_load_n(&s->parks, __ATOMIC_RELAXED);
}

struct fetcher *supervisor_fetcher(struct supervisor *s)
{
	return s->fetcher;
}

int supervisor_http_allow_private(struct supervisor *s)
{
	return s->cfg.http_allow_private;
}

void host_request_shutdown(struct actor *a, const char *reason)
{
	if (!a->rt)
		return;
	a->rt->shutdown = 1;
	snprintf(a->rt->shutdown_reason, sizeof(a->rt->shutdown_reason), "%s",
		 reason ? reason : "");
}

struct host_link *runtime_host_link(struct actor *a)
{
	return a->rt ? a->rt->link : NULL;
}

struct wasm_func *runtime_alloc_func(struct actor *a)
{
	return a->rt ? a->rt->f_alloc : NULL;
}

enum err_code runtime_notify_parent(struct supervisor *s, const char *parent, int error,
				    const char *info, size_t len)
{
	struct actor *a = reg_find(s, parent);
	if (!a)
		return ERR_NOT_FOUND;
	lock_awake(s, a);
	int listens = a->rt && (error ? a->rt->f_child_error : a->rt->f_child_exit) &&
		      !a->stop_requested;
	pthread_mutex_unlock(&a->lock);
	actor_unref(s, a);
	if (!listens)
		return ERR_CONFLICT;
	struct err e = {0};
	enum err_code rc = accept_mail(s, parent, NULL, error ? MAIL_CHILD_ERROR : MAIL_CHILD_EXIT,
				       info, len, NULL, &a, &e);
	if (!rc)
		actor_unref(s, a);
	return rc;
}

enum err_code runtime_redeliver(struct supervisor *s, struct actor *a, uint64_t seq,
				const json_t *received, struct err *err)
{
	const char *kind = json_string_value(json_object_get(received, "kind"));
	const char *from = json_string_value(json_object_get(received, "from"));
	enum mail_kind k = MAIL_SEND;
	for (int i = 0; kind && i < MAIL_KINDS; i++)
		if (strcmp(kind, mail_kind_names[i]) == 0)
			k = (enum mail_kind)i;
	struct mail *m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, ERR_NOMEM, "cannot redeliver mail %llu", (unsigned long long)seq);
	enum err_code rc = evbytes_load(s->cfg.store, json_object_get(received, "data"), &m->data,
					&m->len, err);
	if (rc) {
		free(m);
		/* Nothing to deliver: its outcome says so, once. */
		struct mail one = {.seq = seq};
		record_dropped(s, a, &one, "data_lost");
		log_error_limited("runtime", "mail %llu of '%s' cannot be delivered again: %s",
				  (unsigned long long)seq, a->run.id, err->msg);
		return ERR_OK;
	}
	if (!m->data)
		m->data = calloc(1, 1);
	m->kind = k;
	m->seq = seq;
	if (from && strcmp(from, "api") != 0 && strcmp(from, "supervisor") != 0 &&
	    strcmp(from, "timer") != 0)
		snprintf(m->from, sizeof(m->from), "%s", from);
	pthread_mutex_lock(&a->lock);
	mail_append_locked(a, m);
	if (!is_draining(s))
		schedule_locked(s, a);   /* at start-up: runtime_kick, once all are back */
	pthread_mutex_unlock(&a->lock);
	return ERR_OK;
}

void runtime_kick(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	if (a->rt && a->mail_head)
		schedule_locked(s, a);
	pthread_mutex_unlock(&a->lock);
}

/* ---- deferred and streamed answers, timer ticks (channel.h) ---- */

struct reply *runtime_current_reply(struct actor *a, uint64_t *id_out)
{
	struct mail *m = a->rt ? a->rt->cur : NULL;
	if (!m || m->kind != MAIL_REQUEST || !m->reply)
		return NULL;
	*id_out = m->seq;
	return m->reply;
}

uint64_t runtime_current_request(struct actor *a)
{
	struct mail *m = a->rt ? a->rt->cur : NULL;
	return m && m->kind == MAIL_REQUEST ? m->seq : 0;
}

struct reply *runtime_defer_current(struct actor *a, uint64_t *id_out)
{
	struct reply *r = runtime_current_reply(a, id_out);
	if (r)
		a->rt->cur->reply = NULL;   /* the mail's reference goes to the caller */
	return r;
}

int runtime_reply_send(struct supervisor *s, struct actor *a, struct reply *r, enum err_code rc,
		       const struct err *err, const uint8_t *data, size_t len)
{
	int waiting = runtime_reply_waiting(a, r);
	answer(s, a, r, rc, err, data, len);
	return waiting;
}

int runtime_reply_chunk_locked(struct reply *r, const uint8_t *data, size_t len)
{
	/* Under the actor lock: r cannot be answered (nor freed) meanwhile, so a
	 * chunk never reaches a client after its answer began. */
	if (r->answered || !r->chunk)
		return 0;
	r->chunk(r->user, data, len);
	return 1;
}

int runtime_reply_waiting_locked(struct reply *r)
{
	return !r->answered;
}

int runtime_reply_waiting(struct actor *a, struct reply *r)
{
	pthread_mutex_lock(&a->lock);
	int w = !r->answered;
	pthread_mutex_unlock(&a->lock);
	return w;
}

enum err_code runtime_deliver_tick(struct supervisor *s, const char *actor_id, const void *data,
				   size_t len, struct err *err)
{
	struct actor *a = NULL;
	enum err_code rc = accept_mail(s, actor_id, NULL, MAIL_TIMER, data, len, NULL, &a, err);
	if (!rc)
		actor_unref(s, a);
	return rc;
}

int runtime_has_timer_export(struct actor *a)
{
	return a->rt && a->rt->f_timer;
}
