/* test_http.c - the HTTP layer (server/http.h) end to end: a real server on
 * 127.0.0.1 with a random port, driven with libcurl and raw sockets.
 *
 * The test handler routes on the decoded path:
 *   /echo...   answers at once with what the request accessors saw
 *   /async     a worker thread answers after ?ms= milliseconds
 *   /gate      a worker thread answers once the test opens the gate
 *   /hold      is kept unanswered (the test answers it, or stops the server)
 *   /stream    starts an SSE stream the test writes to
 * No test asserts a duration: waits have generous deadlines that only turn a hang
 * into a failure.
 */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "src/util/buf.h"

#define WAIT_S 20
#define NWORKERS 4
#define MAXJOBS 256

struct job {
	struct http_request *req;
	unsigned ms;
	bool gate;
};

struct fixture {
	struct http_server *srv;
	uint16_t port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t limit;
	int handle_calls;
	int closes;
	int bad; /* unexpected things seen on server threads (no asserts there) */
	struct http_stream *stream;
	struct http_request *held;
	struct http_stream_config scfg;
	struct buf client; /* bytes received by the curl stream client */
	bool gate_open;
	/* the worker pool */
	pthread_t workers[NWORKERS];
	struct job jobs[MAXJOBS];
	size_t head, tail;
	bool quit;
};

/* ---- small helpers ---- */

static void fx_lock(struct fixture *f)
{
	pthread_mutex_lock(&f->mu);
}

static void fx_unlock(struct fixture *f)
{
	pthread_mutex_unlock(&f->mu);
}

/* Waits until pred holds (checked under f->mu) or WAIT_S pass; returns pred. The
 * lock is never held when this returns, so a failed assert cannot leave it held for
 * the server threads that teardown still needs. */
static bool fx_wait(struct fixture *f, bool (*pred)(struct fixture *f, const void *arg),
		    const void *arg)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_S;
	fx_lock(f);
	bool ok = pred(f, arg);
	while (!ok) {
		int rc = pthread_cond_timedwait(&f->cv, &f->mu, &until);
		ok = pred(f, arg);
		if (rc == ETIMEDOUT)
			break;
	}
	fx_unlock(f);
	return ok;
}

/* A copy of what the stream client received so far. */
static char *client_copy(struct fixture *f)
{
	fx_lock(f);
	char *c = strdup(f->client.data ? f->client.data : "");
	fx_unlock(f);
	assert_non_null(c);
	return c;
}

static bool pred_closes(struct fixture *f, const void *arg)
{
	return f->closes >= *(const int *)arg;
}

static bool pred_stream(struct fixture *f, const void *arg)
{
	(void)arg;
	return f->stream != NULL;
}

static bool pred_held(struct fixture *f, const void *arg)
{
	(void)arg;
	return f->held != NULL;
}

static bool pred_client_has(struct fixture *f, const void *arg)
{
	return f->client.data && strstr(f->client.data, (const char *)arg);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the handler ---- */

static void respond_text(struct http_request *r, int status, const char *text)
{
	struct http_response *resp = http_response_new(status);
	http_response_header(resp, "Content-Type", "text/plain");
	http_response_header(resp, "X-Test", "yes");
	http_response_body(resp, text, strlen(text));
	http_respond(r, resp);
}

static void respond_echo(struct http_request *r)
{
	size_t blen;
	const uint8_t *body = http_request_body(r, &blen);
	const char *x = http_request_query(r, "x"), *y = http_request_query(r, "y");
	const char *flag = http_request_query(r, "flag"), *h = http_request_header(r, "x-MiXeD");
	char *text = tu_fmt("method=%s\npath=%s\nraw=%s\nx=%s\ny=%s\nflag=%s\nnone=%s\nhdr=%s\n"
			    "peer=%s\nloopback=%d\nbody=%zu:%.*s\n",
			    http_request_method(r), http_request_path(r), http_request_raw_path(r),
			    x ? x : "(null)", y ? y : "(null)", flag ? flag : "(null)",
			    http_request_query(r, "none") ? "set" : "(null)", h ? h : "(null)",
			    http_request_peer(r), http_request_peer_is_loopback(r), blen,
			    (int)(blen > 64 ? 64 : blen), (const char *)body);
	respond_text(r, 200, text);
	free(text);
}

static void on_close(void *user, struct http_stream *s)
{
	struct fixture *f = user;
	/* Writes after the end are harmless and refused. */
	bool ok = http_stream_write(s, "x", 1) == ERR_CONFLICT && http_stream_closed(s);
	fx_lock(f);
	f->bad += !ok;
	f->closes++;
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
}

static void start_stream(struct fixture *f, struct http_request *r)
{
	struct http_response *head = http_response_new(200);
	http_response_header(head, "Content-Type", "text/event-stream");
	http_response_header(head, "Cache-Control", "no-cache");
	struct http_stream *st = NULL;
	struct err e = {0};
	enum err_code rc = http_respond_stream(r, head, &f->scfg, &st, &e);
	if (rc == ERR_OK)
		rc = http_stream_write(st, ": hello\n\n", 9);
	fx_lock(f);
	f->bad += rc != ERR_OK || f->stream != NULL;
	if (!f->stream)
		f->stream = st;
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
}

static void submit(struct fixture *f, struct http_request *r, unsigned ms, bool gate)
{
	fx_lock(f);
	f->jobs[f->tail++ % MAXJOBS] = (struct job){r, ms, gate};
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
}

static void t_handle(void *user, struct http_request *r)
{
	struct fixture *f = user;
	const char *p = http_request_path(r);
	fx_lock(f);
	f->handle_calls++;
	fx_unlock(f);
	if (!strcmp(p, "/stream")) {
		start_stream(f, r);
	} else if (!strcmp(p, "/hold")) {
		fx_lock(f);
		f->held = r;
		pthread_cond_broadcast(&f->cv);
		fx_unlock(f);
	} else if (!strcmp(p, "/async")) {
		const char *ms = http_request_query(r, "ms");
		submit(f, r, ms ? (unsigned)atoi(ms) : 0, false);
	} else if (!strcmp(p, "/gate")) {
		submit(f, r, 0, true);
	} else if (!strcmp(p, "/created")) {
		struct http_response *resp = http_response_new(201);
		http_response_header(resp, "Location", "/things/1");
		http_response_header(resp, "X-Bad", "a\r\nInjected: yes");
		http_respond(r, resp);
	} else {
		respond_echo(r);
	}
}

static size_t t_body_limit(void *user, struct http_request *r)
{
	struct fixture *f = user;
	(void)r;
	return f->limit;
}

static char *t_problem(void *user, int status, const char *code, const char *detail)
{
	(void)user;
	return tu_fmt("{\"status\":%d,\"code\":\"%s\",\"detail\":\"%s\"}", status, code, detail);
}

static void *worker_main(void *arg)
{
	struct fixture *f = arg;
	fx_lock(f);
	for (;;) {
		while (!f->quit && f->head == f->tail)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->head == f->tail)
			break;
		struct job j = f->jobs[f->head++ % MAXJOBS];
		while (j.gate && !f->gate_open && !f->quit)
			pthread_cond_wait(&f->cv, &f->mu);
		fx_unlock(f);
		sleep_ms(j.ms);
		const char *n = http_request_query(j.req, "n");
		char text[64];
		snprintf(text, sizeof(text), "async:%s", n ? n : "-");
		respond_text(j.req, 200, text);
		fx_lock(f);
	}
	fx_unlock(f);
	return NULL;
}

