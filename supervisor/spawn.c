/* spawn.c - the spawn pipeline, run on the worker pool.
 *
 *   manifest (inline or fetched by reference) -> run row `starting` + chain
 *   (a spare file's id taken as the actor's; no meta.json: `spawned` carries the name and
 *   the manifest reference an index rebuild needs) -> package (cache or fetch) -> engine check -> `spawned` ->
 *   `started` (status `running`).
 * A failure after the run exists ends it with one `failed` event whose reason is
 * stable (`package_unavailable`, `invalid_package`) and whose detail says why.
 * A stop or kill that arrives while starting is honoured at the next step. */
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"
#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/durable.h"
#include "supervisor/record.h"
#include "src/wasm/wasm.h"
#include "supervisor/runtime.h"
#include "supervisor/spares.h"

struct spawn_job {
	struct supervisor *s;
	json_t *manifest;
	char *manifest_ref;
	json_t *initial_state;
	char *parent_id;
	int parent_remote;            /* the parent runs on another node */
	enum spawn_wait wait;
	uint32_t timeout_ms;
	spawn_done_fn done;
	void *user;
};

static void job_free(struct spawn_job *j)
{
	json_decref(j->manifest);
	json_decref(j->initial_state);
	free(j->manifest_ref);
	free(j->parent_id);
	free(j);
}

static enum err_code load_manifest(struct spawn_job *j, struct manifest **out, struct err *err)
{
	if (j->manifest)
		return manifest_from_json(j->manifest, out, err);
	struct resolved *res = NULL;
	enum err_code rc = resolver_fetch(j->s->cfg.resolver, j->manifest_ref, NULL, 0, &res, err);
	if (rc) {
		err_prefix(err, "cannot load manifest '%s'", j->manifest_ref);
		return rc;
	}
	if (res->len > j->s->cfg.max_manifest_bytes) {
		resolved_free(res);
		return err_set(err, ERR_TOO_LARGE, "manifest '%s' is larger than %zu bytes",
			       j->manifest_ref, j->s->cfg.max_manifest_bytes);
	}
	/* TOML (by extension or content) or JSON; TOML messages start with
	 * "<ref>:<line>:<col>: ", JSON ones get the reference put in front. */
	struct manifest_options opt = {.name = j->manifest_ref};
	opt.format = manifest_format_detect(j->manifest_ref, (const char *)res->data, res->len);
	rc = manifest_load((const char *)res->data, res->len, &opt, out, NULL, err);
	if (rc && opt.format == MANIFEST_FORMAT_JSON)
		err_prefix(err, "manifest '%s'", j->manifest_ref);
	resolved_free(res);
	return rc;
}

static enum err_code create_run(struct spawn_job *j, const struct manifest *m,
				struct actor **out, struct err *err)
{
	struct supervisor *s = j->s;
	struct db_run r = {0};
	/* A spare's id (spares.h: its empty file is there and its name durable), or a
	 * new one whose file chain_open creates (and syncs the directory for). */
	if (spares_take(s->spares, r.id) != ERR_OK && uuid_v4(r.id))
		return err_set(err, ERR_INTERNAL, "cannot generate an actor id");
	r.name = m->name;
	r.manifest_ref = j->manifest_ref;
	r.status = "starting";
	r.created_at = now_ms();
	r.updated_at = r.created_at;
	if (j->parent_id)
		snprintf(r.parent_id, sizeof(r.parent_id), "%s", j->parent_id);
	r.manifest_json = json_compact(m->json);
	struct actor *a = actor_new(&r);
	free(r.manifest_json);
	if (!a)
		return err_set(err, ERR_NOMEM, "cannot allocate actor");
	a->sup = s;
	struct chain_open_report rep;
	enum err_code rc = chain_open(s->chains_dir, a->run.id, &a->chain, &rep, err);
	/* Answered once it runs: the run row goes into the index with `started`, in
	 * one transaction (record.c: index_run); answered at once: inserted now. */
	if (!rc && j->wait == SPAWN_WAIT_RUNNING)
		a->unindexed = 1;
	else if (!rc)
		rc = db_run_insert(s->cfg.db, &a->run, err);
	if (rc) {
		actor_unref(s, a);
		return rc;
	}
	reg_add(s, a);            /* the registry takes the first reference */
	actor_ref(s, a);
	*out = a;
	return ERR_OK;
}

