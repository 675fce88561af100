/* wasm_runtime.c - stores, runtime objects, instantiation and calls.
 *
 * A store owns every object created in it; nothing is freed before the
 * store. An instance is one allocation holding its index spaces, its own
 * functions and globals; tables and memories are separate objects because
 * their contents grow. Linear memory is an anonymous mapping grown with
 * mremap (no copy, zero-filled pages, no reservation of the 4 GiB space).
 * The value stack and frame array are allocated on the first call and grow
 * by doubling up to the store's limits, so an idle store costs little.
 * Instantiation follows the 2.0 spec: imports checked against the current
 * sizes of the external objects, globals, active element segments then
 * data segments in order (a trap stops there, earlier effects remain), then
 * the start function.
 * A parked call (wasm_store_resume) lives in s->susp: the outermost call's
 * entry and base, the host function and its result slots, and where the
 * interpreter stopped; its frames and slots stay where they were. While
 * s->suspended, nothing may run in the store, so nothing overwrites them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap; the build defines it too */
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "src/wasm/wasm_int.h"

#define MAX_NESTING 128

/* ---- values ---- */

static uint64_t slot_of(const struct wasm_value *v)
{
	switch (v->type) {
	case WASM_I32: return v->of.i32;
	case WASM_F32: return v->of.f32;
	case WASM_I64: return v->of.i64;
	case WASM_F64: return v->of.f64;
	case WASM_FUNCREF: return (uint64_t)(uintptr_t)v->of.funcref;
	case WASM_EXTERNREF: return (uint64_t)(uintptr_t)v->of.externref;
	}
	return 0;
}

static struct wasm_value value_of(enum wasm_valtype t, uint64_t slot)
{
	struct wasm_value v = {.type = t};
	switch (t) {
	case WASM_I32: v.of.i32 = (uint32_t)slot; break;
	case WASM_F32: v.of.f32 = (uint32_t)slot; break;
	case WASM_I64: v.of.i64 = slot; break;
	case WASM_F64: v.of.f64 = slot; break;
	case WASM_FUNCREF: v.of.funcref = (struct wasm_func *)(uintptr_t)slot; break;
	case WASM_EXTERNREF: v.of.externref = (void *)(uintptr_t)slot; break;
	}
	return v;
}

static bool is_reftype(enum wasm_valtype t)
{
	return t == WASM_FUNCREF || t == WASM_EXTERNREF;
}

static bool is_valtype(enum wasm_valtype t)
{
	return t == WASM_I32 || t == WASM_I64 || t == WASM_F32 || t == WASM_F64 || is_reftype(t);
}

/* ---- stores ---- */

static void resolve_limits(struct wasm_store_limits *l)
{
	if (!l->max_call_depth)
		l->max_call_depth = WASM_DEFAULT_CALL_DEPTH;
	if (!l->max_stack_bytes)
		l->max_stack_bytes = WASM_DEFAULT_STACK_BYTES;
	if (!l->max_memory_pages || l->max_memory_pages > WASM_MAX_PAGES)
		l->max_memory_pages = WASM_MAX_PAGES;
	if (!l->max_table_elems)
		l->max_table_elems = WASM_DEFAULT_TABLE_ELEMS;
}

enum err_code wasm_store_new(const struct wasm_store_limits *limits, struct wasm_store **out,
			     struct err *err)
{
	struct wasm_store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return err_set(err, ERR_NOMEM, "out of memory creating store");
	atomic_init(&s->interrupt, 0);
	wasm_store_set_limits(s, limits);
	*out = s;
	return ERR_OK;
}

void wasm_store_set_limits(struct wasm_store *s, const struct wasm_store_limits *limits)
{
	if (limits)
		s->lim = *limits;
	else
		memset(&s->lim, 0, sizeof(s->lim));
	resolve_limits(&s->lim);
	s->stack_max = s->lim.max_stack_bytes / sizeof(uint64_t);
	/* The interpreter checks against the capacities; lowered limits must
	 * not hide behind memory that is already allocated. */
	if (s->stack_cap > s->stack_max)
		s->stack_cap = s->stack_max;
	if (s->frames_cap > s->lim.max_call_depth)
		s->frames_cap = s->lim.max_call_depth;
}

static void instance_destroy(struct wasm_instance *inst)
{
	for (uint32_t i = 0; i < inst->mod->nelems; i++)
		free(inst->elems[i].refs);
	wasm_module_free(inst->mod);
	free(inst);
}

/* wasm_memory_keep_at_exit: the one process-wide switch of the engine. */
static atomic_int keep_at_exit;

void wasm_memory_keep_at_exit(void)
{
	atomic_store(&keep_at_exit, 1);
}

static void memory_destroy(struct wasm_memory *m)
{
	if (m->data && !atomic_load_explicit(&keep_at_exit, memory_order_relaxed))
		munmap(m->data, m->size);
	free(m);
}

void wasm_store_free(struct wasm_store *s)
{
	if (!s)
		return;
	for (struct wasm_instance *i = s->instances, *n; i; i = n) {
		n = i->next;
		instance_destroy(i);
	}
	for (struct wasm_func *f = s->host_funcs, *n; f; f = n) {
		n = f->next;
		free(f->own_type.v);
		free(f);
	}
	for (struct wasm_global *g = s->globals, *n; g; g = n) {
		n = g->next;
		free(g);
	}
	for (struct wasm_table *t = s->tables, *n; t; t = n) {
		n = t->next;
		free(t->elems);
		free(t);
	}
	for (struct wasm_memory *m = s->memories, *n; m; m = n) {
		n = m->next;
		memory_destroy(m);
	}
	free(s->stack);
	free(s->frames);
	free(s);
}

