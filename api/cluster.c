/* cluster.c - the API of a node in a cluster (issue 15): GET /cluster, the
 * routes of an actor that runs on another node (forwarded over NATS with the
 * same status, headers and body), spawns pinned to another node (?node=), and
 * GET /actors over the whole cluster (each node's list, merged, each run with
 * its node). Without --nats, GET /cluster says the cluster is off and nothing
 * else here runs. */
#include "api/api_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/crypto.h"
#include "src/util/log.h"

#define FORWARDED_HEADER "X-Theater-Forwarded"

static struct cluster *cluster_of(struct api *api)
{
	return __atomic_load_n(&api->cfg.cluster, __ATOMIC_ACQUIRE);
}

void h_cluster(struct api_call *c)
{
	struct cluster *cl = cluster_of(c->api);
	if (!cl) {
		api_json(c, 200, json_pack("{s:b, s:n, s:[]}", "enabled", 0, "node", "nodes"));
		return;
	}
	api_json(c, 200, cluster_json(cl));
}

/* ---- forwarding one call ---- */

static int unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static void pct_append(char *dst, size_t size, size_t *at, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s && *at + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (unreserved(ch)) {
			dst[(*at)++] = (char)ch;
		} else {
			dst[(*at)++] = '%';
			dst[(*at)++] = hex[ch >> 4];
			dst[(*at)++] = hex[ch & 15];
		}
	}
	dst[*at] = '\0';
}

/* The path as sent and the query, re-encoded; skip: a parameter left out;
 * cursor: one node's own cursor in place of the request's (the merged list). */
static void target_of(struct http_request *req, const char *skip, const char *cursor, char *out,
		      size_t size)
{
	size_t at = (size_t)snprintf(out, size, "%s", http_request_raw_path(req));
	if (at >= size)
		at = size - 1;
	int first = 1;
	for (size_t i = 0; i <= http_request_query_count(req); i++) {
		int extra = i == http_request_query_count(req);   /* cursor=, last */
		const char *name = extra ? "cursor" : http_request_query_name(req, i);
		const char *value = extra ? cursor : http_request_query_value(req, i);
		if (extra ? !cursor
			  : (skip && strcmp(name, skip) == 0) || (cursor && !strcmp(name, "cursor")))
			continue;
		if (at + 2 < size)
			out[at++] = first ? '?' : '&';
		first = 0;
		pct_append(out, size, &at, name);
		if (value) {
			if (at + 2 < size)
				out[at++] = '=';
			pct_append(out, size, &at, value);
		}
	}
	out[at] = '\0';
}

static const char *const passed_request_headers[] = {
	"Content-Type", "Accept", "If-None-Match", "Last-Event-ID", "Idempotency-Key", NULL,
};
#define PASSED_HEADERS_MAX (2 * 6 + 1)

/* The request's headers that a forwarded call carries, as name, value pairs
 * ended by NULL in out (PASSED_HEADERS_MAX entries); the values are c's. */
static void passed_headers(struct api_call *c, const char **out)
{
	size_t n = 0;
	for (const char *const *p = passed_request_headers; *p; p++) {
		const char *v = http_request_header(c->req, *p);
		if (v) {
			out[n++] = *p;
			out[n++] = v;
		}
	}
	out[n] = NULL;
}

struct forward {
	struct api_call *c;
	char node[CLUSTER_NODE_MAX];
	char target[4096];
	api_handler_fn local;         /* run here when the bucket says the actor is ours */
	const char *skip;             /* a query parameter not to pass on */
	int64_t t0;                   /* monotonic ms: the first try */
	int moved;                    /* the second try, on the node the bucket named */
	struct err first_err;         /* the first try's, answered if no second */
};

/* A request timeout (?timeout= seconds) lets a forwarded call wait as long
 * (plus 5 s); without one, 25 s (plus 5 s): the owner answers at once for
 * every route that does not wait, and a NATS request lost while a server died
 * must end in a 504 well before a client's own 60 s timeout, never a hang.
 * cluster_call waits 2 s more than this for the owner's answer. */
static unsigned forward_timeout(struct api_call *c)
{
	const char *t = http_request_query(c->req, "timeout");
	long s = t ? atol(t) : 0;
	return (unsigned)((s > 0 && s <= 600 ? s : 25) * 1000 + 5000);
}

static int64_t now_mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void forward_try(struct forward *f);

/* The owner's answer, as ours (with X-Theater-Node). */
static void forward_answer(struct forward *f, struct cluster_reply *r)
{
	struct api_call *c = f->c;
	const char *h[2 * 12 + 3];
	size_t n = 0;
	const char *ct = NULL, *k;
	json_t *v;
	json_object_foreach(r->headers, k, v) {
		if (!json_is_string(v))
			continue;
		if (strcmp(k, "Content-Type") == 0) {
			ct = json_string_value(v);
		} else if (n + 2 < 2 * 12) {
			h[n++] = k;
			h[n++] = json_string_value(v);
		}
	}
	h[n++] = "X-Theater-Node";
	h[n++] = f->node;
	h[n] = NULL;
	api_bytes(c, r->status, ct, r->len || ct ? r->body : NULL, r->len, h);
	if (!r->len && !ct)
		free(r->body);
	r->body = NULL;
}

