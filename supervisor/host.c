/* host.c - the table of host functions and the helpers they share; see host.h.
 *
 * Recording for replay: every import is bound through a host_link, whose
 * dispatch opens a capture around the host function. host_write and
 * host_return_bytes add what they do to the guest (theater_alloc calls and
 * memory writes, in order) to the capture; host_record stashes the event
 * instead of writing it; the dispatch adds "effects" and "return" and records
 * it. Replay (replay.c) redoes exactly these effects, so what a host function
 * did to the guest is reproduced without knowing which function it was. */
#include "supervisor/host.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "src/util/crypto.h"
#include "src/util/deadline.h"
#include "src/util/log.h"
#include "supervisor/evbytes.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

#define BYTES_INLINE_MAX 4096

static const struct host_fn *const tables[] = {
	host_runtime_fns, host_message_fns, host_timing_fns, host_random_fns,
	host_store_fns, host_supervisor_fns, host_http_fns, host_env_fns,
	host_channel_fns, host_timer_fns,
};

static const struct {
	const char *type;
	unsigned grant;
} grant_names[] = {
	{"runtime", GRANT_RUNTIME}, {"message-server", GRANT_MESSAGE}, {"timing", GRANT_TIMING},
	{"random", GRANT_RANDOM}, {"store", GRANT_STORE}, {"supervisor", GRANT_SUPERVISOR},
	{"http-client", GRANT_HTTP}, {"environment", GRANT_ENV},
};

const struct host_fn *host_find(const char *module, size_t module_len, const char *name,
				size_t name_len)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct host_fn *h = tables[t]; h->name; h++)
			if (strlen(h->module) == module_len && strlen(h->name) == name_len &&
			    memcmp(h->module, module, module_len) == 0 &&
			    memcmp(h->name, name, name_len) == 0)
				return h;
	return NULL;
}

unsigned host_grant_of(const char *type)
{
	for (size_t i = 0; i < sizeof(grant_names) / sizeof(grant_names[0]); i++)
		if (strcmp(grant_names[i].type, type) == 0)
			return grant_names[i].grant;
	return 0;
}

const char *host_grant_name(unsigned grant)
{
	for (size_t i = 0; i < sizeof(grant_names) / sizeof(grant_names[0]); i++)
		if (grant_names[i].grant == grant)
			return grant_names[i].type;
	return "unknown";
}

