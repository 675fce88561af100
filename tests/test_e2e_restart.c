/* test_e2e_restart.c - durability across server restarts: a clean stop, a crash
 * (SIGKILL), a torn chain tail, a bit flip inside a chain, a lost database, and
 * the bearer token. Each restart uses the same THEATER_HOME. */
#include "tests/support/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"
#include "tests/support/sse_client.h"

static struct server_proc SP;

static char *spawn(const char *name)
{
	char *body = tu_fmt("{\"manifest\":{\"name\":\"%s\",\"package\":\"m.wasm\"}}", name);
	json_t *j = server_call_json(&SP, "POST", "/actors?wait=running", body, 201);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(body);
	return id;
}

static json_t *actor(const char *id)
{
	char *p = tu_fmt("/actors/%s", id);
	json_t *j = server_call_json(&SP, "GET", p, NULL, 200);
	free(p);
	return j;
}

static json_t *verify(const char *id)
{
	char *p = tu_fmt("/actors/%s/chain/verify", id);
	json_t *j = server_call_json(&SP, "GET", p, NULL, 200);
	free(p);
	return j;
}

static const char *str(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static void restart(void)
{
	assert_int_equal(server_start(&SP, NULL, NULL, NULL), 0);
}

static void test_restart_keeps_everything(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	restart();
	server_put_hello_package(&SP, "m.wasm");
	char *a = spawn("a"), *b = spawn("b");
	char *stop = tu_fmt("/actors/%s/stop", a);
	json_decref(server_call_json(&SP, "POST", stop, NULL, 204));
	assert_int_equal(server_stop(&SP), 0);     /* SIGTERM: clean exit */
	restart();
	json_t *ja = actor(a), *jb = actor(b);
	assert_string_equal(str(ja, "status"), "stopped");
	/* a clean stop suspends live actors; the next start brings them back */
	assert_string_equal(str(jb, "status"), "running");
	json_t *v = verify(b);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	char *pb = tu_fmt("/actors/%s/chain", b);
	json_t *pg = server_call_json(&SP, "GET", pb, NULL, 200);
	json_t *items = json_object_get(pg, "items");
	size_t n = json_array_size(items);
	assert_true(n >= 2);
	/* idle at the stop: its chain is left as it was (the index marks it idle) and
	 * it stays lazy until its first mail recovers it */
	assert_string_equal(str(json_array_get(items, n - 1), "event_type"), "started");
	json_decref(pg);
	char *msg = tu_fmt("/actors/%s/messages", b);
	json_decref(server_call_json(&SP, "POST", msg, "{\"x\":1}", 202));
	free(msg);
	/* the accepted message is durable; the chain lists it once it is indexed */
	for (int i = 0; i < 600; i++) {
		pg = server_call_json(&SP, "GET", pb, NULL, 200);
		items = json_object_get(pg, "items");
		if (json_array_size(items) >= n + 2)
			break;
		json_decref(pg);
		pg = NULL;
		usleep(100000);
	}
	assert_non_null(pg);
	assert_string_equal(str(json_array_get(items, n), "event_type"), "recovered");
	assert_string_equal(str(json_array_get(items, n + 1), "event_type"),
			    "message-server/received");
	json_t *rd = json_object_get(json_array_get(items, n), "data");
	assert_string_equal(str(rd, "reason"), "shutdown");
	assert_int_equal(json_integer_value(json_object_get(rd, "resumed_from")), (json_int_t)n);
	json_decref(pg);
	free(pb);
	json_decref(ja);
	json_decref(jb);
	/* a crash: the live run comes back running, its chain continuing */
	char *c = spawn("c");
	server_crash(&SP);
	restart();
	json_t *jc = actor(c);
	assert_string_equal(str(jc, "status"), "running");
	json_decref(jc);
	char *page = tu_fmt("/actors/%s/chain", c);
	json_t *last = NULL;
	for (int i = 0; i < 600; i++) {     /* recovered in the background after start */
		pg = server_call_json(&SP, "GET", page, NULL, 200);
		items = json_object_get(pg, "items");
		last = json_array_get(items, json_array_size(items) - 1);
		if (strcmp(str(last, "event_type"), "recovered") == 0)
			break;
		json_decref(pg);
		usleep(100000);
	}
	assert_string_equal(str(last, "event_type"), "recovered");
	assert_string_equal(str(json_object_get(last, "data"), "reason"), "crash");
	json_decref(pg);
	v = verify(c);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	/* --recover none keeps the old behaviour: live runs end failed */
	server_stop(&SP);
	const char *none[] = {"--recover", "none", NULL};
	assert_int_equal(server_start(&SP, NULL, none, NULL), 0);
	jc = actor(c);
	assert_string_equal(str(jc, "status"), "failed");
	assert_non_null(strstr(str(jc, "reason"), "server_restart"));
	json_decref(jc);
	server_stop(&SP);
	free(page);
	free(stop);
	free(a);
	free(b);
	free(c);
}

static void append_bytes(const char *path, const char *bytes)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
	close(fd);
}

