/* host.h - private to the supervisor layer: the host functions of the actor ABI
 * (docs/actor-abi.md) and what they may use of the running actor.
 *
 * Each interface lives in its own file (host_runtime.c, host_timing.c, ...) and
 * exports a table of `struct host_fn`, ending with a NULL name. host.c joins the
 * tables; the runtime binds a module's imports through them, checks the grants
 * of the manifest, and gives every host function its actor as `user`.
 *
 * Rules for a host function:
 *  - it runs on the worker thread that runs the actor's call; it may block only
 *    for bounded time (a request's timeout, a bounded sleep, a fetch with limits);
 *  - every pointer and length from the guest goes through host_read/host_write
 *    (bounds-checked); a bad one returns HOST_EINVAL, it never traps the host;
 *  - it records exactly one chain event with host_record (input and output);
 *  - it returns its result in results[0] (i32 or i64) as the ABI says.
 */
#ifndef THEATER_SUPERVISOR_HOST_H
#define THEATER_SUPERVISOR_HOST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util/json.h"
#include "src/wasm/wasm.h"

struct actor;
struct supervisor;

/* Interfaces a manifest grants with [[handler]] type = ... */
enum host_grant {
	GRANT_RUNTIME = 1 << 0,      /* "runtime" (always granted: log, self-id, shutdown) */
	GRANT_MESSAGE = 1 << 1,      /* "message-server" */
	GRANT_TIMING = 1 << 2,       /* "timing" */
	GRANT_RANDOM = 1 << 3,       /* "random" */
	GRANT_STORE = 1 << 4,        /* "store" */
	GRANT_SUPERVISOR = 1 << 5,   /* "supervisor" */
	GRANT_HTTP = 1 << 6,         /* "http-client" */
	GRANT_ENV = 1 << 7,          /* "environment" (granted secrets, host_env.c) */
};

/* Error results of host functions (docs/actor-abi.md). */
enum {
	HOST_EINVAL = -1, HOST_ENOTFOUND = -2, HOST_EDENIED = -3, HOST_ETIMEDOUT = -4,
	HOST_ETOOBIG = -5, HOST_EFAILED = -6, HOST_EBUSY = -7,
};

#define HOST_MAX_PARAMS 8

struct host_fn {
	const char *module;          /* "theater:simple/runtime" */
	const char *name;            /* "log" */
	unsigned grant;              /* enum host_grant */
	uint8_t nparams, nresults;
	enum wasm_valtype params[HOST_MAX_PARAMS];
	enum wasm_valtype results[1];
	wasm_host_fn fn;             /* user = struct actor * */
};

extern const struct host_fn host_runtime_fns[];
extern const struct host_fn host_message_fns[];
extern const struct host_fn host_timing_fns[];
extern const struct host_fn host_random_fns[];
extern const struct host_fn host_store_fns[];
extern const struct host_fn host_supervisor_fns[];
extern const struct host_fn host_http_fns[];
extern const struct host_fn host_env_fns[];
extern const struct host_fn host_channel_fns[];   /* host_channel.c */
extern const struct host_fn host_timer_fns[];     /* timers.c */

/* Finds the host function for an import; NULL if there is none. */
const struct host_fn *host_find(const char *module, size_t module_len, const char *name,
				size_t name_len);
/* The grant bit of a [[handler]] type name; 0 if it is not one this server has. */
unsigned host_grant_of(const char *handler_type);
/* The handler type name of a grant bit. */
const char *host_grant_name(unsigned grant);

/* ---- what host functions may use ---- */

/* A malloc'd copy of guest bytes [ptr, ptr+len) (NUL-terminated for convenience);
 * ERR_WASM_TRAP-free: returns HOST_EINVAL when out of bounds, HOST_ETOOBIG when
 * len > max. */
int32_t host_read(struct wasm_caller *c, uint32_t ptr, uint32_t len, size_t max,
		  uint8_t **out);
/* Copies bytes into the guest; HOST_EINVAL when out of bounds. The write is an
 * effect of the host call (recorded in its event for replay). */
int32_t host_write(struct wasm_caller *c, struct actor *a, uint32_t ptr, const void *data,
		   size_t len);
/* The same for bytes that must not appear in the chain (random bytes): the event
 * keeps their hash and a reference into the content store, where replay reads
 * them. */
int32_t host_write_secret(struct wasm_caller *c, struct actor *a, uint32_t ptr,
			  const void *data, size_t len);
/* Returns variable-size bytes: asks the guest's theater_alloc for len bytes,
 * copies them there and writes (ptr, len) as two u32 at out_slot. Returns len, or
 * HOST_EINVAL / HOST_ETOOBIG / HOST_EFAILED. */