/* ---- fixture ---- */

static void fx_stop(struct fixture *f);

/* NULL when the server cannot start (cfg asks for something the host lacks). */
static struct fixture *fx_try_start(const struct http_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	buf_init(&f->client, 0);
	f->limit = 1024;
	f->scfg = (struct http_stream_config){.max_buffered = 64 * 1024, .ping_interval_s = 1,
					      .on_close = on_close, .user = f};
	for (int i = 0; i < NWORKERS; i++)
		assert_int_equal(pthread_create(&f->workers[i], NULL, worker_main, f), 0);
	struct http_config def = {.host = "127.0.0.1"};
	struct http_handler h = {.user = f, .body_limit = t_body_limit, .handle = t_handle,
				 .problem = t_problem};
	struct err e = {0};
	if (http_server_start(cfg ? cfg : &def, &h, &f->srv, &e) != ERR_OK) {
		print_message("http_server_start: %s\n", e.msg);
		fx_stop(f);
		return NULL;
	}
	f->port = http_server_port(f->srv);
	assert_true(f->port > 0);
	return f;
}

static struct fixture *fx_start(const struct http_config *cfg)
{
	struct fixture *f = fx_try_start(cfg);
	assert_non_null(f);
	return f;
}

static int calls(struct fixture *f)
{
	fx_lock(f);
	int n = f->handle_calls;
	fx_unlock(f);
	return n;
}

static int closes(struct fixture *f)
{
	fx_lock(f);
	int n = f->closes;
	fx_unlock(f);
	return n;
}

static void fx_stop(struct fixture *f)
{
	http_server_stop(f->srv);
	fx_lock(f);
	f->quit = true;
	f->gate_open = true;
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(f->workers[i], NULL);
	assert_int_equal(f->bad, 0);
	http_stream_release(f->stream);
	buf_release(&f->client);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static int group_setup(void **state)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	(void)state;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

static int setup(void **state)
{
	*state = fx_start(NULL);
	return 0;
}

static int teardown(void **state)
{
	fx_stop(*state);
	return 0;
}

/* ---- curl helpers ---- */

static size_t collect(char *data, size_t size, size_t n, void *user)
{
	buf_append(user, data, size * n);
	return size * n;
}

static CURL *easy(struct fixture *f, const char *path, struct buf *out)
{
	CURL *h = curl_easy_init();
	assert_non_null(h);
	char *url = tu_fmt("http://127.0.0.1:%u%s", (unsigned)f->port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)WAIT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	return h;
}

/* GET (or POST when body) path; returns the status, fills out. */
static long fetch(struct fixture *f, const char *path, const char *body, size_t blen,
		  struct curl_slist *hdrs, struct buf *out)
{
	CURL *h = easy(f, path, out);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	}
	if (hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return status;
}

/* ---- raw socket helpers ---- */

static int tcp_connect(uint16_t port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct timeval tv = {WAIT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until `needle` shows up, the peer closes, or an error; returns what came. */
static char *recv_until(int fd, const char *needle)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	char tmp[4096];
	for (;;) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0 || buf_append(&b, tmp, (size_t)n))
			break;
		if (needle && strstr(b.data, needle))
			break;
	}
	return buf_steal(&b, NULL);
}

/* ---- tests ---- */