int32_t host_read(struct wasm_caller *c, uint32_t ptr, uint32_t len, size_t max, uint8_t **out)
{
	*out = NULL;
	if (len > max)
		return HOST_ETOOBIG;
	struct wasm_memory *m = wasm_caller_memory(c);
	uint8_t *buf = malloc((size_t)len + 1);
	if (!m || !buf || wasm_memory_read(m, ptr, buf, len, NULL) != ERR_OK) {
		free(buf);
		return HOST_EINVAL;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

/* ---- the capture of effects ---- */

struct host_capture {
	int active;
	json_t *effects;              /* the array of effects */
	char type[160];               /* the stashed event, when host_record ran */
	json_t *ev;
};

struct host_binding {
	struct host_link *link;
	const struct host_fn *h;
};

struct host_link {
	struct actor *a;
	struct host_capture cap;
	struct host_park *parking;    /* made by host_wait_end in the running host call */
	size_t n, cap_n;
	struct host_binding bind[];
};

struct host_link *host_link_new(struct actor *a, size_t nimports)
{
	struct host_link *l = calloc(1, sizeof(*l) + nimports * sizeof(l->bind[0]));
	if (l) {
		l->a = a;
		l->cap_n = nimports;
	}
	return l;
}

void host_link_free(struct host_link *l)
{
	if (!l)
		return;
	json_decref(l->cap.effects);
	json_decref(l->cap.ev);
	free(l);
}

static void capture_add(struct actor *a, json_t *effect)
{
	struct host_link *l = a ? runtime_host_link(a) : NULL;
	if (l && l->cap.active && effect)
		json_array_append(l->cap.effects, effect);
	json_decref(effect);
}

/* Records a host call's event and counts its bytes against the call's chain
 * budget (the size the recording serialised, not a second serialisation). */
static void record_now(struct actor *a, const char *type, json_t *ev)
{
	struct err e = {0};
	size_t len = 0;
	if (record_event_seq(host_supervisor(a), a, type, ev, NULL, NULL, 1, NULL, &len, &e))
		log_error_limited("host", "cannot record %s of '%s': %s", type, host_actor_id(a),
				  e.msg);
	runtime_account_bytes(a, len + strlen(type));
}

/* The call's arguments as the guest passed them (i32 signed, i64 signed). */
json_t *host_args_json(const struct host_fn *h, const struct wasm_value *args)
{
	json_t *a = json_array();
	for (uint8_t i = 0; i < h->nparams; i++)
		json_array_append_new(a, json_integer(h->params[i] == WASM_I64
			? (json_int_t)(int64_t)args[i].of.i64 : (json_int_t)(int32_t)args[i].of.i32));
	return a;
}

/* Ends a capture: the stashed event gets its args, effects and return, and is
 * recorded. */
static void capture_end(struct host_link *l, const struct host_fn *h, const struct wasm_value *args,
			const struct wasm_value *results, struct host_capture *mine)
{
	if (mine->ev) {
		json_object_set_new(mine->ev, "args", host_args_json(h, args));
		json_object_set_new(mine->ev, "effects", mine->effects);
		mine->effects = NULL;
		if (h->nresults)
			json_object_set_new(mine->ev, "return", json_integer(
				h->results[0] == WASM_I64 ? (json_int_t)(int64_t)results[0].of.i64
							  : (json_int_t)(int32_t)results[0].of.i32));
		record_now(l->a, mine->type, mine->ev);
		mine->ev = NULL;
	}
	json_decref(mine->effects);
	mine->effects = NULL;
}

/* A parked host call: what its resumption needs to finish it as the host
 * function would have (the capture so far, the arguments, the wait). */
struct host_park {
	struct host_link *link;
	const struct host_fn *h;
	struct wasm_value args[HOST_MAX_PARAMS];
	struct host_capture cap;
	struct host_wait *w;          /* the waiter's reference */
	host_finish_fn finish;
	void *ctx;
	void (*ctx_free)(void *);
};

static enum err_code dispatch(struct wasm_caller *c, void *user, const struct wasm_value *args,
			      struct wasm_value *results, struct err *err)
{
	struct host_binding *b = user;
	struct host_link *l = b->link;
	if (runtime_charge_host_call(l->a)) {   /* past the call's chain budget */
		if (b->h->nresults)
			host_set_i32(&results[0], HOST_ETOOBIG);
		return ERR_OK;
	}
	struct host_capture outer = l->cap;     /* a host call made from inside theater_alloc */
	l->cap = (struct host_capture){.active = 1, .effects = json_array()};
	enum err_code rc = b->h->fn(c, l->a, args, results, err);
	struct host_capture mine = l->cap;
	l->cap = outer;
	if (rc == ERR_WASM_SUSPEND && l->parking) {
		/* parked: the event is finished and recorded when the call resumes */
		struct host_park *p = l->parking;
		l->parking = NULL;
		p->h = b->h;
		memcpy(p->args, args, b->h->nparams * sizeof(args[0]));
		p->cap = mine;
		return rc;
	}
	capture_end(l, b->h, args, results, &mine);
	return rc;
}

enum err_code host_link_bind(struct host_link *l, struct wasm_store *st, const struct host_fn *h,
			     struct wasm_func **out, struct err *err)
{
	if (l->n >= l->cap_n)
		return err_set(err, ERR_NOMEM, "more imports than the link holds");
	struct host_binding *b = &l->bind[l->n++];
	*b = (struct host_binding){l, h};
	struct wasm_functype t = {h->nparams, h->nresults, h->params, h->results};
	return wasm_func_new_host(st, &t, dispatch, b, out, err);
}

/* How a write's bytes are kept: whole (0), in the content store only (random
 * bytes: WRITE_STORED) or as a hash only (secret values: WRITE_HASH_ONLY, which
 * replay cannot reproduce and reports). */
enum { WRITE_STORED = 1, WRITE_HASH_ONLY = 2 };

static json_t *write_effect(struct actor *a, uint32_t ptr, const void *data, size_t len,
			    int secret)
{
	struct store *st = host_supervisor(a) ? supervisor_store(host_supervisor(a)) : NULL;
	struct err e = {0};
	json_t *d = NULL;
	if (!secret) {
		d = evbytes_json(st, data, len, &e);
	} else if (secret == WRITE_HASH_ONLY) {
		uint8_t dg[32];
		char hex[65];
		sha256(data, len, dg);
		hex_encode(dg, 32, hex);
		d = json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)len);
	} else {
		char hex[65], ref[160];
		if (st && store_put(st, EVBYTES_STORE_ID, data, len, hex, &e) == ERR_OK) {
			snprintf(ref, sizeof(ref), "store://%s/hash/%s", EVBYTES_STORE_ID, hex);
			d = json_pack("{s:s, s:I, s:s}", "sha256", hex, "size", (json_int_t)len,
				      "ref", ref);
		} else {           /* only the hash: replay will report it cannot go on */
			uint8_t dg[32];
			sha256(data, len, dg);
			hex_encode(dg, 32, hex);
			d = json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)len);
		}
	}
	if (e.code)
		log_warn_limited("host", "a host call's write of '%s' is not kept whole: %s",
				 host_actor_id(a), e.msg);
	return json_pack("{s:I, s:o}", "write", (json_int_t)ptr, "data", d ? d : json_null());
}

