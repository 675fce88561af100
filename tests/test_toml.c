/* test_toml.c - the TOML parser: error positions and messages, the size and
 * depth limits (10 MB documents, 10,000 nested inline tables and arrays),
 * tricky definitions the conformance suite does not cover, the document
 * model's accessors, and toml_to_json. The full toml-test suite runs from
 * tests/toml/. */
#include "tests/support/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/toml/toml.h"
#include "src/util/json.h"

static struct toml_value *parse_ok(const char *text)
{
	struct toml_value *doc = NULL;
	struct err e = {0};
	enum err_code rc = toml_parse(text, strlen(text), NULL, &doc, NULL, &e);
	if (rc != ERR_OK)
		fail_msg("unexpected error for <<%s>>: %s", text, e.msg);
	return doc;
}

/* Parses text with name "m.toml"; returns the code and fills e and pos. */
static enum err_code parse_err(const char *text, size_t len, struct err *e,
			       struct toml_errpos *pos)
{
	struct toml_options opt = {.name = "m.toml"};
	struct toml_value *doc = NULL;
	enum err_code rc = toml_parse(text, len, &opt, &doc, pos, e);
	assert_null(doc);
	return rc;
}

struct err_case {
	const char *text;
	const char *msg; /* exact */
	unsigned line, col;
};

static void test_error_messages(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{"name = \"actor\"\npackage\n",
		 "m.toml:2:8: expected '=' after key \"package\", found end of line", 2, 8},
		{"name = \"a\"\nname = \"b\"\n",
		 "m.toml:2:1: duplicate key \"name\": it is already defined as a string", 2, 1},
		{"[handler]\nx = 1\n[handler]\n",
		 "m.toml:3:1: cannot define table [handler]: it is already defined", 3, 1},
		{"a = \"\xc3\xa9\xc3\xa9\xff\"", "m.toml:1:8: invalid UTF-8 byte 0xFF", 1, 8},
		{"\xef\xbb\xbf" "a = ?", "m.toml:1:5: expected a value, found '?'", 1, 5},
		{"a = 1\r\nb = 2\r\nc = 1979-13-01\r\n",
		 "m.toml:3:10: month 13 is out of range 01-12", 3, 10},
		{"s = \"\"\"\nline\nline\n\"\"\" x", "m.toml:4:5: expected a newline or a comment "
						   "after the value, found 'x'", 4, 5},
		{"s = \"\"\"\nnever closed\n", "m.toml:1:5: unterminated multi-line string", 1, 5},
		{"a = { b = 1, }", "m.toml:1:14: a trailing comma is not allowed in an inline table",
		 1, 14},
		{"a = { b = 1,\n c = 2 }", "m.toml:1:13: expected a key, found end of line", 1, 13},
		{"a = [1, 2,, 3]", "m.toml:1:11: expected a value, found ','", 1, 11},
		{"port = 99999999999999999999", "m.toml:1:8: integer '99999999999999999999' does "
						"not fit in 64 bits", 1, 8},
		{"x = \"\\uD800\"", "m.toml:1:6: escape '\\uD800' is not a Unicode scalar value", 1, 6},
		{"a = 1\n\tb = \"tab\tok\" c", "m.toml:2:15: expected a newline or a comment after "
					     "the value, found 'c'", 2, 15},
		{"a.b = 1\n[a]\n", "m.toml:2:1: cannot define table [a]: it is already defined by "
				   "dotted keys", 2, 1},
		{"[a]\nb = 1\n[x]\n[a.b]\n", "m.toml:4:1: cannot define table [a.b]: it is already "
					     "defined as an integer", 4, 1},
		{"a = 1\n[a.b]\n", "m.toml:2:1: cannot define table \"a.b\": \"a\" is already an "
				   "integer", 2, 1},
		{"a = \"bare\nnext\"", "m.toml:1:5: unterminated string: a single-line string "
				       "cannot span lines", 1, 5},
		{"d = 2023-02-29", "m.toml:1:13: day 29 is out of range for 2023-02", 1, 13},
		{"k = nope", "m.toml:1:5: expected a value, found 'nope' (strings must be quoted)", 1,
		 5},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = {0};
		struct toml_errpos pos;
		assert_int_equal(parse_err(cases[i].text, strlen(cases[i].text), &e, &pos),
				 ERR_INVALID);
		assert_string_equal(e.msg, cases[i].msg);
		assert_int_equal(pos.line, cases[i].line);
		assert_int_equal(pos.col, cases[i].col);
	}
}

