/* api_int.h - private to the api layer: the api object, route handlers and the
 * helpers every handler uses to answer. */
#ifndef THEATER_API_INT_H
#define THEATER_API_INT_H

#include <pthread.h>
#include <stdint.h>

#include "api/api.h"
#include "src/manifest.h"
#include "src/util/histo.h"
#include "src/util/json.h"

struct sse;
struct feed;

/* session.c: browser sessions (cookie auth for the dashboard). All zero is an
 * empty table, so it lives in struct api (calloc'd) with no init or release. */
#define API_MAX_SESSIONS 64
struct api_session {
	uint8_t digest[32];           /* SHA-256 of the cookie value */
	int64_t expires_ms;           /* CLOCK_MONOTONIC ms; 0 = free slot */
	int64_t login_ms;             /* when the bearer token was shown */
};
struct api_sessions {
	char lock;                    /* spin lock (__atomic_test_and_set), see session.c */
	struct api_session slot[API_MAX_SESSIONS];
};

/* observe.c: counters behind GET /metrics. All zero is empty (lives in the
 * calloc'd struct api); observe_start initialises the lock. */
#define OBSERVE_ROUTES 64     /* route table rows counted; index OBSERVE_ROUTES: no route */
#define OBSERVE_REASONS 16    /* failure reasons kept as labels; then "other" */
struct observe {
	struct histo http[OBSERVE_ROUTES + 1][5];   /* by route and status class 1xx..5xx */
	uint64_t spawns, restarts;                  /* atomics */
	pthread_mutex_t lock;                       /* reasons and failures */
	int lock_ready;
	char reasons[OBSERVE_REASONS][48];
	uint64_t failures[OBSERVE_REASONS + 1];
	struct supervisor_sub *sub;                 /* the lifecycle stream */
};

struct api {
	struct api_config cfg;
	int draining;
	pthread_mutex_t streams_lock;
	struct sse *streams;          /* open SSE streams, for api_close_streams */
	struct feed *feeds;           /* one per streamed chain (sse.c), streams_lock */
	struct api_sessions sessions; /* session.c */
	struct observe obs;           /* observe.c */
	char *home;                   /* the chains folder's parent; NULL if unknown */
};

#define API_MAX_PARAMS 3

struct api_call {
	struct api *api;
	struct http_request *req;
	const char *params[API_MAX_PARAMS];   /* {id}, {seq}, {store_id}, ... in order */
	char buf[512];                         /* storage for params */
	int overlong;                          /* a parameter did not fit in buf */
	char *idem_key, *idem_scope;           /* a claimed Idempotency-Key (idempotency.c) */
	int route;                             /* row of the route table; -1: none */
	const char *route_pattern;             /* its template, NULL when none */
	int64_t t0_us;                         /* arrival (histo_now_us) */
};

typedef void (*api_handler_fn)(struct api_call *c);

/* Answers (each takes what it is given and frees c). */
void api_json(struct api_call *c, int status, json_t *body);          /* steals body */
void api_json_headers(struct api_call *c, int status, json_t *body,
		      const char *const *headers);                    /* name, value, ..., NULL */
void api_empty(struct api_call *c, int status, const char *const *headers);
/* Whether the request's If-None-Match names etag (a quoted entity-tag): "*", or a
 * comma-separated list whose tags compare weakly (a W/ prefix is ignored), as
 * RFC 9110 13.1.2 asks for GET. */
int api_not_modified(const struct api_call *c, const char *etag);
void api_problem(struct api_call *c, enum err_code code, const char *detail);
void api_problem_err(struct api_call *c, const struct err *err);
void api_bytes(struct api_call *c, int status, const char *content_type, void *data,
	       size_t len, const char *const *headers);              /* takes malloc'd data */

/* idempotency.c: 1 when the call was answered (a replay, a refusal); else the
 * handler runs, and api_bytes stores its answer with api_idem_finish. */
int api_idem_begin(struct api_call *c);
void api_idem_finish(struct api_call *c, int status, const char *content_type,
		     const void *data, size_t len, const char *const *headers);
void api_idem_forget_pending(struct api *api);

/* problem.c */
int problem_status(enum err_code code);
char *problem_body(int status, const char *code, const char *detail, const char *instance);

/* Query helpers: parse an unsigned integer parameter (def when absent); ERR_INVALID,
 * with a message naming the accepted range, when malformed or outside [min, max]. */
enum err_code api_query_u64(struct api_call *c, const char *name, uint64_t def, uint64_t min,
			    uint64_t max, uint64_t *out, struct err *err);
/* Submits fn(c) to the worker pool; answers 503 when it cannot. */
void api_defer(struct api_call *c, void (*fn)(void *c));

/* JSON of a run (json_out.c). */
json_t *api_run_json(const struct db_run *r);
/* The same bytes as json_compact(api_run_json(r)), written directly (the hot
 * GET /actors/{id}); NULL when out of memory or a string is not UTF-8. */
char *api_run_text(const struct db_run *r, size_t *len_out);
/* The same with "last_event": {"type", "seq": head_seq, "time"} after "chain" when
 * last_type is not NULL (GET /actors/{id}). */
char *api_run_text_last(const struct db_run *r, const char *last_type, int64_t last_ts,
			size_t *len_out);
/* RFC 3339 UTC with milliseconds, or JSON null for 0. */
json_t *api_time_json(int64_t ms);
/* Event JSON for pages and SSE: actor_id, seq, hash, parent_hash, event_type,
 * timestamp, and data (JSON when it parses) or data_b64. */
json_t *api_event_json(const char *actor_id, uint64_t seq, const uint8_t *hash,
		       const uint8_t *parent, const char *type, const uint8_t *data,
		       size_t len, int64_t timestamp);

