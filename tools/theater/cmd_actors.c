/* cmd_actors.c - commands on runs: ps, inspect, state, send, request, stop,
 * kill, rm, restart, verify, replay, version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/theater/cli.h"
#include "tools/theater/table.h"

/* ---- ps ---- */

static const char ps_help[] =
	"usage: theater ps [-a] [-q] [--status S] [--name N] [--parent ID]\n\n"
	"List actors. By default only live runs (starting, running, stopping); -a lists\n"
	"every run the server keeps. Columns: ID (the first 12 characters; any unique\n"
	"prefix works wherever an id is asked), NAME, STATUS, EVENTS (chain length),\n"
	"CREATED, REASON.\n\n"
	"  -a, --all        every run, ended ones too\n"
	"  -q, --quiet      only the full ids, one per line\n"
	"  --status S       only runs with this status (starting, running, stopping,\n"
	"                   stopped, failed, killed)\n"
	"  --name N         only runs of this actor name\n"
	"  --parent ID      only the children of this actor\n"
	"  --json           the server's list: {\"items\": [...]} (every page)\n";

static int is_live(const json_t *a)
{
	const char *s = cli_str(a, "status");
	return s && (!strcmp(s, "starting") || !strcmp(s, "running") || !strcmp(s, "stopping"));
}

static void ps_table(json_t *items, int all)
{
	static const char *const heads[] = {"ID", "NAME", "STATUS", "EVENTS", "CREATED", "REASON"};
	struct table t;
	table_init(&t, 6, heads);
	table_cap(&t, 1, 24);
	table_cap(&t, 5, 60);
	size_t i;
	json_t *a;
	json_array_foreach(items, i, a) {
		if (!all && !is_live(a))
			continue;
		char id[13], len[24], age[32];
		snprintf(id, sizeof(id), "%s", cli_str(a, "id") ? cli_str(a, "id") : "");
		snprintf(len, sizeof(len), "%lld", (long long)json_integer_value(
			json_object_get(json_object_get(a, "chain"), "length")));
		fmt_age(cli_str(a, "created_at"), age, sizeof(age));
		const char *cells[] = {id, cli_str(a, "name"), cli_str(a, "status"), len, age, cli_str(a, "reason")};
		table_add(&t, cells);
	}
	table_print(&t, stdout);
	table_release(&t);
}

int cmd_ps(struct cli *c, int argc, char **argv)
{
	int all = 0, quiet = 0, npos, rc;
	const char *status = NULL, *name = NULL, *parent = NULL;
	const struct cli_opt opts[] = {
		{"all", 'a', 0, NULL, &all}, {"quiet", 'q', 0, NULL, &quiet},
		{"status", 0, 1, &status, NULL}, {"name", 0, 1, &name, NULL},
		{"parent", 0, 1, &parent, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, ps_help, NULL, 0, 0, &npos)) >= 0)
		return rc;
	char query[1024] = "";
	const char *keys[] = {"status", "name", "parent"}, *vals[] = {status, name, parent};
	for (int k = 0; k < 3; k++) {
		if (!vals[k])
			continue;
		char *e = client_escape(vals[k]);
		size_t n = strlen(query);
		snprintf(query + n, sizeof(query) - n, "%s%s=%s", n ? "&" : "", keys[k], e ? e : "");
		free(e);
	}
	if (status)
		all = 1;   /* asking for a status shows it, ended or not */
	json_t *items;
	if ((rc = cli_list_all(c, *query ? query : NULL, &items)))
		return rc;
	if (c->json) {
		json_t *o = json_pack("{s:O}", "items", items);
		cli_print_json(o);
		json_decref(o);
	} else if (quiet) {
		size_t i;
		json_t *a;
		json_array_foreach(items, i, a)
			if (all || is_live(a))
				printf("%s\n", cli_str(a, "id"));
	} else {
		ps_table(items, all);
	}
	json_decref(items);
	return EXIT_OK;
}

/* ---- one actor: GET and print ---- */

