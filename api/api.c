/* api.c - the route table, dispatch, authentication and the answer helpers.
 *
 * Routing is a table of (method, pattern, handler, body limit); `{name}` in a
 * pattern matches one path segment, which is handed to the handler in order.
 * A path that matches a pattern with another method is 405 with Allow. */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/log.h"
#include "src/util/pct.h"
#include "src/util/suggest.h"

#define KIB 1024u

struct route {
	const char *method;
	const char *pattern;
	api_handler_fn fn;
	size_t body;        /* 0: no body; 1: max_body; 2: max_store_object; 3: max_message;
			     * else bytes */
	int public_;        /* no token needed */
};

static const struct route routes[] = {
	{"GET", "/health", h_health, 0, 1},
	{"GET", "/ready", h_ready, 0, 1},
	{"GET", "/version", h_version, 0, 0},
	{"POST", "/actors", h_actors_create, 1, 0},
	{"GET", "/actors", h_actors_list, 0, 0},
	{"GET", "/actors/{id}", h_actor_get, 0, 0},
	{"DELETE", "/actors/{id}", h_actor_delete, 0, 0},
	{"POST", "/actors/{id}/stop", h_actor_stop, 0, 0},
	{"POST", "/actors/{id}/kill", h_actor_kill, 0, 0},
	{"POST", "/actors/{id}/messages", h_actor_message, 3, 0},
	{"POST", "/actors/{id}/requests", h_actor_request, 3, 0},
	{"GET", "/actors/{id}/state", h_actor_state, 0, 0},
	{"GET", "/actors/{id}/metrics", h_actor_metrics, 0, 0},
	{"POST", "/actors/{id}/restart", h_actor_restart, 0, 0},
	{"POST", "/actors/{id}/replay", h_actor_replay, 0, 0},
	{"GET", "/actors/{id}/chain", h_chain, 0, 0},
	{"GET", "/actors/{id}/chain/events/{seq}", h_chain_event, 0, 0},
	{"GET", "/actors/{id}/chain/verify", h_chain_verify, 0, 0},
	{"GET", "/events", h_events, 0, 0},
	{"POST", "/store/{store_id}", h_store_put, 2, 0},
	{"GET", "/store/{store_id}/hash/{sha256}", h_store_get, 0, 0},
	{"PUT", "/store/{store_id}/labels/{label}", h_label_put, 4 * KIB, 0},
	{"GET", "/store/{store_id}/labels/{label}", h_label_get, 0, 0},
	{"GET", "/packages", h_packages, 0, 0},
	{"GET", "/secrets", h_secrets_list, 0, 0},
	{"GET", "/secrets/{name}", h_secret_get, 0, 0},
	{"PUT", "/secrets/{name}", h_secret_put, 64 * KIB, 0},
	{"DELETE", "/secrets/{name}", h_secret_delete, 0, 0},
	{"POST", "/manifests/validate", h_manifests_validate, 1, 0},
	{"GET", "/actors/{id}/manifest", h_actor_manifest, 0, 0},
	{"GET", "/", h_static_index, 0, 1},
	{"GET", "/ui/{asset}", h_static_asset, 0, 1},
	{"POST", "/session", h_session_create, 0, 1},
	{"DELETE", "/session", h_session_delete, 0, 1},
	{"GET", "/metrics", h_metrics, 0, 0},
	{"GET", "/openapi.yaml", h_openapi, 0, 1},
	{"GET", "/store", h_stores_list, 0, 0},
	{"GET", "/store/{store_id}", h_store_list, 0, 0},
	{"GET", "/store/{store_id}/labels", h_labels_list, 0, 0},
	{"GET", "/cluster", h_cluster, 0, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The query parameters each route takes (space-separated); a route not listed
 * takes none, and anything else is a 400 naming the parameter. */
static const struct {
	const char *method, *pattern, *query;
} route_queries[] = {
	{"POST", "/actors", "wait timeout node"},
	{"GET", "/actors", "status name parent limit cursor"},
	{"DELETE", "/actors/{id}", "force"},
	{"POST", "/actors/{id}/requests", "timeout"},
	{"GET", "/actors/{id}/chain", "after limit type"},
	{"GET", "/events", "after node"},
	{"GET", "/store/{store_id}", "limit cursor"},
	{"POST", "/actors/{id}/restart", "state"},
};

static const char *route_query(const struct route *r)
{
	for (size_t i = 0; i < sizeof(route_queries) / sizeof(route_queries[0]); i++)
		if (!strcmp(route_queries[i].method, r->method) &&
		    !strcmp(route_queries[i].pattern, r->pattern))
			return route_queries[i].query;
	return NULL;
}

size_t api_routes(const struct api_route_info **out)
{
	static struct api_route_info info[NROUTES];
	for (size_t i = 0; i < NROUTES; i++)
		info[i] = (struct api_route_info){routes[i].method, routes[i].pattern};
	*out = info;
	return NROUTES;
}

/* Decodes one path segment into dst. The HTTP layer refuses paths with a
 * malformed escape or %00 before any route is matched, so decoding cannot fail
 * here; if it did, the raw text is kept and fails the parameter's validation. */
static void decode_param(const char *src, size_t n, char *dst)
{
	if (pct_decode(src, n, dst) != ERR_OK) {
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
}

/* Matches the raw (still percent-encoded) path against pattern, so an encoded
 * '/' stays inside its segment; parameters are decoded into buf. */
static int match(const char *pattern, const char *path, struct api_call *c)
{
	size_t used = 0;
	int np = 0;
	const char *p = pattern, *s = path;
	c->overlong = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *end = strchr(s, '/');
			size_t n = end ? (size_t)(end - s) : strlen(s);
			if (n == 0 || np == API_MAX_PARAMS)
				return 0;
			if (used + n + 1 > sizeof(c->buf)) {    /* matched; refused as too long */
				c->overlong = 1;
				c->params[np++] = "";
			} else {
				decode_param(s, n, c->buf + used);
				c->params[np++] = c->buf + used;
				used += n + 1;
			}
			s += n;
			p = strchr(p, '}') + 1;
		} else if (*p++ != *s++) {
			return 0;
		}
	}
	return *p == '\0' && *s == '\0';
}

static const struct route *route_for(struct http_request *req, struct api_call *c, int *allowed)
{
	const char *path = http_request_raw_path(req);
	const char *method = http_request_method(req);
	*allowed = 0;
	for (size_t i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, path, c))
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
			return &routes[i];
		*allowed = 1;
	}
	return NULL;
}

