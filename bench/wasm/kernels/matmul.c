/* matmul.c - benchmark kernel: dense double-precision matrix multiply. */
#include <stdio.h>
#include <stdlib.h>

#define N 300

int main(void)
{
	double *a = malloc(sizeof(double) * N * N), *b = malloc(sizeof(double) * N * N);
	double *c = malloc(sizeof(double) * N * N);
	if (!a || !b || !c)
		return 1;
	for (int i = 0; i < N * N; i++) {
		a[i] = (double)(i % 17) * 0.25 - 1.0;
		b[i] = (double)(i % 13) * 0.5 + 0.125;
	}
	double sum = 0;
	for (int round = 0; round < 12; round++) {
		for (int i = 0; i < N; i++) {
			for (int j = 0; j < N; j++) {
				double s = 0;
				for (int k = 0; k < N; k++)
					s += a[i * N + k] * b[k * N + j];
				c[i * N + j] = s;
			}
		}
		sum += c[(round * 7919) % (N * N)];
		a[round] = c[round] * 1e-6;
	}
	double total = 0;
	for (int i = 0; i < N * N; i++)
		total += c[i];
	printf("matmul checksum %.17g %.17g\n", total, sum);
	free(a);
	free(b);
	free(c);
	return 0;
}