uint64_t wasm_store_fuel_used_last(const struct wasm_store *s)
{
	return s->fuel_last;
}

uint64_t wasm_store_fuel_used_total(const struct wasm_store *s)
{
	return s->fuel_total;
}

void wasm_store_interrupt(struct wasm_store *s)
{
	atomic_store(&s->interrupt, 1);
}

size_t wasm_store_footprint(const struct wasm_store *s)
{
	size_t n = sizeof(*s) + s->obj_bytes + s->stack_cap * sizeof(uint64_t) +
		   (size_t)s->frames_cap * sizeof(struct wasm_frame);
	for (const struct wasm_memory *m = s->memories; m; m = m->next)
		n += m->size;
	for (const struct wasm_table *t = s->tables; t; t = t->next)
		n += (size_t)t->cap * sizeof(void *);
	return n;
}

enum err_code wasm_stack_reserve(struct wasm_store *s, size_t slots, struct err *err)
{
	if (slots <= s->stack_cap)
		return ERR_OK;
	if (slots > s->stack_max)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	size_t ncap = s->stack_cap ? s->stack_cap * 2 : 1024;
	if (ncap < slots)
		ncap = slots;
	if (ncap > s->stack_max)
		ncap = s->stack_max;
	uint64_t *p = realloc(s->stack, ncap * sizeof(*p));
	if (!p)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	s->stack = p;
	s->stack_cap = ncap;
	return ERR_OK;
}

enum err_code wasm_frames_reserve(struct wasm_store *s, uint32_t n, struct err *err)
{
	if (n <= s->frames_cap)
		return ERR_OK;
	if (n > s->lim.max_call_depth)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	uint32_t ncap = s->frames_cap ? s->frames_cap * 2 : 64;
	if (ncap < n)
		ncap = n;
	if (ncap > s->lim.max_call_depth)
		ncap = s->lim.max_call_depth;
	struct wasm_frame *p = realloc(s->frames, (size_t)ncap * sizeof(*p));
	if (!p)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	s->frames = p;
	s->frames_cap = ncap;
	return ERR_OK;
}

/* ---- host objects ---- */

struct wasm_memory *wasm_caller_memory(struct wasm_caller *caller)
{
	return caller->inst ? caller->inst->mem0 : NULL;
}

enum err_code wasm_caller_export(struct wasm_caller *caller, const char *name,
				 struct wasm_extern *out)
{
	if (!caller->inst)
		return ERR_NOT_FOUND;
	return wasm_instance_export(caller->inst, name, out);
}

struct wasm_store *wasm_caller_store(struct wasm_caller *caller)
{
	return caller->store;
}

enum err_code wasm_func_new_host(struct wasm_store *s, const struct wasm_functype *type,
				 wasm_host_fn fn, void *user, struct wasm_func **out,
				 struct err *err)
{
	*out = NULL;
	if (type->nparams > WASM_MAX_PARAMS || type->nresults > WASM_MAX_RESULTS || !fn)
		return err_set(err, ERR_INVALID, "invalid host function type");
	uint32_t n = type->nparams + type->nresults;
	for (uint32_t i = 0; i < type->nparams; i++)
		if (!is_valtype(type->params[i]))
			return err_set(err, ERR_INVALID, "invalid host function type");
	for (uint32_t i = 0; i < type->nresults; i++)
		if (!is_valtype(type->results[i]))
			return err_set(err, ERR_INVALID, "invalid host function type");
	struct wasm_func *f = calloc(1, sizeof(*f));
	enum wasm_valtype *v = n ? malloc(n * sizeof(*v)) : NULL;
	if (!f || (n && !v)) {
		free(f);
		free(v);
		return err_set(err, ERR_NOMEM, "out of memory creating host function");
	}
	if (type->nparams)
		memcpy(v, type->params, type->nparams * sizeof(*v));
	if (type->nresults)
		memcpy(v + type->nparams, type->results, type->nresults * sizeof(*v));
	f->own_type = (struct wasm_ftype){.np = type->nparams, .nr = type->nresults, .v = v};
	f->own_type.hash = wasm_ftype_hash(&f->own_type);
	f->type = &f->own_type;
	f->host = fn;
	f->user = user;
	f->store = s;
	f->next = s->host_funcs;
	s->host_funcs = f;
	s->obj_bytes += sizeof(*f) + n * sizeof(*v);
	*out = f;
	return ERR_OK;
}

enum err_code wasm_global_new(struct wasm_store *s, struct wasm_value init, int mutable_,
			      struct wasm_global **out, struct err *err)
{
	*out = NULL;
	if (!is_valtype(init.type))
		return err_set(err, ERR_INVALID, "invalid global type");
	struct wasm_global *g = calloc(1, sizeof(*g));
	if (!g)
		return err_set(err, ERR_NOMEM, "out of memory creating global");
	g->val = slot_of(&init);
	g->type = init.type;
	g->mut = mutable_ != 0;
	g->store = s;
	g->next = s->globals;
	s->globals = g;
	s->obj_bytes += sizeof(*g);
	*out = g;
	return ERR_OK;
}

