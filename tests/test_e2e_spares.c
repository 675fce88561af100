/* test_e2e_spares.c - spare chain files (supervisor/spares.h, --spare-chains):
 * empty "<uuid>.chain" files made ahead of need whose id a spawn takes. They are
 * never actors (GET 404, not listed, not rebuilt into the index), they are kept
 * by a clean stop and by a crash and taken back at the next start without new
 * files, the crash states of a spawn that took one come back right, and
 * --spare-chains 0 turns them off. Each restart uses the same THEATER_HOME. */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/db.h"
#include "src/util/json.h"
#include "tests/support/server_proc.h"

#define POOL 16

static struct server_proc SP;

static void start(const char *spare_chains)
{
	const char *args[] = {"--spare-chains", spare_chains, NULL};
	assert_int_equal(server_start(&SP, NULL, args, NULL), 0);
}

static long long metric(const char *name)
{
	return server_metric(&SP, name);
}

/* Polls until the pool holds want spares (the refill runs in the background,
 * at low priority: generous). */
static void wait_pool_at(long long want, int line)
{
	long long v = -1;
	for (int i = 0; i < 1200 && (v = metric("theater_spare_chains")) != want; i++)
		usleep(50000);
	if (v != want)
		fprintf(stderr, "line %d: %lld spares, not %lld (log: %s)\n", line, v, want,
			SP.log_path);
	assert_int_equal(v, want);
}
#define wait_pool(want) wait_pool_at(want, __LINE__)

/* A new home with the hello package, a server with a pool of POOL, full. */
static void start_with_full_pool(void)
{
	memset(&SP, 0, sizeof(SP));
	start("16");
	server_put_hello_package(&SP, "m.wasm");
	wait_pool(POOL);
}

/* Ids of the empty "<id>.chain" files in the chains directory. */
static size_t empty_chains(char ids[][37], size_t cap, size_t *all_out)
{
	char *dir = tu_fmt("%s/chains", SP.home);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	size_t n = 0, all = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len != 36 + 6 || strcmp(de->d_name + 36, ".chain") != 0)
			continue;
		all++;
		char *p = tu_fmt("%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(p, &st) == 0 && st.st_size == 0 && n < cap) {
			memcpy(ids[n], de->d_name, 36);
			ids[n++][36] = 0;
		}
		free(p);
	}
	closedir(d);
	free(dir);
	if (all_out)
		*all_out = all;
	return n;
}

