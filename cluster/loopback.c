/* loopback.c - HTTP/1.1 calls to this node's own API over loopback, for the
 * requests other nodes forward here (cluster.c replays each one against its
 * own API, so it gets exactly the local answer). Each calling thread keeps its
 * connection alive between calls (the forwarding pool has a few threads, so a
 * few connections serve every forwarded call) instead of opening one per call.
 *
 * A kept connection the server closed meanwhile (its idle timeout) shows as a
 * failed send or an end before the first byte of the answer: the call is then
 * made once more on a new connection. Answers are read by Content-Length, as
 * chunks, or to the end of the connection (which is then not kept). */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX (64 << 10)

struct conn {
	int fd;
	char url[256];
};

static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_free(void *p)
{
	struct conn *k = p;
	if (k && k->fd >= 0)
		close(k->fd);
	free(k);
}

static void conn_key_init(void)
{
	pthread_key_create(&conn_key, conn_free);
}

static struct conn *thread_conn(void)
{
	pthread_once(&conn_once, conn_key_init);
	struct conn *k = pthread_getspecific(conn_key);
	if (!k && (k = calloc(1, sizeof(*k)))) {
		k->fd = -1;
		pthread_setspecific(conn_key, k);
	}
	return k;
}

static void conn_drop(struct conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

int loopback_connect(const char *url)
{
	char host[300], port[16] = "80", hp[300];
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t hl = strcspn(p, "/");
	snprintf(hp, sizeof(hp), "%.*s", (int)(hl < 299 ? hl : 299), p);
	if (hp[0] == '[') {
		char *end = strchr(hp, ']');
		if (!end)
			return -1;
		*end = '\0';
		snprintf(host, sizeof(host), "%s", hp + 1);
		if (end[1] == ':')
			snprintf(port, sizeof(port), "%.15s", end + 2);
	} else {
		char *colon = strrchr(hp, ':');
		if (colon) {
			*colon = '\0';
			snprintf(port, sizeof(port), "%.15s", colon + 1);
		}
		snprintf(host, sizeof(host), "%s", hp);
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	/* a request's head and body go in two sends: without this, Nagle holds
	 * the body until the head's delayed ACK (40 ms a forwarded call) */
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A growing buffer of what the connection gave. */
struct rbuf {
	uint8_t *p;
	size_t len, cap, off;         /* off: consumed */
};

/* Reads more: >0 bytes, 0 end, -1 error or timeout. */
static ssize_t fill(int fd, struct rbuf *b, int64_t deadline)
{
	if (b->cap - b->len < 16384) {
		size_t cap = b->cap ? b->cap * 2 : 32768;
		uint8_t *p = realloc(b->p, cap + 1);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	for (;;) {
		int64_t left = deadline - cluster_mono_ms();
		if (left <= 0)
			return -1;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int k = poll(&pf, 1, left > 1000 ? 1000 : (int)left);
		if (k < 0 && errno != EINTR)
			return -1;
		if (k <= 0)
			continue;
		ssize_t n = recv(fd, b->p + b->len, b->cap - b->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			b->len += (size_t)n;
		return n;
	}
}

/* Bytes of b past off, at least n of them (reading more): 0, or -1. */
static int need(int fd, struct rbuf *b, size_t n, int64_t deadline)
{
	while (b->len - b->off < n)
		if (fill(fd, b, deadline) <= 0)
			return -1;
	return 0;
}

/* A line ending in CRLF at off: its length (without CRLF), or -1. */
static ssize_t line(int fd, struct rbuf *b, int64_t deadline)
{
	for (;;) {
		uint8_t *e = b->len > b->off ? memmem(b->p + b->off, b->len - b->off, "\r\n", 2) : NULL;
		if (e)
			return e - (b->p + b->off);
		if (b->len - b->off > HEAD_MAX || fill(fd, b, deadline) <= 0)
			return -1;
	}
}

static int header_is(const char *head, const char *name, const char *value)
{
	size_t n = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
		const char *s = l + 2;
		if (strncasecmp(s, name, n) == 0 && s[n] == ':') {
			s += n + 1;
			while (*s == ' ')
				s++;
			if (!value)
				return 1;
			const char *end = strstr(s, "\r\n");
			size_t vl = end ? (size_t)(end - s) : strlen(s);
			return strlen(value) <= vl && strncasecmp(s, value, strlen(value)) == 0;
		}
	}
	return 0;
}

static long long header_num(const char *head, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':')
			return atoll(l + 3 + n);
	return -1;
}

/* One exchange on fd. -2: the connection had ended before any answer (a kept
 * one the server closed: try again); -1: failed; 0: *out filled; *keep: the
 * connection may serve the next call. */
static int exchange(int fd, const char *req, size_t req_len, const uint8_t *body,
		    size_t body_len, int head_only, int64_t deadline, size_t max_bytes,
		    struct loopback_response *out, int *keep, struct err *err)
{
	*keep = 0;
	if (send_all(fd, req, req_len) || (body_len && send_all(fd, (const char *)body, body_len)))
		return -2;
	struct rbuf b = {0};
	ssize_t n = fill(fd, &b, deadline);
	if (n == 0) {
		free(b.p);
		return -2;
	}
	int rc = -1;
	uint8_t *e = NULL;
	while (n > 0 && !(e = memmem(b.p, b.len, "\r\n\r\n", 4)) && b.len < HEAD_MAX)
		n = fill(fd, &b, deadline);
	if (!e) {
		err_set(err, ERR_UNAVAILABLE, "the node's own API gave no answer head");
		goto done;
	}
	size_t hl = (size_t)(e - b.p);
	out->headers = malloc(hl + 3);
	if (!out->headers)
		goto done;
	memcpy(out->headers, b.p, hl);
	memcpy(out->headers + hl, "\r\n", 3);
	out->status = 0;
	sscanf(out->headers, "HTTP/%*s %d", &out->status);
	b.off = hl + 4;
	int close_after = header_is(out->headers, "Connection", "close") ||
			  strncmp(out->headers, "HTTP/1.0", 8) == 0;
	long long clen = header_num(out->headers, "Content-Length");
	struct rbuf body_out = {0};
	if (head_only || out->status == 204 || out->status == 304 ||
	    (out->status >= 100 && out->status < 200)) {
		rc = 0;
	} else if (header_is(out->headers, "Transfer-Encoding", "chunked")) {
		for (;;) {
			ssize_t ll = line(fd, &b, deadline);
			if (ll < 0)
				break;
			unsigned long long size = strtoull((const char *)b.p + b.off, NULL, 16);
			b.off += (size_t)ll + 2;
			if (size == 0) {
				while ((ll = line(fd, &b, deadline)) > 0)    /* trailers */
					b.off += (size_t)ll + 2;
				if (ll == 0) {
					b.off += 2;
					rc = 0;
				}
				break;
			}
			if (body_out.len + size > max_bytes || need(fd, &b, size + 2, deadline))
				break;
			uint8_t *p = realloc(body_out.p, body_out.len + size + 1);
			if (!p)
				break;
			body_out.p = p;
			memcpy(p + body_out.len, b.p + b.off, size);
			body_out.len += size;
			b.off += size + 2;
		}
	} else if (clen >= 0) {
		if ((size_t)clen <= max_bytes && !need(fd, &b, (size_t)clen, deadline) &&
		    (body_out.p = malloc((size_t)clen + 1))) {
			memcpy(body_out.p, b.p + b.off, (size_t)clen);
			body_out.len = (size_t)clen;
			b.off += (size_t)clen;
			rc = 0;
		}
	} else {                      /* to the end of the connection */
		close_after = 1;
		while ((n = fill(fd, &b, deadline)) > 0 && b.len - b.off <= max_bytes)
			;
		if (n == 0 && (body_out.p = malloc(b.len - b.off + 1))) {
			memcpy(body_out.p, b.p + b.off, b.len - b.off);
			body_out.len = b.len - b.off;
			b.off = b.len;
			rc = 0;
		}
	}
	if (rc) {
		free(body_out.p);
		err_set(err, ERR_UNAVAILABLE, "the node's own API answer was cut, too large or late");
	} else {
		if (!body_out.p)
			body_out.p = malloc(1);
		out->body = body_out.p;
		if (out->body)
			out->body[body_out.len] = '\0';
		out->len = body_out.len;
		*keep = !close_after && b.off == b.len;
	}
done:
	free(b.p);
	return rc;
}

void loopback_response_release(struct loopback_response *r)
{
	if (!r)
		return;
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

enum err_code loopback_call(const char *base_url, const char *method, const char *target,
			    const char *const *lines, size_t nlines, const uint8_t *body,
			    size_t body_len, long timeout_ms, size_t max_bytes,
			    struct loopback_response *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	if (strpbrk(method, " \r\n") || strpbrk(target, " \r\n") || target[0] != '/')
		return err_set(err, ERR_INVALID, "malformed forwarded request");
	size_t cap = strlen(method) + strlen(target) + 256, at = 0;
	for (size_t i = 0; i < nlines; i++)
		cap += strlen(lines[i]) + 2;
	char *req = malloc(cap);
	if (!req)
		return err_set(err, ERR_NOMEM, "out of memory");
	at += (size_t)snprintf(req + at, cap - at, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method,
			       target);
	if (body || strcmp(method, "GET") != 0)
		at += (size_t)snprintf(req + at, cap - at, "Content-Length: %zu\r\n", body_len);
	for (size_t i = 0; i < nlines; i++) {
		const char *colon = strchr(lines[i], ':');
		if (!colon || !colon[1] || strpbrk(lines[i], "\r\n") ||
		    strncasecmp(lines[i], "Content-Length:", 15) == 0 ||
		    strncasecmp(lines[i], "Host:", 5) == 0 ||
		    strncasecmp(lines[i], "Connection:", 11) == 0)
			continue;            /* "Expect:" (empty) and what we set ourselves */
		at += (size_t)snprintf(req + at, cap - at, "%s\r\n", lines[i]);
	}
	at += (size_t)snprintf(req + at, cap - at, "\r\n");
	struct conn *k = thread_conn();
	struct conn one = {.fd = -1};
	if (!k)
		k = &one;
	if (k->fd >= 0 && strcmp(k->url, base_url) != 0)
		conn_drop(k);
	int64_t deadline = cluster_mono_ms() + (timeout_ms > 0 ? timeout_ms : 60000);
	int head_only = strcmp(method, "HEAD") == 0;
	int rc = -2, keep = 0;
	for (int attempt = 0; attempt < 2 && rc == -2; attempt++) {
		int reused = k->fd >= 0;
		if (!reused) {
			k->fd = loopback_connect(base_url);
			snprintf(k->url, sizeof(k->url), "%s", base_url);
		}
		if (k->fd < 0) {
			free(req);
			return err_set(err, ERR_UNAVAILABLE, "cannot connect to the node's own API "
				       "(%s)", base_url);
		}
		rc = exchange(k->fd, req, at, body, body_len, head_only, deadline, max_bytes, out,
			      &keep, err);
		if (rc || !keep)
			conn_drop(k);
		if (rc == -2 && !reused)
			break;               /* a new connection that ended at once */
		if (rc == -2)
			loopback_response_release(out);
	}
	free(req);
	if (rc == -2)
		return err_set(err, ERR_UNAVAILABLE, "the node's own API closed the connection");
	if (rc)
		return err->code ? err->code : err_set(err, ERR_UNAVAILABLE, "forwarding failed");
	return ERR_OK;
}
