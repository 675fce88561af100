/* http_int.h - private structures of the HTTP layer, shared only by server/http*.c.
 *
 * Locking: one mutex per server (srv->lock) guards every field marked [L] of the
 * server, of its requests and of its streams, and the two lists. It is held only for
 * short bookkeeping: never while calling the handler (body_limit, handle, problem,
 * on_close) and never around MHD_queue_response or MHD_destroy_response (MHD calls the
 * stream reader with a response mutex held and the reader takes srv->lock). It IS
 * held around MHD_suspend_connection / MHD_resume_connection, which is what makes
 * "suspend unless the answer is already there" and "resume only what is suspended"
 * atomic.
 *
 * Lifetimes are counted: the server holds one reference for its owner plus one per
 * live request and stream, so the lock outlives every object that uses it. A request
 * is freed when MHD is done with it (notify_completed) and the handler has answered.
 * A stream is freed when MHD has destroyed its response and the last caller reference
 * is released.
 */
#ifndef THEATER_SERVER_HTTP_INT_H
#define THEATER_SERVER_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "server/http.h"
#include "src/util/buf.h"

#define HTTP_MODULE "http"

struct http_kv {
	const char *name;
	const char *value;
};

enum http_phase {
	PH_HEADERS,  /* the first access-handler call is still to come */
	PH_BODY,     /* reading the body */
	PH_DISCARD,  /* body over the limit: draining it, then 413 */
	PH_WAITING,  /* handle() returned without an answer; suspended or answer stored */
	PH_DONE,     /* a response was queued */
};

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn; /* [L] NULL once MHD is done with the request */
	enum http_phase phase;       /* MHD thread only */
	char *raw_uri;               /* request target as sent; '?' replaced by NUL */
	size_t target_len;           /* length of the whole target, query included */
	char *path;                  /* decoded */
	char *strings;               /* one block: method, header and query copies */
	const char *method;
	struct http_kv *headers, *args;
	size_t nheaders, nargs;
	size_t header_bytes;
	bool too_many_args;          /* more query parameters than max_query_params */
	bool no_host;                /* HTTP/1.1 without a Host header */
	bool chunked;                /* HTTP/1.1 that may stay open: a stream's body is chunked */
	size_t body_limit;
	size_t discarded;
	struct buf body;
	int fd;                      /* the connection's socket (for streams) */
	char peer[64];
	int loopback;
	void *data;
	/* [L] the answer waiting to be queued, and lifetime flags */
	struct MHD_Response *mresp;
	unsigned status;
	struct http_stream *stream;   /* [L] stream answering this request, until either ends */
	struct http_request *prev, *next; /* [L] srv->pending while suspended */
	bool answered;      /* [L] an answer (or the stop's 503) was handed over */
	bool suspended;     /* [L] MHD_suspend_connection called, no resume yet */
	bool in_pending;    /* [L] on srv->pending */
	bool app_holds;     /* [L] handle() was called and the handler has not answered */
	bool mhd_holds;     /* [L] MHD has not called notify_completed yet */
};

struct http_stream {
	struct http_server *srv;
	struct MHD_Connection *conn;  /* [L] NULL once the connection is finished */
	int fd;                       /* socket, valid while conn != NULL */
	struct http_request *req;     /* [L] until either side ends */
	struct buf queue;             /* [L] bytes [qoff, queue.len) are still to send */
	size_t qoff;
	size_t max_buffered;
	unsigned ping_ms;
	char *ping_text;
	size_t ping_len;
	void (*on_close)(void *user, struct http_stream *s);
	void *user;
	struct timespec last_write;   /* [L] monotonic */
	int refs;                     /* [L] caller references + 1 while MHD holds the response */
	bool suspended;               /* [L] the reader suspended the connection */
	bool ended;                   /* [L] http_stream_end: finish after the queue */
	bool closed;                  /* [L] cut, client gone or server stop: no more bytes */
	bool silent;                  /* never delivered: no on_close */
	ssize_t (*pull)(void *user, char *out, size_t max, int *partial);
	bool pull_partial;            /* [L] the last pull stopped inside a unit */
	bool woken;                   /* [L] http_stream_wake since the last pull began */
	uint64_t serial;              /* [L] names the stream to the hang-up watcher */
	struct http_stream *prev, *next; /* [L] srv->streams until finished */
	/* The sender (http_stream.c): a chunked stream's body is written by the server's
	 * sender thread while libmicrohttpd keeps the connection suspended. */
	bool chunked;                 /* [L] the request allows it (HTTP/1.1, may stay open) */
	bool direct;                  /* [L] the sender writes the body; MHD holds it suspended */
	bool ready;                   /* [L] on srv->ready (holds a reference) */
	struct http_stream *ready_next; /* [L] */
	bool out_watched;             /* sender only: in its epoll set (holds a reference) */
	char *pend;                   /* sender only: framed bytes the socket did not take */
	size_t pend_off, pend_len;
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_handler h;
	struct http_config cfg;
	char host[64];
	uint16_t port;
	pthread_mutex_t lock;
	pthread_cond_t timer_cond;      /* [L] wakes the ping timer (stop, new stream) */
	pthread_cond_t quiet_cond;      /* [L] signalled while stopping, as work drains */
	int refs;                       /* [L] owner + live requests + live streams */
	bool stopping;                  /* [L] */
	bool timer_stop;                /* [L] */
	bool timer_started;
	pthread_t timer;
	struct http_request *pending;   /* [L] suspended requests without an answer */
	struct http_stream *streams;    /* [L] streams whose response MHD still holds */
	size_t live_requests;           /* [L] requests MHD has not completed */
	/* The hang-up watcher: an epoll set of the streams' sockets (EPOLLRDHUP, one
	 * shot), so that a client gone while its stream is suspended is cut at once. */
	int watch_epfd, watch_evfd;     /* -1 when not started */
	pthread_t watcher;
	bool watcher_started;
	uint64_t stream_serial;         /* [L] last serial given to a stream */
	/* The sender: one thread writes the bodies of chunked streams (http_stream.c). */
	int send_epfd, send_evfd;       /* -1 when not started */
	pthread_t sender;
	bool sender_started;            /* [L] running: streams may go direct */
	size_t send_fill;               /* body bytes per chunk (SEND_FILL; less in tests) */
	bool sender_stop;               /* [L] */
	struct http_stream *ready, *ready_tail; /* [L] direct streams with work for it */
};

