/* wasm_module.c - wasm_module_new and module introspection.
 *
 * Runs the load phases in the spec's order of precedence: decoding of the
 * whole module including function bodies (malformed), then module
 * validation and body validation with translation (invalid). The module is
 * immutable afterwards and shared by reference count across threads.
 */
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm_int.h"

static void free_cexprs(struct wasm_elem_seg *segs, uint32_t n)
{
	for (uint32_t i = 0; segs && i < n; i++)
		free(segs[i].items);
}

static void module_destroy(struct wasm_module *m)
{
	for (uint32_t i = 0; m->types && i < m->ntypes; i++)
		free(m->types[i].v);
	free(m->types);
	free(m->type_canon);
	free(m->imports);
	free(m->func_type);
	wasm_module_release_code(m);
	free(m->codes);
	free(m->tables);
	free(m->mems);
	free(m->globals);
	free(m->global_init);
	free(m->exports);
	free(m->export_order);
	free_cexprs(m->elems, m->nelems);
	free(m->elems);
	free(m->datas);
	free(m->func_refd);
	free(m->strpool);
	free(m->bytes);
	free(m);
}

static enum err_code load(struct wasm_module *m, struct err *err)
{
	enum err_code rc = wasm_decode(m, err);
	if (!rc)
		rc = wasm_validate(m, err);
	if (!rc)
		rc = wasm_compile_all(m, err);
	return rc;
}

enum err_code wasm_module_new(const uint8_t *bytes, size_t len, struct wasm_module **out,
			      struct err *err)
{
	*out = NULL;
	if (len > WASM_MAX_MODULE_BYTES)
		return err_set(err, ERR_TOO_LARGE, "module of %zu bytes exceeds the limit of %u bytes",
			       len, WASM_MAX_MODULE_BYTES);
	struct wasm_module *m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(err, ERR_NOMEM, "out of memory loading module");
	atomic_init(&m->refs, 1);
	m->len = len;
	m->bytes = malloc(len ? len : 1);
	if (!m->bytes) {
		free(m);
		return err_set(err, ERR_NOMEM, "out of memory loading module");
	}
	if (len)
		memcpy(m->bytes, bytes, len);
	enum err_code rc = load(m, err);
	if (rc) {
		module_destroy(m);
		return rc;
	}
	*out = m;
	return ERR_OK;
}

struct wasm_module *wasm_module_ref(struct wasm_module *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void wasm_module_free(struct wasm_module *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		module_destroy(m);
}

size_t wasm_module_import_count(const struct wasm_module *m)
{
	return m->nimports;
}

void wasm_module_import(const struct wasm_module *m, size_t i, struct wasm_import_desc *out)
{
	const struct wasm_mimport *im = &m->imports[i];
	memset(out, 0, sizeof(*out));
	out->module = im->module;
	out->name = im->name;
	out->module_len = im->module_len;
	out->name_len = im->name_len;
	out->kind = im->kind;
	switch (im->kind) {
	case WASM_EXTERN_FUNC: {
		const struct wasm_ftype *t = &m->types[im->type];
		out->func.nparams = t->np;
		out->func.nresults = t->nr;
		out->func.params = t->v;
		out->func.results = t->v ? t->v + t->np : NULL;
		break;
	}
	case WASM_EXTERN_TABLE:
		out->table.elem = m->tables[im->index].elem;
		out->table.limits = m->tables[im->index].lim;
		break;
	case WASM_EXTERN_MEMORY:
		out->memory = m->mems[im->index];
		break;
	case WASM_EXTERN_GLOBAL:
		out->global.type = m->globals[im->index].type;
		out->global.mutable_ = m->globals[im->index].mut;
		break;
	}
}

size_t wasm_module_export_count(const struct wasm_module *m)
{
	return m->nexports;
}

void wasm_module_export(const struct wasm_module *m, size_t i, struct wasm_export_desc *out)
{
	const struct wasm_mexport *ex = &m->exports[i];
	out->name = ex->name;
	out->name_len = ex->name_len;
	out->kind = ex->kind;
	out->index = ex->index;
}

size_t wasm_module_footprint(const struct wasm_module *m)
{
	return sizeof(*m) + m->len + m->footprint;
}
