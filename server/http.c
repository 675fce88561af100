/* http.c - the libmicrohttpd daemon: start and stop, the access handler that walks a
 * request through its phases, and the ping timer thread.
 *
 * A request goes through the access handler several times:
 *   1. headers in (PH_HEADERS): copy what the handler may read later, check header
 *      size, framing (smuggling), path encoding, Content-Length against body_limit();
 *      errors are answered right away (MHD then discards the body and closes the
 *      connection);
 *   2. body pieces (PH_BODY), appended up to the limit; past it (chunked uploads) the
 *      rest is drained (PH_DISCARD, bounded) and answered 413 at the end;
 *   3. the final call: handle() runs; if the answer is already there it is queued now,
 *      on this second-or-later call, so keep-alive works; otherwise the connection is
 *      suspended (PH_WAITING) and resumed by http_respond() from any thread, which
 *      makes MHD call us once more to queue it.
 * Queuing a normal answer on the first call would make MHD close the connection.
 *
 * Stop order (STYLE 16): refuse new work, wake every suspended connection (503 for
 * pending requests, end for streams), give the answers a moment to leave, then stop
 * the daemon, which must never see a suspended connection.
 */
#include "server/http_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "src/util/deadline.h"
#include "src/util/log.h"

#define DEF_HOST "127.0.0.1"
#define DEF_THREADS 2
#define DEF_TIMEOUT_S 60
#define DEF_MAX_CONNS 1024
#define DEF_PER_IP 256
#define DEF_CONN_MEMORY (32 * 1024)
#define DEF_HEADER_BYTES (16 * 1024)
#define DEF_QUERY_PARAMS 64
#define MEMORY_INCREMENT 1024
#define LISTEN_BACKLOG 511
#define TIMER_MAX_MS 1000
#define STOP_GRACE_MS 1000
/* An over-limit chunked body is drained up to this many more bytes so that the
 * client can read its 413; a client that keeps sending is disconnected. */
#define DISCARD_MAX (1024 * 1024)

void http_lock(struct http_server *s)
{
	if (pthread_mutex_lock(&s->lock))
		abort();
}

void http_unlock(struct http_server *s)
{
	if (pthread_mutex_unlock(&s->lock))
		abort();
}

void http_mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

int64_t http_ms_since(const struct timespec *then, const struct timespec *now)
{
	return (int64_t)(now->tv_sec - then->tv_sec) * 1000 +
	       (now->tv_nsec - then->tv_nsec) / 1000000;
}

bool http_server_unref_locked(struct http_server *s)
{
	assert(s->refs > 0);
	return --s->refs == 0;
}

