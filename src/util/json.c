/* json.c - jansson wrapper with depth limit and strict keys; see json.h. */
#include "src/util/json.h"

#include <string.h>

/* Depth is counted outside strings, so '[' inside a string does not count. */
static int depth_exceeds(const char *s, size_t len, int max_depth)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return 1;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 0;
}

json_t *json_parse(const char *data, size_t len, int max_depth, struct err *err)
{
	if (max_depth <= 0)
		max_depth = JSON_MAX_DEPTH_DEFAULT;
	if (depth_exceeds(data, len, max_depth)) {
		err_set(err, ERR_TOO_DEEP, "json nested deeper than %d levels", max_depth);
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!v)
		err_set(err, ERR_BAD_JSON, "malformed json at line %d column %d: %s", je.line,
			je.column, je.text);
	return v;
}

enum err_code json_check_keys(const json_t *obj, const char *const *allowed,
			      const char *what, struct err *err)
{
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)obj, key, val) {
		int known = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				known = 1;
		if (!known)
			return err_set(err, ERR_UNKNOWN_KEY, "unknown key '%s' in %s", key, what);
	}
	return ERR_OK;
}

char *json_compact(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
