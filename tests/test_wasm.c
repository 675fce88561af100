/* test_wasm.c - the engine's public API (src/wasm/wasm.h): instances, host
 * functions, memory helpers, limits (fuel, interrupt, call depth, memory
 * pages), traps and recursion. Test modules are written in the text format
 * and compiled with wat2wasm at test time. The spec suite (tests/spec)
 * covers instruction semantics; this file covers what an embedder uses. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/wasm/wasm.h"

/* ---- helpers ---- */

static uint8_t *wat_to_wasm(const char *wat, size_t *len)
{
	char *dir = tu_mkdtemp("test-wasm");
	assert_non_null(dir);
	char *src = tu_fmt("%s/m.wat", dir), *out = tu_fmt("%s/m.wasm", dir);
	assert_int_equal(tu_write_file(src, wat, strlen(wat)), 0);
	char *cmd = tu_fmt("wat2wasm --enable-all '%s' -o '%s'", src, out);
	int rc = system(cmd);
	if (rc != 0)
		fail_msg("wat2wasm failed (is wabt installed? scripts/install-deps.sh)");
	uint8_t *bytes = (uint8_t *)tu_read_file(out, len);
	assert_non_null(bytes);
	tu_rmtree(dir);
	free(cmd);
	free(src);
	free(out);
	free(dir);
	return bytes;
}

static struct wasm_module *load_wat(const char *wat)
{
	size_t len;
	uint8_t *bytes = wat_to_wasm(wat, &len);
	struct wasm_module *m = NULL;
	struct err err = {0};
	enum err_code rc = wasm_module_new(bytes, len, &m, &err);
	if (rc)
		fail_msg("module does not load: %s", err.msg);
	free(bytes);
	return m;
}

static struct wasm_store *new_store(const struct wasm_store_limits *lim)
{
	struct wasm_store *s = NULL;
	assert_int_equal(wasm_store_new(lim, &s, NULL), ERR_OK);
	return s;
}

static struct wasm_instance *instantiate(struct wasm_store *s, struct wasm_module *m)
{
	struct wasm_instance *inst = NULL;
	struct err err = {0};
	if (wasm_instance_new(s, m, NULL, 0, &inst, &err))
		fail_msg("instantiation failed: %s", err.msg);
	return inst;
}

static struct wasm_func *export_func(struct wasm_instance *inst, const char *name)
{
	struct wasm_extern ex;
	assert_int_equal(wasm_instance_export(inst, name, &ex), ERR_OK);
	assert_int_equal(ex.kind, WASM_EXTERN_FUNC);
	return ex.of.func;
}

static struct wasm_value i32v(uint32_t v)
{
	return (struct wasm_value){.type = WASM_I32, .of.i32 = v};
}

/* Calls an export taking and returning at most one i32. */
static enum err_code call_i32(struct wasm_store *s, struct wasm_instance *inst, const char *name,
			      int nargs, uint32_t arg, uint32_t *result, struct err *err)
{
	struct wasm_func *f = export_func(inst, name);
	struct wasm_functype ft;
	wasm_func_type(f, &ft);
	struct wasm_value a = i32v(arg), r = {0};
	enum err_code rc = wasm_func_call(s, f, &a, (size_t)nargs, &r, ft.nresults, err);
	if (result)
		*result = r.of.i32;
	return rc;
}

static const char *counter_wat =
	"(module\n"
	"  (memory (export \"mem\") 1)\n"
	"  (global $n (mut i32) (i32.const 0))\n"
	"  (func (export \"bump\") (result i32)\n"
	"    (global.set $n (i32.add (global.get $n) (i32.const 1)))\n"
	"    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 10)))\n"
	"    (global.get $n))\n"
	"  (func (export \"cell\") (result i32) (i32.load (i32.const 0)))\n"
	"  (func (export \"fail\") (result i32) (i32.div_s (i32.const 1) (i32.const 0)))\n"
	"  (func (export \"spin\") (loop $l (br $l)))\n"
	"  (func $rec (export \"rec\") (param i32) (result i32)\n"
	"    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))\n"
	"      (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1)))))))\n"
	"  (func $inf (export \"inf\") (call $inf))\n"
	"  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0))))\n";

/* ---- instances ---- */

static void test_instances_independent(void **state)
{
	(void)state;
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_store *s = new_store(NULL);
	struct wasm_instance *insts[50];
	for (int i = 0; i < 50; i++)
		insts[i] = instantiate(s, m);
	uint32_t r = 0;
	for (int k = 0; k < 3; k++)
		assert_int_equal(call_i32(s, insts[7], "bump", 0, 0, &r, NULL), ERR_OK);
	assert_int_equal(r, 3);
	assert_int_equal(call_i32(s, insts[7], "cell", 0, 0, &r, NULL), ERR_OK);
	assert_int_equal(r, 30);
	for (int i = 0; i < 50; i++) {
		if (i == 7)
			continue;
		assert_int_equal(call_i32(s, insts[i], "cell", 0, 0, &r, NULL), ERR_OK);
		assert_int_equal(r, 0);
		assert_int_equal(call_i32(s, insts[i], "bump", 0, 0, &r, NULL), ERR_OK);
		assert_int_equal(r, 1);
	}
	/* a second store shares the module, not the state */
	struct wasm_store *s2 = new_store(NULL);
	struct wasm_instance *other = instantiate(s2, m);
	assert_int_equal(call_i32(s2, other, "bump", 0, 0, &r, NULL), ERR_OK);
	assert_int_equal(r, 1);
	wasm_store_free(s2);
	wasm_store_free(s);
	wasm_module_free(m);
}

