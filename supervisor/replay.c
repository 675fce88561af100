/* replay.c - re-executing a run from its chain; see replay.h.
 *
 * The walk reads every event once, in seq order. Lifecycle events decide which
 * instance runs and with which state (`spawned`: the manifest, package digest
 * and initial state; `restarted`: a fresh instance from the initial state, or
 * from the last state when the event says "state": "last"; `recovered`: a
 * fresh instance with the state recorded at its "state_seq"). A `wasm` event is
 * one export call: its host calls are the host-call events recorded between
 * the previous call (or instance start) and it, which a second cursor hands out
 * in order as the actor asks for them. Other events (messages accepted, logs of
 * the server) are skipped.
 *
 * Calls run with the run's fuel limit. A call the live server cut short by its
 * wall-clock deadline (or a kill) is replayed with exactly the fuel it had
 * used, so it ends the same way instead of running to the full budget.
 *
 * Divergence is reported, never fatal to the server: a host call of another
 * type, an allocation at another address, fewer or more host calls, another
 * output, error or state hash. */
#include "supervisor/replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"
#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/evbytes.h"
#include "supervisor/durable.h"
#include "supervisor/host.h"
#include "supervisor/supervisor_int.h"

#define STATE_STORE_ID "theater-state"

struct rp;

struct rp_bind {
	struct rp *r;
	const struct host_fn *h;
};

struct rp_out {
	int status;                   /* 0 ok, 1 the actor returned an error */
	uint8_t *state;               /* the new state, or NULL when unchanged */
	size_t state_len;
	uint8_t *out;
	size_t out_len;
	uint64_t fuel;
};

struct rp {
	struct supervisor *s;
	struct actor *a;
	struct chain *chain;
	uint64_t head;
	json_t *initial;              /* spawned's initial_state (new ref) or NULL */
	struct wasm_module *module;
	struct wasm_store_limits lim;
	int need_instance;
	/* the instance */
	struct wasm_store *store;
	struct wasm_instance *inst;
	struct wasm_memory *mem;
	struct wasm_func *f_alloc, *f_reset, *f_init, *f_send, *f_request;
	struct wasm_func *f_child_exit, *f_child_error, *f_timer;
	struct rp_bind *binds;
	size_t nbinds, capbinds;
	/* the state before the next call */
	uint8_t *state;
	size_t state_len;
	/* the host calls of the current call: seqs [hc, hc_end) */
	uint64_t hc, hc_end;
	/* the answer */
	uint64_t replayed;
	uint64_t diverged_at;
	json_t *expected, *got;
	enum err_code fatal;          /* not a divergence: the replay cannot go on */
	struct err fatal_err;
};

/* ---- keeping packages ---- */

/* Keeps fetched package bytes where the spawn pipeline keeps them. */
static void keep_package(struct supervisor *s, const uint8_t *data, size_t len)
{
	char hex[65];
	struct err e = {0};
	if (s->cfg.store &&
	    store_put(s->cfg.store, DURABLE_PACKAGES_STORE, data, len, hex, &e) != ERR_OK)
		log_warn_limited("replay", "cannot keep a package of %zu bytes for replay: %s", len,
				 e.msg);
}

/* ---- small helpers ---- */

static void set_state(struct rp *r, uint8_t *bytes, size_t len)
{
	free(r->state);
	r->state = bytes;
	r->state_len = len;
}

/* Ends the replay with an error that is not a divergence: "event <seq>: ...". */
__attribute__((format(printf, 4, 5)))
static enum err_code fail(struct rp *r, enum err_code code, uint64_t seq, const char *fmt, ...)
{
	if (r->fatal)
		return code;
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->fatal = code;
	err_set(&r->fatal_err, code, "event %llu: %s", (unsigned long long)seq, what);
	return code;
}

/* Records the first divergence (steals expected and got). */
static void diverge(struct rp *r, uint64_t seq, json_t *expected, json_t *got)
{
	if (r->diverged_at || r->fatal) {
		json_decref(expected);
		json_decref(got);
		return;
	}
	r->diverged_at = seq;
	r->expected = expected ? expected : json_null();
	r->got = got ? got : json_null();
}

