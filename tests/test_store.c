/* test_store.c - the content-addressed store: put/get/labels, verification,
 * limits, and that nothing outside the root is ever opened. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/store.h"
#include "src/util/crypto.h"

#define HELLO_HASH "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct fixture {
	char *base;      /* temp dir holding root/ and outside/ */
	char *root;
	char *outside;
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e = {0};
	f->base = tu_mkdtemp("theater-store");
	f->root = tu_fmt("%s/home/store", f->base);   /* store_open makes it (mkdir -p) */
	f->outside = tu_fmt("%s/outside", f->base);
	mkdir(f->outside, 0755);
	*state = f;
	return store_open(f->root, &f->s, &e) == ERR_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->s);
	tu_rmtree(f->base);
	free(f->base);
	free(f->root);
	free(f->outside);
	free(f);
	return 0;
}

static void test_put_get(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char hex[65];
	uint8_t *data = NULL;
	size_t len = 0;
	assert_int_equal(store_put(f->s, "pkgs", "hello", 5, hex, &e), ERR_OK);
	assert_string_equal(hex, HELLO_HASH);
	char *path = tu_fmt("%s/pkgs/data/%s", f->root, HELLO_HASH);
	char *onfile = tu_read_file(path, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(onfile, "hello", 5);
	assert_true(store_has(f->s, "pkgs", HELLO_HASH));
	assert_int_equal(store_get(f->s, "pkgs", HELLO_HASH, 0, &data, &len, &e), ERR_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	assert_int_equal(data[5], '\0');
	free(data);
	/* Idempotent. */
	assert_int_equal(store_put(f->s, "pkgs", "hello", 5, hex, &e), ERR_OK);
	assert_string_equal(hex, HELLO_HASH);
	/* Empty content is content too. */
	assert_int_equal(store_put(f->s, "pkgs", NULL, 0, hex, &e), ERR_OK);
	assert_string_equal(hex, EMPTY_HASH);
	assert_int_equal(store_get(f->s, "pkgs", EMPTY_HASH, 10, &data, &len, &e), ERR_OK);
	assert_int_equal(len, 0);
	free(data);
	free(onfile);
	free(path);
}

static void test_binary_and_limits(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char hex[65];
	uint8_t blob[3000], *data = NULL;
	size_t len = 0;
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7);
	assert_int_equal(store_put(f->s, "bin", blob, sizeof(blob), hex, &e), ERR_OK);
	assert_int_equal(store_get(f->s, "bin", hex, sizeof(blob) - 1, &data, &len, &e),
			 ERR_TOO_LARGE);
	assert_null(data);
	assert_int_equal(store_get(f->s, "bin", hex, sizeof(blob), &data, &len, &e), ERR_OK);
	assert_int_equal(len, sizeof(blob));
	assert_memory_equal(data, blob, sizeof(blob));
	free(data);
}

static void test_not_found(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	uint8_t *data = NULL;
	size_t len;
	char hex[65];
	assert_int_equal(store_get(f->s, "nostore", HELLO_HASH, 0, &data, &len, &e), ERR_NOT_FOUND);
	assert_int_equal(store_put(f->s, "pkgs", "x", 1, hex, &e), ERR_OK);
	assert_int_equal(store_get(f->s, "pkgs", HELLO_HASH, 0, &data, &len, &e), ERR_NOT_FOUND);
	assert_non_null(strstr(e.msg, HELLO_HASH));
	assert_false(store_has(f->s, "pkgs", HELLO_HASH));
	assert_false(store_has(f->s, "nostore", HELLO_HASH));
	assert_int_equal(store_label_get(f->s, "pkgs", "latest", hex, &e), ERR_NOT_FOUND);
	assert_int_equal(store_label_get(f->s, "nostore", "latest", hex, &e), ERR_NOT_FOUND);
}

static void test_corrupt_detected(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char hex[65];
	uint8_t *data = NULL;
	size_t len;
	assert_int_equal(store_put(f->s, "pkgs", "hello", 5, hex, &e), ERR_OK);
	char *path = tu_fmt("%s/pkgs/data/%s", f->root, hex);
	assert_int_equal(tu_write_file(path, "jello", 5), 0);
	assert_int_equal(store_get(f->s, "pkgs", hex, 0, &data, &len, &e), ERR_CORRUPT);
	assert_null(data);
	/* A put of the true content repairs it (same size: rewrite happens only when
	 * the sizes differ, so write a different size first). */
	assert_int_equal(tu_write_file(path, "hell", 4), 0);
	assert_int_equal(store_put(f->s, "pkgs", "hello", 5, hex, &e), ERR_OK);
	assert_int_equal(store_get(f->s, "pkgs", hex, 0, &data, &len, &e), ERR_OK);
	free(data);
	free(path);
}

static void test_labels(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char h1[65], h2[65], got[65];
	assert_int_equal(store_put(f->s, "pkgs", "v1", 2, h1, &e), ERR_OK);
	assert_int_equal(store_put(f->s, "pkgs", "v2", 2, h2, &e), ERR_OK);
	assert_int_equal(store_label_set(f->s, "pkgs", "latest", h1, &e), ERR_OK);
	assert_int_equal(store_label_get(f->s, "pkgs", "latest", got, &e), ERR_OK);
	assert_string_equal(got, h1);
	assert_int_equal(store_label_set(f->s, "pkgs", "latest", h2, &e), ERR_OK);
	assert_int_equal(store_label_get(f->s, "pkgs", "latest", got, &e), ERR_OK);
	assert_string_equal(got, h2);
	char *path = tu_fmt("%s/pkgs/labels/latest", f->root);
	char *text = tu_read_file(path, NULL);
	char *want = tu_fmt("%s\n", h2);
	assert_string_equal(text, want);
	/* The target must exist. */
	assert_int_equal(store_label_set(f->s, "pkgs", "other", HELLO_HASH, &e), ERR_NOT_FOUND);
	assert_int_equal(store_label_get(f->s, "pkgs", "other", got, &e), ERR_NOT_FOUND);
	/* A label file that does not hold a hash. */
	assert_int_equal(tu_write_file(path, "not a hash\n", 11), 0);
	assert_int_equal(store_label_get(f->s, "pkgs", "latest", got, &e), ERR_CORRUPT);
	free(want);
	free(text);
	free(path);
}

static void test_bad_ids(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char hex[65], h[65];
	uint8_t *data = NULL;
	size_t len;
	const char *bad[] = {"../x", "a/b", "..", ".", "", ".hidden", "a b", "x\n",
			     "0123456789012345678901234567890123456789012345678901234567890123X",
			     NULL};
	assert_int_equal(store_put(f->s, "ok", "v", 1, h, &e), ERR_OK);
	for (int i = 0; bad[i]; i++) {
		assert_false(store_id_valid(bad[i]));
		assert_int_equal(store_put(f->s, bad[i], "v", 1, hex, &e), ERR_BAD_ID);
		assert_int_equal(store_get(f->s, bad[i], h, 0, &data, &len, &e), ERR_BAD_ID);
		assert_false(store_has(f->s, bad[i], h));
		assert_int_equal(store_label_set(f->s, bad[i], "l", h, &e), ERR_BAD_ID);
		assert_int_equal(store_label_get(f->s, bad[i], "l", hex, &e), ERR_BAD_ID);
		if (strlen(bad[i]) < 64) {
			assert_false(store_label_valid(bad[i]));
			assert_int_equal(store_label_set(f->s, "ok", bad[i], h, &e), ERR_BAD_ID);
			assert_int_equal(store_label_get(f->s, "ok", bad[i], hex, &e), ERR_BAD_ID);
		}
	}
	const char *bad_hashes[] = {"../../etc/passwd", "", "ABCDEF", HELLO_HASH "0",
				    "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
				    NULL};
	for (int i = 0; bad_hashes[i]; i++) {
		assert_int_equal(store_get(f->s, "ok", bad_hashes[i], 0, &data, &len, &e), ERR_BAD_ID);
		assert_false(store_has(f->s, "ok", bad_hashes[i]));
		assert_int_equal(store_label_set(f->s, "ok", "l", bad_hashes[i], &e), ERR_BAD_ID);
	}
	assert_true(store_id_valid("My_store-1.0"));
	assert_true(store_label_valid("v1.2.3-rc_1"));
	char label128[129];
	memset(label128, 'a', 128);
	label128[128] = '\0';
	assert_true(store_label_valid(label128));
	assert_false(store_id_valid(label128));
	/* Nothing was created outside the root, nor stray entries inside it. */
	char *cmd = tu_fmt("test -z \"$(ls -A '%s')\" && test \"$(ls -A '%s')\" = ok",
			   f->outside, f->root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_symlinks_refused(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char h[65], got[65];
	uint8_t *data = NULL;
	size_t len;
	assert_int_equal(store_put(f->s, "pkgs", "v", 1, h, &e), ERR_OK);
	assert_int_equal(store_label_set(f->s, "pkgs", "latest", h, &e), ERR_OK);
	/* A file outside the root that holds a valid label and valid content. */
	char *secret = tu_fmt("%s/secret", f->outside);
	char *line = tu_fmt("%s\n", HELLO_HASH);
	assert_int_equal(tu_write_file(secret, line, strlen(line)), 0);
	char *outside_hello = tu_fmt("%s/hello", f->outside);
	assert_int_equal(tu_write_file(outside_hello, "hello", 5), 0);

	char *label = tu_fmt("%s/pkgs/labels/evil", f->root);
	assert_int_equal(symlink(secret, label), 0);
	assert_int_equal(store_label_get(f->s, "pkgs", "evil", got, &e), ERR_FORBIDDEN_PATH);
	char *entry = tu_fmt("%s/pkgs/data/%s", f->root, HELLO_HASH);
	assert_int_equal(symlink(outside_hello, entry), 0);
	assert_int_equal(store_get(f->s, "pkgs", HELLO_HASH, 0, &data, &len, &e), ERR_FORBIDDEN_PATH);
	assert_null(data);
	assert_false(store_has(f->s, "pkgs", HELLO_HASH));
	/* A whole store id that is a symlink to a directory outside. */
	char *iddir = tu_fmt("%s/linked", f->root);
	assert_int_equal(symlink(f->outside, iddir), 0);
	assert_int_equal(store_get(f->s, "linked", HELLO_HASH, 0, &data, &len, &e),
			 ERR_FORBIDDEN_PATH);
	assert_int_equal(store_put(f->s, "linked", "hello", 5, got, &e), ERR_FORBIDDEN_PATH);
	assert_int_equal(store_label_get(f->s, "linked", "secret", got, &e), ERR_FORBIDDEN_PATH);
	/* labels/ itself replaced by a symlink. */
	char *labels = tu_fmt("%s/pkgs/labels", f->root);
	char *cmd = tu_fmt("rm -rf '%s' && ln -s '%s' '%s'", labels, f->outside, labels);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_label_get(f->s, "pkgs", "secret", got, &e), ERR_FORBIDDEN_PATH);
	assert_int_equal(store_label_set(f->s, "pkgs", "secret", h, &e), ERR_FORBIDDEN_PATH);
	/* The outside files are untouched. */
	char *text = tu_read_file(secret, NULL);
	assert_string_equal(text, line);
	free(text);
	free(cmd);
	free(labels);
	free(iddir);
	free(entry);
	free(label);
	free(outside_hello);
	free(line);
	free(secret);
}

static void test_fifo_refused(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char h[65], got[65];
	assert_int_equal(store_put(f->s, "pkgs", "v", 1, h, &e), ERR_OK);
	assert_int_equal(store_label_set(f->s, "pkgs", "latest", h, &e), ERR_OK);
	char *fifo = tu_fmt("%s/pkgs/labels/fifo", f->root);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	/* Must neither block nor read. */
	assert_int_equal(store_label_get(f->s, "pkgs", "fifo", got, &e), ERR_FORBIDDEN_PATH);
	free(fifo);
}

#define PUTTERS 6

struct putter {
	struct store *s;
	int failed;
};

static void *put_worker(void *arg)
{
	struct putter *p = arg;
	char hex[65];
	for (int i = 0; i < 20; i++) {
		char data[32];
		int n = snprintf(data, sizeof(data), "item %d", i);
		if (store_put(p->s, "shared", data, (size_t)n, hex, NULL) != ERR_OK)
			p->failed = 1;
	}
	return NULL;
}

static void test_concurrent_puts(void **state)
{
	struct fixture *f = *state;
	pthread_t th[PUTTERS];
	struct putter ps[PUTTERS];
	for (int i = 0; i < PUTTERS; i++) {
		ps[i] = (struct putter){.s = f->s};
		assert_int_equal(pthread_create(&th[i], NULL, put_worker, &ps[i]), 0);
	}
	for (int i = 0; i < PUTTERS; i++) {
		pthread_join(th[i], NULL);
		assert_false(ps[i].failed);
	}
	/* 20 entries, no temp files left. */
	char *cmd = tu_fmt("test $(ls -A '%s/shared/data' | wc -l) -eq 20", f->root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
