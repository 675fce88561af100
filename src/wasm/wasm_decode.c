/* wasm_decode.c - the binary format: sections into struct wasm_module.
 *
 * Syntax only: indices are not checked here (wasm_valid.c does that), so that
 * a malformed module is reported as malformed even when it is also invalid.
 * Reads are bounded by the end of the module, not of the section: like the
 * spec's reference decoder, a section (or body) that is parsed past its
 * declared size is reported as "section size mismatch" afterwards. Function
 * bodies are only sliced here; wasm_compile.c parses them.
 * Every count that drives an allocation is first bounded by the bytes left.
 */
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm_int.h"

enum err_code wasm_err_eof(struct err *err)
{
	err_set(err, ERR_WASM_MALFORMED, "unexpected end of section or function");
	return ERR_WASM_MALFORMED;
}

static enum err_code malformed(struct err *err, const char *msg)
{
	err_set(err, ERR_WASM_MALFORMED, "%s", msg);
	return ERR_WASM_MALFORMED;
}

enum err_code wasm_rd_byte(struct wasm_reader *r, uint8_t *out, struct err *err)
{
	if (r->pos >= r->end) {
		*out = 0;
		return wasm_err_eof(err);
	}
	*out = r->base[r->pos++];
	return ERR_OK;
}

enum err_code wasm_rd_fixed(struct wasm_reader *r, void *out, size_t n, struct err *err)
{
	if (r->end - r->pos < n)
		return wasm_err_eof(err);
	memcpy(out, r->base + r->pos, n);
	r->pos += n;
	return ERR_OK;
}

/* LEB128 of at most `bits` bits, as the spec's decoder checks it: too many
 * bytes is "integer representation too long", unused bits that are not a
 * zero (or, signed, sign) extension are "integer too large". */
static enum err_code rd_leb(struct wasm_reader *r, int bits, bool sign, uint64_t *out,
			    struct err *err)
{
	uint64_t v = 0;
	int shift = 0;
	for (int n = bits;; n -= 7) {
		if (n <= 0)
			return malformed(err, "integer representation too long");
		uint8_t b;
		if (wasm_rd_byte(r, &b, err))
			return ERR_WASM_MALFORMED;
		if (n < 7) {
			if (!sign && (b & 0x7f) >= (1u << n))
				return malformed(err, "integer too large");
			if (sign) {
				uint8_t mask = (uint8_t)((0xffu << (n - 1)) & 0x7f);
				if ((b & mask) != 0 && (b & mask) != mask)
					return malformed(err, "integer too large");
			}
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (sign && shift < 64 && (b & 0x40))
				v |= ~(uint64_t)0 << shift;
			break;
		}
	}
	*out = v;
	return ERR_OK;
}

enum err_code wasm_rd_u32(struct wasm_reader *r, uint32_t *out, struct err *err)
{
	uint64_t v;
	if (rd_leb(r, 32, false, &v, err))
		return ERR_WASM_MALFORMED;
	*out = (uint32_t)v;
	return ERR_OK;
}

enum err_code wasm_rd_s32(struct wasm_reader *r, int32_t *out, struct err *err)
{
	uint64_t v;
	if (rd_leb(r, 32, true, &v, err))
		return ERR_WASM_MALFORMED;
	*out = (int32_t)(uint32_t)v;
	return ERR_OK;
}

enum err_code wasm_rd_s33(struct wasm_reader *r, int64_t *out, struct err *err)
{
	uint64_t v;
	if (rd_leb(r, 33, true, &v, err))
		return ERR_WASM_MALFORMED;
	*out = (int64_t)v;
	return ERR_OK;
}

enum err_code wasm_rd_s64(struct wasm_reader *r, int64_t *out, struct err *err)
{
	uint64_t v;
	if (rd_leb(r, 64, true, &v, err))
		return ERR_WASM_MALFORMED;
	*out = (int64_t)v;
	return ERR_OK;
}

/* A length or count: must not exceed the bytes left in the module, counted
 * from the length's own first byte (as the reference decoder does). */
static enum err_code rd_len(struct wasm_reader *r, uint32_t *out, struct err *err)
{
	size_t start = r->pos;
	if (wasm_rd_u32(r, out, err))
		return ERR_WASM_MALFORMED;
	if (*out > r->end - start)
		return malformed(err, "length out of bounds");
	return ERR_OK;
}

