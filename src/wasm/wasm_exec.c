/* wasm_exec.c - the interpreter: one function, direct threading.
 *
 * Each internal instruction starts with the offset of its handler label
 * relative to a base label (labels as values, a GCC extension); handlers end
 * with `goto *(base + *pc)`, so there is no central switch. Operands are
 * frame-slot indices (see wasm_int.h), so local.get/set and the operand
 * stack cost nothing at run time.
 *
 * Calls never recurse on the C stack: a wasm->wasm call pushes a
 * struct wasm_frame on the store's frame array, places the callee's frame
 * at the caller's argument slots (arguments are already in place) and jumps
 * to the callee's code. Only host->wasm re-entry (a host function calling
 * wasm_func_call) starts a nested run.
 *
 * Because of that, a run can stop at a host call and continue later: before
 * each host call the run leaves its pc, frame and function in the store
 * (three stores, off the hot path); when the host function suspends, the
 * run returns ERR_WASM_SUSPEND and the store keeps that position. To resume,
 * wasm_exec_resume starts a run at that position whose entry is a one-cell
 * function that only returns: the call pushes the parked position as a
 * frame record and the return continues there. So run() has no path of its
 * own for resuming. (Versions with their own entry block changed how GCC
 * allocates registers and merges dispatch jumps across the whole function:
 * up to 25% more instructions executed.)
 *
 * Hot state lives in locals: pc, fp, memory base and size, fuel. The memory
 * base and size are reloaded after every call, return and memory.grow, the
 * stack base after anything that may grow the stack. A bounds check is one
 * compare: offset + address + width <= size, computed in 64 bits.
 * C undefined behaviour is avoided throughout: unsigned arithmetic, masked
 * shift counts, memcpy for unaligned access, range checks before
 * float->int conversions.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "src/wasm/wasm_int.h"

static inline float f32_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline double f64_of(uint64_t u)
{
	double f;
	memcpy(&f, &u, 8);
	return f;
}

static inline uint64_t f64_bits(double f)
{
	uint64_t u;
	memcpy(&u, &f, 8);
	return u;
}

/* min/max: a NaN operand gives a NaN (a + b propagates it, quieted);
 * -0 is smaller than +0. */
static inline float f32_min(float a, float b)
{
	if (isnan(a) || isnan(b))
		return a + b;
	if (a == b)
		return signbit(a) ? a : b;
	return a < b ? a : b;
}

static inline float f32_max(float a, float b)
{
	if (isnan(a) || isnan(b))
		return a + b;
	if (a == b)
		return signbit(a) ? b : a;
	return a > b ? a : b;
}

static inline double f64_min(double a, double b)
{
	if (isnan(a) || isnan(b))
		return a + b;
	if (a == b)
		return signbit(a) ? a : b;
	return a < b ? a : b;
}

static inline double f64_max(double a, double b)
{
	if (isnan(a) || isnan(b))
		return a + b;
	if (a == b)
		return signbit(a) ? b : a;
	return a > b ? a : b;
}

static inline uint32_t rotl32(uint32_t a, uint32_t b)
{
	b &= 31;
	return (a << b) | (a >> ((32 - b) & 31));
}

static inline uint32_t rotr32(uint32_t a, uint32_t b)
{
	b &= 31;
	return (a >> b) | (a << ((32 - b) & 31));
}

static inline uint64_t rotl64(uint64_t a, uint64_t b)
{
	b &= 63;
	return (a << b) | (a >> ((64 - b) & 63));
}

static inline uint64_t rotr64(uint64_t a, uint64_t b)
{
	b &= 63;
	return (a >> b) | (a << ((64 - b) & 63));
}

/* Saturating truncations (never trap). */
static inline uint32_t sat_i32(double x)
{
	if (isnan(x))
		return 0;
	if (x <= -2147483648.0)
		return 0x80000000u;
	if (x >= 2147483647.0)
		return 0x7fffffffu;
	return (uint32_t)(int32_t)x;
}

static inline uint32_t sat_u32(double x)
{
	if (isnan(x) || x <= 0)
		return 0;
	if (x >= 4294967295.0)
		return 0xffffffffu;
	return (uint32_t)x;
}

static inline uint64_t sat_i64(double x)
{
	if (isnan(x))
		return 0;
	if (x <= -9223372036854775808.0)
		return (uint64_t)1 << 63;
	if (x >= 9223372036854775808.0)
		return ((uint64_t)1 << 63) - 1;
	return (uint64_t)(int64_t)x;
}

static inline uint64_t sat_u64(double x)
{
	if (isnan(x) || x <= 0)
		return 0;
	if (x >= 18446744073709551616.0)
		return ~(uint64_t)0;
	return (uint64_t)x;
}

static inline uint64_t sat_i64_f32(float x)
{
	if (isnan(x))
		return 0;
	if (x <= -9223372036854775808.0f)
		return (uint64_t)1 << 63;
	if (x >= 9223372036854775808.0f)
		return ((uint64_t)1 << 63) - 1;
	return (uint64_t)(int64_t)x;
}

static inline uint64_t sat_u64_f32(float x)
{
	if (isnan(x) || x <= 0)
		return 0;
	if (x >= 18446744073709551616.0f)
		return ~(uint64_t)0;
	return (uint64_t)x;
}