/* No answer from the node our copy of the placement names: the actor may have
 * moved (a failover) before our copy heard of it; the bucket says (a blocking
 * read: on the pool). */
static void job_forward_moved(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct cluster *cl = cluster_of(c->api);
	char moved[CLUSTER_NODE_MAX];
	struct err le = {0};
	if (cluster_locate(cl, c->params[0], moved, &le) != ERR_OK ||
	    strcmp(moved, f->node) == 0) {
		api_problem_err(c, &f->first_err);
		free(f);
		return;
	}
	snprintf(f->node, sizeof(f->node), "%s", moved);
	if (strcmp(moved, cluster_node(cl)) == 0) {
		api_handler_fn fn = f->local;
		free(f);
		fn(c);
		return;
	}
	f->moved = 1;
	forward_try(f);
}

/* The answer of a forwarded call (a NATS thread or the pool: nothing blocks). */
static void forwarded(void *user, enum err_code rc, const struct err *err,
		      struct cluster_reply *r)
{
	struct forward *f = user;
	struct api_call *c = f->c;
	if (rc == ERR_UNAVAILABLE && !f->moved &&
	    strncmp(http_request_raw_path(c->req), "/actors/", 8) == 0 && c->params[0]) {
		f->first_err = *err;
		if (cluster_submit(cluster_of(c->api), job_forward_moved, f) == ERR_OK)
			return;
	}
	if (rc)
		api_problem_err(c, err);
	else
		forward_answer(f, r);
	free(f);
}

/* One try of the call on f->node, for the time the call has left. */
static void forward_try(struct forward *f)
{
	struct api_call *c = f->c;
	const char *headers[PASSED_HEADERS_MAX];
	passed_headers(c, headers);
	size_t len = 0;
	const uint8_t *body = http_request_body(c->req, &len);
	/* a second try (the actor moved) gets what is left of the first one's time */
	int64_t left = (int64_t)forward_timeout(c) - (now_mono_ms() - f->t0);
	struct cluster_http req = {
		.method = http_request_method(c->req), .target = f->target, .headers = headers,
		.body = body, .len = len, .timeout_ms = left > 1000 ? (unsigned)left : 1000,
	};
	struct err e = {0};
	if (cluster_call_start(cluster_of(c->api), f->node, &req, forwarded, f, &e)) {
		api_problem_err(c, &e);
		free(f);
	}
}

/* Forwards the call to f->node without a thread that waits for the answer;
 * takes f. */
static void forward_now(struct forward *f)
{
	f->t0 = now_mono_ms();
	forward_try(f);
}

static void job_relay(void *arg);
static int moving_here_now(struct api_call *c, struct cluster *cl);

static void job_forward(void *arg)
{
	forward_now(arg);
}

/* The memory copy of the placement did not know the actor: ask the bucket. */
static void job_locate(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct err e = {0};
	struct cluster *cl = cluster_of(c->api);
	const char *path = http_request_raw_path(c->req);
	size_t pl = strlen(path);
	enum err_code rc = cluster_locate(cl, c->params[0], f->node, &e);
	if (rc && rc != ERR_NOT_FOUND) {
		api_problem_err(c, &e);  /* 404 only when the bucket says so */
	} else if (rc == ERR_OK && strcmp(f->node, cluster_node(cl)) != 0) {
		if (pl > 6 && strcmp(path + pl - 6, "/chain") == 0 && sse_accepted(c)) {
			job_relay(f);     /* frees f */
			return;
		}
		forward_now(f);      /* takes f */
		return;
	} else if (!moving_here_now(c, cl)) {
		/* ours (cluster_locate noted it: a takeover not rebuilt yet is a
		 * 503), or no key, a tombstone: the local answer (404) */
		api_handler_fn fn = f->local;
		fn(c);
	}
	free(f);
}

