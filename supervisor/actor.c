/* actor.c - the actor record and the registry (a chained hash table keyed by
 * actor id, and a second chain through the same buckets keyed by parent id, so
 * a run's end, a child's spawn and a list of children cost the children, not
 * every actor); see supervisor_int.h. Records are reference-counted so that a job
 * can keep using an actor that was deleted meanwhile. */
#include "supervisor/supervisor_int.h"
#include "src/util/crypto.h"
#include "src/wasm/wasm.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int supervisor_status_live(const char *status)
{
	return strcmp(status, "starting") == 0 || strcmp(status, "running") == 0 ||
	       strcmp(status, "stopping") == 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

enum err_code run_copy(const struct db_run *src, struct db_run *dst)
{
	*dst = *src;
	dst->name = dup_or_null(src->name);
	dst->manifest_ref = dup_or_null(src->manifest_ref);
	dst->package_ref = dup_or_null(src->package_ref);
	dst->status = dup_or_null(src->status);
	dst->reason = dup_or_null(src->reason);
	dst->manifest_json = dup_or_null(src->manifest_json);
	if ((src->name && !dst->name) || (src->status && !dst->status) ||
	    (src->manifest_ref && !dst->manifest_ref) || (src->package_ref && !dst->package_ref) ||
	    (src->reason && !dst->reason) || (src->manifest_json && !dst->manifest_json)) {
		db_run_release(dst);
		return ERR_NOMEM;
	}
	return ERR_OK;
}

static size_t bucket_of(const struct supervisor *s, const char *id)
{
	/* FNV-1a */
	uint64_t h = 1469598103934665603ull;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)(h & (s->nbuckets - 1));
}

enum err_code reg_init(struct supervisor *s)
{
	s->nbuckets = 1024;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	s->kin = calloc(s->nbuckets, sizeof(*s->kin));
	if (!s->buckets || !s->kin) {
		free(s->buckets);
		free(s->kin);
		s->buckets = s->kin = NULL;
		return ERR_NOMEM;
	}
	pthread_mutex_init(&s->reg_lock, NULL);
	s->registry_up = 1;
	return ERR_OK;
}

void reg_release(struct supervisor *s)
{
	for (size_t i = 0; s->buckets && i < s->nbuckets; i++) {
		struct actor *a = s->buckets[i];
		while (a) {
			struct actor *next = a->hnext;
			a->hnext = NULL;
			actor_unref(s, a);
			a = next;
		}
	}
	free(s->buckets);
	free(s->kin);
	s->buckets = s->kin = NULL;
	s->registry_up = 0;
	pthread_mutex_destroy(&s->reg_lock);
}

/* Links a into the kin chain of its parent (registry lock held). */
static void kin_link(struct supervisor *s, struct actor *a)
{
	if (!a->run.parent_id[0])
		return;
	struct actor **head = &s->kin[bucket_of(s, a->run.parent_id)];
	a->knext = *head;
	if (*head)
		(*head)->kprev = &a->knext;
	*head = a;
	a->kprev = head;
}

static void kin_unlink(struct actor *a)
{
	if (!a->kprev)
		return;
	*a->kprev = a->knext;
	if (a->knext)
		a->knext->kprev = a->kprev;
	a->knext = NULL;
	a->kprev = NULL;
}

static void grow(struct supervisor *s)
{
	size_t n = s->nbuckets * 2;
	struct actor **b = calloc(n, sizeof(*b));
	struct actor **kin = calloc(n, sizeof(*kin));
	if (!b || !kin) {
		free(b);
		free(kin);
		return;    /* keep the old tables: slower, still correct */
	}
	size_t old_n = s->nbuckets;
	struct actor **old = s->buckets;
	free(s->kin);
	s->buckets = b;
	s->kin = kin;
	s->nbuckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct actor *a = old[i];
		while (a) {
			struct actor *next = a->hnext;
			size_t k = bucket_of(s, a->run.id);
			a->hnext = b[k];
			b[k] = a;
			kin_link(s, a);   /* the old kin chains went with their table */
			a = next;
		}
	}
	free(old);
}

enum err_code reg_add(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&s->reg_lock);
	if (s->nactors >= s->nbuckets)
		grow(s);
	size_t k = bucket_of(s, a->run.id);
	a->hnext = s->buckets[k];
	s->buckets[k] = a;
	kin_link(s, a);
	s->nactors++;
	__atomic_store_n(&s->registered, s->registered + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->reg_lock);
	return ERR_OK;
}

