/* http_stream.c - streaming responses (server-sent events) over suspend/resume.
 *
 * A stream is a chunked MHD response whose reader copies from a bounded byte queue.
 * When the queue is empty the reader suspends the connection (no busy loop, no
 * thread); a write, an end, a ping or a cut resumes it. Writers on any thread only
 * append to the queue under the server lock, so a slow client can never make a writer
 * block: past max_buffered the stream is cut, which shuts the socket down so that
 * libmicrohttpd drops the connection at once even while it waits to send.
 *
 * The sender: the body of a chunked stream (HTTP/1.1) is not pulled by libmicrohttpd's
 * threads, which also answer every request. At the reader's first call (the headers
 * are out and MHD's buffer is empty) the connection is suspended for good and the
 * stream goes "direct": the server's sender thread frames what the stream has as
 * chunks and writes them to the socket itself, up to SEND_FILL bytes per send,
 * waiting on EPOLLOUT when the socket is full. MHD does not touch a suspended
 * connection, and only the sender resumes a direct one: at the end (after its last
 * byte, so MHD writes the closing chunk and may keep the connection alive) or when
 * it is cut. A stream that cannot go direct (HTTP/1.0, "Connection: close", no
 * sender) is pulled by MHD as before.
 *
 * on_close is called from one place only, MHD's free callback of the response, which
 * runs exactly once whatever ended the connection (end, client gone, cut, stop). The
 * socket is only touched while the connection is known to be alive ([L] conn set):
 * MHD reports completion (which clears it) before it closes the socket.
 */
#include "server/http_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/util/log.h"

#define DEF_MAX_BUFFERED (1024 * 1024)
#define DEF_PING_S 15
#define MAX_PING_S 86400
#define DEF_PING_TEXT ": ping\n\n"
#define READER_BLOCK (16 * 1024)
#define COMPACT_MIN (64 * 1024)
#define CHUNK_HEAD 8                 /* "FFFFFF\r\n" at most: SEND_FILL < 16 MiB */
#define SEND_FILL (128 * 1024)       /* body bytes per chunk and send */
#define SEND_TURN_CHUNKS 4           /* a stream's share of one visit by the sender */

static struct http_stream *stream_new(struct http_server *srv,
				      const struct http_stream_config *cfg)
{
	static const struct http_stream_config defaults = {0};
	if (!cfg)
		cfg = &defaults;
	struct http_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	const char *ping = cfg->ping_text ? cfg->ping_text : DEF_PING_TEXT;
	st->ping_text = strdup(ping);
	if (!st->ping_text) {
		free(st);
		return NULL;
	}
	st->ping_len = strlen(ping);
	st->srv = srv;
	st->fd = -1;
	st->max_buffered = cfg->max_buffered ? cfg->max_buffered : DEF_MAX_BUFFERED;
	unsigned ping_s = cfg->ping_interval_s ? cfg->ping_interval_s : DEF_PING_S;
	st->ping_ms = (ping_s < MAX_PING_S ? ping_s : MAX_PING_S) * 1000u;
	st->on_close = cfg->on_close;
	st->user = cfg->user;
	st->pull = cfg->pull;
	buf_init(&st->queue, 0);
	st->refs = 2; /* the caller's and the MHD response's */
	http_lock(srv);
	srv->refs++;
	http_unlock(srv);
	return st;
}

static void stream_free(struct http_stream *st)
{
	buf_release(&st->queue);
	free(st->pend);
	free(st->ping_text);
	free(st);
}

void http_stream_ref(struct http_stream *st)
{
	http_lock(st->srv);
	st->refs++;
	http_unlock(st->srv);
}

void http_stream_release(struct http_stream *st)
{
	if (!st)
		return;
	struct http_server *srv = st->srv;
	bool free_srv = false;
	http_lock(srv);
	bool last = --st->refs == 0;
	if (last)
		free_srv = http_server_unref_locked(srv);
	http_unlock(srv);
	if (last)
		stream_free(st);
	if (free_srv)
		http_server_free_(srv);
}

static void streams_unlink_locked(struct http_server *srv, struct http_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else if (srv->streams == st)
		srv->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
}

