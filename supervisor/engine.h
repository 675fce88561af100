/* engine.h - the seam between the supervisor and the WebAssembly engine.
 *
 * The supervisor hands every resolved package to this seam before an actor is
 * `running`. Today it checks that the bytes are a WebAssembly binary module
 * (magic and version) and, through the engine, that the module decodes and
 * validates; compiled modules are cached by the SHA-256 of their bytes so a
 * package spawned twice is decoded and validated once. Running actor code (init,
 * handlers, host functions) plugs in here in a later issue.
 * Threads: thread-safe.
 */
#ifndef THEATER_SUPERVISOR_ENGINE_H
#define THEATER_SUPERVISOR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

struct engine;
struct wasm_module;

enum err_code engine_new(size_t module_cache_entries, struct engine **out, struct err *err);
void engine_free(struct engine *e);
/* The cached module of that digest (a new reference), or NULL: lets recovery and
 * restarts skip reading and hashing the package again. */
struct wasm_module *engine_cached(struct engine *e, const char sha256_hex[65]);
/* Hands out a reference to the compiled module for the package (release with
 * wasm_module_free), compiling it on a cache miss. ERR_NOT_WASM when the bytes
 * are not a WebAssembly binary module (magic/version), or the engine's
 * ERR_WASM_MALFORMED / ERR_WASM_INVALID with its message. */
enum err_code engine_load(struct engine *e, const uint8_t *data, size_t len,
			  const char sha256_hex[65], struct wasm_module **out, struct err *err);

#endif