static const char *const msg_oob_mem = "out of bounds memory access";
static const char *const msg_oob_table = "out of bounds table access";
static const char *const msg_div0 = "integer divide by zero";
static const char *const msg_overflow = "integer overflow";
static const char *const msg_conv = "invalid conversion to integer";
static const char *const msg_uninit = "uninitialized element";

/* Makes room for a frame ending at slot `end` and one more frame record. */
static enum err_code call_slow(struct wasm_store *S, size_t end, uint32_t depth, struct err *err)
{
	if (depth >= S->lim.max_call_depth)
		return err_set(err, ERR_WASM_EXHAUSTED, "call stack exhausted");
	if (wasm_frames_reserve(S, depth + 1, err))
		return ERR_WASM_EXHAUSTED;
	return wasm_stack_reserve(S, end, err);
}

/* One copy of run() only: its handler offsets are taken from its labels. */
#if defined(__clang__)
#define RUN_ATTRS __attribute__((noinline))
#else
#define RUN_ATTRS __attribute__((noinline, noclone))
#endif
static enum err_code run(struct wasm_store *S, struct wasm_func *entry, size_t base,
			 struct err *err, const int32_t **table_out) RUN_ATTRS;

static enum err_code run(struct wasm_store *S, struct wasm_func *entry, size_t base,
			 struct err *err, const int32_t **table_out)
{
#define X(name) [OP_##name] = &&L_##name - &&L_unreachable,
	static const int32_t handlers[OP__COUNT] = {WASM_OPS(X)};
#undef X
	if (!S) {
		*table_out = handlers;
		return ERR_OK;
	}
	const char *const hbase = (const char *)&&L_unreachable;
	uint64_t *stack = S->stack;
	struct wasm_frame *frames = S->frames;
	uint32_t frames_cap = S->frames_cap;
	const uint32_t depth0 = S->depth;
	uint32_t depth = depth0;
	int64_t fuel = S->fuel;
	const atomic_int *interrupt = &S->interrupt;
	/* NULL, or a parked position to resume (see wasm_exec_resume) */
	struct wasm_func *cur = S->run_cur, *callee = entry;
	struct wasm_instance *inst = NULL;
	struct wasm_memory *mem = NULL;
	uint8_t *mbase = NULL;
	uint64_t msize = 0;
	const uint32_t *pc = S->run_pc;
	uint64_t *fp = stack + base, *nfp = fp;
	const char *trap_msg = NULL;
	uint32_t trap_idx = 0;
	enum err_code rc = ERR_OK;

#define NEXT() goto *(const void *)(hbase + (int32_t)*pc)
#define TRAP(m)                 \
	do {                    \
		trap_msg = (m); \
		goto trap;      \
	} while (0)
#define LOAD_MEM()                                 \
	do {                                       \
		mem = inst->mem0;                  \
		mbase = mem ? mem->data : NULL;    \
		msize = mem ? mem->size : 0;       \
	} while (0)
#define U32(i) ((uint32_t)fp[pc[i]])
#define S32(i) ((int32_t)U32(i))
#define U64(i) (fp[pc[i]])
#define S64(i) ((int64_t)U64(i))
#define F32(i) f32_of(U32(i))
#define F64(i) f64_of(U64(i))
#define JUMP(cell) (pc = pc + (cell) + (int32_t)pc[cell])
/* A branch back to a loop: charge one iteration (the cell after the
 * offset), then jump. */
#define LOOP_JUMP(cell)                          \
	do {                                     \
		fuel -= pc[(cell) + 1];          \
		if (FUEL_CHECK())                \
			goto out_of_fuel;        \
		JUMP(cell);                      \
	} while (0)
#define FUEL_CHECK() (unlikely(fuel < 0) || unlikely(atomic_load_explicit(interrupt, memory_order_relaxed)))

	goto do_call;

do_call: {
	/* callee, nfp set; pc points after the call instruction */
	if (unlikely(!callee->code))
		goto host_call;
	const struct wasm_code *cc = callee->code;
	if (unlikely(depth >= frames_cap || nfp + cc->frame_slots > stack + S->stack_cap)) {
		size_t fp_off = (size_t)(fp - stack), nfp_off = (size_t)(nfp - stack);
		if ((rc = call_slow(S, nfp_off + cc->frame_slots, depth, err)))
			goto fail;
		stack = S->stack;
		frames = S->frames;
		frames_cap = S->frames_cap;
		fp = stack + fp_off;
		nfp = stack + nfp_off;
	}
	frames[depth].pc = pc;
	frames[depth].fp = (uint32_t)(fp - stack);
	frames[depth].func = cur;
	depth++;
	if (likely(cc->ninit <= 8)) {
		for (uint32_t i = 0; i < cc->ninit; i++)
			nfp[cc->nparams + i] = cc->init[i];
	} else {
		memcpy(nfp + cc->nparams, cc->init, (size_t)cc->ninit * sizeof(uint64_t));
	}
	fuel -= cc->fuel;
	if (FUEL_CHECK())
		goto out_of_fuel;
	fp = nfp;
	cur = callee;
	pc = cc->ops;
	if (callee->inst != inst) {
		inst = callee->inst;
		LOAD_MEM();
	}
	NEXT();
}

host_call: {
	size_t fp_off = (size_t)(fp - stack), nfp_off = (size_t)(nfp - stack);
	size_t old_sp = S->sp;
	S->sp = cur ? fp_off + cur->code->frame_slots : nfp_off;
	S->depth = depth;
	S->fuel = fuel;
	/* where to resume if the host parks the call */
	S->run_pc = pc;
	S->run_fp = fp_off;
	S->run_cur = cur;
	rc = wasm_call_host(S, callee, inst, nfp_off, err);
	S->sp = old_sp;
	stack = S->stack;
	frames = S->frames;
	frames_cap = S->frames_cap;
	fp = stack + fp_off;
	fuel = S->fuel;
	if (rc)
		goto fail;
	if (!cur)
		goto done;
	LOAD_MEM();
	NEXT();
}

do_return: {
	depth--;
	struct wasm_frame *fr = &frames[depth];
	if (!fr->pc)
		goto done;
	pc = fr->pc;
	fp = stack + fr->fp;
	cur = fr->func;
	/* mbase/msize are current unless the instance changes: a grow by
	 * this instance updated them, host calls reload them */
	if (unlikely(cur->inst != inst)) {
		inst = cur->inst;
		LOAD_MEM();
	}
	NEXT();
}