/* A byte read as the reference reads a signed 7-bit LEB128. */
static enum err_code rd_s7_byte(struct wasm_reader *r, uint8_t *out, struct err *err)
{
	if (wasm_rd_byte(r, out, err))
		return ERR_WASM_MALFORMED;
	if (*out & 0x80)
		return malformed(err, "integer representation too long");
	return ERR_OK;
}

static bool is_valtype(uint8_t b)
{
	return b == WASM_I32 || b == WASM_I64 || b == WASM_F32 || b == WASM_F64 ||
	       b == WASM_FUNCREF || b == WASM_EXTERNREF;
}

enum err_code wasm_rd_valtype(struct wasm_reader *r, enum wasm_valtype *out, struct err *err)
{
	uint8_t b;
	if (rd_s7_byte(r, &b, err))
		return ERR_WASM_MALFORMED;
	if (!is_valtype(b))
		return malformed(err, "malformed value type");
	*out = (enum wasm_valtype)b;
	return ERR_OK;
}

enum err_code wasm_rd_reftype(struct wasm_reader *r, enum wasm_valtype *out, struct err *err)
{
	uint8_t b;
	if (rd_s7_byte(r, &b, err))
		return ERR_WASM_MALFORMED;
	if (b != WASM_FUNCREF && b != WASM_EXTERNREF)
		return malformed(err, "malformed reference type");
	*out = (enum wasm_valtype)b;
	return ERR_OK;
}

enum err_code wasm_rd_blocktype(struct wasm_reader *r, int64_t *out, struct err *err)
{
	if (wasm_rd_s33(r, out, err))
		return ERR_WASM_MALFORMED;
	if (*out >= 0 || *out == -0x40)
		return ERR_OK;
	if (*out < -0x80 || !is_valtype((uint8_t)(*out + 0x80)))
		return malformed(err, "malformed value type");
	*out = -(int64_t)(uint8_t)(*out + 0x80);
	return ERR_OK;
}

static enum err_code rd_zero(struct wasm_reader *r, struct err *err)
{
	uint8_t b;
	if (wasm_rd_byte(r, &b, err))
		return ERR_WASM_MALFORMED;
	if (b != 0)
		return malformed(err, "zero byte expected");
	return ERR_OK;
}

/* ---- skimming expressions ---- */

static enum err_code skim_fc(struct wasm_reader *r, bool *uses_data, struct err *err)
{
	uint32_t sub, x;
	if (wasm_rd_u32(r, &sub, err))
		return ERR_WASM_MALFORMED;
	switch (sub) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
		return ERR_OK;
	case 8:
		*uses_data = true;
		if (wasm_rd_u32(r, &x, err))
			return ERR_WASM_MALFORMED;
		return rd_zero(r, err);
	case 9:
		*uses_data = true;
		return wasm_rd_u32(r, &x, err);
	case 10:
		if (rd_zero(r, err))
			return ERR_WASM_MALFORMED;
		return rd_zero(r, err);
	case 11:
		return rd_zero(r, err);
	case 12: case 14:
		if (wasm_rd_u32(r, &x, err))
			return ERR_WASM_MALFORMED;
		return wasm_rd_u32(r, &x, err);
	case 13: case 15: case 16: case 17:
		return wasm_rd_u32(r, &x, err);
	default:
		return err_set(err, ERR_WASM_MALFORMED, "illegal opcode fc %02x", sub);
	}
}

static enum err_code skim_memarg(struct wasm_reader *r, struct err *err)
{
	uint32_t align, offset;
	if (wasm_rd_u32(r, &align, err))
		return ERR_WASM_MALFORMED;
	if (align >= 32)
		return malformed(err, "malformed memop flags");
	return wasm_rd_u32(r, &offset, err);
}

