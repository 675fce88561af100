/* fixture_httpd.c - a tiny threaded HTTP/1.1 test server; see fixture_httpd.h.
 *
 * Invariants: every blocking wait polls the wake pipe as well, and stop
 * writes one byte there that is never read, so every thread sees it and
 * returns; route data is copied out under the lock before a response is
 * written, so routes may be replaced while a response is being sent.
 */
#include "tests/support/fixture_httpd.h"
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (16 * 1024)
#define BODY_MAX (1024 * 1024)
#define CHUNK (64 * 1024)
#define IDLE_MS 30000

enum route_kind { R_NONE, R_BYTES, R_STATUS, R_REDIRECT, R_HUGE, R_SLOW, R_GATE, R_LIE, R_ECHO, R_AUTH, R_SEQ,
		  R_SSE };

struct route {
	char *path;
	enum route_kind kind;
	uint8_t *data;
	size_t len;          /* bytes: data length; huge: total; lie: actual */
	size_t claimed;      /* lie: announced length */
	int status;
	int send_cl;
	unsigned delay_ms;
	int open;            /* a gate: requests are answered */
	unsigned hits;
	uint64_t sent;
	char *last_body;
	size_t last_body_len;
	char *last_head;     /* the last request's head (request line and headers) */
	unsigned first_n;    /* seq: the first first_n requests get first_status + first */
	int first_status;
	uint8_t *first;
	size_t first_len;
	char method[16];
	struct route *next;
};

struct conn {
	struct fixture_httpd *h;
	pthread_t th;
	int fd;
	atomic_int done;
	struct conn *next;
};

struct fixture_httpd {
	int lfd;
	int wake[2];
	unsigned short port;
	pthread_t accept_th;
	pthread_mutex_t mu;
	struct route *routes;
	struct conn *conns;
	atomic_int active;   /* connections accepted and not yet closed */
};

/* A snapshot of the route taken under the lock. */
struct reply {
	enum route_kind kind;
	uint8_t *data;
	size_t len, claimed;
	int status, send_cl;
	unsigned delay_ms;
};

/* Waits for `events` on fd; 1 ready, 0 timeout, -1 stop or error. */
static int wait_fd(struct fixture_httpd *h, int fd, short events, int timeout_ms)
{
	struct pollfd p[2] = { { fd, events, 0 }, { h->wake[0], POLLIN, 0 } };
	int n;
	do
		n = poll(p, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0 || p[1].revents)
		return -1;
	return n > 0 ? 1 : 0;
}

static struct route *route_find(struct fixture_httpd *h, const char *path, int create)
{
	for (struct route *r = h->routes; r; r = r->next)
		if (strcmp(r->path, path) == 0)
			return r;
	if (!create)
		return NULL;
	struct route *r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return NULL;
	}
	r->next = h->routes;
	h->routes = r;
	return r;
}

/* Finds or creates the route for path and resets its response fields. */
static struct route *route_set(struct fixture_httpd *h, const char *path, enum route_kind kind)
{
	struct route *r = route_find(h, path, 1);
	if (!r)
		return NULL;
	free(r->data);
	r->data = NULL;
	free(r->first);
	r->first = NULL;
	r->first_len = r->first_n = 0;
	r->len = r->claimed = 0;
	r->status = 200;
	r->send_cl = 1;
	r->delay_ms = 0;
	r->kind = kind;
	return r;
}

void fixture_httpd_add_bytes(struct fixture_httpd *h, const char *path, const void *data, size_t len)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_BYTES);
	if (r && (r->data = malloc(len ? len : 1))) {
		if (len)
			memcpy(r->data, data, len);
		r->len = len;
	}
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_echo(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	route_set(h, path, R_ECHO);
	pthread_mutex_unlock(&h->mu);
}

static uint8_t *dup_bytes(const void *data, size_t len)
{
	uint8_t *p = malloc(len + 1);
	if (p) {
		if (len)
			memcpy(p, data, len);
		p[len] = 0;
	}
	return p;
}