static void test_default_name_and_null_outputs(void **state)
{
	(void)state;
	struct toml_value *doc = (struct toml_value *)1;
	struct err e = {0};
	assert_int_equal(toml_parse("a = ", 4, NULL, &doc, NULL, &e), ERR_INVALID);
	assert_null(doc);
	assert_string_equal(e.msg, "toml:1:5: expected a value, found end of file");
	/* No err and no pos: still refused, nothing written. */
	assert_int_equal(toml_parse("a = ", 4, NULL, &doc, NULL, NULL), ERR_INVALID);
	assert_null(doc);
	toml_free(NULL);
	/* An empty document (even a NULL pointer with length 0) is an empty table. */
	assert_int_equal(toml_parse(NULL, 0, NULL, &doc, NULL, &e), ERR_OK);
	assert_int_equal(toml_type(doc), TOML_TABLE);
	assert_int_equal(toml_table_len(doc), 0);
	toml_free(doc);
}

static void test_size_limit(void **state)
{
	(void)state;
	size_t len = 10u * 1000 * 1000;
	char *big = malloc(len);
	assert_non_null(big);
	memset(big, '#', len); /* one long comment: valid TOML if it were parsed */
	struct err e = {0};
	struct toml_errpos pos = {7, 7};
	assert_int_equal(parse_err(big, len, &e, &pos), ERR_TOO_LARGE);
	assert_string_equal(e.msg, "m.toml: document is 10000000 bytes, over the limit of "
				   "1048576 bytes");
	assert_int_equal(pos.line, 0);
	assert_int_equal(pos.col, 0);
	/* A larger limit lets the same document through. */
	struct toml_options opt = {.max_size = len};
	struct toml_value *doc = NULL;
	assert_int_equal(toml_parse(big, len, &opt, &doc, NULL, &e), ERR_OK);
	toml_free(doc);
	/* The limit is inclusive. */
	opt.max_size = 5;
	assert_int_equal(toml_parse("a = 1", 5, &opt, &doc, NULL, &e), ERR_OK);
	toml_free(doc);
	assert_int_equal(toml_parse("a = 12", 6, &opt, &doc, NULL, &e), ERR_TOO_LARGE);
	free(big);
}

/* "a = " + n times open + "1" + n times close. */
static char *nested(int n, const char *open, const char *mid, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close), lm = strlen(mid);
	char *s = malloc(4 + (size_t)n * (lo + lc) + lm + 1);
	assert_non_null(s);
	size_t k = 0;
	memcpy(s, "a = ", 4), k = 4;
	for (int i = 0; i < n; i++, k += lo)
		memcpy(s + k, open, lo);
	memcpy(s + k, mid, lm), k += lm;
	for (int i = 0; i < n; i++, k += lc)
		memcpy(s + k, close, lc);
	s[k] = '\0';
	return s;
}

static void expect_too_deep(const char *text)
{
	struct err e = {0};
	struct toml_errpos pos;
	assert_int_equal(parse_err(text, strlen(text), &e, &pos), ERR_TOO_DEEP);
	assert_true(strstr(e.msg, "deeper than the limit of 64 levels") ||
		    strstr(e.msg, "more than 65 parts"));
	assert_true(pos.line >= 1);
}

static void test_depth_limit(void **state)
{
	(void)state;
	char *s = nested(10000, "{b = ", "1", "}");
	expect_too_deep(s);
	free(s);
	s = nested(10000, "[", "1", "]");
	expect_too_deep(s);
	free(s);
	s = nested(10000, "[{b = ", "1", "}]");
	expect_too_deep(s);
	free(s);
	/* Unclosed nesting is refused by the limit before the missing brackets. */
	s = nested(10000, "[", "", "");
	expect_too_deep(s);
	free(s);
	/* 64 levels are fine: root -> a (1) -> ... -> 64 arrays. */
	s = nested(64, "[", "1", "]");
	struct toml_value *doc = parse_ok(s);
	const struct toml_value *v = toml_table_get(doc, "a");
	for (int i = 1; i < 64; i++)
		v = toml_array_at(v, 0);
	assert_int_equal(toml_int(toml_array_at(v, 0)), 1);
	toml_free(doc);
	free(s);
	s = nested(65, "[", "1", "]");
	expect_too_deep(s);
	free(s);
	/* Dotted keys and headers count too. */
	size_t n = 10000 * 2 + 8;
	char *k = malloc(n);
	assert_non_null(k);
	size_t j = 0;
	k[j++] = '[';
	for (int i = 0; i < 10000; i++)
		k[j++] = 'x', k[j++] = '.';
	k[j - 1] = ']';
	k[j] = '\0';
	expect_too_deep(k);
	k[0] = 'x', k[j - 1] = '=';
	expect_too_deep(k);
	free(k);
	/* A custom limit. */
	struct toml_options opt = {.max_depth = 2};
	struct err e = {0};
	assert_int_equal(toml_parse("a = [[1]]", 9, &opt, &doc, NULL, &e), ERR_OK);
	toml_free(doc);
	assert_int_equal(toml_parse("a = [[[1]]]", 11, &opt, &doc, NULL, &e), ERR_TOO_DEEP);
	assert_int_equal(toml_parse("a.b.c = 1", 9, &opt, &doc, NULL, &e), ERR_OK);
	toml_free(doc);
	assert_int_equal(toml_parse("a.b.c.d = 1", 11, &opt, &doc, NULL, &e), ERR_TOO_DEEP);
}