/* Hands a direct stream to the sender (once; it takes a reference). */
static void sender_queue_locked(struct http_stream *st)
{
	struct http_server *srv = st->srv;
	if (st->ready)
		return;
	st->ready = true;
	st->refs++;
	st->ready_next = NULL;
	bool was_idle = !srv->ready;
	if (srv->ready_tail)
		srv->ready_tail->ready_next = st;
	else
		srv->ready = st;
	srv->ready_tail = st;
	uint64_t one = 1;
	if (was_idle && write(srv->send_evfd, &one, sizeof(one)) < 0)
		abort();   /* an eventfd write fails only on overflow: our bug */
}

/* Leaves direct mode: MHD pulls again (the end, or the cut, of the stream). */
static void direct_leave_locked(struct http_stream *st)
{
	st->direct = false;
	if (st->suspended && st->conn) {
		st->suspended = false;
		MHD_resume_connection(st->conn);
	}
}

/* Resumes the connection if the reader suspended it; a direct stream's sender has
 * work instead (or, the sender gone, MHD takes the stream back). */
static void stream_wake_locked(struct http_stream *st)
{
	if (st->direct && st->srv->sender_started)
		sender_queue_locked(st);
	else if (st->direct)
		direct_leave_locked(st);
	else if (st->suspended && st->conn) {
		st->suspended = false;
		MHD_resume_connection(st->conn);
	}
}

/* Slow client or out of memory: no more bytes, and the connection goes now. */
static void stream_cut_locked(struct http_stream *st)
{
	st->closed = true;
	buf_reset(&st->queue);
	st->qoff = 0;
	if (!st->conn)
		return;
	stream_wake_locked(st);
	if (st->fd >= 0)
		shutdown(st->fd, SHUT_RDWR);
}

static enum err_code stream_enqueue_locked(struct http_stream *st, const void *data, size_t len)
{
	if (st->closed || st->ended)
		return ERR_CONFLICT;
	size_t queued = st->queue.len - st->qoff;
	if (len > st->max_buffered - queued) {
		stream_cut_locked(st);
		return ERR_BUSY;
	}
	if (buf_append(&st->queue, data, len)) {
		stream_cut_locked(st);
		return ERR_NOMEM;
	}
	http_mono_now(&st->last_write);
	stream_wake_locked(st);
	return ERR_OK;
}

enum err_code http_stream_write(struct http_stream *st, const void *data, size_t len)
{
	http_lock(st->srv);
	enum err_code rc = stream_enqueue_locked(st, data, len);
	http_unlock(st->srv);
	return rc;
}

void http_stream_end(struct http_stream *st)
{
	http_lock(st->srv);
	if (!st->ended) {
		st->ended = true;
		stream_wake_locked(st);
	}
	http_unlock(st->srv);
}

void http_stream_wake(struct http_stream *st)
{
	http_stream_wake_many(&st, 1);
}

void http_stream_wake_many(struct http_stream **v, size_t n)
{
	if (!n)
		return;
	http_lock(v[0]->srv);
	for (size_t i = 0; i < n; i++) {
		v[i]->woken = true;
		stream_wake_locked(v[i]);
	}
	http_unlock(v[0]->srv);
}

size_t http_stream_queued(const struct http_stream *st)
{
	http_lock(st->srv);
	size_t n = st->queue.len - st->qoff;
	http_unlock(st->srv);
	return n;
}

int http_stream_closed(const struct http_stream *st)
{
	http_lock(st->srv);
	int closed = st->closed || st->ended;
	http_unlock(st->srv);
	return closed;
}

/* ---- MHD side ---- */

static void take_from_queue_locked(struct http_stream *st, char *out, size_t n)
{
	memcpy(out, st->queue.data + st->qoff, n);
	st->qoff += n;
	if (st->qoff == st->queue.len) {
		if (st->queue.cap > COMPACT_MIN)
			buf_release(&st->queue); /* an idle stream gives a burst's memory back */
		else
			buf_reset(&st->queue);
		st->qoff = 0;
	} else if (st->qoff >= COMPACT_MIN && st->qoff * 2 >= st->queue.len) {
		memmove(st->queue.data, st->queue.data + st->qoff, st->queue.len - st->qoff);
		st->queue.len -= st->qoff;
		st->qoff = 0;
	}
}