static void waiter_timeout(void *arg)
{
	struct waiter *w = arg;
	struct actor *a = w->actor;
	int unlinked = 0;
	pthread_mutex_lock(&a->lock);
	if (!w->fired) {
		for (struct waiter **pp = &a->waiters; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				unlinked = 1;
				break;
			}
	}
	pthread_mutex_unlock(&a->lock);
	struct supervisor *s = w->sup;
	/* The id goes out before the run may be indexed or have an event: its run row
	 * goes in first, so lists show it and a crash leaves a run that the next start
	 * ends `failed` (not an empty file the start-up sweep removes; a start drops
	 * the spares row of an id that is a run). Were the insert to fail, the id's
	 * spares row goes instead, so a crash cannot make the file a spare again. */
	if (unlinked) {
		if (record_index_run(s, a) != ERR_OK)
			spares_forget(s->spares, a->run.id);
		waiter_fire_one(s, w);    /* answers; drops the list's reference */
	}
	waiter_fire_one(s, w);            /* drops the timer's reference */
}

/* Registers a waiter that answers the spawn when the run leaves `starting`,
 * or with the current snapshot after the timeout. */
static void wait_running(struct spawn_job *j, struct actor *a)
{
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		struct err e;
		err_set(&e, ERR_NOMEM, "cannot wait for actor");
		j->done(j->user, ERR_NOMEM, &e, NULL);
		return;
	}
	w->kind = WAIT_RUNNING;
	w->spawn_done = j->done;
	w->user = j->user;
	w->refs = 2;
	w->actor = a;
	w->sup = j->s;
	actor_ref(j->s, a);
	pthread_mutex_lock(&a->lock);
	w->next = a->waiters;
	a->waiters = w;
	pthread_mutex_unlock(&a->lock);
	if (pool_submit_after(j->s->pool, j->timeout_ms ? j->timeout_ms : 30000,
			      waiter_timeout, w) != ERR_OK)
		waiter_timeout(w);
}

static void answer_created(struct spawn_job *j, struct actor *a)
{
	struct db_run snap;
	pthread_mutex_lock(&a->lock);
	enum err_code rc = run_copy(&a->run, &snap);
	pthread_mutex_unlock(&a->lock);
	j->done(j->user, rc, NULL, rc ? NULL : &snap);
	if (!rc)
		db_run_release(&snap);
}

void spawn_fail(struct supervisor *s, struct actor *a, const char *reason, const struct err *why)
{
	const char *detail = why->msg;
	reason = supervise_fail_reason(s, a, reason);
	__atomic_store_n(&a->defer_sync, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&a->lock);
	a->fail_err = *why;
	pthread_mutex_unlock(&a->lock);
	char *text = NULL;
	size_t rn = strlen(reason);
	/* "deadline: ..." already names its reason: written once, not twice */
	if (strncmp(detail, reason, rn) == 0 && detail[rn] == ':')
		text = strdup(detail);
	else if (asprintf(&text, "%s: %s", reason, detail) < 0)
		text = NULL;
	struct err e = {0};
	if (record_event(s, a, "failed", lifecycle_data(reason, detail), "failed",
			 text ? text : reason, &e))
		log_error_limited("supervisor",
				  "actor '%s' failed (%s) and recording it failed: %s", a->run.id,
				  reason, e.msg);
	free(text);
}

/* 0: go on; otherwise the stop/kill requested while starting has been recorded. */
static int honour_stop(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&a->lock);
	int req = a->stop_requested;
	if (req)
		a->terminal_pending = 1;
	pthread_mutex_unlock(&a->lock);
	if (!req)
		return 0;
	stop_record(s, a, req == 2);
	return 1;
}

