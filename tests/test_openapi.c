/* test_openapi.c - the route table and openapi/openapi.yaml agree: every route
 * is described, every described operation is routed, and every problem code the
 * server can produce is listed in the Problem schema. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define MAX_OPS 128

struct op {
	char method[8];
	char path[128];
};

/* Reads "  /path:" and "    get:" lines under "paths:". */
static size_t spec_ops(const char *yaml, struct op *ops)
{
	size_t n = 0;
	int in_paths = 0;
	char path[128] = "";
	const char *methods[] = {"get", "post", "put", "delete", "patch", NULL};
	for (const char *line = yaml; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (!strncmp(line, "paths:", 6)) {
			in_paths = 1;
			continue;
		}
		if (in_paths && line[0] != ' ' && line[0] != '\n')
			break;
		if (!in_paths)
			continue;
		if (!strncmp(line, "  /", 3)) {
			const char *colon = strchr(line, ':');
			size_t len = (size_t)(colon - line - 2);
			memcpy(path, line + 2, len);
			path[len] = 0;
		}
		for (int m = 0; methods[m]; m++) {
			size_t ml = strlen(methods[m]);
			if (!strncmp(line, "    ", 4) && line[4] != ' ' &&
			    !strncmp(line + 4, methods[m], ml) && line[4 + ml] == ':') {
				assert_true(n < MAX_OPS);
				for (size_t i = 0; i < ml; i++)
					ops[n].method[i] = (char)(methods[m][i] - 32);
				ops[n].method[ml] = 0;
				snprintf(ops[n].path, sizeof(ops[n].path), "%s", path);
				n++;
			}
		}
	}
	return n;
}

static void test_routes_match_spec(void **state)
{
	(void)state;
	char *file = tu_fmt("%s/openapi/openapi.yaml", tu_source_dir());
	char *yaml = tu_read_file(file, NULL);
	assert_non_null(yaml);
	struct op ops[MAX_OPS];
	size_t nops = spec_ops(yaml, ops);
	const struct api_route_info *routes;
	size_t nroutes = api_routes(&routes);
	assert_true(nroutes > 10);
	for (size_t i = 0; i < nroutes; i++) {
		int found = 0;
		for (size_t k = 0; k < nops; k++)
			found |= !strcmp(ops[k].method, routes[i].method) &&
				 !strcmp(ops[k].path, routes[i].pattern);
		if (!found)
			fail_msg("route %s %s is not in openapi.yaml", routes[i].method,
				 routes[i].pattern);
	}
	for (size_t k = 0; k < nops; k++) {
		int found = 0;
		for (size_t i = 0; i < nroutes; i++)
			found |= !strcmp(ops[k].method, routes[i].method) &&
				 !strcmp(ops[k].path, routes[i].pattern);
		if (!found)
			fail_msg("openapi.yaml describes %s %s, which is not routed", ops[k].method,
				 ops[k].path);
	}
	assert_int_equal(nops, nroutes);
	free(yaml);
	free(file);
}

static void test_problem_codes_listed(void **state)
{
	(void)state;
	char *file = tu_fmt("%s/openapi/openapi.yaml", tu_source_dir());
	char *yaml = tu_read_file(file, NULL);
	assert_non_null(yaml);
	for (int code = 1; code < ERR__COUNT; code++) {
		if (code == ERR_NOT_MODIFIED)
			continue;       /* answered as a bare 304 */
		if (code == ERR_WASM_SUSPEND)
			continue;       /* never leaves the engine's embedder */
		const char *name = err_code_name((enum err_code)code);
		char *needle = tu_fmt(" %s,", name), *last = tu_fmt(" %s]", name);
		if (!strstr(yaml, needle) && !strstr(yaml, last))
			fail_msg("problem code '%s' is not listed in openapi.yaml", name);
		free(needle);
		free(last);
	}
	free(yaml);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_match_spec),
		cmocka_unit_test(test_problem_codes_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