/* Parses "ID" with no options beyond the common ones into id. Returns 0 to
 * go on, -1 after --help (exit 0), or an exit code. */
static int one_id(struct cli *c, int argc, char **argv, const char *help,
		  const struct cli_opt *opts, char id[37])
{
	char *pos[1];
	int npos, rc;
	if ((rc = cli_parse(c, argc, argv, opts, help, pos, 1, 1, &npos)) >= 0)
		return rc == EXIT_OK ? -1 : rc;
	return cli_resolve(c, pos[0], id);
}

static const char inspect_help[] =
	"usage: theater inspect ID\n\n"
	"Show one actor: its run (status, reason, package and its digest, times, chain\n"
	"length and head), its metrics while it is live, and the manifest it runs.\n"
	"ID is a full id, a unique id prefix, or a name. --json prints the run as the\n"
	"server answers it (GET /actors/{id}).\n";

static void kv(const char *k, const char *v)
{
	printf("%-15s %s\n", k, v && *v ? v : "-");
}

static void print_run(const json_t *a)
{
	json_t *chain = json_object_get(a, "chain");
	char len[32];
	snprintf(len, sizeof(len), "%lld",
		 (long long)json_integer_value(json_object_get(chain, "length")));
	kv("id", cli_str(a, "id"));
	kv("name", cli_str(a, "name"));
	kv("status", cli_str(a, "status"));
	kv("reason", cli_str(a, "reason"));
	kv("parent", cli_str(a, "parent_id"));
	kv("manifest", cli_str(a, "manifest_ref"));
	kv("package", cli_str(a, "package_ref"));
	kv("package sha256", cli_str(a, "package_sha256"));
	kv("created", cli_str(a, "created_at"));
	kv("started", cli_str(a, "started_at"));
	kv("stopped", cli_str(a, "stopped_at"));
	kv("chain length", len);
	kv("chain head", cli_str(chain, "head"));
}

