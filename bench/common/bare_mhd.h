/* bare_mhd.h - the bare libmicrohttpd servers that benchmarks set beside
 * theater-server (bench-http-ceiling, bench-commit-ceiling): 127.0.0.1 only, the
 * limits server/http.c uses, run until SIGINT or SIGTERM.
 *
 * A benchmark's own code, not a project module: the point of these servers is to
 * measure libmicrohttpd without our layers, so they include <microhttpd.h>. */
#ifndef THEATER_BENCH_BARE_MHD_H
#define THEATER_BENCH_BARE_MHD_H

#include <microhttpd.h>

struct bare_mhd {
	const char *name;                      /* for messages: "bench-http-ceiling" */
	unsigned long port;                    /* 0: any free port */
	unsigned flags;                        /* MHD_USE_... besides MHD_USE_ERROR_LOG */
	unsigned threads;                      /* MHD_OPTION_THREAD_POOL_SIZE (0: none) */
	MHD_AccessHandlerCallback handler;
	void *cls;
	MHD_RequestCompletedCallback completed; /* may be NULL */
};

/* Blocks SIGINT and SIGTERM (before libmicrohttpd starts its threads), starts the
 * daemon, prints "listening on 127.0.0.1:<port>", waits for one of the signals and
 * stops it. 0, or 1 when it cannot listen (said on stderr). */
int bare_mhd_run(const struct bare_mhd *b);

#endif
