/* deadline.h - the absolute time a pthread_cond_timedwait waits until.
 * Threads: thread-safe. */
#ifndef THEATER_UTIL_DEADLINE_H
#define THEATER_UTIL_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* Now on clock clk (the clock the condition variable was made with:
 * CLOCK_REALTIME by default) plus ms milliseconds (ms >= 0). */
struct timespec deadline_after_ms(clockid_t clk, int64_t ms);

#endif