static long long ival(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void print_metrics(const json_t *m)
{
	json_t *mb = json_object_get(m, "mailbox");
	printf("%-15s calls %lld, failures %lld, messages %lld, requests %lld, restarts %lld\n",
	       "metrics", ival(m, "calls"), ival(m, "failures"), ival(m, "messages"),
	       ival(m, "requests"), ival(m, "restarts"));
	printf("%-15s %lld/%lld, memory %lld bytes, fuel %lld\n", "mailbox", ival(mb, "depth"),
	       ival(mb, "capacity"), ival(m, "memory_bytes"), ival(m, "fuel"));
}

/* GET path as JSON, or NULL (for the optional parts of inspect). */
static json_t *get_optional(struct cli *c, const char *path)
{
	struct client_reply r = {0};
	json_t *v = NULL;
	if (cli_do(c, "GET", path, NULL, NULL, 0, &r) == 0 && r.status == 200)
		v = json_parse(r.body.data, r.body.len, 64, NULL);
	client_reply_release(&r);
	return v;
}

int cmd_inspect(struct cli *c, int argc, char **argv)
{
	char id[37], path[128];
	int rc = one_id(c, argc, argv, inspect_help, NULL, id);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	json_t *a;
	snprintf(path, sizeof(path), "/actors/%s", id);
	if ((rc = cli_json(c, "GET", path, NULL, NULL, 0, &a, NULL)))
		return rc;
	if (c->json) {
		cli_print_json(a);
		json_decref(a);
		return EXIT_OK;
	}
	print_run(a);
	snprintf(path, sizeof(path), "/actors/%s/metrics", id);
	json_t *m = is_live(a) ? get_optional(c, path) : NULL;
	if (m)
		print_metrics(m);
	snprintf(path, sizeof(path), "/actors/%s/manifest", id);
	json_t *man = get_optional(c, path);
	if (man) {
		printf("manifest:\n");
		cli_print_json(man);
	}
	json_decref(m);
	json_decref(man);
	json_decref(a);
	return EXIT_OK;
}

/* Writes a reply's bytes to stdout; in human mode JSON is indented and a
 * final newline is added when missing. */
static void print_body(struct cli *c, const struct client_reply *r)
{
	if (!c->json && strcmp(r->ctype, "application/json") == 0) {
		json_t *v = json_parse(r->body.data, r->body.len, 256, NULL);
		if (v) {
			cli_print_json(v);
			json_decref(v);
			return;
		}
	}
	fwrite(r->body.data ? r->body.data : "", 1, r->body.len, stdout);
	if (!c->json && r->body.len && r->body.data[r->body.len - 1] != '\n')
		fputc('\n', stdout);
}

static const char state_help[] =
	"usage: theater state ID\n\n"
	"Print the state the actor holds now (GET /actors/{id}/state). JSON states are\n"
	"indented; --json prints the bytes exactly as stored.\n";

int cmd_state(struct cli *c, int argc, char **argv)
{
	char id[37], path[128];
	int rc = one_id(c, argc, argv, state_help, NULL, id);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	snprintf(path, sizeof(path), "/actors/%s/state", id);
	struct client_reply r;
	if ((rc = cli_do(c, "GET", path, NULL, NULL, 0, &r)))
		return rc;
	if (r.status != 200)
		rc = cli_problem(c, &r);
	else
		print_body(c, &r);
	client_reply_release(&r);
	return rc;
}

/* ---- send and request ---- */

/* The payload: the MESSAGE argument, or --file F ("-" is stdin). */
static char *payload(struct cli *c, char **pos, int npos, const char *file, size_t *len)
{
	if (file && npos > 1) {
		cli_usage(c, "give the message as an argument or with --file, not both");
		return NULL;
	}
	if (file)
		return cli_read_file(file, len);
	if (npos < 2) {
		cli_usage(c, "missing the message (an argument, or --file FILE; - is stdin)");
		return NULL;
	}
	*len = strlen(pos[1]);
	return strdup(pos[1]);
}

static const char send_help[] =
	"usage: theater send ID MESSAGE\n"
	"       theater send ID --file FILE      (- reads stdin)\n\n"
	"Send a message to the actor's mailbox (handle-send). The server answers once\n"
	"the message is recorded in the chain; it runs later, in order.\n\n"
	"  -k, --idempotency-key KEY   a retry with the same KEY is accepted once\n";

int cmd_send(struct cli *c, int argc, char **argv)
{
	const char *file = NULL, *idem = NULL;
	char *pos[2], id[37], path[128];
	int npos, rc;
	const struct cli_opt opts[] = {{"file", 'f', 1, &file, NULL},
				       {"idempotency-key", 'k', 1, &idem, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, send_help, pos, 1, 2, &npos)) >= 0)
		return rc;
	size_t len;
	char *body = payload(c, pos, npos, file, &len);
	if (!body)
		return EXIT_USAGE;
	if ((rc = cli_resolve(c, pos[0], id))) {
		free(body);
		return rc;
	}
	snprintf(path, sizeof(path), "/actors/%s/messages", id);
	json_t *j = NULL;
	if ((rc = cli_idempotency(c, idem)) == 0)
		rc = cli_json(c, "POST", path, "application/octet-stream", body, len, &j, NULL);
	free(body);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("accepted (%lld bytes)\n", (long long)json_integer_value(json_object_get(j, "size")));
	json_decref(j);
	return EXIT_OK;
}

static const char request_help[] =
	"usage: theater request ID MESSAGE [--timeout SECONDS]\n"
	"       theater request ID --file FILE   (- reads stdin)\n\n"
	"Make a request (handle-request) and print the actor's answer: JSON indented,\n"
	"other bytes as they are (--json: always as they are). When the actor streams\n"
	"its answer (the server answers text/event-stream), each chunk is printed as it\n"
	"arrives, and the stream's final answer is not printed again.\n\n"
	"  --timeout S    seconds the server waits for the answer (default 30, max 300)\n"
	"  -k, --idempotency-key KEY\n"
	"                 a retry with the same KEY gets the first answer again\n";

