/* host_http.c - theater:simple/http-client: outbound HTTP for actors.
 *
 * send-http takes a JSON request {"method", "url", "headers": {name: value},
 * "body" | "body_b64"} and answers {"status", "headers": {name: value},
 * "body" | "body_b64"} (body_b64 when the body is not UTF-8 text; response
 * header names are lowercase, repeated headers joined with ", ").
 *
 * Actor code is untrusted, so:
 *  - the url's host (as libcurl reads it) must match the handler's
 *    `allowed_hosts` (src/netpolicy.h); a missing or empty list denies all (-3);
 *  - every address connected, after DNS, must be public (src/netpolicy.c), unless
 *    the server allows private addresses (--http-allow-private);
 *    refused: -3, and no connection is made;
 *  - redirects are not followed (a 3xx is the answer; following it is another
 *    send-http, checked again), proxies are not used, only http and https;
 *  - urls with credentials, and headers that would change the request's framing
 *    or target (Host, Content-Length, Transfer-Encoding, Connection, ...) are
 *    refused (-1);
 *  - bounded: 5 s to connect, 30 s in all, 4 MiB of response body.
 * The chain records the request and the response with secret-looking header
 * values (Authorization, Cookie, *token*, *key*, ...) and url query values
 * (?api_key=...) replaced by "[redacted]". Bodies are recorded as they are
 * (host_bytes_json: large ones by their SHA-256).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/fetch.h"
#include "src/netpolicy.h"
#include "src/util/buf.h"
#include "src/util/crypto.h"
#include "supervisor/host.h"
#include "supervisor/supervisor.h"

#define MOD "theater:simple/http-client"
#define HTTP_REQUEST_MAX ((size_t)8 << 20)      /* the request JSON */
#define HTTP_BODY_MAX ((size_t)4 << 20)         /* request and response bodies */
#define HTTP_MAX_HEADERS 64
#define HTTP_HEADER_LINE_MAX 8192
#define HTTP_CONNECT_TIMEOUT_MS 5000L
#define HTTP_TOTAL_TIMEOUT_MS 30000L
#define REDACTED "[redacted]"

/* The parsed request; every pointer is owned here. */
struct http_req {
	json_t *doc;
	const char *method, *url;
	char **lines;                /* "Name: value" */
	size_t nlines;
	uint8_t *body;
	size_t body_len;
	int has_body;
};

static int32_t fail(struct host_call *k, int32_t rc, enum err_code code, const char *msg)
{
	err_set(&k->e, code, "%s", msg);
	return rc;
}

static void req_release(struct http_req *r)
{
	for (size_t i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	free(r->lines);
	free(r->body);
	json_decref(r->doc);
	memset(r, 0, sizeof(*r));
}

/* ---- secrets ---- */

static int header_secret(const char *name)
{
	static const char *const exact[] = {"authorization", "proxy-authorization", "cookie",
					    "set-cookie", NULL};
	static const char *const parts[] = {"token", "secret", "password", "passwd", "key",
					    "auth", "session", "signature", "credential", NULL};
	for (size_t i = 0; exact[i]; i++)
		if (strcasecmp(name, exact[i]) == 0)
			return 1;
	for (size_t i = 0; parts[i]; i++)
		if (strcasestr(name, parts[i]))
			return 1;
	return 0;
}

/* A copy of a headers object for the chain, secret values redacted. */
static json_t *headers_for_record(const json_t *headers)
{
	json_t *copy = json_object();
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)headers, name, v)
		json_object_set_new(copy, name, header_secret(name) ? json_string(REDACTED)
								    : json_incref(v));
	return copy;
}

/* The url for the chain: values of query parameters with secret-looking names
 * ("?api_key=...", "&access_token=...") replaced by "[redacted]". */
