/* test_manifest_toml.c - TOML manifests through the manifest model: every
 * field of the reference, the same model as JSON, errors with positions, every
 * problem listed, unsupported and unknown handler types, permission policies,
 * and hostile input (the toml-test suite's invalid cases, 10 MB, deep nesting). */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"

/* A manifest as theater's users write it: every field and every handler type. */
static const char *FULL_TOML =
	"# a manifest with everything\n"                                   /* 1 */
	"name = \"kitchen-sink\"\n"                                         /* 2 */
	"version = \"0.3.1\"\n"                                             /* 3 */
	"package = \"./sink.wasm\"\n"                                       /* 4 */
	"description = \"uses every field\"\n"                              /* 5 */
	"long_description = \"\"\"\nIt has\nmany lines.\"\"\"\n"          /* 6-8 */
	"static_package = true\n"                                           /* 9 */
	"save_chain = false\n"                                              /* 10 */
	"\n"
	"[initial_state]\n"
	"count = 1\n"
	"when = 1979-05-27T07:32:00Z\n"
	"tags = [\"a\", \"b\"]\n"
	"\n"
	"[[handler]]\ntype = \"runtime\"\n"
	"[[handler]]\ntype = \"message-server\"\n"
	"[[handler]]\ntype = \"supervisor\"\n"
	"[[handler]]\ntype = \"store\"\n"
	"[[handler]]\ntype = \"timing\"\nmax_sleep_duration = 3600000\nmin_sleep_duration = 1\n"
	"[[handler]]\ntype = \"random\"\nseed = 42\nmax_bytes = 1024\nmax_int = 100\n"
	"allow_crypto_secure = false\n"
	"[[handler]]\ntype = \"http-client\"\n"
	"[[handler]]\ntype = \"environment\"\nallowed_vars = [\"HOME\"]\ndenied_vars = []\n"
	"allow_list_all = false\nallowed_prefixes = [\"APP_\"]\n"
	"[[handler]]\ntype = \"filesystem\"\npath = \"/tmp/x\"\nnew_dir = true\n"
	"allowed_commands = [\"ls\"]\n"
	"[[handler]]\ntype = \"process\"\nmax_processes = 2\nmax_output_buffer = 4096\n"
	"allowed_programs = [\"echo\"]\nallowed_paths = [\"/bin\"]\n"
	"[[handler]]\ntype = \"http-framework\"\n"
	"\n"
	"[permission_policy.file_system]\ntype = \"restrict\"\n"
	"config = { read = true, write = false, execute = false, allowed_paths = [\"/tmp\"] }\n"
	"[permission_policy.http_client]\ntype = \"restrict\"\n"
	"[permission_policy.http_client.config]\nallowed_hosts = [\"example.com\"]\n"
	"max_redirects = 3\ntimeout = 5000\n"
	"[permission_policy.process]\ntype = \"disallow\"\n"
	"[permission_policy.environment]\ntype = \"inherit\"\n"
	"[permission_policy.timing]\ntype = \"restrict\"\n"
	"config = { max_sleep_duration = 10, min_sleep_duration = 1 }\n"
	"[permission_policy.random]\ntype = \"restrict\"\n"
	"config = { max_bytes = 16, max_int = 9, allow_crypto_secure = false }\n"
	"[permission_policy.http_framework]\ntype = \"restrict\"\n"
	"config = { allowed_routes = [\"/\"], max_request_size = 100 }\n"
	"[permission_policy.message_server]\ntype = \"restrict\"\n"
	"[permission_policy.runtime]\ntype = \"restrict\"\nconfig = {}\n"
	"[permission_policy.supervisor]\ntype = \"inherit\"\n"
	"[permission_policy.store]\ntype = \"disallow\"\n"
	"\n"
	"[restart]\npolicy = \"on-failure\"\nmax_restarts = 3\nwindow_s = 10\n"
	"[limits]\nfuel = 1000000\nmemory_bytes = 1048576\ncall_timeout_ms = 250\n";

static enum err_code load(const char *text, size_t len, int allow, struct manifest **m,
			  struct manifest_problems *p, struct err *err)
{
	struct manifest_options opt = {.format = MANIFEST_FORMAT_TOML, .name = "m.toml",
				       .allow_unsupported = allow};
	err_clear(err);
	return manifest_load(text, len, &opt, m, p, err);
}

/* Loads text as TOML (unsupported handlers allowed) and expects exactly the
 * problems listed as "code path line" strings, in order. */
