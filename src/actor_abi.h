/* actor_abi.h - the actor ABI (version 1, docs/actor-abi.md) as data: the
 * exports an actor provides, the result record its handlers return, the error
 * results of host functions, and the signature of every host import.
 *
 * It is the ABI knowledge that does not need a running server, so that
 * embedders other than the supervisor (tools/theater-wasm's offline harness)
 * speak exactly the same ABI; test_actor_abi checks that the supervisor's host
 * tables (supervisor/host_*.c) have the same imports with the same types.
 *
 * Threads: everything here is constant data or reentrant.
 */
#ifndef THEATER_ACTOR_ABI_H
#define THEATER_ACTOR_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/wasm/wasm.h"

#define ACTOR_ABI_VERSION 1

/* Exports. */
#define ACTOR_ABI_EXPORT_MEMORY "memory"
#define ACTOR_ABI_EXPORT_VERSION "theater_abi_version"
#define ACTOR_ABI_EXPORT_ALLOC "theater_alloc"
#define ACTOR_ABI_EXPORT_RESET "theater_reset_heap"
#define ACTOR_ABI_EXPORT_INIT "init"
#define ACTOR_ABI_EXPORT_SEND "handle-send"
#define ACTOR_ABI_EXPORT_REQUEST "handle-request"
#define ACTOR_ABI_EXPORT_CHILD_EXIT "handle-child-exit"
#define ACTOR_ABI_EXPORT_CHILD_ERROR "handle-child-error"
#define ACTOR_ABI_EXPORT_TIMER "handle-timer"

/* Negative results of host functions. */
enum actor_abi_errno {
	ACTOR_ABI_EINVAL = -1, ACTOR_ABI_ENOTFOUND = -2, ACTOR_ABI_EDENIED = -3,
	ACTOR_ABI_ETIMEDOUT = -4, ACTOR_ABI_ETOOBIG = -5, ACTOR_ABI_EFAILED = -6,
	ACTOR_ABI_EBUSY = -7,
};

/* "invalid argument", ...; "ok" for 0 and up, "unknown error" otherwise. */
const char *actor_abi_errno_name(int32_t rc);

#define ACTOR_ABI_MAX_PARAMS 8

/* One host import: the interface (import module), the function, the
 * [[handler]] type that grants it, and its type. */
struct actor_abi_import {
	const char *module;
	const char *name;
	const char *handler;
	uint8_t nparams, nresults;
	enum wasm_valtype params[ACTOR_ABI_MAX_PARAMS];
	enum wasm_valtype results[1];
};

/* Every host import of ABI version 1, ending with a NULL module. */
extern const struct actor_abi_import actor_abi_imports[];

/* The import with this module and name; NULL if the ABI has none. */
const struct actor_abi_import *actor_abi_import_find(const char *module, size_t module_len,
						     const char *name, size_t name_len);
/* Its type, borrowed from the table (for wasm_func_new_host). */
void actor_abi_import_type(const struct actor_abi_import *imp, struct wasm_functype *out);

/* The record every handler returns: five little-endian u32. */
#define ACTOR_ABI_RESULT_BYTES 20
struct actor_abi_result {
	uint32_t status;              /* 0 ok, 1 error (the state is unchanged) */
	uint32_t state_ptr, state_len;
	uint32_t out_ptr, out_len;    /* the response, or the error message */
};

/* Reads the record at addr and checks it: status 0 or 1, and both (ptr, len)
 * pairs inside the memory (the state pair only for status 0). ERR_INVALID
 * with a message starting "invalid_result: " otherwise. */
enum err_code actor_abi_result_read(struct wasm_memory *mem, uint32_t addr,
				    struct actor_abi_result *out, struct err *err);

#endif
