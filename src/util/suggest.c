/* suggest.c - the closest known name to a misspelt one (see suggest.h).
 * Optimal string alignment distance over three rolling rows; words longer
 * than SUGGEST_MAX are never matched, so the rows live on the stack. */
#include "src/util/suggest.h"

#include <ctype.h>
#include <string.h>

#define SUGGEST_MAX 64

static int fold(char ch)
{
	return tolower((unsigned char)ch);
}

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t rows[3][SUGGEST_MAX + 1];
	size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = fold(a[i - 1]) != fold(b[j - 1]);
			size_t d = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
			    fold(a[i - 2]) == fold(b[j - 1]) && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

const char *suggest_name(const char *word, const char *const *names, size_t n)
{
	size_t len = strlen(word);
	if (len > SUGGEST_MAX)
		return NULL;
	const char *best = NULL;
	size_t best_d = (len < 4 ? 1 : 2) + 1;
	for (size_t i = 0; i < n; i++) {
		size_t m = strlen(names[i]);
		if (m > SUGGEST_MAX)
			continue;
		size_t d = distance(word, len, names[i], m);
		if (d < best_d) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}