	/* ---- control ---- */
L_unreachable:
	TRAP("unreachable");
L_nop:
	pc += 1;
	NEXT();
L_br:
	JUMP(1);
	NEXT();
L_br_if:
	if (U32(1))
		JUMP(2);
	else
		pc += 3;
	NEXT();
L_br_unless:
	if (!U32(1))
		JUMP(2);
	else
		pc += 3;
	NEXT();
L_br_table: {
	uint32_t i = U32(1), n = pc[2];
	if (i > n)
		i = n;
	JUMP(3 + i);
	NEXT();
}
L_br_loop:
	LOOP_JUMP(1);
	NEXT();
L_br_if_loop:
	if (U32(1))
		LOOP_JUMP(2);
	else
		pc += 4;
	NEXT();
L_ret0:
	goto do_return;
L_ret1:
	fp[0] = fp[pc[1]];
	goto do_return;
L_retn:
	memmove(fp, fp + pc[2], (size_t)pc[1] * sizeof(uint64_t));
	goto do_return;
L_call:
	callee = inst->funcs[pc[1]];
	nfp = fp + pc[2];
	pc += 3;
	goto do_call;
L_call_indirect: {
	struct wasm_table *t = inst->tables[pc[2]];
	uint32_t i = U32(3);
	if (i >= t->size)
		TRAP("undefined element");
	callee = t->elems[i];
	if (!callee) {
		trap_idx = i;
		TRAP(msg_uninit);
	}
	const struct wasm_module *m = inst->mod;
	const struct wasm_ftype *want = &m->types[m->type_canon[pc[1]]];
	if (callee->type != want && !wasm_ftype_eq(callee->type, want))
		TRAP("indirect call type mismatch");
	nfp = fp + pc[4];
	pc += 5;
	goto do_call;
}
L_copy:
	fp[pc[1]] = fp[pc[2]];
	pc += 3;
	NEXT();
L_const32:
	fp[pc[1]] = pc[2];
	pc += 3;
	NEXT();
L_const64:
	fp[pc[1]] = (uint64_t)pc[2] | ((uint64_t)pc[3] << 32);
	pc += 4;
	NEXT();
L_select:
	fp[pc[1]] = U32(4) ? fp[pc[2]] : fp[pc[3]];
	pc += 5;
	NEXT();
L_global_get:
	fp[pc[1]] = inst->globals[pc[2]]->val;
	pc += 3;
	NEXT();
L_global_set:
	inst->globals[pc[1]]->val = fp[pc[2]];
	pc += 3;
	NEXT();

