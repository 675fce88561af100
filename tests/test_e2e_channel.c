/* test_e2e_channel.c - end to end: channels between two actors (open-channel,
 * send-on-channel, close-channel; handle-channel-open / -message / -close),
 * against a real theater-server on 127.0.0.1 with the example actor
 * examples/channel spawned twice. Opens, messages both ways, a close from each
 * side, a refusal, a run that ends closing its peer's channel, the limits and
 * the chain events. No test asserts a duration: waits poll with generous
 * limits.
 */
#include "tests/support/testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "src/util/json.h"
#include "tests/support/server_proc.h"

static struct server_proc SP;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static long call(const char *method, const char *path, const char *body, char **text_out)
{
	char *u = tu_fmt("%s%s", SP.base, path);
	const char *hs[] = {body && body[0] == '{' ? "Content-Type: application/json"
						  : "Content-Type: text/plain", NULL};
	struct http_result r;
	assert_int_equal(http_do(method, u, body, body ? strlen(body) : 0, hs, &r), 0);
	free(u);
	long st = r.status;
	if (text_out)
		*text_out = strndup(r.body ? r.body : "", r.len);
	http_result_release(&r);
	return st;
}

static json_t *get_json(const char *path)
{
	char *text = NULL;
	long st = call("GET", path, NULL, &text);
	if (st != 200)
		fail_msg("GET %s answered %ld: %s", path, st, text);
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	assert_non_null(j);
	return j;
}

static char *spawn_body(const char *body)
{
	char *text = NULL;
	long st = call("POST", "/actors?wait=running&timeout=60", body, &text);
	if (st != 201)
		fail_msg("spawn answered %ld: %s", st, text);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	char *id = strdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static char *spawn(void)
{
	return spawn_body("{\"manifest_ref\":\"channel/manifest.json\"}");
}

/* A command to actor id that must answer 200; the answer (malloc'd). */
static char *cmd(const char *id, const char *body)
{
	char *path = tu_fmt("/actors/%s/requests?timeout=60", id);
	char *text = NULL;
	long st = call("POST", path, body, &text);
	if (st != 200)
		fail_msg("'%s' answered %ld: %s", body, st, text);
	free(path);
	return text;
}

static void cmd_expect(const char *id, const char *want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cmd_expect(const char *id, const char *want, const char *fmt, ...)
{
	char body[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	char *got = cmd(id, body);
	if (strcmp(got, want) != 0)
		fail_msg("'%s': expected '%s', got '%s'", body, want, got);
	free(got);
}

/* Opens a channel from a to b; its id (as text, malloc'd). */
static char *open_channel(const char *a, const char *b, const char *msg)
{
	char *body = tu_fmt("open %s %s", b, msg);
	char *got = cmd(a, body);
	free(body);
	char *sp = strchr(got, ' ');
	if (!sp || atoll(got) <= 0 || strcmp(sp + 1, "welcome") != 0)
		fail_msg("open-channel answered '%s'", got);
	*sp = 0;
	return got;
}

/* The log of channel events in the actor's state. */
static json_t *log_of(const char *id)
{
	char *p = tu_fmt("/actors/%s/state", id);
	json_t *st = get_json(p);
	free(p);
	json_t *log = json_incref(json_object_get(st, "log"));
	json_decref(st);
	assert_true(json_is_array(log));
	return log;
}

/* Waits until the log of id has n entries (at most 60 s); a new reference. */
static json_t *wait_log(const char *id, size_t n)
{
	for (int i = 0; i < 600; i++) {
		json_t *log = log_of(id);
		if (json_array_size(log) >= n)
			return log;
		json_decref(log);
		sleep_ms(100);
	}
	fail_msg("the log of %s never had %zu entries", id, n);
	return NULL;
}

/* Entry i of a log is {"on": on, "env": {"channel": ch, "from": from, key: value}}. */
static void assert_entry(json_t *log, size_t i, const char *on, const char *ch,
			 const char *from, const char *key, const char *value)
{
	json_t *e = json_array_get(log, i), *env = json_object_get(e, "env");
	char *dump = json_dumps(log, JSON_COMPACT);
	if (!e || strcmp(json_string_value(json_object_get(e, "on")), on) != 0 ||
	    json_integer_value(json_object_get(env, "channel")) != atoll(ch) ||
	    strcmp(json_string_value(json_object_get(env, "from")), from) != 0 ||
	    !json_string_value(json_object_get(env, key)) ||
	    strcmp(json_string_value(json_object_get(env, key)), value) != 0)
		fail_msg("entry %zu is not %s/%s/%s=%s: %s", i, on, from, key, value, dump);
	free(dump);
}

/* The events of the actor's chain of this type (a new array of their data). */
static json_t *events_of(const char *id, const char *type)
{
	char *p = tu_fmt("/actors/%s/chain?limit=1000", id);
	json_t *page = get_json(p), *out = json_array();
	size_t i;
	json_t *ev;
	json_array_foreach(json_object_get(page, "items"), i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "event_type")), type) == 0)
			json_array_append(out, json_object_get(ev, "data"));
	json_decref(page);
	free(p);
	return out;
}