static char *spawn(const char *name, const char *wait)
{
	char *body = tu_fmt("{\"manifest\":{\"name\":\"%s\",\"package\":\"m.wasm\"}}", name);
	char *path = tu_fmt("/actors?wait=%s", wait);
	json_t *j = server_call_json(&SP, "POST", path, body, 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(path);
	free(body);
	return id;
}

static size_t listed(void)
{
	json_t *j = server_call_json(&SP, "GET", "/actors?limit=100", NULL, 200);
	json_t *items = json_object_get(j, "items");
	size_t n = json_array_size(items ? items : j);
	json_decref(j);
	return n;
}

static void get_status(const char *id, long want)
{
	char *p = tu_fmt("/actors/%s", id);
	json_decref(server_call_json(&SP, "GET", p, NULL, want));
	free(p);
}

static struct db *open_index(void)
{
	struct db *d = NULL;
	struct err e = {0};
	char *p = tu_fmt("%s/theater.db", SP.home);
	assert_int_equal(db_open(p, &d, &e), ERR_OK);
	free(p);
	return d;
}

static int file_exists(const char *id)
{
	char *p = tu_fmt("%s/chains/%s.chain", SP.home, id);
	struct stat st;
	int ok = stat(p, &st) == 0;
	free(p);
	return ok;
}

/* A spawn takes a spare's id; spares are not actors; a clean stop and a crash
 * keep them and the next start takes them back without creating files. */
static void test_pool_kept_across_restarts(void **state)
{
	(void)state;
	start_with_full_pool();
	size_t all = 0;
	char ids[64][37];
	assert_int_equal(empty_chains(ids, 64, &all), POOL);
	assert_int_equal(all, POOL);
	char *a = spawn("a", "running"), *b = spawn("b", "created");
	/* the actors' ids are spares' ids: no file was added for them */
	int a_was_spare = 0, b_was_spare = 0;
	for (size_t i = 0; i < POOL; i++) {
		a_was_spare |= strcmp(ids[i], a) == 0;
		b_was_spare |= strcmp(ids[i], b) == 0;
	}
	assert_true(a_was_spare && b_was_spare);
	wait_pool(POOL);
	size_t nempty = empty_chains(ids, 64, &all);
	assert_int_equal(nempty, POOL);
	assert_int_equal(all, POOL + 2);
	/* a spare is no actor */
	get_status(ids[0], 404);
	assert_int_equal(listed(), 2);
	char *del = tu_fmt("/actors/%s", ids[1]);
	json_decref(server_call_json(&SP, "DELETE", del, NULL, 404));
	free(del);

	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(empty_chains(ids, 64, &all), POOL);   /* kept */
	start("16");
	wait_pool(POOL);
	assert_int_equal(metric("theater_spare_chains_created_total"), 0);
	assert_int_equal(empty_chains(ids, 64, &all), POOL);
	assert_int_equal(all, POOL + 2);
	assert_int_equal(listed(), 2);
	get_status(a, 200);
	get_status(ids[0], 404);

	/* a crash with spares on disk: the same */
	char *c = spawn("c", "running");
	server_crash(&SP);
	start("16");
	wait_pool(POOL);
	assert_int_equal(listed(), 3);
	get_status(c, 200);
	assert_int_equal(empty_chains(ids, 64, &all), POOL);
	assert_int_equal(all, POOL + 3);
	/* taken back: only the one spare c used (its row maybe not dropped before the
	 * crash: then it was dropped at start as a run) is made again */
	assert_true(metric("theater_spare_chains_created_total") <= 1);
	server_stop(&SP);
	free(a);
	free(b);
	free(c);
	server_destroy(&SP);
}

/* The crash states around a spawn that took a spare, made on a stopped server's
 * index and files, and an index rebuilt from the chains with spares present. */
static void test_crash_states_and_rebuild(void **state)
{
	(void)state;
	start_with_full_pool();
	char *a = spawn("a", "running");
	wait_pool(POOL);
	assert_int_equal(server_stop(&SP), 0);
	char ids[64][37];
	size_t all = 0;
	assert_int_equal(empty_chains(ids, 64, &all), POOL);
	struct err e = {0};
	struct db *d = open_index();
	/* 1. taken, answered (wait=created: its run row is written first), died before
	 *    its first event: an actor, which the start ends `failed` */
	struct db_run r = {0};
	memcpy(r.id, ids[0], 37);
	r.name = "answered";
	r.status = "starting";
	r.created_at = r.updated_at = db_now_ms();
	assert_int_equal(db_run_insert(d, &r, &e), ERR_OK);
	/* 2. taken, not answered, its spares row dropped, died before its first event:
	 *    no actor; the start removes the file */
	assert_int_equal(db_spare_drop(d, (const char (*)[37])ids[1], 1, &e), ERR_OK);
	/* 3. taken, not answered, its row still there: a spare again */
	/* 4. an empty chain file no one knows (a refill whose row was lost) */
	const char *stray = "00000000-0000-4000-8000-00000000abcd";
	char *sp = tu_fmt("%s/chains/%s.chain", SP.home, stray);
	assert_int_equal(tu_write_file(sp, "", 0), 0);
	db_close(d);
	start("16");
	wait_pool(POOL);
	char *p = tu_fmt("/actors/%s", ids[0]);
	json_t *j = NULL;
	for (int i = 0; i < 600; i++) {    /* recovery ends it once the server listens */
		j = server_call_json(&SP, "GET", p, NULL, 200);
		if (strcmp(json_string_value(json_object_get(j, "status")), "failed") == 0)
			break;
		json_decref(j);
		j = NULL;
		usleep(100000);
	}
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "answered");
	json_decref(j);
	free(p);
	get_status(ids[1], 404);
	assert_false(file_exists(ids[1]));
	assert_false(file_exists(stray));
	get_status(stray, 404);
	assert_int_equal(listed(), 2);
	/* ids[1] removed, ids[0] became a run: 14 taken back, 2 made */
	assert_int_equal(metric("theater_spare_chains_created_total"), 2);
	assert_int_equal(server_stop(&SP), 0);

	/* the index lost: rebuilt from the chains, spares present; no phantom actor */
	char *dbp = tu_fmt("%s/theater.db", SP.home);
	char *wal = tu_fmt("%s-wal", dbp), *shm = tu_fmt("%s-shm", dbp);
	unlink(dbp);
	unlink(wal);
	unlink(shm);
	start("16");
	wait_pool(POOL);
	get_status(a, 200);
	assert_int_equal(listed(), 2);
	assert_int_equal(empty_chains(ids, 64, &all), POOL);
	assert_int_equal(all, POOL + 2);
	for (size_t i = 0; i < POOL; i++)
		get_status(ids[i], 404);
	server_stop(&SP);
	free(dbp);
	free(wal);
	free(shm);
	free(sp);
	free(a);
	server_destroy(&SP);
}

/* --spare-chains 0: spawns create their own files; the spares an earlier start
 * kept are removed. */
static void test_spares_off(void **state)
{
	(void)state;
	start_with_full_pool();
	assert_int_equal(server_stop(&SP), 0);
	start("0");
	assert_int_equal(metric("theater_spare_chains"), 0);
	char ids[64][37];
	size_t all = 0;
	assert_int_equal(empty_chains(ids, 64, &all), 0);
	assert_int_equal(all, 0);
	char *a = spawn("a", "running"), *b = spawn("b", "running");
	assert_int_equal(empty_chains(ids, 64, &all), 0);
	assert_int_equal(all, 2);
	assert_int_equal(metric("theater_spare_chains_created_total"), 0);
	get_status(a, 200);
	get_status(b, 200);
	assert_int_equal(server_stop(&SP), 0);
	start("0");
	assert_int_equal(listed(), 2);
	server_stop(&SP);
	free(a);
	free(b);
	server_destroy(&SP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_kept_across_restarts),
		cmocka_unit_test(test_crash_states_and_rebuild),
		cmocka_unit_test(test_spares_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
