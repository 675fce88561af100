/* manifest.h - the actor manifest model (JSON now; TOML maps onto the same
 * JSON object later, so both formats share manifest_from_json).
 *
 * Fields (the reference's vocabulary plus our own limits and restart policy):
 *   name (required, 1..128 printable characters), version, package (required;
 *   the legacy key "component" is accepted as an alias), description,
 *   long_description, initial_state (any JSON value; null means absent),
 *   static_package (bool, default false), save_chain (bool, default true),
 *   handler (array of objects, each with a string "type"; the other keys are
 *   the handler's config), permission_policy (object), restart (object),
 *   limits (object).
 * Unknown keys fail with ERR_UNKNOWN_KEY naming the key, wrong types with
 * ERR_BAD_MANIFEST naming the field and the type it must have, absent
 * required fields with ERR_MISSING_FIELD.
 *
 * Ownership: a struct manifest owns everything it points to (json_t fields
 * hold one reference each); manifest_free releases it all.
 * Threads: a manifest is immutable after construction and may be read from
 * any thread; the json_t values must not be modified.
 */
#ifndef THEATER_MANIFEST_H
#define THEATER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"
#include "src/util/json.h"

#define MANIFEST_NAME_MAX 128
#define MANIFEST_STRING_MAX 4096        /* package, version */
#define MANIFEST_TEXT_MAX (64 * 1024)   /* description, long_description */
#define MANIFEST_MAX_HANDLERS 64
#define MANIFEST_MAX_BYTES ((size_t)4 << 20)
#define MANIFEST_MAX_DEPTH 32

struct manifest_handler {
	char *type;
	json_t *config;    /* an object with the entry's other keys (new ref) */
};

enum manifest_restart_policy {
	MANIFEST_RESTART_NEVER = 0,
	MANIFEST_RESTART_ON_FAILURE,
	MANIFEST_RESTART_ALWAYS,
};

/* Defaults apply to keys left out (and to the whole table when absent). */
#define MANIFEST_RESTART_DEFAULT_MAX 5
#define MANIFEST_RESTART_DEFAULT_WINDOW_S 60
#define MANIFEST_RESTART_DEFAULT_BACKOFF_MS 100
#define MANIFEST_RESTART_DEFAULT_BACKOFF_MAX_MS 30000

struct manifest_restart {
	int present;                          /* the manifest had a restart table */
	enum manifest_restart_policy policy;  /* "never" | "on-failure" | "always" */
	int64_t max_restarts;                 /* >= 0 */
	int64_t window_s;                     /* >= 1 */
	int64_t backoff_ms;                   /* >= 0 */
	int64_t backoff_max_ms;               /* >= backoff_ms */
};

/* 0 means "not given": the server's default applies. */
struct manifest_limits {
	uint64_t fuel;
	uint64_t memory_bytes;
	uint64_t call_timeout_ms;
};

struct manifest {
	char *name, *version, *package, *description;   /* version/description may be NULL */
	char *long_description;                          /* may be NULL */
	json_t *initial_state;       /* may be NULL */
	int static_package;          /* default 0 */
	int save_chain;              /* default 1 */
	struct manifest_handler *handlers;
	size_t nhandlers;
	json_t *permission_policy;   /* may be NULL */
	struct manifest_restart restart;
	struct manifest_limits limits;
	json_t *json;                /* the whole manifest as given (new ref) */
};

/* Builds a manifest from a JSON object (borrowed; the manifest keeps its own
 * reference in ->json). On failure *out is NULL. */
enum err_code manifest_from_json(const json_t *obj, struct manifest **out, struct err *err);

/* Parses len bytes as a JSON manifest: at most MANIFEST_MAX_BYTES
 * (ERR_TOO_LARGE) and MANIFEST_MAX_DEPTH levels (ERR_TOO_DEEP); bad syntax is
 * ERR_BAD_JSON; then as manifest_from_json. */
enum err_code manifest_parse_json(const char *data, size_t len, struct manifest **out,
				  struct err *err);

/* Accepts NULL. */
void manifest_free(struct manifest *m);

/* The policy's manifest spelling ("on-failure"). */
const char *manifest_restart_policy_name(enum manifest_restart_policy p);

/* merge_initial_states as in the reference (a shallow merge):
 *  - spawn_state absent (NULL or JSON null): a copy of manifest_state (or NULL);
 *  - manifest_state absent: a copy of spawn_state;
 *  - both objects: manifest_state's keys, then spawn_state's keys on top (the
 *    spawn-time value wins per top-level key; nested objects are replaced,
 *    not merged);
 *  - otherwise (either is not an object): a copy of spawn_state.
 * Returns a new reference (a deep copy: the caller may modify it) or NULL
 * when both are absent or memory runs out. Arguments are borrowed. */
json_t *manifest_merge_initial_states(const json_t *manifest_state, const json_t *spawn_state);

#endif