void http_server_free_(struct http_server *s)
{
	pthread_cond_destroy(&s->timer_cond);
	pthread_cond_destroy(&s->quiet_cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- the request life cycle (MHD threads) ---- */

static void pending_link_locked(struct http_server *s, struct http_request *r)
{
	r->prev = NULL;
	r->next = s->pending;
	if (s->pending)
		s->pending->prev = r;
	s->pending = r;
	r->in_pending = true;
}

static void pending_unlink_locked(struct http_server *s, struct http_request *r)
{
	if (!r->in_pending)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		s->pending = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->in_pending = false;
}

static enum MHD_Result queue(struct http_request *r, struct MHD_Connection *c,
			     struct MHD_Response *m, unsigned status)
{
	r->phase = PH_DONE;
	if (!m)
		return MHD_NO;
	enum MHD_Result rc = MHD_queue_response(c, status, m);
	MHD_destroy_response(m);
	return rc;
}

static enum MHD_Result reject(struct http_request *r, struct MHD_Connection *c, int status,
			      enum err_code code, const char *detail)
{
	return queue(r, c, http_problem_response_(r->srv, status, code, detail), (unsigned)status);
}

/* The 413's detail: the limit, or that the route takes no body at all. */
static void too_large_detail(char *d, size_t size, size_t limit)
{
	if (limit)
		snprintf(d, size, "request body exceeds %zu bytes", limit);
	else
		snprintf(d, size, "this route takes no request body");
}

/* Content-Length above limit? A malformed value is left to MHD, which refuses it. */
static bool content_length_over(const char *v, size_t limit)
{
	char *end = NULL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (end == v || errno)
		return errno == ERANGE;
	return n > limit;
}

static size_t header_count(const struct http_request *r, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nheaders; i++)
		n += strcasecmp(r->headers[i].name, name) == 0;
	return n;
}

/* Framing a proxy in front of us could read differently (request smuggling, RFC
 * 9112 6.1 and 6.3). libmicrohttpd takes the first of two Content-Length headers,
 * lets Transfer-Encoding override Content-Length, and reads a body of any coding but
 * "chunked" until the connection ends; where a proxy took the other length, the
 * rest of the body would be served as a request of its own. Equal duplicates are
 * refused too: no client of ours sends them. The answer comes on the first call, so
 * MHD closes the connection and never parses what follows the headers. */
static const char *framing_error(const struct http_request *r)
{
	size_t ncl = header_count(r, "Content-Length");
	size_t nte = header_count(r, "Transfer-Encoding");
	if (ncl > 1)
		return "more than one Content-Length header";
	if (nte > 1)
		return "more than one Transfer-Encoding header";
	if (nte && ncl)
		return "both Transfer-Encoding and Content-Length headers";
	const char *te = http_request_header(r, "Transfer-Encoding");
	if (te && strcasecmp(te, "chunked") != 0)
		return "a Transfer-Encoding other than 'chunked' is not served";
	return NULL;
}

static enum MHD_Result on_headers(struct http_request *r, struct MHD_Connection *c,
				  const char *method)
{
	struct http_server *s = r->srv;
	char detail[128];
	if (http_request_capture_(r, c, method))
		return MHD_NO;
	http_lock(s);
	bool stopping = s->stopping;
	http_unlock(s);
	if (stopping)
		return reject(r, c, 503, ERR_UNAVAILABLE, "the server is stopping");
	if (r->target_len > s->cfg.max_header_bytes) {
		snprintf(detail, sizeof(detail), "request target exceeds %zu bytes",
			 s->cfg.max_header_bytes);
		return reject(r, c, 414, ERR_TOO_LARGE, detail);
	}
	if (r->header_bytes > s->cfg.max_header_bytes) {
		snprintf(detail, sizeof(detail), "request line and headers exceed %zu bytes",
			 s->cfg.max_header_bytes);
		return reject(r, c, 431, ERR_TOO_LARGE, detail);
	}
	if (r->too_many_args) {
		snprintf(detail, sizeof(detail), "more than %u query parameters",
			 s->cfg.max_query_params);
		return reject(r, c, 400, ERR_TOO_MANY_PARAMS, detail);
	}
	if (r->no_host)
		return reject(r, c, 400, ERR_INVALID, "an HTTP/1.1 request needs a Host header");
	/* RFC 9112 3.2; which of two the Host check would read is the library's choice */
	if (header_count(r, "Host") > 1)
		return reject(r, c, 400, ERR_INVALID, "more than one Host header");
	const char *framing = framing_error(r);
	if (framing)
		return reject(r, c, 400, ERR_INVALID, framing);
	if (http_request_decode_path_(r))
		return reject(r, c, 400, ERR_INVALID, "malformed percent-encoding in the path (an "
			      "escape is % and two hex digits; %00, a NUL byte, is refused)");
	if (http_request_check_query_(r))
		return reject(r, c, 400, ERR_INVALID, "malformed percent-encoding in the query (an "
			      "escape is % and two hex digits; %00, a NUL byte, is refused)");
	struct http_response *early = s->h.admit ? s->h.admit(s->h.user, r) : NULL;
	if (early) {
		unsigned st = 500;
		struct MHD_Response *m = http_response_to_mhd_(early, &st);
		return queue(r, c, m, st);
	}
	r->body_limit = s->h.body_limit ? s->h.body_limit(s->h.user, r) : 0;
	const char *cl = http_request_header(r, "Content-Length");
	if (cl && content_length_over(cl, r->body_limit)) {
		too_large_detail(detail, sizeof(detail), r->body_limit);
		return reject(r, c, 413, ERR_TOO_LARGE, detail);
	}
	r->phase = PH_BODY;
	return MHD_YES;
}

static enum MHD_Result on_discard(struct http_request *r, struct MHD_Connection *c,
				  size_t *upload_size)
{
	if (*upload_size) {
		r->discarded += *upload_size;
		*upload_size = 0;
		return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	char detail[128];
	too_large_detail(detail, sizeof(detail), r->body_limit);
	return reject(r, c, 413, ERR_TOO_LARGE, detail);
}

static enum MHD_Result on_body(struct http_request *r, struct MHD_Connection *c,
			       const char *data, size_t *upload_size)
{
	size_t n = *upload_size;
	if (n > r->body_limit - r->body.len) {
		buf_release(&r->body);
		r->phase = PH_DISCARD;
		return on_discard(r, c, upload_size);
	}
	if (buf_append(&r->body, data, n))
		return MHD_NO;
	*upload_size = 0;
	return MHD_YES;
}

/* After handle() and after every resume: queue the answer if it is there, else
 * suspend until http_respond() brings it (atomic under the lock). */
static enum MHD_Result take_or_suspend(struct http_request *r, struct MHD_Connection *c)
{
	struct http_server *s = r->srv;
	http_lock(s);
	struct MHD_Response *m = r->mresp;
	unsigned status = r->status;
	bool answered = r->answered;
	r->mresp = NULL;
	if (!answered && !s->stopping) {
		MHD_suspend_connection(c);
		r->suspended = true;
		pending_link_locked(s, r);
		http_unlock(s);
		return MHD_YES;
	}
	r->answered = true;
	http_unlock(s);
	if (!answered) {
		m = http_problem_response_(s, 503, ERR_UNAVAILABLE, "the server is stopping");
		status = 503;
	}
	return queue(r, c, m, status);
}

static enum MHD_Result on_complete(struct http_request *r, struct MHD_Connection *c)
{
	struct http_server *s = r->srv;
	r->phase = PH_WAITING;
	http_lock(s);
	bool stopping = s->stopping;
	r->app_holds = !stopping;
	http_unlock(s);
	if (stopping) /* no new work for the handler while stopping */
		return reject(r, c, 503, ERR_UNAVAILABLE, "the server is stopping");
	s->h.handle(s->h.user, r);
	return take_or_suspend(r, c);
}

/* A Connection header naming "close" (a comma-separated list of tokens). */
static bool has_close(const char *v)
{
	while (v && *v) {
		v += strspn(v, " \t,");
		size_t n = strcspn(v, " \t,");
		if (n == 5 && !strncasecmp(v, "close", 5))
			return true;
		v += n;
	}
	return false;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **ctx)
{
	struct http_request *r = *ctx;
	(void)cls, (void)url;
	if (!r)
		return MHD_NO; /* out of memory in on_uri */
	switch (r->phase) {
	case PH_HEADERS:
		/* MHD's own check answers with its header block twice (0.9.75): ours */
		r->no_host = version && !strcmp(version, MHD_HTTP_VERSION_1_1) &&
			     !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
		r->chunked = version && !strcmp(version, MHD_HTTP_VERSION_1_1) &&
			     !has_close(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								    MHD_HTTP_HEADER_CONNECTION));
		return on_headers(r, c, method);
	case PH_BODY:
		return *upload_size ? on_body(r, c, upload, upload_size) : on_complete(r, c);
	case PH_DISCARD:
		return on_discard(r, c, upload_size);
	case PH_WAITING:
		return take_or_suspend(r, c);
	case PH_DONE:
		break;
	}
	return MHD_NO;
}

/* Called once per request, with the request target as sent: the request object is
 * born here so that the raw path is kept. Freed from on_completed. */
/* Query parameters in a request target ('&'-separated pieces after '?'). */
static size_t count_params(const char *uri)
{
	const char *q = strchr(uri, '?');
	size_t n = q && q[1] ? 1 : 0;
	for (; q && *q; q++)
		n += *q == '&';
	return n;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http_server *s = cls;
	struct http_request *r = http_request_new_(s, uri);
	if (!r)
		return NULL;
	/* libmicrohttpd parses the query into the connection's memory pool right after
	 * this callback; ~950 parameters exhaust 64 KiB and the request is then never
	 * answered (issue 12, item 6). Over the limit, the query it is about to parse is
	 * cut to nothing (uri is MHD's own writable read buffer; the '?' is kept so its
	 * parser sees an empty query), and the request is refused in on_headers. */
	if (count_params(uri) > s->cfg.max_query_params) {
		r->too_many_args = true;
		char *q = strchr((char *)uri, '?');
		q[1] = '\0';
	}
	r->conn = c;
	http_lock(s);
	s->refs++;
	s->live_requests++;
	r->mhd_holds = true;
	http_unlock(s);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *r = *ctx;
	(void)c, (void)toe;
	if (!r)
		return;
	*ctx = NULL;
	http_lock(s);
	struct MHD_Response *orphan = r->mresp; /* answered but never queued */
	r->mresp = NULL;
	r->mhd_holds = false;
	r->conn = NULL;
	r->suspended = false;
	pending_unlink_locked(s, r);
	if (r->stream)
		http_stream_detach_locked(r->stream);
	s->live_requests--;
	if (s->stopping)
		pthread_cond_broadcast(&s->quiet_cond);
	bool free_srv = http_request_maybe_free_locked(r);
	http_unlock(s);
	if (orphan)
		MHD_destroy_response(orphan);
	if (free_srv) /* cannot happen: the owner's reference outlives the daemon */
		http_server_free_(s);
}

void http_deliver_(struct http_request *r, struct MHD_Response *mresp, unsigned status,
		   struct http_stream *stream, bool *delivered_out)
{
	struct http_server *s = r->srv;
	http_lock(s);
	assert(r->app_holds);
	r->app_holds = false;
	bool ok = r->conn && !r->answered;
	if (ok) {
		r->answered = true;
		r->mresp = mresp;
		r->status = status;
		if (stream)
			http_stream_attach_locked(stream, r);
		if (r->suspended) {
			r->suspended = false;
			pending_unlink_locked(s, r);
			MHD_resume_connection(r->conn);
		}
	}
	bool free_srv = http_request_maybe_free_locked(r);
	http_unlock(s);
	if (free_srv)
		http_server_free_(s);
	*delivered_out = ok;
}

/* ---- the ping timer ---- */

static void *timer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "http-timer");
	struct http_server *s = arg;
	http_lock(s);
	while (!s->timer_stop) {
		int64_t ms = http_stream_ping_due_locked(s, TIMER_MAX_MS);
		struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, ms);
		pthread_cond_timedwait(&s->timer_cond, &s->lock, &until);
	}
	http_unlock(s);
	return NULL;
}