static void test_keepalive(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	CURL *h = easy(f, "/echo", &out);
	long status = 0, connects = -1;
	for (int i = 0; i < 3; i++) {
		buf_reset(&out);
		assert_int_equal(curl_easy_perform(h), CURLE_OK);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
		assert_int_equal(status, 200);
		assert_int_equal(connects, i == 0 ? 1 : 0);
		assert_non_null(strstr(out.data, "path=/echo\n"));
	}
	/* An asynchronous answer keeps the connection too. */
	char *url = tu_fmt("http://127.0.0.1:%u/async?ms=10&n=7", (unsigned)f->port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url);
	buf_reset(&out);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0);
	assert_string_equal(out.data, "async:7");
	curl_easy_cleanup(h);
	buf_release(&out);
}

static void test_request_accessors(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	struct curl_slist *hdrs = curl_slist_append(NULL, "X-Mixed: Value 1");
	long st = fetch(f, "/echo/a%20b/c%2Fd?x=1&y=hello%20world&flag", "hi", 2, hdrs, &out);
	curl_slist_free_all(hdrs);
	assert_int_equal(st, 200);
	const char *want[] = {"method=POST\n", "path=/echo/a b/c/d\n", "raw=/echo/a%20b/c%2Fd\n",
			      "x=1\n", "y=hello world\n", "flag=\n", "none=(null)\n",
			      "hdr=Value 1\n", "peer=127.0.0.1\n", "loopback=1\n", "body=2:hi\n"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(out.data, want[i]))
			fail_msg("missing '%s' in:\n%s", want[i], out.data);
	}
	/* A NUL or a malformed escape in the path is refused before the handler. */
	const char *bad[] = {"/echo/a%00b", "/echo/%zz", "/echo/%4"};
	for (size_t i = 0; i < 3; i++) {
		buf_reset(&out);
		assert_int_equal(fetch(f, bad[i], NULL, 0, NULL, &out), 400);
		assert_non_null(strstr(out.data, "\"code\":\"invalid_request\""));
	}
	assert_int_equal(calls(f), 1);
	buf_release(&out);
}

static void test_response_headers(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /created HTTP/1.1\r\nHost: x\r\n\r\n");
	char *resp = recv_until(fd, "\r\n\r\n");
	close(fd);
	assert_non_null(strstr(resp, "HTTP/1.1 201"));
	assert_non_null(strstr(resp, "Location: /things/1\r\n"));
	assert_null(strstr(resp, "Injected"));
	free(resp);
	buf_release(&out);
}

static void test_413_content_length(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	size_t big = 64 * 1024;
	char *body = malloc(big);
	memset(body, 'a', big);
	assert_int_equal(fetch(f, "/echo", body, big, NULL, &out), 413);
	assert_non_null(strstr(out.data, "\"code\":\"too_large\""));
	/* Same with a raw client that sends no Expect: the answer comes first. */
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
	char *resp = recv_until(fd, "}");
	close(fd);
	assert_non_null(strstr(resp, "HTTP/1.1 413"));
	assert_non_null(strstr(resp, "application/problem+json"));
	free(resp);
	assert_int_equal(calls(f), 0);
	/* At the limit is fine, and the server still serves. */
	buf_reset(&out);
	assert_int_equal(fetch(f, "/echo", body, f->limit, NULL, &out), 200);
	assert_non_null(strstr(out.data, "body=1024:aaaa"));
	assert_int_equal(calls(f), 1);
	free(body);
	buf_release(&out);
}

struct upload {
	size_t left;
};

static size_t upload_read(char *dst, size_t size, size_t n, void *user)
{
	struct upload *u = user;
	size_t k = size * n < u->left ? size * n : u->left;
	memset(dst, 'b', k);
	u->left -= k;
	return k;
}

static long chunked_post(struct fixture *f, size_t len, struct buf *out)
{
	CURL *h = easy(f, "/echo", out);
	struct upload u = {len};
	struct curl_slist *hdrs = curl_slist_append(NULL, "Transfer-Encoding: chunked");
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	long status = 0;
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	return status;
}

static void test_413_chunked(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(chunked_post(f, 200 * 1024, &out), 413);
	assert_non_null(strstr(out.data, "\"code\":\"too_large\""));
	assert_int_equal(calls(f), 0);
	buf_reset(&out);
	assert_int_equal(chunked_post(f, 1000, &out), 200);
	assert_non_null(strstr(out.data, "body=1000:bbbb"));
	assert_int_equal(calls(f), 1);
	buf_release(&out);
}

