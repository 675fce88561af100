/* kv - a key-value actor on theater's content store (theater:simple/store).
 *
 * State: {"store": "<store id>", "index": {"<key>": "<sha256 of the value>"}}.
 * Requests (JSON):
 *   {"op": "put", "key": "k", "value": "v"}  stores the value's bytes in the
 *       store, points the label <key> at them, and keeps key -> hash in the
 *       index; answers {"key": "k", "hash": "<sha256>"};
 *   {"op": "get", "key": "k"}  answers {"key": "k", "value": "v"}: by the hash
 *       in the index, or else by the label (a value put by an earlier run);
 *   {"op": "list"}  answers the index.
 * Keys follow the store's label rule: 1 to 128 of [A-Za-z0-9_.-], not starting
 * with '.'. Values are strings. Anything else answers an error (state kept).
 * The store id comes from the initial state ("store", default "kv").
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/hosterr.h"
#include "theater/json.h"

#define KEY_MAX 128

struct kv {
	const char *state;
	uint32_t state_len;
	struct js store;      /* decoded store id */
	struct js index;      /* the index object, "{}" when absent */
};

static int kv_load(struct kv *kv, const char *state, uint32_t len)
{
	struct js st, v;
	kv->state = state;
	kv->state_len = len;
	kv->store = js_cstr("kv");
	kv->index = js_cstr("{}");
	if (len == 0)
		return 1;
	if (!js_parse(state, len, &st) || !js_is_object(st))
		return 0;
	if (js_get(st, "store", &v) && !js_string(v, &kv->store))
		return 0;
	if (js_get(st, "index", &v)) {
		if (!js_is_object(v))
			return 0;
		kv->index = v;
	}
	return kv->store.n > 0;
}

/* An error message with a quoted detail: "<msg> '<detail>'". */
static struct theater_result *fail(const struct kv *kv, const char *msg, struct js detail)
{
	struct jb b;
	jb_init(&b, 128);
	jb_cstr(&b, msg);
	if (detail.n) {
		jb_cstr(&b, " '");
		jb_raw(&b, detail.p, detail.n < 64 ? detail.n : 64);
		jb_char(&b, '\'');
	}
	jb_char(&b, 0);
	return theater_error(kv->state, kv->state_len, jb_ok(&b) ? b.p : msg);
}

static int key_valid(struct js k)
{
	if (k.n == 0 || k.n > KEY_MAX || k.p[0] == '.')
		return 0;
	for (uint32_t i = 0; i < k.n; i++) {
		char c = k.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* The state with index[key] = hash (replacing an earlier hash of key). */
static void write_state(struct jb *b, const struct kv *kv, struct js key, const char *hash)
{
	struct js k, v;
	uint32_t pos = 0;
	int first = 1;
	jb_cstr(b, "{\"store\":");
	jb_quote(b, kv->store.p, kv->store.n);
	jb_cstr(b, ",\"index\":{");
	while (js_next(kv->index, &pos, &k, &v)) {
		struct js name;
		if (!js_string(k, &name) || (name.n == key.n && !memcmp(name.p, key.p, key.n)))
			continue;
		if (!first)
			jb_char(b, ',');
		first = 0;
		jb_raw(b, k.p, k.n);
		jb_char(b, ':');
		jb_raw(b, v.p, v.n);
	}
	if (hash) {
		if (!first)
			jb_char(b, ',');
		jb_quote(b, key.p, key.n);
		jb_char(b, ':');
		jb_quote(b, hash, 64);
	}
	jb_cstr(b, "}}");
}

static struct theater_result *put(const struct kv *kv, struct js key, struct js req)
{
	struct js value;
	char hash[64];
	if (!js_get_string(req, "value", &value))
		return fail(kv, "'put' needs a string 'value'", (struct js){0, 0});
	int32_t rc = theater_store(kv->store.p, kv->store.n, value.p, value.n, hash);
	if (rc >= 0)
		rc = theater_store_label(kv->store.p, kv->store.n, key.p, key.n, hash);
	if (rc < 0)
		return fail(kv, "the store refused the value:", js_cstr(hosterr_name(rc)));
	struct jb st, out;
	jb_init(&st, kv->state_len + key.n + 128);
	write_state(&st, kv, key, hash);
	jb_init(&out, key.n + 96);
	jb_cstr(&out, "{\"key\":");
	jb_quote(&out, key.p, key.n);
	jb_cstr(&out, ",\"hash\":");
	jb_quote(&out, hash, 64);
	jb_char(&out, '}');
	if (!jb_ok(&st) || !jb_ok(&out))
		return fail(kv, "out of memory", (struct js){0, 0});
	return theater_ok(st.p, st.len, out.p, out.len);
}

static struct theater_result *get(const struct kv *kv, struct js key)
{
	struct js h, hash;
	struct theater_bytes got = {0, 0};
	int32_t rc;
	if (js_get(kv->index, key.p, &h) && js_string(h, &hash) && hash.n == 64)
		rc = theater_store_get(kv->store.p, kv->store.n, hash.p, &got);
	else
		rc = theater_store_get_by_label(kv->store.p, kv->store.n, key.p, key.n, &got);
	if (rc == THEATER_ENOTFOUND)
		return fail(kv, "no such key", key);
	if (rc < 0)
		return fail(kv, "the store failed:", js_cstr(hosterr_name(rc)));
	struct jb out;
	jb_init(&out, key.n + got.len + 32);
	jb_cstr(&out, "{\"key\":");
	jb_quote(&out, key.p, key.n);
	jb_cstr(&out, ",\"value\":");
	jb_quote(&out, (const char *)(uintptr_t)got.ptr, got.len);
	jb_char(&out, '}');
	if (!jb_ok(&out))
		return fail(kv, "out of memory", (struct js){0, 0});
	return theater_ok(kv->state, kv->state_len, out.p, out.len);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct kv kv;
	struct jb b;
	if (!kv_load(&kv, state, len))
		return theater_error(state, len, "the state must be {\"store\": \"<store id>\", "
				     "\"index\": {...}}");
	jb_init(&b, len + 64);
	write_state(&b, &kv, js_cstr(""), 0);
	if (!jb_ok(&b))
		return theater_error(state, len, "out of memory");
	return theater_ok(b.p, b.len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *msg,
				      uint32_t msg_len)
{
	struct kv kv;
	struct js req, op, key = {0, 0};
	if (!kv_load(&kv, state, len))
		return theater_error(state, len, "the state is not a kv state");
	if (!js_parse(msg, msg_len, &req) || !js_is_object(req) ||
	    !js_get_string(req, "op", &op))
		return theater_error(state, len, "a request is a JSON object with an 'op': "
				     "\"put\", \"get\" or \"list\"");
	if (js_bytes_eq(op, "list"))
		return theater_ok(state, len, kv.index.p, kv.index.n);
	if (!js_bytes_eq(op, "put") && !js_bytes_eq(op, "get"))
		return fail(&kv, "unknown op", op);
	if (!js_get_string(req, "key", &key) || !key_valid(key))
		return fail(&kv, "'key' must be 1 to 128 of [A-Za-z0-9_.-], not starting with "
			    "'.'", (struct js){0, 0});
	return op.p[0] == 'p' ? put(&kv, key, req) : get(&kv, key);
}