/* [L] held (dropped around the pull). Queued bytes go first, except in the middle of
 * a pulled unit; the pull source is asked without the lock, and a wake that comes
 * while it runs makes it ask again. Returns bytes, 0 when there is nothing now (the
 * connection is alive), or MHD's end codes. */
static ssize_t stream_fill_locked(struct http_stream *st, char *out, size_t max)
{
	for (;;) {
		size_t avail = st->queue.len - st->qoff;
		bool can_pull = st->pull && !st->closed && !st->ended && st->conn;
		if (avail && !(st->pull_partial && can_pull)) {
			size_t n = avail < max ? avail : max;
			take_from_queue_locked(st, out, n);
			return (ssize_t)n;
		}
		if (can_pull) {
			st->woken = false;
			http_unlock(st->srv);
			int partial = 0;
			ssize_t n = st->pull(st->user, out, max, &partial);
			http_lock(st->srv);
			st->pull_partial = n > 0 && partial;
			if (n > 0) {
				http_mono_now(&st->last_write);
				return n;
			}
			if (n < 0)
				st->ended = true;
			if (n < 0 || st->woken || st->queue.len > st->qoff)
				continue;
		}
		if (st->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (st->closed || !st->conn)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		return 0;
	}
}

/* MHD thread, with the response's mutex held. A chunked stream goes direct at the
 * first call; otherwise MHD pulls, and the connection sleeps while there is nothing. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct http_stream *st = cls;
	(void)pos;
	ssize_t rc = 0;
	http_lock(st->srv);
	bool go_direct = st->chunked && st->srv->sender_started && st->conn && st->fd >= 0 &&
			 !st->closed && !st->ended;
	if (!go_direct)
		rc = stream_fill_locked(st, out, max);
	if (rc == 0) {
		MHD_suspend_connection(st->conn);
		st->suspended = true;
		if (go_direct) {
			st->direct = true;
			st->chunked = false;   /* once: MHD pulls again after the sender */
			sender_queue_locked(st);
		}
	}
	http_unlock(st->srv);
	return rc;
}

/* MHD (or, for a response never delivered, our own) free callback: the end. */
static void stream_finished(void *cls)
{
	struct http_stream *st = cls;
	struct http_server *srv = st->srv;
	http_lock(srv);
	if (!st->silent)
		streams_unlink_locked(srv, st);
	if (st->req) {
		st->req->stream = NULL;
		st->req = NULL;
	}
	st->conn = NULL;
	st->suspended = false;
	st->closed = true;
	if (srv->stopping)
		pthread_cond_broadcast(&srv->quiet_cond);
	bool notify = !st->silent && st->on_close;
	http_unlock(srv);
	if (notify)
		st->on_close(st->user, st);
	http_stream_release(st);
}

void http_stream_attach_locked(struct http_stream *st, struct http_request *r)
{
	struct http_server *srv = st->srv;
	st->req = r;
	r->stream = st;
	st->conn = r->conn;
	st->fd = r->fd;
	st->chunked = r->chunked;
	st->serial = ++srv->stream_serial;
	if (srv->watch_epfd >= 0 && st->fd >= 0) {
		/* one shot: a hang-up is reported once; the socket leaves the set when
		 * libmicrohttpd closes it */
		struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = st->serial};
		epoll_ctl(srv->watch_epfd, EPOLL_CTL_ADD, st->fd, &ev);
	}
	http_mono_now(&st->last_write);
	st->prev = NULL;
	st->next = srv->streams;
	if (srv->streams)
		srv->streams->prev = st;
	srv->streams = st;
	if (srv->stopping)
		st->closed = st->ended = true;
	pthread_cond_signal(&srv->timer_cond); /* the timer learns the new deadline */
}

void http_stream_detach_locked(struct http_stream *st)
{
	if (st->req) {
		st->req->stream = NULL;
		st->req = NULL;
	}
	st->conn = NULL;
	st->suspended = false;
	st->closed = true;
}

