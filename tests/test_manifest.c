/* test_manifest.c - JSON manifests and merge_initial_states. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"

/* Parses text; returns the code and keeps the message in err. */
static enum err_code parse(const char *text, struct manifest **m, struct err *err)
{
	err_clear(err);
	return manifest_parse_json(text, strlen(text), m, err);
}

static void expect_fail(const char *text, enum err_code code, const char *msg_part)
{
	struct manifest *m = (struct manifest *)1;
	struct err err;
	enum err_code rc = parse(text, &m, &err);
	if (rc != code || !strstr(err.msg, msg_part))
		fail_msg("manifest %s: got %s '%s', want %s containing '%s'", text,
			 err_code_name(rc), err.msg, err_code_name(code), msg_part);
	assert_null(m);
}

static void test_all_fields(void **state)
{
	(void)state;
	const char *text =
		"{\"name\":\"counter\",\"version\":\"0.1.0\",\"package\":\"counter.wasm\","
		"\"description\":\"counts\",\"long_description\":\"counts up\","
		"\"initial_state\":{\"count\":1},\"static_package\":true,\"save_chain\":false,"
		"\"handler\":[{\"type\":\"runtime\"},{\"type\":\"timing\",\"max_sleep_duration\":5}],"
		"\"permission_policy\":{\"timing\":{\"type\":\"restrict\",\"config\":"
		"{\"max_sleep_duration\":10,\"min_sleep_duration\":1}}},"
		"\"restart\":{\"policy\":\"on-failure\",\"max_restarts\":3,\"window_s\":10,"
		"\"backoff_ms\":50,\"backoff_max_ms\":800},"
		"\"limits\":{\"fuel\":1000000,\"memory_bytes\":1048576,\"call_timeout_ms\":250}}";
	struct manifest *m;
	struct err err;
	assert_int_equal(parse(text, &m, &err), ERR_OK);
	assert_string_equal(m->name, "counter");
	assert_string_equal(m->version, "0.1.0");
	assert_string_equal(m->package, "counter.wasm");
	assert_string_equal(m->description, "counts");
	assert_string_equal(m->long_description, "counts up");
	assert_int_equal(json_integer_value(json_object_get(m->initial_state, "count")), 1);
	assert_true(m->static_package);
	assert_false(m->save_chain);
	assert_int_equal(m->nhandlers, 2);
	assert_string_equal(m->handlers[0].type, "runtime");
	assert_int_equal(json_object_size(m->handlers[0].config), 0);
	assert_string_equal(m->handlers[1].type, "timing");
	assert_null(json_object_get(m->handlers[1].config, "type"));
	assert_int_equal(json_integer_value(json_object_get(m->handlers[1].config,
							    "max_sleep_duration")), 5);
	assert_true(json_is_object(m->permission_policy));
	assert_true(m->restart.present);
	assert_int_equal(m->restart.policy, MANIFEST_RESTART_ON_FAILURE);
	assert_int_equal(m->restart.max_restarts, 3);
	assert_int_equal(m->restart.window_s, 10);
	assert_int_equal(m->restart.backoff_ms, 50);
	assert_int_equal(m->restart.backoff_max_ms, 800);
	assert_int_equal(m->limits.fuel, 1000000);
	assert_int_equal(m->limits.memory_bytes, 1048576);
	assert_int_equal(m->limits.call_timeout_ms, 250);
	assert_true(json_is_object(m->json));
	assert_string_equal(json_string_value(json_object_get(m->json, "name")), "counter");
	manifest_free(m);
}

static void test_defaults(void **state)
{
	(void)state;
	struct manifest *m;
	struct err err;
	assert_int_equal(parse("{\"name\":\"a\",\"package\":\"/p/a.wasm\"}", &m, &err), ERR_OK);
	assert_null(m->version);
	assert_null(m->description);
	assert_null(m->long_description);
	assert_null(m->initial_state);
	assert_null(m->permission_policy);
	assert_false(m->static_package);
	assert_true(m->save_chain);
	assert_int_equal(m->nhandlers, 0);
	assert_null(m->handlers);
	assert_false(m->restart.present);
	assert_int_equal(m->restart.policy, MANIFEST_RESTART_NEVER);
	assert_int_equal(m->restart.max_restarts, MANIFEST_RESTART_DEFAULT_MAX);
	assert_int_equal(m->restart.backoff_max_ms, MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS);
	assert_int_equal(m->limits.fuel, 0);
	manifest_free(m);
	/* initial_state null is absent; a non-object state is kept as given. */
	assert_int_equal(parse("{\"name\":\"a\",\"package\":\"p\",\"initial_state\":null}", &m,
			       &err), ERR_OK);
	assert_null(m->initial_state);
	manifest_free(m);
	assert_int_equal(parse("{\"name\":\"a\",\"package\":\"p\",\"initial_state\":[1,2]}", &m,
			       &err), ERR_OK);
	assert_true(json_is_array(m->initial_state));
	manifest_free(m);
	manifest_free(NULL);
}

