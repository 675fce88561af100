/* messages.c - actors at work over REST: messages (202), requests (200 with
 * the actor's response), the current state and metrics. Accepting a message
 * records it (an fdatasync), so it runs on the worker pool.
 *
 * A request whose Accept admits text/event-stream may be answered as a stream
 * (docs/actor-abi.md, "Deferred and streamed answers"): `chunk` events as the
 * actor sends them, then one `done` with the full answer, or one `error` with
 * the problem. The stream starts with the first chunk; an answer without
 * chunks comes as an ordinary response, unless text/event-stream is the only
 * type the client accepts (then the stream starts at once). A request with an
 * Idempotency-Key is never streamed: its answer is kept whole for retries. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"

static int check_id(struct api_call *c)
{
	if (uuid_valid(c->params[0]))
		return 1;
	api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
	return 0;
}

/* The message is durable and queued: 202 (called once, maybe on the committer). */
static void message_done(void *user, enum err_code rc, const struct err *err)
{
	struct api_call *c = user;
	if (rc) {
		api_problem_err(c, err);
		return;
	}
	size_t len;
	http_request_body(c->req, &len);
	api_json(c, 202, json_pack("{s:s, s:I}", "status", "accepted", "size", (json_int_t)len));
}

/* Writes the message and returns: the worker does not wait for the sync, which
 * the committer shares among every message written meanwhile. */
static void job_message(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	size_t len;
	const uint8_t *body = http_request_body(c->req, &len);
	if (supervisor_send_async(c->api->cfg.sup, c->params[0], body, len, message_done, c, &e))
		api_problem_err(c, &e);
}

void h_actor_message(struct api_call *c)
{
	if (check_id(c))
		api_defer(c, job_message);
}

static void on_reply(void *user, enum err_code rc, const struct err *err, const uint8_t *data,
		     size_t len)
{
	struct api_call *c = user;
	if (rc) {
		api_problem(c, rc, err ? err->msg : NULL);
		return;
	}
	uint8_t *copy = malloc(len + 1);
	if (!copy) {
		api_problem(c, ERR_NOMEM, "cannot copy the response");
		return;
	}
	memcpy(copy, data, len);
	json_error_t je;
	json_t *probe = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
	const char *type = probe ? "application/json" : "application/octet-stream";
	json_decref(probe);
	api_bytes(c, 200, type, copy, len, NULL);
}

/* ---- streamed answers ---- */

struct rstream {
	pthread_mutex_t lock;
	struct api *api;
	struct api_call *c;           /* until the answer or the stream starts */
	struct http_stream *st;       /* once the stream started */
	char path[160];               /* the problem's instance */
	int refs;                     /* the reply's, the stream's (under lock) */
	int only;                     /* the client takes nothing but a stream */
	int finished;                 /* the reply came */
	int closed;                   /* the client is gone (or the stream failed) */
	uint64_t chunks;
};