/* The route of a request, matched once for body_limit and admit (kept in the
 * request's data; handle matches again for the parameters). NULL: none. */
static const char NO_ROUTE;
static const struct route *route_cached(struct http_request *req)
{
	const void *d = http_request_data(req);
	if (d)
		return d == &NO_ROUTE ? NULL : d;
	struct api_call c = {0};
	int allowed;
	const struct route *r = route_for(req, &c, &allowed);
	http_request_set_data(req, r ? (void *)r : (void *)&NO_ROUTE);
	return r;
}

static size_t cb_body_limit(void *user, struct http_request *req)
{
	struct api *api = user;
	const struct route *r = route_cached(req);
	if (!r)     /* let a small body in so the answer is the real 404 or 405 */
		return api->cfg.max_body < 65536 ? api->cfg.max_body : 65536;
	switch (r->body) {
	case 0: return 0;
	case 1: return api->cfg.max_body;
	case 2: return api->cfg.max_store_object;
	case 3: return api->cfg.max_message;
	default: return r->body;
	}
}

/* The bearer token, or the session cookie the dashboard got for it (session.c). */
static int authorized(struct api *api, struct http_request *req)
{
	const char *token = api->cfg.token;
	if (!token || !*token)
		return 1;
	return session_bearer_ok(api, req) || session_cookie_ok(api, req);
}

static struct http_response *problem_response(struct http_request *req, enum err_code code,
					      const char *detail)
{
	struct http_response *resp = http_response_new(problem_status(code));
	char *body = problem_body(problem_status(code), err_code_name(code), detail,
				  http_request_path(req));
	http_response_header(resp, "Content-Type", "application/problem+json");
	if (code == ERR_UNAUTHORIZED)
		http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"theater\"");
	if (body)
		http_response_body_take(resp, body, strlen(body));
	return resp;
}

