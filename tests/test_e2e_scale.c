/* test_e2e_scale.c - one node with more actors than descriptors (issue 16).
 *
 *   - The server runs under a descriptor limit of 256 (set in this process and
 *     inherited) and holds 600 live actors: every spawn, message and request
 *     works, chain files open stay under the cache's cap, a flood of connections
 *     past the connection limit leaves a handful of log lines, and a restart on
 *     that home brings every actor back (issue 16: a home that reached the limit
 *     could not start again).
 *   - With no room left (--max-memory below what the server already uses), spawns
 *     are refused with 503 `resource_exhausted` and Retry-After, and the server
 *     keeps serving the actors it has.
 * No durations are asserted. */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "src/db.h"
#include "src/util/json.h"
#include "tests/support/server_proc.h"

#define FD_LIMIT 256
#define ACTORS 600
#define CHAIN_CAP (FD_LIMIT / 2 - 32)   /* src/chain_fds.c: half the limit minus a reserve */
/* Chain files a count may see open: the cache's cap, and the spare file the
 * refill thread may hold between its open and close (it makes them one at a time,
 * at nice 19: on a loaded machine it can be preempted there for a while). */
#define CHAINS_SEEN_MAX (CHAIN_CAP + 1)

static struct server_proc SP;
static const char *const EXAMPLES[] = {"counter", "supervisor", NULL};
static const char SPAWN[] = "{\"manifest_ref\":\"counter/manifest.json\"}";

static long req(const char *method, const char *path, const char *body, struct http_result *out)
{
	char *u = tu_fmt("%s%s", SP.base, path);
	struct http_result r;
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, NULL, &r), 0);
	free(u);
	long st = r.status;
	if (out)
		*out = r;
	else
		http_result_release(&r);
	return st;
}

/* POST /actors?wait=running of body: the new actor's id (malloc'd). */
static char *spawn_body(const char *body)
{
	struct http_result r;
	long st = req("POST", "/actors?wait=running&timeout=120", body, &r);
	if (st != 201)
		fail_msg("spawn answered %ld: %s", st, r.body);
	json_t *j = json_parse(r.body, r.len, 16, NULL);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	http_result_release(&r);
	return id;
}

static char *spawn_counter(void)
{
	return spawn_body(SPAWN);
}

static void send_one(const char *id, const char *msg)
{
	char *p = tu_fmt("/actors/%s/messages", id);
	struct http_result r;
	long st = req("POST", p, msg, &r);
	if (st != 202)
		fail_msg("message to %s answered %ld: %s", id, st, r.body);
	http_result_release(&r);
	free(p);
}

static long ask_count(const char *id)
{
	char *p = tu_fmt("/actors/%s/requests?timeout=120", id);
	struct http_result r;
	long st = req("POST", p, "get", &r);
	if (st != 200)
		fail_msg("request to %s answered %ld: %s", id, st, r.body);
	long n = strtol(r.body, NULL, 10);
	http_result_release(&r);
	free(p);
	return n;
}

/* Descriptors of the server process, and how many of them are chain files. */
static void server_fds(pid_t pid, unsigned *all, unsigned *chains)
{
	char *dir = tu_fmt("/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	*all = *chains = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *link = tu_fmt("%s/%s", dir, de->d_name);
		char target[4096];
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		free(link);
		(*all)++;
		if (n > 6) {
			target[n] = 0;
			*chains += strcmp(target + n - 6, ".chain") == 0;
		}
	}
	closedir(d);
	free(dir);
}

