/* manifest_check.c - the manifest schema as tables, and the checker that walks
 * a manifest and records every problem it finds, not just the first.
 *
 * The schema follows the reference (theater 0.3.x ManifestConfig): the
 * top-level fields; one table of handler types, each with the settings it
 * takes (flattened into its [[handler]] entry), the permission capability it
 * maps to and the shape of that capability's `restrict` config; plus our
 * restart and limits tables. Unlike the reference, which ignores unknown keys
 * (so a misspelled permission table silently grants everything), every key
 * must be known; an unknown one is reported with a suggestion when a known
 * key is close.
 *
 * The checker walks the JSON form of the manifest and, for a TOML manifest,
 * the TOML tree in step with it (toml_to_json keeps the shape: a table becomes
 * an object with the same keys, an array stays an array). So each problem gets
 * the line:col of its value, and values that JSON cannot tell apart from
 * strings (a TOML date-time, inf or nan) are still refused where a string is
 * expected.
 */
#include "src/manifest_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/toml/toml.h"

#define PATH_CAP 320
#define SHOW_MAX 64          /* bytes of a user's key or value shown in messages */
#define NAMES_MAX 40         /* keys of the largest table in the schema (all handler settings), plus one */

struct check;

struct node {
	const json_t *j;
	const struct toml_value *t;   /* NULL for JSON manifests */
};

enum ftype { F_STRING, F_TEXT, F_BOOL, F_UINT, F_POSINT, F_STRLIST, F_ANY, F_CUSTOM };

struct field {
	const char *key;
	enum ftype type;
	int required;
	void (*custom)(struct check *c, struct node v);
};

#define OPT(k, t) {.key = (k), .type = (t)}
#define REQ(k, t) {.key = (k), .type = (t), .required = 1}
#define CUSTOM(k, fn) {.key = (k), .type = F_CUSTOM, .custom = (fn)}
#define END {.key = NULL}

struct check {
	struct manifest_problems *probs;
	int toml, allow_unsupported, nomem;
	char path[PATH_CAP];
	size_t plen;
};

/* ---- the handler types of the reference ---- */

/* Settings the reference does not have are ours, read by the actor runtime
 * (supervisor/host_*.c): timing's max_sleep_ms, store's store_ids, http-client's
 * allowed_hosts. */
static const struct field hs_none[] = {END};
static const struct field hs_timing[] = {
	OPT("max_sleep_duration", F_UINT), OPT("min_sleep_duration", F_UINT),
	OPT("max_sleep_ms", F_UINT), OPT("min_timer_ms", F_UINT), OPT("max_timers", F_UINT), END,
};
static const struct field hs_store[] = {
	OPT("store_ids", F_STRLIST), OPT("store_id", F_STRING), OPT("base_path", F_STRING), END,
};
static void check_header_table(struct check *c, struct node v);
static void check_ports(struct check *c, struct node v);
static const struct field hs_http_client[] = {
	OPT("allowed_hosts", F_STRLIST), OPT("timeout_ms", F_POSINT),
	CUSTOM("headers", check_header_table), OPT("secrets", F_STRLIST),
	CUSTOM("allow_loopback_ports", check_ports), END,
};
static const struct field hs_random[] = {
	OPT("seed", F_UINT), OPT("max_bytes", F_UINT), OPT("max_int", F_UINT),
	OPT("allow_crypto_secure", F_BOOL), END,
};
static const struct field hs_environment[] = {
	OPT("allowed_vars", F_STRLIST), OPT("denied_vars", F_STRLIST),
	OPT("allow_list_all", F_BOOL), OPT("allowed_prefixes", F_STRLIST), END,
};
static const struct field hs_filesystem[] = {
	OPT("path", F_STRING), OPT("new_dir", F_BOOL), OPT("allowed_commands", F_STRLIST), END,
};
static const struct field hs_replay[] = {OPT("chain", F_STRING), END};
static const struct field hs_tcp[] = {
	OPT("listen", F_STRING), OPT("connect", F_STRING), OPT("max_connections", F_UINT), END,
};
static const struct field hs_wasi_http[] = {OPT("port", F_UINT), OPT("host", F_STRING), END};
static const struct field hs_process[] = {
	OPT("max_processes", F_UINT), OPT("max_output_buffer", F_UINT),
	OPT("allowed_programs", F_STRLIST), OPT("allowed_paths", F_STRLIST), END,
};

