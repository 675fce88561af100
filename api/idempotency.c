/* idempotency.c - Idempotency-Key on spawns, messages and requests.
 *
 * A client that lost an answer retries with the same key and gets the first
 * outcome instead of doing the work twice. The key is claimed in SQLite before
 * the handler runs (so two concurrent retries cannot both do the work), and the
 * answer is stored when it is sent, unless it is one worth retrying (5xx, 429):
 * then the key is forgotten. Keys live for API_IDEM_WINDOW_MS, across restarts;
 * keys still in progress when the server died are forgotten at start (their
 * request died with the process; see docs/durability.md for that window). */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/db.h"
#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/supervisor.h"

#define API_IDEM_WINDOW_MS (24LL * 3600 * 1000)
#define API_IDEM_KEY_MAX 200

static int key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > API_IDEM_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return 0;
	return 1;
}

/* What tells a retry from another request under the same key and scope (method
 * and path): the body and the query, which changes what is done (?wait=created
 * or ?wait=running). Without a query it is the body's SHA-256, as it was before
 * the query counted, so keys stored by an older server still replay; with one,
 * the query comes first, after a NUL-framed length that no text body starts
 * with. */
static enum err_code fingerprint(const struct http_request *req, char sha_out[65])
{
	size_t len = 0;
	const uint8_t *body = http_request_body(req, &len);
	const char *query = http_request_raw_query(req);
	uint8_t d[32];
	if (!*query) {
		sha256(body, len, d);
	} else {
		struct sha256_ctx ctx;
		char frame[32];
		int n = snprintf(frame, sizeof(frame), "%c?%zu%c", '\0', strlen(query), '\0');
		if (sha256_begin(&ctx))
			return ERR_NOMEM;
		sha256_update(&ctx, frame, (size_t)n);
		sha256_update(&ctx, query, strlen(query));
		sha256_update(&ctx, body, len);
		sha256_end(&ctx, d);
	}
	hex_encode(d, 32, sha_out);
	return ERR_OK;
}

/* The first outcome, sent again. */
static void replay(struct api_call *c, const struct db_idem *x)
{
	const char *h[] = {"Idempotent-Replayed", "true", x->location ? "Location" : NULL,
			   x->location, NULL};
	void *body = NULL;
	if (x->body_len && (body = malloc(x->body_len)))
		memcpy(body, x->body, x->body_len);
	api_bytes(c, x->status, x->content_type, body, body ? x->body_len : 0, h);
}

int api_idem_begin(struct api_call *c)
{
	const char *key = http_request_header(c->req, "Idempotency-Key");
	if (!key)
		return 0;
	if (!key_ok(key)) {
		api_problem(c, ERR_INVALID, "Idempotency-Key must be 1 to 200 visible ASCII "
			    "characters");
		return 1;
	}
	char sha[65];
	if (fingerprint(c->req, sha)) {
		api_problem(c, ERR_NOMEM, "out of memory");
		return 1;
	}
	char *scope = NULL;
	if (asprintf(&scope, "%s %s", http_request_method(c->req),
		     http_request_raw_path(c->req)) < 0) {
		api_problem(c, ERR_NOMEM, "out of memory");
		return 1;
	}
	struct db *db = supervisor_db_raw(c->api->cfg.sup);
	struct db_idem x;
	struct err e = {0};
	if (db_idem_claim(db, key, scope, sha, db_now_ms(), API_IDEM_WINDOW_MS, &x, &e)) {
		free(scope);
		api_problem_err(c, &e);
		return 1;
	}
	if (x.claimed) {
		c->idem_key = strdup(key);
		c->idem_scope = scope;
		return 0;
	}
	free(scope);
	if (strcmp(x.request_sha, sha) != 0)
		api_problem(c, ERR_IDEM_REUSED, "this Idempotency-Key was used with a different "
			    "request body or query; use a new key for a new request");
	else if (x.status == 0)
		api_problem(c, ERR_IDEM_PENDING, "the first request with this Idempotency-Key is "
			    "still in progress; retry later");
	else
		replay(c, &x);
	db_idem_release(&x);
	return 1;
}

void api_idem_finish(struct api_call *c, int status, const char *content_type,
		     const void *data, size_t len, const char *const *headers)
{
	if (!c->idem_key)
		return;
	struct db *db = supervisor_db_raw(c->api->cfg.sup);
	struct err e = {0};
	const char *location = NULL;
	for (; headers && headers[0]; headers += 2)
		if (strcmp(headers[0], "Location") == 0)
			location = headers[1];
	enum err_code rc = status >= 500 || status == 429
		? db_idem_forget(db, c->idem_key, c->idem_scope, &e)
		: db_idem_finish(db, c->idem_key, c->idem_scope, status, content_type, location,
				 data, len, &e);
	if (rc)
		log_error_limited("api", "cannot store the outcome of Idempotency-Key '%s': %s",
				  c->idem_key, e.msg);
	free(c->idem_key);
	free(c->idem_scope);
	c->idem_key = c->idem_scope = NULL;
}

void api_idem_forget_pending(struct api *api)
{
	struct err e = {0};
	if (api->cfg.sup && db_idem_forget(supervisor_db_raw(api->cfg.sup), NULL, NULL, &e))
		log_error("api", "cannot forget unfinished idempotency keys: %s", e.msg);
}