static enum err_code table_create(struct wasm_store *s, enum wasm_valtype elem,
				  struct wasm_limits_type lim, struct wasm_table **out,
				  struct err *err)
{
	*out = NULL;
	if (lim.min > s->lim.max_table_elems)
		return err_set(err, ERR_TOO_LARGE,
			       "table of %u elements exceeds the limit of %u elements", lim.min,
			       s->lim.max_table_elems);
	struct wasm_table *t = calloc(1, sizeof(*t));
	void **elems = calloc(lim.min ? lim.min : 1, sizeof(void *));
	if (!t || !elems) {
		free(t);
		free(elems);
		return err_set(err, ERR_NOMEM, "out of memory creating table");
	}
	t->elems = elems;
	t->size = t->cap = lim.min;
	t->type_lim = lim;
	t->type = elem;
	t->store = s;
	t->next = s->tables;
	s->tables = t;
	s->obj_bytes += sizeof(*t);
	*out = t;
	return ERR_OK;
}

enum err_code wasm_table_new(struct wasm_store *s, enum wasm_valtype elem,
			     struct wasm_limits_type limits, struct wasm_table **out,
			     struct err *err)
{
	*out = NULL;
	if (!is_reftype(elem) || (limits.has_max && limits.min > limits.max))
		return err_set(err, ERR_INVALID, "invalid table type");
	return table_create(s, elem, limits, out, err);
}

static enum err_code memory_create(struct wasm_store *s, struct wasm_limits_type lim,
				   struct wasm_memory **out, struct err *err)
{
	*out = NULL;
	if (lim.min > s->lim.max_memory_pages)
		return err_set(err, ERR_TOO_LARGE, "memory of %u pages exceeds the limit of %u pages",
			       lim.min, s->lim.max_memory_pages);
	struct wasm_memory *m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, ERR_NOMEM, "out of memory creating memory");
	m->type_lim = lim;
	m->store = s;
	if (lim.min) {
		size_t bytes = (size_t)lim.min * WASM_PAGE_SIZE;
		void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			free(m);
			return err_set(err, ERR_NOMEM, "cannot map memory of %u pages", lim.min);
		}
		m->data = p;
		m->size = bytes;
		m->pages = lim.min;
	}
	m->next = s->memories;
	s->memories = m;
	s->obj_bytes += sizeof(*m);
	*out = m;
	return ERR_OK;
}

enum err_code wasm_memory_new(struct wasm_store *s, struct wasm_limits_type pages,
			      struct wasm_memory **out, struct err *err)
{
	*out = NULL;
	if (pages.min > WASM_MAX_PAGES || (pages.has_max && pages.max > WASM_MAX_PAGES) ||
	    (pages.has_max && pages.min > pages.max))
		return err_set(err, ERR_INVALID, "invalid memory type");
	return memory_create(s, pages, out, err);
}

/* ---- objects ---- */

void wasm_func_type(const struct wasm_func *f, struct wasm_functype *out)
{
	out->nparams = f->type->np;
	out->nresults = f->type->nr;
	out->params = f->type->v;
	out->results = f->type->v ? f->type->v + f->type->np : NULL;
}

struct wasm_value wasm_global_get(const struct wasm_global *g)
{
	return value_of(g->type, g->val);
}

enum err_code wasm_global_set(struct wasm_global *g, struct wasm_value v)
{
	if (!g->mut)
		return ERR_CONFLICT;
	if (v.type != g->type)
		return ERR_INVALID;
	g->val = slot_of(&v);
	return ERR_OK;
}

void wasm_global_type(const struct wasm_global *g, enum wasm_valtype *type, int *mutable_)
{
	if (type)
		*type = g->type;
	if (mutable_)
		*mutable_ = g->mut;
}

uint32_t wasm_table_size(const struct wasm_table *t)
{
	return t->size;
}

enum err_code wasm_table_get(const struct wasm_table *t, uint32_t i, struct wasm_value *out)
{
	if (i >= t->size)
		return ERR_NOT_FOUND;
	*out = value_of(t->type, (uint64_t)(uintptr_t)t->elems[i]);
	return ERR_OK;
}

int64_t wasm_table_grow_elems(struct wasm_table *t, uint32_t delta, void *init)
{
	uint64_t max = t->type_lim.has_max ? t->type_lim.max : UINT32_MAX;
	if (max > t->store->lim.max_table_elems)
		max = t->store->lim.max_table_elems;
	uint32_t old = t->size;
	if ((uint64_t)old + delta > max)
		return -1;
	uint32_t n = old + delta;
	if (n > t->cap) {
		uint64_t ncap = (uint64_t)t->cap * 2;
		if (ncap < n)
			ncap = n;
		if (ncap > max)
			ncap = max;
		void **p = realloc(t->elems, (size_t)ncap * sizeof(void *));
		if (!p)
			return -1;
		t->elems = p;
		t->cap = (uint32_t)ncap;
	}
	for (uint32_t i = old; i < n; i++)
		t->elems[i] = init;
	t->size = n;
	return old;
}

uint8_t *wasm_memory_data(struct wasm_memory *m)
{
	return m->data;
}

uint64_t wasm_memory_size(const struct wasm_memory *m)
{
	return m->size;
}

