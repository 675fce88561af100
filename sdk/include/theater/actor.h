/* theater/actor.h - write theater actors in C (ABI version 1, docs/actor-abi.md).
 *
 * The C SDK is header-only, in sdk/include/theater/:
 *   actor.h    the ABI: imports of every host interface, the result record,
 *              theater_ok / theater_error, the allocator (this file)
 *   libc.h     memcpy, memmove, memset, memcmp (clang may call them)
 *   json.h     jscan.h (a bounds-checked JSON reader) + jbuf.h (a writer)
 *   hosterr.h  hosterr_name(rc): words for the negative results of host calls
 * Define THEATER_ACTOR_IMPL in exactly one source file before including them:
 * that file gets the required exports (`theater_abi_version`, `theater_alloc`,
 * `theater_reset_heap`) and the helpers' bodies.
 *
 * Build an actor (docs/sdk.md), from the root of a theater checkout:
 *   clang --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding \
 *     -Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384 \
 *     -I sdk/include -o counter.wasm examples/counter/counter.c
 * or with CMake: include(sdk/cmake/TheaterActor.cmake) and
 * theater_add_actor(counter SOURCES counter.c). Try it without a server:
 *   theater-wasm actor counter.wasm --send 5 --send 7 --request get
 *
 * theater_alloc is a bump allocator. The host calls the exported
 * theater_reset_heap before it places the inputs of each call, so memory from
 * theater_alloc lives for one call: what an actor keeps goes in its state.
 * Only the imports an actor uses end up in its module, and the manifest must grant
 * each of their interfaces with a [[handler]] entry.
 */
#ifndef THEATER_ACTOR_H
#define THEATER_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#define THEATER_EXPORT(name) __attribute__((export_name(name)))
#define THEATER_IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))

/* The result record every handler returns (docs/actor-abi.md). */
struct theater_result {
	uint32_t status;      /* 0 ok, 1 error */
	uint32_t state_ptr, state_len;
	uint32_t out_ptr, out_len;
};

/* Error codes of host functions. */
enum {
	THEATER_EINVAL = -1, THEATER_ENOTFOUND = -2, THEATER_EDENIED = -3,
	THEATER_ETIMEDOUT = -4, THEATER_ETOOBIG = -5, THEATER_EFAILED = -6, THEATER_EBUSY = -7,
};

/* Bytes returned by the host through an `out` slot. */
struct theater_bytes {
	uint32_t ptr, len;
};

/* theater:simple/runtime */
THEATER_IMPORT("theater:simple/runtime", "log") void theater_log(const char *p, uint32_t n);
THEATER_IMPORT("theater:simple/runtime", "self-id") int32_t theater_self_id(char out[36]);
THEATER_IMPORT("theater:simple/runtime", "shutdown") void theater_shutdown(const char *p, uint32_t n);
/* theater:simple/message-server-host */
THEATER_IMPORT("theater:simple/message-server-host", "send")
int32_t theater_send(const char *id, uint32_t id_len, const void *msg, uint32_t len);
THEATER_IMPORT("theater:simple/message-server-host", "request")
int32_t theater_request(const char *id, uint32_t id_len, const void *msg, uint32_t len,
			uint32_t timeout_ms, struct theater_bytes *out);
/* Deferred and streamed answers (docs/actor-abi.md). In handle-request,
 * defer-request takes the request away from the call (its output no longer
 * answers it) and returns its id (> 0); any later call answers it with
 * respond-to-request (or fail-request: the client gets 422 actor_error).
 * send-chunk streams a piece of the answer to the client first (id 0: the
 * request the call handles); it returns 1 when a client streams it, 0 when it
 * takes whole answers only. -2: no such request waits. */
THEATER_IMPORT("theater:simple/message-server-host", "defer-request")
int64_t theater_defer_request(void);
THEATER_IMPORT("theater:simple/message-server-host", "respond-to-request")
int32_t theater_respond_to_request(int64_t id, const void *p, uint32_t n);
THEATER_IMPORT("theater:simple/message-server-host", "fail-request")
int32_t theater_fail_request(int64_t id, const char *msg, uint32_t n);
THEATER_IMPORT("theater:simple/message-server-host", "send-chunk")
int32_t theater_send_chunk(int64_t id, const void *p, uint32_t n);
/* Channels between two actors (docs/actor-abi.md, "Channels"). open-channel
 * asks actor `id` (36 bytes) and waits (at most 30 s) for its
 * handle-channel-open: accepted, it returns the channel id (> 0) and writes the
 * target's accept message (maybe empty) to out; refused, -3 and the target's
 * reason in out. Either side sends with send-on-channel (at most 1 MiB; -2 when
 * the channel is closed) and closes with close-channel. Messages and the close
 * arrive as calls of handle-channel-message / handle-channel-close with the
 * envelope {"channel", "from", "data" | "data_b64" | "reason"} as the message.
 * At most 64 channels per actor (-7 beyond). */
THEATER_IMPORT("theater:simple/message-server-host", "open-channel")
int64_t theater_open_channel(const char *id, uint32_t id_len, const void *msg, uint32_t len,
			     struct theater_bytes *out);
THEATER_IMPORT("theater:simple/message-server-host", "send-on-channel")
int32_t theater_send_on_channel(int64_t channel, const void *p, uint32_t n);
THEATER_IMPORT("theater:simple/message-server-host", "close-channel")
int32_t theater_close_channel(int64_t channel);
/* theater:simple/timing */
THEATER_IMPORT("theater:simple/timing", "now") int64_t theater_now(void);
THEATER_IMPORT("theater:simple/timing", "sleep") int32_t theater_sleep(int64_t ms);
/* Timers: ticks come as calls of the actor's handle-timer export, with
 * {"timer", "tick", "scheduled_ms", "missed"} as the message. period_ms 0: one
 * tick. Setting a name again replaces its timer. */