static void test_idle_instance_footprint(void **state)
{
	(void)state;
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_store *s = new_store(NULL);
	size_t before = wasm_store_footprint(s);
	instantiate(s, m);
	size_t cost = wasm_store_footprint(s) - before;
	/* one 64 KiB page plus the instance's own bookkeeping */
	assert_true(cost >= 65536);
	assert_true(cost < 128 * 1024);
	assert_true(wasm_module_footprint(m) > 0);
	wasm_store_free(s);
	wasm_module_free(m);
}

static void test_module_errors(void **state)
{
	(void)state;
	struct wasm_module *m = NULL;
	struct err err = {0};
	static const uint8_t bad_magic[] = {0, 'a', 's', 'x', 1, 0, 0, 0};
	assert_int_equal(wasm_module_new(bad_magic, sizeof(bad_magic), &m, &err),
			 ERR_WASM_MALFORMED);
	assert_string_equal(err.msg, "magic header not detected");
	assert_null(m);
	/* (func (result i32) (i64.const 0)) */
	static const uint8_t mismatch[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f,
					   3, 2, 1, 0, 10, 6, 1, 4, 0, 0x42, 0, 0x0b};
	assert_int_equal(wasm_module_new(mismatch, sizeof(mismatch), &m, &err), ERR_WASM_INVALID);
	assert_string_equal(err.msg, "type mismatch");
	assert_int_equal(wasm_module_new(bad_magic, 64u << 20 | 1, &m, &err), ERR_TOO_LARGE);
}

static void test_module_introspection(void **state)
{
	(void)state;
	struct wasm_module *m = load_wat("(module (import \"env\" \"log\" (func (param i32 i64)))\n"
					 "  (import \"env\" \"g\" (global (mut f64)))\n"
					 "  (memory (export \"memory\") 2 3)\n"
					 "  (func (export \"f\")))");
	assert_int_equal(wasm_module_import_count(m), 2);
	struct wasm_import_desc d;
	wasm_module_import(m, 0, &d);
	assert_string_equal(d.module, "env");
	assert_string_equal(d.name, "log");
	assert_int_equal(d.kind, WASM_EXTERN_FUNC);
	assert_int_equal(d.func.nparams, 2);
	assert_int_equal(d.func.params[1], WASM_I64);
	wasm_module_import(m, 1, &d);
	assert_int_equal(d.kind, WASM_EXTERN_GLOBAL);
	assert_int_equal(d.global.type, WASM_F64);
	assert_true(d.global.mutable_);
	assert_int_equal(wasm_module_export_count(m), 2);
	struct wasm_export_desc e;
	wasm_module_export(m, 0, &e);
	assert_string_equal(e.name, "memory");
	assert_int_equal(e.kind, WASM_EXTERN_MEMORY);
	wasm_module_free(wasm_module_ref(m));
	wasm_module_free(m);
}

/* ---- host functions ---- */

struct host_ctx {
	int calls;
	uint32_t last;
	char text[32];
};

static enum err_code host_log(struct wasm_caller *caller, void *user, const struct wasm_value *args,
			      struct wasm_value *results, struct err *err)
{
	struct host_ctx *ctx = user;
	struct wasm_memory *mem = wasm_caller_memory(caller);
	uint32_t ptr = args[0].of.i32, len = args[1].of.i32;
	if (len >= sizeof(ctx->text))
		return err_set(err, ERR_WASM_TRAP, "message too long");
	enum err_code rc = wasm_memory_read(mem, ptr, ctx->text, len, err);
	if (rc)
		return rc;
	ctx->text[len] = 0;
	ctx->calls++;
	results[0] = i32v(len * 2);
	return ERR_OK;
}

struct binding {
	struct wasm_func *log;
	struct wasm_func *wrong;
};

static int resolve_env(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct binding *b = user;
	if (strcmp(d->module, "env") != 0)
		return -1;
	out->kind = WASM_EXTERN_FUNC;
	if (strcmp(d->name, "log") == 0)
		out->of.func = b->log;
	else if (strcmp(d->name, "wrong") == 0)
		out->of.func = b->wrong;
	else
		return -1;
	return 0;
}

static const char *host_wat =
	"(module (import \"env\" \"log\" (func $log (param i32 i32) (result i32)))\n"
	"  (memory (export \"memory\") 1)\n"
	"  (data (i32.const 16) \"hello\")\n"
	"  (func (export \"run\") (result i32) (call $log (i32.const 16) (i32.const 5)))\n"
	"  (func (export \"oob\") (result i32) (call $log (i32.const 65534) (i32.const 5))))";

