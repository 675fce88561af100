/* client.h - the theater CLI's HTTP client: the one module of the tool that
 * includes <curl/curl.h>.
 *
 * A client holds the server's base URL, an optional bearer token and one curl
 * handle, reused so that the commands that make several calls (ps pages, top,
 * partial-id lookups) keep one connection alive.
 *
 * Two kinds of call:
 *  - client_call: one request, the whole answer buffered (bounded) in a reply;
 *  - client_stream: one request whose answer may be text/event-stream; frames
 *    are handed to a callback as they arrive. An answer of another type is
 *    buffered like client_call's, so a caller can handle both.
 *
 * Results: 0 when the server answered (whatever the status; look at
 * reply->status), CLIENT_ECONNECT when it could not be reached or the transfer
 * broke, with a message in err.
 * Threads: one thread per client.
 */
#ifndef THEATER_CLI_CLIENT_H
#define THEATER_CLI_CLIENT_H

#include <stddef.h>

#include "src/util/buf.h"
#include "src/util/err.h"

#define CLIENT_ECONNECT 1

struct client;

/* A buffered answer; caller-owned (client_reply_release). */
struct client_reply {
	long status;
	char ctype[128];        /* Content-Type without parameters, lowercase; "" when none */
	struct buf body;        /* NUL-terminated */
};

/* A new client for base (e.g. "http://127.0.0.1:8080", no trailing slash
 * needed) and token (NULL or "" for none). Copies both. NULL when out of
 * memory or curl cannot start. */
struct client *client_new(const char *base, const char *token);
void client_free(struct client *cl);

/* One extra request header ("Name: value", copied) sent with every later call,
 * or none with NULL. 0, or -1 when out of memory. */
int client_set_header(struct client *cl, const char *line);

/* Total time limit of each call in seconds (0: none, the default for streams). */
void client_set_timeout(struct client *cl, long seconds);

/* method path (with query) on the server. ctype names the body's type (NULL:
 * no body header). out is initialized by the call (release it even on error). */
int client_call(struct client *cl, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, struct client_reply *out, struct err *err);

/* One server-sent event. Return nonzero to stop the stream (the call then
 * returns 0 as though the server had ended it). */
typedef int (*client_sse_fn)(void *user, const char *event, const char *id, const char *data);

/* Like client_call with `Accept: accept` and, when last_id is not NULL,
 * `Last-Event-ID: last_id`. When the answer is 200 text/event-stream each
 * frame goes to fn as it arrives and out->body stays empty; otherwise the body
 * is buffered in out. */
int client_stream(struct client *cl, const char *method, const char *path, const char *accept,
		  const char *last_id, const char *ctype, const void *body, size_t len,
		  client_sse_fn fn, void *user, struct client_reply *out, struct err *err);

void client_reply_release(struct client_reply *r);

/* Percent-encodes s for a path segment or query value into a malloc'd string
 * (NULL when out of memory). */
char *client_escape(const char *s);

#endif
