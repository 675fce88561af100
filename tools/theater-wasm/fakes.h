/* fakes.h - host functions of the actor ABI for running an actor offline.
 *
 * Every import of the ABI (src/actor_abi.h) is answered by a small, predictable
 * fake, so that an actor's own tests need no server:
 *   runtime        log is recorded (and printed by the harness), self-id is a
 *                  fixed id, shutdown is recorded;
 *   message-server send is recorded; request answers the next --answer, in
 *                  order, or -6 (failed) when none is left;
 *   timing         a fake clock: now answers it, sleep advances it;
 *   random         a deterministic generator seeded with --seed;
 *   store          an in-memory content store (SHA-256 hashes, labels);
 *   supervisor     spawn records a child with a generated id; list, stop,
 *                  restart and get-child-state act on those records;
 *   http-client    answered from the fixture ("METHOD URL" -> response), else
 *                  -6 (failed).
 * Each host call is recorded with its input and output, as the chain would
 * have it; fakes_take_calls hands them over.
 *
 * Ownership: a struct fakes owns its records and copies of its options; the
 * host functions it links live in the store they were made in, which must be
 * freed first. Threads: one thread, the one that runs the store.
 */
#ifndef THEATER_TOOLS_FAKES_H
#define THEATER_TOOLS_FAKES_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/json.h"
#include "src/wasm/wasm.h"

struct fakes_options {
	uint64_t seed;               /* random */
	int64_t now_ms;              /* the clock's start, unix milliseconds */
	const char *self_id;         /* 36 characters; NULL: a fixed id */
	const char *const *answers;  /* message-server request answers, in order */
	const size_t *answer_lens;
	size_t nanswers;
	const json_t *http;          /* borrowed: {"GET http://h/x": {"status": 200, ...}} */
};

struct fakes;

enum err_code fakes_new(const struct fakes_options *o, struct fakes **out, struct err *err);
void fakes_free(struct fakes *f);

/* Makes the fake for an import of the ABI in s. ERR_NOT_FOUND when the ABI
 * has no such import; ERR_NOMEM. */
enum err_code fakes_link(struct fakes *f, struct wasm_store *s,
			 const struct wasm_import_desc *desc, struct wasm_extern *out,
			 struct err *err);

/* The host calls since the last take, [{"call": "<interface>/<function>",
 * "input": ..., "output": ...}, ...]. New reference (NULL on no memory). */
json_t *fakes_take_calls(struct fakes *f);

/* The fake clock now (unix milliseconds). */
int64_t fakes_now(const struct fakes *f);

/* The reason given to runtime.shutdown, or NULL when it was not called. */
const char *fakes_shutdown_reason(const struct fakes *f);

/* Bytes as JSON: a string when they are UTF-8, else {"hex": "..."}. New ref. */
json_t *fakes_bytes_json(const uint8_t *data, size_t len);

#endif
