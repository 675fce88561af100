/* mail.c - actor-to-actor messages and requests across nodes (issue 15).
 *
 * When an actor sends to or asks an actor this node does not run, the
 * supervisor hands the mail to these hooks (supervisor.h, struct
 * supervisor_remote). The mail travels as one NATS request on
 * `theater.node.<owner>.mail`: a JSON line {kind, to, from, timeout} then the
 * bytes. The owner accepts it with supervisor_send / supervisor_request,
 * exactly as for a local sender: a send is answered once the `received`
 * event is durable (and replicated) in the receiver's chain, so a send that
 * returned is never lost; a request is answered with the actor's reply.
 *
 * Ordering: a send parks its sender until the owner accepted it, and a
 * request until the answer, so one sender's mail arrives in
 * the order it was sent (per-sender FIFO), as locally.
 *
 * An actor being moved (its node died and another takes it over, or it is placed
 * here and not rebuilt yet) is not an unknown actor: mail to it (a send, a
 * request, a child's exit for its parent) is tried again,
 * with the bucket read afresh, for up to MAIL_RETRY_MS (a request: its timeout),
 * and only while the mail was certainly not taken: no node serves the old
 * owner's subject, the receiver answered {"retry": true} (it does not run the
 * actor, which the bucket still places somewhere), or the bucket could not be
 * read. A timeout is never tried again (the mail may have been taken). The
 * receiving side never sends mail on: a stale placement cannot bounce it.
 * Waiting holds no thread: every try is a job of our pool and the pause before
 * the next one a delayed job (start_tries), and the sender waits parked (an
 * actor's send or request frees its worker until the answer; the API's send
 * answers when done is called), so any number of senders may wait at once.
 *
 * Supervision uses the same subject: `child-exit` / `child-error` (a child's
 * end for its parent), `spawn` (a child whose manifest names another node:
 * the owner spawns it with the parent's id and answers {id, status} once it
 * runs and is placed), `children` (the ids of a parent's children there),
 * `child-state` (a child's state, once its parent is checked) and `orphans`
 * (a parent ended: stop its children there). None of them holds a thread while
 * it waits: every answer comes to the shared NATS inbox (cluster_request_start),
 * and a `children` or `orphans` round asks every other node at once. */
#include "cluster/cluster_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/log.h"

#define MAIL_TIMEOUT_MS 10000
#define MAIL_RETRY_MS 20000     /* a sender waits this long for a receiver being moved */

/* Set while this thread hands mail to the supervisor for actors here only: its
 * remote hooks then refuse (404) instead of sending the mail on (mail.c's own
 * deliveries: the receiving side, and a sender's try here). */
static __thread int local_only;

/* ---- the sending side ---- */

/* The mail's message for node's subject (malloc'd, *n bytes; NULL on OOM). */
static char *mail_envelope(const char *node, const char *kind, const char *to, const char *from,
			   const void *data, size_t len, uint32_t timeout_ms, size_t *n,
			   char subject[128])
{
	json_t *head = json_pack("{s:s, s:s, s:s?, s:I}", "kind", kind, "to", to, "from", from,
				 "timeout", (json_int_t)timeout_ms);
	char *msg = head ? cluster_envelope(head, data, len, n) : NULL;
	json_decref(head);
	snprintf(subject, 128, "theater.node.%s.mail", node);
	return msg;
}

/* The owner's {rc, msg[, retry]} + bytes answer (or the request's failure rc).
 * *retry (may be NULL): certainly not taken, and worth trying again (no node
 * serves the subject, or the receiver said so). */
static enum err_code mail_answer(const char *node, enum err_code rc, const uint8_t *raw,
				 size_t rlen, uint8_t **reply, size_t *reply_len, int *retry,
				 struct err *err)
{
	if (rc == ERR_UNAVAILABLE && retry)
		*retry = 1;             /* no one serves the subject: not delivered */
	if (rc)
		return rc;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *ans = cluster_unwrap(raw, rlen, &body, &blen);
	if (!ans)
		return err_set(err, ERR_UNAVAILABLE, "node '%s' answered mail with something else",
			       node);
	rc = (enum err_code)json_integer_value(json_object_get(ans, "rc"));
	if (rc >= ERR__COUNT)
		rc = ERR_INTERNAL;
	if (rc) {
		const char *why = json_string_value(json_object_get(ans, "msg"));
		err_set(err, rc, "%s", why ? why : err_code_name(rc));
		if (retry && json_is_true(json_object_get(ans, "retry")))
			*retry = 1;
	} else if (reply) {
		*reply = malloc(blen + 1);
		if (*reply) {
			memcpy(*reply, body, blen);
			(*reply)[blen] = '\0';
			*reply_len = blen;
		} else {
			rc = err_set(err, ERR_NOMEM, "out of memory");
		}
	}
	json_decref(ans);
	return rc;
}

/* Sends mail to node; its answer (or the request's failure, timeout_ms + 2 s
 * later: the owner's own timeout comes first) goes to fn(user) from the shared
 * inbox, so nothing waits for it. ERR_OK, or an error and fn is not called. */
static enum err_code mail_ask(struct cluster *c, const char *node, const char *kind,
			      const char *to, const char *from, const void *data, size_t len,
			      uint32_t timeout_ms, bus_reply_fn fn, void *user, struct err *err)
{
	size_t n = 0;
	char subject[128];
	char *msg = mail_envelope(node, kind, to, from, data, len, timeout_ms, &n, subject);
	if (!msg)
		return err_set(err, ERR_NOMEM, "out of memory");
	enum err_code rc = cluster_request_start(c, subject, msg, n, timeout_ms + 2000, fn, user,
						 err);
	free(msg);
	return rc;
}

/* ---- sends and requests to an actor that may be moving ---- */

/* The node that runs `to` now (perhaps this one: placed here, maybe not rebuilt
 * yet). Our copy of the bucket first, unless `fresh`; then the bucket's leader.
 * ERR_NOT_FOUND: no such actor, or deleted. Another error (*retry set): the
 * bucket cannot be read now. */
static enum err_code route(struct cluster *c, const char *to, int fresh,
			   char node[CLUSTER_NODE_MAX], int *retry, struct err *err)
{
	if (!fresh && cluster_lookup(c, to, node) && strcmp(node, c->node) != 0)
		return ERR_OK;
	enum err_code rc = cluster_locate(c, to, node, err);
	if (rc && rc != ERR_NOT_FOUND)
		*retry = 1;
	return rc;
}

