/* test_e2e_cli.c - the `theater` client CLI end to end: the real binary
 * (build/theater) run as a child process against a real theater-server on
 * 127.0.0.1 (port 0, temporary THEATER_HOME), checking stdout, stderr and the
 * exit code of every command, including -f following, --json, partial ids and
 * bad input.
 *
 * Secrets run against the real server too. Routes other helpers are still
 * building (POST /actors/{id}/replay, streamed requests, GET /store) are
 * exercised against a fake server in this file that answers canned replies
 * and records what the CLI sent, so the client side is tested now.
 *
 * Waits are bounded polls (never asserted durations). */
#include "tests/support/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

extern char **environ;

static struct server_proc SP;
static char *DIR_;          /* scratch folder for the CLI's files */
static char *TOOL;          /* build/theater */

struct run {
	int status;
	char *out;
	char *err;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Starts the CLI with words (NULL-terminated) and stdin from `input`; stdout
 * and stderr go to files named after tag. Returns the pid. */
static pid_t cli_start(const char *tag, const char *input, const char *const *words)
{
	char *in = tu_fmt("%s/%s.in", DIR_, tag), *out = tu_fmt("%s/%s.out", DIR_, tag);
	char *err = tu_fmt("%s/%s.err", DIR_, tag);
	char *argv[40] = {TOOL};
	int n = 1;
	for (; words[n - 1] && n < 39; n++)
		argv[n] = (char *)words[n - 1];
	argv[n] = NULL;
	tu_write_file(in, input ? input : "", input ? strlen(input) : 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, TOOL, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	free(in);
	free(out);
	free(err);
	return pid;
}

/* Waits for pid (at most timeout_s; then kills it and fails the test). */
static int cli_wait(pid_t pid, int timeout_s)
{
	int st;
	for (long waited = 0; waited < timeout_s * 1000L; waited += 20) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("theater (pid %d) did not end within %d s", (int)pid, timeout_s);
	return -1;
}

static char *slurp(const char *tag, const char *ext)
{
	char *p = tu_fmt("%s/%s.%s", DIR_, tag, ext);
	char *s = tu_read_file(p, NULL);
	free(p);
	return s ? s : strdup("");
}

static struct run cli_run(const char *input, const char *const *words)
{
	pid_t pid = cli_start("run", input, words);
	struct run r = {0};
	r.status = cli_wait(pid, 120);
	r.out = slurp("run", "out");
	r.err = slurp("run", "err");
	return r;
}

#define CLI(in, ...) cli_run(in, (const char *const[]){__VA_ARGS__, NULL})

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Fails with the CLI's output unless it exited with want. */
static void expect(const struct run *r, int want)
{
	if (r->status != want)
		fail_msg("exit code %d, expected %d\nstdout: %s\nstderr: %s", r->status, want,
			 r->out, r->err);
}

static void contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not found in:\n%s", needle, hay);
}

/* The first line of s without its newline (malloc'd). */
static char *first_line(const char *s)
{
	return strndup(s, strcspn(s, "\n"));
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = tu_read_file(from, &len);
	if (!data)
		fail_msg("cannot read '%s' (are the examples built?)", from);
	assert_int_equal(tu_write_file(to, data, len), 0);
	free(data);
}

/* Spawns the counter from its TOML manifest (a file of the CLI's) and returns
 * its id. */
static char *spawn_counter(void)
{
	struct run r = CLI(NULL, "spawn", "--ref", "counter/manifest.toml", "--wait");
	expect(&r, 0);
	char *id = first_line(r.out);
	assert_int_equal(strlen(id), 36);
	run_free(&r);
	return id;
}

static int group_setup(void **state)
{
	(void)state;
	DIR_ = tu_mkdtemp("theater-cli");
	TOOL = tu_fmt("%s/theater", tu_binary_dir());
	if (server_start(&SP, NULL, NULL, NULL) != 0)
		return -1;
	char *dir = tu_fmt("%s/counter", SP.roots);
	mkdir(dir, 0755);
	const char *files[] = {"counter.wasm", "manifest.toml", "manifest.json"};
	for (int i = 0; i < 3; i++) {
		char *from = tu_fmt("%s/examples/counter/%s", tu_binary_dir(), files[i]);
		char *to = tu_fmt("%s/%s", dir, files[i]);
		copy_file(from, to);
		free(from);
		free(to);
	}
	free(dir);
	setenv("THEATER_URL", SP.base, 1);
	unsetenv("THEATER_TOKEN");
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	server_destroy(&SP);
	tu_rmtree(DIR_);
	free(DIR_);
	free(TOOL);
	return 0;
}

/* ---- usage ---- */

static void test_help_and_usage(void **state)
{
	(void)state;
	struct run r = CLI(NULL, "--help");
	expect(&r, 0);
	contains(r.out, "Exit codes");
	static const char *const cmds[] = {"ps", "spawn", "inspect", "state", "send", "request",
		"logs", "events", "stop", "kill", "rm", "restart", "verify", "replay", "top",
		"validate", "store", "secret", "new", "version", "cluster", NULL};
	for (int i = 0; cmds[i]; i++) {
		contains(r.out, cmds[i]);
		struct run h = CLI(NULL, cmds[i], "--help");
		expect(&h, 0);
		char *want = tu_fmt("usage: theater %s", cmds[i]);
		contains(h.out, want);
		free(want);
		run_free(&h);
	}
	run_free(&r);
	r = CLI(NULL, "frobnicate");
	expect(&r, 2);
	contains(r.err, "unknown command 'frobnicate'");
	run_free(&r);
	r = CLI(NULL, "ps", "--bogus");
	expect(&r, 2);
	contains(r.err, "unknown option '--bogus'");
	run_free(&r);
	r = CLI(NULL, "state");
	expect(&r, 2);
	contains(r.err, "missing argument");
	run_free(&r);
	r = CLI(NULL, "restart", "--state", "sometimes", "abc");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "request", "x", "get", "--timeout", "soon");
	expect(&r, 2);
	run_free(&r);
	const char *const none[] = {NULL};
	r = cli_run(NULL, none);
	expect(&r, 2);
	contains(r.err, "usage: theater");
	run_free(&r);
}