/* Route handlers. */
void h_health(struct api_call *c);
void h_ready(struct api_call *c);
void h_version(struct api_call *c);
void h_actors_create(struct api_call *c);
void h_actors_list(struct api_call *c);
void h_actor_get(struct api_call *c);
void h_actor_stop(struct api_call *c);
void h_actor_kill(struct api_call *c);
void h_actor_delete(struct api_call *c);
void h_actor_message(struct api_call *c);
void h_actor_request(struct api_call *c);
void h_actor_state(struct api_call *c);
void h_actor_metrics(struct api_call *c);
void h_actor_restart(struct api_call *c);
void h_actor_replay(struct api_call *c);       /* replay.c: POST /actors/{id}/replay */
void h_chain(struct api_call *c);
void h_chain_event(struct api_call *c);
void h_chain_verify(struct api_call *c);
void h_events(struct api_call *c);
void h_store_put(struct api_call *c);
void h_store_get(struct api_call *c);
void h_label_put(struct api_call *c);
void h_label_get(struct api_call *c);
void h_packages(struct api_call *c);
void h_secrets_list(struct api_call *c);      /* secrets.c: GET /secrets */
void h_secret_get(struct api_call *c);        /* secrets.c: GET /secrets/{name} (metadata) */
void h_secret_put(struct api_call *c);        /* secrets.c: PUT /secrets/{name} */
void h_secret_delete(struct api_call *c);     /* secrets.c: DELETE /secrets/{name} */
void h_manifests_validate(struct api_call *c); /* manifests.c: POST /manifests/validate */
void h_actor_manifest(struct api_call *c);     /* manifests.c: GET /actors/{id}/manifest */
void h_static_index(struct api_call *c);      /* static.c: GET / (the dashboard) */
void h_static_asset(struct api_call *c);      /* static.c: GET /ui/{asset} */
void h_session_create(struct api_call *c);    /* session.c: POST /session */
void h_session_delete(struct api_call *c);    /* session.c: DELETE /session */

/* session.c. Any thread; neither blocks. True when the request carries the
 * configured bearer token / a live session cookie (0 when no token is set). */
int session_bearer_ok(struct api *api, struct http_request *req);
int session_cookie_ok(struct api *api, struct http_request *req);

/* guard.c. MHD thread, before the body is read: ERR_BAD_HOST or ERR_CROSS_SITE
 * (no token configured, route not public) or ERR_UNSUPPORTED (a browser-sendable
 * form type where JSON is expected); see guard.c. */
enum err_code guard_admit(const struct api *api, struct http_request *req, int public_,
			  int json_body, struct err *err);

/* manifests.c. The format of a request body from its Content-Type: JSON
 * (also when absent, and for curl -d's application/x-www-form-urlencoded) or
 * TOML (application/toml, text/toml and their x- forms). -1 for another type. */
int api_body_format(const char *content_type, enum manifest_format *out);
/* A TOML manifest body as the JSON spawn body {"manifest": <its JSON form>},
 * checked strictly first (errors with line:col). New reference or NULL (err). */
json_t *api_toml_spawn_body(const char *data, size_t len, struct err *err);

/* observe.c. observe_request: any thread, once per answer, before c is freed
 * (records latency and writes the access log line). observe_start subscribes to
 * the lifecycle stream (api_new); observe_stop drops it (api_close_streams);
 * observe_release frees the rest (api_free). */
void observe_request(struct api_call *c, int status, size_t bytes);
enum err_code observe_start(struct api *api, struct err *err);
void observe_stop(struct api *api);
void observe_release(struct api *api);
void h_metrics(struct api_call *c);           /* GET /metrics */
void h_openapi(struct api_call *c);           /* static.c: GET /openapi.yaml */
void h_stores_list(struct api_call *c);       /* store.c: GET /store */
void h_store_list(struct api_call *c);        /* store.c: GET /store/{store_id} */
void h_labels_list(struct api_call *c);       /* store.c: GET /store/{store_id}/labels */

/* cluster.c (issue 15). api_cluster_route: in dispatch, before the handler;
 * 1 when the call was taken (forwarded to another node, merged over the
 * cluster, or refused). api_cluster_placed: records a run spawned through the
 * API as placed on this node before its 201 leaves (blocks one NATS round
 * trip; worker threads only); ERR_OK at once without a cluster. */
int api_cluster_route(struct api_call *c, const char *method, const char *pattern,
		      api_handler_fn fn);
enum err_code api_cluster_placed(struct api *api, const char *actor_id, struct err *err);
/* DELETE /actors/{id} of a run here, in cluster mode: its placement becomes a
 * tombstone, then it is deleted here and its chain purged from the stream. 1
 * when the call was taken; 0 for the local answer (no cluster, no such run, a
 * live run without force). */
int api_cluster_delete(struct api_call *c, int force);
void h_cluster(struct api_call *c);           /* GET /cluster */

/* sse.c */
/* Open streams; call with api->streams_lock held. */
size_t sse_count(struct api *api);
/* ended: the run had already ended when the request came (so the stream ends
 * once the replay is done). */
void sse_chain(struct api_call *c, const char *actor_id, uint64_t after, int ended);
void sse_lifecycle(struct api_call *c, uint64_t after);
/* 1 when the request's Accept admits text/event-stream. */
int sse_accepted(struct api_call *c);
/* What every server-sent event answer starts with: the 200 head (content type,
 * no caching, no proxy buffering) and the stream settings (buffer, pings); the
 * caller adds its callbacks. */
struct http_response *sse_head(void);
struct http_stream_config sse_config(const struct api *api);

#endif
