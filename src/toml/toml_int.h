/* toml_int.h - private to src/toml: the node layout, the per-document arena
 * and the table operations shared by the parser, the accessors and the JSON
 * encoders. Nothing outside src/toml includes this.
 */
#ifndef THEATER_TOML_TOML_INT_H
#define THEATER_TOML_TOML_INT_H

#include <stddef.h>
#include <stdint.h>

#include "src/toml/toml.h"
#include "src/util/buf.h"

/* ---- arena: bump allocation in chunks, freed all at once ---- */

struct toml_arena_chunk {
	struct toml_arena_chunk *next;
};

struct toml_arena {
	struct toml_arena_chunk *chunks; /* malloc'd chunks, newest first */
	char *cur, *end;                 /* free space in the newest chunk */
	size_t next_size;                /* size of the next chunk */
};

/* first/first_size: optional caller-provided initial space (not freed). */
void toml_arena_init(struct toml_arena *a, void *first, size_t first_size);
void toml_arena_release(struct toml_arena *a);
/* 8-byte aligned; NULL on no memory. */
void *toml_arena_alloc(struct toml_arena *a, size_t size);
/* Resizes the newest allocation in place when possible, else copies. */
void *toml_arena_grow(struct toml_arena *a, void *ptr, size_t old_size, size_t new_size);
/* Copies len bytes and adds a NUL. */
char *toml_arena_strdup(struct toml_arena *a, const char *s, size_t len);

/* ---- nodes ---- */

/* How a table came to be; decides which later definitions are allowed. */
enum toml_table_kind {
	TOML_TAB_IMPLICIT, /* created as a parent by a header [a.b.c]: may be defined once later */
	TOML_TAB_HEADER,   /* defined by [a] or an element of [[a]] */
	TOML_TAB_DOTTED,   /* created by dotted keys a.b = 1 */
	TOML_TAB_INLINE,   /* an inline table: frozen once closed */
	TOML_TAB_ROOT,
};

enum toml_array_kind {
	TOML_ARR_STATIC, /* a = [ ... ]: frozen */
	TOML_ARR_TABLES, /* built by [[a]] headers */
};

struct toml_kv {
	const char *key; /* NUL-terminated, in the arena */
	uint32_t len;
	uint32_t hash;
	struct toml_value *val;
};

struct toml_value {
	uint8_t type;  /* enum toml_type */
	uint8_t kind;  /* enum toml_table_kind or enum toml_array_kind */
	uint16_t depth;
	uint32_t line;
	uint32_t col;
	union {
		struct {
			struct toml_kv *items;
			uint32_t len, cap;
			uint32_t *slots; /* hash index (item index + 1), NULL while small */
			uint32_t nslots; /* power of two */
		} tab;
		struct {
			struct toml_value **items;
			uint32_t len, cap;
		} arr;
		struct {
			const char *ptr; /* NUL-terminated */
			size_t len;
		} str;
		int64_t i;
		double f;
		int b;
		struct toml_datetime *dt;
	} u;
};

/* A document: the root node first, so toml_free can find the arena. */
struct toml_doc {
	struct toml_value root;
	struct toml_arena arena;
};

uint32_t toml_hash(const char *key, size_t len);
struct toml_value *toml_table_find(const struct toml_value *t, const char *key, size_t len,
				   uint32_t hash);
/* Appends key (already in the arena) -> val. Returns -1 on no memory. The
 * caller has checked that the key is absent. */
int toml_table_add(struct toml_arena *a, struct toml_value *t, const char *key, size_t len,
		   uint32_t hash, struct toml_value *val);
int toml_array_push(struct toml_arena *a, struct toml_value *arr, struct toml_value *val);

/* ---- the parser's state, shared by toml_parse.c (structure) and
 * toml_lex.c (positions, errors, white space, scalars) ---- */

struct toml_pos {
	uint32_t line, col;
};

struct toml_keypart {
	const char *s; /* into the source (bare keys) or the arena (quoted keys) */
	uint32_t len;
	uint32_t hash;
	int in_arena;
};

struct toml_parser {
	const char *p, *end;     /* the unread text */
	const char *line_start;  /* first byte of the current line */
	uint32_t line;
	const char *colmark;     /* column cache: colval is the column of colmark */
	uint32_t colval;
	struct toml_arena *arena;
	struct toml_value *root, *cur; /* cur: the table keys/values go into */
	int max_depth;
	const char *name;
	struct toml_keypart *keys; /* the parts of the key being read */
	int keys_cap;
	struct buf scratch;        /* strings with escapes, long numbers */
	enum err_code code;        /* of the first failure */
	struct toml_errpos *pos_out;
	struct err *err;
};

struct toml_pos toml_here(struct toml_parser *P);
struct toml_pos toml_pos_of(struct toml_parser *P, const char *at); /* at on the current line */
/* Records "<name>:<line>:<col>: <message>" and returns -1. */
int toml_fail_at(struct toml_parser *P, struct toml_pos at, enum err_code code, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));
int toml_fail(struct toml_parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Describes the byte at P->p for "found ..." ("end of file", "'x'", ...). */
const char *toml_found(struct toml_parser *P, char buf[40]);

void toml_skip_ws(struct toml_parser *P);
/* Consumes one LF or CRLF; returns 1 when it did. */
int toml_eat_newline(struct toml_parser *P);
/* At '#': consumes the comment up to (not including) the end of line. */
int toml_skip_comment(struct toml_parser *P);
/* Skips white space, comments and newlines (inside arrays). */
int toml_skip_wcn(struct toml_parser *P);

/* Scalars: P->p is at the first byte; on success P->p is past the value. */
int toml_lex_string(struct toml_parser *P, struct toml_pos start, const char **s_out,
		    size_t *len_out);
int toml_lex_numlike(struct toml_parser *P, struct toml_value *v);
int toml_lex_bool(struct toml_parser *P, struct toml_value *v);
/* "expected a value, found ..." for the text at `at` (names bare words). */
int toml_fail_value(struct toml_parser *P, const char *at);

#endif