/* Fails the stream before anyone saw it: no on_close, the request gets a 500. */
static enum err_code fail_new(struct http_request *r, struct http_stream *st,
			      struct MHD_Response *m, struct err *err)
{
	st->silent = true;
	if (m)
		MHD_destroy_response(m); /* stream_finished drops the MHD reference */
	else
		http_stream_release(st);
	http_stream_release(st);
	http_respond(r, NULL);
	return err_set(err, ERR_NOMEM, "cannot start an event stream: out of memory");
}

enum err_code http_respond_stream(struct http_request *r, struct http_response *head,
				  const struct http_stream_config *cfg, struct http_stream **out,
				  struct err *err)
{
	*out = NULL;
	struct http_stream *st = stream_new(r->srv, cfg);
	if (!st) {
		http_response_free(head);
		http_respond(r, NULL);
		return err_set(err, ERR_NOMEM, "cannot start an event stream: out of memory");
	}
	struct MHD_Response *m = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, READER_BLOCK, stream_read, st, stream_finished);
	if (!m || !head || !http_response_copy_headers_(head, m)) {
		http_response_free(head);
		return fail_new(r, st, m, err);
	}
	unsigned status = (unsigned)http_response_status_(head);
	http_response_free(head);
	bool delivered;
	*out = st; /* before the stream can start: on_close may run before we return */
	http_deliver_(r, m, status, st, &delivered);
	if (!delivered) {
		*out = NULL;
		st->silent = true;
		MHD_destroy_response(m);
		http_stream_release(st);
		return err_set(err, ERR_UNAVAILABLE, "cannot start an event stream: connection gone");
	}
	return ERR_OK;
}

/* ---- timer and stop (server lock held) ---- */

int64_t http_stream_ping_due_locked(struct http_server *srv, int64_t max_ms)
{
	struct timespec now;
	http_mono_now(&now);
	int64_t next = max_ms;
	for (struct http_stream *st = srv->streams; st; st = st->next) {
		if (st->closed || st->ended)
			continue;
		int64_t idle = http_ms_since(&st->last_write, &now);
		if (idle >= (int64_t)st->ping_ms) {
			stream_enqueue_locked(st, st->ping_text, st->ping_len);
			idle = 0;
		}
		int64_t left = (int64_t)st->ping_ms - idle;
		if (left < next)
			next = left;
	}
	return next > 0 ? next : 1;
}

void http_stream_stop_all_locked(struct http_server *srv)
{
	for (struct http_stream *st = srv->streams; st; st = st->next) {
		st->closed = true;
		st->ended = true;
		stream_wake_locked(st);
	}
}

/* ---- the hang-up watcher ---- */

/* A client closed the socket of a stream: cut the stream (its connection goes now,
 * even while suspended waiting for data). */
static void hangup(struct http_server *srv, uint64_t serial)
{
	http_lock(srv);
	for (struct http_stream *st = srv->streams; st; st = st->next)
		if (st->serial == serial) {
			if (st->conn && !st->closed)
				stream_cut_locked(st);
			break;
		}
	http_unlock(srv);
}

static void *watch_main(void *arg)
{
	pthread_setname_np(pthread_self(), "http-hangup");
	struct http_server *srv = arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(srv->watch_epfd, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0)
				return NULL;     /* the stop's eventfd */
			hangup(srv, evs[i].data.u64);
		}
	}
}

void http_stream_watch_start_(struct http_server *srv)
{
	srv->watch_epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->watch_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	if (srv->watch_epfd >= 0 && srv->watch_evfd >= 0 &&
	    epoll_ctl(srv->watch_epfd, EPOLL_CTL_ADD, srv->watch_evfd, &ev) == 0 &&
	    pthread_create(&srv->watcher, NULL, watch_main, srv) == 0) {
		srv->watcher_started = true;
		return;
	}
	http_stream_watch_stop_(srv);
}

void http_stream_watch_stop_(struct http_server *srv)
{
	if (srv->watcher_started) {
		uint64_t one = 1;
		if (write(srv->watch_evfd, &one, sizeof(one)) < 0)
			abort();   /* an eventfd write fails only on overflow: our bug */
		pthread_join(srv->watcher, NULL);
		srv->watcher_started = false;
	}
	http_lock(srv);
	int ep = srv->watch_epfd;
	srv->watch_epfd = -1;     /* no more registrations */
	http_unlock(srv);
	if (ep >= 0)
		close(ep);
	if (srv->watch_evfd >= 0)
		close(srv->watch_evfd);
	srv->watch_evfd = -1;
}

