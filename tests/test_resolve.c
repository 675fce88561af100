/* test_resolve.c - references, the file sandbox, store and http references,
 * the static_package cache, resolver_join, and THEATER_HOME (src/home). */
#include "tests/support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/home.h"
#include "src/resolve.h"
#include "src/store.h"
#include "src/util/crypto.h"
#include "tests/support/fixture_httpd.h"

/* A fresh tree per test: <tmp>/root (package root), <tmp>/root2 (second
 * root), <tmp>/outside (never to be opened), <tmp>/store. */
struct env {
	char *tmp, *root, *root2, *outside, *store_dir;
	struct store *store;
	struct fixture_httpd *httpd;
	struct resolver *r;
};

static char *path_in(const char *dir, const char *name)
{
	char *p = tu_fmt("%s/%s", dir, name);
	assert_non_null(p);
	return p;
}

static void write_in(const char *dir, const char *name, const char *text)
{
	char *p = path_in(dir, name);
	assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
	free(p);
}

static void mkdir_in(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void symlink_in(const char *dir, const char *name, const char *target)
{
	char *p = path_in(dir, name);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* The fixture server is on loopback: the resolver is allowed to reach it
 * (--fetch-allow 127.0.0.1) unless allow is given. */
static struct resolver *new_resolver_allow(struct env *e, size_t max_pkg, size_t cache_max,
					   int allow_private, const char *allow)
{
	const char *roots[] = { e->root, e->root2 };
	struct resolver_config cfg = {
		.package_roots = roots, .nroots = 2, .store = e->store,
		.fetch = { .total_timeout_ms = 20000 },
		.max_package_bytes = max_pkg, .cache_max_bytes = cache_max,
		.allow_private = allow_private, .fetch_allow = allow,
	};
	struct resolver *r = NULL;
	struct err err;
	assert_int_equal(resolver_new(&cfg, &r, &err), ERR_OK);
	return r;
}

static struct resolver *new_resolver(struct env *e, size_t max_pkg, size_t cache_max)
{
	return new_resolver_allow(e, max_pkg, cache_max, 0, "10.1.2.3:80,127.0.0.1");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	setenv("no_proxy", "127.0.0.1,localhost", 1);   /* keep loopback off any proxy */
	e->tmp = tu_mkdtemp("theater-resolve");
	if (!e->tmp)
		return -1;
	e->root = path_in(e->tmp, "root");
	e->root2 = path_in(e->tmp, "root2");
	e->outside = path_in(e->tmp, "outside");
	e->store_dir = path_in(e->tmp, "store");
	mkdir(e->root, 0755);
	mkdir(e->root2, 0755);
	mkdir(e->outside, 0755);
	struct err err;
	if (store_open(e->store_dir, &e->store, &err) != ERR_OK)
		return -1;
	e->httpd = fixture_httpd_start();
	if (!e->httpd)
		return -1;
	e->r = new_resolver(e, 0, 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	resolver_free(e->r);
	fixture_httpd_stop(e->httpd);
	store_close(e->store);
	tu_rmtree(e->tmp);
	free(e->tmp);
	free(e->root);
	free(e->root2);
	free(e->outside);
	free(e->store_dir);
	free(e);
	return 0;
}

/* Resolves and returns the code; *out NULL on failure. */
static enum err_code get(struct env *e, const char *ref, const char *base, int cache,
			 struct resolved **out, struct err *err)
{
	err_clear(err);
	enum err_code rc = resolver_fetch(e->r, ref, base, cache, out, err);
	if (rc)
		assert_null(*out);
	return rc;
}

static void expect_code(struct env *e, const char *ref, const char *base, enum err_code code)
{
	struct resolved *p = NULL;
	struct err err;
	enum err_code rc = get(e, ref, base, 0, &p, &err);
	if (rc != code)
		fail_msg("resolve '%s': got %s (%s), want %s", ref, err_code_name(rc),
			 rc ? err.msg : "", err_code_name(code));
	resolved_free(p);
}

static void sha_hex(const char *text, char out[65])
{
	uint8_t d[SHA256_LEN];
	sha256(text, strlen(text), d);
	hex_encode(d, SHA256_LEN, out);
}

/* --- files ------------------------------------------------------------------ */

static void test_file_under_root(void **state)
{
	struct env *e = *state;
	write_in(e->root, "a.wasm", "AAAA");
	char *abs = path_in(e->root, "a.wasm");
	char *canon = realpath(abs, NULL);
	char *url = tu_fmt("file://%s", abs);
	const char *refs[] = { abs, url, "a.wasm", "./a.wasm", "file://a.wasm" };
	char want_sha[65];
	sha_hex("AAAA", want_sha);
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		struct resolved *p;
		struct err err;
		if (get(e, refs[i], NULL, 0, &p, &err) != ERR_OK)
			fail_msg("'%s': %s", refs[i], err.msg);
		assert_int_equal(p->len, 4);
		assert_memory_equal(p->data, "AAAA", 4);
		assert_int_equal(p->data[4], '\0');
		assert_string_equal(p->sha256, want_sha);
		assert_string_equal(p->reference, canon);
		assert_false(p->from_cache);
		resolved_free(p);
	}
	free(abs);
	free(canon);
	free(url);
}

static void test_file_second_root_and_subdirs(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root2, "lib");
	write_in(e->root2, "lib/b.wasm", "BB");
	char *abs = path_in(e->root2, "lib/b.wasm");
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, abs, NULL, 0, &p, &err), ERR_OK);
	assert_int_equal(p->len, 2);
	resolved_free(p);
	/* Relative paths go to the first root only, and the message says so (it
	 * listed every root, as if each had been searched). */
	expect_code(e, "lib/b.wasm", NULL, ERR_NOT_FOUND);
	assert_int_equal(get(e, "lib/b.wasm", NULL, 0, &p, &err), ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, "the first package root"));
	assert_null(strstr(err.msg, e->root2));
	free(abs);
}

