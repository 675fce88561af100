/* relay.c - server-sent event streams of another node, relayed over NATS.
 *
 * A stream cannot travel as one request/reply. The node a client asks (the
 * forwarder) subscribes to a fresh inbox, then asks the node that runs the
 * actor on `theater.node.<name>.sse` with the request (as cluster_call does)
 * and the inbox. That node (the owner) replays the request against its own
 * API over loopback, exactly as a forwarded call, so the stream is the local
 * one, byte for byte: the same frames, ids, `ready`, Last-Event-ID and ?after=
 * resume. It answers the head ({"s": 200, "stream": true}, or the whole answer
 * when it is no stream: a 404, a 406) and then publishes the stream's bytes to
 * the inbox as they come, each message numbered ({"n": k} and the bytes;
 * {"end": true} last).
 *
 * Liveness both ways: the forwarder sends "alive" on <inbox>.ctl every few
 * seconds, and "stop" when its client went away; the owner ends a relay that
 * heard nothing for RELAY_SILENT_MS. The owner sends {"alive": true} when it
 * had nothing to send for a while; the forwarder ends a stream that heard
 * nothing for RELAY_SILENT_MS, or that lost a message (a gap in the numbers):
 * the client reconnects with Last-Event-ID and resumes, as after any cut.
 *
 * The owner serves each relay on a thread of its own (at most RELAY_MAX); one
 * more is answered {"full": true}, and the API then redirects the client to
 * the owner (307) instead. */
#include "cluster/cluster_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/util/log.h"

#define RELAY_MAX 256
#define RELAY_SILENT_MS 20000
#define RELAY_ALIVE_MS 5000
#define RELAY_HEAD_MAX (64 << 10)
#define RELAY_PENDING_MAX ((size_t)8 << 20)

/* ---- the owner: one relayed stream ---- */

struct relay_out {
	struct cluster *c;
	char inbox[160];
	char *reply;
	json_t *head;                 /* the forwarded request's head */
	struct bus_sub *ctl;
	int stop;                     /* atomic: "stop" came, or the node stops */
	int64_t heard_ms;             /* atomic: the last "alive" */
	uint64_t n;
};

static void on_ctl(void *user, const char *reply, const uint8_t *data, size_t len)
{
	(void)reply;
	struct relay_out *r = user;
	if (len == 4 && memcmp(data, "stop", 4) == 0)
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&r->heard_ms, cluster_mono_ms(), __ATOMIC_RELEASE);
}

static int relay_publish(struct relay_out *r, json_t *head, const uint8_t *data, size_t len)
{
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, data, len, &n) : NULL;
	json_decref(head);
	struct err e = {0};
	int rc = !msg || bus_publish(r->c->bus, r->inbox, msg, n, &e) != ERR_OK;
	free(msg);
	return rc;
}

static int send_chunk(struct relay_out *r, const uint8_t *data, size_t len)
{
	return relay_publish(r, json_pack("{s:I}", "n", (json_int_t)r->n++), data, len);
}

static int send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			return -1;
		}
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The request as HTTP/1.0 (the answer is then the raw bytes until close, not
 * chunked), with the forwarded headers, our token and the forwarded mark. */
static char *request_text(struct relay_out *r)
{
	const char *target = json_string_value(json_object_get(r->head, "p"));
	const char *from = json_string_value(json_object_get(r->head, "from"));
	json_t *h = json_object_get(r->head, "h");
	if (!target || target[0] != '/' || strpbrk(target, " \r\n") || !json_is_object(h))
		return NULL;
	size_t cap = strlen(target) + 4096, at = 0;
	char *t = malloc(cap);
	if (!t)
		return NULL;
	at += (size_t)snprintf(t + at, cap - at, "GET %s HTTP/1.0\r\nHost: localhost\r\n"
			       "X-Theater-Forwarded: %.64s\r\n", target, from ? from : "?");
	if (r->c->token)
		at += (size_t)snprintf(t + at, cap - at, "Authorization: Bearer %.1000s\r\n",
				       r->c->token);
	const char *k;
	json_t *v;
	json_object_foreach(h, k, v) {
		const char *s = json_string_value(v);
		if (!s || strpbrk(k, "\r\n: ") || strpbrk(s, "\r\n") || at + strlen(k) +
		    strlen(s) + 8 >= cap || strcasecmp(k, "Authorization") == 0)
			continue;
		at += (size_t)snprintf(t + at, cap - at, "%s: %s\r\n", k, s);
	}
	if (at + 3 >= cap) {
		free(t);
		return NULL;
	}
	memcpy(t + at, "\r\n", 3);
	return t;
}

