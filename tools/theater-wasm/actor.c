/* actor.c - `theater-wasm actor`, the offline harness for actors (actor.h).
 *
 * The calls follow the server's runtime exactly (docs/actor-abi.md): before
 * each call theater_reset_heap (when exported), then the state and the message
 * are placed in memory from theater_alloc, the export is called, and the
 * result record is read with the same checks (src/actor_abi.c). A status 1
 * leaves the state unchanged; a trap or an exhausted budget ends the run, as
 * it fails the actor's run on the server.
 */
#include "tools/theater-wasm/actor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/actor_abi.h"
#include "src/manifest.h"
#include "src/util/json.h"
#include "src/util/units.h"
#include "src/wasm/wasm.h"
#include "tools/theater-wasm/fakes.h"

#define EXIT_LOAD 1
#define EXIT_TRAP 2
#define EXIT_ACTOR_ERROR 3
#define EXIT_USAGE 64
#define MAX_FILE_BYTES ((size_t)64 << 20)
#define DEFAULT_FUEL 100000000ull
#define DEFAULT_NOW_MS 1700000000000ll

enum step_kind { STEP_SEND, STEP_REQUEST, STEP_TICK };

struct step {
	enum step_kind kind;
	uint8_t *data;     /* owned */
	size_t len;
};

struct opts {
	const char *file;
	struct step *steps;
	size_t nsteps;
	char *state;             /* --state: start from it (owned copy) */
	size_t state_len;
	int have_state;
	const char *init_state;  /* --init-state */
	struct manifest *manifest;   /* --manifest: initial_state and grants */
	const char **answers;
	size_t *answer_lens;
	size_t nanswers;
	json_t *http;            /* --http-fixture */
	uint64_t seed, fuel;
	int64_t now_ms;
	uint32_t max_pages;
	const char *self_id;
	int json, help;
};

struct harness {
	struct wasm_store *store;
	struct wasm_instance *inst;
	struct wasm_memory *mem;
	struct wasm_func *f_alloc, *f_reset;
	struct fakes *fakes;
	uint8_t *state;
	size_t state_len;
	const struct opts *o;
	int actor_errors;
};

static const char usage_text[] =
	"usage: theater-wasm actor FILE.wasm [options] [--send BYTES | --request BYTES]...\n"
	"\n"
	"Runs a theater actor without a server: init (or --state), then each --send\n"
	"(handle-send) and --request (handle-request) in order, with host calls\n"
	"answered by built-in fakes. Prints each call's result, host calls and state.\n"
	"\n"
	"calls (repeatable, run in order):\n"
	"  --send BYTES          deliver a message (handle-send)\n"
	"  --request BYTES       make a request (handle-request) and print the response\n"
	"  --send-file FILE      --send with a file's bytes\n"
	"  --request-file FILE   --request with a file's bytes\n"
	"  --tick NAME           deliver a tick of timer NAME (handle-timer), with\n"
	"                        {\"timer\", \"tick\": its count, \"scheduled_ms\": the\n"
	"                        fake clock, \"missed\": 0}\n"
	"options:\n"
	"  --state JSON          start from this state instead of calling init\n"
	"  --init-state JSON     call init with this state (default: none)\n"
	"  --manifest FILE       the actor's manifest (TOML or JSON): its initial_state\n"
	"                        (merged with --init-state as a spawn merges) and its\n"
	"                        [[handler]] grants, checked against the imports\n"
	"  --answer BYTES        answer to the actor's next message-server request\n"
	"                        (repeatable, used in order; none left: -6)\n"
	"  --http-fixture FILE   http-client answers: a JSON object from \"METHOD URL\"\n"
	"                        (or \"URL\") to a response {\"status\",\"headers\",\"body\"}\n"
	"  --seed N              seed of the fake random generator (default 0)\n"
	"  --now MS              start of the fake clock, unix ms (default 1700000000000)\n"
	"  --self-id ID          the actor's id (default 00000000-0000-4000-8000-000000000001)\n"
	"  --fuel N              instructions per call (default 100000000; 0: unlimited)\n"
	"  --max-memory BYTES    cap on linear memory (default 64M)\n"
	"  --json                one JSON object per call instead of text\n"
	"\n"
	"exit status: 0 every call ok, 3 an actor error (status 1), 2 a trap or\n"
	"exhausted budget, 1 module does not load or link, 64 usage error.\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("theater-wasm actor: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* A whole file, at most MAX_FILE_BYTES; NULL (with errno's message) otherwise. */
static uint8_t *read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = cap > MAX_FILE_BYTES * 2 ? NULL : realloc(buf, cap + 1);
			if (!nb)
				goto fail;
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f) || len > MAX_FILE_BYTES)
		goto fail;
	fclose(f);
	buf[len] = '\0';
	*len_out = len;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

