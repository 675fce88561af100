/* blob.c - the content-store blobs that chain events name by reference (large
 * state: "state_ref"; large message bodies, inputs, outputs: {"sha256", "ref"};
 * packages), copied into the replicated stream so the node that takes an
 * actor over has them.
 *
 * A blob is stored in THEATER_CHAINS under theater.stream.blob.<store>.<sha256>
 * in chunks of at most BLOB_CHUNK bytes (far under any max_payload): each
 * message is an envelope head {"i": chunk, "n": chunks, "size": bytes} and the
 * chunk's bytes, with message id "<store>:<sha256>:<i>" (a retry is stored
 * once). The replica hook publishes the blobs an event names before the event
 * itself, on the same connection, so the wait that acknowledges the event
 * covers its blobs too.
 *
 * A small memory of the blobs published lately spares publishing one state
 * again for every event that names it; it is forgotten when a publish fails
 * (the events published again then publish their blobs again). */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/store.h"
#include "src/util/crypto.h"
#include "src/util/log.h"

#define CHAIN_STREAM "THEATER_CHAINS"
#define BLOB_CHUNK ((size_t)512 << 10)
#define REF_PREFIX "store://"

/* ---- the memory of published blobs ---- */

/* key: "<store>/<sha256>" */
static unsigned slot_of(const char *key)
{
	unsigned h = 5381;
	for (; *key; key++)
		h = h * 33 + (unsigned char)*key;
	return h % BLOB_SEEN;
}

static int seen(struct cluster *c, const char *key)
{
	pthread_mutex_lock(&c->blob_lock);
	int hit = strcmp(c->blob_seen[slot_of(key)], key) == 0;
	pthread_mutex_unlock(&c->blob_lock);
	return hit;
}

static void remember(struct cluster *c, const char key[96])
{
	pthread_mutex_lock(&c->blob_lock);
	memcpy(c->blob_seen[slot_of(key)], key, sizeof(c->blob_seen[0]));
	pthread_mutex_unlock(&c->blob_lock);
}

void blob_forget_all(struct cluster *c)
{
	pthread_mutex_lock(&c->blob_lock);
	memset(c->blob_seen, 0, sizeof(c->blob_seen));
	pthread_mutex_unlock(&c->blob_lock);
}

/* ---- publishing ---- */

static void blob_subject(char *buf, size_t size, const char *store_id, const char *sha256)
{
	snprintf(buf, size, "theater.stream.blob.%s.%s", store_id, sha256);
}

/* again: 0, or a number for message ids of their own (blob_publish_missing). */
static enum err_code publish(struct cluster *c, const char *store_id, const char *sha256,
			     int wait, int64_t again, struct err *err)
{
	char key[96];
	snprintf(key, sizeof(key), "%.30s/%.64s", store_id, sha256);
	if (!again && seen(c, key))
		return ERR_OK;
	uint8_t *data = NULL;
	size_t len = 0;
	char subject[160], id[160];
	blob_subject(subject, sizeof(subject), store_id, sha256);
	enum err_code rc = store_get(supervisor_store(c->sup), store_id, sha256, 0, &data, &len,
				     err);
	if (rc == ERR_NOT_FOUND) {
		/* not here: an actor taken over keeps in the stream the older
		 * states its new node never fetched (replica.c, states_needed);
		 * publishing its events again must not fail on them */
		struct err e2 = {0};
		int there = bus_stream_has(c->bus, CHAIN_STREAM, subject, &e2);
		if (there == 1) {
			remember(c, key);
			return ERR_OK;
		}
		if (there < 0) {
			char was[sizeof(err->msg)];
			snprintf(was, sizeof(was), "%s", err->msg);
			rc = err_set(err, e2.code, "%s (and the stream could not say whether it "
				     "has it: %s)", was, e2.msg);
		}
	}
	if (rc)
		return rc;
	size_t n = len ? (len + BLOB_CHUNK - 1) / BLOB_CHUNK : 1;
	for (size_t i = 0; !rc && i < n; i++) {
		size_t off = i * BLOB_CHUNK, part = len - off < BLOB_CHUNK ? len - off : BLOB_CHUNK;
		json_t *head = json_pack("{s:I, s:I, s:I}", "i", (json_int_t)i, "n", (json_int_t)n,
					 "size", (json_int_t)len);
		size_t mlen = 0;
		char *msg = head ? cluster_envelope(head, data + off, part, &mlen) : NULL;
		json_decref(head);
		snprintf(id, sizeof(id), "%s:%s:%zu", store_id, sha256, i);
		if (again)   /* the stream may remember the first ids (replica.c, job_heal) */
			snprintf(id + strlen(id), sizeof(id) - strlen(id), ":again-%lld",
				 (long long)again);
		if (!msg)
			rc = err_set(err, ERR_NOMEM, "out of memory");
		else if (wait)
			rc = bus_stream_publish(c->bus, subject, msg, mlen, id, 10000, err);
		else
			rc = bus_stream_publish_async(c->bus, subject, msg, mlen, id, err);
		free(msg);
	}
	free(data);
	if (!rc)
		remember(c, key);
	return rc;
}

