/* wasm_valid.c - module-level validation (everything but function bodies).
 *
 * Follows the order and the messages of the spec's validation: imports,
 * limits, globals and their constant expressions, element and data segments,
 * the start function, exports. Constant expressions are checked under the
 * context C' of the spec, where only imported globals are visible. Also
 * computes what later phases need: canonical type indices (for fast
 * call_indirect checks) and the set of functions ref.func may name.
 */
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm_int.h"

bool wasm_ftype_eq(const struct wasm_ftype *a, const struct wasm_ftype *b)
{
	if (a == b)
		return true;
	if (a->np != b->np || a->nr != b->nr || a->hash != b->hash)
		return false;
	return a->np + a->nr == 0 || memcmp(a->v, b->v, (a->np + a->nr) * sizeof(*a->v)) == 0;
}

uint32_t wasm_ftype_hash(const struct wasm_ftype *t)
{
	uint32_t h = 2166136261u ^ t->np;
	h = (h * 16777619u) ^ t->nr;
	for (uint32_t i = 0; i < t->np + t->nr; i++)
		h = (h ^ (uint32_t)t->v[i]) * 16777619u;
	return h;
}

static enum err_code invalid(struct err *err, const char *msg)
{
	return err_set(err, ERR_WASM_INVALID, "%s", msg);
}

static enum err_code check_limits(const struct wasm_limits_type *l, uint64_t bound,
				  const char *bound_msg, struct err *err)
{
	if (bound && (l->min > bound || (l->has_max && l->max > bound)))
		return invalid(err, bound_msg);
	if (l->has_max && l->min > l->max)
		return invalid(err, "size minimum must not be greater than maximum");
	return ERR_OK;
}

static enum err_code check_mem(const struct wasm_limits_type *l, struct err *err)
{
	return check_limits(l, WASM_MAX_PAGES, "memory size must be at most 65536 pages (4GiB)",
			    err);
}

static enum err_code check_table(const struct wasm_table_type *t, struct err *err)
{
	return check_limits(&t->lim, 0, NULL, err);
}

static bool is_const_op(uint8_t op)
{
	return op == 0x41 || op == 0x42 || op == 0x43 || op == 0x44 || op == 0xd0 || op == 0xd2 ||
	       op == 0x23;
}

/* Decodes one instruction of an already skimmed constant expression. */
static void cexpr_instr(struct wasm_reader *r, uint8_t *op, uint64_t *val, struct err *err)
{
	int32_t s32;
	int64_t s64;
	uint32_t u32;
	enum wasm_valtype t;
	uint8_t b[8] = {0};
	wasm_rd_byte(r, op, err);
	*val = 0;
	switch (*op) {
	case 0x41: wasm_rd_s32(r, &s32, err); *val = (uint32_t)s32; break;
	case 0x42: wasm_rd_s64(r, &s64, err); *val = (uint64_t)s64; break;
	case 0x43: wasm_rd_fixed(r, b, 4, err); memcpy(val, b, 8); break;
	case 0x44: wasm_rd_fixed(r, b, 8, err); memcpy(val, b, 8); break;
	case 0xd0: wasm_rd_reftype(r, &t, err); *val = (uint64_t)t; break;
	case 0xd2: case 0x23: wasm_rd_u32(r, &u32, err); *val = u32; break;
	default: break;
	}
}

static enum wasm_valtype const_type(const struct wasm_module *m, uint8_t op, uint64_t val)
{
	switch (op) {
	case 0x41: return WASM_I32;
	case 0x42: return WASM_I64;
	case 0x43: return WASM_F32;
	case 0x44: return WASM_F64;
	case 0xd0: return (enum wasm_valtype)val;
	case 0xd2: return WASM_FUNCREF;
	default: return m->globals[val].type;
	}
}

/* Pass 1 of the spec's check_const: every instruction is constant. */
static enum err_code cexpr_all_const(const struct wasm_module *m, const struct wasm_cexpr *e,
				     struct err *err)
{
	struct wasm_reader r = {.base = m->bytes, .pos = e->start, .end = e->end};
	while (r.pos < r.end) {
		uint8_t op;
		uint64_t val;
		cexpr_instr(&r, &op, &val, err);
		if (!is_const_op(op))
			return invalid(err, "constant expression required");
		if (op == 0x23) {
			if (val >= m->nglobal_imports)
				return err_set(err, ERR_WASM_INVALID, "unknown global %u",
					       (unsigned)val);
			if (m->globals[val].mut)
				return invalid(err, "constant expression required");
		}
	}
	return ERR_OK;
}

/* Validates e as a constant expression of type t and records its single
 * instruction in e->op/e->val. */