enum err_code wasm_memory_read(struct wasm_memory *m, uint64_t offset, void *dst, size_t len,
			       struct err *err)
{
	if (offset > m->size || len > m->size - offset)
		return err_set(err, ERR_WASM_TRAP, "out of bounds memory access");
	if (len)
		memcpy(dst, m->data + offset, len);
	return ERR_OK;
}

enum err_code wasm_memory_write(struct wasm_memory *m, uint64_t offset, const void *src,
				size_t len, struct err *err)
{
	if (offset > m->size || len > m->size - offset)
		return err_set(err, ERR_WASM_TRAP, "out of bounds memory access");
	if (len)
		memcpy(m->data + offset, src, len);
	return ERR_OK;
}

int64_t wasm_memory_grow_pages(struct wasm_memory *m, uint32_t delta)
{
	uint64_t max = m->type_lim.has_max ? m->type_lim.max : WASM_MAX_PAGES;
	if (max > m->store->lim.max_memory_pages)
		max = m->store->lim.max_memory_pages;
	uint32_t old = m->pages;
	if (delta == 0)
		return old;
	if ((uint64_t)old + delta > max)
		return -1;
	size_t nbytes = (size_t)(old + delta) * WASM_PAGE_SIZE;
	void *p;
	if (m->data)
		p = mremap(m->data, m->size, nbytes, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, nbytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	m->data = p;
	m->size = nbytes;
	m->pages = old + delta;
	return old;
}

int64_t wasm_memory_grow(struct wasm_memory *m, uint32_t delta)
{
	return wasm_memory_grow_pages(m, delta);
}

/* ---- calls ---- */

/* What host function f (or its continuation, see wasm_store_resume_call)
 * returned: its results into their slots at off, or the suspension
 * recorded, or the error with a message. */
static enum err_code host_outcome(struct wasm_store *s, struct wasm_func *f,
				  const struct wasm_caller *c, enum err_code rc,
				  struct wasm_value *res, size_t off, struct err *err)
{
	const struct wasm_ftype *t = f->type;
	if (rc == ERR_WASM_SUSPEND) {
		if (!c->suspend)
			return err_set(err, ERR_WASM_TRAP,
				       "host function suspended without wasm_caller_suspend");
		s->susp.host = f;
		s->susp.res = off;
		s->susp.token = c->token;
		err_set(err, ERR_WASM_SUSPEND, "call suspended");
	} else if (rc == ERR_OK) {
		for (uint32_t i = 0; i < t->nr; i++) {
			res[i].type = t->v[t->np + i];
			s->stack[off + i] = slot_of(&res[i]);
		}
	} else if (err && err->code != rc) {
		err_set(err, rc, "host function failed: %s", err_code_name(rc));
	}
	return rc;
}

enum err_code wasm_call_host(struct wasm_store *s, struct wasm_func *f, struct wasm_instance *caller,
			     size_t off, struct err *err)
{
	const struct wasm_ftype *t = f->type;
	struct wasm_value small[16];
	struct wasm_value *vals = small;
	if (t->np + t->nr > 16) {
		vals = malloc((t->np + t->nr) * sizeof(*vals));
		if (!vals)
			return err_set(err, ERR_NOMEM, "out of memory calling host function");
	}
	for (uint32_t i = 0; i < t->np; i++)
		vals[i] = value_of(t->v[i], s->stack[off + i]);
	for (uint32_t i = 0; i < t->nr; i++)
		vals[t->np + i] = value_of(t->v[t->np + i], 0);
	struct wasm_caller c = {.store = s, .inst = caller};
	/* taken now: nested runs in the host function overwrite s->run_* */
	const uint32_t *pc = s->run_pc;
	struct wasm_func *cur = s->run_cur;
	size_t fp = s->run_fp;
	uint32_t depth = s->depth;
	enum err_code rc = f->host(&c, f->user, vals, vals + t->np, err);
	rc = host_outcome(s, f, &c, rc, vals + t->np, off, err);
	if (rc == ERR_WASM_SUSPEND) {
		s->susp.cur = cur;
		s->susp.pc = pc;
		s->susp.fp = fp;
		s->susp.depth = depth;
	}
	if (vals != small)
		free(vals);
	return rc;
}

static enum err_code check_args(const struct wasm_ftype *t, const struct wasm_value *args,
				size_t nargs, size_t nresults, struct err *err)
{
	if (nargs != t->np || nresults != t->nr)
		return err_set(err, ERR_INVALID, "function takes %u arguments and %u results, not %zu and %zu",
			       t->np, t->nr, nargs, nresults);
	for (uint32_t i = 0; i < t->np; i++)
		if (args[i].type != t->v[i])
			return err_set(err, ERR_INVALID, "argument %u has the wrong type", i);
	return ERR_OK;
}

/* Brings the fuel figures up to date with the current call. */
static void account_fuel(struct wasm_store *s)
{
	uint64_t left = s->fuel > 0 ? (uint64_t)s->fuel : 0;
	s->fuel_last = s->fuel_budget - left;
	s->fuel_total += s->fuel_last - s->fuel_counted;
	s->fuel_counted = s->fuel_last;
}

/* The outermost call is over (returned, trapped, or cancelled). */
static void end_call(struct wasm_store *s)
{
	account_fuel(s);
	s->suspended = false;
	s->susp = (struct wasm_suspension){0};
	atomic_store(&s->interrupt, 0);
}

static enum err_code refuse_suspended(struct err *err)
{
	return err_set(err, ERR_CONFLICT,
		       "store has a suspended call: only resume, cancel or free it");
}

static enum err_code call_in_place(struct wasm_store *s, struct wasm_func *f, size_t base,
				   struct err *err)
{
	s->nesting++;
	s->run_cur = NULL;
	enum err_code rc = f->code ? wasm_exec(s, f, base, err) : wasm_call_host(s, f, NULL, base, err);
	s->nesting--;
	return rc;
}

enum err_code wasm_func_call(struct wasm_store *s, struct wasm_func *f,
			     const struct wasm_value *args, size_t nargs,
			     struct wasm_value *results, size_t nresults, struct err *err)
{
	const struct wasm_ftype *t = f->type;
	enum err_code rc = check_args(t, args, nargs, nresults, err);
	if (rc)
		return rc;
	if (f->store != s)
		return err_set(err, ERR_INVALID, "function belongs to another store");
	if (s->suspended)
		return refuse_suspended(err);
	if (s->nesting >= MAX_NESTING)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	bool outer = s->nesting == 0;
	if (outer) {
		s->fuel_budget = s->lim.fuel ? s->lim.fuel : (uint64_t)INT64_MAX;
		if (s->fuel_budget > (uint64_t)INT64_MAX)
			s->fuel_budget = (uint64_t)INT64_MAX;
		s->fuel = (int64_t)s->fuel_budget;
		s->fuel_counted = 0;
		s->depth = 0;
		s->sp = 0;
	}
	size_t base = s->sp;
	size_t need = t->np > t->nr ? t->np : t->nr;
	if (f->code && f->code->frame_slots > need)
		need = f->code->frame_slots;
	rc = wasm_stack_reserve(s, base + need + 1, err);
	for (uint32_t i = 0; !rc && i < t->np; i++)
		s->stack[base + i] = slot_of(&args[i]);
	if (!rc)
		rc = call_in_place(s, f, base, err);
	for (uint32_t i = 0; !rc && i < t->nr; i++)
		results[i] = value_of(t->v[t->np + i], s->stack[base + i]);
	if (outer && rc == ERR_WASM_SUSPEND) {
		/* only the outermost call's host functions may suspend */
		s->suspended = true;
		s->susp.entry = f;
		s->susp.base = base;
		account_fuel(s);
	} else if (outer) {
		end_call(s);
	}
	return rc;
}

/* ---- suspended calls ---- */

enum err_code wasm_caller_suspend(struct wasm_caller *caller, void *token, struct err *err)
{
	struct wasm_store *s = caller->store;
	if (s->no_suspend)
		return err_set(err, ERR_WASM_TRAP, "cannot suspend during instantiation");
	if (s->nesting != 1)
		return err_set(err, ERR_WASM_TRAP,
			       "cannot suspend a host call nested in another host call");
	/* resuming takes one more frame record (see wasm_exec_resume) */
	if (s->depth >= s->lim.max_call_depth)
		return err_set(err, ERR_WASM_TRAP, "cannot suspend at the maximum call depth");
	caller->suspend = true;
	caller->token = token;
	return err_set(err, ERR_WASM_SUSPEND, "call suspended");
}

int wasm_caller_can_suspend(const struct wasm_caller *caller)
{
	const struct wasm_store *s = caller->store;
	return !s->no_suspend && s->nesting == 1 && s->depth < s->lim.max_call_depth;
}

int wasm_store_suspended(const struct wasm_store *s)
{
	return s->suspended;
}

void *wasm_store_suspend_token(const struct wasm_store *s)
{
	return s->suspended ? s->susp.token : NULL;
}

enum err_code wasm_store_suspended_type(const struct wasm_store *s, struct wasm_functype *out)
{
	if (!s->suspended)
		return ERR_CONFLICT;
	wasm_func_type(s->susp.host, out);
	return ERR_OK;
}

/* Runs the parked call on from its host function's results, in place. */
static enum err_code continue_call(struct wasm_store *s, struct wasm_value *out,
				   struct err *err)
{
	enum err_code rc = ERR_OK;
	if (s->susp.cur) {
		s->sp = s->susp.base;
		s->nesting++;
		rc = wasm_exec_resume(s, err);
		s->nesting--;
	}
	if (rc == ERR_WASM_SUSPEND) {
		s->suspended = true;
		account_fuel(s);
		return rc;
	}
	const struct wasm_ftype *et = s->susp.entry->type;
	for (uint32_t i = 0; !rc && i < et->nr; i++)
		out[i] = value_of(et->v[et->np + i], s->stack[s->susp.base + i]);
	end_call(s);
	return rc;
}

/* Common checks of resume and resume_call; ERR_OK: go on. */
static enum err_code resume_check(struct wasm_store *s, size_t nout, struct err *err)
{
	if (!s->suspended)
		return err_set(err, ERR_CONFLICT, "store has no suspended call");
	const struct wasm_ftype *et = s->susp.entry->type;
	if (nout != et->nr)
		return err_set(err, ERR_INVALID, "the suspended call has %u results, not %zu", et->nr,
			       nout);
	return ERR_OK;
}

/* An interrupt that came while parked ends the call without running it. */
static bool resume_interrupted(struct wasm_store *s, struct err *err)
{
	if (!atomic_load(&s->interrupt))
		return false;
	err_set(err, ERR_WASM_EXHAUSTED, "interrupted");
	end_call(s);
	return true;
}

enum err_code wasm_store_resume(struct wasm_store *s, const struct wasm_value *results,
				size_t n, struct wasm_value *out, size_t nout, struct err *err)
{
	enum err_code rc = resume_check(s, nout, err);
	if (rc)
		return rc;
	const struct wasm_ftype *ht = s->susp.host->type;
	if (n != ht->nr)
		return err_set(err, ERR_INVALID, "the suspended host function has %u results, not %zu",
			       ht->nr, n);
	for (uint32_t i = 0; i < ht->nr; i++)
		if (results[i].type != ht->v[ht->np + i])
			return err_set(err, ERR_INVALID, "host result %u has the wrong type", i);
	if (resume_interrupted(s, err))
		return ERR_WASM_EXHAUSTED;
	s->suspended = false;
	for (uint32_t i = 0; i < ht->nr; i++)
		s->stack[s->susp.res + i] = slot_of(&results[i]);
	return continue_call(s, out, err);
}

/* Runs fn as the rest of the parked host function, in its context, and
 * takes its outcome as the host function's. */
static enum err_code run_continuation(struct wasm_store *s, wasm_resume_fn fn, void *user,
				      struct err *err)
{
	enum err_code rc;
	struct wasm_func *host = s->susp.host;
	const struct wasm_ftype *ht = host->type;
	struct wasm_value small[16], *vals = small;
	if (ht->nr > 16 && !(vals = malloc(ht->nr * sizeof(*vals))))
		return err_set(err, ERR_NOMEM, "out of memory resuming a call");
	for (uint32_t i = 0; i < ht->nr; i++)
		vals[i] = value_of(ht->v[ht->np + i], 0);
	/* the host call's context again: nested calls go above the caller's
	 * frame and the parked frames, as they would have in the host call */
	struct wasm_func *cur = s->susp.cur;
	struct wasm_caller c = {.store = s, .inst = cur ? cur->inst : NULL};
	s->suspended = false;
	s->sp = cur ? s->susp.fp + cur->code->frame_slots : s->susp.res;
	s->depth = s->susp.depth;
	s->nesting++;
	rc = fn(&c, user, vals, err);
	s->nesting--;
	s->sp = s->susp.base;
	s->depth = 0;
	rc = host_outcome(s, host, &c, rc, vals, s->susp.res, err);
	if (vals != small)
		free(vals);
	return rc;
}

enum err_code wasm_store_resume_call(struct wasm_store *s, wasm_resume_fn fn, void *user,
				     struct wasm_value *out, size_t nout, struct err *err)
{
	enum err_code rc = resume_check(s, nout, err);
	if (rc)
		return rc;
	if (resume_interrupted(s, err))
		return ERR_WASM_EXHAUSTED;
	rc = run_continuation(s, fn, user, err);
	if (rc == ERR_WASM_SUSPEND) {
		s->suspended = true;
		account_fuel(s);
		return rc;
	}
	if (rc) {
		end_call(s);
		return rc;
	}
	return continue_call(s, out, err);
}

enum err_code wasm_store_cancel(struct wasm_store *s, enum err_code code, const char *reason,
				struct err *err)
{
	if (!s->suspended)
		return err_set(err, ERR_CONFLICT, "store has no suspended call");
	if (code == ERR_OK || code == ERR_WASM_SUSPEND)
		code = ERR_WASM_TRAP;
	end_call(s);
	return err_set(err, code, "%s", reason ? reason : "host call cancelled");
}

/* ---- instances ---- */

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* One block: the instance, then its index spaces and own objects. */
static struct wasm_instance *instance_alloc(struct wasm_store *s, struct wasm_module *m)
{
	uint32_t ndef = m->nfuncs - m->nfunc_imports, ngdef = m->nglobals - m->nglobal_imports;
	size_t off[8], n = align8(sizeof(struct wasm_instance));
	size_t sizes[8] = {
		m->nfuncs * sizeof(struct wasm_func *), ndef * sizeof(struct wasm_func),
		m->nglobals * sizeof(struct wasm_global *), ngdef * sizeof(struct wasm_global),
		m->ntables * sizeof(struct wasm_table *), m->nmems * sizeof(struct wasm_memory *),
		m->nelems * sizeof(struct wasm_elem_inst), m->ndatas};
	for (int i = 0; i < 8; i++) {
		off[i] = n;
		n += align8(sizes[i]);
	}
	char *p = calloc(1, n);
	if (!p)
		return NULL;
	struct wasm_instance *inst = (struct wasm_instance *)p;
	inst->funcs = (struct wasm_func **)(p + off[0]);
	inst->own_funcs = (struct wasm_func *)(p + off[1]);
	inst->globals = (struct wasm_global **)(p + off[2]);
	struct wasm_global *own_globals = (struct wasm_global *)(p + off[3]);
	inst->tables = (struct wasm_table **)(p + off[4]);
	inst->mems = (struct wasm_memory **)(p + off[5]);
	inst->elems = (struct wasm_elem_inst *)(p + off[6]);
	inst->data_dropped = (uint8_t *)(p + off[7]);
	for (uint32_t i = 0; i < ngdef; i++)
		inst->globals[m->nglobal_imports + i] = &own_globals[i];
	inst->store = s;
	inst->mod = wasm_module_ref(m);
	inst->next = s->instances;
	s->instances = inst;
	s->obj_bytes += n;
	return inst;
}

static bool limits_match(uint64_t have_min, const struct wasm_limits_type *have,
			 const struct wasm_limits_type *want)
{
	if (have_min < want->min)
		return false;
	if (!want->has_max)
		return true;
	return have->has_max && have->max <= want->max;
}

static bool import_ok(struct wasm_store *s, const struct wasm_module *m,
		      const struct wasm_mimport *im, const struct wasm_extern *ex)
{
	if (ex->kind != im->kind)
		return false;
	switch (im->kind) {
	case WASM_EXTERN_FUNC:
		return ex->of.func && ex->of.func->store == s &&
		       wasm_ftype_eq(ex->of.func->type, &m->types[im->type]);
	case WASM_EXTERN_TABLE: {
		const struct wasm_table *t = ex->of.table;
		const struct wasm_table_type *want = &m->tables[im->index];
		return t && t->store == s && t->type == want->elem &&
		       limits_match(t->size, &t->type_lim, &want->lim);
	}
	case WASM_EXTERN_MEMORY: {
		const struct wasm_memory *mem = ex->of.memory;
		return mem && mem->store == s &&
		       limits_match(mem->pages, &mem->type_lim, &m->mems[im->index]);
	}
	case WASM_EXTERN_GLOBAL: {
		const struct wasm_global *g = ex->of.global;
		const struct wasm_global_type *want = &m->globals[im->index];
		return g && g->store == s && g->type == want->type && g->mut == want->mut;
	}
	}
	return false;
}

static uint64_t cexpr_eval(const struct wasm_instance *inst, const struct wasm_cexpr *e)
{
	switch (e->op) {
	case CEXPR_CONST: return e->val;
	case CEXPR_REF_FUNC: return (uint64_t)(uintptr_t)inst->funcs[e->val];
	case CEXPR_GLOBAL_GET: return inst->globals[e->val]->val;
	default: return 0;
	}
}

static void link_imports(struct wasm_instance *inst, const struct wasm_extern *imports)
{
	const struct wasm_module *m = inst->mod;
	for (uint32_t i = 0; i < m->nimports; i++) {
		const struct wasm_mimport *im = &m->imports[i];
		switch (im->kind) {
		case WASM_EXTERN_FUNC: inst->funcs[im->index] = imports[i].of.func; break;
		case WASM_EXTERN_TABLE: inst->tables[im->index] = imports[i].of.table; break;
		case WASM_EXTERN_MEMORY: inst->mems[im->index] = imports[i].of.memory; break;
		case WASM_EXTERN_GLOBAL: inst->globals[im->index] = imports[i].of.global; break;
		}
	}
}

static enum err_code create_own(struct wasm_instance *inst, struct err *err)
{
	struct wasm_module *m = inst->mod;
	struct wasm_store *s = inst->store;
	for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
		struct wasm_func *f = &inst->own_funcs[i - m->nfunc_imports];
		f->type = &m->types[m->type_canon[m->func_type[i]]];
		f->inst = inst;
		f->code = &m->codes[i - m->nfunc_imports];
		f->store = s;
		inst->funcs[i] = f;
	}
	for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
		struct wasm_global *g = inst->globals[i];
		g->type = m->globals[i].type;
		g->mut = m->globals[i].mut;
		g->store = s;
		g->val = cexpr_eval(inst, &m->global_init[i - m->nglobal_imports]);
	}
	for (uint32_t i = m->ntable_imports; i < m->ntables; i++)
		if (table_create(s, m->tables[i].elem, m->tables[i].lim, &inst->tables[i], err))
			return err->code;
	for (uint32_t i = m->nmem_imports; i < m->nmems; i++)
		if (memory_create(s, m->mems[i], &inst->mems[i], err))
			return err->code;
	inst->mem0 = m->nmems ? inst->mems[0] : NULL;
	return ERR_OK;
}