/* The `config` of permission_policy.<capability> when type = "restrict". */
static const struct field ps_file_system[] = {
	REQ("read", F_BOOL), REQ("write", F_BOOL), REQ("execute", F_BOOL),
	OPT("allowed_commands", F_STRLIST), OPT("new_dir", F_BOOL),
	OPT("allowed_paths", F_STRLIST), END,
};
static const struct field ps_http_client[] = {
	OPT("allowed_methods", F_STRLIST), OPT("allowed_hosts", F_STRLIST),
	OPT("max_redirects", F_UINT), OPT("timeout", F_UINT),
	OPT("max_request_bytes", F_UINT), OPT("max_response_bytes", F_UINT), END,
};
static const struct field ps_http_framework[] = {
	OPT("allowed_routes", F_STRLIST), OPT("allowed_methods", F_STRLIST),
	OPT("max_request_size", F_UINT), END,
};
static const struct field ps_process[] = {
	REQ("max_processes", F_UINT), REQ("max_output_buffer", F_UINT),
	OPT("allowed_programs", F_STRLIST), OPT("allowed_paths", F_STRLIST), END,
};
static const struct field ps_environment[] = {
	OPT("allowed_vars", F_STRLIST), OPT("denied_vars", F_STRLIST),
	REQ("allow_list_all", F_BOOL), OPT("allowed_prefixes", F_STRLIST), END,
};
static const struct field ps_random[] = {
	REQ("max_bytes", F_UINT), REQ("max_int", F_UINT), REQ("allow_crypto_secure", F_BOOL), END,
};
static const struct field ps_timing[] = {
	REQ("max_sleep_duration", F_UINT), REQ("min_sleep_duration", F_UINT),
	OPT("min_timer_ms", F_UINT), END,
};

struct htype {
	const char *name;               /* [[handler]] type */
	const char *cap;                /* permission_policy key; NULL: the reference
					 * has no capability for it */
	const struct field *settings;   /* NULL: settings not modelled here (a type we
					 * do not implement): any keys are accepted */
	const struct field *perm;       /* restrict config; NULL: a unit capability
					 * (config absent or an empty table) */
	int supported;                  /* implemented by this server */
};

/* Every handler type the reference (0.3.x and its handler crates) defines. To
 * implement one, write its host functions and flip `supported` here: this is
 * the only list. */
static const struct htype htypes[] = {
	{"message-server", "message_server", hs_none, NULL, 1},
	{"runtime", "runtime", hs_none, NULL, 1},
	{"supervisor", "supervisor", hs_none, NULL, 1},
	{"store", "store", hs_store, NULL, 1},
	{"timing", "timing", hs_timing, ps_timing, 1},
	{"random", "random", hs_random, ps_random, 1},
	{"http-client", "http_client", hs_http_client, ps_http_client, 1},
	{"environment", "environment", hs_environment, ps_environment, 1},
	{"filesystem", "file_system", hs_filesystem, ps_file_system, 0},
	{"process", "process", hs_process, ps_process, 0},
	{"http-framework", "http_framework", hs_none, ps_http_framework, 0},
	{"replay", NULL, hs_replay, NULL, 0},
	{"tcp", NULL, hs_tcp, NULL, 0},
	{"wasi-http", NULL, hs_wasi_http, NULL, 0},
	{"terminal", NULL, NULL, NULL, 0},
	{"rpc", NULL, NULL, NULL, 0},
	{"timer", NULL, NULL, NULL, 0},
	{"loop", NULL, NULL, NULL, 0},
	{"podman", NULL, NULL, NULL, 0},
};
#define NHTYPES (sizeof(htypes) / sizeof(htypes[0]))

static const struct htype *htype_find(const char *name)
{
	for (size_t i = 0; i < NHTYPES; i++)
		if (strcmp(htypes[i].name, name) == 0)
			return &htypes[i];
	return NULL;
}

int manifest_handler_known(const char *type)
{
	return type && htype_find(type) != NULL;
}

int manifest_handler_supported(const char *type)
{
	const struct htype *h = type ? htype_find(type) : NULL;
	return h && h->supported;
}

/* Well-known misspellings: the reference's older spellings and the handler
 * type names used where a capability name is expected. */
