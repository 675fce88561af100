/* cli.c - the shared part of the commands: options, errors, calls, ids. */
#include "tools/theater/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("theater: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int cli_usage(struct cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "theater %s: ", c->cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see 'theater %s --help')\n", c->cmd);
	va_end(ap);
	return EXIT_USAGE;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *lng, size_t n,
				      char shrt)
{
	for (const struct cli_opt *o = opts; o && o->lng; o++) {
		if (lng && strlen(o->lng) == n && strncmp(o->lng, lng, n) == 0)
			return o;
		if (!lng && shrt && o->shrt == shrt)
			return o;
	}
	return NULL;
}

/* One option at argv[*i]; advances *i past its value. */
static int one_opt(struct cli *c, int argc, char **argv, int *i, const struct cli_opt *all)
{
	const char *a = argv[*i], *val = NULL;
	const struct cli_opt *o;
	if (a[1] == '-') {
		const char *eq = strchr(a + 2, '=');
		size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		o = find_opt(all, a + 2, n, 0);
		val = eq ? eq + 1 : NULL;
	} else {
		o = a[2] == '\0' ? find_opt(all, NULL, 0, a[1]) : NULL;
	}
	if (!o)
		return cli_usage(c, "unknown option '%s'", a);
	if (!o->has_arg) {
		if (val)
			return cli_usage(c, "option '--%s' takes no value", o->lng);
		*o->flag = 1;
		return -1;
	}
	if (!val) {
		if (*i + 1 >= argc)
			return cli_usage(c, "option '%s' needs a value", a);
		val = argv[++*i];
	}
	*o->sval = val;
	return -1;
}

int cli_parse(struct cli *c, int argc, char **argv, const struct cli_opt *opts,
	      const char *help, char **pos, int min_pos, int max_pos, int *npos)
{
	int want_help = 0, n = 0, nopts = 0;
	while (opts && opts[nopts].lng)
		nopts++;
	struct cli_opt all[32];
	if (nopts > 27)
		return cli_usage(c, "internal: too many options");
	if (nopts)
		memcpy(all, opts, sizeof(*opts) * (size_t)nopts);
	all[nopts++] = (struct cli_opt){"json", 0, 0, NULL, &c->json};
	all[nopts++] = (struct cli_opt){"url", 0, 1, &c->url, NULL};
	all[nopts++] = (struct cli_opt){"token", 0, 1, &c->token, NULL};
	all[nopts++] = (struct cli_opt){"help", 'h', 0, NULL, &want_help};
	all[nopts] = (struct cli_opt){0};
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = 1;
		} else if (!only_pos && a[0] == '-' && a[1] != '\0') {
			int rc = one_opt(c, argc, argv, &i, all);
			if (rc >= 0)
				return rc;
		} else {
			if (n >= max_pos)
				return cli_usage(c, "too many arguments ('%s')", a);
			pos[n++] = argv[i];
		}
	}
	if (want_help) {
		fputs(help, stdout);
		fputs("\nCommon options: --json (print the server's JSON), --url URL "
		      "(or THEATER_URL), --token TOKEN (or THEATER_TOKEN), -h/--help.\n", stdout);
		return EXIT_OK;
	}
	if (n < min_pos)
		return cli_usage(c, "missing argument");
	*npos = n;
	return -1;
}

struct client *cli_client(struct cli *c)
{
	if (!c->cl) {
		c->cl = client_new(c->url, c->token);
		if (!c->cl)
			cli_error("cannot start the HTTP client (out of memory?)");
	}
	return c->cl;
}

int cli_idempotency(struct cli *c, const char *key)
{
	if (!key)
		return 0;
	if (!*key || strlen(key) > 200 || strpbrk(key, "\r\n"))
		return cli_usage(c, "--idempotency-key wants 1 to 200 characters on one line");
	char line[256];
	snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
	struct client *cl = cli_client(c);
	if (!cl || client_set_header(cl, line)) {
		cli_error("out of memory");
		return EXIT_CONNECT;
	}
	return 0;
}

int cli_do(struct cli *c, const char *method, const char *path, const char *ctype,
	   const void *body, size_t len, struct client_reply *out)
{
	struct err e = {0};
	struct client *cl = cli_client(c);
	if (!cl) {
		memset(out, 0, sizeof(*out));
		return EXIT_CONNECT;
	}
	if (client_call(cl, method, path, ctype, body, len, out, &e)) {
		cli_error("%s", e.msg);
		return EXIT_CONNECT;
	}
	return 0;
}

int cli_problem(struct cli *c, const struct client_reply *r)
{
	struct err e = {0};
	json_t *p = r->body.len ? json_parse(r->body.data, r->body.len, 32, &e) : NULL;
	const char *detail = json_string_value(json_object_get(p, "detail"));
	const char *code = json_string_value(json_object_get(p, "code"));
	if (c->json && p)
		cli_print_json(p);
	const char *run = json_string_value(json_object_get(p, "actor_id"));
	if (detail) {
		cli_error("%s (%ld %s)", detail, r->status, code ? code : "error");
		if (strncmp(detail, "no route for", 12) == 0)
			cli_error("this theater-server does not have that route (is it older "
				  "than this client?)");
	} else if (r->status == 401) {
		cli_error("the server wants a token (401): set THEATER_TOKEN or --token");
	} else {
		cli_error("the server answered %ld%s%.200s", r->status, r->body.len ? ": " : "",
			  r->body.len ? r->body.data : "");
	}
	if (run)
		cli_error("the failed run stays inspectable: theater inspect %s", run);
	json_decref(p);
	return r->status == 404 ? EXIT_NOT_FOUND : EXIT_REFUSED;
}

