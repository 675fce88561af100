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
 *  - waiting parks the call (host_wait_end): the transfer runs on the
 *    server's fetcher thread with every other one (curl multi), and the
 *    worker goes on with other actors until it ends;
 *  - bounded: 5 s to connect, 4 MiB of response body, and a total timeout:
 *    the handler's `timeout_ms` (default: the server's --http-timeout-ms),
 *    never above --http-timeout-max-ms nor permission_policy.http_client's
 *    `timeout`; a request may ask for less with its own "timeout_ms". A
 *    timeout or a failed connection is an error result (-4, -6) the actor
 *    handles; it does not end the call.
 *  - loopback addresses are refused unless the server allows private ones
 *    or the port is in the handler's `allow_loopback_ports` (a local model
 *    gateway for one actor, not the whole loopback for all).
 *  - permission_policy.http_client may disallow the capability, or restrict
 *    it: allowed_methods, allowed_hosts (a host must pass both lists),
 *    timeout, max_request_bytes and max_response_bytes.
 *
 * Secrets: header values may hold templates "{{secret:NAME}}", filled in
 * here from the server's secrets, so the actor never sees the value. The
 * handler's `headers` (a table the manifest sets, added to every request and
 * replacing an actor's header of the same name) may use any secret; headers
 * the actor sends may use the secrets the handler lists in `secrets`. The
 * chain records the templates, and the names and fingerprints of the
 * secrets used, never a value; a response that echoes a value back has it
 * replaced by "[secret:NAME]" before the actor or the chain sees it.
 *
 * The chain records the request and the response with secret-looking header
 * values (Authorization, Cookie, *token*, *key*, ...) and url query values
 * (?api_key=...) replaced by "[redacted]". Bodies are recorded as they are
 * (host_bytes_json: large ones by their SHA-256).
 */
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/fetch.h"
#include "src/secrets.h"
#include "src/netpolicy.h"
#include "src/util/buf.h"
#include "src/util/crypto.h"
#include "supervisor/channel.h"
#include "supervisor/host.h"
#include "supervisor/supervisor.h"

#define MOD "theater:simple/http-client"
#define HTTP_REQUEST_MAX ((size_t)8 << 20)      /* the request JSON */
#define HTTP_BODY_MAX ((size_t)4 << 20)         /* request and response bodies */
#define HTTP_MAX_HEADERS 64
#define HTTP_HEADER_LINE_MAX 8192
#define HTTP_CONNECT_TIMEOUT_MS 5000L
#define HTTP_WAIT_GRACE_MS 5000u
#define HTTP_MAX_SECRETS 8
#define TEMPLATE_OPEN "{{secret:"
#define SCRUB_MIN 4                              /* shorter values are not scrubbed */
#define REDACTED "[redacted]"

struct used_secret {
	char name[SECRETS_NAME_MAX + 1];
	uint8_t *value;
	size_t len;
	char fingerprint[65];
};

/* The parsed request; every pointer is owned here. */
struct http_req {
	json_t *doc;
	const char *method, *url;
	char **lines;                /* "Name: value" */
	size_t nlines;
	uint8_t *body;
	size_t body_len;
	int has_body;
	uint32_t timeout_ms;         /* asked by the request; 0: none */
	struct used_secret used[HTTP_MAX_SECRETS];
	size_t nused;
};

static int32_t fail(struct host_call *k, int32_t rc, enum err_code code, const char *msg)
{
	err_set(&k->e, code, "%s", msg);
	return rc;
}