THEATER_IMPORT("theater:simple/timing", "set-timer")
int32_t theater_set_timer(const char *name, uint32_t n, int64_t delay_ms, int64_t period_ms);
THEATER_IMPORT("theater:simple/timing", "cancel-timer")
int32_t theater_cancel_timer(const char *name, uint32_t n);
/* theater:simple/random */
THEATER_IMPORT("theater:simple/random", "random-bytes") int32_t theater_random_bytes(void *p, uint32_t n);
THEATER_IMPORT("theater:simple/random", "generate-uuid") int32_t theater_generate_uuid(char out[36]);
/* theater:simple/store */
THEATER_IMPORT("theater:simple/store", "store")
int32_t theater_store(const char *sid, uint32_t sid_len, const void *p, uint32_t n, char out_hash[64]);
THEATER_IMPORT("theater:simple/store", "get")
int32_t theater_store_get(const char *sid, uint32_t sid_len, const char hash[64], struct theater_bytes *out);
THEATER_IMPORT("theater:simple/store", "label")
int32_t theater_store_label(const char *sid, uint32_t sid_len, const char *label, uint32_t label_len,
			    const char hash[64]);
THEATER_IMPORT("theater:simple/store", "get-by-label")
int32_t theater_store_get_by_label(const char *sid, uint32_t sid_len, const char *label,
				   uint32_t label_len, struct theater_bytes *out);
/* theater:simple/supervisor */
THEATER_IMPORT("theater:simple/supervisor", "spawn")
int32_t theater_spawn(const char *manifest, uint32_t manifest_len, const void *state,
		      uint32_t state_len, char out_id[36]);
THEATER_IMPORT("theater:simple/supervisor", "list-children") int32_t theater_list_children(struct theater_bytes *out);
THEATER_IMPORT("theater:simple/supervisor", "stop-child") int32_t theater_stop_child(const char *id, uint32_t n);
THEATER_IMPORT("theater:simple/supervisor", "restart-child") int32_t theater_restart_child(const char *id, uint32_t n);
THEATER_IMPORT("theater:simple/supervisor", "get-child-state")
int32_t theater_get_child_state(const char *id, uint32_t n, struct theater_bytes *out);
/* theater:simple/http-client */
THEATER_IMPORT("theater:simple/http-client", "send-http")
int32_t theater_send_http(const char *req_json, uint32_t len, struct theater_bytes *out);
/* theater:simple/environment: the server's secrets this actor was granted
 * (allowed_vars / allowed_prefixes of its environment handler). get-var
 * returns the value's length (-2 not set, -3 not granted); exists returns 1
 * or 0; list-vars returns a JSON array of names. Prefer http-client header
 * templates ("Bearer {{secret:NAME}}"): then the actor never holds the value. */
THEATER_IMPORT("theater:simple/environment", "get-var")
int32_t theater_env_get(const char *name, uint32_t n, struct theater_bytes *out);
THEATER_IMPORT("theater:simple/environment", "exists")
int32_t theater_env_exists(const char *name, uint32_t n);
THEATER_IMPORT("theater:simple/environment", "list-vars")
int32_t theater_env_list(struct theater_bytes *out);

/* Helpers (defined with THEATER_ACTOR_IMPL). */
void *theater_alloc(uint32_t size);
void theater_reset_heap(void);
/* Fills the static result record and returns its address for a handler to return. */
struct theater_result *theater_ok(const void *state, uint32_t state_len, const void *out,
				  uint32_t out_len);
struct theater_result *theater_error(const void *state, uint32_t state_len, const char *msg);
uint32_t theater_strlen(const char *s);
void *theater_memcpy(void *dst, const void *src, uint32_t n);

#ifdef THEATER_ACTOR_IMPL
extern unsigned char __heap_base;
static uintptr_t theater_heap_top;
static struct theater_result theater_result_record;

THEATER_EXPORT("theater_abi_version") int32_t theater_abi_version(void)
{
	return 1;
}

THEATER_EXPORT("theater_reset_heap") void theater_reset_heap(void)
{
	theater_heap_top = (uintptr_t)&__heap_base;
}

THEATER_EXPORT("theater_alloc") void *theater_alloc(uint32_t size)
{
	if (!theater_heap_top)
		theater_reset_heap();
	uintptr_t p = (theater_heap_top + 7) & ~(uintptr_t)7;
	uintptr_t end = p + size;
	uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
	if (end > have) {
		uintptr_t pages = (end - have + 65535) / 65536;
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
			return 0;
	}
	theater_heap_top = end;
	return (void *)p;
}

struct theater_result *theater_ok(const void *state, uint32_t state_len, const void *out,
				  uint32_t out_len)
{
	theater_result_record = (struct theater_result){0, (uint32_t)(uintptr_t)state, state_len,
							(uint32_t)(uintptr_t)out, out_len};
	return &theater_result_record;
}

uint32_t theater_strlen(const char *s)
{
	uint32_t n = 0;
	while (s[n])
		n++;
	return n;
}

struct theater_result *theater_error(const void *state, uint32_t state_len, const char *msg)
{
	theater_result_record = (struct theater_result){1, (uint32_t)(uintptr_t)state, state_len,
							(uint32_t)(uintptr_t)msg,
							theater_strlen(msg)};
	return &theater_result_record;
}

void *theater_memcpy(void *dst, const void *src, uint32_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}
#endif

#endif