static void expect_invalid(const char *text)
{
	struct err e = {0};
	struct toml_errpos pos;
	if (parse_err(text, strlen(text), &e, &pos) != ERR_INVALID)
		fail_msg("accepted or wrong code for <<%s>>", text);
	assert_true(pos.line >= 1 && pos.col >= 1);
}

static void test_redefinitions(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"a = 1\na = 1",
		"a = {}\n[a.b]",
		"a = {b = {}}\n[a.b]",
		"a = {b = 1}\na.c = 2",
		"a = []\n[[a]]",
		"a = [{b = 1}]\n[a.c]",
		"[[a]]\n[a]",
		"[a]\n[[a]]",
		"[a.b]\n[[a]]",
		"[a]\nb.c = 1\n[a.b]",
		"[a.b.c]\n[a]\nb.c.d = 1",
		"[a.b.c]\n[a]\nb.x = 1\n[a.b]",
		"x = 1\n[x.y]",
		"x.y = 1\nx.y.z = 2",
		"a = {b = 1, b = 2}",
		"a = {b.c = 1, b = {}}",
		"a = 1,",
		"a = [1 2]",
		"a = \"x\" # ok\x7f",
		"a = 'lit\x01'",
		"a = '''ok''''''",
		"a = 0x-1",
		"a = -0x1",
		"a = 1_000_",
		"a = 07",
		"a = 1.",
		"a = .5",
		"a = 1e",
		"a = 12:30",
		"a = 1979-05-27T07:32",
		"a = 1979-05-27 07:32:00 Z",
		"a = 1979-05-27T07:32:00+24:00",
		"a = 1900-02-29",
		"a = 23:59:61",
		"a = \"\\x41\"",
		"a = \"\\e\"",
		"\"\"\"k\"\"\" = 1",
		"a\r= 1",
		"[a]]\n",
		"[[a]\n",
		"[ [a]]\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_invalid(bad[i]);
}

static void test_tricky_valid(void **state)
{
	(void)state;
	/* Sub-tables of dotted tables, and implicit tables defined later. */
	struct toml_value *doc = parse_ok("[fruit]\napple.color = 'red'\n[fruit.apple.texture]\n"
					  "smooth = true\n[x.y.z]\n[x]\nw = 1\n");
	const struct toml_value *apple = toml_table_get(toml_table_get(doc, "fruit"), "apple");
	assert_string_equal(toml_string(toml_table_get(apple, "color"), NULL), "red");
	assert_true(toml_bool(toml_table_get(toml_table_get(apple, "texture"), "smooth")));
	assert_int_equal(toml_int(toml_table_get(toml_table_get(doc, "x"), "w")), 1);
	toml_free(doc);
	/* Dotted keys may fill a table a header only implied. */
	doc = parse_ok("[a.b.c]\n[a]\nb.x = 1\n");
	assert_int_equal(toml_int(toml_table_get(toml_table_get(toml_table_get(doc, "a"), "b"),
						 "x")),
			 1);
	toml_free(doc);
	/* Arrays of tables with sub-tables per element. */
	doc = parse_ok("[[p]]\nn = 1\n[p.q]\nm = 1\n[[p]]\nn = 2\n[p.q]\nm = 2\n");
	const struct toml_value *p = toml_table_get(doc, "p");
	assert_int_equal(toml_array_len(p), 2);
	assert_int_equal(toml_int(toml_table_get(toml_table_get(toml_array_at(p, 1), "q"), "m")),
			 2);
	toml_free(doc);
	/* Quoted, spaced and numeric keys. */
	doc = parse_ok("\"a.b\" . 'c d' . 1 = 2\n3.14 = 'pi'\n\"\" = 'empty'\n");
	const struct toml_value *ab = toml_table_get(doc, "a.b");
	assert_int_equal(toml_int(toml_table_get(toml_table_get(ab, "c d"), "1")), 2);
	assert_string_equal(toml_string(toml_table_get(toml_table_get(doc, "3"), "14"), NULL),
			    "pi");
	assert_string_equal(toml_string(toml_table_get(doc, ""), NULL), "empty");
	toml_free(doc);
}

