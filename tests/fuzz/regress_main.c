/* regress_main.c - runs files through the fuzz entry point in a normal build.
 *
 * Usage: fuzz_wasm_regress PATH...  where each PATH is an input file or a
 * directory of them (not recursive; names starting with '.' and *.md are
 * skipped). The CTest test passes tests/fuzz/regressions/: every crasher
 * the fuzzer found, kept so that it stays fixed. Exits non-zero if a path
 * cannot be read; a crash is the failure it exists to catch.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open '%s'\n", path);
		return -1;
	}
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nd = realloc(data, cap);
			if (!nd) {
				free(data);
				fclose(f);
				return -1;
			}
			data = nd;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	printf("%s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int skipped(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n >= 3 && strcmp(name + n - 3, ".md") == 0);
}

static int run_dir(const char *dir, int *count)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), rc = 0;
	if (n < 0) {
		fprintf(stderr, "cannot read directory '%s'\n", dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (!skipped(names[i]->d_name) && rc == 0) {
			size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
			char *path = malloc(len);
			snprintf(path, len, "%s/%s", dir, names[i]->d_name);
			struct stat st;
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				rc = run_file(path);
				(*count)++;
			}
			free(path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rc = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? run_dir(argv[i], &count)
									: (count++, run_file(argv[i]));
		if (rc != 0)
			return 1;
	}
	printf("%d inputs ran without a crash\n", count);
	return 0;
}