/* A server without --nats: `cluster` says so (exit 0); --json is the answer. */
static void test_cluster_single(void **state)
{
	(void)state;
	struct run r = CLI(NULL, "cluster");
	expect(&r, 0);
	contains(r.out, "not in a cluster");
	run_free(&r);
	r = CLI(NULL, "cluster", "--json");
	expect(&r, 0);
	contains(r.out, "\"enabled\": false");
	run_free(&r);
}

static void test_cannot_connect(void **state)
{
	(void)state;
	/* a port nobody listens on: bind one, note it, close it */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	char *url = tu_fmt("http://127.0.0.1:%u", ntohs(a.sin_port));
	struct run r = CLI(NULL, "--url", url, "ps");
	expect(&r, 3);
	contains(r.err, "cannot reach the server");
	run_free(&r);
	r = CLI(NULL, "ps", "--url", url, "-a");   /* the option after the command too */
	expect(&r, 3);
	run_free(&r);
	free(url);
}

/* ---- spawn, ps, ids ---- */

static void test_spawn_forms_and_ps(void **state)
{
	(void)state;
	char *tomlp = tu_fmt("%s/c.toml", DIR_), *jsonp = tu_fmt("%s/c.json", DIR_);
	const char *toml = "name = \"tomlcounter\"\npackage = \"counter/counter.wasm\"\n"
			   "[[handler]]\ntype = \"runtime\"\n[initial_state]\ncount = 40\n";
	tu_write_file(tomlp, toml, strlen(toml));
	const char *json = "{\"name\": \"jsoncounter\", \"package\": \"counter/counter.wasm\", "
			   "\"handler\": [{\"type\": \"runtime\"}]}";
	tu_write_file(jsonp, json, strlen(json));

	struct run r = CLI(NULL, "spawn", tomlp, "--wait");
	expect(&r, 0);
	char *t_id = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "state", t_id, "--json");
	expect(&r, 0);
	assert_string_equal(r.out, "{\"count\":40}");
	run_free(&r);

	/* TOML with a spawn-time state: merged, the spawn-time value wins */
	r = CLI(NULL, "spawn", tomlp, "--wait", "--state", "{\"count\": 2}");
	expect(&r, 0);
	char *t2 = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "request", t2, "get");
	expect(&r, 0);
	assert_string_equal(r.out, "2\n");
	run_free(&r);

	r = CLI(NULL, "spawn", jsonp, "--wait", "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "jsoncounter");
	char *j_id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	run_free(&r);

	r = CLI(json, "spawn", "-", "--wait");      /* stdin */
	expect(&r, 0);
	char *s_id = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "spawn", "--inline", json);   /* without --wait: answered at once */
	expect(&r, 0);
	char *i_id = first_line(r.out);
	assert_int_equal(strlen(i_id), 36);
	run_free(&r);

	r = CLI(NULL, "ps");
	expect(&r, 0);
	contains(r.out, "NAME");
	char short_id[13];
	snprintf(short_id, sizeof(short_id), "%s", t_id);
	contains(r.out, short_id);
	contains(r.out, "tomlcounter");
	contains(r.out, "jsoncounter");
	run_free(&r);

	r = CLI(NULL, "ps", "-q", "--name", "jsoncounter");
	expect(&r, 0);
	contains(r.out, j_id);
	contains(r.out, s_id);
	assert_null(strstr(r.out, t_id));
	run_free(&r);

	r = CLI(NULL, "ps", "--json");
	expect(&r, 0);
	j = json_loads(r.out, 0, NULL);
	assert_true(json_array_size(json_object_get(j, "items")) >= 4);
	json_decref(j);
	run_free(&r);

	/* ids: a unique prefix works; a name with several live runs is ambiguous */
	char prefix[9];
	snprintf(prefix, sizeof(prefix), "%s", t_id);
	r = CLI(NULL, "inspect", prefix);
	expect(&r, 0);
	contains(r.out, t_id);
	contains(r.out, "tomlcounter");
	contains(r.out, "calls");
	run_free(&r);
	r = CLI(NULL, "state", "jsoncounter");
	expect(&r, 5);
	contains(r.err, "ambiguous");
	contains(r.err, j_id);
	run_free(&r);
	r = CLI(NULL, "state", "nosuchactor");
	expect(&r, 4);
	contains(r.err, "no actor matches 'nosuchactor'");
	run_free(&r);
	r = CLI(NULL, "inspect", "00000000-0000-4000-8000-000000000000");
	expect(&r, 4);
	contains(r.err, "not_found");
	run_free(&r);

	/* bad manifests: the server's problem, its code and the line */
	const char *bad = "name = \"x\"\npackage = 5\n";
	r = CLI(bad, "spawn", "-");
	expect(&r, 1);
	contains(r.err, "manifest:2:");
	contains(r.err, "invalid_manifest");
	run_free(&r);
	r = CLI(NULL, "spawn", "--inline", "{\"name\": \"x\", \"package\": \"nope.wasm\", "
		"\"handler\": [{\"type\": \"runtime\"}]}", "--wait");
	expect(&r, 4);
	run_free(&r);
	r = CLI(NULL, "spawn", "--inline", "{not json");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "spawn", "/nonexistent/manifest.toml");
	expect(&r, 2);
	contains(r.err, "cannot read");
	run_free(&r);
	r = CLI(NULL, "spawn", tomlp, "--inline", json);
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "spawn", tomlp, "--state", "{oops");
	expect(&r, 2);
	run_free(&r);

	const char *const ids[] = {"rm", "-f", t_id, t2, j_id, s_id, i_id, NULL};
	r = cli_run(NULL, ids);
	expect(&r, 0);
	run_free(&r);
	free(t_id);
	free(t2);
	free(j_id);
	free(s_id);
	free(i_id);
	free(tomlp);
	free(jsonp);
}