int32_t host_return_bytes(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			  const void *data, size_t len);
/* The same for a secret's value (environment/get-var): its write effect keeps
 * only the hash, so neither the chain nor the content store holds it; replay of
 * such a call answers that the bytes were not kept. */
int32_t host_return_secret(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			   const void *data, size_t len);
/* Records one "<module>/<name>" chain event of the actor with {"input": ...,
 * "output": ...} (both stolen; NULL means null). Inside a host call bound through
 * a host_link, the event is written when the host function returns, with two
 * more members for replay: "args" (the arguments, as numbers), "effects" (what
 * the host did to the guest, in order:
 * {"alloc": n, "ptr": p} for a theater_alloc call, p = -1 when it failed;
 * {"write": addr, "data": <evbytes>} for a memory write) and "return" (the i32
 * or i64 result, absent for a function without one). */
void host_record(struct actor *a, const char *module, const char *name, json_t *input,
		 json_t *output);
/* JSON for bytes in events: a string when they are UTF-8 text, else {"b64": ...};
 * bytes over 4 KiB become {"sha256": ..., "size": ...}. */
json_t *host_bytes_json(const uint8_t *data, size_t len);

/* The actor's id, supervisor and the [[handler]] config object of a grant (a
 * borrowed JSON object, {} when the handler has no settings). */
const char *host_actor_id(struct actor *a);
struct supervisor *host_supervisor(struct actor *a);
const json_t *host_handler_config(struct actor *a, unsigned grant);
/* One host call's record: what came in, extra output members, the error and
 * the i32 result. host_call_end records "<module>/<name>" with {"result": rc}
 * (and "error" when rc < 0) added to out, and sets results[0]. */
struct host_call {
	json_t *in;
	json_t *out;
	struct err e;
	int32_t rc;
};
void host_call_init(struct host_call *k);
void host_call_end(struct host_call *k, struct actor *a, const char *module, const char *name,
		   struct wasm_value *results);
void host_set_i32(struct wasm_value *r, int32_t v);
/* The ABI's error result for a supervisor or core error code. */
int32_t host_errno(enum err_code code);

/* ---- the binding of imports (runtime.c) ---- */

/* Every import of an actor's instance is bound through one link, which runs the
 * host function and records its event with the effects (see host_record). The
 * link belongs to the actor's runtime; it is used by the job that runs the
 * actor. */
struct host_link;
struct host_link *host_link_new(struct actor *a, size_t nimports);    /* NULL on OOM */
void host_link_free(struct host_link *l);
/* Creates the host function for import h in store st; ERR_NOMEM beyond nimports. */
enum err_code host_link_bind(struct host_link *l, struct wasm_store *st, const struct host_fn *h,
			     struct wasm_func **out, struct err *err);
/* The arguments of a call to h as recorded in its event ("args"): a new array. */
json_t *host_args_json(const struct host_fn *h, const struct wasm_value *args);
/* runtime.c: the actor's link (NULL without an instance). */
struct host_link *runtime_host_link(struct actor *a);

/* A one-shot rendezvous between a host function that waits and whatever answers
 * it (a supervisor callback, a fetch, a timer). References: the waiter's and the
 * answering side's (host_wait_new gives two); a parked wait's timer takes one
 * more. The answering side answers once, through host_wait_claim and
 * host_wait_settle (a wait that timed out is done and must not change). */
struct host_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs;
	int done;
	int timed_out;               /* done because the wait's time ran out */
	enum err_code rc;
	struct err e;
	uint8_t *data;               /* a request's response (freed with the wait) */
	size_t len;
	int have_run;                /* a spawn: a run was created, with this id and status */
	char id[37];
	char status[16];
	void *result;                /* the answer of a fetch (struct fetch_response *) */
	void (*result_free)(void *);
	struct actor *parked;        /* the actor to wake when answered (a reference) */
};
struct host_wait *host_wait_new(void);                 /* NULL on OOM */
void host_wait_unref(struct host_wait *w);
/* The answering side: host_wait_claim locks w and says whether it is still
 * unanswered (1: fill its fields now); host_wait_settle then marks it answered
 * if it was, unlocks, wakes the waiter (blocked or parked) and drops the
 * answering side's reference. Every claim is followed by one settle. */
int host_wait_claim(struct host_wait *w);
void host_wait_settle(struct host_wait *w);

/* host_message.c, shared with the channels of host_channel.c. The reply
 * callback of a parked request (user: a host_wait; an actor's refusal keeps its
 * bytes in w->data too). Reading (id_ptr, id_len, msg_ptr, msg_len) from args:
 * the target id and the message (malloc'd, *msg), recorded in `in` as "to" and
 * "message"; a negative host result and e on failure. */
