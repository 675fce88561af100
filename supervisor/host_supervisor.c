/* host_supervisor.c - theater:simple/supervisor: an actor supervises its children.
 *
 * spawn starts a child (parent = the calling actor) from a manifest given as
 * JSON or TOML text, the same model as POST /actors, and waits until it runs
 * or failed; list-children lists them; stop-child, restart-child and
 * get-child-state act on the caller's OWN children only (-3 for any other
 * actor, -2 for an unknown id).
 *
 * The supervisor answers spawn, stop and restart through callbacks on worker
 * threads; the call parks until they answer (host_wait_end), bounded (30 s
 * plus a grace), and its worker goes on with other actors. The wait state has
 * two owners, the waiter and the callback, and whoever lets go last frees it,
 * so a late callback is harmless.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "src/manifest.h"
#include "src/util/crypto.h"
#include "supervisor/host.h"
#include "supervisor/supervisor.h"

#define MOD "theater:simple/supervisor"
#define SPAWN_TIMEOUT_MS 30000u
#define OP_WAIT_MS 32000u            /* the supervisor's own 30 s bound + grace */
#define STATE_MAX ((size_t)16 << 20)
#define CHILD_STATE_MAX ((size_t)64 << 20)

/* ---- waiting for the supervisor ---- */

/* Answers w once (a wait that timed out stays as it is). */
static void wait_answer(struct host_wait *w, enum err_code rc, const struct err *err,
			const struct db_run *run)
{
	if (host_wait_claim(w)) {
		if (run) {
			w->have_run = 1;
			snprintf(w->id, sizeof(w->id), "%s", run->id);
			snprintf(w->status, sizeof(w->status), "%s", run->status ? run->status : "");
		}
		w->rc = rc;
		if (err && err->msg[0])
			w->e = *err;
	}
	host_wait_settle(w);
}

static void on_done(void *user, enum err_code rc, const struct err *err)
{
	wait_answer(user, rc, err, NULL);
}

static void on_spawned(void *user, enum err_code rc, const struct err *err,
		       const struct db_run *run)
{
	wait_answer(user, rc, err, run);
}

/* A waiting call's record: the host_call of its start, kept until it ends
 * (first member of every context below, so call_free frees the context). */
static void call_free(void *p)
{
	struct host_call *k = p;
	json_decref(k->in);
	json_decref(k->out);
	free(k);
}

/* ---- spawn ---- */

/* Reads the manifest (JSON or TOML) and the optional initial state (JSON). */
static int32_t read_spawn_args(struct host_call *k, struct wasm_caller *c,
			       const struct wasm_value *args, struct manifest **m, json_t **state)
{
	uint8_t *text = NULL, *st = NULL;
	uint32_t mlen = args[1].of.i32, slen = args[3].of.i32;
	int32_t rc = host_read(c, args[0].of.i32, mlen, MANIFEST_MAX_BYTES, &text);
	if (rc)
		err_set(&k->e, ERR_INVALID, "cannot read the manifest (%u bytes)", mlen);
	else if (manifest_load((char *)text, mlen, NULL, m, NULL, &k->e) != ERR_OK)
		rc = HOST_EINVAL;
	else
		json_object_set_new(k->in, "manifest", json_incref((*m)->json));
	if (!rc && slen && (rc = host_read(c, args[2].of.i32, slen, STATE_MAX, &st)))
		err_set(&k->e, ERR_INVALID, "cannot read the initial state (%u bytes)", slen);
	if (!rc && slen && !(*state = json_parse((char *)st, slen, JSON_MAX_DEPTH_DEFAULT, &k->e))) {
		err_prefix(&k->e, "initial state");
		rc = HOST_EINVAL;
	}
	if (!rc && *state)
		json_object_set_new(k->in, "initial_state", json_incref(*state));
	free(text);
	free(st);
	return rc;
}

/* The result of a spawn that answered: the child's id goes to out36 whenever a
 * run was created (also when it failed or is still starting). */