static int is_host_type(const char *type)
{
	const char *slash = strrchr(type, '/');
	return slash && host_find(type, (size_t)(slash - type), slash + 1, strlen(slash + 1));
}

static enum err_code read_event(struct rp *r, uint64_t seq, struct chain_event *ev,
				json_t **data_out)
{
	struct err e = {0};
	*data_out = NULL;
	enum err_code rc = chain_read(r->chain, seq, ev, &e);
	if (rc) {   /* e.msg names the chain's file: for the log, not the client */
		log_error_limited("replay", "reading event %llu: %s", (unsigned long long)seq,
				  e.msg);
		return fail(r, ERR_CHAIN_DAMAGED, seq, "cannot read the chain (%s; the server "
			    "log says more)", err_code_name(rc));
	}
	*data_out = json_loadb((const char *)ev->data, ev->data_len, JSON_DECODE_ANY, NULL);
	return ERR_OK;
}

/* Bytes as the answer shows them: text, {"b64"} or, when large, the hash. */
static json_t *bytes_view(const uint8_t *data, size_t len)
{
	return host_bytes_json(data, len);
}

/* The recorded bytes of an event member as the answer shows them. */
static json_t *recorded_view(struct rp *r, const json_t *j)
{
	uint8_t *b = NULL;
	size_t n = 0;
	struct err e = {0};
	if (!j || json_is_null(j))
		return json_null();
	if (evbytes_load(r->s->cfg.store, j, &b, &n, &e) == ERR_OK) {
		json_t *v = bytes_view(b, n);
		free(b);
		return v;
	}
	json_t *v = json_deep_copy(j);       /* only the hash was kept: compare that */
	if (json_is_object(v))
		json_object_del(v, "ref");
	return v;
}

/* ---- the replay host function ---- */

/* The next host-call event of the current call, or 0 when none is left. */
static int next_host(struct rp *r, struct chain_event *ev, json_t **data)
{
	while (r->hc < r->hc_end) {
		if (read_event(r, r->hc++, ev, data))
			return -1;
		if (is_host_type(ev->event_type))
			return 1;
		json_decref(*data);
		*data = NULL;
		chain_event_release(ev);
	}
	return 0;
}

static int apply_alloc(struct rp *r, struct wasm_caller *c, const json_t *fx, uint64_t seq,
		       const char *type)
{
	json_int_t n = json_integer_value(json_object_get(fx, "alloc"));
	json_int_t want = json_integer_value(json_object_get(fx, "ptr"));
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)n}, res;
	json_int_t got = -1;
	if (r->f_alloc &&
	    wasm_func_call(wasm_caller_store(c), r->f_alloc, &arg, 1, &res, 1, NULL) == ERR_OK)
		got = (json_int_t)res.of.i32;
	if (got == want)
		return 0;
	diverge(r, seq, json_pack("{s:s, s:I, s:I}", "event_type", type, "alloc", n, "ptr", want),
		json_pack("{s:s, s:I, s:I}", "event_type", type, "alloc", n, "ptr", got));
	return -1;
}

static int apply_write(struct rp *r, struct wasm_caller *c, const json_t *fx, uint64_t seq,
		       const char *type)
{
	uint8_t *b = NULL;
	size_t n = 0;
	struct err e = {0};
	json_int_t addr = json_integer_value(json_object_get(fx, "write"));
	if (evbytes_load(r->s->cfg.store, json_object_get(fx, "data"), &b, &n, &e)) {
		fail(r, e.code == ERR_NOT_FOUND ? ERR_CONFLICT : e.code ? e.code : ERR_INVALID, seq,
		     "the bytes a host call wrote cannot be read back: %s", e.msg);
		return -1;
	}
	struct wasm_memory *m = wasm_caller_memory(c);
	int bad = !m || wasm_memory_write(m, (uint64_t)addr, b, n, NULL) != ERR_OK;
	free(b);
	if (bad)
		diverge(r, seq, json_pack("{s:s, s:I}", "event_type", type, "write", addr),
			json_pack("{s:s, s:s}", "event_type", type, "write", "out of bounds"));
	return bad ? -1 : 0;
}