void fixture_httpd_add_auth(struct fixture_httpd *h, const char *path, const char *name,
			    const char *value, const char *ok_body)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_AUTH);
	if (r && (r->data = (uint8_t *)malloc(strlen(name) + strlen(value) + 3))) {
		r->len = (size_t)sprintf((char *)r->data, "%s: %s", name, value);
	}
	if (r && ok_body) {
		r->first = dup_bytes(ok_body, strlen(ok_body));
		r->first_len = strlen(ok_body);
	}
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_sequence(struct fixture_httpd *h, const char *path, unsigned first_n,
				int first_status, const char *first_body, const char *then_body)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_SEQ);
	if (r) {
		r->first_n = first_n + r->hits;    /* counted from now */
		r->first_status = first_status;
		r->first = dup_bytes(first_body, strlen(first_body));
		r->first_len = strlen(first_body);
		r->data = dup_bytes(then_body, strlen(then_body));
		r->len = strlen(then_body);
	}
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_sse(struct fixture_httpd *h, const char *path, const char *const *events,
			   size_t n, unsigned delay_ms)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(events[i]) + 1;
	char *joined = malloc(len + 1), *p = joined;
	for (size_t i = 0; joined && i < n; i++) {
		size_t k = strlen(events[i]);
		memcpy(p, events[i], k);
		p += k;
		*p++ = '\x1e';           /* between events */
	}
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_SSE);
	if (r && joined) {
		r->data = (uint8_t *)joined;
		r->len = len;
		r->delay_ms = delay_ms;
		joined = NULL;
	}
	pthread_mutex_unlock(&h->mu);
	free(joined);
}

/* The answer of an echo or auth route, from the request's head. */
static void answer_from_head(const struct route *r, const char *head, size_t head_len,
			     struct reply *out)
{
	out->kind = R_BYTES;
	out->status = 200;
	if (r->kind == R_ECHO) {
		out->data = (uint8_t *)strndup(head, head_len);
		out->len = out->data ? head_len : 0;
		return;
	}
	int ok = 0;
	const char *want = (const char *)r->data;
	size_t name_len = want ? (size_t)(strchr(want, ':') - want) : 0;
	for (const char *p = head; want && (p = strstr(p, "\r\n")) != NULL;) {
		p += 2;
		size_t n = strcspn(p, "\r");
		ok |= n == r->len && strncasecmp(p, want, name_len) == 0 &&
		      memcmp(p + name_len, want + name_len, r->len - name_len) == 0;
	}
	out->status = ok ? 200 : 401;
	if (ok && r->first) {
		out->data = dup_bytes(r->first, r->first_len);
		out->len = out->data ? r->first_len : 0;
		return;
	}
	out->data = (uint8_t *)strdup(ok ? "authorized" : "unauthorized");
	out->len = out->data ? strlen((const char *)out->data) : 0;
}

void fixture_httpd_add_status(struct fixture_httpd *h, const char *path, int status)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_STATUS);
	if (r)
		r->status = status;
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_redirect(struct fixture_httpd *h, const char *path, const char *location)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_REDIRECT);
	if (r && (r->data = (uint8_t *)strdup(location))) {
		r->len = strlen(location);
		r->status = 302;
	}
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_huge(struct fixture_httpd *h, const char *path, size_t bytes, int send_content_length)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_HUGE);
	if (r) {
		r->len = bytes;
		r->send_cl = send_content_length;
	}
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_slow(struct fixture_httpd *h, const char *path, unsigned delay_ms)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_SLOW);
	if (r)
		r->delay_ms = delay_ms;
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_add_gate(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_GATE);
	if (r)
		r->open = 0;
	pthread_mutex_unlock(&h->mu);
}

void fixture_httpd_open_gate(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	if (r)
		r->open = 1;
	pthread_mutex_unlock(&h->mu);
}

static int gate_open(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	int open = !r || r->open;
	pthread_mutex_unlock(&h->mu);
	return open;
}

void fixture_httpd_add_lie(struct fixture_httpd *h, const char *path, size_t claimed, size_t actual)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_set(h, path, R_LIE);
	if (r) {
		r->claimed = claimed;
		r->len = actual;
	}
	pthread_mutex_unlock(&h->mu);
}

unsigned fixture_httpd_hits(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	unsigned n = r ? r->hits : 0;
	pthread_mutex_unlock(&h->mu);
	return n;
}

uint64_t fixture_httpd_bytes_sent(struct fixture_httpd *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	uint64_t n = r ? r->sent : 0;
	pthread_mutex_unlock(&h->mu);
	return n;
}

