/* test_db.c - the SQLite index: run CRUD, paging with filters and cursors,
 * fail_live, the events index, schema version, and rebuilding from chain files
 * (real SQLite files in temp dirs, real chain files). */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/chain.h"
#include "src/db.h"
#include "src/util/crypto.h"

struct fixture {
	char *dir;
	char *path;
	struct db *d;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e = {0};
	f->dir = tu_mkdtemp("theater-db");
	f->path = tu_fmt("%s/theater.db", f->dir);
	*state = f;
	return db_open(f->path, &f->d, &e) == ERR_OK ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	db_close(f->d);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static void make_id(int i, char out[37])
{
	snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

static void insert_run(struct db *d, const char *id, const char *name, const char *status,
		       const char *parent, int64_t created)
{
	struct db_run r = {0};
	struct err e = {0};
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.parent_id, sizeof(r.parent_id), "%s", parent ? parent : "");
	r.name = (char *)name;
	r.status = (char *)status;
	r.created_at = created;
	assert_int_equal(db_run_insert(d, &r, &e), ERR_OK);
}

static void test_crud(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct db_run r = {0}, got;
	make_id(1, r.id);
	r.name = "chat";
	r.manifest_ref = "/srv/chat.toml";
	r.package_ref = "store://pkgs/chat";
	r.status = "starting";
	r.created_at = 1700000000123;
	r.manifest_json = "{\"name\":\"chat\"}";
	assert_int_equal(db_run_insert(f->d, &r, &e), ERR_OK);
	assert_int_equal(db_run_insert(f->d, &r, &e), ERR_CONFLICT);
	assert_int_equal(db_run_get(f->d, r.id, &got, &e), ERR_OK);
	assert_string_equal(got.id, r.id);
	assert_string_equal(got.name, "chat");
	assert_string_equal(got.manifest_ref, "/srv/chat.toml");
	assert_string_equal(got.package_ref, "store://pkgs/chat");
	assert_string_equal(got.package_sha256, "");
	assert_string_equal(got.parent_id, "");
	assert_string_equal(got.status, "starting");
	assert_null(got.reason);
	assert_int_equal(got.created_at, 1700000000123);
	assert_int_equal(got.started_at, 0);
	assert_int_equal(got.stopped_at, 0);
	assert_int_equal(got.head_seq, 0);
	assert_string_equal(got.head_hash, "");
	assert_string_equal(got.manifest_json, "{\"name\":\"chat\"}");
	assert_true(got.updated_at > 0);
	int64_t updated = got.updated_at;
	db_run_release(&got);

	assert_int_equal(db_run_set_status(f->d, r.id, "running", NULL, 1700000001000, &e), ERR_OK);
	const char *sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	assert_int_equal(db_run_set_package(f->d, r.id, "store://pkgs/hash/x", sha, &e), ERR_OK);
	assert_int_equal(db_run_set_head(f->d, r.id, 7, sha, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, r.id, &got, &e), ERR_OK);
	assert_string_equal(got.status, "running");
	assert_int_equal(got.started_at, 1700000001000);
	assert_int_equal(got.stopped_at, 0);
	assert_string_equal(got.package_ref, "store://pkgs/hash/x");
	assert_string_equal(got.package_sha256, sha);
	assert_int_equal(got.head_seq, 7);
	assert_string_equal(got.head_hash, sha);
	/* Three changes, each strictly later, even within one millisecond. */
	assert_true(got.updated_at >= updated + 3);
	updated = got.updated_at;
	db_run_release(&got);

	assert_int_equal(db_run_set_status(f->d, r.id, "stopped", "requested", 1700000002000, &e),
			 ERR_OK);
	assert_int_equal(db_run_get(f->d, r.id, &got, &e), ERR_OK);
	assert_string_equal(got.status, "stopped");
	assert_string_equal(got.reason, "requested");
	assert_int_equal(got.started_at, 1700000001000);
	assert_int_equal(got.stopped_at, 1700000002000);
	assert_true(got.updated_at > updated);
	db_run_release(&got);

	assert_int_equal(db_run_set_status(f->d, r.id, "exploded", NULL, 0, &e), ERR_INVALID);
	assert_int_equal(db_run_set_package(f->d, r.id, "x", "nothex", &e), ERR_INVALID);
	char other[37];
	make_id(2, other);
	assert_int_equal(db_run_get(f->d, other, &got, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_set_status(f->d, other, "running", NULL, 0, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_set_head(f->d, other, 1, NULL, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_get(f->d, "", &got, &e), ERR_BAD_ID);
	struct db_run bad = {0};
	make_id(3, bad.id);
	bad.status = "nope";
	assert_int_equal(db_run_insert(f->d, &bad, &e), ERR_INVALID);

	assert_int_equal(db_run_delete(f->d, r.id, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, r.id, &got, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_delete(f->d, r.id, &e), ERR_NOT_FOUND);
	db_run_release(NULL);
}

struct collect {
	char ids[200][37];
	int n, stop_after;
};

static int collect_cb(void *user, const struct db_run *r)
{
	struct collect *c = user;
	snprintf(c->ids[c->n++], 37, "%s", r->id);
	return c->stop_after && c->n == c->stop_after;
}

/* Lists all pages with the filter; returns the number of pages. */
static int list_all(struct db *d, struct db_run_filter flt, struct collect *c)
{
	char *cursor = NULL;
	struct err e = {0};
	int pages = 0;
	do {
		char *next = NULL;
		flt.cursor = cursor;
		assert_int_equal(db_run_list(d, &flt, collect_cb, c, &next, &e), ERR_OK);
		free(cursor);
		cursor = next;
		pages++;
	} while (cursor);
	return pages;
}

static void test_list_paging(void **state)
{
	struct fixture *f = *state;
	static const char *const statuses[] = {"running", "stopped", "failed"};
	char parent[37];
	make_id(999, parent);
	/* Inserted out of order; created_at repeats so that ties sort by id. */
	for (int k = 0; k < 120; k++) {
		int i = (k * 37) % 120;
		char id[37];
		make_id(i, id);
		insert_run(f->d, id, i % 2 ? "odd" : "even", statuses[i % 3],
			   i % 4 == 0 ? parent : NULL, 1000 + i / 3);
	}
	static struct collect all;
	memset(&all, 0, sizeof(all));
	assert_int_equal(list_all(f->d, (struct db_run_filter){.limit = 50}, &all), 3);
	assert_int_equal(all.n, 120);
	for (int i = 0; i < 120; i++) {
		char id[37];
		make_id(i, id);
		assert_string_equal(all.ids[i], id);
	}
	static struct collect c;
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.limit = 50, .status = "running"}, &c);
	assert_int_equal(c.n, 40);
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.limit = 7, .name = "odd", .status = "failed"}, &c);
	assert_int_equal(c.n, 20);   /* i odd and i % 3 == 2 */
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.parent = parent}, &c);
	assert_int_equal(c.n, 30);
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.parent = "", .limit = 1000}, &c);
	assert_int_equal(c.n, 90);
	memset(&c, 0, sizeof(c));
	assert_int_equal(list_all(f->d, (struct db_run_filter){.status = "killed"}, &c), 1);
	assert_int_equal(c.n, 0);
}

