/* cmd_stream.c - what changes over time: logs (one actor's chain), events
 * (lifecycle of all actors) and top (a live table).
 *
 * logs and events print one line per event; with --json one compact JSON
 * object per line (the server's event objects), which scripts read line by
 * line. -f streams with server-sent events: storage is replayed, then live
 * events follow. A chain stream ends when the run ends; the events stream
 * never does, and is resumed from the last id when the server closes it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/theater/cli.h"
#include "tools/theater/table.h"

#define SUMMARY_CHARS 160

/* "HH:MM:SS.mmm" of an RFC 3339 time, or the text itself. */
static void clock_of(const char *iso, char *out, size_t n)
{
	const char *t = iso ? strchr(iso, 'T') : NULL;
	snprintf(out, n, "%.12s", t ? t + 1 : iso ? iso : "-");
}

/* The event's data in one line, cut to SUMMARY_CHARS. */
static void summary(const json_t *ev, char *out, size_t n)
{
	json_t *d = json_object_get(ev, "data");
	const char *b64 = cli_str(ev, "data_b64");
	if (d) {
		char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		size_t len = s ? strlen(s) : 0;
		snprintf(out, n, "%.*s%s", SUMMARY_CHARS, s ? s : "", len > SUMMARY_CHARS ? "…" : "");
		free(s);
	} else if (b64) {
		snprintf(out, n, "(%lld bytes, not JSON)",
			 (long long)json_integer_value(json_object_get(ev, "size")));
	} else {
		snprintf(out, n, "%s", "");
	}
}

struct follow {
	struct cli *c;
	const char *type;       /* --type filter (a prefix of event_type) or NULL */
	int lifecycle;          /* the /events stream */
	int stop_at_ready;      /* without -f: stop when history is replayed */
	char last_id[32];
	unsigned long printed;
};

static void print_event(struct follow *f, json_t *ev, const char *raw)
{
	const char *type = cli_str(ev, "event_type");
	if (f->type && (!type || strncmp(type, f->type, strlen(f->type)) != 0))
		return;
	f->printed++;
	if (f->c->json) {
		if (raw) {
			puts(raw);
		} else {
			char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
			puts(s ? s : "{}");
			free(s);
		}
		fflush(stdout);
		return;
	}
	char clock[16], sum[SUMMARY_CHARS + 64];
	clock_of(cli_str(ev, "timestamp"), clock, sizeof(clock));
	if (f->lifecycle) {
		char id[13];
		snprintf(id, sizeof(id), "%s", cli_str(ev, "actor_id") ? cli_str(ev, "actor_id") : "-");
		printf("%-6lld %s  %s  %-10s %s\n", (long long)json_integer_value(json_object_get(ev, "id")),
		       clock, id, type ? type : "-", cli_str(ev, "status") ? cli_str(ev, "status") : "");
	} else {
		summary(ev, sum, sizeof(sum));
		printf("#%-5lld %s  %-28s %s\n", (long long)json_integer_value(json_object_get(ev, "seq")),
		       clock, type ? type : "-", sum);
	}
	fflush(stdout);
}

static int on_frame(void *user, const char *event, const char *id, const char *data)
{
	struct follow *f = user;
	if (!strcmp(event, "ready"))
		return f->stop_at_ready;
	if (strcmp(event, "chain") && strcmp(event, "lifecycle"))
		return 0;
	if (id)
		snprintf(f->last_id, sizeof(f->last_id), "%s", id);
	json_t *ev = json_parse(data, strlen(data), 256, NULL);
	if (ev)
		print_event(f, ev, data);
	json_decref(ev);
	return 0;
}

/* Streams path until it ends; resumes the events stream when the server
 * closes it, and, once it was reached, while it cannot be reached (a restart of
 * the server), every 1 s then up to every 30 s, as EventSource does. */
static int follow_stream(struct cli *c, const char *path, struct follow *f)
{
	struct client *cl = cli_client(c);
	if (!cl)
		return EXIT_CONNECT;
	int reached = 0;
	unsigned pause = 1;
	for (;;) {
		struct client_reply r;
		struct err e = {0};
		int rc = client_stream(cl, "GET", path, "text/event-stream",
				       f->last_id[0] ? f->last_id : NULL, NULL, NULL, 0, on_frame, f,
				       &r, &e);
		if (rc && reached && f->lifecycle && !f->stop_at_ready) {
			client_reply_release(&r);
			if (pause == 1)
				cli_error("%s: trying again", e.msg);
			sleep(pause);
			pause = pause < 30 ? pause * 2 : 30;
			continue;
		}
		if (rc) {
			client_reply_release(&r);
			cli_error("%s", e.msg);
			return EXIT_CONNECT;
		}
		reached = 1;
		pause = 1;
		long status = r.status;
		int is_sse = strcmp(r.ctype, "text/event-stream") == 0;
		if (status >= 400)
			rc = cli_problem(c, &r);
		client_reply_release(&r);
		if (status >= 400)
			return rc;
		if (status == 204 || !is_sse || !f->lifecycle || f->stop_at_ready)
			return EXIT_OK;   /* the run ended and everything was sent */
		sleep(1);            /* the server closed /events: resume from last_id */
	}
}

