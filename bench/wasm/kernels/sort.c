/* sort.c - benchmark kernel: quicksort of pseudo-random 32-bit integers
 * (xorshift), with an insertion sort for short ranges. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define COUNT 1000000

static void insertion(int32_t *a, long n)
{
	for (long i = 1; i < n; i++) {
		int32_t v = a[i];
		long j = i - 1;
		for (; j >= 0 && a[j] > v; j--)
			a[j + 1] = a[j];
		a[j + 1] = v;
	}
}

static void quicksort(int32_t *a, long n)
{
	while (n > 16) {
		int32_t p = a[n / 2];
		long i = 0, j = n - 1;
		while (i <= j) {
			while (a[i] < p)
				i++;
			while (a[j] > p)
				j--;
			if (i <= j) {
				int32_t t = a[i];
				a[i++] = a[j];
				a[j--] = t;
			}
		}
		if (j + 1 < n - i) {
			quicksort(a, j + 1);
			a += i;
			n -= i;
		} else {
			quicksort(a + i, n - i);
			n = j + 1;
		}
	}
	insertion(a, n);
}

int main(void)
{
	int32_t *a = malloc(sizeof(int32_t) * COUNT);
	uint32_t x = 2463534242u;
	uint64_t check = 0;
	if (!a)
		return 1;
	for (int round = 0; round < 3; round++) {
		for (long i = 0; i < COUNT; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			a[i] = (int32_t)x;
		}
		quicksort(a, COUNT);
		for (long i = 1; i < COUNT; i++)
			if (a[i - 1] > a[i])
				return 2;
		for (long i = 0; i < COUNT; i += 1000)
			check = check * 1000003u + (uint32_t)a[i];
	}
	printf("sort checksum %llu\n", (unsigned long long)check);
	free(a);
	return 0;
}
