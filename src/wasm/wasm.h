/* wasm.h - the public API of theater's WebAssembly engine.
 *
 * A WebAssembly 2.0 core engine (no SIMD) with no knowledge of actors, HTTP or
 * JSON. Shaped for a supervisor that runs many small instances of few modules:
 *
 *   module    decoded, validated and translated once; immutable; shared by any
 *             number of instances on any threads (atomic reference count).
 *   store     owns every runtime object (instances, functions, globals, tables,
 *             memories) created in it, and the execution limits and fuel. One
 *             thread at a time uses a store; objects of different stores never
 *             link. Freeing the store frees everything in it.
 *   extern    a typed handle to a function, global, table or memory: what an
 *             instance exports and what instantiation imports.
 *
 * Errors use the project's codes (src/util/err.h): ERR_WASM_MALFORMED and
 * ERR_WASM_INVALID at load (message: the spec's text, e.g. "unexpected end",
 * "type mismatch"), ERR_WASM_LINK at instantiation ("unknown import",
 * "incompatible import type"), ERR_WASM_TRAP while running (message: the
 * spec's trap text, e.g. "integer divide by zero", "out of bounds memory
 * access", "undefined element", "indirect call type mismatch", "unreachable"),
 * ERR_WASM_EXHAUSTED when a limit stops execution ("call stack exhausted",
 * "fuel exhausted", "interrupted"), ERR_WASM_SUSPEND when a host function
 * parked the call (see wasm_store_resume). ERR_NOMEM when allocation fails.
 * A trap or exhausted limit leaves the store usable for further calls.
 *
 * Threads: wasm_module_* are thread-safe. Everything taking a store (or an
 * object in it) must be called by one thread at a time, except
 * wasm_store_interrupt, which any thread may call at any time.
 */
#ifndef THEATER_WASM_H
#define THEATER_WASM_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

/* ---- values and types ---- */

enum wasm_valtype {
	WASM_I32 = 0x7F,
	WASM_I64 = 0x7E,
	WASM_F32 = 0x7D,
	WASM_F64 = 0x7C,
	WASM_FUNCREF = 0x70,
	WASM_EXTERNREF = 0x6F,
};

struct wasm_func;
struct wasm_global;
struct wasm_table;
struct wasm_memory;

/* Floats are carried as bit patterns so NaN payloads survive exactly. */
struct wasm_value {
	enum wasm_valtype type;
	union {
		uint32_t i32;
		uint64_t i64;
		uint32_t f32;        /* IEEE-754 bits */
		uint64_t f64;        /* IEEE-754 bits */
		struct wasm_func *funcref;  /* NULL is ref.null func */
		void *externref;            /* NULL is ref.null extern; else host-defined */
	} of;
};

#define WASM_MAX_PARAMS 1000
#define WASM_MAX_RESULTS 1000

/* A function type; the arrays are owned by whoever owns the struct. */
struct wasm_functype {
	uint32_t nparams;
	uint32_t nresults;
	const enum wasm_valtype *params;
	const enum wasm_valtype *results;
};

enum wasm_extern_kind {
	WASM_EXTERN_FUNC = 0,
	WASM_EXTERN_TABLE = 1,
	WASM_EXTERN_MEMORY = 2,
	WASM_EXTERN_GLOBAL = 3,
};

struct wasm_extern {
	enum wasm_extern_kind kind;
	union {
		struct wasm_func *func;
		struct wasm_table *table;
		struct wasm_memory *memory;
		struct wasm_global *global;
	} of;
};

struct wasm_limits_type {
	uint32_t min;
	uint32_t max;
	int has_max;
};

/* What a module imports or exports, as described by the module. */
struct wasm_import_desc {
	const char *module;          /* borrowed from the module */
	const char *name;            /* borrowed from the module */
	size_t module_len, name_len; /* names may hold NUL bytes */
	enum wasm_extern_kind kind;
	struct wasm_functype func;                       /* kind == FUNC */
	struct { enum wasm_valtype elem; struct wasm_limits_type limits; } table;
	struct wasm_limits_type memory;                  /* in pages */
	struct { enum wasm_valtype type; int mutable_; } global;
};

struct wasm_export_desc {
	const char *name;            /* borrowed from the module */
	size_t name_len;
	enum wasm_extern_kind kind;
	uint32_t index;
};

/* ---- modules ---- */

struct wasm_module;

/* Decodes, validates and translates `len` bytes (copied; the caller keeps
 * bytes). Modules larger than 64 MiB are refused with ERR_TOO_LARGE.
 * Implementation limits beyond the spec's (ERR_WASM_INVALID): 50000 locals
 * per function, an operand stack of 100000 values, and translated code of
 * at most 32 cells per byte of body; frames larger than the store's stack
 * fail at call time with "call stack exhausted". */
