/* cluster.c - the API of a node in a cluster (issue 15): GET /cluster, the
 * routes of an actor that runs on another node (forwarded over NATS with the
 * same status, headers and body), spawns pinned to another node (?node=), and
 * GET /actors over the whole cluster (each node's list, merged, each run with
 * its node). Without --nats, GET /cluster says the cluster is off and nothing
 * else here runs. */
#include "api/api_int.h"

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

/* The path as sent and the query, re-encoded; skip: a parameter left out. */
static void target_of(struct http_request *req, const char *skip, char *out, size_t size)
{
	size_t at = (size_t)snprintf(out, size, "%s", http_request_raw_path(req));
	if (at >= size)
		at = size - 1;
	int first = 1;
	for (size_t i = 0; i < http_request_query_count(req); i++) {
		const char *name = http_request_query_name(req, i);
		const char *value = http_request_query_value(req, i);
		if (skip && strcmp(name, skip) == 0)
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

static void forward_now(struct forward *f)
{
	struct api_call *c = f->c;
	const char *headers[PASSED_HEADERS_MAX];
	passed_headers(c, headers);
	size_t len = 0;
	const uint8_t *body = http_request_body(c->req, &len);
	struct cluster_http req = {
		.method = http_request_method(c->req), .target = f->target, .headers = headers,
		.body = body, .len = len, .timeout_ms = forward_timeout(c),
	};
	struct cluster_reply r;
	struct err e = {0};
	struct cluster *cl = cluster_of(c->api);
	int64_t t0 = now_mono_ms();
	enum err_code rc = cluster_call(cl, f->node, &req, &r, &e);
	char moved[CLUSTER_NODE_MAX];
	struct err le = {0};
	/* No answer from the node our copy of the placement names: the actor may
	 * have moved (a failover) before our copy heard of it; the bucket says. */
	if (rc == ERR_UNAVAILABLE && strncmp(http_request_raw_path(c->req), "/actors/", 8) == 0 &&
	    c->params[0] && cluster_locate(cl, c->params[0], moved, &le) == ERR_OK &&
	    strcmp(moved, f->node) != 0) {
		snprintf(f->node, sizeof(f->node), "%s", moved);
		if (strcmp(moved, cluster_node(cl)) == 0) {
			api_handler_fn fn = f->local;
			fn(c);
			return;
		}
		memset(&e, 0, sizeof(e));
		/* the second try gets what is left of the first one's time */
		int64_t left = (int64_t)req.timeout_ms - (now_mono_ms() - t0);
		req.timeout_ms = left > 1000 ? (unsigned)left : 1000;
		rc = cluster_call(cl, f->node, &req, &r, &e);
	}
	if (rc) {
		api_problem_err(c, &e);
		return;
	}
	const char *h[2 * 12 + 3];
	size_t n = 0;
	const char *ct = NULL, *k;
	json_t *v;
	json_object_foreach(r.headers, k, v) {
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
	api_bytes(c, r.status, ct, r.len || ct ? r.body : NULL, r.len, h);
	if (!r.len && !ct)
		free(r.body);
	r.body = NULL;
	cluster_reply_release(&r);
}

static void job_relay(void *arg);

static void job_forward(void *arg)
{
	struct forward *f = arg;
	forward_now(f);
	free(f);
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
	if (cluster_locate(cl, c->params[0], f->node, &e) == ERR_OK &&
	    strcmp(f->node, cluster_node(cl)) != 0) {
		if (pl > 6 && strcmp(path + pl - 6, "/chain") == 0 && sse_accepted(c)) {
			job_relay(f);     /* frees f */
			return;
		}
		forward_now(f);
	} else {
		api_handler_fn fn = f->local;
		fn(c);                   /* ours, or unknown: the local answer (404) */
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
	target_of(c->req, skip, f->target, sizeof(f->target));
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

static void job_cluster_list(void *arg)
{
	struct forward *f = arg;
	struct api_call *c = f->c;
	struct cluster *cl = cluster_of(c->api);
	char names[64][CLUSTER_NODE_MAX];
	size_t n = cluster_nodes_up(cl, names, 64);
	json_t *items = json_array(), *nodes = json_object();
	int status = 200;
	struct err e = {0};
	for (size_t i = 0; i < n; i++) {
		struct cluster_http req = {.method = "GET", .target = f->target, .timeout_ms = 10000};
		struct cluster_reply r;
		json_t *page = NULL;
		if (cluster_call(cl, names[i], &req, &r, &e) == ERR_OK) {
			if (r.status != 200) {   /* a bad filter: every node says the same */
				status = r.status;
				json_decref(items);
				json_decref(nodes);
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
			json_array_append(items, run);
		}
		json_object_set_new(nodes, names[i], page ? json_pack("{s:O, s:O}", "next_cursor",
			json_object_get(page, "next_cursor"), "events_head",
			json_object_get(page, "events_head")) : json_pack("{s:s}", "error", e.msg));
		json_decref(page);
	}
	json_t *o = json_pack("{s:o, s:n, s:o}", "items", items, "next_cursor", "nodes", nodes);
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
	target_of(c->req, NULL, target, sizeof(target));
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
		const char *h[] = {"X-Theater-Node", f->node, NULL};
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
	if (strcmp(method, "GET") != 0 && strcmp(pattern, "/session") != 0 &&
	    !cluster_writable(cl)) {
		api_problem(c, ERR_UNAVAILABLE, "this node cannot reach the cluster's replicated "
			    "stream (NATS); it refuses writes it could not replicate: retry later "
			    "or on another node");
		return 1;
	}
	if (http_request_header(c->req, FORWARDED_HEADER))
		return 0;                /* forwarded to us: answer here, never again */
	if (strcmp(pattern, "/events") == 0) {
		const char *node = http_request_query(c->req, "node");
		if (!node || strcmp(node, cluster_node(cl)) == 0)
			return 0;
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
			       ? 0 : start_forward(c, node, fn, NULL, job_forward);
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
