/* fuzz_http.c - libFuzzer entry point over the HTTP request layer (server/).
 *
 * Each input is raw bytes sent by a client: the request line, headers, query,
 * body (chunked or not), possibly several pipelined requests or garbage. A real
 * http_server (libmicrohttpd + server/http*.c) runs in this process on
 * 127.0.0.1 with small limits and a handler that reads everything a handler
 * can read (method, decoded and raw path, query values, headers, body, peer)
 * in admit(), body_limit() and handle(), and answers at once or from another
 * thread. Each input gets its own connection; the answer is read until the
 * server closes it or a short timeout passes. Crashes, sanitizer reports and
 * leaks are the findings; a server that stops answering /health is one too.
 * The same function runs the committed regressions in the normal build
 * (regress_main.c), as the CTest test fuzz_http_regressions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_server *srv;
static uint16_t port;

static size_t touch(struct http_request *r)
{
	static const char *const names[] = {"Host", "Content-Type", "Origin", "a", "x", NULL};
	size_t n = strlen(http_request_method(r)) + strlen(http_request_path(r)) +
		   strlen(http_request_raw_path(r)) + strlen(http_request_peer(r));
	for (int i = 0; names[i]; i++) {
		const char *v = http_request_header(r, names[i]);
		const char *q = http_request_query(r, names[i]);
		n += (v ? strlen(v) : 0) + (q ? strlen(q) : 0);
	}
	return n;
}

static struct http_response *admit(void *user, struct http_request *r)
{
	(void)user;
	touch(r);
	const char *m = http_request_method(r);
	return !strcmp(m, "DELETE") ? http_response_new(403) : NULL;
}

static size_t body_limit(void *user, struct http_request *r)
{
	(void)user;
	return touch(r) % 2 ? 4096 : 256;
}

static void *answer_later(void *arg)
{
	struct http_request *r = arg;
	struct http_response *resp = http_response_new(202);
	http_response_body(resp, "later", 5);
	http_respond(r, resp);
	return NULL;
}

static void handle(void *user, struct http_request *r)
{
	(void)user;
	size_t len;
	const uint8_t *b = http_request_body(r, &len);
	struct http_response *resp = http_response_new(200);
	http_response_header(resp, "Content-Type", "text/plain");
	http_response_body(resp, b, len);
	if (len && b[0] == 'L') {      /* answered from another thread */
		http_response_free(resp);
		pthread_t t;
		if (pthread_create(&t, NULL, answer_later, r) == 0) {
			pthread_detach(t);
			return;
		}
		resp = http_response_new(500);
	}
	touch(r);
	http_respond(r, resp);
}

static void start(void)
{
	if (srv)
		return;
	signal(SIGPIPE, SIG_IGN);
	struct http_config cfg = {.host = "127.0.0.1", .threads = 2, .conn_timeout_s = 2,
				  .conn_memory = 32768, .max_header_bytes = 8192,
				  .max_query_params = 16};
	struct http_handler h = {.admit = admit, .body_limit = body_limit, .handle = handle};
	struct err err;
	if (http_server_start(&cfg, &h, &srv, &err) != ERR_OK) {
		fprintf(stderr, "fuzz_http: %s\n", err.msg);
		abort();
	}
	port = http_server_port(srv);
}

/* One connection: send, half-close, read until closed or silent (below). */
static size_t exchange(const void *data, size_t size, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		abort();
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		abort();
	if (size)
		(void)!send(fd, data, size, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	size_t n = 0;
	/* ~1 s for the first byte; then 50 ms of silence ends a kept-alive answer */
	for (int idle = 0; idle < (n ? 1 : 20) && n < cap;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0) {
			idle++;
			continue;
		}
		ssize_t k = recv(fd, out + n, cap - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[65536];
	start();
	exchange(data, size, out, sizeof(out));
	static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n = exchange(health, sizeof(health) - 1, out, sizeof(out) - 1);
	out[n] = '\0';
	if (strncmp(out, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "fuzz_http: the server stopped answering: '%.200s'\n", out);
		abort();
	}
	return 0;
}
