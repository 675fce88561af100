/* histo.h - a fixed-bucket latency histogram that any thread may feed without
 * a lock (relaxed atomic counters), read in the Prometheus way: cumulative
 * bucket counts, a sum and a count.
 * Threads: histo_observe and histo_read from any thread; a reader may see an
 * observation in the count a moment before it is in the sum. */
#ifndef THEATER_UTIL_HISTO_H
#define THEATER_UTIL_HISTO_H

#include <stdint.h>

#define HISTO_BUCKETS 14

/* Upper bounds of the buckets in seconds (the +Inf bucket is implied). */
extern const double histo_bounds_s[HISTO_BUCKETS];

/* All zero is an empty histogram. */
struct histo {
	uint64_t counts[HISTO_BUCKETS + 1];   /* per bucket, not cumulative; last: +Inf */
	uint64_t sum_us;
};

void histo_observe(struct histo *h, int64_t us);
/* cumulative_out[i]: observations <= histo_bounds_s[i]; [HISTO_BUCKETS] = count. */
void histo_read(const struct histo *h, uint64_t cumulative_out[HISTO_BUCKETS + 1],
		uint64_t *sum_us_out);
/* CLOCK_MONOTONIC in microseconds. */
int64_t histo_now_us(void);

#endif
