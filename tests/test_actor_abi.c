/* test_actor_abi.c - src/actor_abi: the ABI's import table is the one the
 * supervisor serves (same imports, same types, same grants), so the offline
 * harness and the server cannot drift apart; and the result-record reader's
 * checks. */
#include "tests/support/testutil.h"

#include <string.h>

#include "src/actor_abi.h"
#include "supervisor/host.h"

static void test_imports_match_the_supervisor(void **state)
{
	(void)state;
	size_t n = 0;
	for (const struct actor_abi_import *i = actor_abi_imports; i->module; i++, n++) {
		const struct host_fn *h = host_find(i->module, strlen(i->module), i->name,
						    strlen(i->name));
		if (!h)
			fail_msg("the supervisor has no '%s' '%s'", i->module, i->name);
		assert_int_equal(h->nparams, i->nparams);
		assert_int_equal(h->nresults, i->nresults);
		for (unsigned k = 0; k < i->nparams; k++)
			assert_int_equal(h->params[k], i->params[k]);
		if (i->nresults)
			assert_int_equal(h->results[0], i->results[0]);
		assert_int_equal(h->grant, host_grant_of(i->handler));
		assert_ptr_equal(actor_abi_import_find(i->module, strlen(i->module), i->name,
						       strlen(i->name)), i);
	}
	/* and the other way: every host function is in the table */
	static const char *const mods[] = {
		"theater:simple/runtime", "theater:simple/message-server-host",
		"theater:simple/timing", "theater:simple/random", "theater:simple/store",
		"theater:simple/supervisor", "theater:simple/http-client",
	};
	size_t served = 0;
	for (const struct actor_abi_import *i = actor_abi_imports; i->module; i++)
		for (size_t m = 0; m < sizeof mods / sizeof mods[0]; m++)
			served += strcmp(i->module, mods[m]) == 0;
	assert_int_equal(served, n);
	assert_int_equal(n, 28);
	assert_null(actor_abi_import_find("theater:simple/runtime", 22, "nope", 4));
	assert_int_equal(ACTOR_ABI_EBUSY, HOST_EBUSY);
	assert_int_equal(ACTOR_ABI_EINVAL, HOST_EINVAL);
	assert_string_equal(actor_abi_errno_name(-2), "not found");
}

static void test_result_record(void **state)
{
	(void)state;
	struct wasm_store *s;
	struct wasm_memory *mem;
	struct err err;
	assert_int_equal(wasm_store_new(&(struct wasm_store_limits){0}, &s, &err), ERR_OK);
	assert_int_equal(wasm_memory_new(s, (struct wasm_limits_type){1, 1, 1}, &mem, &err),
			 ERR_OK);
	uint32_t rec[5] = {0, 100, 5, 200, 3};
	assert_int_equal(wasm_memory_write(mem, 16, rec, sizeof rec, &err), ERR_OK);
	struct actor_abi_result r;
	assert_int_equal(actor_abi_result_read(mem, 16, &r, &err), ERR_OK);
	assert_int_equal(r.state_ptr, 100);
	assert_int_equal(r.out_len, 3);
	rec[0] = 2;
	wasm_memory_write(mem, 16, rec, sizeof rec, &err);
	assert_int_equal(actor_abi_result_read(mem, 16, &r, &err), ERR_INVALID);
	assert_non_null(strstr(err.msg, "invalid_result: status 2"));
	rec[0] = 0;
	rec[2] = 70000;      /* the state runs past the 64 KiB memory */
	wasm_memory_write(mem, 16, rec, sizeof rec, &err);
	assert_int_equal(actor_abi_result_read(mem, 16, &r, &err), ERR_INVALID);
	rec[0] = 1;          /* an error: the state pair is not read */
	assert_int_equal(wasm_memory_write(mem, 16, rec, sizeof rec, &err), ERR_OK);
	assert_int_equal(actor_abi_result_read(mem, 16, &r, &err), ERR_OK);
	assert_int_equal(actor_abi_result_read(mem, 65530, &r, &err), ERR_INVALID);
	wasm_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imports_match_the_supervisor),
		cmocka_unit_test(test_result_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
