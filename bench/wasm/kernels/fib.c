/* fib.c - benchmark kernel: naive recursive Fibonacci (call-bound). */
#include <stdio.h>

static unsigned fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(void)
{
	volatile unsigned n = 38;
	unsigned sum = 0;
	for (int i = 0; i < 1; i++)
		sum += fib(n);
	printf("fib checksum %u\n", sum);
	return 0;
}
