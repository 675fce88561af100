/* pct.h - percent-decoding (RFC 3986) of URL parts.
 * Threads: thread-safe (touches only its arguments). */
#ifndef THEATER_UTIL_PCT_H
#define THEATER_UTIL_PCT_H

#include <stddef.h>

#include "src/util/err.h"

/* Decodes n bytes of src into dst (room for n + 1 bytes; NUL-terminated), or
 * only checks them when dst is NULL. ERR_INVALID for a malformed escape or an
 * encoded NUL (%00); dst is then unspecified. */
enum err_code pct_decode(const char *src, size_t n, char *dst);

#endif