static size_t count_lines(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static unsigned running_actors(void)
{
	unsigned n = 0;
	char *cursor = NULL;
	do {
		char *p = cursor ? tu_fmt("/actors?status=running&limit=500&cursor=%s", cursor)
				 : tu_fmt("/actors?status=running&limit=500");
		struct http_result r;
		assert_int_equal(req("GET", p, NULL, &r), 200);
		json_t *j = json_parse(r.body, r.len, 64, NULL);
		n += (unsigned)json_array_size(json_object_get(j, "items"));
		free(cursor);
		const char *next = json_string_value(json_object_get(j, "next_cursor"));
		cursor = next ? strdup(next) : NULL;
		json_decref(j);
		http_result_release(&r);
		free(p);
	} while (cursor);
	return n;
}

/* Opens n connections to the server and holds them a moment: past the server's
 * connection limit, libmicrohttpd closes each extra one and says so. */
static void connection_flood(int n)
{
	int *fds = calloc((size_t)n, sizeof(int));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(SP.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	usleep(300 * 1000);
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

static void test_more_actors_than_descriptors(void **state)
{
	(void)state;
	struct rlimit rl = {FD_LIMIT, FD_LIMIT};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);   /* inherited by the server */
	memset(&SP, 0, sizeof(SP));
	const char *args[] = {"--max-conns", "1024", NULL};
	assert_int_equal(server_start(&SP, NULL, args, NULL), 0);
	server_install_examples(&SP, EXAMPLES);
	char **ids = calloc(ACTORS, sizeof(char *));
	for (int i = 0; i < ACTORS; i++)
		ids[i] = spawn_counter();
	for (int i = 0; i < ACTORS; i++)
		send_one(ids[i], "2");
	unsigned all, chains;
	server_fds(SP.pid, &all, &chains);
	print_message("%d actors: %u descriptors open, %u of them chain files\n", ACTORS, all,
		      chains);
	assert_true(all < FD_LIMIT);
	assert_true(chains <= CHAINS_SEEN_MAX);
	/* the cache itself holds no more than its cap */
	assert_true(server_metric(&SP, "theater_chain_fds_open") <= CHAIN_CAP);
	/* the index's log was copied into the database beside those writes, and
	 * started again: after 600 spawns and messages it is below two thresholds */
	assert_true(server_metric(&SP, "theater_index_checkpoints_total") >= 1);
	assert_true(server_metric(&SP, "theater_index_wal_pages") < 2 * DB_CHECKPOINT_PAGES);
	/* every actor answers, its first chain events long since evicted */
	for (int i = 0; i < ACTORS; i += 7)
		assert_int_equal(ask_count(ids[i]), 2);
	/* more connections than the limit leaves room for: a few log lines, not one each */
	connection_flood(FD_LIMIT / 2);
	assert_int_equal(req("GET", "/health", NULL, NULL), 200);
	char *log = tu_read_file(SP.log_path, NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "--max-conns 1024 lowered"));
	size_t mhd = count_lines(log, "libmicrohttpd:");
	print_message("libmicrohttpd lines in the log: %zu\n", mhd);
	assert_true(mhd <= 4);
	assert_null(strstr(log, "Too many open files"));
	free(log);
	/* the home starts again under the same limit, every actor back and working */
	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(server_start(&SP, SP.home, args, NULL), 0);
	assert_int_equal(running_actors(), ACTORS);
	for (int i = 0; i < ACTORS; i++)
		send_one(ids[i], "3");
	for (int i = 0; i < ACTORS; i += 5)
		assert_int_equal(ask_count(ids[i]), 5);
	server_fds(SP.pid, &all, &chains);
	assert_true(chains <= CHAINS_SEEN_MAX);
	/* and after a crash too */
	server_crash(&SP);
	assert_int_equal(server_start(&SP, SP.home, args, NULL), 0);
	assert_int_equal(running_actors(), ACTORS);
	assert_int_equal(ask_count(ids[ACTORS - 1]), 5);
	log = tu_read_file(SP.log_path, NULL);
	assert_null(strstr(log, "Too many open files"));
	free(log);
	server_destroy(&SP);
	for (int i = 0; i < ACTORS; i++)
		free(ids[i]);
	free(ids);
}

/* method path body answers 503 resource_exhausted (a problem, with Retry-After)
 * whose detail names what ran short. */
static void assert_refused(const char *method, const char *path, const char *body,
			   const char *what)
{
	struct http_result r;
	long st = req(method, path, body, &r);
	if (st != 503)
		fail_msg("%s %s without room answered %ld: %s", method, path, st, r.body);
	json_t *j = json_parse(r.body, r.len, 16, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "code")), "resource_exhausted");
	const char *detail = json_string_value(json_object_get(j, "detail"));
	if (!detail || !strstr(detail, what))
		fail_msg("%s %s: the refusal does not name '%s': %s", method, path, what, r.body);
	json_decref(j);
	char *ct = http_header(&r, "Content-Type");
	assert_non_null(ct);
	assert_non_null(strstr(ct, "application/problem+json"));
	free(ct);
	char *retry = http_header(&r, "Retry-After");
	assert_non_null(retry);
	assert_true(atoi(retry) > 0);
	free(retry);
	http_result_release(&r);
}