static void req_release(struct http_req *r)
{
	for (size_t i = 0; i < r->nlines; i++) {
		secure_zero(r->lines[i], strlen(r->lines[i]));
		free(r->lines[i]);
	}
	for (size_t i = 0; i < r->nused; i++)
		secrets_value_free(r->used[i].value, r->used[i].len);
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

/* ---- secret templates ---- */

static int in_strlist(const json_t *list, const char *s)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v)
		if (json_string_value(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

/* The secret name, read once per request; from_handler: the template is in
 * the manifest's own headers, which may name any secret. */
static int32_t use_secret(struct host_call *k, struct actor *a, struct http_req *r,
			  const char *name, int from_handler, const struct used_secret **out)
{
	for (size_t i = 0; i < r->nused; i++)
		if (strcmp(r->used[i].name, name) == 0) {
			*out = &r->used[i];
			return 0;
		}
	if (!from_handler &&
	    !in_strlist(json_object_get(host_handler_config(a, GRANT_HTTP), "secrets"), name)) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "secret '%s' is not granted to this actor (list "
			"it in the http-client handler's secrets)", name);
		return HOST_EDENIED;
	}
	if (r->nused == HTTP_MAX_SECRETS)
		return fail(k, HOST_EINVAL, ERR_INVALID, "a request may use at most 8 secrets");
	if (!host_secrets(a))
		return fail(k, HOST_EFAILED, ERR_UNAVAILABLE, "this server keeps no secrets");
	struct used_secret *u = &r->used[r->nused];
	struct secret_info info;
	if (secrets_get(host_secrets(a), name, &u->value, &u->len, &info, &k->e))
		return host_errno(k->e.code);
	snprintf(u->name, sizeof(u->name), "%s", name);
	memcpy(u->fingerprint, info.fingerprint, sizeof(u->fingerprint));
	r->nused++;
	*out = u;
	return 0;
}

/* value with every {{secret:NAME}} filled in, into out (malloc'd). */
static int32_t expand(struct host_call *k, struct actor *a, struct http_req *r, const char *value,
		      int from_handler, struct buf *out)
{
	const char *p = value, *t;
	while ((t = strstr(p, TEMPLATE_OPEN))) {
		const char *name = t + strlen(TEMPLATE_OPEN), *end = strstr(name, "}}");
		char nm[SECRETS_NAME_MAX + 1];
		const struct used_secret *u = NULL;
		if (!end || (size_t)(end - name) > SECRETS_NAME_MAX)
			return fail(k, HOST_EINVAL, ERR_INVALID, "a {{secret:NAME}} template is "
				    "not closed or its name is too long");
		snprintf(nm, sizeof(nm), "%.*s", (int)(end - name), name);
		if (!secrets_name_valid(nm)) {
			err_set(&k->e, ERR_INVALID, "'%.64s' in a {{secret:NAME}} template is not a "
				"valid secret name", nm);
			return HOST_EINVAL;
		}
		int32_t rc = use_secret(k, a, r, nm, from_handler, &u);
		if (rc)
			return rc;
		if (buf_append(out, p, (size_t)(t - p)) || buf_append(out, u->value, u->len))
			return fail(k, HOST_EINVAL, ERR_TOO_LARGE, "a header is over 8 KiB with its "
				    "secrets");
		p = end + 2;
	}
	if (buf_puts(out, p))
		return fail(k, HOST_EINVAL, ERR_TOO_LARGE, "a header is over 8 KiB");
	return 0;
}

/* The headers as sent: the actor's, then the handler's (replacing an actor
 * header of the same name). A new object of name -> template value. */
static int32_t merge_headers(struct host_call *k, struct actor *a, const json_t *h,
			     json_t **out)
{
	const json_t *mine = json_object_get(host_handler_config(a, GRANT_HTTP), "headers");
	const char *name, *hname;
	json_t *v, *hv;
	if (h && (!json_is_object(h) || json_object_size(h) > HTTP_MAX_HEADERS))
		return fail(k, HOST_EINVAL, ERR_INVALID, "headers must be an object of at most 64 "
			    "string values");
	json_t *m = json_object();
	json_object_foreach((json_t *)h, name, v) {
		int replaced = 0;
		json_object_foreach((json_t *)mine, hname, hv)
			replaced |= strcasecmp(name, hname) == 0;
		if (!replaced)
			json_object_set(m, name, v);
	}
	json_object_foreach((json_t *)mine, hname, hv)
		json_object_set_new(m, hname, json_pack("{s:O}", "handler", hv));
	*out = m;
	return 0;
}