/* ---- command line ---- */

static int add_step(struct opts *o, enum step_kind kind, const char *val, int file)
{
	size_t len = 0;
	uint8_t *data = file ? read_file(val, &len) : (uint8_t *)strdup(val);
	if (!data)
		return file ? usage("cannot read '%s'", val) : usage("out of memory (%s)", val);
	if (!file)
		len = strlen(val);
	o->steps[o->nsteps++] = (struct step){kind, data, len};
	return 0;
}

static int take_json_file(struct opts *o, const char *path)
{
	size_t len;
	uint8_t *text = read_file(path, &len);
	struct err err = {0};
	if (!text)
		return usage("cannot read --http-fixture '%s'", path);
	json_decref(o->http);
	o->http = json_parse((char *)text, len, 64, &err);
	free(text);
	if (!json_is_object(o->http))
		return usage("--http-fixture '%s' is not a JSON object", path);
	return 0;
}

static int take_manifest(struct opts *o, const char *path)
{
	size_t len;
	uint8_t *text = read_file(path, &len);
	struct err err = {0};
	struct manifest_options mo = {.name = path, .allow_unsupported = 1};
	if (!text)
		return usage("cannot read --manifest '%s'", path);
	manifest_free(o->manifest);
	o->manifest = NULL;
	enum err_code rc = manifest_load((char *)text, len, &mo, &o->manifest, NULL, &err);
	free(text);
	if (rc)
		return usage("--manifest: %s", err.msg);
	return 0;
}

static int take_number(const char *opt, const char *val, uint64_t *out)
{
	if (units_parse_size(val, UINT64_MAX, out) != 0 || strpbrk(val, "KkMmGg"))
		return usage("bad number for %s", opt);
	return 0;
}

static int take_option(struct opts *o, const char *opt, const char *val)
{
	uint64_t n = 0;
	if (!strcmp(opt, "--send") || !strcmp(opt, "--request"))
		return add_step(o, opt[2] == 's' ? STEP_SEND : STEP_REQUEST, val, 0);
	if (!strcmp(opt, "--tick"))
		return add_step(o, STEP_TICK, val, 0);
	if (!strcmp(opt, "--send-file") || !strcmp(opt, "--request-file"))
		return add_step(o, opt[2] == 's' ? STEP_SEND : STEP_REQUEST, val, 1);
	if (!strcmp(opt, "--state")) {
		free(o->state);
		o->state = strdup(val);
		o->state_len = strlen(val);
		o->have_state = 1;
	} else if (!strcmp(opt, "--init-state")) {
		o->init_state = val;
	} else if (!strcmp(opt, "--answer")) {
		o->answer_lens[o->nanswers] = strlen(val);
		o->answers[o->nanswers++] = val;
	} else if (!strcmp(opt, "--manifest")) {
		return take_manifest(o, val);
	} else if (!strcmp(opt, "--http-fixture")) {
		return take_json_file(o, val);
	} else if (!strcmp(opt, "--seed")) {
		return take_number(opt, val, &o->seed);
	} else if (!strcmp(opt, "--fuel")) {
		return take_number(opt, val, &o->fuel);
	} else if (!strcmp(opt, "--now")) {
		if (take_number(opt, val, &n))
			return EXIT_USAGE;
		o->now_ms = (int64_t)n;
	} else if (!strcmp(opt, "--self-id")) {
		if (strlen(val) != 36)
			return usage("--self-id '%s' is not 36 characters", val);
		o->self_id = val;
	} else {   /* --max-memory */
		if (units_parse_size(val, UINT64_MAX, &n) != 0 || n < 65536)
			return usage("bad --max-memory value '%s' (at least 64K)", val);
		o->max_pages = n / 65536 > 65536 ? 65536 : (uint32_t)(n / 65536);
	}
	return 0;
}