/* The number of mail of this kind the actor received, and of wasm calls of fn. */
static size_t count_kind(const char *id, const char *kind)
{
	json_t *v = events_of(id, "message-server/received");
	size_t n = 0, i;
	json_t *d;
	json_array_foreach(v, i, d)
		n += strcmp(json_string_value(json_object_get(d, "kind")), kind) == 0;
	json_decref(v);
	return n;
}

static size_t count_calls(const char *id, const char *fn)
{
	json_t *v = events_of(id, "wasm");
	size_t n = 0, i;
	json_t *d;
	json_array_foreach(v, i, d)
		n += strcmp(json_string_value(json_object_get(d, "function")), fn) == 0;
	json_decref(v);
	return n;
}

/* Waits (at most 60 s) until count(id, what) is n: an event is listed once it
 * is indexed, which may come a little after the state that it produced. */
static void expect_count(size_t (*count)(const char *, const char *), const char *id,
			 const char *what, size_t n)
{
	size_t got = 0;
	for (int i = 0; i < 600; i++) {
		if ((got = count(id, what)) == n)
			return;
		sleep_ms(100);
	}
	fail_msg("%s: %zu of '%s', not %zu", id, got, what, n);
}

static size_t count_type(const char *id, const char *type)
{
	json_t *v = events_of(id, type);
	size_t n = json_array_size(v);
	json_decref(v);
	return n;
}

/* ---- tests ---- */

/* A opens a channel to B; messages go both ways (B's handler answers a ping on
 * the channel); A closes it; B hears the close; neither can send any more; the
 * chains record every step. */
