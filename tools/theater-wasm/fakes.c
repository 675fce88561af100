/* fakes.c - the offline host functions (see fakes.h).
 *
 * Each fake reads its arguments through bounds-checked memory reads (a bad
 * pointer answers -1, never a host crash) and records one call. Bytes handed
 * back to the actor go into memory from the actor's own theater_alloc, as the
 * server's host functions do, with (ptr, len) written at the `out` slot.
 */
#include "tools/theater-wasm/fakes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/actor_abi.h"
#include "src/util/crypto.h"

#define FAKE_MAX_BYTES ((size_t)16 << 20)
#define FAKE_RANDOM_MAX (64u * 1024)
#define FAKE_DEFAULT_ID "00000000-0000-4000-8000-000000000001"

struct blob {
	char *key;          /* store: "<sid>\n<hash>" or "<sid>\n#<label>" -> hash */
	uint8_t *data;
	size_t len;
};

struct fakes {
	uint64_t rng;
	int64_t now_ms;
	char self_id[37];
	uint8_t **answers;
	size_t *answer_lens;
	size_t nanswers, next_answer;
	json_t *http;
	json_t *calls;
	char *shutdown;
	struct blob *blobs;
	size_t nblobs;
	json_t *children;   /* {"<id>": <state bytes as JSON>} */
};

/* ---- helpers ---- */

json_t *fakes_bytes_json(const uint8_t *data, size_t len)
{
	json_t *s = json_stringn((const char *)data, len);
	if (s)
		return s;
	char *hex = malloc(len * 2 + 1);
	if (!hex)
		return NULL;
	hex_encode(data, len, hex);
	hex[len * 2] = '\0';
	json_t *o = json_pack("{s:s}", "hex", hex);
	free(hex);
	return o;
}

static void record(struct fakes *f, const char *iface, const char *fn, json_t *in, json_t *out)
{
	char call[128];
	snprintf(call, sizeof call, "theater:simple/%s/%s", iface, fn);
	json_t *c = json_pack("{s:s}", "call", call);
	if (c && in)
		json_object_set(c, "input", in);
	if (c && out)
		json_object_set(c, "output", out);
	if (c)
		json_array_append_new(f->calls, c);
	json_decref(in);
	json_decref(out);
}

/* splitmix64: small, deterministic, good enough for tests. */
static uint64_t next_random(struct fakes *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Guest bytes [ptr, ptr+len) as a malloc'd, NUL-terminated copy; NULL when
 * out of bounds or too large. */
static uint8_t *guest_read(struct wasm_caller *c, uint32_t ptr, uint32_t len)
{
	struct err err = {0};
	if (len > FAKE_MAX_BYTES)
		return NULL;
	uint8_t *p = malloc((size_t)len + 1);
	if (!p || wasm_memory_read(wasm_caller_memory(c), ptr, p, len, &err)) {
		free(p);
		return NULL;
	}
	p[len] = '\0';
	return p;
}

static int guest_write(struct wasm_caller *c, uint32_t ptr, const void *data, size_t len)
{
	struct err err = {0};
	return wasm_memory_write(wasm_caller_memory(c), ptr, data, len, &err) ? -1 : 0;
}

/* An 8-byte `out` slot inside the memory: checked before anything is done, as
 * the server's host functions do (a bad slot is -1 whatever else is wrong). */
static int slot_ok(struct wasm_caller *c, uint32_t out)
{
	return (uint64_t)out + 8 <= wasm_memory_size(wasm_caller_memory(c));
}

/* Hands bytes to the guest: memory from its theater_alloc, (ptr, len) at out.
 * Returns len, a negative ABI error, or -100 with *trap set when the guest's
 * allocator trapped. */
static int32_t give(struct wasm_caller *c, uint32_t out, const void *data, size_t len,
		    enum err_code *trap, struct err *err)
{
	struct wasm_extern ext;
	if (len > INT32_MAX)
		return ACTOR_ABI_ETOOBIG;
	if (wasm_caller_export(c, ACTOR_ABI_EXPORT_ALLOC, &ext) || ext.kind != WASM_EXTERN_FUNC)
		return ACTOR_ABI_EFAILED;
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	*trap = wasm_func_call(wasm_caller_store(c), ext.of.func, &arg, 1, &res, 1, err);
	if (*trap)
		return -100;
	if (res.of.i32 == 0 && len)
		return ACTOR_ABI_ETOOBIG;
	uint8_t slot[8];
	uint32_t p = res.of.i32, n = (uint32_t)len;
	for (int i = 0; i < 4; i++) {
		slot[i] = (uint8_t)(p >> (8 * i));
		slot[4 + i] = (uint8_t)(n >> (8 * i));
	}
	if (guest_write(c, p, data, len) || guest_write(c, out, slot, 8))
		return ACTOR_ABI_EINVAL;
	return (int32_t)len;
}

static void set_i32(struct wasm_value *r, int32_t v)
{
	r[0] = (struct wasm_value){.type = WASM_I32, .of.i32 = (uint32_t)v};
}

/* Finishes a fake that hands bytes back: the result, or the guest's trap. */
static enum err_code give_result(struct wasm_value *res, int32_t rc, enum err_code trap)
{
	set_i32(res, rc);
	return rc == -100 ? trap : ERR_OK;
}

#define FAKE(fn) static enum err_code fn(struct wasm_caller *c, void *user, \
	const struct wasm_value *a, struct wasm_value *res, struct err *err)