	/* ---- tables ---- */
L_table_get: {
	struct wasm_table *t = inst->tables[pc[2]];
	uint32_t i = U32(3);
	if (i >= t->size)
		TRAP(msg_oob_table);
	fp[pc[1]] = (uint64_t)(uintptr_t)t->elems[i];
	pc += 4;
	NEXT();
}
L_table_set: {
	struct wasm_table *t = inst->tables[pc[1]];
	uint32_t i = U32(2);
	if (i >= t->size)
		TRAP(msg_oob_table);
	t->elems[i] = (void *)(uintptr_t)fp[pc[3]];
	pc += 4;
	NEXT();
}
L_table_size:
	fp[pc[1]] = inst->tables[pc[2]]->size;
	pc += 3;
	NEXT();
L_table_grow: {
	int64_t r = wasm_table_grow_elems(inst->tables[pc[2]], U32(4),
					  (void *)(uintptr_t)fp[pc[3]]);
	fp[pc[1]] = (uint32_t)r;
	fuel -= U32(4);
	pc += 5;
	NEXT();
}
L_table_fill: {
	struct wasm_table *t = inst->tables[pc[1]];
	uint32_t i = U32(2), n = U32(4);
	void *v = (void *)(uintptr_t)fp[pc[3]];
	if ((uint64_t)i + n > t->size)
		TRAP(msg_oob_table);
	for (uint32_t k = 0; k < n; k++)
		t->elems[i + k] = v;
	fuel -= n;
	pc += 5;
	NEXT();
}
L_table_copy: {
	struct wasm_table *td = inst->tables[pc[1]], *ts = inst->tables[pc[2]];
	uint32_t d = U32(3), s = U32(4), n = U32(5);
	if ((uint64_t)d + n > td->size || (uint64_t)s + n > ts->size)
		TRAP(msg_oob_table);
	if (n)
		memmove(td->elems + d, ts->elems + s, (size_t)n * sizeof(void *));
	fuel -= n;
	pc += 6;
	NEXT();
}
L_table_init: {
	struct wasm_table *t = inst->tables[pc[1]];
	const struct wasm_elem_inst *e = &inst->elems[pc[2]];
	uint32_t d = U32(3), s = U32(4), n = U32(5);
	if ((uint64_t)s + n > e->n || (uint64_t)d + n > t->size)
		TRAP(msg_oob_table);
	if (n)
		memcpy(t->elems + d, e->refs + s, (size_t)n * sizeof(void *));
	fuel -= n;
	pc += 6;
	NEXT();
}
L_elem_drop:
	inst->elems[pc[1]].n = 0;
	pc += 2;
	NEXT();
L_ref_func:
	fp[pc[1]] = (uint64_t)(uintptr_t)inst->funcs[pc[2]];
	pc += 3;
	NEXT();
L_ref_is_null:
	fp[pc[1]] = fp[pc[2]] == 0;
	pc += 3;
	NEXT();

	/* ---- memory ---- */
L_memory_size:
	fp[pc[1]] = (uint32_t)(msize / WASM_PAGE_SIZE);
	pc += 2;
	NEXT();
L_memory_grow:
	fp[pc[1]] = (uint32_t)wasm_memory_grow_pages(mem, U32(2));
	mbase = mem->data;
	msize = mem->size;
	pc += 3;
	NEXT();
L_memory_init: {
	const struct wasm_data_seg *seg = &inst->mod->datas[pc[1]];
	uint32_t d = U32(2), s = U32(3), n = U32(4);
	uint64_t len = inst->data_dropped[pc[1]] ? 0 : seg->len;
	if ((uint64_t)s + n > len || (uint64_t)d + n > msize)
		TRAP(msg_oob_mem);
	if (n)
		memcpy(mbase + d, inst->mod->bytes + seg->start + s, n);
	fuel -= n >> 4;
	pc += 5;
	NEXT();
}
L_data_drop:
	inst->data_dropped[pc[1]] = 1;
	pc += 2;
	NEXT();
L_memory_copy: {
	uint32_t d = U32(1), s = U32(2), n = U32(3);
	if ((uint64_t)s + n > msize || (uint64_t)d + n > msize)
		TRAP(msg_oob_mem);
	if (n)
		memmove(mbase + d, mbase + s, n);
	fuel -= n >> 4;
	pc += 4;
	NEXT();
}
L_memory_fill: {
	uint32_t d = U32(1), n = U32(3);
	if ((uint64_t)d + n > msize)
		TRAP(msg_oob_mem);
	if (n)
		memset(mbase + d, (int)(uint8_t)U32(2), n);
	fuel -= n >> 4;
	pc += 4;
	NEXT();
}

/* Loads and stores; ea is computed in 64 bits, so one compare checks it. */
#define LOAD_AT(label, T, conv, ea_expr, len)                         \
	label: {                                                      \
		uint64_t ea = (ea_expr);                              \
		T v;                                                  \
		if (unlikely(ea + sizeof(T) > msize))                 \
			TRAP(msg_oob_mem);                            \
		memcpy(&v, mbase + ea, sizeof(T));                    \
		fp[pc[1]] = conv;                                     \
		pc += len;                                            \
		NEXT();                                               \
	}
#define LOAD(name, T, conv)                                                            \
	LOAD_AT(L_##name, T, conv, (uint64_t)U32(2) + pc[3], 4)                        \
	LOAD_AT(L_##name##_ai, T, conv, (uint64_t)(uint32_t)(U32(2) + pc[3]) + pc[4], 5) \
	LOAD_AT(L_##name##_aa, T, conv, (uint64_t)(uint32_t)(U32(2) + U32(3)) + pc[4], 5)
	LOAD(load32, uint32_t, v)
	LOAD(load64, uint64_t, v)
	LOAD(load8_u, uint8_t, v)
	LOAD(load16_u, uint16_t, v)
	LOAD(i32_load8_s, int8_t, (uint32_t)(int32_t)v)
	LOAD(i32_load16_s, int16_t, (uint32_t)(int32_t)v)
	LOAD(i64_load8_s, int8_t, (uint64_t)(int64_t)v)
	LOAD(i64_load16_s, int16_t, (uint64_t)(int64_t)v)
	LOAD(i64_load32_s, int32_t, (uint64_t)(int64_t)v)
#undef LOAD
#undef LOAD_AT

#define STORE_AT(label, T, ea_expr, val_cell, len)                    \
	label: {                                                      \
		uint64_t ea = (ea_expr);                              \
		T v = (T)fp[pc[val_cell]];                            \
		if (unlikely(ea + sizeof(T) > msize))                 \
			TRAP(msg_oob_mem);                            \
		memcpy(mbase + ea, &v, sizeof(T));                    \
		pc += len;                                            \
		NEXT();                                               \
	}
#define STORE(name, T)                                                                     \
	STORE_AT(L_##name, T, (uint64_t)U32(1) + pc[3], 2, 4)                              \
	STORE_AT(L_##name##_ai, T, (uint64_t)(uint32_t)(U32(1) + pc[2]) + pc[4], 3, 5)     \
	STORE_AT(L_##name##_aa, T, (uint64_t)(uint32_t)(U32(1) + U32(2)) + pc[4], 3, 5)
	STORE(store8, uint8_t)
	STORE(store16, uint16_t)
	STORE(store32, uint32_t)
	STORE(store64, uint64_t)
#undef STORE
#undef STORE_AT

	/* ---- numeric ---- */
#define UN32(name, expr)                          \
	L_##name: {                               \
		uint32_t a = U32(2);              \
		fp[pc[1]] = (uint32_t)(expr);     \
		pc += 3;                          \
		NEXT();                           \
	}
#define UN32_64(name, expr)                       \
	L_##name: {                               \
		uint32_t a = U32(2);              \
		fp[pc[1]] = (uint64_t)(expr);     \
		pc += 3;                          \
		NEXT();                           \
	}
#define UN64(name, expr)                          \
	L_##name: {                               \
		uint64_t a = U64(2);              \
		fp[pc[1]] = (uint64_t)(expr);     \
		pc += 3;                          \
		NEXT();                           \
	}
#define BIN32(name, expr)                         \
	L_##name: {                               \
		uint32_t a = U32(2), b = U32(3);  \
		fp[pc[1]] = (uint32_t)(expr);     \
		pc += 4;                          \
		NEXT();                           \
	}                                         \
	L_##name##_imm: {                         \
		uint32_t a = U32(2), b = pc[3];   \
		fp[pc[1]] = (uint32_t)(expr);     \
		pc += 4;                          \
		NEXT();                           \
	}
#define BIN32R(name, expr)                        \
	L_##name: {                               \
		uint32_t a = U32(2), b = U32(3);  \
		fp[pc[1]] = (uint32_t)(expr);     \
		pc += 4;                          \
		NEXT();                           \
	}
#define BIN64(name, expr)                                                        \
	L_##name: {                                                              \
		uint64_t a = U64(2), b = U64(3);                                 \
		fp[pc[1]] = (uint64_t)(expr);                                    \
		pc += 4;                                                         \
		NEXT();                                                          \
	}                                                                        \
	L_##name##_imm: {                                                        \
		uint64_t a = U64(2), b = (uint64_t)pc[3] | ((uint64_t)pc[4] << 32); \
		fp[pc[1]] = (uint64_t)(expr);                                    \
		pc += 5;                                                         \
		NEXT();                                                          \
	}
