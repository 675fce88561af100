/* manifest.c - validating a JSON object into a struct manifest; see manifest.h.
 *
 * Strict by design: every key is known or the manifest is refused, so a typo
 * ("pakage") is reported instead of silently ignored. Each field has one small
 * parser; the table `fields` lists the allowed keys.
 */
#include "src/manifest.h"

#include <stdlib.h>
#include <string.h>

static const char *const fields[] = {
	"name", "version", "package", "component", "description", "long_description",
	"initial_state", "static_package", "save_chain", "handler", "permission_policy",
	"restart", "limits", NULL,
};
static const char *const restart_fields[] = {
	"policy", "max_restarts", "window_s", "backoff_ms", "backoff_max_ms", NULL,
};
static const char *const limit_fields[] = { "fuel", "memory_bytes", "call_timeout_ms", NULL };

static enum err_code bad_type(struct err *err, const char *field, const char *type)
{
	return err_set(err, ERR_BAD_MANIFEST, "manifest field '%s' must be %s", field, type);
}

/* Copies an optional string field; *out stays NULL when absent. */
static enum err_code opt_string(const json_t *obj, const char *key, size_t max, char **out,
				struct err *err)
{
	const json_t *v = json_object_get(obj, key);
	if (!v)
		return ERR_OK;
	if (!json_is_string(v))
		return bad_type(err, key, "a string");
	if (json_string_length(v) > max)
		return err_set(err, ERR_BAD_MANIFEST, "manifest field '%s' is longer than %zu bytes",
			       key, max);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return err_set(err, ERR_BAD_MANIFEST, "manifest field '%s' contains a nul byte", key);
	if (!(*out = strdup(json_string_value(v))))
		return err_set(err, ERR_NOMEM, "out of memory");
	return ERR_OK;
}

static enum err_code opt_bool(const json_t *obj, const char *key, int *out, struct err *err)
{
	const json_t *v = json_object_get(obj, key);
	if (!v)
		return ERR_OK;
	if (!json_is_boolean(v))
		return bad_type(err, key, "a boolean");
	*out = json_is_true(v);
	return ERR_OK;
}

/* 1..128 characters (UTF-8 code points; jansson guarantees valid UTF-8), no
 * control characters. */
static enum err_code check_name(const char *name, struct err *err)
{
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return err_set(err, ERR_BAD_MANIFEST,
				       "manifest field 'name' contains a control character");
		if ((*p & 0xc0) != 0x80)
			chars++;
	}
	if (chars == 0 || chars > MANIFEST_NAME_MAX)
		return err_set(err, ERR_BAD_MANIFEST,
			       "manifest field 'name' must have 1 to %d characters", MANIFEST_NAME_MAX);
	return ERR_OK;
}

static enum err_code parse_identity(const json_t *obj, struct manifest *m, struct err *err)
{
	enum err_code rc;
	if (!json_object_get(obj, "name"))
		return err_set(err, ERR_MISSING_FIELD, "missing field 'name' in manifest");
	if ((rc = opt_string(obj, "name", MANIFEST_NAME_MAX * 4, &m->name, err)) ||
	    (rc = check_name(m->name, err)))
		return rc;
	const char *pkey = json_object_get(obj, "package") ? "package" : "component";
	if (json_object_get(obj, "package") && json_object_get(obj, "component"))
		return err_set(err, ERR_BAD_MANIFEST,
			       "manifest has both 'package' and its legacy alias 'component'");
	if (!json_object_get(obj, pkey))
		return err_set(err, ERR_MISSING_FIELD, "missing field 'package' in manifest");
	if ((rc = opt_string(obj, pkey, MANIFEST_STRING_MAX, &m->package, err)))
		return rc;
	if (!m->package[0])
		return err_set(err, ERR_BAD_MANIFEST, "manifest field '%s' must not be empty", pkey);
	if ((rc = opt_string(obj, "version", MANIFEST_STRING_MAX, &m->version, err)) ||
	    (rc = opt_string(obj, "description", MANIFEST_TEXT_MAX, &m->description, err)) ||
	    (rc = opt_string(obj, "long_description", MANIFEST_TEXT_MAX, &m->long_description, err)))
		return rc;
	return ERR_OK;
}