#define U(i) (a[i].of.i32)

/* ---- runtime ---- */

FAKE(f_log)
{
	(void)res;
	(void)err;
	uint8_t *t = guest_read(c, U(0), U(1));
	record(user, "runtime", "log", t ? fakes_bytes_json(t, U(1)) : json_integer(-1), NULL);
	free(t);
	return ERR_OK;
}

FAKE(f_self_id)
{
	(void)err;
	struct fakes *f = user;
	int32_t rc = guest_write(c, U(0), f->self_id, 36) ? ACTOR_ABI_EINVAL : 36;
	set_i32(res, rc);
	record(f, "runtime", "self-id", NULL, json_string(f->self_id));
	return ERR_OK;
}

FAKE(f_shutdown)
{
	(void)res;
	(void)err;
	struct fakes *f = user;
	uint8_t *t = guest_read(c, U(0), U(1));
	free(f->shutdown);
	f->shutdown = strdup(t ? (char *)t : "");
	record(f, "runtime", "shutdown", t ? fakes_bytes_json(t, U(1)) : NULL, NULL);
	free(t);
	return ERR_OK;
}

/* ---- message-server ---- */

FAKE(f_send)
{
	(void)err;
	uint8_t *id = guest_read(c, U(0), U(1)), *msg = guest_read(c, U(2), U(3));
	int32_t rc = id && msg ? 0 : ACTOR_ABI_EINVAL;
	set_i32(res, rc);
	record(user, "message-server-host", "send",
	       id && msg ? json_pack("{s:s%, s:o}", "to", (char *)id, (size_t)U(1), "message",
				     fakes_bytes_json(msg, U(3))) : NULL,
	       json_integer(rc));
	free(id);
	free(msg);
	return ERR_OK;
}

FAKE(f_request)
{
	struct fakes *f = user;
	uint8_t *id = guest_read(c, U(0), U(1)), *msg = guest_read(c, U(2), U(3));
	enum err_code trap = ERR_OK;
	int32_t rc = ACTOR_ABI_EINVAL;
	json_t *out = NULL;
	if (!slot_ok(c, U(5))) {
		rc = ACTOR_ABI_EINVAL;
	} else if (id && msg && f->next_answer < f->nanswers) {
		size_t k = f->next_answer++;
		rc = give(c, U(5), f->answers[k], f->answer_lens[k], &trap, err);
		out = rc >= 0 ? fakes_bytes_json(f->answers[k], f->answer_lens[k]) : NULL;
	} else if (id && msg) {
		rc = ACTOR_ABI_EFAILED;     /* no --answer left */
	}
	record(f, "message-server-host", "request",
	       id && msg ? json_pack("{s:s%, s:o}", "to", (char *)id, (size_t)U(1), "message",
				     fakes_bytes_json(msg, U(3))) : NULL,
	       out ? json_pack("{s:i, s:o}", "result", rc, "response", out) : json_integer(rc));
	free(id);
	free(msg);
	return give_result(res, rc, trap);
}

/* ---- timing ---- */