void host_message_reply(void *user, enum err_code rc, const struct err *err,
			const uint8_t *data, size_t len);
int32_t host_message_args(struct wasm_caller *c, const struct wasm_value *args, char id[37],
			  uint8_t **msg, json_t *in, struct err *e);

/* ---- waiting host calls park (docs/actor-abi.md "Waiting host calls") ----
 *
 * A host function that must wait splits in two: the start (read the guest's
 * arguments, start the operation that will answer w) and `finish`, which runs
 * once the wait ended (answered, or w->timed_out) and sets results[0] and
 * records the call, as the host function would have. host_wait_end joins
 * them: when the call may park (an actor's mail call, the outermost host
 * call), the actor's WebAssembly execution is suspended and the worker goes on
 * with other actors; when w is answered or `ms` pass, the actor's job resumes
 * it and runs finish (with the guest's memory and allocator at hand). When it
 * may not park (init, a host call made inside theater_alloc), it waits on the
 * worker as before and runs finish at once. It takes the waiter's reference to
 * w and ctx (freed with ctx_free after finish, or when the parked call is
 * abandoned because the actor stopped). Returns what the host function
 * returns. */
typedef void (*host_finish_fn)(struct wasm_caller *c, struct actor *a, struct host_wait *w,
			       void *ctx, struct wasm_value *results);
enum err_code host_wait_end(struct wasm_caller *c, struct actor *a, struct host_wait *w,
			    uint32_t ms, host_finish_fn finish, void *ctx,
			    void (*ctx_free)(void *), struct wasm_value *results, struct err *err);
/* 1 when a waiting host call made now would park (not block its worker). */
int host_can_park(struct wasm_caller *c, struct actor *a);
/* The parked call of a runtime (the engine's suspend token): its resumption
 * runs the host function's finish and records its event; host_park_free lets
 * go of what it holds (after a resumption, or when the call is abandoned). */
struct host_park;
enum err_code host_park_resume(struct wasm_caller *c, void *park, struct wasm_value *results,
			       struct err *err);
void host_park_free(struct host_park *p);

/* The grants (enum host_grant bits) of the actor's manifest. */
unsigned host_actor_grants(struct actor *a);
/* Asks the runtime to stop the actor after the current call (runtime/shutdown). */
void host_request_shutdown(struct actor *a, const char *reason);

/* ---- permission_policy (host_policy.c) ----
 * The manifest's permission_policy.<capability> as the reference spells it:
 * absent or "inherit" adds nothing to the handler's own settings; "disallow"
 * refuses every call of the capability (-3, recorded); "restrict" narrows the
 * handler's settings with its config (the stricter of the two wins). */
enum host_policy { HOST_POLICY_INHERIT, HOST_POLICY_DISALLOW, HOST_POLICY_RESTRICT };
/* The capability's policy; *config_out (may be NULL) is the borrowed restrict
 * config, or NULL (absent, or another kind). */
enum host_policy host_policy(struct actor *a, unsigned grant, const json_t **config_out);
/* When the capability of grant is disallowed: records "<module>/<name>" with
 * the error, sets results[0] (i32, or i64 when i64 is set) to -3 and returns 1.
 * Returns 0 otherwise. */
int host_disallowed(struct actor *a, unsigned grant, const char *module, const char *name,
		    struct wasm_value *results, int i64);
/* An integer of the restrict config, or def when it has none. */
int64_t host_policy_int(struct actor *a, unsigned grant, const char *key, int64_t def);
/* A list of the restrict config (borrowed array), or NULL when it has none. */
const json_t *host_policy_list(struct actor *a, unsigned grant, const char *key);
/* The permission_policy key of a grant ("http_client"). */
const char *host_policy_cap(unsigned grant);

/* ---- secrets (host_policy.c, host_env.c) ---- */
/* 1 when the environment handler (and its policy) grant the secret name. */
int host_env_granted(struct actor *a, const char *name);
/* 1 when a child's handler config (environment / http-client) asks for no
 * secret, prefix or loopback port the actor a was not granted; else 0 with e
 * set (ERR_FORBIDDEN_PATH). */
int host_env_child_allowed(struct actor *a, const json_t *child, struct err *e);
int host_http_child_allowed(struct actor *a, const json_t *child, struct err *e);
/* The server's secrets (NULL when it keeps none). */
struct secrets *host_secrets(struct actor *a);
/* The server's send-http default and cap (milliseconds). */
void host_http_timeouts(struct actor *a, uint32_t *def_ms, uint32_t *max_ms);

#endif
