/* session.c - browser sessions: the dashboard trades the bearer token for a
 * short-lived cookie once, because EventSource cannot send an Authorization header
 * and the long-lived token must never travel in a URL.
 *
 * POST /session with `Authorization: Bearer <token>` answers 204 and
 *   Set-Cookie: theater_session=<64 hex>; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict
 * (`; Secure` too when a TLS proxy says X-Forwarded-Proto: https). POST /session
 * with a live cookie and no token renews it: a new value, valid another hour, while
 * the old one keeps working for a minute (requests in flight); renewals stop 12 hours
 * after the token was shown, so a stolen cookie dies on its own. DELETE /session
 * ends the session and clears the cookie.
 *
 * The table is small and bounded (API_MAX_SESSIONS; a new session evicts the one
 * closest to expiry), kept in memory only (a restart signs everyone out), and holds
 * SHA-256 digests of the cookie values, never the values. Every lookup compares the
 * digest with every slot in constant time. A cookie is refused on a request that a
 * browser marks as coming from another site (Sec-Fetch-Site), on top of SameSite.
 * Without a configured token everything is open and no cookie is issued.
 *
 * Lock: a spin lock in the zero-initialised table (api_new callocs struct api, so
 * the table needs no init or release); it guards a scan of 64 slots, no calls. */
#include "api/api_int.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "src/util/crypto.h"