static void expect_problems(const char *text, const char *const *want)
{
	struct manifest *m = NULL;
	struct manifest_problems p = {0};
	struct err err;
	load(text, strlen(text), 1, &m, &p, &err);
	size_t n = 0;
	while (want[n])
		n++;
	for (size_t i = 0; i < p.n || i < n; i++) {
		char got[400] = "(none)";
		if (i < p.n)
			snprintf(got, sizeof(got), "%s %s %u", p.items[i].code, p.items[i].path,
				 p.items[i].line);
		if (i >= n || strcmp(got, want[i]) != 0)
			fail_msg("problem %zu: got '%s' (%s), want '%s'", i, got,
				 i < p.n ? p.items[i].message : "", i < n ? want[i] : "(none)");
	}
	assert_null(m);
	manifest_problems_release(&p);
}

static void test_all_fields(void **state)
{
	(void)state;
	struct manifest *m = NULL;
	struct manifest_problems p = {0};
	struct err err;
	enum err_code rc = load(FULL_TOML, strlen(FULL_TOML), 1, &m, &p, &err);
	if (rc)
		fail_msg("full manifest refused: %s", err.msg);
	assert_int_equal(p.n, 0);
	assert_string_equal(m->name, "kitchen-sink");
	assert_string_equal(m->version, "0.3.1");
	assert_string_equal(m->package, "./sink.wasm");
	assert_string_equal(m->description, "uses every field");
	assert_string_equal(m->long_description, "It has\nmany lines.");
	assert_true(m->static_package);
	assert_false(m->save_chain);
	assert_int_equal(json_integer_value(json_object_get(m->initial_state, "count")), 1);
	/* a date-time becomes its RFC 3339 text in the JSON form */
	assert_string_equal(json_string_value(json_object_get(m->initial_state, "when")),
			    "1979-05-27T07:32:00Z");
	assert_int_equal(m->nhandlers, 11);
	assert_string_equal(m->handlers[0].type, "runtime");
	assert_string_equal(m->handlers[4].type, "timing");
	assert_int_equal(json_integer_value(json_object_get(m->handlers[4].config,
							    "max_sleep_duration")), 3600000);
	assert_null(json_object_get(m->handlers[4].config, "type"));
	assert_string_equal(m->handlers[9].type, "process");
	assert_int_equal(json_integer_value(json_object_get(m->handlers[9].config,
							    "max_processes")), 2);
	json_t *fs = json_object_get(m->permission_policy, "file_system");
	assert_string_equal(json_string_value(json_object_get(fs, "type")), "restrict");
	assert_true(json_is_true(json_object_get(json_object_get(fs, "config"), "read")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
		m->permission_policy, "http_client"), "config"), "max_redirects")), 3);
	assert_int_equal(m->restart.policy, MANIFEST_RESTART_ON_FAILURE);
	assert_int_equal(m->restart.max_restarts, 3);
	assert_int_equal(m->limits.call_timeout_ms, 250);
	manifest_free(m);
	manifest_problems_release(&p);
}

/* The JSON and TOML forms are one model: the same manifest written both ways
 * gives equal ->json and equal fields. */
static void test_same_model_as_json(void **state)
{
	(void)state;
	const char *toml =
		"name = \"counter\"\nversion = \"0.1.0\"\ncomponent = \"counter.wasm\"\n"
		"initial_state = { count = 1, list = [1, 2.5, true] }\n"
		"[[handler]]\ntype = \"timing\"\nmax_sleep_duration = 5\n"
		"[permission_policy.timing]\ntype = \"restrict\"\n"
		"config = { max_sleep_duration = 5, min_sleep_duration = 1 }\n"
		"[restart]\npolicy = \"always\"\nbackoff_ms = 50\n";
	const char *json =
		"{\"name\":\"counter\",\"version\":\"0.1.0\",\"component\":\"counter.wasm\","
		"\"initial_state\":{\"count\":1,\"list\":[1,2.5,true]},"
		"\"handler\":[{\"type\":\"timing\",\"max_sleep_duration\":5}],"
		"\"permission_policy\":{\"timing\":{\"type\":\"restrict\",\"config\":"
		"{\"max_sleep_duration\":5,\"min_sleep_duration\":1}}},"
		"\"restart\":{\"policy\":\"always\",\"backoff_ms\":50}}";
	struct manifest *a = NULL, *b = NULL;
	struct err err;
	assert_int_equal(manifest_parse_toml(toml, strlen(toml), "m.toml", &a, &err), ERR_OK);
	assert_int_equal(manifest_parse_json(json, strlen(json), &b, &err), ERR_OK);
	assert_true(json_equal(a->json, b->json));
	assert_string_equal(a->package, b->package);
	assert_string_equal(a->package, "counter.wasm");
	assert_int_equal(a->restart.policy, b->restart.policy);
	assert_int_equal(a->restart.backoff_ms, 50);
	assert_int_equal(a->restart.backoff_max_ms, b->restart.backoff_max_ms);
	assert_true(json_equal(a->initial_state, b->initial_state));
	assert_true(json_equal(a->handlers[0].config, b->handlers[0].config));
	/* the JSON form read back as JSON is the same manifest again */
	char *text = json_dumps(a->json, JSON_COMPACT);
	struct manifest *c = NULL;
	assert_int_equal(manifest_parse_json(text, strlen(text), &c, &err), ERR_OK);
	assert_true(json_equal(c->json, a->json));
	free(text);
	manifest_free(a);
	manifest_free(b);
	manifest_free(c);
}

