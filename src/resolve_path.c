/* resolve_path.c - reference kinds, resolver_join and the file sandbox.
 *
 * The sandbox check runs in two steps, and the second is what makes it safe:
 * 1. a lexical pre-check (no "..", the path starts with a root) and then
 *    realpath() of the parent and, for a symlink, of the file: realpath only
 *    lstat()s and readlink()s, it never opens, so a FIFO or device outside the
 *    roots is not touched;
 * 2. the canonical path is opened by walking from the root's directory fd
 *    with openat(O_NOFOLLOW) component by component. A canonical path has no
 *    symlinks, so a symlink met on the walk means the tree changed under us
 *    and the reference is refused; nothing outside the root can be reached.
 * The final entry is checked with fstatat before it is opened (regular file,
 * size) and opened O_NONBLOCK so a raced-in FIFO cannot block us.
 */
#include "src/resolve.h"
#include "src/resolve_int.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/buf.h"

/* --- kinds and joining -------------------------------------------------- */

size_t resolve_scheme_len(const char *ref)
{
	if (!ref || !isalpha((unsigned char)ref[0]))
		return 0;
	size_t i = 1;
	while (i < 32 && (isalnum((unsigned char)ref[i]) || ref[i] == '+' || ref[i] == '-' ||
			  ref[i] == '.'))
		i++;
	return strncmp(ref + i, "://", 3) == 0 ? i : 0;
}

enum ref_kind resolve_kind(const char *ref)
{
	size_t n = resolve_scheme_len(ref);
	if (n == 0)
		return REF_FILE;
	if ((n == 4 && strncasecmp(ref, "http", 4) == 0) || (n == 5 && strncasecmp(ref, "https", 5) == 0))
		return REF_HTTP;
	if (n == 5 && strncasecmp(ref, "store", 5) == 0)
		return REF_STORE;
	if (n == 4 && strncasecmp(ref, "file", 4) == 0)
		return REF_FILE;
	return REF_BAD_SCHEME;
}

/* Drops the last segment of out and the '/' before it. */
static void pop_segment(struct buf *out)
{
	while (out->len > 0 && out->data[out->len - 1] != '/')
		out->len--;
	if (out->len > 0)
		out->len--;
	if (out->data)
		out->data[out->len] = '\0';
}

/* RFC 3986 section 5.2.4; `in` is a mutable copy. */
static enum err_code remove_dot_segments(char *in, struct buf *out)
{
	enum err_code rc = ERR_OK;
	while (*in && !rc) {
		if (strncmp(in, "../", 3) == 0) {
			in += 3;
		} else if (strncmp(in, "./", 2) == 0 || strncmp(in, "/./", 3) == 0) {
			in += 2;
		} else if (strcmp(in, "/.") == 0) {
			in[1] = '\0';
		} else if (strncmp(in, "/../", 4) == 0) {
			in += 3;
			pop_segment(out);
		} else if (strcmp(in, "/..") == 0) {
			in[1] = '\0';
			pop_segment(out);
		} else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
			in += strlen(in);
		} else {
			size_t n = (*in == '/') + strcspn(in + (*in == '/'), "/");
			rc = buf_append(out, in, n);
			in += n;
		}
	}
	return rc;
}

static char *join_url(const char *base, const char *ref)
{
	size_t sl = resolve_scheme_len(base);
	const char *auth = base + sl + 3;
	const char *bpath = auth + strcspn(auth, "/?#");
	size_t bplen = strcspn(bpath, "?#");
	size_t rplen = strcspn(ref, "?#");
	struct buf merged, path, out;
	buf_init(&merged, 0);
	buf_init(&path, 0);
	buf_init(&out, 0);
	enum err_code rc;
	char *res = NULL;
	if (ref[0] == '/' && ref[1] == '/') {
		rc = buf_append(&out, base, sl + 1);
		rc = rc ? rc : buf_puts(&out, ref);
		goto done;
	}
	if (ref[0] == '/') {
		rc = buf_append(&merged, ref, rplen);
	} else if (rplen == 0) {
		rc = buf_append(&merged, bpath, bplen);   /* "?q" or "#f": same path */
	} else {
		const char *slash = NULL;
		for (const char *p = bpath; p < bpath + bplen; p++)
			if (*p == '/')
				slash = p;
		rc = slash ? buf_append(&merged, bpath, (size_t)(slash - bpath) + 1)
			   : buf_puts(&merged, "/");
		rc = rc ? rc : buf_append(&merged, ref, rplen);
	}
	rc = rc ? rc : buf_reserve(&merged, 0);
	rc = rc ? rc : remove_dot_segments(merged.data, &path);
	rc = rc ? rc : buf_append(&out, base, (size_t)(bpath - base));
	rc = rc ? rc : (path.len ? buf_append(&out, path.data, path.len) : buf_puts(&out, "/"));
	rc = rc ? rc : buf_puts(&out, ref + rplen);
done:
	if (!rc)
		res = buf_steal(&out, NULL);
	buf_release(&merged);
	buf_release(&path);
	buf_release(&out);
	return res;
}