static struct http_response *unauthorized_response(struct http_request *req)
{
	return problem_response(req, ERR_UNAUTHORIZED, "missing or wrong bearer token (send "
				"'Authorization: Bearer <token>')");
}

/* Before any body is buffered (issue 12): the token, then the site and media
 * type policy of guard.c. */
static struct http_response *cb_admit(void *user, struct http_request *req)
{
	struct api *api = user;
	struct err e = {0};
	const struct route *r = route_cached(req);
	int public_ = r && r->public_;
	if (r && !public_ && !authorized(api, req))
		return unauthorized_response(req);
	int json_body = r && (r->fn == h_actors_create || r->fn == h_manifests_validate ||
			      r->fn == h_label_put);
	if (guard_admit(api, req, public_, json_body, &e))
		return problem_response(req, e.code, e.msg);
	return NULL;
}

static void allow_header(struct api_call *c)
{
	char allow[64] = "";
	const char *path = http_request_raw_path(c->req);
	struct api_call tmp = {0};
	for (size_t i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, path, &tmp) || strstr(allow, routes[i].method))
			continue;
		if (*allow)
			strcat(allow, ", ");
		strcat(allow, routes[i].method);
	}
	const char *h[] = {"Allow", allow, NULL};
	struct err e;
	err_set(&e, ERR_METHOD, "method %s is not allowed on '%s' (allowed: %s)",
		http_request_method(c->req), path, allow);
	struct http_response *resp = http_response_new(405);
	char *body = problem_body(405, err_code_name(ERR_METHOD), e.msg, path);
	http_response_header(resp, "Content-Type", "application/problem+json");
	http_response_header(resp, h[0], h[1]);
	size_t len = body ? strlen(body) : 0;
	if (body)
		http_response_body_take(resp, body, len);
	observe_request(c, 405, len);   /* before the answer: it frees the request */
	http_respond(c->req, resp);
	free(c);
}

/* A query parameter the route does not take: 400 naming it, with the closest
 * known one; so is one given twice (which one would count is not the client's
 * to guess), but for `type`, which repeats. 1 when answered. */
static int unknown_query(struct api_call *c, const struct route *r)
{
	const char *known[8];
	size_t nk = 0;
	char list[128] = "";
	const char *query = route_query(r);
	if (query) {
		snprintf(list, sizeof(list), "%s", query);
		for (char *save = NULL, *t = strtok_r(list, " ", &save); t && nk < 8;
		     t = strtok_r(NULL, " ", &save))
			known[nk++] = t;
	}
	for (size_t i = 0; i < http_request_query_count(c->req); i++) {
		const char *name = http_request_query_name(c->req, i);
		size_t k = 0;
		while (k < nk && strcmp(known[k], name) != 0)
			k++;
		size_t j = 0;
		while (j < i && strcmp(http_request_query_name(c->req, j), name) != 0)
			j++;
		if (k < nk && j < i && strcmp(name, "type") != 0) {
			char detail[200];
			snprintf(detail, sizeof(detail), "query parameter '%.100s' is given more than "
				 "once", name);
			api_problem(c, ERR_INVALID, detail);
			return 1;
		}
		if (k < nk)
			continue;
		char detail[400];
		const char *s = suggest_name(name, known, nk);
		if (s)
			snprintf(detail, sizeof(detail), "unknown query parameter '%.100s' "
				 "(did you mean '%s'?)", name, s);
		else if (query)
			snprintf(detail, sizeof(detail), "unknown query parameter '%.100s' "
				 "(%s %s takes: %s)", name, r->method, r->pattern, query);
		else
			snprintf(detail, sizeof(detail), "unknown query parameter '%.100s' "
				 "(%s %s takes none)", name, r->method, r->pattern);
		api_problem(c, ERR_INVALID, detail);
		return 1;
	}
	return 0;
}

/* The routes whose work a retry must not repeat: spawns, messages, requests. */
static int honours_idempotency(const struct route *r)
{
	return r->fn == h_actors_create || r->fn == h_actor_message || r->fn == h_actor_request;
}

