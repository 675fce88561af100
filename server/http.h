/* http.h - the HTTP layer: a libmicrohttpd server with asynchronous responses and
 * server-sent-event streams.
 *
 * This is the only module that includes <microhttpd.h>. It knows nothing of actors,
 * routes or JSON: the layer above (api/) gets one handle() call per request, once the
 * whole body is in, and answers it later from any thread. See docs/http-layer.md.
 *
 * Threads. libmicrohttpd runs `threads` internal epoll threads ("MHD threads"); no
 * thread is ever dedicated to a connection. body_limit(), handle() and problem() run
 * on MHD threads and must not block. A request that has no response when handle()
 * returns is suspended (it keeps its socket and connection memory, no thread) and
 * resumed when http_respond()/http_respond_stream() hands its response over, from any
 * thread.
 * One small extra thread writes stream pings. All state shared between threads is
 * guarded by one mutex per server, which no callback of the handler is ever called
 * under, so every function here may be called from any callback (on_close included).
 *
 * Lifetimes. A request is valid from body_limit() until its response is fully sent,
 * and in any case until the handler has called http_respond()/http_respond_stream()
 * for it (so a worker that answers after http_server_stop() touches valid memory: its
 * response is simply dropped). A stream lives until every reference is released and
 * its connection is finished.
 */
#ifndef THEATER_SERVER_HTTP_H
#define THEATER_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/util/err.h"

struct http_server;
struct http_request;
struct http_response;
struct http_stream;

/* Every limit of the server. A zero field takes the default in brackets. */
struct http_config {
	const char *host;          /* numeric address to listen on ["127.0.0.1"]; "::1", "0.0.0.0"...
	                            * or "localhost" (= 127.0.0.1); no other names */
	uint16_t port;             /* 0 = pick a free port (http_server_port tells) */
	unsigned threads;          /* MHD internal epoll threads [2] */
	unsigned conn_timeout_s;   /* idle connection timeout [60]; a suspended connection
	                            * (pending response, stream waiting for data) never times out */
	unsigned max_conns;        /* connections in total [1024] (split evenly across threads) */
	unsigned max_conns_per_ip; /* connections per client address [256] */
	size_t conn_memory;        /* MHD memory per connection [64 KiB]: request line, headers,
	                            * send buffer; headers that do not fit get MHD's own 431 */
	size_t max_header_bytes;   /* request line + headers [16 KiB]; above -> 431 problem (the
	                            * request target alone above it -> 414); must be below
	                            * conn_memory / 2 */
	unsigned max_query_params; /* query parameters per request [64]; above -> 400
	                            * problem `too_many_parameters` */
};

struct http_handler {
	void *user;
	/* MHD thread, when the headers are in, before any body is read. Returns the body
	 * size limit of this request: a larger Content-Length, or a chunked body that grows
	 * past it, is answered 413 (body from problem()) without calling handle(). The
	 * request may be inspected (headers, path) but not answered here. Must not block. */
	size_t (*body_limit)(void *user, struct http_request *req);
	/* MHD thread, when the headers are in, before body_limit() and before any byte of
	 * the body is read: returns NULL to go on, or a response (taken) that answers the
	 * request at once; its body is then never buffered (MHD drops it and closes the
	 * connection). For checks that must not cost memory: authentication, cross-site
	 * and Host policy, the media type. Must not block. May be NULL. */
	struct http_response *(*admit)(void *user, struct http_request *req);
	/* MHD thread, once the whole body is in. Must not block. Must make sure that
	 * exactly one of http_respond() / http_respond_stream() is called for req, before
	 * returning or later from any thread. */
	void (*handle)(void *user, struct http_request *req);
	/* MHD thread or the thread calling http_server_stop(). Builds the body of the
	 * layer's own errors (400 bad path encoding, 413, 414, 431, 503 when stopping):
	 * returns a malloc'd NUL-terminated application/problem+json document for
	 * (status, code, detail), or NULL (the layer then writes a minimal one itself).
	 * `code` is an err_code_name() string. May be NULL. */
	char *(*problem)(void *user, int status, const char *code, const char *detail);
};

/* Starts listening (the MHD threads are running when this returns). cfg and h are
 * copied (cfg->host too). Errors: ERR_INVALID (bad host or limits), ERR_IO (cannot
 * bind: port taken...), ERR_NOMEM. Call from one thread; *out is NULL on failure. */
enum err_code http_server_start(const struct http_config *cfg, const struct http_handler *h,
				struct http_server **out, struct err *err);
/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);
/* Stops accepting, answers suspended requests that never got a response with 503,
 * ends every stream (on_close called, at the latest before this returns), waits up to
 * about a second for those answers to be sent, stops the MHD threads and frees the
 * server. Requests whose handler has not answered yet stay valid until it does (the
 * answer is then dropped). Accepts NULL. Call once, from the thread that started it,
 * never from a callback. */
void http_server_stop(struct http_server *s);

/* Request accessors: call them from handle()/body_limit() or, for a request whose
 * response is pending, from the thread that will answer it. Strings are owned by the
 * request and never NULL unless stated. Header and query values are copied when the
 * headers arrive, so they stay readable after a client disconnect or a server stop. */
const char *http_request_method(const struct http_request *r);
/* Percent-decoded path without the query. A path whose encoding is malformed or
 * decodes to a NUL byte is refused with 400 before body_limit(), so this never
 * contains an embedded NUL. */