/* ---- an actor at work ---- */

static void test_send_request_state(void **state)
{
	(void)state;
	char *id = spawn_counter();
	struct run r = CLI(NULL, "send", id, "5");
	expect(&r, 0);
	contains(r.out, "accepted (1 bytes)");
	run_free(&r);
	r = CLI("2", "send", id, "--file", "-", "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "accepted");
	json_decref(j);
	run_free(&r);
	/* messages run in order before the request */
	r = CLI(NULL, "request", id, "get", "--timeout", "60");
	expect(&r, 0);
	assert_string_equal(r.out, "7\n");
	run_free(&r);
	r = CLI(NULL, "state", id);
	expect(&r, 0);
	assert_string_equal(r.out, "{\n  \"count\": 7\n}\n");
	run_free(&r);
	r = CLI(NULL, "state", id, "--json");
	expect(&r, 0);
	assert_string_equal(r.out, "{\"count\":7}");
	run_free(&r);
	r = CLI(NULL, "request", id, "nope");
	expect(&r, 1);
	contains(r.err, "actor_error");
	contains(r.err, "unknown request");
	run_free(&r);
	r = CLI(NULL, "send", id);
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "kill", id);
	expect(&r, 0);
	contains(r.out, "killed");
	run_free(&r);
	r = CLI(NULL, "send", id, "1");
	expect(&r, 1);
	contains(r.err, "409");
	run_free(&r);
	free(id);
}

static void test_idempotency_key(void **state)
{
	(void)state;
	struct run r = CLI(NULL, "spawn", "--ref", "counter/manifest.toml", "--wait", "-k", "cli-k1");
	expect(&r, 0);
	char *a = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "spawn", "--ref", "counter/manifest.toml", "--wait",
		"--idempotency-key", "cli-k1");
	expect(&r, 0);
	char *b = first_line(r.out);
	assert_string_equal(b, a);       /* the first spawn's answer, not a second actor */
	free(b);
	run_free(&r);
	for (int i = 0; i < 2; i++) {    /* a retried message is accepted once */
		r = CLI(NULL, "send", a, "5", "-k", "cli-m1");
		expect(&r, 0);
		run_free(&r);
	}
	r = CLI(NULL, "request", a, "get", "-k", "cli-r1");
	expect(&r, 0);
	assert_string_equal(r.out, "5\n");
	run_free(&r);
	r = CLI(NULL, "spawn", "--ref", "echo/manifest.toml", "-k", "cli-k1");
	expect(&r, 1);
	contains(r.err, "422");
	run_free(&r);
	r = CLI(NULL, "send", a, "1", "-k", "");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "rm", "-f", a);
	expect(&r, 0);
	run_free(&r);
	free(a);
}

/* Waits until file tag.out contains needle (at most 120 s). */
static void wait_output(const char *tag, const char *needle)
{
	for (int i = 0; i < 6000; i++) {
		char *s = slurp(tag, "out");
		int hit = strstr(s, needle) != NULL;
		free(s);
		if (hit)
			return;
		sleep_ms(20);
	}
	char *s = slurp(tag, "out");
	fail_msg("'%s' never appeared in the output of %s:\n%s", needle, tag, s);
}

static void test_logs_and_follow(void **state)
{
	(void)state;
	char *id = spawn_counter();
	pid_t f = cli_start("follow", NULL, (const char *const[]){"logs", "-f", id, NULL});
	pid_t fj = cli_start("followjson", NULL,
			     (const char *const[]){"logs", "--follow", "--json", id, NULL});
	wait_output("follow", "started");      /* the replay of what was stored */
	wait_output("followjson", "started");
	struct run r = CLI(NULL, "send", id, "3");
	expect(&r, 0);
	run_free(&r);
	wait_output("follow", "\"data\":\"3\"");  /* live */
	r = CLI(NULL, "stop", id);
	expect(&r, 0);
	contains(r.out, "stopped");
	run_free(&r);
	/* the stream ends with the run, and so do the followers */
	assert_int_equal(cli_wait(f, 120), 0);
	assert_int_equal(cli_wait(fj, 120), 0);
	char *out = slurp("follow", "out");
	contains(out, "#1 ");
	contains(out, "spawned");
	contains(out, "handle-send");
	contains(out, "stopped");
	free(out);
	/* --json: one event object a line, seq 1, 2, 3, ... */
	out = slurp("followjson", "out");
	int seq = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *ev = json_loads(line, 0, NULL);
		assert_non_null(ev);
		assert_int_equal(json_integer_value(json_object_get(ev, "seq")), ++seq);
		assert_string_equal(json_string_value(json_object_get(ev, "actor_id")), id);
		json_decref(ev);
	}
	assert_true(seq >= 6);
	free(out);

	/* without -f: the whole chain, the same events */
	r = CLI(NULL, "logs", id, "--json");
	expect(&r, 0);
	int n = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		n++;
	assert_int_equal(n, seq);
	run_free(&r);
	r = CLI(NULL, "logs", id, "--type", "wasm");
	expect(&r, 0);
	contains(r.out, "handle-send");
	assert_null(strstr(r.out, "spawned"));
	run_free(&r);
	r = CLI(NULL, "logs", id, "--after", "3");
	expect(&r, 0);
	assert_null(strstr(r.out, "#1 "));
	contains(r.out, "#4 ");
	run_free(&r);
	/* -f on an ended run prints it all and ends */
	r = CLI(NULL, "logs", "-f", id);
	expect(&r, 0);
	contains(r.out, "stopped");
	run_free(&r);
	r = CLI(NULL, "logs", id, "--after", "x");
	expect(&r, 2);
	run_free(&r);
	free(id);
}

