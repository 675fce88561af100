/* wasm_int.h - private structures shared by the engine's files (src/wasm/ only).
 *
 * The engine is split by phase, like wasm3:
 *   wasm_decode.c    binary format -> struct wasm_module (syntax only)
 *   wasm_valid.c     module-level validation (indices, limits, constant exprs)
 *   wasm_compile.c   per function: validation + translation to internal code
 *   wasm_exec.c      the interpreter (direct threading with computed goto)
 *   wasm_runtime.c   stores, objects, instantiation, the host API
 *   wasm_module.c    wasm_module_new and module introspection
 *
 * Internal code ("ops"): a function body becomes an array of uint32_t cells.
 * Each instruction starts with a handler offset (relative to a base label of
 * the interpreter loop) followed by fixed operands, most of them frame-slot
 * indices. A frame is a flat array of 64-bit slots: parameters, locals, the
 * function's constants (copied in on entry, so constant operands are plain
 * slot reads), then one slot per operand-stack position (positions are
 * static after validation). Jump operands are signed offsets relative to the cell that
 * holds them. A branch back to a loop's start (a "_loop" variant) also
 * carries the fuel charge of one iteration of that loop. Loads and stores
 * whose address is an i32.add of two slots ("_aa") or of a slot and an
 * immediate ("_ai") do the addition themselves (wrapping at 32 bits).
 *
 * Values in slots: i32/f32 in the low 32 bits (readers always truncate, so
 * the upper bits are don't-care), i64/f64 in all 64 bits, references as a
 * pointer (struct wasm_func * or the host's externref), 0 for null.
 */
#ifndef THEATER_WASM_INT_H
#define THEATER_WASM_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/wasm/wasm.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the wasm engine assumes a little-endian host"
#endif

#define WASM_PAGE_SIZE 65536u
#define WASM_MAX_PAGES 65536u
#define WASM_MAX_MODULE_BYTES (64u << 20)
/* Implementation limits (close to what browsers accept). */
#define WASM_MAX_LOCALS 50000u
#define WASM_MAX_BODY_STACK 100000u
#define WASM_DEFAULT_CALL_DEPTH 10000u
#define WASM_DEFAULT_STACK_BYTES (1u << 20)
#define WASM_DEFAULT_TABLE_ELEMS 10000000u
#define WASM_NONE UINT32_MAX

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- types ---- */

/* A function type: params then results in one array. */
struct wasm_ftype {
	uint32_t np, nr;
	enum wasm_valtype *v; /* np + nr entries; NULL when both are 0 */
	uint32_t hash;
};

bool wasm_ftype_eq(const struct wasm_ftype *a, const struct wasm_ftype *b);
uint32_t wasm_ftype_hash(const struct wasm_ftype *t);

struct wasm_table_type {
	enum wasm_valtype elem;
	struct wasm_limits_type lim;
};

struct wasm_global_type {
	enum wasm_valtype type;
	bool mut;
};

/* A constant expression: the byte range as decoded, and after validation
 * the single instruction it consists of. */
enum wasm_cexpr_op {
	CEXPR_CONST = 1, /* val holds the bits */
	CEXPR_REF_NULL,
	CEXPR_REF_FUNC,  /* val is the function index */
	CEXPR_GLOBAL_GET /* val is the global index */
};

struct wasm_cexpr {
	uint32_t start, end; /* offsets into module bytes, end excludes 'end' */
	uint8_t op;
	uint64_t val;
};

/* ---- module ---- */

struct wasm_mimport {
	const char *module, *name; /* NUL-terminated copies in the string pool */
	uint32_t module_len, name_len;
	enum wasm_extern_kind kind;
	uint32_t index; /* index in the kind's space (function/table/... index) */
	uint32_t type;  /* FUNC: type index */
};

struct wasm_mexport {
	const char *name;
	uint32_t name_len;
	enum wasm_extern_kind kind;
	uint32_t index;
};

