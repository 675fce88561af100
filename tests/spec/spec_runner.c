/* spec_runner.c - runs the official WebAssembly spec testsuite against the
 * engine.
 *
 * For each .wast file, wast2json (wabt) converts it at test time into a
 * temporary directory; the runner reads the JSON command list and executes
 * every command: module, register, action, assert_return (NaN patterns and
 * references included), assert_trap, assert_exhaustion, assert_malformed and
 * assert_invalid (binary modules; text modules do not apply to a binary-only
 * engine), assert_unlinkable, assert_uninstantiable. Expected messages are
 * compared by prefix, the usual convention (engines may say more).
 *
 * Usage: spec_runner [-d DIR] [NAME|FILE.wast ...]
 * Without names it runs every .wast file of the suite directory, which is
 * -d, else $THEATER_WASM_TESTSUITE, else $THEATER_SOURCE_DIR/../shared/
 * wasm-testsuite. Prints per-file and total pass/fail/n.a. counts; exits 1
 * on any failure (including a missing wast2json).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/util/json.h"
#include "src/wasm/wasm.h"

extern char **environ;

#define MAX_NAMED 256
#define MAX_VALUES 64

struct counts {
	unsigned pass, fail, na;
};

struct named {
	char *name;
	struct wasm_instance *inst;
};

struct spectest {
	struct wasm_func *print[7];
	const char *print_names[7];
	struct wasm_global *g_i32, *g_i64, *g_f32, *g_f64;
	struct wasm_table *table;
	struct wasm_memory *memory;
};

struct script {
	const char *file;   /* .wast name for messages */
	const char *dir;    /* where the converted modules are */
	struct wasm_store *store;
	struct spectest st;
	struct wasm_instance *current;
	struct named named[MAX_NAMED]; /* $names of modules */
	size_t nnamed;
	struct named registered[MAX_NAMED];
	size_t nregistered;
	struct wasm_module *modules[4096]; /* every module loaded, freed at the end */
	size_t nmodules;
	struct counts c;
};

/* ---- the spectest host module ---- */

static enum err_code host_print(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	(void)caller, (void)user, (void)args, (void)results, (void)err;
	return ERR_OK;
}

static enum err_code make_print(struct script *s, int i, const char *name,
				const enum wasm_valtype *params, uint32_t np)
{
	struct wasm_functype t = {.nparams = np, .params = params};
	s->st.print_names[i] = name;
	return wasm_func_new_host(s->store, &t, host_print, NULL, &s->st.print[i], NULL);
}

static enum err_code spectest_init(struct script *s)
{
	static const enum wasm_valtype i32[] = {WASM_I32}, i64[] = {WASM_I64},
				       f32[] = {WASM_F32}, f64[] = {WASM_F64},
				       i32f32[] = {WASM_I32, WASM_F32},
				       f64f64[] = {WASM_F64, WASM_F64};
	float f32v = 666.6f;
	double f64v = 666.6;
	struct wasm_value v = {.type = WASM_I32, .of.i32 = 666};
	enum err_code rc = make_print(s, 0, "print", NULL, 0);
	rc = rc ? rc : make_print(s, 1, "print_i32", i32, 1);
	rc = rc ? rc : make_print(s, 2, "print_i64", i64, 1);
	rc = rc ? rc : make_print(s, 3, "print_f32", f32, 1);
	rc = rc ? rc : make_print(s, 4, "print_f64", f64, 1);
	rc = rc ? rc : make_print(s, 5, "print_i32_f32", i32f32, 2);
	rc = rc ? rc : make_print(s, 6, "print_f64_f64", f64f64, 2);
	rc = rc ? rc : wasm_global_new(s->store, v, 0, &s->st.g_i32, NULL);
	v = (struct wasm_value){.type = WASM_I64, .of.i64 = 666};
	rc = rc ? rc : wasm_global_new(s->store, v, 0, &s->st.g_i64, NULL);
	v = (struct wasm_value){.type = WASM_F32};
	memcpy(&v.of.f32, &f32v, 4);
	rc = rc ? rc : wasm_global_new(s->store, v, 0, &s->st.g_f32, NULL);
	v = (struct wasm_value){.type = WASM_F64};
	memcpy(&v.of.f64, &f64v, 8);
	rc = rc ? rc : wasm_global_new(s->store, v, 0, &s->st.g_f64, NULL);
	struct wasm_limits_type tl = {.min = 10, .max = 20, .has_max = 1};
	rc = rc ? rc : wasm_table_new(s->store, WASM_FUNCREF, tl, &s->st.table, NULL);
	struct wasm_limits_type ml = {.min = 1, .max = 2, .has_max = 1};
	rc = rc ? rc : wasm_memory_new(s->store, ml, &s->st.memory, NULL);
	return rc;
}