FAKE(f_now)
{
	(void)c;
	(void)a;
	(void)err;
	struct fakes *f = user;
	res[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = (uint64_t)f->now_ms};
	record(f, "timing", "now", NULL, json_integer(f->now_ms));
	return ERR_OK;
}

FAKE(f_sleep)
{
	(void)c;
	(void)err;
	struct fakes *f = user;
	int64_t ms = (int64_t)a[0].of.i64;
	int32_t rc = ms < 0 ? ACTOR_ABI_EINVAL : 0;
	if (!rc)
		f->now_ms += ms;
	set_i32(res, rc);
	record(f, "timing", "sleep", json_integer(ms), json_integer(rc));
	return ERR_OK;
}

/* ---- deferred and streamed answers, timers ---- */

/* defer-request answers a fixed id (1); respond-to-request, fail-request and
 * send-chunk are recorded (send-chunk: 0, nobody streams offline); set-timer and
 * cancel-timer are recorded and answer 0 (ticks come from --tick, actor.c). */
FAKE(f_defer)
{
	(void)c;
	(void)a;
	(void)err;
	res[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = 1};
	record(user, "message-server", "defer-request", NULL, json_integer(1));
	return ERR_OK;
}

static enum err_code bytes_call(struct wasm_caller *c, void *user, const struct wasm_value *a,
				struct wasm_value *res, const char *fn)
{
	uint8_t *b = guest_read(c, U(1), U(2));
	int32_t rc = b ? 0 : ACTOR_ABI_EINVAL;
	set_i32(res, rc);
	record(user, "message-server", fn,
	       json_pack("{s:I, s:o}", "request", (json_int_t)a[0].of.i64, "data",
			 b ? fakes_bytes_json(b, U(2)) : json_null()), json_integer(rc));
	free(b);
	return ERR_OK;
}

FAKE(f_respond)
{
	(void)err;
	return bytes_call(c, user, a, res, "respond-to-request");
}

FAKE(f_fail_request)
{
	(void)err;
	return bytes_call(c, user, a, res, "fail-request");
}

FAKE(f_chunk)
{
	(void)err;
	return bytes_call(c, user, a, res, "send-chunk");
}

/* Channels: offline there is no other actor, so open-channel answers -2;
 * send-on-channel and close-channel are recorded and answer -2 as well. */
FAKE(f_open_channel)
{
	(void)err;
	uint8_t *id = guest_read(c, U(0), U(1)), *msg = guest_read(c, U(2), U(3));
	res[0] = (struct wasm_value){.type = WASM_I64,
				     .of.i64 = (uint64_t)(int64_t)ACTOR_ABI_ENOTFOUND};
	record(user, "message-server", "open-channel",
	       json_pack("{s:s%, s:o}", "to", id ? (char *)id : "", id ? (size_t)U(1) : (size_t)0,
			 "message", msg ? fakes_bytes_json(msg, U(3)) : json_null()),
	       json_integer(ACTOR_ABI_ENOTFOUND));
	free(id);
	free(msg);
	return ERR_OK;
}

FAKE(f_send_on_channel)
{
	(void)err;
	uint8_t *b = guest_read(c, U(1), U(2));
	int32_t rc = b ? ACTOR_ABI_ENOTFOUND : ACTOR_ABI_EINVAL;
	set_i32(res, rc);
	record(user, "message-server", "send-on-channel",
	       json_pack("{s:I, s:o}", "channel", (json_int_t)a[0].of.i64, "data",
			 b ? fakes_bytes_json(b, U(2)) : json_null()), json_integer(rc));
	free(b);
	return ERR_OK;
}

FAKE(f_close_channel)
{
	(void)c;
	(void)err;
	set_i32(res, ACTOR_ABI_ENOTFOUND);
	record(user, "message-server", "close-channel",
	       json_pack("{s:I}", "channel", (json_int_t)a[0].of.i64),
	       json_integer(ACTOR_ABI_ENOTFOUND));
	return ERR_OK;
}

FAKE(f_set_timer)
{
	(void)err;
	uint8_t *name = guest_read(c, U(0), U(1));
	int32_t rc = name ? 0 : ACTOR_ABI_EINVAL;
	set_i32(res, rc);
	record(user, "timing", "set-timer",
	       json_pack("{s:s%, s:I, s:I}", "name", name ? (char *)name : "",
			 name ? (size_t)U(1) : (size_t)0, "delay_ms", (json_int_t)a[2].of.i64,
			 "period_ms", (json_int_t)a[3].of.i64), json_integer(rc));
	free(name);
	return ERR_OK;
}

