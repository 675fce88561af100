/* http_response.c - responses: a small builder the handler fills from any thread,
 * turned into a libmicrohttpd response by http_respond(), plus the layer's own
 * problem+json errors.
 *
 * The builder remembers an allocation failure instead of reporting it at every call;
 * such a response goes out as an empty 500, so the handler's code stays linear and
 * the request is always answered. The MHD response is built on the caller's thread
 * (often a worker), not on an MHD thread.
 */
#include "server/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/util/log.h"

struct http_header {
	char *name;
	char *value;
};

struct http_response {
	int status;
	bool oom;
	struct http_header *hdrs;
	size_t nhdrs, cap;
	void *body;
	size_t len;
};

struct http_response *http_response_new(int status)
{
	struct http_response *resp = calloc(1, sizeof(*resp));
	if (resp)
		resp->status = status;
	return resp;
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	for (size_t i = 0; i < resp->nhdrs; i++) {
		free(resp->hdrs[i].name);
		free(resp->hdrs[i].value);
	}
	free(resp->hdrs);
	free(resp->body);
	free(resp);
}

/* A header name or value with CR, LF or NUL would split the response. */
static bool header_safe(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

void http_response_header(struct http_response *resp, const char *name, const char *value)
{
	if (!resp || !name || !value)
		return;
	if (!strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
	    !strcasecmp(name, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return;
	if (!*name || !header_safe(name) || !header_safe(value) || strchr(name, ':')) {
		log_warn(HTTP_MODULE, "dropping response header '%.40s': invalid characters", name);
		return;
	}
	if (resp->nhdrs == resp->cap) {
		size_t cap = resp->cap ? resp->cap * 2 : 8;
		struct http_header *h = realloc(resp->hdrs, cap * sizeof(*h));
		if (!h) {
			resp->oom = true;
			return;
		}
		resp->hdrs = h;
		resp->cap = cap;
	}
	struct http_header *h = &resp->hdrs[resp->nhdrs];
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		resp->oom = true;
		return;
	}
	resp->nhdrs++;
}

void http_response_body_take(struct http_response *resp, void *data, size_t len)
{
	if (!resp) {
		free(data);
		return;
	}
	free(resp->body);
	resp->body = data;
	resp->len = data ? len : 0;
}

void http_response_body(struct http_response *resp, const void *data, size_t len)
{
	if (!resp)
		return;
	void *copy = malloc(len ? len : 1);
	if (!copy) {
		resp->oom = true;
		return;
	}
	if (len)
		memcpy(copy, data, len);
	http_response_body_take(resp, copy, len);
}

int http_response_status_(const struct http_response *resp)
{
	return resp->status;
}

bool http_response_copy_headers_(const struct http_response *resp, struct MHD_Response *m)
{
	for (size_t i = 0; i < resp->nhdrs; i++) {
		if (MHD_add_response_header(m, resp->hdrs[i].name, resp->hdrs[i].value) != MHD_YES)
			return false;
	}
	return true;
}

static struct MHD_Response *empty_500(unsigned *status_out)
{
	*status_out = 500;
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *http_response_to_mhd_(struct http_response *resp, unsigned *status_out)
{
	if (!resp || resp->oom || resp->status < 100 || resp->status > 999) {
		http_response_free(resp);
		return empty_500(status_out);
	}
	struct MHD_Response *m;
	if (resp->body)
		m = MHD_create_response_from_buffer_with_free_callback(resp->len, resp->body, free);
	else
		m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!m) {
		http_response_free(resp);
		return empty_500(status_out);
	}
	resp->body = NULL; /* MHD owns it now */
	if (!http_response_copy_headers_(resp, m)) {
		MHD_destroy_response(m);
		http_response_free(resp);
		return empty_500(status_out);
	}
	*status_out = (unsigned)resp->status;
	http_response_free(resp);
	return m;
}

void http_respond(struct http_request *r, struct http_response *resp)
{
	unsigned status;
	bool delivered;
	struct MHD_Response *m = http_response_to_mhd_(resp, &status);
	http_deliver_(r, m, status, NULL, &delivered);
	if (!delivered && m)
		MHD_destroy_response(m);
}

static char *fallback_problem(int status, const char *code, const char *detail)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "{\"type\":\"about:blank\",\"status\":%d,\"code\":\"%s\",\"detail\":\"%s\"}",
		   status, code, detail);
	return buf_steal(&b, NULL);
}

struct MHD_Response *http_problem_response_(struct http_server *s, int status,
					    enum err_code code, const char *detail)
{
	const char *name = err_code_name(code);
	char *body = s->h.problem ? s->h.problem(s->h.user, status, name, detail) : NULL;
	if (!body)
		body = fallback_problem(status, name, detail);
	if (!body)
		return NULL;
	struct MHD_Response *m =
		MHD_create_response_from_buffer_with_free_callback(strlen(body), body, free);
	if (!m) {
		free(body);
		return NULL;
	}
	if (MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
				    "application/problem+json") != MHD_YES) {
		MHD_destroy_response(m);
		return NULL;
	}
	return m;
}
