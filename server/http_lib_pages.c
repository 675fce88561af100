/* http_lib_pages.c - the answers libmicrohttpd gives by itself, as problem+json.
 *
 * libmicrohttpd 0.9.75 (Debian 12) answers some requests from inside its own
 * header parser, before any callback of ours runs: a header line without a
 * colon, a malformed chunked body, a request line or headers too large for the
 * connection's memory, an HTTP version it does not serve, a malformed
 * Content-Length. It answers them with HTML pages of its own and offers no option
 * to replace them. Each such page is made by one function of the library
 * (transmit_error_response_len), which calls MHD_create_response_from_buffer
 * with one of the library's own strings, then MHD_queue_response, both through
 * the library's PLT: so the definitions in this file, in the executable, come
 * first (ELF symbol interposition; the link exports them, CMakeLists.txt) for
 * the library's calls as for ours. Every call is passed on to the library's own
 * function (dlsym RTLD_NEXT), but for those pages:
 *
 * - a page about Content-Length is refused when it is queued (MHD_NO): the
 *   library then closes the connection without a word, as after any failure.
 *   Its 0.9.75 sends that page's status line and headers twice (a bug of the
 *   library, whatever the body), so no answer is better than a broken one.
 *   (Refusing to make the page instead closes the connection too, but without
 *   the request-completed callback: our request leaked.)
 * - any other page is replaced, when it is queued (which gives its status), by a
 *   problem+json body of the same status with a stable `code`.
 *
 * Pages are recognised by their text ("<html>" first) and by their address: a
 * string of the library's own image, never a buffer of ours. A library built
 * otherwise (its calls internal) makes this file a pass-through; the tests
 * (test_http: test_library_pages) then fail, which is how we would know. */
#include "server/http_int.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/err.h"
#include "src/util/log.h"

typedef struct MHD_Response *(*create_fn)(size_t, void *, enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int,
				    struct MHD_Response *);

static create_fn real_create;
static queue_fn real_queue;
static const void *lib_base;       /* where libmicrohttpd's image starts */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
	real_create = (create_fn)dlsym(RTLD_NEXT, "MHD_create_response_from_buffer");
	real_queue = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
	Dl_info info;
	if (real_create && dladdr((void *)real_create, &info))
		lib_base = info.dli_fbase;
}

/* The library's pages, by a phrase of their text; detail NULL: refused (the
 * connection is closed). */
static const struct {
	const char *text;           /* a phrase of the page's body */
	enum err_code code;
	const char *detail;
} pages[] = {
	{"<b>Content-Length</b>", ERR_INVALID, NULL},
	{"chunked encoding was syntactically", ERR_INVALID,
	 "the chunked request body is malformed"},
	{"chunk size used", ERR_TOO_LARGE,
	 "a chunk of the request body is larger than this server reads"},
	{"syntactically incorrect", ERR_INVALID,
	 "the request is not valid HTTP (a malformed request line, or a header line "
	 "without a colon)"},
	{"Request too big", ERR_TOO_LARGE,
	 "the request line and headers do not fit in the memory this server gives a "
	 "request"},
	{"HTTP version", ERR_UNSUPPORTED,
	 "this HTTP version is not served: use HTTP/1.1 (or HTTP/1.0)"},
	{"header required", ERR_INVALID, "an HTTP/1.1 request needs a Host header"},
	{"Internal server error", ERR_INTERNAL,
	 "the server could not go on with this connection"},
};

static int page_of(size_t size, const void *buffer, enum MHD_ResponseMemoryMode mode)
{
	if (mode != MHD_RESPMEM_PERSISTENT || size < 6 || !buffer || !lib_base ||
	    memcmp(buffer, "<html>", 6) != 0)
		return -1;
	Dl_info info;
	if (!dladdr(buffer, &info) || info.dli_fbase != lib_base)
		return -1;                 /* a page of ours, not the library's */
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (memmem(buffer, size, pages[i].text, strlen(pages[i].text)))
			return (int)i;
	return -1;
}

/* The library's page just made on this thread (queued next), and which. */
static __thread struct MHD_Response *lib_page;
static __thread int lib_page_kind;

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	pthread_once(&once, resolve);
	if (!real_create)
		return NULL;
	int kind = page_of(size, buffer, mode);
	struct MHD_Response *m = real_create(size, buffer, mode);
	lib_page = kind >= 0 ? m : NULL;
	lib_page_kind = kind;
	return m;
}

static struct MHD_Response *problem_page(unsigned status, int kind)
{
	const char *code = err_code_name(pages[kind].code);
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%u,\"code\":\"%s\","
			 "\"detail\":\"%s\"}", status >= 500 ? "Server error" : "Request error",
			 status, code, pages[kind].detail);
	if (n < 0 || (size_t)n >= sizeof(body))
		return NULL;
	struct MHD_Response *m = real_create((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (m && MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
					 "application/problem+json") != MHD_YES) {
		MHD_destroy_response(m);
		m = NULL;
	}
	return m;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
				   struct MHD_Response *response)
{
	pthread_once(&once, resolve);
	if (!real_queue)
		return MHD_NO;
	if (!response || response != lib_page)
		return real_queue(connection, status_code, response);
	lib_page = NULL;
	if (!pages[lib_page_kind].detail) {        /* a Content-Length page */
		/* refused: the library closes the connection as after any failure
		 * (its request-completed callback runs, so nothing of ours leaks) */
		static const char fmt[] = "a request with a malformed Content-Length: connection "
					  "closed without an answer";
		log_limited(fmt, LOG_INFO, "http", fmt);
		return MHD_NO;
	}
	struct MHD_Response *p = problem_page(status_code, lib_page_kind);
	if (!p)
		return real_queue(connection, status_code, response);
	enum MHD_Result rc = real_queue(connection, status_code, p);
	MHD_destroy_response(p);    /* the connection holds it now */
	return rc;
}

bool http_lib_pages_ready_(void)
{
	pthread_once(&once, resolve);
	return real_create && real_queue && lib_base;
}