struct req_stream {
	struct cli *c;
	int chunks;
	int failed;
	int ended_nl;      /* the last chunk ended with a newline */
};

/* A chunk's text: a JSON string, or {"data"|"chunk"|"text": "..."}; else the
 * raw data line. */
static void print_chunk(struct req_stream *s, const char *data)
{
	json_t *v = json_parse(data, strlen(data), 16, NULL);
	const char *text = json_string_value(v);
	const char *const keys[] = {"data", "chunk", "text", "delta"};
	for (size_t k = 0; !text && k < 4; k++)
		text = json_string_value(json_object_get(v, keys[k]));
	const char *out = text ? text : data;
	size_t n = strlen(out);
	fwrite(out, 1, n, stdout);
	fflush(stdout);
	s->ended_nl = n ? out[n - 1] == '\n' : s->ended_nl;
	json_decref(v);
}

static int on_req_frame(void *user, const char *event, const char *id, const char *data)
{
	struct req_stream *s = user;
	if (s->c->json) {
		printf("{\"event\":\"%s\",\"data\":%s}\n", event, data);
		fflush(stdout);
		return 0;
	}
	if (!strcmp(event, "chunk") || !strcmp(event, "message")) {
		s->chunks++;
		print_chunk(s, data);
	} else if (!strcmp(event, "done")) {
		if (s->chunks == 0)
			print_chunk(s, data);
		if (!s->ended_nl)
			fputc('\n', stdout);
		return 1;
	} else if (!strcmp(event, "error")) {
		if (s->chunks && !s->ended_nl)
			fputc('\n', stdout);
		json_t *v = json_parse(data, strlen(data), 16, NULL);
		const char *d = json_string_value(json_object_get(v, "detail"));
		cli_error("the actor's stream failed: %s", d ? d : data);
		json_decref(v);
		s->failed = 1;
		return 1;
	}
	return 0;
}

int cmd_request(struct cli *c, int argc, char **argv)
{
	const char *file = NULL, *timeout = NULL, *idem = NULL;
	char *pos[2], id[37], path[160];
	int npos, rc;
	const struct cli_opt opts[] = {{"file", 'f', 1, &file, NULL},
				       {"timeout", 't', 1, &timeout, NULL},
				       {"idempotency-key", 'k', 1, &idem, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, request_help, pos, 1, 2, &npos)) >= 0)
		return rc;
	if (timeout && strspn(timeout, "0123456789") != strlen(timeout))
		return cli_usage(c, "--timeout wants whole seconds, not '%s'", timeout);
	size_t len;
	char *body = payload(c, pos, npos, file, &len);
	if (!body)
		return EXIT_USAGE;
	if ((rc = cli_resolve(c, pos[0], id))) {
		free(body);
		return rc;
	}
	snprintf(path, sizeof(path), "/actors/%s/requests%s%s", id, timeout ? "?timeout=" : "",
		 timeout ? timeout : "");
	struct req_stream s = {.c = c, .ended_nl = 1};
	struct client_reply r = {0};
	struct err e = {0};
	if ((rc = cli_idempotency(c, idem))) {
		free(body);
		return rc;
	}
	struct client *cl = cli_client(c);
	if (!cl || client_stream(cl, "POST", path, "text/event-stream, application/json;q=0.9, */*;q=0.8",
				 NULL, "application/octet-stream", body, len, on_req_frame, &s,
				 &r, &e)) {
		if (cl)
			cli_error("%s", e.msg);
		rc = EXIT_CONNECT;
	} else if (r.status >= 400) {
		rc = cli_problem(c, &r);
	} else if (strcmp(r.ctype, "text/event-stream") == 0) {
		rc = s.failed ? EXIT_REFUSED : EXIT_OK;
	} else {
		print_body(c, &r);
	}
	client_reply_release(&r);
	free(body);
	return rc;
}

