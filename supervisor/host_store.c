/* host_store.c - theater:simple/store: the content-addressed store for actors.
 *
 * store, get, label and get-by-label over the server's store (src/store.h).
 * Every id, label and hash from the guest is checked before the store sees it
 * (-1), and every pointer before anything is written, so a bad out pointer
 * never leaves a half-done operation behind.
 *
 * Which stores an actor may touch: the handler's `store_ids` (an array of ids)
 * and its `store_id` (the reference's one-store setting) when either is given,
 * else any; ids starting with "theater-" are the server's own (the
 * runtime keeps large actor states in "theater-state") and are refused (-3)
 * either way. Objects are capped at 16 MiB in both directions (-5).
 */
#include <stdlib.h>
#include <string.h>

#include "src/store.h"
#include "src/util/crypto.h"
#include "supervisor/host.h"
#include "supervisor/supervisor.h"

#define MOD "theater:simple/store"
#define STORE_MAX_OBJECT ((size_t)16 << 20)
#define STORE_ID_MAX 64
#define STORE_LABEL_MAX 128
#define STORE_RESERVED_PREFIX "theater-"

static int store_permitted(struct actor *a, const char *sid)
{
	if (strncmp(sid, STORE_RESERVED_PREFIX, strlen(STORE_RESERVED_PREFIX)) == 0)
		return 0;
	const json_t *cfg = host_handler_config(a, GRANT_STORE);
	const json_t *ids = cfg ? json_object_get(cfg, "store_ids") : NULL;
	const json_t *one = cfg ? json_object_get(cfg, "store_id") : NULL;
	size_t i;
	const json_t *v;
	if (one && json_is_string(one) && strcmp(json_string_value(one), sid) == 0)
		return 1;
	if (!ids)
		return one == NULL;
	json_array_foreach(ids, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), sid) == 0)
			return 1;
	return 0;   /* not listed, or store_ids is not an array: fail closed */
}

/* Reads guest text of at most max bytes that must pass valid(); -1 otherwise. */
static int32_t read_name(struct wasm_caller *c, uint32_t ptr, uint32_t len, size_t max,
			 int (*valid)(const char *), char **out)
{
	uint8_t *s = NULL;
	int32_t rc = host_read(c, ptr, len, max, &s);
	if (rc || strlen((char *)s) != len || !valid((char *)s)) {
		free(s);
		return HOST_EINVAL;
	}
	*out = (char *)s;
	return 0;
}

/* The store id argument: valid (-1) and permitted (-3); recorded as "store". */
static int32_t read_store_id(struct host_call *k, struct wasm_caller *c, struct actor *a,
			     uint32_t ptr, uint32_t len, char **out)
{
	*out = NULL;
	if (read_name(c, ptr, len, STORE_ID_MAX, store_id_valid, out)) {
		err_set(&k->e, ERR_BAD_ID, "invalid store id");
		return HOST_EINVAL;
	}
	json_object_set_new(k->in, "store", json_string(*out));
	if (!store_permitted(a, *out)) {
		err_set(&k->e, ERR_FORBIDDEN_PATH, "store '%s' is not granted to this actor", *out);
		return HOST_EDENIED;
	}
	return 0;
}

static int32_t read_hash(struct host_call *k, struct wasm_caller *c, uint32_t ptr, char out[65])
{
	uint8_t *h = NULL;
	int32_t rc = host_read(c, ptr, SHA256_HEX_LEN, SHA256_HEX_LEN, &h);
	if (!rc && !sha256_hex_valid((char *)h))
		rc = HOST_EINVAL;
	if (!rc) {
		memcpy(out, h, SHA256_HEX_LEN + 1);
		json_object_set_new(k->in, "hash", json_string(out));
	} else {
		err_set(&k->e, ERR_INVALID, "the hash must be 64 lowercase hex digits");
	}
	free(h);
	return rc;
}

/* -1 unless [ptr, ptr+len) is inside the guest's memory. */
static int32_t check_span(struct wasm_caller *c, uint32_t ptr, uint32_t len)
{
	uint8_t *probe = NULL;
	int32_t rc = host_read(c, ptr, len, len, &probe);
	free(probe);
	return rc;
}

static struct store *the_store(struct host_call *k, struct actor *a)
{
	struct store *st = supervisor_store(host_supervisor(a));
	if (!st)
		err_set(&k->e, ERR_UNSUPPORTED, "no content store is configured");
	return st;
}

static enum err_code s_store(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_STORE, MOD, "store", results, 0))
		return ERR_OK;
	struct host_call k;
	char *sid = NULL, hash[65];
	uint8_t *data = NULL;
	struct store *st = NULL;
	uint32_t len = args[3].of.i32;
	host_call_init(&k);
	k.rc = read_store_id(&k, c, user, args[0].of.i32, args[1].of.i32, &sid);
	if (!k.rc && (k.rc = host_read(c, args[2].of.i32, len, STORE_MAX_OBJECT, &data)))
		err_set(&k.e, ERR_INVALID, k.rc == HOST_ETOOBIG ? "%u bytes is over the object limit"
			: "the data (%u bytes) is outside the memory", len);
	if (!k.rc) {
		json_object_set_new(k.in, "data", host_bytes_json(data, len));
		k.rc = check_span(c, args[4].of.i32, SHA256_HEX_LEN);
	}
	if (!k.rc && !(st = the_store(&k, user)))
		k.rc = HOST_EFAILED;
	if (!k.rc)
		k.rc = host_errno(store_put(st, sid, data, len, hash, &k.e));
	if (!k.rc) {
		k.rc = host_write(c, args[4].of.i32, hash, SHA256_HEX_LEN) ? HOST_EINVAL
									    : SHA256_HEX_LEN;
		json_object_set_new(k.out, "hash", json_string(hash));
	}
	host_call_end(&k, user, MOD, "store", results);
	free(sid);
	free(data);
	return ERR_OK;
}