static int apply_effects(struct rp *r, struct wasm_caller *c, const json_t *data, uint64_t seq,
			 const char *type)
{
	const json_t *fx = json_object_get(data, "effects");
	if (!json_is_array(fx)) {
		fail(r, ERR_CONFLICT, seq, "%s was recorded without its effects (by an older "
		     "server); this run cannot be replayed", type);
		return -1;
	}
	for (size_t i = 0; i < json_array_size(fx); i++) {
		const json_t *f = json_array_get(fx, i);
		int rc = json_object_get(f, "alloc") ? apply_alloc(r, c, f, seq, type)
			 : json_object_get(f, "write") ? apply_write(r, c, f, seq, type)
			 : (fail(r, ERR_CONFLICT, seq, "unknown effect in %s", type), -1);
		if (rc)
			return rc;
	}
	return 0;
}

/* 0 when the actor passed the recorded arguments (or none were recorded). */
static int same_args(struct rp *r, const struct host_fn *h, const struct wasm_value *args,
		     const json_t *data, uint64_t seq, const char *type)
{
	const json_t *want = json_object_get(data, "args");
	json_t *got = host_args_json(h, args);
	if (!want || json_equal(want, got)) {
		json_decref(got);
		return 0;
	}
	diverge(r, seq, json_pack("{s:s, s:O}", "event_type", type, "args", want),
		json_pack("{s:s, s:o}", "event_type", type, "args", got));
	return -1;
}

static enum err_code rp_host(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	struct rp_bind *b = user;
	struct rp *r = b->r;
	char type[160];
	snprintf(type, sizeof(type), "%s/%s", b->h->module, b->h->name);
	struct chain_event ev = {0};
	json_t *data = NULL;
	int k = r->diverged_at || r->fatal ? -1 : next_host(r, &ev, &data);
	if (k == 0)
		diverge(r, r->hc_end, json_pack("{s:s}", "event_type", "wasm"),
			json_pack("{s:s}", "event_type", type));
	else if (k == 1 && strcmp(ev.event_type, type) != 0)
		diverge(r, ev.seq, json_pack("{s:s}", "event_type", ev.event_type),
			json_pack("{s:s}", "event_type", type));
	else if (k == 1 && !same_args(r, b->h, args, data, ev.seq, type) &&
		 !apply_effects(r, c, data, ev.seq, type) && b->h->nresults) {
		const json_t *ret = json_object_get(data, "return");
		if (!json_is_integer(ret))
			fail(r, ERR_CONFLICT, ev.seq, "%s was recorded without its result", type);
		else if (b->h->results[0] == WASM_I64)
			results[0] = (struct wasm_value){.type = WASM_I64,
				.of.i64 = (uint64_t)json_integer_value(ret)};
		else
			host_set_i32(&results[0], (int32_t)json_integer_value(ret));
	}
	json_decref(data);
	chain_event_release(&ev);
	if (r->diverged_at || r->fatal)
		return err_set(err, ERR_WASM_TRAP, "replay stopped at a divergence");
	return ERR_OK;
}

/* ---- the instance ---- */

static void drop_instance(struct rp *r)
{
	wasm_store_free(r->store);
	r->store = NULL;
	r->inst = NULL;
	free(r->binds);
	r->binds = NULL;
	r->nbinds = 0;
}

static int rp_bind_import(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct rp *r = user;
	const struct host_fn *h = d->kind == WASM_EXTERN_FUNC
		? host_find(d->module, d->module_len, d->name, d->name_len) : NULL;
	if (!h || r->nbinds >= r->capbinds)
		return -1;
	struct rp_bind *b = &r->binds[r->nbinds++];
	*b = (struct rp_bind){r, h};
	struct wasm_functype t = {h->nparams, h->nresults, h->params, h->results};
	out->kind = WASM_EXTERN_FUNC;
	return wasm_func_new_host(r->store, &t, rp_host, b, &out->of.func, NULL) ? -1 : 0;
}

