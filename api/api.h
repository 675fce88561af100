/* api.h - the REST API: the route table, JSON in and out, problem+json errors.
 *
 * The api turns HTTP requests (server/) into supervisor calls and supervisor
 * results into responses. Every error leaves through one table (problem.c) that
 * maps the project's error codes to an HTTP status and a stable `code` string.
 * Ownership: the api borrows everything in its config.
 * Threads: handlers run on HTTP threads and never block; blocking work is handed
 * to the supervisor's worker pool and answered from there.
 */
#ifndef THEATER_API_H
#define THEATER_API_H

#include <stddef.h>

#include "cluster/cluster.h"
#include "server/http.h"
#include "supervisor/supervisor.h"

struct api_config {
	struct supervisor *sup;
	struct store *store;
	struct resolver *resolver;
	struct secrets *secrets;      /* /secrets (src/secrets.h) */
	const char *token;            /* bearer token; NULL or "" = none required */
	size_t max_body;              /* POST /actors and other JSON bodies [1 MiB] */
	size_t max_store_object;      /* POST /store/{id} [64 MiB] */
	size_t max_message;           /* messages and requests to actors [1 MiB] */
	unsigned sse_ping_s;          /* [15] */
	size_t sse_max_buffered;      /* bytes queued per stream before a slow client is cut [1 MiB] */
	const char *listen;           /* for /version */
	struct cluster *cluster;      /* cluster mode (--nats), or NULL: one node */
};

struct api;

enum err_code api_new(const struct api_config *cfg, struct api **out, struct err *err);
/* Fills h with the api's callbacks (h->user = api). */
void api_handler(struct api *api, struct http_handler *h);
/* Cluster mode from now on (main calls it once the node has joined, before
 * any other thread reads cfg.cluster's value changes: it is read atomically). */
void api_set_cluster(struct api *api, struct cluster *cluster);
/* /ready answers 503 from now on. */
void api_set_draining(struct api *api, int draining);
/* Ends every open stream and drops its subscription. Call after
 * supervisor_shutdown and before http_server_stop. */
void api_close_streams(struct api *api);
void api_free(struct api *api);

/* The route table, for the OpenAPI conformance test. */
struct api_route_info {
	const char *method;
	const char *pattern;          /* "/actors/{id}/chain" */
};
size_t api_routes(const struct api_route_info **out);

#endif
