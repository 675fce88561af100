/* test_wasm_suspend.c - parked calls in the engine (src/wasm/wasm.h,
 * "suspended calls"): a host function suspends the outermost call, the store
 * keeps the wasm frames, and wasm_store_resume continues it later, possibly
 * on another thread; cancel, free while suspended, fuel and the interrupt
 * across resumptions, and the places where suspending is refused. */
#include "tests/support/testutil.h"
#include "tests/support/server_proc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm.h"

/* ---- helpers ---- */

static struct wasm_module *load_wat(const char *wat)
{
	size_t len;
	unsigned char *bytes = wat_compile(wat, &len);
	struct wasm_module *m = NULL;
	struct err err = {0};
	if (wasm_module_new(bytes, len, &m, &err))
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

static struct wasm_value i64v(uint64_t v)
{
	return (struct wasm_value){.type = WASM_I64, .of.i64 = v};
}

static struct wasm_value f64v(double d)
{
	struct wasm_value v = {.type = WASM_F64};
	memcpy(&v.of.f64, &d, 8);
	return v;
}

static double f64_of(struct wasm_value v)
{
	double d;
	memcpy(&d, &v.of.f64, 8);
	return d;
}

/* What the host functions of these tests share. */
struct park {
	int direct;             /* answer at once instead of suspending */
	int skip;               /* answer the next `skip` calls at once */
	int tick_direct;        /* tick answers at once */
	int no_permission;      /* return ERR_WASM_SUSPEND without asking */
	uint32_t calls;
	uint32_t last_i;
	double last_f;
	pthread_t thread;       /* the thread of the last host call */
	int could_suspend;      /* wasm_caller_can_suspend at the last call */
	struct wasm_func *reenter; /* called back before suspending, when set */
	uint32_t reentered;     /* its result */
};

static enum err_code park_or(struct park *p, struct wasm_caller *caller, struct err *err)
{
	p->calls++;
	p->thread = pthread_self();
	p->could_suspend = wasm_caller_can_suspend(caller);
	if (p->no_permission)
		return ERR_WASM_SUSPEND;
	return wasm_caller_suspend(caller, p, err);
}

/* wait(i32, f64) -> (i64, f64); direct answer: (i*i + 7, i / 2) */
static enum err_code host_wait2(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	struct park *p = user;
	p->last_i = args[0].of.i32;
	p->last_f = f64_of(args[1]);
	if (!p->direct && !p->skip)
		return park_or(p, caller, err);
	if (p->skip)
		p->skip--;
	p->calls++;
	results[0] = i64v((uint64_t)p->last_i * p->last_i + 7);
	results[1] = f64v(p->last_i * 0.5);
	return ERR_OK;
}

/* wait(i32) -> i32; direct answer: i + 1 */
static enum err_code host_wait1(struct wasm_caller *caller, void *user,
				const struct wasm_value *args, struct wasm_value *results,
				struct err *err)
{
	struct park *p = user;
	p->last_i = args[0].of.i32;
	if (p->reenter) {
		struct wasm_value a = i32v(p->last_i), r = {0};
		enum err_code rc = wasm_func_call(wasm_caller_store(caller), p->reenter, &a, 1,
						  &r, 1, err);
		if (rc)
			return rc;
		p->reentered = r.of.i32;
	}
	if (!p->direct)
		return park_or(p, caller, err);
	p->calls++;
	results[0] = i32v(p->last_i + 1);
	return ERR_OK;
}

/* tick(i32) */
static enum err_code host_tick(struct wasm_caller *caller, void *user,
			       const struct wasm_value *args, struct wasm_value *results,
			       struct err *err)
{
	(void)results;
	struct park *p = user;
	p->last_i = args[0].of.i32;
	if (!p->direct && !p->tick_direct)
		return park_or(p, caller, err);
	p->calls++;
	return ERR_OK;
}

static const enum wasm_valtype t_i32[] = {WASM_I32};
static const enum wasm_valtype t_i32_f64[] = {WASM_I32, WASM_F64};
static const enum wasm_valtype t_i64_f64[] = {WASM_I64, WASM_F64};

/* Host functions by import name ("env" "wait2" / "wait1" / "tick"), and
 * other instances' exports ("lib" NAME). */
struct linker {
	struct wasm_func *wait2, *wait1, *tick;
	struct wasm_instance *lib;
};

static void linker_init(struct linker *l, struct wasm_store *s, struct park *p)
{
	struct wasm_functype w2 = {.nparams = 2, .nresults = 2, .params = t_i32_f64,
				   .results = t_i64_f64};
	struct wasm_functype w1 = {.nparams = 1, .nresults = 1, .params = t_i32, .results = t_i32};
	struct wasm_functype tk = {.nparams = 1, .params = t_i32};
	memset(l, 0, sizeof(*l));
	assert_int_equal(wasm_func_new_host(s, &w2, host_wait2, p, &l->wait2, NULL), ERR_OK);
	assert_int_equal(wasm_func_new_host(s, &w1, host_wait1, p, &l->wait1, NULL), ERR_OK);
	assert_int_equal(wasm_func_new_host(s, &tk, host_tick, p, &l->tick, NULL), ERR_OK);
}

static int resolve(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct linker *l = user;
	if (strcmp(d->module, "lib") == 0)
		return l->lib ? (int)wasm_instance_export(l->lib, d->name, out) : -1;
	out->kind = WASM_EXTERN_FUNC;
	if (strcmp(d->name, "wait2") == 0)
		out->of.func = l->wait2;
	else if (strcmp(d->name, "wait1") == 0)
		out->of.func = l->wait1;
	else if (strcmp(d->name, "tick") == 0)
		out->of.func = l->tick;
	else
		return -1;
	return 0;
}

static struct wasm_instance *instantiate(struct wasm_store *s, struct wasm_module *m,
					 struct linker *l)
{
	struct wasm_instance *inst = NULL;
	struct err err = {0};
	if (wasm_instance_new_resolved(s, m, resolve, l, &inst, &err))
		fail_msg("instantiation failed: %s", err.msg);
	return inst;
}

/* loop(n): calls wait2(i, 2i) n times, sums both results. */
static const char *loop_wat =
	"(module\n"
	"  (import \"env\" \"wait2\" (func $wait (param i32 f64) (result i64 f64)))\n"
	"  (func (export \"loop\") (param $n i32) (result i64 f64)\n"
	"    (local $i i32) (local $acc i64) (local $facc f64) (local $f f64)\n"
	"    (block $done (loop $l\n"
	"      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
	"      (call $wait (local.get $i)\n"
	"        (f64.convert_i32_u (i32.mul (local.get $i) (i32.const 2))))\n"
	"      (local.set $f)\n"
	"      (local.set $acc (i64.add (local.get $acc)))\n"
	"      (local.set $facc (f64.add (local.get $facc) (local.get $f)))\n"
	"      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
	"      (br $l)))\n"
	"    (local.get $acc) (local.get $facc)))\n";

/* Resumes with the direct answer for p->last_i. */
static enum err_code resume_wait2(struct wasm_store *s, struct park *p, struct wasm_value out[2],
				  struct err *err)
{
	struct wasm_value r[2] = {i64v((uint64_t)p->last_i * p->last_i + 7), f64v(p->last_i * 0.5)};
	return wasm_store_resume(s, r, 2, out, 2, err);
}

static void check_loop_result(const struct wasm_value out[2], uint32_t n)
{
	uint64_t acc = 0;
	double facc = 0;
	for (uint64_t i = 0; i < n; i++) {
		acc += i * i + 7;
		facc += (double)i * 0.5;
	}
	assert_int_equal(out[0].type, WASM_I64);
	assert_true(out[0].of.i64 == acc);
	assert_true(f64_of(out[1]) == facc);
}

/* ---- tests ---- */

/* 10,000 suspensions in one call, values flowing both ways; every third
 * host call answers at once instead. */
static void test_suspend_in_loop(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct park p = {0};
	struct linker l;
	linker_init(&l, s, &p);
	struct wasm_module *m = load_wat(loop_wat);
	struct wasm_instance *inst = instantiate(s, m, &l);
	struct wasm_func *f = export_func(inst, "loop");
	const uint32_t n = 10000;
	struct wasm_value arg = i32v(n), out[2] = {{0}};
	struct err err = {0};
	enum err_code rc = wasm_func_call(s, f, &arg, 1, out, 2, &err);
	uint32_t suspensions = 0, expect_i = 0;
	while (rc == ERR_WASM_SUSPEND) {
		assert_true(wasm_store_suspended(s));
		assert_ptr_equal(wasm_store_suspend_token(s), &p);
		assert_string_equal(err.msg, "call suspended");
		/* the arguments of each parked call, in order */
		assert_int_equal(p.last_i, expect_i);
		assert_true(p.last_f == 2.0 * expect_i);
		suspensions++;
		expect_i += 3;
		/* answer the next two calls at once, park on the third */
		p.skip = 2;
		rc = resume_wait2(s, &p, out, &err);
	}
	if (rc)
		fail_msg("loop failed: %s", err.msg);
	assert_false(wasm_store_suspended(s));
	assert_null(wasm_store_suspend_token(s));
	assert_int_equal(p.calls, n);
	assert_int_equal(suspensions, (n + 2) / 3);
	check_loop_result(out, n);
	/* the store is idle: a plain call works */
	p.direct = 1;
	arg = i32v(10);
	assert_int_equal(wasm_func_call(s, f, &arg, 1, out, 2, &err), ERR_OK);
	check_loop_result(out, 10);
	wasm_module_free(m);
	wasm_store_free(s);
}

/* Module "lib" (its own memory) suspends in leaf(); module "main" recurses
 * through call_indirect, keeps a local and its memory across the call. */
static const char *lib_wat =
	"(module\n"
	"  (import \"env\" \"wait1\" (func $wait (param i32) (result i32)))\n"
	"  (memory (export \"mem\") 1)\n"
	"  (func (export \"leaf\") (param i32) (result i32)\n"
	"    (i32.store (i32.const 0) (local.get 0))\n"
	"    (i32.add (call $wait (local.get 0)) (i32.load (i32.const 0))))\n"
	"  (func $count (result i32) (local $k i32)\n"
	"    (loop $l (local.set $k (i32.add (local.get $k) (i32.const 1)))\n"
	"      (br_if $l (i32.lt_u (local.get $k) (i32.const 100))))\n"
	"    (local.get $k))\n"
	"  (func (export \"poke\") (param i32) (result i32)\n"
	"    (i32.store (i32.const 0) (local.get 0)) (call $count)))\n";

static const char *main_wat =
	"(module\n"
	"  (import \"lib\" \"leaf\" (func $leaf (param i32) (result i32)))\n"
	"  (type $t (func (param i32) (result i32)))\n"
	"  (memory (export \"mem\") 1)\n"
	"  (table 2 funcref) (elem (i32.const 0) $rec $thunk)\n"
	"  (func $thunk (param i32) (result i32) (call $leaf (local.get 0)))\n"
	"  (func $rec (export \"rec\") (param $n i32) (result i32) (local $keep i32)\n"
	"    (local.set $keep (i32.mul (local.get $n) (i32.const 3)))\n"
	"    (i32.store (i32.mul (local.get $n) (i32.const 4)) (local.get $n))\n"
	"    (if (result i32) (i32.eqz (local.get $n))\n"
	"      (then (call_indirect (type $t) (i32.const 7) (i32.const 1)))\n"
	"      (else (i32.add\n"
	"        (call_indirect (type $t) (i32.sub (local.get $n) (i32.const 1)) (i32.const 0))\n"
	"        (i32.add (local.get $keep)\n"
	"          (i32.load (i32.mul (local.get $n) (i32.const 4))))))))\n"
	"  (func (export \"plain\") (result i32) (i32.const 5)))\n";

struct nested {
	struct wasm_store *s;
	struct park p;
	struct linker l;
	struct wasm_module *lm, *mm;
	struct wasm_instance *lib, *main;
};

static void nested_setup(struct nested *t, const struct wasm_store_limits *lim)
{
	memset(t, 0, sizeof(*t));
	t->s = new_store(lim);
	linker_init(&t->l, t->s, &t->p);
	t->lm = load_wat(lib_wat);
	t->mm = load_wat(main_wat);
	t->lib = instantiate(t->s, t->lm, &t->l);
	t->l.lib = t->lib;
	t->main = instantiate(t->s, t->mm, &t->l);
}

static void nested_free(struct nested *t)
{
	wasm_module_free(t->lm);
	wasm_module_free(t->mm);
	wasm_store_free(t->s);
}

/* rec(n) when wait1 answers r and lib's cell holds c at the time: r + c +
 * sum of 4k for k = 1..n. */
static uint32_t rec_expect(uint32_t n, uint32_t r, uint32_t c)
{
	return r + c + 2 * n * (n + 1);
}

static void test_suspend_deep_nested(void **state)
{
	(void)state;
	struct nested t;
	nested_setup(&t, NULL);
	const uint32_t n = 2000;
	struct wasm_value arg = i32v(n), out = {0};
	struct err err = {0};
	assert_int_equal(wasm_func_call(t.s, export_func(t.main, "rec"), &arg, 1, &out, 1, &err),
			 ERR_WASM_SUSPEND);
	assert_int_equal(t.p.last_i, 7);
	assert_true(t.p.could_suspend);
	struct wasm_functype ft;
	assert_int_equal(wasm_store_suspended_type(t.s, &ft), ERR_OK);
	assert_int_equal(ft.nparams, 1);
	assert_int_equal(ft.nresults, 1);
	assert_int_equal(ft.results[0], WASM_I32);
	/* while parked the host may touch memory: lib's cell, read after the
	 * resume, and main's, which the recursion reads on its way back */
	uint32_t cell = 0;
	struct wasm_memory *lmem = wasm_instance_memory(t.lib, 0);
	assert_int_equal(wasm_memory_read(lmem, 0, &cell, 4, NULL), ERR_OK);
	assert_int_equal(cell, 7);
	cell = 100;
	assert_int_equal(wasm_memory_write(lmem, 0, &cell, 4, NULL), ERR_OK);
	/* other calls are refused while parked, and change nothing */
	struct wasm_value pr = {0};
	assert_int_equal(wasm_func_call(t.s, export_func(t.main, "plain"), NULL, 0, &pr, 1, &err),
			 ERR_CONFLICT);
	assert_string_equal(err.msg, "store has a suspended call: only resume, cancel or free it");
	struct wasm_instance *extra = NULL;
	assert_int_equal(wasm_instance_new_resolved(t.s, t.lm, resolve, &t.l, &extra, &err),
			 ERR_CONFLICT);
	assert_null(extra);
	/* a wrong resume leaves the call parked */
	struct wasm_value bad = i64v(1);
	assert_int_equal(wasm_store_resume(t.s, &bad, 1, &out, 1, &err), ERR_INVALID);
	assert_int_equal(wasm_store_resume(t.s, NULL, 0, &out, 1, &err), ERR_INVALID);
	assert_true(wasm_store_suspended(t.s));
	struct wasm_value r = i32v(1000);
	assert_int_equal(wasm_store_resume(t.s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(n, 1000, 100));
	/* nothing left parked; resume and cancel now refuse */
	assert_int_equal(wasm_store_resume(t.s, &r, 1, &out, 1, &err), ERR_CONFLICT);
	assert_int_equal(wasm_store_cancel(t.s, ERR_TIMEOUT, "x", &err), ERR_CONFLICT);
	assert_int_equal(wasm_store_suspended_type(t.s, &ft), ERR_CONFLICT);
	/* the same recursion without parking gives the same shape of answer */
	t.p.direct = 1;
	assert_int_equal(wasm_func_call(t.s, export_func(t.main, "rec"), &arg, 1, &out, 1, &err),
			 ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(n, 8, 7));
	nested_free(&t);
}

/* Suspends again and again at a call depth of 5000, alternating the
 * resuming thread. */
struct resumer {
	struct wasm_store *s;
	struct wasm_value r;
	struct wasm_value out;
	enum err_code rc;
	struct err err;
};

static void *resume_thread(void *arg)
{
	struct resumer *x = arg;
	x->rc = wasm_store_resume(x->s, &x->r, 1, &x->out, 1, &x->err);
	return NULL;
}

static void test_resume_on_other_thread(void **state)
{
	(void)state;
	struct nested t;
	nested_setup(&t, NULL);
	const uint32_t n = 5000, rounds = 40;
	struct wasm_value arg = i32v(n), out = {0};
	struct err err = {0};
	uint32_t total = 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (uint32_t round = 0; round < rounds; round++) {
		assert_int_equal(wasm_func_call(t.s, export_func(t.main, "rec"), &arg, 1, &out, 1,
						&err),
				 ERR_WASM_SUSPEND);
		struct resumer x = {.s = t.s, .r = i32v(round)};
		if (round % 2) {
			pthread_t th;
			assert_int_equal(pthread_create(&th, &attr, resume_thread, &x), 0);
			assert_int_equal(pthread_join(th, NULL), 0);
		} else {
			resume_thread(&x);
		}
		if (x.rc)
			fail_msg("resume failed: %s", x.err.msg);
		assert_int_equal(x.out.of.i32, rec_expect(n, round, 7));
		total++;
	}
	assert_int_equal(total, rounds);
	pthread_attr_destroy(&attr);
	nested_free(&t);
}

/* Each wait of loop() is answered by a different thread than the one that
 * parked it; the host functions run on the resuming thread. */
static void *resume_loop_thread(void *arg)
{
	struct resumer *x = arg;
	struct park *p = wasm_store_suspend_token(x->s);
	struct wasm_value out[2];
	x->rc = resume_wait2(x->s, p, out, &x->err);
	if (x->rc == ERR_OK)
		x->out = out[0];
	return NULL;
}

static void test_resume_threads_alternate(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct park p = {0};
	struct linker l;
	linker_init(&l, s, &p);
	struct wasm_module *m = load_wat(loop_wat);
	struct wasm_instance *inst = instantiate(s, m, &l);
	struct wasm_value arg = i32v(300), out[2];
	struct err err = {0};
	pthread_t main_thread = pthread_self();
	enum err_code rc = wasm_func_call(s, export_func(inst, "loop"), &arg, 1, out, 2, &err);
	uint32_t hops = 0, seen_other = 0;
	while (rc == ERR_WASM_SUSPEND) {
		if (!pthread_equal(p.thread, main_thread))
			seen_other++;
		struct resumer x = {.s = s};
		if (hops++ % 2 == 0) {
			pthread_t th;
			assert_int_equal(pthread_create(&th, NULL, resume_loop_thread, &x), 0);
			assert_int_equal(pthread_join(th, NULL), 0);
			rc = x.rc;
			out[0] = x.out;
		} else {
			rc = resume_wait2(s, &p, out, &err);
		}
	}
	if (rc)
		fail_msg("loop failed: %s", err.msg);
	assert_int_equal(hops, 300);
	assert_int_equal(seen_other, 150);
	uint64_t acc = 0;
	for (uint64_t i = 0; i < 300; i++)
		acc += i * i + 7;
	assert_true(out[0].of.i64 == acc);
	wasm_module_free(m);
	wasm_store_free(s);
}

static void test_cancel(void **state)
{
	(void)state;
	struct nested t;
	nested_setup(&t, NULL);
	struct wasm_value arg = i32v(300), out = {0};
	struct err err = {0};
	struct wasm_func *rec = export_func(t.main, "rec");
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_cancel(t.s, ERR_TIMEOUT, "http request timed out", &err),
			 ERR_TIMEOUT);
	assert_string_equal(err.msg, "http request timed out");
	assert_false(wasm_store_suspended(t.s));
	/* usable again, with a clean stack */
	struct wasm_value pr = {0};
	assert_int_equal(wasm_func_call(t.s, export_func(t.main, "plain"), NULL, 0, &pr, 1, &err),
			 ERR_OK);
	assert_int_equal(pr.of.i32, 5);
	/* cancel without a reason, or with a success code: a trap */
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_cancel(t.s, ERR_OK, NULL, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "host call cancelled");
	/* a resumed call that then traps also leaves the store usable */
	struct wasm_module *m = load_wat(
		"(module (import \"env\" \"wait1\" (func $w (param i32) (result i32)))\n"
		"  (func (export \"div\") (result i32)\n"
		"    (i32.div_u (i32.const 100) (call $w (i32.const 1)))))");
	struct wasm_instance *inst = instantiate(t.s, m, &t.l);
	struct wasm_func *div = export_func(inst, "div");
	assert_int_equal(wasm_func_call(t.s, div, NULL, 0, &out, 1, &err), ERR_WASM_SUSPEND);
	struct wasm_value zero = i32v(0), four = i32v(4);
	assert_int_equal(wasm_store_resume(t.s, &zero, 1, &out, 1, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "integer divide by zero");
	assert_false(wasm_store_suspended(t.s));
	assert_int_equal(wasm_func_call(t.s, div, NULL, 0, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_resume(t.s, &four, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 25);
	t.p.direct = 1;
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(300, 8, 7));
	wasm_module_free(m);
	nested_free(&t);
}

/* A resume callback runs as the rest of the parked host function: it calls
 * back into the caller's instance, writes its memory, answers, or parks
 * again, or fails the call. */
struct cont {
	int mode;               /* 0 answer, 1 park again, 2 fail */
	uint32_t poked;         /* what poke() returned */
	uint32_t answer;
	int could_suspend;
};

static enum err_code cont_fn(struct wasm_caller *caller, void *user, struct wasm_value *results,
			     struct err *err)
{
	struct cont *k = user;
	k->could_suspend = wasm_caller_can_suspend(caller);
	struct wasm_extern poke;
	if (wasm_caller_export(caller, "poke", &poke) != ERR_OK)
		return err_set(err, ERR_WASM_TRAP, "no poke export");
	struct wasm_value a = i32v(500 + k->answer), r = {0};
	enum err_code rc = wasm_func_call(wasm_caller_store(caller), poke.of.func, &a, 1, &r, 1,
					  err);
	if (rc)
		return rc;
	k->poked = r.of.i32;
	if (k->mode == 1)
		return wasm_caller_suspend(caller, k, err);
	if (k->mode == 2)
		return err_set(err, ERR_TIMEOUT, "the answer did not come");
	results[0].of.i32 = k->answer;   /* the type is filled in */
	return ERR_OK;
}

static void test_resume_call(void **state)
{
	(void)state;
	struct wasm_store_limits lim = {.fuel = 10000000};
	struct nested t;
	nested_setup(&t, &lim);
	const uint32_t n = 2000;
	struct wasm_value arg = i32v(n), out = {0};
	struct err err = {0};
	struct wasm_func *rec = export_func(t.main, "rec");
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	uint64_t fuel_parked = wasm_store_fuel_used_last(t.s);
	/* park again from the callback, after a nested call */
	struct cont k = {.mode = 1, .answer = 1};
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err),
			 ERR_WASM_SUSPEND);
	assert_true(k.could_suspend);
	assert_int_equal(k.poked, 100);
	assert_ptr_equal(wasm_store_suspend_token(t.s), &k);
	/* the nested call's fuel counts for the call */
	assert_true(wasm_store_fuel_used_last(t.s) > fuel_parked + 100);
	/* other calls are still refused while parked */
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_CONFLICT);
	/* answer: leaf sees the cell poke() wrote */
	k = (struct cont){.mode = 0, .answer = 1000};
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 0, &err), ERR_INVALID);
	assert_true(wasm_store_suspended(t.s));
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(n, 1000, 1500));
	assert_false(wasm_store_suspended(t.s));
	/* a failing callback ends the call with its error */
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	k = (struct cont){.mode = 2};
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err), ERR_TIMEOUT);
	assert_string_equal(err.msg, "the answer did not come");
	assert_false(wasm_store_suspended(t.s));
	/* interrupted while parked: the callback does not run */
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	wasm_store_interrupt(t.s);
	k = (struct cont){.mode = 0, .answer = 3};
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err),
			 ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "interrupted");
	assert_int_equal(k.poked, 0);
	/* the store runs on */
	assert_int_equal(wasm_func_call(t.s, rec, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(n, 3, 503));
	/* a host function called directly by wasm_func_call: no caller instance */
	assert_int_equal(wasm_func_call(t.s, t.l.wait1, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_resume_call(t.s, cont_fn, &k, &out, 1, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "no poke export");
	nested_free(&t);
}

/* Freeing a store with a parked call frees everything (the ASan build
 * checks for leaks); the token stays the host's. */
static void test_free_while_suspended(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct nested t;
		nested_setup(&t, NULL);
		struct wasm_value arg = i32v(1000 * (uint32_t)i), out = {0};
		assert_int_equal(wasm_func_call(t.s, export_func(t.main, "rec"), &arg, 1, &out, 1,
						NULL),
				 ERR_WASM_SUSPEND);
		assert_true(wasm_store_suspended(t.s));
		nested_free(&t);
	}
}

/* steps(n): n times, a loop of 1000 iterations then tick(i). */
static const char *steps_wat =
	"(module (import \"env\" \"tick\" (func $tick (param i32)))\n"
	"  (func (export \"steps\") (param $n i32) (result i32) (local $i i32) (local $j i32)\n"
	"    (block $done (loop $outer\n"
	"      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"
	"      (local.set $j (i32.const 0))\n"
	"      (block $b (loop $inner\n"
	"        (br_if $b (i32.ge_u (local.get $j) (i32.const 1000)))\n"
	"        (local.set $j (i32.add (local.get $j) (i32.const 1)))\n"
	"        (br $inner)))\n"
	"      (call $tick (local.get $i))\n"
	"      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
	"      (br $outer)))\n"
	"    (local.get $i)))\n";

static void test_fuel_spans_resumes(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct park p = {0};
	struct linker l;
	linker_init(&l, s, &p);
	struct wasm_module *m = load_wat(steps_wat);
	struct wasm_instance *inst = instantiate(s, m, &l);
	struct wasm_func *steps = export_func(inst, "steps");
	struct err err = {0};

	/* unlimited: the fuel used at each suspension, growing */
	enum { N = 20 };
	uint64_t used[N], total_before = wasm_store_fuel_used_total(s);
	struct wasm_value arg = i32v(N), out = {0};
	enum err_code rc = wasm_func_call(s, steps, &arg, 1, &out, 1, &err);
	for (int k = 0; k < N; k++) {
		assert_int_equal(rc, ERR_WASM_SUSPEND);
		assert_int_equal(p.last_i, k);
		used[k] = wasm_store_fuel_used_last(s);
		assert_true(wasm_store_fuel_used_total(s) - total_before == used[k]);
		if (k)
			assert_true(used[k] - used[k - 1] >= 2000); /* 1000 iterations, 2+ each */
		rc = wasm_store_resume(s, NULL, 0, &out, 1, &err);
	}
	assert_int_equal(rc, ERR_OK);
	assert_int_equal(out.of.i32, N);
	uint64_t whole = wasm_store_fuel_used_last(s);
	assert_true(whole > used[N - 1]);
	assert_true(wasm_store_fuel_used_total(s) - total_before == whole);

	/* a budget between the 11th and 12th suspension: the call (not each
	 * resumption) runs out, on the resume after the 11th */
	struct wasm_store_limits lim = {.fuel = (used[10] + used[11]) / 2};
	wasm_store_set_limits(s, &lim);
	rc = wasm_func_call(s, steps, &arg, 1, &out, 1, &err);
	int parked = 0;
	while (rc == ERR_WASM_SUSPEND) {
		assert_true(wasm_store_fuel_used_last(s) == used[parked]);
		parked++;
		rc = wasm_store_resume(s, NULL, 0, &out, 1, &err);
	}
	assert_int_equal(rc, ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "fuel exhausted");
	assert_int_equal(parked, 11);
	assert_false(wasm_store_suspended(s));
	assert_true(wasm_store_fuel_used_last(s) == lim.fuel);
	/* the next call has the whole budget again */
	arg = i32v(3);
	p.direct = 1;
	assert_int_equal(wasm_func_call(s, steps, &arg, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 3);
	wasm_module_free(m);
	wasm_store_free(s);
}

static void *interrupt_thread(void *arg)
{
	wasm_store_interrupt(arg);
	return NULL;
}

static void test_interrupt_while_suspended(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct park p = {0};
	struct linker l;
	linker_init(&l, s, &p);
	struct wasm_module *m = load_wat(steps_wat);
	struct wasm_instance *inst = instantiate(s, m, &l);
	struct wasm_func *steps = export_func(inst, "steps");
	struct wasm_value arg = i32v(5), out = {0};
	struct err err = {0};
	assert_int_equal(wasm_func_call(s, steps, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_resume(s, NULL, 0, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(p.last_i, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, interrupt_thread, s), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	uint32_t calls = p.calls;
	assert_int_equal(wasm_store_resume(s, NULL, 0, &out, 1, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "interrupted");
	assert_int_equal(p.calls, calls); /* no wasm ran: no further tick */
	assert_false(wasm_store_suspended(s));
	/* the flag is cleared: the next call runs */
	p.direct = 1;
	assert_int_equal(wasm_func_call(s, steps, &arg, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 5);
	wasm_module_free(m);

	/* no wasm runs after an interrupted resume, even where the running
	 * code would not check the flag (no loop, no call) */
	m = load_wat("(module (import \"env\" \"wait1\" (func $w (param i32) (result i32)))\n"
		     "  (global $g (export \"g\") (mut i32) (i32.const 0))\n"
		     "  (func (export \"mark\") (global.set $g (call $w (i32.const 1)))))");
	inst = instantiate(s, m, &l);
	struct wasm_extern g;
	assert_int_equal(wasm_instance_export(inst, "g", &g), ERR_OK);
	p.direct = 0;
	assert_int_equal(wasm_func_call(s, export_func(inst, "mark"), NULL, 0, NULL, 0, &err),
			 ERR_WASM_SUSPEND);
	wasm_store_interrupt(s);
	struct wasm_value r = i32v(33);
	assert_int_equal(wasm_store_resume(s, &r, 1, NULL, 0, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "interrupted");
	assert_int_equal(wasm_global_get(g.of.global).of.i32, 0);
	/* without the interrupt, the same resume stores the answer */
	assert_int_equal(wasm_func_call(s, export_func(inst, "mark"), NULL, 0, NULL, 0, &err),
			 ERR_WASM_SUSPEND);
	assert_int_equal(wasm_store_resume(s, &r, 1, NULL, 0, &err), ERR_OK);
	assert_int_equal(wasm_global_get(g.of.global).of.i32, 33);
	wasm_module_free(m);
	wasm_store_free(s);
}

/* A host function may call back into wasm before suspending; a host
 * function reached through such a nested call cannot suspend. */
static void test_reentry_and_nested_refusal(void **state)
{
	(void)state;
	struct wasm_store *s = new_store(NULL);
	struct park p = {0};
	struct linker l;
	linker_init(&l, s, &p);
	struct wasm_module *m = load_wat(
		"(module (import \"env\" \"wait1\" (func $w (param i32) (result i32)))\n"
		"  (import \"env\" \"tick\" (func $tick (param i32)))\n"
		"  (global $g (mut i32) (i32.const 0))\n"
		"  (func (export \"alloc\") (param i32) (result i32)\n"
		"    (global.set $g (i32.add (global.get $g) (local.get 0))) (global.get $g))\n"
		"  (func (export \"nest\") (param i32) (result i32)\n"
		"    (call $tick (local.get 0)) (i32.mul (local.get 0) (i32.const 2)))\n"
		"  (func (export \"go\") (param i32) (result i32)\n"
		"    (i32.add (call $w (local.get 0)) (global.get $g))))");
	struct wasm_instance *inst = instantiate(s, m, &l);
	struct wasm_func *go = export_func(inst, "go");
	struct wasm_value arg = i32v(40), out = {0};
	struct err err = {0};

	/* re-entry into "alloc", then suspend */
	p.reenter = export_func(inst, "alloc");
	assert_int_equal(wasm_func_call(s, go, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(p.reentered, 40);
	struct wasm_value r = i32v(2);
	assert_int_equal(wasm_store_resume(s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 42);

	/* a nested call that makes host calls of its own before wait1 parks:
	 * the parked position is still go's */
	p.reenter = export_func(inst, "nest");
	p.tick_direct = 1;
	assert_int_equal(wasm_func_call(s, go, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_int_equal(p.reentered, 80);
	r = i32v(3);
	assert_int_equal(wasm_store_resume(s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 43);
	p.tick_direct = 0;

	/* wait1 re-enters "nest", whose tick is nested and cannot suspend */
	assert_int_equal(wasm_func_call(s, go, &arg, 1, &out, 1, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "cannot suspend a host call nested in another host call");
	assert_false(p.could_suspend);
	assert_false(wasm_store_suspended(s));

	/* returning ERR_WASM_SUSPEND without asking is a trap */
	p.reenter = NULL;
	p.no_permission = 1;
	assert_int_equal(wasm_func_call(s, go, &arg, 1, &out, 1, &err), ERR_WASM_TRAP);
	assert_string_equal(err.msg, "host function suspended without wasm_caller_suspend");
	assert_false(wasm_store_suspended(s));
	p.no_permission = 0;

	/* the host function itself called by wasm_func_call may suspend: its
	 * results become the call's */
	assert_int_equal(wasm_func_call(s, l.wait1, &arg, 1, &out, 1, &err), ERR_WASM_SUSPEND);
	assert_true(p.could_suspend);
	r = i32v(77);
	assert_int_equal(wasm_store_resume(s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 77);
	wasm_module_free(m);

	/* a start function cannot suspend: instantiation fails cleanly */
	m = load_wat("(module (import \"env\" \"tick\" (func $tick (param i32)))\n"
		     "  (func $s (call $tick (i32.const 9))) (start $s))");
	struct wasm_instance *bad = NULL;
	assert_int_equal(wasm_instance_new_resolved(s, m, resolve, &l, &bad, &err),
			 ERR_WASM_TRAP);
	assert_string_equal(err.msg, "cannot suspend during instantiation");
	assert_null(bad);
	assert_false(wasm_store_suspended(s));
	wasm_module_free(m);
	/* and the store still runs */
	p.direct = 1;
	assert_int_equal(wasm_func_call(s, go, &arg, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 41 + 40);
	wasm_store_free(s);
}

/* A call stack exhaustion after a resume is reported and leaves the store
 * usable; a resumed call can grow the stack past what it had. */
static void test_limits_after_resume(void **state)
{
	(void)state;
	struct wasm_store_limits lim = {.max_call_depth = 3000};
	struct nested t;
	nested_setup(&t, &lim);
	struct wasm_module *m = load_wat(
		"(module (import \"env\" \"wait1\" (func $w (param i32) (result i32)))\n"
		"  (func $deep (param i32) (result i32)\n"
		"    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 1))\n"
		"      (else (i32.add (i32.const 1) (call $deep (i32.sub (local.get 0) (i32.const 1)))))))\n"
		"  (func (export \"go\") (result i32) (call $deep (call $w (i32.const 0)))))");
	struct wasm_instance *inst = instantiate(t.s, m, &t.l);
	struct wasm_func *go = export_func(inst, "go");
	struct wasm_value out = {0}, r;
	struct err err = {0};
	assert_int_equal(wasm_func_call(t.s, go, NULL, 0, &out, 1, &err), ERR_WASM_SUSPEND);
	r = i32v(2500);
	assert_int_equal(wasm_store_resume(t.s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 2501);
	assert_int_equal(wasm_func_call(t.s, go, NULL, 0, &out, 1, &err), ERR_WASM_SUSPEND);
	r = i32v(5000);
	assert_int_equal(wasm_store_resume(t.s, &r, 1, &out, 1, &err), ERR_WASM_EXHAUSTED);
	assert_string_equal(err.msg, "call stack exhausted");
	assert_false(wasm_store_suspended(t.s));
	struct wasm_value arg = i32v(100);
	t.p.direct = 1;
	assert_int_equal(wasm_func_call(t.s, export_func(t.main, "rec"), &arg, 1, &out, 1, &err),
			 ERR_OK);
	assert_int_equal(out.of.i32, rec_expect(100, 8, 7));
	wasm_module_free(m);

	/* a host call made at the maximum depth cannot park (resuming takes
	 * one more frame record); one frame less can */
	m = load_wat(
		"(module (import \"env\" \"wait1\" (func $w (param i32) (result i32)))\n"
		"  (func $d (export \"d\") (param i32) (result i32)\n"
		"    (if (result i32) (i32.eqz (local.get 0)) (then (call $w (i32.const 0)))\n"
		"      (else (call $d (i32.sub (local.get 0) (i32.const 1)))))))");
	inst = instantiate(t.s, m, &t.l);
	t.p.direct = 0;
	arg = i32v(2999);
	assert_int_equal(wasm_func_call(t.s, export_func(inst, "d"), &arg, 1, &out, 1, &err),
			 ERR_WASM_TRAP);
	assert_string_equal(err.msg, "cannot suspend at the maximum call depth");
	assert_false(t.p.could_suspend);
	arg = i32v(2998);
	assert_int_equal(wasm_func_call(t.s, export_func(inst, "d"), &arg, 1, &out, 1, &err),
			 ERR_WASM_SUSPEND);
	assert_true(t.p.could_suspend);
	r = i32v(61);
	assert_int_equal(wasm_store_resume(t.s, &r, 1, &out, 1, &err), ERR_OK);
	assert_int_equal(out.of.i32, 61);
	wasm_module_free(m);
	nested_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suspend_in_loop),
		cmocka_unit_test(test_suspend_deep_nested),
		cmocka_unit_test(test_resume_on_other_thread),
		cmocka_unit_test(test_resume_threads_alternate),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_resume_call),
		cmocka_unit_test(test_free_while_suspended),
		cmocka_unit_test(test_fuel_spans_resumes),
		cmocka_unit_test(test_interrupt_while_suspended),
		cmocka_unit_test(test_reentry_and_nested_refusal),
		cmocka_unit_test(test_limits_after_resume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
