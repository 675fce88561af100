/* wasm_compile.c - validates each function body and translates it, in one
 * pass, into the interpreter's internal code (see wasm_int.h).
 *
 * Validation is the spec's algorithm (operand and control stacks, with
 * polymorphic stacks after unreachable code). Translation turns the stack
 * machine into frame-slot operands: stack position p lives in its own slot
 * (after the locals and the function's constant slots), so an instruction
 * names its operand and result slots and never pushes or pops at run time.
 * Three kinds of operand entries:
 *   K_STACK  the value is in its position's slot;
 *   K_LOCAL  local.get that was not copied: readers use the local's slot;
 *   K_CONST  a constant that was not stored: readers use an immediate form
 *            or the constant's slot (filled on function entry).
 * A K_LOCAL entry is copied to its slot before that local is written, and
 * every entry is stored in its slot before a block, loop or if starts, so
 * that values are in their slots wherever control flow joins.
 * Slot numbers are provisional while translating (stack positions count
 * from the locals, constants are marked); relocate() fixes them once the
 * number of constants is known.
 * Peepholes: an instruction followed by local.set/tee writes the local
 * directly; a compare followed by br_if/if becomes a compare-and-branch;
 * i32/i64 operations with a constant operand use an immediate; an i32.add
 * feeding a load or store becomes part of its address computation.
 * Branches carry the target offset and the copies of their values; forward
 * targets are patched when the block's end is reached.
 * Fuel: the count of instructions directly inside each loop is charged by
 * every branch back to the loop's start (the "_loop" branch variants carry
 * it); the function's count, which includes one pass of each loop, is
 * charged on entry.
 */
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm_int.h"

enum { K_STACK, K_LOCAL, K_CONST };
enum { C_FUNC, C_BLOCK, C_LOOP, C_IF, C_ELSE };
enum { CMP_NONE, CMP_I32, CMP_I32_IMM, CMP_I64, CMP_EQZ32, CMP_EQZ64 };

#define T_UNKNOWN 0

struct opnd {
	uint8_t type; /* a valtype, or T_UNKNOWN (polymorphic stack) */
	uint8_t kind;
	uint32_t local; /* K_LOCAL */
	uint32_t next;  /* K_LOCAL: next lower position naming the same local */
	uint64_t c;     /* K_CONST */
};

struct ctl {
	uint8_t kind;
	bool unreachable; /* the spec's flag: the stack is polymorphic */
	bool dead_entry;  /* entered in unreachable code: emit nothing */
	uint32_t height; /* operand stack height below the block's parameters */
	uint32_t np, nr;
	const enum wasm_valtype *params, *results;
	uint32_t start;      /* loop: cell index of the label */
	uint32_t patches;    /* list of forward jump cells waiting for the end */
	uint32_t else_cell;  /* if: the jump to the else arm */
	uint32_t fuel_cells; /* loop: list of back-edge cells waiting for the charge */
	uint32_t fuel;       /* instructions directly in this loop/function */
	uint32_t fuel_outer;
};

struct comp {
	struct wasm_module *m;
	struct wasm_code *code;
	const struct wasm_ftype *ft;
	struct wasm_reader r;
	struct err *err;
	const int32_t *h;

	uint32_t nlocals; /* params + locals */
	uint8_t *ltypes;
	uint32_t *lhead;
	uint32_t lcap;

	struct opnd *vs;
	uint32_t vsp, vcap, vmax;
	uint32_t mat; /* entries below are all K_STACK */

	struct ctl *cs;
	uint32_t csp, ccap;
	uint32_t fuel_ctl;

	uint32_t *ops;
	uint8_t *isslot; /* per cell: 1 if it holds a slot operand (relocated) */
	uint32_t nops, opcap, oplimit;
	bool oom;

	/* constants read as operands live in slots after the locals */
	uint64_t *consts;
	uint32_t nconsts;
	uint32_t *chash; /* open addressing: const index + 1, 0 = empty */

	/* peephole state: valid while last_end == nops */
	uint32_t last_end, last_dst;
	uint32_t add_at; /* start of the last instruction if it is an i32 add */
	bool add_imm;
	uint8_t cmp_kind, cmp_idx;
	uint32_t cmp_at;
};

static const enum wasm_valtype single_types[] = {WASM_I32, WASM_I64, WASM_F32, WASM_F64,
						 WASM_FUNCREF, WASM_EXTERNREF};

/* ---- errors ---- */

static enum err_code mismatch(struct comp *c)
{
	err_set(c->err, ERR_WASM_INVALID, "type mismatch");
	return ERR_WASM_INVALID;
}

static enum err_code invalid(struct comp *c, const char *msg)
{
	err_set(c->err, ERR_WASM_INVALID, "%s", msg);
	return ERR_WASM_INVALID;
}

static enum err_code unknown(struct comp *c, const char *what, uint32_t idx)
{
	err_set(c->err, ERR_WASM_INVALID, "unknown %s %u", what, idx);
	return ERR_WASM_INVALID;
}

/* ---- emission ---- */

/* No code is emitted where it could never run. */
static bool dead(const struct comp *c)
{
	const struct ctl *f = &c->cs[c->csp - 1];
	return f->unreachable || f->dead_entry;
}

static bool grow_ops(struct comp *c)
{
	uint32_t ncap = c->opcap ? c->opcap * 2 : 256;
	if (ncap > c->oplimit)
		ncap = c->oplimit;
	if (ncap <= c->opcap)
		return false;
	uint32_t *p = realloc(c->ops, (size_t)ncap * sizeof(*p));
	if (!p)
		return false;
	c->ops = p;
	uint8_t *f = realloc(c->isslot, ncap);
	if (!f)
		return false;
	c->isslot = f;
	c->opcap = ncap;
	return true;
}

static uint32_t emit(struct comp *c, uint32_t v)
{
	if (c->nops >= c->opcap && !grow_ops(c)) {
		c->oom = true;
		return c->nops++;
	}
	c->ops[c->nops] = v;
	c->isslot[c->nops] = 0;
	return c->nops++;
}

/* Emits a slot operand: relocated when the function's constants are placed. */
static uint32_t emit_slot(struct comp *c, uint32_t s)
{
	uint32_t cell = emit(c, s);
	if (cell < c->opcap)
		c->isslot[cell] = 1;
	return cell;
}

static void clear_slot(struct comp *c, uint32_t cell)
{
	if (cell < c->opcap)
		c->isslot[cell] = 0;
}

/* Moves a cell (value and slot flag), for in-place rewrites. */
static void move_cell(struct comp *c, uint32_t dst, uint32_t src)
{
	if (dst < c->opcap && src < c->opcap && src < c->nops) {
		c->ops[dst] = c->ops[src];
		c->isslot[dst] = c->isslot[src];
	}
}

static uint32_t emit_op(struct comp *c, enum wasm_op op)
{
	return emit(c, (uint32_t)c->h[op]);
}

static void put(struct comp *c, uint32_t cell, uint32_t v)
{
	if (cell < c->opcap && cell < c->nops)
		c->ops[cell] = v;
}

static uint32_t get(const struct comp *c, uint32_t cell)
{
	return cell < c->opcap && cell < c->nops ? c->ops[cell] : WASM_NONE;
}

static void set_jump(struct comp *c, uint32_t cell, uint32_t target)
{
	put(c, cell, (uint32_t)((int32_t)target - (int32_t)cell));
}

static void no_peephole(struct comp *c)
{
	c->last_end = WASM_NONE;
	c->cmp_kind = CMP_NONE;
	c->add_at = WASM_NONE;
}

/* Marks the instruction just emitted as one whose result slot (cell dst)
 * a following local.set may redirect. */
static void retargetable(struct comp *c, uint32_t dst)
{
	c->last_end = c->nops;
	c->last_dst = dst;
	c->cmp_kind = CMP_NONE;
	c->add_at = WASM_NONE;
}

static uint32_t slot(const struct comp *c, uint32_t pos)
{
	return c->nlocals + pos;
}

#define CONST_MARK 0x80000000u
#define MAX_CONSTS 256u
#define CHASH_SIZE 512u

/* The (marked) slot of a constant, allocated on first use; WASM_NONE when
 * the function has too many distinct constants. */
static uint32_t const_slot(struct comp *c, uint64_t v)
{
	if (!c->chash) {
		c->chash = calloc(CHASH_SIZE, sizeof(*c->chash));
		c->consts = malloc(MAX_CONSTS * sizeof(*c->consts));
		if (!c->chash || !c->consts)
			return WASM_NONE;
	}
	uint32_t h = (uint32_t)((v * 0x9e3779b97f4a7c15ull) >> 55) & (CHASH_SIZE - 1);
	for (;; h = (h + 1) & (CHASH_SIZE - 1)) {
		uint32_t k = c->chash[h];
		if (k == 0)
			break;
		if (c->consts[k - 1] == v)
			return CONST_MARK | (k - 1);
	}
	if (c->nconsts >= MAX_CONSTS)
		return WASM_NONE;
	c->consts[c->nconsts] = v;
	c->chash[h] = ++c->nconsts;
	return CONST_MARK | (c->nconsts - 1);
}