static int start_forward(struct api_call *c, const char *node, api_handler_fn local,
			 const char *skip, void (*job)(void *))
{
	struct forward *f = calloc(1, sizeof(*f));
	if (!f) {
		api_problem(c, ERR_NOMEM, "out of memory");
		return 1;
	}
	f->c = c;
	f->local = local;
	f->skip = skip;
	snprintf(f->node, sizeof(f->node), "%s", node ? node : "");
	target_of(c->req, skip, NULL, f->target, sizeof(f->target));
	if (cluster_submit(cluster_of(c->api), job, f)) {
		free(f);
		api_problem(c, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return 1;
}

/* A call pinned to a node by ?node= (dropped from what is forwarded): 404 when
 * no such node is up, else forwarded to it with job. */
static int forward_pinned(struct api_call *c, const char *node, api_handler_fn local,
			  void (*job)(void *))
{
	if (!cluster_node_up(cluster_of(c->api), node)) {
		char detail[160];
		snprintf(detail, sizeof(detail), "no node '%.64s' is up in the cluster "
			 "(GET /cluster lists them)", node);
		api_problem(c, ERR_NOT_FOUND, detail);
		return 1;
	}
	return start_forward(c, node, local, "node", job);
}

/* ---- GET /actors over the cluster ---- */

/* Of two nodes' copies of one run (a node keeps the copy it killed when the
 * actor moved), whether `b` is the one to list rather than `a`: the copy on
 * the node the placement names, else a live one. */
static int better_copy(struct cluster *cl, const json_t *a, const json_t *b)
{
	const char *id = json_string_value(json_object_get(a, "id"));
	char owner[CLUSTER_NODE_MAX];
	if (id && cluster_lookup(cl, id, owner)) {
		const char *na = json_string_value(json_object_get(a, "node"));
		const char *nb = json_string_value(json_object_get(b, "node"));
		if ((na && !strcmp(na, owner)) != (nb && !strcmp(nb, owner)))
			return nb && !strcmp(nb, owner);
	}
	const char *sa = json_string_value(json_object_get(a, "status"));
	const char *sb = json_string_value(json_object_get(b, "status"));
	int la = sa && (!strcmp(sa, "running") || !strcmp(sa, "starting"));
	int lb = sb && (!strcmp(sb, "running") || !strcmp(sb, "starting"));
	return lb && !la;
}

/* The merged list's cursor: "nodes:" and a JSON object of each node's own
 * next_cursor, for the nodes whose list goes on. */
#define NODES_CURSOR "nodes:"

static void job_cluster_list(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct cluster *cl = cluster_of(c->api);
	char names[64][CLUSTER_NODE_MAX];
	size_t n = cluster_nodes_up(cl, names, 64);
	/* a merged cursor names the nodes whose lists go on, each with its own */
	const char *given = http_request_query(c->req, "cursor");
	json_t *cursors = NULL;
	if (given && strncmp(given, NODES_CURSOR, strlen(NODES_CURSOR)) == 0) {
		struct err ce = {0};
		const char *text = given + strlen(NODES_CURSOR);
		cursors = json_parse(text, strlen(text), 2, &ce);
		const char *k;
		json_t *v;
		int ok = json_is_object(cursors);
		json_object_foreach(ok ? cursors : NULL, k, v)
			ok &= json_is_string(v);
		if (!ok) {
			json_decref(cursors);
			free(f);
			api_problem(c, ERR_INVALID, "query parameter 'cursor' must be a next_cursor "
				    "of this list");
			return;
		}
	}
	json_t *items = json_array(), *nodes = json_object(), *next = json_object();
	json_t *seen = json_object();      /* id -> its index in items */
	int status = 200;
	struct err e = {0};
	for (size_t i = 0; i < n; i++) {
		const char *own = cursors ? json_string_value(json_object_get(cursors, names[i]))
					  : NULL;
		if (cursors && !own)
			continue;           /* this node's list ended on an earlier page */
		char target[4096];
		if (cursors)
			target_of(c->req, "node", own, target, sizeof(target));
		struct cluster_http req = {.method = "GET", .target = cursors ? target : f->target,
					   .timeout_ms = 10000};
		struct cluster_reply r;
		json_t *page = NULL;
		if (cluster_call(cl, names[i], &req, &r, &e) == ERR_OK) {
			if (r.status != 200) {   /* a bad filter: every node says the same */
				status = r.status;
				json_decref(items);
				json_decref(nodes);
				json_decref(seen);
				json_decref(next);
				json_decref(cursors);
				const char *ct = json_string_value(json_object_get(r.headers,
										   "Content-Type"));
				api_bytes(c, status, ct, r.body, r.len, NULL);
				r.body = NULL;
				cluster_reply_release(&r);
				free(f);
				return;
			}
			page = json_parse((const char *)r.body, r.len, 64, &e);
			cluster_reply_release(&r);
		}
		json_t *list = json_object_get(page, "items");
		size_t k;
		json_t *run;
		json_array_foreach(list, k, run) {
			json_object_set_new(run, "node", json_string(names[i]));
			const char *id = json_string_value(json_object_get(run, "id"));
			json_t *at = id ? json_object_get(seen, id) : NULL;
			if (!at) {      /* listed once, not once per node that has a copy */
				if (id)
					json_object_set_new(seen, id, json_integer(
						(json_int_t)json_array_size(items)));
				json_array_append(items, run);
			} else {
				size_t x = (size_t)json_integer_value(at);
				if (better_copy(cl, json_array_get(items, x), run))
					json_array_set(items, x, run);
			}
		}
		json_object_set_new(nodes, names[i], page ? json_pack("{s:O, s:O}", "next_cursor",
			json_object_get(page, "next_cursor"), "events_head",
			json_object_get(page, "events_head")) : json_pack("{s:s}", "error", e.msg));
		json_t *nc = json_object_get(page, "next_cursor");
		if (json_is_string(nc))
			json_object_set(next, names[i], nc);
		json_decref(page);
	}
	json_decref(seen);
	json_decref(cursors);
	char *more = json_object_size(next) ? json_compact(next) : NULL;
	json_decref(next);
	json_t *o = json_pack("{s:o, s:o, s:o}", "items", items, "next_cursor",
			      more ? json_sprintf("%s%s", NODES_CURSOR, more) : json_null(),
			      "nodes", nodes);
	free(more);
	free(f);
	api_json(c, 200, o);
}

/* ---- event streams of another node ---- */

static int is_event_stream(struct api_call *c, const char *pattern)
{
	return strcmp(pattern, "/actors/{id}/chain") == 0 && sse_accepted(c);
}

/* The fallback when the owner relays too many streams already: the client is
 * sent to the node that runs the actor (307 keeps the method; EventSource and
 * curl -L follow it), with Last-Event-ID and ?after= kept, so it resumes there. */
static int redirect_stream(struct api_call *c, struct cluster *cl, const char *node)
{
	char url[300], target[4096], loc[4400];
	if (!cluster_node_url(cl, node, url, sizeof(url))) {
		char detail[200];
		snprintf(detail, sizeof(detail), "actor runs on node '%s', whose address is not "
			 "known yet", node);
		api_problem(c, ERR_UNAVAILABLE, detail);
		return 1;
	}
	target_of(c->req, NULL, NULL, target, sizeof(target));
	snprintf(loc, sizeof(loc), "%s%s", url, target);
	const char *h[] = {"Location", loc, "X-Theater-Node", node, NULL};
	api_json_headers(c, 307, json_pack("{s:s, s:s}", "node", node, "location", loc), h);
	return 1;
}

/* A stream relayed from another node (cluster/relay.c): its bytes go to our
 * client as they come. One reference for the connection (on_close) and one
 * while job_relay still uses it. */
struct relayed {
	struct cluster *cl;
	struct cluster_stream *cs;
	struct http_stream *stream;
	int refs;                     /* atomic */
};

static void relayed_unref(struct relayed *r)
{
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL))
		return;
	cluster_stream_close(r->cs);
	http_stream_release(r->stream);
	free(r);
}

