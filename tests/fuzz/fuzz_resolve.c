/* fuzz_resolve.c - libFuzzer entry point over the package sandbox
 * (src/resolve_path.c): references joined and loaded from the package roots.
 *
 * A fixed tree is made once under a temporary directory:
 *     root/a.wasm, root/sub/b.wasm, root/sub/in -> ../a.wasm (symlink inside)
 *     root/out -> ../outside/secret.wasm, root/up -> .. , root/etc -> /etc
 *     outside/secret.wasm
 * Each input is "BASE\0REF" (or only REF): resolver_join(BASE, REF) must not
 * crash; then REF, with "{ROOT}" and "{OUT}" replaced by the tree's absolute
 * paths, is made absolute and loaded with the one root. The property: a load
 * that succeeds returns a file inside the root (its canonical path under the
 * root's real path and its bytes one of the inside files'), never the secret
 * outside or anything reached through a symlink out of the root. A breach
 * aborts. The committed regressions run as fuzz_resolve_regressions;
 * FUZZ_RESOLVE_VERBOSE=1 prints what each reference resolved to.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/resolve.h"
#include "src/resolve_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[256], root[300], outside[300], realroot[PATH_MAX];
static struct resolve_roots roots;

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void link_to(const char *target, const char *path)
{
	if (symlink(target, path) != 0)
		abort();
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (top[0] && system(cmd) != 0)
		fprintf(stderr, "fuzz_resolve: cannot remove %s\n", top);
	resolve_roots_release(&roots);
}

static void setup(void)
{
	if (top[0])
		return;
	char tmpl[] = "/tmp/theater-fuzz-resolve-XXXXXX";
	if (!mkdtemp(tmpl))
		abort();
	snprintf(top, sizeof(top), "%s", tmpl);
	atexit(teardown);
	char p[512];
	snprintf(root, sizeof(root), "%s/root", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(p, sizeof(p), "%s/sub", root);
	if (mkdir(root, 0755) || mkdir(outside, 0755) || mkdir(p, 0755))
		abort();
	snprintf(p, sizeof(p), "%s/a.wasm", root);
	put(p, "INSIDE-A");
	snprintf(p, sizeof(p), "%s/sub/b.wasm", root);
	put(p, "INSIDE-B");
	snprintf(p, sizeof(p), "%s/secret.wasm", outside);
	put(p, "OUTSIDE");
	snprintf(p, sizeof(p), "%s/sub/in", root);
	link_to("../a.wasm", p);
	snprintf(p, sizeof(p), "%s/out", root);
	link_to("../outside/secret.wasm", p);
	snprintf(p, sizeof(p), "%s/up", root);
	link_to("..", p);
	snprintf(p, sizeof(p), "%s/etc", root);
	link_to("/etc", p);
	if (!realpath(root, realroot))
		abort();
	const char *given[] = {root};
	struct err err = {0};
	if (resolve_roots_init(&roots, given, 1, &err) != ERR_OK)
		abort();
}

/* ref with {ROOT} and {OUT} replaced; malloc'd. */
static char *expand(const char *ref)
{
	size_t cap = strlen(ref) * (strlen(root) + strlen(outside)) + 1, n = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	for (const char *p = ref; *p;) {
		const char *with = NULL;
		size_t skip = 0;
		if (strncmp(p, "{ROOT}", 6) == 0)
			with = root, skip = 6;
		else if (strncmp(p, "{OUT}", 5) == 0)
			with = outside, skip = 5;
		if (with) {
			memcpy(s + n, with, strlen(with));
			n += strlen(with);
			p += skip;
		} else {
			s[n++] = *p++;
		}
	}
	s[n] = '\0';
	return s;
}

static int under_root(const char *path)
{
	size_t n = strlen(realroot);
	return strncmp(path, realroot, n) == 0 && path[n] == '/';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size > 4096)
		return 0;
	char *in = malloc(size + 2);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = in[size + 1] = '\0';
	size_t blen = strnlen(in, size);
	const char *base = blen < size ? in : "";
	const char *ref = blen < size ? in + blen + 1 : in;
	free(resolver_join(base, ref));
	char *exp = expand(ref), *abs = NULL, *canon = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	struct err err = {0};
	int loaded = exp && resolve_file_absolute(&roots, exp, &abs, &err) == ERR_OK &&
		     resolve_file_load(&roots, abs, exp, 1 << 20, &bytes, &len, &canon, &err) == ERR_OK;
	if (getenv("FUZZ_RESOLVE_VERBOSE"))
		fprintf(stderr, "  %s: %s\n", exp ? exp : "?", loaded ? canon : err.msg);
	if (loaded) {
		int inside = canon && under_root(canon) &&
			     ((len == 8 && memcmp(bytes, "INSIDE-A", 8) == 0) ||
			      (len == 8 && memcmp(bytes, "INSIDE-B", 8) == 0));
		if (!inside) {
			fprintf(stderr, "fuzz_resolve: '%s' loaded '%s' (%zu bytes) outside %s\n",
				exp, canon ? canon : "?", len, realroot);
			abort();
		}
	}
	free(bytes);
	free(canon);
	free(abs);
	free(exp);
	free(in);
	return 0;
}
