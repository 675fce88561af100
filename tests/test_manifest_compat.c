/* test_manifest_compat.c - manifests as the reference's users write them.
 *
 * Every manifest in ../shared/theater-upstream/manifests/ (37 versions from the
 * reference's repository that its 0.3.28 parser accepts) is accepted unchanged,
 * or refused only with unsupported_handler problems naming handler types the
 * reference defines and this server does not implement. Plus the reference's
 * forms one by one: initial_state as a JSON string (merged key by key with a
 * spawn-time state), the store handler's store_id / base_path, and every
 * handler type the reference defines known by name.
 */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"

static enum err_code load_toml(const char *text, int allow, struct manifest **m,
			       struct manifest_problems *p, struct err *err)
{
	struct manifest_options opt = {.format = MANIFEST_FORMAT_TOML, .name = "m.toml",
				       .allow_unsupported = allow};
	err_clear(err);
	return manifest_load(text, strlen(text), &opt, m, p, err);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The handler type at a problem's path "handler[N].type". */
static const char *type_at(const char *text, const char *path)
{
	unsigned n;
	static char type[64];
	if (sscanf(path, "handler[%u].type", &n) != 1)
		return NULL;
	struct manifest_options opt = {.format = MANIFEST_FORMAT_TOML, .allow_unsupported = 1};
	struct manifest *m = NULL;
	struct err err;
	if (manifest_load(text, strlen(text), &opt, &m, NULL, &err) || n >= m->nhandlers) {
		manifest_free(m);
		return NULL;
	}
	snprintf(type, sizeof type, "%s", m->handlers[n].type);
	manifest_free(m);
	return type;
}

/* One upstream manifest: 1 accepted strictly, 0 refused only for unsupported
 * handler types (each named in its message), failing the test otherwise. */
static int check_upstream(const char *file, const char *text)
{
	struct manifest *m = NULL;
	struct manifest_problems p = {0};
	struct err err;
	enum err_code rc = load_toml(text, 0, &m, &p, &err);
	int accepted = rc == ERR_OK;
	if (!accepted && rc != ERR_BAD_MANIFEST)
		fail_msg("%s: refused with %s: %s", file, err_code_name(rc), err.msg);
	for (size_t i = 0; i < p.n; i++) {
		const char *type = type_at(text, p.items[i].path);
		if (strcmp(p.items[i].code, "unsupported_handler") != 0 || !type ||
		    !manifest_handler_known(type) || manifest_handler_supported(type) ||
		    !strstr(p.items[i].message, type))
			fail_msg("%s: problem %s at %s: %s", file, p.items[i].code,
				 p.items[i].path, p.items[i].message);
	}
	manifest_free(m);
	manifest_problems_release(&p);
	/* with unsupported types allowed (validation), every one is a manifest */
	m = NULL;
	if (load_toml(text, 1, &m, NULL, &err) != ERR_OK)
		fail_msg("%s: refused even with unsupported handlers allowed: %s", file, err.msg);
	assert_non_null(m->name);
	assert_non_null(m->package);
	manifest_free(m);
	return accepted;
}

static void test_upstream_manifests(void **state)
{
	(void)state;
	const char *env = getenv("THEATER_UPSTREAM_MANIFESTS");
	char *dir = env && *env ? strdup(env)
				: tu_fmt("%s/../shared/theater-upstream/manifests", tu_source_dir());
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("cannot open '%s' (the reference's manifests, beside the repository; "
			 "set THEATER_UPSTREAM_MANIFESTS)", dir);
	char *names[256];
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d)) && n < 256;) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".toml") == 0)
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);
	size_t accepted = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = tu_fmt("%s/%s", dir, names[i]);
		char *text = tu_read_file(path, NULL);
		assert_non_null(text);
		accepted += (size_t)check_upstream(names[i], text);
		free(text);
		free(path);
		free(names[i]);
	}
	printf("upstream manifests: %zu, accepted unchanged %zu, refused only for "
	       "unsupported handler types %zu\n", n, accepted, n - accepted);
	assert_int_equal(n, 37);
	/* the 12 refused use filesystem, http-framework, replay, tcp, terminal or
	 * wasi-http (environment is supported: it grants secrets, docs/secrets.md) */
	assert_int_equal(accepted, 25);
	free(dir);
}

static void test_initial_state_json_string(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	struct err err;
	const char *t = "name = 'a'\npackage = 'p'\ninitial_state = '{\"count\": 5, \"tags\": [\"x\"]}'\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_OK);
	assert_true(json_is_object(m->initial_state));
	assert_int_equal(json_integer_value(json_object_get(m->initial_state, "count")), 5);
	/* merged key by key with a spawn-time state; the spawn-time value wins */
	json_t *spawn = json_pack("{s:i, s:s}", "count", 9, "extra", "y");
	json_t *merged = manifest_merge_initial_states(m->initial_state, spawn);
	assert_int_equal(json_integer_value(json_object_get(merged, "count")), 9);
	assert_string_equal(json_string_value(json_object_get(merged, "extra")), "y");
	assert_true(json_is_array(json_object_get(merged, "tags")));
	json_decref(merged);
	/* not an object: the spawn-time state replaces it */
	json_t *num = json_integer(3);
	merged = manifest_merge_initial_states(m->initial_state, num);
	assert_true(json_equal(merged, num));
	json_decref(merged);
	json_decref(num);
	json_decref(spawn);
	/* the manifest as given keeps the string */
	assert_true(json_is_string(json_object_get(m->json, "initial_state")));
	manifest_free(m);

	/* any JSON text: a quoted string, a number; "null" is no state */
	t = "name = 'a'\npackage = 'p'\ninitial_state = '\"hello\"'\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_OK);
	assert_string_equal(json_string_value(m->initial_state), "hello");
	manifest_free(m);
	t = "name = 'a'\npackage = 'p'\ninitial_state = 'null'\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_OK);
	assert_null(m->initial_state);
	manifest_free(m);
	/* JSON manifests read a string the same way */
	const char *j = "{\"name\":\"a\",\"package\":\"p\",\"initial_state\":\"[1,2]\"}";
	assert_int_equal(manifest_parse_json(j, strlen(j), &m, &err), ERR_OK);
	assert_true(json_is_array(m->initial_state));
	manifest_free(m);
	/* a table (ours) is still the state itself */
	t = "name = 'a'\npackage = 'p'\n[initial_state]\ncount = 2\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_OK);
	assert_int_equal(json_integer_value(json_object_get(m->initial_state, "count")), 2);
	manifest_free(m);
}