enum wasm_seg_mode { SEG_ACTIVE, SEG_PASSIVE, SEG_DECLARATIVE };

struct wasm_elem_seg {
	uint8_t mode;
	enum wasm_valtype type;
	uint32_t table;
	struct wasm_cexpr offset;
	uint32_t count;
	struct wasm_cexpr *items;
};

struct wasm_data_seg {
	uint8_t mode;
	uint32_t mem;
	struct wasm_cexpr offset;
	uint32_t start, len; /* bytes in module bytes */
};

/* A defined function's code: the body's byte range and, after compilation,
 * its internal code. */
struct wasm_code {
	uint32_t body_start, body_end; /* locals declarations + expression */
	uint32_t type;                 /* type index */
	uint32_t *ops;
	uint32_t nops;
	uint32_t nparams;
	uint32_t nlocals;     /* locals beyond parameters */
	uint64_t *init;       /* what a call puts after the params: zeroed locals, constants */
	uint32_t ninit;
	uint32_t frame_slots; /* params + locals + constants + operand stack */
	uint32_t fuel;        /* charged on entry */
	uint32_t nresults;
};

struct wasm_module {
	atomic_uint refs;
	uint8_t *bytes;
	size_t len;
	char *strpool;
	size_t footprint;

	uint32_t ntypes;
	struct wasm_ftype *types;
	uint32_t *type_canon; /* type index -> first structurally equal index */

	uint32_t nimports;
	struct wasm_mimport *imports;

	uint32_t nfuncs, nfunc_imports;
	uint32_t *func_type; /* type index of each function */
	struct wasm_code *codes; /* nfuncs - nfunc_imports */
	uint32_t ncodes;         /* as declared by the code section */

	uint32_t ntables, ntable_imports;
	struct wasm_table_type *tables;

	uint32_t nmems, nmem_imports;
	struct wasm_limits_type *mems;

	uint32_t nglobals, nglobal_imports;
	struct wasm_global_type *globals;
	struct wasm_cexpr *global_init; /* nglobals - nglobal_imports */

	uint32_t nexports;
	struct wasm_mexport *exports;
	uint32_t *export_order; /* export indices sorted by name */

	bool has_start;
	uint32_t start;

	uint32_t nelems;
	struct wasm_elem_seg *elems;

	uint32_t ndatas;
	struct wasm_data_seg *datas;
	bool has_datacount;
	uint32_t datacount;

	uint8_t *func_refd; /* per function: 1 if it may be referenced by ref.func */
};

/* Phases of wasm_module_new. Each fills its part of m and returns ERR_OK or
 * the error with the spec's message in err. */
enum err_code wasm_decode(struct wasm_module *m, struct err *err);
enum err_code wasm_validate(struct wasm_module *m, struct err *err);
/* Validates and translates every body (their encoding was checked by
 * wasm_decode). */
enum err_code wasm_compile_all(struct wasm_module *m, struct err *err);
void wasm_module_release_code(struct wasm_module *m);

/* Byte reader over module bytes; reads are bounded by the end of the module
 * (sizes of sections and bodies are checked after parsing them, as the spec's
 * reference decoder does). */
struct wasm_reader {
	const uint8_t *base;
	size_t pos, end;
};

enum err_code wasm_rd_byte(struct wasm_reader *r, uint8_t *out, struct err *err);
enum err_code wasm_rd_u32(struct wasm_reader *r, uint32_t *out, struct err *err);
enum err_code wasm_rd_s32(struct wasm_reader *r, int32_t *out, struct err *err);
enum err_code wasm_rd_s33(struct wasm_reader *r, int64_t *out, struct err *err);
enum err_code wasm_rd_s64(struct wasm_reader *r, int64_t *out, struct err *err);
enum err_code wasm_rd_fixed(struct wasm_reader *r, void *out, size_t n, struct err *err);
/* Decodes (without validating) an expression up to and including its final
 * 'end', checking only the encoding, as the reference decoder does. Sets
 * *uses_data when it meets memory.init or data.drop. */