static struct wasm_func *export_func(struct rp *r, const char *name)
{
	struct wasm_extern e;
	if (wasm_instance_export(r->inst, name, &e) || e.kind != WASM_EXTERN_FUNC)
		return NULL;
	return e.of.func;
}

static enum err_code instantiate(struct rp *r, uint64_t seq)
{
	struct err e = {0};
	drop_instance(r);
	r->capbinds = wasm_module_import_count(r->module);
	r->binds = calloc(r->capbinds ? r->capbinds : 1, sizeof(*r->binds));
	if (!r->binds || wasm_store_new(&r->lim, &r->store, &e) ||
	    wasm_instance_new_resolved(r->store, r->module, rp_bind_import, r, &r->inst, &e))
		return fail(r, ERR_CONFLICT, seq, "cannot instantiate the package for replay: %s",
			    e.msg);
	struct wasm_extern m;
	if (wasm_instance_export(r->inst, "memory", &m) || m.kind != WASM_EXTERN_MEMORY)
		return fail(r, ERR_CONFLICT, seq, "the package exports no memory");
	r->mem = m.of.memory;
	r->f_alloc = export_func(r, "theater_alloc");
	r->f_reset = export_func(r, "theater_reset_heap");
	r->f_init = export_func(r, "init");
	r->f_send = export_func(r, "handle-send");
	r->f_request = export_func(r, "handle-request");
	r->f_child_exit = export_func(r, "handle-child-exit");
	r->f_child_error = export_func(r, "handle-child-error");
	r->f_timer = export_func(r, "handle-timer");
	struct wasm_func *ver = export_func(r, "theater_abi_version");
	struct wasm_value v;
	if (ver)    /* the live runtime calls it once per instance: so does replay */
		wasm_func_call(r->store, ver, NULL, 0, &v, 1, NULL);
	r->need_instance = 0;
	return ERR_OK;
}

/* ---- one call, as runtime.c makes it ---- */

static enum err_code place(struct rp *r, const uint8_t *data, size_t len, uint32_t *ptr,
			   struct err *err)
{
	if (len > INT32_MAX)
		return err_set(err, ERR_TOO_LARGE, "input of %zu bytes is too large", len);
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	enum err_code rc = wasm_func_call(r->store, r->f_alloc, &arg, 1, &res, 1, err);
	if (rc)
		return rc;
	if (res.of.i32 == 0 && len)
		return err_set(err, ERR_WASM_TRAP, "theater_alloc(%zu) returned 0", len);
	*ptr = res.of.i32;
	return len ? wasm_memory_write(r->mem, *ptr, data, len, err) : ERR_OK;
}

static enum err_code read_result(struct rp *r, uint32_t addr, struct rp_out *out,
				 struct err *err)
{
	uint32_t rec[5];
	if (wasm_memory_read(r->mem, addr, rec, sizeof(rec), err) || rec[0] > 1)
		return err_set(err, ERR_INVALID, "invalid_result");
	out->status = (int)rec[0];
	if (rec[4]) {
		out->out = malloc((size_t)rec[4] + 1);
		if (!out->out || wasm_memory_read(r->mem, rec[3], out->out, rec[4], err))
			return err_set(err, ERR_INVALID, "invalid_result");
		out->out_len = rec[4];
	}
	if (out->status == 1)
		return ERR_OK;
	uint8_t *st = malloc((size_t)rec[2] + 1);
	if (!st || wasm_memory_read(r->mem, rec[1], st, rec[2], err)) {
		free(st);
		return err_set(err, ERR_INVALID, "invalid_result");
	}
	if (rec[2] == r->state_len && (!rec[2] || memcmp(st, r->state, rec[2]) == 0)) {
		free(st);
		return ERR_OK;
	}
	out->state = st;
	out->state_len = rec[2];
	return ERR_OK;
}