static void test_431_header_too_large(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	buf_init(&out, 0);
	size_t n = 20 * 1024;
	char *line = malloc(n + 16);
	memcpy(line, "X-Big: ", 7);
	memset(line + 7, 'h', n);
	line[7 + n] = '\0';
	struct curl_slist *hdrs = curl_slist_append(NULL, line);
	assert_int_equal(fetch(f, "/echo", NULL, 0, hdrs, &out), 431);
	assert_non_null(strstr(out.data, "\"code\":\"too_large\""));
	curl_slist_free_all(hdrs);
	free(line);
	/* Far beyond the connection memory: MHD's own refusal, still no handler call. */
	n = 200 * 1024;
	line = malloc(n + 16);
	memcpy(line, "X-Big: ", 7);
	memset(line + 7, 'h', n);
	line[7 + n] = '\0';
	hdrs = curl_slist_append(NULL, line);
	buf_reset(&out);
	long st = fetch(f, "/echo", NULL, 0, hdrs, &out);
	assert_true(st == 431 || st == 0);
	curl_slist_free_all(hdrs);
	free(line);
	/* A request target alone over the limit: 414. */
	char *path = malloc(20 * 1024 + 16);
	strcpy(path, "/echo?q=");
	memset(path + 8, 'q', 20 * 1024);
	path[8 + 20 * 1024] = '\0';
	buf_reset(&out);
	assert_int_equal(fetch(f, path, NULL, 0, NULL, &out), 414);
	assert_non_null(strstr(out.data, "\"code\":\"too_large\""));
	free(path);
	assert_int_equal(calls(f), 0);
	buf_reset(&out);
	assert_int_equal(fetch(f, "/echo", NULL, 0, NULL, &out), 200);
	buf_release(&out);
}

/* One request libmicrohttpd answers by itself (before any callback), sent raw;
 * what came back before the server closed the connection. */
static char *library_answer(struct fixture *f, const char *head, size_t pad)
{
	int fd = tcp_connect(f->port, 0);
	size_t n = strlen(head);
	(void)!send(fd, head, n, MSG_NOSIGNAL);
	if (pad) {                   /* a header or target far beyond the connection memory */
		char *big = malloc(pad);
		memset(big, 'a', pad);
		(void)!send(fd, big, pad, MSG_NOSIGNAL);
		(void)!send(fd, "\r\n\r\n", 4, MSG_NOSIGNAL);
		free(big);
	}
	char *got = recv_until(fd, NULL);
	close(fd);
	return got;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* libmicrohttpd 0.9.75 answers these itself, from inside its header parser, with
 * HTML pages of its own (server/http_lib_pages.c): each must come as problem+json
 * with one status line, or, for a malformed Content-Length (whose page the
 * library sends with its header block twice), as a connection closed without a
 * byte. No handler is called, and the server goes on serving. */
static void test_library_pages(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *head;
		size_t pad;
		const char *status, *code;   /* status NULL: closed without an answer */
	} cases[] = {
		{"GET /echo HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 0, "400",
		 "invalid_request"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "ZZ\r\nabc\r\n0\r\n\r\n", 0, "400", "invalid_request"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n", 0, "413", "too_large"},
		{"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 0, "505", "unsupported"},
		{"GET /echo HTTP/0.9\r\nHost: x\r\n\r\n", 0, "505", "unsupported"},
		{"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ", 200 * 1024, "431", "too_large"},
		{"GET /echo?", 200 * 1024, "414", "too_large"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 0, NULL, NULL},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 0, NULL,
		 NULL},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n"
		 "\r\n", 0, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = library_answer(f, cases[i].head, cases[i].pad);
		const char *body = strstr(got, "\r\n\r\n");
		printf("# case %zu: %.*s | %s\n", i, (int)strcspn(got, "\r"), got,
		       body ? body + 4 : "(closed without an answer)");
		assert_null(strstr(got, "<html"));
		if (!cases[i].status) {
			assert_string_equal(got, "");
		} else {
			char *line = tu_fmt("HTTP/1.1 %s ", cases[i].status);
			char *code = tu_fmt("\"code\":\"%s\"", cases[i].code);
			assert_true(strncmp(got, line, strlen(line)) == 0);
			assert_int_equal(count_of(got, "\r\nDate: "), 1);   /* one header block */
			assert_non_null(strstr(got, "Content-Type: application/problem+json"));
			assert_non_null(strstr(got, code));
			free(line);
			free(code);
		}
		free(got);
	}
	assert_int_equal(calls(f), 0);
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(fetch(f, "/echo", NULL, 0, NULL, &out), 200);
	buf_release(&out);
}

/* Message framing a proxy in front could read differently from us (request
 * smuggling, RFC 9112 6.1 and 6.3): two Content-Length headers, a Transfer-Encoding
 * other than "chunked", or both headers. Each is refused with 400 and the connection
 * closed, so what follows the headers is never read as a request of its own: the
 * bytes after "Content-Length: 0" below are a complete request that must get no
 * answer. Before, the first Content-Length won and the smuggled request was served;
 * an unknown coding waited 60 s for the end of the connection. */
static void test_framing_refused(void **state)
{
	struct fixture *f = *state;
	static const char smuggled[] = "GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
	char *two_cl = tu_fmt("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
			      "Content-Length: %zu\r\n\r\n%s", strlen(smuggled), smuggled);
	char *same_cl = tu_fmt("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			       "Content-Length: 3\r\n\r\nabc%s", smuggled);
	const char *heads[] = {
		two_cl,
		same_cl,
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
		"3\r\nabc\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 0\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nabc",
		"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		int fd = tcp_connect(f->port, 0);
		send_str(fd, heads[i]);
		char *got = recv_until(fd, NULL);   /* to the end of the connection */
		close(fd);
		printf("# case %zu: %.*s\n", i, (int)strcspn(got, "\r"), got);
		assert_true(strncmp(got, "HTTP/1.1 400 ", 13) == 0);
		assert_int_equal(count_of(got, "HTTP/1.1 "), 1);   /* nothing smuggled */
		assert_non_null(strstr(got, "Content-Type: application/problem+json"));
		assert_non_null(strstr(got, "\"code\":\"invalid_request\""));
		assert_null(strstr(got, "smuggled"));
		free(got);
	}
	free(two_cl);
	free(same_cl);
	assert_int_equal(calls(f), 0);
	/* A plain chunked body (any case of the coding's name) still works. */
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
		     "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
	char *got = recv_until(fd, NULL);
	close(fd);
	assert_true(strncmp(got, "HTTP/1.1 200 ", 13) == 0);
	assert_non_null(strstr(got, "body=3:abc"));
	free(got);
	assert_int_equal(calls(f), 1);
}

static void test_async_does_not_block(void **state)
{
	struct fixture *f = *state;
	struct buf gated, out;
	buf_init(&gated, 0);
	buf_init(&out, 0);
	CURLM *m = curl_multi_init();
	CURL *g = easy(f, "/gate?n=g", &gated);
	curl_multi_add_handle(m, g);
	int running = 1;
	/* Drive the gated request until the handler has it... */
	for (int i = 0; i < 2000 && calls(f) < 1; i++) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	assert_int_equal(calls(f), 1);
	/* ...then, while it is pending, others on other connections are answered. */
	assert_int_equal(fetch(f, "/echo", NULL, 0, NULL, &out), 200);
	buf_reset(&out);
	assert_int_equal(fetch(f, "/async?ms=100&n=d", NULL, 0, NULL, &out), 200);
	assert_string_equal(out.data, "async:d");
	assert_int_equal(gated.len, 0);
	fx_lock(f);
	f->gate_open = true;
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
	time_t end = time(NULL) + WAIT_S;
	while (running && time(NULL) < end) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 50, NULL);
	}
	assert_int_equal(running, 0);
	long status = 0;
	curl_easy_getinfo(g, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	assert_string_equal(gated.data, "async:g");
	curl_multi_remove_handle(m, g);
	curl_easy_cleanup(g);
	curl_multi_cleanup(m);
	buf_release(&gated);
	buf_release(&out);
}

#define NCONC 100

static void test_100_concurrent_async(void **state)
{
	struct fixture *f = *state;
	CURLM *m = curl_multi_init();
	CURL *h[NCONC];
	struct buf out[NCONC];
	for (int i = 0; i < NCONC; i++) {
		buf_init(&out[i], 0);
		char *path = tu_fmt("/async?ms=%d&n=%d", i % 7, i);
		h[i] = easy(f, path, &out[i]);
		free(path);
		curl_multi_add_handle(m, h[i]);
	}
	int running = 1;
	time_t end = time(NULL) + WAIT_S;
	while (running && time(NULL) < end) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 50, NULL);
	}
	assert_int_equal(running, 0);
	for (int i = 0; i < NCONC; i++) {
		long status = 0;
		curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &status);
		assert_int_equal(status, 200);
		char want[32];
		snprintf(want, sizeof(want), "async:%d", i);
		assert_string_equal(out[i].data, want);
		curl_multi_remove_handle(m, h[i]);
		curl_easy_cleanup(h[i]);
		buf_release(&out[i]);
	}
	curl_multi_cleanup(m);
	assert_int_equal(calls(f), NCONC);
}