static void test_host_binding(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct host_ctx ctx = {0};
	static const enum wasm_valtype p2[] = {WASM_I32, WASM_I32}, r1[] = {WASM_I32};
	struct wasm_functype t = {.nparams = 2, .nresults = 1, .params = p2, .results = r1};
	struct wasm_functype wrong_t = {.nparams = 2, .params = p2};
	struct binding b = {0};
	assert_int_equal(wasm_func_new_host(s, &t, host_log, &ctx, &b.log, NULL), ERR_OK);
	assert_int_equal(wasm_func_new_host(s, &wrong_t, host_log, &ctx, &b.wrong, NULL), ERR_OK);
	struct wasm_module *m = load_wat(host_wat);
	struct wasm_instance *inst = NULL;
	struct err err = {0};
	assert_int_equal(wasm_instance_new_resolved(s, m, resolve_env, &b, &inst, &err), ERR_OK);
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "run", 0, 0, &r, &err), ERR_OK);
	assert_int_equal(r, 10);
	assert_string_equal(ctx.text, "hello");
	assert_int_equal(ctx.calls, 1);
	/* the host's bounds-checked read traps, the trap reaches the caller */
	assert_int_equal(call_i32(s, inst, "oob", 0, 0, &r, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "out of bounds memory access");
	wasm_module_free(m);

	/* binding by name and type: a wrong type or name does not link */
	m = load_wat("(module (import \"env\" \"wrong\" (func (param i32 i32) (result i32))))");
	assert_int_equal(wasm_instance_new_resolved(s, m, resolve_env, &b, &inst, &err),
			 ERR_WASM_LINK);
	assert_true(strncmp(err.msg, "incompatible import type", 24) == 0);
	wasm_module_free(m);
	m = load_wat("(module (import \"env\" \"nope\" (func)))");
	assert_int_equal(wasm_instance_new_resolved(s, m, resolve_env, &b, &inst, &err),
			 ERR_WASM_LINK);
	assert_true(strncmp(err.msg, "unknown import", 14) == 0);
	wasm_module_free(m);
	wasm_store_free(s);
}

struct reenter {
	struct wasm_func *inner;
};

static enum err_code host_reenter(struct wasm_caller *caller, void *user,
				  const struct wasm_value *args, struct wasm_value *results,
				  struct err *err)
{
	struct reenter *re = user;
	struct wasm_value a = args[0];
	return wasm_func_call(wasm_caller_store(caller), re->inner, &a, 1, results, 1, err);
}

static int resolve_reenter(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	(void)d;
	out->kind = WASM_EXTERN_FUNC;
	out->of.func = user;
	return 0;
}

static void test_host_reentry(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_module *m = load_wat(
		"(module (import \"env\" \"cb\" (func $cb (param i32) (result i32)))\n"
		"  (func (export \"outer\") (param i32) (result i32)\n"
		"    (i32.add (i32.const 1000) (call $cb (local.get 0))))\n"
		"  (func (export \"inner\") (param i32) (result i32)\n"
		"    (i32.mul (local.get 0) (i32.const 3))))");
	static const enum wasm_valtype i32[] = {WASM_I32};
	struct wasm_functype t = {.nparams = 1, .nresults = 1, .params = i32, .results = i32};
	struct reenter re = {0};
	struct wasm_func *cb;
	assert_int_equal(wasm_func_new_host(s, &t, host_reenter, &re, &cb, NULL), ERR_OK);
	struct wasm_instance *inst = NULL;
	assert_int_equal(wasm_instance_new_resolved(s, m, resolve_reenter, cb, &inst, NULL),
			 ERR_OK);
	re.inner = export_func(inst, "inner");
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "outer", 1, 7, &r, NULL), ERR_OK);
	assert_int_equal(r, 1021);
	wasm_module_free(m);
	wasm_store_free(s);
}

/* ---- memory helpers ---- */

static void test_memory_bounds(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_memory *mem = NULL;
	struct wasm_limits_type lim = {.min = 1, .max = 2, .has_max = 1};
	assert_int_equal(wasm_memory_new(s, lim, &mem, NULL), ERR_OK);
	assert_int_equal(wasm_memory_size(mem), 65536);
	struct err err = {0};
	uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {0};
	assert_int_equal(wasm_memory_write(mem, 65528, buf, 8, &err), ERR_OK);
	assert_int_equal(wasm_memory_read(mem, 65528, back, 8, &err), ERR_OK);
	assert_memory_equal(buf, back, 8);
	assert_int_equal(wasm_memory_read(mem, 65536, back, 0, &err), ERR_OK);
	assert_int_equal(wasm_memory_read(mem, 65529, back, 8, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "out of bounds memory access");
	assert_int_equal(wasm_memory_write(mem, 65537, buf, 0, &err), ERR_WASM_TRAP);
	assert_int_equal(wasm_memory_write(mem, 0xffffffffull, buf, 2, &err), ERR_WASM_TRAP);
	assert_int_equal(wasm_memory_write(mem, 0xfffffffcull, buf, 8, &err), ERR_WASM_TRAP);
	assert_int_equal(wasm_memory_read(mem, UINT64_MAX - 3, back, 8, &err), ERR_WASM_TRAP);
	assert_int_equal(wasm_memory_read(mem, 8, back, SIZE_MAX - 4, &err), ERR_WASM_TRAP);
	assert_int_equal(wasm_memory_read(mem, UINT64_MAX, back, 1, &err), ERR_WASM_TRAP);
	/* growing keeps the contents and respects the type's maximum */
	assert_int_equal(wasm_memory_grow(mem, 1), 1);
	assert_int_equal(wasm_memory_size(mem), 131072);
	assert_int_equal(wasm_memory_read(mem, 65528, back, 8, &err), ERR_OK);
	assert_memory_equal(buf, back, 8);
	assert_int_equal(wasm_memory_grow(mem, 1), -1);
	wasm_store_free(s);
}

static void test_memory_page_cap(void **state)
{
	(void)state;
	struct wasm_store_limits lim = {.max_memory_pages = 3};
	struct wasm_store *s = new_store(&lim);
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_instance *inst = instantiate(s, m);
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "grow", 1, 2, &r, NULL), ERR_OK);
	assert_int_equal(r, 1);
	assert_int_equal(call_i32(s, inst, "grow", 1, 1, &r, NULL), ERR_OK);
	assert_int_equal(r, (uint32_t)-1);
	assert_int_equal(call_i32(s, inst, "grow", 1, 0, &r, NULL), ERR_OK);
	assert_int_equal(r, 3);
	/* a module whose minimum is over the cap does not instantiate */
	struct wasm_module *big = load_wat("(module (memory 4))");
	struct wasm_instance *bi = NULL;
	struct err err = {0};
	assert_int_not_equal(wasm_instance_new(s, big, NULL, 0, &bi, &err), ERR_OK);
	assert_null(bi);
	wasm_module_free(big);
	wasm_module_free(m);
	wasm_store_free(s);
}