static enum err_code run_call(struct rp *r, struct wasm_func *f, const uint8_t *msg,
			      size_t msg_len, int has_msg, struct rp_out *out, struct err *err)
{
	uint32_t sp = 0, mp = 0;
	enum err_code rc = ERR_OK;
	if (r->f_reset)
		rc = wasm_func_call(r->store, r->f_reset, NULL, 0, NULL, 0, err);
	if (!rc)
		rc = place(r, r->state, r->state_len, &sp, err);
	if (!rc && has_msg)
		rc = place(r, msg, msg_len, &mp, err);
	if (rc)
		return rc;
	struct wasm_value args[4] = {
		{.type = WASM_I32, .of.i32 = sp}, {.type = WASM_I32, .of.i32 = (uint32_t)r->state_len},
		{.type = WASM_I32, .of.i32 = mp}, {.type = WASM_I32, .of.i32 = (uint32_t)msg_len},
	}, res;
	rc = wasm_func_call(r->store, f, args, has_msg ? 4 : 2, &res, 1, err);
	out->fuel = wasm_store_fuel_used_last(r->store);
	if (!rc)
		rc = read_result(r, res.of.i32, out, err);
	return rc;
}

/* ---- comparing a call with its record ---- */

static json_t *sha_json(const uint8_t *data, size_t len)
{
	uint8_t d[32];
	char hex[65];
	sha256(data, len, d);
	hex_encode(d, 32, hex);
	return json_string(hex);
}

/* What the record says the call did, in the shape `got` is built in. */
static json_t *expected_of(struct rp *r, const char *fn, const json_t *d)
{
	json_t *x = json_pack("{s:s}", "function", fn);
	const char *code = json_string_value(json_object_get(d, "error_code"));
	if (code)
		json_object_set_new(x, "error_code", json_string(code));
	else if (json_object_get(d, "error"))
		json_object_set_new(x, "error", recorded_view(r, json_object_get(d, "error")));
	else {
		json_object_set_new(x, "output", recorded_view(r, json_object_get(d, "output")));
		json_object_set(x, "state_sha256", json_object_get(d, "state_sha256"));
	}
	return x;
}

static json_t *got_of(struct rp *r, const char *fn, enum err_code rc, const struct rp_out *o)
{
	json_t *x = json_pack("{s:s}", "function", fn);
	if (rc) {
		json_object_set_new(x, "error_code", json_string(err_code_name(rc)));
	} else if (o->status) {
		json_object_set_new(x, "error", bytes_view(o->out, o->out_len));
	} else {
		json_object_set_new(x, "output", o->out ? bytes_view(o->out, o->out_len)
						     : json_null());
		json_object_set_new(x, "state_sha256", o->state ? sha_json(o->state, o->state_len)
							     : sha_json(r->state, r->state_len));
	}
	return x;
}

static struct wasm_func *func_named(struct rp *r, const char *fn)
{
	static const char *const names[] = {"init", "handle-send", "handle-request",
					    "handle-child-exit", "handle-child-error", "handle-timer"};
	struct wasm_func *const funcs[] = {r->f_init, r->f_send, r->f_request, r->f_child_exit,
					   r->f_child_error, r->f_timer};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], fn) == 0)
			return funcs[i];
	/* handle-channel-open, -message, -close: channel mail (host_channel.c) */
	return strncmp(fn, "handle-channel-", 15) == 0 ? export_func(r, fn) : NULL;
}

/* The limits of the call recorded by d: a call the deadline (or a kill)
 * interrupted gets exactly the fuel it had used, so it ends the same way. */
static struct wasm_store_limits limits_of_call(const struct rp *r, const json_t *d)
{
	struct wasm_store_limits lim = r->lim;
	const char *msg = json_string_value(json_object_get(d, "error"));
	if (json_object_get(d, "error_code") && msg &&
	    (strstr(msg, "deadline") || strncmp(msg, "killed:", 7) == 0)) {
		lim.fuel = (uint64_t)json_integer_value(json_object_get(d, "fuel"));
		if (!lim.fuel)
			lim.fuel = 1;
	}
	return lim;
}

/* After a call: host calls the record has and the replay did not make, then
 * the call's result against its record. */