static char *concat3(const char *a, size_t alen, const char *b, const char *c)
{
	struct buf out;
	buf_init(&out, 0);
	char *res = NULL;
	if (!buf_append(&out, a, alen) && !buf_puts(&out, b) && !buf_puts(&out, c))
		res = buf_steal(&out, NULL);
	buf_release(&out);
	return res;
}

static char *join_store(const char *base, const char *ref)
{
	if (ref[0] == '/')
		return strdup(ref);
	while (strncmp(ref, "./", 2) == 0)
		ref += 2;
	const char *id = base + strlen("store://");
	size_t idlen = strcspn(id, "/");
	return concat3(base, (size_t)(id - base) + idlen, "/", ref);
}

static char *join_file(const char *base, const char *ref)
{
	if (ref[0] == '/')
		return strdup(ref);
	if (strncasecmp(base, "file://", 7) == 0)
		base += 7;
	const char *slash = strrchr(base, '/');
	if (!slash)
		return strdup(ref);
	return concat3(base, (size_t)(slash - base) + 1, "", ref);
}

char *resolver_join(const char *base, const char *ref)
{
	if (!ref)
		return NULL;
	if (!base || !base[0] || !ref[0] || resolve_scheme_len(ref))
		return strdup(ref);
	switch (resolve_kind(base)) {
	case REF_HTTP:
		return join_url(base, ref);
	case REF_STORE:
		return join_store(base, ref);
	case REF_FILE:
		return join_file(base, ref);
	default:
		return strdup(ref);
	}
}

/* --- roots ---------------------------------------------------------------- */

static void strip_trailing_slashes(char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
}

void resolve_roots_release(struct resolve_roots *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++) {
		free(rt->given ? rt->given[i] : NULL);
		free(rt->real ? rt->real[i] : NULL);
	}
	free(rt->given);
	free(rt->real);
	rt->given = rt->real = NULL;
	rt->n = 0;
}

static enum err_code root_add(struct resolve_roots *rt, const char *root, struct err *err)
{
	struct stat st;
	if (!root || root[0] != '/')
		return err_set(err, ERR_INVALID, "package root '%s' is not an absolute path",
			       root ? root : "");
	char *given = strdup(root);
	char *real = realpath(root, NULL);
	if (!given || !real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
		int e = errno;
		free(given);
		free(real);
		if (!given)
			return err_set(err, ERR_NOMEM, "out of memory");
		return err_set(err, ERR_INVALID, "package root '%s' is not an existing directory%s%s",
			       root, real ? "" : ": ", real ? "" : strerror(e));
	}
	strip_trailing_slashes(given);
	rt->given[rt->n] = given;
	rt->real[rt->n] = real;
	rt->n++;
	return ERR_OK;
}

enum err_code resolve_roots_init(struct resolve_roots *rt, const char *const *roots, size_t n,
				 struct err *err)
{
	memset(rt, 0, sizeof(*rt));
	if (n == 0)
		return ERR_OK;
	rt->given = calloc(n, sizeof(char *));
	rt->real = calloc(n, sizeof(char *));
	if (!rt->given || !rt->real) {
		resolve_roots_release(rt);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		enum err_code rc = root_add(rt, roots[i], err);
		if (rc) {
			resolve_roots_release(rt);
			return rc;
		}
	}
	return ERR_OK;
}

/* path is root itself or below it. */
static int under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (strcmp(root, "/") == 0)
		return path[0] == '/';
	return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Index of the longest real root holding path, or -1. */
static long real_root_of(const struct resolve_roots *rt, const char *path)
{
	long best = -1;
	for (size_t i = 0; i < rt->n; i++)
		if (under(path, rt->real[i]) &&
		    (best < 0 || strlen(rt->real[i]) > strlen(rt->real[best])))
			best = (long)i;
	return best;
}

static int lexically_inside(const struct resolve_roots *rt, const char *path)
{
	for (size_t i = 0; i < rt->n; i++)
		if (under(path, rt->given[i]) || under(path, rt->real[i]))
			return 1;
	return 0;
}

static int has_dotdot(const char *path)
{
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 1;
		p += n;
		p += *p == '/';
	}
	return 0;
}