/* ---- streams ---- */

static size_t sse_collect(char *data, size_t size, size_t n, void *user)
{
	struct fixture *f = user;
	fx_lock(f);
	buf_append(&f->client, data, size * n);
	pthread_cond_broadcast(&f->cv);
	fx_unlock(f);
	return size * n;
}

struct sse_client {
	struct fixture *f;
	pthread_t th;
	long status;
	CURLcode cc;
};

static void *sse_main(void *arg)
{
	struct sse_client *c = arg;
	CURL *h = easy(c->f, "/stream", NULL);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c->f);
	c->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
	curl_easy_cleanup(h);
	return NULL;
}

static struct http_stream *wait_stream(struct fixture *f)
{
	assert_true(fx_wait(f, pred_stream, NULL));
	fx_lock(f);
	struct http_stream *st = f->stream;
	fx_unlock(f);
	return st;
}

static void test_sse_stream(void **state)
{
	struct fixture *f = *state;
	struct sse_client c = {.f = f};
	assert_int_equal(pthread_create(&c.th, NULL, sse_main, &c), 0);
	struct http_stream *st = wait_stream(f);
	char msg[64];
	for (int i = 1; i <= 200; i++) {
		snprintf(msg, sizeof(msg), "id: %d\ndata: event %d\n\n", i, i);
		assert_int_equal(http_stream_write(st, msg, strlen(msg)), ERR_OK);
		if (i % 50 == 0)
			sleep_ms(5);
	}
	assert_true(fx_wait(f, pred_client_has, "data: event 200\n\n"));
	/* In order, nothing lost. */
	char *got = client_copy(f);
	const char *p = got;
	for (int i = 1; i <= 200; i++) {
		snprintf(msg, sizeof(msg), "id: %d\ndata: event %d\n\n", i, i);
		p = strstr(p, msg);
		assert_non_null(p);
	}
	assert_int_equal(strncmp(got, ": hello\n\n", 9), 0);
	free(got);
	/* Silence: a ping comes after the interval. */
	assert_true(fx_wait(f, pred_client_has, "\n\n: ping\n\n"));
	assert_int_equal(closes(f), 0);
	/* A client that reads gets far more than max_buffered in total. */
	char big[8 * 1024 + 1];
	for (int i = 0; i < 16; i++) {
		memset(big, 'a' + i, sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(http_stream_write(st, big, sizeof(big) - 1), ERR_OK);
		assert_true(fx_wait(f, pred_client_has, big));
	}
	assert_true(http_stream_queued(st) <= f->scfg.max_buffered);
	assert_false(http_stream_closed(st));
	assert_int_equal(http_stream_write(st, "data: last\n\n", 12), ERR_OK);
	http_stream_end(st);
	http_stream_end(st);
	assert_true(http_stream_closed(st));
	assert_int_equal(http_stream_write(st, "x", 1), ERR_CONFLICT);
	pthread_join(c.th, NULL);
	assert_int_equal(c.cc, CURLE_OK);
	assert_int_equal(c.status, 200);
	got = client_copy(f);
	assert_non_null(strstr(got, "data: last\n\n"));
	free(got);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	assert_int_equal(closes(f), 1);
}

static void test_slow_client_cut(void **state)
{
	struct fixture *f = *state;
	int fd = tcp_connect(f->port, 4096);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	free(recv_until(fd, ": hello\n\n"));
	/* The client stops reading: once the kernel buffers and max_buffered are full,
	 * the stream is cut. Writes are paced so that MHD drains what it can. */
	char chunk[8 * 1024];
	memset(chunk, 'z', sizeof(chunk));
	enum err_code rc = ERR_OK;
	for (int i = 0; i < 16384 && rc == ERR_OK; i++) {
		rc = http_stream_write(st, chunk, sizeof(chunk));
		if (i % 4 == 3)
			sleep_ms(1);
	}
	assert_int_equal(rc, ERR_BUSY);
	assert_true(http_stream_closed(st));
	assert_int_equal(http_stream_queued(st), 0); /* the queue was dropped */
	assert_int_equal(http_stream_write(st, "x", 1), ERR_CONFLICT);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	close(fd);
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(fetch(f, "/echo", NULL, 0, NULL, &out), 200);
	buf_release(&out);
	assert_int_equal(closes(f), 1);
}

static void test_client_disconnect(void **state)
{
	struct fixture *f = *state;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	char *head = recv_until(fd, ": hello\n\n");
	assert_non_null(strstr(head, "HTTP/1.1 200"));
	assert_non_null(strstr(head, "text/event-stream"));
	free(head);
	close(fd);
	/* Noticed at the next write (or ping). */
	bool closed = false;
	for (int i = 0; i < WAIT_S * 20 && !closed; i++) {
		if (http_stream_write(st, "data: x\n\n", 9) != ERR_OK)
			break;
		fx_lock(f);
		closed = f->closes > 0;
		fx_unlock(f);
		sleep_ms(50);
	}
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	assert_int_equal(closes(f), 1);
	assert_true(http_stream_closed(st));
}

/* A client that hangs up while its stream waits for data (suspended, no pings due
 * for an hour) is noticed at once: on_close comes without any write. */
static void test_hangup_while_waiting(void **state)
{
	struct fixture *f = *state;
	f->scfg.ping_interval_s = 3600;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	char *head = recv_until(fd, ": hello\n\n");
	assert_non_null(strstr(head, "HTTP/1.1 200"));
	free(head);
	assert_int_equal(closes(f), 0);
	close(fd);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	assert_true(http_stream_closed(st));
}

/* A pull source: units "data: NNNNNN\n\n" handed out at most 5 bytes per pull, so
 * every unit is split; queued pings must never land inside one. */
struct pull_src {
	pthread_mutex_t mu;
	unsigned produced, next;   /* units made / the unit being pulled */
	size_t off;                /* bytes of unit `next` already pulled */
	bool done;
};
static struct pull_src PS = {.mu = PTHREAD_MUTEX_INITIALIZER};

static ssize_t pull_units(void *user, char *out, size_t max, int *partial)
{
	(void)user;
	pthread_mutex_lock(&PS.mu);
	ssize_t rc = 0;
	if (PS.next < PS.produced) {
		char unit[32];
		int len = snprintf(unit, sizeof(unit), "data: %06u\n\n", PS.next);
		size_t k = (size_t)len - PS.off;
		if (k > 5)
			k = 5;
		if (k > max)
			k = max;
		memcpy(out, unit + PS.off, k);
		PS.off += k;
		*partial = PS.off < (size_t)len;
		if (!*partial) {
			PS.next++;
			PS.off = 0;
		}
		rc = (ssize_t)k;
	} else if (PS.done) {
		rc = -1;
	}
	pthread_mutex_unlock(&PS.mu);
	return rc;
}

/* Removes the chunked framing of an HTTP/1.1 body (after the headers). */
static char *dechunk(const char *raw)
{
	const char *p = strstr(raw, "\r\n\r\n");
	assert_non_null(p);
	p += 4;
	struct buf b;
	buf_init(&b, 16 << 20);
	for (;;) {
		char *end;
		unsigned long n = strtoul(p, &end, 16);
		assert_true(end != p && end[0] == '\r' && end[1] == '\n');
		if (n == 0)
			break;
		assert_int_equal(buf_append(&b, end + 2, n), 0);
		p = end + 2 + n + 2;
	}
	return buf_steal(&b, NULL);
}

static void test_pull_source(void **state)
{
	struct fixture *f = *state;
	enum { UNITS = 60 };
	PS.produced = PS.next = 0;
	PS.off = 0;
	PS.done = false;
	f->scfg.pull = pull_units;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	for (unsigned i = 0; i < UNITS; i++) {
		pthread_mutex_lock(&PS.mu);
		PS.produced++;
		pthread_mutex_unlock(&PS.mu);
		http_stream_wake(st);
		if (i % 20 == 19)
			sleep_ms(1100);     /* let pings (every second) come between units */
	}
	pthread_mutex_lock(&PS.mu);
	PS.done = true;
	pthread_mutex_unlock(&PS.mu);
	http_stream_wake(st);
	char *raw = recv_until(fd, "\r\n0\r\n\r\n");
	char *body = dechunk(raw);
	unsigned want = 0;
	int pings = 0;
	for (char *save = NULL, *u = strtok_r(body, "\n", &save); u; u = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(u, ": hello"))
			continue;
		if (!strcmp(u, ": ping")) {
			pings++;
			continue;
		}
		char expect[32];
		snprintf(expect, sizeof(expect), "data: %06u", want);
		assert_string_equal(u, expect);
		want++;
	}
	assert_int_equal(want, UNITS);
	assert_true(pings >= 1);
	free(body);
	free(raw);
	close(fd);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
}