enum err_code wasm_module_new(const uint8_t *bytes, size_t len,
			      struct wasm_module **out, struct err *err);
/* Adds a reference; returns m. */
struct wasm_module *wasm_module_ref(struct wasm_module *m);
/* Drops a reference; the last one frees. Accepts NULL. */
void wasm_module_free(struct wasm_module *m);

size_t wasm_module_import_count(const struct wasm_module *m);
void wasm_module_import(const struct wasm_module *m, size_t i, struct wasm_import_desc *out);
size_t wasm_module_export_count(const struct wasm_module *m);
void wasm_module_export(const struct wasm_module *m, size_t i, struct wasm_export_desc *out);
/* Bytes of memory the module's decoded and translated form occupies. */
size_t wasm_module_footprint(const struct wasm_module *m);

/* ---- stores and limits ---- */

/* Fuel counts wasm instructions. It is charged per straight-line stretch
 * (on function entry and on each branch back to a loop's start, for the
 * instructions of one pass), so a count may exceed what actually ran by the
 * instructions of skipped branches; bulk memory operations also cost one
 * unit per 16 bytes, bulk table operations one per element. The interrupt
 * flag is checked at the same points. */
struct wasm_store_limits {
	uint64_t fuel;             /* instructions per wasm_func_call; 0 = unlimited */
	uint32_t max_call_depth;   /* 0 = default (10000) */
	uint32_t max_stack_bytes;  /* value stack + frames; 0 = default (1 MiB) */
	uint32_t max_memory_pages; /* cap on any memory's size; 0 = 65536 (4 GiB) */
	uint32_t max_table_elems;  /* cap on table growth; 0 = 10,000,000 */
};

struct wasm_store;

enum err_code wasm_store_new(const struct wasm_store_limits *limits,
			     struct wasm_store **out, struct err *err);
void wasm_store_free(struct wasm_store *s);
/* Replaces the limits; takes effect on the next call. */
void wasm_store_set_limits(struct wasm_store *s, const struct wasm_store_limits *limits);
/* Fuel consumed by the last wasm_func_call (with its resumptions so far),
 * and since the store was made. */
uint64_t wasm_store_fuel_used_last(const struct wasm_store *s);
uint64_t wasm_store_fuel_used_total(const struct wasm_store *s);
/* Any thread: makes the running call (or the next one) stop soon with
 * ERR_WASM_EXHAUSTED "interrupted". Cleared when that call returns. On a
 * suspended store: the next resume returns "interrupted". */
void wasm_store_interrupt(struct wasm_store *s);
/* Bytes the store's objects occupy (memories, tables, globals, stacks).
 * Memories count at their full size, although pages never touched cost no
 * RAM (they are anonymous mappings). */
size_t wasm_store_footprint(const struct wasm_store *s);

/* ---- host objects ---- */

struct wasm_caller;   /* what a host function may touch of its caller */

/* A host function: reads args, writes results (types as declared), returns
 * ERR_OK, or a trap: err_set(err, ERR_WASM_TRAP, "...") and return it. */
typedef enum err_code (*wasm_host_fn)(struct wasm_caller *caller, void *user,
				      const struct wasm_value *args,
				      struct wasm_value *results, struct err *err);

/* The calling instance's memory 0 (NULL if it has none). */
struct wasm_memory *wasm_caller_memory(struct wasm_caller *caller);
/* The calling instance's export by name (ERR_NOT_FOUND if absent). */
enum err_code wasm_caller_export(struct wasm_caller *caller, const char *name,
				 struct wasm_extern *out);
struct wasm_store *wasm_caller_store(struct wasm_caller *caller);

/* The type is copied. */
enum err_code wasm_func_new_host(struct wasm_store *s, const struct wasm_functype *type,
				 wasm_host_fn fn, void *user, struct wasm_func **out,
				 struct err *err);
enum err_code wasm_global_new(struct wasm_store *s, struct wasm_value init, int mutable_,
			      struct wasm_global **out, struct err *err);
enum err_code wasm_table_new(struct wasm_store *s, enum wasm_valtype elem,
			     struct wasm_limits_type limits, struct wasm_table **out,
			     struct err *err);
enum err_code wasm_memory_new(struct wasm_store *s, struct wasm_limits_type pages,
			      struct wasm_memory **out, struct err *err);

/* ---- instances ---- */

struct wasm_instance;

/* Instantiates m in s. imports[i] satisfies the module's import i, in order;
 * a kind or type mismatch is ERR_WASM_LINK "incompatible import type". Runs
 * element and data segments and the start function; a trap there returns
 * ERR_WASM_TRAP (the instance is not returned, but effects on imported
 * objects remain, as the spec says). Fuel and limits of s apply to start.
 * A memory or table whose minimum exceeds the store's cap is ERR_TOO_LARGE.
 * The instance belongs to s and lives until wasm_store_free. */
