/* manifest_int.h - private to the manifest module (src/manifest.c, the model
 * and the entry points; src/manifest_check.c, the schema and the checker).
 * Nothing outside these two files includes it. */
#ifndef THEATER_MANIFEST_INT_H
#define THEATER_MANIFEST_INT_H

#include "src/manifest.h"

struct toml_value;

/* Checks obj (borrowed) against the manifest schema and appends every problem
 * found to probs. src is the TOML tree obj was converted from (for positions
 * and for the types JSON cannot tell apart), or NULL for a JSON manifest.
 * Returns ERR_NOMEM when memory ran out (probs may then be incomplete), else
 * ERR_OK whether or not problems were found. */
enum err_code manifest_schema_check(const json_t *obj, const struct toml_value *src,
				    int allow_unsupported, struct manifest_problems *probs);

/* Appends one problem (path and message are copied); past
 * MANIFEST_MAX_PROBLEMS it is only counted in probs->more. ERR_NOMEM. */
enum err_code manifest_problem_add(struct manifest_problems *probs, enum err_code err,
				   const char *code, const char *path, unsigned line,
				   unsigned col, const char *message);

#endif