static void test_positions_in_errors(void **state)
{
	(void)state;
	const char *text =
		"name = \"x\"\n"
		"package = \"p.wasm\"\n"
		"\n"
		"[[handler]]\n"
		"type = \"runtime\"\n"
		"[[handler]]\n"
		"tpye = \"timing\"\n";
	struct manifest *m = (struct manifest *)1;
	struct err err;
	assert_int_equal(manifest_parse_toml(text, strlen(text), "m.toml", &m, &err),
			 ERR_MISSING_FIELD);
	assert_null(m);
	/* the first problem in document order: the entry without a type (its header),
	 * then the unknown key */
	if (strcmp(err.msg, "m.toml:6:1: missing field 'handler[1].type' in manifest (and 1 "
		   "more problem; POST /manifests/validate lists them all)") != 0)
		fail_msg("message: %s", err.msg);
	struct manifest_problems p = {0};
	load(text, strlen(text), 0, NULL, &p, &err);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.items[0].path, "handler[1].type");
	assert_string_equal(p.items[0].code, "missing_field");
	assert_int_equal(p.items[0].line, 6);
	assert_int_equal(p.items[0].col, 1);
	assert_string_equal(p.items[1].path, "handler[1].tpye");
	assert_string_equal(p.items[1].code, "unknown_key");
	assert_int_equal(p.items[1].line, 7);
	assert_int_equal(p.items[1].col, 8);
	assert_string_equal(p.items[1].message, "unknown key 'tpye' in manifest handler[1] "
			    "(did you mean 'type'?)");
	manifest_problems_release(&p);
	/* a wrong type names the field, the type wanted and the type found */
	const char *t2 = "name = \"x\"\npackage = \"p\"\nstatic_package = \"yes\"\n";
	assert_int_equal(manifest_parse_toml(t2, strlen(t2), "a.toml", &m, &err),
			 ERR_BAD_MANIFEST);
	assert_string_equal(err.msg, "a.toml:3:18: manifest field 'static_package' must be a "
			    "boolean, found a string");
}

static void test_every_problem_listed(void **state)
{
	(void)state;
	const char *text =
		"naem = \"typo\"\n"                                         /* 1 */
		"version = 1\n"                                             /* 2 */
		"save_chain = 2021-01-01\n"                                 /* 3 */
		"[[handler]]\n"                                             /* 4 */
		"type = \"timing\"\n"                                       /* 5 */
		"max_sleep_duration = -5\n"                                 /* 6 */
		"min_sleep = 1\n"                                           /* 7 */
		"[[handler]]\n"                                             /* 8 */
		"type = \"teleport\"\n"                                     /* 9 */
		"[[handler]]\n"                                             /* 10 */
		"type = \"filesystem\"\n"                                   /* 11 */
		"new_dir = \"yes\"\n"                                       /* 12 */
		"[permission_policy.file_sytem]\n"                          /* 13 */
		"type = \"restrict\"\n"                                     /* 14 */
		"[permission_policy.timing]\n"                              /* 15 */
		"type = \"allow\"\n"                                        /* 16 */
		"[permission_policy.random]\n"                              /* 17 */
		"type = \"restrict\"\n"                                     /* 18 */
		"[permission_policy.process]\n"                             /* 19 */
		"type = \"inherit\"\n"                                      /* 20 */
		"config = { max_processes = 1 }\n"                          /* 21 */
		"[permission_policy.file_system]\n"                         /* 22 */
		"type = \"restrict\"\n"                                     /* 23 */
		"config = { read = true, write = 1, exec = true }\n"        /* 24 */
		"[restart]\n"                                               /* 25 */
		"policy = \"sometimes\"\n"                                  /* 26 */
		"[limits]\n"                                                /* 27 */
		"fuel = 0\n";                                               /* 28 */
	const char *const want[] = {
		"missing_field name 1",
		"missing_field package 1",
		"unknown_key naem 1",
		"wrong_type version 2",
		"wrong_type save_chain 3",
		"invalid_value handler[0].max_sleep_duration 6",
		"unknown_key handler[0].min_sleep 7",
		"unknown_handler handler[1].type 9",
		"wrong_type handler[2].new_dir 12",
		"unknown_key permission_policy.file_sytem 13",
		"invalid_value permission_policy.timing.type 16",
		"missing_field permission_policy.random.config 17",
		"invalid_value permission_policy.process.config 21",
		"missing_field permission_policy.file_system.config.execute 24",
		"wrong_type permission_policy.file_system.config.write 24",
		"unknown_key permission_policy.file_system.config.exec 24",
		"invalid_value restart.policy 26",
		"invalid_value limits.fuel 28",
		NULL,
	};
	/* handler[2] (filesystem) is fine when unsupported handlers are allowed */
	expect_problems(text, want);
	size_t k = sizeof(want) / sizeof(want[0]) - 1;
	/* strictly, the unsupported handler is one more problem, and the single
	 * error counts the others */
	struct manifest_problems p = {0};
	struct err err;
	assert_int_equal(load(text, strlen(text), 0, NULL, &p, &err), ERR_MISSING_FIELD);
	assert_int_equal(p.n, k + 1);
	int found = 0;
	for (size_t i = 0; i < p.n; i++)
		if (!strcmp(p.items[i].code, "unsupported_handler")) {
			found = 1;
			assert_string_equal(p.items[i].path, "handler[2].type");
			assert_int_equal(p.items[i].line, 11);
			assert_non_null(strstr(p.items[i].message, "'filesystem'"));
		}
	assert_true(found);
	char *head = tu_fmt("m.toml:1:1: missing field 'name' in manifest (and %zu more problems;",
			    p.n - 1);
	assert_non_null(strstr(err.msg, head));
	free(head);
	/* the suggestions */
	for (size_t i = 0; i < p.n; i++) {
		if (!strcmp(p.items[i].path, "naem"))
			assert_non_null(strstr(p.items[i].message, "did you mean 'name'?"));
		if (!strcmp(p.items[i].path, "permission_policy.file_sytem"))
			assert_non_null(strstr(p.items[i].message, "did you mean 'file_system'?"));
		if (!strcmp(p.items[i].path, "handler[1].type"))
			assert_non_null(strstr(p.items[i].message, "known types: message-server"));
		if (!strcmp(p.items[i].path, "version"))
			assert_non_null(strstr(p.items[i].message, "must be a string, found an "
					       "integer"));
		if (!strcmp(p.items[i].path, "save_chain"))
			assert_non_null(strstr(p.items[i].message, "found a local date"));
	}
	/* as JSON: the same problems, without positions */
	json_t *arr = manifest_problems_json(&p);
	assert_int_equal(json_array_size(arr), p.n);
	json_t *first = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(first, "code")), "missing_field");
	assert_string_equal(json_string_value(json_object_get(first, "path")), "name");
	assert_int_equal(json_integer_value(json_object_get(first, "line")), 1);
	assert_non_null(json_object_get(first, "col"));
	assert_non_null(json_string_value(json_object_get(first, "message")));
	json_decref(arr);
	manifest_problems_release(&p);
}