static void test_open_messages_close(void **state)
{
	(void)state;
	char *a = spawn(), *b = spawn();
	char *ch = open_channel(a, b, "hello");
	json_t *log = wait_log(b, 1);
	assert_entry(log, 0, "open", ch, a, "data", "hello");
	json_decref(log);

	cmd_expect(a, "0", "send %s %s", ch, "ping");
	log = wait_log(a, 1);                 /* B's handler answered on the channel */
	assert_entry(log, 0, "message", ch, b, "data", "pong");
	json_decref(log);
	cmd_expect(b, "0", "send %s %s", ch, "from-b");
	cmd_expect(a, "0", "send %s %s", ch, "one");
	cmd_expect(a, "0", "send %s %s", ch, "two");
	log = wait_log(a, 2);
	assert_entry(log, 1, "message", ch, b, "data", "from-b");
	json_decref(log);
	log = wait_log(b, 4);                 /* per-sender order */
	assert_entry(log, 1, "message", ch, a, "data", "ping");
	assert_entry(log, 2, "message", ch, a, "data", "one");
	assert_entry(log, 3, "message", ch, a, "data", "two");
	json_decref(log);

	cmd_expect(a, "0", "close %s", ch);
	log = wait_log(b, 5);
	assert_entry(log, 4, "close", ch, a, "reason", "closed");
	json_decref(log);
	cmd_expect(a, "-2", "send %s %s", ch, "late");
	cmd_expect(b, "-2", "send %s %s", ch, "late");
	cmd_expect(a, "-2", "close %s", ch);
	cmd_expect(b, "-2", "close %s", ch);   /* the close took B's end out */
	log = log_of(a);
	assert_int_equal(json_array_size(log), 2);   /* A hears no close: it closed */
	json_decref(log);

	/* The chains: B got the mail as received events and calls; A's host calls. */
	expect_count(count_kind, b, "channel-open", 1);
	expect_count(count_kind, b, "channel-message", 3);
	expect_count(count_kind, b, "channel-close", 1);
	expect_count(count_calls, b, "handle-channel-open", 1);
	expect_count(count_calls, b, "handle-channel-message", 3);
	expect_count(count_calls, b, "handle-channel-close", 1);
	expect_count(count_kind, a, "channel-message", 2);
	expect_count(count_type, a, "theater:simple/message-server-host/open-channel", 1);
	json_t *opens = events_of(a, "theater:simple/message-server-host/open-channel");
	assert_int_equal(json_array_size(opens), 1);
	json_t *out = json_object_get(json_array_get(opens, 0), "output");
	assert_int_equal(json_integer_value(json_object_get(out, "channel")), atoll(ch));
	assert_int_equal(json_integer_value(json_object_get(out, "result")), atoll(ch));
	json_decref(opens);
	expect_count(count_type, a, "theater:simple/message-server-host/send-on-channel",
		     4);   /* ping, one, two, late */
	free(ch);
	free(a);
	free(b);
}

/* The target refuses an opening (-3 and its reason); the target closes a
 * channel it accepted, and the opener hears it. */
static void test_reject_and_close_from_target(void **state)
{
	(void)state;
	char *a = spawn(), *b = spawn();
	cmd_expect(a, "-3 not today", "open %s %s", b, "reject");
	char *ch = open_channel(a, b, "again");
	cmd_expect(b, "0", "close %s", ch);
	json_t *log = wait_log(a, 1);
	assert_entry(log, 0, "close", ch, b, "reason", "closed");
	json_decref(log);
	cmd_expect(a, "-2", "send %s %s", ch, "late");
	log = log_of(b);      /* the refused opening left nothing in B's state */
	assert_int_equal(json_array_size(log), 1);
	assert_entry(log, 0, "open", ch, a, "data", "again");
	json_decref(log);
	expect_count(count_calls, b, "handle-channel-open", 2);
	json_t *w = events_of(b, "wasm");       /* the refusal is recorded as an error */
	size_t i, refused = 0;
	json_t *d;
	json_array_foreach(w, i, d)
		refused += strcmp(json_string_value(json_object_get(d, "function")),
				  "handle-channel-open") == 0 && json_object_get(d, "error");
	assert_int_equal(refused, 1);
	json_decref(w);
	free(ch);
	free(a);
	free(b);
}

/* A run that ends closes its channels: the peer hears "ended" and can no
 * longer send; opening to an ended actor answers -2. */
static void test_run_end_closes_peer(void **state)
{
	(void)state;
	char *a = spawn(), *b = spawn();
	char *ch = open_channel(a, b, "hi");
	char *ch2 = open_channel(b, a, "back");     /* B holds two ends */
	cmd_expect(b, "bye", "stop");
	json_t *log = wait_log(a, 3);     /* the open from B, then two closes */
	assert_entry(log, 0, "open", ch2, b, "data", "back");
	assert_entry(log, 1, "close", ch, b, "reason", "ended");
	assert_entry(log, 2, "close", ch2, b, "reason", "ended");
	json_decref(log);
	cmd_expect(a, "-2", "send %s %s", ch, "late");
	cmd_expect(a, "-2", "send %s %s", ch2, "late");
	cmd_expect(a, "-2 ", "open %s %s", b, "x");
	free(ch);
	free(ch2);
	free(a);
	free(b);
}

