/* main.c - theater-wasm, a command-line runner for the theater engine.
 *
 *   theater-wasm run FILE.wasm --invoke NAME [ARG...]   call one export
 *   theater-wasm run FILE.wasm [-- ARGS...]             run a WASI _start
 *   theater-wasm actor FILE.wasm [--send B | --request B]...  run an actor offline
 *                                                       (actor.c)
 *
 * It exists to try modules by hand, to script the engine from tests and
 * benchmarks, and as the smallest complete embedder of src/wasm/wasm.h.
 * Exit codes are a contract (docs/wasm.md): 0 success, 1 a module that does
 * not load or link, 2 a trap or exhausted limit, 64 a usage error; a WASI
 * program's own exit code otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/util/err.h"
#include "src/util/units.h"
#include "src/wasm/wasm.h"
#include "tools/theater-wasm/actor.h"
#include "tools/theater-wasm/valtext.h"
#include "tools/theater-wasm/wasi.h"

#define EXIT_LOAD 1
#define EXIT_TRAP 2
#define EXIT_USAGE 64
#define MAX_MODULE_BYTES (64u * 1024 * 1024)
#define PAGE_BYTES 65536ull

struct cli {
	const char *file;
	const char *invoke;          /* NULL: run the WASI _start */
	const char **pos;            /* positional words after FILE */
	size_t npos;
	const char **env;            /* --env K=V */
	size_t nenv;
	uint64_t fuel;
	uint32_t max_pages;
	int stats;
	int help;
};

struct timing {
	double load_ms, instantiate_ms, run_ms;
};

static const char usage_text[] =
	"usage: theater-wasm run FILE.wasm --invoke NAME [ARG...]\n"
	"       theater-wasm run FILE.wasm [-- ARGS...]\n"
	"       theater-wasm actor FILE.wasm [--send BYTES | --request BYTES]...\n"
	"         (a theater actor offline: theater-wasm actor --help)\n"
	"\n"
	"With --invoke, calls export NAME with ARGs parsed by its parameter types\n"
	"(i32/i64: decimal or 0x hex; f32/f64: decimal, hex float, inf, nan,\n"
	"nan:0x<payload>; refs: null) and prints each result as TYPE:VALUE.\n"
	"Without it, runs a wasm32-wasi program's _start with ARGS as its\n"
	"arguments; its exit code becomes ours.\n"
	"\n"
	"options:\n"
	"  --invoke NAME       call export NAME instead of _start\n"
	"  --fuel N            stop a call after N instructions (0: unlimited)\n"
	"  --max-memory BYTES  cap every linear memory (suffix K, M or G; >= 64K)\n"
	"  --env KEY=VALUE     add to the WASI environment (repeatable; default empty)\n"
	"  --stats             print fuel used, times and footprints to stderr\n"
	"  --help              show this help\n"
	"\n"
	"exit status: 0 ok, 1 module does not load or link, 2 trap or limit,\n"
	"64 usage error; a WASI program's exit code otherwise.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("theater-wasm: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- command line ---- */

/* One option that takes a value; returns 0, or EXIT_USAGE. */
static int take_option(struct cli *c, const char *opt, const char *val)
{
	uint64_t n = 0;
	if (!val)
		return usage_error("option '%s' needs a value", opt);
	if (strcmp(opt, "--invoke") == 0) {
		c->invoke = val;
	} else if (strcmp(opt, "--fuel") == 0) {
		if (units_parse_size(val, UINT64_MAX, &n) != 0 || strpbrk(val, "KkMmGg"))
			return usage_error("bad --fuel value '%s'", val);
		c->fuel = n;
	} else if (strcmp(opt, "--max-memory") == 0) {
		if (units_parse_size(val, UINT64_MAX, &n) != 0 || n < PAGE_BYTES)
			return usage_error("bad --max-memory value '%s' (at least 64K)", val);
		c->max_pages = n / PAGE_BYTES > 65536 ? 65536 : (uint32_t)(n / PAGE_BYTES);
	} else {
		if (!strchr(val, '='))
			return usage_error("bad --env value '%s' (want KEY=VALUE)", val);
		c->env[c->nenv++] = val;
	}
	return 0;
}