/* ---- limits and traps ---- */

static void test_fuel_stops_loop(void **state)
{
	(void)state;
	struct wasm_store_limits lim = {.fuel = 100000};
	struct wasm_store *s = new_store(&lim);
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_instance *inst = instantiate(s, m);
	struct err err = {0};
	assert_int_equal(call_i32(s, inst, "spin", 0, 0, NULL, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "fuel exhausted");
	assert_int_equal(wasm_store_fuel_used_last(s), 100000);
	/* the budget is per outermost call: the next call runs again */
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "bump", 0, 0, &r, &err), ERR_OK);
	assert_int_equal(r, 1);
	assert_true(wasm_store_fuel_used_last(s) > 0);
	assert_true(wasm_store_fuel_used_last(s) < 100);
	assert_true(wasm_store_fuel_used_total(s) > 100000);
	wasm_module_free(m);
	wasm_store_free(s);
}

struct interrupter {
	struct wasm_store *store;
};

static void *interrupt_later(void *arg)
{
	struct interrupter *it = arg;
	usleep(20 * 1000);
	wasm_store_interrupt(it->store);
	return NULL;
}

static void test_interrupt_from_thread(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL); /* unlimited fuel */
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_instance *inst = instantiate(s, m);
	struct interrupter it = {.store = s};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, interrupt_later, &it), 0);
	struct err err = {0};
	assert_int_equal(call_i32(s, inst, "spin", 0, 0, NULL, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "interrupted");
	pthread_join(th, NULL);
	/* the flag is cleared when the interrupted call returns */
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "bump", 0, 0, &r, &err), ERR_OK);
	assert_int_equal(r, 1);
	wasm_module_free(m);
	wasm_store_free(s);
}

static void test_trap_leaves_store_usable(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_instance *inst = instantiate(s, m);
	struct err err = {0};
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "bump", 0, 0, &r, &err), ERR_OK);
	assert_int_equal(call_i32(s, inst, "fail", 0, 0, &r, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "integer divide by zero");
	assert_int_equal(call_i32(s, inst, "inf", 0, 0, NULL, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "call stack exhausted");
	assert_int_equal(call_i32(s, inst, "bump", 0, 0, &r, &err), ERR_OK);
	assert_int_equal(r, 2);
	assert_int_equal(call_i32(s, inst, "rec", 1, 1000, &r, &err), ERR_OK);
	assert_int_equal(r, 1000);
	/* wrong argument count or type is refused before running */
	struct wasm_func *f = export_func(inst, "rec");
	struct wasm_value bad = {.type = WASM_I64, .of.i64 = 1}, res;
	assert_int_equal(wasm_func_call(s, f, &bad, 1, &res, 1, &err), ERR_INVALID);
	assert_int_equal(wasm_func_call(s, f, NULL, 0, &res, 1, &err), ERR_INVALID);
	wasm_module_free(m);
	wasm_store_free(s);
}

static void test_call_depth_limit(void **state)
{
	(void)state;
	struct wasm_store_limits lim = {.max_call_depth = 200};
	struct wasm_store *s = new_store(&lim);
	struct wasm_module *m = load_wat(counter_wat);
	struct wasm_instance *inst = instantiate(s, m);
	struct err err = {0};
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "rec", 1, 150, &r, &err), ERR_OK);
	assert_int_equal(r, 150);
	assert_int_equal(call_i32(s, inst, "rec", 1, 250, &r, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "call stack exhausted");
	wasm_module_free(m);
	wasm_store_free(s);
}

struct deep {
	struct wasm_store *store;
	struct wasm_instance *inst;
	enum err_code finite_rc, infinite_rc;
	uint32_t result;
	struct err err;
};

static void *deep_thread(void *arg)
{
	struct deep *d = arg;
	d->finite_rc = call_i32(d->store, d->inst, "rec", 1, 9000, &d->result, &d->err);
	d->infinite_rc = call_i32(d->store, d->inst, "inf", 0, 0, NULL, &d->err);
	return NULL;
}

/* wasm->wasm calls must not grow the C stack: 9000 nested calls and a
 * runaway recursion on a thread with a 256 KiB stack. */
static void test_deep_recursion_small_stack(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_module *m = load_wat(counter_wat);
	struct deep d = {.store = s, .inst = instantiate(s, m)};
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, &attr, deep_thread, &d), 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	assert_int_equal(d.finite_rc, ERR_OK);
	assert_int_equal(d.result, 9000);
	assert_int_equal(d.infinite_rc, ERR_WASM_EXHAUSTED);
	assert_string_equal(d.err.msg, "call stack exhausted");
	wasm_module_free(m);
	wasm_store_free(s);
}