enum err_code wasm_instance_new(struct wasm_store *s, struct wasm_module *m,
				const struct wasm_extern *imports, size_t nimports,
				struct wasm_instance **out, struct err *err);
/* Looks up an export by name (ERR_NOT_FOUND if absent). */
enum err_code wasm_instance_export(struct wasm_instance *inst, const char *name,
				   struct wasm_extern *out);
/* The same for a name of `len` bytes that may hold NUL bytes. */
enum err_code wasm_instance_export_n(struct wasm_instance *inst, const char *name, size_t len,
				     struct wasm_extern *out);
struct wasm_memory *wasm_instance_memory(struct wasm_instance *inst, uint32_t index);

/* A convenience for embedders that link by name: resolves each import of m
 * with `resolve(user, module, name, desc, out)`; returning non-zero makes the
 * instantiation fail with ERR_WASM_LINK "unknown import". */
typedef int (*wasm_import_resolver)(void *user, const struct wasm_import_desc *desc,
				    struct wasm_extern *out);
enum err_code wasm_instance_new_resolved(struct wasm_store *s, struct wasm_module *m,
					 wasm_import_resolver resolve, void *user,
					 struct wasm_instance **out, struct err *err);

/* ---- calls, globals, tables, memories ---- */

void wasm_func_type(const struct wasm_func *f, struct wasm_functype *out);  /* borrowed arrays */
/* Calls f. nargs/nresults must match its type (ERR_INVALID otherwise); arg types
 * are checked. Fuel is reset to the store's budget at the start of each
 * outermost call. A host function may call back into the same store (up to
 * 128 nested calls; wasm-to-wasm calls do not use the C stack and are
 * bounded by max_call_depth and max_stack_bytes instead). ERR_WASM_SUSPEND:
 * a host function parked the call (see "suspended calls" below). */
enum err_code wasm_func_call(struct wasm_store *s, struct wasm_func *f,
			     const struct wasm_value *args, size_t nargs,
			     struct wasm_value *results, size_t nresults, struct err *err);

struct wasm_value wasm_global_get(const struct wasm_global *g);
/* ERR_CONFLICT if immutable, ERR_INVALID on type mismatch. */
enum err_code wasm_global_set(struct wasm_global *g, struct wasm_value v);
void wasm_global_type(const struct wasm_global *g, enum wasm_valtype *type, int *mutable_);

uint32_t wasm_table_size(const struct wasm_table *t);
enum err_code wasm_table_get(const struct wasm_table *t, uint32_t i, struct wasm_value *out);

/* Pointer and size are valid until the next call into the store (memory.grow
 * may move it). */
uint8_t *wasm_memory_data(struct wasm_memory *m);
/* From now on, freeing a memory leaves its mapping to the process's exit: for a
 * server about to end with 100,000 instances, where each munmap would flush the
 * TLB of every other core. Process-wide, irreversible; any thread. */
void wasm_memory_keep_at_exit(void);
uint64_t wasm_memory_size(const struct wasm_memory *m);   /* bytes */
/* Bounds-checked copies for host functions; ERR_WASM_TRAP "out of bounds
 * memory access" when [offset, offset+len) is not inside the memory (computed
 * without overflow). */
enum err_code wasm_memory_read(struct wasm_memory *m, uint64_t offset, void *dst,
			       size_t len, struct err *err);
enum err_code wasm_memory_write(struct wasm_memory *m, uint64_t offset, const void *src,
				size_t len, struct err *err);
/* Grows by delta pages, within the type's max and the store's page cap;
 * returns the old size in pages or -1 (like memory.grow). */
int64_t wasm_memory_grow(struct wasm_memory *m, uint32_t delta);