static int valued(const char *a)
{
	static const char *const names[] = {
		"--send", "--request", "--send-file", "--request-file", "--tick", "--state",
		"--init-state",
		"--answer", "--http-fixture", "--manifest", "--seed", "--now", "--self-id", "--fuel",
		"--max-memory", NULL,
	};
	for (const char *const *n = names; *n; n++)
		if (!strcmp(*n, a))
			return 1;
	return 0;
}

static int parse(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = 1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (valued(a)) {
			if (i + 1 >= argc)
				return usage("option '%s' needs a value", a);
			int rc = take_option(o, a, argv[++i]);
			if (rc)
				return rc;
		} else if (!strncmp(a, "--", 2)) {
			return usage("unknown option '%s'", a);
		} else if (!o->file) {
			o->file = a;
		} else {
			return usage("unexpected argument '%s' (messages go after --send or "
				     "--request)", a);
		}
	}
	if (!o->help && !o->file)
		return usage("%s", "missing FILE.wasm");
	if (o->have_state && o->init_state)
		return usage("%s", "--state and --init-state exclude each other");
	return 0;
}

/* ---- output ---- */

/* Bytes as text on one line: printable ASCII and UTF-8 as they are, the rest
 * escaped (\n, \t, \xNN). */
static void put_bytes(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];
		if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch == '\\')
			fputs("\\\\", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

static void print_calls_text(const json_t *calls)
{
	size_t i;
	const json_t *c;
	json_array_foreach(calls, i, c) {
		const char *name = json_string_value(json_object_get(c, "call"));
		const json_t *in = json_object_get(c, "input"), *out = json_object_get(c, "output");
		if (!strcmp(name, "theater:simple/runtime/log") && json_is_string(in)) {
			fputs("  log: ", stdout);
			put_bytes((const uint8_t *)json_string_value(in), json_string_length(in));
			putchar('\n');
			continue;
		}
		char *is = in ? json_compact(in) : NULL, *os = out ? json_compact(out) : NULL;
		printf("  host: %s%s%s -> %s\n", name, is ? " " : "", is ? is : "", os ? os : "-");
		free(is);
		free(os);
	}
}

static void report_json(struct harness *h, const char *fn, const struct step *s,
			const char *status, const uint8_t *text, size_t text_len, int changed,
			uint64_t fuel, json_t *calls)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:I}", "call", fn, "status", status,
			      "state_changed", changed, "fuel", (json_int_t)fuel);
	json_object_set_new(o, "input", s ? fakes_bytes_json(s->data, s->len) : json_null());
	if (text)
		json_object_set_new(o, strcmp(status, "ok") == 0 ? "response" : "error",
				    fakes_bytes_json(text, text_len));
	json_object_set_new(o, "state", fakes_bytes_json(h->state ? h->state : (uint8_t *)"",
							 h->state_len));
	json_object_set(o, "host_calls", calls);
	char *line = json_compact(o);
	puts(line ? line : "{}");
	free(line);
	json_decref(o);
}

static void report_text(struct harness *h, const char *fn, const struct step *s,
			const char *status, const uint8_t *text, size_t text_len, int changed,
			json_t *calls)
{
	int ok = strcmp(status, "ok") == 0;
	printf("%s", fn);
	if (s) {
		fputs(" \"", stdout);
		put_bytes(s->data, s->len);
		putchar('"');
	}
	printf(": %s", status);
	if (text && !ok) {
		fputs(": ", stdout);
		put_bytes(text, text_len);
	}
	putchar('\n');
	print_calls_text(calls);
	if (text && ok) {
		fputs("  response: ", stdout);
		put_bytes(text, text_len);
		putchar('\n');
	}
	fputs("  state: ", stdout);
	put_bytes(h->state, h->state_len);
	puts(changed ? "" : " (unchanged)");
}

/* One call's report, with the host calls it made. status: "ok", "error" or
 * "trap"; text is the response, the error message or the trap. */
static void report(struct harness *h, const char *fn, const struct step *s, const char *status,
		   const uint8_t *text, size_t text_len, int changed, uint64_t fuel)
{
	json_t *calls = fakes_take_calls(h->fakes);
	if (h->o->json)
		report_json(h, fn, s, status, text, text_len, changed, fuel, calls);
	else
		report_text(h, fn, s, status, text, text_len, changed, calls);
	json_decref(calls);
}