static void test_relative_to_base(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root, "actors");
	write_in(e->root, "actors/child.wasm", "child");
	write_in(e->root, "actors/manifest.json", "{}");
	char *base = path_in(e->root, "actors/manifest.json");
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, "child.wasm", base, 0, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "child", 5);
	resolved_free(p);
	char *fbase = tu_fmt("file://%s", base);
	assert_int_equal(get(e, "./child.wasm", fbase, 0, &p, &err), ERR_OK);
	resolved_free(p);
	/* A relative base resolves under the first root as well. */
	assert_int_equal(get(e, "child.wasm", "actors/manifest.json", 0, &p, &err), ERR_OK);
	resolved_free(p);
	/* ".." may not climb out of the manifest's directory either. */
	expect_code(e, "../actors/child.wasm", base, ERR_FORBIDDEN_PATH);
	free(base);
	free(fbase);
}

static void test_dotdot_refused(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root, "sub");
	write_in(e->root, "a.wasm", "A");
	write_in(e->outside, "secret", "S");
	/* Refused even where the result would stay inside the root. */
	expect_code(e, "sub/../a.wasm", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "../outside/secret", NULL, ERR_FORBIDDEN_PATH);
	char *p = tu_fmt("%s/../outside/secret", e->root);
	expect_code(e, p, NULL, ERR_FORBIDDEN_PATH);
	free(p);
	p = tu_fmt("file://%s/sub/../a.wasm", e->root);
	expect_code(e, p, NULL, ERR_FORBIDDEN_PATH);
	free(p);
	expect_code(e, "..", NULL, ERR_FORBIDDEN_PATH);
	struct resolved *r;
	struct err err;
	assert_int_equal(get(e, "sub/../a.wasm", NULL, 0, &r, &err), ERR_FORBIDDEN_PATH);
	assert_non_null(strstr(err.msg, "is outside the package roots"));
	/* A name that merely contains dots is fine. */
	write_in(e->root, "a..b.wasm", "D");
	expect_code(e, "a..b.wasm", NULL, ERR_OK);
}

static void test_absolute_outside(void **state)
{
	struct env *e = *state;
	write_in(e->outside, "secret", "S");
	char *p = path_in(e->outside, "secret");
	expect_code(e, p, NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "/etc/passwd", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "file:///etc/passwd", NULL, ERR_FORBIDDEN_PATH);
	/* A sibling whose name starts with the root's name is not inside it. */
	char *sib = tu_fmt("%s-evil", e->root);
	assert_int_equal(mkdir(sib, 0755), 0);
	write_in(sib, "x.wasm", "X");
	char *x = path_in(sib, "x.wasm");
	expect_code(e, x, NULL, ERR_FORBIDDEN_PATH);
	tu_rmtree(sib);
	free(sib);
	free(x);
	free(p);
}

/* inotify watch for opens and reads of path. */
static int watch(const char *path)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(inotify_add_watch(fd, path, IN_OPEN | IN_ACCESS) >= 0);
	return fd;
}

static int watched_events(int fd)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0)
		assert_int_equal(errno, EAGAIN);
	return n > 0;
}

static void test_symlink_escape_not_opened(void **state)
{
	struct env *e = *state;
	char *fifo = path_in(e->outside, "fifo");
	char *secret = path_in(e->outside, "secret");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	write_in(e->outside, "secret", "S");
	symlink_in(e->root, "fifo.wasm", fifo);
	symlink_in(e->root, "secret.wasm", secret);
	symlink_in(e->root, "outdir", e->outside);
	symlink_in(e->root, "rel.wasm", "../outside/secret");
	int wf = watch(fifo), ws = watch(secret);
	/* A blocking open of the FIFO would hang here: nobody writes to it. */
	expect_code(e, "fifo.wasm", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "secret.wasm", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "outdir/secret", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "outdir/fifo", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "rel.wasm", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "outdir/missing", NULL, ERR_FORBIDDEN_PATH);
	assert_false(watched_events(wf));
	assert_false(watched_events(ws));
	/* The watches do see an open: the check above can fail. */
	int fd = open(fifo, O_RDONLY | O_NONBLOCK);
	assert_true(fd >= 0);
	close(fd);
	fd = open(secret, O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	assert_true(watched_events(wf));
	assert_true(watched_events(ws));
	close(wf);
	close(ws);
	free(fifo);
	free(secret);
}

static void test_symlink_inside_ok(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root, "real");
	write_in(e->root, "real/pkg.wasm", "PKG");
	symlink_in(e->root, "link.wasm", "real/pkg.wasm");
	symlink_in(e->root, "linkdir", "real");
	char *t = path_in(e->root2, "other.wasm");
	assert_int_equal(tu_write_file(t, "O", 1), 0);
	symlink_in(e->root, "to-root2.wasm", t);   /* another root is fine */
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, "link.wasm", NULL, 0, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "PKG", 3);
	char *canon = path_in(e->root, "real/pkg.wasm");
	char *want = realpath(canon, NULL);
	assert_string_equal(p->reference, want);
	resolved_free(p);
	assert_int_equal(get(e, "linkdir/pkg.wasm", NULL, 0, &p, &err), ERR_OK);
	assert_string_equal(p->reference, want);
	resolved_free(p);
	expect_code(e, "to-root2.wasm", NULL, ERR_OK);
	free(canon);
	free(want);
	free(t);
}

