/* manifests.c - manifests over HTTP: POST /manifests/validate (every problem
 * of a manifest, without spawning anything), GET /actors/{id}/manifest (the
 * manifest a run was spawned with, in its JSON form), and the TOML side of
 * POST /actors (a TOML body is the manifest itself).
 *
 * Validation answers 200 with {"valid": ..., "problems": [...]} whether or not
 * the manifest is valid: the request succeeded, the manifest is the subject.
 * Only what prevents looking at a manifest is a problem+json error: a content
 * type we do not read (415), a body over the limit (413, from the HTTP layer),
 * a malformed request envelope (4xx) or a manifest_ref that cannot be fetched
 * (its resolver error). Validation fetches references, so it runs on the
 * worker pool.
 */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/resolve.h"
#include "src/util/crypto.h"

static const struct {
	const char *type;
	enum manifest_format fmt;
} body_types[] = {
	{"application/json", MANIFEST_FORMAT_JSON},
	{"application/x-www-form-urlencoded", MANIFEST_FORMAT_JSON},   /* curl -d */
	{"application/toml", MANIFEST_FORMAT_TOML},
	{"application/x-toml", MANIFEST_FORMAT_TOML},
	{"text/toml", MANIFEST_FORMAT_TOML},
	{"text/x-toml", MANIFEST_FORMAT_TOML},
};

int api_body_format(const char *ct, enum manifest_format *out)
{
	*out = MANIFEST_FORMAT_JSON;
	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	if (n == 0)
		return 0;
	for (size_t i = 0; i < sizeof(body_types) / sizeof(body_types[0]); i++)
		if (strlen(body_types[i].type) == n && strncasecmp(ct, body_types[i].type, n) == 0) {
			*out = body_types[i].fmt;
			return 0;
		}
	return -1;
}

json_t *api_toml_spawn_body(const char *data, size_t len, struct err *err)
{
	struct manifest_options opt = {.format = MANIFEST_FORMAT_TOML, .name = "manifest"};
	struct manifest *m = NULL;
	if (manifest_load(data, len, &opt, &m, NULL, err))
		return NULL;
	json_t *body = json_pack("{s:O}", "manifest", m->json);
	manifest_free(m);
	if (!body)
		err_set(err, ERR_NOMEM, "out of memory");
	return body;
}

/* ---- POST /manifests/validate ---- */

struct validation {
	struct manifest_problems problems;
	struct manifest *m;
	enum manifest_format fmt;
	const char *ref;          /* manifest_ref, when the body named one */
};

static void validation_release(struct validation *v)
{
	manifest_problems_release(&v->problems);
	manifest_free(v->m);
}

static json_t *report_json(const struct validation *v)
{
	json_t *o = json_object();
	json_t *probs = manifest_problems_json(&v->problems);
	if (!o || !probs) {
		json_decref(o);
		json_decref(probs);
		return NULL;
	}
	json_object_set_new(o, "valid", json_boolean(v->problems.n == 0));
	json_object_set_new(o, "format", json_string(v->fmt == MANIFEST_FORMAT_TOML ? "toml"
										: "json"));
	if (v->ref)
		json_object_set_new(o, "manifest_ref", json_string(v->ref));
	json_object_set_new(o, "problem_count",
			    json_integer((json_int_t)(v->problems.n + v->problems.more)));
	json_object_set_new(o, "problems", probs);
	if (v->m) {
		json_object_set(o, "manifest", v->m->json);
		/* where the package resolves: next to the manifest's reference */
		char *pkg = v->ref ? resolver_join(v->ref, v->m->package) : strdup(v->m->package);
		json_object_set_new(o, "package_ref", pkg ? json_string(pkg) : json_null());
		free(pkg);
	}
	return o;
}

/* Fetches and checks the manifest named by ref. A failure to fetch it is the
 * returned code with *fetch_failed set; otherwise the code of the check. */
static enum err_code validate_ref(struct api_call *c, struct validation *v, int *fetch_failed,
				  struct err *err)
{
	struct resolved *res = NULL;
	enum err_code rc = resolver_fetch(c->api->cfg.resolver, v->ref, NULL, 0, &res, err);
	*fetch_failed = 1;
	if (rc) {
		err_prefix(err, "cannot load manifest '%s'", v->ref);
		return rc;
	}
	if (res->len > c->api->cfg.max_body) {
		rc = err_set(err, ERR_TOO_LARGE, "manifest '%s' is %zu bytes, larger than %zu "
			     "bytes", v->ref, res->len, c->api->cfg.max_body);
		resolved_free(res);
		return rc;
	}
	*fetch_failed = 0;
	struct manifest_options opt = {.name = v->ref};
	opt.format = v->fmt = manifest_format_detect(v->ref, (const char *)res->data, res->len);
	rc = manifest_load((const char *)res->data, res->len, &opt, &v->m, &v->problems, err);
	resolved_free(res);
	return rc;
}

