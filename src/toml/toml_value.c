/* toml_value.c - the document model of the TOML parser: the arena every
 * document lives in, tables with ordered keys and a hash index, arrays, and
 * the public accessors.
 *
 * Why an arena: a document is built once and freed once, so bump allocation
 * in growing chunks makes parsing cheap (a small manifest needs one malloc)
 * and freeing a tree of any shape a short loop. Tables keep their entries in
 * document order; past TOML_INDEX_MIN entries an open-addressing index of
 * item numbers keeps lookups O(1), so documents with huge tables stay linear.
 */
#include "src/toml/toml_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_MIN 4096
#define ARENA_CHUNK_MAX ((size_t)1 << 20)
#define TOML_INDEX_MIN 8

void toml_arena_init(struct toml_arena *a, void *first, size_t first_size)
{
	a->chunks = NULL;
	a->cur = first;
	a->end = first ? (char *)first + first_size : NULL;
	a->next_size = ARENA_CHUNK_MIN;
}

void toml_arena_release(struct toml_arena *a)
{
	if (!a)
		return;
	struct toml_arena_chunk *c = a->chunks;
	while (c) {
		struct toml_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->chunks = NULL;
	a->cur = a->end = NULL;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Starts a new chunk that holds at least size bytes. */
static int arena_new_chunk(struct toml_arena *a, size_t size)
{
	size_t hdr = align8(sizeof(struct toml_arena_chunk));
	size_t want = a->next_size;
	if (want < size)
		want = size;
	if (want > SIZE_MAX - hdr)
		return -1;
	struct toml_arena_chunk *c = malloc(hdr + want);
	if (!c)
		return -1;
	c->next = a->chunks;
	a->chunks = c;
	a->cur = (char *)c + hdr;
	a->end = a->cur + want;
	if (a->next_size < ARENA_CHUNK_MAX)
		a->next_size *= 2;
	return 0;
}

void *toml_arena_alloc(struct toml_arena *a, size_t size)
{
	size = align8(size ? size : 1);
	if (!a->cur || (size_t)(a->end - a->cur) < size) {
		if (arena_new_chunk(a, size) < 0)
			return NULL;
	}
	void *p = a->cur;
	a->cur += size;
	return p;
}

void *toml_arena_grow(struct toml_arena *a, void *ptr, size_t old_size, size_t new_size)
{
	size_t old_al = align8(old_size ? old_size : 1);
	size_t new_al = align8(new_size);
	if (ptr && (char *)ptr + old_al == a->cur && (size_t)(a->end - (char *)ptr) >= new_al) {
		a->cur = (char *)ptr + new_al;
		return ptr;
	}
	void *p = toml_arena_alloc(a, new_size);
	if (p && ptr && old_size)
		memcpy(p, ptr, old_size < new_size ? old_size : new_size);
	return p;
}

char *toml_arena_strdup(struct toml_arena *a, const char *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	/* Strings need no alignment, but keeping every block aligned keeps
	 * toml_arena_grow simple; the waste is at most 7 bytes a string. */
	char *p = toml_arena_alloc(a, len + 1);
	if (!p)
		return NULL;
	if (len)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* ---- tables ---- */

uint32_t toml_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

struct toml_value *toml_table_find(const struct toml_value *t, const char *key, size_t len,
				   uint32_t hash)
{
	const struct toml_kv *items = t->u.tab.items;
	if (!t->u.tab.slots) {
		for (uint32_t i = 0; i < t->u.tab.len; i++)
			if (items[i].len == len && memcmp(items[i].key, key, len) == 0)
				return items[i].val;
		return NULL;
	}
	uint32_t mask = t->u.tab.nslots - 1;
	for (uint32_t s = hash & mask;; s = (s + 1) & mask) {
		uint32_t idx = t->u.tab.slots[s];
		if (!idx)
			return NULL;
		const struct toml_kv *kv = &items[idx - 1];
		if (kv->hash == hash && kv->len == len && memcmp(kv->key, key, len) == 0)
			return kv->val;
	}
}

static void index_put(struct toml_value *t, uint32_t idx)
{
	uint32_t mask = t->u.tab.nslots - 1;
	uint32_t s = t->u.tab.items[idx].hash & mask;
	while (t->u.tab.slots[s])
		s = (s + 1) & mask;
	t->u.tab.slots[s] = idx + 1;
}

/* Keeps the index at most half full. */
static int index_update(struct toml_arena *a, struct toml_value *t)
{
	uint32_t n = t->u.tab.len;
	if (n <= TOML_INDEX_MIN)
		return 0;
	if (t->u.tab.slots && (uint64_t)n * 2 <= t->u.tab.nslots) {
		index_put(t, n - 1);
		return 0;
	}
	uint32_t ns = 32;
	while (ns < n * 4)
		ns *= 2;
	uint32_t *slots = toml_arena_alloc(a, (size_t)ns * sizeof(*slots));
	if (!slots)
		return -1;
	memset(slots, 0, (size_t)ns * sizeof(*slots));
	t->u.tab.slots = slots;
	t->u.tab.nslots = ns;
	for (uint32_t i = 0; i < n; i++)
		index_put(t, i);
	return 0;
}

int toml_table_add(struct toml_arena *a, struct toml_value *t, const char *key, size_t len,
		   uint32_t hash, struct toml_value *val)
{
	assert(t->type == TOML_TABLE);
	if (t->u.tab.len == t->u.tab.cap) {
		if (t->u.tab.cap >= UINT32_MAX / 4)
			return -1;
		uint32_t cap = t->u.tab.cap ? t->u.tab.cap * 2 : 4;
		void *items = toml_arena_grow(a, t->u.tab.items,
					      (size_t)t->u.tab.cap * sizeof(struct toml_kv),
					      (size_t)cap * sizeof(struct toml_kv));
		if (!items)
			return -1;
		t->u.tab.items = items;
		t->u.tab.cap = cap;
	}
	struct toml_kv *kv = &t->u.tab.items[t->u.tab.len++];
	kv->key = key;
	kv->len = (uint32_t)len;
	kv->hash = hash;
	kv->val = val;
	return index_update(a, t);
}

int toml_array_push(struct toml_arena *a, struct toml_value *arr, struct toml_value *val)
{
	assert(arr->type == TOML_ARRAY);
	if (arr->u.arr.len == arr->u.arr.cap) {
		if (arr->u.arr.cap >= UINT32_MAX / 4)
			return -1;
		uint32_t cap = arr->u.arr.cap ? arr->u.arr.cap * 2 : 4;
		void *items = toml_arena_grow(a, arr->u.arr.items,
					      (size_t)arr->u.arr.cap * sizeof(val),
					      (size_t)cap * sizeof(val));
		if (!items)
			return -1;
		arr->u.arr.items = items;
		arr->u.arr.cap = cap;
	}
	arr->u.arr.items[arr->u.arr.len++] = val;
	return 0;
}

/* ---- public ---- */

void toml_free(struct toml_value *root)
{
	if (!root)
		return;
	assert(root->type == TOML_TABLE && root->kind == TOML_TAB_ROOT);
	struct toml_doc *doc = (struct toml_doc *)root;
	toml_arena_release(&doc->arena);
	free(doc);
}

enum toml_type toml_type(const struct toml_value *v)
{
	return (enum toml_type)v->type;
}

const char *toml_type_name(enum toml_type t)
{
	static const char *const names[] = {
		[TOML_TABLE] = "table",
		[TOML_ARRAY] = "array",
		[TOML_STRING] = "string",
		[TOML_INTEGER] = "integer",
		[TOML_FLOAT] = "float",
		[TOML_BOOL] = "bool",
		[TOML_DATETIME] = "datetime",
		[TOML_DATETIME_LOCAL] = "datetime-local",
		[TOML_DATE_LOCAL] = "date-local",
		[TOML_TIME_LOCAL] = "time-local",
	};
	if ((unsigned)t >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[t];
}

unsigned toml_line(const struct toml_value *v)
{
	return v->line;
}

unsigned toml_col(const struct toml_value *v)
{
	return v->col;
}

size_t toml_table_len(const struct toml_value *t)
{
	return t->type == TOML_TABLE ? t->u.tab.len : 0;
}

const struct toml_value *toml_table_at(const struct toml_value *t, size_t i,
				       const char **key_out, size_t *key_len_out)
{
	if (t->type != TOML_TABLE || i >= t->u.tab.len)
		return NULL;
	const struct toml_kv *kv = &t->u.tab.items[i];
	if (key_out)
		*key_out = kv->key;
	if (key_len_out)
		*key_len_out = kv->len;
	return kv->val;
}

const struct toml_value *toml_table_getn(const struct toml_value *t, const char *key,
					 size_t key_len)
{
	if (t->type != TOML_TABLE)
		return NULL;
	return toml_table_find(t, key, key_len, t->u.tab.slots ? toml_hash(key, key_len) : 0);
}

const struct toml_value *toml_table_get(const struct toml_value *t, const char *key)
{
	return toml_table_getn(t, key, strlen(key));
}

size_t toml_array_len(const struct toml_value *a)
{
	return a->type == TOML_ARRAY ? a->u.arr.len : 0;
}

const struct toml_value *toml_array_at(const struct toml_value *a, size_t i)
{
	if (a->type != TOML_ARRAY || i >= a->u.arr.len)
		return NULL;
	return a->u.arr.items[i];
}

const char *toml_string(const struct toml_value *v, size_t *len_out)
{
	if (v->type != TOML_STRING)
		return NULL;
	if (len_out)
		*len_out = v->u.str.len;
	return v->u.str.ptr;
}

int64_t toml_int(const struct toml_value *v)
{
	return v->type == TOML_INTEGER ? v->u.i : 0;
}

double toml_float(const struct toml_value *v)
{
	return v->type == TOML_FLOAT ? v->u.f : 0.0;
}

bool toml_bool(const struct toml_value *v)
{
	return v->type == TOML_BOOL ? v->u.b != 0 : false;
}

const struct toml_datetime *toml_datetime(const struct toml_value *v)
{
	switch (v->type) {
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		return v->u.dt;
	default:
		return NULL;
	}
}