static void test_not_regular_or_missing(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root, "dir");
	char *fifo = path_in(e->root, "pipe.wasm");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_code(e, "pipe.wasm", NULL, ERR_INVALID);   /* checked before open: no hang */
	expect_code(e, "dir", NULL, ERR_INVALID);
	expect_code(e, "dir/", NULL, ERR_INVALID);
	expect_code(e, e->root, NULL, ERR_FORBIDDEN_PATH);   /* no package; its parent is outside */
	expect_code(e, "missing.wasm", NULL, ERR_NOT_FOUND);
	expect_code(e, "nodir/missing.wasm", NULL, ERR_NOT_FOUND);
	symlink_in(e->root, "dangling.wasm", "nowhere.wasm");
	expect_code(e, "dangling.wasm", NULL, ERR_NOT_FOUND);
	free(fifo);
}

static void test_file_size_cap(void **state)
{
	struct env *e = *state;
	resolver_free(e->r);
	e->r = new_resolver(e, 10, 0);
	write_in(e->root, "ten.wasm", "0123456789");
	write_in(e->root, "eleven.wasm", "0123456789A");
	expect_code(e, "ten.wasm", NULL, ERR_OK);
	expect_code(e, "eleven.wasm", NULL, ERR_TOO_LARGE);
}

static void test_config_errors(void **state)
{
	struct env *e = *state;
	struct resolver *r = (struct resolver *)1;
	struct err err;
	const char *rel[] = { "relative/root" };
	struct resolver_config cfg = { .package_roots = rel, .nroots = 1 };
	assert_int_equal(resolver_new(&cfg, &r, &err), ERR_INVALID);
	assert_null(r);
	char *missing = path_in(e->tmp, "missing");
	const char *miss[] = { e->root, missing };
	cfg.package_roots = miss;
	cfg.nroots = 2;
	assert_int_equal(resolver_new(&cfg, &r, &err), ERR_INVALID);
	assert_non_null(strstr(err.msg, "missing"));
	free(missing);
	/* No roots at all: every file reference is refused. */
	cfg.nroots = 0;
	assert_int_equal(resolver_new(&cfg, &r, &err), ERR_OK);
	struct resolved *p;
	assert_int_equal(resolver_fetch(r, "a.wasm", NULL, 0, &p, &err), ERR_FORBIDDEN_PATH);
	assert_int_equal(resolver_fetch(r, "/etc/passwd", NULL, 0, &p, &err), ERR_FORBIDDEN_PATH);
	resolver_free(r);
	resolver_free(NULL);
	resolved_free(NULL);
}

static void test_bad_references(void **state)
{
	struct env *e = *state;
	expect_code(e, "", NULL, ERR_BAD_REFERENCE);
	expect_code(e, "ftp://127.0.0.1/x.wasm", NULL, ERR_BAD_REFERENCE);
	expect_code(e, "gopher://x/", NULL, ERR_BAD_REFERENCE);
	char *long_ref = malloc(RESOLVE_MAX_REFERENCE + 2);
	memset(long_ref, 'a', RESOLVE_MAX_REFERENCE + 1);
	long_ref[RESOLVE_MAX_REFERENCE + 1] = '\0';
	expect_code(e, long_ref, NULL, ERR_BAD_REFERENCE);
	free(long_ref);
	struct resolved *p;
	struct err err;
	assert_int_equal(resolver_fetch(e->r, NULL, NULL, 0, &p, &err), ERR_BAD_REFERENCE);
}

/* --- store ------------------------------------------------------------------ */

static void test_store_refs(void **state)
{
	struct env *e = *state;
	char hash[65];
	struct err err;
	assert_int_equal(store_put(e->store, "pkgs", "STORED", 6, hash, &err), ERR_OK);
	assert_int_equal(store_label_set(e->store, "pkgs", "counter-v1", hash, &err), ERR_OK);
	char *by_hash = tu_fmt("store://pkgs/hash/%s", hash);
	const char *refs[] = { by_hash, "store://pkgs/counter-v1" };
	for (int i = 0; i < 2; i++) {
		struct resolved *p;
		if (get(e, refs[i], NULL, 0, &p, &err) != ERR_OK)
			fail_msg("'%s': %s", refs[i], err.msg);
		assert_int_equal(p->len, 6);
		assert_memory_equal(p->data, "STORED", 6);
		assert_string_equal(p->sha256, hash);
		assert_string_equal(p->reference, refs[i]);
		resolved_free(p);
	}
	/* Relative to a manifest in the store: the same store id. */
	struct resolved *p;
	assert_int_equal(get(e, "counter-v1", "store://pkgs/manifest", 0, &p, &err), ERR_OK);
	assert_string_equal(p->reference, "store://pkgs/counter-v1");
	resolved_free(p);
	char *rel_hash = tu_fmt("hash/%s", hash);
	assert_int_equal(get(e, rel_hash, "store://pkgs/hash/abc", 0, &p, &err), ERR_OK);
	resolved_free(p);
	free(rel_hash);
	free(by_hash);
}