#define COOKIE_NAME "theater_session"
#define COOKIE_HEX 64                     /* 32 random bytes */
#define TTL_MS (3600 * 1000LL)
#define RENEW_LIMIT_MS (12 * 3600 * 1000LL)
#define GRACE_MS (60 * 1000LL)

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void table_lock(struct api_sessions *t)
{
	while (__atomic_test_and_set(&t->lock, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void table_unlock(struct api_sessions *t)
{
	__atomic_clear(&t->lock, __ATOMIC_RELEASE);
}

/* Compares n bytes in time that depends on n only. */
static int ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

int session_bearer_ok(struct api *api, struct http_request *req)
{
	const char *token = api->cfg.token;
	const char *h = http_request_header(req, "Authorization");
	if (!token || !*token || !h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	uint8_t want[SHA256_LEN], got[SHA256_LEN];
	sha256(token, strlen(token), want);   /* equal lengths: no length leak */
	sha256(h, strlen(h), got);
	return ct_equal(want, got, SHA256_LEN);
}

/* Finds the theater_session cookie in the Cookie header; 1 and its digest when
 * there is one of the right shape. */
static int cookie_digest(struct http_request *req, uint8_t digest[SHA256_LEN])
{
	const char *h = http_request_header(req, "Cookie");
	size_t nlen = strlen(COOKIE_NAME);
	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		const char *end = strchr(h, ';');
		size_t len = end ? (size_t)(end - h) : strlen(h);
		while (len && h[len - 1] == ' ')
			len--;
		if (len == nlen + 1 + COOKIE_HEX && strncmp(h, COOKIE_NAME "=", nlen + 1) == 0) {
			uint8_t raw[COOKIE_HEX / 2];
			if (hex_decode(h + nlen + 1, raw, sizeof(raw)) != ERR_OK)
				return 0;
			sha256(h + nlen + 1, COOKIE_HEX, digest);
			return 1;
		}
		h = end;
	}
	return 0;
}

/* Index of the live session with this digest, or -1; called with the lock held.
 * Looks at every slot whatever it finds. */
static int find_locked(struct api_sessions *t, const uint8_t digest[SHA256_LEN], int64_t now)
{
	int found = -1;
	for (int i = 0; i < API_MAX_SESSIONS; i++) {
		int live = t->slot[i].expires_ms > now;
		if (ct_equal(t->slot[i].digest, digest, SHA256_LEN) && live)
			found = i;
	}
	return found;
}

/* A browser says where a request comes from; a cookie never counts for another site. */
static int same_site(struct http_request *req)
{
	const char *site = http_request_header(req, "Sec-Fetch-Site");
	return !site || strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0;
}

int session_cookie_ok(struct api *api, struct http_request *req)
{
	uint8_t digest[SHA256_LEN];
	if (!cookie_digest(req, digest) || !same_site(req))
		return 0;
	table_lock(&api->sessions);
	int i = find_locked(&api->sessions, digest, now_ms());
	table_unlock(&api->sessions);
	return i >= 0;
}

/* Stores a new session (evicting the one closest to expiry when full) and writes
 * its cookie value into hex_out. */
static enum err_code session_add(struct api_sessions *t, int64_t login_ms, char *hex_out,
				 struct err *err)
{
	uint8_t raw[COOKIE_HEX / 2];
	enum err_code rc = random_bytes(raw, sizeof(raw));
	if (rc)
		return err_set(err, rc, "cannot make a session: no random bytes");
	hex_encode(raw, sizeof(raw), hex_out);
	int64_t now = now_ms();
	table_lock(t);
	int victim = 0;
	for (int i = 1; i < API_MAX_SESSIONS; i++)
		if (t->slot[i].expires_ms < t->slot[victim].expires_ms)
			victim = i;
	sha256(hex_out, COOKIE_HEX, t->slot[victim].digest);
	t->slot[victim].expires_ms = now + TTL_MS;
	t->slot[victim].login_ms = login_ms;
	table_unlock(t);
	return ERR_OK;
}

static void set_cookie(struct api_call *c, const char *value, int max_age_s)
{
	const char *proto = http_request_header(c->req, "X-Forwarded-Proto");
	int secure = proto && strcasecmp(proto, "https") == 0;
	char cookie[200];
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s; Path=/; Max-Age=%d; HttpOnly; "
		 "SameSite=Strict%s", value, max_age_s, secure ? "; Secure" : "");
	const char *h[] = {"Set-Cookie", cookie, "Cache-Control", "no-store", NULL};
	api_empty(c, 204, h);
}

static void unauthorized(struct api_call *c, const char *detail)
{
	char *body = problem_body(401, err_code_name(ERR_UNAUTHORIZED), detail,
				  http_request_path(c->req));
	const char *h[] = {"WWW-Authenticate", "Bearer realm=\"theater\"", "Cache-Control",
			   "no-store", NULL};
	api_bytes(c, 401, "application/problem+json", body, body ? strlen(body) : 0, h);
}

/* The session a renewal may extend: live, the request from this site, and its
 * token shown less than RENEW_LIMIT_MS ago. Its old value expires after GRACE_MS.
 * Returns the login time, or -1. */
static int64_t renewable(struct api *api, struct http_request *req)
{
	uint8_t digest[SHA256_LEN];
	if (!cookie_digest(req, digest) || !same_site(req))
		return -1;
	struct api_sessions *t = &api->sessions;
	int64_t now = now_ms(), login = -1;
	table_lock(t);
	int i = find_locked(t, digest, now);
	if (i >= 0 && now - t->slot[i].login_ms < RENEW_LIMIT_MS) {
		login = t->slot[i].login_ms;
		if (t->slot[i].expires_ms > now + GRACE_MS)
			t->slot[i].expires_ms = now + GRACE_MS;
	}
	table_unlock(t);
	return login;
}

void h_session_create(struct api_call *c)
{
	const char *token = c->api->cfg.token;
	if (!token || !*token) {
		api_empty(c, 204, NULL);     /* nothing to protect: no cookie needed */
		return;
	}
	int64_t login = session_bearer_ok(c->api, c->req) ? now_ms() : renewable(c->api, c->req);
	if (login < 0) {
		unauthorized(c, "missing or wrong bearer token (send 'Authorization: Bearer "
			     "<token>'), or a session that can no longer be renewed");
		return;
	}
	char value[COOKIE_HEX + 1];
	struct err e = {0};
	if (session_add(&c->api->sessions, login, value, &e)) {
		api_problem_err(c, &e);
		return;
	}
	set_cookie(c, value, (int)(TTL_MS / 1000));
}

void h_session_delete(struct api_call *c)
{
	uint8_t digest[SHA256_LEN];
	if (cookie_digest(c->req, digest) && same_site(c->req)) {
		struct api_sessions *t = &c->api->sessions;
		table_lock(t);
		int i = find_locked(t, digest, now_ms());
		if (i >= 0)
			memset(&t->slot[i], 0, sizeof(t->slot[i]));
		table_unlock(t);
	}
	set_cookie(c, "", 0);
}
