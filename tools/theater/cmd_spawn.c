/* cmd_spawn.c - manifests: spawn and validate.
 *
 * A manifest comes from a local file (".toml" or ".json", or by its first
 * character: '{' is JSON), from stdin ("-"), inline (--inline TEXT), or as a
 * reference the server resolves itself (--ref: a file under its package roots,
 * an http(s) URL, or a store entry; a relative `package` then resolves beside
 * it). TOML goes to the server as TOML, so its errors carry line numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/theater/cli.h"

struct manifest_src {
	char *text;           /* the manifest's bytes, or NULL with ref */
	size_t len;
	int toml;
	const char *ref;      /* --ref */
	const char *label;    /* for messages: the file name, "<inline>" or the ref */
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int looks_json(const char *text)
{
	text += strspn(text, " \t\r\n");
	return *text == '{';
}

/* Fills src from FILE / --inline / --ref; exactly one is allowed. */
static int manifest_source(struct cli *c, char **pos, int npos, const char *inline_text,
			   const char *ref, struct manifest_src *src)
{
	memset(src, 0, sizeof(*src));
	if ((npos > 0) + (inline_text != NULL) + (ref != NULL) != 1)
		return cli_usage(c, "give exactly one manifest: a FILE (- for stdin), "
				 "--inline TEXT or --ref REFERENCE");
	if (ref) {
		src->ref = ref;
		src->label = ref;
		return 0;
	}
	if (inline_text) {
		src->text = strdup(inline_text);
		src->len = strlen(inline_text);
		src->label = "<inline>";
	} else {
		src->text = cli_read_file(pos[0], &src->len);
		src->label = strcmp(pos[0], "-") ? pos[0] : "<stdin>";
		if (!src->text)
			return EXIT_USAGE;
	}
	if (!src->text)
		return cli_usage(c, "out of memory");
	const char *name = npos ? pos[0] : "";
	src->toml = ends_with(name, ".toml") ||
		    (!ends_with(name, ".json") && !looks_json(src->text));
	return 0;
}

/* Prints the problems of a /manifests/validate verdict as FILE:LINE:COL. */
static void print_problems(const char *label, json_t *v)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(v, "problems"), i, p) {
		json_int_t line = json_integer_value(json_object_get(p, "line"));
		json_int_t col = json_integer_value(json_object_get(p, "col"));
		const char *path = json_string_value(json_object_get(p, "path"));
		fprintf(stderr, "%s", label);
		if (line)
			fprintf(stderr, ":%lld:%lld", (long long)line, (long long)col);
		fprintf(stderr, ": %s: %s", json_string_value(json_object_get(p, "code")),
			json_string_value(json_object_get(p, "message")));
		if (path && *path)
			fprintf(stderr, " (at %s)", path);
		fputc('\n', stderr);
	}
	json_int_t n = json_integer_value(json_object_get(v, "problem_count"));
	if ((size_t)n > json_array_size(json_object_get(v, "problems")))
		fprintf(stderr, "%s: ... %lld problems in all\n", label, (long long)n);
}

/* POST /manifests/validate with src; *out is the verdict. */
static int validate_src(struct cli *c, const struct manifest_src *src, json_t **out)
{
	if (src->ref) {
		json_t *b = json_pack("{s:s}", "manifest_ref", src->ref);
		char *text = json_compact(b);
		json_decref(b);
		int rc = cli_json(c, "POST", "/manifests/validate", "application/json", text,
				  text ? strlen(text) : 0, out, NULL);
		free(text);
		return rc;
	}
	return cli_json(c, "POST", "/manifests/validate",
			src->toml ? "application/toml" : "application/json", src->text, src->len,
			out, NULL);
}

static const char validate_help[] =
	"usage: theater validate FILE            (.toml or .json; - reads stdin)\n"
	"       theater validate --inline TEXT\n"
	"       theater validate --ref REFERENCE (a manifest the server fetches)\n\n"
	"Check a manifest without spawning it (POST /manifests/validate) and print\n"
	"every problem as FILE:LINE:COL: code: message (lines and columns for TOML).\n"
	"Exit code 0 when it is valid, 6 when it has problems.\n";

int cmd_validate(struct cli *c, int argc, char **argv)
{
	const char *inline_text = NULL, *ref = NULL;
	char *pos[1];
	int npos, rc;
	const struct cli_opt opts[] = {{"inline", 'i', 1, &inline_text, NULL},
				       {"ref", 'r', 1, &ref, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, validate_help, pos, 0, 1, &npos)) >= 0)
		return rc;
	struct manifest_src src;
	if ((rc = manifest_source(c, pos, npos, inline_text, ref, &src)))
		return rc;
	json_t *v;
	rc = validate_src(c, &src, &v);
	free(src.text);
	if (rc)
		return rc;
	int valid = json_is_true(json_object_get(v, "valid"));
	if (c->json)
		cli_print_json(v);
	else if (valid)
		printf("%s: valid (%s)\n", src.label,
		       json_string_value(json_object_get(v, "format")));
	else
		print_problems(src.label, v);
	json_decref(v);
	return valid ? EXIT_OK : EXIT_CHECK;
}