static void test_unsupported_handlers(void **state)
{
	(void)state;
	const char *text = "name = \"x\"\npackage = \"p\"\n"
			   "[[handler]]\ntype = \"runtime\"\n"
			   "[[handler]]\ntype = \"process\"\n"
			   "[[handler]]\ntype = \"filesystem\"\n"
			   "[[handler]]\ntype = \"process\"\n";
	struct manifest *m = (struct manifest *)1;
	struct err err;
	assert_int_equal(manifest_parse_toml(text, strlen(text), "m.toml", &m, &err),
			 ERR_BAD_MANIFEST);
	assert_null(m);
	if (!strstr(err.msg, "m.toml:6:8: manifest uses handler types that this server does "
		    "not implement yet: 'process', 'filesystem' (and 2 more problems;"))
		fail_msg("message: %s", err.msg);
	assert_int_equal(load(text, strlen(text), 1, &m, NULL, &err), ERR_OK);
	assert_int_equal(m->nhandlers, 4);
	manifest_free(m);
	assert_true(manifest_handler_known("http-framework"));
	assert_false(manifest_handler_supported("http-framework"));
	assert_true(manifest_handler_supported("message-server"));
	assert_false(manifest_handler_known("teleport"));
	assert_false(manifest_handler_known(NULL));
	/* unknown types are refused even when unsupported ones are allowed */
	const char *t2 = "name = \"x\"\npackage = \"p\"\n[[handler]]\ntype = \"message_server\"\n";
	assert_int_equal(load(t2, strlen(t2), 1, &m, NULL, &err), ERR_BAD_MANIFEST);
	assert_non_null(strstr(err.msg, "unknown handler type 'message_server'"));
	assert_non_null(strstr(err.msg, "did you mean 'message-server'?"));
}