enum err_code blob_publish(struct cluster *c, const char *store_id, const char *sha256,
			   int wait, struct err *err)
{
	return publish(c, store_id, sha256, wait, 0, err);
}

int blob_publish_missing(struct cluster *c, const char *store_id, const char *sha256,
			 int64_t again, struct err *err)
{
	char subject[160];
	blob_subject(subject, sizeof(subject), store_id, sha256);
	struct err e = {0};
	if (bus_stream_has(c->bus, CHAIN_STREAM, subject, &e) != 0)
		return 0;                 /* there (or the stream cannot say: not now) */
	return publish(c, store_id, sha256, 0, again, err) ? -1 : 1;
}

/* "store://<store>/hash/<sha256>": 1 and its parts, for the stores the
 * supervisor writes by reference. */
static int parse_ref(const char *s, char store_id[64], char sha256[65])
{
	size_t n = strlen(REF_PREFIX);
	if (strncmp(s, REF_PREFIX, n) != 0)
		return 0;
	const char *slash = strchr(s + n, '/');
	if (!slash || (size_t)(slash - (s + n)) >= 64 || strncmp(slash, "/hash/", 6) != 0 ||
	    !sha256_hex_valid(slash + 6))
		return 0;
	snprintf(store_id, 64, "%.*s", (int)(slash - (s + n)), s + n);
	snprintf(sha256, 65, "%s", slash + 6);
	return strcmp(store_id, "theater-state") == 0 || strcmp(store_id, "theater-data") == 0;
}

static void walk(const json_t *j, void (*fn)(void *user, const char *store_id,
					      const char *sha256), void *user, int depth)
{
	char sid[64], sha[65];
	const char *key;
	size_t i;
	json_t *v;
	if (depth > 16)
		return;
	if (json_is_string(j) && parse_ref(json_string_value(j), sid, sha))
		fn(user, sid, sha);
	else if (json_is_object(j))
		json_object_foreach((json_t *)j, key, v)
			walk(v, fn, user, depth + 1);
	else if (json_is_array(j))
		json_array_foreach(j, i, v)
			walk(v, fn, user, depth + 1);
}

void blob_each_ref(const uint8_t *data, size_t len,
		   void (*fn)(void *user, const char *store_id, const char *sha256), void *user)
{
	/* most events name no blob: no parse for them */
	if (!data || len < 8 || !memmem(data, len, REF_PREFIX, strlen(REF_PREFIX)))
		return;
	struct err e = {0};
	json_t *j = json_parse((const char *)data, len, 64, &e);
	walk(j, fn, user, 0);
	json_decref(j);
}

/* ---- an actor's own store ---- */

#define STORE_EVENT "theater:simple/store/"

static void note_label(struct blob_labels *l, const char *sid, const char *label,
		       const char *sha256)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	char *at = l->v[l->n++];
	size_t a = strlen(sid) + 1, b = strlen(label) + 1;
	memcpy(at, sid, a);
	memcpy(at + a, label, b);
	memcpy(at + a + b, sha256, 65);
}