static void cb_handle(void *user, struct http_request *req)
{
	struct api *api = user;
	struct api_call *c = calloc(1, sizeof(*c));
	if (!c) {
		http_respond(req, NULL);
		return;
	}
	c->api = api;
	c->req = req;
	c->t0_us = histo_now_us();
	int allowed;
	const struct route *r = route_for(req, c, &allowed);
	c->route = r ? (int)(r - routes) : -1;
	c->route_pattern = r ? r->pattern : NULL;
	if (r && !r->public_ && !authorized(api, req)) {   /* cb_admit checked it first */
		observe_request(c, 401, 0);
		http_respond(req, unauthorized_response(req));
		free(c);
		return;
	}
	if (r && c->overlong) {   /* no id, label or hash is this long */
		api_problem(c, ERR_BAD_ID, "a path segment is too long to be an id, a name or a "
			    "hash");
		return;
	}
	if (r && unknown_query(c, r))
		return;
	if (r && api_cluster_route(c, r->method, r->pattern, r->fn))
		return;
	if (r && honours_idempotency(r) && api_idem_begin(c))
		return;
	if (r) {
		r->fn(c);
	} else if (allowed) {
		allow_header(c);
	} else {
		char detail[300];
		snprintf(detail, sizeof(detail), "no route for '%.200s'", http_request_path(req));
		api_problem(c, ERR_NOT_FOUND, detail);
	}
}

static char *cb_problem(void *user, int status, const char *code, const char *detail)
{
	(void)user;
	return problem_body(status, code, detail, NULL);
}

enum err_code api_new(const struct api_config *cfg, struct api **out, struct err *err)
{
	struct api *api = calloc(1, sizeof(*api));
	if (!api)
		return err_set(err, ERR_NOMEM, "cannot allocate api");
	api->cfg = *cfg;
	if (!api->cfg.max_body)
		api->cfg.max_body = 1 << 20;
	if (!api->cfg.max_store_object)
		api->cfg.max_store_object = 64u << 20;
	if (!api->cfg.max_message)
		api->cfg.max_message = 1u << 20;
	if (!api->cfg.sse_ping_s)
		api->cfg.sse_ping_s = 15;
	if (!api->cfg.sse_max_buffered)
		api->cfg.sse_max_buffered = 1 << 20;
	const char *chains = api->cfg.sup ? supervisor_chains_dir(api->cfg.sup) : NULL;
	if (chains && chains[0] == '/' && (api->home = strdup(chains))) {
		char *slash = strrchr(api->home, '/');
		if (slash != api->home)
			*slash = '\0';
	}
	pthread_mutex_init(&api->streams_lock, NULL);
	api_idem_forget_pending(api);
	enum err_code rc = observe_start(api, err);
	if (rc) {
		api_free(api);
		return rc;
	}
	*out = api;
	return ERR_OK;
}

void api_handler(struct api *api, struct http_handler *h)
{
	h->user = api;
	h->admit = cb_admit;
	h->body_limit = cb_body_limit;
	h->handle = cb_handle;
	h->problem = cb_problem;
}

void api_set_cluster(struct api *api, struct cluster *cluster)
{
	__atomic_store_n(&api->cfg.cluster, cluster, __ATOMIC_RELEASE);
}

void api_set_draining(struct api *api, int draining)
{
	__atomic_store_n(&api->draining, draining, __ATOMIC_RELEASE);
}

void api_free(struct api *api)
{
	if (!api)
		return;
	observe_release(api);
	pthread_mutex_destroy(&api->streams_lock);
	free(api->home);
	free(api);
}

/* ---- answers ---- */

static void add_headers(struct http_response *resp, const char *const *headers)
{
	for (; headers && headers[0]; headers += 2)
		http_response_header(resp, headers[0], headers[1]);
}

void api_bytes(struct api_call *c, int status, const char *content_type, void *data,
	       size_t len, const char *const *headers)
{
	api_idem_finish(c, status, content_type, data, len, headers);
	size_t sent = data ? len : 0;
	struct http_response *resp = http_response_new(status);
	if (resp) {
		if (content_type)
			http_response_header(resp, "Content-Type", content_type);
		add_headers(resp, headers);
		if (data)
			http_response_body_take(resp, data, len);
	} else {
		free(data);
	}
	observe_request(c, resp ? status : 500, sent);   /* the answer frees the request */
	http_respond(c->req, resp);
	free(c);
}