FAKE(f_cancel_timer)
{
	(void)err;
	uint8_t *name = guest_read(c, U(0), U(1));
	int32_t rc = name ? 0 : ACTOR_ABI_EINVAL;
	set_i32(res, rc);
	record(user, "timing", "cancel-timer",
	       name ? json_stringn((char *)name, U(1)) : NULL, json_integer(rc));
	free(name);
	return ERR_OK;
}

/* ---- random ---- */

FAKE(f_random_bytes)
{
	(void)err;
	struct fakes *f = user;
	uint32_t n = U(1);
	int32_t rc = n > FAKE_RANDOM_MAX ? ACTOR_ABI_ETOOBIG : (int32_t)n;
	uint8_t *buf = rc > 0 ? malloc(n) : NULL;
	if (rc > 0 && !buf)
		rc = ACTOR_ABI_EFAILED;
	for (uint32_t i = 0; buf && i < n; i++)
		buf[i] = (uint8_t)next_random(f);
	if (buf && guest_write(c, U(0), buf, n))
		rc = ACTOR_ABI_EINVAL;
	free(buf);
	set_i32(res, rc);
	record(f, "random", "random-bytes", json_integer(n), json_integer(rc));
	return ERR_OK;
}

FAKE(f_uuid)
{
	(void)err;
	struct fakes *f = user;
	uint8_t b[16];
	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)next_random(f);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	char hex[33], id[37];
	hex_encode(b, 16, hex);
	snprintf(id, sizeof id, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		 hex + 20);
	int32_t rc = guest_write(c, U(0), id, 36) ? ACTOR_ABI_EINVAL : 36;
	set_i32(res, rc);
	record(f, "random", "generate-uuid", NULL, json_string(id));
	return ERR_OK;
}

/* ---- store ---- */

static struct blob *blob_find(struct fakes *f, const char *key)
{
	for (size_t i = 0; i < f->nblobs; i++)
		if (strcmp(f->blobs[i].key, key) == 0)
			return &f->blobs[i];
	return NULL;
}

/* Puts key -> data (copied); 0, or -1 on no memory. */
static int blob_put(struct fakes *f, const char *key, const void *data, size_t len)
{
	struct blob *b = blob_find(f, key);
	uint8_t *copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, data, len);
	if (b) {
		free(b->data);
		b->data = copy;
		b->len = len;
		return 0;
	}
	struct blob *nb = realloc(f->blobs, (f->nblobs + 1) * sizeof *nb);
	char *k = strdup(key);
	if (!nb || !k) {
		free(copy);
		free(k);
		if (nb)
			f->blobs = nb;
		return -1;
	}
	f->blobs = nb;
	f->blobs[f->nblobs++] = (struct blob){k, copy, len};
	return 0;
}

static char *blob_key(const char *sid, const char *sep, const char *name)
{
	size_t n = strlen(sid) + strlen(sep) + strlen(name) + 2;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s\n%s%s", sid, sep, name);
	return k;
}

FAKE(f_store)
{
	(void)err;
	struct fakes *f = user;
	uint8_t *sid = guest_read(c, U(0), U(1)), *data = guest_read(c, U(2), U(3));
	int32_t rc = ACTOR_ABI_EINVAL;
	char hex[65] = "";
	if (sid && data) {
		uint8_t d[32];
		sha256(data, U(3), d);
		hex_encode(d, 32, hex);
		hex[64] = '\0';
		char *k = blob_key((char *)sid, "", hex);
		rc = k && !blob_put(f, k, data, U(3)) ? 64 : ACTOR_ABI_EFAILED;
		free(k);
		if (rc == 64 && guest_write(c, U(4), hex, 64))
			rc = ACTOR_ABI_EINVAL;
	}
	set_i32(res, rc);
	record(f, "store", "store", sid ? json_pack("{s:s, s:i}", "store", (char *)sid, "size",
						     (json_int_t)U(3)) : NULL,
	       rc == 64 ? json_pack("{s:i, s:s}", "result", rc, "hash", hex) : json_integer(rc));
	free(sid);
	free(data);
	return ERR_OK;
}