static void compare_call(struct rp *r, uint64_t seq, const char *fn, const json_t *d,
			 enum err_code rc, const struct rp_out *o)
{
	struct chain_event ev = {0};
	json_t *hd = NULL;
	if (!r->diverged_at && !r->fatal && next_host(r, &ev, &hd) == 1)
		diverge(r, ev.seq, json_pack("{s:s}", "event_type", ev.event_type),
			json_pack("{s:s, s:s}", "event_type", "wasm", "function", fn));
	json_decref(hd);
	chain_event_release(&ev);
	if (r->diverged_at || r->fatal)
		return;
	json_t *x = expected_of(r, fn, d), *g = got_of(r, fn, rc, o);
	if (json_equal(x, g)) {
		r->replayed++;
		json_decref(x);
		json_decref(g);
	} else {
		diverge(r, seq, x, g);
	}
}

/* Replays the call recorded as `wasm` event seq; its host calls are the
 * host-call events in [hc, seq). */
static void replay_call(struct rp *r, uint64_t seq, const json_t *d)
{
	const char *fn = json_string_value(json_object_get(d, "function"));
	const json_t *in = json_object_get(d, "input");
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	struct err e = {0};
	if (!fn) {
		fail(r, ERR_CHAIN_DAMAGED, seq, "a wasm event without a function");
		return;
	}
	if (in && evbytes_load(r->s->cfg.store, in, &msg, &msg_len, &e)) {
		fail(r, ERR_CONFLICT, seq, "the call's input cannot be read back: %s", e.msg);
		return;
	}
	r->hc_end = seq;
	if (r->need_instance && instantiate(r, seq)) {
		free(msg);
		return;
	}
	struct wasm_store_limits lim = limits_of_call(r, d);
	wasm_store_set_limits(r->store, &lim);
	struct rp_out o = {0};
	struct wasm_func *f = func_named(r, fn);
	enum err_code rc = f ? run_call(r, f, msg, msg_len, in != NULL, &o, &e)
			     : err_set(&e, ERR_UNSUPPORTED, "no export '%s'", fn);
	wasm_store_set_limits(r->store, &r->lim);
	free(msg);
	compare_call(r, seq, fn, d, rc, &o);
	if (!rc && !o.status && o.state) {
		set_state(r, o.state, o.state_len);
		o.state = NULL;
	}
	free(o.state);
	free(o.out);
	r->hc = seq + 1;
}

/* ---- lifecycle events ---- */

static void state_from_json(struct rp *r, const json_t *state)
{
	char *text = state && !json_is_null(state) ? json_compact(state) : NULL;
	set_state(r, (uint8_t *)text, text ? strlen(text) : 0);
}

/* The state recorded by the `wasm` event at seq, or the closest earlier one
 * that recorded a state (following "state_seq", which `wasm`, `recovered` and
 * `restarted` events carry when they do not hold the state); 1 when found. */
static int state_at(struct rp *r, uint64_t seq)
{
	for (uint64_t k = seq; k >= 1; k--) {
		struct chain_event ev = {0};
		json_t *d = NULL;
		if (read_event(r, k, &ev, &d))
			return 0;
		int wasm = strcmp(ev.event_type, "wasm") == 0, found = 0;
		json_int_t jump = json_integer_value(json_object_get(d, "state_seq"));
		const char *ref = json_string_value(json_object_get(d, "state_ref"));
		uint8_t *b = NULL;
		size_t n = 0;
		struct err e = {0};
		if (wasm && json_object_get(d, "state")) {
			found = evbytes_load(r->s->cfg.store, json_object_get(d, "state"), &b, &n,
					     &e) == ERR_OK;
		} else if (wasm && ref && strrchr(ref, '/')) {
			found = store_get(r->s->cfg.store, STATE_STORE_ID, strrchr(ref, '/') + 1, 0,
					  &b, &n, &e) == ERR_OK;
		} else if (jump > 0 && (uint64_t)jump < k) {
			k = (uint64_t)jump + 1;     /* the event that holds this one's state */
		} else if (strcmp(ev.event_type, "spawned") == 0 ||
			   strcmp(ev.event_type, "restarted") == 0) {
			state_from_json(r, r->initial);     /* init ran from the initial state */
			json_decref(d);
			chain_event_release(&ev);
			return 1;
		}
		json_decref(d);
		chain_event_release(&ev);
		if (found) {
			set_state(r, b, n);
			return 1;
		}
	}
	return 0;
}

