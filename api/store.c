/* store.c - the content store over HTTP, and the package cache listing. Store
 * writes fsync, so they run on the worker pool. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"

static int check_store_id(struct api_call *c)
{
	if (store_id_valid(c->params[0]))
		return 1;
	api_problem(c, ERR_BAD_ID, "a store id is 1 to 64 of [A-Za-z0-9_.-], not starting "
		    "with '.'");
	return 0;
}

static void job_put(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	size_t len;
	const uint8_t *data = http_request_body(c->req, &len);
	char hash[65];
	if (store_put(c->api->cfg.store, c->params[0], data, len, hash, &e)) {
		api_problem_err(c, &e);
		return;
	}
	char ref[200], loc[200];
	snprintf(ref, sizeof(ref), "store://%s/hash/%s", c->params[0], hash);
	snprintf(loc, sizeof(loc), "/store/%s/hash/%s", c->params[0], hash);
	const char *h[] = {"Location", loc, NULL};
	api_json_headers(c, 201, json_pack("{s:s, s:s, s:I}", "reference", ref, "sha256", hash,
					   "size", (json_int_t)len), h);
}

void h_store_put(struct api_call *c)
{
	if (check_store_id(c))
		api_defer(c, job_put);
}

static void job_get(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	uint8_t *data = NULL;
	size_t len = 0;
	if (store_get(c->api->cfg.store, c->params[0], c->params[1],
		      c->api->cfg.max_store_object, &data, &len, &e)) {
		api_problem_err(c, &e);
		return;
	}
	char etag[70];
	snprintf(etag, sizeof(etag), "\"%s\"", c->params[1]);
	const char *h[] = {"Cache-Control", "public, max-age=31536000, immutable", "ETag", etag,
			   NULL};
	const char *inm = http_request_header(c->req, "If-None-Match");
	if (inm && strcmp(inm, etag) == 0) {
		free(data);
		api_empty(c, 304, h);
		return;
	}
	api_bytes(c, 200, "application/octet-stream", data, len, h);
}

void h_store_get(struct api_call *c)
{
	if (!check_store_id(c))
		return;
	if (!sha256_hex_valid(c->params[1])) {
		api_problem(c, ERR_BAD_ID, "a content hash is 64 lowercase hex digits");
		return;
	}
	api_defer(c, job_get);
}

/* The label body: a bare hash, a store reference, or {"hash": "..."}. */
static int label_target(struct api_call *c, char hash[65])
{
	size_t len;
	const char *body = (const char *)http_request_body(c->req, &len);
	char text[300] = "";
	json_t *j = json_loadb(body, len, 0, NULL);
	if (j && json_is_string(json_object_get(j, "hash")))
		snprintf(text, sizeof(text), "%s", json_string_value(json_object_get(j, "hash")));
	else if (!j && len < sizeof(text))
		memcpy(text, body, len);
	json_decref(j);
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	const char *h = strrchr(text, '/');
	h = h ? h + 1 : text;
	if (!sha256_hex_valid(h))
		return 0;
	memcpy(hash, h, 65);
	return 1;
}

static void job_label_put(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	char hash[65];
	if (!label_target(c, hash)) {
		api_problem(c, ERR_INVALID, "the body must be a content hash, a "
			    "store://<id>/hash/<sha256> reference or {\"hash\": \"...\"}");
		return;
	}
	if (store_label_set(c->api->cfg.store, c->params[0], c->params[1], hash, &e)) {
		api_problem_err(c, &e);
		return;
	}
	api_empty(c, 204, NULL);
}

static int check_label(struct api_call *c)
{
	if (!check_store_id(c))
		return 0;
	if (store_label_valid(c->params[1]))
		return 1;
	api_problem(c, ERR_BAD_ID, "a label is 1 to 128 of [A-Za-z0-9_.-], not starting with '.'");
	return 0;
}

void h_label_put(struct api_call *c)
{
	if (check_label(c))
		api_defer(c, job_label_put);
}

static void job_label_get(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	char hash[65];
	if (store_label_get(c->api->cfg.store, c->params[0], c->params[1], hash, &e)) {
		api_problem_err(c, &e);
		return;
	}
	char ref[200];
	snprintf(ref, sizeof(ref), "store://%s/hash/%s", c->params[0], hash);
	api_json(c, 200, json_pack("{s:s, s:s, s:s}", "label", c->params[1], "sha256", hash,
				   "reference", ref));
}

void h_label_get(struct api_call *c)
{
	if (check_label(c))
		api_defer(c, job_label_get);
}

static void package_one(void *user, const struct resolver_cache_entry *e)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "reference", e->reference, "sha256",
			      e->sha256, "size", (json_int_t)e->size, "hits", (json_int_t)e->hits);
	json_object_set_new(o, "last_used", api_time_json(e->last_used_ms));
	json_array_append_new(user, o);
}

void h_packages(struct api_call *c)
{
	json_t *items = json_array();
	resolver_cache_foreach(c->api->cfg.resolver, package_one, items);
	struct resolver_stats st;
	resolver_stats_get(c->api->cfg.resolver, &st);
	json_t *stats = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "hits", (json_int_t)st.hits,
				  "misses", (json_int_t)st.misses, "fetches", (json_int_t)st.fetches,
				  "evictions", (json_int_t)st.evictions, "bytes", (json_int_t)st.bytes,
				  "entries", (json_int_t)st.entries);
	api_json(c, 200, json_pack("{s:o, s:o}", "items", items, "cache", stats));
}