static void test_strings(void **state)
{
	(void)state;
	struct toml_value *doc = parse_ok(
		"nul = \"x\\u0000y\"\n"
		"\"\\u0000k\" = 1\n"
		"ml = \"\"\"\r\none\r\ntwo \\\r\n   \r\n   three\"\"\"\n"
		"q = \"\"\"\"\"quoted\"\"\"\"\"\n"
		"lit = '''\n\\n is 'raw' '''\n"
		"u = \"\\U0001F600\\u00e9\\t\"\n");
	size_t len;
	const char *s = toml_string(toml_table_get(doc, "nul"), &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "x\0y", 3);
	assert_int_equal(toml_int(toml_table_getn(doc, "\0k", 2)), 1);
	assert_null(toml_table_get(doc, "k"));
	assert_string_equal(toml_string(toml_table_get(doc, "ml"), NULL), "one\ntwo three");
	assert_string_equal(toml_string(toml_table_get(doc, "q"), NULL), "\"\"quoted\"\"");
	assert_string_equal(toml_string(toml_table_get(doc, "lit"), NULL), "\\n is 'raw' ");
	assert_string_equal(toml_string(toml_table_get(doc, "u"), NULL),
			    "\xf0\x9f\x98\x80\xc3\xa9\t");
	toml_free(doc);
}

static void test_numbers_and_dates(void **state)
{
	(void)state;
	struct toml_value *doc = parse_ok(
		"max = 9223372036854775807\nmin = -9223372036854775808\nhex = 0xDEAD_beef\n"
		"oct = 0o755\nbin = 0b1101\nf = -1_0.5e-0_2\nz = -0.0\nni = -inf\nn = nan\n"
		"odt = 1979-05-27 07:32:00.999999999999-07:00\nldt = 2000-02-29t23:59:60\n"
		"ld = 2024-02-29\nlt = 00:00:00.5\nutc = 1979-05-27T07:32:00z\n");
	assert_int_equal(toml_int(toml_table_get(doc, "max")), INT64_MAX);
	assert_int_equal(toml_int(toml_table_get(doc, "min")), INT64_MIN);
	assert_int_equal(toml_int(toml_table_get(doc, "hex")), 0xDEADBEEF);
	assert_int_equal(toml_int(toml_table_get(doc, "oct")), 0755);
	assert_int_equal(toml_int(toml_table_get(doc, "bin")), 13);
	assert_true(toml_float(toml_table_get(doc, "f")) == -10.5e-2);
	assert_true(signbit(toml_float(toml_table_get(doc, "z"))));
	assert_true(isinf(toml_float(toml_table_get(doc, "ni"))));
	assert_true(isnan(toml_float(toml_table_get(doc, "n"))));
	const struct toml_value *v = toml_table_get(doc, "odt");
	assert_int_equal(toml_type(v), TOML_DATETIME);
	const struct toml_datetime *dt = toml_datetime(v);
	assert_int_equal(dt->year, 1979);
	assert_int_equal(dt->second, 0);
	assert_int_equal(dt->nanosecond, 999999999);
	assert_int_equal(dt->offset_minutes, -420);
	assert_string_equal(dt->text, "1979-05-27T07:32:00.999999999999-07:00");
	dt = toml_datetime(toml_table_get(doc, "ldt"));
	assert_int_equal(toml_type(toml_table_get(doc, "ldt")), TOML_DATETIME_LOCAL);
	assert_int_equal(dt->second, 60);
	assert_string_equal(dt->text, "2000-02-29T23:59:60");
	assert_int_equal(toml_type(toml_table_get(doc, "ld")), TOML_DATE_LOCAL);
	dt = toml_datetime(toml_table_get(doc, "lt"));
	assert_int_equal(dt->nanosecond, 500000000);
	assert_int_equal(dt->year, 0);
	assert_string_equal(toml_datetime(toml_table_get(doc, "utc"))->text,
			    "1979-05-27T07:32:00Z");
	toml_free(doc);
}