static enum err_code parse_handler(const json_t *v, size_t i, struct manifest_handler *h,
				   struct err *err)
{
	char field[48];
	snprintf(field, sizeof(field), "handler[%zu]", i);
	if (!json_is_object(v))
		return bad_type(err, field, "an object");
	const json_t *t = json_object_get(v, "type");
	snprintf(field, sizeof(field), "handler[%zu].type", i);
	if (!t)
		return err_set(err, ERR_MISSING_FIELD, "missing field '%s' in manifest", field);
	if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 128 ||
	    strlen(json_string_value(t)) != json_string_length(t))
		return bad_type(err, field, "a non-empty string of at most 128 bytes");
	h->type = strdup(json_string_value(t));
	h->config = json_deep_copy(v);
	if (!h->type || !h->config)
		return err_set(err, ERR_NOMEM, "out of memory");
	json_object_del(h->config, "type");
	return ERR_OK;
}

static enum err_code parse_handlers(const json_t *obj, struct manifest *m, struct err *err)
{
	const json_t *arr = json_object_get(obj, "handler");
	if (!arr)
		return ERR_OK;
	if (!json_is_array(arr))
		return bad_type(err, "handler", "an array of objects");
	size_t n = json_array_size(arr);
	if (n > MANIFEST_MAX_HANDLERS)
		return err_set(err, ERR_BAD_MANIFEST, "manifest has more than %d handlers",
			       MANIFEST_MAX_HANDLERS);
	if (n && !(m->handlers = calloc(n, sizeof(*m->handlers))))
		return err_set(err, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m->nhandlers = i + 1;
		enum err_code rc = parse_handler(json_array_get(arr, i), i, &m->handlers[i], err);
		if (rc)
			return rc;
	}
	return ERR_OK;
}

/* An optional integer member of a table, within [min, max]. */
static enum err_code opt_int(const json_t *tbl, const char *table, const char *key,
			     int64_t min, int64_t *out, struct err *err)
{
	const json_t *v = json_object_get(tbl, key);
	if (!v)
		return ERR_OK;
	if (!json_is_integer(v) || json_integer_value(v) < min)
		return err_set(err, ERR_BAD_MANIFEST, "manifest field '%s.%s' must be %s", table,
			       key, min > 0 ? "a positive integer" : "a non-negative integer");
	*out = (int64_t)json_integer_value(v);
	return ERR_OK;
}

static enum err_code parse_policy(const json_t *tbl, struct manifest_restart *r, struct err *err)
{
	const json_t *p = json_object_get(tbl, "policy");
	if (!p)
		return ERR_OK;
	const char *s = json_is_string(p) ? json_string_value(p) : "";
	for (int i = MANIFEST_RESTART_NEVER; i <= MANIFEST_RESTART_ALWAYS; i++)
		if (strcmp(s, manifest_restart_policy_name(i)) == 0) {
			r->policy = i;
			return ERR_OK;
		}
	return bad_type(err, "restart.policy", "one of \"never\", \"on-failure\", \"always\"");
}

static enum err_code parse_restart(const json_t *obj, struct manifest_restart *r, struct err *err)
{
	r->policy = MANIFEST_RESTART_NEVER;
	r->max_restarts = MANIFEST_RESTART_DEFAULT_MAX;
	r->window_s = MANIFEST_RESTART_DEFAULT_WINDOW_S;
	r->backoff_ms = MANIFEST_RESTART_DEFAULT_BACKOFF_MS;
	r->backoff_max_ms = -1;
	const json_t *t = json_object_get(obj, "restart");
	enum err_code rc = ERR_OK;
	if (t) {
		r->present = 1;
		if (!json_is_object(t))
			return bad_type(err, "restart", "an object");
		if ((rc = json_check_keys(t, restart_fields, "manifest restart", err)) ||
		    (rc = parse_policy(t, r, err)) ||
		    (rc = opt_int(t, "restart", "max_restarts", 0, &r->max_restarts, err)) ||
		    (rc = opt_int(t, "restart", "window_s", 1, &r->window_s, err)) ||
		    (rc = opt_int(t, "restart", "backoff_ms", 0, &r->backoff_ms, err)) ||
		    (rc = opt_int(t, "restart", "backoff_max_ms", 0, &r->backoff_max_ms, err)))
			return rc;
	}
	if (r->backoff_max_ms < 0)
		r->backoff_max_ms = r->backoff_ms > MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS
					    ? r->backoff_ms : MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS;
	if (r->backoff_max_ms < r->backoff_ms)
		return err_set(err, ERR_BAD_MANIFEST,
			       "manifest field 'restart.backoff_max_ms' must be at least backoff_ms");
	return ERR_OK;
}