static void test_start_trap_keeps_effects(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_memory *mem = NULL;
	struct wasm_limits_type lim = {.min = 1};
	assert_int_equal(wasm_memory_new(s, lim, &mem, NULL), ERR_OK);
	struct wasm_module *m = load_wat("(module (import \"env\" \"mem\" (memory 1))\n"
					 "  (data (i32.const 100) \"xyz\")\n"
					 "  (func $start unreachable) (start $start))");
	struct wasm_extern ex = {.kind = WASM_EXTERN_MEMORY, .of.memory = mem};
	struct wasm_instance *inst = NULL;
	struct err err = {0};
	assert_int_equal(wasm_instance_new(s, m, &ex, 1, &inst, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "unreachable");
	assert_null(inst);
	assert_memory_equal(wasm_memory_data(mem) + 100, "xyz", 3);
	wasm_module_free(m);
	wasm_store_free(s);
}

static void test_globals_and_tables(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct wasm_global *g = NULL;
	assert_int_equal(wasm_global_new(s, i32v(5), 1, &g, NULL), ERR_OK);
	struct wasm_module *m = load_wat("(module (import \"env\" \"g\" (global $g (mut i32)))\n"
					 "  (table (export \"t\") 2 funcref) (elem (i32.const 1) $f)\n"
					 "  (func $f (export \"f\") (global.set $g (i32.const 9))))");
	struct wasm_extern ex = {.kind = WASM_EXTERN_GLOBAL, .of.global = g};
	struct wasm_instance *inst = NULL;
	assert_int_equal(wasm_instance_new(s, m, &ex, 1, &inst, NULL), ERR_OK);
	assert_int_equal(wasm_func_call(s, export_func(inst, "f"), NULL, 0, NULL, 0, NULL),
			 ERR_OK);
	assert_int_equal(wasm_global_get(g).of.i32, 9);
	assert_int_equal(wasm_global_set(g, (struct wasm_value){.type = WASM_I64}), ERR_INVALID);
	struct wasm_extern t;
	assert_int_equal(wasm_instance_export(inst, "t", &t), ERR_OK);
	assert_int_equal(wasm_table_size(t.of.table), 2);
	struct wasm_value v;
	assert_int_equal(wasm_table_get(t.of.table, 0, &v), ERR_OK);
	assert_null(v.of.funcref);
	assert_int_equal(wasm_table_get(t.of.table, 1, &v), ERR_OK);
	assert_ptr_equal(v.of.funcref, export_func(inst, "f"));
	assert_int_equal(wasm_table_get(t.of.table, 2, &v), ERR_NOT_FOUND);
	struct wasm_global *c = NULL;
	assert_int_equal(wasm_global_new(s, i32v(1), 0, &c, NULL), ERR_OK);
	assert_int_equal(wasm_global_set(c, i32v(2)), ERR_CONFLICT);
	wasm_module_free(m);
	wasm_store_free(s);
}


/* ---- translation patterns ----
 * Each export exercises one translation shortcut where a wrong shortcut
 * changes the result; the expected values follow from the wasm semantics. */
static const char *pattern_wat =
	"(module (memory 1)\n"
	/* the old value of a local stays on the stack while the local is written */
	"  (func (export \"old_value\") (param i32) (result i32)\n"
	"    (i32.sub (local.get 0) (local.tee 0 (i32.const 5))))\n"
	"  (func (export \"old_value2\") (param i32) (result i32) (local i32)\n"
	"    (local.get 0) (local.get 0) (local.set 1 (i32.const 9)) (local.set 0 (i32.const 100))\n"
	"    (i32.mul) (local.get 1) (i32.add))\n"
	/* a value pushed before a block, the local written inside, maybe skipped */
	"  (func (export \"across_block\") (param i32 i32) (result i32)\n"
	"    (local.get 0)\n"
	"    (block (br_if 0 (local.get 1)) (local.set 0 (i32.const 1000)))\n"
	"    (local.get 0) (i32.add))\n"
	/* a loop that rotates locals through the stack */
	"  (func (export \"rotate\") (param i32) (result i32) (local i32 i32 i32)\n"
	"    (local.set 1 (i32.const 1)) (local.set 2 (i32.const 2)) (local.set 3 (i32.const 3))\n"
	"    (loop $l (local.get 1) (local.get 2) (local.get 3)\n"
	"      (local.set 1) (local.set 3) (local.set 2)\n"
	"      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))\n"
	"    (i32.add (i32.mul (local.get 1) (i32.const 100))\n"
	"             (i32.add (i32.mul (local.get 2) (i32.const 10)) (local.get 3))))\n"
	/* br_table with a value to blocks of different heights and to a loop */
	"  (func (export \"table\") (param i32) (result i32) (local i32)\n"
	"    (block $a (result i32) (block $b (result i32) (i32.const 0)\n"
	"      (loop $l (param i32) (result i32) (drop)\n"
	"        (local.set 1 (i32.add (local.get 1) (i32.const 1)))\n"
	"        (br_table $b $a $l $a (i32.mul (local.get 0) (i32.const 7))\n"
	"          (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))\n"
	"      (i32.add (local.get 1)) (i32.const 1000) (i32.add))\n"
	"    (i32.mul (local.get 1) (i32.const 10000)) (i32.add))\n"
	/* br_if carrying a value whose slot differs from the target's */
	"  (func (export \"br_if_value\") (param i32) (result i32)\n"
	"    (block (result i32) (i32.const 1)\n"
	"      (br_if 0 (i32.add (local.get 0) (i32.const 40)) (i32.gt_s (local.get 0) (i32.const 10)))\n"
	"      (drop) (drop) (i32.const 7)))\n"
	/* compare-and-branch in both polarities and with a constant on the left */
	"  (func (export \"cmp\") (param i32 i32) (result i32) (local i32)\n"
	"    (if (i32.lt_s (local.get 0) (local.get 1)) (then (local.set 2 (i32.const 1))))\n"
	"    (if (i32.lt_u (i32.const 5) (local.get 0)) (then (local.set 2 (i32.add (local.get 2) (i32.const 10)))))\n"
	"    (if (i64.ge_s (i64.extend_i32_s (local.get 1)) (i64.const 0))\n"
	"      (then (local.set 2 (i32.add (local.get 2) (i32.const 100)))))\n"
	"    (if (i32.eqz (local.get 0)) (then (local.set 2 (i32.add (local.get 2) (i32.const 1000)))))\n"
	"    (local.get 2))\n"
	/* addresses computed by i32.add, wrapping at 2^32, into loads and stores */
	"  (func (export \"addr\") (param i32) (result i32)\n"
	"    (i32.store (i32.add (local.get 0) (i32.const 8)) (i32.const 0x11223344))\n"
	"    (i32.store8 offset=1 (i32.add (local.get 0) (local.get 0)) (i32.const 0x55))\n"
	"    (i32.add (i32.load (i32.add (local.get 0) (i32.const 8)))\n"
	"             (i32.load8_u offset=1 (i32.add (local.get 0) (local.get 0)))))\n"
	"  (func (export \"addr_wrap\") (param i32) (result i32)\n"
	"    (i32.store (i32.const 12) (i32.const 77))\n"
	"    (i32.load (i32.add (local.get 0) (i32.const -4))))\n"
	"  (func (export \"addr_no_wrap\") (param i32) (result i32)\n"
	"    (i32.load offset=8 (i32.add (local.get 0) (local.get 0))))\n"
	/* multi-value: results come back swapped through the same slots */
	"  (func $swap (param i32 i32) (result i32 i32) (local.get 1) (local.get 0))\n"
	"  (func (export \"swap\") (param i32 i32) (result i32)\n"
	"    (call $swap (local.get 0) (local.get 1)) (i32.const 10) (i32.mul) (i32.add))\n"
	/* results moved down over overlapping slots (fewer locals than results) */
	"  (func $pair (param i32) (result i32 i32 i32) (i32.const 5) (local.get 0) (i32.const 6))\n"
	"  (func (export \"pair\") (param i32) (result i32)\n"
	"    (call $pair (local.get 0)) (i32.add) (i32.sub))\n"
	/* constants as operands of ops without immediate forms */
	"  (func (export \"consts\") (param f64) (result f64)\n"
	"    (f64.add (f64.mul (local.get 0) (f64.const 0.5)) (f64.sub (f64.const 10) (local.get 0))))\n"
	")\n";

static uint32_t call2(struct wasm_store *s, struct wasm_instance *inst, const char *name,
		      uint32_t a, uint32_t b)
{
	struct wasm_value args[2] = {i32v(a), i32v(b)}, r = {0};
	struct err err = {0};
	if (wasm_func_call(s, export_func(inst, name), args, 2, &r, 1, &err))
		fail_msg("%s trapped: %s", name, err.msg);
	return r.of.i32;
}

static void test_translation_patterns(void **state)
{
	(void)state;
	struct wasm_module *m = load_wat(pattern_wat);
	struct wasm_store *s = new_store(NULL);
	struct wasm_instance *inst = instantiate(s, m);
	uint32_t r = 0;
	assert_int_equal(call_i32(s, inst, "old_value", 1, 12, &r, NULL), ERR_OK);
	assert_int_equal(r, 7);
	assert_int_equal(call_i32(s, inst, "old_value2", 1, 6, &r, NULL), ERR_OK);
	assert_int_equal(r, 45);
	assert_int_equal(call2(s, inst, "across_block", 5, 1), 10);
	assert_int_equal(call2(s, inst, "across_block", 5, 0), 1005);
	assert_int_equal(call_i32(s, inst, "rotate", 1, 1, &r, NULL), ERR_OK);
	assert_int_equal(r, 312);
	assert_int_equal(call_i32(s, inst, "rotate", 1, 2, &r, NULL), ERR_OK);
	assert_int_equal(r, 231);
	static const uint32_t table_in[] = {1, 2, 3, 5}, table_out[] = {11008, 10014, 20014, 10035};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(call_i32(s, inst, "table", 1, table_in[i], &r, NULL), ERR_OK);
		assert_int_equal(r, table_out[i]);
	}
	assert_int_equal(call_i32(s, inst, "br_if_value", 1, 11, &r, NULL), ERR_OK);
	assert_int_equal(r, 51);
	assert_int_equal(call_i32(s, inst, "br_if_value", 1, 3, &r, NULL), ERR_OK);
	assert_int_equal(r, 7);
	assert_int_equal(call2(s, inst, "cmp", 3, 4), 101);
	assert_int_equal(call2(s, inst, "cmp", 6, 4), 110);
	assert_int_equal(call2(s, inst, "cmp", 0, (uint32_t)-1), 1000);
	assert_int_equal(call2(s, inst, "cmp", (uint32_t)-2, (uint32_t)-1), 11);
	assert_int_equal(call_i32(s, inst, "addr", 1, 100, &r, NULL), ERR_OK);
	assert_int_equal(r, 0x11223344 + 0x55);
	assert_int_equal(call_i32(s, inst, "addr_wrap", 1, 16, &r, NULL), ERR_OK);
	assert_int_equal(r, 77);
	struct err err = {0};
	/* the i32.add wraps at 2^32, the offset is added without wrapping */
	assert_int_equal(call_i32(s, inst, "addr_no_wrap", 1, 0x80000002u, &r, &err), ERR_OK);
	assert_int_equal(r, 77);
	assert_int_equal(call_i32(s, inst, "addr_no_wrap", 1, 0x7ffffffeu, &r, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "out of bounds memory access");
	assert_int_equal(call2(s, inst, "swap", 3, 4), 34);
	assert_int_equal(call_i32(s, inst, "pair", 1, 9, &r, NULL), ERR_OK);
	assert_int_equal(r, (uint32_t)(5 - (9 + 6)));
	struct wasm_value x = {.type = WASM_F64}, y;
	double d = 4.0, out;
	memcpy(&x.of.f64, &d, 8);
	assert_int_equal(wasm_func_call(s, export_func(inst, "consts"), &x, 1, &y, 1, NULL), ERR_OK);
	memcpy(&out, &y.of.f64, 8);
	assert_true(out == 8.0);
	wasm_store_free(s);
	wasm_module_free(m);
}

/* ---- differential: clang-compiled C against the same C built natively ----
 * Exercises the translator's peepholes (virtual locals, retargeted results,
 * fused compares and addresses, constant slots) on real compiler output at
 * several optimization levels. The program avoids undefined behaviour so
 * both builds must agree. */
static const char *diff_src =
	"typedef unsigned int u32; typedef unsigned long long u64;\n"
	"static u64 h = 1469598103934665603ull;\n"
	"static void mix(u64 v) { h ^= v; h *= 1099511628211ull; }\n"
	"static u32 arr[64]; static double darr[64]; static float farr[64];\n"
	"struct S { u32 a; double b; char c[5]; short d; };\n"
	"static struct S ss[8];\n"
	"typedef u32 (*fn)(u32, u32);\n"
	"static u32 f_add(u32 a, u32 b) { return a + b; }\n"
	"static u32 f_sub(u32 a, u32 b) { return a - b; }\n"
	"static u32 f_mul(u32 a, u32 b) { return a * b + 1; }\n"
	"static u32 f_div(u32 a, u32 b) { return b ? a / b : 7; }\n"
	"static fn fns[4] = {f_add, f_sub, f_mul, f_div};\n"
	"static u32 sw(u32 x) { switch (x & 15) { case 0: return x * 3; case 1: return x - 7;\n"
	"  case 2: return x ^ 0x55; case 3: return x << 2; case 5: return x >> 1; case 7: return -x;\n"
	"  case 8: return x % 13; case 11: return x / 3; default: return x + 100; } }\n"
	"static u64 rec(u32 n, u64 acc) { if (n == 0) return acc;\n"
	"  return rec(n - 1, acc * 31 + n) ^ (n & 1 ? rec(n / 3, n) : 0); }\n"
	"static double fpm(double x) { double s = 0; for (int i = 1; i < 20; i++) {\n"
	"  s += x / i; x = x * 1.0001 - 0.5 / i; if (s > 1e6) s = s / 3; } return s; }\n"
	"static float fpf(float x) { float s = 0; for (int i = 0; i < 30; i++) {\n"
	"  s = s * 0.5f + x; x = x * 1.5f - (float)i; if (x > 1e9f) x = 1; } return s; }\n"
	"static u32 bits(u32 x) { return (u32)__builtin_popcount(x) + (u32)__builtin_clz(x | 1) * 3\n"
	"  + ((x << 7) | (x >> 25)); }\n"
	"static u32 many(u32 a, u32 b, u32 c, u32 d) {\n"
	"  u32 e = a + b, f = c - d, g = a * c, i = b ^ d, j = e | f, k = g & i, l = j + k;\n"
	"  u32 m = l - e, n = m * 3 + f, o = n ^ g, p = o + i, q = p - j, r = q * k + l, t = r ^ m;\n"
	"  for (int z = 0; z < 5; z++) { e += f; f ^= g; g -= i; i += j; j ^= k; k += l; l -= m;\n"
	"    m ^= n; n += o; o -= p; p ^= q; q += r; r ^= t; t += e; }\n"
	"  return e + f + g + i + j + k + l + m + n + o + p + q + r + t; }\n"
	"static u32 nested(u32 x) { u32 r = 0;\n"
	"  for (u32 i = 0; i < 7; i++) { if (i == 3) continue;\n"
	"    for (u32 j = 0; j < 5; j++) { if ((i * j + x) % 7 == 3) break;\n"
	"      for (u32 k = 0; k < j; k++) { r += (k ^ i) * (x | 1); if (r > 100000) { r /= 7; goto out; } } } }\n"
	"out: return r + x; }\n"
	"u32 run(u32 seed) { u32 x = seed;\n"
	"  for (int i = 0; i < 64; i++) { x = x * 1664525u + 1013904223u; arr[i] = x;\n"
	"    darr[i] = (double)(int)(x >> 1) / 1000.0; farr[i] = (float)(x >> 8) / 7.0f; }\n"
	"  for (int i = 0; i < 8; i++) { ss[i].a = arr[i]; ss[i].b = darr[i];\n"
	"    for (int k = 0; k < 5; k++) ss[i].c[k] = (char)(arr[i] >> k); ss[i].d = (short)(arr[i + 1] & 0x7fff); }\n"
	"  for (u32 round = 0; round < 3; round++) {\n"
	"    for (int i = 0; i < 64; i++) { mix(sw(arr[i])); mix(fns[arr[i] % 4](arr[i] >> 3, arr[(i + 1) % 64] >> 5));\n"
	"      mix(bits(arr[i])); mix((u64)(long long)(fpm(darr[i] / 1000) * 1000));\n"
	"      mix((u64)(long long)(fpf(farr[i] / 1e6f) * 100)); mix(nested(arr[i] & 0xffff)); }\n"
	"    mix(rec(12 + round, round)); mix(many(arr[round], arr[round + 1], arr[round + 2], arr[round + 3]));\n"
	"    struct S tmp = ss[round]; ss[round] = ss[7 - round]; ss[7 - round] = tmp;\n"
	"    for (int i = 0; i < 8; i++) { mix(ss[i].a); mix((u64)(long long)ss[i].b); mix((u64)ss[i].c[round]);\n"
	"      mix((u64)ss[i].d); }\n"
	"    for (int i = 0; i < 63; i++) if (arr[i] > arr[i + 1]) { u32 t = arr[i]; arr[i] = arr[i + 1]; arr[i + 1] = t; } }\n"
	"  return (u32)(h ^ (h >> 32)); }\n"
	"#ifdef __wasm__\n"
	"typedef unsigned long size_t;\n"
	"void *memcpy(void *d, const void *s, size_t n) { unsigned char *p = d; const unsigned char *q = s;\n"
	"  while (n--) *p++ = *q++; return d; }\n"
	"void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }\n"
	"#else\n"
	"#include <stdio.h>\n"
	"int main(void) { for (u32 s = 0; s < 4; s++) printf(\"%u\\n\", run(s * 7919u + 1)); return 0; }\n"
	"#endif\n";

/* Builds src natively and returns run(seed) for the 4 seeds main() uses. */
static void native_results(const char *dir, const char *src, uint32_t expect[4])
{
	char *exe = tu_fmt("%s/prog", dir);
	char *cmd = tu_fmt("cc -O1 -o '%s' '%s'", exe, src);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	cmd = tu_fmt("'%s'", exe);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(fscanf(p, "%u", &expect[i]), 1);
	pclose(p);
	free(cmd);
	free(exe);
}

static void check_wasm_build(const char *dir, const char *src, const char *level,
			     const uint32_t expect[4])
{
	char *wasm = tu_fmt("%s/prog%s.wasm", dir, level);
	char *cmd = tu_fmt("clang --target=wasm32 %s -nostdlib -Wl,--no-entry -Wl,--export=run "
			   "-o '%s' '%s'", level, wasm, src);
	if (system(cmd) != 0)
		fail_msg("clang cannot build wasm32 (scripts/install-deps.sh)");
	size_t len;
	uint8_t *bytes = (uint8_t *)tu_read_file(wasm, &len);
	struct wasm_module *m = NULL;
	struct err err = {0};
	assert_int_equal(wasm_module_new(bytes, len, &m, &err), ERR_OK);
	struct wasm_store *s = new_store(NULL);
	struct wasm_instance *inst = instantiate(s, m);
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t r = 0;
		assert_int_equal(call_i32(s, inst, "run", 1, i * 7919u + 1, &r, &err), ERR_OK);
		if (r != expect[i])
			fail_msg("%s: run(%u) = %u, native %u", level, i, r, expect[i]);
	}
	wasm_store_free(s);
	wasm_module_free(m);
	free(bytes);
	free(cmd);
	free(wasm);
}