static int is_valued_option(const char *a)
{
	return strcmp(a, "--invoke") == 0 || strcmp(a, "--fuel") == 0 ||
	       strcmp(a, "--max-memory") == 0 || strcmp(a, "--env") == 0;
}

/* Fills c from argv[first..argc); returns 0 or EXIT_USAGE. Words after
 * "--" are positional even when they look like options. */
static int parse_words(struct cli *c, int argc, char **argv, int first)
{
	int dashdash = 0;
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && strcmp(a, "--") == 0) {
			dashdash = 1;
		} else if (!dashdash && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			c->help = 1;
		} else if (!dashdash && strcmp(a, "--stats") == 0) {
			c->stats = 1;
		} else if (!dashdash && is_valued_option(a)) {
			int rc = take_option(c, a, i + 1 < argc ? argv[i + 1] : NULL);
			if (rc)
				return rc;
			i++;
		} else if (!dashdash && strncmp(a, "--", 2) == 0) {
			return usage_error("unknown option '%s'", a);
		} else if (!c->file) {
			c->file = a;
		} else {
			c->pos[c->npos++] = a;
		}
	}
	return 0;
}

static int cli_parse(struct cli *c, int argc, char **argv)
{
	if (argc < 2)
		return usage_error("%s", "missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		c->help = 1;
		return 0;
	}
	if (strcmp(argv[1], "run") != 0)
		return usage_error("unknown command '%s'", argv[1]);
	int rc = parse_words(c, argc, argv, 2);
	if (rc || c->help)
		return rc;
	if (!c->file)
		return usage_error("%s", "missing FILE.wasm");
	return 0;
}

/* ---- loading ---- */

static enum err_code read_module(const char *path, uint8_t **bytes_out, size_t *len_out,
				 struct err *err)
{
	enum err_code rc = ERR_OK;
	uint8_t *bytes = NULL;
	size_t len = 0, cap = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_errno(err, ERR_IO, errno, "cannot open '%s'", path);
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = cap > MAX_MODULE_BYTES + 1ull ? NULL : realloc(bytes, cap);
			if (!nb) {
				rc = err_set(err, cap > MAX_MODULE_BYTES + 1ull ? ERR_TOO_LARGE : ERR_NOMEM,
					     "cannot read '%s': %s", path,
					     cap > MAX_MODULE_BYTES + 1ull ? "larger than 64 MiB"
								 : "out of memory");
				goto fail;
			}
			bytes = nb;
		}
		size_t n = fread(bytes + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = err_errno(err, ERR_IO, errno, "cannot read '%s'", path);
		goto fail;
	}
	fclose(f);
	*bytes_out = bytes;
	*len_out = len;
	return ERR_OK;
fail:
	fclose(f);
	free(bytes);
	return rc;
}

struct link_ctx {
	struct wasi *wasi;
	struct wasm_store *store;
	char missing[300];     /* the first import we could not satisfy */
	struct err err;
};

static int resolve_import(void *user, const struct wasm_import_desc *desc,
			  struct wasm_extern *out)
{
	struct link_ctx *l = user;
	if (wasi_is_import(desc) && wasi_link(l->wasi, l->store, desc, out, &l->err) == ERR_OK)
		return 0;
	if (!l->missing[0])
		snprintf(l->missing, sizeof l->missing, "'%.*s'.'%.*s'", (int)desc->module_len,
			 desc->module, (int)desc->name_len, desc->name);
	return 1;
}

/* ---- reporting ---- */

static int report_failure(enum err_code rc, const struct err *err, const struct cli *c)
{
	if (rc == ERR_WASM_TRAP || rc == ERR_WASM_EXHAUSTED) {
		if (rc == ERR_WASM_EXHAUSTED && c->fuel && strstr(err->msg, "fuel"))
			fprintf(stderr, "trap: %s (budget: --fuel %" PRIu64 ")\n", err->msg, c->fuel);
		else
			fprintf(stderr, "trap: %s\n", err->msg);
		return EXIT_TRAP;
	}
	fprintf(stderr, "error: %s\n", err->msg[0] ? err->msg : err_code_name(rc));
	return EXIT_LOAD;
}