static void test_events(void **state)
{
	(void)state;
	pid_t f = cli_start("events", NULL, (const char *const[]){"events", "-f", NULL});
	char *id = spawn_counter();
	char short_id[13];
	snprintf(short_id, sizeof(short_id), "%s", id);
	wait_output("events", short_id);
	struct run r = CLI(NULL, "stop", id);
	expect(&r, 0);
	run_free(&r);
	wait_output("events", "stopped");
	kill(f, SIGTERM);
	cli_wait(f, 60);
	/* without -f: the history, then it ends */
	r = CLI(NULL, "events");
	expect(&r, 0);
	contains(r.out, short_id);
	contains(r.out, "spawned");
	contains(r.out, "started");
	run_free(&r);
	r = CLI(NULL, "events", "--json", "--type", "stopped");
	expect(&r, 0);
	int found = 0;
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *ev = json_loads(line, 0, NULL);
		assert_non_null(ev);
		assert_string_equal(json_string_value(json_object_get(ev, "event_type")), "stopped");
		found |= !strcmp(json_string_value(json_object_get(ev, "actor_id")), id);
		json_decref(ev);
	}
	assert_true(found);
	run_free(&r);
	/* -f outlives a restart of the server: it tries again until the server is back
	 * (it printed "cannot reach the server" and exited 3 after one try) */
	pid_t g = cli_start("events2", NULL, (const char *const[]){"events", "-f", NULL});
	wait_output("events2", short_id);
	char *listen = tu_fmt("127.0.0.1:%s", strrchr(SP.base, ':') + 1);
	const char *same_port[] = {"--listen", listen, NULL};
	assert_int_equal(server_stop(&SP), 0);
	sleep(2);                                   /* it finds no server, at least once */
	assert_int_equal(server_start(&SP, SP.home, same_port, NULL), 0);
	char *id2 = spawn_counter();
	char short2[13];
	snprintf(short2, sizeof(short2), "%s", id2);
	wait_output("events2", short2);
	kill(g, SIGTERM);
	cli_wait(g, 60);
	free(id2);
	free(listen);
	free(id);
}

/* ---- lifecycle ---- */

static void test_lifecycle(void **state)
{
	(void)state;
	char *id = spawn_counter();
	struct run r = CLI(NULL, "send", id, "4");
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "stop", id);
	expect(&r, 0);
	contains(r.out, "stopped");
	run_free(&r);
	r = CLI(NULL, "stop", id);
	expect(&r, 0);
	contains(r.out, "already ended");
	run_free(&r);
	r = CLI(NULL, "restart", id);
	expect(&r, 0);
	contains(r.out, "restarted (running)");
	run_free(&r);
	r = CLI(NULL, "restart", id, "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "id")), id);
	json_decref(j);
	run_free(&r);
	/* --state last keeps the count, --state initial starts from the manifest's */
	r = CLI(NULL, "restart", "--state", "last", id);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "request", id, "get");
	expect(&r, 0);
	assert_string_equal(r.out, "4\n");
	run_free(&r);
	r = CLI(NULL, "restart", "--state", "initial", id);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "state", id, "--json");
	expect(&r, 0);
	assert_string_equal(r.out, "{\"count\":0}");
	run_free(&r);
	r = CLI(NULL, "rm", id);
	expect(&r, 1);
	contains(r.err, "409 conflict");
	run_free(&r);
	r = CLI(NULL, "kill", id);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "ps");
	expect(&r, 0);
	char short_id[13];
	snprintf(short_id, sizeof(short_id), "%s", id);
	assert_null(strstr(r.out, short_id));   /* ended: only ps -a shows it */
	run_free(&r);
	r = CLI(NULL, "ps", "-a");
	expect(&r, 0);
	contains(r.out, short_id);
	contains(r.out, "killed");
	run_free(&r);
	r = CLI(NULL, "rm", id);
	expect(&r, 0);
	contains(r.out, "deleted");
	run_free(&r);
	r = CLI(NULL, "inspect", id);
	expect(&r, 4);
	run_free(&r);
	/* several ids: the worst exit code wins, the others are still done */
	char *a = spawn_counter();
	r = CLI(NULL, "stop", a, "00000000-0000-4000-8000-000000000000");
	expect(&r, 4);
	contains(r.out, "stopped");
	run_free(&r);
	r = CLI(NULL, "rm", a);
	expect(&r, 0);
	run_free(&r);
	free(a);
	free(id);
}

/* ---- verify ---- */

static void test_verify(void **state)
{
	(void)state;
	char *id = spawn_counter();
	struct run r = CLI(NULL, "send", id, "9");
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "stop", id);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "verify", id);
	expect(&r, 0);
	contains(r.out, "valid:");
	run_free(&r);
	/* change one byte of the message's data in the chain file */
	char *path = tu_fmt("%s/chains/%s.chain", SP.home, id);
	size_t len;
	char *chain = tu_read_file(path, &len);
	assert_non_null(chain);
	char *hit = strstr(chain, "\"data\":\"9\"");
	assert_non_null(hit);
	hit[8] = '8';
	assert_int_equal(tu_write_file(path, chain, len), 0);
	r = CLI(NULL, "verify", id);
	expect(&r, 6);
	contains(r.out, "INVALID");
	run_free(&r);
	r = CLI(NULL, "verify", id, "--json");
	expect(&r, 6);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_true(json_is_false(json_object_get(j, "valid")));
	json_decref(j);
	run_free(&r);
	free(chain);
	free(path);
	free(id);
}

