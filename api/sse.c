/* sse.c - server-sent event streams: one actor's chain, or the lifecycle events
 * of all actors.
 *
 * Fan-out: all streams of one chain (or of the lifecycle log) share a feed, the
 * one subscription to the supervisor. A live event is turned into its frame (the
 * bytes "id: ..\nevent: ..\ndata: ..\n\n") once, and the frame goes into the
 * feed's ring of refcounted frames; that is all the recording thread does, apart
 * from queueing one wake job when some stream waits. Each stream copies frames
 * from the ring when the HTTP layer pulls (the client can take bytes), so a
 * thousand subscribers cost the writer what one does, and a slow subscriber only
 * falls behind: once the ring has dropped frames it has not sent, it replays them
 * from storage and goes live again.
 *
 * A stream first joins its feed (learning the head H), then replays from storage
 * on the worker pool, writing into its own queue, until the ring covers what
 * comes next; then it goes live (a `ready` frame, once). Queued bytes go before
 * pulled ones, so nothing is sent twice or skipped. Replay writes in batches and
 * yields while the client's queue is more than half full, so a slow reader never
 * makes the server buffer without bound.
 *
 * Locks: a feed's lock guards its ring and the state of its streams; it is taken
 * before the HTTP layer's lock (writes, wakes), never the other way round.
 * api->streams_lock guards the lists of streams and feeds and the feeds' users.
 *
 * References: a stream has one for the connection (dropped by the cleanup job
 * after on_close, which the HTTP layer always calls), one while a replay job is
 * scheduled, and short ones (start, wake jobs, api_close_streams). A feed lives
 * while it has users, plus one reference per queued wake job. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/log.h"

#define REPLAY_BATCH 256
#define FEED_FRAMES 16384               /* frames a feed keeps for streams behind */
#define FEED_BYTES (32u << 20)          /* ... and their bytes at most */
/* Wake rounds of a feed are spaced by this much per waiting stream (at most
 * WAKE_GAP_MAX_US): a round costs the HTTP threads about that per stream, so with
 * many subscribers each round carries a batch of frames instead of one, and the
 * threads stay free for the writer's requests. One stream: at once. */
#define WAKE_GAP_PER_STREAM_US 100
#define WAKE_GAP_MAX_US 100000

struct frame {
	int refs;                          /* atomic */
	uint64_t id;
	size_t len;
	char bytes[];
};

struct feed {
	struct feed *next;                 /* api->feeds, under streams_lock */
	struct api *api;
	char actor_id[37];                 /* "" for the lifecycle feed */
	struct supervisor_sub *sub;        /* streams_lock; NULL once unsubscribed */
	int users;                         /* streams_lock: streams that joined */
	int refs;                          /* atomic: 1 for the users + queued wakes */
	pthread_mutex_t lock;
	/* lock: ids lo .. lo+n-1 are in ring[start..], consecutive */
	struct frame *ring[FEED_FRAMES];
	size_t start, n, bytes;
	uint64_t lo;
	uint64_t head;                     /* newest id stored */
	int ended;                         /* the run's last event came */
	struct sse *parked;                /* streams waiting for a frame */
	size_t nparked;
	int wake_queued;
	int64_t last_wake_us;              /* monotonic start of the last wake round */
};

struct sse {
	struct sse *next, *prev;           /* api->streams, under api->streams_lock */
	struct sse *park_next;             /* feed->parked */
	struct api *api;
	struct feed *feed;
	struct http_stream *stream;
	int chain;                         /* an actor's chain (not the lifecycle log) */
	/* feed->lock: */
	uint64_t last_sent;                /* id of the last event written */
	struct frame *cur;                 /* a frame partly handed to the stream */
	size_t cur_off;
	int live;                          /* replay done; frames come from the ring */
	int replaying;                     /* a replay job is scheduled */
	int ready_sent;
	int ended;                         /* the run had ended when the stream began */
	int closed;
	int parked;
	int dry;                           /* lifecycle: storage had nothing after last_sent */
	int refs;                          /* atomic */
};

