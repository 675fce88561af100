/* sieve.c - benchmark kernel: sieve of Eratosthenes (byte array, loads and
 * stores in linear memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT (4u * 1000 * 1000)

int main(void)
{
	unsigned char *composite = malloc(LIMIT + 1);
	unsigned long total = 0;
	if (!composite)
		return 1;
	for (int round = 0; round < 20; round++) {
		memset(composite, 0, LIMIT + 1);
		unsigned count = 0;
		for (unsigned i = 2; i <= LIMIT; i++) {
			if (composite[i])
				continue;
			count++;
			for (unsigned j = i * 2; j <= LIMIT; j += i)
				composite[j] = 1;
		}
		total += count;
	}
	printf("sieve checksum %lu\n", total);
	free(composite);
	return 0;
}
