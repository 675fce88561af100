/* guard.c - what a request must show before its body is read: who may send it
 * (issue 12, items 2 and 4).
 *
 * Without a token the server listens on loopback only (config.c), and then the
 * attackers are web pages in the user's browser:
 *   - DNS rebinding: a page on evil.example whose name now points at 127.0.0.1
 *     talks to us with `Host: evil.example`. Only loopback names and addresses
 *     are accepted as Host (any port), on every route that is not public.
 *   - Cross-site requests: a page on another site (or another port of localhost:
 *     that is "same-site", not "same-origin") POSTs to us. A state-changing
 *     request (not GET/HEAD/OPTIONS) that a browser marks as cross-origin
 *     (Sec-Fetch-Site other than same-origin/none, an Origin whose authority is
 *     not our Host, or Origin: null) is refused. curl sends neither header and
 *     keeps working; the dashboard we serve is same-origin.
 * With a token, the token (or the SameSite=Strict session cookie, which
 * session.c also refuses cross-site) is the check.
 *
 * Either way, a body that a browser can send without asking (a CORS "simple"
 * type: text/plain, multipart/form-data, application/x-www-form-urlencoded) is
 * never taken from a browser: 415. curl -d also sends the urlencoded type and
 * Node's fetch text/plain, so those are refused only when the request carries a
 * browser's marks: Origin, Sec-Fetch-Site (every current browser sends one of
 * them on a POST) or an Accept that asks for HTML (what a form submission sends,
 * in any browser). multipart/form-data is refused from anyone on the JSON routes.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* "localhost", "x.localhost", 127.0.0.0/8, [::1]; host without the port. */
static int loopback_name(const char *h, size_t n)
{
	static const char lh[] = "localhost";
	size_t k = sizeof(lh) - 1;
	if (n && h[n - 1] == '.')
		n--;                     /* "localhost." */
	if (n == k && !strncasecmp(h, lh, k))
		return 1;
	if (n > k + 1 && h[n - k - 1] == '.' && !strncasecmp(h + n - k, lh, k))
		return 1;
	if (n == 5 && !memcmp(h, "[::1]", 5))
		return 1;
	if (n < 9 || n > 15 || strncmp(h, "127.", 4))
		return 0;
	int dots = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '.')
			dots++;
		else if (h[i] < '0' || h[i] > '9')
			return 0;
	}
	return dots == 3;
}

/* The host part of an authority "host[:port]" (IPv6 in brackets). */
static size_t host_len(const char *a)
{
	if (*a == '[') {
		const char *e = strchr(a, ']');
		return e ? (size_t)(e - a) + 1 : strlen(a);
	}
	return strcspn(a, ":");
}

static int state_changing(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

/* The authority of an Origin ("http://h:p" -> "h:p"), NULL for "null" or junk. */
static const char *origin_authority(const char *origin)
{
	const char *p = strstr(origin, "://");
	return p && p[3] ? p + 3 : NULL;
}

static enum err_code check_site(struct http_request *req, struct err *err)
{
	const char *host = http_request_header(req, "Host");
	if (host && !loopback_name(host, host_len(host)))
		return err_set(err, ERR_BAD_HOST, "host '%.100s' is not this server: without a "
			       "token only loopback names are served (set a token to serve "
			       "others)", host);
	if (!state_changing(http_request_method(req)))
		return ERR_OK;
	const char *site = http_request_header(req, "Sec-Fetch-Site");
	if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none"))
		return err_set(err, ERR_CROSS_SITE, "a %.20s request from a web page on another "
			       "site is refused", site);
	const char *origin = http_request_header(req, "Origin");
	if (!origin)
		return ERR_OK;
	const char *auth = origin_authority(origin);
	if (!auth || !host || strcasecmp(auth, host))
		return err_set(err, ERR_CROSS_SITE, "a request from origin '%.100s' is refused "
			       "(not this server's origin)", origin);
	return ERR_OK;
}

static int from_browser(struct http_request *req)
{
	const char *accept = http_request_header(req, "Accept");
	return http_request_header(req, "Origin") || http_request_header(req, "Sec-Fetch-Site") ||
	       (accept && strstr(accept, "text/html"));
}

/* 0 for types a browser cannot send without a preflight; 1 urlencoded or
 * text/plain; 2 multipart/form-data. */
static int simple_type(const char *ct)
{
	static const char *const types[] = {"application/x-www-form-urlencoded", "text/plain",
					    "multipart/form-data"};
	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == n && !strncasecmp(ct, types[i], n))
			return i < 2 ? 1 : 2;
	return 0;
}

static enum err_code check_type(struct http_request *req, int json_body, struct err *err)
{
	const char *ct = http_request_header(req, "Content-Type");
	int simple = simple_type(ct);
	if (!simple || !state_changing(http_request_method(req)))
		return ERR_OK;
	if (from_browser(req) || (json_body && simple == 2))
		return err_set(err, ERR_UNSUPPORTED, "content type '%.60s' is not accepted here "
			       "(send application/json%s)", ct,
			       json_body ? " or application/toml" : " or application/octet-stream");
	return ERR_OK;
}

enum err_code guard_admit(const struct api *api, struct http_request *req, int public_,
			  int json_body, struct err *err)
{
	enum err_code rc = ERR_OK;
	if (!public_ && (!api->cfg.token || !*api->cfg.token))
		rc = check_site(req, err);
	if (!rc)
		rc = check_type(req, json_body, err);
	return rc;
}
