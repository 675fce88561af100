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
	if (len == 0) {
		api_problem(c, ERR_INVALID, "the body is empty: nothing to store (send the bytes, "
			    "e.g. curl --data-binary @file)");
		return;
	}
	/* New bytes on disk are new work: refused (503) where a spawn would be, so
	 * uploads cannot fill the space kept for running actors (--min-free-disk). */
	if (headroom_check(supervisor_headroom(c->api->cfg.sup), &e) ||
	    store_put(c->api->cfg.store, c->params[0], data, len, hash, &e)) {
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
	if (api_not_modified(c, etag)) {
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

#define LABEL_BODY_HELP "the body must be a content hash, a " \
	"store://<id>/hash/<sha256> reference or {\"hash\": \"...\"}"

/* {"hash": "..."} and nothing else, as a spawn body has no key it ignores: a
 * client that sent another key meant something this route does not do. */
static enum err_code label_json(const char *body, size_t len, char *text, size_t size,
				struct err *err)
{
	json_t *j = json_parse(body, len, 8, err);
	if (!j)
		return ERR_BAD_JSON;
	enum err_code rc = ERR_OK;
	const char *key;
	json_t *val;
	if (!json_is_object(j))
		rc = err_set(err, ERR_INVALID, LABEL_BODY_HELP);
	json_object_foreach(j, key, val) {
		if (!rc && strcmp(key, "hash") != 0)
			rc = err_set(err, ERR_INVALID, "unknown key '%.100s' in the label body "
				     "(give {\"hash\": \"...\"})", key);
	}
	if (!rc && !json_is_string(json_object_get(j, "hash")))
		rc = err_set(err, ERR_INVALID, LABEL_BODY_HELP);
	if (!rc)
		snprintf(text, size, "%s", json_string_value(json_object_get(j, "hash")));
	json_decref(j);
	return rc;
}

/* The label body: a bare hash, a store reference, or {"hash": "..."}. A body that
 * opens like JSON is parsed as JSON, so a malformed one says so. */
static enum err_code label_target(struct api_call *c, char hash[65], struct err *err)
{
	size_t len;
	const char *body = (const char *)http_request_body(c->req, &len);
	char text[300] = "";
	size_t lead = strspn(body, " \t\r\n");
	if (body[lead] == '{' || body[lead] == '[') {
		enum err_code rc = label_json(body, len, text, sizeof(text), err);
		if (rc)
			return rc;
	} else if (len < sizeof(text)) {
		memcpy(text, body, len);
	}
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	/* a reference names this store, whole: another store's (or a path that only
	 * ends in a hash) would label what it does not name */
	char prefix[128];
	int plen = snprintf(prefix, sizeof(prefix), "store://%s/hash/", c->params[0]);
	const char *h = text;
	if (strchr(text, '/')) {
		if (strncmp(text, prefix, (size_t)plen) != 0)
			return err_set(err, ERR_INVALID, "a reference in the label body must be "
				       "%s<sha256> (this store)", prefix);
		h = text + plen;
	}
	if (!sha256_hex_valid(h))
		return err_set(err, ERR_INVALID, LABEL_BODY_HELP);
	memcpy(hash, h, 65);
	return ERR_OK;
}

static void job_label_put(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	char hash[65];
	if (label_target(c, hash, &e)) {
		api_problem_err(c, &e);
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

/* ---- listings ---- */

static int by_key(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *kx = json_is_string(x) ? json_string_value(x)
		: json_string_value(json_object_get(x, "key"));
	const char *ky = json_is_string(y) ? json_string_value(y)
		: json_string_value(json_object_get(y, "key"));
	return strcmp(kx ? kx : "", ky ? ky : "");
}

/* items sorted by their "key" (or themselves, for strings); the key is then
 * removed. A new array; items is released. */
static json_t *sorted(json_t *items)
{
	size_t n = json_array_size(items);
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	json_t *out = json_array();
	if (!v || !out) {
		free(v);
		json_decref(out);
		json_decref(items);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), by_key);
	for (size_t i = 0; i < n; i++) {
		json_object_del(v[i], "key");
		json_array_append(out, v[i]);
	}
	free(v);
	json_decref(items);
	return out;
}

static void list_id(void *user, const char *id)
{
	json_array_append_new(user, json_string(id));
}

static void job_stores(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	json_t *items = json_array();
	if (store_list(c->api->cfg.store, list_id, items, &e)) {
		json_decref(items);
		api_problem_err(c, &e);
		return;
	}
	if (!(items = sorted(items))) {
		api_problem(c, ERR_NOMEM, "cannot list the stores");
		return;
	}
	api_json(c, 200, json_pack("{s:o}", "items", items));
}

void h_stores_list(struct api_call *c)
{
	api_defer(c, job_stores);
}

static void list_object(void *user, const char *hash, uint64_t size)
{
	json_array_append_new(user, json_pack("{s:s, s:s, s:I}", "key", hash, "sha256", hash,
					      "size", (json_int_t)size));
}

static void job_objects(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	uint64_t limit;
	const char *cursor = http_request_query(c->req, "cursor");
	if (api_query_u64(c, "limit", 1000, 1, 1000, &limit, &e)) {
		api_problem_err(c, &e);
		return;
	}
	/* a cursor is the last hash of the page before (next_cursor) */
	if (cursor && !sha256_hex_valid(cursor)) {
		api_problem(c, ERR_INVALID, "query parameter 'cursor' must be a next_cursor of "
			    "this list (a lowercase SHA-256 hex digest)");
		return;
	}
	json_t *all = json_array();
	if (store_objects(c->api->cfg.store, c->params[0], list_object, all, &e)) {
		json_decref(all);
		api_problem_err(c, &e);
		return;
	}
	if (!(all = sorted(all))) {
		api_problem(c, ERR_NOMEM, "cannot list the store");
		return;
	}
	json_t *items = json_array();
	size_t i, n = json_array_size(all);
	for (i = 0; i < n && json_array_size(items) < limit; i++) {
		json_t *o = json_array_get(all, i);
		if (cursor && strcmp(json_string_value(json_object_get(o, "sha256")), cursor) <= 0)
			continue;
		json_object_set_new(o, "reference", json_sprintf("store://%s/hash/%s", c->params[0],
				    json_string_value(json_object_get(o, "sha256"))));
		json_array_append(items, o);
	}
	json_t *last = json_array_get(items, json_array_size(items) - 1);
	json_t *next = i < n && last ? json_copy(json_object_get(last, "sha256")) : json_null();
	json_decref(all);
	api_json(c, 200, json_pack("{s:s, s:o, s:o}", "store_id", c->params[0], "items", items,
				   "next_cursor", next));
}

void h_store_list(struct api_call *c)
{
	if (check_store_id(c))
		api_defer(c, job_objects);
}

static void list_label(void *user, const char *label, const char *hash)
{
	json_array_append_new(user, json_pack("{s:s, s:s, s:s}", "key", label, "label", label,
					      "sha256", hash));
}

static void job_labels(void *arg)
{
	struct api_call *c = arg;
	struct err e = {0};
	json_t *items = json_array();
	if (store_labels(c->api->cfg.store, c->params[0], list_label, items, &e)) {
		json_decref(items);
		api_problem_err(c, &e);
		return;
	}
	if (!(items = sorted(items))) {
		api_problem(c, ERR_NOMEM, "cannot list the labels");
		return;
	}
	for (size_t i = 0; i < json_array_size(items); i++) {
		json_t *o = json_array_get(items, i);
		json_object_set_new(o, "reference", json_sprintf("store://%s/%s", c->params[0],
				    json_string_value(json_object_get(o, "label"))));
	}
	api_json(c, 200, json_pack("{s:s, s:o}", "store_id", c->params[0], "items", items));
}

void h_labels_list(struct api_call *c)
{
	if (check_store_id(c))
		api_defer(c, job_labels);
}
