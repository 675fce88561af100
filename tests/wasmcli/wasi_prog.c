/* wasi_prog.c - a wasm32-wasi command for tests/test_wasm_cli.c, compiled
 * with clang at test time. argv[1] picks what it does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cat_upper(void)
{
	char line[256];
	int lines = 0;
	while (fgets(line, sizeof line, stdin)) {
		for (char *p = line; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		fputs(line, stdout);
		lines++;
	}
	printf("lines=%d\n", lines);
	return 0;
}

static int clocks(void)
{
	struct timespec a, b;
	unsigned char r[32];
	if (clock_gettime(CLOCK_MONOTONIC, &a) != 0 || clock_gettime(CLOCK_MONOTONIC, &b) != 0)
		return 10;
	if (b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec < a.tv_nsec))
		return 11;
	if (time(NULL) < 1600000000)
		return 12;
	if (getentropy(r, sizeof r) != 0)
		return 13;
	int nonzero = 0;
	for (size_t i = 0; i < sizeof r; i++)
		nonzero |= r[i];
	puts(nonzero ? "clocks ok" : "random all zero");
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "hello";
	if (strcmp(cmd, "hello") == 0) {
		printf("hello from wasm, argc=%d\n", argc);
		for (int i = 1; i < argc; i++)
			printf("argv[%d]=%s\n", i, argv[i]);
		return 0;
	}
	if (strcmp(cmd, "env") == 0) {
		const char *v = getenv(argc > 2 ? argv[2] : "FOO");
		printf("%s\n", v ? v : "(unset)");
		return 0;
	}
	if (strcmp(cmd, "exit") == 0) {
		fprintf(stderr, "leaving with %s\n", argc > 2 ? argv[2] : "0");
		exit(argc > 2 ? atoi(argv[2]) : 0);
	}
	if (strcmp(cmd, "return") == 0)
		return argc > 2 ? atoi(argv[2]) : 0;
	if (strcmp(cmd, "cat") == 0)
		return cat_upper();
	if (strcmp(cmd, "clocks") == 0)
		return clocks();
	if (strcmp(cmd, "trap") == 0)
		__builtin_trap();
	if (strcmp(cmd, "files") == 0) {
		FILE *f = fopen("/etc/passwd", "r");
		printf("fopen: %s\n", f ? "opened" : "refused");
		return f ? 1 : 0;
	}
	fprintf(stderr, "unknown command '%s'\n", cmd);
	return 99;
}
