/* units.h - quantities written by people: byte counts with K/M/G suffixes.
 * Threads: thread-safe. */
#ifndef THEATER_UTIL_UNITS_H
#define THEATER_UTIL_UNITS_H

#include <stdint.h>

/* Parses decimal digits with an optional K, M or G (either case; powers of 1024)
 * and nothing after. 0 on success; -1 when the text is not such a size or its
 * value exceeds max. */
int units_parse_size(const char *text, uint64_t max, uint64_t *out);

#endif