static void test_model(void **state)
{
	(void)state;
	struct toml_value *doc = parse_ok("# manifest\nname = 'x'\n\n[[handler]]\n  type = 1\n");
	assert_int_equal(toml_line(doc), 1);
	const struct toml_value *name = toml_table_get(doc, "name");
	assert_int_equal(toml_line(name), 2);
	assert_int_equal(toml_col(name), 8);
	const struct toml_value *h = toml_array_at(toml_table_get(doc, "handler"), 0);
	assert_int_equal(toml_line(h), 4);
	assert_int_equal(toml_col(toml_table_get(h, "type")), 10);
	/* Wrong-type accessors answer 0 / NULL. */
	assert_null(toml_string(toml_table_get(h, "type"), NULL));
	assert_int_equal(toml_int(name), 0);
	assert_null(toml_datetime(name));
	assert_null(toml_table_get(name, "x"));
	assert_int_equal(toml_array_len(name), 0);
	assert_null(toml_array_at(toml_table_get(doc, "handler"), 1));
	const char *key;
	size_t klen;
	assert_ptr_equal(toml_table_at(doc, 1, &key, &klen), toml_table_get(doc, "handler"));
	assert_string_equal(key, "handler");
	assert_int_equal(klen, 7);
	assert_string_equal(toml_type_name(TOML_DATETIME_LOCAL), "datetime-local");
	toml_free(doc);
}

/* A table with many keys uses the hash index: order, lookup and duplicates. */
static void test_big_table(void **state)
{
	(void)state;
	char *text = malloc(20000 * 24);
	assert_non_null(text);
	size_t k = 0;
	for (int i = 0; i < 20000; i++)
		k += (size_t)sprintf(text + k, "key%d = %d\n", i, i);
	struct toml_value *doc = parse_ok(text);
	assert_int_equal(toml_table_len(doc), 20000);
	for (int i = 0; i < 20000; i += 997) {
		char name[32];
		sprintf(name, "key%d", i);
		assert_int_equal(toml_int(toml_table_get(doc, name)), i);
		const char *key;
		toml_table_at(doc, (size_t)i, &key, NULL);
		assert_string_equal(key, name);
	}
	assert_null(toml_table_get(doc, "key20000"));
	toml_free(doc);
	sprintf(text + k, "key12345 = 0\n");
	expect_invalid(text);
	free(text);
}

static void test_to_json(void **state)
{
	(void)state;
	struct toml_value *doc = parse_ok(
		"name = \"echo\"\nversion = \"0.1.0\"\nstatic_package = true\n"
		"[initial_state]\ncount = 0\nratio = 0.5\nwhen = 1979-05-27T07:32:00Z\n"
		"big = inf\nodd = nan\nlist = [1, 'two', [3.0]]\n"
		"[[handler]]\ntype = \"runtime\"\n[[handler]]\ntype = \"store\"\n");
	json_t *j = toml_to_json(doc);
	assert_non_null(j);
	char *s = json_compact(j);
	assert_string_equal(s, "{\"name\":\"echo\",\"version\":\"0.1.0\",\"static_package\":true,"
			       "\"initial_state\":{\"count\":0,\"ratio\":0.5,"
			       "\"when\":\"1979-05-27T07:32:00Z\",\"big\":\"inf\",\"odd\":\"nan\","
			       "\"list\":[1,\"two\",[3.0]]},"
			       "\"handler\":[{\"type\":\"runtime\"},{\"type\":\"store\"}]}");
	free(s);
	json_decref(j);
	j = toml_to_tagged_json(doc);
	s = json_compact(json_object_get(json_object_get(j, "initial_state"), "ratio"));
	assert_string_equal(s, "{\"type\":\"float\",\"value\":\"0.5\"}");
	free(s);
	json_decref(j);
	toml_free(doc);
	/* Strings and keys with NUL survive. */
	doc = parse_ok("\"a\\u0000b\" = \"c\\u0000d\"");
	j = toml_to_json(doc);
	const char *key;
	json_t *val;
	size_t n = 0;
	json_object_foreach(j, key, val) {
		(void)key;
		assert_int_equal(json_string_length(val), 3);
		n++;
	}
	assert_int_equal(n, 1);
	assert_non_null(json_object_getn(j, "a\0b", 3));
	json_decref(j);
	toml_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_default_name_and_null_outputs),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_redefinitions),
		cmocka_unit_test(test_tricky_valid),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers_and_dates),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_big_table),
		cmocka_unit_test(test_to_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