static void test_initial_state_not_json(void **state)
{
	(void)state;
	struct manifest *m = (struct manifest *)1;
	struct manifest_problems p = {0};
	struct err err;
	const char *t = "name = 'a'\npackage = 'p'\ninitial_state = 'plain words'\n";
	assert_int_equal(load_toml(t, 0, &m, &p, &err), ERR_BAD_MANIFEST);
	assert_null(m);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.items[0].code, "invalid_value");
	assert_string_equal(p.items[0].path, "initial_state");
	assert_int_equal(p.items[0].line, 3);
	assert_non_null(strstr(p.items[0].message, "read as JSON text"));
	assert_non_null(strstr(err.msg, "m.toml:3:"));
	manifest_problems_release(&p);
	/* too deep inside the string */
	char deep[200];
	int k = snprintf(deep, sizeof deep, "name = 'a'\npackage = 'p'\ninitial_state = '");
	for (int i = 0; i < 40; i++)
		deep[k++] = '[';
	for (int i = 0; i < 40; i++)
		deep[k++] = ']';
	snprintf(deep + k, sizeof deep - (size_t)k, "'\n");
	assert_int_not_equal(load_toml(deep, 0, &m, NULL, &err), ERR_OK);
	assert_null(m);
}

static void test_store_settings(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	struct err err;
	const char *t = "name = 'a'\npackage = 'p'\n[[handler]]\ntype = 'store'\n"
			"store_id = 'notes'\nbase_path = '/tmp/theater-store-test'\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_OK);
	assert_string_equal(json_string_value(json_object_get(m->handlers[0].config, "store_id")),
			    "notes");
	manifest_free(m);
	t = "name = 'a'\npackage = 'p'\n[[handler]]\ntype = 'store'\nstore_id = 5\n";
	assert_int_equal(load_toml(t, 0, &m, NULL, &err), ERR_BAD_MANIFEST);
	assert_non_null(strstr(err.msg, "handler[0].store_id"));
}

static void test_reference_handler_types(void **state)
{
	(void)state;
	static const char *const unsupported[] = {
		"tcp", "replay", "terminal", "rpc", "wasi-http", "timer", "loop", "podman",
		"filesystem", "process", "http-framework", NULL,
	};
	for (const char *const *ty = unsupported; *ty; ty++) {
		assert_true(manifest_handler_known(*ty));
		assert_false(manifest_handler_supported(*ty));
		char *t = tu_fmt("name = 'a'\npackage = 'p'\n[[handler]]\ntype = 'runtime'\n"
				 "[[handler]]\ntype = '%s'\n", *ty);
		struct manifest *m = NULL;
		struct manifest_problems p = {0};
		struct err err;
		assert_int_equal(load_toml(t, 0, &m, &p, &err), ERR_BAD_MANIFEST);
		assert_int_equal(p.n, 1);
		assert_string_equal(p.items[0].code, "unsupported_handler");
		assert_string_equal(p.items[0].path, "handler[1].type");
		char *named = tu_fmt("'%s'", *ty);
		assert_non_null(strstr(p.items[0].message, named));
		assert_non_null(strstr(err.msg, named));
		free(named);
		manifest_problems_release(&p);
		free(t);
	}
	/* a type nobody defines is still unknown */
	struct manifest_problems p = {0};
	struct err err;
	const char *t = "name = 'a'\npackage = 'p'\n[[handler]]\ntype = 'teleport'\n";
	assert_int_equal(load_toml(t, 1, NULL, &p, &err), ERR_BAD_MANIFEST);
	assert_string_equal(p.items[0].code, "unknown_handler");
	manifest_problems_release(&p);
	/* settings of the modelled ones are checked when validating */
	t = "name = 'a'\npackage = 'p'\n[[handler]]\ntype = 'tcp'\nlisten = 9000\n";
	assert_int_equal(load_toml(t, 1, NULL, &p, &err), ERR_BAD_MANIFEST);
	assert_string_equal(p.items[0].path, "handler[0].listen");
	manifest_problems_release(&p);
	/* the new types have no permission capability: still an unknown key there */
	t = "name = 'a'\npackage = 'p'\n[permission_policy.tcp]\ntype = 'inherit'\n";
	assert_int_equal(load_toml(t, 1, NULL, &p, &err), ERR_UNKNOWN_KEY);
	manifest_problems_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upstream_manifests),
		cmocka_unit_test(test_initial_state_json_string),
		cmocka_unit_test(test_initial_state_not_json),
		cmocka_unit_test(test_store_settings),
		cmocka_unit_test(test_reference_handler_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
