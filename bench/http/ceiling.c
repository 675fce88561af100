/* ceiling.c - bench-http-ceiling: a bare libmicrohttpd server answering a fixed small
 * body, with the same threading options and limits as server/http.c (internal epoll
 * thread pool, suspend/resume and ITC enabled, keep-alive). It is the ceiling that
 * our HTTP layer and the real theater-server are compared with by bench/http/run.sh.
 *
 * usage: bench-http-ceiling PORT [THREADS]
 *   PORT 0 picks a free port. Prints "listening on 127.0.0.1:<port>" once ready and
 *   runs until SIGINT or SIGTERM. Listens on 127.0.0.1 only.
 *
 * This benchmark program, not a project module, is why files outside server/
 * include <microhttpd.h> (bench/common/bare_mhd.h): the point is to measure
 * libmicrohttpd without our layer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/common/bare_mhd.h"

static const char BODY[] = "{\"ok\":true}\n";

/* Queues the shared response on the second call (keep-alive), like server/http.c. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **ctx)
{
	static int first_call_marker;
	struct MHD_Response *resp = cls;
	(void)url, (void)method, (void)version, (void)upload;
	if (!*ctx) {
		*ctx = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(c, MHD_HTTP_OK, resp);
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

int main(int argc, char **argv)
{
	unsigned long port = 0, threads = 2;
	if (argc < 2 || argc > 3 || parse_uint(argv[1], 65535, &port) ||
	    (argc == 3 && (parse_uint(argv[2], 64, &threads) || threads == 0))) {
		fprintf(stderr, "usage: bench-http-ceiling PORT [THREADS]\n");
		return 2;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(BODY), (void *)BODY, MHD_RESPMEM_PERSISTENT);
	if (!resp || MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES)
		return 1;
	struct bare_mhd b = {
		.name = "bench-http-ceiling", .port = port,
		.flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC,
		.threads = (unsigned)(threads > 1 ? threads : 0), .handler = on_access, .cls = resp,
	};
	int rc = bare_mhd_run(&b);
	MHD_destroy_response(resp);
	return rc;
}