static void run_package(struct supervisor *s, struct actor *a, struct manifest *m,
			json_t *state)
{
	struct err e = {0};
	struct resolved *res = NULL;
	if (resolver_fetch(s->cfg.resolver, m->package, a->run.manifest_ref, m->static_package,
			   &res, &e)) {
		spawn_fail(s, a, "package_unavailable", &e);
		return;
	}
	struct wasm_module *module = NULL;
	if (engine_load(s->engine, res->data, res->len, res->sha256, &module, &e)) {
		spawn_fail(s, a, "invalid_package", &e);
		resolved_free(res);
		return;
	}
	/* The package is kept by digest so the run can come back (recovery, restart,
	 * replay) even if its reference changes or goes away. */
	char kept[65];
	struct err ke = {0};
	if (s->cfg.store && !store_has(s->cfg.store, DURABLE_PACKAGES_STORE, res->sha256) &&
	    store_put(s->cfg.store, DURABLE_PACKAGES_STORE, res->data, res->len, kept, &ke))
		log_warn_limited("supervisor", "cannot keep the package of '%s': %s", a->run.id,
				 ke.msg);
	pthread_mutex_lock(&a->lock);
	free(a->run.package_ref);
	a->run.package_ref = strdup(res->reference);
	memcpy(a->run.package_sha256, res->sha256, 65);
	pthread_mutex_unlock(&a->lock);
	record_index_package(s, a, res->reference, res->sha256, &e);
	json_t *d = lifecycle_data(NULL, NULL);
	json_object_set_new(d, "created_at", json_integer(a->run.created_at));
	json_object_set(d, "manifest", m->json);
	json_object_set_new(d, "package", json_pack("{s:s, s:s, s:I, s:b}", "reference",
		res->reference, "sha256", res->sha256, "size", (json_int_t)res->len,
		"from_cache", res->from_cache));
	json_object_set(d, "initial_state", state ? state : json_null());
	if (a->run.parent_id[0])
		json_object_set_new(d, "parent_id", json_string(a->run.parent_id));
	if (a->run.manifest_ref)     /* what meta.json held: a rebuilt index finds it here */
		json_object_set_new(d, "manifest_ref", json_string(a->run.manifest_ref));
	resolved_free(res);
	/* `spawned` and the init call are made durable by the sync of `started` (or of
	 * the terminal event): one fdatasync per spawn instead of three. */
	__atomic_store_n(&a->defer_sync, 1, __ATOMIC_RELEASE);
	if (record_event(s, a, "spawned", d, NULL, NULL, &e)) {
		wasm_module_free(module);
		spawn_fail(s, a, "chain_unavailable", &e);
		return;
	}
	if (honour_stop(s, a)) {
		wasm_module_free(module);
		return;
	}
	const char *reason = NULL;
	pthread_mutex_lock(&a->lock);
	a->module = wasm_module_ref(module);
	a->initial_state = state ? json_incref(state) : NULL;
	pthread_mutex_unlock(&a->lock);
	if (runtime_start(s, a, m, module, state, &reason, &e)) {   /* takes module */
		spawn_fail(s, a, reason, &e);
		return;
	}
	__atomic_store_n(&a->defer_sync, 0, __ATOMIC_RELEASE);
	/* Synced on this worker: concurrent spawns' fdatasyncs share the file
	 * system's journal commit (measured faster than one committer thread syncing
	 * them in turn, docs/decisions.md). */
	if (record_event(s, a, "started", lifecycle_data(NULL, NULL), "running", NULL, &e)) {
		spawn_fail(s, a, "chain_unavailable", &e);
		runtime_stop(s, a);
	}
	runtime_release(s, a);    /* also honours a stop that raced with `started` */
}

/* ERR_OK when the parent exists and is live: a spawn job that waited in the
 * queue past its parent's end must not leave an orphan running (issue 12). */
static enum err_code parent_live(struct supervisor *s, const char *id, struct err *err)
{
	struct actor *p = reg_find(s, id);
	if (!p)
		return err_set(err, ERR_NOT_FOUND, "parent actor '%s' not found", id);
	pthread_mutex_lock(&p->lock);
	int live = supervisor_status_live(p->run.status) && !p->terminal_pending;
	pthread_mutex_unlock(&p->lock);
	actor_unref(s, p);
	return live ? ERR_OK : err_set(err, ERR_CONFLICT, "parent actor '%s' has ended", id);
}

struct live_count {
	const char *parent;
	uint32_t all, children;
};

static void count_live(struct supervisor *s, struct actor *a, void *u)
{
	struct live_count *n = u;
	(void)s;
	pthread_mutex_lock(&a->lock);
	if (supervisor_status_live(a->run.status)) {
		n->all++;
		n->children += n->parent && strcmp(a->run.parent_id, n->parent) == 0;
	}
	pthread_mutex_unlock(&a->lock);
}

/* Live actors server-wide: a walk of every actor costs milliseconds at 100,000
 * (issue 16), so it is done at most every LIVE_RECOUNT_MS, or 20 times as long as
 * the last walk took (at most 5% of a core), as a job of its own: the spawn that
 * finds the count stale goes on with it, the walk is not on its path. Actors
 * registered since the walk's snapshot are added (reg_foreach: the registry's
 * count at that instant), ends are not subtracted: an overcount, never an
 * undercount; a count at the limit is taken again, exact and at once, before
 * anything is refused. */
#define LIVE_RECOUNT_MS 250

static void recount_live(struct supervisor *s)
{
	int64_t t0 = now_ms();
	struct live_count n = {NULL, 0, 0};
	uint64_t registered = reg_foreach(s, count_live, &n);
	pthread_mutex_lock(&s->live_lock);
	if (registered >= s->live_registered) {   /* not older than the last one */
		s->live_walk_ms = now_ms() - t0;
		s->live_counted_ms = t0;
		s->live_counted = n.all;
		s->live_registered = registered;
	}
	s->live_walking = 0;
	pthread_mutex_unlock(&s->live_lock);
}

static void recount_job(void *arg)
{
	recount_live(arg);
}