static int32_t header_line(struct host_call *k, struct actor *a, struct http_req *r,
			   const char *name, const json_t *v)
{
	int from_handler = json_is_object(v);
	const json_t *sv = from_handler ? json_object_get(v, "handler") : v;
	const char *value = json_string_value(sv);
	struct buf b;
	if (!value || strlen(value) != json_string_length(sv) || !header_valid(name, value)) {
		err_set(&k->e, ERR_INVALID, "header '%.64s' is not a valid header", name);
		return HOST_EINVAL;
	}
	if (header_forbidden(name)) {
		err_set(&k->e, ERR_INVALID, "header '%.64s' may not be set by actors", name);
		return HOST_EINVAL;
	}
	buf_init(&b, HTTP_HEADER_LINE_MAX);
	buf_printf(&b, "%s: ", name);
	size_t prefix = b.len;
	int32_t rc = expand(k, a, r, value, from_handler, &b);
	if (!rc && buf_append(&b, "", 1))            /* NUL-terminate */
		rc = fail(k, HOST_EINVAL, ERR_TOO_LARGE, "a header is over 8 KiB with its secrets");
	if (!rc && !header_valid(name, b.data + prefix)) {
		err_set(&k->e, ERR_INVALID, "header '%.64s' is not valid once its secrets are "
			"filled in (a value with a control character?)", name);
		rc = HOST_EINVAL;
	}
	if (!rc)
		r->lines[r->nlines++] = buf_steal(&b, NULL);
	if (b.data)
		secure_zero(b.data, b.len);
	buf_release(&b);
	return rc;
}

/* Parses the headers into lines (secrets filled in) and records them with
 * their templates (secret-looking values redacted). */
static int32_t parse_headers(struct host_call *k, struct actor *a, const json_t *h,
			     struct http_req *r)
{
	const char *name;
	json_t *v, *merged = NULL, *rec;
	int32_t rc = merge_headers(k, a, h, &merged);
	if (rc)
		return rc;
	if (!(r->lines = calloc(json_object_size(merged) + 1, sizeof(char *)))) {
		json_decref(merged);
		return fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	}
	rec = json_object();
	json_object_foreach(merged, name, v) {
		if ((rc = header_line(k, a, r, name, v)))
			break;
		json_object_set(rec, name, json_is_object(v) ? json_object_get(v, "handler") : v);
	}
	if (json_object_size(rec))
		json_object_set_new(k->in, "headers", headers_for_record(rec));
	json_decref(rec);
	json_decref(merged);
	if (r->nused) {
		json_t *used = json_array();
		for (size_t i = 0; i < r->nused; i++)
			json_array_append_new(used, json_pack("{s:s, s:s}", "name", r->used[i].name,
							      "fingerprint",
							      r->used[i].fingerprint));
		json_object_set_new(k->in, "secrets", used);
	}
	return rc;
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

static int32_t parse_request(struct host_call *k, struct actor *a, const uint8_t *text, size_t len,
			     struct http_req *r)
{
	static const char *const keys[] = {"method", "url", "headers", "body", "body_b64",
					   "timeout_ms", "relay", NULL};
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
	const json_t *t = json_object_get(d, "timeout_ms");
	if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
		  json_integer_value(t) > UINT32_MAX))
		return fail(k, HOST_EINVAL, ERR_INVALID, "timeout_ms must be a positive integer "
			    "of milliseconds");
	r->timeout_ms = t ? (uint32_t)json_integer_value(t) : 0;
	int32_t rc = parse_headers(k, a, json_object_get(d, "headers"), r);
	if (!rc)
		rc = parse_body(k, json_object_get(d, "body"), json_object_get(d, "body_b64"), r);
	if (!rc && r->has_body)
		json_object_set_new(k->in, "body", host_bytes_json(r->body, r->body_len));
	return rc;
}

/* ---- policy ---- */

static int host_in_list(const json_t *hosts, const struct fetch_url_parts *u)
{
	size_t i;
	const json_t *v;
	json_array_foreach(hosts, i, v)
		if (netpolicy_host_match(json_string_value(v), u->host, u->port))
			return 1;
	return 0;
}