/* A new home with one counter that took `first` (may be NULL), the server stopped
 * again; returns the counter's id. */
static char *home_with_counter(const char *first)
{
	memset(&SP, 0, sizeof(SP));
	assert_int_equal(server_start(&SP, NULL, NULL, NULL), 0);
	server_install_examples(&SP, EXAMPLES);
	char *id = spawn_counter();
	if (first)
		send_one(id, first);
	assert_int_equal(server_stop(&SP), 0);
	return id;
}

static void test_refused_before_exhaustion(void **state)
{
	(void)state;
	char *id = home_with_counter("4");
	/* less memory allowed than the server already holds: no room for new work */
	const char *tight[] = {"--max-memory", "1M", NULL};
	assert_int_equal(server_start(&SP, SP.home, tight, NULL), 0);
	for (int i = 0; i < 20; i++)
		assert_refused("POST", "/actors?wait=running&timeout=60", SPAWN, "memory");
	/* the server keeps running and serving what it has */
	assert_int_equal(req("GET", "/health", NULL, NULL), 200);
	send_one(id, "1");
	assert_int_equal(ask_count(id), 5);
	assert_int_equal(running_actors(), 1);
	/* with room again, spawns work */
	assert_int_equal(server_stop(&SP), 0);
	assert_int_equal(server_start(&SP, SP.home, NULL, NULL), 0);
	char *other = spawn_counter();
	assert_int_equal(running_actors(), 2);
	server_destroy(&SP);
	free(other);
	free(id);
}

/* Below --min-free-disk free on the home's file system, spawns and uploads to the
 * content store are refused with 503 resource_exhausted naming the disk, while the
 * actors already running keep taking messages: their events are what the space is
 * kept for. */
static void test_refused_without_disk(void **state)
{
	(void)state;
	char *id = home_with_counter(NULL);
	struct statvfs v;
	assert_int_equal(statvfs(SP.home, &v), 0);
	char *reserve = tu_fmt("%llu", (unsigned long long)v.f_bavail * v.f_frsize + (256ull << 20));
	const char *tight[] = {"--min-free-disk", reserve, NULL};
	assert_int_equal(server_start(&SP, SP.home, tight, NULL), 0);
	assert_refused("POST", "/actors?wait=running&timeout=60", SPAWN, "--min-free-disk");
	/* bytes uploaded to the content store are new work too */
	assert_refused("POST", "/store/uploads", "some bytes", "--min-free-disk");
	/* /metrics: the space the refusals are about, and the refusals */
	long long free_bytes = server_metric(&SP, "theater_disk_free_bytes");
	assert_true(free_bytes > 0);
	assert_true((unsigned long long)free_bytes < (unsigned long long)v.f_bavail * v.f_frsize +
							 (256ull << 20));
	assert_int_equal(server_metric(&SP, "theater_work_refused_total"), 2);
	send_one(id, "3");
	assert_int_equal(ask_count(id), 3);
	assert_int_equal(running_actors(), 1);
	server_destroy(&SP);
	free(reserve);
	free(id);
}

/* ---- children among many actors (the registry's kin chain, actor.c) ---- */

#define KIDS_LIMIT 20
#define OTHERS 1100             /* past the registry's first 1,024 buckets: it grows */

static char *spawn_supervisor(int kids)
{
	char *body = tu_fmt("{\"manifest_ref\":\"supervisor/manifest.json\","
			    "\"initial_state\":{\"spawn\":%d}}", kids);
	char *id = spawn_body(body);
	free(body);
	return id;
}

/* POST /actors/{id}/requests: the status; *answer the body (malloc'd) */
static long ask(const char *id, const char *body, char **answer)
{
	char *p = tu_fmt("/actors/%s/requests?timeout=120", id);
	struct http_result r;
	long st = req("POST", p, body, &r);
	*answer = strndup(r.body ? r.body : "", r.len);
	http_result_release(&r);
	free(p);
	return st;
}

/* The ids list-children gives the supervisor `id` (a JSON array). */
static json_t *listed_children(const char *id)
{
	char *answer;
	long st = ask(id, "{\"op\":\"list\"}", &answer);
	if (st != 200)
		fail_msg("list of %s answered %ld: %s", id, st, answer);
	json_t *j = json_parse(answer, strlen(answer), 16, NULL);
	if (!json_is_array(j))
		fail_msg("list-children is not an array: %s", answer);
	free(answer);
	return j;
}

