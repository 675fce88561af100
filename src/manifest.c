/* manifest.c - the manifest model: loading JSON and TOML manifests, turning
 * a checked manifest into a struct manifest, and the problem list; see
 * manifest.h. The schema and the checker are in manifest_check.c.
 *
 * One path for both formats: TOML is parsed with positions, converted to JSON
 * (toml_to_json) and checked with the TOML tree beside it, so the two forms
 * share one schema and one model, and ->json is always the JSON form. The
 * builder only runs on a manifest that has no problem, so it trusts the
 * types and can fail only for lack of memory.
 */
#include "src/manifest_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/toml/toml.h"

/* ---- problems ---- */

/* Cuts a trailing incomplete UTF-8 sequence (left by a truncated snprintf). */
static void utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3)
		i--;
	if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0)
		return;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < want)
		s[i - 1] = '\0';
}

/* Length of the well-formed UTF-8 sequence at s (no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 when there is none. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
		   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	if (n && (s[1] < lo || s[1] > hi))
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Replaces each byte that is not part of well-formed UTF-8 with '?': parser
 * messages may quote the offending bytes, and JSON must not carry them. */
static void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq(p);
		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

enum err_code manifest_problem_add(struct manifest_problems *probs, enum err_code err,
				   const char *code, const char *path, unsigned line,
				   unsigned col, const char *message)
{
	if (probs->n >= MANIFEST_MAX_PROBLEMS) {
		probs->more++;
		return ERR_OK;
	}
	if (probs->n % 8 == 0) {
		struct manifest_problem *items =
			realloc(probs->items, (probs->n + 8) * sizeof(*items));
		if (!items)
			return ERR_NOMEM;
		probs->items = items;
	}
	struct manifest_problem *p = &probs->items[probs->n];
	*p = (struct manifest_problem){.err = err, .code = code, .line = line, .col = col};
	p->path = strdup(path ? path : "");
	p->message = strdup(message);
	if (!p->path || !p->message) {
		free(p->path);
		free(p->message);
		return ERR_NOMEM;
	}
	utf8_trim(p->path);
	utf8_trim(p->message);
	utf8_sanitize(p->path);
	utf8_sanitize(p->message);
	probs->n++;
	return ERR_OK;
}

void manifest_problems_release(struct manifest_problems *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].path);
		free(p->items[i].message);
	}
	free(p->items);
	memset(p, 0, sizeof(*p));
}

json_t *manifest_problems_json(const struct manifest_problems *p)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < p->n; i++) {
		const struct manifest_problem *q = &p->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s}", "code", q->code, "path", q->path,
				      "message", q->message);
		if (o && q->line) {
			json_object_set_new(o, "line", json_integer(q->line));
			json_object_set_new(o, "col", json_integer(q->col));
		}
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Stable order by position (problems without one first), for TOML. */
static void sort_by_position(struct manifest_problems *p)
{
	for (size_t i = 1; i < p->n; i++) {
		struct manifest_problem x = p->items[i];
		size_t j = i;
		while (j > 0 && (p->items[j - 1].line > x.line ||
				 (p->items[j - 1].line == x.line && p->items[j - 1].col > x.col))) {
			p->items[j] = p->items[j - 1];
			j--;
		}
		p->items[j] = x;
	}
}

/* The distinct unsupported handler types of a checked manifest, quoted. */
static void unsupported_list(const json_t *obj, char *out, size_t cap)
{
	size_t n = 0, i;
	json_t *h;
	out[0] = '\0';
	json_array_foreach(json_object_get(obj, "handler"), i, h) {
		const char *t = json_string_value(json_object_get(h, "type"));
		if (!t || !manifest_handler_known(t) || manifest_handler_supported(t))
			continue;
		char q[160];
		snprintf(q, sizeof(q), "'%s'", t);
		if (strstr(out, q) || n >= cap)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", q);
	}
}

/* The error for the first problem: "<name>:<line>:<col>: " for TOML, and a
 * count of the others. */
