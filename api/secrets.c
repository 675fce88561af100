/* secrets.c - /secrets: write-only named secrets (src/secrets.h).
 *
 * PUT /secrets/{name} takes the value as the raw body (1 byte to 64 KiB) and
 * answers its metadata; nothing ever answers a value. GET /secrets lists
 * names, sizes, times and keyed fingerprints; GET /secrets/{name} is one of
 * them; DELETE /secrets/{name} removes one. Writes fsync, so they run on the
 * worker pool. The body buffer is wiped after the write.
 */
#include "api/api_int.h"

#include <string.h>

#include "src/secrets.h"
#include "src/util/crypto.h"

static int ready(struct api_call *c, int with_name)
{
	if (!c->api->cfg.secrets) {
		api_problem(c, ERR_UNAVAILABLE, "this server keeps no secrets");
		return 0;
	}
	if (with_name && !secrets_name_valid(c->params[0])) {
		api_problem(c, ERR_BAD_ID, "a secret name is 1 to 128 of [A-Za-z0-9_.-], not "
			    "starting with '.'");
		return 0;
	}
	return 1;
}

static json_t *info_json(const struct secret_info *i)
{
	json_t *o = json_pack("{s:s, s:I, s:s}", "name", i->name, "size", (json_int_t)i->size,
			      "fingerprint", i->fingerprint);
	json_object_set_new(o, "created_at", api_time_json(i->created_ms));
	json_object_set_new(o, "updated_at", api_time_json(i->updated_ms));
	return o;
}

static void job_put(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	size_t len;
	uint8_t *body = (uint8_t *)http_request_body(c->req, &len);
	struct secret_info info;
	int created = 0;
	enum err_code rc = secrets_put(c->api->cfg.secrets, c->params[0], body, len, &created,
				       &info, &e);
	secure_zero(body, len);
	if (rc) {
		api_problem_err(c, &e);
		return;
	}
	char loc[200];
	snprintf(loc, sizeof(loc), "/secrets/%s", c->params[0]);
	const char *h[] = {"Location", loc, NULL};
	api_json_headers(c, created ? 201 : 200, info_json(&info), h);
}

void h_secret_put(struct api_call *c)
{
	size_t len;
	if (!ready(c, 1))
		return;
	/* An empty value is almost always a client that sent no body (curl -X PUT
	 * without --data): replacing the secret with it would lose the value. */
	http_request_body(c->req, &len);
	if (len == 0) {
		api_problem(c, ERR_INVALID, "the body is empty: nothing to store (send the "
			    "value, e.g. curl --data-binary @file)");
		return;
	}
	api_defer(c, job_put);
}

static void job_delete(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	if (secrets_delete(c->api->cfg.secrets, c->params[0], &e)) {
		api_problem_err(c, &e);
		return;
	}
	api_empty(c, 204, NULL);
}

void h_secret_delete(struct api_call *c)
{
	if (ready(c, 1))
		api_defer(c, job_delete);
}

void h_secret_get(struct api_call *c)
{
	struct err e = {0};
	struct secret_info info;
	if (!ready(c, 1))
		return;
	if (secrets_info(c->api->cfg.secrets, c->params[0], &info, &e)) {
		api_problem_err(c, &e);
		return;
	}
	api_json(c, 200, info_json(&info));
}

static void list_one(void *user, const struct secret_info *info)
{
	json_array_append_new(user, info_json(info));
}

void h_secrets_list(struct api_call *c)
{
	struct err e = {0};
	if (!ready(c, 0))
		return;
	json_t *items = json_array();
	if (secrets_foreach(c->api->cfg.secrets, list_one, items, &e)) {
		json_decref(items);
		api_problem_err(c, &e);
		return;
	}
	api_json(c, 200, json_pack("{s:o}", "items", items));
}
