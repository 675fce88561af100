/* fuzz_wasm.c - libFuzzer entry point over the engine's whole load path.
 *
 * Each input is taken as module bytes: decode + validate; if that succeeds,
 * instantiate it in a small store (every import satisfied by a dummy of the
 * declared type: functions return zeros, globals hold zero, tables and
 * memories get the declared limits when they are small enough), then call
 * up to MAX_CALLS exported functions with all-zero arguments under a small
 * fuel budget, and read exported globals, tables and memories. Errors are
 * the expected outcome for most inputs; crashes, sanitizer reports, leaks
 * and hangs are the findings. The same function runs the committed
 * regressions in the normal build (regress_main.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/util/err.h"
#include "src/wasm/wasm.h"

#define MAX_CALLS 16
#define FUZZ_FUEL 20000
#define FUZZ_PAGES 16          /* 1 MiB of linear memory */
#define FUZZ_TABLE 10000
#define FUZZ_DEPTH 500

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wasm_value zero_of(enum wasm_valtype t)
{
	struct wasm_value v;
	memset(&v, 0, sizeof v);
	v.type = t;
	return v;
}

static enum err_code dummy_fn(struct wasm_caller *caller, void *user,
			      const struct wasm_value *args, struct wasm_value *results,
			      struct err *err)
{
	const struct wasm_functype *ft = user;
	(void)caller;
	(void)args;
	(void)err;
	for (uint32_t i = 0; i < ft->nresults; i++)
		results[i] = zero_of(ft->results[i]);
	return ERR_OK;
}

/* What the dummy imports of one input need; freed after the store. */
struct fuzz_ctx {
	struct wasm_store *store;
	struct wasm_functype *types;   /* one per imported function */
	size_t ntypes, cap;
};

/* A host function that answers zeros of its declared result types. The
 * desc is the resolver's (maybe a temporary), so its type is copied; the
 * type's arrays are the module's, which outlives the store. */
static int dummy_func(struct fuzz_ctx *c, const struct wasm_import_desc *d,
		      struct wasm_func **out)
{
	if (c->ntypes >= c->cap)
		return 1;
	struct wasm_functype *ft = &c->types[c->ntypes++];
	*ft = d->func;
	return wasm_func_new_host(c->store, ft, dummy_fn, ft, out, NULL) != ERR_OK;
}

static int dummy_import(void *user, const struct wasm_import_desc *d, struct wasm_extern *out)
{
	struct fuzz_ctx *c = user;
	struct wasm_store *s = c->store;
	struct wasm_limits_type lim;
	out->kind = d->kind;
	switch (d->kind) {
	case WASM_EXTERN_FUNC:
		return dummy_func(c, d, &out->of.func);
	case WASM_EXTERN_GLOBAL:
		return wasm_global_new(s, zero_of(d->global.type), d->global.mutable_,
				       &out->of.global, NULL) != ERR_OK;
	case WASM_EXTERN_TABLE:
		lim = d->table.limits;
		if (lim.min > FUZZ_TABLE)
			return 1;
		return wasm_table_new(s, d->table.elem, lim, &out->of.table, NULL) != ERR_OK;
	case WASM_EXTERN_MEMORY:
		lim = d->memory;
		if (lim.min > FUZZ_PAGES)
			return 1;
		return wasm_memory_new(s, lim, &out->of.memory, NULL) != ERR_OK;
	}
	return 1;
}

static void call_func(struct wasm_store *s, struct wasm_func *f)
{
	struct wasm_functype ft;
	struct err err;
	wasm_func_type(f, &ft);
	struct wasm_value *args = calloc(ft.nparams + 1, sizeof *args);
	struct wasm_value *res = calloc(ft.nresults + 1, sizeof *res);
	if (args && res) {
		for (uint32_t i = 0; i < ft.nparams; i++)
			args[i] = zero_of(ft.params[i]);
		(void)wasm_func_call(s, f, args, ft.nparams, res, ft.nresults, &err);
	}
	free(args);
	free(res);
}

/* Touches one export through the instance, by name, as an embedder would. */
static void use_export(struct wasm_store *s, struct wasm_instance *inst,
		       const struct wasm_export_desc *d, int *calls)
{
	struct wasm_extern ext;
	struct wasm_value v;
	if (wasm_instance_export_n(inst, d->name, d->name_len, &ext) != ERR_OK ||
	    ext.kind != d->kind)
		abort();   /* the module said it exports this */
	if (ext.kind == WASM_EXTERN_FUNC && (*calls)++ < MAX_CALLS)
		call_func(s, ext.of.func);
	else if (ext.kind == WASM_EXTERN_GLOBAL)
		(void)wasm_global_get(ext.of.global);
	else if (ext.kind == WASM_EXTERN_TABLE && wasm_table_size(ext.of.table) > 0)
		(void)wasm_table_get(ext.of.table, wasm_table_size(ext.of.table) - 1, &v);
	else if (ext.kind == WASM_EXTERN_MEMORY && wasm_memory_size(ext.of.memory) > 0)
		(void)wasm_memory_data(ext.of.memory)[wasm_memory_size(ext.of.memory) - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wasm_module *m = NULL;
	struct wasm_store *s = NULL;
	struct wasm_instance *inst = NULL;
	struct wasm_store_limits lim = {
		.fuel = FUZZ_FUEL, .max_call_depth = FUZZ_DEPTH,
		.max_stack_bytes = 256 * 1024, .max_memory_pages = FUZZ_PAGES,
		.max_table_elems = FUZZ_TABLE,
	};
	struct err err;
	if (wasm_module_new(data, size, &m, &err) != ERR_OK)
		return 0;
	size_t nexports = wasm_module_export_count(m);
	(void)wasm_module_footprint(m);
	struct fuzz_ctx c = { 0 };
	c.cap = wasm_module_import_count(m);
	c.types = calloc(c.cap + 1, sizeof *c.types);
	if (c.types && wasm_store_new(&lim, &s, &err) == ERR_OK &&
	    (c.store = s, wasm_instance_new_resolved(s, m, dummy_import, &c, &inst, &err)) == ERR_OK) {
		int calls = 0;
		for (size_t i = 0; i < nexports; i++) {
			struct wasm_export_desc d;
			wasm_module_export(m, i, &d);
			use_export(s, inst, &d, &calls);
		}
	}
	wasm_store_free(s);
	free(c.types);
	wasm_module_free(m);
	return 0;
}