static int relayed_data(void *user, const uint8_t *data, size_t len)
{
	struct relayed *r = user;
	return http_stream_write(r->stream, data, len) != ERR_OK;   /* cut: a slow client */
}

static void relayed_end(void *user)
{
	struct relayed *r = user;
	http_stream_end(r->stream);
}

static void job_relayed_close(void *arg)
{
	relayed_unref(arg);
}

static void relayed_closed(void *user, struct http_stream *s)
{
	(void)s;
	struct relayed *r = user;
	/* closing waits for a callback in flight: never on the HTTP thread (but
	 * at shutdown, with no pool left, here) */
	if (cluster_submit(r->cl, job_relayed_close, r))
		relayed_unref(r);
}

static void job_relay(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct cluster *cl = cluster_of(c->api);
	const char *headers[PASSED_HEADERS_MAX];
	passed_headers(c, headers);
	struct cluster_http req = {.method = "GET", .target = f->target, .headers = headers};
	struct cluster_reply head;
	struct cluster_stream *cs = NULL;
	struct err e = {0};
	enum err_code rc = cluster_stream_open(cl, f->node, &req, &head, &cs, &e);
	if (rc) {
		api_problem_err(c, &e);
	} else if (!cs && head.status == 0) {
		redirect_stream(c, cl, f->node);
	} else if (!cs) {
		const char *ct = json_string_value(json_object_get(head.headers, "Content-Type"));
		const char *ra = json_string_value(json_object_get(head.headers, "Retry-After"));
		const char *h[] = {"X-Theater-Node", f->node, ra ? "Retry-After" : NULL, ra, NULL};
		api_bytes(c, head.status, ct, head.len || ct ? head.body : NULL, head.len, h);
		if (head.len || ct)
			head.body = NULL;
	} else {
		struct relayed *r = calloc(1, sizeof(*r));
		struct http_response *resp = r ? sse_head() : NULL;
		if (!resp) {
			free(r);
			cluster_stream_close(cs);
			api_problem(c, ERR_NOMEM, "cannot open a stream");
		} else {
			http_response_header(resp, "X-Theater-Node", f->node);
			r->cl = cl;
			r->cs = cs;
			r->refs = 2;
			struct http_stream_config cfg = sse_config(c->api);
			cfg.on_close = relayed_closed;
			cfg.user = r;
			observe_request(c, 200, 0);
			if (http_respond_stream(c->req, resp, &cfg, &r->stream, &e) != ERR_OK) {
				cluster_stream_close(cs);
				free(r);
			} else {
				cluster_stream_attach(cs, relayed_data, relayed_end, r);
				relayed_unref(r);
			}
			free(c);
		}
	}
	cluster_reply_release(&head);
	free(f);
}