static void test_wrong_types(void **state)
{
	(void)state;
	static const struct { const char *text, *msg; } cases[] = {
		{"name = 1979-05-27\npackage = \"p\"\n", "'name' must be a string, found a local date"},
		{"name = \"a\"\npackage = 07:32:00\n", "'package' must be a string, found a local time"},
		{"name = \"a\"\npackage = \"p\"\nversion = inf\n", "found a float"},
		{"name = \"a\"\npackage = \"p\"\ndescription = 1979-05-27T07:32:00\n",
		 "found a local date-time"},
		{"name = \"a\"\npackage = \"p\"\nhandler = { type = \"runtime\" }\n",
		 "'handler' must be an array of tables ([[handler]]), found a table"},
		{"name = \"a\"\npackage = \"p\"\nhandler = [1]\n", "'handler[0]' must be a table"},
		{"name = \"a\"\npackage = \"p\"\n[[handler]]\ntype = 3\n",
		 "'handler[0].type' must be a non-empty string"},
		{"name = \"a\"\npackage = \"p\"\npermission_policy = [1]\n",
		 "'permission_policy' must be a table, found an array"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy]\ntiming = \"restrict\"\n",
		 "'permission_policy.timing' must be a table, found a string"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy.timing]\ntype = true\n",
		 "'permission_policy.timing.type' must be one of \"inherit\", \"disallow\", "
		 "\"restrict\", found a boolean"},
		{"name = \"a\"\npackage = \"p\"\n[[handler]]\ntype = \"environment\"\n"
		 "allowed_vars = \"HOME\"\n", "'handler[0].allowed_vars' must be an array of strings"},
		{"name = \"a\"\npackage = \"p\"\n[[handler]]\ntype = \"environment\"\n"
		 "allowed_vars = [\"HOME\", 1]\n", "'handler[0].allowed_vars[1]' must be a string"},
		{"name = \"a\"\npackage = \"p\"\n[[handler]]\ntype = \"random\"\nseed = 1.5\n",
		 "'handler[0].seed' must be a non-negative integer, found a float"},
		{"name = \"a\"\npackage = \"p\"\nstatic_package = 1\n", "must be a boolean"},
		{"name = \"a\"\npackage = \"p\"\nrestart = 1\n", "'restart' must be a table"},
		{"name = \"a\"\npackage = \"p\"\n[restart]\nbackoff_ms = 500\nbackoff_max_ms = 10\n",
		 "'restart.backoff_max_ms' must be at least backoff_ms (500)"},
		{"name = \"\"\npackage = \"p\"\n", "'name' must have 1 to 128 characters"},
		{"name = \"a\\u0007\"\npackage = \"p\"\n", "control character"},
		{"name = \"a\"\npackage = \"\"\n", "'package' must not be empty"},
		{"name = \"a\"\npackage = \"a\\u0000b\"\n", "'package' contains a nul character"},
		{"name = \"a\"\npackage = \"p\"\ncomponent = \"q\"\n", "both 'package' and its legacy"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct manifest *m = (struct manifest *)1;
		struct err err;
		enum err_code rc = load(cases[i].text, strlen(cases[i].text), 1, &m, NULL, &err);
		if (rc != ERR_BAD_MANIFEST || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: got %s '%s', want invalid_manifest with '%s'", i,
				 err_code_name(rc), err.msg, cases[i].msg);
		assert_null(m);
	}
}

static void test_unknown_keys(void **state)
{
	(void)state;
	struct err err;
	struct manifest *m;
	static const struct { const char *text, *msg; } cases[] = {
		{"name = \"a\"\npackage = \"p\"\ninit_state = \"s.json\"\n",
		 "unknown key 'init_state' in manifest (did you mean 'initial_state'?)"},
		{"name = \"a\"\npackage = \"p\"\n[[handlers]]\ntype = \"runtime\"\n",
		 "unknown key 'handlers' in manifest (did you mean 'handler'?)"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy.filesystem]\ntype = \"disallow\"\n",
		 "unknown key 'filesystem' in manifest permission_policy (did you mean 'file_system'?)"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy.http-client]\ntype = \"disallow\"\n",
		 "did you mean 'http_client'?"},
		{"name = \"a\"\npackage = \"p\"\n[[handler]]\ntype = \"runtime\"\nconfig = {}\n",
		 "unknown key 'config' in manifest handler[0] (known keys: type)"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy.timing]\ntype = \"disallow\"\nx = 1\n",
		 "unknown key 'x' in manifest permission_policy.timing (known keys: type, config)"},
		{"name = \"a\"\npackage = \"p\"\n[permission_policy.store]\ntype = \"restrict\"\n"
		 "config = { any = 1 }\n",
		 "unknown key 'any' in manifest permission_policy.store.config (this table takes no keys)"},
		{"name = \"a\"\npackage = \"p\"\n[limits]\ngas = 1\n", "unknown key 'gas'"},
		{"name = \"a\"\npackage = \"p\"\n\"we\\u0000ird\" = 1\n", "unknown key 'we?ird'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum err_code rc = load(cases[i].text, strlen(cases[i].text), 1, &m, NULL, &err);
		if (rc != ERR_UNKNOWN_KEY || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: got %s '%s', want unknown_key with '%s'", i,
				 err_code_name(rc), err.msg, cases[i].msg);
	}
	/* a key that is not a bare key is quoted in the path */
	struct manifest_problems p = {0};
	const char *t = "name = \"a\"\npackage = \"p\"\n\"a.b c\" = 1\n";
	load(t, strlen(t), 1, NULL, &p, &err);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.items[0].path, "[\"a.b c\"]");
	manifest_problems_release(&p);
	/* a very long key is shortened, at a character boundary */
	char big[600];
	strcpy(big, "name = \"a\"\npackage = \"p\"\n\"");
	for (int i = 0; i < 100; i++)
		strcat(big, "\xc3\xa9");
	strcat(big, "\" = 1\n");
	load(big, strlen(big), 1, NULL, &p, &err);
	assert_int_equal(p.n, 1);
	assert_non_null(strstr(p.items[0].message, "\xc3\xa9..."));
	json_t *arr = manifest_problems_json(&p);   /* valid UTF-8 or this is NULL */
	assert_non_null(arr);
	json_decref(arr);
	manifest_problems_release(&p);
}