/* ---- validate ---- */

static void test_validate(void **state)
{
	(void)state;
	char *bad = tu_fmt("%s/bad.toml", DIR_);
	const char *text = "name = \"x\"\npackage = 5\n\n[[handler]]\ntpye = \"runtime\"\n";
	tu_write_file(bad, text, strlen(text));
	struct run r = CLI(NULL, "validate", bad);
	expect(&r, 6);
	char *want = tu_fmt("%s:2:11: wrong_type", bad);
	contains(r.err, want);
	free(want);
	want = tu_fmt("%s:5:8: unknown_key", bad);
	contains(r.err, want);
	contains(r.err, "did you mean 'type'");
	free(want);
	run_free(&r);
	r = CLI(NULL, "validate", bad, "--json");
	expect(&r, 6);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_true(json_is_false(json_object_get(j, "valid")));
	assert_true(json_array_size(json_object_get(j, "problems")) >= 2);
	json_decref(j);
	run_free(&r);
	r = CLI(NULL, "validate", "--ref", "counter/manifest.toml");
	expect(&r, 0);
	contains(r.out, "valid");
	run_free(&r);
	char *good = tu_fmt("%s/examples/counter/manifest.json", tu_source_dir());
	r = CLI(NULL, "validate", good);
	expect(&r, 0);
	contains(r.out, "valid (json)");
	run_free(&r);
	r = CLI("{\"name\": 1}", "validate", "-");
	expect(&r, 6);
	contains(r.err, "<stdin>: ");
	run_free(&r);
	r = CLI(NULL, "validate");
	expect(&r, 2);
	run_free(&r);
	free(good);
	free(bad);
}

/* ---- store ---- */

static void test_store(void **state)
{
	(void)state;
	char *wasm = tu_fmt("%s/counter/counter.wasm", SP.roots);
	struct run r = CLI(NULL, "store", "put", "apps", wasm, "--label", "counter");
	expect(&r, 0);
	contains(r.out, "store://apps/hash/");
	contains(r.out, "store://apps/counter\n");
	char *ref = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps", "counter");
	expect(&r, 0);
	contains(r.out, ref);
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps", "v2", ref);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps", "v2", "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "reference")), ref);
	json_decref(j);
	run_free(&r);
	r = CLI(NULL, "spawn", "--wait", "--inline", "{\"name\": \"fromstore\", \"package\": "
		"\"store://apps/v2\", \"handler\": [{\"type\": \"runtime\"}]}");
	expect(&r, 0);
	char *id = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "request", id, "get");
	expect(&r, 0);
	assert_string_equal(r.out, "0\n");
	run_free(&r);
	r = CLI(NULL, "rm", "-f", id);
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps", "nolabel");
	expect(&r, 4);
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps", "bad", "not-a-hash");
	expect(&r, 1);
	contains(r.err, "400");
	run_free(&r);
	r = CLI(NULL, "store", "put", "apps");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "store", "frob");
	expect(&r, 2);
	run_free(&r);
	free(id);
	free(ref);
	free(wasm);
}

/* ---- top ---- */

static void test_top_once(void **state)
{
	(void)state;
	char *id = spawn_counter();
	struct run r = CLI(NULL, "send", id, "1");
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "request", id, "get");   /* the message ran before this answer */
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "top", "--once");
	expect(&r, 0);
	contains(r.out, "CALLS");
	contains(r.out, "MAILBOX");
	char short_id[13];
	snprintf(short_id, sizeof(short_id), "%s", id);
	contains(r.out, short_id);
	contains(r.out, "/1024");
	run_free(&r);
	r = CLI(NULL, "top", "--once", "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL), *it;
	size_t i;
	int found = 0;
	json_array_foreach(json_object_get(j, "items"), i, it) {
		json_t *a = json_object_get(it, "actor"), *m = json_object_get(it, "metrics");
		if (strcmp(json_string_value(json_object_get(a, "id")), id) != 0)
			continue;
		found = 1;
		assert_int_equal(json_integer_value(json_object_get(m, "calls")), 3);
		assert_int_equal(json_integer_value(json_object_get(m, "failures")), 0);
	}
	assert_true(found);
	json_decref(j);
	run_free(&r);
	/* live mode refreshes until a signal */
	pid_t p = cli_start("top", NULL, (const char *const[]){"top", "-n", "1", NULL});
	wait_output("top", short_id);
	kill(p, SIGINT);
	assert_int_equal(cli_wait(p, 60), 0);
	r = CLI(NULL, "top", "-n", "0");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "rm", "-f", id);
	expect(&r, 0);
	run_free(&r);
	free(id);
}

/* ---- new ---- */

