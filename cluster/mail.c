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
 * Ordering: a send blocks its sender until the owner accepted it, and a
 * request parks its sender until the answer, so one sender's mail arrives in
 * the order it was sent (per-sender FIFO), as locally. */
#include "cluster/cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/log.h"

#define MAIL_TIMEOUT_MS 10000

/* ---- the sending side ---- */

static enum err_code owner_of(struct cluster *c, const char *to, char node[CLUSTER_NODE_MAX],
			      struct err *err)
{
	if (cluster_lookup(c, to, node) && strcmp(node, c->node) != 0)
		return ERR_OK;
	struct err e = {0};
	if (cluster_locate(c, to, node, &e) == ERR_OK && strcmp(node, c->node) != 0)
		return ERR_OK;
	return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", to);
}

/* Sends the mail and reads the owner's {rc, msg} + bytes answer. */
static enum err_code mail_call(struct cluster *c, const char *node, const char *kind,
			       const char *to, const char *from, const void *data, size_t len,
			       uint32_t timeout_ms, uint8_t **reply, size_t *reply_len,
			       struct err *err)
{
	json_t *head = json_pack("{s:s, s:s, s:s?, s:I}", "kind", kind, "to", to, "from", from,
				 "timeout", (json_int_t)timeout_ms);
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, data, len, &n) : NULL;
	json_decref(head);
	if (!msg)
		return err_set(err, ERR_NOMEM, "out of memory");
	char subject[128];
	snprintf(subject, sizeof(subject), "theater.node.%s.mail", node);
	uint8_t *raw = NULL;
	size_t rlen = 0;
	enum err_code rc = bus_request(c->bus, subject, msg, n, timeout_ms + 2000, &raw, &rlen,
				       err);
	free(msg);
	if (rc)
		return rc;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *ans = cluster_unwrap(raw, rlen, &body, &blen);
	if (!ans) {
		free(raw);
		return err_set(err, ERR_UNAVAILABLE, "node '%s' answered mail with something else",
			       node);
	}
	rc = (enum err_code)json_integer_value(json_object_get(ans, "rc"));
	if (rc >= ERR__COUNT)
		rc = ERR_INTERNAL;
	if (rc) {
		const char *why = json_string_value(json_object_get(ans, "msg"));
		err_set(err, rc, "%s", why ? why : err_code_name(rc));
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
	free(raw);
	return rc;
}

static enum err_code remote_send(void *user, const char *to, const char *from,
				 const void *data, size_t len, struct err *err)
{
	struct cluster *c = user;
	char node[CLUSTER_NODE_MAX];
	enum err_code rc = owner_of(c, to, node, err);
	return rc ? rc : mail_call(c, node, "send", to, from, data, len, MAIL_TIMEOUT_MS, NULL,
				   NULL, err);
}

struct remote_req {
	struct cluster *c;
	char node[CLUSTER_NODE_MAX], to[37], from[37];
	int has_from;
	uint8_t *data;
	size_t len;
	uint32_t timeout_ms;
	supervisor_reply_fn reply;
	void *reply_user;
};

static void job_request(void *arg)
{
	struct remote_req *q = arg;
	uint8_t *ans = NULL;
	size_t alen = 0;
	struct err e = {0};
	enum err_code rc = mail_call(q->c, q->node, "request", q->to, q->has_from ? q->from : NULL,
				     q->data, q->len, q->timeout_ms, &ans, &alen, &e);
	q->reply(q->reply_user, rc, rc ? &e : NULL, ans, alen);
	free(ans);
	free(q->data);
	free(q);
}