static void print_stats(const struct cli *c, struct wasm_module *m, struct wasm_store *s,
			const struct timing *t)
{
	(void)c;
	fprintf(stderr, "stats: fuel used %" PRIu64 " instructions\n",
		s ? wasm_store_fuel_used_total(s) : 0);
	fprintf(stderr, "stats: time load %.3f ms, instantiate %.3f ms, run %.3f ms\n",
		t->load_ms, t->instantiate_ms, t->run_ms);
	fprintf(stderr, "stats: footprint module %zu bytes, store %zu bytes\n",
		m ? wasm_module_footprint(m) : 0, s ? wasm_store_footprint(s) : 0);
}

/* ---- calling ---- */

static void describe_params(const struct wasm_functype *ft, char *out, size_t size)
{
	size_t n = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < ft->nparams && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? " " : "",
				      valtext_type_name(ft->params[i]));
}

/* Parses the arguments of f; 0 or EXIT_USAGE. */
static int parse_args(const struct cli *c, const struct wasm_functype *ft,
		      struct wasm_value *args)
{
	if (c->npos != ft->nparams) {
		char types[256];
		describe_params(ft, types, sizeof types);
		fprintf(stderr, "theater-wasm: '%s' takes %" PRIu32 " argument%s (%s), %zu given\n",
			c->invoke, ft->nparams, ft->nparams == 1 ? "" : "s", types, c->npos);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < c->npos; i++) {
		struct err err = { 0 };
		if (valtext_parse(ft->params[i], c->pos[i], &args[i], &err) != ERR_OK) {
			fprintf(stderr, "theater-wasm: argument %zu: %s\n", i + 1, err.msg);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int find_func(struct wasm_instance *inst, const char *name, struct wasm_func **out)
{
	struct wasm_extern ext;
	if (wasm_instance_export(inst, name, &ext) != ERR_OK) {
		fprintf(stderr, "error: no export '%s'%s\n", name,
			strcmp(name, "_start") == 0 ? " (not a WASI command; use --invoke NAME)"
						    : "");
		return EXIT_LOAD;
	}
	if (ext.kind != WASM_EXTERN_FUNC) {
		fprintf(stderr, "error: export '%s' is not a function\n", name);
		return EXIT_LOAD;
	}
	*out = ext.of.func;
	return 0;
}

/* Calls f with args and prints its results; returns the exit status. */
static int call_and_print(const struct cli *c, struct wasm_store *s, struct wasm_func *f,
			  const struct wasm_functype *ft, const struct wasm_value *args,
			  struct wasi *w, struct timing *t)
{
	struct err err = { 0 };
	struct wasm_value *res = calloc(ft->nresults + 1, sizeof *res);
	int code = 0;
	if (!res) {
		fputs("error: out of memory\n", stderr);
		return EXIT_LOAD;
	}
	double t0 = now_ms();
	enum err_code rc = wasm_func_call(s, f, args, ft->nparams, res, ft->nresults, &err);
	t->run_ms = now_ms() - t0;
	if (rc == ERR_WASM_TRAP && wasi_exited(w, &code)) {
		/* proc_exit: the program's code is ours */
	} else if (rc != ERR_OK) {
		code = report_failure(rc, &err, c);
	} else {
		for (uint32_t i = 0; i < ft->nresults; i++) {
			char text[VALTEXT_MAX];
			puts(valtext_format(&res[i], text, sizeof text));
		}
	}
	free(res);
	return code;
}

/* Calls --invoke NAME or _start; returns the exit status. */
static int call_export(const struct cli *c, struct wasm_store *s, struct wasm_instance *inst,
		       struct wasi *w, struct timing *t)
{
	struct wasm_func *f = NULL;
	struct wasm_functype ft;
	int status = find_func(inst, c->invoke ? c->invoke : "_start", &f);
	if (status)
		return status;
	wasm_func_type(f, &ft);
	if (!c->invoke && (ft.nparams || ft.nresults)) {
		fputs("error: '_start' must take and return nothing\n", stderr);
		return EXIT_LOAD;
	}
	struct wasm_value *args = calloc(ft.nparams + 1, sizeof *args);
	if (!args) {
		fputs("error: out of memory\n", stderr);
		return EXIT_LOAD;
	}
	status = c->invoke ? parse_args(c, &ft, args) : 0;
	if (status == 0)
		status = call_and_print(c, s, f, &ft, args, w, t);
	free(args);
	return status;
}

/* ---- the run command ---- */

static enum err_code make_wasi(const struct cli *c, struct wasi **out, struct err *err)
{
	const char **argv = calloc(c->npos + 1, sizeof *argv);
	if (!argv)
		return err_set(err, ERR_NOMEM, "out of memory");
	argv[0] = c->file;
	for (size_t i = 0; !c->invoke && i < c->npos; i++)
		argv[i + 1] = c->pos[i];
	struct wasi_options o = {
		.argc = c->invoke ? 1 : c->npos + 1, .argv = argv,
		.envc = c->nenv, .env = c->env,
	};
	enum err_code rc = wasi_new(&o, out, err);
	free(argv);
	return rc;
}

static int load(const struct cli *c, struct wasm_module **m_out, struct timing *t)
{
	struct err err = { 0 };
	uint8_t *bytes = NULL;
	size_t len = 0;
	enum err_code rc = read_module(c->file, &bytes, &len, &err);
	double t0 = now_ms();
	if (rc == ERR_OK)
		rc = wasm_module_new(bytes, len, m_out, &err);
	t->load_ms = now_ms() - t0;
	free(bytes);
	if (rc != ERR_OK)
		err_prefix(&err, "'%s'", c->file);
	return rc == ERR_OK ? 0 : report_failure(rc, &err, c);
}

static int instantiate(const struct cli *c, struct link_ctx *l, struct wasm_module *m,
		       struct wasm_instance **out, struct timing *t)
{
	struct err err = { 0 };
	double t0 = now_ms();
	enum err_code rc = wasm_instance_new_resolved(l->store, m, resolve_import, l, out, &err);
	t->instantiate_ms = now_ms() - t0;
	int code = 0;
	if (rc == ERR_OK)
		return 0;
	if (rc == ERR_WASM_TRAP && wasi_exited(l->wasi, &code))
		return code;
	if (rc == ERR_WASM_LINK && l->missing[0])
		err_set(&err, ERR_WASM_LINK, "unknown import %s%s%s", l->missing,
			l->err.msg[0] ? ": " : "", l->err.msg);
	return report_failure(rc, &err, c);
}

static int run(const struct cli *c)
{
	struct timing t = { 0 };
	struct wasm_module *m = NULL;
	struct link_ctx l = { 0 };
	struct wasm_instance *inst = NULL;
	struct err err = { 0 };
	struct wasm_store_limits limits = { .fuel = c->fuel, .max_memory_pages = c->max_pages };
	int status = load(c, &m, &t);
	if (status)
		goto done;
	if (make_wasi(c, &l.wasi, &err) != ERR_OK ||
	    wasm_store_new(&limits, &l.store, &err) != ERR_OK) {
		status = report_failure(err.code, &err, c);
		goto done;
	}
	status = instantiate(c, &l, m, &inst, &t);
	if (status == 0 && !wasi_exited(l.wasi, &status))
		status = call_export(c, l.store, inst, l.wasi, &t);
done:
	fflush(stdout);
	if (c->stats)
		print_stats(c, m, l.store, &t);
	wasm_store_free(l.store);
	wasi_free(l.wasi);
	wasm_module_free(m);
	return status;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "actor") == 0)
		return actor_main(argc - 1, argv + 1);
	struct cli c = { 0 };
	c.pos = calloc((size_t)argc + 1, sizeof *c.pos);
	c.env = calloc((size_t)argc + 1, sizeof *c.env);
	if (!c.pos || !c.env) {
		fputs("theater-wasm: out of memory\n", stderr);
		return EXIT_LOAD;
	}
	int status = cli_parse(&c, argc, argv);
	if (status == 0 && c.help)
		fputs(usage_text, stdout);
	else if (status == 0)
		status = run(&c);
	free(c.pos);
	free(c.env);
	return status;
}
