/* layer.c - bench-http-layer: our HTTP layer (server/http.h) answering the same fixed
 * small body as bench-http-ceiling, so that run.sh can show what the layer itself
 * costs on top of bare libmicrohttpd.
 *
 * usage: bench-http-layer PORT [THREADS] [sync|async]
 *   sync  (default) handle() answers at once, on the MHD thread;
 *   async handle() hands the request to one worker thread, which answers it: every
 *         request is suspended and resumed, as in the real server where actors run
 *         on workers.
 *   PORT 0 picks a free port. Prints "listening on 127.0.0.1:<port>" once ready and
 *   runs until SIGINT or SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"

#define QUEUE_CAP 4096

static const char BODY[] = "{\"ok\":true}\n";

struct bench {
	bool async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct http_request *queue[QUEUE_CAP];
	size_t head, tail;
	bool quit;
};

static void answer(struct http_request *r)
{
	struct http_response *resp = http_response_new(200);
	http_response_header(resp, "Content-Type", "application/json");
	http_response_body(resp, BODY, sizeof(BODY) - 1);
	http_respond(r, resp);
}

static size_t on_body_limit(void *user, struct http_request *r)
{
	(void)user, (void)r;
	return 4096;
}

static void on_handle(void *user, struct http_request *r)
{
	struct bench *b = user;
	if (!b->async) {
		answer(r);
		return;
	}
	pthread_mutex_lock(&b->mu);
	bool full = b->tail - b->head == QUEUE_CAP;
	if (!full) {
		b->queue[b->tail++ % QUEUE_CAP] = r;
		pthread_cond_signal(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	if (full) /* cannot happen below 4096 connections; answer rather than drop */
		answer(r);
}

static void *worker_main(void *arg)
{
	struct bench *b = arg;
	pthread_mutex_lock(&b->mu);
	while (!b->quit || b->head != b->tail) { /* every request handed over is answered */
		if (b->head == b->tail) {
			pthread_cond_wait(&b->cv, &b->mu);
			continue;
		}
		struct http_request *r = b->queue[b->head++ % QUEUE_CAP];
		pthread_mutex_unlock(&b->mu);
		answer(r);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, unsigned long *port, unsigned long *threads,
		      bool *async)
{
	if (argc < 2 || argc > 4 || parse_uint(argv[1], 65535, port))
		return -1;
	if (argc >= 3 && (parse_uint(argv[2], 64, threads) || *threads == 0))
		return -1;
	if (argc == 4 && strcmp(argv[3], "sync") && strcmp(argv[3], "async"))
		return -1;
	*async = argc == 4 && !strcmp(argv[3], "async");
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long port = 0, threads = 2;
	static struct bench b;
	if (parse_args(argc, argv, &port, &threads, &b.async)) {
		fprintf(stderr, "usage: bench-http-layer PORT [THREADS] [sync|async]\n");
		return 2;
	}
	sigset_t stop_sigs;
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	pthread_t worker;
	if (b.async && pthread_create(&worker, NULL, worker_main, &b))
		return 1;
	struct http_config cfg = {.host = "127.0.0.1", .port = (uint16_t)port,
				  .threads = (unsigned)threads, .max_conns_per_ip = 1024};
	struct http_handler h = {.user = &b, .body_limit = on_body_limit, .handle = on_handle};
	struct http_server *srv = NULL;
	struct err e = {0};
	if (http_server_start(&cfg, &h, &srv, &e)) {
		fprintf(stderr, "bench-http-layer: %s\n", e.msg);
		return 1;
	}
	printf("listening on 127.0.0.1:%u\n", (unsigned)http_server_port(srv));
	fflush(stdout);
	int sig;
	sigwait(&stop_sigs, &sig);
	http_server_stop(srv);
	if (b.async) {
		pthread_mutex_lock(&b.mu);
		b.quit = true;
		pthread_cond_broadcast(&b.cv);
		pthread_mutex_unlock(&b.mu);
		pthread_join(worker, NULL);
	}
	return 0;
}