static void test_list_cursor_edges(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char *next = NULL;
	for (int i = 0; i < 10; i++) {
		char id[37];
		make_id(i, id);
		insert_run(f->d, id, "n", "running", NULL, 5000 + i);
	}
	/* Exactly one full page: no cursor. */
	static struct collect c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(db_run_list(f->d, &(struct db_run_filter){.limit = 10}, collect_cb, &c,
				     &next, &e), ERR_OK);
	assert_int_equal(c.n, 10);
	assert_null(next);
	/* Early stop: the cursor resumes right after the last run passed. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	assert_int_equal(db_run_list(f->d, &(struct db_run_filter){.limit = 10}, collect_cb, &c,
				     &next, &e), ERR_OK);
	assert_int_equal(c.n, 3);
	assert_non_null(next);
	c.stop_after = 0;
	assert_int_equal(db_run_list(f->d, &(struct db_run_filter){.cursor = next}, collect_cb, &c,
				     &(char *){NULL}, &e), ERR_OK);
	assert_int_equal(c.n, 10);
	char id3[37];
	make_id(3, id3);
	assert_string_equal(c.ids[3], id3);
	free(next);
	const char *bad[] = {"abc", "12", ":x", "12:", "-1:x", "1x:y", "1:a:b",
			     "99999999999999999999999:x", NULL};
	for (int i = 0; bad[i]; i++) {
		next = NULL;
		assert_int_equal(db_run_list(f->d, &(struct db_run_filter){.cursor = bad[i]},
					     collect_cb, &c, &next, &e), ERR_INVALID);
		assert_null(next);
	}
}

static void test_fail_live(void **state)
{
	struct fixture *f = *state;
	static const char *const statuses[] = {"starting", "running", "stopping",
					       "stopped", "failed", "killed"};
	struct err e = {0};
	unsigned count = 0;
	for (int i = 0; i < 6; i++) {
		char id[37];
		make_id(i, id);
		insert_run(f->d, id, "n", statuses[i], NULL, 100 + i);
	}
	assert_int_equal(db_runs_fail_live(f->d, "server_restart", 777, &count, &e), ERR_OK);
	assert_int_equal(count, 3);
	for (int i = 0; i < 6; i++) {
		char id[37];
		struct db_run r;
		make_id(i, id);
		assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
		if (i < 3) {
			assert_string_equal(r.status, "failed");
			assert_string_equal(r.reason, "server_restart");
			assert_int_equal(r.stopped_at, 777);
		} else {
			assert_string_equal(r.status, statuses[i]);
			assert_int_equal(r.stopped_at, 0);
		}
		db_run_release(&r);
	}
	assert_int_equal(db_runs_fail_live(f->d, "again", 888, &count, &e), ERR_OK);
	assert_int_equal(count, 0);
}

static void test_events_index(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char id[37], other[37];
	make_id(1, id);
	make_id(2, other);
	insert_run(f->d, id, "n", "running", NULL, 1);
	assert_int_equal(db_events_max_seq(f->d, id), 0);
	struct db_event_row rows[100];
	for (int i = 0; i < 100; i++)
		rows[i] = (struct db_event_row){.seq = (uint64_t)i + 1, .offset = (uint64_t)i * 200,
						.timestamp = 5000 + i, .event_type = "wasm"};
	assert_int_equal(db_events_index(f->d, id, rows, 100, &e), ERR_OK);
	assert_int_equal(db_events_index(f->d, other, rows, 3, &e), ERR_OK);
	assert_int_equal(db_events_max_seq(f->d, id), 100);
	int64_t ts;
	uint64_t off;
	assert_int_equal(db_event_get(f->d, id, 42, &ts, &off, &e), ERR_OK);
	assert_int_equal(ts, 5041);
	assert_int_equal(off, 41 * 200);
	/* Replace on (actor_id, seq). */
	struct db_event_row again = {.seq = 42, .offset = 1, .timestamp = 2, .event_type = "x"};
	assert_int_equal(db_events_index(f->d, id, &again, 1, &e), ERR_OK);
	assert_int_equal(db_event_get(f->d, id, 42, &ts, &off, &e), ERR_OK);
	assert_int_equal(ts, 2);
	assert_int_equal(off, 1);
	char type[4];
	assert_int_equal(db_event_type(f->d, id, 42, &ts, type, sizeof(type), &e), ERR_OK);
	assert_string_equal(type, "x");
	assert_int_equal(db_event_type(f->d, id, 43, &ts, type, sizeof(type), &e), ERR_OK);
	assert_string_equal(type, "was");   /* cut to fit */
	assert_int_equal(db_event_type(f->d, id, 101, &ts, type, sizeof(type), &e), ERR_NOT_FOUND);
	assert_int_equal(db_event_get(f->d, id, 101, &ts, &off, &e), ERR_NOT_FOUND);
	/* One bad row rolls the whole batch back. */
	struct db_event_row mixed[2] = {{.seq = 200, .event_type = "ok"}, {.seq = 0, .event_type = "bad"}};
	assert_int_equal(db_events_index(f->d, id, mixed, 2, &e), ERR_INVALID);
	assert_int_equal(db_event_get(f->d, id, 200, &ts, &off, &e), ERR_NOT_FOUND);
	/* Deleting the run drops its index rows only. */
	assert_int_equal(db_run_delete(f->d, id, &e), ERR_OK);
	assert_int_equal(db_events_max_seq(f->d, id), 0);
	assert_int_equal(db_events_max_seq(f->d, other), 3);
}

