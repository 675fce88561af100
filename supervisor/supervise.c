/* supervise.c - what happens when a run ends, and restarts.
 *
 * When a run ends (its terminal event is durable): its parent hears of it
 * (handle-child-exit, or handle-child-error for a failure), its live children
 * are stopped, and its restart policy decides whether a new run begins:
 * `never`; `on-failure` (after `failed`); `always` (after `failed` or an end the
 * actor chose, never after a stop, kill or delete by a user or parent, nor at
 * server shutdown). At most max_restarts automatic restarts within window_s;
 * one more failure is recorded with reason `crash_loop` and the run stays
 * failed. Backoff doubles from backoff_ms up to backoff_max_ms.
 * A restart is recorded as `restarted` (status starting), then init runs again
 * with the initial state and the same package digest, then `started`. */
#include <stdlib.h>
#include <string.h>

#include "src/resolve.h"
#include "src/util/crypto.h"
#include "supervisor/durable.h"
#include "src/util/log.h"
#include "src/wasm/wasm.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

struct restart_job {
	struct supervisor *s;
	struct actor *a;              /* a reference */
	int manual;
	unsigned gen;                 /* an automatic one's a->restart_gen */
	int initial;                  /* init afresh from the initial state */
	supervisor_done_fn done;
	void *user;
	int waited;
};

static int policy_applies(const struct actor *a, const char *status, const char *reason)
{
	if (!a->manifest || a->user_stopped || !a->manifest->restart.present)
		return 0;
	if (reason && (!strncmp(reason, "server_", 7) || !strncmp(reason, "crash_loop", 10)))
		return 0;
	switch (a->manifest->restart.policy) {
	case MANIFEST_RESTART_ON_FAILURE:
		return strcmp(status, "failed") == 0;
	case MANIFEST_RESTART_ALWAYS:
		return strcmp(status, "failed") == 0 || strcmp(status, "stopped") == 0;
	default:
		return 0;
	}
}

/* Recent automatic restarts within the window (a->lock held). */
static unsigned recent(struct actor *a, int64_t now)
{
	int64_t window = a->manifest->restart.window_s * 1000;
	unsigned k = 0;
	for (unsigned i = 0; i < a->nrestarts; i++)
		if (now - a->restarts_at[i] < window)
			a->restarts_at[k++] = a->restarts_at[i];
	a->nrestarts = k;
	return k;
}

const char *supervise_fail_reason(struct supervisor *s, struct actor *a, const char *reason)
{
	if (is_draining(s))
		return reason;
	pthread_mutex_lock(&a->lock);
	int crash = policy_applies(a, "failed", reason) &&
		    recent(a, now_ms()) >= (unsigned)a->manifest->restart.max_restarts;
	pthread_mutex_unlock(&a->lock);
	return crash ? "crash_loop" : reason;
}

static void job_restart(void *arg);

static void schedule_restart(struct supervisor *s, struct actor *a, uint32_t delay_ms,
			     int manual, unsigned gen, int initial, supervisor_done_fn done,
			     void *user)
{
	struct restart_job *j = calloc(1, sizeof(*j));
	if (!j) {
		if (done) {
			struct err e;
			err_set(&e, ERR_NOMEM, "cannot restart");
			done(user, ERR_NOMEM, &e);
		}
		return;
	}
	*j = (struct restart_job){.s = s, .a = a, .manual = manual, .gen = gen, .initial = initial,
				  .done = done, .user = user};
	actor_ref(s, a);
	if (!s->pool || pool_submit_after(s->pool, delay_ms, job_restart, j) != ERR_OK) {
		actor_unref(s, a);
		free(j);
		if (done) {
			struct err e;
			err_set(&e, ERR_UNAVAILABLE, "the server is shutting down");
			done(user, ERR_UNAVAILABLE, &e);
		}
	}
}

static void notify_parent(struct supervisor *s, struct actor *a, const char *status,
			  const char *reason)
{
	if (!a->run.parent_id[0])
		return;
	json_t *info = json_pack("{s:s, s:s, s:s?}", "child_id", a->run.id, "status", status,
				 "reason", reason);
	char *text = json_compact(info);
	json_decref(info);
	int error = strcmp(status, "failed") == 0;
	const struct supervisor_remote *r = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
	/* a parent this node does not run: another node may (cluster mode) */
	if (text && runtime_notify_parent(s, a->run.parent_id, error, text, strlen(text)) ==
		    ERR_NOT_FOUND && r && r->notice)
		r->notice(r->user, a->run.parent_id, error, text, strlen(text));
	free(text);
}

static void ignore_done(void *user, enum err_code rc, const struct err *err)
{
	(void)user;
	(void)rc;
	(void)err;
}

static void stop_child(struct supervisor *s, struct actor *c, void *u)
{
	(void)u;
	pthread_mutex_lock(&c->lock);
	int live = supervisor_status_live(c->run.status);
	pthread_mutex_unlock(&c->lock);
	if (live)
		supervisor_stop(s, c->run.id, 0, ignore_done, NULL);
}

/* Cluster mode: children of a on other nodes are stopped there too. Only an
 * actor granted `supervisor` can have children. */
