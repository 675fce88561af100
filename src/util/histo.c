/* histo.c - lock-free latency histograms (see histo.h). Bounds from 100 us to
 * 10 s cover an fdatasync on fast and slow disks as well as an HTTP answer. */
#include "src/util/histo.h"

#include <time.h>

const double histo_bounds_s[HISTO_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 1, 2.5, 10,
};

void histo_observe(struct histo *h, int64_t us)
{
	if (us < 0)
		us = 0;
	double s = (double)us / 1e6;
	int i = 0;
	while (i < HISTO_BUCKETS && s > histo_bounds_s[i])
		i++;
	__atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

void histo_read(const struct histo *h, uint64_t cumulative_out[HISTO_BUCKETS + 1],
		uint64_t *sum_us_out)
{
	uint64_t total = 0;
	for (int i = 0; i <= HISTO_BUCKETS; i++) {
		total += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
		cumulative_out[i] = total;
	}
	*sum_us_out = __atomic_load_n(&h->sum_us, __ATOMIC_RELAXED);
}

int64_t histo_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