/* Reads until timeout_ms pass or bytes come: >0 bytes, 0 closed, -1 error,
 * -2 nothing yet. */
static ssize_t read_some(int fd, uint8_t *buf, size_t size, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int k = poll(&p, 1, timeout_ms);
	if (k == 0 || (k < 0 && errno == EINTR))
		return -2;
	if (k < 0)
		return -1;
	ssize_t n = recv(fd, buf, size, 0);
	return n < 0 ? (errno == EINTR ? -2 : -1) : n;
}

static void answer_problem(struct relay_out *r, int status, const char *code, const char *detail)
{
	json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
			      status == 503 ? "Unavailable" : "Error", "status", status, "code",
			      code, "detail", detail);
	char *text = p ? json_compact(p) : NULL;
	json_decref(p);
	json_t *head = json_pack("{s:i, s:{s:s}}", "s", status, "h", "Content-Type",
				 "application/problem+json");
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, (const uint8_t *)(text ? text : "{}"),
					    strlen(text ? text : "{}"), &n) : NULL;
	json_decref(head);
	struct err e = {0};
	if (msg)
		bus_publish(r->c->bus, r->reply, msg, n, &e);
	free(msg);
	free(text);
}

/* The answer's head is in buf[0..len): 1 and the status, the body's offset,
 * the kept headers, and whether it is an event stream; 0: not yet whole. */
static int parse_head(const uint8_t *buf, size_t len, int *status, size_t *body_at,
		      json_t *headers, int *stream)
{
	const uint8_t *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hl = (size_t)(end - buf);
	char *text = malloc(hl + 3);
	if (!text)
		return -1;
	memcpy(text, buf, hl);
	memcpy(text + hl, "\r\n", 3);
	*status = 0;
	sscanf(text, "HTTP/%*s %d", status);
	char *lines = strstr(text, "\r\n");
	cluster_keep_headers(lines ? lines + 2 : "", headers);
	const char *ct = json_string_value(json_object_get(headers, "Content-Type"));
	*stream = *status == 200 && ct && strncmp(ct, "text/event-stream", 17) == 0;
	*body_at = hl + 4;
	free(text);
	return 1;
}

