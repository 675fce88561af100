/* test_sdk_json.c - unit tests of the C SDK's JSON helpers that actors
 * use (sdk/include/theater/jscan.h, jbuf.h), compiled natively: the actors read
 * untrusted messages with them, so malformed, truncated and deeply nested input
 * must be refused without reading out of bounds (ASan watches), and what jbuf
 * writes must be JSON that jansson reads back to the same text.
 *
 * The headers expect the SDK's theater_alloc / theater_strlen / theater_memcpy;
 * here they are an arena on malloc, freed after each test. */
#include "tests/support/testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/json.h"

struct block {
	struct block *next;
	max_align_t data[];
};
static struct block *arena;

void *theater_alloc(uint32_t size);
uint32_t theater_strlen(const char *s);
void *theater_memcpy(void *dst, const void *src, uint32_t n);

void *theater_alloc(uint32_t size)
{
	struct block *b = malloc(sizeof(*b) + size + 1);
	if (!b)
		return NULL;
	b->next = arena;
	arena = b;
	return b->data;
}

uint32_t theater_strlen(const char *s)
{
	return (uint32_t)strlen(s);
}

void *theater_memcpy(void *dst, const void *src, uint32_t n)
{
	return n ? memcpy(dst, src, n) : dst;
}

#include "sdk/include/theater/jbuf.h"
#include "sdk/include/theater/jscan.h"

static int arena_free(void **state)
{
	(void)state;
	while (arena) {
		struct block *b = arena;
		arena = b->next;
		free(b);
	}
	return 0;
}

/* Parses a heap copy of exactly len bytes, so that ASan sees any read past it. */
static int parse_exact(const char *text, size_t len, struct js *out)
{
	char *copy = theater_alloc((uint32_t)len);
	memcpy(copy, text, len);
	char *exact = malloc(len ? len : 1);
	memcpy(exact, text, len);
	int ok = js_parse(exact, (uint32_t)len, out);
	if (ok) {             /* keep the slice valid after freeing the exact copy */
		out->p = copy + (out->p - exact);
	}
	free(exact);
	return ok;
}

static int parses(const char *text)
{
	struct js v;
	return parse_exact(text, strlen(text), &v);
}

static void test_parse_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"0", "-0", "12", "-3.5e+7", "1E3", "0.25", "true", "false", "null", "\"\"",
		"\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\"", "[]", "{}", " [ 1 , 2 ] ",
		"{\"a\":{\"b\":[1,{\"c\":null}]}}", "\"\xc3\xa9 utf-8\"", "\n\t{}\r\n",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!parses(ok[i]))
			fail_msg("refused valid JSON: %s", ok[i]);
}

static void test_parse_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "01", "-", "1.", ".5", "1e", "+1", "tru", "nul", "\"abc", "\"\\x\"",
		"\"\\u12g4\"", "\"\\u12\"", "\"a\nb\"", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
		"{a:1}", "{\"a\":1,}", "[1 2]", "{} {}", "1 2", "]", "}", "[", "{\"a\":1",
		"[\"\\", "nulll", "truex",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parses(bad[i]))
			fail_msg("accepted invalid JSON: '%s'", bad[i]);
}

/* Every proper prefix of an object is malformed, and none is read past. */
static void test_truncations(void **state)
{
	(void)state;
	const char *doc = "{\"op\":\"put\",\"key\":\"k\\u00e9\",\"value\":[1,-2.5e3,true,"
			  "null,{\"x\":\"\\\"\"}],\"n\":-9223372036854775808}";
	size_t n = strlen(doc);
	struct js v;
	assert_true(parse_exact(doc, n, &v));
	for (size_t len = 0; len < n; len++)
		assert_false(parse_exact(doc, len, &v));
}

static void test_depth_bound(void **state)
{
	(void)state;
	char deep[2 * (JS_MAX_DEPTH + 2) + 1];
	struct js v;
	for (int levels = JS_MAX_DEPTH; levels <= JS_MAX_DEPTH + 1; levels++) {
		memset(deep, '[', (size_t)levels);
		memset(deep + levels, ']', (size_t)levels);
		assert_int_equal(parse_exact(deep, (size_t)levels * 2, &v), levels <= JS_MAX_DEPTH);
	}
	/* far deeper input is refused without exhausting the stack */
	size_t huge = 200000;
	char *h = malloc(huge);
	memset(h, '[', huge);
	assert_false(js_parse(h, (uint32_t)huge, &v));
	free(h);
}

static void test_access(void **state)
{
	(void)state;
	struct js doc, v = {0, 0}, s = {0, 0}, k;
	int64_t i;
	assert_true(parse_exact("{\"a\": 1, \"b\\u0021\": [10, \"x\", {\"c\": -7}], \"a2\": true}",
				strlen("{\"a\": 1, \"b\\u0021\": [10, \"x\", {\"c\": -7}], \"a2\": true}"),
				&doc));
	assert_true(js_get(doc, "a", &v) && js_int(v, &i) && i == 1);
	assert_true(js_get(doc, "b!", &v) && js_is_array(v));
	assert_int_equal(js_count(v), 3);
	struct js third = {0, 0}, c = {0, 0};
	assert_true(js_at(v, 2, &third) && js_get(third, "c", &c) && js_int(c, &i) && i == -7);
	assert_true(js_at(v, 1, &s) && js_str_eq(s, "x"));
	assert_false(js_at(v, 3, &s));
	assert_false(js_get(doc, "missing", &v));
	assert_false(js_get(doc, "b", &v));
	uint32_t pos = 0, n = 0;
	while (js_next(doc, &pos, &k, &v))
		n++;
	assert_int_equal(n, 3);
	/* not an object / not an array */
	assert_false(js_get(third, "c", &v) && js_get(v, "x", &s));
	assert_false(js_at(doc, 0, &v));
}