static const char spawn_help[] =
	"usage: theater spawn FILE [--wait] [--state JSON]   (.toml or .json; - reads stdin)\n"
	"       theater spawn --inline TEXT [...]\n"
	"       theater spawn --ref REFERENCE [...]\n\n"
	"Start an actor and print its id. FILE and --inline are sent as they are (TOML\n"
	"as TOML, so errors name the line); a relative `package` in them resolves under\n"
	"the server's package roots. --ref names a manifest the server reads itself\n"
	"(a file under its package roots, an http(s) URL, or store://...), whose\n"
	"relative `package` resolves beside it.\n\n"
	"  -w, --wait          wait until the actor runs (or fails: exit code 1, with\n"
	"                      the reason)\n"
	"  --timeout S         seconds to wait with --wait (default 30, max 300)\n"
	"  -s, --state JSON    a spawn-time initial state, merged with the manifest's\n"
	"  -k, --idempotency-key KEY\n"
	"                      a retry with the same KEY answers the first spawn's\n"
	"                      outcome instead of spawning again (24 h)\n"
	"  --json              print the new run as the server answers it\n";

/* The JSON spawn request for src: {"manifest": ...} or {"manifest_ref": ...},
 * with "initial_state". A TOML manifest with a state goes through
 * /manifests/validate, which answers its JSON form. */
static int spawn_json(struct cli *c, const struct manifest_src *src, json_t *state, char **out)
{
	json_t *body = NULL;
	int rc = 0;
	if (src->ref) {
		body = json_pack("{s:s}", "manifest_ref", src->ref);
	} else if (src->toml) {
		json_t *v;
		if ((rc = validate_src(c, src, &v)))
			return rc;
		if (!json_is_true(json_object_get(v, "valid"))) {
			print_problems(src->label, v);
			json_decref(v);
			return EXIT_CHECK;
		}
		body = json_pack("{s:O}", "manifest", json_object_get(v, "manifest"));
		json_decref(v);
	} else {
		struct err e = {0};
		json_t *m = json_parse(src->text, src->len, 64, &e);
		if (!m) {
			cli_error("%s: %s", src->label, e.msg);
			return EXIT_USAGE;
		}
		/* a whole spawn request is sent as it is; a manifest is wrapped */
		int is_req = json_object_get(m, "manifest") || json_object_get(m, "manifest_ref");
		body = is_req ? json_incref(m) : json_pack("{s:O}", "manifest", m);
		json_decref(m);
	}
	if (body && state)
		json_object_set(body, "initial_state", state);
	*out = body ? json_compact(body) : NULL;
	json_decref(body);
	if (!*out) {
		cli_error("out of memory");
		return EXIT_USAGE;
	}
	return 0;
}

static int spawn_answer(struct cli *c, const struct client_reply *r)
{
	struct err e = {0};
	if (r->status >= 400)
		return cli_problem(c, r);
	json_t *a = json_parse(r->body.data, r->body.len, 64, &e);
	if (!a) {
		cli_error("the server's answer is not JSON: %s", e.msg);
		return EXIT_REFUSED;
	}
	if (c->json)
		cli_print_json(a);
	else
		printf("%s\n", json_string_value(json_object_get(a, "id")));
	json_decref(a);
	return EXIT_OK;
}

int cmd_spawn(struct cli *c, int argc, char **argv)
{
	const char *inline_text = NULL, *ref = NULL, *state_text = NULL, *timeout = NULL;
	const char *idem = NULL;
	int wait = 0, npos, rc;
	char *pos[1];
	const struct cli_opt opts[] = {
		{"inline", 'i', 1, &inline_text, NULL}, {"ref", 'r', 1, &ref, NULL},
		{"state", 's', 1, &state_text, NULL}, {"wait", 'w', 0, NULL, &wait},
		{"timeout", 't', 1, &timeout, NULL}, {"idempotency-key", 'k', 1, &idem, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, spawn_help, pos, 0, 1, &npos)) >= 0)
		return rc;
	if (timeout && (!*timeout || strspn(timeout, "0123456789") != strlen(timeout)))
		return cli_usage(c, "--timeout wants whole seconds, not '%s'", timeout);
	struct err e = {0};
	json_t *state = NULL;
	if (state_text && !(state = json_parse(state_text, strlen(state_text), 64, &e)))
		return cli_usage(c, "--state is not JSON: %s", e.msg);
	struct manifest_src src;
	if ((rc = manifest_source(c, pos, npos, inline_text, ref, &src))) {
		json_decref(state);
		return rc;
	}
	char path[128];
	snprintf(path, sizeof(path), "/actors%s%s%s", wait ? "?wait=running" : "",
		 wait && timeout ? "&timeout=" : "", wait && timeout ? timeout : "");
	char *body = NULL;
	const char *ctype = "application/json";
	size_t len;
	if (src.toml && !state) {
		body = src.text;     /* TOML as it is: the server's errors name the line */
		src.text = NULL;
		len = src.len;
		ctype = "application/toml";
	} else if ((rc = spawn_json(c, &src, state, &body))) {
		goto done;
	} else {
		len = strlen(body);
	}
	struct client_reply r = {0};
	if ((rc = cli_idempotency(c, idem)) == 0 &&
	    (rc = cli_do(c, "POST", path, ctype, body, len, &r)) == 0)
		rc = spawn_answer(c, &r);
	client_reply_release(&r);
done:
	free(body);
	free(src.text);
	json_decref(state);
	return rc;
}
