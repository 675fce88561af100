/* sse.c - server-sent event streams: one actor's chain, or the lifecycle events
 * of all actors.
 *
 * A stream subscribes first (learning the head H), then replays from storage on
 * the worker pool up to the newest head it has heard of, then goes live. While
 * replaying, live events only raise the known head; the replay catches up to it
 * and switches to live under the stream lock, so nothing is sent twice or
 * skipped. Replay writes in batches and yields while the client's queue is more
 * than half full, so a slow reader never makes the server buffer without bound
 * (and one that stops reading is cut off by the HTTP layer).
 *
 * References: one for the connection (dropped by the cleanup job after
 * on_close, which the HTTP layer always calls), one while a replay job is
 * scheduled, and a short one held by api_close_streams. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/log.h"

#define REPLAY_BATCH 256

struct sse {
	struct sse *next, *prev;           /* api->streams, under api->streams_lock */
	struct api *api;
	struct http_stream *stream;
	struct supervisor_sub *sub;        /* guarded by lock */
	char actor_id[37];                 /* "" for the lifecycle stream */
	pthread_mutex_t lock;
	uint64_t last_sent;                /* id of the last event written */
	uint64_t known_head;               /* newest id stored */
	int live;                          /* replay done; live events are written */
	int replaying;                     /* a replay job is scheduled */
	int ready_sent;
	int ended;                         /* the actor's run has ended */
	int closed;
	int refs;                          /* atomic */
};

static void sse_unref(struct sse *x)
{
	if (__atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	http_stream_release(x->stream);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

/* Writes one frame; called with x->lock held. */
static void write_frame(struct sse *x, uint64_t id, const char *event, json_t *data)
{
	char *text = json_compact(data);
	json_decref(data);
	if (!text)
		return;
	char head[64];
	int n = snprintf(head, sizeof(head), "id: %llu\nevent: %s\ndata: ",
			 (unsigned long long)id, event);
	size_t len = strlen(text);
	char *frame = malloc((size_t)n + len + 3);
	if (frame) {
		memcpy(frame, head, (size_t)n);
		memcpy(frame + n, text, len);
		memcpy(frame + n + len, "\n\n", 2);
		if (http_stream_write(x->stream, frame, (size_t)n + len + 2) != ERR_OK)
			x->closed = 1;
		free(frame);
	}
	free(text);
	x->last_sent = id;
}

static json_t *lifecycle_json(const struct supervisor_event *ev)
{
	json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:s?}", "id", (json_int_t)ev->global_id,
			      "actor_id", ev->actor_id, "seq", (json_int_t)ev->seq,
			      "event_type", ev->event_type, "status", ev->status);
	if (!o)
		return NULL;
	json_object_set_new(o, "timestamp", api_time_json(ev->timestamp));
	json_error_t je;
	json_t *d = json_loadb((const char *)ev->data, ev->data_len, 0, &je);
	json_object_set_new(o, "data", d ? d : json_object());
	return o;
}

static void write_event(struct sse *x, const struct supervisor_event *ev)
{
	if (x->actor_id[0])
		write_frame(x, ev->seq, "chain",
			    api_event_json(ev->actor_id, ev->seq, ev->hash, ev->parent_hash,
					   ev->event_type, ev->data, ev->data_len, ev->timestamp));
	else
		write_frame(x, ev->global_id, "lifecycle", lifecycle_json(ev));
}

static void schedule_replay(struct sse *x, uint32_t delay_ms);

/* Live events; runs under the supervisor's subscription lock. */
static void on_event(void *user, const struct supervisor_event *ev)
{
	struct sse *x = user;
	uint64_t id = x->actor_id[0] ? ev->seq : ev->global_id;
	pthread_mutex_lock(&x->lock);
	if (id > x->known_head)
		x->known_head = id;
	if (ev->terminal && x->actor_id[0])
		x->ended = 1;
	if (x->live && !x->closed && id == x->last_sent + 1) {
		write_event(x, ev);
		if (x->ended && x->actor_id[0])
			http_stream_end(x->stream);
	} else if (x->live && id > x->last_sent + 1) {
		x->live = 0;           /* a gap: fetch the missing events from storage */
		if (!x->replaying)
			schedule_replay(x, 0);
	}
	pthread_mutex_unlock(&x->lock);
}