/* Rows, head and status in one commit; a failure in any part leaves none. */
static void test_record_events(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char id[37];
	make_id(7, id);
	insert_run(f->d, id, "n", "starting", NULL, 1);
	char head[65];
	memset(head, 'a', 64);
	head[64] = 0;
	struct db_event_row rows[3];
	for (int i = 0; i < 3; i++)
		rows[i] = (struct db_event_row){.seq = (uint64_t)i + 1, .offset = (uint64_t)i * 10,
						.timestamp = 100 + i, .event_type = "wasm"};
	assert_int_equal(db_record_events(f->d, id, rows, 3, 3, head, "running", NULL, 5000, &e),
			 ERR_OK);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_string_equal(r.status, "running");
	assert_int_equal(r.started_at, 5000);
	assert_int_equal(r.head_seq, 3);
	assert_string_equal(r.head_hash, head);
	db_run_release(&r);
	assert_int_equal(db_events_max_seq(f->d, id), 3);
	/* no rows and no status: only the head moves */
	head[0] = 'b';
	assert_int_equal(db_record_events(f->d, id, NULL, 0, 4, head, NULL, NULL, 0, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_seq, 4);
	assert_string_equal(r.status, "running");
	db_run_release(&r);
	/* a bad row rolls back the head and the status too */
	struct db_event_row bad = {.seq = 0, .event_type = "x"};
	assert_int_equal(db_record_events(f->d, id, &bad, 1, 9, head, "stopped", "r", 6000, &e),
			 ERR_INVALID);
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_seq, 4);
	assert_string_equal(r.status, "running");
	db_run_release(&r);
	char missing[37];
	make_id(8, missing);
	assert_int_equal(db_record_events(f->d, missing, rows, 1, 1, head, NULL, NULL, 0, &e),
			 ERR_NOT_FOUND);
	assert_int_equal(db_events_max_seq(f->d, missing), 0);
}


/* A clean stop's idle mark (db_run_mark_idle) holds only at the head it was
 * made for, with a known end; the next head written clears it. */
static void test_mark_idle(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char id[37];
	make_id(9, id);
	insert_run(f->d, id, "n", "running", NULL, 1);
	char head[65];
	memset(head, 'c', 64);
	head[64] = 0;
	struct db_event_row rows[2] = {
		{.seq = 1, .offset = 0, .timestamp = 1, .event_type = "spawned"},
		{.seq = 2, .offset = 40, .timestamp = 2, .event_type = "wasm", .end = 90},
	};
	int marked = -1;
	/* the head's end is not known yet: no mark */
	assert_int_equal(db_record_events(f->d, id, rows, 1, 1, head, NULL, NULL, 0, &e), ERR_OK);
	assert_int_equal(db_run_mark_idle(f->d, id, 1, &marked, &e), ERR_OK);
	assert_int_equal(marked, 0);
	assert_int_equal(db_record_events(f->d, id, rows + 1, 1, 2, head, NULL, NULL, 0, &e),
			 ERR_OK);
	/* another head than the index's: no mark */
	assert_int_equal(db_run_mark_idle(f->d, id, 3, &marked, &e), ERR_OK);
	assert_int_equal(marked, 0);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_idle, 0);
	assert_int_equal(r.head_end, 90);
	db_run_release(&r);
	assert_int_equal(db_run_mark_idle(f->d, id, 2, &marked, &e), ERR_OK);
	assert_int_equal(marked, 1);
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_idle, 1);
	assert_int_equal(r.head_seq, 2);
	db_run_release(&r);
	/* the next head clears it */
	struct db_event_row next = {.seq = 3, .offset = 90, .timestamp = 3,
				    .event_type = "message-server/received", .end = 150};
	assert_int_equal(db_record_events(f->d, id, &next, 1, 3, head, NULL, NULL, 0, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_idle, 0);
	db_run_release(&r);
	char missing[37];
	make_id(10, missing);
	assert_int_equal(db_run_mark_idle(f->d, missing, 1, &marked, &e), ERR_OK);
	assert_int_equal(marked, 0);
	assert_int_equal(db_run_mark_idle(f->d, "", 1, &marked, &e), ERR_BAD_ID);
}

/* Issue 16: every filtered list is answered from an index (a SEARCH on the
 * status, name or parent index), never by scanning the table and never with a
 * sort of its own; with and without a cursor. */