static void test_stream_end_keepalive(void **state)
{
	struct fixture *f = *state;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	char *r = recv_until(fd, ": hello\n\n");
	assert_non_null(strstr(r, "Transfer-Encoding: chunked"));
	free(r);
	assert_int_equal(http_stream_write(st, "data: bye\n\n", 11), ERR_OK);
	http_stream_end(st);
	r = recv_until(fd, "\r\n0\r\n\r\n");
	assert_non_null(strstr(r, "data: bye\n\n"));
	assert_non_null(strstr(r, "\r\n0\r\n\r\n"));
	free(r);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	/* The connection serves the next request. */
	send_str(fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
	r = recv_until(fd, "body=0:\n");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	free(r);
	close(fd);
	assert_int_equal(closes(f), 1);
}

/* Streams libmicrohttpd sends itself (no chunked body: HTTP/1.0, or a client that
 * asks to close): every event in order, then the connection closes. */
static void stream_without_sender(struct fixture *f, const char *request)
{
	f->scfg.ping_interval_s = 3600;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, request);
	struct http_stream *st = wait_stream(f);
	free(recv_until(fd, ": hello\n\n"));
	char msg[64];
	for (int i = 1; i <= 100; i++) {
		snprintf(msg, sizeof(msg), "id: %d\ndata: event %d\n\n", i, i);
		assert_int_equal(http_stream_write(st, msg, strlen(msg)), ERR_OK);
	}
	http_stream_end(st);
	char *raw = recv_until(fd, NULL);   /* to the end of the connection */
	const char *p = raw;
	for (int i = 1; i <= 100; i++) {
		snprintf(msg, sizeof(msg), "id: %d\ndata: event %d\n\n", i, i);
		p = strstr(p, msg);
		assert_non_null(p);
	}
	free(raw);
	close(fd);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
}