/* Immediates of one instruction whose opcode byte was read. */
static enum err_code skim_imm(struct wasm_reader *r, uint8_t op, bool *uses_data,
			      struct err *err)
{
	uint32_t x, n;
	int64_t s;
	int32_t s32;
	uint8_t buf[8];
	enum wasm_valtype t;
	switch (op) {
	case 0x00: case 0x01: case 0x05: case 0x0b: case 0x0f: case 0x1a: case 0x1b:
	case 0xd1:
		return ERR_OK;
	case 0x02: case 0x03: case 0x04:
		return wasm_rd_blocktype(r, &s, err);
	case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23:
	case 0x24: case 0x25: case 0x26: case 0xd2:
		return wasm_rd_u32(r, &x, err);
	case 0x0e:
		if (rd_len(r, &n, err))
			return ERR_WASM_MALFORMED;
		for (uint32_t i = 0; i <= n; i++)
			if (wasm_rd_u32(r, &x, err))
				return ERR_WASM_MALFORMED;
		return ERR_OK;
	case 0x11:
		if (wasm_rd_u32(r, &x, err))
			return ERR_WASM_MALFORMED;
		return wasm_rd_u32(r, &x, err);
	case 0x1c:
		if (rd_len(r, &n, err))
			return ERR_WASM_MALFORMED;
		for (uint32_t i = 0; i < n; i++)
			if (wasm_rd_valtype(r, &t, err))
				return ERR_WASM_MALFORMED;
		return ERR_OK;
	case 0x3f: case 0x40:
		return rd_zero(r, err);
	case 0x41:
		return wasm_rd_s32(r, &s32, err);
	case 0x42:
		return wasm_rd_s64(r, &s, err);
	case 0x43:
		return wasm_rd_fixed(r, buf, 4, err);
	case 0x44:
		return wasm_rd_fixed(r, buf, 8, err);
	case 0xd0:
		return wasm_rd_reftype(r, &t, err);
	case 0xfc:
		return skim_fc(r, uses_data, err);
	default:
		break;
	}
	if (op >= 0x28 && op <= 0x3e)
		return skim_memarg(r, err);
	if (op >= 0x45 && op <= 0xc4)
		return ERR_OK;
	return err_set(err, ERR_WASM_MALFORMED, "illegal opcode %02x", op);
}

enum err_code wasm_skim_expr(struct wasm_reader *r, bool *uses_data, struct err *err)
{
	/* Per nesting level: whether it is the 'then' arm of an if (where an
	 * 'else' may appear). Deeper nesting only needs a counter and a bit. */
	uint64_t depth = 0;
	uint8_t small[64] = {0};
	for (;;) {
		uint8_t op;
		if (wasm_rd_byte(r, &op, err))
			return ERR_WASM_MALFORMED;
		if (op == 0x0b) {
			if (depth == 0)
				return ERR_OK;
			depth--;
			continue;
		}
		if (op == 0x05) {
			if (depth == 0 || (depth <= 64 && !small[depth - 1]))
				return malformed(err, "END opcode expected");
			if (depth <= 64)
				small[depth - 1] = 0;
			continue;
		}
		if (skim_imm(r, op, uses_data, err))
			return ERR_WASM_MALFORMED;
		if (op == 0x02 || op == 0x03 || op == 0x04) {
			if (depth < 64)
				small[depth] = op == 0x04;
			depth++;
		}
	}
}

/* ---- module structure ---- */

struct dec {
	struct wasm_module *m;
	struct wasm_reader r;
	struct err *err;
	size_t names_total; /* bytes of names, for the string pool */
	bool uses_data;     /* a body uses memory.init or data.drop */
	bool has_data;      /* the module has a data section */
};

static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp, min;
		size_t len;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* A name: records its offset and length; copied to the pool later. */
static enum err_code rd_name(struct dec *d, uint32_t *off, uint32_t *len)
{
	if (rd_len(&d->r, len, d->err))
		return ERR_WASM_MALFORMED;
	if (*len > d->r.end - d->r.pos)
		return wasm_err_eof(d->err);
	*off = (uint32_t)d->r.pos;
	if (!utf8_valid(d->r.base + d->r.pos, *len))
		return malformed(d->err, "malformed UTF-8 encoding");
	d->r.pos += *len;
	d->names_total += *len + 1;
	return ERR_OK;
}

static enum err_code rd_limits(struct dec *d, struct wasm_limits_type *lim)
{
	uint8_t flag;
	if (wasm_rd_byte(&d->r, &flag, d->err))
		return ERR_WASM_MALFORMED;
	if ((flag & 0x7f) > 1)
		return malformed(d->err, "integer too large");
	if (flag & 0x80)
		return malformed(d->err, "integer representation too long");
	lim->has_max = flag;
	lim->max = 0;
	if (wasm_rd_u32(&d->r, &lim->min, d->err))
		return ERR_WASM_MALFORMED;
	if (flag && wasm_rd_u32(&d->r, &lim->max, d->err))
		return ERR_WASM_MALFORMED;
	return ERR_OK;
}