static int spectest_lookup(const struct spectest *st, const char *name, struct wasm_extern *out)
{
	for (int i = 0; i < 7; i++) {
		if (strcmp(name, st->print_names[i]) == 0) {
			out->kind = WASM_EXTERN_FUNC;
			out->of.func = st->print[i];
			return 0;
		}
	}
	static const char *const gnames[] = {"global_i32", "global_i64", "global_f32",
					     "global_f64"};
	struct wasm_global *const gs[] = {st->g_i32, st->g_i64, st->g_f32, st->g_f64};
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, gnames[i]) == 0) {
			out->kind = WASM_EXTERN_GLOBAL;
			out->of.global = gs[i];
			return 0;
		}
	}
	if (strcmp(name, "table") == 0) {
		out->kind = WASM_EXTERN_TABLE;
		out->of.table = st->table;
		return 0;
	}
	if (strcmp(name, "memory") == 0) {
		out->kind = WASM_EXTERN_MEMORY;
		out->of.memory = st->memory;
		return 0;
	}
	return -1;
}

static int resolve(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct script *s = user;
	if (d->module_len == 8 && memcmp(d->module, "spectest", 8) == 0)
		return spectest_lookup(&s->st, d->name, out);
	for (size_t i = s->nregistered; i-- > 0;) {
		const char *n = s->registered[i].name;
		if (strlen(n) == d->module_len && memcmp(n, d->module, d->module_len) == 0)
			return wasm_instance_export_n(s->registered[i].inst, d->name, d->name_len,
						      out) == ERR_OK
				       ? 0
				       : -1;
	}
	return -1;
}

/* ---- reporting ---- */