static enum err_code on_spawned(struct rp *r, uint64_t seq, const json_t *d);

static void on_lifecycle(struct rp *r, uint64_t seq, const char *type, const json_t *d)
{
	if (strcmp(type, "spawned") == 0) {
		on_spawned(r, seq, d);
	} else if (strcmp(type, "restarted") == 0) {
		const char *which = json_string_value(json_object_get(d, "state"));
		const json_t *from = json_object_get(d, "state_seq");
		if (json_is_integer(from)) {
			if (!state_at(r, (uint64_t)json_integer_value(from)))
				fail(r, ERR_CONFLICT, seq, "the state it restarted from cannot be found");
		} else if (!which || strcmp(which, "last") != 0) {
			state_from_json(r, r->initial);
		}
		r->need_instance = 1;
		r->hc = seq + 1;
	} else if (strcmp(type, "recovered") == 0) {
		const json_t *from = json_object_get(d, "state_seq");
		if (json_is_integer(from) && json_integer_value(from) > 0 &&
		    !state_at(r, (uint64_t)json_integer_value(from)))
			fail(r, ERR_CONFLICT, seq, "the state it recovered from cannot be found");
		r->need_instance = 1;
		r->hc = seq + 1;
	}
}

/* ---- the package ---- */

static enum err_code load_module(struct rp *r, const char *sha, const char *ref, uint64_t seq)
{
	struct supervisor *s = r->s;
	uint8_t *b = NULL;
	size_t n = 0;
	struct err e = {0};
	if (s->cfg.store && sha256_hex_valid(sha) &&
	    store_get(s->cfg.store, DURABLE_PACKAGES_STORE, sha, 0, &b, &n, &e) == ERR_OK) {
		enum err_code rc = engine_load(s->engine, b, n, sha, &r->module, &e);
		free(b);
		if (!rc)
			return ERR_OK;
	}
	pthread_mutex_lock(&r->a->lock);
	if (r->a->module && strcmp(r->a->run.package_sha256, sha) == 0)
		r->module = wasm_module_ref(r->a->module);
	pthread_mutex_unlock(&r->a->lock);
	if (r->module)
		return ERR_OK;
	struct resolved *res = NULL;
	if (ref && s->cfg.resolver &&
	    resolver_fetch(s->cfg.resolver, ref, r->a->run.manifest_ref, 0, &res, &e) == ERR_OK) {
		if (strcmp(res->sha256, sha) == 0 &&
		    engine_load(s->engine, res->data, res->len, sha, &r->module, &e) == ERR_OK)
			keep_package(s, res->data, res->len);
		resolved_free(res);
	}
	if (r->module)
		return ERR_OK;
	return fail(r, ERR_PACKAGE_UNAVAILABLE, seq, "the package (sha256 %s) is neither kept "
		    "in the store nor fetchable with the same digest", sha);
}

static void limits_for(struct rp *r, const struct manifest *m)
{
	struct supervisor *s = r->s;
	uint64_t fuel = s->limits.fuel, mem = s->limits.memory_bytes;
	if (m && m->limits.fuel && m->limits.fuel < fuel)
		fuel = m->limits.fuel;
	if (m && m->limits.memory_bytes && m->limits.memory_bytes < mem)
		mem = m->limits.memory_bytes;
	r->lim = (struct wasm_store_limits){.fuel = fuel,
					   .max_memory_pages = (uint32_t)(mem >> 16)};
	if (!r->lim.max_memory_pages)
		r->lim.max_memory_pages = 1;
}

static enum err_code on_spawned(struct rp *r, uint64_t seq, const json_t *d)
{
	const json_t *pkg = json_object_get(d, "package");
	const char *sha = json_string_value(json_object_get(pkg, "sha256"));
	struct manifest *m = NULL;
	struct err e = {0};
	if (!sha)
		return fail(r, ERR_CHAIN_DAMAGED, seq, "`spawned` names no package");
	if (manifest_from_json(json_object_get(d, "manifest"), &m, &e))
		log_warn("replay", "the manifest of '%s' does not load (%s): server limits apply",
			 r->a->run.id, e.msg);
	limits_for(r, m);
	manifest_free(m);
	json_decref(r->initial);
	const json_t *init = json_object_get(d, "initial_state");
	r->initial = init && !json_is_null(init) ? json_deep_copy(init) : NULL;
	state_from_json(r, r->initial);
	r->need_instance = 1;
	r->hc = seq + 1;
	if (r->module)
		return ERR_OK;
	return load_module(r, sha, json_string_value(json_object_get(pkg, "reference")), seq);
}