/* get and get-by-label: the blob under key (a label holds a hash). */
static enum err_code store_get(struct wasm_caller *c, struct fakes *f, const char *fn,
			       const char *sid, const char *sep, const char *name, uint32_t out,
			       struct wasm_value *res, struct err *err)
{
	enum err_code trap = ERR_OK;
	int32_t rc = slot_ok(c, out) ? ACTOR_ABI_ENOTFOUND : ACTOR_ABI_EINVAL;
	char *k = blob_key(sid, sep, name);
	struct blob *b = k ? blob_find(f, k) : NULL;
	if (b && *sep) {        /* a label: follow it to its hash */
		char *hk = blob_key(sid, "", (char *)b->data);
		b = hk ? blob_find(f, hk) : NULL;
		free(hk);
	}
	if (b && rc == ACTOR_ABI_ENOTFOUND)
		rc = give(c, out, b->data, b->len, &trap, err);
	free(k);
	record(f, "store", fn, json_pack("{s:s, s:s}", "store", sid, *sep ? "label" : "hash", name),
	       json_integer(rc));
	return give_result(res, rc, trap);
}

FAKE(f_get)
{
	uint8_t *sid = guest_read(c, U(0), U(1)), *hash = guest_read(c, U(2), 64);
	enum err_code rc = ERR_OK;
	if (sid && hash)
		rc = store_get(c, user, "get", (char *)sid, "", (char *)hash, U(3), res, err);
	else
		set_i32(res, ACTOR_ABI_EINVAL);
	free(sid);
	free(hash);
	return rc;
}

FAKE(f_get_by_label)
{
	uint8_t *sid = guest_read(c, U(0), U(1)), *label = guest_read(c, U(2), U(3));
	enum err_code rc = ERR_OK;
	if (sid && label)
		rc = store_get(c, user, "get-by-label", (char *)sid, "#", (char *)label, U(4), res,
			       err);
	else
		set_i32(res, ACTOR_ABI_EINVAL);
	free(sid);
	free(label);
	return rc;
}

FAKE(f_label)
{
	(void)err;
	struct fakes *f = user;
	uint8_t *sid = guest_read(c, U(0), U(1)), *label = guest_read(c, U(2), U(3));
	uint8_t *hash = guest_read(c, U(4), 64);
	int32_t rc = ACTOR_ABI_EINVAL;
	if (sid && label && hash && sha256_hex_valid((char *)hash)) {
		char *hk = blob_key((char *)sid, "", (char *)hash);
		char *lk = blob_key((char *)sid, "#", (char *)label);
		rc = !hk || !lk ? ACTOR_ABI_EFAILED : !blob_find(f, hk) ? ACTOR_ABI_ENOTFOUND
		     : blob_put(f, lk, hash, 65) ? ACTOR_ABI_EFAILED : 0;
		free(hk);
		free(lk);
	}
	set_i32(res, rc);
	record(f, "store", "label", sid && label && hash
	       ? json_pack("{s:s, s:s, s:s}", "store", (char *)sid, "label", (char *)label, "hash",
			   (char *)hash) : NULL, json_integer(rc));
	free(sid);
	free(label);
	free(hash);
	return ERR_OK;
}

/* ---- supervisor ---- */

FAKE(f_spawn)
{
	(void)err;
	struct fakes *f = user;
	uint8_t *man = guest_read(c, U(0), U(1)), *st = guest_read(c, U(2), U(3));
	int32_t rc = ACTOR_ABI_EINVAL;
	char id[37] = "";
	if (man && st) {
		snprintf(id, sizeof id, "00000000-0000-4000-8000-%012zx",
			 json_object_size(f->children) + 2);
		json_object_set_new(f->children, id, fakes_bytes_json(st, U(3)));
		rc = guest_write(c, U(4), id, 36) ? ACTOR_ABI_EINVAL : 0;
	}
	set_i32(res, rc);
	record(f, "supervisor", "spawn", man ? json_pack("{s:o}", "manifest",
							 fakes_bytes_json(man, U(1))) : NULL,
	       rc == 0 ? json_pack("{s:i, s:s}", "result", rc, "child", id) : json_integer(rc));
	free(man);
	free(st);
	return ERR_OK;
}