/* ---- suspended (parked) calls ----
 *
 * A host function that must wait (for an HTTP answer, a reply, a timer) can
 * park the whole call instead of blocking its thread: it calls
 * wasm_caller_suspend and returns what that returns (ERR_WASM_SUSPEND). Its
 * results are not written. The wasm frames, operand stacks and program
 * counters stay in the store, and the outermost wasm_func_call returns
 * ERR_WASM_SUSPEND (err: "call suspended"). The store is then suspended
 * until one of:
 *
 *   wasm_store_resume   gives the host function's results and runs on, until
 *                       the call returns (ERR_OK and the call's results),
 *                       traps, exhausts a limit, or suspends again;
 *   wasm_store_resume_call  the same, the results made by a host callback
 *                       that runs as the rest of the host function (it may
 *                       call back into wasm, e.g. to allocate guest memory);
 *   wasm_store_cancel   ends the call as if the host function had failed;
 *   wasm_store_free     frees it all (the token is the host's to free).
 *
 * Resuming may happen on another thread: the store moves between threads as
 * a whole, and the embedder hands it over with its own synchronisation (a
 * mutex or a queue), as for any call.
 *
 * While suspended the store runs no other code: wasm_func_call and
 * wasm_instance_new return ERR_CONFLICT ("store has a suspended call"); to
 * call into wasm on the way back (theater_alloc for an answer's buffer),
 * use wasm_store_resume_call.
 * Reading and writing memories, globals and tables is allowed (a host may
 * write an answer into linear memory before resuming). wasm_store_set_limits
 * changes the depth and stack caps at once and the fuel budget from the next
 * call.
 *
 * Only the outermost host call can suspend: one called by wasm that
 * wasm_func_call started (or called directly by wasm_func_call), at a moment
 * when no other host call is below it on the C stack. A host function may
 * still call back into wasm (wasm_func_call on the same store, such as an
 * allocator export) before it suspends; a host function reached through such
 * a nested call cannot suspend, nor can the start function during
 * instantiation, nor a host call made at the store's maximum call depth
 * (resuming takes one more frame). There, wasm_caller_suspend returns
 * ERR_WASM_TRAP ("cannot suspend ..."): return it to trap, or test wasm_caller_can_suspend first and
 * block instead. A host function that returns ERR_WASM_SUSPEND without
 * wasm_caller_suspend traps ("host function suspended without
 * wasm_caller_suspend").
 *
 * Fuel counts running time only, and the budget of a call spans the call and
 * all its resumptions: a resumed call continues with the fuel that was left
 * when it suspended. wasm_store_fuel_used_last and _total are up to date at
 * every suspension. wasm_store_interrupt on a suspended store makes the next
 * wasm_store_resume or _resume_call end the call with ERR_WASM_EXHAUSTED
 * "interrupted" without running any wasm (nor the resume callback); the flag
 * clears when a call ends.
 */

/* Asks to park the current call; `token` is the host's, kept for it (see
 * wasm_store_suspend_token). Returns ERR_WASM_SUSPEND when the host function
 * may return that, else ERR_WASM_TRAP with the reason in err. */
enum err_code wasm_caller_suspend(struct wasm_caller *caller, void *token, struct err *err);
/* Non-zero when wasm_caller_suspend would succeed. */
int wasm_caller_can_suspend(const struct wasm_caller *caller);

/* Non-zero while the store holds a suspended call. */
int wasm_store_suspended(const struct wasm_store *s);
/* The token given to wasm_caller_suspend (NULL when not suspended). */
void *wasm_store_suspend_token(const struct wasm_store *s);
/* The type of the suspended host function, whose results wasm_store_resume
 * takes (borrowed arrays); ERR_CONFLICT when not suspended. */
enum err_code wasm_store_suspended_type(const struct wasm_store *s, struct wasm_functype *out);

/* Continues the suspended call: `results` (n values, the host function's
 * result types) become the host function's results, and out/nout receive
 * the outermost call's results when it returns (as for wasm_func_call).
 * Returns what wasm_func_call would: ERR_OK, ERR_WASM_TRAP,
 * ERR_WASM_EXHAUSTED, or ERR_WASM_SUSPEND again. A wrong count or type is
 * ERR_INVALID and leaves the call suspended; ERR_CONFLICT when the store
 * has no suspended call. */
enum err_code wasm_store_resume(struct wasm_store *s, const struct wasm_value *results,
				size_t n, struct wasm_value *out, size_t nout, struct err *err);
/* Continues the suspended call by running `fn` as the rest of its host
 * function, in its context: `caller` is the parked host call's (its
 * instance's memory and exports), so fn may call back into wasm (an
 * allocator export, say) and write memory before it answers. fn writes the
 * host function's results (types as declared) and returns ERR_OK to run
 * on; returns an error to end the call with it (a trap: ERR_WASM_TRAP); or
 * calls wasm_caller_suspend and returns ERR_WASM_SUSPEND to stay parked
 * (with the new token). Otherwise as wasm_store_resume. */
typedef enum err_code (*wasm_resume_fn)(struct wasm_caller *caller, void *user,
					struct wasm_value *results, struct err *err);
enum err_code wasm_store_resume_call(struct wasm_store *s, wasm_resume_fn fn, void *user,
				     struct wasm_value *out, size_t nout, struct err *err);
/* Ends the suspended call as if its host function had returned `code` with
 * message `reason` (ERR_OK or ERR_WASM_SUSPEND become ERR_WASM_TRAP; a NULL
 * reason is "host call cancelled"): returns that code with err set, and the
 * store is idle and usable again. ERR_CONFLICT when not suspended. */
enum err_code wasm_store_cancel(struct wasm_store *s, enum err_code code, const char *reason,
				struct err *err);

#endif