static void test_clang_differential(void **state)
{
	(void)state;
	char *dir = tu_mkdtemp("test-wasm-diff");
	assert_non_null(dir);
	char *src = tu_fmt("%s/prog.c", dir);
	assert_int_equal(tu_write_file(src, diff_src, strlen(diff_src)), 0);
	uint32_t expect[4];
	native_results(dir, src, expect);
	check_wasm_build(dir, src, "-O0", expect);
	check_wasm_build(dir, src, "-O2", expect);
	check_wasm_build(dir, src, "-Os", expect);
	tu_rmtree(dir);
	free(src);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instances_independent),
		cmocka_unit_test(test_idle_instance_footprint),
		cmocka_unit_test(test_module_errors),
		cmocka_unit_test(test_module_introspection),
		cmocka_unit_test(test_host_binding),
		cmocka_unit_test(test_host_reentry),
		cmocka_unit_test(test_memory_bounds),
		cmocka_unit_test(test_memory_page_cap),
		cmocka_unit_test(test_fuel_stops_loop),
		cmocka_unit_test(test_interrupt_from_thread),
		cmocka_unit_test(test_trap_leaves_store_usable),
		cmocka_unit_test(test_call_depth_limit),
		cmocka_unit_test(test_deep_recursion_small_stack),
		cmocka_unit_test(test_start_trap_keeps_effects),
		cmocka_unit_test(test_globals_and_tables),
		cmocka_unit_test(test_translation_patterns),
		cmocka_unit_test(test_clang_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