/* Limits and bad input: to itself (-1), an unknown actor (-2), 64 channels
 * per actor (-7 beyond), and permission_policy.message_server (-3). */
static void test_limits(void **state)
{
	(void)state;
	char *a = spawn(), *b = spawn();
	cmd_expect(a, "-1 ", "open %s %s", a, "x");
	cmd_expect(a, "-2 ", "open %s %s", "00000000-0000-4000-8000-000000000000", "x");
	cmd_expect(a, "-1 ", "open %s %s", "not-an-id", "x");
	for (int i = 0; i < 64; i++)
		free(open_channel(a, b, "n"));
	cmd_expect(a, "-7 ", "open %s %s", b, "n");
	char *c = spawn();
	cmd_expect(c, "-7 ", "open %s %s", b, "n");     /* B holds 64 too */
	char *d = spawn_body("{\"manifest\":{\"name\":\"channel\",\"package\":\"channel/channel.wasm\","
		       "\"handler\":[{\"type\":\"runtime\"},{\"type\":\"message-server\"}],"
		       "\"permission_policy\":{\"message_server\":{\"type\":\"disallow\"}}}}");
	cmd_expect(d, "-3 ", "open %s %s", c, "x");
	expect_count(count_type, d, "theater:simple/message-server-host/open-channel", 1);
	json_t *ev = events_of(d, "theater:simple/message-server-host/open-channel");
	assert_int_equal(json_array_size(ev), 1);
	const char *err = json_string_value(json_object_get(json_object_get(json_array_get(ev, 0),
						   "output"), "error"));
	assert_non_null(err);
	assert_non_null(strstr(err, "message_server"));
	json_decref(ev);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* An idle actor's instance is released (--idle-release-ms 300 for this whole
 * file), but not one that holds a channel end: the channel still carries
 * messages both ways after both ends sat idle well past the release time, and
 * neither chain has an idle `suspended` event while the channel is open. Once it
 * is closed, the actors may be released, and the next message wakes them. */
static void test_idle_release_keeps_channels(void **state)
{
	(void)state;
	char *a = spawn(), *b = spawn();
	char *ch = open_channel(a, b, "hold");
	json_t *log = wait_log(b, 1);
	json_decref(log);
	sleep_ms(1500);                       /* five release periods */
	assert_int_equal(count_type(a, "suspended"), 0);
	assert_int_equal(count_type(b, "suspended"), 0);
	cmd_expect(a, "0", "send %s %s", ch, "after-idle");
	log = wait_log(b, 2);
	assert_entry(log, 1, "message", ch, a, "data", "after-idle");
	json_decref(log);
	cmd_expect(b, "0", "send %s %s", ch, "back");
	log = wait_log(a, 1);
	assert_entry(log, 0, "message", ch, b, "data", "back");
	json_decref(log);
	cmd_expect(a, "0", "close %s", ch);
	expect_count(count_type, a, "suspended", 1);   /* released once it holds none */
	cmd_expect(a, "-2", "send %s %s", ch, "late");  /* woken by the command */
	free(ch);
	free(a);
	free(b);
}

static int setup(void **state)
{
	(void)state;
	memset(&SP, 0, sizeof(SP));
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	SP.home = tu_mkdtemp("theater-e2e-channel");
	SP.roots = tu_fmt("%s/packages", SP.home);
	mkdir(SP.roots, 0755);
	server_install_example(&SP, "channel");
	const char *args[] = {"--idle-release-ms", "300", NULL};
	assert_int_equal(server_start(&SP, NULL, args, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int rc = server_stop(&SP);
	if (rc != 0) {
		char *log = tu_read_file(SP.log_path, NULL);
		fprintf(stderr, "theater-server exited with %d; its log:\n%s\n", rc,
			log ? log : "(none)");
		free(log);
	}
	server_destroy(&SP);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_messages_close),
		cmocka_unit_test(test_reject_and_close_from_target),
		cmocka_unit_test(test_run_end_closes_peer),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_idle_release_keeps_channels),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