static void test_new_c_project(void **state)
{
	(void)state;
	struct run r = CLI(NULL, "new", "--dir", DIR_, "greeter");
	expect(&r, 0);
	contains(r.out, "greeter.c");
	run_free(&r);
	char *proj = tu_fmt("%s/greeter", DIR_);
	char *src = tu_fmt("%s/greeter.c", proj), *man = tu_fmt("%s/manifest.toml", proj);
	char *hdr = tu_fmt("%s/include/theater/actor.h", proj);
	char *text = tu_read_file(man, NULL);
	assert_non_null(text);
	contains(text, "name = \"greeter\"");
	assert_null(strstr(text, "__NAME__"));
	free(text);
	text = tu_read_file(hdr, NULL);
	assert_non_null(text);
	free(text);
	/* build it with its own Makefile, then run it on the server */
	char *cmd = tu_fmt("make -s -C '%s' >'%s/make.log' 2>&1", proj, DIR_);
	if (system(cmd) != 0) {
		char *log = tu_fmt("%s/make.log", DIR_);
		char *l = tu_read_file(log, NULL);
		fail_msg("the scaffolded project does not build:\n%s", l ? l : "");
	}
	free(cmd);
	char *dst = tu_fmt("%s/greeter", SP.roots);
	mkdir(dst, 0755);
	char *w1 = tu_fmt("%s/greeter.wasm", proj), *w2 = tu_fmt("%s/greeter.wasm", dst);
	char *m2 = tu_fmt("%s/manifest.toml", dst);
	copy_file(w1, w2);
	copy_file(man, m2);
	r = CLI(NULL, "spawn", "--ref", "greeter/manifest.toml", "--wait");
	expect(&r, 0);
	char *id = first_line(r.out);
	run_free(&r);
	r = CLI(NULL, "send", id, "hello");
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "request", id, "status", "--json");
	expect(&r, 0);
	assert_string_equal(r.out, "{\"messages\":1}");
	run_free(&r);
	r = CLI(NULL, "logs", id, "--type", "theater:simple/runtime/log");
	expect(&r, 0);
	contains(r.out, "greeter: message received");
	run_free(&r);
	r = CLI(NULL, "rm", "-f", id);
	expect(&r, 0);
	run_free(&r);
	/* nothing is overwritten; bad names and unknown languages are usage errors */
	r = CLI(NULL, "new", "--dir", DIR_, "greeter");
	expect(&r, 2);
	contains(r.err, "exists already");
	run_free(&r);
	r = CLI(NULL, "new", "--dir", DIR_, "Bad Name");
	expect(&r, 2);
	run_free(&r);
	r = CLI(NULL, "new", "--dir", DIR_, "--lang", "cobol", "x");
	expect(&r, 2);
	contains(r.err, "no template for language 'cobol'");
	run_free(&r);
	/* a --dir that does not exist yet is made, folders above it too */
	char *deep = tu_fmt("%s/a/b", DIR_);
	r = CLI(NULL, "new", "--dir", deep, "greeter");
	expect(&r, 0);
	run_free(&r);
	char *made = tu_fmt("%s/greeter/manifest.toml", deep);
	char *mt = tu_read_file(made, NULL);
	assert_non_null(mt);
	free(mt);
	free(made);
	free(deep);
	struct stat st;
	char *x = tu_fmt("%s/x", DIR_);
	assert_int_not_equal(stat(x, &st), 0);
	free(x);
	free(id);
	free(w1);
	free(w2);
	free(m2);
	free(dst);
	free(src);
	free(man);
	free(hdr);
	free(proj);
}

/* Fails if any file under dir (recursively) has "__NAME__" in its name or
 * contents, or is a *.sh that is not executable. Returns the files seen. */
static int check_scaffold(const char *dir)
{
	char *cmd = tu_fmt("cd '%s' && find . -type f", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[1024];
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		char *path = tu_fmt("%s/%s", dir, line + 2);
		char *text = tu_read_file(path, NULL);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if (strstr(line, "__NAME__") || (text && strstr(text, "__NAME__")))
			fail_msg("'%s' still holds the placeholder __NAME__", path);
		size_t len = strlen(line);
		if (len > 3 && !strcmp(line + len - 3, ".sh") && !(st.st_mode & S_IXUSR))
			fail_msg("'%s' is a script but not executable", path);
		free(text);
		free(path);
		n++;
	}
	pclose(p);
	free(cmd);
	return n;
}

/* Every language this build has a template for (c here; rust and
 * assemblyscript when their SDKs' templates were in the tree) scaffolds a
 * complete project; building them is the SDKs' own tests' work. */
static void test_new_every_language(void **state)
{
	(void)state;
	struct run r = CLI(NULL, "new", "--list");
	expect(&r, 0);
	contains(r.out, "c:\n");
	int langs = 0;
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		size_t len = strlen(line);
		if (line[0] == ' ' || len < 2 || line[len - 1] != ':')
			continue;
		line[len - 1] = '\0';
		char *name = tu_fmt("every-%s", line);
		struct run n = CLI(NULL, "new", "--dir", DIR_, "--lang", line, name);
		expect(&n, 0);
		char *dir = tu_fmt("%s/%s", DIR_, name);
		assert_true(check_scaffold(dir) >= 3);
		char *man = tu_fmt("%s/manifest.toml", dir);
		char *text = tu_read_file(man, NULL);
		if (!text)
			fail_msg("the %s template has no manifest.toml", line);
		char *want = tu_fmt("name = \"%s\"", name);
		contains(text, want);
		free(want);
		free(text);
		free(man);
		free(dir);
		free(name);
		run_free(&n);
		langs++;
	}
	assert_true(langs >= 1);
	run_free(&r);
}

/* ---- a token ---- */

static void test_token(void **state)
{
	(void)state;
	struct server_proc sp = {0};
	assert_int_equal(server_start(&sp, NULL, NULL, "s3cret-token-0123456789"), 0);
	struct run r = CLI(NULL, "--url", sp.base, "ps");
	expect(&r, 1);
	contains(r.err, "401");
	run_free(&r);
	r = CLI(NULL, "--url", sp.base, "--token", "s3cret-token-0123456789", "ps", "-a");
	expect(&r, 0);
	contains(r.out, "STATUS");
	run_free(&r);
	setenv("THEATER_TOKEN", "s3cret-token-0123456789", 1);
	r = CLI(NULL, "ps", "--url", sp.base);
	unsetenv("THEATER_TOKEN");
	expect(&r, 0);
	run_free(&r);
	char *tf = tu_fmt("%s/token", DIR_);
	tu_write_file(tf, "  s3cret-token-0123456789 \n", 27);
	setenv("THEATER_TOKEN_FILE", tf, 1);
	r = CLI(NULL, "ps", "--url", sp.base);
	expect(&r, 0);
	run_free(&r);
	tu_write_file(tf, "wrong-token-0123456789\n", 23);
	r = CLI(NULL, "ps", "--url", sp.base);
	expect(&r, 1);
	contains(r.err, "unauthorized");
	run_free(&r);
	unlink(tf);
	r = CLI(NULL, "ps", "--url", sp.base);
	expect(&r, 2);
	contains(r.err, "THEATER_TOKEN_FILE");
	run_free(&r);
	unsetenv("THEATER_TOKEN_FILE");
	free(tf);
	server_destroy(&sp);
}