enum err_code wasm_skim_expr(struct wasm_reader *r, bool *uses_data, struct err *err);
/* Reads a block type: *out is a type index (>= 0), or -0x40 for the empty
 * type, or -(valtype byte) for a single result. */
/* Reads a body's locals declarations; *total is their count. */
enum err_code wasm_rd_locals(struct wasm_reader *r, uint64_t *total, struct err *err);
enum err_code wasm_rd_blocktype(struct wasm_reader *r, int64_t *out, struct err *err);
enum err_code wasm_rd_valtype(struct wasm_reader *r, enum wasm_valtype *out, struct err *err);
enum err_code wasm_rd_reftype(struct wasm_reader *r, enum wasm_valtype *out, struct err *err);
enum err_code wasm_err_eof(struct err *err);

/* ---- runtime objects ---- */

struct wasm_instance;

struct wasm_func {
	const struct wasm_ftype *type;
	struct wasm_instance *inst; /* NULL for host functions */
	const struct wasm_code *code;
	wasm_host_fn host;
	void *user;
	struct wasm_store *store;
	struct wasm_ftype own_type; /* host functions own their type */
	struct wasm_func *next;     /* store list (host functions only) */
};

struct wasm_global {
	uint64_t val;
	enum wasm_valtype type;
	bool mut;
	struct wasm_store *store;
	struct wasm_global *next;
};

struct wasm_table {
	void **elems;
	uint32_t size, cap;
	uint32_t max; /* effective maximum (type max, store cap) */
	struct wasm_limits_type type_lim;
	enum wasm_valtype type;
	struct wasm_store *store;
	struct wasm_table *next;
};

struct wasm_memory {
	uint8_t *data;
	uint64_t size;  /* bytes */
	uint32_t pages; /* size / 64 KiB */
	struct wasm_limits_type type_lim;
	struct wasm_store *store;
	struct wasm_memory *next;
};

struct wasm_elem_inst {
	uint32_t n;
	void **refs;
};

struct wasm_instance {
	struct wasm_store *store;
	struct wasm_module *mod;
	struct wasm_func **funcs;
	struct wasm_func *own_funcs;
	struct wasm_global **globals;
	struct wasm_table **tables;
	struct wasm_memory **mems;
	struct wasm_memory *mem0;
	struct wasm_elem_inst *elems;
	uint8_t *data_dropped;
	struct wasm_instance *next;
};

struct wasm_frame {
	const uint32_t *pc;     /* where to resume the caller; NULL ends a run */
	uint32_t fp;            /* caller's frame, as a slot offset in the stack */
	struct wasm_func *func; /* caller */
};

/* A parked call (see wasm_store_resume): where its outermost run stopped
 * (only the outermost parks, so its frames start at 0). The frames
 * [0, depth) and the value stack below res + results stay in the store
 * untouched while it is suspended. */
struct wasm_suspension {
	struct wasm_func *entry; /* what the outermost wasm_func_call called */
	struct wasm_func *host;  /* the host function that suspended */
	struct wasm_func *cur;   /* the wasm function that called it; NULL: entry is host */
	const uint32_t *pc;      /* after the call instruction */
	void *token;             /* the host's */
	size_t base;             /* entry's arguments and results */
	size_t res;              /* host's arguments and results */
	size_t fp;               /* cur's frame */
	uint32_t depth;          /* frames in use */
};