static void test_stream_http10(void **state)
{
	stream_without_sender(*state, "GET /stream HTTP/1.0\r\n\r\n");
}

static void test_stream_connection_close(void **state)
{
	stream_without_sender(*state, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

/* A client with a small receive buffer that reads slowly: the sender's socket fills
 * again and again (partial sends, waits for EPOLLOUT), and every byte arrives once,
 * in order, in valid chunks. */
struct slow_reader {
	int fd;
	char *raw;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *sr = arg;
	struct buf b;
	buf_init(&b, 16 << 20);
	char tmp[2048];
	for (int n = 0;; n++) {
		ssize_t k = recv(sr->fd, tmp, sizeof(tmp), 0);
		if (k <= 0 || buf_append(&b, tmp, (size_t)k))
			break;
		if (b.len >= 7 && !memcmp(b.data + b.len - 7, "\r\n0\r\n\r\n", 7))
			break;
		if (n == 32)
			sleep_ms(500);   /* the server's socket fills up meanwhile */
	}
	sr->raw = buf_steal(&b, NULL);
	return NULL;
}

static void test_stream_slow_reader(void **state)
{
	struct fixture *f = *state;
	f->scfg.ping_interval_s = 3600;
	f->scfg.max_buffered = 1024 * 1024;
	struct slow_reader sr = {.fd = tcp_connect(f->port, 4096)};
	send_str(sr.fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *st = wait_stream(f);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_reader_main, &sr), 0);
	struct buf want;
	buf_init(&want, 16 << 20);
	assert_int_equal(buf_append(&want, ": hello\n\n", 9), 0);
	char msg[600];
	for (int i = 0; i < 20000; i++) {
		int len = snprintf(msg, sizeof(msg), "id: %d\ndata: %0*d\n\n", i, 100 + i % 400, i);
		while (http_stream_queued(st) > 256 * 1024)
			sleep_ms(1);
		assert_int_equal(http_stream_write(st, msg, (size_t)len), ERR_OK);
		assert_int_equal(buf_append(&want, msg, (size_t)len), 0);
	}
	http_stream_end(st);
	pthread_join(th, NULL);
	char *body = dechunk(sr.raw);
	assert_int_equal(strlen(body), want.len);
	assert_memory_equal(body, want.data, want.len);
	free(body);
	free(sr.raw);
	buf_release(&want);
	int one = 1;
	assert_true(fx_wait(f, pred_closes, &one));
	close(sr.fd);
}

static void test_client_gone_while_pending(void **state)
{
	struct fixture *f = *state;
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /hold?x=kept HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(fx_wait(f, pred_held, NULL));
	fx_lock(f);
	struct http_request *held = f->held;
	fx_unlock(f);
	close(fd);
	sleep_ms(20);
	/* The request is still readable and can be answered; nothing leaks. */
	assert_string_equal(http_request_query(held, "x"), "kept");
	respond_text(held, 200, "nobody listens");
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(fetch(f, "/echo", NULL, 0, NULL, &out), 200);
	buf_release(&out);
}

static void test_stop_with_pending_and_streams(void **state)
{
	(void)state;
	struct fixture *f = fx_start(NULL);
	struct sse_client c = {.f = f};
	assert_int_equal(pthread_create(&c.th, NULL, sse_main, &c), 0);
	struct http_stream *st = wait_stream(f);
	int fd = tcp_connect(f->port, 0);
	send_str(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(fx_wait(f, pred_held, NULL));
	assert_true(fx_wait(f, pred_client_has, ": hello\n\n"));
	/* A gated request on a worker, answered only after the stop. */
	int fd2 = tcp_connect(f->port, 0);
	send_str(fd2, "GET /gate HTTP/1.1\r\nHost: x\r\n\r\n");
	for (int i = 0; i < 2000; i++) {
		if (calls(f) >= 3)
			break;
		sleep_ms(5);
	}
	assert_int_equal(calls(f), 3);

	http_server_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(closes(f), 1); /* on_close ran before stop returned */
	assert_true(http_stream_closed(st));
	assert_int_equal(http_stream_write(st, "x", 1), ERR_CONFLICT);
	char *resp = recv_until(fd, "}");
	assert_non_null(strstr(resp, "HTTP/1.1 503"));
	assert_non_null(strstr(resp, "\"code\":\"unavailable\""));
	free(resp);
	resp = recv_until(fd2, "}");
	assert_non_null(strstr(resp, "HTTP/1.1 503"));
	free(resp);
	close(fd);
	close(fd2);
	pthread_join(c.th, NULL);
	assert_int_equal(c.status, 200);
	/* Late answers touch valid memory and are dropped; a stream cannot start. */
	struct http_stream *late = NULL;
	struct err e = {0};
	assert_int_equal(http_respond_stream(f->held, http_response_new(200), NULL, &late, &e),
			 ERR_UNAVAILABLE);
	assert_null(late);
	fx_stop(f); /* opens the gate: the worker answers its request late too */
}

static void test_per_ip_limit(void **state)
{
	(void)state;
	struct http_config cfg = {.host = "127.0.0.1", .max_conns_per_ip = 2};
	struct fixture *f = fx_start(&cfg);
	int fds[2];
	for (int i = 0; i < 2; i++) {
		fds[i] = tcp_connect(f->port, 0);
		send_str(fds[i], "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
		char *r = recv_until(fds[i], "body=0:\n");
		assert_non_null(strstr(r, "HTTP/1.1 200"));
		free(r);
	}
	/* A third connection from the same address is dropped without an answer. */
	int fd = tcp_connect(f->port, 0);
	send(fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 32, MSG_NOSIGNAL);
	char *r = recv_until(fd, "\r\n\r\n");
	assert_string_equal(r, "");
	free(r);
	close(fd);
	/* Once one closes, a new one is served again. */
	close(fds[0]);
	bool served = false;
	for (int i = 0; i < WAIT_S * 10 && !served; i++) {
		fd = tcp_connect(f->port, 0);
		send(fd, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 32, MSG_NOSIGNAL);
		r = recv_until(fd, "body=0:\n");
		served = strstr(r, "HTTP/1.1 200") != NULL;
		free(r);
		close(fd);
		if (!served)
			sleep_ms(100);
	}
	assert_true(served);
	close(fds[1]);
	fx_stop(f);
}

static void test_start_errors(void **state)
{
	(void)state;
	struct http_handler h = {.handle = t_handle};
	struct http_server *s = NULL;
	struct err e = {0};
	struct http_config cfg = {.host = "example.invalid"};
	assert_int_equal(http_server_start(&cfg, &h, &s, &e), ERR_INVALID);
	assert_non_null(strstr(e.msg, "'example.invalid'"));
	assert_null(s);
	cfg.host = "localhost";
	assert_int_equal(http_server_start(&cfg, &h, &s, &e), ERR_OK);
	assert_true(http_server_port(s) > 0);
	http_server_stop(s);
	s = NULL;
	cfg.host = "127.0.0.1";
	cfg.max_header_bytes = 64 * 1024;
	assert_int_equal(http_server_start(&cfg, &h, &s, &e), ERR_INVALID);
	/* The port is taken. */
	struct fixture *f = fx_start(NULL);
	cfg.max_header_bytes = 0;
	cfg.port = f->port;
	assert_int_equal(http_server_start(&cfg, &h, &s, &e), ERR_IO);
	assert_null(s);
	fx_stop(f);
	http_server_stop(NULL);
	http_response_free(NULL);
	http_stream_release(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_accessors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_413_content_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_413_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_library_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_431_header_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_does_not_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_100_concurrent_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sse_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_disconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_while_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pull_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_end_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_connection_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_slow_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_while_pending, setup, teardown),
		cmocka_unit_test(test_stop_with_pending_and_streams),
		cmocka_unit_test(test_per_ip_limit),
		cmocka_unit_test(test_start_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