static enum err_code first_error(const struct manifest_problems *p, const json_t *obj,
				 const char *name, int toml, struct err *err)
{
	const struct manifest_problem *f = &p->items[0];
	char where[160] = "", more[120] = "", list[300];
	if (toml && f->line)
		snprintf(where, sizeof(where), "%.120s:%u:%u: ", name, f->line, f->col);
	else if (toml)
		snprintf(where, sizeof(where), "%.120s: ", name);
	size_t others = p->n - 1 + p->more;
	if (others)
		snprintf(more, sizeof(more), " (and %zu more problem%s; POST /manifests/validate "
			 "lists them all)", others, others == 1 ? "" : "s");
	if (strcmp(f->code, "unsupported_handler") == 0) {
		unsupported_list(obj, list, sizeof(list));
		return err_set(err, f->err, "%smanifest uses handler types that this server does "
			       "not implement yet: %s%s", where, list, more);
	}
	return err_set(err, f->err, "%s%s%s", where, f->message, more);
}

/* ---- the model ---- */

static char *dup_field(const json_t *obj, const char *key, int *nomem)
{
	const char *s = json_string_value(json_object_get(obj, key));
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*nomem = 1;
	return d;
}

static int64_t int_or(const json_t *tbl, const char *key, int64_t def)
{
	const json_t *v = json_object_get(tbl, key);
	return v ? (int64_t)json_integer_value(v) : def;
}

static void build_restart(const json_t *obj, struct manifest_restart *r)
{
	const json_t *t = json_object_get(obj, "restart");
	r->present = t != NULL;
	r->policy = MANIFEST_RESTART_NEVER;
	const char *p = json_string_value(json_object_get(t, "policy"));
	for (int i = MANIFEST_RESTART_NEVER; p && i <= MANIFEST_RESTART_ALWAYS; i++)
		if (strcmp(p, manifest_restart_policy_name(i)) == 0)
			r->policy = i;
	r->max_restarts = int_or(t, "max_restarts", MANIFEST_RESTART_DEFAULT_MAX);
	r->window_s = int_or(t, "window_s", MANIFEST_RESTART_DEFAULT_WINDOW_S);
	r->backoff_ms = int_or(t, "backoff_ms", MANIFEST_RESTART_DEFAULT_BACKOFF_MS);
	int64_t def_max = r->backoff_ms > MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS
				  ? r->backoff_ms : MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS;
	r->backoff_max_ms = int_or(t, "backoff_max_ms", def_max);
	const char *st = json_string_value(json_object_get(t, "state"));
	r->initial_state = st && strcmp(st, "initial") == 0;
}

static void build_limits(const json_t *obj, struct manifest_limits *l)
{
	const json_t *t = json_object_get(obj, "limits");
	l->fuel = (uint64_t)int_or(t, "fuel", 0);
	l->memory_bytes = (uint64_t)int_or(t, "memory_bytes", 0);
	l->call_timeout_ms = (uint64_t)int_or(t, "call_timeout_ms", 0);
}

static int build_handlers(const json_t *obj, struct manifest *m)
{
	const json_t *arr = json_object_get(obj, "handler");
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	if (!(m->handlers = calloc(n, sizeof(*m->handlers))))
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct manifest_handler *h = &m->handlers[i];
		const json_t *v = json_array_get(arr, i);
		m->nhandlers = i + 1;
		h->type = strdup(json_string_value(json_object_get(v, "type")));
		h->config = json_deep_copy(v);
		if (!h->type || !h->config)
			return -1;
		json_object_del(h->config, "type");
	}
	return 0;
}

/* The manifest's initial_state: a string is JSON text (checked already), as
 * in the reference; JSON null means none. -1 when memory runs out. */
static int build_initial_state(const json_t *obj, struct manifest *m)
{
	const json_t *st = json_object_get(obj, "initial_state");
	if (!st || json_is_null(st))
		return 0;
	if (!json_is_string(st))
		return (m->initial_state = json_deep_copy(st)) ? 0 : -1;
	struct err e = {0};
	m->initial_state = json_parse(json_string_value(st), json_string_length(st),
				      MANIFEST_MAX_DEPTH, &e);
	if (m->initial_state && json_is_null(m->initial_state)) {
		json_decref(m->initial_state);
		m->initial_state = NULL;
		return 0;
	}
	return m->initial_state ? 0 : -1;
}