static void test_store_bad_refs(void **state)
{
	struct env *e = *state;
	char zeros[65];
	memset(zeros, '0', 64);
	zeros[64] = '\0';
	char *missing = tu_fmt("store://pkgs/hash/%s", zeros);
	char *upper = tu_fmt("store://pkgs/hash/%s", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
	char *dotdot = tu_fmt("store://../hash/%s", zeros);
	static const struct { const char *ref; enum err_code code; } cases[] = {
		{ "store://", ERR_BAD_REFERENCE },
		{ "store://pkgs", ERR_BAD_REFERENCE },
		{ "store://pkgs/", ERR_BAD_REFERENCE },
		{ "store:///label", ERR_BAD_REFERENCE },
		{ "store://bad id/label", ERR_BAD_ID },
		{ "store://.hidden/label", ERR_BAD_ID },
		{ "store://pkgs/hash/123", ERR_BAD_ID },
		{ "store://pkgs/hash/", ERR_BAD_ID },
		{ "store://pkgs/bad label", ERR_BAD_ID },
		{ "store://pkgs/a/b", ERR_BAD_ID },
		{ "store://pkgs/..", ERR_BAD_ID },
		{ "store://pkgs/no-such-label", ERR_NOT_FOUND },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_code(e, cases[i].ref, NULL, cases[i].code);
	expect_code(e, missing, NULL, ERR_NOT_FOUND);
	expect_code(e, upper, NULL, ERR_BAD_ID);
	expect_code(e, dotdot, NULL, ERR_BAD_ID);
	/* The reference's forms that we refuse say why. */
	struct err why;
	struct resolved *none = NULL;
	assert_int_equal(resolver_fetch(e->r, "store://pkgs/hash/da39a3ee5e6b4b0d3255bfef95601890afd80709",
					NULL, 0, &none, &why), ERR_BAD_ID);
	assert_non_null(strstr(why.msg, "40-digit (sha-1) hash"));
	assert_non_null(strstr(why.msg, "sha-256 (64 hex digits)"));
	assert_int_equal(resolver_fetch(e->r, "store://pkgs/a/b", NULL, 0, &none, &why), ERR_BAD_ID);
	assert_non_null(strstr(why.msg, "more than one path part after the store id"));
	assert_non_null(strstr(why.msg, "store://pkgs/<label>"));
	/* Without a store: store references are unsupported, still validated first. */
	const char *roots[] = { e->root };
	struct resolver_config cfg = { .package_roots = roots, .nroots = 1 };
	struct resolver *r;
	struct err err;
	struct resolved *p;
	assert_int_equal(resolver_new(&cfg, &r, &err), ERR_OK);
	assert_int_equal(resolver_fetch(r, "store://pkgs/label", NULL, 0, &p, &err), ERR_UNSUPPORTED);
	assert_int_equal(resolver_fetch(r, "store://b d/label", NULL, 0, &p, &err), ERR_BAD_ID);
	resolver_free(r);
	free(missing);
	free(upper);
	free(dotdot);
}

static void test_store_size_cap(void **state)
{
	struct env *e = *state;
	char hash[65];
	struct err err;
	assert_int_equal(store_put(e->store, "pkgs", "0123456789AB", 12, hash, &err), ERR_OK);
	resolver_free(e->r);
	e->r = new_resolver(e, 10, 0);
	char *ref = tu_fmt("store://pkgs/hash/%s", hash);
	expect_code(e, ref, NULL, ERR_TOO_LARGE);
	free(ref);
}

/* --- http ------------------------------------------------------------------- */

static void test_http(void **state)
{
	struct env *e = *state;
	fixture_httpd_add_bytes(e->httpd, "/actors/pkg.wasm", "HTTP", 4);
	fixture_httpd_add_bytes(e->httpd, "/actors/manifest.json", "{}", 2);
	char *url = fixture_httpd_url(e->httpd, "/actors/pkg.wasm");
	char *base = fixture_httpd_url(e->httpd, "/actors/manifest.json");
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, url, NULL, 0, &p, &err), ERR_OK);
	assert_int_equal(p->len, 4);
	assert_string_equal(p->reference, url);
	resolved_free(p);
	/* Relative to a manifest fetched over http. */
	assert_int_equal(get(e, "pkg.wasm", base, 0, &p, &err), ERR_OK);
	assert_string_equal(p->reference, url);
	resolved_free(p);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/actors/pkg.wasm"), 2);
	expect_code(e, "missing.wasm", base, ERR_FETCH_STATUS);
	/* The package cap applies to downloads. */
	resolver_free(e->r);
	e->r = new_resolver(e, 3, 0);
	expect_code(e, url, NULL, ERR_TOO_LARGE);
	free(url);
	free(base);
}

/* Issue 12: every package fetch is under the address policy, after DNS, for
 * redirects too, whatever the case of the scheme; the allowance is explicit. */