/* ---- secrets on the real server ---- */

static void test_secrets(void **state)
{
	(void)state;
	struct run r = CLI("sk-cli-7f3a9c\n", "secret", "set", "cli-key");
	expect(&r, 0);
	contains(r.out, "secret 'cli-key' set (13 bytes)");
	run_free(&r);
	r = CLI(NULL, "secret", "ls");
	expect(&r, 0);
	contains(r.out, "NAME");
	contains(r.out, "cli-key");
	assert_null(strstr(r.out, "sk-cli-7f3a9c"));   /* names and metadata only */
	run_free(&r);
	r = CLI(NULL, "secret", "ls", "--json");
	expect(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL), *it;
	size_t i;
	int found = 0;
	json_array_foreach(json_object_get(j, "items"), i, it)
		if (!strcmp(json_string_value(json_object_get(it, "name")), "cli-key")) {
			found = 1;
			assert_int_equal(json_integer_value(json_object_get(it, "size")), 13);
		}
	assert_true(found);
	json_decref(j);
	run_free(&r);
	r = CLI(NULL, "secret", "rm", "cli-key");
	expect(&r, 0);
	run_free(&r);
	r = CLI(NULL, "secret", "rm", "cli-key");
	expect(&r, 4);
	run_free(&r);
	r = CLI(NULL, "secret", "set", "bad name!", "--value", "x");
	expect(&r, 1);
	contains(r.err, "400");
	run_free(&r);
}

/* ---- a fake server for routes still being built ---- */

struct fake_route {
	const char *method, *path;      /* path without the query */
	int status;
	const char *ctype, *body;
};

struct fake {
	int fd;
	unsigned short port;
	pthread_t thread;
	const struct fake_route *routes;
	pthread_mutex_t lock;
	char last[8192];                /* the last request: line, headers and body */
};

static void fake_serve(struct fake *f, int c)
{
	char req[8192];
	size_t n = 0;
	ssize_t got;
	char *end = NULL;
	while (!end && n < sizeof(req) - 1 && (got = read(c, req + n, sizeof(req) - 1 - n)) > 0) {
		n += (size_t)got;
		req[n] = '\0';
		end = strstr(req, "\r\n\r\n");
	}
	if (!end)
		return;
	char *cl = strcasestr(req, "\r\ncontent-length:");
	size_t want = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
	while (n < want && n < sizeof(req) - 1 && (got = read(c, req + n, sizeof(req) - 1 - n)) > 0)
		n += (size_t)got;
	req[n] = '\0';
	char method[16] = "", path[512] = "";
	sscanf(req, "%15s %511s", method, path);
	path[strcspn(path, "?")] = '\0';
	pthread_mutex_lock(&f->lock);
	snprintf(f->last, sizeof(f->last), "%s", req);
	pthread_mutex_unlock(&f->lock);
	const struct fake_route *r = f->routes;
	for (; r->method; r++)
		if (!strcmp(r->method, method) && !strcmp(r->path, path))
			break;
	char head[512];
	const char *body = r->method ? r->body : "{\"type\":\"about:blank\",\"title\":\"Not Found\","
		"\"status\":404,\"code\":\"not_found\",\"detail\":\"no route\"}";
	int hn = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  r->method ? r->status : 404,
			  r->method ? r->ctype : "application/problem+json", strlen(body));
	if (write(c, head, (size_t)hn) < 0 || write(c, body, strlen(body)) < 0)
		return;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int c;
	while ((c = accept(f->fd, NULL, NULL)) >= 0) {
		fake_serve(f, c);
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, const struct fake_route *routes)
{
	memset(f, 0, sizeof(*f));
	f->routes = routes;
	pthread_mutex_init(&f->lock, NULL);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	getsockname(f->fd, (struct sockaddr *)&a, &al);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
}

static char *fake_last(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	char *s = strdup(f->last);
	pthread_mutex_unlock(&f->lock);
	return s;
}

#define FAKE_ID "0b0b0b0b-0000-4000-8000-000000000001"
#define FAKE_ID2 "0b0b0b0b-0000-4000-8000-000000000002"