static int32_t check_host(struct host_call *k, struct actor *a, const char *url)
{
	struct fetch_url_parts u;
	const json_t *cfg = host_handler_config(a, GRANT_HTTP);
	const json_t *policy = host_policy_list(a, GRANT_HTTP, "allowed_hosts");
	if (fetch_url_split(url, &u, &k->e))
		return HOST_EINVAL;
	if (u.has_userinfo)
		return fail(k, HOST_EINVAL, ERR_INVALID, "urls with credentials are not allowed; "
			    "use an Authorization header");
	if (!host_in_list(json_object_get(cfg, "allowed_hosts"), &u)) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "host '%s' (port %u) is not in the handler's "
			"allowed_hosts", u.host, u.port);
		return HOST_EDENIED;
	}
	if (policy && !host_in_list(policy, &u)) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "host '%s' (port %u) is not in "
			"permission_policy.http_client.allowed_hosts", u.host, u.port);
		return HOST_EDENIED;
	}
	return 0;
}

/* permission_policy.http_client: methods and the request's size. */
static int32_t check_policy(struct host_call *k, struct actor *a, const struct http_req *r)
{
	const json_t *methods = host_policy_list(a, GRANT_HTTP, "allowed_methods");
	int64_t max_req = host_policy_int(a, GRANT_HTTP, "max_request_bytes", -1);
	size_t i;
	const json_t *v;
	int ok = !methods;
	json_array_foreach(methods, i, v)
		ok |= json_string_value(v) && strcasecmp(json_string_value(v), r->method) == 0;
	if (!ok) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "method '%.16s' is not in "
			"permission_policy.http_client.allowed_methods", r->method);
		return HOST_EDENIED;
	}
	if (max_req >= 0 && r->body_len > (uint64_t)max_req) {
		err_set(&k->e, ERR_TOO_LARGE, "the request body (%zu bytes) is over "
			"permission_policy.http_client.max_request_bytes (%lld)", r->body_len,
			(long long)max_req);
		return HOST_ETOOBIG;
	}
	return 0;
}

/* The total timeout of this request: the handler's timeout_ms (else the
 * server's default), within the server's cap and the policy's `timeout`,
 * lowered by the request's own timeout_ms. */
static uint32_t timeout_of(struct actor *a, const struct http_req *r)
{
	uint32_t def, max;
	host_http_timeouts(a, &def, &max);
	const json_t *v = json_object_get(host_handler_config(a, GRANT_HTTP), "timeout_ms");
	uint64_t t = json_is_integer(v) && json_integer_value(v) > 0
		? (uint64_t)json_integer_value(v) : def;
	int64_t pol = host_policy_int(a, GRANT_HTTP, "timeout", -1);
	if (t > max)
		t = max;
	if (pol > 0 && (uint64_t)pol < t)
		t = (uint64_t)pol;
	if (r->timeout_ms && r->timeout_ms < t)
		t = r->timeout_ms;
	return (uint32_t)t;
}

struct addr_policy {
	int allow_private;
	const json_t *loopback_ports;   /* the handler's allow_loopback_ports */
};

static int port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return -1;
}