/* The status of METHOD path, and the problem's code when it is one (into code). */
static long call_code(const char *method, const char *path, char *code, size_t size)
{
	char *u = tu_fmt("%s%s", SP.base, path);
	struct http_result r = {0};
	assert_int_equal(http_do(method, u, NULL, 0, NULL, &r), 0);
	json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
	snprintf(code, size, "%s", str(j, "code") ? str(j, "code") : "");
	json_decref(j);
	long st = r.status;
	http_result_release(&r);
	free(u);
	return st;
}

/* Damage found in the middle of a chain after a start that did not look there
 * (the default trusts the index's head): every route that reaches it answers
 * 409 chain_damaged (pages and single events answered 500 `corrupt`, a restart
 * 500, and the event stream ended without a word, so EventSource reconnected
 * for ever to an empty 200 stream); the stream says why before it ends, and
 * its reconnect gets the problem, which stops EventSource. */
static void test_damaged_chain_answers(void **state)
{
	(void)state;
	restart();
	char *id = spawn("dmg");
	char *stop = tu_fmt("/actors/%s/stop", id);
	json_decref(server_call_json(&SP, "POST", stop, NULL, 204));
	server_stop(&SP);
	char *fp = tu_fmt("%s/chains/%s.chain", SP.home, id);
	size_t len;
	char *bytes = tu_read_file(fp, &len);
	char *second = strstr(bytes + 1, "EVENT ");
	assert_non_null(second);
	char *spot = strstr(second, "\"timestamp\"");
	assert_non_null(spot);
	spot[1] ^= 0x01;                           /* in an event after the first */
	assert_int_equal(tu_write_file(fp, bytes, len), 0);
	restart();
	char *u = tu_fmt("%s/actors/%s/chain", SP.base, id);
	struct sse_result r;
	sse_collect(u, NULL, 0, 20, &r);
	assert_int_equal(r.status, 200);
	assert_true(r.ended);
	size_t ids = 0, errors = 0;
	json_int_t bad = 0;
	for (size_t i = 0; i < r.n; i++) {
		ids += r.frames[i].id != NULL;
		if (strcmp(r.frames[i].event, "problem") == 0) {
			errors++;
			json_t *d = json_loads(r.frames[i].data, 0, NULL);
			assert_string_equal(str(d, "code"), "chain_damaged");
			bad = json_integer_value(json_object_get(d, "seq"));
			json_decref(d);
		}
	}
	assert_int_equal(errors, 1);
	assert_true(bad >= 2 && bad <= 4);         /* in an event after the first */
	assert_int_equal(ids, (size_t)bad - 1);    /* the events before it came */
	sse_result_release(&r);
	json_t *v = verify(id);
	assert_int_equal(json_integer_value(json_object_get(v, "first_bad_seq")), bad);
	json_decref(v);
	char last[24];
	snprintf(last, sizeof(last), "%lld", (long long)bad - 1);
	sse_collect(u, last, 0, 20, &r);           /* EventSource's reconnect */
	assert_int_equal(r.status, 409);
	sse_result_release(&r);
	char code[64];
	char *p = tu_fmt("/actors/%s/chain", id);
	assert_int_equal(call_code("GET", p, code, sizeof(code)), 409);
	assert_string_equal(code, "chain_damaged");
	free(p);
	p = tu_fmt("/actors/%s/chain/events/%lld", id, (long long)bad);
	assert_int_equal(call_code("GET", p, code, sizeof(code)), 409);
	assert_string_equal(code, "chain_damaged");
	free(p);
	p = tu_fmt("/actors/%s/chain/events/1", id);
	assert_int_equal(call_code("GET", p, code, sizeof(code)), 200);
	free(p);
	p = tu_fmt("/actors/%s/restart", id);
	assert_int_equal(call_code("POST", p, code, sizeof(code)), 409);
	assert_string_equal(code, "chain_damaged");
	free(p);
	json_decref(server_call_json(&SP, "GET", "/health", NULL, 200));
	server_stop(&SP);
	free(u);
	free(bytes);
	free(fp);
	free(stop);
	free(id);
}