int cli_json(struct cli *c, const char *method, const char *path, const char *ctype,
	     const void *body, size_t len, json_t **out, long *status_out)
{
	struct client_reply r;
	struct err e = {0};
	*out = NULL;
	int rc = cli_do(c, method, path, ctype, body, len, &r);
	if (rc)
		goto done;
	if (status_out)
		*status_out = r.status;
	if (r.status >= 400 || r.status < 200) {
		rc = cli_problem(c, &r);
		goto done;
	}
	if (r.body.len == 0) {
		*out = json_null();
		goto done;
	}
	*out = json_parse(r.body.data, r.body.len, 256, &e);
	if (!*out) {
		cli_error("the server's answer to %s %s is not JSON: %s", method, path, e.msg);
		rc = EXIT_REFUSED;
	}
done:
	client_reply_release(&r);
	return rc;
}

const char *cli_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

void cli_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
}

char *cli_read_file(const char *path, size_t *len_out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		cli_error("cannot read '%s': %s", path, strerror(errno));
		return NULL;
	}
	struct buf b;
	buf_init(&b, 1u << 30);
	char chunk[65536];
	size_t n;
	int bad = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) != ERR_OK) {
			bad = 1;
			break;
		}
	if (ferror(f) || bad) {
		cli_error("cannot read '%s': %s", path, bad ? "too large" : strerror(errno));
		buf_release(&b);
		if (f != stdin)
			fclose(f);
		return NULL;
	}
	if (f != stdin)
		fclose(f);
	return buf_steal(&b, len_out);
}

static int is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
			return 0;
	}
	return 1;
}

static int live(const json_t *a)
{
	const char *st = json_string_value(json_object_get(a, "status"));
	return st && (!strcmp(st, "starting") || !strcmp(st, "running") || !strcmp(st, "stopping"));
}

/* Every run the server lists (all pages), appended to items. */
static int list_all(struct cli *c, const char *query, json_t *items)
{
	char *cursor = NULL;
	int rc = 0;
	for (;;) {
		char *esc = cursor ? client_escape(cursor) : NULL;
		char path[1024];
		snprintf(path, sizeof(path), "/actors?limit=500%s%s%s%s", query ? "&" : "",
			 query ? query : "", esc ? "&cursor=" : "", esc ? esc : "");
		free(esc);
		free(cursor);
		cursor = NULL;
		json_t *page;
		if ((rc = cli_json(c, "GET", path, NULL, NULL, 0, &page, NULL)))
			return rc;
		json_array_extend(items, json_object_get(page, "items"));
		const char *next = json_string_value(json_object_get(page, "next_cursor"));
		cursor = next && *next ? strdup(next) : NULL;
		json_decref(page);
		if (!cursor)
			return 0;
	}
}

int cli_list_all(struct cli *c, const char *query, json_t **out)
{
	*out = json_array();
	int rc = list_all(c, query, *out);
	if (rc) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

static int pick(struct cli *c, const char *arg, json_t *m, const char *what, char id_out[37])
{
	size_t n = json_array_size(m);
	if (n == 1) {
		snprintf(id_out, 37, "%s", json_string_value(json_object_get(json_array_get(m, 0), "id")));
		return 0;
	}
	fprintf(stderr, "theater: '%s' is ambiguous: %zu actors match its %s:\n", arg, n, what);
	for (size_t i = 0; i < n && i < 10; i++) {
		json_t *a = json_array_get(m, i);
		fprintf(stderr, "  %s  %s  %s\n", json_string_value(json_object_get(a, "id")),
			json_string_value(json_object_get(a, "name")) ?: "-",
			json_string_value(json_object_get(a, "status")) ?: "-");
	}
	fprintf(stderr, "give more of the id\n");
	return EXIT_AMBIGUOUS;
}

int cli_resolve(struct cli *c, const char *arg, char id_out[37])
{
	if (is_uuid(arg)) {
		snprintf(id_out, 37, "%s", arg);
		return 0;
	}
	if (!*arg)
		return cli_usage(c, "an empty actor id");
	json_t *all, *by_id = json_array(), *by_name = json_array(), *live_named = json_array();
	int rc = cli_list_all(c, NULL, &all);
	size_t i, n = strlen(arg);
	json_t *a;
	json_array_foreach(all, i, a) {
		const char *id = json_string_value(json_object_get(a, "id"));
		const char *name = json_string_value(json_object_get(a, "name"));
		if (id && strncmp(id, arg, n) == 0)
			json_array_append(by_id, a);
		if (name && strcmp(name, arg) == 0) {
			json_array_append(by_name, a);
			if (live(a))
				json_array_append(live_named, a);
		}
	}
	if (rc)
		;
	else if (json_array_size(by_id))
		rc = pick(c, arg, by_id, "id prefix", id_out);
	else if (json_array_size(live_named))   /* a name: its live run first, like docker */
		rc = pick(c, arg, live_named, "name (live runs)", id_out);
	else if (json_array_size(by_name))
		rc = pick(c, arg, by_name, "name", id_out);
	else {
		cli_error("no actor matches '%s' (an id, a unique id prefix or a name)", arg);
		rc = EXIT_NOT_FOUND;
	}
	json_decref(all);
	json_decref(by_id);
	json_decref(by_name);
	json_decref(live_named);
	return rc;
}