static void *relay_out_main(void *arg)
{
	pthread_setname_np(pthread_self(), "relay-out");
	struct relay_out *r = arg;
	struct cluster *c = r->c;
	char *req = request_text(r);
	/* an actor our copy of the placement does not know: the bucket first */
	int answered = req && cluster_serve_unknown(c, r->reply,
						    json_string_value(json_object_get(r->head, "p")));
	int fd = req && !answered ? loopback_connect(c->http_url) : -1;
	uint8_t *buf = malloc(RELAY_HEAD_MAX);
	size_t have = 0;
	int status = 0, stream = 0, got_head = 0;
	size_t body_at = 0;
	json_t *headers = json_object();
	if (answered)
		goto done;
	if (!req || !buf) {
		answer_problem(r, 400, "invalid", "malformed forwarded stream request");
		goto done;
	}
	if (fd < 0 || send_all(fd, req, strlen(req))) {
		answer_problem(r, 503, "unavailable", "the node cannot reach its own API");
		goto done;
	}
	/* the head: status and headers */
	int64_t t0 = cluster_mono_ms();
	while (!got_head && have < RELAY_HEAD_MAX && cluster_mono_ms() - t0 < 10000) {
		ssize_t k = read_some(fd, buf + have, RELAY_HEAD_MAX - have, 500);
		if (k == -2)
			continue;
		if (k <= 0)
			break;
		have += (size_t)k;
		got_head = parse_head(buf, have, &status, &body_at, headers, &stream);
	}
	if (got_head == 1 && !stream) {
		/* no stream (an error, or not for an event stream): the whole answer */
		while (have < RELAY_HEAD_MAX) {
			ssize_t k = read_some(fd, buf + have, RELAY_HEAD_MAX - have, 5000);
			if (k <= 0)
				break;
			have += (size_t)k;
		}
		json_t *head = json_pack("{s:i, s:O}", "s", status, "h", headers);
		size_t n = 0;
		char *msg = head ? cluster_envelope(head, buf + body_at, have - body_at, &n) : NULL;
		json_decref(head);
		struct err e = {0};
		if (msg)
			bus_publish(c->bus, r->reply, msg, n, &e);
		free(msg);
		goto done;
	}
	if (got_head != 1) {
		answer_problem(r, 503, "unavailable", "the node's own API did not answer the stream");
		goto done;
	}
	json_t *head = json_pack("{s:i, s:O, s:b}", "s", 200, "h", headers, "stream", 1);
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, NULL, 0, &n) : NULL;
	json_decref(head);
	struct err e = {0};
	int failed = !msg || bus_publish(c->bus, r->reply, msg, n, &e) != ERR_OK;
	free(msg);
	if (!failed && have > body_at)
		failed = send_chunk(r, buf + body_at, have - body_at);
	int64_t sent_ms = cluster_mono_ms();
	while (!failed && !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&c->leaving, __ATOMIC_ACQUIRE)) {
		int64_t now = cluster_mono_ms();
		if (now - __atomic_load_n(&r->heard_ms, __ATOMIC_ACQUIRE) > RELAY_SILENT_MS)
			break;           /* the forwarder is gone */
		ssize_t k = read_some(fd, buf, RELAY_HEAD_MAX, 1000);
		if (k == -2) {
			if (now - sent_ms >= RELAY_ALIVE_MS) {
				failed = relay_publish(r, json_pack("{s:b}", "alive", 1), NULL, 0);
				sent_ms = now;
			}
			continue;
		}
		if (k <= 0) {
			relay_publish(r, json_pack("{s:I, s:b}", "n", (json_int_t)r->n++, "end", 1),
				      NULL, 0);
			break;           /* the stream ended here */
		}
		failed = send_chunk(r, buf, (size_t)k);
		sent_ms = cluster_mono_ms();
	}
done:
	json_decref(headers);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(req);
	bus_unsubscribe(r->ctl);
	json_decref(r->head);
	free(r->reply);
	__atomic_sub_fetch(&c->relays_out, 1, __ATOMIC_ACQ_REL);
	free(r);
	return NULL;
}

static void on_sse(void *user, const char *reply, const uint8_t *data, size_t len)
{
	struct cluster *c = user;
	if (!reply)
		return;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	const char *inbox = json_string_value(json_object_get(head, "inbox"));
	if (!inbox || strlen(inbox) >= 150 || strpbrk(inbox, " *>\r\n")) {
		json_decref(head);
		return;                  /* the forwarder times out */
	}
	if (__atomic_add_fetch(&c->relays_out, 1, __ATOMIC_ACQ_REL) > RELAY_MAX ||
	    __atomic_load_n(&c->leaving, __ATOMIC_ACQUIRE)) {
		__atomic_sub_fetch(&c->relays_out, 1, __ATOMIC_ACQ_REL);
		json_decref(head);
		const char full[] = "{\"full\":true}\n";
		struct err e = {0};
		bus_publish(c->bus, reply, full, sizeof(full) - 1, &e);
		return;
	}
	struct relay_out *r = calloc(1, sizeof(*r));
	char ctl[200];
	struct err e = {0};
	pthread_t t;
	pthread_attr_t at;
	int ok = r != NULL;
	if (ok) {
		r->c = c;
		r->head = head;
		head = NULL;
		snprintf(r->inbox, sizeof(r->inbox), "%s", inbox);
		r->reply = strdup(reply);
		r->heard_ms = cluster_mono_ms();
		snprintf(ctl, sizeof(ctl), "%s.ctl", r->inbox);
		ok = r->reply && bus_subscribe(c->bus, ctl, NULL, on_ctl, r, &r->ctl, &e) == ERR_OK;
	}
	if (ok) {
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 << 10);
		ok = pthread_create(&t, &at, relay_out_main, r) == 0;
		pthread_attr_destroy(&at);
	}
	if (!ok) {
		if (r) {
			bus_unsubscribe(r->ctl);
			json_decref(r->head);
			free(r->reply);
			free(r);
		}
		json_decref(head);
		__atomic_sub_fetch(&c->relays_out, 1, __ATOMIC_ACQ_REL);
		log_warn_limited("cluster", "cannot relay a stream: %s",
				 e.msg[0] ? e.msg : "no thread");
	}
}

