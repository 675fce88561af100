/* fetch.h - the one wrapper around libcurl: bounded HTTP(S) requests.
 *
 * Only http:// and https:// are ever spoken, for the first request and for
 * every redirect (curl's protocol allow-lists), so a redirect cannot reach
 * file://, ftp:// or gopher://. Every transfer is bounded: connect and total
 * timeouts, a byte cap enforced while the body arrives (and up front when the
 * server announces a Content-Length above it), and a redirect limit.
 * Compressed transfer encodings are not requested, so the cap counts the
 * bytes we keep.
 *
 * Ownership: data and response buffers are malloc'd and owned by the caller.
 * Threads: every function may be called from any thread at once; libcurl's
 * global init runs once (pthread_once) and signals are never used
 * (CURLOPT_NOSIGNAL).
 */
#ifndef THEATER_FETCH_H
#define THEATER_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

#define FETCH_DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define FETCH_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define FETCH_DEFAULT_TOTAL_TIMEOUT_MS 60000L
#define FETCH_DEFAULT_MAX_REDIRECTS 5L
#define FETCH_MAX_URL 8192

/* Zero in a field means its default (above). max_redirects < 0 follows none. */
struct fetch_limits {
	size_t max_bytes;
	long connect_timeout_ms;
	long total_timeout_ms;
	long max_redirects;
};

/* GET url (http/https only, also for redirects), following at most
 * max_redirects redirects. lim may be NULL (all defaults).
 * On success *data_out is a malloc'd copy of the body (NUL-terminated, the
 * NUL not counted in *len_out; never NULL, even for an empty body).
 * Errors: ERR_BAD_REFERENCE (not an http(s) url, too long), ERR_REDIRECTS,
 * ERR_TOO_LARGE (body or Content-Length over max_bytes; the transfer stops as
 * soon as the count passes the cap), ERR_FETCH_STATUS for a final status
 * outside 2xx ("fetch 'url': http status 404"), ERR_TIMEOUT, ERR_FETCH for
 * connect, DNS, TLS and protocol errors, ERR_NOMEM. */
enum err_code fetch_url(const char *url, const struct fetch_limits *lim,
			uint8_t **data_out, size_t *len_out, struct err *err);

struct sockaddr;

/* An address check for untrusted requests: called before every connection
 * (the first, retries on other addresses, redirects) with the address about to
 * be connected, after DNS. Returns 0 to allow it; non-zero refuses it (no
 * connection is made) and may write why into why[why_size]. Runs on the thread
 * that calls fetch_request. */
typedef int (*fetch_addr_check_fn)(void *user, const struct sockaddr *addr, size_t addr_len,
				   char *why, size_t why_size);

/* fetch_url under an address check (see fetch_request's addr_check): packages
 * named by URL. */
enum err_code fetch_url_checked(const char *url, const struct fetch_limits *lim,
				fetch_addr_check_fn check, void *check_user, uint8_t **data_out,
				size_t *len_out, struct err *err);

/* A general request, for the outbound HTTP of actors. */
struct fetch_request {
	const char *method;              /* "GET" when NULL */
	const char *url;
	const char *const *headers;      /* "Name: value" lines; may be NULL */
	size_t nheaders;
	const void *body;                /* sent when non-NULL (also if body_len is 0) */
	size_t body_len;
	int follow_redirects;            /* 0: a 3xx is returned as the response */
	int fail_on_status;              /* 1: a final status outside 2xx fails as in fetch_url */
	/* NULL: no check. When set, proxies from the environment are not used
	 * either (the address checked must be the address the request goes to),
	 * and a transfer that fails after a refusal fails with ERR_FORBIDDEN_PATH
	 * ("fetch 'url': address '10.0.0.1' refused: private"). */
	fetch_addr_check_fn addr_check;
	void *addr_check_user;
	/* 1: a transfer still running after FETCH_PROGRESS_S seconds logs its
	 * progress at info (then every FETCH_PROGRESS_S seconds, and once when it
	 * ends), naming the URL without its query. fetch_url sets it. */
	int log_progress;
	/* When set, called with each piece of the body as it arrives (after it is
	 * kept in the response), on the thread that performs the transfer (the
	 * caller of fetch_request, or the fetcher's), and once more with (NULL, 0)
	 * when a transfer that started is over (fetch_request got past its checks,
	 * or fetch_start returned ERR_OK), so the user may let go of on_data_user. */
	int (*on_data)(void *user, const uint8_t *data, size_t len);
	void *on_data_user;
};
#define FETCH_PROGRESS_S 2

struct fetch_response {
	long status;
	char *headers;       /* raw header lines of the final response, NUL-terminated */
	size_t headers_len;
	uint8_t *body;       /* NUL-terminated, NUL not counted */
	size_t body_len;
	char *effective_url; /* the url after redirects */
};

/* Performs req within lim. On success fills *resp_out (release it with
 * fetch_response_release); on failure *resp_out is left empty. Response
 * headers are capped at 64 KiB (ERR_TOO_LARGE beyond). Errors as fetch_url. */
enum err_code fetch_request(const struct fetch_request *req, const struct fetch_limits *lim,
			    struct fetch_response *resp_out, struct err *err);

/* ---- many transfers, no waiting thread ----
 * A fetcher runs any number of transfers at once on its own thread (libcurl's
 * multi interface), so a thousand slow requests hold no thread each. The
 * request is copied (url, headers, body) when it starts, except
 * req->addr_check_user, which must stay valid until `done` runs; the address
 * check and `done` run on the fetcher's thread. `done` gets the outcome as
 * fetch_request reports it and owns *resp (release it); it runs exactly once
 * for every transfer fetch_start accepted, at the latest in fetcher_free,
 * which ends the transfers still running with ERR_UNAVAILABLE. */
struct fetcher;
typedef void (*fetch_done_fn)(void *user, enum err_code rc, const struct err *err,
			      struct fetch_response *resp);
enum err_code fetcher_new(struct fetcher **out, struct err *err);
void fetcher_free(struct fetcher *f);     /* accepts NULL */
/* Errors as fetch_request for a request that cannot start (done does not run);
 * ERR_UNAVAILABLE once fetcher_free began. */
enum err_code fetch_start(struct fetcher *f, const struct fetch_request *req,
			  const struct fetch_limits *lim, fetch_done_fn done, void *user,
			  struct err *err);

/* Frees what a response holds and zeroes it. Accepts NULL. */
void fetch_response_release(struct fetch_response *resp);

/* 1 when url starts with http:// or https:// (scheme case-insensitive). */
int fetch_url_allowed(const char *url);

/* The parts of a url as libcurl itself reads them (so a check on them sees
 * what the request will use). host: as curl gives it (case as written; IPv6
 * literals in brackets, "[::1]"). port: the explicit or the scheme's default. */
struct fetch_url_parts {
	char scheme[8];          /* "http" or "https" */
	char host[256];
	unsigned port;
	int has_userinfo;        /* the url carries a user name or password */
};
/* ERR_BAD_REFERENCE for a url that is not http(s), too long, or malformed
 * (the message names it); ERR_NOMEM. */
enum err_code fetch_url_split(const char *url, struct fetch_url_parts *out, struct err *err);

#endif
