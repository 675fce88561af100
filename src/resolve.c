/* resolve.c - resolving references and the static_package cache; see resolve.h.
 *
 * Cache design: entries sit on one LRU list (most recent first) and hold a
 * refcounted blob, so a hit only takes a reference under the lock and copies
 * the bytes after releasing it. A miss registers an in-flight record; later
 * callers for the same key wait on the condition variable for it and take
 * the blob (or the error) it ends with, so N concurrent misses cost one load.
 * Lists are linear: the cache holds packages of megabytes under a bound of
 * hundreds of megabytes, so it has few entries.
 */
#include "src/resolve.h"
#include "src/resolve_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/netpolicy.h"
#include "src/store.h"
#include "src/util/crypto.h"

struct blob {
	atomic_size_t refs;
	size_t len;
	char sha256[65];
	char *reference;      /* the reference actually used */
	uint8_t data[];       /* len bytes and a NUL */
};

struct centry {
	char *key;
	struct blob *blob;
	uint64_t hits;
	int64_t last_used_ms;
	struct centry *prev, *next;
};

struct inflight {
	char *key;
	int done;
	int refs;             /* the loader and each waiter */
	enum err_code rc;
	struct err err;
	struct blob *blob;    /* on success */
	struct inflight *next;
};

struct resolver {
	struct resolve_roots roots;
	struct store *store;
	struct fetch_limits fetch;
	size_t max_package_bytes;
	size_t cache_max_bytes;
	int allow_private;
	char *fetch_allow;            /* ','-separated, or NULL */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct centry *head, *tail;   /* LRU, head most recent */
	struct inflight *inflight;
	struct resolver_stats stats;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- blobs ---------------------------------------------------------------- */

/* Takes ownership of reference (freed on failure too). */
static struct blob *blob_new(const uint8_t *data, size_t len, const char *sha, char *reference)
{
	struct blob *b = reference ? malloc(sizeof(*b) + len + 1) : NULL;
	if (!b) {
		free(reference);
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->len = len;
	memcpy(b->sha256, sha, sizeof(b->sha256));
	b->reference = reference;
	if (len)
		memcpy(b->data, data, len);
	b->data[len] = '\0';
	return b;
}

static struct blob *blob_ref(struct blob *b)
{
	atomic_fetch_add(&b->refs, 1);
	return b;
}

static void blob_unref(struct blob *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		free(b->reference);
		free(b);
	}
}

/* A fresh struct resolved with a copy of the blob. */
static enum err_code blob_copy_out(const struct blob *b, struct resolved **out, struct err *err)
{
	struct resolved *p = calloc(1, sizeof(*p));
	if (p && (p->data = malloc(b->len + 1)) && (p->reference = strdup(b->reference))) {
		memcpy(p->data, b->data, b->len + 1);
		p->len = b->len;
		memcpy(p->sha256, b->sha256, sizeof(p->sha256));
		p->from_cache = 1;
		*out = p;
		return ERR_OK;
	}
	resolved_free(p);
	return err_set(err, ERR_NOMEM, "out of memory");
}

void resolved_free(struct resolved *p)
{
	if (!p)
		return;
	free(p->data);
	free(p->reference);
	free(p);
}

/* --- loaders (no lock held) ------------------------------------------------ */

static enum err_code store_target(struct resolver *r, const char *ref, char **id_out,
				  char hash_out[65], struct err *err)
{
	const char *id0 = ref + strlen("store://");
	const char *slash = strchr(id0, '/');
	if (!slash || slash == id0 || !slash[1])
		return err_set(err, ERR_BAD_REFERENCE, "store reference '%s' must be "
			       "store://<id>/<label> or store://<id>/hash/<sha256>", ref);
	char *id = strndup(id0, (size_t)(slash - id0));
	if (!id)
		return err_set(err, ERR_NOMEM, "out of memory");
	*id_out = id;
	const char *rest = slash + 1;
	if (!store_id_valid(id))
		return err_set(err, ERR_BAD_ID, "invalid store id in reference '%s'", ref);
	if (strncmp(rest, "hash/", 5) == 0) {
		if (strlen(rest + 5) == 40 && strspn(rest + 5, "0123456789abcdefABCDEF") == 40)
			return err_set(err, ERR_BAD_ID, "store reference '%s' has a 40-digit "
				       "(sha-1) hash, as the reference's store uses; this server "
				       "addresses its store by sha-256 (64 hex digits): put the bytes "
				       "with POST /store/%s and use the hash it answers", ref, id);
		if (!sha256_hex_valid(rest + 5))
			return err_set(err, ERR_BAD_ID, "invalid sha256 in reference '%s' (want 64 "
				       "lowercase hex digits)", ref);
		memcpy(hash_out, rest + 5, 65);
		return r->store ? ERR_OK : err_set(err, ERR_UNSUPPORTED,
			"no content store is configured for '%s'", ref);
	}
	if (strchr(rest, '/'))
		return err_set(err, ERR_BAD_ID, "store reference '%s' has more than one path "
			       "part after the store id; the reference's resolver accepts that, "
			       "but here a label is one part ([A-Za-z0-9_.-], at most 128): use "
			       "store://%s/<label> or store://%s/hash/<sha256>", ref, id, id);
	if (!store_label_valid(rest))
		return err_set(err, ERR_BAD_ID, "invalid store label in reference '%s'", ref);
	if (!r->store)
		return err_set(err, ERR_UNSUPPORTED, "no content store is configured for '%s'", ref);
	return store_label_get(r->store, id, rest, hash_out, err);
}

static enum err_code load_store(struct resolver *r, const char *ref, uint8_t **data,
				size_t *len, struct err *err)
{
	char *id = NULL;
	char hash[65];
	enum err_code rc = store_target(r, ref, &id, hash, err);
	if (!rc)
		rc = store_get(r->store, id, hash, r->max_package_bytes, data, len, err);
	if (rc && rc != ERR_BAD_ID && rc != ERR_BAD_REFERENCE && rc != ERR_UNSUPPORTED)
		err_prefix(err, "package '%s'", ref);
	free(id);
	return rc;
}

/* The fetch's address check (fetch_addr_check_fn): see resolver_config. */
static int addr_allowed(void *user, const struct sockaddr *sa, size_t len, char *why, size_t n)
{
	const struct resolver *r = user;
	if (netpolicy_address_allowed(sa, len, r->allow_private))
		return 0;
	char addr[64];
	netpolicy_address_text(sa, len, addr, sizeof(addr));
	unsigned port = 0;
	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	for (const char *p = r->fetch_allow; p && *p;) {
		size_t k = strcspn(p, ",");
		char entry[128];
		snprintf(entry, sizeof(entry), "%.*s", (int)(k < 127 ? k : 127), p);
		if (netpolicy_host_match(entry, addr, port))
			return 0;
		p += k + (p[k] == ',');
	}
	snprintf(why, n, "address '%s' refused: %s (see --fetch-allow)", addr,
		 netpolicy_class_name(netpolicy_classify(sa, len)));
	return -1;
}

static enum err_code load_bytes(struct resolver *r, const char *key, enum ref_kind kind,
				const char *ref, uint8_t **data, size_t *len, char **used,
				struct err *err)
{
	*used = NULL;
	if (kind == REF_FILE)
		return resolve_file_load(&r->roots, key, ref, r->max_package_bytes, data, len, used,
					 err);
	enum err_code rc;
	if (kind == REF_HTTP) {
		struct fetch_limits lim = r->fetch;
		if (!lim.max_bytes || lim.max_bytes > r->max_package_bytes)
			lim.max_bytes = r->max_package_bytes;
		rc = fetch_url_checked(key, &lim, addr_allowed, r, data, len, err);
	} else {
		rc = load_store(r, key, data, len, err);
	}
	if (!rc && !(*used = strdup(key))) {
		free(*data);
		*data = NULL;
		rc = err_set(err, ERR_NOMEM, "out of memory");
	}
	return rc;
}

/* One load of any kind into a fresh struct resolved. */
static enum err_code load(struct resolver *r, const char *key, enum ref_kind kind,
			  const char *ref, struct resolved **out, struct err *err)
{
	pthread_mutex_lock(&r->lock);
	r->stats.fetches++;
	pthread_mutex_unlock(&r->lock);
	struct resolved *p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(err, ERR_NOMEM, "out of memory");
	enum err_code rc = load_bytes(r, key, kind, ref, &p->data, &p->len, &p->reference, err);
	if (rc) {
		resolved_free(p);
		return rc;
	}
	uint8_t digest[SHA256_LEN];
	sha256(p->data, p->len, digest);
	hex_encode(digest, SHA256_LEN, p->sha256);
	*out = p;
	return ERR_OK;
}

/* --- the cache (lock held unless said otherwise) --------------------------- */

static struct centry *cache_find(struct resolver *r, const char *key)
{
	for (struct centry *e = r->head; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void lru_unlink(struct resolver *r, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		r->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		r->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct resolver *r, struct centry *e)
{
	e->prev = NULL;
	e->next = r->head;
	if (r->head)
		r->head->prev = e;
	r->head = e;
	if (!r->tail)
		r->tail = e;
}

static void cache_remove(struct resolver *r, struct centry *e)
{
	lru_unlink(r, e);
	r->stats.bytes -= e->blob->len;
	r->stats.entries--;
	blob_unref(e->blob);
	free(e->key);
	free(e);
}

/* Takes the caller's reference on b; packages over the bound are not kept. */
static void cache_insert(struct resolver *r, const char *key, struct blob *b)
{
	struct centry *old = cache_find(r, key);
	if (old)
		cache_remove(r, old);
	struct centry *e = b->len <= r->cache_max_bytes ? calloc(1, sizeof(*e)) : NULL;
	if (!e || !(e->key = strdup(key))) {
		free(e);
		blob_unref(b);
		return;
	}
	while (r->tail && r->stats.bytes + b->len > r->cache_max_bytes) {
		cache_remove(r, r->tail);
		r->stats.evictions++;
	}
	e->blob = b;
	e->last_used_ms = wall_ms();
	lru_push_front(r, e);
	r->stats.bytes += b->len;
	r->stats.entries++;
}

static void inflight_release(struct inflight *f)
{
	if (--f->refs > 0)
		return;
	blob_unref(f->blob);
	free(f->key);
	free(f);
}

static void inflight_unlink(struct resolver *r, struct inflight *f)
{
	for (struct inflight **pp = &r->inflight; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			return;
		}
}

/* Called with the lock held; returns with it released. */
static enum err_code serve_hit(struct resolver *r, struct centry *e, struct resolved **out,
			       struct err *err)
{
	struct blob *b = blob_ref(e->blob);
	e->hits++;
	e->last_used_ms = wall_ms();
	lru_unlink(r, e);
	lru_push_front(r, e);
	r->stats.hits++;
	pthread_mutex_unlock(&r->lock);
	enum err_code rc = blob_copy_out(b, out, err);
	blob_unref(b);
	return rc;
}

/* Called with the lock held; waits for another caller's load of the same
 * key and shares its outcome; returns with the lock released. */
static enum err_code wait_inflight(struct resolver *r, struct inflight *f, struct resolved **out,
				   struct err *err)
{
	f->refs++;
	while (!f->done)
		pthread_cond_wait(&r->cond, &r->lock);
	enum err_code rc = f->rc;
	struct blob *b = f->blob ? blob_ref(f->blob) : NULL;
	if (!rc)
		r->stats.hits++;
	else if (err)
		*err = f->err;
	inflight_release(f);
	pthread_mutex_unlock(&r->lock);
	if (!rc)
		rc = blob_copy_out(b, out, err);
	blob_unref(b);
	return rc;
}

/* The caller that missed: loads without the lock, then publishes. */
static enum err_code load_and_publish(struct resolver *r, struct inflight *f, enum ref_kind kind,
				      const char *ref, struct resolved **out, struct err *err)
{
	struct err lerr;
	err_clear(&lerr);
	enum err_code rc = load(r, f->key, kind, ref, out, &lerr);
	struct blob *b = NULL;
	if (!rc) {
		const struct resolved *p = *out;
		b = blob_new(p->data, p->len, p->sha256, strdup(p->reference));
	}
	pthread_mutex_lock(&r->lock);
	f->done = 1;
	f->rc = rc ? rc : b ? ERR_OK : err_set(&lerr, ERR_NOMEM, "out of memory");
	f->err = lerr;
	f->blob = b;
	if (b)
		cache_insert(r, f->key, blob_ref(b));
	inflight_unlink(r, f);
	pthread_cond_broadcast(&r->cond);
	inflight_release(f);
	pthread_mutex_unlock(&r->lock);
	if (rc && err)
		*err = lerr;
	return rc;
}

static enum err_code fetch_cached(struct resolver *r, const char *key, enum ref_kind kind,
				  const char *ref, struct resolved **out, struct err *err)
{
	pthread_mutex_lock(&r->lock);
	struct centry *e = cache_find(r, key);
	if (e)
		return serve_hit(r, e, out, err);
	for (struct inflight *f = r->inflight; f; f = f->next)
		if (strcmp(f->key, key) == 0)
			return wait_inflight(r, f, out, err);
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f || !(f->key = strdup(key))) {
		pthread_mutex_unlock(&r->lock);
		free(f);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	f->refs = 1;
	f->next = r->inflight;
	r->inflight = f;
	r->stats.misses++;
	pthread_mutex_unlock(&r->lock);
	return load_and_publish(r, f, kind, ref, out, err);
}

/* --- public --------------------------------------------------------------- */

enum err_code resolver_new(const struct resolver_config *cfg, struct resolver **out,
			   struct err *err)
{
	*out = NULL;
	struct resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return err_set(err, ERR_NOMEM, "out of memory");
	enum err_code rc = resolve_roots_init(&r->roots, cfg->package_roots, cfg->nroots, err);
	if (rc) {
		free(r);
		return rc;
	}
	r->store = cfg->store;
	r->fetch = cfg->fetch;
	r->allow_private = cfg->allow_private;
	if (cfg->fetch_allow && *cfg->fetch_allow && !(r->fetch_allow = strdup(cfg->fetch_allow))) {
		resolve_roots_release(&r->roots);
		free(r);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	r->max_package_bytes = cfg->max_package_bytes ? cfg->max_package_bytes
						      : RESOLVE_DEFAULT_MAX_PACKAGE_BYTES;
	r->cache_max_bytes = cfg->cache_max_bytes ? cfg->cache_max_bytes
						  : RESOLVE_DEFAULT_CACHE_MAX_BYTES;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	*out = r;
	return ERR_OK;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	while (r->head)
		cache_remove(r, r->head);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	resolve_roots_release(&r->roots);
	free(r->fetch_allow);
	free(r);
}

/* The cache key and kind of ref joined onto base. */
static enum err_code effective(struct resolver *r, const char *ref, const char *base,
			       char **key_out, enum ref_kind *kind_out, struct err *err)
{
	*key_out = NULL;
	if (!ref || !ref[0])
		return err_set(err, ERR_BAD_REFERENCE, "empty package reference");
	if (strlen(ref) > RESOLVE_MAX_REFERENCE || (base && strlen(base) > RESOLVE_MAX_REFERENCE))
		return err_set(err, ERR_BAD_REFERENCE, "reference longer than %d bytes",
			       RESOLVE_MAX_REFERENCE);
	char *joined = resolver_join(base, ref);
	if (!joined)
		return err_set(err, ERR_NOMEM, "out of memory");
	enum ref_kind kind = resolve_kind(joined);
	enum err_code rc = ERR_OK;
	if (kind == REF_BAD_SCHEME) {
		rc = err_set(err, ERR_BAD_REFERENCE, "reference '%s' has an unsupported scheme "
			     "(use a path, http(s):// or store://)", joined);
	} else if (kind == REF_FILE) {
		rc = resolve_file_absolute(&r->roots, joined, key_out, err);
	} else {
		*key_out = joined;
		joined = NULL;
	}
	free(joined);
	*kind_out = kind;
	return rc;
}

enum err_code resolver_fetch(struct resolver *r, const char *ref, const char *base, int use_cache,
			     struct resolved **out, struct err *err)
{
	char *key = NULL;
	enum ref_kind kind = REF_FILE;
	*out = NULL;
	enum err_code rc = effective(r, ref, base, &key, &kind, err);
	if (rc)
		return rc;
	if (use_cache)
		rc = fetch_cached(r, key, kind, ref, out, err);
	else
		rc = load(r, key, kind, ref, out, err);
	free(key);
	return rc;
}

void resolver_cache_foreach(struct resolver *r,
			    void (*cb)(void *user, const struct resolver_cache_entry *e),
			    void *user)
{
	pthread_mutex_lock(&r->lock);
	for (struct centry *c = r->head; c; c = c->next) {
		struct resolver_cache_entry e = {
			.reference = c->key, .size = c->blob->len, .hits = c->hits,
			.last_used_ms = c->last_used_ms,
		};
		memcpy(e.sha256, c->blob->sha256, sizeof(e.sha256));
		cb(user, &e);
	}
	pthread_mutex_unlock(&r->lock);
}

void resolver_stats_get(struct resolver *r, struct resolver_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}