/* obj has been checked and has no problem. owned: obj is the loader's own
 * value, which the manifest may keep (a reference) instead of copying it. */
static enum err_code build(json_t *obj, int owned, struct manifest **out, struct err *err)
{
	int nomem = 0;
	struct manifest *m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, ERR_NOMEM, "out of memory");
	m->name = dup_field(obj, "name", &nomem);
	m->package = dup_field(obj, json_object_get(obj, "package") ? "package" : "component",
			       &nomem);
	m->version = dup_field(obj, "version", &nomem);
	m->description = dup_field(obj, "description", &nomem);
	m->long_description = dup_field(obj, "long_description", &nomem);
	if (build_initial_state(obj, m))
		nomem = 1;
	m->static_package = json_is_true(json_object_get(obj, "static_package"));
	m->save_chain = !json_is_false(json_object_get(obj, "save_chain"));
	const json_t *pp = json_object_get(obj, "permission_policy");
	if (pp && !(m->permission_policy = json_deep_copy(pp)))
		nomem = 1;
	build_restart(obj, &m->restart);
	build_limits(obj, &m->limits);
	m->json = owned ? json_incref(obj) : json_deep_copy(obj);
	if (build_handlers(obj, m) || !m->json || nomem) {
		manifest_free(m);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	*out = m;
	return ERR_OK;
}

/* ---- entry points ---- */

/* Checks obj (with its TOML tree when src is not NULL) and builds the manifest
 * when out is not NULL and nothing is wrong (see build for owned). */
static enum err_code check_and_build(json_t *obj, int owned, const struct toml_value *src,
				     const struct manifest_options *opt, struct manifest **out,
				     struct manifest_problems *probs, struct err *err)
{
	const char *name = opt && opt->name ? opt->name : "manifest";
	if (manifest_schema_check(obj, src, opt && opt->allow_unsupported, probs))
		return err_set(err, ERR_NOMEM, "out of memory while checking the manifest");
	if (src)
		sort_by_position(probs);
	if (probs->n)
		return first_error(probs, obj, name, src != NULL, err);
	return out ? build(obj, owned, out, err) : ERR_OK;
}

enum err_code manifest_check_json(const json_t *obj, const struct manifest_options *opt,
				  struct manifest **out, struct manifest_problems *problems,
				  struct err *err)
{
	struct manifest_problems local = {0};
	struct manifest_problems *probs = problems ? problems : &local;
	if (out)
		*out = NULL;
	enum err_code rc = check_and_build((json_t *)obj, 0, NULL, opt, out, probs, err);
	manifest_problems_release(&local);
	return rc;
}

/* A problem of the document as a whole (syntax, size, depth); the position,
 * when the parser gave one, is taken off the message (it is in line/col). */
static enum err_code syntax_problem(struct manifest_problems *probs, const struct err *e,
				    const char *name, unsigned line, unsigned col)
{
	const char *code = e->code == ERR_TOO_DEEP ? "too_deep"
			   : e->code == ERR_TOO_LARGE ? "too_large"
			   : e->code == ERR_BAD_JSON ? "malformed_json" : "invalid_toml";
	const char *msg = e->msg;
	char prefix[200];
	snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", name, line, col);
	if (line && strncmp(msg, prefix, strlen(prefix)) == 0)
		msg += strlen(prefix);
	return manifest_problem_add(probs, e->code, code, "", line, col, msg);
}

static enum err_code load_toml(const char *data, size_t len, const struct manifest_options *opt,
			       struct manifest **out, struct manifest_problems *probs,
			       struct err *err)
{
	const char *name = opt && opt->name ? opt->name : "manifest";
	struct toml_options topt = {.name = name, .max_size = MANIFEST_MAX_BYTES,
				    .max_depth = MANIFEST_MAX_DEPTH};
	struct toml_value *root = NULL;
	struct toml_errpos pos = {0};
	struct err e = {0};
	enum err_code rc = toml_parse(data, len, &topt, &root, &pos, &e);
	if (rc) {
		utf8_sanitize(e.msg);
		if (rc != ERR_NOMEM && syntax_problem(probs, &e, name, pos.line, pos.col))
			rc = ERR_NOMEM;
		if (err)
			*err = e;
		return rc;
	}
	json_t *obj = toml_to_json(root);
	if (!obj)
		rc = err_set(err, ERR_NOMEM, "out of memory");
	else
		rc = check_and_build(obj, 1, root, opt, out, probs, err);
	json_decref(obj);
	toml_free(root);
	return rc;
}