static json_t *url_for_record(const char *url)
{
	const char *q = strchr(url, '?'), *frag = strchr(url, '#');
	struct buf b;
	json_t *out;
	if (!q || (frag && frag < q))
		return json_string(url);
	buf_init(&b, 0);
	buf_append(&b, url, (size_t)(q - url) + 1);
	for (const char *p = q + 1; *p && *p != '#';) {
		size_t n = strcspn(p, "&#"), k = strcspn(p, "=&#");
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)(k < 63 ? k : 63), p);
		if (k < n && header_secret(name))
			buf_printf(&b, "%.*s=" REDACTED, (int)k, p);
		else
			buf_append(&b, p, n);
		p += n;
		if (*p == '&')
			buf_append(&b, p++, 1);
	}
	buf_puts(&b, url + strcspn(url, "#"));
	out = json_stringn(b.data ? b.data : "", b.len);
	buf_release(&b);
	return out ? out : json_string("");
}

/* ---- request ---- */

static int token_char(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Headers the actor may not set: they change framing, target or hop. */
static int header_forbidden(const char *name)
{
	static const char *const names[] = {"host", "content-length", "transfer-encoding",
					    "connection", "keep-alive", "upgrade", "te",
					    "trailer", "expect", "proxy-connection", NULL};
	for (size_t i = 0; names[i]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return strncasecmp(name, "proxy-", 6) == 0;
}

static int header_valid(const char *name, const char *value)
{
	if (!name[0] || strlen(name) + strlen(value) + 2 > HTTP_HEADER_LINE_MAX)
		return 0;
	for (const char *p = name; *p; p++)
		if (!token_char((unsigned char)*p))
			return 0;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

static int32_t parse_headers(struct host_call *k, const json_t *h, struct http_req *r)
{
	const char *name;
	json_t *v;
	if (!h)
		return 0;
	if (!json_is_object(h) || json_object_size(h) > HTTP_MAX_HEADERS)
		return fail(k, HOST_EINVAL, ERR_INVALID, "headers must be an object of at most 64 "
			    "string values");
	if (!(r->lines = calloc(json_object_size(h) + 1, sizeof(char *))))
		return fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	json_object_foreach((json_t *)h, name, v) {
		const char *value = json_string_value(v);
		if (!value || strlen(value) != json_string_length(v) || !header_valid(name, value)) {
			err_set(&k->e, ERR_INVALID, "header '%.64s' is not a valid header", name);
			return HOST_EINVAL;
		}
		if (header_forbidden(name)) {
			err_set(&k->e, ERR_INVALID, "header '%.64s' may not be set by actors", name);
			return HOST_EINVAL;
		}
		size_t n = strlen(name) + strlen(value) + 3;
		if (!(r->lines[r->nlines] = malloc(n)))
			return fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
		snprintf(r->lines[r->nlines++], n, "%s: %s", name, value);
	}
	return 0;
}

static int b64_value(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Standard base64 with optional padding; -1 on anything else. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *len_out)
{
	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1 || !(*out = malloc(n / 4 * 3 + 3)))
		return -1;
	uint32_t acc = 0;
	size_t bits = 0, len = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0) {
			free(*out);
			*out = NULL;
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			(*out)[len++] = (uint8_t)(acc >> bits);
		}
	}
	*len_out = len;
	return 0;
}

static int32_t parse_body(struct host_call *k, const json_t *body, const json_t *b64,
			  struct http_req *r)
{
	if (body && b64)
		return fail(k, HOST_EINVAL, ERR_INVALID, "give body or body_b64, not both");
	if ((body && !json_is_string(body)) || (b64 && !json_is_string(b64)))
		return fail(k, HOST_EINVAL, ERR_INVALID, "body and body_b64 must be strings");
	const json_t *v = body ? body : b64;
	if (!v)
		return 0;
	size_t n = json_string_length(v);
	if (n > (b64 ? HTTP_BODY_MAX / 3 * 4 + 4 : HTTP_BODY_MAX))
		return fail(k, HOST_ETOOBIG, ERR_TOO_LARGE, "the request body is over 4 MiB");
	r->has_body = 1;
	if (b64) {
		if (b64_decode(json_string_value(v), n, &r->body, &r->body_len))
			return fail(k, HOST_EINVAL, ERR_INVALID, "body_b64 is not base64");
		return 0;
	}
	if (!(r->body = malloc(n + 1)))
		return fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	memcpy(r->body, json_string_value(v), n);
	r->body_len = n;
	return 0;
}