FAKE(f_list_children)
{
	(void)a;
	struct fakes *f = user;
	json_t *ids = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(f->children, k, v)
		json_array_append_new(ids, json_string(k));
	char *text = json_compact(ids);
	enum err_code trap = ERR_OK;
	int32_t rc = !slot_ok(c, U(0)) ? ACTOR_ABI_EINVAL : text ? give(c, U(0), text, strlen(text),
								   &trap, err)
		     : ACTOR_ABI_EFAILED;
	record(f, "supervisor", "list-children", NULL, ids);
	free(text);
	return give_result(res, rc, trap);
}

/* stop-child, restart-child and get-child-state: the child's record in *rec;
 * 0, or -1 for an id that cannot be read or is not 36 bytes, -3 for one that
 * is not a child (as the server: only one's own children). */
static int32_t child_of(struct wasm_caller *c, struct fakes *f, uint32_t p, uint32_t n,
			char id[37], json_t **rec)
{
	uint8_t *s = n == 36 ? guest_read(c, p, n) : NULL;
	snprintf(id, 37, "%s", s ? (char *)s : "");
	free(s);
	*rec = id[0] ? json_object_get(f->children, id) : NULL;
	return !id[0] ? ACTOR_ABI_EINVAL : *rec ? 0 : ACTOR_ABI_EDENIED;
}

FAKE(f_stop_child)
{
	(void)err;
	struct fakes *f = user;
	char id[37];
	json_t *rec;
	int32_t rc = child_of(c, f, U(0), U(1), id, &rec);
	if (!rc)
		json_object_del(f->children, id);
	set_i32(res, rc);
	record(f, "supervisor", "stop-child", json_string(id), json_integer(rc));
	return ERR_OK;
}

FAKE(f_restart_child)
{
	(void)err;
	struct fakes *f = user;
	char id[37];
	json_t *rec;
	int32_t rc = child_of(c, f, U(0), U(1), id, &rec);
	set_i32(res, rc);
	record(f, "supervisor", "restart-child", json_string(id), json_integer(rc));
	return ERR_OK;
}

FAKE(f_child_state)
{
	struct fakes *f = user;
	char id[37];
	json_t *st;
	enum err_code trap = ERR_OK;
	int32_t rc = slot_ok(c, U(2)) ? child_of(c, f, U(0), U(1), id, &st) : ACTOR_ABI_EINVAL;
	if (rc == ACTOR_ABI_EINVAL)
		id[0] = '\0';
	if (!rc && json_is_string(st))
		rc = give(c, U(2), json_string_value(st), json_string_length(st), &trap, err);
	else if (!rc)
		rc = ACTOR_ABI_EFAILED;     /* a state that was not UTF-8 */
	record(f, "supervisor", "get-child-state", json_string(id), json_integer(rc));
	return give_result(res, rc, trap);
}

/* ---- http-client ---- */

/* The fixture's response for a request {"method", "url", ...}: by
 * "METHOD URL", else by "URL". */
static const json_t *http_answer(const struct fakes *f, const json_t *req)
{
	const char *m = json_string_value(json_object_get(req, "method"));
	const char *u = json_string_value(json_object_get(req, "url"));
	if (!f->http || !u)
		return NULL;
	char key[4200];
	snprintf(key, sizeof key, "%s %s", m ? m : "GET", u);
	const json_t *r = json_object_get(f->http, key);
	return r ? r : json_object_get(f->http, u);
}

FAKE(f_send_http)
{
	struct fakes *f = user;
	uint8_t *text = guest_read(c, U(0), U(1));
	struct err e = {0};
	json_t *req = text ? json_parse((char *)text, U(1), 64, &e) : NULL;
	const json_t *ans = req ? http_answer(f, req) : NULL;
	char *out = ans ? json_compact(ans) : NULL;
	enum err_code trap = ERR_OK;
	int32_t rc = !req || !slot_ok(c, U(2)) ? ACTOR_ABI_EINVAL : !out ? ACTOR_ABI_EFAILED
		     : give(c, U(2), out, strlen(out), &trap, err);
	record(f, "http-client", "send-http", req ? json_incref(req) : NULL,
	       rc >= 0 ? json_deep_copy(ans) : json_integer(rc));
	json_decref(req);
	free(out);
	free(text);
	return give_result(res, rc, trap);
}