/* Children of `parent` with `status` by the index (GET /actors?parent=); *all: how
 * many children it has. */
static unsigned children_with_status(const char *parent, const char *status, unsigned *all)
{
	char *p = tu_fmt("/actors?parent=%s&limit=500", parent);
	struct http_result r;
	assert_int_equal(req("GET", p, NULL, &r), 200);
	json_t *j = json_parse(r.body, r.len, 64, NULL);
	json_t *items = json_object_get(j, "items");
	unsigned n = 0;
	for (size_t i = 0; i < json_array_size(items); i++)
		n += strcmp(json_string_value(json_object_get(json_array_get(items, i), "status")),
			    status) == 0;
	*all = (unsigned)json_array_size(items);
	json_decref(j);
	http_result_release(&r);
	free(p);
	return n;
}

/* A parent's children are found by their own chain in the registry, not by a walk
 * of every actor: the limit per parent counts them, list-children lists them and
 * the parent's end stops them, with their chains rehashed as the registry grows,
 * more than fit the walk's first array, beside another parent's, and after a
 * restart that registers them in no particular order. */
static void test_children_among_many(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	const char *args[] = {"--max-children", "20", NULL};
	assert_int_equal(server_start(&SP, NULL, args, NULL), 0);
	server_install_examples(&SP, EXAMPLES);
	char *a = spawn_supervisor(16), *b = spawn_supervisor(3);
	for (int i = 0; i < OTHERS; i++)
		free(spawn_counter());
	char *answer;
	for (int i = 16; i < KIDS_LIMIT; i++) {
		long st = ask(a, "{\"op\":\"spawn\"}", &answer);
		if (st != 200)
			fail_msg("spawn %d of the supervisor answered %ld: %s", i, st, answer);
		free(answer);
	}
	/* the limit counts a's children only: b may still spawn, a may not (the host
	 * call's error for a limit reached is `busy`) */
	long st = ask(a, "{\"op\":\"spawn\"}", &answer);
	if (st != 422 || !strstr(answer, "cannot spawn a child: busy"))
		fail_msg("child %d of a supervisor answered %ld: %s", KIDS_LIMIT + 1, st, answer);
	free(answer);
	st = ask(b, "{\"op\":\"spawn\"}", &answer);
	if (st != 200)
		fail_msg("a fourth child of the other supervisor answered %ld: %s", st, answer);
	free(answer);
	for (int round = 0; round < 2; round++) {
		json_t *ka = listed_children(a), *kb = listed_children(b);
		assert_int_equal(json_array_size(ka), KIDS_LIMIT);
		assert_int_equal(json_array_size(kb), 4);
		for (size_t i = 0; i < json_array_size(kb); i++)
			for (size_t k = 0; k < json_array_size(ka); k++)
				assert_string_not_equal(json_string_value(json_array_get(kb, i)),
							json_string_value(json_array_get(ka, k)));
		json_decref(ka);
		json_decref(kb);
		if (round == 0) {     /* the same after a restart */
			assert_int_equal(server_stop(&SP), 0);
			assert_int_equal(server_start(&SP, SP.home, args, NULL), 0);
		}
	}
	/* a's end stops its 20 children; b's keep running */
	char *p = tu_fmt("/actors/%s/stop", a);
	struct http_result r;
	st = req("POST", p, NULL, &r);
	if (st != 204)
		fail_msg("stop of the supervisor answered %ld: %s", st, r.body);
	http_result_release(&r);
	free(p);
	unsigned all = 0, stopped = 0;
	for (int i = 0; i < 600 && stopped < KIDS_LIMIT; i++) {
		stopped = children_with_status(a, "stopped", &all);
		if (stopped < KIDS_LIMIT)
			usleep(50 * 1000);
	}
	if (stopped != KIDS_LIMIT || all != KIDS_LIMIT)
		fail_msg("%u of the parent's %u children stopped with it", stopped, all);
	assert_int_equal(children_with_status(b, "running", &all), 4);
	assert_int_equal(all, 4);
	server_destroy(&SP);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_before_exhaustion),
		cmocka_unit_test(test_refused_without_disk),
		cmocka_unit_test(test_more_actors_than_descriptors),
		cmocka_unit_test(test_children_among_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