static const struct fake_route FAKE[] = {
	{"PUT", "/secrets/openai", 201, "application/json",
	 "{\"name\":\"openai\",\"size\":11,\"fingerprint\":\"3f2a\"}"},
	{"GET", "/secrets", 200, "application/json",
	 "{\"items\":[{\"name\":\"openai\",\"size\":11,\"updated_at\":\"2026-01-01T00:00:00Z\"},"
	 "{\"name\":\"github\",\"size\":40,\"updated_at\":\"2026-01-02T00:00:00Z\"}]}"},
	{"DELETE", "/secrets/openai", 204, "application/json", ""},
	{"DELETE", "/secrets/nope", 404, "application/problem+json",
	 "{\"status\":404,\"code\":\"not_found\",\"detail\":\"no secret 'nope'\"}"},
	{"POST", "/actors/" FAKE_ID "/replay", 200, "application/json",
	 "{\"replayed\":12,\"events\":30,\"diverged_at\":null}"},
	{"POST", "/actors/" FAKE_ID2 "/replay", 200, "application/json",
	 "{\"replayed\":3,\"events\":9,\"diverged_at\":7,\"expected\":{\"state_sha256\":\"aa\"},"
	 "\"got\":{\"state_sha256\":\"bb\"}}"},
	{"POST", "/actors/" FAKE_ID "/requests", 200, "text/event-stream",
	 ": hello\nretry: 1000\n\nevent: chunk\ndata: {\"data\":\"Hel\"}\n\n"
	 "event: chunk\r\ndata: \"lo, \"\r\n\r\nevent: chunk\ndata: {\"data\":\"world\"}\n\n"
	 "event: done\ndata: {\"data\":\"Hello, world\"}\n\n"},
	{"POST", "/actors/" FAKE_ID2 "/requests", 200, "text/event-stream",
	 "event: chunk\ndata: {\"data\":\"par\"}\n\n"
	 "event: error\ndata: {\"code\":\"actor_error\",\"detail\":\"the model went away\"}\n\n"},
	{"GET", "/store", 200, "application/json",
	 "{\"items\":[{\"store_id\":\"apps\",\"objects\":2,\"bytes\":1234}]}"},
	{"GET", "/store/apps", 200, "application/json",
	 "{\"items\":[{\"sha256\":\"ab12\",\"size\":1000},{\"sha256\":\"cd34\",\"size\":234}]}"},
	{"GET", "/store/apps/labels", 200, "application/json",
	 "{\"items\":[{\"label\":\"latest\",\"sha256\":\"ab12\"}]}"},
	{0},
};

static void test_fake_routes(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, FAKE);
	char *url = tu_fmt("http://127.0.0.1:%u", f.port);
	setenv("THEATER_URL", url, 1);

	/* secrets: the value from stdin, its final newline dropped */
	struct run r = CLI("sk-12345678\n", "secret", "set", "openai");
	expect(&r, 0);
	contains(r.out, "secret 'openai' set (11 bytes)");
	char *last = fake_last(&f);
	contains(last, "PUT /secrets/openai ");
	assert_string_equal(strstr(last, "\r\n\r\n") + 4, "sk-12345678");
	free(last);
	run_free(&r);
	char *vf = tu_fmt("%s/value", DIR_);
	tu_write_file(vf, "from-a-file", 11);
	r = CLI(NULL, "secret", "set", "openai", "--file", vf);
	expect(&r, 0);
	last = fake_last(&f);
	assert_string_equal(strstr(last, "\r\n\r\n") + 4, "from-a-file");
	free(last);
	run_free(&r);
	r = CLI(NULL, "secret", "ls");
	expect(&r, 0);
	contains(r.out, "NAME");
	contains(r.out, "openai");
	contains(r.out, "github");
	run_free(&r);
	r = CLI(NULL, "secret", "rm", "openai");
	expect(&r, 0);
	last = fake_last(&f);
	contains(last, "DELETE /secrets/openai ");
	free(last);
	run_free(&r);
	r = CLI(NULL, "secret", "rm", "nope");
	expect(&r, 4);
	contains(r.err, "no secret 'nope'");
	run_free(&r);
	r = CLI(NULL, "secret", "set");
	expect(&r, 2);
	run_free(&r);

	/* replay: agreement is 0, divergence is 6 with where and what */
	r = CLI(NULL, "replay", FAKE_ID);
	expect(&r, 0);
	contains(r.out, "replayed 12 calls over 30 events: no divergence");
	run_free(&r);
	r = CLI(NULL, "replay", FAKE_ID2);
	expect(&r, 6);
	contains(r.out, "DIVERGED at seq 7");
	contains(r.out, "\"bb\"");
	run_free(&r);
	r = CLI(NULL, "replay", FAKE_ID2, "--json");
	expect(&r, 6);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "diverged_at")), 7);
	json_decref(j);
	run_free(&r);

	/* a streamed answer: the chunks in order, the final answer not repeated */
	r = CLI(NULL, "request", FAKE_ID, "hi");
	expect(&r, 0);
	assert_string_equal(r.out, "Hello, world\n");
	last = fake_last(&f);
	contains(last, "text/event-stream");     /* the CLI asked for a stream */
	free(last);
	run_free(&r);
	r = CLI(NULL, "request", FAKE_ID2, "hi");
	expect(&r, 1);
	assert_string_equal(r.out, "par\n");
	contains(r.err, "the model went away");
	run_free(&r);

	/* store listings */
	r = CLI(NULL, "store", "ls");
	expect(&r, 0);
	contains(r.out, "STORE_ID");
	contains(r.out, "apps");
	run_free(&r);
	r = CLI(NULL, "store", "ls", "apps");
	expect(&r, 0);
	contains(r.out, "cd34");
	run_free(&r);
	r = CLI(NULL, "store", "label", "apps");
	expect(&r, 0);
	contains(r.out, "latest");
	run_free(&r);
	r = CLI(NULL, "store", "ls", "apps", "--json");
	expect(&r, 0);
	j = json_loads(r.out, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	run_free(&r);

	setenv("THEATER_URL", SP.base, 1);
	fake_stop(&f);
	free(vf);
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_and_usage),
		cmocka_unit_test(test_cannot_connect),
		cmocka_unit_test(test_cluster_single),
		cmocka_unit_test(test_spawn_forms_and_ps),
		cmocka_unit_test(test_send_request_state),
		cmocka_unit_test(test_idempotency_key),
		cmocka_unit_test(test_logs_and_follow),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_top_once),
		cmocka_unit_test(test_new_c_project),
		cmocka_unit_test(test_new_every_language),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_fake_routes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