static void test_policy(void **state)
{
	(void)state;
	const char *const want_bad_type[] = {
		"invalid_value permission_policy.timing.type 4", NULL,
	};
	expect_problems("name = \"a\"\npackage = \"p\"\n[permission_policy.timing]\n"
			"type = \"allow\"\n", want_bad_type);
	const char *const want_no_type[] = {
		"missing_field permission_policy.random.type 3", NULL,
	};
	expect_problems("name = \"a\"\npackage = \"p\"\n[permission_policy.random]\n"
			"config = { max_bytes = 1, max_int = 1, allow_crypto_secure = true }\n",
			want_no_type);
	/* restrict of a capability without settings needs no config */
	struct manifest *m = NULL;
	struct err err;
	const char *ok = "name = \"a\"\npackage = \"p\"\n"
			 "permission_policy.supervisor.type = \"restrict\"\n"
			 "permission_policy.timing = { type = \"disallow\" }\n";
	assert_int_equal(load(ok, strlen(ok), 0, &m, NULL, &err), ERR_OK);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		m->permission_policy, "timing"), "type")), "disallow");
	manifest_free(m);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	struct manifest *m = (struct manifest *)1;
	struct manifest_problems p = {0};
	struct err err;
	const char *text = "name = \"a\"\npackage = p.wasm\n";
	assert_int_equal(load(text, strlen(text), 0, &m, &p, &err), ERR_INVALID);
	assert_null(m);
	assert_true(strncmp(err.msg, "m.toml:2:11: ", 13) == 0);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.items[0].code, "invalid_toml");
	assert_int_equal(p.items[0].line, 2);
	assert_int_equal(p.items[0].col, 11);
	assert_true(strncmp(p.items[0].message, "m.toml:", 7) != 0);   /* position taken off */
	manifest_problems_release(&p);
	/* a JSON manifest given as TOML is a TOML error, not a crash */
	assert_int_equal(load("{\"name\":\"a\"}", 12, 0, &m, NULL, &err), ERR_INVALID);
}

static void test_limits(void **state)
{
	(void)state;
	struct manifest *m = (struct manifest *)1;
	struct manifest_problems p = {0};
	struct err err;
	/* 10,000 nested inline tables */
	size_t n = 10000, len = 0;
	char *deep = malloc(100 + 6 * n);
	len += (size_t)sprintf(deep, "name = \"a\"\npackage = \"p\"\ninitial_state = ");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(deep + len, "{a = ");
	len += (size_t)sprintf(deep + len, "1");
	for (size_t i = 0; i < n; i++)
		deep[len++] = '}';
	deep[len++] = '\n';
	assert_int_equal(load(deep, len, 0, &m, &p, &err), ERR_TOO_DEEP);
	assert_null(m);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.items[0].code, "too_deep");
	assert_int_equal(p.items[0].line, 3);
	assert_true(p.items[0].col > 0);
	manifest_problems_release(&p);
	/* the same depth in nested arrays */
	len = (size_t)sprintf(deep, "name = \"a\"\npackage = \"p\"\ninitial_state = ");
	memset(deep + len, '[', n);
	deep[len + n] = '1';
	memset(deep + len + n + 1, ']', n);
	len += 2 * n + 1;
	assert_int_equal(load(deep, len, 0, &m, NULL, &err), ERR_TOO_DEEP);
	assert_non_null(strstr(err.msg, "m.toml:3:"));
	free(deep);
	/* 10 MB: refused before parsing, in both formats */
	size_t big = 10u << 20;
	char *huge = malloc(big);
	memset(huge, '#', big);
	assert_int_equal(load(huge, big, 0, &m, &p, &err), ERR_TOO_LARGE);
	assert_string_equal(p.items[0].code, "too_large");
	manifest_problems_release(&p);
	assert_int_equal(manifest_parse_json(huge, big, &m, &err), ERR_TOO_LARGE);
	assert_null(m);
	free(huge);
	/* too many problems: the first MANIFEST_MAX_PROBLEMS are kept, the rest counted */
	char *many = malloc(40 + 500 * 16);
	len = (size_t)sprintf(many, "name = \"a\"\npackage = \"p\"\n");
	for (int i = 0; i < 500; i++)
		len += (size_t)sprintf(many + len, "k%d = %d\n", i, i);
	assert_int_equal(load(many, len, 0, NULL, &p, &err), ERR_UNKNOWN_KEY);
	assert_int_equal(p.n, MANIFEST_MAX_PROBLEMS);
	assert_int_equal(p.more, 500 - MANIFEST_MAX_PROBLEMS);
	assert_int_equal(p.items[0].line, 3);                 /* document order */
	assert_int_equal(p.items[99].line, 102);
	assert_non_null(strstr(err.msg, "(and 499 more problems;"));
	manifest_problems_release(&p);
	free(many);
	/* too many handlers */
	char *hs = malloc(40 + 70 * 32);
	len = (size_t)sprintf(hs, "name = \"a\"\npackage = \"p\"\n");
	for (int i = 0; i < 70; i++)
		len += (size_t)sprintf(hs + len, "[[handler]]\ntype = \"runtime\"\n");
	assert_int_equal(load(hs, len, 0, NULL, NULL, &err), ERR_BAD_MANIFEST);
	assert_non_null(strstr(err.msg, "70 handlers, more than 64"));
	free(hs);
}