enum err_code resolve_file_absolute(const struct resolve_roots *rt, const char *ref,
				    char **path_out, struct err *err)
{
	const char *p = ref;
	*path_out = NULL;
	if (strncasecmp(p, "file://", 7) == 0) {
		p += 7;
		if (strncasecmp(p, "localhost/", 10) == 0)
			p += 9;
	}
	if (!p[0])
		return err_set(err, ERR_BAD_REFERENCE, "reference '%s' names no file", ref);
	if (p[0] != '/' && rt->n == 0)
		return err_set(err, ERR_FORBIDDEN_PATH, "reference '%s' is outside the package roots",
			       ref);
	*path_out = p[0] == '/' ? strdup(p) : concat3(rt->given[0], strlen(rt->given[0]), "/", p);
	if (!*path_out)
		return err_set(err, ERR_NOMEM, "out of memory");
	return ERR_OK;
}

/* --- the sandbox ---------------------------------------------------------- */

static enum err_code forbidden(const char *ref, struct err *err)
{
	return err_set(err, ERR_FORBIDDEN_PATH, "reference '%s' is outside the package roots", ref);
}

static enum err_code path_errno(int e, const char *ref, struct err *err)
{
	if (e == ENOENT || e == ENOTDIR)
		return err_set(err, ERR_NOT_FOUND, "package '%s' not found", ref);
	if (e == ELOOP)
		return forbidden(ref, err);
	if (e == ENAMETOOLONG)     /* a name the caller chose: their error, not our disk's */
		return err_set(err, ERR_BAD_REFERENCE, "reference '%.200s' has a path component "
			       "or path too long for the file system", ref);
	return err_errno(err, ERR_IO, e, "cannot open package '%s'", ref);
}

/* realpath of the parent, then of the file when it is a symlink: the
 * canonical path, checked against the real roots. No open() happens here. */
static enum err_code canonical(const struct resolve_roots *rt, const char *path, const char *ref,
			       char **canon_out, struct err *err)
{
	enum err_code rc = ERR_OK;
	char *parent = NULL, *rparent = NULL, *cand = NULL;
	const char *slash = strrchr(path, '/');
	const char *name = slash + 1;
	if (!name[0] || strcmp(name, ".") == 0)
		return err_set(err, ERR_INVALID, "package '%s' is not a regular file", ref);
	parent = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	if (!parent)
		return err_set(err, ERR_NOMEM, "out of memory");
	if (!(rparent = realpath(parent, NULL))) {
		rc = path_errno(errno, ref, err);
		goto done;
	}
	if (real_root_of(rt, rparent) < 0) {
		rc = forbidden(ref, err);
		goto done;
	}
	cand = concat3(rparent, strcmp(rparent, "/") == 0 ? 0 : strlen(rparent), "/", name);
	struct stat st;
	if (!cand) {
		rc = err_set(err, ERR_NOMEM, "out of memory");
	} else if (lstat(cand, &st) != 0) {
		rc = path_errno(errno, ref, err);
	} else if (S_ISLNK(st.st_mode)) {
		char *target = realpath(cand, NULL);
		free(cand);
		cand = target;
		if (!cand)
			rc = path_errno(errno, ref, err);
		else if (real_root_of(rt, cand) < 0)
			rc = forbidden(ref, err);
	}
done:
	free(parent);
	free(rparent);
	if (rc) {
		free(cand);
		cand = NULL;
	}
	*canon_out = cand;
	return rc;
}

/* Opens each directory of rel (relative to dfd) with O_NOFOLLOW; on success
 * *dfd is the last directory and *name_out points into rel at the file name. */
static enum err_code walk_dirs(int *dfd, char *rel, char **name_out, const char *ref,
			       struct err *err)
{
	char *comp = rel;
	char *slash;
	while ((slash = strchr(comp, '/')) != NULL) {
		*slash = '\0';
		int nd = openat(*dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(*dfd);
		*dfd = nd;
		if (nd < 0)
			return e == ELOOP || e == ENOTDIR ? forbidden(ref, err) : path_errno(e, ref, err);
		comp = slash + 1;
	}
	*name_out = comp;
	return ERR_OK;
}

/* Checks the final entry without opening it, then opens it. */
static enum err_code open_final(int dfd, const char *name, const char *ref, size_t max_bytes,
				int *fd_out, struct err *err)
{
	struct stat st, fst;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return path_errno(errno, ref, err);
	if (S_ISLNK(st.st_mode))
		return forbidden(ref, err);   /* replaced by a symlink after the check */
	if (!S_ISREG(st.st_mode))
		return err_set(err, ERR_INVALID, "package '%s' is not a regular file", ref);
	if ((uint64_t)st.st_size > max_bytes)
		return err_set(err, ERR_TOO_LARGE, "package '%s' is larger than %zu bytes", ref,
			       max_bytes);
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return path_errno(errno, ref, err);
	if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino ||
	    fst.st_dev != st.st_dev) {
		close(fd);
		return err_set(err, ERR_INVALID, "package '%s' changed while it was opened", ref);
	}
	*fd_out = fd;
	return ERR_OK;
}