static void test_torn_and_flipped_chains(void **state)
{
	(void)state;
	restart();
	char *torn = spawn("torn"), *flip = spawn("flip"), *cut = spawn("cut"), *gone = spawn("gone");
	server_stop(&SP);
	/* a cut inside an earlier record (acknowledged events follow it): damage */
	char *cp = tu_fmt("%s/chains/%s.chain", SP.home, cut);
	size_t clen;
	char *cbytes = tu_read_file(cp, &clen);
	char *second = strstr(cbytes + 1, "EVENT ");
	assert_non_null(second);
	size_t cut_at = (size_t)(second - cbytes) + 40;
	assert_int_equal(truncate(cp, (off_t)cut_at), 0);
	/* a chain file that is gone: damage, not an empty chain */
	char *gp = tu_fmt("%s/chains/%s.chain", SP.home, gone);
	assert_int_equal(unlink(gp), 0);
	/* a torn last record: truncated at the boundary, the chain still verifies */
	char *tp = tu_fmt("%s/chains/%s.chain", SP.home, torn);
	append_bytes(tp, "EVENT 12ab");
	/* a bit flip inside the first record's data: reported, never repaired */
	char *fp = tu_fmt("%s/chains/%s.chain", SP.home, flip);
	size_t len;
	char *bytes = tu_read_file(fp, &len);
	char *spot = strstr(bytes, "\"timestamp\"");
	assert_non_null(spot);
	spot[1] ^= 0x01;
	assert_int_equal(tu_write_file(fp, bytes, len), 0);
	/* --verify-chains full: every chain is verified whole at start, so the flip is
	 * found before anything is appended (the default trusts the index's head). */
	const char *full[] = {"--verify-chains", "full", NULL};
	assert_int_equal(server_start(&SP, NULL, full, NULL), 0);
	json_t *v = verify(torn);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	v = verify(flip);
	assert_false(json_is_true(json_object_get(v, "valid")));
	assert_int_equal(json_integer_value(json_object_get(v, "first_bad_seq")), 1);
	json_decref(v);
	size_t after;
	char *again = tu_read_file(fp, &after);
	assert_int_equal(after, len);                      /* not repaired */
	assert_memory_equal(again, bytes, len);
	v = verify(cut);
	assert_false(json_is_true(json_object_get(v, "valid")));
	assert_int_equal(json_integer_value(json_object_get(v, "first_bad_seq")), 2);
	json_decref(v);
	struct stat cst;
	assert_int_equal(stat(cp, &cst), 0);
	assert_int_equal((size_t)cst.st_size, cut_at);          /* left untouched */
	json_t *jcut = actor(cut);
	assert_true(json_is_true(json_object_get(json_object_get(jcut, "chain"), "damaged")));
	json_decref(jcut);
	v = verify(gone);
	assert_false(json_is_true(json_object_get(v, "valid")));
	assert_int_equal(json_integer_value(json_object_get(v, "first_bad_seq")), 1);
	json_decref(v);
	assert_int_not_equal(access(gp, F_OK), 0);             /* not created again */
	json_decref(server_call_json(&SP, "GET", "/health", NULL, 200));   /* and the server is up */
	json_t *list = server_call_json(&SP, "GET", "/actors?limit=500", NULL, 200);
	assert_true(json_array_size(json_object_get(list, "items")) >= 5);
	json_decref(list);
	char *log = tu_read_file(SP.log_path, NULL);
	assert_non_null(strstr(log, "torn"));
	free(log);
	server_stop(&SP);
	/* The default start verifies only what follows the index's head (issue 16):
	 * the flip before it is not seen at start, the run comes back, and verify
	 * still finds it; nothing before it is ever rewritten. */
	restart();
	v = verify(flip);
	assert_false(json_is_true(json_object_get(v, "valid")));
	assert_int_equal(json_integer_value(json_object_get(v, "first_bad_seq")), 1);
	json_decref(v);
	free(again);
	again = tu_read_file(fp, &after);
	assert_true(after >= len);
	assert_memory_equal(again, bytes, len);
	server_stop(&SP);
	free(again);
	free(bytes);
	free(tp);
	free(fp);
	free(cp);
	free(gp);
	free(cbytes);
	free(torn);
	free(flip);
	free(cut);
	free(gone);
}

