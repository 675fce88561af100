/* json.h - the one place that includes jansson.
 *
 * Decision (docs/decisions.md): DESIGN.md puts jansson in api/, but manifests
 * and chain event data are JSON in the core too, so the wrapper lives at the
 * bottom (src/util) and every layer includes this header, never <jansson.h>.
 * It adds what jansson lacks: a nesting-depth limit checked before parsing,
 * and a strict key check for objects.
 * Threads: jansson values are not thread-safe; json_t refcounts are atomic.
 */
#ifndef THEATER_UTIL_JSON_H
#define THEATER_UTIL_JSON_H

#include <jansson.h>

#include "src/util/err.h"

#define JSON_MAX_DEPTH_DEFAULT 64

/* Parses len bytes as one JSON value. Nesting deeper than max_depth fails with
 * ERR_TOO_DEEP before jansson sees it; bad syntax fails with ERR_BAD_JSON and a
 * message with line and column. Returns a new reference or NULL. */
json_t *json_parse(const char *data, size_t len, int max_depth, struct err *err);

/* Checks that every key of obj is one of the NULL-terminated `allowed`; the
 * first unknown key fails with ERR_UNKNOWN_KEY naming it and `what`. */
enum err_code json_check_keys(const json_t *obj, const char *const *allowed,
			      const char *what, struct err *err);

/* Compact serialization; returns malloc'd NUL-terminated text or NULL. */
char *json_compact(const json_t *v);

#endif
