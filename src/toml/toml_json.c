/* toml_json.c - TOML trees to JSON: plain JSON for manifests and the tagged
 * form of the toml-test suite ({"type": ..., "value": "..."} per scalar).
 *
 * Recursion follows the tree, whose depth the parser has bounded by the
 * depth limit (at most TOML_MAX_DEPTH_LIMIT), so the stack stays small.
 * Strings and keys are valid UTF-8 by construction (the parser checked
 * them), so the jansson "nocheck" setters are safe and keep NULs.
 */
#include "src/toml/toml_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef json_t *(*scalar_fn)(const struct toml_value *v);

static json_t *convert(const struct toml_value *v, scalar_fn scalar)
{
	json_t *out;
	if (v->type == TOML_TABLE) {
		out = json_object();
		for (uint32_t i = 0; out && i < v->u.tab.len; i++) {
			const struct toml_kv *kv = &v->u.tab.items[i];
			json_t *child = convert(kv->val, scalar);
			if (!child || json_object_setn_new_nocheck(out, kv->key, kv->len, child)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	if (v->type == TOML_ARRAY) {
		out = json_array();
		for (uint32_t i = 0; out && i < v->u.arr.len; i++) {
			if (json_array_append_new(out, convert(v->u.arr.items[i], scalar))) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	return scalar(v);
}

static const char *nonfinite_text(double f)
{
	if (isnan(f))
		return "nan";
	return f < 0 ? "-inf" : "inf";
}

static json_t *plain_scalar(const struct toml_value *v)
{
	switch (v->type) {
	case TOML_STRING:
		return json_stringn_nocheck(v->u.str.ptr, v->u.str.len);
	case TOML_INTEGER:
		return json_integer((json_int_t)v->u.i);
	case TOML_FLOAT:
		if (!isfinite(v->u.f))
			return json_string(nonfinite_text(v->u.f));
		return json_real(v->u.f);
	case TOML_BOOL:
		return json_boolean(v->u.b);
	default:
		return json_string(v->u.dt->text);
	}
}

/* The shortest %g text that reads back to exactly f. */
static void float_text(double f, char buf[40])
{
	if (!isfinite(f)) {
		snprintf(buf, 40, "%s", nonfinite_text(f));
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 40, "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			return;
	}
}

static json_t *tagged(const char *type, json_t *value)
{
	json_t *o = json_object();
	if (!o || !value || json_object_set_new_nocheck(o, "type", json_string(type))) {
		json_decref(o);
		json_decref(value);
		return NULL;
	}
	if (json_object_set_new_nocheck(o, "value", value)) { /* steals value */
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *tagged_scalar(const struct toml_value *v)
{
	char buf[40];
	const char *type = toml_type_name((enum toml_type)v->type);
	switch (v->type) {
	case TOML_STRING:
		return tagged(type, json_stringn_nocheck(v->u.str.ptr, v->u.str.len));
	case TOML_INTEGER:
		snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
		return tagged(type, json_string(buf));
	case TOML_FLOAT:
		float_text(v->u.f, buf);
		return tagged(type, json_string(buf));
	case TOML_BOOL:
		return tagged(type, json_string(v->u.b ? "true" : "false"));
	default:
		return tagged(type, json_string(v->u.dt->text));
	}
}

json_t *toml_to_json(const struct toml_value *v)
{
	return convert(v, plain_scalar);
}

json_t *toml_to_tagged_json(const struct toml_value *v)
{
	return convert(v, tagged_scalar);
}
