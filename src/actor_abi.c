/* actor_abi.c - the actor ABI's tables and its result-record reader (see
 * actor_abi.h). The import table mirrors docs/actor-abi.md; a test compares it
 * with the supervisor's host functions, so the two cannot drift apart. */
#include "src/actor_abi.h"

#include <string.h>

#define I32 WASM_I32
#define I64 WASM_I64
#define RT "theater:simple/runtime"
#define MSG "theater:simple/message-server-host"
#define TIM "theater:simple/timing"
#define RND "theater:simple/random"
#define STO "theater:simple/store"
#define SUP "theater:simple/supervisor"
#define HTTP "theater:simple/http-client"

const struct actor_abi_import actor_abi_imports[] = {
	{RT, "log", "runtime", 2, 0, {I32, I32}, {0}},
	{RT, "self-id", "runtime", 1, 1, {I32}, {I32}},
	{RT, "shutdown", "runtime", 2, 0, {I32, I32}, {0}},
	{MSG, "send", "message-server", 4, 1, {I32, I32, I32, I32}, {I32}},
	{MSG, "request", "message-server", 6, 1, {I32, I32, I32, I32, I32, I32}, {I32}},
	{MSG, "defer-request", "message-server", 0, 1, {0}, {I64}},
	{MSG, "respond-to-request", "message-server", 3, 1, {I64, I32, I32}, {I32}},
	{MSG, "fail-request", "message-server", 3, 1, {I64, I32, I32}, {I32}},
	{MSG, "send-chunk", "message-server", 3, 1, {I64, I32, I32}, {I32}},
	{MSG, "open-channel", "message-server", 5, 1, {I32, I32, I32, I32, I32}, {I64}},
	{MSG, "send-on-channel", "message-server", 3, 1, {I64, I32, I32}, {I32}},
	{MSG, "close-channel", "message-server", 1, 1, {I64}, {I32}},
	{TIM, "now", "timing", 0, 1, {0}, {I64}},
	{TIM, "sleep", "timing", 1, 1, {I64}, {I32}},
	{TIM, "set-timer", "timing", 4, 1, {I32, I32, I64, I64}, {I32}},
	{TIM, "cancel-timer", "timing", 2, 1, {I32, I32}, {I32}},
	{RND, "random-bytes", "random", 2, 1, {I32, I32}, {I32}},
	{RND, "generate-uuid", "random", 1, 1, {I32}, {I32}},
	{STO, "store", "store", 5, 1, {I32, I32, I32, I32, I32}, {I32}},
	{STO, "get", "store", 4, 1, {I32, I32, I32, I32}, {I32}},
	{STO, "label", "store", 5, 1, {I32, I32, I32, I32, I32}, {I32}},
	{STO, "get-by-label", "store", 5, 1, {I32, I32, I32, I32, I32}, {I32}},
	{SUP, "spawn", "supervisor", 5, 1, {I32, I32, I32, I32, I32}, {I32}},
	{SUP, "list-children", "supervisor", 1, 1, {I32}, {I32}},
	{SUP, "stop-child", "supervisor", 2, 1, {I32, I32}, {I32}},
	{SUP, "restart-child", "supervisor", 2, 1, {I32, I32}, {I32}},
	{SUP, "get-child-state", "supervisor", 3, 1, {I32, I32, I32}, {I32}},
	{HTTP, "send-http", "http-client", 3, 1, {I32, I32, I32}, {I32}},
	{NULL, NULL, NULL, 0, 0, {0}, {0}},
};

const char *actor_abi_errno_name(int32_t rc)
{
	switch (rc) {
	case ACTOR_ABI_EINVAL: return "invalid argument";
	case ACTOR_ABI_ENOTFOUND: return "not found";
	case ACTOR_ABI_EDENIED: return "denied";
	case ACTOR_ABI_ETIMEDOUT: return "timed out";
	case ACTOR_ABI_ETOOBIG: return "too large";
	case ACTOR_ABI_EFAILED: return "failed";
	case ACTOR_ABI_EBUSY: return "busy";
	default: return rc < 0 ? "unknown error" : "ok";
	}
}

const struct actor_abi_import *actor_abi_import_find(const char *module, size_t module_len,
						     const char *name, size_t name_len)
{
	for (const struct actor_abi_import *i = actor_abi_imports; i->module; i++)
		if (strlen(i->module) == module_len && memcmp(i->module, module, module_len) == 0 &&
		    strlen(i->name) == name_len && memcmp(i->name, name, name_len) == 0)
			return i;
	return NULL;
}

void actor_abi_import_type(const struct actor_abi_import *imp, struct wasm_functype *out)
{
	out->nparams = imp->nparams;
	out->params = imp->params;
	out->nresults = imp->nresults;
	out->results = imp->results;
}

static int in_memory(struct wasm_memory *mem, uint32_t ptr, uint32_t len)
{
	return (uint64_t)ptr + len <= wasm_memory_size(mem);
}

enum err_code actor_abi_result_read(struct wasm_memory *mem, uint32_t addr,
				    struct actor_abi_result *out, struct err *err)
{
	uint8_t rec[ACTOR_ABI_RESULT_BYTES];
	if (wasm_memory_read(mem, addr, rec, sizeof rec, err))
		return err_set(err, ERR_INVALID, "invalid_result: the result record at %u is out "
			       "of bounds", addr);
	uint32_t v[5];
	for (int i = 0; i < 5; i++)
		v[i] = (uint32_t)rec[4 * i] | (uint32_t)rec[4 * i + 1] << 8 |
		       (uint32_t)rec[4 * i + 2] << 16 | (uint32_t)rec[4 * i + 3] << 24;
	*out = (struct actor_abi_result){v[0], v[1], v[2], v[3], v[4]};
	if (out->status > 1)
		return err_set(err, ERR_INVALID, "invalid_result: status %u is not 0 or 1",
			       out->status);
	if (!in_memory(mem, out->out_ptr, out->out_len))
		return err_set(err, ERR_INVALID, "invalid_result: the output (%u, %u) is out of "
			       "bounds", out->out_ptr, out->out_len);
	if (out->status == 0 && !in_memory(mem, out->state_ptr, out->state_len))
		return err_set(err, ERR_INVALID, "invalid_result: the state (%u, %u) is out of "
			       "bounds", out->state_ptr, out->state_len);
	return ERR_OK;
}