#define BIN64R(name, expr)                        \
	L_##name: {                               \
		uint64_t a = U64(2), b = U64(3);  \
		fp[pc[1]] = (uint64_t)(expr);     \
		pc += 4;                          \
		NEXT();                           \
	}
#define CMP64(name, expr)                         \
	L_##name: {                               \
		uint64_t a = U64(2), b = U64(3);  \
		fp[pc[1]] = (uint32_t)(expr);     \
		pc += 4;                          \
		NEXT();                           \
	}
#define F32UN(name, expr)                          \
	L_##name: {                                \
		float a = F32(2);                  \
		fp[pc[1]] = f32_bits(expr);        \
		pc += 3;                           \
		NEXT();                            \
	}
#define F32BIN(name, expr)                         \
	L_##name: {                                \
		float a = F32(2), b = F32(3);      \
		fp[pc[1]] = f32_bits(expr);        \
		pc += 4;                           \
		NEXT();                            \
	}
#define F32CMP(name, expr)                         \
	L_##name: {                                \
		float a = F32(2), b = F32(3);      \
		fp[pc[1]] = (uint32_t)(expr);      \
		pc += 4;                           \
		NEXT();                            \
	}
#define F64UN(name, expr)                          \
	L_##name: {                                \
		double a = F64(2);                 \
		fp[pc[1]] = f64_bits(expr);        \
		pc += 3;                           \
		NEXT();                            \
	}
#define F64BIN(name, expr)                         \
	L_##name: {                                \
		double a = F64(2), b = F64(3);     \
		fp[pc[1]] = f64_bits(expr);        \
		pc += 4;                           \
		NEXT();                            \
	}
#define F64CMP(name, expr)                         \
	L_##name: {                                \
		double a = F64(2), b = F64(3);     \
		fp[pc[1]] = (uint32_t)(expr);      \
		pc += 4;                           \
		NEXT();                            \
	}

	UN32(i32_eqz, a == 0)
	BIN32(i32_eq, a == b)
	BIN32(i32_ne, a != b)
	BIN32(i32_lt_s, (int32_t)a < (int32_t)b)
	BIN32(i32_lt_u, a < b)
	BIN32(i32_gt_s, (int32_t)a > (int32_t)b)
	BIN32(i32_gt_u, a > b)
	BIN32(i32_le_s, (int32_t)a <= (int32_t)b)
	BIN32(i32_le_u, a <= b)
	BIN32(i32_ge_s, (int32_t)a >= (int32_t)b)
	BIN32(i32_ge_u, a >= b)
