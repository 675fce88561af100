/* evbytes.h - private to the supervisor layer: bytes inside chain events, in full.
 *
 * host_bytes_json shows bytes for people (text, base64, or only a hash when
 * large). What recovery and replay must feed back into an actor (accepted
 * messages, host call results) has to be kept whole: evbytes_json writes bytes
 * up to EVBYTES_INLINE_MAX inline, the same way, and larger ones into the content
 * store (store id EVBYTES_STORE_ID) with a reference, so nothing accepted exists
 * only as a hash. evbytes_load reads either form back.
 *
 * Threads: any; the store is thread-safe.
 */
#ifndef THEATER_SUPERVISOR_EVBYTES_H
#define THEATER_SUPERVISOR_EVBYTES_H

#include <stddef.h>
#include <stdint.h>

#include "src/store.h"
#include "src/util/err.h"
#include "src/util/json.h"

#define EVBYTES_INLINE_MAX 4096
#define EVBYTES_STORE_ID "theater-data"

/* New JSON: a string (UTF-8 text), {"b64": ...}, or, above the inline limit,
 * {"sha256": ..., "size": n, "ref": "store://theater-data/hash/<sha256>"}. When
 * the store write fails, the ref is missing (the bytes are then lost to
 * recovery; the caller decides whether that is acceptable) and *err says why. */
json_t *evbytes_json(struct store *st, const uint8_t *data, size_t len, struct err *err);
/* Reads bytes written by evbytes_json (or host_bytes_json when small) into a
 * malloc'd buffer (NUL after *len_out). JSON null reads as NULL with length 0.
 * ERR_INVALID for another shape, ERR_NOT_FOUND when only a hash was kept,
 * store errors as they come. */
enum err_code evbytes_load(struct store *st, const json_t *j, uint8_t **data_out,
			   size_t *len_out, struct err *err);

#endif