static void test_http_address_policy(void **state)
{
	struct env *e = *state;
	fixture_httpd_add_bytes(e->httpd, "/p.wasm", "HTTP", 4);
	char *url = fixture_httpd_url(e->httpd, "/p.wasm");
	char *upper = tu_fmt("HTTP://127.0.0.1:%u/p.wasm", fixture_httpd_port(e->httpd));
	char *other = tu_fmt("127.0.0.1:%u", fixture_httpd_port(e->httpd) + 1u);
	char *exact = tu_fmt("127.0.0.1:%u", fixture_httpd_port(e->httpd));
	char *named = tu_fmt("http://localhost:%u/p.wasm", fixture_httpd_port(e->httpd));
	struct resolved *p;
	struct err err;
	resolver_free(e->r);
	e->r = new_resolver_allow(e, 0, 0, 0, NULL);        /* the default: public only */
	expect_code(e, url, NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, upper, NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, named, NULL, ERR_FORBIDDEN_PATH);    /* after DNS */
	expect_code(e, "http://169.254.169.254/latest/meta-data", NULL, ERR_FORBIDDEN_PATH);
	expect_code(e, "http://[::ffff:127.0.0.1]:1/x", NULL, ERR_FORBIDDEN_PATH);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/p.wasm"), 0);
	/* a public-looking start that redirects to loopback is refused at the redirect:
	 * here the first hop is allowed by port, the second is another port */
	resolver_free(e->r);
	e->r = new_resolver_allow(e, 0, 0, 0, other);
	expect_code(e, url, NULL, ERR_FORBIDDEN_PATH);
	resolver_free(e->r);
	e->r = new_resolver_allow(e, 0, 0, 0, exact);
	fixture_httpd_add_redirect(e->httpd, "/hop", url);
	char *hop = fixture_httpd_url(e->httpd, "/hop");
	assert_int_equal(get(e, hop, NULL, 0, &p, &err), ERR_OK);   /* same address and port */
	resolved_free(p);
	char *away = tu_fmt("http://127.0.0.2:%u/p.wasm", fixture_httpd_port(e->httpd));
	fixture_httpd_add_redirect(e->httpd, "/away", away);
	char *hop2 = fixture_httpd_url(e->httpd, "/away");
	expect_code(e, hop2, NULL, ERR_FORBIDDEN_PATH);              /* 127.0.0.2 not allowed */
	assert_int_equal(get(e, upper, NULL, 0, &p, &err), ERR_OK);
	resolved_free(p);
	resolver_free(e->r);
	e->r = new_resolver_allow(e, 0, 0, 1, NULL);        /* --fetch-allow-private */
	assert_int_equal(get(e, url, NULL, 0, &p, &err), ERR_OK);
	resolved_free(p);
	free(url);
	free(upper);
	free(other);
	free(exact);
	free(named);
	free(hop);
	free(away);
	free(hop2);
}

/* --- the cache ---------------------------------------------------------------- */

static void test_cache_static_second_fetch(void **state)
{
	struct env *e = *state;
	fixture_httpd_add_bytes(e->httpd, "/static.wasm", "STATIC", 6);
	char *url = fixture_httpd_url(e->httpd, "/static.wasm");
	struct resolved *p, *q;
	struct err err;
	assert_int_equal(get(e, url, NULL, 1, &p, &err), ERR_OK);
	assert_false(p->from_cache);
	assert_int_equal(get(e, url, NULL, 1, &q, &err), ERR_OK);
	assert_true(q->from_cache);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/static.wasm"), 1);
	assert_int_equal(q->len, 6);
	assert_memory_equal(q->data, "STATIC", 6);
	assert_string_equal(q->sha256, p->sha256);
	assert_string_equal(q->reference, url);
	assert_true(q->data != p->data);   /* each caller owns its copy */
	resolved_free(p);
	resolved_free(q);
	struct resolver_stats st;
	resolver_stats_get(e->r, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.fetches, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 6);
	free(url);
}

static void test_no_cache_fetches_every_time(void **state)
{
	struct env *e = *state;
	fixture_httpd_add_bytes(e->httpd, "/dyn.wasm", "V1", 2);
	char *url = fixture_httpd_url(e->httpd, "/dyn.wasm");
	struct resolved *p;
	struct err err;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(e, url, NULL, 0, &p, &err), ERR_OK);
		assert_false(p->from_cache);
		resolved_free(p);
	}
	assert_int_equal(fixture_httpd_hits(e->httpd, "/dyn.wasm"), 3);
	/* Uncached calls see new content; they do not fill the cache either. */
	fixture_httpd_add_bytes(e->httpd, "/dyn.wasm", "V2", 2);
	assert_int_equal(get(e, url, NULL, 0, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "V2", 2);
	resolved_free(p);
	struct resolver_stats st;
	resolver_stats_get(e->r, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.fetches, 4);
	/* A cached key keeps its bytes even when the origin changes. */
	assert_int_equal(get(e, url, NULL, 1, &p, &err), ERR_OK);
	resolved_free(p);
	fixture_httpd_add_bytes(e->httpd, "/dyn.wasm", "V3", 2);
	assert_int_equal(get(e, url, NULL, 1, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "V2", 2);
	resolved_free(p);
	free(url);
}

static void test_cache_files_and_errors(void **state)
{
	struct env *e = *state;
	write_in(e->root, "f.wasm", "F1");
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, "f.wasm", NULL, 1, &p, &err), ERR_OK);
	resolved_free(p);
	write_in(e->root, "f.wasm", "F2");
	assert_int_equal(get(e, "f.wasm", NULL, 1, &p, &err), ERR_OK);
	assert_true(p->from_cache);
	assert_memory_equal(p->data, "F1", 2);
	resolved_free(p);
	/* Failures are not cached: a package that appears later is found. */
	assert_int_equal(get(e, "later.wasm", NULL, 1, &p, &err), ERR_NOT_FOUND);
	write_in(e->root, "later.wasm", "L");
	assert_int_equal(get(e, "later.wasm", NULL, 1, &p, &err), ERR_OK);
	assert_false(p->from_cache);
	resolved_free(p);
}