/* ---- the forwarder ---- */

struct cluster_stream {
	struct cluster_stream *next;  /* c->relays_in, under c->relay_lock */
	struct cluster *c;
	char inbox[160];
	struct bus_sub *sub;
	pthread_mutex_t lock;         /* the fields below */
	uint8_t *pending;             /* bytes before attach */
	size_t npending;
	uint64_t next_n;
	int ended, end_told;
	int64_t heard_ms;
	cluster_stream_data_fn on_data;
	cluster_stream_end_fn on_end;
	void *user;
};

/* Called with s->lock held: tells the end once (after attach). */
static void tell_end(struct cluster_stream *s)
{
	s->ended = 1;
	if (s->on_end && !s->end_told) {
		s->end_told = 1;
		s->on_end(s->user);
	}
}

static void on_relay_msg(void *user, const char *reply, const uint8_t *data, size_t len)
{
	(void)reply;
	struct cluster_stream *s = user;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	pthread_mutex_lock(&s->lock);
	s->heard_ms = cluster_mono_ms();
	json_t *n = json_object_get(head, "n");
	if (s->ended || !head || !n) {
		pthread_mutex_unlock(&s->lock);
		json_decref(head);
		return;                  /* an alive, or after the end */
	}
	if ((uint64_t)json_integer_value(n) != s->next_n) {
		log_warn("cluster", "a relayed stream lost a message: ended (the client resumes)");
		tell_end(s);
	} else {
		s->next_n++;
		if (blen && s->on_data) {
			if (s->on_data(s->user, body, blen))
				tell_end(s);
		} else if (blen) {
			uint8_t *p = s->npending + blen <= RELAY_PENDING_MAX
					     ? realloc(s->pending, s->npending + blen) : NULL;
			if (p) {
				memcpy(p + s->npending, body, blen);
				s->pending = p;
				s->npending += blen;
			} else {
				tell_end(s);
			}
		}
		if (json_is_true(json_object_get(head, "end")))
			tell_end(s);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(head);
}

void cluster_stream_close(struct cluster_stream *s)
{
	if (!s)
		return;
	struct cluster *c = s->c;
	char ctl[200];
	snprintf(ctl, sizeof(ctl), "%s.ctl", s->inbox);
	struct err e = {0};
	bus_publish(c->bus, ctl, "stop", 4, &e);
	bus_unsubscribe(s->sub);
	pthread_mutex_lock(&c->relay_lock);
	for (struct cluster_stream **p = &c->relays_in; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&c->relay_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->pending);
	free(s);
}

enum err_code cluster_stream_open(struct cluster *c, const char *node,
				  const struct cluster_http *req, struct cluster_reply *head_out,
				  struct cluster_stream **out, struct err *err)
{
	memset(head_out, 0, sizeof(*head_out));
	*out = NULL;
	struct cluster_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(err, ERR_NOMEM, "out of memory");
	s->c = c;
	pthread_mutex_init(&s->lock, NULL);
	s->heard_ms = cluster_mono_ms();
	bus_inbox(c->bus, s->inbox, sizeof(s->inbox));
	enum err_code rc = bus_subscribe(c->bus, s->inbox, NULL, on_relay_msg, s, &s->sub, err);
	if (rc) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return rc;
	}
	pthread_mutex_lock(&c->relay_lock);
	s->next = c->relays_in;
	c->relays_in = s;
	pthread_mutex_unlock(&c->relay_lock);
	json_t *h = json_object();
	for (const char *const *p = req->headers; p && p[0] && p[1]; p += 2)
		json_object_set_new(h, p[0], json_string(p[1]));
	json_t *head = json_pack("{s:s, s:s, s:o, s:s, s:s}", "m", "GET", "p", req->target, "h",
				 h, "from", c->node, "inbox", s->inbox);
	size_t n = 0;
	char *msg = head ? cluster_envelope(head, NULL, 0, &n) : NULL;
	json_decref(head);
	char subject[128];
	snprintf(subject, sizeof(subject), "theater.node.%s.sse", node);
	uint8_t *reply = NULL;
	size_t rlen = 0;
	rc = msg ? bus_request(c->bus, subject, msg, n, 15000, &reply, &rlen, err)
		 : err_set(err, ERR_NOMEM, "out of memory");
	free(msg);
	if (rc && (rc == ERR_UNAVAILABLE || rc == ERR_TIMEOUT)) {
		char why[ERR_MSG_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		err_set(err, rc, "node '%s' did not answer (%.300s)", node, why);
	}
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *rh = rc ? NULL : cluster_unwrap(reply, rlen, &body, &blen);
	int status = (int)json_integer_value(json_object_get(rh, "s"));
	if (!rc && json_is_true(json_object_get(rh, "full"))) {
		head_out->status = 0;    /* the owner relays too many: go there */
	} else if (!rc && (!rh || status < 100 || status > 599)) {
		rc = err_set(err, ERR_UNAVAILABLE, "node '%s' answered something that is not a "
			     "relayed stream", node);
	} else if (!rc) {
		head_out->status = status;
		head_out->headers = json_incref(json_object_get(rh, "h"));
		if (!head_out->headers)
			head_out->headers = json_object();
		head_out->body = malloc(blen + 1);
		if (head_out->body) {
			memcpy(head_out->body, body, blen);
			head_out->body[blen] = '\0';
			head_out->len = blen;
		}
		if (json_is_true(json_object_get(rh, "stream")))
			*out = s;
	}
	json_decref(rh);
	free(reply);
	if (!*out)
		cluster_stream_close(s);
	if (rc)
		cluster_reply_release(head_out);
	return rc;
}

void cluster_stream_attach(struct cluster_stream *s, cluster_stream_data_fn on_data,
			   cluster_stream_end_fn on_end, void *user)
{
	pthread_mutex_lock(&s->lock);
	s->on_data = on_data;
	s->on_end = on_end;
	s->user = user;
	if (s->npending && on_data(user, s->pending, s->npending))
		s->ended = 1;
	free(s->pending);
	s->pending = NULL;
	s->npending = 0;
	if (s->ended)
		tell_end(s);
	pthread_mutex_unlock(&s->lock);
}

/* ---- every beat ---- */

void relay_tick(struct cluster *c)
{
	int64_t now = cluster_mono_ms();
	pthread_mutex_lock(&c->relay_lock);
	if (now - c->relay_alive_ms < RELAY_ALIVE_MS) {
		pthread_mutex_unlock(&c->relay_lock);
		return;
	}
	c->relay_alive_ms = now;
	for (struct cluster_stream *s = c->relays_in; s; s = s->next) {
		char ctl[200];
		snprintf(ctl, sizeof(ctl), "%s.ctl", s->inbox);
		struct err e = {0};
		bus_publish(c->bus, ctl, "alive", 5, &e);
		pthread_mutex_lock(&s->lock);
		if (!s->ended && now - s->heard_ms > RELAY_SILENT_MS) {
			log_warn("cluster", "a relayed stream heard nothing for %d s: ended (the "
				 "client resumes)", RELAY_SILENT_MS / 1000);
			tell_end(s);
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&c->relay_lock);
}

enum err_code relay_start(struct cluster *c, struct err *err)
{
	char subject[128];
	snprintf(subject, sizeof(subject), "theater.node.%s.sse", c->node);
	return bus_subscribe(c->bus, subject, NULL, on_sse, c, &c->sse_sub, err);
}

void relay_stop(struct cluster *c)
{
	bus_unsubscribe(c->sse_sub);
	c->sse_sub = NULL;
	/* the relays see `leaving` within a second and end */
	for (int i = 0; i < 50 && __atomic_load_n(&c->relays_out, __ATOMIC_ACQUIRE); i++)
		usleep(50000);
}