static int32_t spawn_result(struct host_call *k, struct wasm_caller *c, struct actor *a,
			    struct host_wait *w, uint32_t out)
{
	if (!w->have_run) {
		k->e = w->e;
		return host_errno(w->rc ? w->rc : ERR_INTERNAL);
	}
	json_object_set_new(k->out, "child", json_string(w->id));
	json_object_set_new(k->out, "status", json_string(w->status));
	if (host_write(c, a, out, w->id, UUID_STR_LEN))
		return HOST_EINVAL;
	if (strcmp(w->status, "running") == 0)
		return UUID_STR_LEN;
	if (strcmp(w->status, "starting") == 0) {
		err_set(&k->e, ERR_TIMEOUT, "the child did not start within %u ms", SPAWN_TIMEOUT_MS);
		return HOST_ETIMEDOUT;
	}
	k->e = w->e;
	if (!k->e.msg[0])
		err_set(&k->e, ERR_INTERNAL, "the child is %s", w->status);
	return HOST_EFAILED;
}

/* An actor cannot give its children more than it has: every handler the child
 * asks for must be granted to the parent, and so must every secret, secret
 * prefix and loopback port the child's handlers name. And the server fetches a child's
 * package itself, so an actor may not make it fetch from the network (which
 * would bypass the address policy of http-client) unless the server allows
 * private addresses. */
static int32_t spawn_allowed(struct host_call *k, struct actor *a, const struct manifest *m)
{
	unsigned mine = host_actor_grants(a);
	for (size_t i = 0; i < m->nhandlers; i++) {
		unsigned g = host_grant_of(m->handlers[i].type);
		if (g && !(mine & g)) {
			err_set(&k->e, ERR_FORBIDDEN_PATH, "the child asks for handler '%s', which "
				"this actor was not granted", m->handlers[i].type);
			return HOST_EDENIED;
		}
		if ((g == GRANT_ENV && !host_env_child_allowed(a, m->handlers[i].config, &k->e)) ||
		    (g == GRANT_HTTP && !host_http_child_allowed(a, m->handlers[i].config, &k->e)))
			return HOST_EDENIED;
	}
	/* Any scheme but store:// and file://, in any case ("HTTP://" included). */
	const char *sep = strstr(m->package, "://");
	size_t sl = sep ? (size_t)(sep - m->package) : 0;
	int local = !sep || (sl == 5 && !strncasecmp(m->package, "store", 5)) ||
		    (sl == 4 && !strncasecmp(m->package, "file", 4));
	if (!local && !supervisor_http_allow_private(host_supervisor(a))) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "actors may spawn children from files and the "
			"store, not from '%s'", m->package);
		return HOST_EDENIED;
	}
	return 0;
}

/* spawn, list-children and get-child-state: the call and where its answer goes */
struct out_ctx {
	struct host_call k;
	uint32_t out;
};

static void spawn_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		       struct wasm_value *results)
{
	struct out_ctx *x = ctx;
	struct host_call *k = &x->k;
	if (w->timed_out) {
		err_set(&k->e, ERR_TIMEOUT, "no answer to the spawn within %u ms", OP_WAIT_MS);
		k->rc = HOST_ETIMEDOUT;
	} else {
		k->rc = spawn_result(k, c, a, w, x->out);
	}
	host_call_end(k, a, MOD, "spawn", results);
	k->in = k->out = NULL;      /* host_call_end gave them to the event */
}

/* Starts the spawn; when it is under way, *w_out answers it. */
static int32_t start_spawn(struct host_call *k, struct actor *a, const struct manifest *m,
			   json_t *state, struct host_wait **w_out)
{
	int32_t denied = spawn_allowed(k, a, m);
	if (denied)
		return denied;
	struct spawn_request req = {
		.manifest = m->json, .initial_state = state, .parent_id = host_actor_id(a),
		.wait = SPAWN_WAIT_RUNNING, .timeout_ms = SPAWN_TIMEOUT_MS,
	};
	struct host_wait *w = host_wait_new();
	if (!w) {
		err_set(&k->e, ERR_NOMEM, "out of memory");
		return HOST_EFAILED;
	}
	/* cluster mode: the child may run on another node (its manifest's `node`) */
	const struct supervisor_remote *r = supervisor_remote_hooks(host_supervisor(a));
	int here = 1;
	if (r && r->spawn) {
		enum err_code pc = r->spawn(r->user, &req, &here, on_spawned, w, &k->e);
		if (pc) {
			host_wait_unref(w);
			host_wait_unref(w);
			return host_errno(pc);
		}
	}
	enum err_code sc = here ? supervisor_spawn(host_supervisor(a), &req, on_spawned, w) : 0;
	if (sc) {
		err_set(&k->e, sc, "the server is not accepting spawns");
		host_wait_unref(w);
		host_wait_unref(w);
		return host_errno(sc);
	}
	*w_out = w;
	return 0;
}