/* {"manifest": {...}} or {"manifest_ref": "..."}, as for POST /actors. 0, or
 * -1 when the request has been answered with an error. */
static int validate_envelope(struct api_call *c, const json_t *body, struct validation *v)
{
	static const char *const keys[] = {"manifest", "manifest_ref", "initial_state", NULL};
	struct err e = {0};
	const json_t *m = json_object_get(body, "manifest");
	const json_t *ref = json_object_get(body, "manifest_ref");
	int fetch_failed = 0;
	if (json_check_keys(body, keys, "validate request", &e)) {
		api_problem_err(c, &e);
		return -1;
	}
	if ((m != NULL) == (ref != NULL)) {
		api_problem(c, ERR_INVALID, "give exactly one of 'manifest' (an object) or "
			    "'manifest_ref' (a reference)");
		return -1;
	}
	if (ref && (!json_is_string(ref) || json_string_length(ref) == 0 ||
		    json_string_length(ref) > RESOLVE_MAX_REFERENCE)) {
		api_problem(c, ERR_BAD_REFERENCE, "'manifest_ref' must be a non-empty string of "
			    "at most 4096 bytes");
		return -1;
	}
	enum err_code rc;
	if (m) {
		rc = manifest_check_json(m, NULL, &v->m, &v->problems, &e);
	} else {
		v->ref = json_string_value(ref);
		rc = validate_ref(c, v, &fetch_failed, &e);
	}
	if (fetch_failed || (rc == ERR_NOMEM && v->problems.n == 0)) {
		api_problem_err(c, &e);
		return -1;
	}
	return 0;
}

static void job_validate(void *arg)
{
	struct api_call *c = arg;
	struct validation v = {.fmt = MANIFEST_FORMAT_JSON};
	struct manifest_options opt = {0};
	struct err e = {0};
	size_t len;
	const char *data = (const char *)http_request_body(c->req, &len);
	api_body_format(http_request_header(c->req, "Content-Type"), &v.fmt);
	json_t *body = v.fmt == MANIFEST_FORMAT_JSON ? json_parse(data, len, 64, NULL) : NULL;
	enum err_code rc = ERR_OK;
	if (json_is_object(body) && (json_object_get(body, "manifest") ||
				     json_object_get(body, "manifest_ref"))) {
		if (validate_envelope(c, body, &v)) {
			json_decref(body);
			validation_release(&v);
			return;
		}
	} else if (body) {
		rc = manifest_check_json(body, &opt, &v.m, &v.problems, &e);
	} else {
		/* TOML, or JSON that does not parse: the problem says where */
		opt.format = v.fmt;
		rc = manifest_load(data, len, &opt, &v.m, &v.problems, &e);
	}
	json_t *out = rc == ERR_NOMEM && v.problems.n == 0 ? NULL : report_json(&v);
	json_decref(body);   /* v.ref pointed into it: report_json has copied it */
	validation_release(&v);
	if (out)
		api_json(c, 200, out);
	else
		api_problem(c, ERR_NOMEM, "out of memory while validating the manifest");
}

void h_manifests_validate(struct api_call *c)
{
	enum manifest_format fmt;
	const char *ct = http_request_header(c->req, "Content-Type");
	if (api_body_format(ct, &fmt)) {
		char detail[200];
		snprintf(detail, sizeof(detail), "content type '%.100s' is not supported; send "
			 "application/json or application/toml", ct);
		api_problem(c, ERR_UNSUPPORTED, detail);
		return;
	}
	api_defer(c, job_validate);
}

/* ---- GET /actors/{id}/manifest ---- */

void h_actor_manifest(struct api_call *c)
{
	char detail[200];
	struct err e = {0};
	struct db_run r;
	if (!uuid_valid(c->params[0])) {
		snprintf(detail, sizeof(detail), "'%.80s' is not an actor id (a lowercase uuid)",
			 c->params[0]);
		api_problem(c, ERR_BAD_ID, detail);
		return;
	}
	if (supervisor_get(c->api->cfg.sup, c->params[0], &r, &e)) {
		api_problem_err(c, &e);
		return;
	}
	json_t *m = r.manifest_json ? json_parse(r.manifest_json, strlen(r.manifest_json), 0, &e)
				    : NULL;
	if (!m && !r.manifest_json)
		err_set(&e, ERR_NOT_FOUND, "no manifest is recorded for actor '%s'", r.id);
	else if (!m)
		err_prefix(&e, "the recorded manifest of actor '%s' is damaged", r.id);
	db_run_release(&r);
	if (!m) {
		api_problem(c, e.code == ERR_NOT_FOUND ? ERR_NOT_FOUND : ERR_CORRUPT, e.msg);
		return;
	}
	const char *h[] = {"Cache-Control", "no-cache", NULL};
	api_json_headers(c, 200, m, h);
}
