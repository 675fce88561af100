/* client.c - libcurl behind the theater CLI; see client.h.
 *
 * Replies are buffered up to REPLY_MAX (a chain page or a state is far less);
 * streams are parsed as they arrive and never buffered beyond one event.
 * Only http and https are allowed, no redirects are followed (the API answers
 * none), and no proxy is used for loopback addresses (curl's default NO_PROXY
 * handling still applies to others). */
#include "tools/theater/client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "tools/theater/sseparse.h"

#define REPLY_MAX (256u << 20)
#define SSE_LINE_MAX (64u << 20)

struct client {
	CURL *curl;
	char *base;
	char *auth;          /* "Authorization: Bearer ..." or NULL */
	char *extra;         /* client_set_header's line or NULL */
	long timeout;
};

struct client *client_new(const char *base, const char *token)
{
	static int global_done;
	if (!global_done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	global_done = 1;
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return NULL;
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	cl->base = strndup(base, n);
	cl->curl = curl_easy_init();
	if (token && *token) {
		size_t len = strlen(token) + 32;
		cl->auth = malloc(len);
		if (cl->auth)
			snprintf(cl->auth, len, "Authorization: Bearer %s", token);
	}
	if (!cl->base || !cl->curl || (token && *token && !cl->auth)) {
		client_free(cl);
		return NULL;
	}
	return cl;
}

void client_free(struct client *cl)
{
	if (!cl)
		return;
	curl_easy_cleanup(cl->curl);
	free(cl->base);
	free(cl->auth);
	free(cl->extra);
	free(cl);
}

int client_set_header(struct client *cl, const char *line)
{
	char *copy = line ? strdup(line) : NULL;
	if (line && !copy)
		return -1;
	free(cl->extra);
	cl->extra = copy;
	return 0;
}

void client_set_timeout(struct client *cl, long seconds)
{
	cl->timeout = seconds;
}

void client_reply_release(struct client_reply *r)
{
	if (r)
		buf_release(&r->body);
}

char *client_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* State of one transfer, shared by the write and header callbacks. */
struct xfer {
	struct client *cl;
	struct client_reply *out;
	int decided;          /* stream or buffer, chosen at the first body byte */
	int streaming;
	int stopped;          /* the callback asked to stop */
	int failed;           /* buffer limit or parser error */
	struct sseparse sse;
	struct err *err;
};

static void note_ctype(struct xfer *x)
{
	char *ct = NULL;
	if (curl_easy_getinfo(x->cl->curl, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || !ct)
		return;
	size_t i = 0;
	for (; ct[i] && ct[i] != ';' && ct[i] != ' ' && i + 1 < sizeof(x->out->ctype); i++)
		x->out->ctype[i] = (char)tolower((unsigned char)ct[i]);
	x->out->ctype[i] = '\0';
}

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t len = size * n;
	if (!x->decided) {
		long status = 0;
		curl_easy_getinfo(x->cl->curl, CURLINFO_RESPONSE_CODE, &status);
		x->out->status = status;
		note_ctype(x);
		x->streaming = x->sse.fn && status == 200 &&
			       strcmp(x->out->ctype, "text/event-stream") == 0;
		x->decided = 1;
	}
	if (x->streaming) {
		int rc = sseparse_feed(&x->sse, data, len, x->err);
		if (rc == 1)
			x->stopped = 1;
		else if (rc < 0)
			x->failed = 1;
		return rc ? 0 : len;
	}
	if (buf_append(&x->out->body, data, len) != ERR_OK) {
		err_set(x->err, ERR_TOO_LARGE, "the answer is larger than %u bytes", REPLY_MAX);
		x->failed = 1;
		return 0;
	}
	return len;
}

static struct curl_slist *headers_for(struct client *cl, const char *accept, const char *last_id,
				      const char *ctype)
{
	struct curl_slist *h = NULL;
	char line[512];
	if (cl->auth)
		h = curl_slist_append(h, cl->auth);
	if (cl->extra)
		h = curl_slist_append(h, cl->extra);
	snprintf(line, sizeof(line), "Accept: %s", accept ? accept : "application/json, */*");
	h = curl_slist_append(h, line);
	if (last_id) {
		snprintf(line, sizeof(line), "Last-Event-ID: %s", last_id);
		h = curl_slist_append(h, line);
	}
	snprintf(line, sizeof(line), "Content-Type: %s", ctype ? ctype : "");
	h = curl_slist_append(h, ctype ? line : "Content-Type:");
	h = curl_slist_append(h, "Expect:");
	return h;
}

static void setup(struct client *cl, const char *method, const char *url, const void *body,
		  size_t len, struct curl_slist *h, struct xfer *x, int stream)
{
	CURL *c = cl->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, stream ? 0L : cl->timeout);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "theater-cli/" THEATER_VERSION);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
}

static int perform(struct client *cl, const char *method, const char *path, const char *accept,
		   const char *last_id, const char *ctype, const void *body, size_t len,
		   client_sse_fn fn, void *user, struct client_reply *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	buf_init(&out->body, REPLY_MAX);
	struct xfer x = {.cl = cl, .out = out, .err = err};
	sseparse_init(&x.sse, SSE_LINE_MAX, fn, user);
	size_t ulen = strlen(cl->base) + strlen(path) + 1;
	char *url = malloc(ulen);
	struct curl_slist *h = headers_for(cl, accept, last_id, ctype);
	int rc = CLIENT_ECONNECT;
	if (!url || !h) {
		err_set(err, ERR_NOMEM, "out of memory");
		goto done;
	}
	snprintf(url, ulen, "%s%s", cl->base, path);
	setup(cl, method, url, body, len, h, &x, fn != NULL);
	CURLcode cc = curl_easy_perform(cl->curl);
	if (!x.decided) {
		curl_easy_getinfo(cl->curl, CURLINFO_RESPONSE_CODE, &out->status);
		note_ctype(&x);
	}
	if (x.stopped || (cc == CURLE_OK && !x.failed)) {
		rc = 0;
	} else if (!x.failed) {
		err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? ERR_TIMEOUT : ERR_FETCH,
			"cannot reach the server at %s: %s", cl->base, curl_easy_strerror(cc));
	}
done:
	sseparse_release(&x.sse);
	curl_slist_free_all(h);
	free(url);
	return rc;
}

int client_call(struct client *cl, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, struct client_reply *out, struct err *err)
{
	return perform(cl, method, path, NULL, NULL, ctype, body, len, NULL, NULL, out, err);
}

int client_stream(struct client *cl, const char *method, const char *path, const char *accept,
		  const char *last_id, const char *ctype, const void *body, size_t len,
		  client_sse_fn fn, void *user, struct client_reply *out, struct err *err)
{
	return perform(cl, method, path, accept, last_id, ctype, body, len, fn, user, out, err);
}