void reg_remove(struct supervisor *s, struct actor *a)
{
	int found = 0;
	pthread_mutex_lock(&s->reg_lock);
	for (struct actor **pp = &s->buckets[bucket_of(s, a->run.id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			a->hnext = NULL;
			kin_unlink(a);
			s->nactors--;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&s->reg_lock);
	if (found)
		actor_unref(s, a);
}

struct actor *reg_find(struct supervisor *s, const char *id)
{
	pthread_mutex_lock(&s->reg_lock);
	struct actor *a = s->buckets[bucket_of(s, id)];
	while (a && strcmp(a->run.id, id) != 0)
		a = a->hnext;
	if (a)
		a->refs++;
	pthread_mutex_unlock(&s->reg_lock);
	return a;
}

struct actor *reg_find_or_answer(struct supervisor *s, const char *id, supervisor_done_fn done,
				 void *user)
{
	struct actor *a = reg_find(s, id);
	if (!a) {
		struct err e;
		err_set(&e, ERR_NOT_FOUND, "actor '%s' not found", id);
		done(user, e.code, &e);
	}
	return a;
}

/* fn for each of the n actors taken (each with a reference), then the reference
 * dropped: without the registry lock, so that fn may block. */
static void call_each(struct supervisor *s, struct actor **all, size_t n,
		      void (*fn)(struct supervisor *s, struct actor *a, void *u), void *u)
{
	for (size_t i = 0; i < n; i++) {
		fn(s, all[i], u);
		actor_unref(s, all[i]);
	}
}

struct child_filter {
	const char *parent_id;
	void (*fn)(struct supervisor *s, struct actor *a, void *u);
	void *u;
};

static void if_child(struct supervisor *s, struct actor *a, void *u)
{
	struct child_filter *f = u;
	if (strcmp(a->run.parent_id, f->parent_id) == 0)
		f->fn(s, a, f->u);
}

void reg_foreach_child(struct supervisor *s, const char *parent_id,
		       void (*fn)(struct supervisor *s, struct actor *a, void *u), void *u)
{
	struct actor *few[16], **all = few;
	size_t n = 0, k = 0;
	pthread_mutex_lock(&s->reg_lock);
	struct actor *head = s->kin[bucket_of(s, parent_id)];
	for (struct actor *a = head; a; a = a->knext)
		n += strcmp(a->run.parent_id, parent_id) == 0;
	if (n > 16 && !(all = malloc(n * sizeof(*all)))) {
		pthread_mutex_unlock(&s->reg_lock);
		struct child_filter f = {parent_id, fn, u};
		reg_foreach(s, if_child, &f);     /* slower, misses none */
		return;
	}
	for (struct actor *a = head; a; a = a->knext)
		if (strcmp(a->run.parent_id, parent_id) == 0) {
			a->refs++;
			all[k++] = a;
		}
	pthread_mutex_unlock(&s->reg_lock);
	call_each(s, all, k, fn, u);
	if (all != few)
		free(all);
}

uint64_t reg_registered(struct supervisor *s)
{
	return __atomic_load_n(&s->registered, __ATOMIC_RELAXED);
}

uint64_t reg_foreach(struct supervisor *s,
		     void (*fn)(struct supervisor *s, struct actor *a, void *u), void *u)
{
	pthread_mutex_lock(&s->reg_lock);
	uint64_t registered = s->registered;
	size_t n = s->nactors, k = 0;
	struct actor **all = calloc(n ? n : 1, sizeof(*all));
	for (size_t i = 0; all && i < s->nbuckets; i++)
		for (struct actor *a = s->buckets[i]; a; a = a->hnext) {
			a->refs++;
			all[k++] = a;
		}
	pthread_mutex_unlock(&s->reg_lock);
	call_each(s, all, k, fn, u);
	free(all);
	return registered;
}

struct actor *actor_new(const struct db_run *run)
{
	struct actor *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (run_copy(run, &a->run) != ERR_OK) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->rec_lock, NULL);
	pthread_mutex_init(&a->deps_lock, NULL);
	pthread_mutex_init(&a->wake_lock, NULL);
	pthread_mutex_init(&a->tick_lock, NULL);
	a->refs = 1;
	return a;
}

void actor_ref(struct supervisor *s, struct actor *a)
{
	pthread_mutex_lock(&s->reg_lock);
	a->refs++;
	pthread_mutex_unlock(&s->reg_lock);
}

void actor_unref(struct supervisor *s, struct actor *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&s->reg_lock);
	int last = --a->refs == 0;
	pthread_mutex_unlock(&s->reg_lock);
	if (!last)
		return;
	chain_close(a->chain);
	if (a->rt)
		__atomic_sub_fetch(&s->loaded, 1, __ATOMIC_RELAXED);
	runtime_free(a->rt);
	record_release_pending(a);
	flusher_index_paid(s, a);     /* never flushed (out of memory): not waited for */
	wasm_module_free(a->module);
	manifest_free(a->manifest);
	free(a->state);
	free(a->open_mail);
	json_decref(a->initial_state);
	db_run_release(&a->run);
	for (size_t i = 0; i < a->ndeps; i++)
		actor_unref(s, a->deps[i].to);
	free(a->deps);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->rec_lock);
	pthread_mutex_destroy(&a->deps_lock);
	pthread_mutex_destroy(&a->tick_lock);
	pthread_mutex_destroy(&a->wake_lock);
	free(a);
}

void actor_state_take(struct actor *a, uint8_t *state, size_t len)
{
	uint8_t d[32];
	sha256(state, len, d);
	pthread_mutex_lock(&a->lock);
	free(a->state);
	a->state = state;
	a->state_len = len;
	hex_encode(d, 32, a->state_sha);
	a->state_loaded = 1;
	pthread_mutex_unlock(&a->lock);
}