static enum err_code rd_table_type(struct dec *d, struct wasm_table_type *t)
{
	if (wasm_rd_reftype(&d->r, &t->elem, d->err))
		return ERR_WASM_MALFORMED;
	return rd_limits(d, &t->lim);
}

static enum err_code rd_global_type(struct dec *d, struct wasm_global_type *g)
{
	uint8_t mut;
	if (wasm_rd_valtype(&d->r, &g->type, d->err))
		return ERR_WASM_MALFORMED;
	if (wasm_rd_byte(&d->r, &mut, d->err))
		return ERR_WASM_MALFORMED;
	if (mut > 1)
		return malformed(d->err, "malformed mutability");
	g->mut = mut;
	return ERR_OK;
}

static enum err_code rd_cexpr(struct dec *d, struct wasm_cexpr *e)
{
	bool ignored = false;
	e->start = (uint32_t)d->r.pos;
	if (wasm_skim_expr(&d->r, &ignored, d->err))
		return ERR_WASM_MALFORMED;
	e->end = (uint32_t)d->r.pos - 1;
	return ERR_OK;
}

/* Allocates n zeroed items; n is already bounded by the module size. */
static void *alloc_n(struct dec *d, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		err_set(d->err, ERR_NOMEM, "out of memory decoding module");
	else
		d->m->footprint += n * size;
	return p;
}

static enum err_code rd_valtypes(struct dec *d, uint32_t n, enum wasm_valtype *out)
{
	for (uint32_t k = 0; k < n; k++)
		if (wasm_rd_valtype(&d->r, &out[k], d->err))
			return ERR_WASM_MALFORMED;
	return ERR_OK;
}

static enum err_code rd_functype(struct dec *d, struct wasm_ftype *t)
{
	uint8_t form;
	uint32_t np, nr;
	if (rd_s7_byte(&d->r, &form, d->err))
		return ERR_WASM_MALFORMED;
	if (form != 0x60)
		return malformed(d->err, "malformed function type");
	if (rd_len(&d->r, &np, d->err))
		return ERR_WASM_MALFORMED;
	if (np > WASM_MAX_PARAMS)
		return malformed(d->err, "too many parameters");
	enum wasm_valtype params[WASM_MAX_PARAMS];
	if (rd_valtypes(d, np, params) || rd_len(&d->r, &nr, d->err))
		return ERR_WASM_MALFORMED;
	if (nr > WASM_MAX_RESULTS)
		return malformed(d->err, "too many results");
	t->np = np;
	t->nr = nr;
	if (np + nr && !(t->v = alloc_n(d, np + nr, sizeof(*t->v))))
		return ERR_NOMEM;
	if (np)
		memcpy(t->v, params, np * sizeof(*t->v));
	if (nr && rd_valtypes(d, nr, t->v + np))   /* t->v is NULL for () -> () */
		return ERR_WASM_MALFORMED;
	t->hash = wasm_ftype_hash(t);
	return ERR_OK;
}