static enum err_code check_cexpr(const struct wasm_module *m, struct wasm_cexpr *e,
				 enum wasm_valtype t, struct err *err)
{
	if (e->op == CEXPR_REF_FUNC && e->start == e->end) { /* a bare function index */
		if (e->val >= m->nfuncs)
			return err_set(err, ERR_WASM_INVALID, "unknown function %u",
				       (unsigned)e->val);
		return t == WASM_FUNCREF ? ERR_OK : invalid(err, "type mismatch");
	}
	if (cexpr_all_const(m, e, err))
		return ERR_WASM_INVALID;
	struct wasm_reader r = {.base = m->bytes, .pos = e->start, .end = e->end};
	uint32_t n = 0;
	uint8_t op = 0;
	uint64_t val = 0;
	while (r.pos < r.end) {
		cexpr_instr(&r, &op, &val, err);
		if (op == 0xd2 && val >= m->nfuncs)
			return err_set(err, ERR_WASM_INVALID, "unknown function %u", (unsigned)val);
		n++;
	}
	if (n != 1 || const_type(m, op, val) != t)
		return invalid(err, "type mismatch");
	e->val = val;
	switch (op) {
	case 0xd0: e->op = CEXPR_REF_NULL; break;
	case 0xd2: e->op = CEXPR_REF_FUNC; break;
	case 0x23: e->op = CEXPR_GLOBAL_GET; break;
	default: e->op = CEXPR_CONST; break;
	}
	return ERR_OK;
}

static enum err_code check_imports(struct wasm_module *m, struct err *err)
{
	for (uint32_t i = 0; i < m->nimports; i++) {
		const struct wasm_mimport *im = &m->imports[i];
		enum err_code rc = ERR_OK;
		if (im->kind == WASM_EXTERN_FUNC && im->type >= m->ntypes)
			rc = err_set(err, ERR_WASM_INVALID, "unknown type %u", im->type);
		else if (im->kind == WASM_EXTERN_TABLE)
			rc = check_table(&m->tables[im->index], err);
		else if (im->kind == WASM_EXTERN_MEMORY)
			rc = check_mem(&m->mems[im->index], err);
		if (rc)
			return rc;
	}
	for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++)
		if (m->func_type[i] >= m->ntypes)
			return err_set(err, ERR_WASM_INVALID, "unknown type %u", m->func_type[i]);
	return ERR_OK;
}

static enum err_code check_tables_mems(struct wasm_module *m, struct err *err)
{
	for (uint32_t i = m->ntable_imports; i < m->ntables; i++)
		if (check_table(&m->tables[i], err))
			return ERR_WASM_INVALID;
	for (uint32_t i = m->nmem_imports; i < m->nmems; i++)
		if (check_mem(&m->mems[i], err))
			return ERR_WASM_INVALID;
	if (m->nmems > 1)
		return invalid(err, "multiple memories");
	return ERR_OK;
}

static void mark_refs_in(struct wasm_module *m, const struct wasm_cexpr *e)
{
	if (e->op == CEXPR_REF_FUNC && e->start == e->end) {
		if (e->val < m->nfuncs)
			m->func_refd[e->val] = 1;
		return;
	}
	struct wasm_reader r = {.base = m->bytes, .pos = e->start, .end = e->end};
	while (r.pos < r.end) {
		uint8_t op;
		uint64_t val;
		cexpr_instr(&r, &op, &val, NULL);
		if (op == 0xd2 && val < m->nfuncs)
			m->func_refd[val] = 1;
		if (!is_const_op(op))
			break;
	}
}

/* C.refs of the spec: functions named outside function bodies. */
static enum err_code collect_refs(struct wasm_module *m, struct err *err)
{
	m->func_refd = calloc(m->nfuncs ? m->nfuncs : 1, 1);
	if (!m->func_refd)
		return err_set(err, ERR_NOMEM, "out of memory validating module");
	m->footprint += m->nfuncs;
	for (uint32_t i = 0; i < m->nglobals - m->nglobal_imports; i++)
		mark_refs_in(m, &m->global_init[i]);
	for (uint32_t i = 0; i < m->nelems; i++)
		for (uint32_t k = 0; k < m->elems[i].count; k++)
			mark_refs_in(m, &m->elems[i].items[k]);
	for (uint32_t i = 0; i < m->nexports; i++)
		if (m->exports[i].kind == WASM_EXTERN_FUNC && m->exports[i].index < m->nfuncs)
			m->func_refd[m->exports[i].index] = 1;
	return ERR_OK;
}

static enum err_code check_globals(struct wasm_module *m, struct err *err)
{
	for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++)
		if (check_cexpr(m, &m->global_init[i - m->nglobal_imports], m->globals[i].type,
				err))
			return ERR_WASM_INVALID;
	return ERR_OK;
}

static enum err_code check_elem(struct wasm_module *m, struct wasm_elem_seg *s,
				struct err *err)
{
	if (s->mode == SEG_ACTIVE) {
		if (s->table >= m->ntables)
			return err_set(err, ERR_WASM_INVALID, "unknown table %u", s->table);
		if (check_cexpr(m, &s->offset, WASM_I32, err))
			return ERR_WASM_INVALID;
	}
	for (uint32_t k = 0; k < s->count; k++)
		if (check_cexpr(m, &s->items[k], s->type, err))
			return ERR_WASM_INVALID;
	if (s->mode == SEG_ACTIVE && m->tables[s->table].elem != s->type)
		return invalid(err, "type mismatch");
	return ERR_OK;
}

