/* resolve_int.h - private to src/resolve*.c: reference kinds, joining and
 * the file sandbox (resolve_path.c); the cache lives in resolve.c. */
#ifndef THEATER_RESOLVE_INT_H
#define THEATER_RESOLVE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

enum ref_kind { REF_FILE, REF_HTTP, REF_STORE, REF_BAD_SCHEME };

/* Length of "<scheme>" when ref starts with "<scheme>://", else 0. */
size_t resolve_scheme_len(const char *ref);
enum ref_kind resolve_kind(const char *ref);

/* Package roots as configured (trailing '/' removed) and after realpath. */
struct resolve_roots {
	char **given;
	char **real;
	size_t n;
};

enum err_code resolve_roots_init(struct resolve_roots *rt, const char *const *roots, size_t n,
				 struct err *err);
void resolve_roots_release(struct resolve_roots *rt);

/* The absolute lexical path of a file reference ("file://" dropped, a
 * relative path put under the first root); malloc'd. ERR_FORBIDDEN_PATH for
 * a relative path without roots, ERR_BAD_REFERENCE for an empty path. */
enum err_code resolve_file_absolute(const struct resolve_roots *rt, const char *ref,
				    char **path_out, struct err *err);

/* Loads an absolute path inside the sandbox (see resolve.h). ref is the
 * reference to name in messages. canon_out: the canonical path (malloc'd). */
enum err_code resolve_file_load(const struct resolve_roots *rt, const char *path, const char *ref,
				size_t max_bytes, uint8_t **data_out, size_t *len_out,
				char **canon_out, struct err *err);

#endif
