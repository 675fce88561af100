/* store.h - the content-addressed store under <root> (= $THEATER_HOME/store).
 *
 * Layout (DESIGN.md §3): <root>/<id>/data/<sha256hex> holds the bytes whose
 * SHA-256 is the file name; <root>/<id>/labels/<label> holds "<sha256hex>\n".
 * Every write is atomic (temp file, fsync, rename, directory fsync), so a crash
 * leaves the old or the new version, never a mix.
 *
 * Safety: ids, labels and hashes are checked before any path is built, and all
 * access goes through openat() below a directory fd of <root> with O_NOFOLLOW,
 * so nothing outside <root> is ever opened: a symlink or other non-regular
 * entry planted in the store is refused (ERR_FORBIDDEN_PATH).
 *
 * Ownership: store_open returns a store freed by store_close; store_get hands
 * back malloc'd bytes the caller frees.
 * Threads: every function is safe from any thread (no shared mutable state
 * beyond the file system and a small memo of entries seen, under a mutex;
 * concurrent puts of the same content are idempotent).
 * Errors: ERR_BAD_ID (id, label or hash malformed), ERR_NOT_FOUND,
 * ERR_TOO_LARGE, ERR_CORRUPT (content fails its hash, label file unreadable),
 * ERR_FORBIDDEN_PATH, ERR_IO, ERR_NOMEM.
 */
#ifndef THEATER_STORE_H
#define THEATER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

struct store;

/* Opens <root>, creating it (mkdir -p, 0755) when absent. */
enum err_code store_open(const char *root, struct store **out, struct err *err);
void store_close(struct store *s);   /* accepts NULL */

/* [A-Za-z0-9_.-]{1,64}, no leading '.' (so never "." or ".."). */
int store_id_valid(const char *id);
/* The same rule, 1..128 characters. */
int store_label_valid(const char *label);

/* Writes data to <root>/<id>/data/<sha256hex> atomically, creating the
 * directories as needed; a no-op when that entry already exists with the same
 * size. hash_hex_out: 64 lowercase hex digits + NUL. */
enum err_code store_put(struct store *s, const char *id, const void *data, size_t len,
			char hash_hex_out[65], struct err *err);

/* Reads the entry; ERR_NOT_FOUND when absent; ERR_TOO_LARGE when bigger than
 * max_len (0 means no limit) before anything is allocated; verifies the SHA-256
 * while reading (ERR_CORRUPT on mismatch). *data_out is malloc'd with a NUL
 * after *len_out bytes. hash_hex must be 64 lowercase hex digits. */
enum err_code store_get(struct store *s, const char *id, const char *hash_hex, size_t max_len,
			uint8_t **data_out, size_t *len_out, struct err *err);

/* 1 when the entry exists as a regular file; 0 otherwise (also for bad input).
 * Nothing removes an entry, so one this store saw (put, or found by store_has)
 * is answered from memory (the last seen of each of 64 slots). */
int store_has(struct store *s, const char *id, const char *hash_hex);

/* Points <root>/<id>/labels/<label> at hash_hex (which must exist in the store:
 * ERR_NOT_FOUND), atomically replacing an earlier value. */
enum err_code store_label_set(struct store *s, const char *id, const char *label,
			      const char *hash_hex, struct err *err);
/* Reads a label; ERR_NOT_FOUND when absent, ERR_CORRUPT when its content is not
 * one hash. */
enum err_code store_label_get(struct store *s, const char *id, const char *label,
			      char hash_hex_out[65], struct err *err);

/* Listings, in directory order (callers sort). Strings are borrowed for the
 * call. store_list: every store id. store_objects: every object of a store
 * with its size. store_labels: every label with the hash it holds (labels that
 * do not hold one are skipped). ERR_BAD_ID, ERR_NOT_FOUND (no such store; a
 * store with no objects or labels yet lists nothing), ERR_IO. Any thread. */
enum err_code store_list(struct store *s, void (*cb)(void *user, const char *id), void *user,
			 struct err *err);
enum err_code store_objects(struct store *s, const char *id,
			    void (*cb)(void *user, const char *hash_hex, uint64_t size), void *user,
			    struct err *err);
enum err_code store_labels(struct store *s, const char *id,
			   void (*cb)(void *user, const char *label, const char *hash_hex),
			   void *user, struct err *err);

#endif