/* ---- start ---- */

/* MHD reports both server trouble and ordinary client behaviour (a client that goes
 * away, a header too big); only the former deserves a warning. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static const char *const serious[] = {"limit", "bind", "listen", "thread", "epoll",
					      "Failed to create", "Failed to allocate", NULL};
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	enum log_level level = LOG_DEBUG;
	for (int i = 0; serious[i]; i++) {
		if (strstr(line, serious[i]))
			level = LOG_WARN;
	}
	if (strstr(line, "failed to queue error response"))
		level = LOG_DEBUG;       /* http_lib_pages.c refused that page: it said so */
	/* Keyed by the library's own format: one line per kind of trouble per window,
	 * with a count, however often it repeats (an accept() failing in a loop). */
	log_limited(fmt, level, HTTP_MODULE, "libmicrohttpd: %s", line);
}

static void apply_defaults(struct http_config *c)
{
	if (!c->threads)
		c->threads = DEF_THREADS;
	if (!c->conn_timeout_s)
		c->conn_timeout_s = DEF_TIMEOUT_S;
	if (!c->max_conns)
		c->max_conns = DEF_MAX_CONNS;
	if (!c->max_conns_per_ip)
		c->max_conns_per_ip = DEF_PER_IP;
	if (!c->conn_memory)
		c->conn_memory = DEF_CONN_MEMORY;
	if (!c->max_header_bytes)
		c->max_header_bytes = DEF_HEADER_BYTES;
	if (!c->max_query_params)
		c->max_query_params = DEF_QUERY_PARAMS;
}