/* JSON manifests collect every problem too (without positions). */
static void test_json_problems(void **state)
{
	(void)state;
	const char *text = "{\"name\":1,\"pakage\":\"p\",\"handler\":[{\"type\":\"timing\","
			   "\"max_sleep_duration\":\"long\"}],\"permission_policy\":{\"timing\":"
			   "{\"type\":\"restrict\"}}}";
	struct manifest_options opt = {.format = MANIFEST_FORMAT_AUTO};
	struct manifest_problems p = {0};
	struct err err;
	assert_int_equal(manifest_load(text, strlen(text), &opt, NULL, &p, &err),
			 ERR_UNKNOWN_KEY);
	const char *want[] = {"pakage", "package", "name", "handler[0].max_sleep_duration",
			      "permission_policy.timing.config"};
	assert_int_equal(p.n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(p.items[i].path, want[i]);
		assert_int_equal(p.items[i].line, 0);
	}
	json_t *arr = manifest_problems_json(&p);
	assert_null(json_object_get(json_array_get(arr, 0), "line"));
	json_decref(arr);
	manifest_problems_release(&p);
	/* malformed JSON is one problem */
	assert_int_equal(manifest_load("{\"name\":", 8, &opt, NULL, &p, &err), ERR_BAD_JSON);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.items[0].code, "malformed_json");
	manifest_problems_release(&p);
	/* check_json of an already parsed value */
	json_t *v = json_pack("{s:s, s:s, s:[{s:s}]}", "name", "a", "package", "p", "handler",
			      "type", "filesystem");
	struct manifest *m = NULL;
	assert_int_equal(manifest_check_json(v, NULL, &m, &p, &err), ERR_BAD_MANIFEST);
	assert_string_equal(p.items[0].code, "unsupported_handler");
	manifest_problems_release(&p);
	struct manifest_options allow = {.allow_unsupported = 1};
	assert_int_equal(manifest_check_json(v, &allow, &m, NULL, &err), ERR_OK);
	assert_string_equal(m->handlers[0].type, "filesystem");
	manifest_free(m);
	json_decref(v);
}

static void test_format_detect(void **state)
{
	(void)state;
	assert_int_equal(manifest_format_detect("a/b.toml", "{", 1), MANIFEST_FORMAT_TOML);
	assert_int_equal(manifest_format_detect("a/b.TOML", NULL, 0), MANIFEST_FORMAT_TOML);
	assert_int_equal(manifest_format_detect("a/b.json", "name = 1", 8), MANIFEST_FORMAT_JSON);
	assert_int_equal(manifest_format_detect("http://h/m.toml?x=1#f", "{", 1),
			 MANIFEST_FORMAT_TOML);
	assert_int_equal(manifest_format_detect("store://s/manifest", " \n{\"a\":1}", 9),
			 MANIFEST_FORMAT_JSON);
	assert_int_equal(manifest_format_detect("store://s/manifest", "\xef\xbb\xbf{", 4),
			 MANIFEST_FORMAT_JSON);
	assert_int_equal(manifest_format_detect("store://s/manifest", "name = 'a'", 10),
			 MANIFEST_FORMAT_TOML);
	assert_int_equal(manifest_format_detect(NULL, "", 0), MANIFEST_FORMAT_TOML);
	/* AUTO on manifest_load */
	struct manifest *m = NULL;
	struct err err;
	struct manifest_options opt = {.name = "x"};
	const char *t = "name = 'a'\npackage = 'p'\n";
	assert_int_equal(manifest_load(t, strlen(t), &opt, &m, NULL, &err), ERR_OK);
	assert_string_equal(m->name, "a");
	manifest_free(m);
}