/* Reads an entry and hands it to the guest through the out slot. */
static int32_t give_entry(struct host_call *k, struct wasm_caller *c, struct actor *a,
			  struct store *st, const char *sid, const char *hash, uint32_t out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int32_t rc = host_errno(store_get(st, sid, hash, STORE_MAX_OBJECT, &data, &len, &k->e));
	if (!rc) {
		rc = host_return_bytes(c, a, out, data, len);
		json_object_set_new(k->out, "data", host_bytes_json(data, len));
	}
	free(data);
	return rc;
}

static enum err_code s_get(struct wasm_caller *c, void *user, const struct wasm_value *args,
			   struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_STORE, MOD, "get", results, 0))
		return ERR_OK;
	struct host_call k;
	char *sid = NULL, hash[65];
	struct store *st = NULL;
	host_call_init(&k);
	k.rc = read_store_id(&k, c, user, args[0].of.i32, args[1].of.i32, &sid);
	if (!k.rc)
		k.rc = read_hash(&k, c, args[2].of.i32, hash);
	if (!k.rc)
		k.rc = check_span(c, args[3].of.i32, 8);
	if (!k.rc && !(st = the_store(&k, user)))
		k.rc = HOST_EFAILED;
	if (!k.rc)
		k.rc = give_entry(&k, c, user, st, sid, hash, args[3].of.i32);
	host_call_end(&k, user, MOD, "get", results);
	free(sid);
	return ERR_OK;
}

static int32_t read_label(struct host_call *k, struct wasm_caller *c, uint32_t ptr, uint32_t len,
			  char **out)
{
	if (read_name(c, ptr, len, STORE_LABEL_MAX, store_label_valid, out)) {
		err_set(&k->e, ERR_BAD_ID, "invalid label");
		return HOST_EINVAL;
	}
	json_object_set_new(k->in, "label", json_string(*out));
	return 0;
}

static enum err_code s_label(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_STORE, MOD, "label", results, 0))
		return ERR_OK;
	struct host_call k;
	char *sid = NULL, *label = NULL, hash[65];
	struct store *st = NULL;
	host_call_init(&k);
	k.rc = read_store_id(&k, c, user, args[0].of.i32, args[1].of.i32, &sid);
	if (!k.rc)
		k.rc = read_label(&k, c, args[2].of.i32, args[3].of.i32, &label);
	if (!k.rc)
		k.rc = read_hash(&k, c, args[4].of.i32, hash);
	if (!k.rc && !(st = the_store(&k, user)))
		k.rc = HOST_EFAILED;
	if (!k.rc)
		k.rc = host_errno(store_label_set(st, sid, label, hash, &k.e));
	host_call_end(&k, user, MOD, "label", results);
	free(sid);
	free(label);
	return ERR_OK;
}

static enum err_code s_get_by_label(struct wasm_caller *c, void *user,
				    const struct wasm_value *args, struct wasm_value *results,
				    struct err *err)
{
	if (host_disallowed(user, GRANT_STORE, MOD, "get-by-label", results, 0))
		return ERR_OK;
	struct host_call k;
	char *sid = NULL, *label = NULL, hash[65];
	struct store *st = NULL;
	host_call_init(&k);
	k.rc = read_store_id(&k, c, user, args[0].of.i32, args[1].of.i32, &sid);
	if (!k.rc)
		k.rc = read_label(&k, c, args[2].of.i32, args[3].of.i32, &label);
	if (!k.rc)
		k.rc = check_span(c, args[4].of.i32, 8);
	if (!k.rc && !(st = the_store(&k, user)))
		k.rc = HOST_EFAILED;
	if (!k.rc)
		k.rc = host_errno(store_label_get(st, sid, label, hash, &k.e));
	if (!k.rc) {
		json_object_set_new(k.out, "hash", json_string(hash));
		k.rc = give_entry(&k, c, user, st, sid, hash, args[4].of.i32);
	}
	host_call_end(&k, user, MOD, "get-by-label", results);
	free(sid);
	free(label);
	return ERR_OK;
}

#define I WASM_I32
const struct host_fn host_store_fns[] = {
	{MOD, "store", GRANT_STORE, 5, 1, {I, I, I, I, I}, {I}, s_store},
	{MOD, "get", GRANT_STORE, 4, 1, {I, I, I, I}, {I}, s_get},
	{MOD, "label", GRANT_STORE, 5, 1, {I, I, I, I, I}, {I}, s_label},
	{MOD, "get-by-label", GRANT_STORE, 5, 1, {I, I, I, I, I}, {I}, s_get_by_label},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
#undef I