static void fail(struct script *s, const json_t *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct script *s, const json_t *cmd, const char *fmt, ...)
{
	va_list ap;
	s->c.fail++;
	printf("  FAIL %s:%d %s: ", s->file, (int)json_integer_value(json_object_get(cmd, "line")),
	       json_string_value(json_object_get(cmd, "type")));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Assertions whose premise the converter loses. wast2json (wabt 1.0.32)
 * encodes `select (result)` (no types) as the untyped select opcode, so the
 * binary has no result arity to reject; it must still be rejected as
 * invalid, and then counts as n/a, never as a pass. */
static const struct {
	const char *file;
	int line;
} converter_artifacts[] = {{"select", 324}};

static bool is_artifact(const struct script *s, const json_t *cmd)
{
	int line = (int)json_integer_value(json_object_get(cmd, "line"));
	for (size_t i = 0; i < sizeof(converter_artifacts) / sizeof(converter_artifacts[0]); i++)
		if (strcmp(s->file, converter_artifacts[i].file) == 0 &&
		    line == converter_artifacts[i].line)
			return true;
	return false;
}

static bool msg_matches(const char *actual, const char *expected)
{
	return strncmp(actual, expected, strlen(expected)) == 0;
}

/* ---- values ---- */

static bool parse_value(const json_t *j, struct wasm_value *out)
{
	const char *t = json_string_value(json_object_get(j, "type"));
	const char *v = json_string_value(json_object_get(j, "value"));
	if (!t)
		return false;
	memset(out, 0, sizeof(*out));
	unsigned long long n = v ? strtoull(v, NULL, 10) : 0;
	if (strcmp(t, "i32") == 0)
		*out = (struct wasm_value){.type = WASM_I32, .of.i32 = (uint32_t)n};
	else if (strcmp(t, "i64") == 0)
		*out = (struct wasm_value){.type = WASM_I64, .of.i64 = n};
	else if (strcmp(t, "f32") == 0)
		*out = (struct wasm_value){.type = WASM_F32, .of.f32 = (uint32_t)n};
	else if (strcmp(t, "f64") == 0)
		*out = (struct wasm_value){.type = WASM_F64, .of.f64 = n};
	else if (strcmp(t, "externref") == 0)
		*out = (struct wasm_value){.type = WASM_EXTERNREF,
					   .of.externref = !v || strcmp(v, "null") == 0
								   ? NULL
								   : (void *)(uintptr_t)(n + 1)};
	else if (strcmp(t, "funcref") == 0)
		*out = (struct wasm_value){.type = WASM_FUNCREF};
	else
		return false;
	return true;
}

static bool value_matches(const json_t *exp, const struct wasm_value *got)
{
	const char *t = json_string_value(json_object_get(exp, "type"));
	const char *v = json_string_value(json_object_get(exp, "value"));
	struct wasm_value want;
	if (!parse_value(exp, &want) || want.type != got->type)
		return false;
	bool is32 = strcmp(t, "f32") == 0, is64 = strcmp(t, "f64") == 0;
	if ((is32 || is64) && v && strcmp(v, "nan:canonical") == 0)
		return is32 ? (got->of.f32 & 0x7fffffffu) == 0x7fc00000u
			    : (got->of.f64 & 0x7fffffffffffffffull) == 0x7ff8000000000000ull;
	if ((is32 || is64) && v && strcmp(v, "nan:arithmetic") == 0)
		return is32 ? (got->of.f32 & 0x7fc00000u) == 0x7fc00000u
			    : (got->of.f64 & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
	switch (want.type) {
	case WASM_I32: case WASM_F32: return want.of.i32 == got->of.i32;
	case WASM_I64: case WASM_F64: return want.of.i64 == got->of.i64;
	case WASM_EXTERNREF:
		if (!v)
			return got->of.externref != NULL;
		return want.of.externref == got->of.externref;
	case WASM_FUNCREF:
		if (!v)
			return got->of.funcref != NULL;
		return strcmp(v, "null") == 0 && got->of.funcref == NULL;
	}
	return false;
}

static void format_value(const struct wasm_value *v, char *buf, size_t n)
{
	switch (v->type) {
	case WASM_I32: snprintf(buf, n, "i32:%u", v->of.i32); break;
	case WASM_I64: snprintf(buf, n, "i64:%llu", (unsigned long long)v->of.i64); break;
	case WASM_F32: snprintf(buf, n, "f32:0x%08x", v->of.f32); break;
	case WASM_F64: snprintf(buf, n, "f64:0x%016llx", (unsigned long long)v->of.f64); break;
	case WASM_FUNCREF: snprintf(buf, n, "funcref:%p", (void *)v->of.funcref); break;
	case WASM_EXTERNREF: snprintf(buf, n, "externref:%p", v->of.externref); break;
	}
}

/* ---- modules and actions ---- */

static struct wasm_instance *find_instance(struct script *s, const json_t *name)
{
	if (!name)
		return s->current;
	const char *n = json_string_value(name);
	for (size_t i = s->nnamed; i-- > 0;)
		if (strcmp(s->named[i].name, n) == 0)
			return s->named[i].inst;
	return NULL;
}

static enum err_code load_module(struct script *s, const char *filename,
				 struct wasm_module **out, struct err *err)
{
	*out = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", s->dir, filename);
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_set(err, ERR_IO, "cannot open '%s'", path);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	enum err_code rc = wasm_module_new(buf, len, out, err);
	free(buf);
	if (*out && s->nmodules < sizeof(s->modules) / sizeof(s->modules[0]))
		s->modules[s->nmodules++] = *out;
	else if (*out) {
		wasm_module_free(*out);
		*out = NULL;
		rc = err_set(err, ERR_TOO_LARGE, "too many modules in one script");
	}
	return rc;
}

/* Runs an action; on success fills results (at most MAX_VALUES). */
static enum err_code do_action(struct script *s, const json_t *act, struct wasm_value *results,
			       size_t *nresults, struct err *err)
{
	struct wasm_instance *inst = find_instance(s, json_object_get(act, "module"));
	const json_t *field = json_object_get(act, "field");
	struct wasm_extern ex;
	*nresults = 0;
	if (!inst)
		return err_set(err, ERR_NOT_FOUND, "no module instance");
	if (wasm_instance_export_n(inst, json_string_value(field), json_string_length(field),
				   &ex))
		return err_set(err, ERR_NOT_FOUND, "no export '%s'", json_string_value(field));
	const char *type = json_string_value(json_object_get(act, "type"));
	if (strcmp(type, "get") == 0) {
		if (ex.kind != WASM_EXTERN_GLOBAL)
			return err_set(err, ERR_INVALID, "export is not a global");
		results[0] = wasm_global_get(ex.of.global);
		*nresults = 1;
		return ERR_OK;
	}
	if (ex.kind != WASM_EXTERN_FUNC)
		return err_set(err, ERR_INVALID, "export is not a function");
	struct wasm_value args[MAX_VALUES];
	const json_t *jargs = json_object_get(act, "args");
	size_t nargs = json_array_size(jargs);
	if (nargs > MAX_VALUES)
		return err_set(err, ERR_INVALID, "too many arguments");
	for (size_t i = 0; i < nargs; i++)
		if (!parse_value(json_array_get(jargs, i), &args[i]))
			return err_set(err, ERR_INVALID, "bad argument %zu", i);
	struct wasm_functype ft;
	wasm_func_type(ex.of.func, &ft);
	if (ft.nresults > MAX_VALUES)
		return err_set(err, ERR_INVALID, "too many results");
	*nresults = ft.nresults;
	return wasm_func_call(s->store, ex.of.func, args, nargs, results, ft.nresults, err);
}

static void cmd_module(struct script *s, const json_t *cmd)
{
	struct err err = {0};
	struct wasm_module *m;
	struct wasm_instance *inst = NULL;
	s->current = NULL;
	enum err_code rc = load_module(s, json_string_value(json_object_get(cmd, "filename")), &m,
				       &err);
	if (!rc)
		rc = wasm_instance_new_resolved(s->store, m, resolve, s, &inst, &err);
	if (rc) {
		fail(s, cmd, "%s: %s", err_code_name(rc), err.msg);
		return;
	}
	s->current = inst;
	s->c.pass++;
	const json_t *name = json_object_get(cmd, "name");
	if (name && s->nnamed < MAX_NAMED) {
		s->named[s->nnamed].name = strdup(json_string_value(name));
		s->named[s->nnamed++].inst = inst;
	}
}

static void cmd_register(struct script *s, const json_t *cmd)
{
	struct wasm_instance *inst = find_instance(s, json_object_get(cmd, "name"));
	if (!inst || s->nregistered >= MAX_NAMED) {
		fail(s, cmd, "no module to register");
		return;
	}
	s->registered[s->nregistered].name = strdup(json_string_value(json_object_get(cmd, "as")));
	s->registered[s->nregistered++].inst = inst;
	s->c.pass++;
}

static void cmd_assert_return(struct script *s, const json_t *cmd)
{
	struct wasm_value res[MAX_VALUES];
	size_t n;
	struct err err = {0};
	enum err_code rc = do_action(s, json_object_get(cmd, "action"), res, &n, &err);
	if (rc) {
		fail(s, cmd, "%s: %s", err_code_name(rc), err.msg);
		return;
	}
	const json_t *exp = json_object_get(cmd, "expected");
	if (json_array_size(exp) != n) {
		fail(s, cmd, "%zu results, expected %zu", n, json_array_size(exp));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(exp, i);
		if (!value_matches(e, &res[i])) {
			char got[64];
			format_value(&res[i], got, sizeof(got));
			fail(s, cmd, "result %zu is %s, expected %s:%s", i, got,
			     json_string_value(json_object_get(e, "type")),
			     json_string_value(json_object_get(e, "value")));
			return;
		}
	}
	s->c.pass++;
}

static void expect_error(struct script *s, const json_t *cmd, enum err_code want,
			 enum err_code rc, const struct err *err)
{
	const char *text = json_string_value(json_object_get(cmd, "text"));
	if (rc == ERR_OK)
		fail(s, cmd, "succeeded, expected %s \"%s\"", err_code_name(want), text);
	else if (rc == want && is_artifact(s, cmd))
		s->c.na++;
	else if (rc != want || !msg_matches(err->msg, text))
		fail(s, cmd, "%s \"%s\", expected %s \"%s\"", err_code_name(rc), err->msg,
		     err_code_name(want), text);
	else
		s->c.pass++;
}

static void cmd_assert_trap(struct script *s, const json_t *cmd, enum err_code want)
{
	struct wasm_value res[MAX_VALUES];
	size_t n;
	struct err err = {0};
	enum err_code rc = do_action(s, json_object_get(cmd, "action"), res, &n, &err);
	expect_error(s, cmd, want, rc, &err);
}

static void cmd_assert_load(struct script *s, const json_t *cmd, enum err_code want)
{
	const char *mt = json_string_value(json_object_get(cmd, "module_type"));
	if (mt && strcmp(mt, "text") == 0) {
		s->c.na++;
		return;
	}
	struct err err = {0};
	struct wasm_module *m;
	enum err_code rc = load_module(s, json_string_value(json_object_get(cmd, "filename")), &m,
				       &err);
	expect_error(s, cmd, want, rc, &err);
}

static void cmd_assert_instantiate(struct script *s, const json_t *cmd, enum err_code want)
{
	struct err err = {0};
	struct wasm_module *m;
	struct wasm_instance *inst;
	enum err_code rc = load_module(s, json_string_value(json_object_get(cmd, "filename")), &m,
				       &err);
	if (rc) {
		fail(s, cmd, "load failed: %s: %s", err_code_name(rc), err.msg);
		return;
	}
	rc = wasm_instance_new_resolved(s->store, m, resolve, s, &inst, &err);
	expect_error(s, cmd, want, rc, &err);
}

static void run_command(struct script *s, const json_t *cmd)
{
	const char *type = json_string_value(json_object_get(cmd, "type"));
	if (!type)
		fail(s, cmd, "command without type");
	else if (strcmp(type, "module") == 0)
		cmd_module(s, cmd);
	else if (strcmp(type, "register") == 0)
		cmd_register(s, cmd);
	else if (strcmp(type, "assert_return") == 0 || strcmp(type, "action") == 0)
		cmd_assert_return(s, cmd);
	else if (strcmp(type, "assert_trap") == 0)
		cmd_assert_trap(s, cmd, ERR_WASM_TRAP);
	else if (strcmp(type, "assert_exhaustion") == 0)
		cmd_assert_trap(s, cmd, ERR_WASM_EXHAUSTED);
	else if (strcmp(type, "assert_malformed") == 0)
		cmd_assert_load(s, cmd, ERR_WASM_MALFORMED);
	else if (strcmp(type, "assert_invalid") == 0)
		cmd_assert_load(s, cmd, ERR_WASM_INVALID);
	else if (strcmp(type, "assert_unlinkable") == 0)
		cmd_assert_instantiate(s, cmd, ERR_WASM_LINK);
	else if (strcmp(type, "assert_uninstantiable") == 0)
		cmd_assert_instantiate(s, cmd, ERR_WASM_TRAP);
	else
		fail(s, cmd, "unknown command");
}

/* ---- files ---- */

static void rmtree_flat(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char path[4096];
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Runs wast2json; returns 0 on success. */
static int convert(const char *wast, const char *json)
{
	char *argv[] = {"wast2json", (char *)wast, "-o", (char *)json, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, "wast2json", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "spec_runner: cannot run wast2json: %s (install wabt: "
				"scripts/install-deps.sh)\n",
			strerror(rc));
		return -1;
	}
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "spec_runner: wast2json failed on '%s'\n", wast);
		return -1;
	}
	return 0;
}