static enum err_code check_segments(struct wasm_module *m, struct err *err)
{
	for (uint32_t i = 0; i < m->nelems; i++)
		if (check_elem(m, &m->elems[i], err))
			return ERR_WASM_INVALID;
	for (uint32_t i = 0; i < m->ndatas; i++) {
		struct wasm_data_seg *s = &m->datas[i];
		if (s->mode != SEG_ACTIVE)
			continue;
		if (s->mem >= m->nmems)
			return err_set(err, ERR_WASM_INVALID, "unknown memory %u", s->mem);
		if (check_cexpr(m, &s->offset, WASM_I32, err))
			return ERR_WASM_INVALID;
	}
	return ERR_OK;
}

static enum err_code check_start(struct wasm_module *m, struct err *err)
{
	if (!m->has_start)
		return ERR_OK;
	if (m->start >= m->nfuncs)
		return err_set(err, ERR_WASM_INVALID, "unknown function %u", m->start);
	const struct wasm_ftype *t = &m->types[m->func_type[m->start]];
	if (t->np || t->nr)
		return invalid(err, "start function");
	return ERR_OK;
}

static int name_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int export_cmp(const struct wasm_module *m, uint32_t a, uint32_t b)
{
	const struct wasm_mexport *x = &m->exports[a], *y = &m->exports[b];
	return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

/* Bottom-up merge sort of export indices by name (qsort has no context). */
static void sort_exports(const struct wasm_module *m, uint32_t *a, uint32_t *tmp, uint32_t n)
{
	for (uint32_t w = 1; w < n; w *= 2) {
		for (uint32_t lo = 0; lo < n; lo += 2 * w) {
			uint32_t mid = lo + w < n ? lo + w : n;
			uint32_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			uint32_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = export_cmp(m, a[j], a[i]) < 0 ? a[j++] : a[i++];
			while (i < mid)
				tmp[k++] = a[i++];
			while (j < hi)
				tmp[k++] = a[j++];
		}
		memcpy(a, tmp, n * sizeof(*a));
	}
}

static enum err_code check_exports(struct wasm_module *m, struct err *err)
{
	static const char *const kinds[] = {"function", "table", "memory", "global"};
	for (uint32_t i = 0; i < m->nexports; i++) {
		const struct wasm_mexport *ex = &m->exports[i];
		uint32_t n = ex->kind == WASM_EXTERN_FUNC	? m->nfuncs
			     : ex->kind == WASM_EXTERN_TABLE	? m->ntables
			     : ex->kind == WASM_EXTERN_MEMORY ? m->nmems
							      : m->nglobals;
		if (ex->index >= n)
			return err_set(err, ERR_WASM_INVALID, "unknown %s %u", kinds[ex->kind],
				       ex->index);
	}
	uint32_t n = m->nexports;
	m->export_order = malloc((n ? n : 1) * sizeof(uint32_t));
	uint32_t *tmp = malloc((n ? n : 1) * sizeof(uint32_t));
	if (!m->export_order || !tmp) {
		free(tmp);
		return err_set(err, ERR_NOMEM, "out of memory validating module");
	}
	m->footprint += n * sizeof(uint32_t);
	for (uint32_t i = 0; i < n; i++)
		m->export_order[i] = i;
	sort_exports(m, m->export_order, tmp, n);
	free(tmp);
	for (uint32_t i = 1; i < n; i++) {
		const struct wasm_mexport *a = &m->exports[m->export_order[i - 1]];
		const struct wasm_mexport *b = &m->exports[m->export_order[i]];
		if (name_cmp(a->name, a->name_len, b->name, b->name_len) == 0)
			return invalid(err, "duplicate export name");
	}
	return ERR_OK;
}

static enum err_code canon_types(struct wasm_module *m, struct err *err)
{
	m->type_canon = malloc((m->ntypes ? m->ntypes : 1) * sizeof(uint32_t));
	if (!m->type_canon)
		return err_set(err, ERR_NOMEM, "out of memory validating module");
	m->footprint += m->ntypes * sizeof(uint32_t);
	for (uint32_t i = 0; i < m->ntypes; i++) {
		m->type_canon[i] = i;
		/* Quadratic only in the number of equal hashes of small modules;
		 * bounded to keep huge type sections linear. */
		for (uint32_t k = i > 256 ? i - 256 : 0; k < i; k++) {
			if (wasm_ftype_eq(&m->types[k], &m->types[i])) {
				m->type_canon[i] = m->type_canon[k];
				break;
			}
		}
	}
	return ERR_OK;
}

enum err_code wasm_validate(struct wasm_module *m, struct err *err)
{
	enum err_code rc;
	if ((rc = canon_types(m, err)) || (rc = check_imports(m, err)) ||
	    (rc = check_tables_mems(m, err)) || (rc = collect_refs(m, err)) ||
	    (rc = check_globals(m, err)) || (rc = check_segments(m, err)) ||
	    (rc = check_start(m, err)) || (rc = check_exports(m, err)))
		return rc;
	return ERR_OK;
}