/* ---- linking ---- */

static const struct {
	const char *name;
	wasm_host_fn fn;
} fns[] = {
	{"log", f_log}, {"self-id", f_self_id}, {"shutdown", f_shutdown},
	{"send", f_send}, {"request", f_request}, {"now", f_now}, {"sleep", f_sleep},
	{"random-bytes", f_random_bytes}, {"generate-uuid", f_uuid},
	{"store", f_store}, {"get", f_get}, {"label", f_label},
	{"get-by-label", f_get_by_label}, {"spawn", f_spawn},
	{"list-children", f_list_children}, {"stop-child", f_stop_child},
	{"restart-child", f_restart_child}, {"get-child-state", f_child_state},
	{"send-http", f_send_http}, {"defer-request", f_defer}, {"respond-to-request", f_respond},
	{"fail-request", f_fail_request}, {"send-chunk", f_chunk}, {"set-timer", f_set_timer},
	{"cancel-timer", f_cancel_timer}, {"open-channel", f_open_channel},
	{"send-on-channel", f_send_on_channel}, {"close-channel", f_close_channel},
};

enum err_code fakes_link(struct fakes *f, struct wasm_store *s,
			 const struct wasm_import_desc *desc, struct wasm_extern *out,
			 struct err *err)
{
	const struct actor_abi_import *imp =
		actor_abi_import_find(desc->module, desc->module_len, desc->name, desc->name_len);
	if (!imp || desc->kind != WASM_EXTERN_FUNC)
		return err_set(err, ERR_NOT_FOUND, "not an import of the actor abi");
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		if (strcmp(fns[i].name, imp->name) != 0)
			continue;
		struct wasm_functype ft;
		actor_abi_import_type(imp, &ft);
		out->kind = WASM_EXTERN_FUNC;
		return wasm_func_new_host(s, &ft, fns[i].fn, f, &out->of.func, err);
	}
	return err_set(err, ERR_INTERNAL, "no fake for '%s'", imp->name);
}

enum err_code fakes_new(const struct fakes_options *o, struct fakes **out, struct err *err)
{
	struct fakes *f = calloc(1, sizeof *f);
	if (!f)
		return err_set(err, ERR_NOMEM, "out of memory");
	f->rng = o->seed;
	f->now_ms = o->now_ms;
	snprintf(f->self_id, sizeof f->self_id, "%s", o->self_id ? o->self_id : FAKE_DEFAULT_ID);
	f->calls = json_array();
	f->children = json_object();
	f->http = o->http ? json_deep_copy(o->http) : NULL;
	f->answers = calloc(o->nanswers + 1, sizeof *f->answers);
	f->answer_lens = calloc(o->nanswers + 1, sizeof *f->answer_lens);
	int nomem = !f->calls || !f->children || (o->http && !f->http) || !f->answers ||
		    !f->answer_lens;
	for (size_t i = 0; !nomem && i < o->nanswers; i++) {
		f->answers[i] = malloc(o->answer_lens[i] + 1);
		if (!f->answers[i]) {
			nomem = 1;
			break;
		}
		memcpy(f->answers[i], o->answers[i], o->answer_lens[i]);
		f->answer_lens[i] = o->answer_lens[i];
		f->nanswers = i + 1;
	}
	if (nomem) {
		fakes_free(f);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	*out = f;
	return ERR_OK;
}

void fakes_free(struct fakes *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nanswers; i++)
		free(f->answers[i]);
	free(f->answers);
	free(f->answer_lens);
	for (size_t i = 0; i < f->nblobs; i++) {
		free(f->blobs[i].key);
		free(f->blobs[i].data);
	}
	free(f->blobs);
	json_decref(f->http);
	json_decref(f->calls);
	json_decref(f->children);
	free(f->shutdown);
	free(f);
}

json_t *fakes_take_calls(struct fakes *f)
{
	json_t *taken = f->calls;
	f->calls = json_array();
	return taken;
}

int64_t fakes_now(const struct fakes *f)
{
	return f->now_ms;
}

const char *fakes_shutdown_reason(const struct fakes *f)
{
	return f->shutdown;
}