static void test_cache_keyed_by_effective_reference(void **state)
{
	struct env *e = *state;
	mkdir_in(e->root, "one");
	mkdir_in(e->root, "two");
	write_in(e->root, "one/pkg.wasm", "ONE");
	write_in(e->root, "two/pkg.wasm", "TWO");
	char *b1 = path_in(e->root, "one/m.json");
	char *b2 = path_in(e->root, "two/m.json");
	struct resolved *p;
	struct err err;
	assert_int_equal(get(e, "pkg.wasm", b1, 1, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "ONE", 3);
	resolved_free(p);
	assert_int_equal(get(e, "pkg.wasm", b2, 1, &p, &err), ERR_OK);
	assert_memory_equal(p->data, "TWO", 3);
	assert_false(p->from_cache);
	resolved_free(p);
	free(b1);
	free(b2);
}

struct seen { int n; char refs[8][512]; size_t sizes[8]; uint64_t hits[8]; };

static void collect(void *user, const struct resolver_cache_entry *ce)
{
	struct seen *s = user;
	if (s->n < 8) {
		snprintf(s->refs[s->n], sizeof(s->refs[0]), "%s", ce->reference);
		s->sizes[s->n] = ce->size;
		s->hits[s->n] = ce->hits;
		assert_int_equal(strlen(ce->sha256), 64);
		assert_true(ce->last_used_ms > 0);
	}
	s->n++;
}

static void test_cache_lru_eviction(void **state)
{
	struct env *e = *state;
	resolver_free(e->r);
	e->r = new_resolver(e, 0, 3000);
	static char big[1001];
	memset(big, 'k', 1000);
	const char *names[] = { "/a", "/b", "/c", "/d", "/huge" };
	char *urls[5];
	for (int i = 0; i < 5; i++) {
		fixture_httpd_add_bytes(e->httpd, names[i], big, i == 4 ? 0 : 1000);
		urls[i] = fixture_httpd_url(e->httpd, names[i]);
	}
	fixture_httpd_add_huge(e->httpd, "/huge", 3001, 1);
	struct resolved *p;
	struct err err;
	for (int i = 0; i < 3; i++) {   /* a, b, c: exactly at the bound */
		assert_int_equal(get(e, urls[i], NULL, 1, &p, &err), ERR_OK);
		resolved_free(p);
	}
	assert_int_equal(get(e, urls[0], NULL, 1, &p, &err), ERR_OK);   /* a is now recent */
	assert_true(p->from_cache);
	resolved_free(p);
	assert_int_equal(get(e, urls[3], NULL, 1, &p, &err), ERR_OK);   /* d evicts b */
	resolved_free(p);
	struct resolver_stats st;
	resolver_stats_get(e->r, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.bytes, 3000);
	assert_int_equal(st.entries, 3);
	struct seen s = { 0 };
	resolver_cache_foreach(e->r, collect, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.refs[0], urls[3]);   /* most recent first */
	assert_string_equal(s.refs[1], urls[0]);
	assert_string_equal(s.refs[2], urls[2]);
	assert_int_equal(s.hits[1], 1);
	assert_int_equal(s.sizes[0], 1000);
	/* b is fetched again, a is still served from the cache. */
	assert_int_equal(get(e, urls[1], NULL, 1, &p, &err), ERR_OK);
	assert_false(p->from_cache);
	resolved_free(p);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/b"), 2);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/a"), 1);
	/* A package over the whole bound is returned but never cached. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(get(e, urls[4], NULL, 1, &p, &err), ERR_OK);
		assert_int_equal(p->len, 3001);
		assert_false(p->from_cache);
		resolved_free(p);
	}
	assert_int_equal(fixture_httpd_hits(e->httpd, "/huge"), 2);
	resolver_stats_get(e->r, &st);
	assert_true(st.bytes <= 3000);
	for (int i = 0; i < 5; i++)
		free(urls[i]);
}

struct racer {
	struct env *e;
	const char *url;
	pthread_barrier_t *bar;
	enum err_code rc;
	struct resolved *p;
};

static void *race(void *arg)
{
	struct racer *x = arg;
	struct err err;
	pthread_barrier_wait(x->bar);
	x->rc = resolver_fetch(x->e->r, x->url, NULL, 1, &x->p, &err);
	return NULL;
}

static void run_racers(struct env *e, const char *url, struct racer *rs, int n)
{
	pthread_t th[8];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		rs[i] = (struct racer){ .e = e, .url = url, .bar = &bar };
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
}

static void test_concurrent_misses_fetch_once(void **state)
{
	struct env *e = *state;
	/* The slow answer keeps the first load in flight while the others arrive. */
	fixture_httpd_add_slow(e->httpd, "/shared.wasm", 300);
	char *url = fixture_httpd_url(e->httpd, "/shared.wasm");
	struct racer rs[8];
	run_racers(e, url, rs, 8);
	int fresh = 0;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(rs[i].rc, ERR_OK);
		assert_int_equal(rs[i].p->len, 4);
		assert_memory_equal(rs[i].p->data, "slow", 4);
		fresh += !rs[i].p->from_cache;
		resolved_free(rs[i].p);
	}
	assert_int_equal(fresh, 1);
	assert_int_equal(fixture_httpd_hits(e->httpd, "/shared.wasm"), 1);
	struct resolver_stats st;
	resolver_stats_get(e->r, &st);
	assert_int_equal(st.fetches, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 7);
	free(url);
}

