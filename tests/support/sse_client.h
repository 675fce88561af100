/* sse_client.h - a small server-sent-events client for tests (libcurl). */
#ifndef THEATER_TESTS_SSE_CLIENT_H
#define THEATER_TESTS_SSE_CLIENT_H

#include <stddef.h>

struct sse_frame {
	char *id;       /* NULL when the frame had no id */
	char *event;    /* "message" when absent */
	char *data;
};

struct sse_result {
	long status;
	struct sse_frame *frames;
	size_t n;
	int ended;        /* the server ended the response */
	int saw_retry;    /* a retry: line came first */
	int pings;        /* ": ping" comments */
	char *raw;
};

/* GETs url with Accept: text/event-stream (and Last-Event-ID when last_id is not
 * NULL); collects frames until `stop_after` frames with an id arrived (0: no
 * limit), the server ends the stream, or timeout_s passes. */
int sse_collect(const char *url, const char *last_id, size_t stop_after, long timeout_s,
		struct sse_result *out);
/* The same, to the end, for a slow reader: a 4 KiB receive buffer, and a pause of
 * stall_ms at the first bytes (the server's backlog grows meanwhile). */
int sse_collect_slow(const char *url, unsigned stall_ms, long timeout_s, struct sse_result *out);
void sse_result_release(struct sse_result *r);

#endif