static enum err_code init_elem(struct wasm_instance *inst, uint32_t i, struct err *err)
{
	const struct wasm_elem_seg *seg = &inst->mod->elems[i];
	if (seg->mode == SEG_DECLARATIVE)
		return ERR_OK;
	if (seg->mode == SEG_PASSIVE) {
		struct wasm_elem_inst *e = &inst->elems[i];
		e->refs = malloc((seg->count ? seg->count : 1) * sizeof(void *));
		if (!e->refs)
			return err_set(err, ERR_NOMEM, "out of memory instantiating module");
		for (uint32_t k = 0; k < seg->count; k++)
			e->refs[k] = (void *)(uintptr_t)cexpr_eval(inst, &seg->items[k]);
		e->n = seg->count;
		return ERR_OK;
	}
	struct wasm_table *t = inst->tables[seg->table];
	uint32_t d = (uint32_t)cexpr_eval(inst, &seg->offset);
	if ((uint64_t)d + seg->count > t->size)
		return err_set(err, ERR_WASM_TRAP, "out of bounds table access");
	for (uint32_t k = 0; k < seg->count; k++)
		t->elems[d + k] = (void *)(uintptr_t)cexpr_eval(inst, &seg->items[k]);
	return ERR_OK;
}

static enum err_code init_data(struct wasm_instance *inst, uint32_t i, struct err *err)
{
	const struct wasm_data_seg *seg = &inst->mod->datas[i];
	if (seg->mode != SEG_ACTIVE)
		return ERR_OK;
	struct wasm_memory *mem = inst->mems[seg->mem];
	uint32_t d = (uint32_t)cexpr_eval(inst, &seg->offset);
	if ((uint64_t)d + seg->len > mem->size)
		return err_set(err, ERR_WASM_TRAP, "out of bounds memory access");
	if (seg->len)
		memcpy(mem->data + d, inst->mod->bytes + seg->start, seg->len);
	inst->data_dropped[i] = 1;
	return ERR_OK;
}