static void test_concurrent_misses_share_errors(void **state)
{
	struct env *e = *state;
	char *url = fixture_httpd_url(e->httpd, "/none.wasm");
	struct racer rs[8];
	run_racers(e, url, rs, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(rs[i].rc, ERR_FETCH_STATUS);
		assert_null(rs[i].p);
	}
	struct resolver_stats st;
	resolver_stats_get(e->r, &st);
	assert_int_equal(st.entries, 0);
	/* Each load that failed was one request; nobody loaded twice. */
	assert_int_equal(fixture_httpd_hits(e->httpd, "/none.wasm"), st.fetches);
	assert_true(st.fetches >= 1 && st.fetches <= 8);
	free(url);
}

/* --- resolver_join -------------------------------------------------------------- */

static void check_join(const char *base, const char *ref, const char *want)
{
	char *got = resolver_join(base, ref);
	if (!want) {
		assert_null(got);
		return;
	}
	if (!got || strcmp(got, want) != 0)
		fail_msg("join('%s', '%s') = '%s', want '%s'", base ? base : "(null)", ref,
			 got ? got : "(null)", want);
	free(got);
}

static void test_join(void **state)
{
	(void)state;
	/* No base, or ref with a scheme: unchanged. */
	check_join(NULL, "a.wasm", "a.wasm");
	check_join("", "a.wasm", "a.wasm");
	check_join("/m/manifest.json", "https://x/y", "https://x/y");
	check_join("http://h/m.json", "store://s/l", "store://s/l");
	check_join("http://h/m.json", "file:///abs", "file:///abs");
	check_join("/m/x.json", NULL, NULL);
	/* Files. */
	check_join("/pkgs/actors/m.json", "child.wasm", "/pkgs/actors/child.wasm");
	check_join("/pkgs/actors/m.json", "sub/c.wasm", "/pkgs/actors/sub/c.wasm");
	check_join("/pkgs/actors/m.json", "/abs/c.wasm", "/abs/c.wasm");
	check_join("file:///pkgs/m.json", "c.wasm", "/pkgs/c.wasm");
	check_join("m.json", "c.wasm", "c.wasm");
	check_join("dir/m.json", "c.wasm", "dir/c.wasm");
	check_join("/m.json", "c.wasm", "/c.wasm");
	/* URLs (RFC 3986 section 5.4 style). */
	check_join("http://a/b/c/d;p?q", "g", "http://a/b/c/g");
	check_join("http://a/b/c/d;p?q", "./g", "http://a/b/c/g");
	check_join("http://a/b/c/d;p?q", "g/", "http://a/b/c/g/");
	check_join("http://a/b/c/d;p?q", "/g", "http://a/g");
	check_join("http://a/b/c/d;p?q", "//g", "http://g");
	check_join("http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y");
	check_join("http://a/b/c/d;p?q", "g#s", "http://a/b/c/g#s");
	check_join("http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y");
	check_join("http://a/b/c/d;p?q", ".", "http://a/b/c/");
	check_join("http://a/b/c/d;p?q", "./", "http://a/b/c/");
	check_join("http://a/b/c/d;p?q", "..", "http://a/b/");
	check_join("http://a/b/c/d;p?q", "../", "http://a/b/");
	check_join("http://a/b/c/d;p?q", "../g", "http://a/b/g");
	check_join("http://a/b/c/d;p?q", "../..", "http://a/");
	check_join("http://a/b/c/d;p?q", "../../g", "http://a/g");
	check_join("http://a/b/c/d;p?q", "../../../g", "http://a/g");
	check_join("http://a/b/c/d;p?q", "/./g", "http://a/g");
	check_join("http://a/b/c/d;p?q", "g.", "http://a/b/c/g.");
	check_join("http://a/b/c/d;p?q", "..g", "http://a/b/c/..g");
	check_join("http://a/b/c/d;p?q", "./g/.", "http://a/b/c/g/");
	check_join("http://a/b/c/d;p?q", "g/./h", "http://a/b/c/g/h");
	check_join("http://a/b/c/d;p?q", "g/../h", "http://a/b/c/h");
	check_join("https://h:8080", "pkg.wasm", "https://h:8080/pkg.wasm");
	check_join("HTTPS://h/x/m.json", "p.wasm", "HTTPS://h/x/p.wasm");
	/* Store. */
	check_join("store://pkgs/manifest", "child", "store://pkgs/child");
	check_join("store://pkgs/hash/abc", "./child", "store://pkgs/child");
	check_join("store://pkgs/m", "hash/00", "store://pkgs/hash/00");
	check_join("store://pkgs/m", "/abs/file.wasm", "/abs/file.wasm");
	check_join("store://pkgs", "x", "store://pkgs/x");
}