/* ---- one lifecycle stream for the whole cluster (GET /events?node=*) ----
 *
 * Every node up is relayed (its own /events, over NATS, this node's too) into
 * one SSE stream. Each lifecycle frame gets the node's name in its data
 * ("node") and, as its id, the position of every node so far:
 * "alpha:12,beta:40,gamma:7". Resuming with that id (Last-Event-ID or
 * ?after=) resumes each node from its own position: nothing skipped, nothing
 * twice. A node down at connection is left out (its position is carried in
 * the ids); when one node's relay ends (the node died, a message was lost),
 * the whole stream ends and the client reconnects with the last id. Frames of
 * one node keep their order; there is no order across nodes. */

#define MERGED_NODES 64
#define MERGED_FRAME_MAX ((size_t)16 << 20)

struct merged_part {
	char node[CLUSTER_NODE_MAX];
	uint64_t pos;
	struct cluster_stream *cs;    /* NULL: not relayed (down at connection) */
	char *buf;                    /* bytes of a frame not yet complete */
	size_t len, cap;
	int ready;
	struct merged *m;
};

struct merged {
	struct cluster *cl;
	struct http_stream *stream;
	pthread_mutex_t lock;         /* parts' buffers and positions, writes */
	struct merged_part parts[MERGED_NODES];
	size_t n, relayed, ready;
	int ended;
	int refs;                     /* atomic: the connection, the opening job */
};

static void merged_unref(struct merged *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (size_t i = 0; i < m->n; i++)
		cluster_stream_close(m->parts[i].cs);   /* no callback after this */
	for (size_t i = 0; i < m->n; i++)
		free(m->parts[i].buf);
	http_stream_release(m->stream);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* "alpha:12,beta:40" (the parts are sorted by name), into out. */
static void merged_id(const struct merged *m, char *out, size_t size)
{
	size_t at = 0;
	out[0] = '\0';
	for (size_t i = 0; i < m->n && at < size; i++)
		at += (size_t)snprintf(out + at, size - at, "%s%s:%llu", i ? "," : "",
				       m->parts[i].node, (unsigned long long)m->parts[i].pos);
}

/* One frame of part p (without its blank line): a lifecycle event goes on
 * with the node's name and the merged id; `ready` counts; the rest (comments,
 * retry) is the relay's own and dropped. m->lock held. */
static int merged_frame(struct merged *m, struct merged_part *p, char *frame)
{
	const char *id = NULL, *event = NULL, *data = NULL;
	for (char *line = frame, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "id: ", 4) == 0)
			id = line + 4;
		else if (strncmp(line, "event: ", 7) == 0)
			event = line + 7;
		else if (strncmp(line, "data: ", 6) == 0)
			data = line + 6;
	}
	if (event && strcmp(event, "ready") == 0 && !p->ready) {
		p->ready = 1;
		if (++m->ready < m->relayed)
			return 0;
		char text[64 + MERGED_NODES * (CLUSTER_NODE_MAX + 24)];
		merged_id(m, text + 64, sizeof(text) - 64);
		int n = snprintf(text, 64, "event: ready\ndata: ");
		json_t *o = json_pack("{s:s}", "last_event_id", text + 64);
		char *js = o ? json_compact(o) : NULL;
		json_decref(o);
		int rc = 0;
		if (js) {
			rc = http_stream_write(m->stream, text, (size_t)n) != ERR_OK ||
			     http_stream_write(m->stream, js, strlen(js)) != ERR_OK ||
			     http_stream_write(m->stream, "\n\n", 2) != ERR_OK;
		}
		free(js);
		return rc;
	}
	if (!id || !event || !data)
		return 0;
	struct err e = {0};
	json_t *d = json_parse(data, strlen(data), JSON_MAX_DEPTH_DEFAULT, &e);
	if (!json_is_object(d)) {
		json_decref(d);
		return 0;
	}
	p->pos = strtoull(id, NULL, 10);
	json_object_set_new(d, "node", json_string(p->node));
	char *js = json_compact(d);
	json_decref(d);
	char head[64 + MERGED_NODES * (CLUSTER_NODE_MAX + 24)];
	size_t hl = (size_t)snprintf(head, sizeof(head), "id: ");
	merged_id(m, head + hl, sizeof(head) - hl);
	hl = strlen(head);
	hl += (size_t)snprintf(head + hl, sizeof(head) - hl, "\nevent: %.60s\ndata: ", event);
	int rc = !js || http_stream_write(m->stream, head, hl) != ERR_OK ||
		 http_stream_write(m->stream, js, strlen(js)) != ERR_OK ||
		 http_stream_write(m->stream, "\n\n", 2) != ERR_OK;
	free(js);
	return rc;
}