static void replay_one_chain(struct sse *x, uint64_t seq)
{
	struct chain_event ev = {0};
	int64_t ts = 0;
	struct err e = {0};
	if (supervisor_read_event(x->api->cfg.sup, x->actor_id, seq, &ev, &ts, &e)) {
		log_warn("api", "replay of '%s' seq %llu failed: %s", x->actor_id,
			 (unsigned long long)seq, e.msg);
		pthread_mutex_lock(&x->lock);
		x->closed = 1;
		http_stream_end(x->stream);
		pthread_mutex_unlock(&x->lock);
		return;
	}
	pthread_mutex_lock(&x->lock);
	if (!x->closed)
		write_frame(x, seq, "chain",
			    api_event_json(x->actor_id, seq, ev.hash, ev.parent_hash,
					   ev.event_type, ev.data, ev.data_len, ts));
	pthread_mutex_unlock(&x->lock);
	chain_event_release(&ev);
}

static void replay_life_cb(void *user, const struct supervisor_event *ev)
{
	struct sse *x = user;
	pthread_mutex_lock(&x->lock);
	if (!x->closed && ev->global_id > x->last_sent)
		write_event(x, ev);
	pthread_mutex_unlock(&x->lock);
}

/* Switches to live when caught up; returns 1 when the replay is finished. */
static int catch_up(struct sse *x)
{
	pthread_mutex_lock(&x->lock);
	int done = x->closed || x->last_sent >= x->known_head;
	if (done && !x->closed) {
		x->live = 1;
		if (!x->ready_sent) {
			char frame[96];
			int n = snprintf(frame, sizeof(frame), "event: ready\ndata: {\"head\":%llu}\n\n",
					 (unsigned long long)x->known_head);
			if (http_stream_write(x->stream, frame, (size_t)n) != ERR_OK)
				x->closed = 1;
			x->ready_sent = 1;
		}
		if (x->ended && x->actor_id[0])
			http_stream_end(x->stream);
	}
	if (done)
		x->replaying = 0;
	pthread_mutex_unlock(&x->lock);
	return done;
}

static void replay_job(void *arg)
{
	struct sse *x = arg;
	for (int i = 0; i < REPLAY_BATCH; i++) {
		if (catch_up(x)) {
			sse_unref(x);
			return;
		}
		if (x->actor_id[0]) {
			replay_one_chain(x, x->last_sent + 1);
		} else {
			struct err e = {0};
			uint64_t before = x->last_sent;
			supervisor_lifecycle_after(x->api->cfg.sup, before, 64, replay_life_cb, x, &e);
			if (x->last_sent == before) {   /* nothing stored past it: trust storage */
				pthread_mutex_lock(&x->lock);
				x->known_head = x->last_sent;
				pthread_mutex_unlock(&x->lock);
			}
		}
		if (http_stream_queued(x->stream) > x->api->cfg.sse_max_buffered / 2)
			break;
	}
	struct pool *p = supervisor_pool(x->api->cfg.sup);
	int backed_up = http_stream_queued(x->stream) > x->api->cfg.sse_max_buffered / 2;
	if (!p || pool_submit_after(p, backed_up ? 20 : 0, replay_job, x) != ERR_OK) {
		pthread_mutex_lock(&x->lock);
		x->replaying = 0;
		x->closed = 1;
		http_stream_end(x->stream);
		pthread_mutex_unlock(&x->lock);
		sse_unref(x);
	}
}

/* Called with x->lock held (or before the stream is shared). */
static void schedule_replay(struct sse *x, uint32_t delay_ms)
{
	struct pool *p = supervisor_pool(x->api->cfg.sup);
	__atomic_add_fetch(&x->refs, 1, __ATOMIC_ACQ_REL);
	x->replaying = 1;
	if (!p || pool_submit_after(p, delay_ms, replay_job, x) != ERR_OK) {
		x->replaying = 0;
		x->closed = 1;
		http_stream_end(x->stream);
		__atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL);  /* never the last one here */
	}
}