char *fixture_httpd_last_body(struct fixture_httpd *h, const char *path, size_t *len_out)
{
	char *copy = NULL;
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	if (r && r->last_body && (copy = malloc(r->last_body_len + 1))) {
		memcpy(copy, r->last_body, r->last_body_len);
		copy[r->last_body_len] = '\0';
		if (len_out)
			*len_out = r->last_body_len;
	}
	pthread_mutex_unlock(&h->mu);
	return copy;
}

char *fixture_httpd_last_header(struct fixture_httpd *h, const char *path, const char *name)
{
	char *value = NULL;
	size_t n = strlen(name);
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	const char *p = r ? r->last_head : NULL;
	while (p && (p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e = strstr(v, "\r\n");
			while (*v == ' ' || *v == '\t')
				v++;
			value = e ? strndup(v, (size_t)(e - v)) : strdup(v);
			break;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return value;
}

void fixture_httpd_last_method(struct fixture_httpd *h, const char *path, char out[16])
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	snprintf(out, 16, "%s", r ? r->method : "");
	pthread_mutex_unlock(&h->mu);
}

unsigned short fixture_httpd_port(struct fixture_httpd *h)
{
	return h->port;
}

char *fixture_httpd_url(struct fixture_httpd *h, const char *path)
{
	size_t n = strlen(path) + 32;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "http://127.0.0.1:%u%s", (unsigned)h->port, path);
	return s;
}

/* --- one connection --------------------------------------------------- */

static void add_sent(struct fixture_httpd *h, const char *path, size_t n)
{
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 0);
	if (r)
		r->sent += n;
	pthread_mutex_unlock(&h->mu);
}

static int send_all(struct fixture_httpd *h, int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		if (wait_fd(h, fd, POLLOUT, IDLE_MS) != 1)
			return -1;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends body bytes and counts them for path. */
static int send_body(struct fixture_httpd *h, int fd, const char *path, const void *data, size_t len)
{
	if (send_all(h, fd, data, len))
		return -1;
	add_sent(h, path, len);
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 413: return "Content Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static int send_head(struct fixture_httpd *h, int fd, int status, const char *extra, int has_cl,
		     size_t cl)
{
	char head[1024];
	char clh[64] = "";
	if (has_cl)
		snprintf(clh, sizeof(clh), "Content-Length: %zu\r\n", cl);
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%sConnection: close\r\n\r\n",
			 status, reason(status), clh, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	return send_all(h, fd, head, (size_t)n);
}

/* Reads until the end of the request head; returns its length (without the
 * blank line) or -1. `got` is the number of bytes read into buf. */
static ssize_t read_head(struct fixture_httpd *h, int fd, char *buf, size_t cap, size_t *got)
{
	size_t len = 0;
	while (len < cap - 1) {
		if (wait_fd(h, fd, POLLIN, IDLE_MS) != 1)
			return -1;
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end) {
			*got = len;
			return end - buf;
		}
	}
	return -1;
}

static long content_length(const char *head)
{
	const char *p = head;
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, "content-length:", 15) == 0)
			return strtol(p + 15, NULL, 10);
	}
	return 0;
}

/* Reads the request body whose first `have` bytes are already in `pre`. */
static char *read_body(struct fixture_httpd *h, int fd, const char *pre, size_t have, size_t len)
{
	char *body = malloc(len + 1);
	if (!body)
		return NULL;
	if (have > len)
		have = len;
	memcpy(body, pre, have);
	while (have < len) {
		ssize_t n = -1;
		if (wait_fd(h, fd, POLLIN, IDLE_MS) == 1)
			n = recv(fd, body + have, len - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(body);
			return NULL;
		}
		have += (size_t)n;
	}
	body[len] = '\0';
	return body;
}

/* Counts the request and snapshots the route. */
static void record(struct fixture_httpd *h, const char *path, const char *method,
		   const char *head, size_t head_len, char *body, size_t body_len,
		   struct reply *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&h->mu);
	struct route *r = route_find(h, path, 1);
	if (r) {
		r->hits++;
		snprintf(r->method, sizeof(r->method), "%s", method);
		free(r->last_body);
		r->last_body = body;
		r->last_body_len = body_len;
		body = NULL;
		free(r->last_head);
		r->last_head = strndup(head, head_len);
		out->kind = r->kind;
		out->len = r->len;
		out->claimed = r->claimed;
		out->status = r->status;
		out->send_cl = r->send_cl;
		out->delay_ms = r->delay_ms;
		if (r->kind == R_ECHO || r->kind == R_AUTH) {
			answer_from_head(r, head, head_len, out);
		} else if (r->kind == R_SEQ) {
			int early = r->hits <= r->first_n;
			out->kind = R_BYTES;
			out->status = early ? r->first_status : 200;
			out->data = early ? dup_bytes(r->first, r->first_len) : dup_bytes(r->data, r->len);
			out->len = out->data ? (early ? r->first_len : r->len) : 0;
		} else if (r->data && (out->data = malloc(r->len + 1))) {
			memcpy(out->data, r->data, r->len);
			out->data[r->len] = '\0';
		}
	}
	pthread_mutex_unlock(&h->mu);
	free(body);
}