static enum err_code load_json(const char *data, size_t len, const struct manifest_options *opt,
			       struct manifest **out, struct manifest_problems *probs,
			       struct err *err)
{
	struct err e = {0};
	json_t *obj = json_parse(data, len, MANIFEST_MAX_DEPTH, &e);
	if (!obj) {
		enum err_code rc = e.code ? e.code : ERR_BAD_JSON;
		if (rc != ERR_NOMEM && syntax_problem(probs, &e, "", 0, 0))
			rc = ERR_NOMEM;
		if (err)
			*err = e;
		return rc;
	}
	enum err_code rc = check_and_build(obj, 1, NULL, opt, out, probs, err);
	json_decref(obj);
	return rc;
}

enum err_code manifest_load(const char *data, size_t len, const struct manifest_options *opt,
			    struct manifest **out, struct manifest_problems *problems,
			    struct err *err)
{
	struct manifest_problems local = {0};
	struct manifest_problems *probs = problems ? problems : &local;
	enum err_code rc;
	if (out)
		*out = NULL;
	enum manifest_format fmt = opt ? opt->format : MANIFEST_FORMAT_AUTO;
	if (fmt == MANIFEST_FORMAT_AUTO)
		fmt = manifest_format_detect(opt ? opt->name : NULL, data, len);
	if (len > MANIFEST_MAX_BYTES) {
		struct err e;
		err_set(&e, ERR_TOO_LARGE, "manifest is %zu bytes, larger than %zu bytes", len,
			MANIFEST_MAX_BYTES);
		rc = syntax_problem(probs, &e, "", 0, 0) ? ERR_NOMEM : ERR_TOO_LARGE;
		if (err)
			*err = e;
	} else if (fmt == MANIFEST_FORMAT_TOML) {
		rc = load_toml(data, len, opt, out, probs, err);
	} else {
		rc = load_json(data, len, opt, out, probs, err);
	}
	manifest_problems_release(&local);
	return rc;
}

enum err_code manifest_from_json(const json_t *obj, struct manifest **out, struct err *err)
{
	return manifest_check_json(obj, NULL, out, NULL, err);
}

enum err_code manifest_parse_json(const char *data, size_t len, struct manifest **out,
				  struct err *err)
{
	struct manifest_options opt = {.format = MANIFEST_FORMAT_JSON};
	return manifest_load(data, len, &opt, out, NULL, err);
}

enum err_code manifest_parse_toml(const char *data, size_t len, const char *name,
				  struct manifest **out, struct err *err)
{
	struct manifest_options opt = {.format = MANIFEST_FORMAT_TOML, .name = name};
	return manifest_load(data, len, &opt, out, NULL, err);
}

/* Whether the reference ends with ext (any case); for a URL, before its
 * query or fragment. */
static int ref_has_ext(const char *ref, const char *ext)
{
	size_t n = strcspn(ref, "?#"), e = strlen(ext);
	if (strstr(ref, "://") == NULL)
		n = strlen(ref);    /* a file name may contain '?' or '#' */
	return n >= e && strncasecmp(ref + n - e, ext, e) == 0;
}

enum manifest_format manifest_format_detect(const char *ref, const char *data, size_t len)
{
	if (ref && ref_has_ext(ref, ".toml"))
		return MANIFEST_FORMAT_TOML;
	if (ref && ref_has_ext(ref, ".json"))
		return MANIFEST_FORMAT_JSON;
	size_t i = 0;
	if (data && len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (data && i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' ||
				   data[i] == '\r'))
		i++;
	return data && i < len && data[i] == '{' ? MANIFEST_FORMAT_JSON : MANIFEST_FORMAT_TOML;
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
