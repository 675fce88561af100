/* http_request.c - the request object: what the handler can read about a request.
 *
 * Everything the handler may read later (method, headers, query arguments, peer) is
 * copied out of libmicrohttpd when the headers arrive, into one allocation, because a
 * pending request may be read from a worker thread while MHD owns the connection, and
 * after the connection is gone (server stop). The path is decoded here rather than by
 * MHD so that a %00 or a malformed escape can be refused instead of truncating.
 */
#include "server/http_int.h"
#include "src/util/pct.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Bytes a header line takes on the wire besides name and value: ": " and CRLF. */
#define HEADER_OVERHEAD 4
/* Request line overhead besides method and target: spaces, "HTTP/1.1", CRLF. */
#define REQUEST_LINE_OVERHEAD 12

struct http_request *http_request_new_(struct http_server *s, const char *uri)
{
	struct http_request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->srv = s;
	r->fd = -1;
	buf_init(&r->body, 0);
	r->raw_uri = strdup(uri ? uri : "");
	if (!r->raw_uri) {
		free(r);
		return NULL;
	}
	r->target_len = strlen(r->raw_uri);
	r->header_bytes = r->target_len + REQUEST_LINE_OVERHEAD;
	char *q = strchr(r->raw_uri, '?');
	if (q)
		*q = '\0';
	return r;
}

void http_request_free_(struct http_request *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	free(r->raw_uri);
	free(r->path);
	free(r->strings);
	free(r);
}

bool http_request_maybe_free_locked(struct http_request *r)
{
	if (r->mhd_holds || r->app_holds)
		return false;
	struct http_server *s = r->srv;
	http_request_free_(r);
	return http_server_unref_locked(s);
}

/* ---- capture ---- */

struct capture {
	size_t count;
	size_t bytes;        /* string bytes including NULs */
	size_t wire;         /* bytes on the wire (headers only) */
	struct http_kv *kv;  /* second pass: where to write */
	char *strings;
};

static enum MHD_Result count_kv(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct capture *c = cls;
	size_t kl = strlen(key), vl = value ? strlen(value) : 0;
	(void)kind;
	c->count++;
	c->bytes += kl + vl + 2;
	c->wire += kl + vl + HEADER_OVERHEAD;
	return MHD_YES;
}

static char *copy_str(struct capture *c, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = c->strings;
	memcpy(p, s, n);
	c->strings += n;
	return p;
}

static enum MHD_Result copy_kv(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct capture *c = cls;
	(void)kind;
	c->kv->name = copy_str(c, key);
	c->kv->value = copy_str(c, value ? value : "");
	c->kv++;
	return MHD_YES;
}

static void capture_peer(struct http_request *r, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(r->peer, sizeof(r->peer), "unknown");
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, r->peer, sizeof(r->peer));
		r->loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			const uint8_t *b = in6->sin6_addr.s6_addr + 12;
			inet_ntop(AF_INET, b, r->peer, sizeof(r->peer));
			r->loopback = b[0] == 127;
		} else {
			inet_ntop(AF_INET6, &in6->sin6_addr, r->peer, sizeof(r->peer));
			r->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		}
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = ci ? ci->connect_fd : -1;
}

enum err_code http_request_capture_(struct http_request *r, struct MHD_Connection *conn,
				    const char *method)
{
	struct capture h = {0}, a = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_kv, &h);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_kv, &a);
	size_t mlen = strlen(method) + 1;
	size_t kvs = (h.count + a.count) * sizeof(struct http_kv);
	char *block = malloc(kvs + h.bytes + a.bytes + mlen);
	if (!block)
		return ERR_NOMEM;
	r->strings = block;
	r->headers = (struct http_kv *)block;
	r->args = r->headers + h.count;
	r->nheaders = h.count;
	r->nargs = a.count;
	r->header_bytes += h.wire + mlen;
	struct capture w = {.kv = r->headers, .strings = block + kvs};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, copy_kv, &w);
	w.kv = r->args;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, copy_kv, &w);
	r->method = copy_str(&w, method);
	capture_peer(r, conn);
	return ERR_OK;
}

/* ---- path decoding ---- */

enum err_code http_request_decode_path_(struct http_request *r)
{
	const char *in = r->raw_uri;
	size_t n = strlen(in);
	char *out = malloc(n + 1);
	if (!out)
		return ERR_NOMEM;
	if (pct_decode(in, n, out) != ERR_OK) {
		free(out);
		return ERR_INVALID;
	}
	r->path = out;
	return ERR_OK;
}

/* libmicrohttpd decodes query values itself, leaving a malformed escape as it is
 * and ending a value at %00: the raw query is checked as the path is. */
enum err_code http_request_check_query_(const struct http_request *r)
{
	const char *q = http_request_raw_query(r);
	return pct_decode(q, strlen(q), NULL);
}

/* ---- accessors ---- */

const char *http_request_method(const struct http_request *r)
{
	return r->method ? r->method : "";
}

const char *http_request_path(const struct http_request *r)
{
	return r->path ? r->path : r->raw_uri;
}

const char *http_request_raw_path(const struct http_request *r)
{
	return r->raw_uri;
}

const char *http_request_raw_query(const struct http_request *r)
{
	size_t n = strlen(r->raw_uri);
	return n < r->target_len ? r->raw_uri + n + 1 : ""; /* past the '?' made NUL */
}

const char *http_request_query(const struct http_request *r, const char *name)
{
	for (size_t i = 0; i < r->nargs; i++) {
		if (strcmp(r->args[i].name, name) == 0)
			return r->args[i].value;
	}
	return NULL;
}

size_t http_request_query_count(const struct http_request *r)
{
	return r->nargs;
}

const char *http_request_query_name(const struct http_request *r, size_t i)
{
	return i < r->nargs ? r->args[i].name : "";
}

const char *http_request_query_value(const struct http_request *r, size_t i)
{
	return i < r->nargs && r->args[i].value ? r->args[i].value : "";
}

const char *http_request_header(const struct http_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}

const uint8_t *http_request_body(const struct http_request *r, size_t *len_out)
{
	if (len_out)
		*len_out = r->body.len;
	return r->body.data ? (const uint8_t *)r->body.data : (const uint8_t *)"";
}

const char *http_request_peer(const struct http_request *r)
{
	return r->peer;
}

int http_request_peer_is_loopback(const struct http_request *r)
{
	return r->loopback;
}

void http_request_set_data(struct http_request *r, void *data)
{
	r->data = data;
}

void *http_request_data(const struct http_request *r)
{
	return r->data;
}