static enum err_code run_init(struct wasm_instance *inst, struct err *err)
{
	const struct wasm_module *m = inst->mod;
	for (uint32_t i = 0; i < m->nelems; i++)
		if (init_elem(inst, i, err))
			return err->code;
	for (uint32_t i = 0; i < m->ndatas; i++)
		if (init_data(inst, i, err))
			return err->code;
	if (!m->has_start)
		return ERR_OK;
	struct wasm_store *s = inst->store;
	s->no_suspend++;
	enum err_code rc = wasm_func_call(s, inst->funcs[m->start], NULL, 0, NULL, 0, err);
	s->no_suspend--;
	return rc;
}

enum err_code wasm_instance_new(struct wasm_store *s, struct wasm_module *m,
				const struct wasm_extern *imports, size_t nimports,
				struct wasm_instance **out, struct err *err)
{
	struct err local;
	if (!err)
		err = &local;
	*out = NULL;
	if (s->suspended)
		return refuse_suspended(err);
	if (nimports != m->nimports)
		return err_set(err, ERR_WASM_LINK, "module needs %u imports, %zu given",
			       m->nimports, nimports);
	for (uint32_t i = 0; i < m->nimports; i++)
		if (!import_ok(s, m, &m->imports[i], &imports[i]))
			return err_set(err, ERR_WASM_LINK, "incompatible import type for '%s' '%s'",
				       m->imports[i].module, m->imports[i].name);
	struct wasm_instance *inst = instance_alloc(s, m);
	if (!inst)
		return err_set(err, ERR_NOMEM, "out of memory instantiating module");
	link_imports(inst, imports);
	enum err_code rc = create_own(inst, err);
	if (!rc)
		rc = run_init(inst, err);
	if (!rc)
		*out = inst;
	return rc;
}