/* ---- the sender ---- */

/* [L] not held. Sender thread: waits for the socket to take more (one shot). */
static void sender_watch_out(struct http_server *srv, struct http_stream *st)
{
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = st};
	if (st->out_watched) {
		if (epoll_ctl(srv->send_epfd, EPOLL_CTL_MOD, st->fd, &ev) == 0)
			return;
	} else if (epoll_ctl(srv->send_epfd, EPOLL_CTL_ADD, st->fd, &ev) == 0) {
		st->out_watched = true;
		http_stream_ref(st);
		return;
	}
	http_lock(srv);      /* cannot wait for the socket: the stream cannot go on */
	stream_cut_locked(st);
	http_unlock(srv);
}

/* Sender thread: the stream is over for the sender; MHD finishes it. */
static void sender_done(struct http_server *srv, struct http_stream *st)
{
	if (st->out_watched) {
		epoll_ctl(srv->send_epfd, EPOLL_CTL_DEL, st->fd, NULL);
		st->out_watched = false;
		http_stream_release(st);   /* never the last: the caller holds one */
	}
	free(st->pend);
	st->pend = NULL;
	st->pend_off = st->pend_len = 0;
	http_lock(srv);
	direct_leave_locked(st);
	http_unlock(srv);
}

/* Sender thread: writes buf[0, len), or what the socket takes and keeps the rest in
 * st->pend (buf is either the sender's buffer or the rest of st->pend). Returns false
 * when the stream must wait for the socket or is cut. */
static bool sender_write(struct http_server *srv, struct http_stream *st, const char *buf,
			 size_t len)
{
	bool from_pend = st->pend && buf >= st->pend && buf < st->pend + st->pend_len;
	ssize_t n = send(st->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && errno == EINTR)
		n = 0;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		http_lock(srv);   /* the client is gone */
		stream_cut_locked(st);
		http_unlock(srv);
		return false;
	}
	size_t sent = n > 0 ? (size_t)n : 0;
	if (sent == len)
		return true;
	if (!from_pend) {
		char *p = malloc(len - sent);
		if (!p) {
			http_lock(srv);
			stream_cut_locked(st);
			http_unlock(srv);
			return false;
		}
		memcpy(p, buf + sent, len - sent);
		free(st->pend);
		st->pend = p;
		st->pend_off = 0;
		st->pend_len = len - sent;
	} else {
		st->pend_off += sent;
	}
	sender_watch_out(srv, st);
	return false;
}

/* Sender thread: one visit of a direct stream. Sends what it has, up to its turn;
 * a stream with more goes to the back of the line. */
static void sender_serve(struct http_server *srv, struct http_stream *st, char *buf)
{
	size_t turn = 0;
	for (;;) {
		if (st->pend) {
			if (!sender_write(srv, st, st->pend + st->pend_off,
					  st->pend_len - st->pend_off))
				break;
			free(st->pend);
			st->pend = NULL;
			st->pend_off = st->pend_len = 0;
		}
		http_lock(srv);
		if (!st->direct) {   /* the server took it back (stop) */
			http_unlock(srv);
			return;
		}
		if (turn >= SEND_TURN_CHUNKS * srv->send_fill && !st->closed) {
			sender_queue_locked(st);
			http_unlock(srv);
			return;
		}
		ssize_t n = stream_fill_locked(st, buf + CHUNK_HEAD, srv->send_fill);
		http_unlock(srv);
		if (n < 0) {
			sender_done(srv, st);
			return;
		}
		if (n == 0)
			return;           /* a write or a wake queues it again */
		char head[CHUNK_HEAD + 1];
		int hl = snprintf(head, sizeof(head), "%zx\r\n", (size_t)n);
		memcpy(buf + CHUNK_HEAD - hl, head, (size_t)hl);
		memcpy(buf + CHUNK_HEAD + n, "\r\n", 2);
		turn += (size_t)n;
		if (!sender_write(srv, st, buf + CHUNK_HEAD - hl, (size_t)hl + (size_t)n + 2))
			break;
	}
	/* waiting for the socket, or cut: a cut stream ends at once */
	http_lock(srv);
	bool cut = st->closed;
	http_unlock(srv);
	if (cut)
		sender_done(srv, st);
}

