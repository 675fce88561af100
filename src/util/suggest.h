/* suggest.h - "did you mean ...?": the known name closest to a misspelt one.
 * Threads: any (pure functions). */
#ifndef THEATER_UTIL_SUGGEST_H
#define THEATER_UTIL_SUGGEST_H

#include <stddef.h>

/* The name of names[0..n) closest to word by edit distance (insert, delete,
 * substitute, swap two neighbours; case ignored): at most 1 edit away for
 * words under 4 characters, 2 otherwise. NULL when none is that close.
 * Returns one of names (borrowed). */
const char *suggest_name(const char *word, const char *const *names, size_t n);

#endif
