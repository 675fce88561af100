/* deadline.c - see deadline.h. */
#include "src/util/deadline.h"

struct timespec deadline_after_ms(clockid_t clk, int64_t ms)
{
	struct timespec t;
	clock_gettime(clk, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}
