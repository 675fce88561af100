/* fixture_httpd.h - a tiny HTTP/1.1 server on 127.0.0.1 for tests.
 *
 * Written on raw sockets so that tests of our HTTP client and server code do
 * not depend on the layers they test. It listens on 127.0.0.1 with an
 * ephemeral port (port 0), accepts in one thread and serves each connection
 * in its own thread, one request per connection ("Connection: close").
 * Routes are matched on the request path without the query string; any
 * method is accepted and a request body (Content-Length, up to 1 MiB) is read
 * and kept as the route's last body. An unregistered path answers 404.
 *
 * Routes: bytes (200), a bare status, a redirect (302 + Location), a huge
 * body streamed lazily (with or without a Content-Length), a slow response
 * (waits, then 200 "slow"), a body that lies about its Content-Length.
 * Per path it counts requests and body bytes sent, so tests can prove that a
 * cache answered or that a download stopped early.
 *
 * libcurl honours http_proxy from the environment: a test that may run with
 * one set should set no_proxy=127.0.0.1 first (test_fetch and test_resolve do).
 * Threads: every function is safe from any thread while the server runs;
 * routes may be added at any time. fixture_httpd_stop wakes every waiting
 * connection (slow routes return at once), closes the socket and joins all
 * threads.
 */
#ifndef THEATER_TESTS_FIXTURE_HTTPD_H
#define THEATER_TESTS_FIXTURE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct fixture_httpd;

/* Starts the server; NULL on failure (message on stderr). */
struct fixture_httpd *fixture_httpd_start(void);
unsigned short fixture_httpd_port(struct fixture_httpd *h);
/* "http://127.0.0.1:<port><path>", malloc'd. */
char *fixture_httpd_url(struct fixture_httpd *h, const char *path);

/* Each add replaces an existing route of the same path (its counters stay). */
void fixture_httpd_add_bytes(struct fixture_httpd *h, const char *path, const void *data, size_t len);
void fixture_httpd_add_status(struct fixture_httpd *h, const char *path, int status);
/* 302 with this Location (absolute url or absolute path). */
void fixture_httpd_add_redirect(struct fixture_httpd *h, const char *path, const char *location);
/* `bytes` of 'x' streamed in 64 KiB pieces until done or the client leaves;
 * without a Content-Length the body ends when the connection closes. */
void fixture_httpd_add_huge(struct fixture_httpd *h, const char *path, size_t bytes, int send_content_length);
/* Waits delay_ms (or until the client leaves or the server stops), then
 * answers 200 with the body "slow". */
void fixture_httpd_add_slow(struct fixture_httpd *h, const char *path, unsigned delay_ms);
/* Holds every request until fixture_httpd_open_gate (then, and from then on,
 * answers 200 "gate"): hits counts the requests waiting at the gate. */
void fixture_httpd_add_gate(struct fixture_httpd *h, const char *path);
void fixture_httpd_open_gate(struct fixture_httpd *h, const char *path);
/* Announces Content-Length: claimed but sends `actual` bytes then closes. */
void fixture_httpd_add_lie(struct fixture_httpd *h, const char *path, size_t claimed, size_t actual);

/* 200 with the request's head (request line and headers) as the body. */
void fixture_httpd_add_echo(struct fixture_httpd *h, const char *path);
/* 200 with ok_body (NULL: "authorized") when the request has the header
 * `name: value` (name case-insensitive, value exact), else 401 "unauthorized". */
void fixture_httpd_add_auth(struct fixture_httpd *h, const char *path, const char *name,
			    const char *value, const char *ok_body);
/* The next first_n requests get first_status with first_body; later ones 200
 * with then_body (a model that is rate-limited, or that calls a tool first). */
void fixture_httpd_add_sequence(struct fixture_httpd *h, const char *path, unsigned first_n,
				int first_status, const char *first_body, const char *then_body);

/* 200 text/event-stream without a Content-Length: each of the n events as
 * "data: <event>\n\n", delay_ms apart, then the connection closes (a model
 * that streams its answer, OpenAI's `stream: true` shape). */
void fixture_httpd_add_sse(struct fixture_httpd *h, const char *path, const char *const *events,
			   size_t n, unsigned delay_ms);

/* Requests received for path (any route, also 404s). */
unsigned fixture_httpd_hits(struct fixture_httpd *h, const char *path);
/* Body bytes written to clients for path. */
uint64_t fixture_httpd_bytes_sent(struct fixture_httpd *h, const char *path);
/* Copy of the last request body received for path (malloc'd, NUL-terminated)
 * or NULL when none. */
char *fixture_httpd_last_body(struct fixture_httpd *h, const char *path, size_t *len_out);
/* The value of header `name` (case-insensitive) in the last request for
 * path (malloc'd), or NULL when it had none. */
char *fixture_httpd_last_header(struct fixture_httpd *h, const char *path, const char *name);
/* Method of the last request for path into out ("" when none). */
void fixture_httpd_last_method(struct fixture_httpd *h, const char *path, char out[16]);

/* Waits until no connection is open (every response finished or abandoned),
 * at most timeout_ms; 0 when idle, -1 on timeout. Use it before reading
 * counters of a response the client cut short. */
int fixture_httpd_wait_idle(struct fixture_httpd *h, unsigned timeout_ms);

/* Stops and frees the server; joins all threads. Accepts NULL. */
void fixture_httpd_stop(struct fixture_httpd *h);

#endif