/* ---- logs ---- */

static const char logs_help[] =
	"usage: theater logs [-f] [--after SEQ] [--type TYPE] ID\n\n"
	"Print an actor's chain, one event a line: #seq, time (UTC), event type, data.\n"
	"  -f, --follow     then print new events as they happen, until the run ends\n"
	"  --after SEQ      start after this event\n"
	"  --type TYPE      only events whose type starts with TYPE (wasm,\n"
	"                   theater:simple/runtime/log, ...)\n"
	"  --json           one JSON object a line (the server's event objects)\n";

static int logs_pages(struct cli *c, const char *id, unsigned long long after, struct follow *f)
{
	for (;;) {
		char path[160];
		json_t *page, *ev;
		size_t i;
		snprintf(path, sizeof(path), "/actors/%s/chain?limit=1000&after=%llu", id, after);
		int rc = cli_json(c, "GET", path, NULL, NULL, 0, &page, NULL);
		if (rc)
			return rc;
		json_array_foreach(json_object_get(page, "items"), i, ev)
			print_event(f, ev, NULL);
		json_t *next = json_object_get(page, "next_after");
		int more = json_is_integer(next) && (unsigned long long)json_integer_value(next) > after;
		if (more)
			after = (unsigned long long)json_integer_value(next);
		json_decref(page);
		if (!more)
			return EXIT_OK;
	}
}

int cmd_logs(struct cli *c, int argc, char **argv)
{
	int follow = 0, npos, rc;
	const char *after = NULL, *type = NULL;
	char *pos[1], id[37], path[160];
	const struct cli_opt opts[] = {{"follow", 'f', 0, NULL, &follow},
				       {"after", 0, 1, &after, NULL}, {"type", 0, 1, &type, NULL},
				       {0}};
	if ((rc = cli_parse(c, argc, argv, opts, logs_help, pos, 1, 1, &npos)) >= 0)
		return rc;
	if (after && (!*after || strspn(after, "0123456789") != strlen(after)))
		return cli_usage(c, "--after wants an event number, not '%s'", after);
	if ((rc = cli_resolve(c, pos[0], id)))
		return rc;
	struct follow f = {.c = c, .type = type};
	unsigned long long a = after ? strtoull(after, NULL, 10) : 0;
	if (!follow)
		return logs_pages(c, id, a, &f);
	snprintf(path, sizeof(path), "/actors/%s/chain?after=%llu", id, a);
	return follow_stream(c, path, &f);
}

/* ---- events ---- */

static const char events_help[] =
	"usage: theater events [-f] [--after ID] [--type TYPE]\n\n"
	"Print the lifecycle events of all actors (spawned, started, stopped, failed,\n"
	"restarted, ...), one a line: position, time (UTC), actor id, type, status.\n"
	"  -f, --follow     then keep printing new events as they happen (Ctrl-C ends)\n"
	"  --after ID       start after this position\n"
	"  --type TYPE      only events whose type starts with TYPE\n"
	"  --json           one JSON object a line (the server's event objects)\n";

int cmd_events(struct cli *c, int argc, char **argv)
{
	int follow = 0, npos, rc;
	const char *after = NULL, *type = NULL;
	char path[96];
	const struct cli_opt opts[] = {{"follow", 'f', 0, NULL, &follow},
				       {"after", 0, 1, &after, NULL}, {"type", 0, 1, &type, NULL},
				       {0}};
	if ((rc = cli_parse(c, argc, argv, opts, events_help, NULL, 0, 0, &npos)) >= 0)
		return rc;
	if (after && (!*after || strspn(after, "0123456789") != strlen(after)))
		return cli_usage(c, "--after wants an event position, not '%s'", after);
	snprintf(path, sizeof(path), "/events?after=%s", after ? after : "0");
	struct follow f = {.c = c, .type = type, .lifecycle = 1, .stop_at_ready = !follow};
	return follow_stream(c, path, &f);
}

/* ---- top ---- */

