/* toml.h - a TOML v1.0.0 parser and its document model.
 *
 * toml_parse() turns a whole document into a read-only tree of struct
 * toml_value nodes: tables (keys kept in document order), arrays, strings
 * (with a length; they may contain NUL), 64-bit integers, doubles, booleans
 * and the four date-time kinds. Every node knows the line and column where it
 * was written. Anything that is not valid TOML v1.0.0 is refused with a
 * message of the form
 *
 *     <name>:<line>:<col>: expected '=' after key "package"
 *
 * where <name> comes from the options (default "toml"), lines and columns are
 * 1-based and columns count characters (UTF-8 code points; a tab is one).
 *
 * Ownership: the whole tree lives in one arena owned by the root returned by
 * toml_parse(); toml_free(root) releases everything at once. Pointers obtained
 * through the accessors (child nodes, keys, strings, date-times) are borrowed
 * from that root and die with it.
 * Errors: ERR_INVALID for bad TOML (message with position, position also in
 * *pos_out), ERR_TOO_LARGE for a document over the size limit (checked before
 * parsing), ERR_TOO_DEEP for nesting over the depth limit, ERR_NOMEM.
 * Threads: toml_parse() is reentrant; a finished tree is immutable, so any
 * number of threads may read one tree at the same time.
 */
#ifndef THEATER_TOML_TOML_H
#define THEATER_TOML_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/json.h"

#define TOML_MAX_SIZE_DEFAULT ((size_t)1 << 20) /* 1 MiB */
#define TOML_MAX_DEPTH_DEFAULT 64
#define TOML_MAX_DEPTH_LIMIT 1000 /* larger max_depth options are clamped to this */

enum toml_type {
	TOML_TABLE,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* local date-time:  1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* local date:       1979-05-27 */
	TOML_TIME_LOCAL,     /* local time:       07:32:00 */
};

struct toml_options {
	const char *name; /* shown first in error messages; NULL means "toml" */
	size_t max_size;  /* document size limit in bytes; 0 means TOML_MAX_SIZE_DEFAULT */
	int max_depth;    /* nesting limit (tables and arrays, the root is depth 0);
			   * 0 means TOML_MAX_DEPTH_DEFAULT */
};

/* Where a parse failed: 1-based line and column, both 0 when the error has no
 * position (document too large, out of memory). */
struct toml_errpos {
	unsigned line;
	unsigned col;
};

/* A parsed date-time. Fields that the kind does not have are 0. */
struct toml_datetime {
	int year, month, day;        /* dates */
	int hour, minute, second;    /* times; second may be 60 (leap second) */
	int nanosecond;              /* fraction of the second, truncated to ns */
	int offset_minutes;          /* TOML_DATETIME only: minutes east of UTC */
	const char *text;            /* RFC 3339 text: 'T' between date and time,
				      * 'Z' upper case, the rest as written */
};

struct toml_value;

/* Parses len bytes of text (no NUL terminator needed). opt may be NULL for
 * the defaults. On success *out is the root table (free it with toml_free).
 * On failure *out is NULL, err says why and, when pos_out is not NULL, it
 * receives the position (see struct toml_errpos). */
enum err_code toml_parse(const char *text, size_t len, const struct toml_options *opt,
			 struct toml_value **out, struct toml_errpos *pos_out, struct err *err);

/* Frees a tree returned by toml_parse. Only the root may be passed. NULL is fine. */
void toml_free(struct toml_value *root);

/* Accessors. All accept any node; asking a node of the wrong type for a
 * property returns 0 / NULL / false (check toml_type first). */
enum toml_type toml_type(const struct toml_value *v);
const char *toml_type_name(enum toml_type t); /* "table", "integer", ..., never NULL */
unsigned toml_line(const struct toml_value *v);
unsigned toml_col(const struct toml_value *v);

size_t toml_table_len(const struct toml_value *t);
/* The i-th entry in document order; *key_out is NUL-terminated and its length
 * is in *key_len_out (keys may contain NUL). Either output may be NULL. */
const struct toml_value *toml_table_at(const struct toml_value *t, size_t i,
				       const char **key_out, size_t *key_len_out);
const struct toml_value *toml_table_get(const struct toml_value *t, const char *key);
const struct toml_value *toml_table_getn(const struct toml_value *t, const char *key,
					 size_t key_len);

size_t toml_array_len(const struct toml_value *a);
const struct toml_value *toml_array_at(const struct toml_value *a, size_t i);

/* NUL-terminated; the length (which counts embedded NULs) goes to *len_out
 * when it is not NULL. */
const char *toml_string(const struct toml_value *v, size_t *len_out);
int64_t toml_int(const struct toml_value *v);
double toml_float(const struct toml_value *v);
bool toml_bool(const struct toml_value *v);
/* For the four date-time kinds, else NULL. */
const struct toml_datetime *toml_datetime(const struct toml_value *v);

/* Plain JSON for manifests: tables -> objects, arrays -> arrays, strings,
 * integers, floats (inf and nan, which JSON lacks, become the strings "inf",
 * "-inf" and "nan"), booleans, date-times -> their RFC 3339 text. Keys with
 * an embedded NUL are kept whole. Returns a new reference, NULL on no memory. */
json_t *toml_to_json(const struct toml_value *v);

/* The tagged JSON of the toml-test suite: every scalar becomes
 * {"type": T, "value": S} with S a string (floats "inf", "-inf", "nan" and
 * otherwise the shortest text that reads back to the same double). Returns a
 * new reference, NULL on no memory. */
json_t *toml_to_tagged_json(const struct toml_value *v);

#endif