/* ---- the walk ---- */

static void walk(struct rp *r)
{
	for (uint64_t seq = 1; seq <= r->head && !r->diverged_at && !r->fatal; seq++) {
		struct chain_event ev = {0};
		json_t *d = NULL;
		if (read_event(r, seq, &ev, &d))
			break;
		if (strcmp(ev.event_type, "wasm") == 0) {
			if (!r->module)
				fail(r, ERR_CHAIN_DAMAGED, seq, "a call before `spawned`");
			else
				replay_call(r, seq, d);
		} else if (!is_host_type(ev.event_type)) {
			on_lifecycle(r, seq, ev.event_type, d);
		}
		json_decref(d);
		chain_event_release(&ev);
	}
}

static void rp_release(struct rp *r)
{
	drop_instance(r);
	wasm_module_free(r->module);
	json_decref(r->initial);
	json_decref(r->expected);
	json_decref(r->got);
	free(r->state);
}

/* ---- the job ---- */

struct replay_job {
	struct supervisor *s;
	struct actor *a;
	replay_done_fn done;
	void *user;
};

static enum err_code check_run(struct actor *a, uint64_t *head, struct err *err)
{
	enum err_code rc = ERR_OK;
	pthread_mutex_lock(&a->lock);
	if (strcmp(a->run.status, "deleted") == 0)
		rc = err_set(err, ERR_NOT_FOUND, "actor '%s' not found", a->run.id);
	else if (!a->chain || a->damaged || chain_damaged(a->chain))
		rc = err_set(err, ERR_CHAIN_DAMAGED, "the chain of '%s' is damaged; it cannot be "
			     "replayed (see GET /actors/%s/chain/verify)", a->run.id, a->run.id);
	else
		*head = chain_length(a->chain);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static void job_replay(void *arg)
{
	struct replay_job *j = arg;
	struct rp r = {.s = j->s, .a = j->a};
	struct err e = {0};
	enum err_code rc = check_run(j->a, &r.head, &e);
	if (!rc) {
		r.chain = j->a->chain;
		walk(&r);
		rc = r.fatal;
		e = r.fatal_err;
	}
	if (rc) {
		j->done(j->user, rc, &e, NULL);
	} else {
		json_t *ans = json_pack("{s:I, s:I}", "replayed", (json_int_t)r.replayed, "events",
					(json_int_t)r.head);
		json_object_set_new(ans, "diverged_at", r.diverged_at
				    ? json_integer((json_int_t)r.diverged_at) : json_null());
		json_object_set(ans, "expected", r.expected ? r.expected : json_null());
		json_object_set(ans, "got", r.got ? r.got : json_null());
		j->done(j->user, ERR_OK, NULL, ans);
		json_decref(ans);
	}
	rp_release(&r);
	actor_unref(j->s, j->a);
	free(j);
}

void supervisor_replay(struct supervisor *s, const char *id, replay_done_fn done, void *user)
{
	struct err e = {0};
	struct actor *a = reg_find(s, id);
	if (!a) {
		err_set(&e, ERR_NOT_FOUND, "actor '%s' not found", id);
		done(user, ERR_NOT_FOUND, &e, NULL);
		return;
	}
	struct replay_job *j = calloc(1, sizeof(*j));
	if (j)
		*j = (struct replay_job){s, a, done, user};
	if (!j || is_draining(s) || !s->pool || pool_submit(s->pool, job_replay, j) != ERR_OK) {
		free(j);
		actor_unref(s, a);
		err_set(&e, ERR_UNAVAILABLE, "the server is not accepting work");
		done(user, ERR_UNAVAILABLE, &e, NULL);
	}
}