static void stop_remote_children(struct supervisor *s, struct actor *a)
{
	const struct supervisor_remote *r = __atomic_load_n(&s->remote, __ATOMIC_ACQUIRE);
	if (!r || !r->orphans)
		return;
	int may = !a->manifest;
	for (size_t i = 0; a->manifest && i < a->manifest->nhandlers; i++)
		may = may || strcmp(a->manifest->handlers[i].type, "supervisor") == 0;
	if (may)
		r->orphans(r->user, a->run.id);
}

void supervise_run_ended(struct supervisor *s, struct actor *a, const char *status,
			 const char *reason)
{
	notify_parent(s, a, status, reason);
	if (!is_draining(s)) {
		reg_foreach_child(s, a->run.id, stop_child, NULL);
		stop_remote_children(s, a);
	}
	if (is_draining(s))
		return;
	pthread_mutex_lock(&a->lock);
	int go = policy_applies(a, status, reason) && !a->restart_pending &&
		 recent(a, now_ms()) < (unsigned)a->manifest->restart.max_restarts;
	uint32_t delay = 0;
	unsigned gen = 0;
	if (go) {
		const struct manifest_restart *p = &a->manifest->restart;
		int64_t d = p->backoff_ms;
		for (unsigned i = 0; i < a->nrestarts && d < p->backoff_max_ms; i++)
			d *= 2;
		delay = (uint32_t)(d > p->backoff_max_ms ? p->backoff_max_ms : d);
		a->restarts_at[a->nrestarts++ % 32] = now_ms();
		a->restart_pending = 1;
		gen = ++a->restart_gen;
	}
	pthread_mutex_unlock(&a->lock);
	if (go) {
		log_info("supervisor", "restarting '%s' in %u ms (%s)", a->run.id, delay,
			 reason ? reason : status);
		schedule_restart(s, a, delay, 0, gen, 0, NULL, NULL);
	}
}

/* The package and manifest for a run from before this server started. */
enum err_code supervise_reload(struct supervisor *s, struct actor *a, struct err *err)
{
	if (!a->run.manifest_json || !a->run.package_ref)
		return err_set(err, ERR_CONFLICT, "actor '%s' has no package to restart with",
			       a->run.id);
	struct manifest *m = NULL;
	struct resolved *res = NULL;
	struct wasm_module *mod = NULL;
	enum err_code rc = manifest_parse_json(a->run.manifest_json, strlen(a->run.manifest_json),
					       &m, err);
	uint8_t *kept = NULL;
	size_t kept_len = 0;
	struct err ke = {0};
	if (!rc && (mod = engine_cached(s->engine, a->run.package_sha256)))
		goto loaded;
	if (!rc && s->cfg.store && sha256_hex_valid(a->run.package_sha256) &&
	    store_get(s->cfg.store, DURABLE_PACKAGES_STORE, a->run.package_sha256, 0, &kept,
		      &kept_len, &ke) == ERR_OK) {
		rc = engine_load(s->engine, kept, kept_len, a->run.package_sha256, &mod, err);
		free(kept);
		if (rc) {
			manifest_free(m);
			return rc;
		}
		goto loaded;
	}
	if (!rc)
		rc = resolver_fetch(s->cfg.resolver, a->run.package_ref, NULL, 0, &res, err);
	if (!rc && strcmp(res->sha256, a->run.package_sha256) != 0)
		rc = err_set(err, ERR_CONFLICT, "the package '%s' changed since the run started "
			     "(sha256 %s, was %s)", a->run.package_ref, res->sha256,
			     a->run.package_sha256);
	if (!rc)
		rc = engine_load(s->engine, res->data, res->len, res->sha256, &mod, err);
	resolved_free(res);
	if (rc) {
		manifest_free(m);
		return rc;
	}
loaded:
	manifest_free(a->manifest);
	wasm_module_free(a->module);
	a->manifest = m;
	a->module = mod;
	/* the spawn's own (merged with the spawn-time state), which a process that
	 * did not spawn it knows only from the chain; the manifest's if none */
	struct err ie = {0};
	if (!a->initial_state)
		a->initial_state = durable_initial_state(a, &ie);
	if (!a->initial_state && m->initial_state)
		a->initial_state = json_incref(m->initial_state);
	return ERR_OK;
}

static void finish_job(struct restart_job *j, enum err_code rc, const struct err *err)
{
	if (j->done)
		j->done(j->user, rc, err);
	actor_unref(j->s, j->a);
	free(j);
}