void api_json_headers(struct api_call *c, int status, json_t *body, const char *const *headers)
{
	char *text = body ? json_compact(body) : NULL;
	json_decref(body);
	if (!text) {
		api_problem(c, ERR_NOMEM, "cannot serialize the response");
		return;
	}
	api_bytes(c, status, "application/json", text, strlen(text), headers);
}

void api_json(struct api_call *c, int status, json_t *body)
{
	api_json_headers(c, status, body, NULL);
}

int api_not_modified(const struct api_call *c, const char *etag)
{
	const char *p = http_request_header(c->req, "If-None-Match");
	size_t n = strlen(etag);
	while (p && *p) {
		p += strspn(p, " \t,");
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == 0 || strchr(" \t,", p[n])))
			return 1;
		const char *q = *p == '"' ? strchr(p + 1, '"') : NULL;   /* past this tag */
		p = q ? q + 1 : p + strcspn(p, ",");
	}
	return 0;
}

void api_empty(struct api_call *c, int status, const char *const *headers)
{
	api_bytes(c, status, NULL, NULL, 0, headers);
}

/* A copy of detail where each quoted path under home ('/srv/th/chains/x.chain') is
 * cut to its last component ('x.chain'). Messages from the storage layers name
 * files, which is right for the log; a client is not told where the server keeps
 * them. NULL when out of memory. */
static char *cut_home_paths(const char *home, const char *detail)
{
	size_t hl = strlen(home);
	char *out = malloc(strlen(detail) + 1), *w = out;
	if (!out)
		return NULL;
	for (const char *p = detail; *p;) {
		const char *close = NULL;
		if (p[0] == '\'' && strncmp(p + 1, home, hl) == 0 &&
		    (p[1 + hl] == '/' || p[1 + hl] == '\'') && (close = strchr(p + 1, '\''))) {
			const char *base = p + 1;
			for (const char *q = p + 1; q < close; q++)
				if (*q == '/')
					base = q + 1;
			*w++ = '\'';
			memcpy(w, base, (size_t)(close - base));
			w += close - base;
			p = close;   /* the closing quote is copied next */
			continue;
		}
		*w++ = *p++;
	}
	*w = '\0';
	return out;
}

void api_problem(struct api_call *c, enum err_code code, const char *detail)
{
	int status = problem_status(code);
	if (status == 304) {
		api_empty(c, 304, NULL);
		return;
	}
	const char *home = c->api->home;
	char *cut = home && detail && strstr(detail, home) ? cut_home_paths(home, detail) : NULL;
	char *body = problem_body(status, err_code_name(code), cut ? cut : detail,
				  http_request_path(c->req));
	free(cut);
	/* Refused for want of descriptors or memory: worth retrying shortly. */
	static const char *const retry[] = {"Retry-After", "5", NULL};
	api_bytes(c, status, "application/problem+json", body, body ? strlen(body) : 0,
		  code == ERR_EXHAUSTED ? retry : NULL);
}

void api_problem_err(struct api_call *c, const struct err *err)
{
	api_problem(c, err->code ? err->code : ERR_INTERNAL, err->msg);
}

enum err_code api_query_u64(struct api_call *c, const char *name, uint64_t def, uint64_t min,
			    uint64_t max, uint64_t *out, struct err *err)
{
	const char *v = http_request_query(c->req, name);
	if (!v) {
		*out = def;
		return ERR_OK;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long x = *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
	if (!end || *end || errno || x < min || x > max)
		return err_set(err, ERR_INVALID, "query parameter '%s' must be an integer "
			       "from %llu to %llu", name, (unsigned long long)min,
			       (unsigned long long)max);
	*out = x;
	return ERR_OK;
}

void api_defer(struct api_call *c, void (*fn)(void *c))
{
	struct pool *p = supervisor_pool(c->api->cfg.sup);
	if (!p || pool_submit(p, fn, c) != ERR_OK)
		api_problem(c, ERR_UNAVAILABLE, "the server is shutting down");
}