/* Locking helpers (abort on a broken mutex: that is our bug). */
void http_lock(struct http_server *s);
void http_unlock(struct http_server *s);
/* [L] held. Drops one server reference; returns true when the caller must free it
 * (after unlocking) with http_server_free_(). */
bool http_server_unref_locked(struct http_server *s);
void http_server_free_(struct http_server *s);
void http_mono_now(struct timespec *ts);
int64_t http_ms_since(const struct timespec *then, const struct timespec *now);

/* http_request.c */
struct http_request *http_request_new_(struct http_server *s, const char *uri);
/* Copies headers and query arguments from conn, fills peer. ERR_NOMEM. */
enum err_code http_request_capture_(struct http_request *r, struct MHD_Connection *conn,
				    const char *method);
/* Decodes raw path into r->path; ERR_INVALID on malformed escapes or NUL. */
enum err_code http_request_decode_path_(struct http_request *r);
/* ERR_INVALID when the raw query has a malformed escape or %00. */
enum err_code http_request_check_query_(const struct http_request *r);
/* Frees the request (all fields); does not touch the server. */
void http_request_free_(struct http_request *r);
/* [L] held. Frees r when neither MHD nor the handler holds it any longer; drops the
 * server reference. Returns true when the server must be freed by the caller. */
bool http_request_maybe_free_locked(struct http_request *r);

/* http_response.c */
/* Builds the MHD response for resp (taking resp; NULL -> empty 500). Never NULL unless
 * MHD itself is out of memory. *status_out receives the status to queue. */
struct MHD_Response *http_response_to_mhd_(struct http_response *resp, unsigned *status_out);
/* A problem+json response from the handler's problem() callback (or a fallback). */
struct MHD_Response *http_problem_response_(struct http_server *s, int status,
					    enum err_code code, const char *detail);
/* [L] not held. Hands the handler's answer for r over: stores it (attaching stream
 * when not NULL) and resumes the connection. *delivered_out is false when the
 * connection is gone or was already answered (server stop): the caller then still
 * owns mresp. Releases the handler's hold on r (r may be freed). */
void http_deliver_(struct http_request *r, struct MHD_Response *mresp, unsigned status,
		   struct http_stream *stream, bool *delivered_out);
/* Copies the headers of resp onto an MHD response (Content-Length and
 * Transfer-Encoding skipped). Returns false on OOM. */
bool http_response_copy_headers_(const struct http_response *resp, struct MHD_Response *m);
int http_response_status_(const struct http_response *resp);

/* http_stream.c */
/* [L] held. Writes due pings; returns the milliseconds until the next one is due
 * (at most max_ms). */
int64_t http_stream_ping_due_locked(struct http_server *s, int64_t max_ms);
/* [L] held. Server stop: closes (and ends) every stream, waking suspended ones. */
void http_stream_stop_all_locked(struct http_server *s);
/* [L] held. Links a delivered stream to its request and to srv->streams. */
void http_stream_attach_locked(struct http_stream *st, struct http_request *r);
/* Starts / stops the hang-up watcher thread (not [L]). Start failing is not fatal:
 * hang-ups are then noticed at the next write or ping. */
/* http_lib_pages.c: libmicrohttpd's own error pages are replaced by problem+json
 * (or the connection closed); false when that cannot work with this library. */
bool http_lib_pages_ready_(void);

void http_stream_watch_start_(struct http_server *s);
void http_stream_watch_stop_(struct http_server *s);
/* The sender thread: started with the server, stopped once its streams are over
 * (before MHD_stop_daemon, which closes their sockets). */
void http_stream_sender_start_(struct http_server *s);
void http_stream_sender_stop_(struct http_server *s);
/* [L] held. The request of a stream is completed by MHD: detach both. */
void http_stream_detach_locked(struct http_stream *st);

#endif