static enum err_code check_config(struct http_server *s, const struct http_handler *h,
				  struct err *err)
{
	struct http_config *c = &s->cfg;
	if (!h || !h->handle)
		return err_set(err, ERR_INVALID, "http handler has no handle callback");
	if (strlen(c->host) >= sizeof(s->host))
		return err_set(err, ERR_INVALID, "listen address '%.64s...' is too long", c->host);
	if (c->threads > 256)
		return err_set(err, ERR_INVALID, "http threads %u is out of range (1-256)", c->threads);
	if (c->max_conns < c->threads)
		return err_set(err, ERR_INVALID, "max_conns %u is below the thread count %u",
			       c->max_conns, c->threads);
	if (c->conn_memory < 8192)
		return err_set(err, ERR_INVALID, "conn_memory %zu is below 8192 bytes", c->conn_memory);
	if (c->max_header_bytes > c->conn_memory / 2)
		return err_set(err, ERR_INVALID,
			       "max_header_bytes %zu must be at most half of conn_memory %zu",
			       c->max_header_bytes, c->conn_memory);
	return ERR_OK;
}

static enum err_code parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
				bool *v6_out, struct err *err)
{
	memset(ss, 0, sizeof(*ss));
	if (!strcmp(host, "localhost")) /* the one name we accept: no resolver at start */
		host = "127.0.0.1";
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*v6_out = false;
		return ERR_OK;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*v6_out = true;
		return ERR_OK;
	}
	return err_set(err, ERR_INVALID,
		       "listen address '%s' is not a numeric ip address (or 'localhost')", host);
}