static int addr_check(void *user, const struct sockaddr *sa, size_t len, char *why, size_t n)
{
	const struct addr_policy *p = user;
	char text[64];
	enum netpolicy_class cls = netpolicy_classify(sa, len);
	if (netpolicy_address_allowed(sa, len, p->allow_private))
		return 0;
	if (cls == NETPOLICY_LOOPBACK && p->loopback_ports) {
		size_t i;
		const json_t *v;
		json_array_foreach(p->loopback_ports, i, v)
			if (json_is_integer(v) && json_integer_value(v) == port_of(sa))
				return 0;
	}
	netpolicy_address_text(sa, len, text, sizeof(text));
	snprintf(why, n, "address '%s' is %s%s", text, netpolicy_class_name(cls),
		 cls == NETPOLICY_LOOPBACK ? " (port not in allow_loopback_ports)" : "");
	return 1;
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

/* ---- children ---- */

/* 1 when the handler config cfg names secret `name` (in `secrets` or in a
 * template of its `headers`). */
static int config_grants_secret(const json_t *cfg, const char *name)
{
	const char *hn;
	json_t *hv;
	char pat[SECRETS_NAME_MAX + 16];
	if (in_strlist(json_object_get(cfg, "secrets"), name))
		return 1;
	snprintf(pat, sizeof(pat), TEMPLATE_OPEN "%s}}", name);
	json_object_foreach(json_object_get(cfg, "headers"), hn, hv)
		if (json_string_value(hv) && strstr(json_string_value(hv), pat))
			return 1;
	return 0;
}

/* Each {{secret:NAME}} in s must be granted to the parent. */
static int templates_covered(const json_t *parent, const char *s, struct err *e)
{
	const char *t;
	while (s && (t = strstr(s, TEMPLATE_OPEN))) {
		const char *name = t + strlen(TEMPLATE_OPEN), *end = strstr(name, "}}");
		char nm[SECRETS_NAME_MAX + 1];
		if (!end)
			return 1;
		snprintf(nm, sizeof(nm), "%.*s", (int)(end - name), name);
		if (!config_grants_secret(parent, nm)) {
			err_set(e, ERR_FORBIDDEN_PATH, "the child's http-client headers use secret "
				"'%s', which this actor was not granted", nm);
			return 0;
		}
		s = end + 2;
	}
	return 1;
}

int host_http_child_allowed(struct actor *a, const json_t *child, struct err *e)
{
	const json_t *mine = host_handler_config(a, GRANT_HTTP);
	const json_t *ports = json_object_get(mine, "allow_loopback_ports");
	const char *hn;
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(child, "secrets"), i, v)
		if (json_string_value(v) && !config_grants_secret(mine, json_string_value(v))) {
			err_set(e, ERR_FORBIDDEN_PATH, "the child's http-client asks for secret "
				"'%s', which this actor was not granted", json_string_value(v));
			return 0;
		}
	json_object_foreach(json_object_get(child, "headers"), hn, v)
		if (!templates_covered(mine, json_string_value(v), e))
			return 0;
	json_array_foreach(json_object_get(child, "allow_loopback_ports"), i, v) {
		int ok = 0;
		size_t j;
		const json_t *p;
		json_array_foreach(ports, j, p)
			ok |= json_equal((json_t *)p, v);
		if (!ok) {
			err_set(e, ERR_FORBIDDEN_PATH, "the child's http-client asks for loopback port "
				"%lld, which this actor was not granted",
				(long long)json_integer_value(v));
			return 0;
		}
	}
	return 1;
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

/* Replaces every copy of a used secret's value in *data by "[secret:NAME]". */
static void scrub(const struct http_req *r, uint8_t **data, size_t *len)
{
	for (size_t i = 0; i < r->nused; i++) {
		const struct used_secret *u = &r->used[i];
		if (u->len < SCRUB_MIN || !*data || !memmem(*data, *len, u->value, u->len))
			continue;
		struct buf b;
		char mark[SECRETS_NAME_MAX + 16];
		int mn = snprintf(mark, sizeof(mark), "[secret:%s]", u->name);
		const uint8_t *p = *data, *end = *data + *len, *hit;
		buf_init(&b, 0);
		while ((hit = memmem(p, (size_t)(end - p), u->value, u->len))) {
			buf_append(&b, p, (size_t)(hit - p));
			buf_append(&b, mark, (size_t)mn);
			p = hit + u->len;
		}
		buf_append(&b, p, (size_t)(end - p));
		buf_append(&b, "", 1);
		if (!b.data) {                  /* out of memory: never hand the value out */
			memset(*data, '*', *len);
			continue;
		}
		secure_zero(*data, *len);
		free(*data);
		*len = b.len - 1;
		*data = (uint8_t *)buf_steal(&b, NULL);
	}
}

static void record_response(struct host_call *k, const json_t *rj, const struct fetch_response *resp)
{
	json_object_set_new(k->out, "status", json_integer(resp->status));
	json_object_set_new(k->out, "headers",
			    headers_for_record(json_object_get(rj, "headers")));
	json_object_set_new(k->out, "body", host_bytes_json(resp->body, resp->body_len));
}

/* The error of a failed transfer, written once, with its cause; the url as
 * recorded (secret-looking query values redacted). */
static int32_t fetch_failed(struct host_call *k, enum err_code fc, const char *url,
			    uint32_t timeout_ms)
{
	json_t *shown = url_for_record(url);
	const char *u = json_string_value(shown);
	if (fc == ERR_TIMEOUT)
		err_set(&k->e, ERR_TIMEOUT, "'%.300s' did not answer within %u ms (timeout_ms)", u,
			timeout_ms);
	json_decref(shown);
	return map_fetch_err(fc);
}

/* A send-http under way: what the transfer and its finish need. The address
 * policy is the fetcher thread's while the transfer runs (its own copy of the
 * handler's ports: the actor may stop meanwhile). */
struct http_ctx {
	struct host_call k;
	struct http_req r;
	struct addr_policy ap;
	json_t *ports;
	uint32_t timeout, out;
	struct channel_relay *relay;  /* "relay": chunks while the body arrives */
};

static void http_ctx_free(void *p)
{
	struct http_ctx *x = p;
	json_decref(x->k.in);
	json_decref(x->k.out);
	req_release(&x->r);
	json_decref(x->ports);
	channel_relay_free(x->relay);
	free(x);
}

static void response_free(void *p)
{
	fetch_response_release(p);
	free(p);
}

static void on_fetched(void *user, enum err_code rc, const struct err *err,
		       struct fetch_response *resp)
{
	struct host_wait *w = user;
	struct fetch_response *keep = rc ? NULL : malloc(sizeof(*keep));
	if (host_wait_claim(w)) {
		w->rc = rc ? rc : keep ? ERR_OK : ERR_NOMEM;
		if (err)
			w->e = *err;
		if (keep) {
			*keep = *resp;
			w->result = keep;
			w->result_free = response_free;
			keep = NULL;
			resp = NULL;
		}
	}
	host_wait_settle(w);
	free(keep);
	fetch_response_release(resp);
}

/* The rest of send-http once the transfer ended (or its wait timed out). */
static int32_t http_result(struct http_ctx *x, struct wasm_caller *c, struct actor *a,
			   struct host_wait *w)
{
	struct host_call *k = &x->k;
	struct fetch_response *resp = w->result;
	if (w->timed_out)
		return fetch_failed(k, ERR_TIMEOUT, x->r.url, x->timeout);
	if (w->rc) {
		k->e = w->e;
		if (w->rc == ERR_NOMEM)
			err_set(&k->e, ERR_NOMEM, "out of memory");
		return fetch_failed(k, w->rc, x->r.url, x->timeout);
	}
	scrub(&x->r, &resp->body, &resp->body_len);
	scrub(&x->r, (uint8_t **)&resp->headers, &resp->headers_len);
	json_t *rj = response_json(resp);
	char *text = rj ? json_compact(rj) : NULL;
	int32_t rc;
	if (!text) {
		rc = fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	} else {
		record_response(k, rj, resp);
		rc = host_return_bytes(c, a, x->out, text, strlen(text));
	}
	free(text);
	json_decref(rj);
	return rc;
}

static void http_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		      struct wasm_value *results)
{
	struct http_ctx *x = ctx;
	if (x->relay)
		json_object_set_new(x->k.out, "relayed",
				    json_integer((json_int_t)channel_relay_record(x->relay)));
	x->k.rc = http_result(x, c, a, w);
	host_call_end(&x->k, a, MOD, "send-http", results);
	x->k.in = x->k.out = NULL;     /* host_call_end gave them to the event */
}

