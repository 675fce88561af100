/* actors.c - /health, /ready, /version and the /actors routes. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/buf.h"
#include "src/util/crypto.h"
#include "src/util/log.h"

void h_health(struct api_call *c)
{
	api_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

void h_ready(struct api_call *c)
{
	if (__atomic_load_n(&c->api->draining, __ATOMIC_ACQUIRE) ||
	    supervisor_draining(c->api->cfg.sup)) {
		api_problem(c, ERR_UNAVAILABLE, "the server is starting or draining");
		return;
	}
	api_json(c, 200, json_pack("{s:s}", "status", "ready"));
}

void h_version(struct api_call *c)
{
	api_json(c, 200, json_pack("{s:s, s:s, s:s, s:s}", "name", "theater", "version",
				   THEATER_VERSION, "api", "v1", "chain_hash", "sha256"));
}

/* ---- POST /actors ---- */

static void spawn_answer(void *user, enum err_code rc, const struct err *err,
			 const struct db_run *run)
{
	struct api_call *c = user;
	if (rc) {
		if (err)
			api_problem_err(c, err);
		else
			api_problem(c, rc, "spawn failed");
		return;
	}
	struct err pe = {0};
	if (api_cluster_placed(c->api, run->id, &pe))
		log_warn_limited("api",
				 "actor '%s' runs here but its placement is not recorded: %s",
				 run->id, pe.msg);
	char loc[64];
	snprintf(loc, sizeof(loc), "/actors/%s", run->id);
	const char *h[] = {"Location", loc, NULL};
	if (strcmp(run->status, "failed") == 0 && err && err->code) {
		/* ?wait=running and the spawn failed: the problem says why, and names
		 * the failed run, which stays inspectable. */
		int status = problem_status(err->code);
		json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s?}", "type",
				      "about:blank", "title", "Spawn failed", "status", status,
				      "code", err_code_name(err->code), "detail", err->msg,
				      "actor_id", run->id, "reason", run->reason);
		json_object_set_new(p, "actor", api_run_json(run));
		char *text = p ? json_compact(p) : NULL;
		json_decref(p);
		api_bytes(c, status, "application/problem+json", text, text ? strlen(text) : 0, h);
		return;
	}
	api_json_headers(c, 201, api_run_json(run), h);
}

static enum err_code spawn_body(struct api_call *c, json_t *body, struct spawn_request *req,
				struct err *err)
{
	static const char *const keys[] = {"manifest", "manifest_ref", "initial_state", NULL};
	if (!json_is_object(body))
		return err_set(err, ERR_INVALID, "the body must be a JSON object with 'manifest' "
			       "or 'manifest_ref'");
	enum err_code rc = json_check_keys(body, keys, "spawn request", err);
	if (rc)
		return rc;
	json_t *m = json_object_get(body, "manifest");
	json_t *ref = json_object_get(body, "manifest_ref");
	if (m && ref)
		return err_set(err, ERR_INVALID, "give 'manifest' (an object) or 'manifest_ref' "
			       "(a reference), not both");
	if (!m && !ref)
		return err_set(err, ERR_MISSING_FIELD, "give 'manifest' (an object) or "
			       "'manifest_ref' (a reference)");
	if (m && !json_is_object(m))
		return err_set(err, ERR_BAD_MANIFEST, "'manifest' must be a JSON object");
	if (ref && (!json_is_string(ref) || json_string_length(ref) == 0 ||
		    json_string_length(ref) > 4096))
		return err_set(err, ERR_BAD_REFERENCE, "'manifest_ref' must be a non-empty "
			       "string of at most 4096 bytes");
	req->manifest = m;
	req->manifest_ref = ref ? json_string_value(ref) : NULL;
	req->initial_state = json_object_get(body, "initial_state");
	const char *wait = http_request_query(c->req, "wait");
	if (wait && strcmp(wait, "running") != 0 && strcmp(wait, "created") != 0)
		return err_set(err, ERR_INVALID, "'wait' must be 'running' or 'created'");
	req->wait = wait && strcmp(wait, "running") == 0 ? SPAWN_WAIT_RUNNING
							  : SPAWN_WAIT_CREATED;
	uint64_t timeout;
	if ((rc = api_query_u64(c, "timeout", 30, 0, 300, &timeout, err)))
		return rc;
	req->timeout_ms = (uint32_t)(timeout ? timeout : 1) * 1000;
	return ERR_OK;
}