L_i64_eqz:
	fp[pc[1]] = U64(2) == 0;
	pc += 3;
	NEXT();
	CMP64(i64_eq, a == b)
	CMP64(i64_ne, a != b)
	CMP64(i64_lt_s, (int64_t)a < (int64_t)b)
	CMP64(i64_lt_u, a < b)
	CMP64(i64_gt_s, (int64_t)a > (int64_t)b)
	CMP64(i64_gt_u, a > b)
	CMP64(i64_le_s, (int64_t)a <= (int64_t)b)
	CMP64(i64_le_u, a <= b)
	CMP64(i64_ge_s, (int64_t)a >= (int64_t)b)
	CMP64(i64_ge_u, a >= b)
	F32CMP(f32_eq, a == b)
	F32CMP(f32_ne, a != b)
	F32CMP(f32_lt, a < b)
	F32CMP(f32_gt, a > b)
	F32CMP(f32_le, a <= b)
	F32CMP(f32_ge, a >= b)
	F64CMP(f64_eq, a == b)
	F64CMP(f64_ne, a != b)
	F64CMP(f64_lt, a < b)
	F64CMP(f64_gt, a > b)
	F64CMP(f64_le, a <= b)
	F64CMP(f64_ge, a >= b)

	UN32(i32_clz, a ? __builtin_clz(a) : 32)
	UN32(i32_ctz, a ? __builtin_ctz(a) : 32)
	UN32(i32_popcnt, __builtin_popcount(a))
	BIN32(i32_add, a + b)
	BIN32(i32_sub, a - b)
	BIN32(i32_mul, a * b)
	BIN32(i32_and, a & b)
	BIN32(i32_or, a | b)
	BIN32(i32_xor, a ^ b)
	BIN32(i32_shl, a << (b & 31))
	BIN32(i32_shr_s, (int32_t)a >> (b & 31))
	BIN32(i32_shr_u, a >> (b & 31))
	BIN32R(i32_rotl, rotl32(a, b))
	BIN32R(i32_rotr, rotr32(a, b))