static void emit_const(struct comp *c, uint32_t dst, uint8_t type, uint64_t v)
{
	if (type == WASM_I32 || type == WASM_F32) {
		emit_op(c, OP_const32);
		emit_slot(c, dst);
		emit(c, (uint32_t)v);
	} else {
		emit_op(c, OP_const64);
		emit_slot(c, dst);
		emit(c, (uint32_t)v);
		emit(c, (uint32_t)(v >> 32));
	}
}

static void emit_copy(struct comp *c, uint32_t dst, uint32_t src)
{
	if (dst == src)
		return;
	emit_op(c, OP_copy);
	emit_slot(c, dst);
	emit_slot(c, src);
}

/* The slot a reader of entry e (at position pos) uses: a local's, a
 * constant's, or its own. */
static uint32_t read_slot(struct comp *c, struct opnd *e, uint32_t pos)
{
	if (e->kind == K_LOCAL)
		return e->local;
	if (e->kind == K_CONST && !dead(c)) {
		uint64_t v = e->type == WASM_I32 || e->type == WASM_F32 ? (uint32_t)e->c : e->c;
		uint32_t cs = const_slot(c, v);
		if (cs != WASM_NONE)
			return cs;
		emit_const(c, slot(c, pos), e->type, e->c);
		e->kind = K_STACK;
	}
	return slot(c, pos);
}

/* Stores entry e at position pos into a slot given by dst. */
static void store_to(struct comp *c, const struct opnd *e, uint32_t pos, uint32_t dst)
{
	if (e->kind == K_CONST)
		emit_const(c, dst, e->type, e->c);
	else if (e->kind == K_LOCAL)
		emit_copy(c, dst, e->local);
	else
		emit_copy(c, dst, slot(c, pos));
}

/* ---- operand stack ---- */

static enum err_code push_entry(struct comp *c, struct opnd e)
{
	if (c->vsp >= c->vcap) {
		if (c->vcap >= WASM_MAX_BODY_STACK)
			return invalid(c, "operand stack too deep");
		uint32_t ncap = c->vcap ? c->vcap * 2 : 64;
		struct opnd *p = realloc(c->vs, (size_t)ncap * sizeof(*p));
		if (!p)
			return err_set(c->err, ERR_NOMEM, "out of memory compiling function");
		c->vs = p;
		c->vcap = ncap;
	}
	if (e.kind == K_LOCAL) {
		e.next = c->lhead[e.local];
		c->lhead[e.local] = c->vsp;
	}
	c->vs[c->vsp++] = e;
	if (c->vsp > c->vmax)
		c->vmax = c->vsp;
	return ERR_OK;
}

static enum err_code push(struct comp *c, uint8_t type)
{
	return push_entry(c, (struct opnd){.type = type, .kind = K_STACK});
}

static enum err_code push_local(struct comp *c, uint8_t type, uint32_t x)
{
	if (dead(c))
		return push(c, type);
	return push_entry(c, (struct opnd){.type = type, .kind = K_LOCAL, .local = x});
}

static enum err_code push_const(struct comp *c, uint8_t type, uint64_t v)
{
	return push_entry(c, (struct opnd){.type = type, .kind = K_CONST, .c = v});
}

static void drop_top(struct comp *c)
{
	struct opnd *e = &c->vs[--c->vsp];
	if (e->kind == K_LOCAL)
		c->lhead[e->local] = e->next;
	if (c->vsp < c->mat)
		c->mat = c->vsp;
}

/* pop_val of the spec; *pos is where the entry was. */
static enum err_code pop_any(struct comp *c, struct opnd *out, uint32_t *pos)
{
	struct ctl *f = &c->cs[c->csp - 1];
	if (c->vsp == f->height) {
		*out = (struct opnd){.type = T_UNKNOWN, .kind = K_STACK};
		*pos = c->vsp;
		return f->unreachable ? ERR_OK : mismatch(c);
	}
	*out = c->vs[c->vsp - 1];
	*pos = c->vsp - 1;
	drop_top(c);
	return ERR_OK;
}

static enum err_code pop_t(struct comp *c, uint8_t t, struct opnd *out, uint32_t *pos)
{
	if (pop_any(c, out, pos))
		return ERR_WASM_INVALID;
	if (out->type != t && out->type != T_UNKNOWN && t != T_UNKNOWN)
		return mismatch(c);
	return ERR_OK;
}

/* Checks that the top of the stack matches types[0..n) without popping. */
static enum err_code check_top(struct comp *c, const enum wasm_valtype *types, uint32_t n)
{
	struct ctl *f = &c->cs[c->csp - 1];
	for (uint32_t i = 0; i < n; i++) {
		uint32_t depth = n - i; /* entry i is depth entries below the top */
		if (c->vsp < f->height + depth) {
			if (!f->unreachable)
				return mismatch(c);
			continue;
		}
		uint8_t t = c->vs[c->vsp - depth].type;
		if (t != T_UNKNOWN && t != (uint8_t)types[i])
			return mismatch(c);
	}
	return ERR_OK;
}

static enum err_code pop_types(struct comp *c, const enum wasm_valtype *types, uint32_t n)
{
	struct opnd e;
	uint32_t pos;
	for (uint32_t i = n; i-- > 0;)
		if (pop_t(c, (uint8_t)types[i], &e, &pos))
			return ERR_WASM_INVALID;
	return ERR_OK;
}

static enum err_code push_types(struct comp *c, const enum wasm_valtype *types, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (push(c, (uint8_t)types[i]))
			return ERR_NOMEM;
	return ERR_OK;
}

/* Stores every virtual entry into its slot. */
static void materialize_all(struct comp *c)
{
	for (uint32_t p = c->mat; p < c->vsp; p++) {
		struct opnd *e = &c->vs[p];
		if (e->kind == K_STACK)
			continue;
		if (e->kind == K_LOCAL)
			c->lhead[e->local] = WASM_NONE;
		if (!dead(c))
			store_to(c, e, p, slot(c, p));
		e->kind = K_STACK;
	}
	c->mat = c->vsp;
}

/* Stores the entries at [from, vsp) into their slots. */
static void materialize_top(struct comp *c, uint32_t from)
{
	for (uint32_t p = c->vsp; p-- > from;) {
		struct opnd *e = &c->vs[p];
		if (e->kind == K_STACK)
			continue;
		if (e->kind == K_LOCAL)
			c->lhead[e->local] = e->next;
		if (!dead(c))
			store_to(c, e, p, slot(c, p));
		e->kind = K_STACK;
	}
}

/* Before local x is written: entries that still read x get their copy. */
static void materialize_refs(struct comp *c, uint32_t x)
{
	for (uint32_t p = c->lhead[x]; p != WASM_NONE; p = c->vs[p].next) {
		emit_copy(c, slot(c, p), x);
		c->vs[p].kind = K_STACK;
	}
	c->lhead[x] = WASM_NONE;
}

/* ---- control ---- */

static enum err_code push_ctl(struct comp *c, uint8_t kind, uint32_t np,
			      const enum wasm_valtype *params, uint32_t nr,
			      const enum wasm_valtype *results)
{
	if (c->csp >= c->ccap) {
		uint32_t ncap = c->ccap ? c->ccap * 2 : 16;
		struct ctl *p = realloc(c->cs, (size_t)ncap * sizeof(*p));
		if (!p)
			return err_set(c->err, ERR_NOMEM, "out of memory compiling function");
		c->cs = p;
		c->ccap = ncap;
	}
	bool was_dead = c->csp > 0 && dead(c);
	c->cs[c->csp++] = (struct ctl){.kind = kind, .dead_entry = was_dead, .height = c->vsp,
				       .np = np, .params = params, .nr = nr, .results = results,
				       .patches = WASM_NONE, .else_cell = WASM_NONE,
				       .fuel_cells = WASM_NONE, .fuel_outer = c->fuel_ctl};
	return push_types(c, params, np);
}

static void set_unreachable(struct comp *c)
{
	struct ctl *f = &c->cs[c->csp - 1];
	while (c->vsp > f->height)
		drop_top(c);
	f->unreachable = true;
}

static void label_types(const struct ctl *f, uint32_t *n, const enum wasm_valtype **t)
{
	if (f->kind == C_LOOP) {
		*n = f->np;
		*t = f->params;
	} else {
		*n = f->nr;
		*t = f->results;
	}
}

/* Resolves every pending forward jump of f to the current position. */
static void place_label(struct comp *c, struct ctl *f)
{
	uint32_t cell = f->patches;
	while (cell != WASM_NONE) {
		uint32_t next = get(c, cell);
		set_jump(c, cell, c->nops);
		cell = next;
	}
	f->patches = WASM_NONE;
	no_peephole(c);
}

/* Points the jump offset in `cell` at f; a jump back to a loop has its
 * fuel charge in the next cell, filled when the loop ends. */
static void jump_to(struct comp *c, struct ctl *f, uint32_t cell)
{
	if (f->kind == C_LOOP) {
		set_jump(c, cell, f->start);
		put(c, cell + 1, f->fuel_cells);
		f->fuel_cells = cell + 1;
	} else {
		put(c, cell, f->patches);
		f->patches = cell;
	}
}