/* ---- calls ---- */

static enum err_code place(struct harness *h, const uint8_t *data, size_t len, uint32_t *ptr,
			   struct err *err)
{
	if (len > INT32_MAX)
		return err_set(err, ERR_TOO_LARGE, "input of %zu bytes is too large", len);
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	enum err_code rc = wasm_func_call(h->store, h->f_alloc, &arg, 1, &res, 1, err);
	if (rc)
		return rc;
	if (res.of.i32 == 0 && len)
		return err_set(err, ERR_WASM_TRAP, "theater_alloc(%zu) returned 0 (out of memory)",
			       len);
	*ptr = res.of.i32;
	return len ? wasm_memory_write(h->mem, *ptr, data, len, err) : ERR_OK;
}

static int find_func(struct harness *h, const char *name, struct wasm_func **out)
{
	struct wasm_extern ext;
	if (wasm_instance_export(h->inst, name, &ext) != ERR_OK || ext.kind != WASM_EXTERN_FUNC)
		return -1;
	*out = ext.of.func;
	return 0;
}

/* A call's checked result record: an actor error keeps the state, ok takes
 * the new one (and, for a request, the response). */
static int take_result(struct harness *h, const char *fn, const struct step *s,
		       const struct actor_abi_result *r, uint64_t fuel)
{
	uint8_t *out = wasm_memory_data(h->mem);
	if (r->status == 1) {
		h->actor_errors++;
		report(h, fn, s, "error", out + r->out_ptr, r->out_len, 0, fuel);
		return 0;
	}
	int request = s && s->kind == STEP_REQUEST;
	int changed = r->state_len != h->state_len ||
		      (r->state_len && memcmp(out + r->state_ptr, h->state, r->state_len) != 0);
	uint8_t *ns = malloc(r->state_len + 1), *resp = request ? malloc(r->out_len + 1) : NULL;
	if (!ns || (request && !resp)) {
		free(ns);
		free(resp);
		fputs("error: out of memory\n", stderr);
		return EXIT_LOAD;
	}
	memcpy(ns, out + r->state_ptr, r->state_len);
	if (resp)
		memcpy(resp, out + r->out_ptr, r->out_len);
	free(h->state);
	h->state = ns;
	h->state_len = r->state_len;
	report(h, fn, s, "ok", resp, resp ? r->out_len : 0, changed || !s, fuel);
	free(resp);
	return 0;
}

/* One export call (init: s is NULL); returns the exit status so far. */
static int call(struct harness *h, const char *fn, const struct step *s)
{
	struct wasm_func *f;
	struct err err = {0};
	uint32_t sp = 0, mp = 0;
	if (find_func(h, fn, &f)) {
		fprintf(stderr, "error: the actor has no export '%s'\n", fn);
		return EXIT_LOAD;
	}
	enum err_code rc = h->f_reset ? wasm_func_call(h->store, h->f_reset, NULL, 0, NULL, 0, &err)
				      : ERR_OK;
	if (!rc)
		rc = place(h, h->state, h->state_len, &sp, &err);
	if (!rc && s)
		rc = place(h, s->data, s->len, &mp, &err);
	struct wasm_value args[4] = {
		{.type = WASM_I32, .of.i32 = sp}, {.type = WASM_I32, .of.i32 = (uint32_t)h->state_len},
		{.type = WASM_I32, .of.i32 = mp}, {.type = WASM_I32, .of.i32 = s ? (uint32_t)s->len : 0},
	}, res;
	if (!rc)
		rc = wasm_func_call(h->store, f, args, s ? 4 : 2, &res, 1, &err);
	uint64_t fuel = wasm_store_fuel_used_last(h->store);
	struct actor_abi_result r;
	if (!rc)
		rc = actor_abi_result_read(h->mem, res.of.i32, &r, &err);
	if (rc) {
		report(h, fn, s, "trap", (const uint8_t *)err.msg, strlen(err.msg), 0, fuel);
		return EXIT_TRAP;
	}
	return take_result(h, fn, s, &r, fuel);
}

/* ---- set-up ---- */