static void reply_huge(struct fixture_httpd *h, int fd, const char *path, const struct reply *rp)
{
	char *chunk = malloc(CHUNK);
	if (!chunk)
		return;
	memset(chunk, 'x', CHUNK);
	size_t announced = rp->kind == R_LIE ? rp->claimed : rp->len;
	if (send_head(h, fd, 200, NULL, rp->send_cl || rp->kind == R_LIE, announced) == 0) {
		for (size_t left = rp->len; left;) {
			size_t n = left < CHUNK ? left : CHUNK;
			if (send_body(h, fd, path, chunk, n))
				break;
			left -= n;
		}
	}
	free(chunk);
}

static void reply_slow(struct fixture_httpd *h, int fd, const char *path, const struct reply *rp)
{
	int64_t deadline = tu_now_ms() + rp->delay_ms;
	for (;;) {
		int64_t left = deadline - tu_now_ms();
		if (left <= 0)
			break;
		int w = wait_fd(h, fd, POLLIN, (int)left);
		if (w < 0)
			return;
		if (w == 1) {
			char tmp[256];
			ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
			if (n == 0 || (n < 0 && errno != EINTR))
				return;   /* the client left */
		}
	}
	if (send_head(h, fd, 200, NULL, 1, 4) == 0)
		send_body(h, fd, path, "slow", 4);
}

/* Each event as "data: <event>\n\n", delay_ms apart; the body ends at close. */
static void reply_sse(struct fixture_httpd *h, int fd, const char *path, const struct reply *rp)
{
	if (send_head(h, fd, 200, "Content-Type: text/event-stream\r\n", 0, 0))
		return;
	const char *p = rp->data ? (const char *)rp->data : "", *end = p + rp->len;
	while (p < end) {
		const char *sep = memchr(p, '\x1e', (size_t)(end - p));
		size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
		if (send_body(h, fd, path, "data: ", 6) || send_body(h, fd, path, p, n) ||
		    send_body(h, fd, path, "\n\n", 2))
			return;
		p += n + 1;
		if (p < end && rp->delay_ms && wait_fd(h, fd, 0, (int)rp->delay_ms) < 0)
			return;
	}
}

/* Holds the request until the gate opens (or the client leaves, or the
 * server stops), then answers 200 "gate". */
static void reply_gate(struct fixture_httpd *h, int fd, const char *path)
{
	while (!gate_open(h, path)) {
		int w = wait_fd(h, fd, POLLIN, 20);
		if (w < 0)
			return;
		if (w == 1) {
			char tmp[256];
			ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
			if (n == 0 || (n < 0 && errno != EINTR))
				return;   /* the client left */
		}
	}
	if (send_head(h, fd, 200, NULL, 1, 4) == 0)
		send_body(h, fd, path, "gate", 4);
}

static void reply(struct fixture_httpd *h, int fd, const char *path, const struct reply *rp)
{
	char extra[1200];
	switch (rp->kind) {
	case R_BYTES:
		if (send_head(h, fd, rp->status ? rp->status : 200,
			      "Content-Type: application/octet-stream\r\n", 1, rp->len) == 0)
			send_body(h, fd, path, rp->data ? (const void *)rp->data : "", rp->len);
		break;
	case R_STATUS:
		send_head(h, fd, rp->status, NULL, 1, 0);
		break;
	case R_REDIRECT:
		snprintf(extra, sizeof(extra), "Location: %s\r\n", rp->data ? (char *)rp->data : "/");
		send_head(h, fd, 302, extra, 1, 0);
		break;
	case R_HUGE:
	case R_LIE:
		reply_huge(h, fd, path, rp);
		break;
	case R_SLOW:
		reply_slow(h, fd, path, rp);
		break;
	case R_SSE:
		reply_sse(h, fd, path, rp);
		break;
	case R_GATE:
		reply_gate(h, fd, path);
		break;
	case R_ECHO:          /* answered as R_BYTES (record) */
	case R_AUTH:
	case R_SEQ:
	case R_NONE:
		if (send_head(h, fd, 404, NULL, 1, 9) == 0)
			send_body(h, fd, path, "not found", 9);
		break;
	}
}