/* Where `to` runs for this try: the node the caller or the last try found (node
 * not empty), or, on a try again (fresh), what the bucket's leader says now. */
static enum err_code where(struct cluster *c, const char *to, int fresh,
			   char node[CLUSTER_NODE_MAX], int *retry, struct err *err)
{
	if (!fresh && node[0])
		return ERR_OK;
	return route(c, to, fresh, node, retry, err);
}

struct retrying;
/* One try of something for an actor that may be moving. *retry: it was certainly
 * not done and is worth trying again. fresh: a try again (read the bucket).
 * *later set: the try goes on without a thread (a NATS request whose answer
 * comes later) and reports its result itself, once, with tried(). */
typedef enum err_code (*try_fn)(struct retrying *r, void *ctx, int fresh, int *later,
				int *retry, struct err *err);
/* After the last try, once: its result (err NULL when rc is ERR_OK); frees ctx. */
typedef void (*end_fn)(void *ctx, enum err_code rc, const struct err *err);

/* Tries of fn(ctx) on our pool, each a job of its own: a pause between two is a
 * delayed job, not a thread that sleeps, so any number may wait at once. */
struct retrying {
	struct cluster *c;
	try_fn fn;
	end_fn end;
	void *ctx;
	int64_t deadline;             /* monotonic ms */
	uint32_t pause;               /* ms before the next try */
	int fresh;                    /* 0 for the first try */
	int query;                    /* asks only: a try that timed out is tried again */
	enum err_code rc;             /* the last try's result */
	struct err err;
};

static void finish(struct retrying *r)
{
	r->end(r->ctx, r->rc, r->rc ? &r->err : NULL);
	free(r);
}

static void job_retrying(void *arg);

/* A try's result: the next try later, or the end (fn is done or not worth trying
 * again, the time is up, or the node stops). Any thread. */
static void tried(struct retrying *r, enum err_code rc, int retry, const struct err *err)
{
	r->rc = rc;
	if (rc && err)
		r->err = *err;
	uint32_t pause = r->pause;
	r->fresh = 1;
	r->pause = pause * 2 > 1000 ? 1000 : pause * 2;
	if (retry && cluster_mono_ms() + pause <= r->deadline && !cluster_leaving(r->c) &&
	    cluster_submit_after(r->c, pause, job_retrying, r) == ERR_OK)
		return;
	finish(r);
}

/* One try (a stopping node's pool runs delayed jobs at once: they end with the
 * last try's result). */
static void job_retrying(void *arg)
{
	struct retrying *r = arg;
	if (r->fresh && cluster_leaving(r->c)) {
		finish(r);
		return;
	}
	int retry = 0, later = 0;
	struct err e = {0};
	enum err_code rc = r->fn(r, r->ctx, r->fresh, &later, &retry, &e);
	if (!later)
		tried(r, rc, retry, &e);
}

/* fn(ctx) on our pool, tried again for up to `ms` (pauses of 100 ms doubling to
 * 1 s), then end(ctx, ...). ERR_OK; else nothing runs and the caller keeps ctx. */