void h_actors_create(struct api_call *c)
{
	struct err e = {0};
	const char *ct = http_request_header(c->req, "Content-Type");
	/* JSON (curl -d's form type too: its body is still JSON), or a TOML
	 * manifest as the whole body (manifests.c), which becomes {"manifest": ...}. */
	enum manifest_format fmt;
	if (api_body_format(ct, &fmt)) {
		snprintf(e.msg, sizeof(e.msg), "content type '%.100s' is not supported; send "
			 "application/json or application/toml", ct);
		api_problem(c, ERR_UNSUPPORTED, e.msg);
		return;
	}
	size_t len;
	const uint8_t *data = http_request_body(c->req, &len);
	json_t *body = fmt == MANIFEST_FORMAT_TOML
			       ? api_toml_spawn_body((const char *)data, len, &e)
			       : json_parse((const char *)data, len, 64, &e);
	struct spawn_request req = {0};
	if (!body || spawn_body(c, body, &req, &e)) {
		json_decref(body);
		api_problem_err(c, &e);
		return;
	}
	enum err_code rc = supervisor_spawn(c->api->cfg.sup, &req, spawn_answer, c);
	json_decref(body);   /* the supervisor copied what it needs */
	if (rc)
		api_problem(c, rc, "cannot spawn now");
}

/* ---- GET /actors ---- */

struct list_ctx {
	struct buf items;             /* the runs' JSON, comma-separated */
	struct db *db;
	int n, failed;
};

/* The run's newest event (any type): its type from the run's snapshot when the
 * supervisor appended it in this process or from the list's row, else from the
 * index. 0 when there is
 * none yet (the head event may be indexed after the run's fields change). */
static int last_event(struct db *db, const struct db_run *r, char type[160], int64_t *ts)
{
	*ts = r->updated_at;            /* the head event's time when it is the one applied */
	if (!r->head_seq)
		return 0;
	if (r->head_type[0]) {
		if (r->head_time)           /* a list row: read with the run (db_run_list) */
			*ts = r->head_time;
		memcpy(type, r->head_type, sizeof(r->head_type));
		return 1;
	}
	return !db_event_type(db, r->id, r->head_seq, ts, type, 160, NULL);
}

static json_t *last_event_json(const struct db_run *r, const char *type, int64_t ts)
{
	return json_pack("{s:s, s:I, s:o}", "type", type, "seq", (json_int_t)r->head_seq, "time",
			 api_time_json(ts));
}

/* Each run written directly as text, without a tree (issue 16). */
static int list_one(void *user, const struct db_run *r)
{
	struct list_ctx *l = user;
	if (strcmp(r->status, "deleted") == 0)
		return 0;
	char type[160];
	int64_t ts;
	int last = last_event(l->db, r, type, &ts);
	size_t len;
	char *text = api_run_text_last(r, last ? type : NULL, ts, &len);
	if (!text || (l->n && buf_append(&l->items, ",", 1)) ||
	    buf_append(&l->items, text, len)) {
		free(text);
		l->failed = 1;
		return 1;
	}
	free(text);
	l->n++;
	return 0;
}

static int valid_status(const char *s)
{
	static const char *const all[] = {"starting", "running", "stopping", "stopped",
					  "failed", "killed", NULL};
	for (const char *const *p = all; *p; p++)
		if (strcmp(*p, s) == 0)
			return 1;
	return 0;
}