static void emit_return(struct comp *c)
{
	uint32_t nr = c->ft->nr;
	if (nr == 0) {
		emit_op(c, OP_ret0);
	} else if (nr == 1) {
		uint32_t s = read_slot(c, &c->vs[c->vsp - 1], c->vsp - 1);
		emit_op(c, OP_ret1);
		emit_slot(c, s);
	} else {
		materialize_top(c, c->vsp - nr);
		emit_op(c, OP_retn);
		emit(c, nr);
		emit_slot(c, slot(c, c->vsp - nr));
	}
	no_peephole(c);
}

/* Whether branching to f must copy values into its slots. */
static bool needs_copies(const struct comp *c, const struct ctl *f)
{
	uint32_t n;
	const enum wasm_valtype *t;
	label_types(f, &n, &t);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = c->vsp - n + i;
		if (c->vs[p].kind != K_STACK || p != f->height + i)
			return true;
	}
	return false;
}

static void emit_copies(struct comp *c, const struct ctl *f)
{
	uint32_t n;
	const enum wasm_valtype *t;
	label_types(f, &n, &t);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = c->vsp - n + i;
		const struct opnd *e = &c->vs[p];
		if (e->kind != K_STACK || p != f->height + i)
			store_to(c, e, p, slot(c, f->height + i));
	}
}

/* Unconditional branch to f (values are on top of the stack). */
static void emit_branch(struct comp *c, struct ctl *f)
{
	if (f == &c->cs[0]) {
		emit_return(c);
		return;
	}
	emit_copies(c, f);
	emit_op(c, f->kind == C_LOOP ? OP_br_loop : OP_br);
	uint32_t cell = emit(c, 0);
	if (f->kind == C_LOOP)
		emit(c, 0);
	jump_to(c, f, cell);
	no_peephole(c);
}

static int negate_cmp(int idx)
{
	static const int neg[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3};
	return neg[idx];
}

/* Rewrites the compare just emitted (at c->cmp_at) into a compare-and-
 * branch; returns the cell of the jump offset. */
static uint32_t fuse_cmp(struct comp *c, bool when, bool loop)
{
	uint32_t at = c->cmp_at;
	uint8_t kind = c->cmp_kind;
	int idx = when ? c->cmp_idx : negate_cmp(c->cmp_idx);
	no_peephole(c);
	if (kind == CMP_EQZ32 || kind == CMP_EQZ64) {
		static const enum wasm_op eqz[2][2][2] = {
			{{OP_br_i32_nez, OP_br_i32_eqz}, {OP_br_i32_nez_loop, OP_br_i32_eqz_loop}},
			{{OP_br_i64_nez, OP_br_i64_eqz}, {OP_br_i64_nez_loop, OP_br_i64_eqz_loop}}};
		put(c, at, (uint32_t)c->h[eqz[kind == CMP_EQZ64][loop][when]]);
		move_cell(c, at + 1, at + 2);
		clear_slot(c, at + 2);
		if (loop)
			emit(c, 0);
		return at + 2;
	}
	enum wasm_op base;
	if (kind == CMP_I32)
		base = loop ? OP_br_i32_eq_loop : OP_br_i32_eq;
	else if (kind == CMP_I64)
		base = loop ? OP_br_i64_eq_loop : OP_br_i64_eq;
	else
		base = loop ? OP_br_i32_eq_imm_loop : OP_br_i32_eq_imm;
	put(c, at, (uint32_t)c->h[base + idx]);
	move_cell(c, at + 1, at + 2);
	move_cell(c, at + 2, at + 3);
	clear_slot(c, at + 3);
	if (loop)
		emit(c, 0);
	return at + 3;
}

/* Emits a jump taken when the condition (entry e at pos) is true, or false
 * if !when; returns the cell holding the jump offset. A jump back to a loop
 * (`loop`) has a cell for the fuel charge after it. */
static uint32_t emit_cond_jump(struct comp *c, struct opnd *e, uint32_t pos, bool when, bool loop)
{
	if (c->cmp_kind != CMP_NONE && c->last_end == c->nops && e->kind == K_STACK &&
	    get(c, c->last_dst) == slot(c, pos))
		return fuse_cmp(c, when, loop);
	uint32_t s = read_slot(c, e, pos);
	if (loop)
		emit_op(c, when ? OP_br_if_loop : OP_br_unless);
	else
		emit_op(c, when ? OP_br_if : OP_br_unless);
	emit_slot(c, s);
	uint32_t cell = emit(c, 0);
	if (loop)
		emit(c, 0);
	no_peephole(c);
	return cell;
}

/* ---- block instructions ---- */

static enum err_code read_blocktype(struct comp *c, uint32_t *np, const enum wasm_valtype **p,
				    uint32_t *nr, const enum wasm_valtype **r)
{
	int64_t bt;
	if (wasm_rd_blocktype(&c->r, &bt, c->err))
		return ERR_WASM_MALFORMED;
	*np = *nr = 0;
	*p = *r = NULL;
	if (bt >= 0) {
		if ((uint64_t)bt >= c->m->ntypes)
			return unknown(c, "type", (uint32_t)bt);
		const struct wasm_ftype *t = &c->m->types[bt];
		*np = t->np;
		*nr = t->nr;
		*p = t->v;
		*r = t->v ? t->v + t->np : NULL;
	} else if (bt != -0x40) {
		for (size_t i = 0; i < sizeof(single_types) / sizeof(single_types[0]); i++)
			if ((int64_t)single_types[i] == -bt)
				*r = &single_types[i];
		*nr = 1;
	}
	return ERR_OK;
}

static enum err_code op_block(struct comp *c, uint8_t kind)
{
	uint32_t np, nr;
	const enum wasm_valtype *p, *r;
	enum err_code rc = read_blocktype(c, &np, &p, &nr, &r);
	if (rc)
		return rc;
	if (check_top(c, p, np))
		return ERR_WASM_INVALID;
	materialize_all(c);
	if (pop_types(c, p, np) || push_ctl(c, kind, np, p, nr, r))
		return c->err->code;
	if (kind == C_LOOP) {
		no_peephole(c);
		c->cs[c->csp - 1].start = c->nops;
		c->fuel_ctl = c->csp - 1;
	}
	return ERR_OK;
}

static enum err_code op_if(struct comp *c)
{
	uint32_t np, nr;
	const enum wasm_valtype *p, *r;
	enum err_code rc = read_blocktype(c, &np, &p, &nr, &r);
	if (rc)
		return rc;
	struct opnd cond;
	uint32_t cpos;
	if (pop_t(c, WASM_I32, &cond, &cpos) || check_top(c, p, np))
		return ERR_WASM_INVALID;
	materialize_all(c);
	uint32_t cell = WASM_NONE;
	if (!dead(c))
		cell = emit_cond_jump(c, &cond, cpos, false, false);
	if (pop_types(c, p, np) || push_ctl(c, C_IF, np, p, nr, r))
		return c->err->code;
	c->cs[c->csp - 1].else_cell = cell;
	return ERR_OK;
}

/* Checks the results of the innermost block and stores them in place. */
static enum err_code close_arm(struct comp *c, struct ctl *f)
{
	if (check_top(c, f->results, f->nr))
		return ERR_WASM_INVALID;
	if (c->vsp != f->height + f->nr && !(f->unreachable && c->vsp < f->height + f->nr))
		return mismatch(c);
	if (!dead(c))
		materialize_top(c, f->height);
	return ERR_OK;
}

static enum err_code op_else(struct comp *c)
{
	struct ctl *f = &c->cs[c->csp - 1];
	if (f->kind != C_IF)
		return err_set(c->err, ERR_WASM_MALFORMED, "END opcode expected");
	if (close_arm(c, f))
		return ERR_WASM_INVALID;
	if (!dead(c)) {
		emit_op(c, OP_br);
		uint32_t cell = emit(c, 0);
		put(c, cell, f->patches);
		f->patches = cell;
	}
	if (f->else_cell != WASM_NONE)
		set_jump(c, f->else_cell, c->nops);
	f->else_cell = WASM_NONE;
	no_peephole(c);
	while (c->vsp > f->height)
		drop_top(c);
	f->kind = C_ELSE;
	f->unreachable = false;
	return push_types(c, f->params, f->np);
}

static bool same_types(uint32_t n1, const enum wasm_valtype *a, uint32_t n2,
		       const enum wasm_valtype *b)
{
	return n1 == n2 && (n1 == 0 || memcmp(a, b, n1 * sizeof(*a)) == 0);
}

static enum err_code op_end(struct comp *c)
{
	struct ctl *f = &c->cs[c->csp - 1];
	if (close_arm(c, f))
		return ERR_WASM_INVALID;
	if (f->kind == C_IF && !same_types(f->np, f->params, f->nr, f->results))
		return mismatch(c);
	if (c->csp == 1) {
		if (!dead(c))
			emit_return(c);
		c->csp = 0;
		return ERR_OK;
	}
	if (f->kind == C_LOOP) {
		uint32_t cost = f->fuel ? f->fuel : 1;
		for (uint32_t cell = f->fuel_cells; cell != WASM_NONE;) {
			uint32_t next = get(c, cell);
			put(c, cell, cost);
			cell = next;
		}
		c->fuel_ctl = f->fuel_outer;
		c->cs[c->fuel_ctl].fuel += f->fuel; /* the first pass */
	}
	if (f->else_cell != WASM_NONE)
		set_jump(c, f->else_cell, c->nops);
	place_label(c, f);
	while (c->vsp > f->height)
		drop_top(c);
	uint32_t nr = f->nr;
	const enum wasm_valtype *r = f->results;
	c->csp--;
	return push_types(c, r, nr);
}