static struct MHD_Daemon *start_daemon(struct http_server *s, struct sockaddr_storage *ss,
				       bool v6)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL
									: MHD_USE_AUTO;
	if (v6)
		flags |= MHD_USE_IPv6;
	const struct http_config *c = &s->cfg;
	return MHD_start_daemon(
		flags, s->cfg.port, NULL, NULL, on_access, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(c->threads > 1 ? c->threads : 0),
		MHD_OPTION_CONNECTION_TIMEOUT, c->conn_timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, c->max_conns,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_conns_per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->conn_memory,
		MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)MEMORY_INCREMENT,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)LISTEN_BACKLOG,
		/* 0: a missing Host is ours to answer (on_access), as problem+json */
		MHD_OPTION_STRICT_FOR_CLIENT, 0,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_END);
}

static enum err_code init_sync(struct http_server *s, struct err *err)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca))
		return err_set(err, ERR_NOMEM, "cannot create condition attributes");
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&s->timer_cond, &ca);
	if (!rc && (rc = pthread_cond_init(&s->quiet_cond, &ca)))
		pthread_cond_destroy(&s->timer_cond);
	pthread_condattr_destroy(&ca);
	if (rc)
		return err_set(err, ERR_NOMEM, "cannot create condition variables");
	if (pthread_mutex_init(&s->lock, NULL)) {
		pthread_cond_destroy(&s->timer_cond);
		pthread_cond_destroy(&s->quiet_cond);
		return err_set(err, ERR_NOMEM, "cannot create mutex");
	}
	return ERR_OK;
}

/* Copies and checks the configuration; resolves the listen address. */
static enum err_code prepare(struct http_server *s, const struct http_config *cfg,
			     const struct http_handler *h, struct sockaddr_storage *ss, bool *v6,
			     struct err *err)
{
	enum err_code rc;
	s->cfg = *cfg;
	if (!s->cfg.host)
		s->cfg.host = DEF_HOST;
	apply_defaults(&s->cfg);
	if ((rc = check_config(s, h, err)))
		return rc;
	snprintf(s->host, sizeof(s->host), "%s", s->cfg.host);
	s->cfg.host = s->host;
	s->h = *h;
	return parse_addr(s->host, s->cfg.port, ss, v6, err);
}