static json_t *read_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, JSON_ALLOW_NUL, &je);
	if (!j)
		fprintf(stderr, "spec_runner: cannot parse '%s': %s\n", path, je.text);
	return j;
}

static void script_release(struct script *s)
{
	wasm_store_free(s->store);
	for (size_t i = 0; i < s->nmodules; i++)
		wasm_module_free(s->modules[i]);
	for (size_t i = 0; i < s->nnamed; i++)
		free(s->named[i].name);
	for (size_t i = 0; i < s->nregistered; i++)
		free(s->registered[i].name);
}

/* Runs one .wast file; returns its counts (a conversion error is a failure). */
static struct counts run_file(const char *wast, const char *name)
{
	struct counts c = {0};
	const char *tmp = getenv("TMPDIR");
	char dir[4096], json[4096 + 300];
	snprintf(dir, sizeof(dir), "%.3000s/theater-spec-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "spec_runner: cannot create a temporary directory\n");
		c.fail = 1;
		return c;
	}
	snprintf(json, sizeof(json), "%s/%s.json", dir, name);
	json_t *root = NULL;
	if (convert(wast, json) == 0)
		root = read_json(json);
	if (!root) {
		rmtree_flat(dir);
		c.fail = 1;
		return c;
	}
	struct script *s = calloc(1, sizeof(*s));
	s->file = name;
	s->dir = dir;
	if (wasm_store_new(NULL, &s->store, NULL) || spectest_init(s)) {
		fprintf(stderr, "spec_runner: cannot create the spectest module\n");
		s->c.fail++;
	} else {
		const json_t *cmds = json_object_get(root, "commands");
		for (size_t i = 0; i < json_array_size(cmds); i++)
			run_command(s, json_array_get(cmds, i));
	}
	c = s->c;
	script_release(s);
	free(s);
	json_decref(root);
	rmtree_flat(dir);
	return c;
}