/* ---- lifecycle: stop, kill, rm, restart ---- */

/* Resolves and runs `method /actors/ID<suffix><query>` for each id; the worst exit code wins.
 * want: print the id ("stopped"), or for restart the new status. */
static int each_id(struct cli *c, char **pos, int npos, const char *method, const char *suffix,
		   const char *query, const char *done)
{
	int worst = EXIT_OK;
	for (int i = 0; i < npos; i++) {
		char id[37], path[256];
		int rc = cli_resolve(c, pos[i], id);
		if (!rc) {
			snprintf(path, sizeof(path), "/actors/%s%s%s", id, suffix, query ? query : "");
			json_t *j;
			long status = 0;
			rc = cli_json(c, method, path, NULL, NULL, 0, &j, &status);
			if (!rc && c->json && !json_is_null(j))
				cli_print_json(j);
			else if (!rc && !c->json && status == 304)
				printf("%s: already ended\n", id);
			else if (!rc && !c->json && json_is_object(j))
				printf("%s: %s (%s)\n", id, done, cli_str(j, "status"));
			else if (!rc && !c->json)
				printf("%s: %s\n", id, done);
			json_decref(j);
		}
		if (rc > worst)
			worst = rc;
	}
	return worst;
}

static const char stop_help[] =
	"usage: theater stop ID...\n\n"
	"Stop actors cleanly (terminal event `stopped`). An actor that had already\n"
	"ended is reported as such (not an error).\n";

int cmd_stop(struct cli *c, int argc, char **argv)
{
	char *pos[64];
	int npos, rc;
	if ((rc = cli_parse(c, argc, argv, NULL, stop_help, pos, 1, 64, &npos)) >= 0)
		return rc;
	return each_id(c, pos, npos, "POST", "/stop", NULL, "stopped");
}

static const char kill_help[] =
	"usage: theater kill ID...\n\n"
	"Kill actors at once (terminal event `killed`).\n";

int cmd_kill(struct cli *c, int argc, char **argv)
{
	char *pos[64];
	int npos, rc;
	if ((rc = cli_parse(c, argc, argv, NULL, kill_help, pos, 1, 64, &npos)) >= 0)
		return rc;
	return each_id(c, pos, npos, "POST", "/kill", NULL, "killed");
}

static const char rm_help[] =
	"usage: theater rm [-f] ID...\n\n"
	"Delete runs from the server's list (their chain files are kept). A live actor\n"
	"is refused (409) unless -f kills it first.\n\n"
	"  -f, --force    kill a live actor first\n";

int cmd_rm(struct cli *c, int argc, char **argv)
{
	char *pos[64];
	int npos, rc, force = 0;
	const struct cli_opt opts[] = {{"force", 'f', 0, NULL, &force}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, rm_help, pos, 1, 64, &npos)) >= 0)
		return rc;
	return each_id(c, pos, npos, "DELETE", "", force ? "?force=true" : NULL,
		       "deleted");
}

static const char restart_help[] =
	"usage: theater restart [--state initial|last] ID...\n\n"
	"Restart actors with the same package digest (events `restarted`, init,\n"
	"`started`).\n\n"
	"  --state last      keep the state of the last good call (the server's\n"
	"                    default)\n"
	"  --state initial   init afresh from the manifest's initial state\n";

int cmd_restart(struct cli *c, int argc, char **argv)
{
	char *pos[64], query[64] = "";
	const char *state = NULL;
	int npos, rc;
	const struct cli_opt opts[] = {{"state", 's', 1, &state, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, restart_help, pos, 1, 64, &npos)) >= 0)
		return rc;
	if (state && strcmp(state, "initial") && strcmp(state, "last"))
		return cli_usage(c, "--state must be 'initial' or 'last', not '%s'", state);
	if (state)
		snprintf(query, sizeof(query), "?state=%s", state);
	return each_id(c, pos, npos, "POST", "/restart", state ? query : NULL,
		       "restarted");
}

/* ---- verify and replay ---- */