static const char *const aliases[][2] = {
	{"init_state", "initial_state"}, {"handlers", "handler"},
	{"filesystem", "file_system"}, {"permissions", "permission_policy"},
};

/* ---- problems and paths ---- */

static void problem(struct check *c, struct node at, enum err_code err, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(struct check *c, struct node at, enum err_code err, const char *code,
		    const char *fmt, ...)
{
	if (c->probs->n >= MANIFEST_MAX_PROBLEMS) {
		c->probs->more++;
		return;
	}
	char msg[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	unsigned line = at.t ? toml_line(at.t) : 0, col = at.t ? toml_col(at.t) : 0;
	if (manifest_problem_add(c->probs, err, code, c->path, line, col, msg))
		c->nomem = 1;
}

static int full(struct check *c)
{
	if (c->probs->n < MANIFEST_MAX_PROBLEMS)
		return 0;
	c->probs->more++;
	return 1;
}

/* A user's key or value for a message: at most SHOW_MAX bytes, cut at a
 * character boundary ("..." added), control characters shown as '?'. */
static const char *show(const char *s, size_t len, char out[SHOW_MAX + 4])
{
	size_t n = len > SHOW_MAX ? SHOW_MAX : len;
	if (n < len)
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	strcpy(out + n, n < len ? "..." : "");
	return out;
}

static void path_add(struct check *c, const char *s)
{
	size_t n = strlen(s);
	if (n > PATH_CAP - 1 - c->plen)
		n = PATH_CAP - 1 - c->plen;
	memcpy(c->path + c->plen, s, n);
	c->plen += n;
	c->path[c->plen] = '\0';
}

static int bare_key(const char *k, size_t len)
{
	if (len == 0 || len > SHOW_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

/* Appends ".key" (or ["key"] when it is not a bare key); returns the mark
 * that path_pop takes. */
static size_t path_key(struct check *c, const char *key, size_t len)
{
	size_t mark = c->plen;
	char shown[SHOW_MAX + 4];
	show(key, len, shown);
	if (bare_key(key, len)) {
		if (mark)
			path_add(c, ".");
		path_add(c, shown);
	} else {
		path_add(c, "[\"");
		path_add(c, shown);
		path_add(c, "\"]");
	}
	return mark;
}

static size_t path_index(struct check *c, size_t i)
{
	size_t mark = c->plen;
	char seg[32];
	snprintf(seg, sizeof(seg), "[%zu]", i);
	path_add(c, seg);
	return mark;
}

static void path_pop(struct check *c, size_t mark)
{
	c->plen = mark;
	c->path[mark] = '\0';
}

/* ---- nodes ---- */

static struct node get(struct node n, const char *key)
{
	struct node r = {json_object_get(n.j, key), NULL};
	if (r.j && n.t)
		r.t = toml_table_get(n.t, key);
	return r;
}

static struct node at(struct node n, size_t i)
{
	struct node r = {json_array_get(n.j, i), NULL};
	if (r.j && n.t)
		r.t = toml_array_at(n.t, i);
	return r;
}

static int is_str(struct node v)
{
	return json_is_string(v.j) && (!v.t || toml_type(v.t) == TOML_STRING);
}

/* What a value is, with its article, for "found ..." */
static const char *found(struct node v)
{
	if (v.t) {
		switch (toml_type(v.t)) {
		case TOML_TABLE: return "a table";
		case TOML_ARRAY: return "an array";
		case TOML_STRING: return "a string";
		case TOML_INTEGER: return "an integer";
		case TOML_FLOAT: return "a float";
		case TOML_BOOL: return "a boolean";
		case TOML_DATETIME: return "an offset date-time";
		case TOML_DATETIME_LOCAL: return "a local date-time";
		case TOML_DATE_LOCAL: return "a local date";
		case TOML_TIME_LOCAL: return "a local time";
		}
	}
	switch (json_typeof(v.j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static const char *table_word(const struct check *c)
{
	return c->toml ? "a table" : "an object";
}

static void wrong(struct check *c, struct node v, const char *want)
{
	problem(c, v, ERR_BAD_MANIFEST, "wrong_type", "manifest field '%s' must be %s, found %s",
		c->path, want, found(v));
}

static void missing(struct check *c, struct node tbl, const char *key)
{
	size_t mark = path_key(c, key, strlen(key));
	problem(c, tbl, ERR_MISSING_FIELD, "missing_field", "missing field '%s' in manifest",
		c->path);
	path_pop(c, mark);
}

/* ---- suggestions for unknown keys ---- */

static char fold(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return (char)(ch - 'A' + 'a');
	return ch == '-' ? '_' : ch;
}

/* Optimal string alignment distance (a transposition counts 1), on keys of
 * at most SHOW_MAX bytes, folded. */
static size_t distance(const char *a, size_t n, const char *b)
{
	size_t m = strlen(b);
	if (n > SHOW_MAX || m > SHOW_MAX)
		return SIZE_MAX;
	size_t rows[3][SHOW_MAX + 1];
	size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = fold(a[i - 1]) != fold(b[j - 1]);
			size_t d = prev[j - 1] + cost;
			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
			    fold(a[i - 2]) == fold(b[j - 1]) && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

static int in_names(const char *const *names, const char *s)
{
	for (; *names; names++)
		if (strcmp(*names, s) == 0)
			return 1;
	return 0;
}

/* The known name closest to key: an alias, the same name in another case or
 * with '-' for '_', or one at most two edits away. NULL when none is close. */
static const char *suggest(const char *key, size_t len, const char *const *names)
{
	if (strlen(key) != len)
		return NULL;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(aliases[i][0], key) == 0 && in_names(names, aliases[i][1]))
			return aliases[i][1];
	const char *best = NULL;
	size_t best_d = len < 4 ? 1 : 3;
	for (; *names; names++) {
		size_t d = distance(key, len, *names);
		if (d < best_d) {
			best = *names;
			best_d = d;
		}
	}
	return best;
}

/* "a, b, c" into out. */
/* "a, b, c", whole names only: ", ..." ends a list that does not fit (it was
 * cut inside a name, and the message ended "max_output_buffer,)"). */
static void join_names(const char *const *names, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (; *names; names++) {
		size_t need = strlen(*names) + (n ? 2 : 0);
		if (n + need + 6 > cap) {       /* room for ", ..." and the NUL */
			snprintf(out + n, cap - n, "%s...", n ? ", " : "");
			return;
		}
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", *names);
	}
}

/* The keys of a field table (and extra, first, when not NULL). */
static void field_names(const struct field *f, const char *extra, const char *out[NAMES_MAX])
{
	size_t n = 0;
	if (extra)
		out[n++] = extra;
	for (; f->key && n < NAMES_MAX - 1; f++)
		out[n++] = f->key;
	out[n] = NULL;
}

static void unknown_key(struct check *c, struct node v, const char *key, size_t len,
			const char *const *names)
{
	if (full(c))
		return;
	char where[PATH_CAP + 2], shown[SHOW_MAX + 4], hint[400];
	snprintf(where, sizeof(where), "%s%s", c->plen ? " " : "", c->path);
	const char *s = suggest(key, len, names);
	if (s) {
		snprintf(hint, sizeof(hint), "did you mean '%s'?", s);
	} else if (names[0]) {
		char list[360];
		join_names(names, list, sizeof(list));
		snprintf(hint, sizeof(hint), "known keys: %s", list);
	} else {
		snprintf(hint, sizeof(hint), "this table takes no keys");
	}
	size_t mark = path_key(c, key, len);
	problem(c, v, ERR_UNKNOWN_KEY, "unknown_key", "unknown key '%s' in manifest%s (%s)",
		show(key, len, shown), where, hint);
	path_pop(c, mark);
}

/* Reports every key of tbl that is not in names; in document order for TOML,
 * so the problems kept when there are too many are the first ones. */
static void check_keys(struct check *c, struct node tbl, const char *const *names)
{
	const char *key;
	size_t len;
	json_t *val;
	if (tbl.t) {
		for (size_t i = 0; i < toml_table_len(tbl.t); i++) {
			const struct toml_value *tv = toml_table_at(tbl.t, i, &key, &len);
			if (strlen(key) == len && in_names(names, key))
				continue;
			struct node v = {json_object_getn(tbl.j, key, len), tv};
			unknown_key(c, v, key, len, names);
		}
		return;
	}
	json_object_keylen_foreach((json_t *)tbl.j, key, len, val) {
		if (strlen(key) == len && in_names(names, key))
			continue;
		struct node v = {val, NULL};
		unknown_key(c, v, key, len, names);
	}
}

/* ---- values ---- */

static int check_string(struct check *c, struct node v, size_t max)
{
	if (!is_str(v)) {
		wrong(c, v, "a string");
		return 0;
	}
	size_t n = json_string_length(v.j);
	if (n > max) {
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' is longer than %zu bytes", c->path, max);
		return 0;
	}
	if (strlen(json_string_value(v.j)) != n) {
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' contains a nul character", c->path);
		return 0;
	}
	return 1;
}

static void check_int(struct check *c, struct node v, json_int_t min)
{
	const char *want = min > 0 ? "a positive integer" : "a non-negative integer";
	if (!json_is_integer(v.j))
		wrong(c, v, want);
	else if (json_integer_value(v.j) < min)
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' must be %s, found %lld", c->path, want,
			(long long)json_integer_value(v.j));
}

static void check_strlist(struct check *c, struct node v)
{
	if (!json_is_array(v.j)) {
		wrong(c, v, "an array of strings");
		return;
	}
	for (size_t i = 0; i < json_array_size(v.j); i++) {
		size_t mark = path_index(c, i);
		check_string(c, at(v, i), MANIFEST_STRING_MAX);
		path_pop(c, mark);
	}
}

static void check_value(struct check *c, struct node v, const struct field *f)
{
	switch (f->type) {
	case F_STRING: check_string(c, v, MANIFEST_STRING_MAX); break;
	case F_TEXT: check_string(c, v, MANIFEST_TEXT_MAX); break;
	case F_BOOL:
		if (!json_is_boolean(v.j))
			wrong(c, v, "a boolean");
		break;
	case F_UINT: check_int(c, v, 0); break;
	case F_POSINT: check_int(c, v, 1); break;
	case F_STRLIST: check_strlist(c, v); break;
	case F_CUSTOM: f->custom(c, v); break;
	case F_ANY: break;
	}
}

/* Checks each field of the table (present ones by type, absent required ones
 * as missing). */
static void check_fields(struct check *c, struct node tbl, const struct field *fields)
{
	for (const struct field *f = fields; f->key; f++) {
		struct node v = get(tbl, f->key);
		if (!v.j) {
			if (f->required)
				missing(c, tbl, f->key);
			continue;
		}
		size_t mark = path_key(c, f->key, strlen(f->key));
		check_value(c, v, f);
		path_pop(c, mark);
	}
}

/* A table with exactly these fields (and extra, when not NULL). 0 when v is
 * not a table. */
static int check_table(struct check *c, struct node v, const struct field *fields,
		       const char *extra)
{
	if (!json_is_object(v.j)) {
		wrong(c, v, table_word(c));
		return 0;
	}
	const char *names[NAMES_MAX];
	field_names(fields, extra, names);
	check_keys(c, v, names);
	check_fields(c, v, fields);
	return 1;
}

/* ---- handlers ---- */

/* http-client `headers`: a table of header name -> string value (values may
 * hold {{secret:NAME}} templates, filled in by the host). */
static void check_header_table(struct check *c, struct node v)
{
	const char *key;
	size_t len;
	json_t *val;
	if (!json_is_object(v.j)) {
		wrong(c, v, table_word(c));
		return;
	}
	if (json_object_size(v.j) > 32)
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' has more than 32 headers", c->path);
	json_object_keylen_foreach((json_t *)v.j, key, len, val) {
		size_t mark = path_key(c, key, len);
		struct node h = get(v, key);
		if (!h.j)
			h.j = val;
		check_string(c, h, MANIFEST_STRING_MAX);
		path_pop(c, mark);
	}
}

/* http-client `allow_loopback_ports`: an array of ports (1..65535). */
static void check_ports(struct check *c, struct node v)
{
	if (!json_is_array(v.j)) {
		wrong(c, v, "an array of port numbers");
		return;
	}
	for (size_t i = 0; i < json_array_size(v.j); i++) {
		size_t mark = path_index(c, i);
		struct node p = at(v, i);
		if (!json_is_integer(p.j) || json_integer_value(p.j) < 1 ||
		    json_integer_value(p.j) > 65535)
			problem(c, p, ERR_BAD_MANIFEST, "invalid_value",
				"manifest field '%s' must be a port number (1 to 65535)", c->path);
		path_pop(c, mark);
	}
}

static const char *htype_list(char *out, size_t cap)
{
	const char *names[NHTYPES + 1];
	for (size_t i = 0; i < NHTYPES; i++)
		names[i] = htypes[i].name;
	names[NHTYPES] = NULL;
	join_names(names, out, cap);
	return out;
}

/* "type" and the settings of every handler type, once each. */
static void all_settings(const char *out[NAMES_MAX])
{
	size_t n = 0;
	out[n++] = "type";
	for (size_t i = 0; i < NHTYPES; i++)
		for (const struct field *f = htypes[i].settings; f && f->key; f++) {
			out[n] = NULL;
			if (!in_names(out, f->key) && n < NAMES_MAX - 1)
				out[n++] = f->key;
		}
	out[n] = NULL;
}

/* The handler's type; NULL (reported) when it is not a known type. */
static const struct htype *handler_type(struct check *c, struct node t)
{
	char shown[SHOW_MAX + 4], list[360];
	const char *names[NHTYPES + 1];
	if (!is_str(t) || json_string_length(t.j) == 0 || json_string_length(t.j) > 128 ||
	    strlen(json_string_value(t.j)) != json_string_length(t.j)) {
		wrong(c, t, "a non-empty string of at most 128 bytes");
		return NULL;
	}
	const char *type = json_string_value(t.j);
	const struct htype *ht = htype_find(type);
	if (ht)
		return ht;
	for (size_t i = 0; i < NHTYPES; i++)
		names[i] = htypes[i].name;
	names[NHTYPES] = NULL;
	const char *s = suggest(type, strlen(type), names);
	if (s)
		problem(c, t, ERR_BAD_MANIFEST, "unknown_handler",
			"unknown handler type '%s' at '%s' (did you mean '%s'?)",
			show(type, strlen(type), shown), c->path, s);
	else
		problem(c, t, ERR_BAD_MANIFEST, "unknown_handler",
			"unknown handler type '%s' at '%s' (known types: %s)",
			show(type, strlen(type), shown), c->path, htype_list(list, sizeof(list)));
	return NULL;
}

static void check_handler(struct check *c, struct node h)
{
	if (!json_is_object(h.j)) {
		wrong(c, h, table_word(c));
		return;
	}
	struct node t = get(h, "type");
	const struct htype *ht = NULL;
	const char *names[NAMES_MAX];
	if (!t.j) {
		missing(c, h, "type");
	} else {
		size_t mark = path_key(c, "type", 4);
		ht = handler_type(c, t);
		if (ht && !ht->supported && !c->allow_unsupported)
			problem(c, t, ERR_BAD_MANIFEST, "unsupported_handler",
				"handler type '%s' at '%s' is defined by the reference but not "
				"implemented by this server yet", ht->name, c->path);
		path_pop(c, mark);
	}
	if (ht && !ht->settings) {
		/* a type we do not implement: its settings are the reference's business */
	} else if (ht) {
		field_names(ht->settings, "type", names);
		check_keys(c, h, names);
		check_fields(c, h, ht->settings);
	} else {
		/* no known type: still report keys that no handler takes ("tpye") */
		all_settings(names);
		check_keys(c, h, names);
	}
}

static void check_handlers(struct check *c, struct node v)
{
	if (!json_is_array(v.j)) {
		wrong(c, v, c->toml ? "an array of tables ([[handler]])" : "an array of objects");
		return;
	}
	size_t n = json_array_size(v.j);
	if (n > MANIFEST_MAX_HANDLERS)
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest has %zu handlers, more than %d", n, MANIFEST_MAX_HANDLERS);
	for (size_t i = 0; i < n; i++) {
		size_t mark = path_index(c, i);
		check_handler(c, at(v, i));
		path_pop(c, mark);
	}
}

/* ---- permission_policy ---- */

/* 1 for "restrict", 0 for "inherit" and "disallow", -1 (reported) otherwise. */
static int policy_type(struct check *c, struct node cap)
{
	struct node t = get(cap, "type");
	if (!t.j) {
		missing(c, cap, "type");
		return -1;
	}
	size_t mark = path_key(c, "type", 4);
	int r = -1;
	const char *s = is_str(t) ? json_string_value(t.j) : NULL;
	if (!s) {
		wrong(c, t, "one of \"inherit\", \"disallow\", \"restrict\"");
	} else if (strcmp(s, "inherit") == 0 || strcmp(s, "disallow") == 0) {
		r = 0;
	} else if (strcmp(s, "restrict") == 0) {
		r = 1;
	} else {
		char shown[SHOW_MAX + 4];
		problem(c, t, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' must be one of \"inherit\", \"disallow\", "
			"\"restrict\", found '%s'", c->path,
			show(s, json_string_length(t.j), shown));
	}
	path_pop(c, mark);
	return r;
}

static void check_capability(struct check *c, struct node cap, const struct htype *ht)
{
	static const char *const keys[] = {"type", "config", NULL};
	if (!json_is_object(cap.j)) {
		wrong(c, cap, table_word(c));
		return;
	}
	check_keys(c, cap, keys);
	int restrict_ = policy_type(c, cap);
	struct node cfg = get(cap, "config");
	if (!cfg.j) {
		if (restrict_ == 1 && ht->perm)
			missing(c, cap, "config");
		return;
	}
	size_t mark = path_key(c, "config", 6);
	if (restrict_ == 0)
		problem(c, cfg, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' is only allowed with type = \"restrict\"", c->path);
	else if (restrict_ == 1)
		check_table(c, cfg, ht->perm ? ht->perm : hs_none, NULL);
	path_pop(c, mark);
}

static void check_policy(struct check *c, struct node v)
{
	if (!json_is_object(v.j)) {
		wrong(c, v, table_word(c));
		return;
	}
	const char *caps[NHTYPES + 1];
	size_t n = 0;
	for (size_t i = 0; i < NHTYPES; i++)
		if (htypes[i].cap)
			caps[n++] = htypes[i].cap;
	caps[n] = NULL;
	check_keys(c, v, caps);
	for (size_t i = 0; i < NHTYPES; i++) {
		struct node cap = htypes[i].cap ? get(v, htypes[i].cap) : (struct node){0};
		if (!cap.j)
			continue;
		size_t mark = path_key(c, htypes[i].cap, strlen(htypes[i].cap));
		check_capability(c, cap, &htypes[i]);
		path_pop(c, mark);
	}
}

/* ---- restart and limits ---- */

static void check_restart_policy(struct check *c, struct node v)
{
	const char *s = is_str(v) ? json_string_value(v.j) : "";
	for (int i = MANIFEST_RESTART_NEVER; i <= MANIFEST_RESTART_ALWAYS; i++)
		if (strcmp(s, manifest_restart_policy_name(i)) == 0)
			return;
	if (!is_str(v))
		wrong(c, v, "one of \"never\", \"on-failure\", \"always\"");
	else
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value", "manifest field '%s' must be "
			"one of \"never\", \"on-failure\", \"always\"", c->path);
}

static void check_restart_state(struct check *c, struct node v)
{
	const char *s = is_str(v) ? json_string_value(v.j) : "";
	if (strcmp(s, "last") == 0 || strcmp(s, "initial") == 0)
		return;
	if (!is_str(v))
		wrong(c, v, "one of \"last\", \"initial\"");
	else
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value", "manifest field '%s' must be "
			"one of \"last\", \"initial\"", c->path);
}

static const struct field restart_fields[] = {
	CUSTOM("policy", check_restart_policy), CUSTOM("state", check_restart_state),
	OPT("max_restarts", F_UINT),
	OPT("window_s", F_POSINT), OPT("backoff_ms", F_UINT), OPT("backoff_max_ms", F_UINT), END,
};

static void check_restart(struct check *c, struct node v)
{
	if (!check_table(c, v, restart_fields, NULL))
		return;
	struct node b = get(v, "backoff_ms"), bmax = get(v, "backoff_max_ms");
	json_int_t bv = MANIFEST_RESTART_DEFAULT_BACKOFF_MS;
	if (b.j)
		bv = json_is_integer(b.j) ? json_integer_value(b.j) : -1;
	if (!bmax.j || !json_is_integer(bmax.j) || bv < 0 ||
	    json_integer_value(bmax.j) < 0 || json_integer_value(bmax.j) >= bv)
		return;
	size_t mark = path_key(c, "backoff_max_ms", 14);
	problem(c, bmax, ERR_BAD_MANIFEST, "invalid_value", "manifest field '%s' must be at "
		"least backoff_ms (%lld)", c->path, (long long)bv);
	path_pop(c, mark);
}

static const struct field limit_fields[] = {
	OPT("fuel", F_POSINT), OPT("memory_bytes", F_POSINT), OPT("call_timeout_ms", F_POSINT), END,
};

static void check_limits(struct check *c, struct node v)
{
	check_table(c, v, limit_fields, NULL);
}

/* ---- the top level ---- */

/* 1..MANIFEST_NAME_MAX characters (UTF-8 code points), no control characters. */
static void check_name(struct check *c, struct node v)
{
	if (!check_string(c, v, MANIFEST_NAME_MAX * 4))
		return;
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)json_string_value(v.j); *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
				"manifest field 'name' contains a control character");
			return;
		}
		if ((*p & 0xc0) != 0x80)
			chars++;
	}
	if (chars == 0 || chars > MANIFEST_NAME_MAX)
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value", "manifest field 'name' must "
			"have 1 to %d characters, found %zu", MANIFEST_NAME_MAX, chars);
}

