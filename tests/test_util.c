/* test_util.c - err, buf, crypto and json helpers. */
#include "tests/support/testutil.h"

#include <string.h>

#include "src/util/buf.h"
#include "src/util/crypto.h"
#include "src/util/err.h"
#include "src/util/json.h"
#include "src/util/pct.h"
#include "src/util/units.h"

static void test_buf_limit(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "abcd"), ERR_OK);
	assert_int_equal(buf_printf(&b, "%d", 1234), ERR_OK);
	assert_int_equal(buf_puts(&b, "x"), ERR_TOO_LARGE);
	assert_string_equal(b.data, "abcd1234");
	assert_int_equal(b.len, 8);
	buf_release(&b);
}

static void test_sha256_vector(void **state)
{
	(void)state;
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	sha256("abc", 3, d);
	hex_encode(d, SHA256_LEN, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(sha256_hex_valid(hex));
	assert_false(sha256_hex_valid("BA7816"));
	uint8_t back[SHA256_LEN];
	assert_int_equal(hex_decode(hex, back, SHA256_LEN), ERR_OK);
	assert_memory_equal(back, d, SHA256_LEN);
}

static void test_uuid(void **state)
{
	(void)state;
	char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];
	assert_int_equal(uuid_v4(a), ERR_OK);
	assert_int_equal(uuid_v4(b), ERR_OK);
	assert_true(uuid_valid(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_false(uuid_valid("not-a-uuid"));
	assert_false(uuid_valid("../../../etc/passwd"));
}

static void test_json_depth_and_keys(void **state)
{
	(void)state;
	struct err e = {0};
	char deep[20001];
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	deep[20000] = 0;
	assert_null(json_parse(deep, 20000, 64, &e));
	assert_int_equal(e.code, ERR_TOO_DEEP);
	assert_null(json_parse("{\"a\":", 5, 64, &e));
	assert_int_equal(e.code, ERR_BAD_JSON);
	json_t *v = json_parse("{\"a\":1,\"bogus\":2}", 17, 64, &e);
	assert_non_null(v);
	static const char *const allowed[] = {"a", NULL};
	assert_int_equal(json_check_keys(v, allowed, "manifest", &e), ERR_UNKNOWN_KEY);
	assert_non_null(strstr(e.msg, "'bogus'"));
	json_decref(v);
}

static void test_pct_decode(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(pct_decode("a%2Fb%20c", 9, out), ERR_OK);
	assert_string_equal(out, "a/b c");
	assert_int_equal(pct_decode("%2e%2E", 6, out), ERR_OK);
	assert_string_equal(out, "..");
	assert_int_equal(pct_decode("abc%41xyz", 6, out), ERR_OK);   /* only n bytes are read */
	assert_string_equal(out, "abcA");
	assert_int_equal(pct_decode("abc", 0, out), ERR_OK);
	assert_string_equal(out, "");
	assert_int_equal(pct_decode("%00", 3, out), ERR_INVALID);
	assert_int_equal(pct_decode("%zz", 3, out), ERR_INVALID);
	assert_int_equal(pct_decode("%4", 2, out), ERR_INVALID);
	assert_int_equal(pct_decode("x%", 2, out), ERR_INVALID);
	assert_int_equal(pct_decode("a%2Fb", 5, NULL), ERR_OK);        /* a check only */
	assert_int_equal(pct_decode("a%00b", 5, NULL), ERR_INVALID);
	assert_int_equal(pct_decode("a%ZZ", 4, NULL), ERR_INVALID);
	assert_int_equal(hex_digit('f'), 15);
	assert_int_equal(hex_digit('F'), 15);
	assert_int_equal(hex_digit('g'), -1);
}

static void test_units(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(units_parse_size("64K", UINT64_MAX, &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(units_parse_size("2m", UINT64_MAX, &v), 0);
	assert_int_equal(v, 2u << 20);
	assert_int_equal(units_parse_size("123", UINT64_MAX, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(units_parse_size("1G", 1ull << 30, &v), 0);
	assert_int_equal(units_parse_size("2G", 1ull << 30, &v), -1);   /* over max */
	assert_int_equal(units_parse_size("99999999999999999999", UINT64_MAX, &v), -1);
	assert_int_equal(units_parse_size("12Q", UINT64_MAX, &v), -1);
	assert_int_equal(units_parse_size("2T", UINT64_MAX, &v), 0);
	assert_int_equal(v, 2ull << 40);
	assert_int_equal(units_parse_size("-1", UINT64_MAX, &v), -1);
	assert_int_equal(units_parse_size("", UINT64_MAX, &v), -1);
	assert_int_equal(units_parse_size("4KB", UINT64_MAX, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_sha256_vector),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_json_depth_and_keys),
		cmocka_unit_test(test_pct_decode),
		cmocka_unit_test(test_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