struct wasm_store {
	struct wasm_store_limits lim; /* with defaults resolved */
	uint64_t *stack;
	size_t stack_cap; /* slots */
	size_t stack_max; /* slots */
	size_t sp;        /* first free slot for a new run (host re-entry) */
	struct wasm_frame *frames;
	uint32_t frames_cap;
	uint32_t depth;
	uint32_t nesting; /* wasm_func_call nesting */
	/* where the run that makes a host call stands (set before each; at
	 * the start of a run: NULL, or the parked position to resume) */
	const uint32_t *run_pc;
	struct wasm_func *run_cur; /* NULL: wasm_func_call called the host function */
	size_t run_fp;
	int64_t fuel;     /* remaining in the outermost call */
	uint64_t fuel_budget;
	uint64_t fuel_last, fuel_total;
	uint64_t fuel_counted; /* of the current call, already in fuel_total */
	atomic_int interrupt;
	bool suspended;
	uint32_t no_suspend; /* > 0 while running a start function */
	struct wasm_suspension susp;

	struct wasm_instance *instances;
	struct wasm_func *host_funcs;
	struct wasm_global *globals;
	struct wasm_table *tables;
	struct wasm_memory *memories;
	size_t obj_bytes;
};

struct wasm_caller {
	struct wasm_store *store;
	struct wasm_instance *inst;
	bool suspend; /* wasm_caller_suspend granted */
	void *token;
};

/* Runs f with its arguments in s->stack[base..]; results end up there too.
 * ERR_WASM_SUSPEND: a host call suspended; s->susp says where. */
enum err_code wasm_exec(struct wasm_store *s, struct wasm_func *f, size_t base, struct err *err);
/* Continues the run recorded in s->susp (the host's results already in
 * place; the outermost run, at nesting 1); returns as wasm_exec. */
enum err_code wasm_exec_resume(struct wasm_store *s, struct err *err);
/* Handler offsets for each internal op, relative to the interpreter's base. */
const int32_t *wasm_exec_handlers(void);
/* Makes sure the value stack has `slots` slots; ERR_WASM_EXHAUSTED past max. */
enum err_code wasm_stack_reserve(struct wasm_store *s, size_t slots, struct err *err);
enum err_code wasm_frames_reserve(struct wasm_store *s, uint32_t n, struct err *err);
/* Calls a host function with its arguments in s->stack[off..], where its
 * results are written too (an offset: the host may re-enter and grow the
 * stack). The caller sets s->run_* and s->depth first. ERR_WASM_SUSPEND:
 * the host suspended, s->susp says where. */
enum err_code wasm_call_host(struct wasm_store *s, struct wasm_func *f, struct wasm_instance *caller,
			     size_t off, struct err *err);
int64_t wasm_memory_grow_pages(struct wasm_memory *m, uint32_t delta);
int64_t wasm_table_grow_elems(struct wasm_table *t, uint32_t delta, void *init);

/* ---- internal opcodes ---- */