static void *sender_main(void *arg)
{
	pthread_setname_np(pthread_self(), "http-sender");
	struct http_server *srv = arg;
	char *buf = malloc(CHUNK_HEAD + SEND_FILL + 2);
	struct epoll_event evs[64];
	for (;;) {
		http_lock(srv);
		struct http_stream *list = srv->ready;
		srv->ready = srv->ready_tail = NULL;
		bool stop = srv->sender_stop;
		http_unlock(srv);
		if (stop && !list)
			break;
		while (list) {
			struct http_stream *st = list;
			http_lock(srv);
			list = st->ready_next;
			st->ready = false;
			http_unlock(srv);
			if (buf)
				sender_serve(srv, st, buf);
			else
				sender_done(srv, st);  /* no memory: MHD pulls it */
			http_stream_release(st);
		}
		http_lock(srv);
		bool idle = !srv->ready && !srv->sender_stop;
		http_unlock(srv);
		int n = epoll_wait(srv->send_epfd, evs, 64, idle ? -1 : 0);
		for (int i = 0; i < n; i++) {
			struct http_stream *st = evs[i].data.ptr;
			if (!st) {
				uint64_t v;
				if (read(srv->send_evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					abort();
				continue;
			}
			http_lock(srv);
			if (st->direct)
				sender_queue_locked(st);
			http_unlock(srv);
		}
	}
	free(buf);
	return NULL;
}

void http_stream_sender_start_(struct http_server *srv)
{
	srv->send_fill = SEND_FILL;
	const char *env = getenv("THEATER_TEST_SEND_FILL");
	int fill = env ? atoi(env) : 0;
	if (fill >= 16 && fill < SEND_FILL) {
		srv->send_fill = (size_t)fill;
		log_warn("http", "THEATER_TEST_SEND_FILL=%zu: event streams are sent in chunks of "
			 "that many bytes, which cut nearly every frame (for tests; never in "
			 "production)", srv->send_fill);
	}
	srv->send_epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->send_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (srv->send_epfd >= 0 && srv->send_evfd >= 0 &&
	    epoll_ctl(srv->send_epfd, EPOLL_CTL_ADD, srv->send_evfd, &ev) == 0 &&
	    pthread_create(&srv->sender, NULL, sender_main, srv) == 0) {
		srv->sender_started = true;
		return;
	}
	if (srv->send_epfd >= 0)
		close(srv->send_epfd);
	if (srv->send_evfd >= 0)
		close(srv->send_evfd);
	srv->send_epfd = srv->send_evfd = -1;
}

/* After the streams were ended: the sender finishes what it was given, then stops;
 * a stream still direct (a client that takes nothing) goes back to MHD, which
 * closes it. */
void http_stream_sender_stop_(struct http_server *srv)
{
	http_lock(srv);
	bool started = srv->sender_started;
	srv->sender_stop = true;
	uint64_t one = 1;
	if (started && write(srv->send_evfd, &one, sizeof(one)) < 0)
		abort();
	http_unlock(srv);
	if (!started)
		return;
	pthread_join(srv->sender, NULL);
	http_lock(srv);
	srv->sender_started = false;
	struct http_stream *left = srv->ready;
	srv->ready = srv->ready_tail = NULL;
	for (struct http_stream *st = srv->streams; st; st = st->next)
		if (st->direct)
			direct_leave_locked(st);
	http_unlock(srv);
	while (left) {
		struct http_stream *st = left;
		left = st->ready_next;
		st->ready = false;
		http_stream_release(st);
	}
	/* references held by the epoll set: streams still waiting for their socket */
	for (;;) {
		struct http_stream *found = NULL;
		http_lock(srv);
		for (struct http_stream *st = srv->streams; st && !found; st = st->next)
			if (st->out_watched)
				found = st;
		if (found)
			found->out_watched = false;
		http_unlock(srv);
		if (!found)
			break;
		http_stream_release(found);
	}
	close(srv->send_epfd);
	close(srv->send_evfd);
	srv->send_epfd = srv->send_evfd = -1;
}