static int merged_data(void *user, const uint8_t *data, size_t len)
{
	struct merged_part *p = user;
	struct merged *m = p->m;
	int stop = 0;
	pthread_mutex_lock(&m->lock);
	if (m->ended) {
		pthread_mutex_unlock(&m->lock);
		return 1;
	}
	if (p->len + len + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		while (cap < p->len + len + 1)
			cap *= 2;
		char *b = cap <= MERGED_FRAME_MAX ? realloc(p->buf, cap) : NULL;
		if (!b)
			stop = 1;
		else {
			p->buf = b;
			p->cap = cap;
		}
	}
	if (!stop) {
		memcpy(p->buf + p->len, data, len);
		p->len += len;
		p->buf[p->len] = '\0';
		char *start = p->buf, *end;
		while (!stop && (end = strstr(start, "\n\n")) != NULL) {
			*end = '\0';
			stop = merged_frame(m, p, start);
			start = end + 2;
		}
		p->len -= (size_t)(start - p->buf);
		memmove(p->buf, start, p->len + 1);
	}
	if (stop && !m->ended) {
		m->ended = 1;
		http_stream_end(m->stream);
	}
	pthread_mutex_unlock(&m->lock);
	return stop;
}

static void merged_end(void *user)
{
	struct merged_part *p = user;
	struct merged *m = p->m;
	pthread_mutex_lock(&m->lock);
	if (!m->ended) {      /* one node's relay ended: the client resumes them all */
		m->ended = 1;
		http_stream_end(m->stream);
	}
	pthread_mutex_unlock(&m->lock);
}

static void job_merged_close(void *arg)
{
	merged_unref(arg);
}

static void merged_closed(void *user, struct http_stream *s)
{
	(void)s;
	struct merged *m = user;
	if (cluster_submit(m->cl, job_merged_close, m))
		merged_unref(m);
}

static int by_part_name(const void *a, const void *b)
{
	return strcmp(((const struct merged_part *)a)->node, ((const struct merged_part *)b)->node);
}

/* The parts: every node up, and the nodes the resume id names (their
 * positions). ERR_INVALID for an id that is not "name:pos,...". */
static enum err_code merged_parts(struct merged *m, const char *resume, struct err *err)
{
	char names[MERGED_NODES][CLUSTER_NODE_MAX];
	size_t up = cluster_nodes_up(m->cl, names, MERGED_NODES);
	for (size_t i = 0; i < up; i++)
		snprintf(m->parts[m->n++].node, CLUSTER_NODE_MAX, "%.64s", names[i]);
	for (const char *at = resume; at && *at;) {
		const char *colon = strchr(at, ':');
		char *end = NULL;
		size_t nl = colon ? (size_t)(colon - at) : 0;
		unsigned long long pos = colon ? strtoull(colon + 1, &end, 10) : 0;
		if (!colon || !nl || nl >= CLUSTER_NODE_MAX || end == colon + 1 ||
		    (*end && *end != ',') || pos > UINT64_MAX / 2)
			return err_set(err, ERR_INVALID, "the merged stream resumes from an id of the "
				       "form 'node:position,...' (the id of its last frame)");
		size_t k = 0;
		while (k < m->n && (strlen(m->parts[k].node) != nl ||
				    strncmp(m->parts[k].node, at, nl) != 0))
			k++;
		if (k == m->n && m->n < MERGED_NODES)
			snprintf(m->parts[m->n++].node, CLUSTER_NODE_MAX, "%.*s", (int)nl, at);
		if (k < m->n)
			m->parts[k].pos = pos;
		at = *end ? end + 1 : end;
	}
	qsort(m->parts, m->n, sizeof(m->parts[0]), by_part_name);
	for (size_t i = 0; i < m->n; i++)
		m->parts[i].m = m;
	return ERR_OK;
}