static enum err_code remote_request(void *user, const char *to, const char *from,
				    const void *data, size_t len, uint32_t timeout_ms,
				    supervisor_reply_fn reply, void *reply_user, struct err *err)
{
	struct cluster *c = user;
	struct remote_req *q = calloc(1, sizeof(*q));
	if (!q || !(q->data = malloc(len ? len : 1))) {
		free(q);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	enum err_code rc = owner_of(c, to, q->node, err);
	if (rc) {
		free(q->data);
		free(q);
		return rc;
	}
	q->c = c;
	snprintf(q->to, sizeof(q->to), "%s", to);
	q->has_from = from != NULL;
	snprintf(q->from, sizeof(q->from), "%s", from ? from : "");
	memcpy(q->data, data, len);
	q->len = len;
	q->timeout_ms = timeout_ms ? timeout_ms : 30000;
	q->reply = reply;
	q->reply_user = reply_user;
	if (cluster_submit(c, job_request, q)) {
		free(q->data);
		free(q);
		return err_set(err, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return ERR_OK;
}

/* ---- supervision across nodes ---- */

struct notice_job {
	struct cluster *c;
	char parent[37];
	int error;
	char *info;
	size_t len;
};

/* A child's exit for its parent on another node. Sent from the cluster's
 * threads; the child has ended, so every mail it sent was accepted before. */
static void job_notice(void *arg)
{
	struct notice_job *j = arg;
	char node[CLUSTER_NODE_MAX];
	struct err e = {0};
	enum err_code rc = owner_of(j->c, j->parent, node, &e);
	if (!rc)
		rc = mail_call(j->c, node, j->error ? "child-error" : "child-exit", j->parent, NULL,
			       j->info, j->len, MAIL_TIMEOUT_MS, NULL, NULL, &e);
	if (rc && rc != ERR_NOT_FOUND && rc != ERR_CONFLICT)
		log_warn("cluster", "a child's exit did not reach its parent '%s': %s", j->parent,
			 e.msg);
	free(j->info);
	free(j);
}

static void remote_notice(void *user, const char *parent, int error, const char *info,
			  size_t len)
{
	struct cluster *c = user;
	struct notice_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->info = malloc(len + 1))) {
		free(j);
		return;
	}
	j->c = c;
	snprintf(j->parent, sizeof(j->parent), "%s", parent);
	j->error = error;
	memcpy(j->info, info, len);
	j->len = len;
	if (cluster_submit(c, job_notice, j)) {
		free(j->info);
		free(j);
	}
}

struct child_job {
	struct cluster *c;
	char node[CLUSTER_NODE_MAX], child[37], parent[37];
	int restart;
	supervisor_done_fn done;
	void *done_user;
};

/* GET the child on its node, check its parent, then POST stop or restart. */
static void job_child(void *arg)
{
	struct child_job *j = arg;
	struct err e = {0};
	char target[128];
	snprintf(target, sizeof(target), "/actors/%s", j->child);
	struct cluster_http get = {.method = "GET", .target = target, .timeout_ms = 10000};
	struct cluster_reply r = {0};
	enum err_code rc = cluster_call(j->c, j->node, &get, &r, &e);
	json_t *run = NULL;
	if (!rc && r.status == 404)
		rc = err_set(&e, ERR_NOT_FOUND, "actor '%s' not found", j->child);
	else if (!rc && r.status != 200)
		rc = err_set(&e, ERR_UNAVAILABLE, "node '%s' answered %d for '%s'", j->node,
			     r.status, j->child);
	if (!rc)
		run = json_parse((const char *)r.body, r.len, 16, &e);
	const char *parent = json_string_value(json_object_get(run, "parent_id"));
	if (!rc && (!parent || strcmp(parent, j->parent) != 0))
		rc = err_set(&e, ERR_FORBIDDEN_PATH, "actor '%s' is not a child of this actor",
			     j->child);
	json_decref(run);
	cluster_reply_release(&r);
	if (!rc) {
		snprintf(target, sizeof(target), "/actors/%s/%s", j->child,
			 j->restart ? "restart" : "stop");
		struct cluster_http post = {.method = "POST", .target = target, .timeout_ms = 30000};
		rc = cluster_call(j->c, j->node, &post, &r, &e);
		if (!rc && r.status == 409 && !j->restart)
			rc = ERR_NOT_MODIFIED;          /* it had ended */
		else if (!rc && (r.status < 200 || r.status > 299))
			rc = err_set(&e, r.status == 404 ? ERR_NOT_FOUND : ERR_CONFLICT,
				     "node '%s' answered %d: %.200s", j->node, r.status,
				     r.body ? (const char *)r.body : "");
		cluster_reply_release(&r);
	}
	j->done(j->done_user, rc, rc ? &e : NULL);
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
	if (!known || strcmp(j->node, c->node) == 0) {
		free(j);
		return err_set(err, ERR_NOT_FOUND, "actor '%s' not found", child);
	}
	j->c = c;
	snprintf(j->child, sizeof(j->child), "%s", child);
	snprintf(j->parent, sizeof(j->parent), "%s", parent);
	j->restart = restart;
	j->done = done;
	j->done_user = done_user;
	if (cluster_submit(c, job_child, j)) {
		free(j);
		return err_set(err, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return ERR_OK;
}

/* ---- the receiving side ---- */

struct mail_job {
	struct cluster *c;
	char *reply;
	uint8_t *data;
	size_t len;
};

static void answer_mail(struct cluster *c, const char *reply, enum err_code rc,
			const struct err *err, const uint8_t *data, size_t len)
{
	json_t *head = json_pack("{s:i, s:s?}", "rc", (int)rc, "msg", rc && err ? err->msg : NULL);
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, data, len, &n) : NULL;
	json_decref(head);
	struct err e = {0};
	if (!msg || bus_publish(c->bus, reply, msg, n, &e))
		log_warn("cluster", "cannot answer mail from another node: %s",
			 msg ? e.msg : "out of memory");
	free(msg);
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
	if (!kind || !to) {
		rc = err_set(&e, ERR_INVALID, "malformed mail from another node");
	} else if (strcmp(kind, "send") == 0) {
		rc = supervisor_send(j->c->sup, to, from, body, blen, &e);
	} else if (strcmp(kind, "child-exit") == 0 || strcmp(kind, "child-error") == 0) {
		rc = supervisor_notify_parent(j->c->sup, to, strcmp(kind, "child-error") == 0,
					      (const char *)body, blen);
		if (rc)
			err_set(&e, rc, "parent '%s' does not take the notice", to);
	} else {
		struct pending_reply *p = calloc(1, sizeof(*p));
		if (p && (p->reply = strdup(j->reply))) {
			p->c = j->c;
			rc = supervisor_request(j->c->sup, to, from, body, blen, timeout,
						on_local_reply, p, &e);
			if (!rc)
				goto done;   /* answered from on_local_reply */
			free(p->reply);
		} else {
			rc = err_set(&e, ERR_NOMEM, "out of memory");
		}
		free(p);
	}
	answer_mail(j->c, j->reply, rc, &e, NULL, 0);
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
		if (cluster_submit(c, job_mail, j) == ERR_OK)
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
				      .notice = remote_notice, .child = remote_child, .user = c};
	supervisor_set_remote(c->sup, &r);
	return ERR_OK;
}

void mail_stop(struct cluster *c)
{
	supervisor_set_remote(c->sup, NULL);
	bus_unsubscribe(c->mail_sub);
	c->mail_sub = NULL;
}