static enum err_code h_spawn(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_SUPERVISOR, MOD, "spawn", results, 0))
		return ERR_OK;
	struct out_ctx *x = calloc(1, sizeof(*x));
	struct manifest *m = NULL;
	json_t *state = NULL;
	uint8_t *probe = NULL;
	struct host_wait *w = NULL;
	if (!x)
		return err_set(err, ERR_NOMEM, "out of memory");
	struct host_call *k = &x->k;
	host_call_init(k);
	x->out = args[4].of.i32;
	k->rc = read_spawn_args(k, c, args, &m, &state);
	if (!k->rc && (k->rc = host_read(c, x->out, UUID_STR_LEN, UUID_STR_LEN, &probe)))
		err_set(&k->e, ERR_INVALID, "the id buffer is outside the memory");
	if (!k->rc)
		k->rc = start_spawn(k, user, m, state, &w);
	manifest_free(m);
	json_decref(state);
	free(probe);
	if (k->rc) {
		host_call_end(k, user, MOD, "spawn", results);
		free(x);
		return ERR_OK;
	}
	return host_wait_end(c, user, w, OP_WAIT_MS, spawn_done, x, call_free, results, err);
}

/* ---- children ---- */

/* The children this node runs, and (remote, when not NULL: a JSON array
 * from the other nodes) the others', each id once. A new reference. */
static json_t *children_merged(struct actor *a, const uint8_t *remote, size_t len)
{
	json_t *ids = supervisor_children(host_supervisor(a), host_actor_id(a));
	struct err e = {0};
	json_t *more = remote ? json_parse((const char *)remote, len, 4, &e) : NULL;
	size_t i, j;
	json_t *v, *have;
	json_array_foreach(more, i, v) {
		int dup = 0;
		json_array_foreach(ids, j, have)
			dup = dup || json_equal(have, v);
		if (ids && json_is_string(v) && !dup)
			json_array_append(ids, v);
	}
	json_decref(more);
	return ids;
}

/* Writes the list into the guest's out and records it in k. */
static void list_answer(struct host_call *k, struct wasm_caller *c, struct actor *a,
			uint32_t out, json_t *ids)
{
	char *text = ids ? json_compact(ids) : NULL;
	if (!text) {
		err_set(&k->e, ERR_NOMEM, "out of memory");
		k->rc = HOST_EFAILED;
	} else {
		k->rc = host_return_bytes(c, a, out, text, strlen(text));
		json_object_set_new(k->out, "children", json_incref(ids));
	}
	free(text);
}

static void list_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		      struct wasm_value *results)
{
	struct out_ctx *x = ctx;
	struct host_call *k = &x->k;
	if (w->timed_out || w->rc) {
		/* the other nodes did not all answer: the children known here */
		json_object_set_new(k->out, "partial", json_true());
	}
	json_t *ids = children_merged(a, w->timed_out || w->rc ? NULL : w->data, w->len);
	list_answer(k, c, a, x->out, ids);
	json_decref(ids);
	host_call_end(k, a, MOD, "list-children", results);
	k->in = k->out = NULL;
}

static enum err_code h_list(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_SUPERVISOR, MOD, "list-children", results, 0))
		return ERR_OK;
	const struct supervisor_remote *r = supervisor_remote_hooks(host_supervisor(user));
	struct out_ctx *x = r && r->children ? calloc(1, sizeof(*x)) : NULL;
	struct host_wait *w = x ? host_wait_new() : NULL;
	if (w) {     /* cluster mode: the other nodes are asked too (parked) */
		host_call_init(&x->k);
		x->out = args[0].of.i32;
		struct err e = {0};
		enum err_code rc = r->children(r->user, host_actor_id(user), host_message_reply, w,
					       &e);
		if (rc)
			host_message_reply(w, rc, &e, NULL, 0);
		return host_wait_end(c, user, w, OP_WAIT_MS, list_done, x, call_free, results,
				     err);
	}
	free(x);
	struct host_call k;
	host_call_init(&k);
	json_t *ids = children_merged(user, NULL, 0);
	list_answer(&k, c, user, args[0].of.i32, ids);
	host_call_end(&k, user, MOD, "list-children", results);
	json_decref(ids);
	return ERR_OK;
}