/* Starts the transfer; *w_out answers it. */
static int32_t start(struct http_ctx *x, struct actor *a, struct host_wait **w_out)
{
	struct host_call *k = &x->k;
	struct http_req *r = &x->r;
	x->ports = json_deep_copy(json_object_get(host_handler_config(a, GRANT_HTTP),
						  "allow_loopback_ports"));
	x->ap = (struct addr_policy){
		.allow_private = supervisor_http_allow_private(host_supervisor(a)),
		.loopback_ports = x->ports,
	};
	struct fetch_request fr = {
		.method = r->method, .url = r->url, .headers = (const char *const *)r->lines,
		.nheaders = r->nlines, .body = r->has_body ? r->body : NULL,
		.body_len = r->body_len, .addr_check = addr_check, .addr_check_user = &x->ap,
	};
	x->timeout = timeout_of(a, r);
	int64_t max_resp = host_policy_int(a, GRANT_HTTP, "max_response_bytes", -1);
	struct fetch_limits lim = {
		.max_bytes = max_resp >= 0 && (uint64_t)max_resp < HTTP_BODY_MAX
			? (size_t)max_resp : HTTP_BODY_MAX,
		.connect_timeout_ms = x->timeout < HTTP_CONNECT_TIMEOUT_MS ? x->timeout
									   : HTTP_CONNECT_TIMEOUT_MS,
		.total_timeout_ms = x->timeout, .max_redirects = -1,
	};
	if (lim.max_bytes == 0)
		lim.max_bytes = 1;          /* 0 would mean the default */
	json_object_set_new(k->in, "timeout_ms", json_integer(x->timeout));
	const json_t *relay = json_object_get(x->r.doc, "relay");
	int32_t rrc = channel_relay_new(a, relay, &x->relay, &k->e);
	if (rrc)
		return rrc;
	if (x->relay) {
		json_object_set(k->in, "relay", (json_t *)relay);
		for (size_t i = 0; i < r->nused; i++)    /* relayed chunks are scrubbed too */
			channel_relay_secret(x->relay, r->used[i].name, r->used[i].value,
					     r->used[i].len);
		fr.on_data = channel_relay_feed;
		fr.on_data_user = x->relay;
	}
	struct host_wait *w = host_wait_new();
	if (!w) {
		if (x->relay)
			channel_relay_feed(x->relay, NULL, 0);   /* no transfer will */
		return fail(k, HOST_EFAILED, ERR_NOMEM, "out of memory");
	}
	enum err_code fc = fetch_start(supervisor_fetcher(host_supervisor(a)), &fr, &lim,
				       on_fetched, w, &k->e);
	if (fc) {
		if (x->relay)
			channel_relay_feed(x->relay, NULL, 0);
		host_wait_unref(w);
		host_wait_unref(w);
		return fetch_failed(k, fc, r->url, x->timeout);
	}
	*w_out = w;
	return 0;
}