/* Without a manifest everything is granted; runtime always is. */
static int granted(const struct manifest *m, const char *handler)
{
	if (!m || !strcmp(handler, "runtime"))
		return 1;
	for (size_t i = 0; i < m->nhandlers; i++)
		if (!strcmp(m->handlers[i].type, handler))
			return 1;
	return 0;
}

static int resolve_import(void *user, const struct wasm_import_desc *desc,
			  struct wasm_extern *out)
{
	struct harness *h = user;
	struct err err = {0};
	const struct actor_abi_import *imp =
		actor_abi_import_find(desc->module, desc->module_len, desc->name, desc->name_len);
	if (imp && !granted(h->o->manifest, imp->handler)) {
		fprintf(stderr, "error: the module imports '%s' '%s', which its manifest does not "
			"grant (add [[handler]] type = \"%s\")\n", imp->module, imp->name,
			imp->handler);
		return 1;
	}
	if (fakes_link(h->fakes, h->store, desc, out, &err) == ERR_OK)
		return 0;
	fprintf(stderr, "error: the module imports '%.*s' '%.*s', which is not in the actor "
		"abi (docs/actor-abi.md)\n", (int)desc->module_len, desc->module,
		(int)desc->name_len, desc->name);
	return 1;
}

/* Checks the ABI's required exports and version; 0 or EXIT_LOAD. */
static int check_abi(struct harness *h)
{
	struct wasm_extern ext;
	struct wasm_func *ver;
	struct wasm_value v;
	struct err err = {0};
	if (wasm_instance_export(h->inst, ACTOR_ABI_EXPORT_MEMORY, &ext) ||
	    ext.kind != WASM_EXTERN_MEMORY) {
		fputs("error: the module does not export its 'memory'\n", stderr);
		return EXIT_LOAD;
	}
	h->mem = ext.of.memory;
	if (find_func(h, ACTOR_ABI_EXPORT_ALLOC, &h->f_alloc) ||
	    find_func(h, ACTOR_ABI_EXPORT_VERSION, &ver)) {
		fputs("error: the module lacks 'theater_alloc' or 'theater_abi_version' (is "
		      "THEATER_ACTOR_IMPL defined in one source file?)\n", stderr);
		return EXIT_LOAD;
	}
	if (find_func(h, ACTOR_ABI_EXPORT_RESET, &h->f_reset))
		h->f_reset = NULL;
	if (wasm_func_call(h->store, ver, NULL, 0, &v, 1, &err) ||
	    v.of.i32 != ACTOR_ABI_VERSION) {
		fprintf(stderr, "error: theater_abi_version failed or is not %d\n",
			ACTOR_ABI_VERSION);
		return EXIT_LOAD;
	}
	return 0;
}

static int load(struct harness *h, struct wasm_module **m)
{
	struct err err = {0};
	size_t len = 0;
	uint8_t *bytes = read_file(h->o->file, &len);
	if (!bytes) {
		fprintf(stderr, "error: cannot read '%s': %s\n", h->o->file, strerror(errno));
		return EXIT_LOAD;
	}
	struct wasm_store_limits lim = {.fuel = h->o->fuel, .max_memory_pages = h->o->max_pages};
	struct fakes_options fo = {
		.seed = h->o->seed, .now_ms = h->o->now_ms, .self_id = h->o->self_id,
		.answers = h->o->answers, .answer_lens = h->o->answer_lens,
		.nanswers = h->o->nanswers, .http = h->o->http,
	};
	enum err_code rc = wasm_module_new(bytes, len, m, &err);
	free(bytes);
	if (!rc)
		rc = fakes_new(&fo, &h->fakes, &err);
	if (!rc)
		rc = wasm_store_new(&lim, &h->store, &err);
	if (!rc)
		rc = wasm_instance_new_resolved(h->store, *m, resolve_import, h, &h->inst, &err);
	if (rc) {
		fprintf(stderr, "error: '%s': %s\n", h->o->file, err.msg);
		return EXIT_LOAD;
	}
	return check_abi(h);
}

/* The state init gets: --init-state merged over the manifest's initial_state,
 * as a spawn-time state is (compact JSON, as the server passes it). Without a
 * manifest, --init-state's bytes as they are. */