/* ---- branches ---- */

static enum err_code label_at(struct comp *c, uint32_t depth, struct ctl **out)
{
	*out = NULL;
	if (depth >= c->csp)
		return unknown(c, "label", depth);
	*out = &c->cs[c->csp - 1 - depth];
	return ERR_OK;
}

static enum err_code op_br(struct comp *c)
{
	uint32_t l;
	struct ctl *f;
	if (wasm_rd_u32(&c->r, &l, c->err))
		return ERR_WASM_MALFORMED;
	if (label_at(c, l, &f))
		return ERR_WASM_INVALID;
	uint32_t n;
	const enum wasm_valtype *t;
	label_types(f, &n, &t);
	if (check_top(c, t, n))
		return ERR_WASM_INVALID;
	if (!dead(c))
		emit_branch(c, f);
	set_unreachable(c);
	return ERR_OK;
}

/* After br_if, the label's values stay with the label's types. */
static enum err_code retype_top(struct comp *c, const enum wasm_valtype *t, uint32_t n)
{
	struct ctl *cur = &c->cs[c->csp - 1];
	if (!cur->unreachable)
		return ERR_OK;
	for (uint32_t i = 0; i < n && c->vsp > cur->height; i++)
		drop_top(c);
	return push_types(c, t, n);
}

static enum err_code op_br_if(struct comp *c)
{
	uint32_t l;
	struct ctl *f;
	if (wasm_rd_u32(&c->r, &l, c->err))
		return ERR_WASM_MALFORMED;
	if (label_at(c, l, &f))
		return ERR_WASM_INVALID;
	struct opnd cond;
	uint32_t cpos;
	uint32_t n;
	const enum wasm_valtype *t;
	label_types(f, &n, &t);
	if (pop_t(c, WASM_I32, &cond, &cpos) || check_top(c, t, n))
		return ERR_WASM_INVALID;
	if (dead(c))
		return retype_top(c, t, n);
	if (f == &c->cs[0] || needs_copies(c, f)) {
		uint32_t skip = emit_cond_jump(c, &cond, cpos, false, false);
		emit_branch(c, f);
		set_jump(c, skip, c->nops);
		no_peephole(c);
	} else {
		jump_to(c, f, emit_cond_jump(c, &cond, cpos, true, f->kind == C_LOOP));
	}
	return ERR_OK;
}

struct stub {
	uint32_t depth;
	uint32_t cells; /* list of br_table cells (linked through the cells) */
};

/* The spec's check: every label exists and has the default's arity, and
 * the stack matches each label's types. */
static enum err_code check_br_table(struct comp *c, const uint32_t *ls, uint32_t n)
{
	struct ctl *def, *f;
	uint32_t arity, fn;
	const enum wasm_valtype *t;
	if (label_at(c, ls[n], &def))
		return ERR_WASM_INVALID;
	label_types(def, &arity, &t);
	for (uint32_t i = 0; i <= n; i++) {
		if (label_at(c, ls[i], &f))
			return ERR_WASM_INVALID;
		label_types(f, &fn, &t);
		if (fn != arity)
			return mismatch(c);
		if (check_top(c, t, fn))
			return ERR_WASM_INVALID;
	}
	return ERR_OK;
}

/* [br_table, idx, n, off_0 .. off_n]; targets that need value copies, a
 * fuel charge or a return get a stub after the table (one per label). */
static void emit_br_table(struct comp *c, uint32_t is, const uint32_t *ls, uint32_t n,
			  struct stub *stubs)
{
	uint32_t nstubs = 0;
	emit_op(c, OP_br_table);
	emit_slot(c, is);
	emit(c, n);
	uint32_t first = c->nops;
	for (uint32_t i = 0; i <= n; i++)
		emit(c, 0);
	for (uint32_t i = 0; i <= n; i++) {
		struct ctl *f = &c->cs[c->csp - 1 - ls[i]];
		if (f != &c->cs[0] && f->kind != C_LOOP && !needs_copies(c, f)) {
			jump_to(c, f, first + i);
			continue;
		}
		uint32_t k = 0;
		while (k < nstubs && stubs[k].depth != ls[i])
			k++;
		if (k == nstubs)
			stubs[nstubs++] = (struct stub){.depth = ls[i], .cells = WASM_NONE};
		put(c, first + i, stubs[k].cells);
		stubs[k].cells = first + i;
	}
	for (uint32_t k = 0; k < nstubs; k++) {
		for (uint32_t cell = stubs[k].cells; cell != WASM_NONE;) {
			uint32_t next = get(c, cell);
			set_jump(c, cell, c->nops);
			cell = next;
		}
		emit_branch(c, &c->cs[c->csp - 1 - stubs[k].depth]);
	}
	no_peephole(c);
}

static enum err_code op_br_table(struct comp *c)
{
	uint32_t n = 0;
	enum err_code rc = ERR_OK;
	if (wasm_rd_u32(&c->r, &n, c->err))
		return ERR_WASM_MALFORMED;
	if (n > c->r.end - c->r.pos)
		return err_set(c->err, ERR_WASM_MALFORMED, "length out of bounds");
	uint32_t *ls = malloc(((size_t)n + 1) * sizeof(*ls));
	struct stub *stubs = malloc(((size_t)n + 1) * sizeof(*stubs));
	if (!ls || !stubs) {
		rc = err_set(c->err, ERR_NOMEM, "out of memory compiling function");
		goto out;
	}
	for (uint32_t i = 0; i <= n; i++)
		if ((rc = wasm_rd_u32(&c->r, &ls[i], c->err)))
			goto out;
	struct opnd idx;
	uint32_t ipos;
	if ((rc = pop_t(c, WASM_I32, &idx, &ipos)) || (rc = check_br_table(c, ls, n)))
		goto out;
	if (!dead(c))
		emit_br_table(c, read_slot(c, &idx, ipos), ls, n, stubs);
	set_unreachable(c);
out:
	free(ls);
	free(stubs);
	return rc;
}

/* ---- calls ---- */

static enum err_code emit_call_args(struct comp *c, const struct wasm_ftype *t, uint32_t *base)
{
	if (check_top(c, t->v, t->np))
		return ERR_WASM_INVALID;
	if (c->vsp >= t->np)
		materialize_top(c, c->vsp - t->np);
	if (pop_types(c, t->v, t->np))
		return ERR_WASM_INVALID;
	*base = slot(c, c->vsp);
	return ERR_OK;
}

static enum err_code op_call(struct comp *c)
{
	uint32_t x, base;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (x >= c->m->nfuncs)
		return unknown(c, "function", x);
	const struct wasm_ftype *t = &c->m->types[c->m->func_type[x]];
	if (emit_call_args(c, t, &base))
		return ERR_WASM_INVALID;
	if (!dead(c)) {
		emit_op(c, OP_call);
		emit(c, x);
		emit_slot(c, base);
		no_peephole(c);
	}
	return push_types(c, t->v ? t->v + t->np : NULL, t->nr);
}