L_i32_div_s: {
	int32_t a = S32(2), b = S32(3);
	if (b == 0)
		TRAP(msg_div0);
	if (a == INT32_MIN && b == -1)
		TRAP(msg_overflow);
	fp[pc[1]] = (uint32_t)(a / b);
	pc += 4;
	NEXT();
}
L_i32_div_u: {
	uint32_t a = U32(2), b = U32(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = a / b;
	pc += 4;
	NEXT();
}
L_i32_rem_s: {
	int32_t a = S32(2), b = S32(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = b == -1 ? 0 : (uint32_t)(a % b);
	pc += 4;
	NEXT();
}
L_i32_rem_u: {
	uint32_t a = U32(2), b = U32(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = a % b;
	pc += 4;
	NEXT();
}

	UN64(i64_clz, a ? __builtin_clzll(a) : 64)
	UN64(i64_ctz, a ? __builtin_ctzll(a) : 64)
	UN64(i64_popcnt, __builtin_popcountll(a))
	BIN64(i64_add, a + b)
	BIN64(i64_sub, a - b)
	BIN64(i64_mul, a * b)
	BIN64(i64_and, a & b)
	BIN64(i64_or, a | b)
	BIN64(i64_xor, a ^ b)
	BIN64(i64_shl, a << (b & 63))
	BIN64(i64_shr_s, (int64_t)a >> (b & 63))
	BIN64(i64_shr_u, a >> (b & 63))
	BIN64R(i64_rotl, rotl64(a, b))
	BIN64R(i64_rotr, rotr64(a, b))
L_i64_div_s: {
	int64_t a = S64(2), b = S64(3);
	if (b == 0)
		TRAP(msg_div0);
	if (a == INT64_MIN && b == -1)
		TRAP(msg_overflow);
	fp[pc[1]] = (uint64_t)(a / b);
	pc += 4;
	NEXT();
}
L_i64_div_u: {
	uint64_t a = U64(2), b = U64(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = a / b;
	pc += 4;
	NEXT();
}
L_i64_rem_s: {
	int64_t a = S64(2), b = S64(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = b == -1 ? 0 : (uint64_t)(a % b);
	pc += 4;
	NEXT();
}
L_i64_rem_u: {
	uint64_t a = U64(2), b = U64(3);
	if (b == 0)
		TRAP(msg_div0);
	fp[pc[1]] = a % b;
	pc += 4;
	NEXT();
}

L_f32_abs:
	fp[pc[1]] = U32(2) & 0x7fffffffu;
	pc += 3;
	NEXT();
L_f32_neg:
	fp[pc[1]] = U32(2) ^ 0x80000000u;
	pc += 3;
	NEXT();
L_f32_copysign:
	fp[pc[1]] = (U32(2) & 0x7fffffffu) | (U32(3) & 0x80000000u);
	pc += 4;
	NEXT();
	F32UN(f32_ceil, isnan(a) ? a + a : ceilf(a))
	F32UN(f32_floor, isnan(a) ? a + a : floorf(a))
	F32UN(f32_trunc, isnan(a) ? a + a : truncf(a))
	F32UN(f32_nearest, isnan(a) ? a + a : nearbyintf(a))
	F32UN(f32_sqrt, sqrtf(a))
	F32BIN(f32_add, a + b)
	F32BIN(f32_sub, a - b)
	F32BIN(f32_mul, a * b)
	F32BIN(f32_div, a / b)
	F32BIN(f32_min, f32_min(a, b))
	F32BIN(f32_max, f32_max(a, b))
L_f64_abs:
	fp[pc[1]] = U64(2) & 0x7fffffffffffffffull;
	pc += 3;
	NEXT();
L_f64_neg:
	fp[pc[1]] = U64(2) ^ 0x8000000000000000ull;
	pc += 3;
	NEXT();
L_f64_copysign:
	fp[pc[1]] = (U64(2) & 0x7fffffffffffffffull) | (U64(3) & 0x8000000000000000ull);
	pc += 4;
	NEXT();
	F64UN(f64_ceil, isnan(a) ? a + a : ceil(a))
	F64UN(f64_floor, isnan(a) ? a + a : floor(a))
	F64UN(f64_trunc, isnan(a) ? a + a : trunc(a))
	F64UN(f64_nearest, isnan(a) ? a + a : nearbyint(a))
	F64UN(f64_sqrt, sqrt(a))
	F64BIN(f64_add, a + b)
	F64BIN(f64_sub, a - b)
	F64BIN(f64_mul, a * b)
	F64BIN(f64_div, a / b)
	F64BIN(f64_min, f64_min(a, b))
	F64BIN(f64_max, f64_max(a, b))

	/* ---- conversions ---- */
#define TRUNC(name, FT, get, lo_ok, hi_ok, conv)        \
	L_##name: {                                     \
		FT a = get(2);                          \
		if (isnan(a))                           \
			TRAP(msg_conv);                 \
		if (!(lo_ok) || !(hi_ok))               \
			TRAP(msg_overflow);             \
		fp[pc[1]] = conv;                       \
		pc += 3;                                \
		NEXT();                                 \
	}
	TRUNC(i32_trunc_f32_s, float, F32, a >= -2147483648.0f, a < 2147483648.0f,
	      (uint32_t)(int32_t)a)
	TRUNC(i32_trunc_f32_u, float, F32, a > -1.0f, a < 4294967296.0f, (uint32_t)a)
	TRUNC(i32_trunc_f64_s, double, F64, a > -2147483649.0, a < 2147483648.0,
	      (uint32_t)(int32_t)a)
	TRUNC(i32_trunc_f64_u, double, F64, a > -1.0, a < 4294967296.0, (uint32_t)a)
	TRUNC(i64_trunc_f32_s, float, F32, a >= -9223372036854775808.0f,
	      a < 9223372036854775808.0f, (uint64_t)(int64_t)a)
	TRUNC(i64_trunc_f32_u, float, F32, a > -1.0f, a < 18446744073709551616.0f, (uint64_t)a)
	TRUNC(i64_trunc_f64_s, double, F64, a >= -9223372036854775808.0,
	      a < 9223372036854775808.0, (uint64_t)(int64_t)a)
	TRUNC(i64_trunc_f64_u, double, F64, a > -1.0, a < 18446744073709551616.0, (uint64_t)a)
#undef TRUNC
	UN64(i64_extend_i32_s, (int64_t)(int32_t)(uint32_t)a)
	UN64(i64_extend_i32_u, (uint32_t)a)
	UN32(f32_convert_i32_s, f32_bits((float)(int32_t)a))
	UN32(f32_convert_i32_u, f32_bits((float)a))
	UN64(f32_convert_i64_s, f32_bits((float)(int64_t)a))
	UN64(f32_convert_i64_u, f32_bits((float)a))
	UN64(f32_demote_f64, f32_bits((float)f64_of(a)))
	UN32_64(f64_convert_i32_s, f64_bits((double)(int32_t)a))
	UN32_64(f64_convert_i32_u, f64_bits((double)a))
	UN64(f64_convert_i64_s, f64_bits((double)(int64_t)a))
	UN64(f64_convert_i64_u, f64_bits((double)a))
	UN32_64(f64_promote_f32, f64_bits((double)f32_of(a)))
	UN32(i32_extend8_s, (int32_t)(int8_t)a)
	UN32(i32_extend16_s, (int32_t)(int16_t)a)
	UN64(i64_extend8_s, (int64_t)(int8_t)a)
	UN64(i64_extend16_s, (int64_t)(int16_t)a)
	UN64(i64_extend32_s, (int64_t)(int32_t)a)
	UN32(i32_trunc_sat_f32_s, sat_i32(f32_of(a)))
	UN32(i32_trunc_sat_f32_u, sat_u32(f32_of(a)))
	UN64(i32_trunc_sat_f64_s, sat_i32(f64_of(a)))
	UN64(i32_trunc_sat_f64_u, sat_u32(f64_of(a)))
	UN32_64(i64_trunc_sat_f32_s, sat_i64_f32(f32_of(a)))
	UN32_64(i64_trunc_sat_f32_u, sat_u64_f32(f32_of(a)))
	UN64(i64_trunc_sat_f64_s, sat_i64(f64_of(a)))
	UN64(i64_trunc_sat_f64_u, sat_u64(f64_of(a)))

	/* ---- fused compare-and-branch ---- */
#define BR_CMP(label, T, get_a, get_b, cond, next_len, loop)     \
	label: {                                                  \
		T a = get_a, b = get_b;                           \
		if (cond) {                                       \
			if (loop)                                 \
				LOOP_JUMP(3);                     \
			else                                      \
				JUMP(3);                          \
		} else {                                          \
			pc += next_len;                           \
		}                                                 \
		NEXT();                                           \
	}
#define BR32(name, cond)                                                           \
	BR_CMP(L_br_i32_##name, uint32_t, U32(1), U32(2), cond, 4, 0)             \
	BR_CMP(L_br_i32_##name##_imm, uint32_t, U32(1), pc[2], cond, 4, 0)        \
	BR_CMP(L_br_i32_##name##_loop, uint32_t, U32(1), U32(2), cond, 5, 1)      \
	BR_CMP(L_br_i32_##name##_imm_loop, uint32_t, U32(1), pc[2], cond, 5, 1)
#define BR64(name, cond)                                                           \
	BR_CMP(L_br_i64_##name, uint64_t, U64(1), U64(2), cond, 4, 0)             \
	BR_CMP(L_br_i64_##name##_loop, uint64_t, U64(1), U64(2), cond, 5, 1)
#define BR_EQZ(label, cond, loop)                                 \
	label:                                                    \
	if (cond) {                                               \
		if (loop)                                         \
			LOOP_JUMP(2);                             \
		else                                              \
			JUMP(2);                                  \
	} else {                                                  \
		pc += (loop) ? 4 : 3;                             \
	}                                                         \
	NEXT();
	BR32(eq, a == b)
	BR32(ne, a != b)
	BR32(lt_s, (int32_t)a < (int32_t)b)
	BR32(lt_u, a < b)
	BR32(gt_s, (int32_t)a > (int32_t)b)
	BR32(gt_u, a > b)
	BR32(le_s, (int32_t)a <= (int32_t)b)
	BR32(le_u, a <= b)
	BR32(ge_s, (int32_t)a >= (int32_t)b)
	BR32(ge_u, a >= b)
	BR64(eq, a == b)
	BR64(ne, a != b)
	BR64(lt_s, (int64_t)a < (int64_t)b)
	BR64(lt_u, a < b)
	BR64(gt_s, (int64_t)a > (int64_t)b)
	BR64(gt_u, a > b)
	BR64(le_s, (int64_t)a <= (int64_t)b)
	BR64(le_u, a <= b)
	BR64(ge_s, (int64_t)a >= (int64_t)b)
	BR64(ge_u, a >= b)
	BR_EQZ(L_br_i32_eqz, !U32(1), 0)
	BR_EQZ(L_br_i32_nez, U32(1), 0)
	BR_EQZ(L_br_i64_eqz, !U64(1), 0)
	BR_EQZ(L_br_i64_nez, U64(1), 0)
	BR_EQZ(L_br_i32_eqz_loop, !U32(1), 1)
	BR_EQZ(L_br_i32_nez_loop, U32(1), 1)
	BR_EQZ(L_br_i64_eqz_loop, !U64(1), 1)
	BR_EQZ(L_br_i64_nez_loop, U64(1), 1)

out_of_fuel:
	if (fuel < 0) {
		fuel = 0;
		rc = err_set(err, ERR_WASM_EXHAUSTED, "fuel exhausted");
	} else {
		rc = err_set(err, ERR_WASM_EXHAUSTED, "interrupted");
	}
	goto fail;
trap:
	if (trap_msg == msg_uninit)
		rc = err_set(err, ERR_WASM_TRAP, "%s %u", trap_msg, trap_idx);
	else
		rc = err_set(err, ERR_WASM_TRAP, "%s", trap_msg);
fail:
	S->depth = depth0;
	S->fuel = fuel;
	return rc;
done:
	S->depth = depth0;
	S->fuel = fuel;
	return ERR_OK;
#undef NEXT
#undef TRAP
#undef LOAD_MEM
}

enum err_code wasm_exec(struct wasm_store *s, struct wasm_func *f, size_t base, struct err *err)
{
	s->run_pc = NULL;
	s->run_cur = NULL;
	return run(s, f, base, err, NULL);
}

enum err_code wasm_exec_resume(struct wasm_store *s, struct err *err)
{
	/* a function of one instruction, return; its call records the parked
	 * position (pc, frame, function) as the caller's frame */
	uint32_t ret = (uint32_t)wasm_exec_handlers()[OP_ret0];
	struct wasm_code code = {.ops = &ret, .nops = 1};
	struct wasm_func back = {.code = &code, .store = s};
	s->run_pc = s->susp.pc;
	s->run_cur = s->susp.cur;
	s->depth = s->susp.depth;
	return run(s, &back, s->susp.fp, err, NULL);
}

const int32_t *wasm_exec_handlers(void)
{
	const int32_t *t = NULL;
	run(NULL, NULL, 0, NULL, &t);
	return t;
}