static const char top_help[] =
	"usage: theater top [--once] [-n SECONDS] [-a]\n\n"
	"A live table of the actors: status, calls, failures, mailbox depth/capacity,\n"
	"memory, restarts; refreshed every 2 seconds until Ctrl-C.\n"
	"  --once            print the table once and exit (for scripts and tests)\n"
	"  -n, --interval S  seconds between refreshes (1 to 3600)\n"
	"  -a, --all         ended runs too\n"
	"  --json            with --once: {\"items\": [{\"actor\": ..., \"metrics\": ...}]}\n";

static volatile sig_atomic_t top_stop;

static void on_sigint(int sig)
{
	(void)sig;
	top_stop = 1;
}

static json_t *metrics_of(struct cli *c, const char *id)
{
	char path[128];
	struct client_reply r;
	json_t *m = NULL;
	snprintf(path, sizeof(path), "/actors/%s/metrics", id);
	if (cli_do(c, "GET", path, NULL, NULL, 0, &r) == 0 && r.status == 200)
		m = json_parse(r.body.data, r.body.len, 16, NULL);
	client_reply_release(&r);
	return m;
}

static void top_row(struct table *t, json_t *a, json_t *m)
{
	char id[13], calls[24], fails[24], mbox[48], mem[24], restarts[24];
	json_t *mb = json_object_get(m, "mailbox");
	snprintf(id, sizeof(id), "%s", cli_str(a, "id"));
	if (m) {
		snprintf(calls, sizeof(calls), "%lld", (long long)json_integer_value(json_object_get(m, "calls")));
		snprintf(fails, sizeof(fails), "%lld", (long long)json_integer_value(json_object_get(m, "failures")));
		snprintf(mbox, sizeof(mbox), "%lld/%lld", (long long)json_integer_value(json_object_get(mb, "depth")),
			 (long long)json_integer_value(json_object_get(mb, "capacity")));
		fmt_size((uint64_t)json_integer_value(json_object_get(m, "memory_bytes")), mem, sizeof(mem));
		snprintf(restarts, sizeof(restarts), "%lld", (long long)json_integer_value(json_object_get(m, "restarts")));
	}
	const char *cells[] = {id, cli_str(a, "name"), cli_str(a, "status"), m ? calls : NULL, m ? fails : NULL,
			       m ? mbox : NULL, m ? mem : NULL, m ? restarts : NULL};
	table_add(t, cells);
}

/* One frame: the table (or JSON) on stdout. */
static int top_frame(struct cli *c, int all, int clear)
{
	static const char *const heads[] = {"ID", "NAME", "STATUS", "CALLS", "FAILURES",
					    "MAILBOX", "MEMORY", "RESTARTS"};
	json_t *items, *a, *out = json_array();
	size_t i;
	int rc = cli_list_all(c, all ? NULL : "status=running", &items);
	if (rc) {
		json_decref(out);
		return rc;
	}
	struct table t;
	table_init(&t, 8, heads);
	table_cap(&t, 1, 24);
	json_array_foreach(items, i, a) {
		json_t *m = metrics_of(c, cli_str(a, "id"));
		if (c->json)
			json_array_append_new(out, json_pack("{s:O, s:o}", "actor", a, "metrics",
							     m ? json_incref(m) : json_null()));
		else
			top_row(&t, a, m);
		json_decref(m);
	}
	if (c->json) {
		json_t *o = json_pack("{s:O}", "items", out);
		cli_print_json(o);
		json_decref(o);
	} else {
		char now[32];
		time_t tt = time(NULL);
		strftime(now, sizeof(now), "%H:%M:%S", localtime(&tt));
		if (clear)
			fputs("\033[H\033[2J", stdout);
		printf("theater top - %s - %zu actors - %s\n\n", c->url, json_array_size(items), now);
		table_print(&t, stdout);
	}
	fflush(stdout);
	table_release(&t);
	json_decref(items);
	json_decref(out);
	return EXIT_OK;
}

int cmd_top(struct cli *c, int argc, char **argv)
{
	int once = 0, all = 0, npos, rc;
	const char *interval = NULL;
	const struct cli_opt opts[] = {{"once", 0, 0, NULL, &once}, {"all", 'a', 0, NULL, &all},
				       {"interval", 'n', 1, &interval, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, top_help, NULL, 0, 0, &npos)) >= 0)
		return rc;
	long secs = 2;
	if (interval) {
		char *end;
		secs = strtol(interval, &end, 10);
		if (*end || secs < 1 || secs > 3600)
			return cli_usage(c, "--interval wants 1 to 3600 seconds, not '%s'", interval);
	}
	if (once)
		return top_frame(c, all, 0);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!top_stop) {
		if ((rc = top_frame(c, all, isatty(STDOUT_FILENO))))
			return rc;
		for (long i = 0; i < secs * 10 && !top_stop; i++)
			usleep(100000);
	}
	return EXIT_OK;
}