static void detach(struct sse *x)
{
	pthread_mutex_lock(&x->lock);
	struct supervisor_sub *sub = x->sub;
	x->sub = NULL;
	x->closed = 1;
	pthread_mutex_unlock(&x->lock);
	supervisor_unsubscribe(x->api->cfg.sup, sub);
	struct api *api = x->api;
	pthread_mutex_lock(&api->streams_lock);
	if (x->prev || api->streams == x) {
		if (x->prev)
			x->prev->next = x->next;
		else
			api->streams = x->next;
		if (x->next)
			x->next->prev = x->prev;
		x->next = x->prev = NULL;
	}
	pthread_mutex_unlock(&api->streams_lock);
}

/* The HTTP layer is done with the stream (on_close came): drop the connection's
 * reference. Only here, because on_close always comes, also after
 * api_close_streams detached the stream. */
static void cleanup_job(void *arg)
{
	detach(arg);
	sse_unref(arg);
}

static void on_close(void *user, struct http_stream *s)
{
	(void)s;
	struct sse *x = user;
	struct pool *p = supervisor_pool(x->api->cfg.sup);
	/* Unsubscribing waits for a live callback in flight, which may be writing to
	 * this stream: do it on a worker, never on the thread that closed it. */
	if (!p || pool_submit(p, cleanup_job, x) != ERR_OK)
		cleanup_job(x);
}

size_t sse_count(struct api *api)
{
	size_t n = 0;
	for (struct sse *x = api->streams; x; x = x->next)
		n++;
	return n;
}

void api_close_streams(struct api *api)
{
	observe_stop(api);
	for (;;) {
		pthread_mutex_lock(&api->streams_lock);
		struct sse *x = api->streams;
		if (x)
			__atomic_add_fetch(&x->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&api->streams_lock);
		if (!x)
			return;
		http_stream_end(x->stream);
		detach(x);
		sse_unref(x);
	}
}

static void start(struct api_call *c, const char *actor_id, uint64_t after, int ended)
{
	struct err e = {0};
	struct sse *x = calloc(1, sizeof(*x));
	if (!x) {
		api_problem(c, ERR_NOMEM, "cannot open a stream");
		return;
	}
	x->api = c->api;
	x->refs = 1;
	x->last_sent = after;
	x->ended = ended;
	pthread_mutex_init(&x->lock, NULL);
	if (actor_id)
		memcpy(x->actor_id, actor_id, 37);
	if (supervisor_subscribe(c->api->cfg.sup, actor_id, on_event, x, &x->known_head, &x->sub,
				 &e)) {
		pthread_mutex_destroy(&x->lock);
		free(x);
		api_problem_err(c, &e);
		return;
	}
	struct http_response *head = http_response_new(200);
	http_response_header(head, "Content-Type", "text/event-stream");
	http_response_header(head, "Cache-Control", "no-cache");
	http_response_header(head, "X-Accel-Buffering", "no");
	struct http_stream_config cfg = {
		.max_buffered = c->api->cfg.sse_max_buffered,
		.ping_interval_s = c->api->cfg.sse_ping_s,
		.ping_text = ": ping\n\n",
		.on_close = on_close,
		.user = x,
	};
	observe_request(c, 200, 0);     /* before the answer, which frees the request */
	pthread_mutex_lock(&x->lock);   /* no live write before the stream exists */
	if (http_respond_stream(c->req, head, &cfg, &x->stream, &e) != ERR_OK) {
		pthread_mutex_unlock(&x->lock);
		supervisor_unsubscribe(c->api->cfg.sup, x->sub);
		pthread_mutex_destroy(&x->lock);
		free(x);
		free(c);
		return;
	}
	free(c);
	pthread_mutex_lock(&x->api->streams_lock);
	x->next = x->api->streams;
	if (x->next)
		x->next->prev = x;
	x->api->streams = x;
	pthread_mutex_unlock(&x->api->streams_lock);
	static const char hello[] = ": theater event stream\nretry: 3000\n\n";
	http_stream_write(x->stream, hello, sizeof(hello) - 1);
	schedule_replay(x, 0);
	pthread_mutex_unlock(&x->lock);
}

void sse_chain(struct api_call *c, const char *actor_id, uint64_t after, int ended)
{
	start(c, actor_id, after, ended);
}

void sse_lifecycle(struct api_call *c, uint64_t after)
{
	start(c, NULL, after, 0);
}
