/* engine.c - package check and compiled-module cache; see engine.h.
 *
 * The cache is a small LRU list keyed by SHA-256 hex. It is bounded by entry
 * count; modules are reference-counted by the engine, so evicting one that an
 * actor still uses only drops the cache's reference. */
#include "supervisor/engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "src/wasm/wasm.h"

struct entry {
	char sha[65];
	struct wasm_module *module;
	struct entry *prev, *next;   /* most recently used first */
};

struct engine {
	pthread_mutex_t lock;
	struct entry *head, *tail;
	size_t n, max;
};

enum err_code engine_new(size_t module_cache_entries, struct engine **out, struct err *err)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e)
		return err_set(err, ERR_NOMEM, "cannot allocate engine");
	pthread_mutex_init(&e->lock, NULL);
	e->max = module_cache_entries ? module_cache_entries : 256;
	*out = e;
	return ERR_OK;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	struct entry *x = e->head;
	while (x) {
		struct entry *next = x->next;
		wasm_module_free(x->module);
		free(x);
		x = next;
	}
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static void unlink_entry(struct engine *e, struct entry *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		e->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		e->tail = x->prev;
	x->prev = x->next = NULL;
}

static void push_front(struct engine *e, struct entry *x)
{
	x->next = e->head;
	if (e->head)
		e->head->prev = x;
	e->head = x;
	if (!e->tail)
		e->tail = x;
}

/* The cached module (marked used) or NULL. */
static struct wasm_module *lookup(struct engine *e, const char *sha)
{
	for (struct entry *x = e->head; x; x = x->next) {
		if (strcmp(x->sha, sha) == 0) {
			unlink_entry(e, x);
			push_front(e, x);
			return x->module;
		}
	}
	return NULL;
}

/* Caches m (taking the caller's reference); 0 when it could not. */
static int insert(struct engine *e, const char *sha, struct wasm_module *m)
{
	struct entry *x = calloc(1, sizeof(*x));
	if (!x)
		return 0;
	memcpy(x->sha, sha, 65);
	x->module = m;
	push_front(e, x);
	if (++e->n > e->max) {
		struct entry *old = e->tail;
		unlink_entry(e, old);
		wasm_module_free(old->module);
		free(old);
		e->n--;
	}
	return 1;
}

enum err_code engine_load(struct engine *e, const uint8_t *data, size_t len,
			  const char sha256_hex[65], struct wasm_module **out, struct err *err)
{
	static const uint8_t magic[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
	if (len < 8 || memcmp(data, magic, 4) != 0)
		return err_set(err, ERR_NOT_WASM, "package is not a webassembly binary "
			       "(no '\\0asm' magic)");
	if (memcmp(data, magic, 8) != 0)
		return err_set(err, ERR_NOT_WASM, "package is not a webassembly 1.0 binary module "
			       "(unsupported version or a component)");
	pthread_mutex_lock(&e->lock);
	struct wasm_module *hit = lookup(e, sha256_hex);
	if (hit)
		*out = wasm_module_ref(hit);
	pthread_mutex_unlock(&e->lock);
	if (hit)
		return ERR_OK;
	struct wasm_module *m = NULL;
	enum err_code rc = wasm_module_new(data, len, &m, err);
	if (rc) {
		err_prefix(err, "invalid webassembly module");
		return rc;
	}
	pthread_mutex_lock(&e->lock);
	struct wasm_module *other = lookup(e, sha256_hex);
	if (other) {                 /* another spawn compiled it meanwhile */
		wasm_module_free(m);
		m = other;
	} else if (!insert(e, sha256_hex, m)) {
		pthread_mutex_unlock(&e->lock);   /* not cached: the caller gets our reference */
		*out = m;
		return ERR_OK;
	}
	*out = wasm_module_ref(m);
	pthread_mutex_unlock(&e->lock);
	return ERR_OK;
}


struct wasm_module *engine_cached(struct engine *e, const char sha256_hex[65])
{
	pthread_mutex_lock(&e->lock);
	struct wasm_module *hit = lookup(e, sha256_hex);
	struct wasm_module *out = hit ? wasm_module_ref(hit) : NULL;
	pthread_mutex_unlock(&e->lock);
	return out;
}