const char *http_request_path(const struct http_request *r);
const char *http_request_raw_path(const struct http_request *r); /* as sent, without query */
/* The query as sent, after the '?' and not decoded ("" without one). */
const char *http_request_raw_query(const struct http_request *r);
/* Decoded value of the first query parameter `name` ("" for "?name"); NULL if absent. */
const char *http_request_query(const struct http_request *r, const char *name);
/* The query arguments in order: their count, and the name of the i-th (i < count). */
size_t http_request_query_count(const struct http_request *r);
const char *http_request_query_name(const struct http_request *r, size_t i);
/* The i-th query argument's value ("" when given without '='). */
const char *http_request_query_value(const struct http_request *r, size_t i);
/* Value of the first header `name` (case-insensitive); NULL if absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* The body (NUL-terminated for convenience, the NUL not counted); never NULL. */
const uint8_t *http_request_body(const struct http_request *r, size_t *len_out);
const char *http_request_peer(const struct http_request *r); /* "127.0.0.1", "::1" */
int http_request_peer_is_loopback(const struct http_request *r);
void http_request_set_data(struct http_request *r, void *data); /* for the handler */
void *http_request_data(const struct http_request *r);

/* Responses: build one (any thread), then hand it to http_respond, which takes it.
 * An allocation failure while building is remembered and turns the response into an
 * empty 500 when it is sent, so callers need not check every step. */
struct http_response *http_response_new(int status); /* NULL on OOM */
/* Adds a header (both strings copied). Content-Length and Transfer-Encoding are
 * managed by the layer and ignored here. */
void http_response_header(struct http_response *resp, const char *name, const char *value);
void http_response_body(struct http_response *resp, const void *data, size_t len); /* copies */
/* Takes malloc'd data (freed with free(), also on failure); replaces any body. */
void http_response_body_take(struct http_response *resp, void *data, size_t len);
void http_response_free(struct http_response *resp); /* only for responses never sent; NULL ok */
/* Sends resp for r, taking resp (also on failure; NULL means OOM: an empty 500 is
 * sent). Any thread, exactly once per request handed to handle(). The connection
 * stays alive for the next request (keep-alive). After the connection is gone (server
 * stopped) the response is dropped and r is freed. */
void http_respond(struct http_request *r, struct http_response *resp);

/* Streaming responses (server-sent events). */
struct http_stream_config {
	size_t max_buffered;      /* bytes queued for a slow client; beyond, the stream is cut [1 MiB] */
	unsigned ping_interval_s; /* after this long without a write, write ping_text [15] */
	const char *ping_text;    /* [": ping\n\n"]; copied */
	/* Called exactly once per stream, when its connection is finished: the response
	 * ended, the client went away, the stream was cut, or the server stopped. It runs
	 * on an MHD thread (or inside http_server_stop()), never from within an
	 * http_stream_* or http_respond_stream() call; no lock of this layer is held, so
	 * it may call http_stream_* (writes then fail with ERR_CONFLICT). May be NULL. */
	void (*on_close)(void *user, struct http_stream *s);
	void *user;
	/* Optional second source of bytes, for writers that share one copy of their data
	 * among many streams (fan-out): called on an MHD thread, with no lock of this layer
	 * held, when the client can take more and nothing is queued. Copies at most max
	 * bytes to out and returns how many; 0: nothing now (the connection waits for
	 * http_stream_wake(), a write or a ping); -1: end the stream. Sets *partial when
	 * it stopped inside a unit that queued bytes (pings, writes) must not split: the
	 * next read then pulls again before the queue. May be NULL. */
	ssize_t (*pull)(void *user, char *out, size_t max, int *partial);
};
/* Sends the status and headers of `head` (taken, also on failure; its body is ignored)
 * and starts a chunked response for r whose bytes come from http_stream_write(). Any
 * thread, instead of http_respond(), exactly once per request. On success *out holds
 * ONE reference for the caller (release it with http_stream_release()). *out is set
 * before the response can start, because on_close may run (on another thread) before
 * this function returns, e.g. when the client is already gone. Errors:
 * ERR_NOMEM; ERR_UNAVAILABLE when the connection is already gone (server stopped).
 * On failure no stream exists, on_close is never called, r is answered (500 or not at
 * all) and must not be used again. A client that closes its connection while the
 * stream waits for data is noticed at once (the socket is watched for a hang-up) and
 * the stream ends (on_close). cfg may be NULL (all defaults). */
enum err_code http_respond_stream(struct http_request *r, struct http_response *head,
				  const struct http_stream_config *cfg, struct http_stream **out,
				  struct err *err);
void http_stream_ref(struct http_stream *s);     /* any thread */
void http_stream_release(struct http_stream *s); /* any thread; NULL ok */
/* Any thread. Queues a copy of the bytes and wakes the connection. ERR_BUSY when the
 * queue would exceed max_buffered: the stream is then cut (the connection is closed,
 * on_close follows shortly). ERR_CONFLICT when the stream is already closed or ended.
 * ERR_NOMEM: the stream is cut too. */
enum err_code http_stream_write(struct http_stream *s, const void *data, size_t len);
/* Any thread. The pull source has new bytes: resumes the connection if it waits.
 * _many wakes n streams of one server under one lock. */
void http_stream_wake(struct http_stream *s);
void http_stream_wake_many(struct http_stream **v, size_t n);
/* Any thread. Ends the response once the queued bytes are sent. Idempotent. */
void http_stream_end(struct http_stream *s);
/* Any thread. Bytes queued and not yet sent (for writers that pace themselves,
 * such as a replay that should not fill the queue to max_buffered). */
size_t http_stream_queued(const struct http_stream *s);
/* Any thread. 1 once writes are refused (ended, cut, client gone, server stop). */
int http_stream_closed(const struct http_stream *s);

#endif
