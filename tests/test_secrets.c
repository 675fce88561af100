/* test_secrets.c - unit tests of src/secrets: names, put/get/info/delete, the
 * listing, file modes, keyed fingerprints that survive a reopen, damage. */
#include "tests/support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/secrets.h"
#include "src/util/crypto.h"

static void test_names(void **state)
{
	(void)state;
	assert_true(secrets_name_valid("openai"));
	assert_true(secrets_name_valid("A-b_c.9"));
	assert_false(secrets_name_valid(""));
	assert_false(secrets_name_valid(".key"));
	assert_false(secrets_name_valid("a/b"));
	assert_false(secrets_name_valid("a b"));
	assert_false(secrets_name_valid(NULL));
	char long_name[SECRETS_NAME_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(secrets_name_valid(long_name));
	long_name[SECRETS_NAME_MAX] = '\0';
	assert_true(secrets_name_valid(long_name));
}

struct names {
	char list[512];
};

static void collect(void *user, const struct secret_info *info)
{
	struct names *n = user;
	size_t len = strlen(n->list);
	snprintf(n->list + len, sizeof(n->list) - len, "%s%s:%zu", len ? "," : "", info->name,
		 info->size);
}

static void test_round_trip(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp("theater-secrets"), *sdir = tu_fmt("%s/secrets", dir);
	struct secrets *s = NULL;
	struct err e = {0};
	assert_int_equal(secrets_open(sdir, &s, &e), ERR_OK);
	struct stat st;
	assert_int_equal(stat(sdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	int created = 0;
	struct secret_info info;
	assert_int_equal(secrets_put(s, "b-key", "value\n\0two", 10, &created, &info, &e), ERR_OK);
	assert_true(created);
	assert_int_equal(info.size, 10);
	assert_int_equal(secrets_put(s, "a-key", "x", 1, &created, NULL, &e), ERR_OK);
	char *file = tu_fmt("%s/b-key", sdir);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	uint8_t *v = NULL;
	size_t len = 0;
	struct secret_info got;
	assert_int_equal(secrets_get(s, "b-key", &v, &len, &got, &e), ERR_OK);
	assert_int_equal(len, 10);
	assert_memory_equal(v, "value\n\0two", 10);
	assert_string_equal(got.fingerprint, info.fingerprint);
	secrets_value_free(v, len);
	/* the fingerprint is keyed: not sha256, and the same after a reopen */
	uint8_t d[32];
	char hex[65];
	sha256("value\n\0two", 10, d);
	hex_encode(d, 32, hex);
	assert_string_not_equal(info.fingerprint, hex);
	secrets_close(s);
	assert_int_equal(secrets_open(sdir, &s, &e), ERR_OK);
	assert_int_equal(secrets_info(s, "b-key", &got, &e), ERR_OK);
	assert_string_equal(got.fingerprint, info.fingerprint);
	char fp[65];
	secrets_fingerprint(s, "value\n\0two", 10, fp);
	assert_string_equal(fp, info.fingerprint);
	/* replacing keeps the creation time */
	assert_int_equal(secrets_put(s, "b-key", "new", 3, &created, &got, &e), ERR_OK);
	assert_false(created);
	assert_int_equal(got.created_ms, info.created_ms);
	assert_true(got.updated_ms >= info.updated_ms);
	struct names n = {""};
	assert_int_equal(secrets_foreach(s, collect, &n, &e), ERR_OK);
	assert_string_equal(n.list, "a-key:1,b-key:3");
	/* errors */
	assert_int_equal(secrets_get(s, "none", &v, &len, NULL, &e), ERR_NOT_FOUND);
	assert_non_null(strstr(e.msg, "secret 'none' is not set"));
	assert_int_equal(secrets_put(s, ".x", "v", 1, NULL, NULL, &e), ERR_BAD_ID);
	char *big = calloc(1, SECRETS_VALUE_MAX + 1);
	assert_int_equal(secrets_put(s, "big", big, SECRETS_VALUE_MAX + 1, NULL, NULL, &e),
			 ERR_TOO_LARGE);
	assert_int_equal(secrets_put(s, "big", big, SECRETS_VALUE_MAX, NULL, NULL, &e), ERR_OK);
	free(big);
	assert_int_equal(secrets_delete(s, "a-key", &e), ERR_OK);
	assert_int_equal(secrets_delete(s, "a-key", &e), ERR_NOT_FOUND);
	/* a damaged file is reported, never handed out */
	assert_int_equal(tu_write_file(file, "garbage", 7), 0);
	assert_int_equal(secrets_get(s, "b-key", &v, &len, NULL, &e), ERR_CORRUPT);
	assert_null(v);
	secrets_close(s);
	secrets_close(NULL);
	free(file);
	tu_rmtree(dir);
	free(sdir);
	free(dir);
}

/* A folder others could read is made private. */
static void test_folder_mode(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp("theater-secrets-mode"), *sdir = tu_fmt("%s/s", dir);
	assert_int_equal(mkdir(sdir, 0755), 0);
	struct secrets *s = NULL;
	struct err e = {0};
	assert_int_equal(secrets_open(sdir, &s, &e), ERR_OK);
	struct stat st;
	assert_int_equal(stat(sdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	secrets_close(s);
	tu_rmtree(dir);
	free(sdir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_folder_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