static void test_int(void **state)
{
	(void)state;
	int64_t i;
	assert_true(js_int(js_cstr("9223372036854775807"), &i) && i == INT64_MAX);
	assert_true(js_int(js_cstr("-9223372036854775808"), &i) && i == INT64_MIN);
	assert_false(js_int(js_cstr("9223372036854775808"), &i));
	assert_false(js_int(js_cstr("-9223372036854775809"), &i));
	assert_false(js_int(js_cstr("1.0"), &i));
	assert_false(js_int(js_cstr("-"), &i));
	assert_false(js_int(js_cstr(""), &i));
	assert_false(js_int(js_cstr("\"5\""), &i));
}

static void test_strings(void **state)
{
	(void)state;
	struct js out;
	assert_true(js_string(js_cstr("\"a\\n\\u00e9\\ud83d\\ude00\\\"\""), &out));
	assert_int_equal(out.n, strlen("a\n\xc3\xa9\xf0\x9f\x98\x80\""));
	assert_memory_equal(out.p, "a\n\xc3\xa9\xf0\x9f\x98\x80\"", out.n);
	/* a lone surrogate becomes U+FFFD */
	assert_true(js_string(js_cstr("\"\\ud800x\""), &out));
	assert_memory_equal(out.p, "\xef\xbf\xbdx", 4);
	assert_true(js_str_eq(js_cstr("\"g\\u0065t\""), "get"));
	assert_false(js_str_eq(js_cstr("\"get\""), "ge"));
	assert_false(js_str_eq(js_cstr("\"ge\""), "get"));
	assert_false(js_string(js_cstr("5"), &out));
}

/* jb_quote writes JSON that jansson decodes to the same bytes. */
static void test_writer_round_trip(void **state)
{
	(void)state;
	char text[256];
	for (int i = 0; i < 255; i++)
		text[i] = (char)(i < 127 ? i + 1 : 'a' + i % 26);   /* ASCII: 1..127 */
	text[255] = 0;
	struct jb b;
	jb_init(&b, 4);                       /* grows many times */
	jb_cstr(&b, "{\"s\":");
	jb_quote(&b, text, 255);
	jb_cstr(&b, ",\"n\":");
	jb_int(&b, INT64_MIN);
	jb_cstr(&b, ",\"m\":");
	jb_int(&b, 0);
	jb_char(&b, '}');
	assert_true(jb_ok(&b));
	json_t *j = json_loadb(b.p, b.len, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "s")), text);
	assert_true(json_integer_value(json_object_get(j, "n")) == INT64_MIN);
	assert_int_equal(json_integer_value(json_object_get(j, "m")), 0);
	json_decref(j);
	struct js doc;
	assert_true(js_parse(b.p, b.len, &doc));
}

/* 1 when jansson is stricter than jscan by design: bytes that are not ASCII
 * (jscan passes UTF-8 through unchecked) or a \u escape of a surrogate. */
static int beyond_jscan(const char *m, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)m[i] >= 0x80)
			return 1;
		if (m[i] == '\\' && i + 2 < len && m[i + 1] == 'u' && (m[i + 2] == 'd' || m[i + 2] == 'D'))
			return 1;
	}
	return 0;
}

/* Random mutations of a valid document: never a crash or an out-of-bounds read;
 * whatever js_parse accepts, jansson accepts too (within beyond_jscan). */
static void test_mutations(void **state)
{
	(void)state;
	const char *seed = "{\"op\":\"put\",\"key\":\"k\",\"value\":\"v\\u00e9\",\"list\":[1,2.5,"
			   "{\"a\":[true,false,null]}],\"n\":-12}";
	size_t n = strlen(seed);
	static const char alphabet[] = "{}[]\",:\\u0123456789eE+-.tfnrl a\x01\x80";
	srand(42);
	for (int round = 0; round < 20000; round++) {
		char *m = malloc(n);
		memcpy(m, seed, n);
		for (int k = 0, edits = 1 + rand() % 3; k < edits; k++)
			m[rand() % n] = alphabet[rand() % (sizeof(alphabet) - 1)];
		size_t len = (size_t)rand() % (n + 1);
		struct js v;
		if (js_parse(m, (uint32_t)len, &v)) {
			json_t *j = json_loadb(m, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
			if (!j && !beyond_jscan(m, len))
				fail_msg("js_parse accepted what jansson refuses: %.*s", (int)len, m);
			json_decref(j);
			struct js k2, val;
			uint32_t pos = 0;
			while (js_next(v, &pos, &k2, &val))
				;
		}
		free(m);
		if (round % 1000 == 0)
			arena_free(NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_parse_valid, arena_free),
		cmocka_unit_test_teardown(test_parse_invalid, arena_free),
		cmocka_unit_test_teardown(test_truncations, arena_free),
		cmocka_unit_test_teardown(test_depth_bound, arena_free),
		cmocka_unit_test_teardown(test_access, arena_free),
		cmocka_unit_test_teardown(test_int, arena_free),
		cmocka_unit_test_teardown(test_strings, arena_free),
		cmocka_unit_test_teardown(test_writer_round_trip, arena_free),
		cmocka_unit_test_teardown(test_mutations, arena_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