static int32_t write_guest(struct wasm_caller *c, struct actor *a, uint32_t ptr,
			   const void *data, size_t len, int secret)
{
	struct wasm_memory *m = wasm_caller_memory(c);
	if (!m || wasm_memory_write(m, ptr, data, len, NULL) != ERR_OK)
		return HOST_EINVAL;
	struct host_link *l = a ? runtime_host_link(a) : NULL;
	if (l && l->cap.active)
		capture_add(a, write_effect(a, ptr, data, len, secret));
	return 0;
}

int32_t host_write(struct wasm_caller *c, struct actor *a, uint32_t ptr, const void *data,
		   size_t len)
{
	return write_guest(c, a, ptr, data, len, 0);
}

int32_t host_write_secret(struct wasm_caller *c, struct actor *a, uint32_t ptr,
			  const void *data, size_t len)
{
	return write_guest(c, a, ptr, data, len, WRITE_STORED);
}

static int32_t return_bytes(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			    const void *data, size_t len, int secret);

int32_t host_return_bytes(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			  const void *data, size_t len)
{
	return return_bytes(c, a, out_slot, data, len, 0);
}

int32_t host_return_secret(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			   const void *data, size_t len)
{
	return return_bytes(c, a, out_slot, data, len, WRITE_HASH_ONLY);
}

static int32_t return_bytes(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			    const void *data, size_t len, int secret)
{
	if (len > INT32_MAX)
		return HOST_ETOOBIG;
	struct wasm_func *alloc = runtime_alloc_func(a);
	struct wasm_memory *m = wasm_caller_memory(c);
	uint32_t slot[2];
	if (!alloc || !m || wasm_memory_read(m, out_slot, slot, sizeof(slot), NULL))
		return HOST_EINVAL;
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	int called = wasm_func_call(wasm_caller_store(c), alloc, &arg, 1, &res, 1, NULL) == ERR_OK;
	capture_add(a, json_pack("{s:I, s:I}", "alloc", (json_int_t)len, "ptr",
				 called ? (json_int_t)res.of.i32 : (json_int_t)-1));
	if (!called || (res.of.i32 == 0 && len))
		return HOST_EFAILED;
	slot[0] = res.of.i32;
	slot[1] = (uint32_t)len;
	/* memory is looked up again: the allocator may have grown it */
	if ((len && write_guest(c, a, slot[0], data, len, secret)) ||
	    write_guest(c, a, out_slot, slot, sizeof(slot), 0))
		return HOST_EINVAL;
	return (int32_t)len;
}

