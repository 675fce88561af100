/* pct.c - percent-decoding; see pct.h. Shared by the HTTP layer (whole paths)
 * and the route table (one path segment at a time). */
#include "src/util/pct.h"

#include "src/util/crypto.h"

enum err_code pct_decode(const char *src, size_t n, char *dst)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (src[i] != '%') {
			if (dst)
				dst[k++] = src[i];
			continue;
		}
		int hi = i + 1 < n ? hex_digit((unsigned char)src[i + 1]) : -1;
		int lo = hi < 0 || i + 2 >= n ? -1 : hex_digit((unsigned char)src[i + 2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return ERR_INVALID;
		if (dst)
			dst[k++] = (char)(hi * 16 + lo);
		i += 2;
	}
	if (dst)
		dst[k] = '\0';
	return ERR_OK;
}