#define WASM_OPS(X)                                                                        \
	X(unreachable) X(nop) X(br) X(br_if) X(br_unless) X(br_table)                        \
	X(ret0) X(ret1) X(retn) X(call) X(call_indirect) X(copy) X(const32) X(const64)       \
	X(select) X(global_get) X(global_set) X(table_get) X(table_set) X(table_size)         \
	X(table_grow) X(table_fill) X(table_copy) X(table_init) X(elem_drop) X(ref_func)      \
	X(ref_is_null) X(memory_size) X(memory_grow) X(memory_init) X(data_drop)              \
	X(memory_copy) X(memory_fill)                                                        \
	X(load32) X(load64) X(load8_u) X(load16_u) X(i32_load8_s) X(i32_load16_s)            \
	X(i64_load8_s) X(i64_load16_s) X(i64_load32_s)                                       \
	X(store8) X(store16) X(store32) X(store64)                                           \
	X(i32_eqz) X(i32_eq) X(i32_ne) X(i32_lt_s) X(i32_lt_u) X(i32_gt_s) X(i32_gt_u)        \
	X(i32_le_s) X(i32_le_u) X(i32_ge_s) X(i32_ge_u)                                      \
	X(i64_eqz) X(i64_eq) X(i64_ne) X(i64_lt_s) X(i64_lt_u) X(i64_gt_s) X(i64_gt_u)        \
	X(i64_le_s) X(i64_le_u) X(i64_ge_s) X(i64_ge_u)                                      \
	X(f32_eq) X(f32_ne) X(f32_lt) X(f32_gt) X(f32_le) X(f32_ge)                          \
	X(f64_eq) X(f64_ne) X(f64_lt) X(f64_gt) X(f64_le) X(f64_ge)                          \
	X(i32_clz) X(i32_ctz) X(i32_popcnt) X(i32_add) X(i32_sub) X(i32_mul) X(i32_div_s)     \
	X(i32_div_u) X(i32_rem_s) X(i32_rem_u) X(i32_and) X(i32_or) X(i32_xor) X(i32_shl)     \
	X(i32_shr_s) X(i32_shr_u) X(i32_rotl) X(i32_rotr)                                    \
	X(i64_clz) X(i64_ctz) X(i64_popcnt) X(i64_add) X(i64_sub) X(i64_mul) X(i64_div_s)     \
	X(i64_div_u) X(i64_rem_s) X(i64_rem_u) X(i64_and) X(i64_or) X(i64_xor) X(i64_shl)     \
	X(i64_shr_s) X(i64_shr_u) X(i64_rotl) X(i64_rotr)                                    \
	X(f32_abs) X(f32_neg) X(f32_ceil) X(f32_floor) X(f32_trunc) X(f32_nearest)           \
	X(f32_sqrt) X(f32_add) X(f32_sub) X(f32_mul) X(f32_div) X(f32_min) X(f32_max)         \
	X(f32_copysign)                                                                      \
	X(f64_abs) X(f64_neg) X(f64_ceil) X(f64_floor) X(f64_trunc) X(f64_nearest)           \
	X(f64_sqrt) X(f64_add) X(f64_sub) X(f64_mul) X(f64_div) X(f64_min) X(f64_max)         \
	X(f64_copysign)                                                                      \
	X(i32_trunc_f32_s) X(i32_trunc_f32_u) X(i32_trunc_f64_s) X(i32_trunc_f64_u)          \
	X(i64_extend_i32_s) X(i64_extend_i32_u) X(i64_trunc_f32_s) X(i64_trunc_f32_u)        \
	X(i64_trunc_f64_s) X(i64_trunc_f64_u) X(f32_convert_i32_s) X(f32_convert_i32_u)      \
	X(f32_convert_i64_s) X(f32_convert_i64_u) X(f32_demote_f64) X(f64_convert_i32_s)     \
	X(f64_convert_i32_u) X(f64_convert_i64_s) X(f64_convert_i64_u) X(f64_promote_f32)    \
	X(i32_extend8_s) X(i32_extend16_s) X(i64_extend8_s) X(i64_extend16_s)                \
	X(i64_extend32_s)                                                                    \
	X(i32_trunc_sat_f32_s) X(i32_trunc_sat_f32_u) X(i32_trunc_sat_f64_s)                 \
	X(i32_trunc_sat_f64_u) X(i64_trunc_sat_f32_s) X(i64_trunc_sat_f32_u)                 \
	X(i64_trunc_sat_f64_s) X(i64_trunc_sat_f64_u)                                        \
	X(i32_add_imm) X(i32_sub_imm) X(i32_mul_imm) X(i32_and_imm) X(i32_or_imm)            \
	X(i32_xor_imm) X(i32_shl_imm) X(i32_shr_s_imm) X(i32_shr_u_imm)                      \
	X(i64_add_imm) X(i64_sub_imm) X(i64_mul_imm) X(i64_and_imm) X(i64_or_imm)            \
	X(i64_xor_imm) X(i64_shl_imm) X(i64_shr_s_imm) X(i64_shr_u_imm)                      \
	X(i32_eq_imm) X(i32_ne_imm) X(i32_lt_s_imm) X(i32_lt_u_imm) X(i32_gt_s_imm)          \
	X(i32_gt_u_imm) X(i32_le_s_imm) X(i32_le_u_imm) X(i32_ge_s_imm) X(i32_ge_u_imm)      \
	X(br_i32_eqz) X(br_i32_nez) X(br_i32_eq) X(br_i32_ne) X(br_i32_lt_s) X(br_i32_lt_u)  \
	X(br_i32_gt_s) X(br_i32_gt_u) X(br_i32_le_s) X(br_i32_le_u) X(br_i32_ge_s)           \
	X(br_i32_ge_u)                                                                       \
	X(br_i32_eq_imm) X(br_i32_ne_imm) X(br_i32_lt_s_imm) X(br_i32_lt_u_imm)              \
	X(br_i32_gt_s_imm) X(br_i32_gt_u_imm) X(br_i32_le_s_imm) X(br_i32_le_u_imm)          \
	X(br_i32_ge_s_imm) X(br_i32_ge_u_imm)                                                \
	X(br_i64_eqz) X(br_i64_nez) X(br_i64_eq) X(br_i64_ne) X(br_i64_lt_s) X(br_i64_lt_u)  \
	X(br_i64_gt_s) X(br_i64_gt_u) X(br_i64_le_s) X(br_i64_le_u) X(br_i64_ge_s)           \
	X(br_i64_ge_u)                                                                       \
	X(load32_ai) X(load64_ai) X(load8_u_ai) X(load16_u_ai) X(i32_load8_s_ai)             \
	X(i32_load16_s_ai) X(i64_load8_s_ai) X(i64_load16_s_ai) X(i64_load32_s_ai)           \
	X(load32_aa) X(load64_aa) X(load8_u_aa) X(load16_u_aa) X(i32_load8_s_aa)             \
	X(i32_load16_s_aa) X(i64_load8_s_aa) X(i64_load16_s_aa) X(i64_load32_s_aa)           \
	X(store8_ai) X(store16_ai) X(store32_ai) X(store64_ai)                               \
	X(store8_aa) X(store16_aa) X(store32_aa) X(store64_aa)                               \
	X(br_loop) X(br_if_loop) X(br_i32_eqz_loop) X(br_i32_nez_loop) X(br_i64_eqz_loop)    \
	X(br_i64_nez_loop)                                                                   \
	X(br_i32_eq_loop) X(br_i32_ne_loop) X(br_i32_lt_s_loop) X(br_i32_lt_u_loop)          \
	X(br_i32_gt_s_loop) X(br_i32_gt_u_loop) X(br_i32_le_s_loop) X(br_i32_le_u_loop)      \
	X(br_i32_ge_s_loop) X(br_i32_ge_u_loop)                                              \
	X(br_i32_eq_imm_loop) X(br_i32_ne_imm_loop) X(br_i32_lt_s_imm_loop)                  \
	X(br_i32_lt_u_imm_loop) X(br_i32_gt_s_imm_loop) X(br_i32_gt_u_imm_loop)              \
	X(br_i32_le_s_imm_loop) X(br_i32_le_u_imm_loop) X(br_i32_ge_s_imm_loop)              \
	X(br_i32_ge_u_imm_loop)                                                              \
	X(br_i64_eq_loop) X(br_i64_ne_loop) X(br_i64_lt_s_loop) X(br_i64_lt_u_loop)          \
	X(br_i64_gt_s_loop) X(br_i64_gt_u_loop) X(br_i64_le_s_loop) X(br_i64_le_u_loop)      \
	X(br_i64_ge_s_loop) X(br_i64_ge_u_loop)

enum wasm_op {
#define WASM_OP_ENUM(name) OP_##name,
	WASM_OPS(WASM_OP_ENUM)
#undef WASM_OP_ENUM
	OP__COUNT
};

#endif
