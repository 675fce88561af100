/* units.c - see units.h. Used by theater-server's flags and theater-wasm's. */
#include "src/util/units.h"

#include <errno.h>
#include <stdlib.h>

int units_parse_size(const char *text, uint64_t max, uint64_t *out)
{
	if (text[0] < '0' || text[0] > '9')
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end == 'T' || *end == 't')
		shift = 40;
	if (shift)
		end++;
	if (errno != 0 || *end != '\0' || v > (max >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