/* Opens each node's relay (blocking: a cluster thread), then the stream. */
static void job_merged(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct cluster *cl = cluster_of(c->api);
	struct merged *m = calloc(1, sizeof(*m));
	struct err e = {0};
	const char *resume = http_request_header(c->req, "Last-Event-ID");
	if (!resume || !*resume)
		resume = http_request_query(c->req, "after");
	free(f);
	if (!m) {
		api_problem(c, ERR_NOMEM, "out of memory");
		return;
	}
	m->cl = cl;
	m->refs = 2;
	pthread_mutex_init(&m->lock, NULL);
	if (merged_parts(m, resume, &e)) {
		api_problem_err(c, &e);
		m->refs = 1;
		merged_unref(m);
		return;
	}
	const char *headers[] = {"Accept", "text/event-stream", NULL};
	for (size_t i = 0; i < m->n; i++) {
		struct merged_part *p = &m->parts[i];
		if (!cluster_node_up(cl, p->node))
			continue;
		char target[64];
		snprintf(target, sizeof(target), "/events?after=%llu", (unsigned long long)p->pos);
		struct cluster_http req = {.method = "GET", .target = target, .headers = headers};
		struct cluster_reply head;
		struct err pe = {0};
		if (cluster_stream_open(cl, p->node, &req, &head, &p->cs, &pe) == ERR_OK) {
			m->relayed += p->cs != NULL;
			cluster_reply_release(&head);
		}
		if (!p->cs)
			log_warn_limited("cluster",
					 "node '%s' left out of a merged event stream: %s", p->node,
					 pe.msg[0] ? pe.msg : "it did not open its stream");
	}
	struct http_response *resp = sse_head();
	if (!resp) {
		m->refs = 1;
		merged_unref(m);
		api_problem(c, ERR_NOMEM, "cannot open a stream");
		return;
	}
	struct http_stream_config cfg = sse_config(c->api);
	cfg.on_close = merged_closed;
	cfg.user = m;
	observe_request(c, 200, 0);
	if (http_respond_stream(c->req, resp, &cfg, &m->stream, &e) != ERR_OK) {
		m->refs = 1;
		merged_unref(m);
		free(c);
		return;
	}
	static const char hello[] = ": theater cluster event stream\nretry: 3000\n\n";
	http_stream_write(m->stream, hello, sizeof(hello) - 1);
	for (size_t i = 0; i < m->n; i++)
		if (m->parts[i].cs)
			cluster_stream_attach(m->parts[i].cs, merged_data, merged_end, &m->parts[i]);
	merged_unref(m);
	free(c);
}

/* Placed on this node, no run here: a takeover that has not rebuilt the actor
 * yet (a deleted actor's placement is a tombstone, never "here"): 503 with
 * Retry-After, not the local 404. 1 when answered so. */
/* The bucket places the actor on this node, yet it does not run here: a takeover
 * whose chain is being rebuilt from the stream, or cannot be (its events never
 * reached the stream: a spawn on a node that died before publishing it). */
static int placed_here(struct api_call *c, struct cluster *cl)
{
	char node[CLUSTER_NODE_MAX];
	return cluster_lookup(cl, c->params[0], node) && strcmp(node, cluster_node(cl)) == 0;
}

static int placed_not_run(struct api_call *c, struct cluster *cl)
{
	struct db_run r;
	struct err e = {0};
	if (!placed_here(c, cl))
		return 0;
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e) == ERR_OK) {
		db_run_release(&r);
		return 0;
	}
	return 1;
}

static int moving_here_now(struct api_call *c, struct cluster *cl)
{
	/* DELETE (of /actors/{id}, the one actor route with it) decides for itself
	 * in api_cluster_delete: an actor that cannot be rebuilt must be deletable */
	if (!strcmp(http_request_method(c->req), "DELETE") || !placed_not_run(c, cl))
		return 0;
	char detail[200];
	snprintf(detail, sizeof(detail), "actor '%s' is being moved to this node (taken over "
		 "from a node that is down) and runs again shortly: retry", c->params[0]);
	char *body = problem_body(503, err_code_name(ERR_UNAVAILABLE), detail,
				  http_request_path(c->req));
	static const char *const retry[] = {"Retry-After", "1", NULL};
	api_bytes(c, 503, "application/problem+json", body, body ? strlen(body) : 0, retry);
	return 1;
}

static int moving_here(struct api_call *c, struct cluster *cl, const char *pattern)
{
	if (strncmp(pattern, "/actors/{id}", 12) != 0 || !uuid_valid(c->params[0]))
		return 0;
	return moving_here_now(c, cl);
}

/* ---- DELETE of an actor ---- */

struct cluster_delete {
	struct api_call *c;
	struct cluster *cl;
	char id[37];
	int force;
	int not_run;             /* placed here, not run here (placed_not_run) */
};

static void delete_answer(void *user, enum err_code rc, const struct err *err)
{
	struct cluster_delete *d = user;
	struct cluster *cl = d->cl;
	char id[37];
	memcpy(id, d->id, sizeof(id));
	if (rc == ERR_NOT_FOUND && d->not_run)
		rc = ERR_OK;          /* the tombstone was all there was to delete */
	if (rc == ERR_OK)
		api_empty(d->c, 204, NULL);
	else if (err)
		api_problem_err(d->c, err);
	else
		api_problem(d->c, rc, NULL);
	free(d);
	cluster_deleted(cl, id, rc);
}

/* The tombstone first: once it is written no node runs, claims or acknowledges
 * the actor, so the local delete that follows kills whatever still runs. Without
 * force, the run is held first (checked not live, then nothing recorded of it but
 * its `deleted`), so a restart between the check and the tombstone is refused
 * rather than killed by the delete. */
static void job_delete(void *arg)
{
	struct cluster_delete *d = arg;
	struct supervisor *sup = d->c->api->cfg.sup;
	struct err e = {0};
	if (!d->force && supervisor_delete_hold(sup, d->id, 1, &e)) {
		api_problem_err(d->c, &e);
		free(d);
		return;
	}
	if (cluster_unplace(d->cl, d->id, &e)) {
		struct err ignored = {0};
		if (!d->force)
			supervisor_delete_hold(sup, d->id, 0, &ignored);
		api_problem_err(d->c, &e);
		free(d);
		return;
	}
	supervisor_delete(sup, d->id, 1, delete_answer, d);
}