static int utf8_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!k || i + k > n || (k == 1 && c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

json_t *host_bytes_json(const uint8_t *data, size_t len)
{
	if (!data)
		return json_null();
	if (len > BYTES_INLINE_MAX) {
		uint8_t d[32];
		char hex[65];
		sha256(data, len, d);
		hex_encode(d, 32, hex);
		return json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)len);
	}
	if (utf8_text(data, len)) {
		json_t *s = json_stringn((const char *)data, len);
		if (s)
			return s;
	}
	char *b64 = base64_encode(data, len);
	json_t *o = json_pack("{s:s}", "b64", b64 ? b64 : "");
	free(b64);
	return o;
}

void host_record(struct actor *a, const char *module, const char *name, json_t *input,
		 json_t *output)
{
	char type[160];
	snprintf(type, sizeof(type), "%s/%s", module, name);
	json_t *ev = json_object();
	json_object_set_new(ev, "input", input ? input : json_null());
	json_object_set_new(ev, "output", output ? output : json_null());
	struct host_link *l = runtime_host_link(a);
	if (l && l->cap.active && !l->cap.ev) {
		snprintf(l->cap.type, sizeof(l->cap.type), "%s", type);
		l->cap.ev = ev;        /* written by dispatch, with the effects */
		return;
	}
	record_now(a, type, ev);
}

static void host_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

/* Waits (w->lock held) until w is answered or ms pass; then it is done either
 * way (timed_out when the time ran out). */
static void host_cond_wait(struct host_wait *w, uint32_t ms)
{
	struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, ms);
	while (!w->done && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
		;
	if (!w->done)
		w->done = w->timed_out = 1;
}

void host_call_init(struct host_call *k)
{
	k->in = json_object();
	k->out = json_object();
	err_clear(&k->e);
	k->rc = 0;
}

void host_set_i32(struct wasm_value *r, int32_t v)
{
	*r = (struct wasm_value){.type = WASM_I32, .of.i32 = (uint32_t)v};
}

void host_call_end(struct host_call *k, struct actor *a, const char *module, const char *name,
		   struct wasm_value *results)
{
	host_set_i32(&results[0], k->rc);
	if (k->out) {
		json_object_set_new(k->out, "result", json_integer(k->rc));
		if (k->rc < 0 && k->e.msg[0])
			json_object_set_new(k->out, "error", json_string(k->e.msg));
	}
	host_record(a, module, name, k->in, k->out);
}

int32_t host_errno(enum err_code code)
{
	switch (code) {
	case ERR_OK: return 0;
	case ERR_INVALID: case ERR_BAD_ID: case ERR_BAD_JSON: case ERR_TOO_DEEP:
	case ERR_BAD_MANIFEST: case ERR_UNKNOWN_KEY: case ERR_MISSING_FIELD:
	case ERR_BAD_REFERENCE:
		return HOST_EINVAL;
	case ERR_NOT_FOUND: return HOST_ENOTFOUND;
	case ERR_FORBIDDEN_PATH: return HOST_EDENIED;
	case ERR_TIMEOUT: return HOST_ETIMEDOUT;
	case ERR_TOO_LARGE: return HOST_ETOOBIG;
	case ERR_BUSY: case ERR_TOO_MANY_ACTORS: case ERR_EXHAUSTED: return HOST_EBUSY;
	default: return HOST_EFAILED;
	}
}

struct host_wait *host_wait_new(void)
{
	struct host_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	host_cond_init(&w->cond);
	w->refs = 2;
	return w;
}