static int32_t parse_request(struct host_call *k, const uint8_t *text, size_t len, struct http_req *r)
{
	static const char *const keys[] = {"method", "url", "headers", "body", "body_b64", NULL};
	json_t *d = r->doc = json_parse((const char *)text, len, 16, &k->e);
	if (!d)
		return HOST_EINVAL;
	if (!json_is_object(d))
		return fail(k, HOST_EINVAL, ERR_INVALID, "the request must be a JSON object");
	if (json_check_keys(d, keys, "request", &k->e))
		return HOST_EINVAL;
	const json_t *m = json_object_get(d, "method");
	r->method = m ? json_string_value(m) : "GET";
	r->url = json_string_value(json_object_get(d, "url"));
	if (!r->method || !r->url)
		return fail(k, HOST_EINVAL, ERR_INVALID, "url (a string) is required; method is "
			    "a string");
	json_object_set_new(k->in, "method", json_string(r->method));
	json_object_set_new(k->in, "url", url_for_record(r->url));
	int32_t rc = parse_headers(k, json_object_get(d, "headers"), r);
	if (!rc)
		rc = parse_body(k, json_object_get(d, "body"), json_object_get(d, "body_b64"), r);
	if (!rc && json_object_get(d, "headers"))
		json_object_set_new(k->in, "headers",
				    headers_for_record(json_object_get(d, "headers")));
	if (!rc && r->has_body)
		json_object_set_new(k->in, "body", host_bytes_json(r->body, r->body_len));
	return rc;
}

/* ---- policy ---- */

static int32_t check_host(struct host_call *k, struct actor *a, const char *url)
{
	struct fetch_url_parts u;
	const json_t *cfg = host_handler_config(a, GRANT_HTTP);
	const json_t *hosts = cfg ? json_object_get(cfg, "allowed_hosts") : NULL;
	size_t i;
	const json_t *v;
	if (fetch_url_split(url, &u, &k->e))
		return HOST_EINVAL;
	if (u.has_userinfo)
		return fail(k, HOST_EINVAL, ERR_INVALID, "urls with credentials are not allowed; "
			    "use an Authorization header");
	json_array_foreach(hosts, i, v)
		if (netpolicy_host_match(json_string_value(v), u.host, u.port))
			return 0;
	err_set(&k->e, ERR_FORBIDDEN_PATH, "host '%s' (port %u) is not in the handler's "
		"allowed_hosts", u.host, u.port);
	return HOST_EDENIED;
}

static int addr_check(void *user, const struct sockaddr *sa, size_t len, char *why, size_t n)
{
	const int *allow_private = user;
	char text[64];
	if (netpolicy_address_allowed(sa, len, *allow_private))
		return 0;
	netpolicy_address_text(sa, len, text, sizeof(text));
	snprintf(why, n, "address '%s' is %s", text,
		 netpolicy_class_name(netpolicy_classify(sa, len)));
	return 1;
}

static int allow_private_addresses(struct actor *a)
{
	return supervisor_http_allow_private(host_supervisor(a));
}

/* ---- response ---- */

/* Adds "name: value" to obj (lowercase name; a repeated name is joined). */
static void add_header(json_t *obj, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	char name[128];
	if (!colon || colon == line || (size_t)(colon - line) >= sizeof(name))
		return;
	size_t nl = (size_t)(colon - line);
	for (size_t i = 0; i < nl; i++)
		name[i] = (char)tolower((unsigned char)line[i]);
	name[nl] = '\0';
	const char *v = colon + 1, *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	json_t *old = json_object_get(obj, name);
	if (!old) {
		json_object_set_new(obj, name, json_stringn(v, (size_t)(end - v)));
		return;
	}
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "%s, %.*s", json_string_value(old), (int)(end - v), v);
	json_object_set_new(obj, name, json_stringn(b.data ? b.data : "", b.len));
	buf_release(&b);
}

/* The header lines of the final response (after its status line). */
static json_t *headers_json(const char *raw, size_t len)
{
	json_t *obj = json_object();
	const char *p = raw, *end = raw + len;
	int first = 1;
	while (obj && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		size_t m = n && p[n - 1] == '\r' ? n - 1 : n;
		if (!first && m)
			add_header(obj, p, m);
		first = 0;
		p += n + (nl ? 1 : 0);
	}
	return obj;
}