static enum err_code start_tries(struct cluster *c, int64_t ms, try_fn fn, end_fn end,
				 void *ctx, struct err *err)
{
	struct retrying *r = calloc(1, sizeof(*r));
	if (!r)
		return err_set(err, ERR_NOMEM, "out of memory");
	*r = (struct retrying){.c = c, .fn = fn, .end = end, .ctx = ctx,
			       .deadline = cluster_mono_ms() + ms, .pause = 100};
	if (cluster_submit(c, job_retrying, r)) {
		free(r);
		return err_set(err, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return ERR_OK;
}

/* A try that is mail to another node, answered without a thread that waits. */
struct mail_wait {
	struct retrying *r;
	char node[CLUSTER_NODE_MAX];
	uint8_t **reply;              /* NULL: the answer's bytes are not kept */
	size_t *reply_len;
};

static void mail_answered(void *user, enum err_code rc, const struct err *err,
			  const uint8_t *data, size_t len)
{
	struct mail_wait *w = user;
	struct err e = {0};
	if (err)
		e = *err;
	int retry = 0;
	rc = mail_answer(w->node, rc, data, len, w->reply, w->reply_len, &retry, &e);
	struct retrying *r = w->r;
	free(w);
	retry |= r->query && rc == ERR_TIMEOUT;
	tried(r, rc, retry, &e);
}

/* Mail to node as a try of r: sets *later when it is on its way (its answer
 * calls tried); else the error. */
static enum err_code mail_try_start(struct retrying *r, const char *node, const char *kind,
				    const char *to, const char *from, const void *data,
				    size_t len, uint32_t timeout_ms, uint8_t **reply,
				    size_t *reply_len, int *later, struct err *err)
{
	struct mail_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(err, ERR_NOMEM, "out of memory");
	w->r = r;
	snprintf(w->node, sizeof(w->node), "%s", node);
	w->reply = reply;
	w->reply_len = reply_len;
	enum err_code rc = mail_ask(r->c, node, kind, to, from, data, len, timeout_ms,
				    mail_answered, w, err);
	if (rc)
		free(w);
	else
		*later = 1;
	return rc;
}

/* The actor is placed here but this node does not run it (yet). */
static enum err_code not_here_yet(const char *to, int *retry, struct err *err)
{
	*retry = 1;
	return err_set(err, ERR_UNAVAILABLE, "actor '%s' is being moved to this node and does "
		       "not run yet", to);
}

/* Mail of `kind` ("send", "child-exit", "child-error") handed to the supervisor
 * here, for actors here only. */
static enum err_code deliver_here(struct cluster *c, const char *kind, const char *to,
				  const char *from, const void *data, size_t len,
				  struct err *err)
{
	enum err_code rc;
	local_only = 1;
	if (strcmp(kind, "send") == 0) {
		rc = supervisor_send(c->sup, to, from, data, len, err);
	} else {
		rc = supervisor_notify_parent(c->sup, to, strcmp(kind, "child-error") == 0,
					      (const char *)data, len);
		if (rc)
			err_set(err, rc, "parent '%s' does not take the notice", to);
	}
	local_only = 0;
	return rc;
}

struct out_mail {
	struct cluster *c;
	char kind[16], to[37], from[37], node[CLUSTER_NODE_MAX];   /* node: "" until found */
	int has_from;
	uint8_t *data;
	size_t len;
	supervisor_done_fn done;      /* NULL: a child's exit (a failure is logged) */
	void *done_user;
};

/* One try of mail of `kind` to actor `to`, wherever it runs now. */
static enum err_code try_mail(struct retrying *r, void *ctx, int fresh, int *later,
			      int *retry, struct err *err)
{
	struct out_mail *m = ctx;
	enum err_code rc = where(m->c, m->to, fresh, m->node, retry, err);
	if (rc)
		return rc;
	const char *from = m->has_from ? m->from : NULL;
	if (strcmp(m->node, m->c->node) != 0)
		return mail_try_start(r, m->node, m->kind, m->to, from, m->data, m->len,
				      MAIL_TIMEOUT_MS, NULL, NULL, later, err);
	rc = deliver_here(m->c, m->kind, m->to, from, m->data, m->len, err);
	return rc == ERR_NOT_FOUND ? not_here_yet(m->to, retry, err) : rc;
}

static void end_mail(void *ctx, enum err_code rc, const struct err *err)
{
	struct out_mail *m = ctx;
	if (m->done)
		m->done(m->done_user, rc, err);
	else if (rc && rc != ERR_NOT_FOUND && rc != ERR_CONFLICT)
		log_warn_limited("cluster", "a child's exit did not reach its parent '%s': %s",
				 m->to, err->msg);
	free(m->data);
	free(m);
}

/* A copy of mail of `kind` to actor `to` (NULL on OOM); `size`: of the struct
 * that begins with it. */
static void *out_mail_new(struct cluster *c, size_t size, const char *kind, const char *to,
			  const char *from, const void *data, size_t len)
{
	struct out_mail *m = calloc(1, size);
	if (!m || !(m->data = malloc(len ? len : 1))) {
		free(m);
		return NULL;
	}
	m->c = c;
	snprintf(m->kind, sizeof(m->kind), "%s", kind);
	snprintf(m->to, sizeof(m->to), "%s", to);
	m->has_from = from != NULL;
	snprintf(m->from, sizeof(m->from), "%s", from ? from : "");
	memcpy(m->data, data, len);
	m->len = len;
	return m;
}

/* Mail of `kind` to actor `to` from our pool, tried again while it is being moved
 * (see the top); done (may be NULL) is called once it is taken or failed. */
static enum err_code mail_actor(struct cluster *c, const char *kind, const char *to,
				const char *from, const void *data, size_t len,
				supervisor_done_fn done, void *done_user, struct err *err)
{
	struct out_mail *m = out_mail_new(c, sizeof(*m), kind, to, from, data, len);
	if (!m)
		return err_set(err, ERR_NOMEM, "out of memory");
	m->done = done;
	m->done_user = done_user;
	enum err_code rc = start_tries(c, MAIL_RETRY_MS, try_mail, end_mail, m, err);
	if (rc) {
		free(m->data);
		free(m);
	}
	return rc;
}

static enum err_code remote_send(void *user, const char *to, const char *from,
				 const void *data, size_t len, supervisor_done_fn done,
				 void *done_user, struct err *err)
{
	struct cluster *c = user;
	if (local_only)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", to);
	return mail_actor(c, "send", to, from, data, len, done, done_user, err);
}

struct remote_req {
	struct out_mail m;             /* first: the request */
	int64_t deadline;              /* monotonic ms: the request's timeout */
	supervisor_reply_fn reply;
	void *reply_user;
	int taken;                     /* the supervisor here took it: it answers */
	uint8_t *ans;                  /* another node's answer */
	size_t alen;
};

/* One try of a request, for the time it has left. */
static enum err_code try_request(struct retrying *r, void *ctx, int fresh, int *later,
				 int *retry, struct err *err)
{
	struct remote_req *q = ctx;
	struct out_mail *m = &q->m;
	struct cluster *c = m->c;
	enum err_code rc = where(c, m->to, fresh, m->node, retry, err);
	if (rc)
		return rc;
	int64_t left = q->deadline - cluster_mono_ms();
	uint32_t timeout_ms = left > 1 ? (uint32_t)left : 1;
	const char *from = m->has_from ? m->from : NULL;
	if (strcmp(m->node, c->node) != 0) {
		free(q->ans);               /* an earlier try's, if any */
		q->ans = NULL;
		q->alen = 0;
		return mail_try_start(r, m->node, "request", m->to, from, m->data, m->len,
				      timeout_ms, &q->ans, &q->alen, later, err);
	}
	local_only = 1;
	rc = supervisor_request(c->sup, m->to, from, m->data, m->len, timeout_ms, q->reply,
				q->reply_user, err);
	local_only = 0;
	q->taken = rc == ERR_OK;
	return rc == ERR_NOT_FOUND ? not_here_yet(m->to, retry, err) : rc;
}

static void end_request(void *ctx, enum err_code rc, const struct err *err)
{
	struct remote_req *q = ctx;
	if (!q->taken)
		q->reply(q->reply_user, rc, err, q->ans, q->alen);
	free(q->ans);
	free(q->m.data);
	free(q);
}

static enum err_code remote_request(void *user, const char *to, const char *from,
				    const void *data, size_t len, uint32_t timeout_ms,
				    supervisor_reply_fn reply, void *reply_user, struct err *err)
{
	struct cluster *c = user;
	if (local_only)
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", to);
	struct remote_req *q = out_mail_new(c, sizeof(*q), "request", to, from, data, len);
	if (!q)
		return err_set(err, ERR_NOMEM, "out of memory");
	int retry = 0;
	enum err_code rc = route(c, to, 0, q->m.node, &retry, err);
	if (rc)                         /* unknown or deleted; or the bucket could not be
					 * read: the first try asks again */
		q->m.node[0] = '\0';
	if (!rc || retry) {
		if (!timeout_ms)
			timeout_ms = 30000;
		q->deadline = cluster_mono_ms() + timeout_ms;
		q->reply = reply;
		q->reply_user = reply_user;
		rc = start_tries(c, timeout_ms, try_request, end_request, q, err);
	}
	if (rc) {                       /* answered now */
		free(q->m.data);
		free(q);
	}
	return rc;
}

/* ---- supervision across nodes ---- */

/* A child's exit for its parent on another node, sent from the cluster's
 * threads (must not block); the child has ended, so every mail it sent was
 * accepted before. */
static void remote_notice(void *user, const char *parent, int error, const char *info,
			  size_t len)
{
	struct cluster *c = user;
	struct err e = {0};
	if (mail_actor(c, error ? "child-error" : "child-exit", parent, NULL, info, len, NULL,
		       NULL, &e))
		log_warn_limited("cluster", "a child's exit did not reach its parent '%s': %s",
				 parent, e.msg);
}

struct child_job {
	struct cluster *c;
	char node[CLUSTER_NODE_MAX], child[37], parent[37];
	int restart;
	supervisor_done_fn done;
	void *done_user;
};

/* One try: GET the child on its node, check its parent, then POST stop or restart.
 * *retry: certainly not done and worth trying again (the node does not answer or
 * answers 503, as while the child is being moved; never after a POST's timeout). */
static enum err_code try_child(struct retrying *self, void *ctx, int fresh, int *later,
			       int *retry, struct err *e)
{
	(void)self;
	(void)later;
	struct child_job *j = ctx;
	enum err_code rc = where(j->c, j->child, fresh, j->node, retry, e);
	if (rc)
		return rc;
	char target[128];
	snprintf(target, sizeof(target), "/actors/%s", j->child);
	struct cluster_http get = {.method = "GET", .target = target, .timeout_ms = 10000};
	struct cluster_reply r = {0};
	rc = cluster_call(j->c, j->node, &get, &r, e);
	json_t *run = NULL;
	if (rc == ERR_UNAVAILABLE || rc == ERR_TIMEOUT || (!rc && r.status == 503))
		*retry = 1;
	if (!rc && r.status == 404)
		rc = err_set(e, ERR_NOT_FOUND, "actor '%s' not found", j->child);
	else if (!rc && r.status != 200)
		rc = err_set(e, ERR_UNAVAILABLE, "node '%s' answered %d for '%s'", j->node,
			     r.status, j->child);
	if (!rc)
		run = json_parse((const char *)r.body, r.len, 16, e);
	const char *parent = json_string_value(json_object_get(run, "parent_id"));
	if (!rc && (!parent || strcmp(parent, j->parent) != 0))
		rc = err_set(e, ERR_FORBIDDEN_PATH, "actor '%s' is not a child of this actor",
			     j->child);
	json_decref(run);
	cluster_reply_release(&r);
	if (rc)
		return rc;
	snprintf(target, sizeof(target), "/actors/%s/%s", j->child,
		 j->restart ? "restart" : "stop");
	struct cluster_http post = {.method = "POST", .target = target, .timeout_ms = 30000};
	rc = cluster_call(j->c, j->node, &post, &r, e);
	if (rc == ERR_UNAVAILABLE || (!rc && r.status == 503))
		*retry = 1;             /* no one served it, or refused before doing it */
	if (!rc && r.status == 409 && !j->restart)
		rc = ERR_NOT_MODIFIED;          /* it had ended */
	else if (!rc && (r.status < 200 || r.status > 299))
		rc = err_set(e, r.status == 404 ? ERR_NOT_FOUND :
				r.status == 503 ? ERR_UNAVAILABLE : ERR_CONFLICT,
			     "node '%s' answered %d: %.200s", j->node, r.status,
			     r.body ? (const char *)r.body : "");
	cluster_reply_release(&r);
	return rc;
}

/* stop-child / restart-child of a child on another node, tried again while it is
 * being moved (as mail is). */
static void end_child(void *ctx, enum err_code rc, const struct err *err)
{
	struct child_job *j = ctx;
	j->done(j->done_user, rc, err);
	free(j);
}

static enum err_code remote_child(void *user, const char *child, const char *parent,
				  int restart, supervisor_done_fn done, void *done_user,
				  struct err *err)
{
	struct cluster *c = user;
	struct child_job *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(err, ERR_NOMEM, "out of memory");
	struct err le = {0};
	int known = cluster_lookup(c, child, j->node);
	/* our copy names a node that is down: it may have moved (a failover our
	 * watch has not delivered yet); the bucket says */
	if (known && strcmp(j->node, c->node) != 0 && !cluster_node_up(c, j->node))
		known = cluster_locate(c, child, j->node, &le) == ERR_OK;
	/* placed here and not run here (being moved here): the job waits for it */
	if (!known) {
		free(j);
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", child);
	}
	j->c = c;
	snprintf(j->child, sizeof(j->child), "%s", child);
	snprintf(j->parent, sizeof(j->parent), "%s", parent);
	j->restart = restart;
	j->done = done;
	j->done_user = done_user;
	enum err_code rc = start_tries(c, MAIL_RETRY_MS, try_child, end_child, j, err);
	if (rc)
		free(j);
	return rc;
}

/* ---- children across nodes (docs/cluster.md "Children across nodes") ---- */

#define SPAWN_REMOTE_MS 28000         /* under the spawn host call's own 30 s */

struct spawn_job {
	struct cluster *c;
	char node[CLUSTER_NODE_MAX], parent[37];
	char *body;                   /* {"manifest": ..., "initial_state": ...} */
	spawn_done_fn done;
	void *done_user;
};

struct orphan_ask {
	char node[CLUSTER_NODE_MAX], parent[37];
};

static void orphans_answered(void *user, enum err_code rc, const struct err *err,
			     const uint8_t *data, size_t len)
{
	struct orphan_ask *a = user;
	struct err e = {0};
	if (err)
		e = *err;
	if (mail_answer(a->node, rc, data, len, NULL, NULL, NULL, &e))
		log_warn("cluster", "node '%s' did not stop the child it spawned for '%s', which "
			 "had ended: %s", a->node, a->parent, e.msg);
	free(a);
}

/* The parent ended here while its child was being spawned elsewhere: the
 * child is stopped there (its end stopped only the children known then). */
static void stop_if_orphan(struct cluster *c, const char *node, const char *parent)
{
	struct db_run p = {0};
	struct err e = {0};
	int live = supervisor_get(c->sup, parent, &p, &e) == ERR_OK &&
		   (strcmp(p.status, "running") == 0 || strcmp(p.status, "starting") == 0);
	db_run_release(&p);
	if (live)
		return;
	struct orphan_ask *a = calloc(1, sizeof(*a));
	enum err_code rc = a ? ERR_OK : err_set(&e, ERR_NOMEM, "out of memory");
	if (a) {
		snprintf(a->node, sizeof(a->node), "%s", node);
		snprintf(a->parent, sizeof(a->parent), "%s", parent);
		rc = mail_ask(c, node, "orphans", parent, NULL, "", 0, MAIL_TIMEOUT_MS,
			      orphans_answered, a, &e);
		if (rc)
			free(a);
	}
	if (rc)
		log_warn("cluster", "node '%s' is not asked to stop the child it spawned for "
			 "'%s', which had ended: %s", node, parent, e.msg);
}

/* The parent ended here meanwhile: a job, as it may ask the child's node. */
static void job_orphan_check(void *arg)
{
	struct spawn_job *j = arg;
	stop_if_orphan(j->c, j->node, j->parent);
	free(j->body);
	free(j);
}

/* The child's node answered the spawn, {id, status[, code, error]}, or it did
 * not (rc). Runs on the thread that delivers answers: nothing here waits. */
static void spawn_answered(void *user, enum err_code rc, const struct err *err,
			   const uint8_t *data, size_t len)
{
	struct spawn_job *j = user;
	uint8_t *ans = NULL;
	size_t alen = 0;
	struct err e = {0};
	if (err)
		e = *err;
	rc = mail_answer(j->node, rc, data, len, &ans, &alen, NULL, &e);
	json_t *v = rc ? NULL : json_parse((const char *)ans, alen, 8, &e);
	const char *id = json_string_value(json_object_get(v, "id"));
	const char *status = json_string_value(json_object_get(v, "status"));
	const char *why = json_string_value(json_object_get(v, "error"));
	if (!rc && why)
		err_set(&e, (enum err_code)json_integer_value(json_object_get(v, "code")), "%s", why);
	if (!rc && (!id || !status)) {
		rc = why ? e.code : err_set(&e, ERR_INTERNAL, "node '%s' answered a spawn without "
					    "a run", j->node);
		if (!rc)
			rc = ERR_INTERNAL;
	}
	int check = 0;
	if (rc) {
		j->done(j->done_user, rc, &e, NULL);
	} else {
		struct db_run run = {0};
		snprintf(run.id, sizeof(run.id), "%s", id);
		snprintf(run.parent_id, sizeof(run.parent_id), "%s", j->parent);
		run.status = (char *)status;
		j->done(j->done_user, ERR_OK, why ? &e : NULL, &run);
		check = 1;
	}
	json_decref(v);
	free(ans);
	if (check && cluster_submit(j->c, job_orphan_check, j) == ERR_OK)
		return;
	free(j->body);
	free(j);
}

static enum err_code remote_spawn(void *user, const struct spawn_request *req, int *here_out,
				  spawn_done_fn done, void *done_user, struct err *err)
{
	struct cluster *c = user;
	const char *want = json_string_value(json_object_get(req->manifest, "node"));
	char node[CLUSTER_NODE_MAX];
	*here_out = 1;
	if (!want || !req->parent_id)
		return ERR_OK;                  /* the parent's node, as before */
	if (strcmp(want, "*") == 0)
		cluster_least_loaded(c, node);
	else if (strlen(want) < CLUSTER_NODE_MAX && cluster_node_up(c, want))
		snprintf(node, sizeof(node), "%s", want);
	else
		return err_set(err, ERR_NOT_FOUND, "the child's manifest names node '%.64s', which "
			       "is not up in the cluster", want);
	if (strcmp(node, c->node) == 0)
		return ERR_OK;
	struct spawn_job *j = calloc(1, sizeof(*j));
	json_t *body = json_pack("{s:O, s:O?}", "manifest", req->manifest, "initial_state",
				 req->initial_state);
	if (!j || !body || !(j->body = json_compact(body))) {
		json_decref(body);
		free(j);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	json_decref(body);
	j->c = c;
	snprintf(j->node, sizeof(j->node), "%s", node);
	snprintf(j->parent, sizeof(j->parent), "%s", req->parent_id);
	j->done = done;
	j->done_user = done_user;
	enum err_code rc = mail_ask(c, node, "spawn", "", j->parent, j->body, strlen(j->body),
				    SPAWN_REMOTE_MS, spawn_answered, j, err);
	if (rc) {
		free(j->body);
		free(j);
		return rc;
	}
	*here_out = 0;
	return ERR_OK;
}

static void ignore_done(void *user, enum err_code rc, const struct err *err)
{
	(void)user;
	(void)rc;
	(void)err;
}

/* Stops the children of parent that run here; their ids (or NULL). */
static json_t *stop_children_here(struct cluster *c, const char *parent)
{
	json_t *ids = supervisor_children(c->sup, parent);
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		supervisor_stop(c->sup, json_string_value(v), 0, ignore_done, NULL);
	return ids;
}

/* A question about a parent's children for other nodes: list them ("children"),
 * or stop them ("orphans"). */
struct kids_job {
	struct cluster *c;
	char parent[37], child[37], node[CLUSTER_NODE_MAX];
	int stop;
	int round;                     /* broadcasts so far */
	int64_t deadline;              /* children: monotonic ms to answer by */
	supervisor_reply_fn reply;
	void *reply_user;
};

/* Orphans are asked for again when a node did not answer: a node that died with
 * children of the parent has them taken over by others within seconds (ORPHAN_WAIT_MS,
 * doubled each round), which the next broadcast reaches; a node that comes back
 * answers it itself. */
#define ORPHAN_ROUNDS 4
#define ORPHAN_WAIT_MS 5000
/* A list of children is asked for again (every CHILDREN_PAUSE_MS, for up to
 * MAIL_RETRY_MS) while a node did not answer or a failover has yet to move an
 * actor from a node that is down: the children there are being moved, and the
 * answer waits for them rather than leave them out. */
#define CHILDREN_PAUSE_MS 500

/* One round of a kids_job: every other node up asked at once; the round ends
 * when the last one answered (or its request expired). No thread waits. */
struct kids_round {
	struct kids_job *j;
	pthread_mutex_t lock;
	size_t pending;                /* answers to come, +1 while asking */
	size_t missed;                 /* nodes that did not answer */
	json_t *all;                   /* children: the ids answered */
};

struct kids_ask {
	struct kids_round *k;
	char node[CLUSTER_NODE_MAX];
};

static void job_kids(void *arg);

/* After the round: ask again later, or answer. */
static void kids_round_end(struct kids_round *k)
{
	struct kids_job *j = k->j;
	json_t *all = k->all;
	size_t missed = k->missed;
	pthread_mutex_destroy(&k->lock);
	free(k);
	if (j->stop && (missed || cluster_nodes_down(j->c)) && ++j->round < ORPHAN_ROUNDS &&
	    cluster_submit_after(j->c, ORPHAN_WAIT_MS << (j->round - 1), job_kids, j) == ERR_OK) {
		json_decref(all);
		return;
	}
	if (!j->stop && (missed || cluster_moves_pending(j->c)) && !cluster_leaving(j->c) &&
	    cluster_mono_ms() + CHILDREN_PAUSE_MS < j->deadline) {
		j->round++;
		if (cluster_submit_after(j->c, CHILDREN_PAUSE_MS, job_kids, j) == ERR_OK) {
			json_decref(all);
			return;
		}
	}
	char *text = j->reply ? json_compact(all) : NULL;
	struct err e = {0};
	if (j->reply && text)
		j->reply(j->reply_user, ERR_OK, NULL, (const uint8_t *)text, strlen(text));
	else if (j->reply)
		j->reply(j->reply_user, err_set(&e, ERR_NOMEM, "out of memory"), &e, NULL, 0);
	free(text);
	json_decref(all);
	free(j);
}

/* One node's part of the round is done (missed: it did not answer). */
static void kids_part_done(struct kids_round *k, int missed, json_t *ids)
{
	pthread_mutex_lock(&k->lock);
	k->missed += missed != 0;
	json_array_extend(k->all, ids);
	int last = --k->pending == 0;
	pthread_mutex_unlock(&k->lock);
	if (last)
		kids_round_end(k);
}

static void kids_miss(struct kids_round *k, const char *node, const struct err *e)
{
	struct kids_job *j = k->j;
	if (j->stop || !j->round)     /* a list's later rounds: once is enough */
		log_warn("cluster", "node '%s' did not answer for the children of '%s': %s",
			 node, j->parent, e->msg);
}

static void kids_answered(void *user, enum err_code rc, const struct err *err,
			  const uint8_t *data, size_t len)
{
	struct kids_ask *a = user;
	struct kids_round *k = a->k;
	uint8_t *ans = NULL;
	size_t alen = 0;
	struct err e = {0};
	if (err)
		e = *err;
	rc = mail_answer(a->node, rc, data, len, k->j->stop ? NULL : &ans, &alen, NULL, &e);
	json_t *ids = rc || k->j->stop ? NULL : json_parse((const char *)ans, alen, 4, &e);
	if (rc)
		kids_miss(k, a->node, &e);
	free(ans);
	free(a);
	kids_part_done(k, rc != ERR_OK, ids);
	json_decref(ids);
}

/* Every other node up is asked; a node that does not answer is skipped (asked
 * again later, see above). */
static void job_kids(void *arg)
{
	struct kids_job *j = arg;
	if (j->stop && j->round && cluster_leaving(j->c)) {   /* run at once by the stop */
		free(j);
		return;
	}
	struct kids_round *k = calloc(1, sizeof(*k));
	if (!k || !(k->all = json_array())) {
		free(k);
		struct err e = {0};
		if (j->reply)
			j->reply(j->reply_user, err_set(&e, ERR_NOMEM, "out of memory"), &e, NULL, 0);
		free(j);
		return;
	}
	k->j = j;
	k->pending = 1;
	pthread_mutex_init(&k->lock, NULL);
	char names[MAX_NODES][CLUSTER_NODE_MAX];
	size_t n = cluster_nodes_up(j->c, names, MAX_NODES);
	const char *kind = j->stop ? "orphans" : "children";
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], j->c->node) == 0) {
			/* a later round: this node may have taken some over meanwhile */
			if (j->stop && j->round)
				json_decref(stop_children_here(j->c, j->parent));
			continue;
		}
		struct err e = {0};
		struct kids_ask *a = calloc(1, sizeof(*a));
		enum err_code rc = a ? ERR_OK : err_set(&e, ERR_NOMEM, "out of memory");
		if (a) {
			a->k = k;
			memcpy(a->node, names[i], sizeof(a->node));   /* same size, NUL-ended */
			pthread_mutex_lock(&k->lock);
			k->pending++;
			pthread_mutex_unlock(&k->lock);
			rc = mail_ask(j->c, names[i], kind, j->parent, NULL, "", 0, MAIL_TIMEOUT_MS,
				      kids_answered, a, &e);
			if (rc) {
				pthread_mutex_lock(&k->lock);
				k->pending--;
				pthread_mutex_unlock(&k->lock);
				free(a);
			}
		}
		if (rc) {                /* not asked: missed (our own count keeps
					  * the round open) */
			kids_miss(k, names[i], &e);
			pthread_mutex_lock(&k->lock);
			k->missed++;
			pthread_mutex_unlock(&k->lock);
		}
	}
	kids_part_done(k, 0, NULL);      /* every request is out: our own count */
}