static enum err_code open_in_root(const char *root, const char *canon, const char *ref,
				  size_t max_bytes, int *fd_out, struct err *err)
{
	const char *rel = canon + (strcmp(root, "/") == 0 ? 1 : strlen(root) + 1);
	if (strlen(canon) <= strlen(root))
		return err_set(err, ERR_INVALID, "package '%s' is not a regular file", ref);
	char *copy = strdup(rel);
	if (!copy)
		return err_set(err, ERR_NOMEM, "out of memory");
	char *name = NULL;
	enum err_code rc = ERR_OK;
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		rc = err_errno(err, ERR_IO, errno, "cannot open package root '%s'", root);
	if (!rc)
		rc = walk_dirs(&dfd, copy, &name, ref, err);
	if (!rc)
		rc = open_final(dfd, name, ref, max_bytes, fd_out, err);
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return rc;
}

/* Reads to EOF, at most max_bytes (the file may have grown since fstatat). */
static enum err_code read_all(int fd, const char *ref, size_t max_bytes, uint8_t **data_out,
			      size_t *len_out, struct err *err)
{
	struct buf b;
	buf_init(&b, max_bytes);
	enum err_code rc = ERR_OK;
	for (;;) {
		size_t want = max_bytes - b.len < 65536 ? max_bytes - b.len : 65536;
		char probe;
		if (want && (rc = buf_reserve(&b, want)))
			break;
		ssize_t n = want ? read(fd, b.data + b.len, want) : read(fd, &probe, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_errno(err, ERR_IO, errno, "cannot read package '%s'", ref);
			break;
		}
		if (n == 0)
			break;
		if (!want) {
			rc = err_set(err, ERR_TOO_LARGE, "package '%s' is larger than %zu bytes", ref,
				     max_bytes);
			break;
		}
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	if (rc == ERR_NOMEM)
		err_set(err, rc, "out of memory");
	if (!rc)
		*data_out = (uint8_t *)buf_steal(&b, len_out);
	buf_release(&b);
	if (!rc && !*data_out)
		rc = err_set(err, ERR_NOMEM, "out of memory");
	return rc;
}

/* "file 'x' not found under the package roots (/a, /b)": the same words for a
 * manifest and a package (the caller says which it was loading). A relative
 * reference was looked for under the first root only (docs/references.md). */
static void not_found(const struct resolve_roots *rt, const char *ref, struct err *err)
{
	if (ref[0] != '/' && strncmp(ref, "file:///", 8) != 0 && rt->n > 1) {
		err_set(err, ERR_NOT_FOUND, "file '%s' not found under the first package root (%s; "
			"a relative reference resolves there, or beside its manifest)", ref,
			rt->given[0]);
		return;
	}
	char roots[300] = "";
	size_t n = 0;
	for (size_t i = 0; i < rt->n && n < sizeof(roots); i++)
		n += (size_t)snprintf(roots + n, sizeof(roots) - n, "%s%s", i ? ", " : "",
				      rt->given[i]);
	err_set(err, ERR_NOT_FOUND, "file '%s' not found under the package roots (%s)", ref, roots);
}

enum err_code resolve_file_load(const struct resolve_roots *rt, const char *path, const char *ref,
				size_t max_bytes, uint8_t **data_out, size_t *len_out,
				char **canon_out, struct err *err)
{
	char *canon = NULL;
	int fd = -1;
	enum err_code rc;
	*data_out = NULL;
	*len_out = 0;
	*canon_out = NULL;
	if (path[0] != '/' || has_dotdot(path) || !lexically_inside(rt, path)) {
		rc = forbidden(ref, err);
		goto fail;
	}
	if ((rc = canonical(rt, path, ref, &canon, err)))
		goto fail;
	long root = real_root_of(rt, canon);
	assert(root >= 0);   /* canonical() checked it */
	if ((rc = open_in_root(rt->real[root], canon, ref, max_bytes, &fd, err)) ||
	    (rc = read_all(fd, ref, max_bytes, data_out, len_out, err)))
		goto fail;
	close(fd);
	*canon_out = canon;
	return ERR_OK;
fail:
	if (fd >= 0)
		close(fd);
	free(canon);
	if (rc == ERR_NOT_FOUND)
		not_found(rt, ref, err);
	return rc;
}