void blob_each_actor_ref(const char *type, const uint8_t *data, size_t len,
			 void (*fn)(void *user, const char *store_id, const char *sha256),
			 void *user, struct blob_labels *labels)
{
	size_t n = strlen(STORE_EVENT);
	if (strncmp(type, STORE_EVENT, n) != 0 ||
	    (strcmp(type + n, "store") != 0 && strcmp(type + n, "label") != 0))
		return;
	int is_label = strcmp(type + n, "label") == 0;
	struct err e = {0};
	json_t *j = json_parse((const char *)data, len, 64, &e);
	json_t *in = json_object_get(j, "input"), *out = json_object_get(j, "output");
	const char *sid = json_string_value(json_object_get(in, "store"));
	const char *hash = json_string_value(json_object_get(is_label ? in : out, "hash"));
	const char *label = json_string_value(json_object_get(in, "label"));
	json_t *result = json_object_get(out, "result");
	if (sid && strlen(sid) < 64 && hash && sha256_hex_valid(hash) && json_is_integer(result) &&
	    json_integer_value(result) >= 0) {
		fn(user, sid, hash);
		if (is_label && labels && label && strlen(label) < 129)
			note_label(labels, sid, label, hash);
	}
	json_decref(j);
}

void blob_apply_labels(struct cluster *c, const char *actor_id, struct blob_labels *labels)
{
	struct store *st = supervisor_store(c->sup);
	for (size_t i = 0; st && i < labels->n; i++) {
		const char *sid = labels->v[i], *label = sid + strlen(sid) + 1;
		const char *hash = label + strlen(label) + 1;
		struct err e = {0};
		if (store_label_set(st, sid, label, hash, &e))
			log_warn("cluster", "label '%s' of store '%s' (actor '%s') not set: %s", label,
				 sid, actor_id, e.msg);
	}
	free(labels->v);
	memset(labels, 0, sizeof(*labels));
}

/* ---- fetching ---- */

struct chunks {
	uint8_t *buf;
	size_t size, n, got;
	unsigned char *have;
	int bad;
};

static int take_chunk(void *user, const uint8_t *data, size_t len)
{
	struct chunks *k = user;
	const uint8_t *body = NULL;
	size_t blen = 0;
	json_t *head = cluster_unwrap(data, len, &body, &blen);
	json_int_t i = json_integer_value(json_object_get(head, "i"));
	json_int_t n = json_integer_value(json_object_get(head, "n"));
	json_int_t size = json_integer_value(json_object_get(head, "size"));
	json_decref(head);
	if (!head || n < 1 || i < 0 || i >= n || size < 0 ||
	    (k->buf && ((size_t)n != k->n || (size_t)size != k->size))) {
		k->bad = 1;
		return 1;
	}
	if (!k->buf) {
		k->n = (size_t)n;
		k->size = (size_t)size;
		k->buf = malloc(k->size + 1);
		k->have = calloc(k->n, 1);
		if (!k->buf || !k->have) {
			k->bad = 1;
			return 1;
		}
	}
	size_t off = (size_t)i * BLOB_CHUNK;
	if (off + blen > k->size || (blen != BLOB_CHUNK && off + blen != k->size)) {
		k->bad = 1;
		return 1;
	}
	if (!k->have[i]) {
		memcpy(k->buf + off, body, blen);
		k->have[i] = 1;
		k->got++;
	}
	return k->got == k->n;
}

enum err_code blob_fetch(struct cluster *c, const char *store_id, const char *sha256,
			 struct err *err)
{
	struct store *st = supervisor_store(c->sup);
	if (store_has(st, store_id, sha256))
		return ERR_OK;
	char subject[160], kept[65];
	blob_subject(subject, sizeof(subject), store_id, sha256);
	struct chunks k = {0};
	enum err_code rc = bus_stream_read(c->bus, CHAIN_STREAM, subject, 10000, take_chunk, &k,
					   err);
	if (!rc && k.bad)
		rc = err_set(err, ERR_CORRUPT, "blob %s in the stream is malformed", sha256);
	else if (!rc && (!k.buf || k.got != k.n))
		rc = err_set(err, ERR_NOT_FOUND, "blob %s of '%s' is not (wholly) in the stream",
			     sha256, store_id);
	if (!rc)
		rc = store_put(st, store_id, k.buf, k.size, kept, err);
	if (!rc && strcmp(kept, sha256) != 0)
		rc = err_set(err, ERR_CORRUPT, "blob %s from the stream hashes to %s", sha256,
			     kept);
	free(k.buf);
	free(k.have);
	return rc;
}