static void test_list_uses_indexes(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char parent[37];
	make_id(7, parent);
	for (int i = 0; i < 200; i++) {
		char id[37];
		make_id(i, id);
		insert_run(f->d, id, i % 2 ? "odd" : "even", i % 3 ? "running" : "stopped",
			   i % 5 ? NULL : parent, 1000 + i);
	}
	struct {
		struct db_run_filter f;
		const char *index;
	} cases[] = {
		{{.status = "running"}, "runs_by_status"},
		{{.status = "running", .cursor = "1000:x"}, "runs_by_status"},
		{{.name = "odd"}, "runs_by_name"},
		{{.name = "odd", .cursor = "1000:x"}, "runs_by_name"},
		{{.parent = parent}, "runs_by_parent"},
		{{.parent = "", .cursor = "1000:x"}, "runs_by_parent"},
		{{.status = "running", .parent = parent}, NULL},
		{{.status = "running", .name = "odd", .parent = parent}, NULL},
		{{.name = "odd", .status = "stopped", .cursor = "1000:x"}, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *plan = NULL;
		assert_int_equal(db_run_list_plan(f->d, &cases[i].f, &plan, &e), ERR_OK);
		print_message("case %zu: %s", i, plan);
		assert_non_null(strstr(plan, "SEARCH runs USING INDEX runs_by_"));
		if (cases[i].index)
			assert_non_null(strstr(plan, cases[i].index));
		assert_null(strstr(plan, "TEMP B-TREE"));
		free(plan);
	}
	/* no filter: in created order from its index, no sort either */
	char *plan = NULL;
	assert_int_equal(db_run_list_plan(f->d, &(struct db_run_filter){0}, &plan, &e), ERR_OK);
	assert_non_null(strstr(plan, "runs_by_created"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	free(plan);
	/* and the answers are right: every combination against a count by hand */
	static struct collect c;
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.status = "running", .name = "odd", .limit = 9}, &c);
	int want = 0;
	for (int i = 0; i < 200; i++)
		want += i % 2 && i % 3;
	assert_int_equal(c.n, want);
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.status = "stopped", .parent = parent, .limit = 3},
		 &c);
	want = 0;
	for (int i = 0; i < 200; i++)
		want += i % 3 == 0 && i % 5 == 0;
	assert_int_equal(c.n, want);
}

/* A run's head event offset comes with the run: the checkpoint its chain
 * opens from; DB_NO_OFFSET when the index has no row for the head. */
static void test_head_offset(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char id[37];
	make_id(1, id);
	insert_run(f->d, id, "n", "running", NULL, 0);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_offset, DB_NO_OFFSET);
	db_run_release(&r);
	struct db_event_row rows[2] = {{.seq = 1, .offset = 0, .timestamp = 1, .event_type = "a"},
				       {.seq = 2, .offset = 321, .timestamp = 2, .event_type = "b"}};
	assert_int_equal(db_record_events(f->d, id, rows, 2, 2,
					  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
					  NULL, NULL, 0, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, id, &r, &e), ERR_OK);
	assert_int_equal(r.head_seq, 2);
	assert_int_equal(r.head_offset, 321);
	db_run_release(&r);
}


/* A batch is one transaction; a failing write inside it rolls back only itself. */
static void test_batch(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char a[37], b[37], ghost[37];
	make_id(1, a);
	make_id(2, b);
	make_id(3, ghost);
	assert_int_equal(db_batch_begin(f->d, &e), ERR_OK);
	assert_int_equal(db_batch_begin(f->d, &e), ERR_OK);    /* nested */
	insert_run(f->d, a, "a", "running", NULL, 0);
	struct db_event_row row = {.seq = 1, .offset = 0, .timestamp = 1, .event_type = "x"};
	assert_int_equal(db_record_events(f->d, ghost, &row, 1, 1, NULL, NULL, NULL, 0, &e),
			 ERR_NOT_FOUND);                          /* its event row is rolled back */
	assert_int_equal(db_events_max_seq(f->d, ghost), 0);
	assert_int_equal(db_batch_end(f->d, &e), ERR_OK);
	insert_run(f->d, b, "b", "running", NULL, 0);
	assert_int_equal(db_record_events(f->d, b, &row, 1, 1, NULL, NULL, NULL, 0, &e), ERR_OK);
	assert_int_equal(db_batch_end(f->d, &e), ERR_OK);
	/* committed: another connection sees both runs */
	struct db *d2 = NULL;
	assert_int_equal(db_open(f->path, &d2, &e), ERR_OK);
	uint64_t n = 0;
	assert_int_equal(db_run_count(d2, "running", &n, &e), ERR_OK);
	assert_int_equal(n, 2);
	assert_int_equal(db_events_max_seq(d2, b), 1);
	assert_int_equal(db_events_max_seq(d2, ghost), 0);
	db_close(d2);
	assert_int_equal(db_batch_end(f->d, &e), ERR_OK);       /* unbalanced: harmless */
}

static void test_schema_version(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct db *d2 = NULL;
	db_close(f->d);
	f->d = NULL;
	/* Reopen keeps the data and version. */
	assert_int_equal(db_open(f->path, &d2, &e), ERR_OK);
	db_close(d2);
	/* user_version is the big-endian u32 at offset 60 of the file header. */
	size_t len;
	char *bytes = tu_read_file(f->path, &len);
	assert_true(len >= 100);
	assert_int_equal((unsigned char)bytes[63], DB_SCHEMA_VERSION);
	bytes[63] = 99;
	assert_int_equal(tu_write_file(f->path, bytes, len), 0);
	free(bytes);
	assert_int_equal(db_open(f->path, &d2, &e), ERR_UNSUPPORTED);
	assert_null(d2);
	assert_non_null(strstr(e.msg, "99"));
}

/* ---- rebuild ---- */

struct actor_spec {
	char id[37];
	const char *name;      /* NULL: no meta file */
	int events;
	int json_ts;           /* data carries "timestamp" */
};

