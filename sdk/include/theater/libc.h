/* theater/libc.h - the four memory functions a freestanding wasm32 actor needs.
 *
 * Actors are built with -nostdlib (theater provides no WASI), but clang still
 * emits calls to memcpy, memmove, memset and memcmp for struct copies and for
 * loops it recognises. This header defines them, in the one file that defines
 * THEATER_ACTOR_IMPL. `no_builtin` keeps clang from turning their own loops
 * back into calls to themselves; hidden visibility keeps them out of the
 * module's exports.
 */
#ifndef THEATER_LIBC_H
#define THEATER_LIBC_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#ifdef THEATER_ACTOR_IMPL
#define THEATER_LIBC_FN __attribute__((no_builtin, visibility("hidden")))

THEATER_LIBC_FN void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

THEATER_LIBC_FN void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

THEATER_LIBC_FN void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

THEATER_LIBC_FN int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

#undef THEATER_LIBC_FN
#endif

#endif