enum err_code http_server_start(const struct http_config *cfg, const struct http_handler *h,
				struct http_server **out, struct err *err)
{
	struct sockaddr_storage ss;
	bool v6 = false, sync_ready = false;
	enum err_code rc;
	*out = NULL;
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(err, ERR_NOMEM, "cannot allocate http server");
	if ((rc = prepare(s, cfg, h, &ss, &v6, err)) || (rc = init_sync(s, err)))
		goto fail;
	sync_ready = true;
	s->refs = 1;
	s->watch_epfd = s->watch_evfd = -1;
	s->send_epfd = s->send_evfd = -1;
	static int pages_said;
	if (!http_lib_pages_ready_() && !__atomic_exchange_n(&pages_said, 1, __ATOMIC_RELAXED))
		log_warn("http", "libmicrohttpd's own error pages (a malformed request, headers "
			 "too large) cannot be replaced by problem+json with this build of the "
			 "library: they stay HTML");
	http_stream_watch_start_(s);   /* before the daemon's threads read its fields */
	http_stream_sender_start_(s);
	s->daemon = start_daemon(s, &ss, v6);
	if (!s->daemon) {
		rc = err_set(err, ERR_IO, "cannot listen on '%s' port %u: address in use or not local",
			     s->host, (unsigned)s->cfg.port);
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : s->cfg.port;
	if (pthread_create(&s->timer, NULL, timer_main, s)) {
		rc = err_set(err, ERR_NOMEM, "cannot start the http timer thread");
		goto fail;
	}
	s->timer_started = true;
	*out = s;
	return ERR_OK;
fail:
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	if (sync_ready) {
		http_stream_watch_stop_(s);
		http_stream_sender_stop_(s);
		http_server_free_(s);
	} else {
		free(s);
	}
	return rc;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

/* ---- stop ---- */

/* Answers every suspended request that has no answer with 503 and resumes it. The
 * response is built before taking the lock (problem() is the handler's code). */
static void answer_pending(struct http_server *s)
{
	for (;;) {
		struct MHD_Response *m =
			http_problem_response_(s, 503, ERR_UNAVAILABLE, "the server is stopping");
		http_lock(s);
		struct http_request *r = s->pending;
		if (r) {
			pending_unlink_locked(s, r);
			r->answered = true;
			r->mresp = m;
			r->status = 503;
			m = NULL;
			r->suspended = false;
			MHD_resume_connection(r->conn);
		}
		http_unlock(s);
		if (!r) {
			if (m)
				MHD_destroy_response(m);
			return;
		}
	}
}

/* Waits (bounded) until the answers and stream ends handed out above have left. */
static void wait_quiet(struct http_server *s)
{
	struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, STOP_GRACE_MS);
	http_lock(s);
	while (s->live_requests > 0 || s->streams) {
		if (pthread_cond_timedwait(&s->quiet_cond, &s->lock, &until) == ETIMEDOUT)
			break;
	}
	http_unlock(s);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	http_lock(s);
	s->stopping = true;
	s->timer_stop = true;
	pthread_cond_broadcast(&s->timer_cond);
	http_unlock(s);
	if (s->timer_started)
		pthread_join(s->timer, NULL);
	http_stream_watch_stop_(s);
	/* No MHD_quiesce_daemon: with a thread pool on epoll it removes the listen
	 * socket from every worker's epoll set from this thread while a worker at its
	 * connection limit may do the same, and libmicrohttpd 0.9.75 then aborts
	 * ("Failed to remove listen FD from epoll set"). Connections that arrive
	 * while stopping are answered 503 (s->stopping); MHD_stop_daemon closes the
	 * listen socket. */
	answer_pending(s);
	http_lock(s);
	http_stream_stop_all_locked(s);
	http_unlock(s);
	wait_quiet(s);
	http_stream_sender_stop_(s);
	MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
	http_lock(s);
	bool free_srv = http_server_unref_locked(s);
	http_unlock(s);
	if (free_srv)
		http_server_free_(s);
}