static void check_package(struct check *c, struct node v)
{
	if (check_string(c, v, MANIFEST_STRING_MAX) && json_string_length(v.j) == 0)
		problem(c, v, ERR_BAD_MANIFEST, "invalid_value",
			"manifest field '%s' must not be empty", c->path);
}

/* A string is JSON text, as the reference reads it (initial_state = '{"a": 1}');
 * any other value is the state itself (our TOML tables and JSON manifests). */
static void check_initial_state(struct check *c, struct node v)
{
	if (!json_is_string(v.j))
		return;
	struct err e = {0};
	json_t *parsed = json_parse(json_string_value(v.j), json_string_length(v.j),
				    MANIFEST_MAX_DEPTH, &e);
	if (!parsed)
		problem(c, v, e.code == ERR_TOO_DEEP ? ERR_TOO_DEEP : ERR_BAD_MANIFEST,
			"invalid_value", "manifest field 'initial_state' is a string, which is "
			"read as JSON text (as the reference does), but it is not JSON: %s "
			"(for a string state write it quoted: initial_state = '\"text\"')",
			e.msg);
	json_decref(parsed);
}

static const struct field top_fields[] = {
	CUSTOM("name", check_name), OPT("version", F_STRING),
	CUSTOM("package", check_package), CUSTOM("component", check_package),
	OPT("description", F_TEXT), OPT("long_description", F_TEXT),
	CUSTOM("initial_state", check_initial_state), OPT("static_package", F_BOOL), OPT("save_chain", F_BOOL),
	CUSTOM("handler", check_handlers), CUSTOM("permission_policy", check_policy),
	CUSTOM("restart", check_restart), CUSTOM("limits", check_limits),
	OPT("node", F_STRING),      /* cluster placement (docs/cluster.md) */
	END,
};

