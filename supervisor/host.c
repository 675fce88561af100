/* host.c - the table of host functions and the helpers they share; see host.h. */
#include "supervisor/host.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "src/util/crypto.h"
#include "src/util/log.h"
#include "supervisor/record.h"
#include "supervisor/runtime.h"

#define BYTES_INLINE_MAX 4096

static const struct host_fn *const tables[] = {
	host_runtime_fns, host_message_fns, host_timing_fns, host_random_fns,
	host_store_fns, host_supervisor_fns, host_http_fns, host_env_fns,
};

static const struct {
	const char *type;
	unsigned grant;
} grant_names[] = {
	{"runtime", GRANT_RUNTIME}, {"message-server", GRANT_MESSAGE}, {"timing", GRANT_TIMING},
	{"random", GRANT_RANDOM}, {"store", GRANT_STORE}, {"supervisor", GRANT_SUPERVISOR},
	{"http-client", GRANT_HTTP}, {"environment", GRANT_ENV},
};

const struct host_fn *host_find(const char *module, size_t module_len, const char *name,
				size_t name_len)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct host_fn *h = tables[t]; h->name; h++)
			if (strlen(h->module) == module_len && strlen(h->name) == name_len &&
			    memcmp(h->module, module, module_len) == 0 &&
			    memcmp(h->name, name, name_len) == 0)
				return h;
	return NULL;
}

unsigned host_grant_of(const char *type)
{
	for (size_t i = 0; i < sizeof(grant_names) / sizeof(grant_names[0]); i++)
		if (strcmp(grant_names[i].type, type) == 0)
			return grant_names[i].grant;
	return 0;
}

const char *host_grant_name(unsigned grant)
{
	for (size_t i = 0; i < sizeof(grant_names) / sizeof(grant_names[0]); i++)
		if (grant_names[i].grant == grant)
			return grant_names[i].type;
	return "unknown";
}

int32_t host_read(struct wasm_caller *c, uint32_t ptr, uint32_t len, size_t max, uint8_t **out)
{
	*out = NULL;
	if (len > max)
		return HOST_ETOOBIG;
	struct wasm_memory *m = wasm_caller_memory(c);
	uint8_t *buf = malloc((size_t)len + 1);
	if (!m || !buf || wasm_memory_read(m, ptr, buf, len, NULL) != ERR_OK) {
		free(buf);
		return HOST_EINVAL;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

int32_t host_write(struct wasm_caller *c, uint32_t ptr, const void *data, size_t len)
{
	struct wasm_memory *m = wasm_caller_memory(c);
	if (!m || wasm_memory_write(m, ptr, data, len, NULL) != ERR_OK)
		return HOST_EINVAL;
	return 0;
}

int32_t host_return_bytes(struct wasm_caller *c, struct actor *a, uint32_t out_slot,
			  const void *data, size_t len)
{
	if (len > INT32_MAX)
		return HOST_ETOOBIG;
	struct wasm_func *alloc = runtime_alloc_func(a);
	struct wasm_memory *m = wasm_caller_memory(c);
	uint32_t slot[2];
	if (!alloc || !m || wasm_memory_read(m, out_slot, slot, sizeof(slot), NULL))
		return HOST_EINVAL;
	struct wasm_value arg = {.type = WASM_I32, .of.i32 = (uint32_t)len}, res;
	if (wasm_func_call(wasm_caller_store(c), alloc, &arg, 1, &res, 1, NULL) != ERR_OK ||
	    (res.of.i32 == 0 && len))
		return HOST_EFAILED;
	m = wasm_caller_memory(c);     /* the allocator may have grown the memory */
	slot[0] = res.of.i32;
	slot[1] = (uint32_t)len;
	if ((len && wasm_memory_write(m, slot[0], data, len, NULL)) ||
	    wasm_memory_write(m, out_slot, slot, sizeof(slot), NULL))
		return HOST_EINVAL;
	return (int32_t)len;
}

static int utf8_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!k || i + k > n || (k == 1 && c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

json_t *host_bytes_json(const uint8_t *data, size_t len)
{
	if (!data)
		return json_null();
	if (len > BYTES_INLINE_MAX) {
		uint8_t d[32];
		char hex[65];
		sha256(data, len, d);
		hex_encode(d, 32, hex);
		return json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)len);
	}
	if (utf8_text(data, len)) {
		json_t *s = json_stringn((const char *)data, len);
		if (s)
			return s;
	}
	char *b64 = base64_encode(data, len);
	json_t *o = json_pack("{s:s}", "b64", b64 ? b64 : "");
	free(b64);
	return o;
}

void host_record(struct actor *a, const char *module, const char *name, json_t *input,
		 json_t *output)
{
	char type[160];
	snprintf(type, sizeof(type), "%s/%s", module, name);
	json_t *ev = json_object();
	json_object_set_new(ev, "input", input ? input : json_null());
	json_object_set_new(ev, "output", output ? output : json_null());
	runtime_account_bytes(a, json_dumpb(ev, NULL, 0, JSON_COMPACT) + strlen(type));
	struct err e = {0};
	if (record_event_ex(host_supervisor(a), a, type, ev, NULL, NULL, 1, &e))
		log_error("host", "cannot record %s of '%s': %s", type, host_actor_id(a), e.msg);
}

static void host_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

static int host_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, const int *done, uint32_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!*done && pthread_cond_timedwait(c, m, &until) == 0)
		;
	return *done;
}

void host_call_init(struct host_call *k)
{
	k->in = json_object();
	k->out = json_object();
	err_clear(&k->e);
	k->rc = 0;
}

void host_set_i32(struct wasm_value *r, int32_t v)
{
	*r = (struct wasm_value){.type = WASM_I32, .of.i32 = (uint32_t)v};
}

void host_call_end(struct host_call *k, struct actor *a, const char *module, const char *name,
		   struct wasm_value *results)
{
	host_set_i32(&results[0], k->rc);
	if (k->out) {
		json_object_set_new(k->out, "result", json_integer(k->rc));
		if (k->rc < 0 && k->e.msg[0])
			json_object_set_new(k->out, "error", json_string(k->e.msg));
	}
	host_record(a, module, name, k->in, k->out);
}

int32_t host_errno(enum err_code code)
{
	switch (code) {
	case ERR_OK: return 0;
	case ERR_INVALID: case ERR_BAD_ID: case ERR_BAD_JSON: case ERR_TOO_DEEP:
	case ERR_BAD_MANIFEST: case ERR_UNKNOWN_KEY: case ERR_MISSING_FIELD:
	case ERR_BAD_REFERENCE:
		return HOST_EINVAL;
	case ERR_NOT_FOUND: return HOST_ENOTFOUND;
	case ERR_FORBIDDEN_PATH: return HOST_EDENIED;
	case ERR_TIMEOUT: return HOST_ETIMEDOUT;
	case ERR_TOO_LARGE: return HOST_ETOOBIG;
	case ERR_BUSY: case ERR_TOO_MANY_ACTORS: return HOST_EBUSY;
	default: return HOST_EFAILED;
	}
}

struct host_wait *host_wait_new(void)
{
	struct host_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	host_cond_init(&w->cond);
	w->refs = 2;
	return w;
}

void host_wait_unref(struct host_wait *w)
{
	pthread_mutex_lock(&w->lock);
	int last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (!last)
		return;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->data);
	free(w);
}

int host_wait_for(struct host_wait *w, uint32_t ms)
{
	pthread_mutex_lock(&w->lock);
	int done = host_cond_wait(&w->cond, &w->lock, &w->done, ms);
	pthread_mutex_unlock(&w->lock);
	return done;
}
