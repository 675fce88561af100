/* toml_parse.c - the structural half of the TOML parser: the document loop,
 * keys, table headers, key/value pairs, arrays and inline tables, and every
 * redefinition rule of TOML v1.0.0.
 *
 * The rules hang on how each table came to be (enum toml_table_kind):
 *   - a header [a.b.c] creates missing parents a and a.b as IMPLICIT tables,
 *     which one later header may define; defining a HEADER, DOTTED or
 *     INLINE table by a header is an error;
 *   - dotted keys (a.b = 1) create DOTTED tables and may pass through DOTTED
 *     (or still IMPLICIT) ones, never through tables defined by a header, inline
 *     tables or arrays;
 *   - a header may pass through any table but an inline one, and through an
 *     array of tables (to its last element), never through a static array;
 *   - inline tables and static arrays are frozen once written.
 * Recursion happens only for nested arrays and inline tables, and every
 * container checks the depth limit before it recurses, so hostile input
 * cannot exhaust the C stack.
 */
#include "src/toml/toml_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_TEXT_MAX 120

static int parse_value(struct toml_parser *P, int depth, struct toml_value **out);

/* ---- messages ---- */

static int is_bare(unsigned c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* The first n parts of the current key as text for messages: bare parts as
 * written, others in single quotes, unprintable bytes as \xNN. */
static const char *key_text(struct toml_parser *P, int n, char buf[KEY_TEXT_MAX + 8])
{
	size_t k = 0;
	for (int i = 0; i < n && k < KEY_TEXT_MAX; i++) {
		const struct toml_keypart *part = &P->keys[i];
		int bare = part->len > 0;
		for (uint32_t j = 0; j < part->len; j++)
			bare = bare && is_bare((unsigned char)part->s[j]);
		if (i)
			buf[k++] = '.';
		if (!bare)
			buf[k++] = '\'';
		for (uint32_t j = 0; j < part->len && k < KEY_TEXT_MAX; j++) {
			unsigned char c = (unsigned char)part->s[j];
			if (c < 0x20 || c == 0x7F)
				k += (size_t)snprintf(buf + k, 5, "\\x%02X", c);
			else
				buf[k++] = (char)c;
		}
		if (!bare)
			buf[k++] = '\'';
	}
	if (k >= KEY_TEXT_MAX) {
		memcpy(buf + KEY_TEXT_MAX, "...", 3);
		k = KEY_TEXT_MAX + 3;
	}
	buf[k] = '\0';
	return buf;
}

static const char *a_type(const struct toml_value *v)
{
	switch (v->type) {
	case TOML_TABLE: return "a table";
	case TOML_ARRAY: return v->kind == TOML_ARR_TABLES ? "an array of tables" : "an array";
	case TOML_STRING: return "a string";
	case TOML_INTEGER: return "an integer";
	case TOML_FLOAT: return "a float";
	case TOML_BOOL: return "a boolean";
	default: return "a date-time";
	}
}

/* ---- nodes ---- */

static int too_deep(struct toml_parser *P, struct toml_pos pos)
{
	return toml_fail_at(P, pos, ERR_TOO_DEEP, "nesting is deeper than the limit of %d levels",
			    P->max_depth);
}

static struct toml_value *new_node(struct toml_parser *P, int depth, struct toml_pos pos)
{
	struct toml_value *v = toml_arena_alloc(P->arena, sizeof(*v));
	if (!v) {
		toml_fail_at(P, pos, ERR_NOMEM, "out of memory");
		return NULL;
	}
	memset(v, 0, sizeof(*v));
	v->depth = (uint16_t)depth;
	v->line = pos.line;
	v->col = pos.col;
	return v;
}

static struct toml_value *new_container(struct toml_parser *P, struct toml_value *parent,
					enum toml_type type, int kind, struct toml_pos pos)
{
	if (parent->depth + 1 > P->max_depth) {
		too_deep(P, pos);
		return NULL;
	}
	struct toml_value *v = new_node(P, parent->depth + 1, pos);
	if (v) {
		v->type = (uint8_t)type;
		v->kind = (uint8_t)kind;
	}
	return v;
}

/* Adds key part k -> v to table t, copying a bare key into the arena. */
static int add_key(struct toml_parser *P, struct toml_value *t, const struct toml_keypart *k,
		   struct toml_value *v)
{
	const char *key = k->s;
	if (!k->in_arena)
		key = toml_arena_strdup(P->arena, k->s, k->len);
	if (!key || toml_table_add(P->arena, t, key, k->len, k->hash, v) < 0)
		return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
	return 0;
}

static struct toml_value *add_container(struct toml_parser *P, struct toml_value *t, int i,
					enum toml_type type, int kind, struct toml_pos pos)
{
	struct toml_value *v = new_container(P, t, type, kind, pos);
	if (!v || add_key(P, t, &P->keys[i], v) < 0)
		return NULL;
	return v;
}

static struct toml_value *find_part(struct toml_value *t, const struct toml_keypart *k)
{
	return toml_table_find(t, k->s, k->len, k->hash);
}

/* ---- keys ---- */

static int key_part(struct toml_parser *P, struct toml_keypart *part)
{
	char fb[40];
	const char *s = P->p;
	if (s < P->end && is_bare((unsigned char)*s)) {
		while (P->p < P->end && is_bare((unsigned char)*P->p))
			P->p++;
		part->s = s;
		part->len = (uint32_t)(P->p - s);
		part->in_arena = 0;
	} else if (s < P->end && (*s == '"' || *s == '\'')) {
		if (P->end - s >= 3 && s[1] == s[0] && s[2] == s[0])
			return toml_fail(P, "a multi-line string cannot be a key");
		size_t len;
		if (toml_lex_string(P, toml_here(P), &part->s, &len) < 0)
			return -1;
		if (len > UINT32_MAX)
			return toml_fail(P, "key too long");
		part->len = (uint32_t)len;
		part->in_arena = 1;
	} else {
		return toml_fail(P, "expected a key, found %s", toml_found(P, fb));
	}
	part->hash = toml_hash(part->s, part->len);
	return 0;
}

/* Reads a (dotted) key into P->keys; returns the number of parts or -1. */
static int parse_key(struct toml_parser *P)
{
	int n = 0;
	for (;;) {
		if (n >= P->keys_cap)
			return toml_fail_at(P, toml_here(P), ERR_TOO_DEEP,
					    "key has more than %d parts (the nesting limit)",
					    P->keys_cap);
		if (key_part(P, &P->keys[n]) < 0)
			return -1;
		n++;
		toml_skip_ws(P);
		if (P->p >= P->end || *P->p != '.')
			return n;
		P->p++;
		toml_skip_ws(P);
	}
}

/* ---- key/value pairs ---- */

/* Part i of a dotted key, below table t: a table that dotted keys may fill. */
static struct toml_value *dotted_child(struct toml_parser *P, struct toml_value *t, int i,
				       int n, struct toml_pos kpos)
{
	char kb[KEY_TEXT_MAX + 8], pb[KEY_TEXT_MAX + 8];
	struct toml_value *v = find_part(t, &P->keys[i]);
	if (!v)
		return add_container(P, t, i, TOML_TABLE, TOML_TAB_DOTTED, kpos);
	const char *why = NULL;
	if (v->type != TOML_TABLE)
		why = a_type(v);
	else if (v->kind == TOML_TAB_HEADER)
		why = "a table defined by a [table] header, which dotted keys cannot extend";
	else if (v->kind == TOML_TAB_INLINE)
		why = "an inline table, which cannot be extended";
	if (why) {
		toml_fail_at(P, kpos, ERR_INVALID, "cannot define key \"%s\": \"%s\" is already %s",
			     key_text(P, n, kb), key_text(P, i + 1, pb), why);
		return NULL;
	}
	v->kind = TOML_TAB_DOTTED; /* an IMPLICIT table is now defined */
	return v;
}

static int parse_keyval(struct toml_parser *P, struct toml_value *t)
{
	char kb[KEY_TEXT_MAX + 8], fb[40];
	struct toml_pos kpos = toml_here(P);
	int n = parse_key(P);
	if (n < 0)
		return -1;
	if (P->p >= P->end || *P->p != '=')
		return toml_fail(P, "expected '=' after key \"%s\", found %s", key_text(P, n, kb),
				 toml_found(P, fb));
	P->p++;
	toml_skip_ws(P);
	for (int i = 0; i < n - 1; i++)
		if (!(t = dotted_child(P, t, i, n, kpos)))
			return -1;
	struct toml_keypart last = P->keys[n - 1];
	struct toml_value *old = find_part(t, &last);
	if (old)
		return toml_fail_at(P, kpos, ERR_INVALID,
				    "duplicate key \"%s\": it is already defined as %s",
				    key_text(P, n, kb), a_type(old));
	struct toml_value *v;
	if (parse_value(P, t->depth + 1, &v) < 0)
		return -1;
	return add_key(P, t, &last, v);
}

/* ---- arrays and inline tables ---- */

static int parse_array(struct toml_parser *P, struct toml_value *arr)
{
	char fb[40];
	P->p++; /* '[' */
	for (;;) {
		if (toml_skip_wcn(P) < 0)
			return -1;
		if (P->p < P->end && *P->p == ']')
			break;
		struct toml_value *item;
		if (parse_value(P, arr->depth + 1, &item) < 0)
			return -1;
		if (toml_array_push(P->arena, arr, item) < 0)
			return toml_fail_at(P, toml_here(P), ERR_NOMEM, "out of memory");
		if (toml_skip_wcn(P) < 0)
			return -1;
		if (P->p < P->end && *P->p == ',') {
			P->p++;
			continue;
		}
		if (P->p < P->end && *P->p == ']')
			break;
		return toml_fail(P, "expected ',' or ']' after an array element, found %s",
				 toml_found(P, fb));
	}
	P->p++;
	return 0;
}

static int parse_inline_table(struct toml_parser *P, struct toml_value *t)
{
	char fb[40];
	P->p++; /* '{' */
	toml_skip_ws(P);
	if (P->p < P->end && *P->p == '}') {
		P->p++;
		return 0;
	}
	for (;;) {
		if (parse_keyval(P, t) < 0)
			return -1;
		toml_skip_ws(P);
		if (P->p < P->end && *P->p == '}') {
			P->p++;
			return 0;
		}
		if (P->p >= P->end || *P->p != ',')
			return toml_fail(P, "expected ',' or '}' in inline table, found %s%s",
					 toml_found(P, fb),
					 P->p < P->end && (*P->p == '\n' || *P->p == '\r')
						 ? " (inline tables must be on one line)"
						 : "");
		P->p++;
		toml_skip_ws(P);
		if (P->p < P->end && *P->p == '}')
			return toml_fail(P, "a trailing comma is not allowed in an inline table");
	}
}

static int parse_value(struct toml_parser *P, int depth, struct toml_value **out)
{
	struct toml_pos pos = toml_here(P);
	struct toml_value *v = new_node(P, depth, pos);
	const char *s;
	size_t len;
	if (!v)
		return -1;
	*out = v;
	switch (P->p < P->end ? *P->p : '\0') {
	case '"':
	case '\'':
		if (toml_lex_string(P, pos, &s, &len) < 0)
			return -1;
		v->type = TOML_STRING;
		v->u.str.ptr = s;
		v->u.str.len = len;
		return 0;
	case 't':
	case 'f':
		return toml_lex_bool(P, v);
	case '[':
		if (depth > P->max_depth)
			return too_deep(P, pos);
		v->type = TOML_ARRAY;
		v->kind = TOML_ARR_STATIC;
		return parse_array(P, v);
	case '{':
		if (depth > P->max_depth)
			return too_deep(P, pos);
		v->type = TOML_TABLE;
		v->kind = TOML_TAB_INLINE;
		return parse_inline_table(P, v);
	case '+': case '-': case 'i': case 'n':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return toml_lex_numlike(P, v);
	default:
		return toml_fail_value(P, P->p);
	}
}

/* ---- table headers ---- */

/* Part i of a header's name, below t: any table but an inline one, or the
 * last element of an array of tables. */
static struct toml_value *header_child(struct toml_parser *P, struct toml_value *t, int i,
				       int n, struct toml_pos hpos)
{
	char kb[KEY_TEXT_MAX + 8], pb[KEY_TEXT_MAX + 8];
	struct toml_value *v = find_part(t, &P->keys[i]);
	if (!v)
		return add_container(P, t, i, TOML_TABLE, TOML_TAB_IMPLICIT, hpos);
	if (v->type == TOML_TABLE && v->kind != TOML_TAB_INLINE)
		return v;
	if (v->type == TOML_ARRAY && v->kind == TOML_ARR_TABLES)
		return v->u.arr.items[v->u.arr.len - 1];
	toml_fail_at(P, hpos, ERR_INVALID, "cannot define table \"%s\": \"%s\" is already %s%s",
		     key_text(P, n, kb), key_text(P, i + 1, pb),
		     v->type == TOML_TABLE ? "an inline table" : a_type(v),
		     v->type == TOML_TABLE || v->type == TOML_ARRAY ? ", which cannot be extended"
								    : "");
	return NULL;
}

static struct toml_value *define_table(struct toml_parser *P, struct toml_value *t, int n,
				       struct toml_pos hpos)
{
	char kb[KEY_TEXT_MAX + 8];
	struct toml_value *v = find_part(t, &P->keys[n - 1]);
	if (!v)
		return add_container(P, t, n - 1, TOML_TABLE, TOML_TAB_HEADER, hpos);
	if (v->type == TOML_TABLE && v->kind == TOML_TAB_IMPLICIT) {
		v->kind = TOML_TAB_HEADER;
		v->line = hpos.line;
		v->col = hpos.col;
		return v;
	}
	const char *how = v->type != TOML_TABLE         ? ""
			  : v->kind == TOML_TAB_DOTTED  ? " by dotted keys"
			  : v->kind == TOML_TAB_INLINE ? " as an inline table"
						       : "";
	toml_fail_at(P, hpos, ERR_INVALID, "cannot define table [%s]: it is already defined%s%s%s",
		     key_text(P, n, kb), how, v->type == TOML_TABLE ? "" : " as ",
		     v->type == TOML_TABLE ? "" : a_type(v));
	return NULL;
}

static struct toml_value *define_array_table(struct toml_parser *P, struct toml_value *t, int n,
					     struct toml_pos hpos)
{
	char kb[KEY_TEXT_MAX + 8];
	struct toml_value *arr = find_part(t, &P->keys[n - 1]);
	if (!arr) {
		arr = add_container(P, t, n - 1, TOML_ARRAY, TOML_ARR_TABLES, hpos);
		if (!arr)
			return NULL;
	} else if (arr->type != TOML_ARRAY || arr->kind != TOML_ARR_TABLES) {
		toml_fail_at(P, hpos, ERR_INVALID,
			     "cannot define array of tables [[%s]]: it is already defined as %s",
			     key_text(P, n, kb), arr->type == TOML_ARRAY ? "a static array"
									   : a_type(arr));
		return NULL;
	}
	struct toml_value *elem = new_container(P, arr, TOML_TABLE, TOML_TAB_HEADER, hpos);
	if (!elem)
		return NULL;
	if (toml_array_push(P->arena, arr, elem) < 0) {
		toml_fail_at(P, hpos, ERR_NOMEM, "out of memory");
		return NULL;
	}
	return elem;
}

static int parse_header(struct toml_parser *P)
{
	char kb[KEY_TEXT_MAX + 8], fb[40];
	struct toml_pos hpos = toml_here(P);
	int aot = P->end - P->p >= 2 && P->p[1] == '[';
	P->p += aot ? 2 : 1;
	toml_skip_ws(P);
	int n = parse_key(P);
	if (n < 0)
		return -1;
	if (P->p >= P->end || *P->p != ']' || (aot && (P->end - P->p < 2 || P->p[1] != ']')))
		return toml_fail(P, "expected '%s' after table name \"%s\", found %s",
				 aot ? "]]" : "]", key_text(P, n, kb), toml_found(P, fb));
	P->p += aot ? 2 : 1;
	struct toml_value *t = P->root;
	for (int i = 0; i < n - 1; i++)
		if (!(t = header_child(P, t, i, n, hpos)))
			return -1;
	t = aot ? define_array_table(P, t, n, hpos) : define_table(P, t, n, hpos);
	if (!t)
		return -1;
	P->cur = t;
	return 0;
}

/* ---- the document ---- */

static int end_of_line(struct toml_parser *P, const char *after)
{
	char fb[40];
	toml_skip_ws(P);
	if (P->p < P->end && *P->p == '#' && toml_skip_comment(P) < 0)
		return -1;
	if (P->p >= P->end || toml_eat_newline(P))
		return 0;
	if (!after)
		return toml_fail(P, "expected a key, a [table] header or a comment, found %s",
				 toml_found(P, fb));
	return toml_fail(P, "expected a newline or a comment after %s, found %s", after,
			 toml_found(P, fb));
}

static int parse_document(struct toml_parser *P)
{
	if (P->end - P->p >= 3 && memcmp(P->p, "\xEF\xBB\xBF", 3) == 0) {
		P->p += 3; /* a byte order mark is allowed at the very start */
		P->line_start = P->p;
	}
	for (;;) {
		toml_skip_ws(P);
		if (P->p >= P->end)
			return 0;
		const char *after = NULL;
		char c = *P->p;
		if (c == '[') {
			if (parse_header(P) < 0)
				return -1;
			after = "the table header";
		} else if (c != '#' && c != '\n' && c != '\r') {
			if (parse_keyval(P, P->cur) < 0)
				return -1;
			after = "the value";
		}
		if (end_of_line(P, after) < 0)
			return -1;
	}
}

static size_t first_chunk_size(size_t len)
{
	size_t n = len * 2;
	if (n < 2048)
		n = 2048;
	if (n > 65536)
		n = 65536;
	return n;
}

/* The document and its arena's first chunk are one allocation. */
static struct toml_doc *doc_new(size_t len)
{
	size_t first = first_chunk_size(len);
	struct toml_doc *doc = malloc(sizeof(*doc) + first);
	if (!doc)
		return NULL;
	toml_arena_init(&doc->arena, doc + 1, first);
	memset(&doc->root, 0, sizeof(doc->root));
	doc->root.type = TOML_TABLE;
	doc->root.kind = TOML_TAB_ROOT;
	doc->root.line = doc->root.col = 1;
	return doc;
}

enum err_code toml_parse(const char *text, size_t len, const struct toml_options *opt,
			 struct toml_value **out, struct toml_errpos *pos_out, struct err *err)
{
	struct toml_parser P;
	memset(&P, 0, sizeof(P));
	P.name = opt && opt->name ? opt->name : "toml";
	size_t max_size = opt && opt->max_size ? opt->max_size : TOML_MAX_SIZE_DEFAULT;
	P.max_depth = opt && opt->max_depth > 0 ? opt->max_depth : TOML_MAX_DEPTH_DEFAULT;
	if (P.max_depth > TOML_MAX_DEPTH_LIMIT)
		P.max_depth = TOML_MAX_DEPTH_LIMIT;
	*out = NULL;
	if (pos_out)
		*pos_out = (struct toml_errpos){0, 0};
	if (len > max_size)
		return err_set(err, ERR_TOO_LARGE,
			       "%s: document is %zu bytes, over the limit of %zu bytes", P.name,
			       len, max_size);
	assert(text || len == 0);
	if (!text)
		text = "";
	struct toml_doc *doc = doc_new(len);
	if (!doc)
		return err_set(err, ERR_NOMEM, "%s: out of memory", P.name);
	P.p = P.line_start = P.colmark = text;
	P.end = text + len;
	P.line = P.colval = 1;
	P.arena = &doc->arena;
	P.root = P.cur = &doc->root;
	P.keys_cap = P.max_depth + 1;
	P.pos_out = pos_out;
	P.err = err;
	buf_init(&P.scratch, 0);
	P.keys = toml_arena_alloc(P.arena, sizeof(*P.keys) * (size_t)P.keys_cap);
	int rc = P.keys ? parse_document(&P) : toml_fail_at(&P, (struct toml_pos){0, 0}, ERR_NOMEM,
							    "out of memory");
	buf_release(&P.scratch);
	if (rc < 0) {
		toml_arena_release(&doc->arena);
		free(doc);
		return P.code;
	}
	*out = &doc->root;
	return ERR_OK;
}