static enum err_code sec_type(struct dec *d)
{
	struct wasm_module *m = d->m;
	if (rd_len(&d->r, &m->ntypes, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->types = alloc_n(d, m->ntypes, sizeof(*m->types))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < m->ntypes; i++) {
		enum err_code rc = rd_functype(d, &m->types[i]);
		if (rc)
			return rc;
	}
	return ERR_OK;
}

static enum err_code rd_import_desc(struct dec *d, struct wasm_mimport *im)
{
	struct wasm_module *m = d->m;
	uint8_t kind;
	if (wasm_rd_byte(&d->r, &kind, d->err))
		return ERR_WASM_MALFORMED;
	switch (kind) {
	case 0:
		im->kind = WASM_EXTERN_FUNC;
		im->index = m->nfunc_imports++;
		return wasm_rd_u32(&d->r, &im->type, d->err);
	case 1:
		im->kind = WASM_EXTERN_TABLE;
		im->index = m->ntable_imports++;
		return rd_table_type(d, &m->tables[im->index]);
	case 2:
		im->kind = WASM_EXTERN_MEMORY;
		im->index = m->nmem_imports++;
		return rd_limits(d, &m->mems[im->index]);
	case 3:
		im->kind = WASM_EXTERN_GLOBAL;
		im->index = m->nglobal_imports++;
		return rd_global_type(d, &m->globals[im->index]);
	default:
		return malformed(d->err, "malformed import kind");
	}
}

static enum err_code sec_import(struct dec *d)
{
	struct wasm_module *m = d->m;
	if (rd_len(&d->r, &m->nimports, d->err))
		return ERR_WASM_MALFORMED;
	uint32_t n = m->nimports;
	/* Index spaces are sized for the worst case; the function, table,
	 * memory and global sections grow them. */
	if (!(m->imports = alloc_n(d, n, sizeof(*m->imports))) ||
	    !(m->tables = alloc_n(d, n, sizeof(*m->tables))) ||
	    !(m->mems = alloc_n(d, n, sizeof(*m->mems))) ||
	    !(m->globals = alloc_n(d, n, sizeof(*m->globals))) ||
	    !(m->func_type = alloc_n(d, n, sizeof(*m->func_type))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct wasm_mimport *im = &m->imports[i];
		uint32_t moff, noff;
		if (rd_name(d, &moff, &im->module_len) || rd_name(d, &noff, &im->name_len))
			return ERR_WASM_MALFORMED;
		im->module = (const char *)(uintptr_t)moff;
		im->name = (const char *)(uintptr_t)noff;
		if (rd_import_desc(d, im))
			return ERR_WASM_MALFORMED;
		if (im->kind == WASM_EXTERN_FUNC)
			m->func_type[im->index] = im->type;
	}
	m->nfuncs = m->nfunc_imports;
	m->ntables = m->ntable_imports;
	m->nmems = m->nmem_imports;
	m->nglobals = m->nglobal_imports;
	return ERR_OK;
}

/* Grows an index space array from `have` imported entries to `have + n`. */
static void *grow_space(struct dec *d, void *arr, uint32_t have, uint32_t n, size_t size)
{
	void *p = calloc((size_t)have + n + 1, size);
	if (!p) {
		err_set(d->err, ERR_NOMEM, "out of memory decoding module");
		return NULL;
	}
	if (arr)
		memcpy(p, arr, (size_t)have * size);
	free(arr);
	d->m->footprint += (size_t)n * size;
	return p;
}

static enum err_code sec_func(struct dec *d)
{
	struct wasm_module *m = d->m;
	uint32_t n;
	if (rd_len(&d->r, &n, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->func_type = grow_space(d, m->func_type, m->nfunc_imports, n, sizeof(uint32_t))))
		return ERR_NOMEM;
	if (!(m->codes = alloc_n(d, n, sizeof(*m->codes))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (wasm_rd_u32(&d->r, &m->func_type[m->nfunc_imports + i], d->err))
			return ERR_WASM_MALFORMED;
		m->codes[i].type = m->func_type[m->nfunc_imports + i];
	}
	m->nfuncs = m->nfunc_imports + n;
	return ERR_OK;
}

static enum err_code sec_table(struct dec *d)
{
	struct wasm_module *m = d->m;
	uint32_t n;
	if (rd_len(&d->r, &n, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->tables = grow_space(d, m->tables, m->ntable_imports, n, sizeof(*m->tables))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (rd_table_type(d, &m->tables[m->ntable_imports + i]))
			return ERR_WASM_MALFORMED;
	m->ntables = m->ntable_imports + n;
	return ERR_OK;
}

static enum err_code sec_memory(struct dec *d)
{
	struct wasm_module *m = d->m;
	uint32_t n;
	if (rd_len(&d->r, &n, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->mems = grow_space(d, m->mems, m->nmem_imports, n, sizeof(*m->mems))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (rd_limits(d, &m->mems[m->nmem_imports + i]))
			return ERR_WASM_MALFORMED;
	m->nmems = m->nmem_imports + n;
	return ERR_OK;
}

static enum err_code sec_global(struct dec *d)
{
	struct wasm_module *m = d->m;
	uint32_t n;
	if (rd_len(&d->r, &n, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->globals = grow_space(d, m->globals, m->nglobal_imports, n, sizeof(*m->globals))))
		return ERR_NOMEM;
	if (!(m->global_init = alloc_n(d, n, sizeof(*m->global_init))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (rd_global_type(d, &m->globals[m->nglobal_imports + i]) ||
		    rd_cexpr(d, &m->global_init[i]))
			return ERR_WASM_MALFORMED;
	}
	m->nglobals = m->nglobal_imports + n;
	return ERR_OK;
}

static enum err_code sec_export(struct dec *d)
{
	struct wasm_module *m = d->m;
	if (rd_len(&d->r, &m->nexports, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->exports = alloc_n(d, m->nexports, sizeof(*m->exports))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < m->nexports; i++) {
		struct wasm_mexport *ex = &m->exports[i];
		uint32_t off;
		uint8_t kind;
		if (rd_name(d, &off, &ex->name_len))
			return ERR_WASM_MALFORMED;
		ex->name = (const char *)(uintptr_t)off;
		if (wasm_rd_byte(&d->r, &kind, d->err))
			return ERR_WASM_MALFORMED;
		if (kind > 3)
			return malformed(d->err, "malformed export kind");
		ex->kind = (enum wasm_extern_kind)kind;
		if (wasm_rd_u32(&d->r, &ex->index, d->err))
			return ERR_WASM_MALFORMED;
	}
	return ERR_OK;
}

static enum err_code rd_elem_items(struct dec *d, struct wasm_elem_seg *s, bool exprs)
{
	if (rd_len(&d->r, &s->count, d->err))
		return ERR_WASM_MALFORMED;
	if (!(s->items = alloc_n(d, s->count, sizeof(*s->items))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < s->count; i++) {
		struct wasm_cexpr *e = &s->items[i];
		if (exprs) {
			if (rd_cexpr(d, e))
				return ERR_WASM_MALFORMED;
			continue;
		}
		uint32_t f;
		e->start = e->end = (uint32_t)d->r.pos;
		if (wasm_rd_u32(&d->r, &f, d->err))
			return ERR_WASM_MALFORMED;
		e->op = CEXPR_REF_FUNC;
		e->val = f;
	}
	return ERR_OK;
}

static enum err_code rd_elemkind(struct dec *d, struct wasm_elem_seg *s)
{
	uint8_t k;
	if (wasm_rd_byte(&d->r, &k, d->err))
		return ERR_WASM_MALFORMED;
	if (k != 0)
		return malformed(d->err, "malformed element kind");
	s->type = WASM_FUNCREF;
	return ERR_OK;
}

static enum err_code rd_elem(struct dec *d, struct wasm_elem_seg *s)
{
	uint32_t flags;
	if (wasm_rd_u32(&d->r, &flags, d->err))
		return ERR_WASM_MALFORMED;
	if (flags > 7)
		return malformed(d->err, "malformed elements segment kind");
	bool exprs = flags & 4;
	s->type = WASM_FUNCREF;
	s->mode = (flags & 1) ? ((flags & 2) ? SEG_DECLARATIVE : SEG_PASSIVE) : SEG_ACTIVE;
	if ((flags & 3) == 2 && wasm_rd_u32(&d->r, &s->table, d->err))
		return ERR_WASM_MALFORMED;
	if (s->mode == SEG_ACTIVE && rd_cexpr(d, &s->offset))
		return ERR_WASM_MALFORMED;
	if (flags & 3) {
		enum err_code rc = exprs ? wasm_rd_reftype(&d->r, &s->type, d->err)
					 : rd_elemkind(d, s);
		if (rc)
			return rc;
	}
	return rd_elem_items(d, s, exprs);
}

static enum err_code sec_elem(struct dec *d)
{
	struct wasm_module *m = d->m;
	if (rd_len(&d->r, &m->nelems, d->err))
		return ERR_WASM_MALFORMED;
	if (!(m->elems = alloc_n(d, m->nelems, sizeof(*m->elems))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < m->nelems; i++) {
		enum err_code rc = rd_elem(d, &m->elems[i]);
		if (rc)
			return rc;
	}
	return ERR_OK;
}

enum err_code wasm_rd_locals(struct wasm_reader *r, uint64_t *total, struct err *err)
{
	uint32_t ngroups;
	*total = 0;
	if (rd_len(r, &ngroups, err))
		return ERR_WASM_MALFORMED;
	for (uint32_t i = 0; i < ngroups; i++) {
		uint32_t n;
		enum wasm_valtype t;
		if (wasm_rd_u32(r, &n, err) || wasm_rd_valtype(r, &t, err))
			return ERR_WASM_MALFORMED;
		*total += n;
	}
	if (*total > UINT32_MAX)
		return malformed(err, "too many locals");
	return ERR_OK;
}

/* A body is decoded here (not validated) so that its encoding errors are
 * found in file order; wasm_compile.c parses it again to translate it. */
static enum err_code skim_body(struct dec *d, uint32_t size)
{
	size_t start = d->r.pos;
	uint64_t total;
	if (wasm_rd_locals(&d->r, &total, d->err) || wasm_skim_expr(&d->r, &d->uses_data, d->err))
		return ERR_WASM_MALFORMED;
	if (d->r.pos != start + size)
		return malformed(d->err, "section size mismatch");
	return ERR_OK;
}

static enum err_code sec_code(struct dec *d)
{
	struct wasm_module *m = d->m;
	uint32_t n, ndef = m->nfuncs - m->nfunc_imports;
	if (rd_len(&d->r, &n, d->err))
		return ERR_WASM_MALFORMED;
	m->ncodes = n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t size;
		if (rd_len(&d->r, &size, d->err))
			return ERR_WASM_MALFORMED;
		if (i < ndef) {
			m->codes[i].body_start = (uint32_t)d->r.pos;
			m->codes[i].body_end = (uint32_t)(d->r.pos + size);
		}
		if (skim_body(d, size))
			return ERR_WASM_MALFORMED;
	}
	return ERR_OK;
}

static enum err_code rd_data(struct dec *d, struct wasm_data_seg *s)
{
	uint32_t flags;
	if (wasm_rd_u32(&d->r, &flags, d->err))
		return ERR_WASM_MALFORMED;
	if (flags > 2)
		return malformed(d->err, "malformed data segment kind");
	s->mode = flags == 1 ? SEG_PASSIVE : SEG_ACTIVE;
	if (flags == 2 && wasm_rd_u32(&d->r, &s->mem, d->err))
		return ERR_WASM_MALFORMED;
	if (s->mode == SEG_ACTIVE && rd_cexpr(d, &s->offset))
		return ERR_WASM_MALFORMED;
	if (rd_len(&d->r, &s->len, d->err))
		return ERR_WASM_MALFORMED;
	if (s->len > d->r.end - d->r.pos)
		return wasm_err_eof(d->err);
	s->start = (uint32_t)d->r.pos;
	d->r.pos += s->len;
	return ERR_OK;
}

static enum err_code sec_data(struct dec *d)
{
	struct wasm_module *m = d->m;
	d->has_data = true;
	if (rd_len(&d->r, &m->ndatas, d->err))
		return ERR_WASM_MALFORMED;
	if (m->has_datacount && m->datacount != m->ndatas)
		return malformed(d->err, "data count and data section have inconsistent lengths");
	if (!(m->datas = alloc_n(d, m->ndatas, sizeof(*m->datas))))
		return ERR_NOMEM;
	for (uint32_t i = 0; i < m->ndatas; i++) {
		enum err_code rc = rd_data(d, &m->datas[i]);
		if (rc)
			return rc;
	}
	return ERR_OK;
}

static enum err_code sec_custom(struct dec *d, size_t end)
{
	uint32_t off, len;
	if (rd_name(d, &off, &len))
		return ERR_WASM_MALFORMED;
	d->names_total -= len + 1; /* not kept */
	if (d->r.pos > end)
		return wasm_err_eof(d->err);
	d->r.pos = end;
	return ERR_OK;
}

/* Section ids in their required order; datacount (12) sits before code. */
static int section_order(uint8_t id)
{
	static const int order[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};
	return order[id];
}

static enum err_code dec_section(struct dec *d, uint8_t id, size_t end)
{
	struct wasm_module *m = d->m;
	switch (id) {
	case 0: return sec_custom(d, end);
	case 1: return sec_type(d);
	case 2: return sec_import(d);
	case 3: return sec_func(d);
	case 4: return sec_table(d);
	case 5: return sec_memory(d);
	case 6: return sec_global(d);
	case 7: return sec_export(d);
	case 8:
		m->has_start = true;
		return wasm_rd_u32(&d->r, &m->start, d->err);
	case 9: return sec_elem(d);
	case 10: return sec_code(d);
	case 11: return sec_data(d);
	case 12:
		m->has_datacount = true;
		return wasm_rd_u32(&d->r, &m->datacount, d->err);
	default: return malformed(d->err, "malformed section id");
	}
}

static enum err_code dec_header(struct dec *d)
{
	uint8_t hdr[4];
	if (wasm_rd_fixed(&d->r, hdr, 4, d->err))
		return ERR_WASM_MALFORMED;
	if (memcmp(hdr, "\0asm", 4) != 0)
		return malformed(d->err, "magic header not detected");
	if (wasm_rd_fixed(&d->r, hdr, 4, d->err))
		return ERR_WASM_MALFORMED;
	if (memcmp(hdr, "\1\0\0\0", 4) != 0)
		return malformed(d->err, "unknown binary version");
	return ERR_OK;
}

static enum err_code dec_sections(struct dec *d)
{
	int last = 0;
	while (d->r.pos < d->r.end) {
		uint8_t id;
		uint32_t size;
		if (wasm_rd_byte(&d->r, &id, d->err))
			return ERR_WASM_MALFORMED;
		if (id > 12)
			return malformed(d->err, "malformed section id");
		if (id != 0) {
			if (section_order(id) <= last)
				return malformed(d->err, "unexpected content after last section");
			last = section_order(id);
		}
		if (rd_len(&d->r, &size, d->err))
			return ERR_WASM_MALFORMED;
		size_t end = d->r.pos + size;
		enum err_code rc = dec_section(d, id, end);
		if (rc)
			return rc;
		if (d->r.pos != end)
			return malformed(d->err, "section size mismatch");
	}
	struct wasm_module *m = d->m;
	if (m->ncodes != m->nfuncs - m->nfunc_imports)
		return malformed(d->err, "function and code section have inconsistent lengths");
	if (m->has_datacount && m->datacount != m->ndatas)
		return malformed(d->err, "data count and data section have inconsistent lengths");
	/* Without any data section, memory.init and data.drop are left to
	 * validation ("unknown data segment"): wast2json omits the data count
	 * section of such modules, which the testsuite expects to be invalid. */
	if (d->uses_data && !m->has_datacount && d->has_data)
		return malformed(d->err, "data count section required");
	return ERR_OK;
}

/* Copies every import and export name into one pool, NUL-terminated. */
static enum err_code build_names(struct dec *d)
{
	struct wasm_module *m = d->m;
	char *p = malloc(d->names_total + 1);
	if (!p)
		return err_set(d->err, ERR_NOMEM, "out of memory decoding module");
	m->strpool = p;
	m->footprint += d->names_total + 1;
	for (uint32_t i = 0; i < m->nimports; i++) {
		struct wasm_mimport *im = &m->imports[i];
		uintptr_t mo = (uintptr_t)im->module, no = (uintptr_t)im->name;
		memcpy(p, m->bytes + mo, im->module_len);
		p[im->module_len] = 0;
		im->module = p;
		p += im->module_len + 1;
		memcpy(p, m->bytes + no, im->name_len);
		p[im->name_len] = 0;
		im->name = p;
		p += im->name_len + 1;
	}
	for (uint32_t i = 0; i < m->nexports; i++) {
		struct wasm_mexport *ex = &m->exports[i];
		uintptr_t off = (uintptr_t)ex->name;
		memcpy(p, m->bytes + off, ex->name_len);
		p[ex->name_len] = 0;
		ex->name = p;
		p += ex->name_len + 1;
	}
	return ERR_OK;
}

enum err_code wasm_decode(struct wasm_module *m, struct err *err)
{
	struct dec d = {.m = m, .r = {.base = m->bytes, .pos = 0, .end = m->len}, .err = err};
	/* Names stay offsets into the bytes until the pool is built; nothing
	 * reads them as pointers before that. */
	enum err_code rc = dec_header(&d);
	if (!rc)
		rc = dec_sections(&d);
	if (!rc)
		rc = build_names(&d);
	return rc;
}