static enum err_code start_kids(struct cluster *c, const char *parent, int stop,
				supervisor_reply_fn reply, void *reply_user, struct err *err)
{
	struct kids_job *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(err, ERR_NOMEM, "out of memory");
	j->c = c;
	snprintf(j->parent, sizeof(j->parent), "%s", parent);
	j->stop = stop;
	j->deadline = cluster_mono_ms() + MAIL_RETRY_MS;
	j->reply = reply;
	j->reply_user = reply_user;
	if (cluster_submit(c, job_kids, j)) {
		free(j);
		return err_set(err, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return ERR_OK;
}

static enum err_code remote_children(void *user, const char *parent, supervisor_reply_fn reply,
				     void *reply_user, struct err *err)
{
	return start_kids(user, parent, 0, reply, reply_user, err);
}

static void remote_orphans(void *user, const char *parent)
{
	struct cluster *c = user;
	char node[CLUSTER_NODE_MAX];
	struct err e = {0};
	/* a copy fenced here (the parent runs on elsewhere) leaves them be */
	if (cluster_lookup(c, parent, node) && strcmp(node, c->node) != 0)
		return;
	if (start_kids(c, parent, 1, NULL, NULL, &e))
		log_warn("cluster", "the children of '%s' on other nodes are not stopped: %s",
			 parent, e.msg);
}

static enum err_code serve_child_state(struct cluster *c, const char *child, const char *parent,
				       uint8_t **data, size_t *len, struct err *err);

struct state_try {
	struct kids_job *j;
	uint8_t *ans;
	size_t alen;
};

/* One try of get-child-state (a query: any failure to reach the child is safe to
 * try again). */
static enum err_code try_child_state(struct retrying *self, void *ctx, int fresh,
				     int *later, int *retry, struct err *e)
{
	struct state_try *t = ctx;
	struct kids_job *j = t->j;
	free(t->ans);
	t->ans = NULL;
	t->alen = 0;
	enum err_code rc = where(j->c, j->child, fresh, j->node, retry, e);
	if (rc)
		return rc;
	if (strcmp(j->node, j->c->node) != 0) {
		self->query = 1;
		return mail_try_start(self, j->node, "child-state", j->child, j->parent, "", 0,
				      MAIL_TIMEOUT_MS, &t->ans, &t->alen, later, e);
	}
	rc = serve_child_state(j->c, j->child, j->parent, &t->ans, &t->alen, e);
	return rc == ERR_NOT_FOUND ? not_here_yet(j->child, retry, e) : rc;
}

/* get-child-state of a child on another node, tried again while it is being moved. */
static void end_child_state(void *ctx, enum err_code rc, const struct err *err)
{
	struct state_try *t = ctx;
	t->j->reply(t->j->reply_user, rc, err, t->ans, t->alen);
	free(t->ans);
	free(t->j);
	free(t);
}

static enum err_code remote_child_state(void *user, const char *child, const char *parent,
					supervisor_reply_fn reply, void *reply_user,
					struct err *err)
{
	struct cluster *c = user;
	struct kids_job *j = calloc(1, sizeof(*j));
	struct state_try *t = calloc(1, sizeof(*t));
	if (!j || !t) {
		free(j);
		free(t);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	int retry = 0;
	enum err_code rc = route(c, child, 0, j->node, &retry, err);
	if (rc)                         /* unknown or deleted; or the bucket could not be
					 * read: the first try asks again */
		j->node[0] = '\0';
	if (!rc || retry) {
		j->c = c;
		snprintf(j->child, sizeof(j->child), "%s", child);
		snprintf(j->parent, sizeof(j->parent), "%s", parent);
		j->reply = reply;
		j->reply_user = reply_user;
		t->j = j;
		rc = start_tries(c, MAIL_RETRY_MS, try_child_state, end_child_state, t, err);
	}
	if (rc) {                       /* answered now */
		free(j);
		free(t);
	}
	return rc;
}

/* ---- the receiving side ---- */

struct mail_job {
	struct cluster *c;
	char *reply;
	uint8_t *data;
	size_t len;
};

static void answer_mail_ex(struct cluster *c, const char *reply, enum err_code rc,
			   const struct err *err, const uint8_t *data, size_t len, int retry)
{
	json_t *head = json_pack("{s:i, s:s?}", "rc", (int)rc, "msg", rc && err ? err->msg : NULL);
	if (head && retry)
		json_object_set_new(head, "retry", json_true());
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, data, len, &n) : NULL;
	json_decref(head);
	struct err e = {0};
	if (!msg || bus_publish(c->bus, reply, msg, n, &e))
		log_warn_limited("cluster", "cannot answer mail from another node: %s",
				 msg ? e.msg : "out of memory");
	free(msg);
}

static void answer_mail(struct cluster *c, const char *reply, enum err_code rc,
			const struct err *err, const uint8_t *data, size_t len)
{
	answer_mail_ex(c, reply, rc, err, data, len, 0);
}

/* Mail for an actor this node does not run: unknown (404) only when the bucket's
 * leader says so; an actor it still places somewhere (being moved here, or the
 * sender's copy of the bucket is stale), or a bucket that cannot be read, gets
 * "not taken, try again". */
static enum err_code not_run_here(struct cluster *c, const char *to, int *retry,
				  struct err *err)
{
	char node[CLUSTER_NODE_MAX];
	struct err le = {0};
	enum err_code rc = cluster_locate(c, to, node, &le);
	if (rc == ERR_NOT_FOUND)
		return err_set(err, ERR_NOT_FOUND, "%s", le.msg);
	*retry = 1;
	if (rc)
		return err_set(err, ERR_UNAVAILABLE, "node '%s' does not run actor '%s' and cannot "
			       "read where it runs: %s", c->node, to, le.msg);
	return err_set(err, ERR_UNAVAILABLE, "node '%s' does not run actor '%s' (placed on "
		       "'%s'): not taken", c->node, to, node);
}

struct pending_reply {
	struct cluster *c;
	char *reply;
};

static void on_local_reply(void *user, enum err_code rc, const struct err *err,
			   const uint8_t *data, size_t len)
{
	struct pending_reply *p = user;
	answer_mail(p->c, p->reply, rc, err, data, len);
	free(p->reply);
	free(p);
}

/* A spawn asked by a parent on another node: answered once the child runs
 * (or failed) and its placement is recorded, so the parent's node can use it
 * at once. */
struct pending_spawn {
	struct cluster *c;
	char *reply;
	json_t *answer;
};

static void job_spawn_answer(void *arg)
{
	struct pending_spawn *p = arg;
	const char *id = json_string_value(json_object_get(p->answer, "id"));
	struct err e = {0};
	if (id && cluster_place(p->c, id, &e))
		log_warn_limited("cluster", "placement of child '%s' not recorded: %s", id, e.msg);
	char *text = json_compact(p->answer);
	answer_mail(p->c, p->reply, text ? ERR_OK : ERR_NOMEM, NULL, (const uint8_t *)text,
		    text ? strlen(text) : 0);
	free(text);
	json_decref(p->answer);
	free(p->reply);
	free(p);
}

static void on_child_spawned(void *user, enum err_code rc, const struct err *err,
			     const struct db_run *run)
{
	struct pending_spawn *p = user;
	p->answer = json_object();
	if (run) {
		json_object_set_new(p->answer, "id", json_string(run->id));
		json_object_set_new(p->answer, "status", json_string(run->status ? run->status
										 : ""));
	}
	if (rc || (err && err->msg[0])) {
		json_object_set_new(p->answer, "code", json_integer(rc ? rc : err->code));
		json_object_set_new(p->answer, "error", json_string(err && err->msg[0]
								    ? err->msg
								    : err_code_name(rc)));
	}
	if (cluster_submit(p->c, job_spawn_answer, p))
		job_spawn_answer(p);        /* stopping: answer from here */
}

static enum err_code serve_spawn(struct cluster *c, const char *reply, const char *parent,
				 uint32_t timeout, const uint8_t *body, size_t len,
				 struct err *err)
{
	json_t *v = json_parse((const char *)body, len, JSON_MAX_DEPTH_DEFAULT, err);
	json_t *m = json_object_get(v, "manifest");
	struct pending_spawn *p = NULL;
	enum err_code rc = ERR_OK;
	if (!m || !parent)
		rc = err_set(err, ERR_INVALID, "malformed spawn from another node");
	else if (!(p = calloc(1, sizeof(*p))) || !(p->reply = strdup(reply)))
		rc = err_set(err, ERR_NOMEM, "out of memory");
	if (!rc) {
		p->c = c;
		struct spawn_request req = {
			.manifest = m, .initial_state = json_object_get(v, "initial_state"),
			.parent_id = parent, .parent_remote = 1, .wait = SPAWN_WAIT_RUNNING,
			.timeout_ms = timeout,
		};
		rc = supervisor_spawn(c->sup, &req, on_child_spawned, p);
		if (rc)
			err_set(err, rc, "this node is not accepting spawns");
	}
	if (rc && p) {
		free(p->reply);
		free(p);
	}
	json_decref(v);
	return rc;
}

/* The state of child for parent: its node checks the parent. */
static enum err_code serve_child_state(struct cluster *c, const char *child, const char *parent,
				       uint8_t **data, size_t *len, struct err *err)
{
	struct db_run r = {0};
	enum err_code rc = supervisor_get(c->sup, child, &r, err);
	if (!rc && (!parent || strcmp(r.parent_id, parent) != 0))
		rc = err_set(err, ERR_FORBIDDEN_PATH, "actor '%s' is not a child of this actor",
			     child);
	db_run_release(&r);
	return rc ? rc : supervisor_state(c->sup, child, data, len, err);
}

/* "children" (list) and "orphans" (stop) of a parent on another node. */
static void serve_kids(struct cluster *c, const char *reply, const char *kind,
		       const char *parent)
{
	json_t *ids = strcmp(kind, "orphans") == 0 ? stop_children_here(c, parent)
						   : supervisor_children(c->sup, parent);
	char *text = strcmp(kind, "children") == 0 && ids ? json_compact(ids) : NULL;
	answer_mail(c, reply, ERR_OK, NULL, (const uint8_t *)(text ? text : ""),
		    text ? strlen(text) : 0);
	free(text);
	json_decref(ids);
}

static void job_mail(void *arg)
{
	struct mail_job *j = arg;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(j->data, j->len, &body, &blen);
	const char *kind = json_string_value(json_object_get(head, "kind"));
	const char *to = json_string_value(json_object_get(head, "to"));
	const char *from = json_string_value(json_object_get(head, "from"));
	uint32_t timeout = (uint32_t)json_integer_value(json_object_get(head, "timeout"));
	struct err e = {0};
	enum err_code rc;
	int retry = 0;
	if (!kind || !to) {
		rc = err_set(&e, ERR_INVALID, "malformed mail from another node");
	} else if (strcmp(kind, "send") == 0) {
		rc = deliver_here(j->c, kind, to, from, body, blen, &e);
		if (rc == ERR_NOT_FOUND)
			rc = not_run_here(j->c, to, &retry, &e);
	} else if (strcmp(kind, "spawn") == 0) {
		rc = serve_spawn(j->c, j->reply, from, timeout, body, blen, &e);
		if (!rc)
			goto done;   /* answered from job_spawn_answer */
	} else if (strcmp(kind, "children") == 0 || strcmp(kind, "orphans") == 0) {
		serve_kids(j->c, j->reply, kind, to);
		goto done;
	} else if (strcmp(kind, "child-state") == 0) {
		uint8_t *st = NULL;
		size_t sl = 0;
		rc = serve_child_state(j->c, to, from, &st, &sl, &e);
		if (rc == ERR_NOT_FOUND)
			rc = not_run_here(j->c, to, &retry, &e);
		answer_mail_ex(j->c, j->reply, rc, &e, st, sl, retry);
		free(st);
		goto done;
	} else if (strcmp(kind, "child-exit") == 0 || strcmp(kind, "child-error") == 0) {
		rc = deliver_here(j->c, kind, to, from, body, blen, &e);
		if (rc == ERR_NOT_FOUND)
			rc = not_run_here(j->c, to, &retry, &e);
	} else {
		struct pending_reply *p = calloc(1, sizeof(*p));
		if (p && (p->reply = strdup(j->reply))) {
			p->c = j->c;
			local_only = 1;
			rc = supervisor_request(j->c->sup, to, from, body, blen, timeout,
						on_local_reply, p, &e);
			local_only = 0;
			if (!rc)
				goto done;   /* answered from on_local_reply */
			if (rc == ERR_NOT_FOUND)
				rc = not_run_here(j->c, to, &retry, &e);
			free(p->reply);
		} else {
			rc = err_set(&e, ERR_NOMEM, "out of memory");
		}
		free(p);
	}
	answer_mail_ex(j->c, j->reply, rc, &e, NULL, 0, retry);
done:
	json_decref(head);
	free(j->reply);
	free(j->data);
	free(j);
}

static void on_mail(void *user, const char *reply, const uint8_t *data, size_t len)
{
	struct cluster *c = user;
	struct mail_job *j = reply ? calloc(1, sizeof(*j)) : NULL;
	if (!j)
		return;
	j->c = c;
	j->reply = strdup(reply);
	j->data = malloc(len + 1);
	if (j->reply && j->data) {
		memcpy(j->data, data, len);
		j->data[len] = '\0';
		j->len = len;
		uint32_t late = (uint32_t)c->test_mail_delay_ms;
		if ((late ? cluster_submit_after(c, late, job_mail, j)
			  : cluster_submit(c, job_mail, j)) == ERR_OK)
			return;
	}
	free(j->reply);
	free(j->data);
	free(j);
}

enum err_code mail_start(struct cluster *c, struct err *err)
{
	char subject[128];
	snprintf(subject, sizeof(subject), "theater.node.%s.mail", c->node);
	enum err_code rc = bus_subscribe(c->bus, subject, NULL, on_mail, c, &c->mail_sub, err);
	if (rc)
		return rc;
	struct supervisor_remote r = {.send = remote_send, .request = remote_request,
				      .notice = remote_notice, .child = remote_child,
				      .spawn = remote_spawn, .children = remote_children,
				      .child_state = remote_child_state, .orphans = remote_orphans,
				      .user = c};
	supervisor_set_remote(c->sup, &r);
	return ERR_OK;
}

void mail_stop(struct cluster *c)
{
	supervisor_set_remote(c->sup, NULL);
	bus_unsubscribe(c->mail_sub);
	c->mail_sub = NULL;
}