static void serve(struct fixture_httpd *h, int fd)
{
	char *head = malloc(HEAD_MAX + 1);
	size_t got = 0;
	ssize_t hl = head ? read_head(h, fd, head, HEAD_MAX + 1, &got) : -1;
	if (hl < 0)
		goto done;
	char method[16], target[2048];
	if (sscanf(head, "%15s %2047s", method, target) != 2)
		goto done;
	target[strcspn(target, "?#")] = '\0';
	long cl = content_length(head);
	if (cl < 0 || cl > BODY_MAX) {
		send_head(h, fd, 413, NULL, 1, 0);
		goto done;
	}
	size_t off = (size_t)hl + 4;
	char *body = cl ? read_body(h, fd, head + off, got - off, (size_t)cl) : NULL;
	if (cl && !body)
		goto done;
	struct reply rp;
	record(h, target, method, head, (size_t)hl, body, body ? (size_t)cl : 0, &rp);
	reply(h, fd, target, &rp);
	free(rp.data);
done:
	free(head);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	serve(c->h, c->fd);
	shutdown(c->fd, SHUT_WR);
	close(c->fd);
	atomic_fetch_sub(&c->h->active, 1);
	atomic_store(&c->done, 1);
	return NULL;
}

/* --- accepting, start and stop ----------------------------------------- */

static void reap(struct fixture_httpd *h, int all)
{
	struct conn **pp = &h->conns;
	while (*pp) {
		struct conn *c = *pp;
		if (all || atomic_load(&c->done)) {
			pthread_join(c->th, NULL);
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void *accept_main(void *arg)
{
	struct fixture_httpd *h = arg;
	for (;;) {
		int w = wait_fd(h, h->lfd, POLLIN, 1000);
		reap(h, 0);
		if (w < 0)
			break;
		if (w == 0)
			continue;
		int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->h = h;
		c->fd = fd;
		atomic_init(&c->done, 0);
		atomic_fetch_add(&h->active, 1);
		if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
			atomic_fetch_sub(&h->active, 1);
			close(fd);
			free(c);
			continue;
		}
		c->next = h->conns;
		h->conns = c;
	}
	return NULL;
}

static int listen_loopback(unsigned short *port_out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		close(fd);
		return -1;
	}
	*port_out = ntohs(sa.sin_port);
	return fd;
}

struct fixture_httpd *fixture_httpd_start(void)
{
	struct fixture_httpd *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->wake[0] = h->wake[1] = -1;
	atomic_init(&h->active, 0);
	pthread_mutex_init(&h->mu, NULL);
	h->lfd = listen_loopback(&h->port);
	if (h->lfd < 0 || pipe2(h->wake, O_CLOEXEC) ||
	    pthread_create(&h->accept_th, NULL, accept_main, h) != 0) {
		fprintf(stderr, "fixture_httpd: cannot start: %s\n", strerror(errno));
		if (h->lfd >= 0)
			close(h->lfd);
		if (h->wake[0] >= 0) {
			close(h->wake[0]);
			close(h->wake[1]);
		}
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	return h;
}

int fixture_httpd_wait_idle(struct fixture_httpd *h, unsigned timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	while (atomic_load(&h->active) > 0) {
		if (tu_now_ms() >= deadline)
			return -1;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

void fixture_httpd_stop(struct fixture_httpd *h)
{
	if (!h)
		return;
	ssize_t n;
	do
		n = write(h->wake[1], "x", 1);
	while (n < 0 && errno == EINTR);
	pthread_join(h->accept_th, NULL);
	reap(h, 1);
	close(h->lfd);
	close(h->wake[0]);
	close(h->wake[1]);
	while (h->routes) {
		struct route *r = h->routes;
		h->routes = r->next;
		free(r->path);
		free(r->data);
		free(r->last_body);
		free(r->last_head);
		free(r->first);
		free(r);
	}
	pthread_mutex_destroy(&h->mu);
	free(h);
}