static void check_identity(struct check *c, struct node root)
{
	if (!json_object_get(root.j, "name"))
		missing(c, root, "name");
	struct node comp = get(root, "component");
	int has_pkg = json_object_get(root.j, "package") != NULL;
	if (has_pkg && comp.j) {
		size_t mark = path_key(c, "component", 9);
		problem(c, comp, ERR_BAD_MANIFEST, "invalid_value",
			"manifest has both 'package' and its legacy alias 'component'");
		path_pop(c, mark);
	} else if (!has_pkg && !comp.j) {
		missing(c, root, "package");
	}
}

enum err_code manifest_schema_check(const json_t *obj, const struct toml_value *src,
				    int allow_unsupported, struct manifest_problems *probs)
{
	struct check c = {.probs = probs, .toml = src != NULL,
			  .allow_unsupported = allow_unsupported};
	struct node root = {obj, src};
	if (!json_is_object(obj)) {
		problem(&c, root, ERR_BAD_MANIFEST, "wrong_type",
			"manifest must be a json object, found %s", obj ? found(root) : "nothing");
		return c.nomem ? ERR_NOMEM : ERR_OK;
	}
	const char *names[NAMES_MAX];
	field_names(top_fields, NULL, names);
	check_keys(&c, root, names);
	check_identity(&c, root);
	check_fields(&c, root, top_fields);
	return c.nomem ? ERR_NOMEM : ERR_OK;
}
