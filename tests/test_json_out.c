/* test_json_out.c - api_run_text writes exactly the bytes of
 * json_compact(api_run_json()) (the GET /actors/{id} fast path), for plain,
 * empty, escaped and non-ASCII runs; it refuses text that is not UTF-8. */
#include "tests/support/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static void same(const struct db_run *r)
{
	json_t *o = api_run_json(r);
	char *want = json_compact(o);
	json_decref(o);
	size_t len = 0;
	char *got = api_run_text(r, &len);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(want);
	free(got);
}

static void test_plain(void **state)
{
	(void)state;
	struct db_run r = {0};
	strcpy(r.id, "0b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	r.name = "counter";
	r.status = "running";
	r.package_ref = "/var/tmp/x/packages/counter.wasm";
	strcpy(r.package_sha256, "3b92d109e8ed304326ccb75ceba009369212c782f5c9168bbcb629efdffeb6ea");
	r.created_at = 1796431765602;
	r.started_at = 1796431765640;
	r.head_seq = 12345678901234ULL;
	strcpy(r.head_hash, "22dd2957d42ec9794c8fa18dc5958e804e16f4cf3aa48b39b8509418b1776ef8");
	same(&r);
	r.damaged = 1;
	r.stopped_at = 1000;       /* 1970-01-01T00:00:01.000Z */
	r.reason = "failed: trap";
	strcpy(r.parent_id, "1b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	same(&r);
}

/* With the head event's type and time (GET /actors/{id}): as the handler's tree. */
static void test_last_event(void **state)
{
	(void)state;
	struct db_run r = {0};
	strcpy(r.id, "0b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	r.name = "counter";
	r.status = "running";
	r.created_at = 1796431765602;
	r.head_seq = 42;
	strcpy(r.head_hash, "22dd2957d42ec9794c8fa18dc5958e804e16f4cf3aa48b39b8509418b1776ef8");
	json_t *o = api_run_json(&r);
	json_object_set_new(o, "last_event", json_pack("{s:s, s:I, s:o}", "type",
				"message-server/\"received\"", "seq", (json_int_t)42, "time",
				api_time_json(1796431765999)));
	char *want = json_compact(o);
	json_decref(o);
	size_t len;
	char *got = api_run_text_last(&r, "message-server/\"received\"", 1796431765999, &len);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
	free(want);
}

static void test_empty(void **state)
{
	(void)state;
	struct db_run r = {0};
	strcpy(r.id, "0b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	same(&r);
	r.name = "";
	r.status = "starting";
	same(&r);
}

static void test_escapes(void **state)
{
	(void)state;
	struct db_run r = {0};
	strcpy(r.id, "0b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	r.name = "q\"b\\s/t\tn\nr\rb\bf\f\x01\x1f end";
	r.reason = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xad";
	r.manifest_ref = "https://example.com/a b/m.toml?x=1&y=<2>";
	r.created_at = 253402300799999;     /* 9999-12-31T23:59:59.999Z */
	same(&r);
}

static void test_not_utf8(void **state)
{
	(void)state;
	struct db_run r = {0};
	strcpy(r.id, "0b0c2a5e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
	char *bad[] = {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.name = bad[i];
		size_t len;
		assert_null(api_run_text(&r, &len));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_last_event),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_not_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