static enum err_code h_send_http(struct wasm_caller *c, void *user, const struct wasm_value *args,
				 struct wasm_value *results, struct err *err)
{
	uint8_t *text = NULL, *probe = NULL;
	uint32_t len = args[1].of.i32;
	struct host_wait *w = NULL;
	if (host_disallowed(user, GRANT_HTTP, MOD, "send-http", results, 0))
		return ERR_OK;
	struct http_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(err, ERR_NOMEM, "out of memory");
	struct host_call *k = &x->k;
	host_call_init(k);
	x->out = args[2].of.i32;
	k->rc = host_read(c, args[0].of.i32, len, HTTP_REQUEST_MAX, &text);
	if (k->rc)
		err_set(&k->e, ERR_INVALID, k->rc == HOST_ETOOBIG ? "the request is over 8 MiB"
			: "the request is outside the memory");
	if (!k->rc && (k->rc = host_read(c, x->out, 8, 8, &probe)))
		err_set(&k->e, ERR_INVALID, "the out slot is outside the memory");
	if (!k->rc)
		k->rc = parse_request(k, user, text, len, &x->r);
	if (!k->rc)
		k->rc = check_host(k, user, x->r.url);
	if (!k->rc)
		k->rc = check_policy(k, user, &x->r);
	if (!k->rc)
		k->rc = start(x, user, &w);
	free(text);
	free(probe);
	if (k->rc) {
		host_call_end(k, user, MOD, "send-http", results);
		k->in = k->out = NULL;
		http_ctx_free(x);
		return ERR_OK;
	}
	/* the transfer ends within its timeout; the grace only guards that promise */
	return host_wait_end(c, user, w, x->timeout + HTTP_WAIT_GRACE_MS, http_done, x,
			     http_ctx_free, results, err);
}

const struct host_fn host_http_fns[] = {
	{MOD, "send-http", GRANT_HTTP, 3, 1, {WASM_I32, WASM_I32, WASM_I32}, {WASM_I32},
	 h_send_http},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