void host_wait_unref(struct host_wait *w)
{
	pthread_mutex_lock(&w->lock);
	int last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (!last)
		return;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->data);
	if (w->result && w->result_free)
		w->result_free(w->result);
	if (w->parked)
		actor_unref(host_supervisor(w->parked), w->parked);
	free(w);
}

int host_wait_claim(struct host_wait *w)
{
	pthread_mutex_lock(&w->lock);
	return !w->done;
}

void host_wait_settle(struct host_wait *w)
{
	struct actor *wake = NULL;
	if (!w->done) {
		w->done = 1;
		pthread_cond_signal(&w->cond);
		wake = w->parked;
	}
	pthread_mutex_unlock(&w->lock);
	if (wake)
		runtime_unpark(wake, w);
	host_wait_unref(w);
}

/* A parked wait's own timeout: done when nothing answered in time. */
static void wait_timeout(void *arg)
{
	struct host_wait *w = arg;
	if (host_wait_claim(w))
		w->timed_out = 1;
	host_wait_settle(w);
}

int host_can_park(struct wasm_caller *c, struct actor *a)
{
	return runtime_may_park(a) && wasm_caller_can_suspend(c);
}

void host_park_free(struct host_park *p)
{
	if (!p)
		return;
	json_decref(p->cap.effects);
	json_decref(p->cap.ev);
	if (p->ctx_free)
		p->ctx_free(p->ctx);
	host_wait_unref(p->w);
	free(p);
}

/* Parks the call on w (see host_wait_end); 0 when it cannot: w is answered
 * already, or the call may not park. */
static int park(struct wasm_caller *c, struct actor *a, struct host_wait *w, uint32_t ms,
		host_finish_fn finish, void *ctx, void (*ctx_free)(void *), struct err *err)
{
	struct host_link *l = runtime_host_link(a);
	struct supervisor *s = host_supervisor(a);
	if (!l || !host_can_park(c, a))
		return 0;
	struct host_park *p = calloc(1, sizeof(*p));
	if (!p)
		return 0;
	*p = (struct host_park){.link = l, .w = w, .finish = finish, .ctx = ctx,
				.ctx_free = ctx_free};
	pthread_mutex_lock(&w->lock);
	int parked = !w->done && wasm_caller_suspend(c, p, err) == ERR_WASM_SUSPEND;
	if (parked) {
		actor_ref(s, a);
		w->parked = a;
		w->refs++;                   /* the timer's */
		runtime_park(a, w);
	}
	pthread_mutex_unlock(&w->lock);
	if (!parked) {
		free(p);
		err_clear(err);
		return 0;
	}
	l->parking = p;
	if (supervisor_after(s, ms, wait_timeout, w) != ERR_OK)
		wait_timeout(w);          /* the server is stopping: time is up now */
	return 1;
}

enum err_code host_wait_end(struct wasm_caller *c, struct actor *a, struct host_wait *w,
			    uint32_t ms, host_finish_fn finish, void *ctx,
			    void (*ctx_free)(void *), struct wasm_value *results, struct err *err)
{
	if (park(c, a, w, ms, finish, ctx, ctx_free, err))
		return ERR_WASM_SUSPEND;
	pthread_mutex_lock(&w->lock);
	host_cond_wait(w, ms);
	pthread_mutex_unlock(&w->lock);
	finish(c, a, w, ctx, results);
	if (ctx_free)
		ctx_free(ctx);
	host_wait_unref(w);
	return ERR_OK;
}

enum err_code host_park_resume(struct wasm_caller *c, void *user, struct wasm_value *results,
			       struct err *err)
{
	struct host_park *p = user;
	struct host_link *l = p->link;
	struct host_capture outer = l->cap;
	(void)err;
	l->cap = p->cap;
	p->cap = (struct host_capture){0};
	p->finish(c, l->a, p->w, p->ctx, results);
	struct host_capture mine = l->cap;
	l->cap = outer;
	capture_end(l, p->h, p->args, results, &mine);
	return ERR_OK;
}