static void job_list(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	uint64_t limit;
	struct db_run_filter f = {
		.status = http_request_query(c->req, "status"),
		.name = http_request_query(c->req, "name"),
		.parent = http_request_query(c->req, "parent"),
		.cursor = http_request_query(c->req, "cursor"),
		.head_event = 1,      /* last_event: one query per page, not one per run */
	};
	if (api_query_u64(c, "limit", 50, 1, 500, &limit, &e)) {
		api_problem_err(c, &e);
		return;
	}
	if (f.status && !valid_status(f.status)) {
		api_problem(c, ERR_INVALID, "'status' must be one of starting, running, "
			    "stopping, stopped, failed, killed");
		return;
	}
	if (f.parent && !uuid_valid(f.parent)) {
		api_problem(c, ERR_BAD_ID, "'parent' must be an actor id");
		return;
	}
	f.limit = (unsigned)limit;
	/* Where /events stood before the list was read: a client that streams from
	 * there misses nothing and need not replay the whole lifecycle log. */
	uint64_t events_head = db_lifecycle_head(supervisor_db(c->api->cfg.sup));
	struct list_ctx l = {.db = supervisor_db(c->api->cfg.sup)};
	buf_init(&l.items, 0);
	char *next = NULL;
	if (buf_append(&l.items, "{\"items\":[", 10) ||
	    db_run_list(supervisor_db(c->api->cfg.sup), &f, list_one, &l, &next, &e) ||
	    l.failed) {
		buf_release(&l.items);
		free(next);
		if (e.code)
			api_problem_err(c, &e);
		else
			api_problem(c, ERR_NOMEM, "out of memory listing actors");
		return;
	}
	/* the cursor is "<created_at>:<uuid>": nothing in it needs escaping */
	char tail[160];
	int n = snprintf(tail, sizeof(tail), "],\"next_cursor\":%s%s%s,\"events_head\":%llu}",
			 next ? "\"" : "", next ? next : "null", next ? "\"" : "",
			 (unsigned long long)events_head);
	free(next);
	size_t len;
	char *text = n > 0 && (size_t)n < sizeof(tail) && !buf_append(&l.items, tail, (size_t)n)
			     ? buf_steal(&l.items, &len) : NULL;
	buf_release(&l.items);
	if (!text) {
		api_problem(c, ERR_NOMEM, "out of memory listing actors");
		return;
	}
	api_bytes(c, 200, "application/json", text, len, NULL);
}

void h_actors_list(struct api_call *c)
{
	api_defer(c, job_list);
}

/* ---- one actor ---- */

static int check_id(struct api_call *c)
{
	if (uuid_valid(c->params[0]))
		return 1;
	char detail[200];
	snprintf(detail, sizeof(detail), "'%.80s' is not an actor id (a lowercase uuid)",
		 c->params[0]);
	api_problem(c, ERR_BAD_ID, detail);
	return 0;
}

void h_actor_get(struct api_call *c)
{
	if (!check_id(c))
		return;
	struct db_run r;
	struct err e = {0};
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e)) {
		api_problem_err(c, &e);
		return;
	}
	/* the head event may be indexed after the run's fields: the tag says
	 * whether the body has it */
	char type[160];
	int64_t ts;
	int last = last_event(supervisor_db(c->api->cfg.sup), &r, type, &ts);
	char etag[128];
	snprintf(etag, sizeof(etag), "\"%llu-%lld-%s%s\"", (unsigned long long)r.head_seq,
		 (long long)r.updated_at, r.status, last ? "-e" : "");
	const char *h[] = {"ETag", etag, "Cache-Control", "no-cache", NULL};
	if (api_not_modified(c, etag)) {
		db_run_release(&r);
		api_empty(c, 304, h);
		return;
	}
	/* written directly, without a tree (issue 16); the tree when that fails */
	size_t len;
	char *text = api_run_text_last(&r, last ? type : NULL, ts, &len);
	if (text) {
		db_run_release(&r);
		api_bytes(c, 200, "application/json", text, len, h);
		return;
	}
	json_t *o = api_run_json(&r);
	if (last)
		json_object_set_new(o, "last_event", last_event_json(&r, type, ts));
	db_run_release(&r);
	api_json_headers(c, 200, o, h);
}

static void lifecycle_answer(void *user, enum err_code rc, const struct err *err)
{
	struct api_call *c = user;
	if (rc == ERR_OK)
		api_empty(c, 204, NULL);
	else if (err)
		api_problem_err(c, err);
	else
		api_problem(c, rc, NULL);
}

void h_actor_stop(struct api_call *c)
{
	if (check_id(c))
		supervisor_stop(c->api->cfg.sup, c->params[0], 0, lifecycle_answer, c);
}

void h_actor_kill(struct api_call *c)
{
	if (check_id(c))
		supervisor_stop(c->api->cfg.sup, c->params[0], 1, lifecycle_answer, c);
}

void h_actor_delete(struct api_call *c)
{
	if (!check_id(c))
		return;
	const char *force = http_request_query(c->req, "force");
	if (force && strcmp(force, "true") != 0 && strcmp(force, "false") != 0) {
		api_problem(c, ERR_INVALID, "'force' must be 'true' or 'false'");
		return;
	}
	int forced = force && strcmp(force, "true") == 0;
	if (api_cluster_delete(c, forced))
		return;
	supervisor_delete(c->api->cfg.sup, c->params[0], forced, lifecycle_answer, c);
}