static uint32_t live_actors(struct supervisor *s, int exact)
{
	pthread_mutex_lock(&s->live_lock);
	int64_t every = s->live_walk_ms * 20 > LIVE_RECOUNT_MS ? s->live_walk_ms * 20
							       : LIVE_RECOUNT_MS;
	int first = !s->live_counted_ms;     /* no count yet to go on with */
	int walk = !exact && !first && !s->live_walking &&
		   now_ms() - s->live_counted_ms >= every;
	s->live_walking |= walk;
	pthread_mutex_unlock(&s->live_lock);
	if (exact || first || (walk && pool_submit(s->pool, recount_job, s) != ERR_OK))
		recount_live(s);
	uint64_t registered = reg_registered(s);
	pthread_mutex_lock(&s->live_lock);
	uint64_t n = s->live_counted + (registered - s->live_registered);
	pthread_mutex_unlock(&s->live_lock);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint64_t supervisor_live_count(struct supervisor *s)
{
	return live_actors(s, 0);
}

/* ERR_EXHAUSTED when descriptors or memory are nearly gone (issue 16);
 * ERR_TOO_MANY_ACTORS when the server or the parent has as many live actors as it
 * may (issue 12: one request created 4,370). A check, not a reservation: spawns in
 * flight at once may pass it together, by at most the worker count. */
static enum err_code under_limits(struct supervisor *s, const char *parent, struct err *err)
{
	enum err_code rc = headroom_check(s->cfg.headroom, err);
	if (rc)
		return rc;
	uint32_t all = live_actors(s, 0);
	if (all >= s->limits.max_actors)
		all = live_actors(s, 1);
	if (all >= s->limits.max_actors)
		return err_set(err, ERR_TOO_MANY_ACTORS, "the server runs %u live actors, its "
			       "limit (--max-actors)", all);
	struct live_count kids = {parent, 0, 0};
	if (parent)      /* its children only (the registry's kin chain) */
		reg_foreach_child(s, parent, count_live, &kids);
	if (parent && kids.children >= s->limits.max_children)
		return err_set(err, ERR_TOO_MANY_ACTORS, "actor '%s' has %u live children, the "
			       "limit (--max-children)", parent, kids.children);
	return ERR_OK;
}

static void job_spawn(void *arg)
{
	struct spawn_job *j = arg;
	struct supervisor *s = j->s;
	struct err e = {0};
	struct manifest *m = NULL;
	struct actor *a = NULL;
	enum err_code rc = load_manifest(j, &m, &e);
	if (!rc && j->parent_id && !j->parent_remote)
		rc = parent_live(s, j->parent_id, &e);
	if (!rc)
		rc = under_limits(s, j->parent_id, &e);
	if (!rc)
		rc = create_run(j, m, &a, &e);
	if (rc) {
		j->done(j->user, rc, &e, NULL);
		goto out;
	}
	/* The parent may have ended between the check and reg_add; its end stops only
	 * the children registered by then, so this one stops itself. */
	if (j->parent_id && !j->parent_remote && parent_live(s, j->parent_id, &e)) {
		pthread_mutex_lock(&a->lock);
		if (!a->stop_requested)
			a->stop_requested = 1;
		pthread_mutex_unlock(&a->lock);
	}
	json_t *state = manifest_merge_initial_states(m->initial_state, j->initial_state);
	if (j->wait == SPAWN_WAIT_RUNNING)
		wait_running(j, a);
	else
		answer_created(j, a);
	pthread_mutex_lock(&a->lock);
	a->manifest = m;          /* the actor keeps it: restart policy and limits */
	pthread_mutex_unlock(&a->lock);
	m = NULL;
	run_package(s, a, a->manifest, state);
	json_decref(state);
	actor_unref(s, a);
out:
	manifest_free(m);
	job_free(j);
}

enum err_code supervisor_spawn(struct supervisor *s, const struct spawn_request *req,
			       spawn_done_fn done, void *user)
{
	if (is_draining(s))
		return ERR_UNAVAILABLE;
	struct spawn_job *j = calloc(1, sizeof(*j));
	if (!j)
		return ERR_NOMEM;
	j->s = s;
	j->manifest = req->manifest ? json_incref(req->manifest) : NULL;
	j->manifest_ref = req->manifest_ref ? strdup(req->manifest_ref) : NULL;
	j->initial_state = req->initial_state ? json_incref(req->initial_state) : NULL;
	j->parent_id = req->parent_id ? strdup(req->parent_id) : NULL;
	j->parent_remote = req->parent_remote;
	j->wait = req->wait;
	j->timeout_ms = req->timeout_ms;
	j->done = done;
	j->user = user;
	if ((req->manifest_ref && !j->manifest_ref) || (req->parent_id && !j->parent_id)) {
		job_free(j);
		return ERR_NOMEM;
	}
	enum err_code rc = pool_submit(s->pool, job_spawn, j);
	if (rc)
		job_free(j);
	return rc;
}