static void test_legacy_component(void **state)
{
	(void)state;
	struct manifest *m;
	struct err err;
	assert_int_equal(parse("{\"name\":\"a\",\"component\":\"old.wasm\"}", &m, &err), ERR_OK);
	assert_string_equal(m->package, "old.wasm");
	manifest_free(m);
	expect_fail("{\"name\":\"a\",\"component\":\"x\",\"package\":\"y\"}", ERR_BAD_MANIFEST,
		    "'component'");
	expect_fail("{\"name\":\"a\",\"component\":7}", ERR_BAD_MANIFEST,
		    "field 'component' must be a string");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_fail("{\"name\":\"a\",\"pakage\":\"p\"}", ERR_UNKNOWN_KEY,
		    "unknown key 'pakage' in manifest");
	expect_fail("{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"polcy\":\"always\"}}",
		    ERR_UNKNOWN_KEY, "unknown key 'polcy' in manifest restart");
	expect_fail("{\"name\":\"a\",\"package\":\"p\",\"limits\":{\"gas\":1}}", ERR_UNKNOWN_KEY,
		    "unknown key 'gas'");
}

static void test_wrong_types(void **state)
{
	(void)state;
	static const struct { const char *text, *msg; } cases[] = {
		{ "{\"name\":1,\"package\":\"p\"}", "field 'name' must be a string" },
		{ "{\"name\":\"a\",\"package\":[]}", "field 'package' must be a string" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"version\":1}", "'version' must be a string" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"description\":{}}", "'description' must be a string" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"static_package\":\"yes\"}",
		  "'static_package' must be a boolean" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"save_chain\":1}", "'save_chain' must be a boolean" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"handler\":{}}", "'handler' must be an array" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"handler\":[1]}", "'handler[0]' must be an object" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"handler\":[{\"type\":\"runtime\"},{\"type\":3}]}",
		  "'handler[1].type' must be a non-empty string" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"permission_policy\":[]}",
		  "'permission_policy' must be an object" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":true}", "'restart' must be an object" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"policy\":\"sometimes\"}}",
		  "'restart.policy' must be one of" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"max_restarts\":-1}}",
		  "'restart.max_restarts' must be a non-negative integer" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"window_s\":0}}",
		  "'restart.window_s' must be a positive integer" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"backoff_ms\":1.5}}",
		  "'restart.backoff_ms' must be" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"restart\":{\"backoff_ms\":500,\"backoff_max_ms\":100}}",
		  "'restart.backoff_max_ms' must be at least" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"limits\":{\"fuel\":\"lots\"}}",
		  "'limits.fuel' must be a positive integer" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"limits\":{\"memory_bytes\":0}}",
		  "'limits.memory_bytes' must be a positive integer" },
		{ "{\"name\":\"a\",\"package\":\"p\",\"limits\":3}", "'limits' must be an object" },
		{ "{\"name\":\"\",\"package\":\"p\"}", "'name' must have 1 to 128" },
		{ "{\"name\":\"a\\nb\",\"package\":\"p\"}", "control character" },
		{ "{\"name\":\"a\",\"package\":\"\"}", "'package' must not be empty" },
		{ "[1,2]", "must be a json object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fail(cases[i].text, ERR_BAD_MANIFEST, cases[i].msg);
}

static void test_name_length(void **state)
{
	(void)state;
	char text[2048];
	char name[600];
	memset(name, 'n', 128);
	name[128] = '\0';
	struct manifest *m;
	struct err err;
	snprintf(text, sizeof(text), "{\"name\":\"%s\",\"package\":\"p\"}", name);
	assert_int_equal(parse(text, &m, &err), ERR_OK);
	manifest_free(m);
	strcat(name, "n");
	snprintf(text, sizeof(text), "{\"name\":\"%s\",\"package\":\"p\"}", name);
	expect_fail(text, ERR_BAD_MANIFEST, "1 to 128 characters");
	/* 128 two-byte characters are 128 characters. */
	name[0] = '\0';
	for (int i = 0; i < 128; i++)
		strcat(name, "\xc3\xa9");
	snprintf(text, sizeof(text), "{\"name\":\"%s\",\"package\":\"p\"}", name);
	assert_int_equal(parse(text, &m, &err), ERR_OK);
	manifest_free(m);
}

static void test_missing_fields(void **state)
{
	(void)state;
	expect_fail("{\"package\":\"p\"}", ERR_MISSING_FIELD, "missing field 'name'");
	expect_fail("{\"name\":\"a\"}", ERR_MISSING_FIELD, "missing field 'package'");
	expect_fail("{\"name\":\"a\",\"package\":\"p\",\"handler\":[{\"x\":1}]}", ERR_MISSING_FIELD,
		    "'handler[0].type'");
	expect_fail("{}", ERR_MISSING_FIELD, "'name'");
}

static void test_bad_json(void **state)
{
	(void)state;
	expect_fail("{\"name\":", ERR_BAD_JSON, "malformed json");
	expect_fail("{\"name\":\"a\",\"name\":\"b\",\"package\":\"p\"}", ERR_BAD_JSON, "");
	char deep[200] = "{\"name\":\"a\",\"package\":\"p\",\"initial_state\":";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	expect_fail(deep, ERR_TOO_DEEP, "deeper than 32");
	struct manifest *m;
	struct err err;
	assert_int_equal(manifest_parse_json("{}", MANIFEST_MAX_BYTES + 1, &m, &err), ERR_TOO_LARGE);
	assert_null(m);
}

static void test_from_json_keeps_input(void **state)
{
	(void)state;
	json_t *obj = json_pack("{s:s, s:s, s:{s:i}}", "name", "a", "package", "p",
				"initial_state", "n", 1);
	struct manifest *m;
	struct err err;
	assert_int_equal(manifest_from_json(obj, &m, &err), ERR_OK);
	/* The manifest does not share mutable values with the caller's object. */
	json_object_set_new(json_object_get(obj, "initial_state"), "n", json_integer(2));
	assert_int_equal(json_integer_value(json_object_get(m->initial_state, "n")), 1);
	json_decref(obj);
	assert_string_equal(m->name, "a");
	manifest_free(m);
	assert_int_equal(manifest_from_json(NULL, &m, &err), ERR_BAD_MANIFEST);
}

/* Merges two JSON texts (NULL for absent) and compares the compact result. */
static void check_merge(const char *ms, const char *ss, const char *want)
{
	json_t *a = ms ? json_loads(ms, JSON_DECODE_ANY, NULL) : NULL;
	json_t *b = ss ? json_loads(ss, JSON_DECODE_ANY, NULL) : NULL;
	json_t *r = manifest_merge_initial_states(a, b);
	if (!want) {
		assert_null(r);
	} else {
		char *got = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (strcmp(got, want) != 0)
			fail_msg("merge(%s, %s) = %s, want %s", ms, ss, got, want);
		free(got);
		assert_true(r != a && r != b);
	}
	json_decref(r);
	json_decref(a);
	json_decref(b);
}

static void test_merge_initial_states(void **state)
{
	(void)state;
	check_merge(NULL, NULL, NULL);
	check_merge("{\"a\":1}", NULL, "{\"a\":1}");
	check_merge(NULL, "{\"b\":2}", "{\"b\":2}");
	check_merge("{\"a\":1,\"b\":1}", "{\"b\":2,\"c\":3}", "{\"a\":1,\"b\":2,\"c\":3}");
	/* Shallow: a nested object from the spawn replaces the manifest's. */
	check_merge("{\"cfg\":{\"x\":1,\"y\":1}}", "{\"cfg\":{\"y\":2}}", "{\"cfg\":{\"y\":2}}");
	/* Spawn value null at a key wins like any other value. */
	check_merge("{\"a\":1}", "{\"a\":null}", "{\"a\":null}");
	/* Not both objects: the spawn-time value replaces. */
	check_merge("{\"a\":1}", "[1]", "[1]");
	check_merge("[1]", "{\"a\":1}", "{\"a\":1}");
	check_merge("\"s\"", "5", "5");
	/* A JSON null spawn state counts as absent. */
	check_merge("{\"a\":1}", "null", "{\"a\":1}");
	check_merge("null", "null", NULL);
	check_merge("null", "{\"a\":1}", "{\"a\":1}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_legacy_component),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_from_json_keeps_input),
		cmocka_unit_test(test_merge_initial_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