static void write_actor(const char *chains, struct actor_spec *a, struct db *d)
{
	struct chain *c = NULL;
	struct err e = {0};
	struct db_run r = {0};
	assert_int_equal(chain_open(chains, a->id, &c, NULL, &e), ERR_OK);
	if (a->name)
		assert_int_equal(chain_write_meta(chains, a->id, a->name, "/m.toml", 1700000000, &e),
				 ERR_OK);
	memcpy(r.id, a->id, 37);
	r.name = (char *)(a->name ? a->name : a->id);
	r.status = "running";
	r.created_at = 1700000000000;
	assert_int_equal(db_run_insert(d, &r, &e), ERR_OK);
	for (int i = 0; i < a->events; i++) {
		char data[96];
		struct chain_event ev;
		int n = a->json_ts ? snprintf(data, sizeof(data), "{\"timestamp\":%d,\"i\":%d}",
					      1000 + i * 10, i)
				   : snprintf(data, sizeof(data), "bin\n%c\n%d", 0, i);
		/* Durable appends for the first few; the rest share one sync at the end. */
		enum err_code rc = i < 10 ? chain_append(c, i ? "wasm" : "spawned", data, (size_t)n,
							 &ev, &e)
					  : chain_append_nosync(c, "wasm", data, (size_t)n, &ev, &e);
		assert_int_equal(rc, ERR_OK);
		struct db_event_row row = {.seq = ev.seq, .offset = ev.offset,
					   .timestamp = a->json_ts ? 1000 + i * 10 : 1,
					   .event_type = i ? "wasm" : "spawned"};
		assert_int_equal(db_events_index(d, a->id, &row, 1, &e), ERR_OK);
	}
	uint8_t head[CHAIN_HASH_LEN];
	char hex[65] = "";
	assert_int_equal(chain_sync(c, &e), ERR_OK);
	chain_head(c, head);
	if (a->events)
		hex_encode(head, CHAIN_HASH_LEN, hex);
	assert_int_equal(db_run_set_head(d, a->id, (uint64_t)a->events, hex, &e), ERR_OK);
	chain_close(c);
}

static void compare_actor(struct db *d1, struct db *d2, const struct actor_spec *a)
{
	struct db_run r1, r2;
	struct err e = {0};
	assert_int_equal(db_run_get(d1, a->id, &r1, &e), ERR_OK);
	assert_int_equal(db_run_get(d2, a->id, &r2, &e), ERR_OK);
	assert_int_equal(r2.head_seq, r1.head_seq);
	assert_string_equal(r2.head_hash, r1.head_hash);
	assert_string_equal(r2.name, r1.name);
	/* The status the chain's lifecycle events imply (`spawned`: starting); a
	 * chain without any is a run never known to be live. */
	if (a->events) {
		assert_string_equal(r2.status, "starting");
		assert_null(r2.reason);
	} else {
		assert_string_equal(r2.status, "failed");
		assert_string_equal(r2.reason, "recovered");
		assert_true(r2.stopped_at > 0);
	}
	if (a->name) {
		assert_string_equal(r2.manifest_ref, "/m.toml");
		assert_int_equal(r2.created_at, 1700000000000);
		assert_int_equal(r2.started_at, 1700000000000);
	}
	assert_int_equal(db_events_max_seq(d2, a->id), (uint64_t)a->events);
	for (int s = 1; s <= a->events; s++) {
		int64_t t1, t2;
		uint64_t o1, o2;
		assert_int_equal(db_event_get(d1, a->id, (uint64_t)s, &t1, &o1, &e), ERR_OK);
		assert_int_equal(db_event_get(d2, a->id, (uint64_t)s, &t2, &o2, &e), ERR_OK);
		assert_int_equal(o2, o1);
		/* lifecycle events keep their own time; calls take the one before them */
		if (a->json_ts)
			assert_int_equal(t2, s == 1 ? t1 : 1000);
		else
			assert_true(t2 > 1000000000000);   /* the file's mtime, in ms */
	}
	db_run_release(&r1);
	db_run_release(&r2);
}

static void remove_db(const char *path)
{
	char *wal = tu_fmt("%s-wal", path), *shm = tu_fmt("%s-shm", path);
	unlink(path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
}

/* Keeps the fixture's index open under a new name (copy; returned) and gives
 * the fixture an empty one, to rebuild from scratch. */
static struct db *index_aside(struct fixture *f, const char *copy)
{
	struct err e = {0};
	db_close(f->d);
	f->d = NULL;
	assert_int_equal(rename(f->path, copy), 0);
	remove_db(f->path);
	struct db *orig = NULL;
	assert_int_equal(db_open(copy, &orig, &e), ERR_OK);
	assert_int_equal(db_open(f->path, &f->d, &e), ERR_OK);
	return orig;
}

static void test_rebuild(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct actor_spec actors[4] = {{.name = "alpha", .events = 1200, .json_ts = 1},
				       {.name = "beta", .events = 5, .json_ts = 0},
				       {.name = NULL, .events = 1, .json_ts = 1},
				       {.name = NULL, .events = 0}};
	char *chains = tu_fmt("%s/chains", f->dir);
	char *copy = tu_fmt("%s/copy.db", f->dir);
	mkdir(chains, 0755);
	for (int i = 0; i < 4; i++) {
		make_id(10 + i, actors[i].id);
		write_actor(chains, &actors[i], f->d);
	}
	/* A stray file that is not a chain is ignored. */
	char *stray = tu_fmt("%s/notes.txt", chains);
	tu_write_file(stray, "x", 1);
	struct db *orig = index_aside(f, copy);
	unsigned runs = 0;
	uint64_t events = 0;
	assert_int_equal(db_rebuild_from_chains(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 3);
	assert_int_equal(events, 1206);
	for (int i = 0; i < 3; i++)
		compare_actor(orig, f->d, &actors[i]);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, actors[2].id, &r, &e), ERR_OK);
	assert_string_equal(r.name, actors[2].id);   /* no meta file: the id */
	db_run_release(&r);
	/* An empty chain without meta file is not a run (it looks like a spare) */
	assert_int_equal(db_run_get(f->d, actors[3].id, &r, &e), ERR_NOT_FOUND);
	/* Idempotent; a known run is left as it is (the supervisor catches it up). */
	assert_int_equal(db_run_set_status(f->d, actors[0].id, "running", NULL, 0, &e), ERR_OK);
	assert_int_equal(db_rebuild_from_chains(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 0);
	assert_int_equal(events, 0);
	assert_int_equal(db_run_get(f->d, actors[0].id, &r, &e), ERR_OK);
	assert_string_equal(r.status, "running");
	db_run_release(&r);
	assert_int_equal(db_rebuild_from_chains(f->d, "/nonexistent-chains", &runs, &events, &e),
			 ERR_NOT_FOUND);
	db_close(orig);
	free(stray);
	free(copy);
	free(chains);
}

/* One chain indexed by itself (a cluster adoption): that run and its events,
 * none of the other chain files beside it; again, nothing (known). */
static void test_rebuild_one_chain(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct actor_spec actors[2] = {{.name = "one", .events = 7, .json_ts = 1},
				       {.name = "other", .events = 3, .json_ts = 1}};
	char *chains = tu_fmt("%s/chains", f->dir);
	mkdir(chains, 0755);
	for (int i = 0; i < 2; i++) {
		make_id(40 + i, actors[i].id);
		write_actor(chains, &actors[i], f->d);
	}
	char *copy = tu_fmt("%s/copy.db", f->dir);
	struct db *orig = index_aside(f, copy);
	uint64_t events = 0;
	assert_int_equal(db_rebuild_chain(f->d, chains, actors[0].id, &events, &e), ERR_OK);
	assert_int_equal(events, 7);
	compare_actor(orig, f->d, &actors[0]);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, actors[1].id, &r, &e), ERR_NOT_FOUND);
	assert_int_equal(db_rebuild_chain(f->d, chains, actors[0].id, &events, &e), ERR_OK);
	assert_int_equal(events, 0);
	db_close(orig);
	free(copy);
	free(chains);
}