/* Reads a child id and checks that it is a child of a: -1, -2 or -3. With
 * remote (stop and restart), a child this node does not know is left to the
 * node that runs it (cluster mode): *remote = 1, and that node checks. */
static int32_t read_child(struct host_call *k, struct wasm_caller *c, struct actor *a, uint32_t ptr,
			  uint32_t len, char id[37], int *remote)
{
	uint8_t *raw = NULL;
	struct db_run run = {0};
	int32_t rc = len == UUID_STR_LEN ? host_read(c, ptr, len, len, &raw) : HOST_EINVAL;
	if (rc || !uuid_valid((char *)raw)) {
		free(raw);
		err_set(&k->e, ERR_BAD_ID, "the child must be an actor id (36 bytes)");
		return HOST_EINVAL;
	}
	memcpy(id, raw, UUID_STR_LEN + 1);
	free(raw);
	json_object_set_new(k->in, "child", json_string(id));
	if (supervisor_get(host_supervisor(a), id, &run, &k->e) != ERR_OK) {
		if (!remote || k->e.code != ERR_NOT_FOUND)
			return HOST_ENOTFOUND;
		*remote = 1;
		return 0;
	}
	if (strcmp(run.parent_id, host_actor_id(a)) != 0) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "actor '%s' is not a child of this actor", id);
		rc = HOST_EDENIED;
	}
	db_run_release(&run);
	return rc;
}

struct child_ctx {
	struct host_call k;
	int restart;
};

static void child_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		       struct wasm_value *results)
{
	struct child_ctx *x = ctx;
	struct host_call *k = &x->k;
	(void)c;
	if (w->timed_out) {
		err_set(&k->e, ERR_TIMEOUT, "no answer within %u ms", OP_WAIT_MS);
		k->rc = HOST_ETIMEDOUT;
	} else if (!x->restart && w->rc == ERR_NOT_MODIFIED) {
		json_object_set_new(k->out, "already_ended", json_true());
		k->rc = 0;   /* stopping a child that has ended is done */
	} else {
		k->e = w->e;
		k->rc = host_errno(w->rc);
	}
	host_call_end(k, a, MOD, x->restart ? "restart-child" : "stop-child", results);
	k->in = k->out = NULL;
}

/* Runs stop (restart = 0) or restart on a child and waits for it (parked). */
static enum err_code child_call(struct wasm_caller *c, struct actor *a,
				const struct wasm_value *args, struct wasm_value *results,
				int restart, struct err *err)
{
	const char *name = restart ? "restart-child" : "stop-child";
	if (host_disallowed(a, GRANT_SUPERVISOR, MOD, name, results, 0))
		return ERR_OK;
	struct child_ctx *x = calloc(1, sizeof(*x));
	char id[37];
	struct host_wait *w = NULL;
	if (!x)
		return err_set(err, ERR_NOMEM, "out of memory");
	struct host_call *k = &x->k;
	host_call_init(k);
	x->restart = restart;
	int remote = 0;
	k->rc = read_child(k, c, a, args[0].of.i32, args[1].of.i32, id, &remote);
	if (!k->rc && !(w = host_wait_new())) {
		err_set(&k->e, ERR_NOMEM, "out of memory");
		k->rc = HOST_EFAILED;
	}
	if (k->rc) {
		host_call_end(k, a, MOD, name, results);
		free(x);
		return ERR_OK;
	}
	if (remote) {
		struct err e = {0};
		enum err_code rc = supervisor_remote_child(host_supervisor(a), id, host_actor_id(a),
							   restart, on_done, w, &e);
		if (rc)
			on_done(w, rc, &e);
	} else if (restart)
		supervisor_restart(host_supervisor(a), id, 0, on_done, w);
	else
		supervisor_stop(host_supervisor(a), id, 0, on_done, w);
	return host_wait_end(c, a, w, OP_WAIT_MS, child_done, x, call_free, results, err);
}