int api_cluster_delete(struct api_call *c, int force)
{
	struct cluster *cl = cluster_of(c->api);
	if (!cl)
		return 0;
	struct db_run r;
	struct err e = {0};
	int not_run = 0;
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e) == ERR_OK) {
		int live = supervisor_status_live(r.status);
		db_run_release(&r);
		if (live && !force)
			return 0;        /* the local answer: 409 */
	} else if (!(not_run = placed_here(c, cl))) {
		return 0;                /* the local answer: 404 */
	} else if (!force) {
		char detail[400];
		snprintf(detail, sizeof(detail), "actor '%s' is placed on node '%s' but does not run "
			 "there: it was taken over from a node that is down and its chain is being "
			 "rebuilt from the stream, or cannot be (see that node's log); "
			 "?force=true deletes it all the same", c->params[0], cluster_node(cl));
		api_problem(c, ERR_CONFLICT, detail);
		return 1;
	}
	struct cluster_delete *d = calloc(1, sizeof(*d));
	if (!d) {
		api_problem(c, ERR_NOMEM, "out of memory");
		return 1;
	}
	d->c = c;
	d->cl = cl;
	d->force = force;
	d->not_run = not_run;
	snprintf(d->id, sizeof(d->id), "%s", c->params[0]);
	if (cluster_submit(cl, job_delete, d)) {
		free(d);
		api_problem(c, ERR_UNAVAILABLE, "the server is shutting down");
	}
	return 1;
}

/* ---- the hook in dispatch ---- */

int api_cluster_route(struct api_call *c, const char *method, const char *pattern,
		      api_handler_fn fn)
{
	struct cluster *cl = cluster_of(c->api);
	const char *pin = strcmp(pattern, "/actors") == 0 && strcmp(method, "POST") == 0
				  ? http_request_query(c->req, "node") : NULL;
	if (!cl) {
		if (strcmp(pattern, "/events") == 0 && http_request_query(c->req, "node")) {
			api_problem(c, ERR_INVALID, "'node' needs cluster mode: this server was not "
				    "started with --nats");
			return 1;
		}
		if (pin) {
			api_problem(c, ERR_INVALID, "'node' needs cluster mode: this server was not "
				    "started with --nats");
			return 1;
		}
		return 0;
	}
	const char *why = strcmp(method, "GET") != 0 && strcmp(pattern, "/session") != 0
			  ? cluster_unwritable(cl) : NULL;
	if (why) {
		char detail[256];
		snprintf(detail, sizeof(detail), "this node cannot reach the cluster's replicated "
			 "stream (NATS): %s; it refuses writes it could not replicate: retry later "
			 "or on another node", why);
		api_problem(c, ERR_UNAVAILABLE, detail);
		return 1;
	}
	if (http_request_header(c->req, FORWARDED_HEADER))
		return moving_here(c, cl, pattern);   /* answer here, never forward again */
	if (strcmp(pattern, "/events") == 0) {
		const char *node = http_request_query(c->req, "node");
		if (!node || strcmp(node, cluster_node(cl)) == 0)
			return 0;
		if (strcmp(node, "*") == 0)
			return start_forward(c, NULL, fn, NULL, job_merged);
		return forward_pinned(c, node, fn, job_relay);
	}
	if (strcmp(pattern, "/actors") == 0) {
		if (strcmp(method, "GET") == 0)
			return start_forward(c, NULL, fn, NULL, job_cluster_list);
		if (!pin || strcmp(pin, cluster_node(cl)) == 0)
			return 0;
		return forward_pinned(c, pin, fn, job_forward);
	}
	if (strncmp(pattern, "/actors/{id}", 12) != 0 || !uuid_valid(c->params[0]))
		return 0;
	char node[CLUSTER_NODE_MAX];
	if (cluster_lookup(cl, c->params[0], node) && strcmp(node, cluster_node(cl)) != 0 &&
	    is_event_stream(c, pattern))
		return start_forward(c, node, fn, NULL, job_relay);
	if (cluster_lookup(cl, c->params[0], node))
		return strcmp(node, cluster_node(cl)) == 0
			       ? moving_here(c, cl, pattern)
			       : start_forward(c, node, fn, NULL, job_forward);
	struct db_run r;
	struct err e = {0};
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e) == ERR_OK) {
		db_run_release(&r);
		return 0;                /* ours, not yet in the bucket's copy */
	}
	return start_forward(c, NULL, fn, NULL, job_locate);
}

enum err_code api_cluster_placed(struct api *api, const char *actor_id, struct err *err)
{
	return cluster_of(api) ? cluster_place(cluster_of(api), actor_id, err) : ERR_OK;
}