static enum err_code parse_limits(const json_t *obj, struct manifest_limits *l, struct err *err)
{
	const json_t *t = json_object_get(obj, "limits");
	if (!t)
		return ERR_OK;
	if (!json_is_object(t))
		return bad_type(err, "limits", "an object");
	int64_t fuel = 0, mem = 0, ms = 0;
	enum err_code rc;
	if ((rc = json_check_keys(t, limit_fields, "manifest limits", err)) ||
	    (rc = opt_int(t, "limits", "fuel", 1, &fuel, err)) ||
	    (rc = opt_int(t, "limits", "memory_bytes", 1, &mem, err)) ||
	    (rc = opt_int(t, "limits", "call_timeout_ms", 1, &ms, err)))
		return rc;
	l->fuel = (uint64_t)fuel;
	l->memory_bytes = (uint64_t)mem;
	l->call_timeout_ms = (uint64_t)ms;
	return ERR_OK;
}

static enum err_code parse_rest(const json_t *obj, struct manifest *m, struct err *err)
{
	enum err_code rc;
	if ((rc = opt_bool(obj, "static_package", &m->static_package, err)) ||
	    (rc = opt_bool(obj, "save_chain", &m->save_chain, err)))
		return rc;
	const json_t *st = json_object_get(obj, "initial_state");
	if (st && !json_is_null(st) && !(m->initial_state = json_deep_copy(st)))
		return err_set(err, ERR_NOMEM, "out of memory");
	const json_t *pp = json_object_get(obj, "permission_policy");
	if (pp && !json_is_object(pp))
		return bad_type(err, "permission_policy", "an object");
	if (pp && !(m->permission_policy = json_deep_copy(pp)))
		return err_set(err, ERR_NOMEM, "out of memory");
	if ((rc = parse_handlers(obj, m, err)) || (rc = parse_restart(obj, &m->restart, err)) ||
	    (rc = parse_limits(obj, &m->limits, err)))
		return rc;
	return ERR_OK;
}

enum err_code manifest_from_json(const json_t *obj, struct manifest **out, struct err *err)
{
	enum err_code rc;
	struct manifest *m = NULL;
	*out = NULL;
	if (!json_is_object(obj)) {
		rc = err_set(err, ERR_BAD_MANIFEST, "manifest must be a json object");
		goto fail;
	}
	if ((rc = json_check_keys(obj, fields, "manifest", err)))
		goto fail;
	if (!(m = calloc(1, sizeof(*m)))) {
		rc = err_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	m->save_chain = 1;
	if ((rc = parse_identity(obj, m, err)) || (rc = parse_rest(obj, m, err)))
		goto fail;
	if (!(m->json = json_deep_copy(obj))) {
		rc = err_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	*out = m;
	return ERR_OK;
fail:
	manifest_free(m);
	return rc;
}

enum err_code manifest_parse_json(const char *data, size_t len, struct manifest **out,
				  struct err *err)
{
	*out = NULL;
	if (len > MANIFEST_MAX_BYTES)
		return err_set(err, ERR_TOO_LARGE, "manifest larger than %zu bytes", MANIFEST_MAX_BYTES);
	json_t *v = json_parse(data, len, MANIFEST_MAX_DEPTH, err);
	if (!v)
		return err ? err->code : ERR_BAD_JSON;
	enum err_code rc = manifest_from_json(v, out, err);
	json_decref(v);
	return rc;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->version);
	free(m->package);
	free(m->description);
	free(m->long_description);
	json_decref(m->initial_state);
	for (size_t i = 0; i < m->nhandlers; i++) {
		free(m->handlers[i].type);
		json_decref(m->handlers[i].config);
	}
	free(m->handlers);
	json_decref(m->permission_policy);
	json_decref(m->json);
	free(m);
}

const char *manifest_restart_policy_name(enum manifest_restart_policy p)
{
	switch (p) {
	case MANIFEST_RESTART_ON_FAILURE: return "on-failure";
	case MANIFEST_RESTART_ALWAYS: return "always";
	default: return "never";
	}
}

json_t *manifest_merge_initial_states(const json_t *manifest_state, const json_t *spawn_state)
{
	if (manifest_state && json_is_null(manifest_state))
		manifest_state = NULL;
	if (!spawn_state || json_is_null(spawn_state))
		return manifest_state ? json_deep_copy(manifest_state) : NULL;
	if (!manifest_state || !json_is_object(manifest_state) || !json_is_object(spawn_state))
		return json_deep_copy(spawn_state);
	json_t *merged = json_deep_copy(manifest_state);
	json_t *top = json_deep_copy(spawn_state);
	if (!merged || !top || json_object_update(merged, top) != 0) {
		json_decref(merged);
		merged = NULL;
	}
	json_decref(top);
	return merged;
}