static int find_export(const struct wasm_module *m, const char *name, size_t len)
{
	uint32_t lo = 0, hi = m->nexports;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct wasm_mexport *ex = &m->exports[m->export_order[mid]];
		size_t n = ex->name_len < len ? ex->name_len : len;
		int c = memcmp(ex->name, name, n);
		if (c == 0)
			c = ex->name_len < len ? -1 : ex->name_len > len;
		if (c == 0)
			return (int)m->export_order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

enum err_code wasm_instance_export_n(struct wasm_instance *inst, const char *name, size_t len,
				     struct wasm_extern *out)
{
	int i = find_export(inst->mod, name, len);
	if (i < 0)
		return ERR_NOT_FOUND;
	const struct wasm_mexport *ex = &inst->mod->exports[i];
	out->kind = ex->kind;
	switch (ex->kind) {
	case WASM_EXTERN_FUNC: out->of.func = inst->funcs[ex->index]; break;
	case WASM_EXTERN_TABLE: out->of.table = inst->tables[ex->index]; break;
	case WASM_EXTERN_MEMORY: out->of.memory = inst->mems[ex->index]; break;
	case WASM_EXTERN_GLOBAL: out->of.global = inst->globals[ex->index]; break;
	}
	return ERR_OK;
}

enum err_code wasm_instance_export(struct wasm_instance *inst, const char *name,
				   struct wasm_extern *out)
{
	return wasm_instance_export_n(inst, name, strlen(name), out);
}

struct wasm_memory *wasm_instance_memory(struct wasm_instance *inst, uint32_t index)
{
	return index < inst->mod->nmems ? inst->mems[index] : NULL;
}

enum err_code wasm_instance_new_resolved(struct wasm_store *s, struct wasm_module *m,
					 wasm_import_resolver resolve, void *user,
					 struct wasm_instance **out, struct err *err)
{
	*out = NULL;
	struct wasm_extern *ex = calloc(m->nimports ? m->nimports : 1, sizeof(*ex));
	if (!ex)
		return err_set(err, ERR_NOMEM, "out of memory instantiating module");
	enum err_code rc = ERR_OK;
	for (uint32_t i = 0; i < m->nimports && !rc; i++) {
		struct wasm_import_desc d;
		wasm_module_import(m, i, &d);
		if (resolve(user, &d, &ex[i]) != 0)
			rc = err_set(err, ERR_WASM_LINK, "unknown import '%s' '%s'", d.module, d.name);
		else if (!import_ok(s, m, &m->imports[i], &ex[i]))
			rc = err_set(err, ERR_WASM_LINK, "incompatible import type for '%s' '%s'",
				     d.module, d.name);
	}
	if (!rc)
		rc = wasm_instance_new(s, m, ex, m->nimports, out, err);
	free(ex);
	return rc;
}