static int initial_state(const struct opts *o, struct harness *h)
{
	if (!o->manifest || !o->manifest->initial_state) {
		if (o->init_state) {
			h->state = (uint8_t *)strdup(o->init_state);
			h->state_len = strlen(o->init_state);
		}
		return 0;
	}
	struct err err = {0};
	json_t *given = o->init_state ? json_parse(o->init_state, strlen(o->init_state), 64, &err)
				      : NULL;
	if (o->init_state && !given) {
		fprintf(stderr, "theater-wasm actor: --init-state is not JSON (with --manifest it "
			"is merged into initial_state): %s\n", err.msg);
		return EXIT_USAGE;
	}
	json_t *merged = manifest_merge_initial_states(o->manifest->initial_state, given);
	char *text = merged ? json_compact(merged) : NULL;
	json_decref(given);
	json_decref(merged);
	if (text) {
		h->state = (uint8_t *)text;
		h->state_len = strlen(text);
	}
	return 0;
}

/* Step i is --tick NAME: a call of handle-timer with the tick's message, as the
 * server sends it (tick n: the n-th --tick of that name). */
static int tick(struct harness *h, const struct opts *o, size_t i)
{
	const struct step *s = &o->steps[i];
	json_int_t n = 1;
	for (size_t k = 0; k < i; k++)
		n += o->steps[k].kind == STEP_TICK && o->steps[k].len == s->len &&
		     memcmp(o->steps[k].data, s->data, s->len) == 0;
	json_t *j = json_pack("{s:s%, s:I, s:I, s:i}", "timer", (const char *)s->data, s->len,
			      "tick", n, "scheduled_ms", (json_int_t)fakes_now(h->fakes), "missed", 0);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text) {
		fputs("error: out of memory\n", stderr);
		return EXIT_LOAD;
	}
	struct step msg = {STEP_TICK, (uint8_t *)text, strlen(text)};
	int status = call(h, ACTOR_ABI_EXPORT_TIMER, &msg);
	free(text);
	return status;
}

static int run(const struct opts *o)
{
	struct harness h = {.o = o};
	struct wasm_module *m = NULL;
	int status = load(&h, &m);
	if (status)
		goto done;
	if (o->have_state) {
		h.state = (uint8_t *)strdup(o->state);
		h.state_len = o->state_len;
	} else if ((status = initial_state(o, &h)) != 0) {
		goto done;
	}
	if (!o->have_state)
		status = call(&h, ACTOR_ABI_EXPORT_INIT, NULL);
	for (size_t i = 0; status == 0 && i < o->nsteps; i++) {
		if (fakes_shutdown_reason(h.fakes))
			break;
		if (o->steps[i].kind == STEP_TICK) {
			status = tick(&h, o, i);
			continue;
		}
		status = call(&h, o->steps[i].kind == STEP_SEND ? ACTOR_ABI_EXPORT_SEND
								  : ACTOR_ABI_EXPORT_REQUEST,
			      &o->steps[i]);
	}
	if (fakes_shutdown_reason(h.fakes) && !o->json)
		printf("shutdown: %s\n", fakes_shutdown_reason(h.fakes));
	if (status == 0 && h.actor_errors)
		status = EXIT_ACTOR_ERROR;
done:
	fflush(stdout);
	wasm_store_free(h.store);
	fakes_free(h.fakes);
	wasm_module_free(m);
	free(h.state);
	return status;
}

int actor_main(int argc, char **argv)
{
	struct opts o = {.fuel = DEFAULT_FUEL, .now_ms = DEFAULT_NOW_MS, .max_pages = 1024};
	o.steps = calloc((size_t)argc + 1, sizeof *o.steps);
	o.answers = calloc((size_t)argc + 1, sizeof *o.answers);
	o.answer_lens = calloc((size_t)argc + 1, sizeof *o.answer_lens);
	int status = EXIT_LOAD;
	if (!o.steps || !o.answers || !o.answer_lens)
		fputs("theater-wasm: out of memory\n", stderr);
	else if ((status = parse(&o, argc, argv)) == 0 && o.help)
		fputs(usage_text, stdout);
	else if (status == 0)
		status = run(&o);
	for (size_t i = 0; o.steps && i < o.nsteps; i++)
		free(o.steps[i].data);
	free(o.steps);
	free(o.answers);
	free(o.answer_lens);
	free(o.state);
	json_decref(o.http);
	manifest_free(o.manifest);
	return status;
}