static json_t *response_json(const struct fetch_response *resp)
{
	json_t *body = json_stringn((const char *)resp->body, resp->body_len);
	json_t *o = json_pack("{s:I, s:o}", "status", (json_int_t)resp->status, "headers",
			      headers_json(resp->headers, resp->headers_len));
	if (!o) {
		json_decref(body);
		return NULL;
	}
	if (body) {
		json_object_set_new(o, "body", body);
	} else {
		char *b64 = base64_encode(resp->body, resp->body_len);
		json_object_set_new(o, "body_b64", b64 ? json_string(b64) : json_null());
		free(b64);
	}
	return o;
}

/* ---- the call ---- */

static int32_t map_fetch_err(enum err_code code)
{
	switch (code) {
	case ERR_FORBIDDEN_PATH: return HOST_EDENIED;
	case ERR_TIMEOUT: return HOST_ETIMEDOUT;
	case ERR_TOO_LARGE: return HOST_ETOOBIG;
	case ERR_BAD_REFERENCE: case ERR_INVALID: return HOST_EINVAL;
	default: return HOST_EFAILED;
	}
}

static void record_response(struct host_call *k, const json_t *rj, const struct fetch_response *resp)
{
	json_object_set_new(k->out, "status", json_integer(resp->status));
	json_object_set_new(k->out, "headers",
			    headers_for_record(json_object_get(rj, "headers")));
	json_object_set_new(k->out, "body", host_bytes_json(resp->body, resp->body_len));
}

static int32_t perform(struct host_call *k, struct wasm_caller *c, struct actor *a,
		       const struct http_req *r, uint32_t out)
{
	int allow = allow_private_addresses(a);
	struct fetch_request fr = {
		.method = r->method, .url = r->url, .headers = (const char *const *)r->lines,
		.nheaders = r->nlines, .body = r->has_body ? r->body : NULL,
		.body_len = r->body_len, .addr_check = addr_check, .addr_check_user = &allow,
	};
	struct fetch_limits lim = {
		.max_bytes = HTTP_BODY_MAX, .connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS,
		.total_timeout_ms = HTTP_TOTAL_TIMEOUT_MS, .max_redirects = -1,
	};
	struct fetch_response resp;
	enum err_code fc = fetch_request(&fr, &lim, &resp, &k->e);
	if (fc)
		return map_fetch_err(fc);
	json_t *rj = response_json(&resp);
	char *text = rj ? json_compact(rj) : NULL;
	int32_t rc;
	if (!text) {
		rc = fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	} else {
		record_response(k, rj, &resp);
		rc = host_return_bytes(c, a, out, text, strlen(text));
	}
	free(text);
	json_decref(rj);
	fetch_response_release(&resp);
	return rc;
}

static enum err_code h_send_http(struct wasm_caller *c, void *user, const struct wasm_value *args,
				 struct wasm_value *results, struct err *err)
{
	struct host_call k = {.in = json_object(), .out = json_object()};
	struct http_req r = {0};
	uint8_t *text = NULL, *probe = NULL;
	uint32_t len = args[1].of.i32, out = args[2].of.i32;
	k.rc = host_read(c, args[0].of.i32, len, HTTP_REQUEST_MAX, &text);
	if (k.rc)
		err_set(&k.e, ERR_INVALID, k.rc == HOST_ETOOBIG ? "the request is over 8 MiB"
			: "the request is outside the memory");
	if (!k.rc && (k.rc = host_read(c, out, 8, 8, &probe)))
		err_set(&k.e, ERR_INVALID, "the out slot is outside the memory");
	if (!k.rc)
		k.rc = parse_request(&k, text, len, &r);
	if (!k.rc)
		k.rc = check_host(&k, user, r.url);
	if (!k.rc)
		k.rc = perform(&k, c, user, &r, out);
	host_call_end(&k, user, MOD, "send-http", results);
	req_release(&r);
	free(text);
	free(probe);
	return ERR_OK;
}

const struct host_fn host_http_fns[] = {
	{MOD, "send-http", GRANT_HTTP, 3, 1, {WASM_I32, WASM_I32, WASM_I32}, {WASM_I32},
	 h_send_http},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