static const char *suite_dir(const char *arg)
{
	static char buf[4096];
	if (arg)
		return arg;
	const char *e = getenv("THEATER_WASM_TESTSUITE");
	if (e && *e)
		return e;
	const char *src = getenv("THEATER_SOURCE_DIR");
	snprintf(buf, sizeof(buf), "%s/../shared/wasm-testsuite", src && *src ? src : ".");
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the suite's .wast names (without extension), sorted. */
static char **list_suite(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	*n = 0;
	if (!d)
		return NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".wast") != 0)
			continue;
		char **p = realloc(names, (*n + 1) * sizeof(*names));
		if (!p)
			break;
		names = p;
		names[(*n)++] = strndup(e->d_name, len - 5);
	}
	closedir(d);
	qsort(names, *n, sizeof(*names), cmp_str);
	return names;
}

static bool run_one(const char *dir, const char *arg, struct counts *total)
{
	char wast[4096], name[256];
	size_t len = strlen(arg);
	if (len > 5 && strcmp(arg + len - 5, ".wast") == 0) {
		const char *base = strrchr(arg, '/');
		base = base ? base + 1 : arg;
		snprintf(wast, sizeof(wast), "%s", arg);
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(base) - 5), base);
	} else {
		snprintf(wast, sizeof(wast), "%s/%s.wast", dir, arg);
		snprintf(name, sizeof(name), "%s", arg);
	}
	struct counts c = run_file(wast, name);
	printf("%-28s pass %5u  fail %4u  n/a %4u\n", name, c.pass, c.fail, c.na);
	fflush(stdout);
	total->pass += c.pass;
	total->fail += c.fail;
	total->na += c.na;
	return c.fail == 0;
}

int main(int argc, char **argv)
{
	const char *dir_arg = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt == 'd') {
			dir_arg = optarg;
		} else {
			fprintf(stderr, "usage: spec_runner [-d DIR] [NAME|FILE.wast ...]\n");
			return 64;
		}
	}
	const char *dir = suite_dir(dir_arg);
	struct counts total = {0};
	bool ok = true;
	size_t files = 0;
	if (optind < argc) {
		for (int i = optind; i < argc; i++, files++)
			ok &= run_one(dir, argv[i], &total);
	} else {
		size_t n;
		char **names = list_suite(dir, &n);
		if (!names || n == 0) {
			fprintf(stderr, "spec_runner: no .wast files in '%s'\n", dir);
			return 1;
		}
		for (size_t i = 0; i < n; i++, files++) {
			ok &= run_one(dir, names[i], &total);
			free(names[i]);
		}
		free(names);
	}
	printf("total: %zu files  pass %u  fail %u  n/a %u\n", files, total.pass, total.fail,
	       total.na);
	return ok && total.fail == 0 ? 0 : 1;
}