static enum err_code h_stop(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	return child_call(c, user, args, results, 0, err);
}

static enum err_code h_restart(struct wasm_caller *c, void *user, const struct wasm_value *args,
			       struct wasm_value *results, struct err *err)
{
	return child_call(c, user, args, results, 1, err);
}

/* The state bytes of a child into the guest's out (k records them). */
static int32_t state_answer(struct host_call *k, struct wasm_caller *c, struct actor *a,
			    uint32_t out, const uint8_t *data, size_t len)
{
	if (len > CHILD_STATE_MAX) {
		err_set(&k->e, ERR_TOO_LARGE, "the child's state is %zu bytes", len);
		return HOST_ETOOBIG;
	}
	json_object_set_new(k->out, "state", host_bytes_json(data, len));
	return host_return_bytes(c, a, out, data ? data : (const uint8_t *)"", len);
}

static void state_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		       struct wasm_value *results)
{
	struct out_ctx *x = ctx;
	struct host_call *k = &x->k;
	if (w->timed_out) {
		err_set(&k->e, ERR_TIMEOUT, "no answer within %u ms", OP_WAIT_MS);
		k->rc = HOST_ETIMEDOUT;
	} else if (w->rc) {
		k->e = w->e;
		k->rc = host_errno(w->rc);
	} else {
		k->rc = state_answer(k, c, a, x->out, w->data, w->len);
	}
	host_call_end(k, a, MOD, "get-child-state", results);
	k->in = k->out = NULL;
}

static enum err_code h_state(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_SUPERVISOR, MOD, "get-child-state", results, 0))
		return ERR_OK;
	const struct supervisor_remote *r = supervisor_remote_hooks(host_supervisor(user));
	struct out_ctx *x = calloc(1, sizeof(*x));
	char id[37];
	uint8_t *data = NULL;
	size_t len = 0;
	int remote = 0;
	if (!x)
		return err_set(err, ERR_NOMEM, "out of memory");
	struct host_call *k = &x->k;
	host_call_init(k);
	x->out = args[2].of.i32;
	k->rc = read_child(k, c, user, args[0].of.i32, args[1].of.i32, id,
			   r && r->child_state ? &remote : NULL);
	struct host_wait *w = !k->rc && remote ? host_wait_new() : NULL;
	if (w) {     /* a child on another node: its node checks and answers */
		struct err e = {0};
		enum err_code rc = r->child_state(r->user, id, host_actor_id(user),
						  host_message_reply, w, &e);
		if (rc)
			host_message_reply(w, rc, &e, NULL, 0);
		return host_wait_end(c, user, w, OP_WAIT_MS, state_done, x, call_free, results,
				     err);
	}
	if (!k->rc && remote) {
		err_set(&k->e, ERR_NOMEM, "out of memory");
		k->rc = HOST_EFAILED;
	}
	if (!k->rc)
		k->rc = host_errno(supervisor_state(host_supervisor(user), id, &data, &len, &k->e));
	if (!k->rc)
		k->rc = state_answer(k, c, user, x->out, data, len);
	host_call_end(k, user, MOD, "get-child-state", results);
	free(data);
	free(x);
	return ERR_OK;
}

#define I WASM_I32
const struct host_fn host_supervisor_fns[] = {
	{MOD, "spawn", GRANT_SUPERVISOR, 5, 1, {I, I, I, I, I}, {I}, h_spawn},
	{MOD, "list-children", GRANT_SUPERVISOR, 1, 1, {I}, {I}, h_list},
	{MOD, "stop-child", GRANT_SUPERVISOR, 2, 1, {I, I}, {I}, h_stop},
	{MOD, "restart-child", GRANT_SUPERVISOR, 2, 1, {I, I}, {I}, h_restart},
	{MOD, "get-child-state", GRANT_SUPERVISOR, 3, 1, {I, I, I}, {I}, h_state},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
#undef I