static void job_restart(void *arg)
{
	struct restart_job *j = arg;
	struct supervisor *s = j->s;
	struct actor *a = j->a;
	struct err e = {0};
	if (is_draining(s)) {
		err_set(&e, ERR_UNAVAILABLE, "the server is shutting down");
		finish_job(j, ERR_UNAVAILABLE, &e);
		return;
	}
	pthread_mutex_lock(&a->lock);
	int ended = !supervisor_status_live(a->run.status), idle = !a->rt && !a->scheduled;
	/* a stop, a delete or a manual restart cancels a pending automatic one; a
	 * later failure's restart is another job, with a later number */
	int cancelled = !j->manual && (!a->restart_pending || a->restart_gen != j->gen);
	int deleted = a->deleted, held = a->delete_held;
	pthread_mutex_unlock(&a->lock);
	if (deleted || held) {
		if (deleted)
			err_set(&e, ERR_NOT_FOUND, "actor '%s' was deleted", a->run.id);
		else
			err_set(&e, ERR_CONFLICT, "actor '%s' is being deleted", a->run.id);
		finish_job(j, e.code, &e);
		return;
	}
	if (cancelled) {
		finish_job(j, ERR_OK, NULL);
		return;
	}
	if (!ended || !idle) {          /* the old run is still ending */
		if (++j->waited < 2000 && pool_submit_after(s->pool, 5, job_restart, j) == ERR_OK)
			return;
		err_set(&e, ERR_TIMEOUT, "the previous run of '%s' did not end", a->run.id);
		finish_job(j, ERR_TIMEOUT, &e);
		return;
	}
	if (!a->module && supervise_reload(s, a, &e)) {
		finish_job(j, e.code, &e);
		return;
	}
	pthread_mutex_lock(&a->lock);
	a->restart_pending = 0;
	a->stop_requested = 0;
	a->terminal_pending = 0;
	a->user_stopped = 0;
	memset(&a->fail_err, 0, sizeof(a->fail_err));
	a->metrics.restarts++;
	uint32_t n = a->metrics.restarts;
	pthread_mutex_unlock(&a->lock);
	/* The last good state, unless a fresh start is asked for (or none is known). */
	int initial = j->initial || (!j->manual && a->manifest->restart.initial_state) ||
		      durable_load_state(s, a, &e) != ERR_OK;
	json_t *d = lifecycle_data(j->manual ? "restart_requested" : "policy", NULL);
	json_object_set_new(d, "restart", json_integer(n));
	json_object_set_new(d, "package_sha256", json_string(a->run.package_sha256));
	json_object_set_new(d, "state", json_string(initial ? "initial" : "last"));
	if (!initial) {
		pthread_mutex_lock(&a->rec_lock);
		uint64_t st = a->state_seq;
		pthread_mutex_unlock(&a->rec_lock);
		json_object_set_new(d, "state_seq", json_integer((json_int_t)st));
		json_object_set_new(d, "state_sha256", json_string(a->state_sha));
	}
	const char *reason = NULL;
	if (record_event(s, a, "restarted", d, "starting", NULL, &e)) {
		if (e.code == ERR_NOT_FOUND) {   /* deleted meanwhile (record.c) */
			finish_job(j, ERR_NOT_FOUND, &e);
			return;
		}
		spawn_fail(s, a, "chain_unavailable", &e);
		finish_job(j, e.code ? e.code : ERR_INTERNAL, &e);
		return;
	}
	__atomic_store_n(&a->defer_sync, 1, __ATOMIC_RELEASE); /* made durable with `started` */
	enum err_code rc;
	if (initial) {
		rc = runtime_start(s, a, a->manifest, wasm_module_ref(a->module), a->initial_state,
				   &reason, &e);
	} else {
		rc = runtime_resume(s, a, a->manifest, wasm_module_ref(a->module), &reason, &e);
	}
	if (rc) {
		spawn_fail(s, a, reason ? reason : "init_failed", &e);
		finish_job(j, e.code ? e.code : ERR_INTERNAL, &e);
		return;
	}
	__atomic_store_n(&a->defer_sync, 0, __ATOMIC_RELEASE);
	if (record_event(s, a, "started", lifecycle_data(NULL, NULL), "running", NULL, &e)) {
		spawn_fail(s, a, "chain_unavailable", &e);
		runtime_stop(s, a);
		runtime_release(s, a);
		finish_job(j, e.code, &e);
		return;
	}
	runtime_release(s, a);
	finish_job(j, ERR_OK, NULL);
}

void supervisor_restart(struct supervisor *s, const char *id, int initial,
			supervisor_done_fn done, void *user)
{
	struct err e = {0};
	struct actor *a = reg_find_or_answer(s, id, done, user);
	if (!a)
		return;
	enum err_code rc = ERR_OK;
	durable_wake(s, a, &e);   /* lazy: back first, so that it stops like any other */
	memset(&e, 0, sizeof(e));
	pthread_mutex_lock(&a->lock);
	if (actor_damaged(a))
		rc = err_set(&e, ERR_CHAIN_DAMAGED, "the chain of actor '%s' is damaged: it cannot "
			     "be restarted (GET /actors/%s/chain/verify says where)", id, id);
	else if (strcmp(a->run.status, "starting") == 0 || a->restart_pending)
		rc = err_set(&e, ERR_CONFLICT, "actor '%s' is starting", id);
	else if (supervisor_status_live(a->run.status) && !runtime_request_stop(s, a, RUNTIME_STOP_CUT))
		rc = err_set(&e, ERR_CONFLICT, "actor '%s' cannot be stopped for a restart", id);
	pthread_mutex_unlock(&a->lock);
	if (rc)
		done(user, rc, &e);
	else
		schedule_restart(s, a, 0, 1, 0, initial, done, user);
	actor_unref(s, a);
}