static const char verify_help[] =
	"usage: theater verify ID\n\n"
	"Recompute every hash of the actor's chain file. Exit code 0 when it is\n"
	"intact, 6 when it is not (the first bad event is named).\n";

int cmd_verify(struct cli *c, int argc, char **argv)
{
	char id[37], path[128];
	int rc = one_id(c, argc, argv, verify_help, NULL, id);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	snprintf(path, sizeof(path), "/actors/%s/chain/verify", id);
	json_t *j;
	if ((rc = cli_json(c, "GET", path, NULL, NULL, 0, &j, NULL)))
		return rc;
	int valid = json_is_true(json_object_get(j, "valid"));
	if (c->json) {
		cli_print_json(j);
	} else if (valid) {
		printf("valid: %lld events, head %s\n",
		       (long long)json_integer_value(json_object_get(j, "length")),
		       cli_str(j, "head") ? cli_str(j, "head") : "-");
	} else {
		json_t *bad = json_object_get(j, "first_bad_seq");
		printf("INVALID: %s", cli_str(j, "detail") ? cli_str(j, "detail") : "the chain does not verify");
		if (json_is_integer(bad))
			printf(" (first bad event: seq %lld)", (long long)json_integer_value(bad));
		printf("\n");
	}
	json_decref(j);
	return valid ? EXIT_OK : EXIT_CHECK;
}

static const char replay_help[] =
	"usage: theater replay ID\n\n"
	"Re-execute the run from its recorded inputs in a fresh instance of the same\n"
	"package digest, with host calls answered from the record, and compare every\n"
	"output and state (POST /actors/{id}/replay). Exit code 0 when the replay\n"
	"matches the record, 6 when it diverges (where and how is printed).\n";

int cmd_replay(struct cli *c, int argc, char **argv)
{
	char id[37], path[128];
	int rc = one_id(c, argc, argv, replay_help, NULL, id);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	snprintf(path, sizeof(path), "/actors/%s/replay", id);
	json_t *j;
	if ((rc = cli_json(c, "POST", path, NULL, NULL, 0, &j, NULL)))
		return rc;
	json_t *at = json_object_get(j, "diverged_at");
	int diverged = at && !json_is_null(at) && !json_is_false(at);
	if (c->json || !json_object_get(j, "replayed")) {
		cli_print_json(j);
	} else if (!diverged) {
		printf("replayed %lld calls over %lld events: no divergence\n",
		       (long long)json_integer_value(json_object_get(j, "replayed")),
		       (long long)json_integer_value(json_object_get(j, "events")));
	} else {
		char *exp = json_dumps(json_object_get(j, "expected"), JSON_ENCODE_ANY | JSON_COMPACT);
		char *got = json_dumps(json_object_get(j, "got"), JSON_ENCODE_ANY | JSON_COMPACT);
		printf("DIVERGED at seq %lld after %lld calls\n  expected: %s\n  got:      %s\n",
		       (long long)json_integer_value(at),
		       (long long)json_integer_value(json_object_get(j, "replayed")),
		       exp ? exp : "-", got ? got : "-");
		free(exp);
		free(got);
	}
	json_decref(j);
	return diverged ? EXIT_CHECK : EXIT_OK;
}

/* ---- version ---- */

static const char version_help[] =
	"usage: theater version\n\nPrint this client's version and the server's (GET /version).\n";

int cmd_version(struct cli *c, int argc, char **argv)
{
	int npos, rc;
	if ((rc = cli_parse(c, argc, argv, NULL, version_help, NULL, 0, 0, &npos)) >= 0)
		return rc;
	json_t *j;
	if ((rc = cli_json(c, "GET", "/version", NULL, NULL, 0, &j, NULL)))
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("client: theater %s\nserver: %s %s (api %s) at %s\n", THEATER_VERSION,
		       cli_str(j, "name"), cli_str(j, "version"), cli_str(j, "api"), c->url);
	json_decref(j);
	return EXIT_OK;
}