static enum err_code op_call_indirect(struct comp *c)
{
	uint32_t y, x, base;
	if (wasm_rd_u32(&c->r, &y, c->err) || wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (x >= c->m->ntables)
		return unknown(c, "table", x);
	if (y >= c->m->ntypes)
		return unknown(c, "type", y);
	if (c->m->tables[x].elem != WASM_FUNCREF)
		return mismatch(c);
	const struct wasm_ftype *t = &c->m->types[y];
	struct opnd idx;
	uint32_t ipos;
	if (pop_t(c, WASM_I32, &idx, &ipos))
		return ERR_WASM_INVALID;
	uint32_t is = 0;
	if (!dead(c))
		is = read_slot(c, &idx, ipos);
	if (emit_call_args(c, t, &base))
		return ERR_WASM_INVALID;
	if (!dead(c)) {
		emit_op(c, OP_call_indirect);
		emit(c, y);
		emit(c, x);
		emit_slot(c, is);
		emit_slot(c, base);
		no_peephole(c);
	}
	return push_types(c, t->v ? t->v + t->np : NULL, t->nr);
}

/* ---- variables ---- */

static void store_local(struct comp *c, uint32_t x, struct opnd *e, uint32_t pos)
{
	if (c->lhead[x] != WASM_NONE)
		materialize_refs(c, x);
	if (e->kind == K_STACK && c->last_end == c->nops && get(c, c->last_dst) == slot(c, pos)) {
		put(c, c->last_dst, x);
		no_peephole(c);
		return;
	}
	store_to(c, e, pos, x);
	no_peephole(c);
}

static enum err_code op_local(struct comp *c, uint8_t op)
{
	uint32_t x;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (x >= c->nlocals)
		return unknown(c, "local", x);
	uint8_t t = c->ltypes[x];
	if (op == 0x20)
		return push_local(c, t, x);
	struct opnd e;
	uint32_t pos;
	if (pop_t(c, t, &e, &pos))
		return ERR_WASM_INVALID;
	if (!dead(c))
		store_local(c, x, &e, pos);
	if (op == 0x21)
		return ERR_OK;
	if (e.kind == K_CONST && !dead(c))
		return push_const(c, t, e.c);
	return push_local(c, t, x);
}

static enum err_code op_global(struct comp *c, uint8_t op)
{
	uint32_t x;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (x >= c->m->nglobals)
		return unknown(c, "global", x);
	uint8_t t = (uint8_t)c->m->globals[x].type;
	if (op == 0x23) {
		uint32_t p = c->vsp;
		if (push(c, t))
			return ERR_NOMEM;
		if (!dead(c)) {
			emit_op(c, OP_global_get);
			uint32_t d = emit_slot(c, slot(c, p));
			emit(c, x);
			retargetable(c, d);
		}
		return ERR_OK;
	}
	if (!c->m->globals[x].mut)
		return invalid(c, "global is immutable");
	struct opnd e;
	uint32_t pos;
	if (pop_t(c, t, &e, &pos))
		return ERR_WASM_INVALID;
	if (!dead(c)) {
		uint32_t s = read_slot(c, &e, pos);
		emit_op(c, OP_global_set);
		emit(c, x);
		emit_slot(c, s);
		no_peephole(c);
	}
	return ERR_OK;
}

/* ---- generic operators ---- */

/* Pops operands of types in[0..n) and pushes a result of type out (0: none);
 * emits `op` followed by the result slot and the operand slots. */
static enum err_code emit_simple(struct comp *c, enum wasm_op op, const uint8_t *in, uint32_t n,
				 uint8_t out)
{
	struct opnd e[5];
	uint32_t pos[5], s[5];
	for (uint32_t i = n; i-- > 0;)
		if (pop_t(c, in[i], &e[i], &pos[i]))
			return ERR_WASM_INVALID;
	uint32_t p = c->vsp;
	if (out && push(c, out))
		return ERR_NOMEM;
	if (dead(c))
		return ERR_OK;
	for (uint32_t i = 0; i < n; i++)
		s[i] = read_slot(c, &e[i], pos[i]);
	emit_op(c, op);
	uint32_t d = out ? emit_slot(c, slot(c, p)) : 0;
	for (uint32_t i = 0; i < n; i++)
		emit_slot(c, s[i]);
	if (out)
		retargetable(c, d);
	else
		no_peephole(c);
	return ERR_OK;
}

/* The immediate form of a binary op, or -1. */
static int imm_form(enum wasm_op op)
{
	switch (op) {
	case OP_i32_add: return OP_i32_add_imm;
	case OP_i32_sub: return OP_i32_sub_imm;
	case OP_i32_mul: return OP_i32_mul_imm;
	case OP_i32_and: return OP_i32_and_imm;
	case OP_i32_or: return OP_i32_or_imm;
	case OP_i32_xor: return OP_i32_xor_imm;
	case OP_i32_shl: return OP_i32_shl_imm;
	case OP_i32_shr_s: return OP_i32_shr_s_imm;
	case OP_i32_shr_u: return OP_i32_shr_u_imm;
	case OP_i64_add: return OP_i64_add_imm;
	case OP_i64_sub: return OP_i64_sub_imm;
	case OP_i64_mul: return OP_i64_mul_imm;
	case OP_i64_and: return OP_i64_and_imm;
	case OP_i64_or: return OP_i64_or_imm;
	case OP_i64_xor: return OP_i64_xor_imm;
	case OP_i64_shl: return OP_i64_shl_imm;
	case OP_i64_shr_s: return OP_i64_shr_s_imm;
	case OP_i64_shr_u: return OP_i64_shr_u_imm;
	default: break;
	}
	if (op >= OP_i32_eq && op <= OP_i32_ge_u)
		return OP_i32_eq_imm + (op - OP_i32_eq);
	return -1;
}

/* With a constant left operand, a commutative op takes it on the right and a
 * compare is mirrored, so that the immediate form applies. */
static enum wasm_op swap_operands(enum wasm_op op, struct opnd *a, uint32_t *pa, struct opnd *b,
				  uint32_t *pb)
{
	static const uint8_t mirror[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7};
	bool commutes = op == OP_i32_add || op == OP_i32_mul || op == OP_i32_and ||
			op == OP_i32_or || op == OP_i32_xor || op == OP_i64_add || op == OP_i64_mul ||
			op == OP_i64_and || op == OP_i64_or || op == OP_i64_xor;
	bool cmp = op >= OP_i32_eq && op <= OP_i32_ge_u;
	if (a->kind != K_CONST || b->kind == K_CONST || (!commutes && !cmp))
		return op;
	struct opnd t = *a;
	uint32_t tp = *pa;
	*a = *b, *pa = *pb;
	*b = t, *pb = tp;
	return cmp ? (enum wasm_op)(OP_i32_eq + mirror[op - OP_i32_eq]) : op;
}

static enum err_code emit_binary(struct comp *c, enum wasm_op op, uint8_t tin, uint8_t tout)
{
	struct opnd a, b;
	uint32_t pa, pb;
	if (pop_t(c, tin, &b, &pb) || pop_t(c, tin, &a, &pa))
		return ERR_WASM_INVALID;
	uint32_t p = c->vsp;
	if (push(c, tout))
		return ERR_NOMEM;
	if (dead(c))
		return ERR_OK;
	op = swap_operands(op, &a, &pa, &b, &pb);
	int imm = b.kind == K_CONST ? imm_form(op) : -1;
	uint32_t sa = read_slot(c, &a, pa);
	uint32_t sb = imm < 0 ? read_slot(c, &b, pb) : 0;
	uint32_t at = emit_op(c, imm < 0 ? op : (enum wasm_op)imm);
	uint32_t d = emit_slot(c, slot(c, p));
	emit_slot(c, sa);
	if (imm < 0) {
		emit_slot(c, sb);
	} else {
		emit(c, (uint32_t)b.c);
		if (tin == WASM_I64)
			emit(c, (uint32_t)(b.c >> 32));
	}
	retargetable(c, d);
	if (op == OP_i32_add) {
		c->add_at = at;
		c->add_imm = imm >= 0;
	}
	if (op >= OP_i32_eq && op <= OP_i32_ge_u) {
		c->cmp_kind = imm < 0 ? CMP_I32 : CMP_I32_IMM;
		c->cmp_idx = (uint8_t)(op - OP_i32_eq);
		c->cmp_at = at;
	} else if (op >= OP_i64_eq && op <= OP_i64_ge_u) {
		c->cmp_kind = CMP_I64;
		c->cmp_idx = (uint8_t)(op - OP_i64_eq);
		c->cmp_at = at;
	}
	return ERR_OK;
}

static enum err_code emit_unary(struct comp *c, enum wasm_op op, uint8_t tin, uint8_t tout)
{
	enum err_code rc = emit_simple(c, op, &tin, 1, tout);
	if (rc || dead(c))
		return rc;
	if (op == OP_i32_eqz || op == OP_i64_eqz) {
		c->cmp_kind = op == OP_i32_eqz ? CMP_EQZ32 : CMP_EQZ64;
		c->cmp_at = c->nops - 3;
	}
	return ERR_OK;
}

/* A conversion that only changes the type: no code. */
static enum err_code retype(struct comp *c, uint8_t tin, uint8_t tout)
{
	struct opnd e;
	uint32_t pos;
	if (pop_t(c, tin, &e, &pos))
		return ERR_WASM_INVALID;
	e.type = tout;
	if (dead(c) || e.kind == K_STACK)
		return push(c, tout);
	if (e.kind == K_CONST)
		return push_const(c, tout, tout == WASM_I32 || tout == WASM_F32 ? (uint32_t)e.c : e.c);
	return push_local(c, tout, e.local);
}

#define I32 WASM_I32
#define I64 WASM_I64
#define F32 WASM_F32
#define F64 WASM_F64

/* Operator signature for opcodes 0x45..0xc4. */
static void numeric_sig(uint8_t opc, uint8_t *in, bool *bin, uint8_t *out)
{
	static const struct { uint8_t lo, hi, in, out; bool bin; } ranges[] = {
		{0x45, 0x45, I32, I32, false}, {0x46, 0x4f, I32, I32, true},
		{0x50, 0x50, I64, I32, false}, {0x51, 0x5a, I64, I32, true},
		{0x5b, 0x60, F32, I32, true},  {0x61, 0x66, F64, I32, true},
		{0x67, 0x69, I32, I32, false}, {0x6a, 0x78, I32, I32, true},
		{0x79, 0x7b, I64, I64, false}, {0x7c, 0x8a, I64, I64, true},
		{0x8b, 0x91, F32, F32, false}, {0x92, 0x98, F32, F32, true},
		{0x99, 0x9f, F64, F64, false}, {0xa0, 0xa6, F64, F64, true},
		{0xa7, 0xa7, I64, I32, false}, {0xa8, 0xa9, F32, I32, false},
		{0xaa, 0xab, F64, I32, false}, {0xac, 0xad, I32, I64, false},
		{0xae, 0xaf, F32, I64, false}, {0xb0, 0xb1, F64, I64, false},
		{0xb2, 0xb3, I32, F32, false}, {0xb4, 0xb5, I64, F32, false},
		{0xb6, 0xb6, F64, F32, false}, {0xb7, 0xb8, I32, F64, false},
		{0xb9, 0xba, I64, F64, false}, {0xbb, 0xbb, F32, F64, false},
		{0xbc, 0xbc, F32, I32, false}, {0xbd, 0xbd, F64, I64, false},
		{0xbe, 0xbe, I32, F32, false}, {0xbf, 0xbf, I64, F64, false},
		{0xc0, 0xc1, I32, I32, false}, {0xc2, 0xc4, I64, I64, false},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		if (opc >= ranges[i].lo && opc <= ranges[i].hi) {
			*in = ranges[i].in;
			*out = ranges[i].out;
			*bin = ranges[i].bin;
			return;
		}
	}
}

static enum wasm_op numeric_op(uint8_t opc)
{
	if (opc <= 0x4f)
		return OP_i32_eqz + (opc - 0x45);
	if (opc <= 0x5a)
		return OP_i64_eqz + (opc - 0x50);
	if (opc <= 0x66)
		return OP_f32_eq + (opc - 0x5b);
	if (opc <= 0x78)
		return OP_i32_clz + (opc - 0x67);
	if (opc <= 0x8a)
		return OP_i64_clz + (opc - 0x79);
	if (opc <= 0x98)
		return OP_f32_abs + (opc - 0x8b);
	if (opc <= 0xa6)
		return OP_f64_abs + (opc - 0x99);
	if (opc >= 0xa8 && opc <= 0xbb)
		return OP_i32_trunc_f32_s + (opc - 0xa8);
	return OP_i32_extend8_s + (opc - 0xc0);
}

static enum err_code op_numeric(struct comp *c, uint8_t opc)
{
	uint8_t in = 0, out = 0;
	bool bin = false;
	numeric_sig(opc, &in, &bin, &out);
	if (opc == 0xa7 || (opc >= 0xbc && opc <= 0xbf))
		return retype(c, in, out);
	enum wasm_op op = numeric_op(opc);
	return bin ? emit_binary(c, op, in, out) : emit_unary(c, op, in, out);
}

/* ---- memory ---- */

static enum err_code need_mem(struct comp *c)
{
	return c->m->nmems ? ERR_OK : unknown(c, "memory", 0);
}

/* The "_ai"/"_aa" form of a load or store op. */
static enum wasm_op address_form(enum wasm_op op, bool imm)
{
	if (op >= OP_load32 && op <= OP_i64_load32_s)
		return (imm ? OP_load32_ai : OP_load32_aa) + (op - OP_load32);
	return (imm ? OP_store8_ai : OP_store8_aa) + (op - OP_store8);
}

/* When the address (entry a at pa) is the result of the i32 add emitted
 * just before, rewrites that add into the load (dst != WASM_NONE) or store
 * (value slot sv) with the addition built in: [op, dst|x, x|y/imm, ...]. */
static bool fuse_address(struct comp *c, const struct opnd *a, uint32_t pa, enum wasm_op op,
			 uint32_t dst, uint32_t sv, uint32_t offset)
{
	if (c->add_at == WASM_NONE || c->last_end != c->nops || a->kind != K_STACK ||
	    get(c, c->last_dst) != slot(c, pa))
		return false;
	uint32_t at = c->add_at;
	bool imm = c->add_imm;
	no_peephole(c);
	put(c, at, (uint32_t)c->h[address_form(op, imm)]);
	if (dst != WASM_NONE) {
		/* [add, d, x, y] -> [load, dst, x, y, offset] */
		put(c, at + 1, dst);
		emit(c, offset);
		retargetable(c, at + 1);
		return true;
	}
	/* [add, d, x, y] -> [store, x, y, value, offset] */
	move_cell(c, at + 1, at + 2);
	move_cell(c, at + 2, at + 3);
	put(c, at + 3, sv);
	if (at + 3 < c->opcap)
		c->isslot[at + 3] = 1;
	emit(c, offset);
	return true;
}

static enum err_code op_load(struct comp *c, enum wasm_op op, uint8_t t, uint32_t offset)
{
	struct opnd a;
	uint32_t pa;
	if (pop_t(c, I32, &a, &pa))
		return ERR_WASM_INVALID;
	uint32_t p = c->vsp;
	if (push(c, t))
		return ERR_NOMEM;
	if (dead(c) || fuse_address(c, &a, pa, op, slot(c, p), WASM_NONE, offset))
		return ERR_OK;
	uint32_t sa = read_slot(c, &a, pa);
	emit_op(c, op);
	uint32_t d = emit_slot(c, slot(c, p));
	emit_slot(c, sa);
	emit(c, offset);
	retargetable(c, d);
	return ERR_OK;
}

static enum err_code op_store(struct comp *c, enum wasm_op op, uint8_t t, uint32_t offset)
{
	struct opnd a, v;
	uint32_t pa, pv;
	if (pop_t(c, t, &v, &pv) || pop_t(c, I32, &a, &pa))
		return ERR_WASM_INVALID;
	if (dead(c))
		return ERR_OK;
	uint32_t sv = read_slot(c, &v, pv);
	if (fuse_address(c, &a, pa, op, WASM_NONE, sv, offset))
		return ERR_OK;
	uint32_t sa = read_slot(c, &a, pa);
	emit_op(c, op);
	emit_slot(c, sa);
	emit_slot(c, sv);
	emit(c, offset);
	no_peephole(c);
	return ERR_OK;
}

/* Loads and stores (0x28..0x3e): memarg, memory and alignment checks. */
static enum err_code op_memarg(struct comp *c, uint8_t opc)
{
	static const uint8_t natural[] = {
		/* 0x28 */ 2, 3, 2, 3, 0, 0, 1, 1, 0, 0, 1, 1, 2, 2,
		/* 0x36 */ 2, 3, 2, 3, 0, 1, 0, 1, 2};
	static const enum wasm_op ops[] = {
		OP_load32, OP_load64, OP_load32, OP_load64, OP_i32_load8_s, OP_load8_u,
		OP_i32_load16_s, OP_load16_u, OP_i64_load8_s, OP_load8_u, OP_i64_load16_s,
		OP_load16_u, OP_i64_load32_s, OP_load32,
		OP_store32, OP_store64, OP_store32, OP_store64, OP_store8, OP_store16,
		OP_store8, OP_store16, OP_store32};
	static const uint8_t vt[] = {I32, I64, F32, F64, I32, I32, I32, I32, I64, I64, I64, I64,
				     I64, I64, I32, I64, F32, F64, I32, I32, I64, I64, I64};
	uint32_t align, offset;
	if (wasm_rd_u32(&c->r, &align, c->err))
		return ERR_WASM_MALFORMED;
	if (align >= 32)
		return err_set(c->err, ERR_WASM_MALFORMED, "malformed memop flags");
	if (wasm_rd_u32(&c->r, &offset, c->err))
		return ERR_WASM_MALFORMED;
	if (need_mem(c))
		return ERR_WASM_INVALID;
	uint32_t i = opc - 0x28;
	if (align > natural[i])
		return invalid(c, "alignment must not be larger than natural");
	return opc <= 0x35 ? op_load(c, ops[i], vt[i], offset) : op_store(c, ops[i], vt[i], offset);
}

static enum err_code rd_zero(struct comp *c)
{
	uint8_t b;
	if (wasm_rd_byte(&c->r, &b, c->err))
		return ERR_WASM_MALFORMED;
	if (b != 0)
		return err_set(c->err, ERR_WASM_MALFORMED, "zero byte expected");
	return ERR_OK;
}

static enum err_code op_memsize(struct comp *c, uint8_t opc)
{
	if (rd_zero(c))
		return ERR_WASM_MALFORMED;
	if (need_mem(c))
		return ERR_WASM_INVALID;
	static const uint8_t i32[] = {I32};
	return opc == 0x3f ? emit_simple(c, OP_memory_size, NULL, 0, I32)
			   : emit_simple(c, OP_memory_grow, i32, 1, I32);
}

/* Emits op followed by immediates imm[0..nimm) and then operand slots. */
static enum err_code emit_with_imm(struct comp *c, enum wasm_op op, const uint32_t *imm,
				   uint32_t nimm, const uint8_t *in, uint32_t n, uint8_t out)
{
	struct opnd e[4];
	uint32_t pos[4], s[4];
	for (uint32_t i = n; i-- > 0;)
		if (pop_t(c, in[i], &e[i], &pos[i]))
			return ERR_WASM_INVALID;
	uint32_t p = c->vsp;
	if (out && push(c, out))
		return ERR_NOMEM;
	if (dead(c))
		return ERR_OK;
	for (uint32_t i = 0; i < n; i++)
		s[i] = read_slot(c, &e[i], pos[i]);
	emit_op(c, op);
	if (out)
		emit_slot(c, slot(c, p));
	for (uint32_t i = 0; i < nimm; i++)
		emit(c, imm[i]);
	for (uint32_t i = 0; i < n; i++)
		emit_slot(c, s[i]);
	no_peephole(c);
	return ERR_OK;
}

/* ---- tables and references ---- */

static enum err_code table_at(struct comp *c, uint32_t x, uint8_t *elem)
{
	*elem = 0;
	if (x >= c->m->ntables)
		return unknown(c, "table", x);
	*elem = (uint8_t)c->m->tables[x].elem;
	return ERR_OK;
}

static enum err_code op_table(struct comp *c, uint8_t opc)
{
	uint32_t x;
	uint8_t t;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (table_at(c, x, &t))
		return ERR_WASM_INVALID;
	if (opc == 0x25) {
		const uint8_t in[] = {I32};
		return emit_with_imm(c, OP_table_get, &x, 1, in, 1, t);
	}
	const uint8_t in[] = {I32, t};
	return emit_with_imm(c, OP_table_set, &x, 1, in, 2, 0);
}

static bool is_ref(uint8_t t)
{
	return t == WASM_FUNCREF || t == WASM_EXTERNREF || t == T_UNKNOWN;
}

static bool is_num(uint8_t t)
{
	return t == I32 || t == I64 || t == F32 || t == F64 || t == T_UNKNOWN;
}

static enum err_code op_ref(struct comp *c, uint8_t opc)
{
	if (opc == 0xd0) {
		enum wasm_valtype t;
		if (wasm_rd_reftype(&c->r, &t, c->err))
			return ERR_WASM_MALFORMED;
		return push_const(c, (uint8_t)t, 0);
	}
	if (opc == 0xd1) {
		struct opnd e;
		uint32_t pos;
		if (pop_any(c, &e, &pos))
			return ERR_WASM_INVALID;
		if (!is_ref(e.type))
			return mismatch(c);
		if (push(c, I32))
			return ERR_NOMEM;
		if (dead(c))
			return ERR_OK;
		uint32_t sa = read_slot(c, &e, pos);
		emit_op(c, OP_ref_is_null);
		uint32_t d = emit_slot(c, slot(c, pos));
		emit_slot(c, sa);
		retargetable(c, d);
		return ERR_OK;
	}
	uint32_t x;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (x >= c->m->nfuncs)
		return unknown(c, "function", x);
	if (!c->m->func_refd[x])
		return invalid(c, "undeclared function reference");
	return emit_with_imm(c, OP_ref_func, &x, 1, NULL, 0, WASM_FUNCREF);
}

static enum err_code op_select(struct comp *c, uint8_t opc)
{
	uint8_t t = T_UNKNOWN;
	if (opc == 0x1c) {
		uint32_t n;
		enum wasm_valtype vt = WASM_I32;
		if (wasm_rd_u32(&c->r, &n, c->err))
			return ERR_WASM_MALFORMED;
		if (n > c->r.end - c->r.pos)
			return err_set(c->err, ERR_WASM_MALFORMED, "length out of bounds");
		for (uint32_t i = 0; i < n; i++)
			if (wasm_rd_valtype(&c->r, &vt, c->err))
				return ERR_WASM_MALFORMED;
		if (n != 1)
			return invalid(c, "invalid result arity");
		t = (uint8_t)vt;
	}
	struct opnd cond, a, b;
	uint32_t pc, pa, pb;
	if (pop_t(c, I32, &cond, &pc) || pop_t(c, t, &b, &pb) || pop_t(c, t, &a, &pa))
		return ERR_WASM_INVALID;
	if (opc == 0x1b) {
		if (!is_num(a.type) || !is_num(b.type))
			return mismatch(c);
		if (a.type != b.type && a.type != T_UNKNOWN && b.type != T_UNKNOWN)
			return mismatch(c);
		t = a.type == T_UNKNOWN ? b.type : a.type;
	}
	uint32_t p = c->vsp;
	if (push(c, t))
		return ERR_NOMEM;
	if (dead(c))
		return ERR_OK;
	uint32_t sa = read_slot(c, &a, pa), sb = read_slot(c, &b, pb);
	uint32_t sc = read_slot(c, &cond, pc);
	emit_op(c, OP_select);
	uint32_t d = emit_slot(c, slot(c, p));
	emit_slot(c, sa);
	emit_slot(c, sb);
	emit_slot(c, sc);
	retargetable(c, d);
	return ERR_OK;
}

/* ---- 0xfc prefix ---- */

static enum err_code op_fc_bulk(struct comp *c, uint32_t sub)
{
	const uint8_t i3[] = {I32, I32, I32};
	uint32_t imm[2];
	uint8_t t1, t2;
	switch (sub) {
	case 8:
		if (wasm_rd_u32(&c->r, &imm[0], c->err) || rd_zero(c))
			return ERR_WASM_MALFORMED;
		if (need_mem(c))
			return ERR_WASM_INVALID;
		if (imm[0] >= c->m->ndatas)
			return unknown(c, "data segment", imm[0]);
		return emit_with_imm(c, OP_memory_init, imm, 1, i3, 3, 0);
	case 9:
		if (wasm_rd_u32(&c->r, &imm[0], c->err))
			return ERR_WASM_MALFORMED;
		if (imm[0] >= c->m->ndatas)
			return unknown(c, "data segment", imm[0]);
		return emit_with_imm(c, OP_data_drop, imm, 1, NULL, 0, 0);
	case 10:
		if (rd_zero(c) || rd_zero(c))
			return ERR_WASM_MALFORMED;
		if (need_mem(c))
			return ERR_WASM_INVALID;
		return emit_with_imm(c, OP_memory_copy, NULL, 0, i3, 3, 0);
	case 11:
		if (rd_zero(c))
			return ERR_WASM_MALFORMED;
		if (need_mem(c))
			return ERR_WASM_INVALID;
		return emit_with_imm(c, OP_memory_fill, NULL, 0, i3, 3, 0);
	case 12:
		if (wasm_rd_u32(&c->r, &imm[1], c->err) || wasm_rd_u32(&c->r, &imm[0], c->err))
			return ERR_WASM_MALFORMED;
		if (table_at(c, imm[0], &t1))
			return ERR_WASM_INVALID;
		if (imm[1] >= c->m->nelems)
			return unknown(c, "elem segment", imm[1]);
		if (c->m->elems[imm[1]].type != t1)
			return mismatch(c);
		return emit_with_imm(c, OP_table_init, imm, 2, i3, 3, 0);
	case 13:
		if (wasm_rd_u32(&c->r, &imm[0], c->err))
			return ERR_WASM_MALFORMED;
		if (imm[0] >= c->m->nelems)
			return unknown(c, "elem segment", imm[0]);
		return emit_with_imm(c, OP_elem_drop, imm, 1, NULL, 0, 0);
	case 14:
		if (wasm_rd_u32(&c->r, &imm[0], c->err) || wasm_rd_u32(&c->r, &imm[1], c->err))
			return ERR_WASM_MALFORMED;
		if (table_at(c, imm[0], &t1) || table_at(c, imm[1], &t2))
			return ERR_WASM_INVALID;
		if (t1 != t2)
			return mismatch(c);
		return emit_with_imm(c, OP_table_copy, imm, 2, i3, 3, 0);
	default:
		return ERR_INTERNAL;
	}
}

static enum err_code op_fc_table(struct comp *c, uint32_t sub)
{
	uint32_t x;
	uint8_t t;
	if (wasm_rd_u32(&c->r, &x, c->err))
		return ERR_WASM_MALFORMED;
	if (table_at(c, x, &t))
		return ERR_WASM_INVALID;
	if (sub == 15) {
		const uint8_t in[] = {t, I32};
		return emit_with_imm(c, OP_table_grow, &x, 1, in, 2, I32);
	}
	if (sub == 16)
		return emit_with_imm(c, OP_table_size, &x, 1, NULL, 0, I32);
	const uint8_t in[] = {I32, t, I32};
	return emit_with_imm(c, OP_table_fill, &x, 1, in, 3, 0);
}

static enum err_code op_fc(struct comp *c)
{
	uint32_t sub;
	if (wasm_rd_u32(&c->r, &sub, c->err))
		return ERR_WASM_MALFORMED;
	if (sub <= 7) {
		static const uint8_t in[] = {F32, F32, F64, F64, F32, F32, F64, F64};
		uint8_t out = sub < 4 ? I32 : I64;
		return emit_unary(c, OP_i32_trunc_sat_f32_s + sub, in[sub], out);
	}
	if (sub <= 14)
		return op_fc_bulk(c, sub);
	if (sub <= 17)
		return op_fc_table(c, sub);
	return err_set(c->err, ERR_WASM_MALFORMED, "illegal opcode fc %02x", sub);
}

/* ---- driver ---- */

static enum err_code op_const(struct comp *c, uint8_t opc)
{
	int32_t s32;
	int64_t s64;
	uint32_t f32;
	uint64_t f64;
	switch (opc) {
	case 0x41:
		if (wasm_rd_s32(&c->r, &s32, c->err))
			return ERR_WASM_MALFORMED;
		return push_const(c, I32, (uint32_t)s32);
	case 0x42:
		if (wasm_rd_s64(&c->r, &s64, c->err))
			return ERR_WASM_MALFORMED;
		return push_const(c, I64, (uint64_t)s64);
	case 0x43:
		if (wasm_rd_fixed(&c->r, &f32, 4, c->err))
			return ERR_WASM_MALFORMED;
		return push_const(c, F32, f32);
	default:
		if (wasm_rd_fixed(&c->r, &f64, 8, c->err))
			return ERR_WASM_MALFORMED;
		return push_const(c, F64, f64);
	}
}

static enum err_code op_misc(struct comp *c, uint8_t opc)
{
	struct opnd e;
	uint32_t pos;
	switch (opc) {
	case 0x00:
		if (!dead(c)) {
			emit_op(c, OP_unreachable);
			no_peephole(c);
		}
		set_unreachable(c);
		return ERR_OK;
	case 0x01:
		return ERR_OK;
	case 0x0f:
		if (check_top(c, c->ft->v ? c->ft->v + c->ft->np : NULL, c->ft->nr))
			return ERR_WASM_INVALID;
		if (!dead(c))
			emit_return(c);
		set_unreachable(c);
		return ERR_OK;
	case 0x1a:
		return pop_any(c, &e, &pos);
	default:
		return err_set(c->err, ERR_WASM_MALFORMED, "illegal opcode %02x", opc);
	}
}

static enum err_code compile_op(struct comp *c, uint8_t opc)
{
	switch (opc) {
	case 0x02: return op_block(c, C_BLOCK);
	case 0x03: return op_block(c, C_LOOP);
	case 0x04: return op_if(c);
	case 0x05: return op_else(c);
	case 0x0b: return op_end(c);
	case 0x0c: return op_br(c);
	case 0x0d: return op_br_if(c);
	case 0x0e: return op_br_table(c);
	case 0x10: return op_call(c);
	case 0x11: return op_call_indirect(c);
	case 0x1b: case 0x1c: return op_select(c, opc);
	case 0x20: case 0x21: case 0x22: return op_local(c, opc);
	case 0x23: case 0x24: return op_global(c, opc);
	case 0x25: case 0x26: return op_table(c, opc);
	case 0x3f: case 0x40: return op_memsize(c, opc);
	case 0x41: case 0x42: case 0x43: case 0x44: return op_const(c, opc);
	case 0xd0: case 0xd1: case 0xd2: return op_ref(c, opc);
	case 0xfc: return op_fc(c);
	default: break;
	}
	if (opc >= 0x28 && opc <= 0x3e)
		return op_memarg(c, opc);
	if (opc >= 0x45 && opc <= 0xc4)
		return op_numeric(c, opc);
	return op_misc(c, opc);
}

/* Reads the locals declarations into types; *total includes the parameters. */
static enum err_code read_locals(struct wasm_reader *r, const struct wasm_ftype *ft,
				 uint8_t **types_out, uint32_t *total, struct err *err)
{
	size_t start = r->pos;
	uint64_t sum;
	if (wasm_rd_locals(r, &sum, err))
		return ERR_WASM_MALFORMED;
	if (sum + ft->np > WASM_MAX_LOCALS)
		return err_set(err, ERR_WASM_INVALID, "too many locals");
	*total = (uint32_t)sum + ft->np;
	uint8_t *lt = malloc(*total ? *total : 1);
	if (!lt)
		return err_set(err, ERR_NOMEM, "out of memory compiling function");
	for (uint32_t i = 0; i < ft->np; i++)
		lt[i] = (uint8_t)ft->v[i];
	uint32_t k = ft->np, ngroups;
	r->pos = start;
	wasm_rd_u32(r, &ngroups, err);
	for (uint32_t i = 0; i < ngroups; i++) {
		uint32_t n;
		enum wasm_valtype t;
		wasm_rd_u32(r, &n, err);
		wasm_rd_valtype(r, &t, err);
		memset(lt + k, (uint8_t)t, n);
		k += n;
	}
	*types_out = lt;
	return ERR_OK;
}

static enum err_code setup(struct comp *c, struct wasm_code *code)
{
	c->code = code;
	c->ft = &c->m->types[code->type];
	c->r = (struct wasm_reader){.base = c->m->bytes, .pos = code->body_start, .end = c->m->len};
	free(c->ltypes);
	c->ltypes = NULL;
	enum err_code rc = read_locals(&c->r, c->ft, &c->ltypes, &c->nlocals, c->err);
	if (rc)
		return rc;
	if (c->nlocals > c->lcap) {
		uint32_t *p = realloc(c->lhead, (size_t)c->nlocals * sizeof(*p));
		if (!p)
			return err_set(c->err, ERR_NOMEM, "out of memory compiling function");
		c->lhead = p;
		c->lcap = c->nlocals;
	}
	for (uint32_t i = 0; i < c->nlocals; i++)
		c->lhead[i] = WASM_NONE;
	c->vsp = c->vmax = c->mat = 0;
	c->csp = 0;
	c->fuel_ctl = 0;
	c->ops = NULL;
	c->isslot = NULL;
	c->nops = c->opcap = 0;
	c->nconsts = 0;
	if (c->chash)
		memset(c->chash, 0, CHASH_SIZE * sizeof(*c->chash));
	uint64_t limit = (uint64_t)(code->body_end - code->body_start) * 32 + 4096;
	c->oplimit = limit > (1u << 28) ? (1u << 28) : (uint32_t)limit;
	c->oom = false;
	no_peephole(c);
	return push_ctl(c, C_FUNC, 0, NULL, c->ft->nr, c->ft->v ? c->ft->v + c->ft->np : NULL);
}

/* Places the constants after the locals: stack slots move up by their
 * count, marked constant operands get their final slot; the frame's
 * initial contents (zeroed locals, then constants) are recorded. */
static enum err_code relocate(struct comp *c)
{
	struct wasm_code *code = c->code;
	uint32_t nl = c->nlocals;
	for (uint32_t i = 0; i < c->nops; i++) {
		if (!c->isslot[i])
			continue;
		uint32_t v = c->ops[i];
		if (v & CONST_MARK)
			c->ops[i] = nl + (v & ~CONST_MARK);
		else if (v >= nl)
			c->ops[i] = v + c->nconsts;
	}
	code->ninit = nl - c->ft->np + c->nconsts;
	if (code->ninit == 0)
		return ERR_OK;
	code->init = calloc(code->ninit, sizeof(uint64_t));
	if (!code->init)
		return ERR_NOMEM;
	if (c->nconsts)
		memcpy(code->init + (nl - c->ft->np), c->consts, c->nconsts * sizeof(uint64_t));
	c->m->footprint += code->ninit * sizeof(uint64_t);
	return ERR_OK;
}

static enum err_code finish(struct comp *c)
{
	struct wasm_code *code = c->code;
	if (c->r.pos != code->body_end)
		return err_set(c->err, ERR_WASM_MALFORMED, "section size mismatch");
	if (c->oom)
		return err_set(c->err, c->nops > c->oplimit ? ERR_WASM_INVALID : ERR_NOMEM,
			       "function too large to translate");
	if (relocate(c))
		return err_set(c->err, ERR_NOMEM, "out of memory compiling function");
	uint32_t *ops = realloc(c->ops, (size_t)(c->nops ? c->nops : 1) * sizeof(*ops));
	code->ops = ops ? ops : c->ops;
	c->ops = NULL;
	code->nops = c->nops;
	code->nparams = c->ft->np;
	code->nlocals = c->nlocals - c->ft->np;
	code->nresults = c->ft->nr;
	code->frame_slots = c->nlocals + c->nconsts + c->vmax;
	code->fuel = c->cs[0].fuel ? c->cs[0].fuel : 1;
	c->m->footprint += (size_t)code->nops * sizeof(uint32_t);
	return ERR_OK;
}

static enum err_code compile_body(struct comp *c, struct wasm_code *code)
{
	enum err_code rc = setup(c, code);
	while (!rc && c->csp > 0) {
		uint8_t opc;
		if ((rc = wasm_rd_byte(&c->r, &opc, c->err)))
			break;
		c->cs[c->fuel_ctl].fuel++;
		rc = compile_op(c, opc);
	}
	if (!rc)
		rc = finish(c);
	free(c->ops);
	free(c->isslot);
	c->ops = NULL;
	c->isslot = NULL;
	return rc;
}

enum err_code wasm_compile_all(struct wasm_module *m, struct err *err)
{
	struct comp c = {.m = m, .err = err, .h = wasm_exec_handlers()};
	enum err_code rc = ERR_OK;
	uint32_t n = m->nfuncs - m->nfunc_imports;
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = compile_body(&c, &m->codes[i]);
	free(c.ltypes);
	free(c.lhead);
	free(c.vs);
	free(c.cs);
	free(c.consts);
	free(c.chash);
	return rc;
}

void wasm_module_release_code(struct wasm_module *m)
{
	for (uint32_t i = 0; m->codes && i < m->nfuncs - m->nfunc_imports; i++) {
		free(m->codes[i].ops);
		free(m->codes[i].init);
		m->codes[i].ops = NULL;
		m->codes[i].init = NULL;
	}
}