/* ---- frames ---- */

static struct frame *frame_new(uint64_t id, const char *event, json_t *data)
{
	char *text = data ? json_compact(data) : NULL;
	json_decref(data);
	if (!text)
		return NULL;
	char head[64];
	int n = snprintf(head, sizeof(head), "id: %llu\nevent: %s\ndata: ",
			 (unsigned long long)id, event);
	size_t len = strlen(text);
	struct frame *f = malloc(sizeof(*f) + (size_t)n + len + 2);
	if (f) {
		f->refs = 1;
		f->id = id;
		f->len = (size_t)n + len + 2;
		memcpy(f->bytes, head, (size_t)n);
		memcpy(f->bytes + n, text, len);
		memcpy(f->bytes + n + len, "\n\n", 2);
	}
	free(text);
	return f;
}

static void frame_unref(struct frame *f)
{
	if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(f);
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

static struct frame *event_frame(int chain, const struct supervisor_event *ev)
{
	if (chain)
		return frame_new(ev->seq, "chain",
				 api_event_json(ev->actor_id, ev->seq, ev->hash, ev->parent_hash,
						ev->event_type, ev->data, ev->data_len,
						ev->timestamp));
	return frame_new(ev->global_id, "lifecycle", lifecycle_json(ev));
}

/* ---- the feed's ring (feed->lock held) ---- */

static struct frame *ring_at(const struct feed *f, size_t i)
{
	return f->ring[(f->start + i) % FEED_FRAMES];
}

static void ring_drop_oldest(struct feed *f)
{
	struct frame *fr = f->ring[f->start];
	f->bytes -= fr->len;
	frame_unref(fr);
	f->start = (f->start + 1) % FEED_FRAMES;
	f->n--;
	f->lo++;
}

/* Empties the ring; the next frame it expects is `lo`. */
static void ring_reset(struct feed *f, uint64_t lo)
{
	while (f->n)
		ring_drop_oldest(f);
	f->lo = lo;
}

static void ring_push(struct feed *f, struct frame *fr)
{
	if (fr->id != f->lo + f->n)
		ring_reset(f, fr->id);     /* a gap: streams behind it replay from storage */
	if (f->n == FEED_FRAMES)
		ring_drop_oldest(f);
	f->ring[(f->start + f->n) % FEED_FRAMES] = fr;
	f->n++;
	f->bytes += fr->len;
	while (f->n > 1 && f->bytes > FEED_BYTES)
		ring_drop_oldest(f);
}

static void unpark(struct feed *f, struct sse *x)
{
	if (!x->parked)
		return;
	for (struct sse **pp = &f->parked; *pp; pp = &(*pp)->park_next)
		if (*pp == x) {
			*pp = x->park_next;
			break;
		}
	x->parked = 0;
	x->park_next = NULL;
	f->nparked--;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- references ---- */

static void feed_unref(struct feed *f)
{
	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	ring_reset(f, 0);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* A stream leaves its feed; the last one ends the subscription (on a worker or
 * the stopping thread, never under a supervisor lock). */
static void feed_leave(struct feed *f)
{
	struct api *api = f->api;
	struct supervisor_sub *sub = NULL;
	pthread_mutex_lock(&api->streams_lock);
	int last = --f->users == 0;
	if (last) {
		for (struct feed **pp = &api->feeds; *pp; pp = &(*pp)->next)
			if (*pp == f) {
				*pp = f->next;
				break;
			}
		sub = f->sub;
		f->sub = NULL;
	}
	pthread_mutex_unlock(&api->streams_lock);
	if (!last)
		return;
	supervisor_unsubscribe(api->cfg.sup, sub);
	feed_unref(f);
}

static void sse_unref(struct sse *x)
{
	if (__atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	frame_unref(x->cur);
	feed_leave(x->feed);
	http_stream_release(x->stream);
	free(x);
}

/* ---- live events ---- */

static void wake_job(void *arg)
{
	struct feed *f = arg;
	pthread_mutex_lock(&f->lock);
	f->wake_queued = 0;
	f->last_wake_us = mono_us();
	size_t n = f->nparked;
	struct sse **v = n ? malloc(n * sizeof(*v)) : NULL;
	struct http_stream **st = n ? malloc(n * sizeof(*st)) : NULL;
	if (v && st) {
		size_t k = 0;
		for (struct sse *x = f->parked; x; x = x->park_next) {
			__atomic_add_fetch(&x->refs, 1, __ATOMIC_ACQ_REL);
			x->parked = 0;
			v[k] = x;
			st[k++] = x->stream;
		}
		f->parked = NULL;
		f->nparked = 0;
	} else {
		n = 0;    /* out of memory: they stay parked for the next event */
	}
	pthread_mutex_unlock(&f->lock);
	http_stream_wake_many(st, n);
	for (size_t i = 0; i < n; i++)
		sse_unref(v[i]);
	free(v);
	free(st);
	feed_unref(f);
}

/* Runs on the recording thread under the supervisor's subscription lock: builds
 * the frame once, rings it, and queues one wake for the streams that wait. */
static void on_event(void *user, const struct supervisor_event *ev)
{
	struct feed *f = user;
	uint64_t id = f->actor_id[0] ? ev->seq : ev->global_id;
	struct frame *fr = event_frame(f->actor_id[0] != 0, ev);
	pthread_mutex_lock(&f->lock);
	if (id > f->head) {
		if (fr)
			ring_push(f, fr);
		else
			ring_reset(f, id + 1);  /* out of memory: streams replay it from storage */
		fr = NULL;
		f->head = id;
	}
	if (ev->terminal && f->actor_id[0])
		f->ended = 1;
	int wake = f->parked && !f->wake_queued;
	uint32_t delay_ms = 0;
	if (wake) {
		f->wake_queued = 1;
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_ACQ_REL);
		int64_t gap = (int64_t)f->nparked * WAKE_GAP_PER_STREAM_US;
		int64_t due = f->last_wake_us + (gap < WAKE_GAP_MAX_US ? gap : WAKE_GAP_MAX_US);
		int64_t now = mono_us();
		if (due > now)
			delay_ms = (uint32_t)((due - now + 999) / 1000);
	}
	pthread_mutex_unlock(&f->lock);
	frame_unref(fr);
	struct pool *p = supervisor_pool(f->api->cfg.sup);
	if (wake && (!p || (delay_ms ? pool_submit_after(p, delay_ms, wake_job, f)
				     : pool_submit(p, wake_job, f)) != ERR_OK)) {
		pthread_mutex_lock(&f->lock);
		f->wake_queued = 0;    /* the next event tries again; pings wake meanwhile */
		pthread_mutex_unlock(&f->lock);
		__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL);   /* never the last here */
	}
}

static void schedule_replay(struct sse *x, uint32_t delay_ms);

/* The HTTP layer pulls (MHD thread): copies frames from the ring. */
static ssize_t pull(void *user, char *out, size_t max, int *partial)
{
	struct sse *x = user;
	struct feed *f = x->feed;
	size_t n = 0;
	int lag = 0;
	pthread_mutex_lock(&f->lock);
	if (x->closed || !x->live) {
		ssize_t rc = x->closed ? -1 : 0;
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	/* A frame copied whole needs no reference of its own: the ring keeps it while
	 * the feed's lock is held. Only one cut by `max` is held across calls. */
	while (n < max) {
		struct frame *fr = x->cur;
		size_t off = fr ? x->cur_off : 0;
		if (!fr) {
			if (x->last_sent + 1 < f->lo) {
				lag = 1;
				break;
			}
			uint64_t i = x->last_sent + 1 - f->lo;
			if (i >= f->n)
				break;
			fr = ring_at(f, (size_t)i);
		}
		size_t k = fr->len - off;
		if (k > max - n)
			k = max - n;
		memcpy(out + n, fr->bytes + off, k);
		n += k;
		if (off + k == fr->len) {
			x->last_sent = fr->id;
			if (x->cur)
				frame_unref(x->cur);
			x->cur = NULL;
		} else {
			if (!x->cur)
				__atomic_add_fetch(&fr->refs, 1, __ATOMIC_ACQ_REL);
			x->cur = fr;
			x->cur_off = off + k;
		}
	}
	*partial = x->cur != NULL;
	ssize_t rc = (ssize_t)n;
	if (lag) {
		x->live = 0;          /* the ring dropped what it has not sent: storage */
		if (!x->replaying)
			schedule_replay(x, 0);
	} else if (n == 0) {
		if (x->chain && (x->ended || f->ended) && x->last_sent >= f->head) {
			rc = -1;      /* the run's last event is out */
		} else if (!x->parked) {
			x->parked = 1;
			x->park_next = f->parked;
			f->parked = x;
			f->nparked++;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- replay from storage (worker pool) ---- */

/* Queues a frame built from storage; called with the feed's lock held. */
static void write_replayed(struct sse *x, struct frame *fr)
{
	if (!fr) {
		x->closed = 1;         /* out of memory: end rather than skip an event */
		http_stream_end(x->stream);
		return;
	}
	if (http_stream_write(x->stream, fr->bytes, fr->len) != ERR_OK)
		x->closed = 1;
	x->last_sent = fr->id;
}

static void replay_one_chain(struct sse *x, uint64_t seq)
{
	struct chain_event ev = {0};
	int64_t ts = 0;
	struct err e = {0};
	struct feed *f = x->feed;
	if (supervisor_read_event(x->api->cfg.sup, f->actor_id, seq, &ev, &ts, &e)) {
		log_warn_limited("api", "replay of '%s' seq %llu failed: %s", f->actor_id,
				 (unsigned long long)seq, e.msg);
		/* Said in the stream before it ends: the reconnect then gets the
		 * problem itself (h_chain), which stops EventSource. */
		json_t *why = json_pack("{s:s, s:s, s:I}", "code", err_code_name(e.code), "detail",
					e.msg, "seq", (json_int_t)seq);
		char *text = why ? json_compact(why) : NULL;
		json_decref(why);
		char *frame = NULL;
		int n = text ? asprintf(&frame, "event: problem\ndata: %s\n\n", text) : -1;
		free(text);
		pthread_mutex_lock(&f->lock);
		if (n > 0 && !x->closed)
			http_stream_write(x->stream, frame, (size_t)n);
		x->closed = 1;
		http_stream_end(x->stream);
		pthread_mutex_unlock(&f->lock);
		free(frame);
		return;
	}
	struct frame *fr = frame_new(seq, "chain",
				     api_event_json(f->actor_id, seq, ev.hash, ev.parent_hash,
						    ev.event_type, ev.data, ev.data_len, ts));
	chain_event_release(&ev);
	pthread_mutex_lock(&f->lock);
	if (!x->closed)
		write_replayed(x, fr);
	pthread_mutex_unlock(&f->lock);
	frame_unref(fr);
}

static void replay_life_cb(void *user, const struct supervisor_event *ev)
{
	struct sse *x = user;
	struct frame *fr = event_frame(0, ev);
	pthread_mutex_lock(&x->feed->lock);
	if (!x->closed && ev->global_id > x->last_sent)
		write_replayed(x, fr);
	pthread_mutex_unlock(&x->feed->lock);
	frame_unref(fr);
}

/* Switches to live when the ring covers what comes next; returns 1 when the
 * replay is finished. */
static int catch_up(struct sse *x)
{
	struct feed *f = x->feed;
	pthread_mutex_lock(&f->lock);
	if (x->dry && x->last_sent + 1 < f->lo)
		x->last_sent = f->lo - 1;   /* lifecycle ids storage never had */
	x->dry = 0;
	int done = x->closed || x->last_sent + 1 >= f->lo;
	if (done && !x->closed) {
		x->live = 1;
		if (!x->ready_sent) {
			char frame[96];
			int n = snprintf(frame, sizeof(frame), "event: ready\ndata: {\"head\":%llu}\n\n",
					 (unsigned long long)f->head);
			if (http_stream_write(x->stream, frame, (size_t)n) != ERR_OK)
				x->closed = 1;
			x->ready_sent = 1;
		}
	}
	if (done)
		x->replaying = 0;
	int wake = done && !x->closed;
	pthread_mutex_unlock(&f->lock);
	if (wake)
		http_stream_wake(x->stream);   /* pulls: frames, or the end of the run */
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
		if (x->chain) {
			replay_one_chain(x, x->last_sent + 1);
		} else {
			struct err e = {0};
			uint64_t before = x->last_sent;
			supervisor_lifecycle_after(x->api->cfg.sup, before, 64, replay_life_cb, x, &e);
			if (x->last_sent == before) {   /* nothing stored past it: trust storage */
				pthread_mutex_lock(&x->feed->lock);
				x->dry = 1;
				pthread_mutex_unlock(&x->feed->lock);
			}
		}
		if (http_stream_queued(x->stream) > x->api->cfg.sse_max_buffered / 2)
			break;
	}
	struct pool *p = supervisor_pool(x->api->cfg.sup);
	int backed_up = http_stream_queued(x->stream) > x->api->cfg.sse_max_buffered / 2;
	if (!p || pool_submit_after(p, backed_up ? 20 : 0, replay_job, x) != ERR_OK) {
		pthread_mutex_lock(&x->feed->lock);
		x->replaying = 0;
		x->closed = 1;
		http_stream_end(x->stream);
		pthread_mutex_unlock(&x->feed->lock);
		sse_unref(x);
	}
}

/* Called with the feed's lock held. */
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

/* ---- streams ---- */

static void detach(struct sse *x)
{
	struct feed *f = x->feed;
	pthread_mutex_lock(&f->lock);
	x->closed = 1;
	unpark(f, x);
	frame_unref(x->cur);
	x->cur = NULL;
	pthread_mutex_unlock(&f->lock);
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
	/* The last reference may end the feed's subscription, which waits for a live
	 * callback in flight: do it on a worker, never on the thread that closed it. */
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
			break;
		http_stream_end(x->stream);
		detach(x);
		sse_unref(x);
	}
	/* No live callback after this returns, whoever still holds a feed. */
	for (;;) {
		pthread_mutex_lock(&api->streams_lock);
		struct feed *f = api->feeds;
		struct supervisor_sub *sub = NULL;
		if (f) {
			api->feeds = f->next;
			f->next = NULL;
			sub = f->sub;
			f->sub = NULL;
			f->users++;     /* feed_leave below drops it; not found on the list */
		}
		pthread_mutex_unlock(&api->streams_lock);
		if (!f)
			return;
		supervisor_unsubscribe(api->cfg.sup, sub);
		feed_leave(f);
	}
}

/* Finds or starts the feed of a chain (actor_id) or of the lifecycle log (NULL). */
static struct feed *feed_join(struct api *api, const char *actor_id, struct err *err)
{
	const char *key = actor_id ? actor_id : "";
	pthread_mutex_lock(&api->streams_lock);
	struct feed *f = api->feeds;
	while (f && strcmp(f->actor_id, key) != 0)
		f = f->next;
	if (f) {
		f->users++;
		pthread_mutex_unlock(&api->streams_lock);
		return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		pthread_mutex_unlock(&api->streams_lock);
		err_set(err, ERR_NOMEM, "cannot open a stream");
		return NULL;
	}
	f->api = api;
	f->users = 1;
	f->refs = 1;
	snprintf(f->actor_id, sizeof(f->actor_id), "%s", key);
	pthread_mutex_init(&f->lock, NULL);
	/* Not under f->lock: the subscription takes the actor's lock, and on_event
	 * takes f->lock under it (the other order). An event may come before head
	 * is set here: on_event rings it (its first push sets lo), and the head
	 * only moves forward. */
	uint64_t head = 0;
	struct supervisor_sub *sub = NULL;
	if (supervisor_subscribe(api->cfg.sup, actor_id, on_event, f, &head, &sub, err)) {
		pthread_mutex_unlock(&api->streams_lock);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	f->sub = sub;
	if (f->head < head)
		f->head = head;
	if (f->n == 0)
		f->lo = f->head + 1;
	pthread_mutex_unlock(&f->lock);
	f->next = api->feeds;
	api->feeds = f;
	pthread_mutex_unlock(&api->streams_lock);
	return f;
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
	x->refs = 2;                    /* the connection's, and this function's */
	x->last_sent = after;
	x->ended = ended;
	x->chain = actor_id != NULL;
	if (!(x->feed = feed_join(c->api, actor_id, &e))) {
		free(x);
		api_problem_err(c, &e);
		return;
	}
	/* A resume point past the newest event (a chain rebuilt shorter on another
	 * node, a lifecycle log rebuilt with the index) resumes from the newest:
	 * the events that come next have ids the client may think it saw, but
	 * otherwise it would get nothing until the ids passed its own. The `ready`
	 * frame's head says where the stream stands. */
	pthread_mutex_lock(&x->feed->lock);
	if (x->last_sent > x->feed->head)
		x->last_sent = x->feed->head;
	pthread_mutex_unlock(&x->feed->lock);
	struct http_response *head = sse_head();
	struct http_stream_config cfg = sse_config(c->api);
	cfg.on_close = on_close;
	cfg.user = x;
	cfg.pull = pull;
	observe_request(c, 200, 0);     /* before the answer, which frees the request */
	if (http_respond_stream(c->req, head, &cfg, &x->stream, &e) != ERR_OK) {
		feed_leave(x->feed);
		free(x);
		free(c);
		return;
	}
	free(c);
	/* Not when on_close came already (detach marks it closed before unlinking). */
	pthread_mutex_lock(&x->api->streams_lock);
	pthread_mutex_lock(&x->feed->lock);
	if (!x->closed) {
		x->next = x->api->streams;
		if (x->next)
			x->next->prev = x;
		x->api->streams = x;
	}
	pthread_mutex_unlock(&x->feed->lock);
	pthread_mutex_unlock(&x->api->streams_lock);
	static const char hello[] = ": theater event stream\nretry: 3000\n\n";
	http_stream_write(x->stream, hello, sizeof(hello) - 1);
	pthread_mutex_lock(&x->feed->lock);
	if (!x->closed)
		schedule_replay(x, 0);
	pthread_mutex_unlock(&x->feed->lock);
	sse_unref(x);
}

void sse_chain(struct api_call *c, const char *actor_id, uint64_t after, int ended)
{
	start(c, actor_id, after, ended);
}

void sse_lifecycle(struct api_call *c, uint64_t after)
{
	start(c, NULL, after, 0);
}

int sse_accepted(struct api_call *c)
{
	const char *accept = http_request_header(c->req, "Accept");
	return accept && strstr(accept, "text/event-stream") != NULL;
}

struct http_response *sse_head(void)
{
	struct http_response *head = http_response_new(200);
	http_response_header(head, "Content-Type", "text/event-stream");
	http_response_header(head, "Cache-Control", "no-cache");
	http_response_header(head, "X-Accel-Buffering", "no");
	return head;
}

struct http_stream_config sse_config(const struct api *api)
{
	return (struct http_stream_config){
		.max_buffered = api->cfg.sse_max_buffered,
		.ping_interval_s = api->cfg.sse_ping_s,
		.ping_text = ": ping\n\n",
	};
}