/* Every case of the toml-test suite through the manifest loader: invalid TOML
 * is refused with a position, valid TOML is checked against the schema; nothing
 * crashes or leaks (the ASan build runs this). */
static void test_toml_suite(void **state)
{
	(void)state;
	const char *env = getenv("THEATER_TOML_TEST");
	char *dir = env && *env ? strdup(env) : tu_fmt("%s/../shared/toml-test", tu_source_dir());
	char *list_path = tu_fmt("%s/files-toml-1.0.0", dir);
	char *list = tu_read_file(list_path, NULL);
	if (!list) {
		free(list_path);
		free(dir);
		skip();   /* the suite lives outside the repository */
	}
	int invalid = 0, valid = 0;
	for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
		size_t n = strlen(line);
		if (n < 6 || strcmp(line + n - 5, ".toml") != 0)
			continue;
		char *path = tu_fmt("%s/%s", dir, line);
		size_t len;
		char *text = tu_read_file(path, &len);
		assert_non_null(text);
		struct manifest *m = NULL;
		struct manifest_problems p = {0};
		struct err err;
		enum err_code rc = load(text, len, 0, &m, &p, &err);
		/* messages and problems are valid UTF-8 even for bad input */
		json_t *arr = manifest_problems_json(&p), *msg = json_string(err.msg);
		if (!arr || !msg)
			fail_msg("%s: not valid UTF-8: %s", line, err.msg);
		json_decref(arr);
		json_decref(msg);
		if (strncmp(line, "invalid/", 8) == 0) {
			invalid++;
			if (rc == ERR_OK || p.n != 1)
				fail_msg("%s: accepted or %zu problems", line, p.n);
			if (rc == ERR_INVALID && (p.items[0].line == 0 ||
						  strncmp(err.msg, "m.toml:", 7) != 0))
				fail_msg("%s: no position: %s", line, err.msg);
		} else {
			valid++;
			assert_true(rc != ERR_INVALID && rc != ERR_TOO_DEEP);
			if (rc == ERR_OK)
				assert_non_null(m);
			else
				assert_true(p.n > 0);
		}
		manifest_free(m);
		manifest_problems_release(&p);
		free(text);
		free(path);
	}
	assert_true(invalid > 300);
	assert_true(valid > 100);
	free(list);
	free(list_path);
	free(dir);
}

/* Each example that ships a manifest.toml beside its manifest.json: both load,
 * strictly, to the same model. */
static void test_examples(void **state)
{
	(void)state;
	char *root = tu_fmt("%s/examples", tu_source_dir());
	DIR *d = opendir(root);
	assert_non_null(d);
	int pairs = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char *tp = tu_fmt("%s/%s/manifest.toml", root, e->d_name);
		char *jp = tu_fmt("%s/%s/manifest.json", root, e->d_name);
		size_t tl, jl;
		char *t = tu_read_file(tp, &tl), *j = tu_read_file(jp, &jl);
		if (t && j) {
			struct manifest *a = NULL, *b = NULL;
			struct err err;
			if (manifest_parse_toml(t, tl, tp, &a, &err))
				fail_msg("%s", err.msg);
			if (manifest_parse_json(j, jl, &b, &err))
				fail_msg("%s: %s", jp, err.msg);
			/* the TOML form writes initial_state as JSON text, as the
			 * reference parses it; the JSON form as the value itself */
			json_t *ja = json_deep_copy(a->json), *jb = json_deep_copy(b->json);
			json_object_del(ja, "initial_state");
			json_object_del(jb, "initial_state");
			if (!json_equal(ja, jb))
				fail_msg("%s and %s differ", tp, jp);
			json_t *sa = json_object_get(a->json, "initial_state");
			if (sa && !json_is_string(sa))
				fail_msg("%s: initial_state is not JSON text", tp);
			if (!json_equal(a->initial_state, b->initial_state) &&
			    (a->initial_state || b->initial_state))
				fail_msg("%s and %s have different initial states", tp, jp);
			json_decref(ja);
			json_decref(jb);
			manifest_free(a);
			manifest_free(b);
			pairs++;
		}
		free(t);
		free(j);
		free(tp);
		free(jp);
	}
	closedir(d);
	free(root);
	assert_true(pairs >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_fields),
		cmocka_unit_test(test_same_model_as_json),
		cmocka_unit_test(test_positions_in_errors),
		cmocka_unit_test(test_every_problem_listed),
		cmocka_unit_test(test_unsupported_handlers),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_json_problems),
		cmocka_unit_test(test_format_detect),
		cmocka_unit_test(test_toml_suite),
		cmocka_unit_test(test_examples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
