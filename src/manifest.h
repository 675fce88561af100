/* manifest.h - the actor manifest model, read from JSON or TOML.
 *
 * Both formats describe one model: a TOML manifest is parsed (src/toml),
 * checked against the same schema with line:col positions, and its JSON form
 * (toml_to_json) becomes ->json, so a manifest given in TOML is stored and
 * shown as JSON. docs/manifests.md describes every field.
 *
 * Fields (the reference's vocabulary plus our own limits and restart policy):
 *   name (required, 1..128 printable characters), version, package (required;
 *   the legacy key "component" is accepted as an alias), description,
 *   long_description, initial_state (a string is JSON text, as in the
 *   reference, and is kept parsed; any other value as it is; null means absent),
 *   static_package (bool, default false), save_chain (bool, default true),
 *   handler (array of tables, each with a string "type" and that type's
 *   flattened settings), permission_policy (table: capability -> {type =
 *   "inherit" | "disallow" | "restrict", config}), restart (table), limits
 *   (table).
 * Checking is strict and collects EVERY problem (struct manifest_problems):
 * unknown keys anywhere in the schema (ERR_UNKNOWN_KEY, naming the key),
 * wrong types and values (ERR_BAD_MANIFEST, naming the field and the type it
 * must have), absent required fields (ERR_MISSING_FIELD), handler types the
 * reference does not know (ERR_BAD_MANIFEST, "unknown_handler") and, unless
 * allowed, types the reference knows but this server does not implement yet
 * (ERR_BAD_MANIFEST, "unsupported_handler"). The error returned is the first
 * problem (TOML: in document order, prefixed "<name>:<line>:<col>: ").
 *
 * Ownership: a struct manifest owns everything it points to (json_t fields
 * hold one reference each); manifest_free releases it all. Problems are owned
 * by the caller's struct manifest_problems (manifest_problems_release).
 * Threads: every function is reentrant; a manifest is immutable after
 * construction and may be read from any thread; its json_t values must not be
 * modified.
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
	int initial_state;                    /* state = "initial": restarts run init
					       * afresh; default "last": keep the state */
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

enum manifest_format {
	MANIFEST_FORMAT_AUTO = 0,   /* manifest_format_detect */
	MANIFEST_FORMAT_JSON,
	MANIFEST_FORMAT_TOML,
};

struct manifest_options {
	enum manifest_format format;   /* AUTO: detect from name and content */
	const char *name;              /* the manifest's reference: in TOML messages
					* ("<name>:<line>:<col>: ...") and for AUTO;
					* NULL: "manifest" */
	int allow_unsupported;         /* accept handler types that this server does
					* not implement yet (validation, tools) */
};

/* At most this many problems are kept; more are only counted. */
#define MANIFEST_MAX_PROBLEMS 100

/* One problem. code is one of (static strings): "unknown_key", "missing_field",
 * "wrong_type", "invalid_value", "unknown_handler", "unsupported_handler",
 * "invalid_toml", "malformed_json", "too_deep", "too_large". */
struct manifest_problem {
	enum err_code err;     /* what the problem is as an error code */
	const char *code;
	char *path;            /* "handler[1].tpye"; "" for the whole manifest */
	unsigned line, col;    /* 1-based, of the value (a table: its header or
				* key); 0 when unknown (JSON has no positions) */
	char *message;         /* without the position prefix */
};

struct manifest_problems {
	struct manifest_problem *items;
	size_t n;
	size_t more;           /* found beyond MANIFEST_MAX_PROBLEMS, not kept */
};

/* Frees the items and zeroes the struct. Accepts NULL. */
void manifest_problems_release(struct manifest_problems *p);
/* [{"code", "path", "line", "col", "message"}, ...] (line and col only when
 * known). New reference; NULL on no memory. */
json_t *manifest_problems_json(const struct manifest_problems *p);

/* Parses and checks len bytes (JSON or TOML, see opt; opt may be NULL for
 * strict AUTO): at most MANIFEST_MAX_BYTES (ERR_TOO_LARGE) and
 * MANIFEST_MAX_DEPTH levels (ERR_TOO_DEEP); bad syntax is ERR_BAD_JSON or
 * ERR_INVALID (TOML, with the position). Every problem found goes to problems
 * (may be NULL; the caller releases it, also on failure); the first decides
 * the code and err's message. When out is not NULL and there is no problem,
 * *out is the manifest (else NULL). */
enum err_code manifest_load(const char *data, size_t len, const struct manifest_options *opt,
			    struct manifest **out, struct manifest_problems *problems,
			    struct err *err);

/* As manifest_load for a JSON value already parsed (borrowed; the manifest
 * keeps its own copy in ->json). opt->format is ignored. */
enum err_code manifest_check_json(const json_t *obj, const struct manifest_options *opt,
				  struct manifest **out, struct manifest_problems *problems,
				  struct err *err);

/* Strict (unsupported handlers refused), first problem only. On failure *out
 * is NULL. */
enum err_code manifest_from_json(const json_t *obj, struct manifest **out, struct err *err);
enum err_code manifest_parse_json(const char *data, size_t len, struct manifest **out,
				  struct err *err);
enum err_code manifest_parse_toml(const char *data, size_t len, const char *name,
				  struct manifest **out, struct err *err);

/* TOML or JSON: by the reference's extension (".toml" / ".json", ignoring a
 * URL's query and fragment), else JSON when the first byte that is not white
 * space (or a UTF-8 byte order mark) is '{', else TOML. ref and data may be
 * NULL. */
enum manifest_format manifest_format_detect(const char *ref, const char *data, size_t len);

/* Handler types. Known: every type the reference defines (message-server,
 * runtime, supervisor, store, timing, random, http-client, environment,
 * filesystem, process, http-framework, replay, tcp, wasi-http, terminal, rpc,
 * timer, loop, podman; one table in manifest_check.c). Supported: those this server implements (or will run in
 * the actor runtime): message-server, runtime, supervisor, store, timing,
 * random, http-client, environment. */
int manifest_handler_known(const char *type);
int manifest_handler_supported(const char *type);

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
