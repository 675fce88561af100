/* resolve.h - package references and the static_package cache.
 *
 * A reference names the bytes of a package (or of a manifest):
 *   store://<id>/hash/<sha256>   an entry of the content store
 *   store://<id>/<label>         the entry a store label points at
 *   http://... , https://...     fetched with src/fetch (bounded)
 *   file://<path> or <path>      a file under one of the package roots
 * Any other "<scheme>://" is refused (ERR_BAD_REFERENCE).
 *
 * File references are sandboxed: the path, after resolving symlinks, must lie
 * under a package root; ".." components are refused outright; and the file is
 * opened by walking from the root's directory fd with O_NOFOLLOW, so no file
 * outside the roots is ever opened, not even briefly (ERR_FORBIDDEN_PATH
 * "reference '...' is outside the package roots").
 *
 * The cache (used when the manifest says static_package = true) is keyed by
 * the effective reference (after joining onto `base` and, for files, making
 * the path absolute), bounded by the total bytes of the cached packages (LRU
 * eviction), and concurrent misses on one key load it once: the other callers
 * wait for that load and share its result (or its error). Failures are never
 * cached.
 *
 * Ownership: the resolver copies its configuration (roots); the store is
 * borrowed and must outlive the resolver. resolver_fetch hands the caller a
 * struct resolved it owns (resolved_free).
 * Threads: every function may be called from any thread at once; one mutex
 * guards the cache and in-flight table and is never held during a load or a
 * copy of package bytes.
 */
#ifndef THEATER_RESOLVE_H
#define THEATER_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "src/fetch.h"
#include "src/util/err.h"

struct store;

#define RESOLVE_MAX_REFERENCE 4096
#define RESOLVE_DEFAULT_MAX_PACKAGE_BYTES ((size_t)64 << 20)
#define RESOLVE_DEFAULT_CACHE_MAX_BYTES ((size_t)256 << 20)

struct resolver;

struct resolver_config {
	const char *const *package_roots;   /* absolute, existing dirs; copied */
	size_t nroots;
	struct store *store;                /* borrowed, may be NULL (store:// then fails) */
	struct fetch_limits fetch;          /* for http(s); max_bytes is capped by max_package_bytes */
	size_t max_package_bytes;           /* for every kind; 0: RESOLVE_DEFAULT_MAX_PACKAGE_BYTES */
	size_t cache_max_bytes;             /* total bytes cached; 0: RESOLVE_DEFAULT_CACHE_MAX_BYTES */
	/* The address policy of every http(s) fetch (netpolicy.h), checked after DNS on
	 * every connection, redirects included: public addresses only, unless
	 * allow_private (every class but multicast) or the address and port match an
	 * entry of fetch_allow, a ','-separated list of "ADDR", "ADDR:PORT" or
	 * "[V6]:PORT" (numeric, as connected; copied). */
	int allow_private;
	const char *fetch_allow;
};

/* Errors: ERR_INVALID when a root is not an absolute path to an existing
 * directory, ERR_NOMEM. */
enum err_code resolver_new(const struct resolver_config *cfg, struct resolver **out,
			   struct err *err);
/* Frees the cache too. No call may be running. Accepts NULL. */
void resolver_free(struct resolver *r);

struct resolved {             /* resolved_free frees it */
	uint8_t *data;            /* malloc'd, NUL after len bytes, never NULL */
	size_t len;
	char sha256[65];          /* lowercase hex of data */
	char *reference;          /* the reference actually used (canonical absolute path for files) */
	int from_cache;           /* served from the cache or another caller's load */
};
void resolved_free(struct resolved *p);   /* accepts NULL */

/* Resolves ref (joined onto base when base is non-NULL, see resolver_join);
 * a relative file path without base resolves against the FIRST package root.
 * use_cache: go through the static_package cache.
 * Errors: ERR_BAD_REFERENCE (empty, too long, unknown scheme, malformed store
 * reference), ERR_BAD_ID (store id, label or hash malformed), ERR_FORBIDDEN_PATH
 * (outside the roots, ".."), ERR_NOT_FOUND, ERR_INVALID (not a regular file),
 * ERR_TOO_LARGE (over max_package_bytes), ERR_UNSUPPORTED (store:// without a
 * store), ERR_CORRUPT, ERR_IO, ERR_NOMEM, and fetch_url's errors. */
enum err_code resolver_fetch(struct resolver *r, const char *ref, const char *base, int use_cache,
			     struct resolved **out, struct err *err);

/* Joins ref onto base (the reference of the manifest that names ref):
 *  - ref with a scheme ("http://", "store://", "file://", ...) or base NULL/
 *    empty: ref unchanged;
 *  - http(s) base: RFC 3986 resolution (merge with the base's directory,
 *    "//host" and "/path" forms, dot segments removed; query/fragment of the
 *    base dropped);
 *  - store base "store://<id>/...": "store://<id>/<ref>" (leading "./" dropped);
 *  - file base: an absolute ref ("/x") unchanged, else the base's directory
 *    followed by ref ("file://" of the base dropped).
 * Returns a malloc'd string, NULL on bad arguments or out of memory. */
char *resolver_join(const char *base, const char *ref);

struct resolver_cache_entry {
	const char *reference;    /* the cache key */
	char sha256[65];
	size_t size;
	uint64_t hits;
	int64_t last_used_ms;     /* unix time in milliseconds */
};
/* Calls cb for each cached package, most recently used first, under the
 * cache lock (cb must not call back into the resolver). */
void resolver_cache_foreach(struct resolver *r,
			    void (*cb)(void *user, const struct resolver_cache_entry *e),
			    void *user);

struct resolver_stats {
	uint64_t hits;       /* calls served from the cache or another caller's load */
	uint64_t misses;     /* cached calls that had to load */
	uint64_t fetches;    /* loads of any kind (misses + uncached calls) */
	uint64_t evictions;
	size_t bytes, entries;
};
void resolver_stats_get(struct resolver *r, struct resolver_stats *out);

#endif