static void test_lost_database(void **state)
{
	(void)state;
	restart();
	char *id = spawn("survives-db-loss");
	char *ended = spawn("ended"), *del = spawn("deleted");
	char *sp = tu_fmt("/actors/%s/stop", ended);
	json_decref(server_call_json(&SP, "POST", sp, NULL, 204));
	char *dp = tu_fmt("/actors/%s/stop", del);
	json_decref(server_call_json(&SP, "POST", dp, NULL, 204));
	char *dd = tu_fmt("/actors/%s", del);
	json_decref(server_call_json(&SP, "DELETE", dd, NULL, 204));
	json_t *before = actor(ended);
	server_stop(&SP);
	const char *files[] = {"theater.db", "theater.db-wal", "theater.db-shm"};
	for (int i = 0; i < 3; i++) {
		char *p = tu_fmt("%s/%s", SP.home, files[i]);
		unlink(p);
		free(p);
	}
	/* the spare chain files the lost index knew: empty, of no run */
	char *chains = tu_fmt("%s/chains", SP.home);
	DIR *dir = opendir(chains);
	assert_non_null(dir);
	size_t empty = 0;
	for (struct dirent *de; (de = readdir(dir));) {
		struct stat st;
		char *f = tu_fmt("%s/%s", chains, de->d_name);
		empty += strstr(de->d_name, ".chain") && stat(f, &st) == 0 && st.st_size == 0;
		free(f);
	}
	closedir(dir);
	free(chains);
	restart();
	/* removed in one line, not one line each (1,024 with the default pool) */
	char *log = tu_read_file(SP.log_path, NULL);
	assert_non_null(log);
	size_t lines = 0;
	for (const char *q = log; (q = strstr(q, "empty chain file")); q++)
		lines++;
	assert_int_equal(lines, empty ? 1 : 0);
	printf("# %zu empty chain files, %zu log lines about them\n", empty, lines);
	free(log);
	json_t *j = actor(id);
	assert_string_equal(str(j, "name"), "survives-db-loss");
	assert_string_equal(str(j, "status"), "running");     /* and recovered */
	json_decref(j);
	/* the chain alone holds status, reason, digest and deletion */
	j = actor(ended);
	assert_string_equal(str(j, "status"), "stopped");
	assert_string_equal(str(j, "reason"), str(before, "reason"));
	assert_string_equal(str(j, "package_sha256"), str(before, "package_sha256"));
	assert_string_equal(str(j, "package_ref"), str(before, "package_ref"));
	/* when it was created: the spawn's own time (the `spawned` event's data), not
	 * the event's, which comes after the package was resolved */
	assert_string_equal(str(j, "created_at"), str(before, "created_at"));
	assert_string_equal(str(j, "name"), str(before, "name"));
	json_decref(j);
	json_decref(before);
	json_decref(server_call_json(&SP, "GET", dd, NULL, 404));
	free(sp);
	free(dp);
	free(dd);
	free(ended);
	free(del);
	json_t *v = verify(id);
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	server_stop(&SP);
	free(id);
}

static void test_token(void **state)
{
	(void)state;
	const char *token = "0123456789abcdef-secret";
	assert_int_equal(server_start(&SP, NULL, NULL, token), 0);
	char *u = tu_fmt("%s/actors", SP.base);
	struct http_result r;
	assert_int_equal(http_do("GET", u, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.body, "unauthorized"));
	http_result_release(&r);
	const char *wrong[] = {"Authorization: Bearer nope", NULL};
	assert_int_equal(http_do("GET", u, NULL, 0, wrong, &r), 0);
	assert_int_equal(r.status, 401);
	http_result_release(&r);
	char *auth = tu_fmt("Authorization: Bearer %s", token);
	const char *right[] = {auth, NULL};
	assert_int_equal(http_do("GET", u, NULL, 0, right, &r), 0);
	assert_int_equal(r.status, 200);
	http_result_release(&r);
	char *h = tu_fmt("%s/health", SP.base);
	assert_int_equal(http_do("GET", h, NULL, 0, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	http_result_release(&r);
	server_stop(&SP);
	free(h);
	free(auth);
	free(u);
}

static void test_public_listen_needs_token(void **state)
{
	(void)state;
	char *cmd = tu_fmt("THEATER_HOME='%s' THEATER_TOKEN= '%s/theater-server' --listen "
			   "0.0.0.0:0 2>'%s/refuse.log'", SP.home, tu_binary_dir(), SP.home);
	int rc = system(cmd);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 2);
	char *p = tu_fmt("%s/refuse.log", SP.home);
	char *log = tu_read_file(p, NULL);
	assert_non_null(strstr(log, "token"));
	free(log);
	free(p);
	free(cmd);
	server_destroy(&SP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_keeps_everything),
		cmocka_unit_test(test_torn_and_flipped_chains),
		cmocka_unit_test(test_damaged_chain_answers),
		cmocka_unit_test(test_lost_database),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_public_listen_needs_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