/* --- THEATER_HOME ------------------------------------------------------------------ */

static void test_home_resolve(void **state)
{
	(void)state;
	char *saved_th = getenv("THEATER_HOME") ? strdup(getenv("THEATER_HOME")) : NULL;
	char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("THEATER_HOME", "/srv/theater/", 1);
	char *h = home_resolve();
	assert_string_equal(h, "/srv/theater");
	free(h);
	setenv("THEATER_HOME", "", 1);
	setenv("HOME", "/home/alice", 1);
	h = home_resolve();
	assert_string_equal(h, "/home/alice/.theater");
	free(h);
	unsetenv("THEATER_HOME");
	setenv("HOME", "/", 1);
	h = home_resolve();
	assert_string_equal(h, "/.theater");
	free(h);
	unsetenv("HOME");
	h = home_resolve();   /* from the passwd entry */
	assert_non_null(h);
	assert_true(h[0] == '/');
	assert_non_null(strstr(h, "/.theater"));
	free(h);
	if (saved_th)
		setenv("THEATER_HOME", saved_th, 1);
	if (saved_home)
		setenv("HOME", saved_home, 1);
	free(saved_th);
	free(saved_home);
}

static void test_home_prepare(void **state)
{
	struct env *e = *state;
	char *home = tu_fmt("%s/deep/er/home", e->tmp);
	struct err err;
	assert_int_equal(home_prepare(home, &err), ERR_OK);
	assert_int_equal(home_prepare(home, &err), ERR_OK);   /* idempotent */
	struct stat st;
	assert_int_equal(stat(home, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	for (const char *const *s = home_subdirs; *s; s++) {
		char *sub = home_path(home, *s);
		assert_int_equal(stat(sub, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(sub);
	}
	/* A file in the way, and a relative path. */
	char *blocked = tu_fmt("%s/blocked", e->tmp);
	assert_int_equal(tu_write_file(blocked, "x", 1), 0);
	assert_int_equal(home_prepare(blocked, &err), ERR_IO);
	assert_non_null(strstr(err.msg, "not a directory"));
	char *under_file = tu_fmt("%s/blocked/home", e->tmp);
	assert_int_equal(home_prepare(under_file, &err), ERR_IO);
	assert_int_equal(home_prepare("relative/home", &err), ERR_INVALID);
	assert_int_equal(home_prepare(NULL, &err), ERR_INVALID);
	free(blocked);
	free(under_file);
	free(home);
}

/* The home's file system, told from a sysfs tree (home.h): ext4 without a journal
 * ("<none>"), with one (a pid), not ext4 (no fs/ext4 entry), no block device (no
 * dev/block link), and no sysfs at all. */
static void test_home_fs_kind(void **state)
{
	struct env *e = *state;
	char *sys = tu_fmt("%s/sys", e->tmp);
	assert_int_equal(tu_fake_sysfs(sys, e->tmp, "vdz", "<none>\n"), 0);
	assert_int_equal(home_fs_kind(e->tmp, sys), HOME_FS_EXT4_NOJOURNAL);
	assert_int_equal(tu_fake_sysfs(sys, e->tmp, "vdz", "812\n"), 0);
	assert_int_equal(home_fs_kind(e->tmp, sys), HOME_FS_EXT4_JOURNAL);
	assert_int_equal(tu_fake_sysfs(sys, e->tmp, "vdz", NULL), 0);
	assert_int_equal(home_fs_kind(e->tmp, sys), HOME_FS_OTHER);
	assert_int_equal(tu_fake_sysfs(sys, e->tmp, "vdz", "<none>\n"), 0);
	char *other = tu_fmt("%s/elsewhere", e->tmp);       /* no link for that device */
	assert_int_equal(home_fs_kind("/proc", sys), HOME_FS_OTHER);
	assert_int_equal(home_fs_kind(other, sys), HOME_FS_OTHER);   /* no such dir */
	assert_int_equal(home_fs_kind(e->tmp, other), HOME_FS_OTHER);   /* no such sysfs */
	free(other);
	free(sys);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_under_root),
		T(test_file_second_root_and_subdirs),
		T(test_relative_to_base),
		T(test_dotdot_refused),
		T(test_absolute_outside),
		T(test_symlink_escape_not_opened),
		T(test_symlink_inside_ok),
		T(test_not_regular_or_missing),
		T(test_file_size_cap),
		T(test_config_errors),
		T(test_bad_references),
		T(test_store_refs),
		T(test_store_bad_refs),
		T(test_store_size_cap),
		T(test_http),
		T(test_http_address_policy),
		T(test_cache_static_second_fetch),
		T(test_no_cache_fetches_every_time),
		T(test_cache_files_and_errors),
		T(test_cache_keyed_by_effective_reference),
		T(test_cache_lru_eviction),
		T(test_concurrent_misses_fetch_once),
		T(test_concurrent_misses_share_errors),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_home_resolve),
		T(test_home_prepare),
		T(test_home_fs_kind),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