static void rstream_unref(struct rstream *x)
{
	pthread_mutex_lock(&x->lock);
	int last = --x->refs == 0;
	pthread_mutex_unlock(&x->lock);
	if (!last)
		return;
	http_stream_release(x->st);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static void rstream_closed(void *user, struct http_stream *st)
{
	struct rstream *x = user;
	(void)st;
	pthread_mutex_lock(&x->lock);
	x->closed = 1;
	pthread_mutex_unlock(&x->lock);
	rstream_unref(x);
}

/* {"data": text} or {"data_b64": ...} for bytes that are not UTF-8. */
static json_t *bytes_member(json_t *o, const uint8_t *data, size_t len)
{
	json_t *t = json_stringn((const char *)data, len);
	if (t) {
		json_object_set_new(o, "data", t);
	} else {
		char *b = base64_encode(data, len);
		json_object_set_new(o, "data_b64", json_string(b ? b : ""));
		free(b);
	}
	return o;
}

/* Writes one frame (x->lock held); the JSON is stolen. */
static void frame_locked(struct rstream *x, const char *event, uint64_t id, json_t *data)
{
	char *text = data ? json_compact(data) : NULL;
	json_decref(data);
	char head[64];
	int n = id ? snprintf(head, sizeof(head), "event: %s\nid: %llu\ndata: ", event,
			      (unsigned long long)id)
		   : snprintf(head, sizeof(head), "event: %s\ndata: ", event);
	size_t len = text ? strlen(text) : 0;
	char *frame = text ? malloc((size_t)n + len + 2) : NULL;
	if (frame) {
		memcpy(frame, head, (size_t)n);
		memcpy(frame + n, text, len);
		memcpy(frame + n + len, "\n\n", 2);
		if (http_stream_write(x->st, frame, (size_t)n + len + 2) != ERR_OK)
			x->closed = 1;
	}
	free(frame);
	free(text);
}

/* Starts the event stream (x->lock held): the request is answered by it. */
static void start_locked(struct rstream *x)
{
	struct api_call *c = x->c;
	struct err e = {0};
	struct http_response *head = sse_head();
	struct http_stream_config cfg = sse_config(x->api);
	cfg.on_close = rstream_closed;
	cfg.user = x;
	x->c = NULL;
	observe_request(c, 200, 0);     /* before the answer, which frees the request */
	x->refs++;                      /* the stream's, dropped by rstream_closed */
	if (http_respond_stream(c->req, head, &cfg, &x->st, &e) != ERR_OK) {
		x->refs--;
		x->st = NULL;
		x->closed = 1;
	} else {
		static const char hello[] = ": theater request stream\n\n";
		if (http_stream_write(x->st, hello, sizeof(hello) - 1) != ERR_OK)
			x->closed = 1;
	}
	free(c);
}

static void on_chunk(void *user, const uint8_t *data, size_t len)
{
	struct rstream *x = user;
	pthread_mutex_lock(&x->lock);
	if (!x->finished && x->c)
		start_locked(x);
	if (!x->finished && !x->closed && x->st)
		frame_locked(x, "chunk", ++x->chunks, bytes_member(json_object(), data, len));
	pthread_mutex_unlock(&x->lock);
}

static void on_stream_reply(void *user, enum err_code rc, const struct err *err,
			    const uint8_t *data, size_t len)
{
	struct rstream *x = user;
	pthread_mutex_lock(&x->lock);
	x->finished = 1;
	/* A client that takes only a stream gets one even when the answer came
	 * before job_request could start it (a quick call, no chunks). */
	if (x->c && x->only)
		start_locked(x);
	if (x->c) {
		struct api_call *c = x->c;
		x->c = NULL;
		on_reply(c, rc, err, data, len);     /* nothing streamed: an ordinary answer */
	} else if (x->st && !x->closed && rc) {
		char *body = problem_body(problem_status(rc), err_code_name(rc),
					  err ? err->msg : NULL, x->path);
		json_t *p = body ? json_loads(body, 0, NULL) : NULL;
		free(body);
		frame_locked(x, "error", 0, p);
	} else if (x->st && !x->closed) {
		json_error_t je;
		json_t *probe = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
		json_t *o = json_pack("{s:s, s:I}", "content_type", probe ? "application/json"
				      : "application/octet-stream", "chunks", (json_int_t)x->chunks);
		json_decref(probe);
		frame_locked(x, "done", 0, bytes_member(o, data, len));
	}
	if (x->st)
		http_stream_end(x->st);
	pthread_mutex_unlock(&x->lock);
	rstream_unref(x);
}

/* 1 when the client takes a stream (and may: no Idempotency-Key); *only: it
 * takes nothing else. */
static int wants_stream(struct api_call *c, int *only)
{
	*only = 0;
	if (!sse_accepted(c) || c->idem_key)
		return 0;
	*only = strchr(http_request_header(c->req, "Accept"), ',') == NULL;
	return 1;
}

static void job_request(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	uint64_t timeout;
	if (api_query_u64(c, "timeout", 30, 0, 300, &timeout, &e)) {
		api_problem_err(c, &e);
		return;
	}
	size_t len;
	const uint8_t *body = http_request_body(c->req, &len);
	uint32_t ms = (uint32_t)(timeout ? timeout * 1000 : 1);
	int only;
	struct rstream *x = wants_stream(c, &only) ? calloc(1, sizeof(*x)) : NULL;
	if (x)
		x->only = only;
	if (!x) {
		if (supervisor_request(c->api->cfg.sup, c->params[0], NULL, body, len, ms, on_reply,
				       c, &e))
			api_problem_err(c, &e);
		return;
	}
	pthread_mutex_init(&x->lock, NULL);
	x->api = c->api;
	x->c = c;
	x->refs = 2;                    /* the reply's, and this function's */
	snprintf(x->path, sizeof(x->path), "%s", http_request_path(c->req));
	if (supervisor_request_stream(c->api->cfg.sup, c->params[0], NULL, body, len, ms,
				      on_stream_reply, on_chunk, x, &e)) {
		x->c = NULL;
		x->refs = 1;
		api_problem_err(c, &e);
	} else if (only) {
		pthread_mutex_lock(&x->lock);
		if (!x->finished && x->c)
			start_locked(x);
		pthread_mutex_unlock(&x->lock);
	}
	rstream_unref(x);
}

void h_actor_request(struct api_call *c)
{
	if (check_id(c))
		api_defer(c, job_request);
}

void h_actor_state(struct api_call *c)
{
	if (!check_id(c))
		return;
	struct err e = {0};
	uint8_t *data = NULL;
	size_t len = 0;
	if (supervisor_state(c->api->cfg.sup, c->params[0], &data, &len, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_error_t je;
	json_t *probe = json_loadb((const char *)data, len, JSON_DECODE_ANY, &je);
	const char *type = probe ? "application/json" : "application/octet-stream";
	json_decref(probe);
	api_bytes(c, 200, type, data, len, NULL);
}

void h_actor_metrics(struct api_call *c)
{
	if (!check_id(c))
		return;
	struct err e = {0};
	struct supervisor_metrics m;
	if (supervisor_metrics(c->api->cfg.sup, c->params[0], &m, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I}, s:I, s:I, s:i}",
		"calls", (json_int_t)m.calls, "failures", (json_int_t)m.failures,
		"fuel", (json_int_t)m.fuel, "busy_us", (json_int_t)m.busy_us,
		"memory_bytes", (json_int_t)m.memory_bytes,
		"mailbox", "depth", (json_int_t)m.mailbox_depth, "capacity",
		(json_int_t)m.mailbox_capacity,
		"messages", (json_int_t)m.messages, "requests", (json_int_t)m.requests,
		"restarts", (int)m.restarts);
	api_json(c, 200, o);
}

static void restarted(void *user, enum err_code rc, const struct err *err)
{
	struct api_call *c = user;
	struct db_run r;
	struct err e = {0};
	if (rc) {
		api_problem(c, rc, err ? err->msg : NULL);
		return;
	}
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *o = api_run_json(&r);
	db_run_release(&r);
	api_json(c, 200, o);
}

void h_actor_restart(struct api_call *c)
{
	if (!check_id(c))
		return;
	const char *st = http_request_query(c->req, "state");
	if (st && strcmp(st, "last") != 0 && strcmp(st, "initial") != 0) {
		api_problem(c, ERR_INVALID, "query parameter 'state' must be 'last' (keep the last "
			    "good state, the default) or 'initial' (init afresh)");
		return;
	}
	supervisor_restart(c->api->cfg.sup, c->params[0], st && strcmp(st, "initial") == 0,
			   restarted, c);
}