static void test_rebuild_leaves_known_runs(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct actor_spec a = {.name = "gamma", .events = 4, .json_ts = 1};
	char *chains = tu_fmt("%s/chains", f->dir);
	mkdir(chains, 0755);
	make_id(20, a.id);
	write_actor(chains, &a, f->d);
	/* The index claims more than the chain holds: never shrunk to match (what was
	 * acknowledged stays known, so the supervisor can report the loss). */
	struct db_event_row extra = {.seq = 9, .offset = 1, .timestamp = 1, .event_type = "x"};
	assert_int_equal(db_events_index(f->d, a.id, &extra, 1, &e), ERR_OK);
	unsigned runs;
	uint64_t events;
	assert_int_equal(db_rebuild_from_chains(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 0);
	assert_int_equal(db_events_max_seq(f->d, a.id), 9);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, a.id, &r, &e), ERR_OK);
	assert_int_equal(r.head_seq, 4);
	db_run_release(&r);
	free(chains);
}

/* The chain alone rebuilds status, reason, package, parent and deletion. */
static void test_rebuild_lifecycle_from_chain(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char *chains = tu_fmt("%s/chains", f->dir);
	mkdir(chains, 0755);
	const char *ids[2] = {"00000000-0000-4000-8000-000000000031",
			      "00000000-0000-4000-8000-000000000032"};
	for (int k = 0; k < 2; k++) {
		struct chain *c = NULL;
		assert_int_equal(chain_open(chains, ids[k], &c, NULL, &e), ERR_OK);
		const char *ev[][2] = {
			{"spawned", "{\"timestamp\":5000,\"created_at\":4000,\"package\":{\"reference\":\"/p/x.wasm\","
				    "\"sha256\":\"abababababababababababababababababababababababababababababababab\"},\"parent_id\":\"00000000-0000-4000-8000-"
				    "000000000099\",\"manifest\":{\"name\":\"x\"}}"},
			{"wasm", "{\"function\":\"init\"}"},
			{"started", "{\"timestamp\":6000}"},
			{"failed", "{\"timestamp\":7000,\"reason\":\"trap\",\"detail\":\"boom\"}"},
			{"deleted", "{\"timestamp\":8000,\"reason\":\"delete_requested\"}"},
		};
		int n = k == 0 ? 4 : 5;
		for (int i = 0; i < n; i++)
			assert_int_equal(chain_append(c, ev[i][0], ev[i][1], strlen(ev[i][1]), NULL,
						      &e), ERR_OK);
		chain_close(c);
	}
	unsigned runs;
	uint64_t events;
	uint64_t life0 = db_lifecycle_head(f->d);
	assert_int_equal(db_rebuild_from_chains(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 2);
	assert_int_equal(events, 9);
	struct db_run r;
	assert_int_equal(db_run_get(f->d, ids[0], &r, &e), ERR_OK);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.reason, "trap: boom");
	assert_string_equal(r.package_ref, "/p/x.wasm");
	assert_string_equal(r.package_sha256, "abababababababababababababababababababababababababababababababab");
	assert_string_equal(r.parent_id, "00000000-0000-4000-8000-000000000099");
	assert_string_equal(r.manifest_json, "{\"name\":\"x\"}");
	assert_int_equal(r.created_at, 4000);   /* the spawn's, not the event's time */
	assert_int_equal(r.started_at, 6000);
	assert_int_equal(r.stopped_at, 7000);
	db_run_release(&r);
	assert_int_equal(db_run_get(f->d, ids[1], &r, &e), ERR_OK);
	assert_string_equal(r.status, "deleted");
	db_run_release(&r);
	/* the lifecycle history comes back too: 4 + 5 status events less the calls */
	assert_int_equal(db_lifecycle_head(f->d) - life0, 7);
	free(chains);
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Spare chain files (supervisor/spares.c): an empty <id>.chain with no run row is
 * never indexed; the start-up sweep removes those the spares table does not hold
 * (and an older version's .spare-* files), never a spare, a run or an empty chain
 * with a meta file (an older version's spawn). */
static void test_rebuild_spares(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char *chains = tu_fmt("%s/chains", f->dir);
	mkdir(chains, 0755);
	char spare[37], stray[37], old_meta[37], known_empty[37];
	make_id(40, spare);
	make_id(41, stray);
	make_id(42, old_meta);
	make_id(43, known_empty);
	struct actor_spec real = {.name = "real", .events = 3, .json_ts = 1};
	make_id(44, real.id);
	write_actor(chains, &real, f->d);
	/* a spawn that took a spare, was answered (run row) and died before its first event */
	insert_run(f->d, known_empty, "k", "starting", NULL, 1000);
	char *p_spare = tu_fmt("%s/%s.chain", chains, spare);
	char *p_stray = tu_fmt("%s/%s.chain", chains, stray);
	char *p_meta = tu_fmt("%s/%s.chain", chains, old_meta);
	char *p_known = tu_fmt("%s/%s.chain", chains, known_empty);
	char *p_old = tu_fmt("%s/.spare-123-4", chains);
	assert_int_equal(tu_write_file(p_spare, "", 0), 0);
	assert_int_equal(tu_write_file(p_stray, "", 0), 0);
	assert_int_equal(tu_write_file(p_meta, "", 0), 0);
	assert_int_equal(tu_write_file(p_known, "", 0), 0);
	assert_int_equal(tu_write_file(p_old, "", 0), 0);
	assert_int_equal(chain_write_meta(chains, old_meta, "old", "/m.toml", 1700000000, &e),
			 ERR_OK);
	const char ids[1][37] = {"00000000-0000-4000-8000-000000000040"};
	assert_string_equal(ids[0], spare);
	assert_int_equal(db_spare_put(f->d, ids, 1, &e), ERR_OK);

	unsigned runs = 0;
	uint64_t events = 0;
	/* the plain rebuild (a running server's) indexes none of them and removes nothing */
	assert_int_equal(db_rebuild_from_chains(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 1);        /* the empty chain with a meta file */
	struct db_run r;
	assert_int_equal(db_run_get(f->d, spare, &r, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_get(f->d, stray, &r, &e), ERR_NOT_FOUND);
	assert_int_equal(db_run_get(f->d, old_meta, &r, &e), ERR_OK);
	assert_string_equal(r.status, "failed");
	db_run_release(&r);
	assert_true(file_exists(p_spare) && file_exists(p_stray) && file_exists(p_old));
	/* the sweep (start-up) */
	assert_int_equal(db_rebuild_from_chains_sweep(f->d, chains, &runs, &events, &e), ERR_OK);
	assert_int_equal(runs, 0);
	assert_true(file_exists(p_spare));
	assert_false(file_exists(p_stray));
	assert_false(file_exists(p_old));
	assert_true(file_exists(p_meta));
	assert_true(file_exists(p_known));
	assert_int_equal(db_run_get(f->d, known_empty, &r, &e), ERR_OK);
	db_run_release(&r);
	assert_int_equal(db_run_get(f->d, spare, &r, &e), ERR_NOT_FOUND);
	/* no other run appeared: real (running), known_empty (starting), old_meta (failed) */
	const char *statuses[] = {"running", "starting", "failed", "stopped", "killed"};
	uint64_t total = 0;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		uint64_t count = 0;
		assert_int_equal(db_run_count(f->d, statuses[i], &count, &e), ERR_OK);
		total += count;
	}
	assert_int_equal(total, 3);
	free(p_spare);
	free(p_stray);
	free(p_meta);
	free(p_known);
	free(p_old);
	free(chains);
}

/* The spares table: put/drop are idempotent; list drops the ids that became runs. */
static void test_spare_rows(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char ids[3][37];
	for (int i = 0; i < 3; i++)
		make_id(50 + i, ids[i]);
	assert_int_equal(db_spare_put(f->d, (const char (*)[37])ids, 3, &e), ERR_OK);
	assert_int_equal(db_spare_put(f->d, (const char (*)[37])ids, 1, &e), ERR_OK);
	insert_run(f->d, ids[1], "took-it", "running", NULL, 1000);
	char (*got)[37] = NULL;
	size_t n = 0;
	assert_int_equal(db_spare_list(f->d, &got, &n, &e), ERR_OK);
	assert_int_equal(n, 2);
	int seen0 = 0, seen2 = 0;
	for (size_t i = 0; i < n; i++) {
		seen0 += strcmp(got[i], ids[0]) == 0;
		seen2 += strcmp(got[i], ids[2]) == 0;
	}
	assert_int_equal(seen0 + seen2, 2);
	free(got);
	assert_int_equal(db_spare_drop(f->d, (const char (*)[37])ids, 3, &e), ERR_OK);
	assert_int_equal(db_spare_list(f->d, &got, &n, &e), ERR_OK);
	assert_int_equal(n, 0);
	assert_null(got);
}

struct life_seen {
	uint64_t ids[300];
	char types[300][16];
	int n, stop_at;
};

static int life_cb(void *user, const struct db_lifecycle_row *r)
{
	struct life_seen *l = user;
	l->ids[l->n] = r->id;
	snprintf(l->types[l->n], 16, "%s", r->event_type);
	l->n++;
	return l->stop_at && l->n == l->stop_at;
}

static void test_lifecycle_log(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	char a[37], b[37];
	uint64_t id = 0, prev = 0;
	make_id(1, a);
	make_id(2, b);
	assert_int_equal(db_lifecycle_head(f->d), 0);
	for (int i = 0; i < 120; i++) {
		assert_int_equal(db_lifecycle_append(f->d, i % 2 ? a : b, (uint64_t)i / 2 + 1,
						     i % 3 ? "started" : "spawned", "running",
						     1000 + i, "{\"x\":1}", &id, &e), ERR_OK);
		assert_true(id > prev);
		prev = id;
	}
	assert_int_equal(db_lifecycle_head(f->d), id);
	static struct life_seen l;
	memset(&l, 0, sizeof(l));
	assert_int_equal(db_lifecycle_after(f->d, 0, 50, life_cb, &l, &e), ERR_OK);
	assert_int_equal(l.n, 50);
	assert_int_equal(db_lifecycle_after(f->d, l.ids[49], 0, life_cb, &l, &e), ERR_OK);
	assert_int_equal(l.n, 100);   /* default page of 50 */
	assert_int_equal(db_lifecycle_after(f->d, l.ids[99], 1000, life_cb, &l, &e), ERR_OK);
	assert_int_equal(l.n, 120);
	for (int i = 1; i < 120; i++)
		assert_true(l.ids[i] > l.ids[i - 1]);
	assert_string_equal(l.types[0], "spawned");
	assert_string_equal(l.types[1], "started");
	memset(&l, 0, sizeof(l));
	l.stop_at = 3;
	assert_int_equal(db_lifecycle_after(f->d, 0, 10, life_cb, &l, &e), ERR_OK);
	assert_int_equal(l.n, 3);
	memset(&l, 0, sizeof(l));
	assert_int_equal(db_lifecycle_after(f->d, id, 10, life_cb, &l, &e), ERR_OK);
	assert_int_equal(l.n, 0);
	/* NULL status and data are fine; empty type is not. */
	assert_int_equal(db_lifecycle_append(f->d, a, 0, "deleted", NULL, 1, NULL, NULL, &e), ERR_OK);
	assert_int_equal(db_lifecycle_append(f->d, a, 0, "", NULL, 1, NULL, NULL, &e), ERR_INVALID);
	/* Ids survive a reopen and are never reused. */
	db_close(f->d);
	assert_int_equal(db_open(f->path, &f->d, &e), ERR_OK);
	assert_int_equal(db_lifecycle_head(f->d), id + 1);
}

static void test_deleted_status(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	struct db_run r;
	char a[37], b[37];
	make_id(1, a);
	make_id(2, b);
	insert_run(f->d, a, "n", "running", NULL, 1);
	insert_run(f->d, b, "n", "stopped", NULL, 2);
	assert_int_equal(db_run_set_status(f->d, b, "stopped", NULL, 50, &e), ERR_OK);
	assert_int_equal(db_run_set_status(f->d, a, "deleted", NULL, 70, &e), ERR_OK);
	assert_int_equal(db_run_set_status(f->d, b, "deleted", NULL, 90, &e), ERR_OK);
	assert_int_equal(db_run_get(f->d, a, &r, &e), ERR_OK);
	assert_string_equal(r.status, "deleted");
	assert_int_equal(r.stopped_at, 70);
	db_run_release(&r);
	assert_int_equal(db_run_get(f->d, b, &r, &e), ERR_OK);
	assert_int_equal(r.stopped_at, 50);   /* kept */
	db_run_release(&r);
	unsigned n = 9;
	assert_int_equal(db_runs_fail_live(f->d, "x", 1, &n, &e), ERR_OK);
	assert_int_equal(n, 0);
}

#define DB_THREADS 4

struct db_worker {
	struct db *d;
	int id, failed;
};

static void *db_worker_main(void *arg)
{
	struct db_worker *w = arg;
	for (int i = 0; i < 25; i++) {
		struct db_run r = {0};
		make_id(w->id * 1000 + i, r.id);
		r.name = "w";
		r.status = "running";
		struct db_event_row row = {.seq = 1, .offset = 0, .timestamp = 1, .event_type = "x"};
		if (db_run_insert(w->d, &r, NULL) || db_events_index(w->d, r.id, &row, 1, NULL) ||
		    db_run_set_head(w->d, r.id, 1, NULL, NULL))
			w->failed = 1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t th[DB_THREADS];
	struct db_worker ws[DB_THREADS];
	for (int i = 0; i < DB_THREADS; i++) {
		ws[i] = (struct db_worker){.d = f->d, .id = i + 1};
		assert_int_equal(pthread_create(&th[i], NULL, db_worker_main, &ws[i]), 0);
	}
	for (int i = 0; i < DB_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_false(ws[i].failed);
	}
	static struct collect c;
	memset(&c, 0, sizeof(c));
	list_all(f->d, (struct db_run_filter){.limit = 30}, &c);
	assert_int_equal(c.n, DB_THREADS * 25);
}

/* The WAL file's size in pages (frames of 24 + 4,096 bytes after a 32-byte header). */
static long wal_frames(const struct fixture *f)
{
	char *wal = tu_fmt("%s-wal", f->path);
	struct stat st;
	long n = stat(wal, &st) == 0 ? (long)((st.st_size - 32) / (24 + 4096)) : 0;
	free(wal);
	return n;
}

/* The checkpoint thread copies the log into the database and the log starts
 * again from its beginning, again and again: the WAL file never grows past
 * about one threshold. (A checkpoint connection that had never read the
 * database saw no log and copied nothing; without the thread, SQLite's own
 * checkpoint would come only at four thresholds.) The writer waits for the
 * thread once the log has reached the threshold, so what is checked does not
 * depend on how fast this machine writes. */
static void test_checkpoints(void **state)
{
	struct fixture *f = *state;
	char id[37];
	uint64_t before = db_checkpoints(f->d);
	int i = 0;
	for (uint64_t want = before + 1; want <= before + 5; want++) {
		while (db_wal_pages(f->d) < DB_CHECKPOINT_PAGES) {
			make_id(++i, id);
			insert_run(f->d, id, "ckpt", "running", NULL, 1700000000000 + i);
			assert_true(i < 1000000);
		}
		for (int w = 0; w < 2000 && db_checkpoints(f->d) < want; w++)
			usleep(10 * 1000);
		assert_true(db_checkpoints(f->d) >= want);
		/* the next commit writes at the log's beginning */
		make_id(++i, id);
		insert_run(f->d, id, "ckpt", "running", NULL, 1700000000000 + i);
		assert_true(db_wal_pages(f->d) < DB_CHECKPOINT_PAGES / 4);
	}
	assert_true(wal_frames(f) < 2 * DB_CHECKPOINT_PAGES);
	/* and everything written is there */
	uint64_t n = 0;
	struct err e = {0};
	assert_int_equal(db_run_count(f->d, "running", &n, &e), ERR_OK);
	assert_int_equal(n, (uint64_t)i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_cursor_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_uses_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_one_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_leaves_known_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_spares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_lifecycle_from_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
