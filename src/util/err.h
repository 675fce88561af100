/* err.h - the one project-wide error vocabulary.
 *
 * Every fallible function returns an enum err_code (0 is success) and takes an
 * optional `struct err *err` last, into which it writes a lowercase message that
 * says what failed and why ("cannot open chain '/x': permission denied").
 * api/ maps each code to an HTTP status and a stable problem `code` string in one
 * table (api/problem.c); nobody else turns codes into statuses.
 *
 * Threads: all functions are thread-safe (they touch only their arguments).
 */
#ifndef THEATER_UTIL_ERR_H
#define THEATER_UTIL_ERR_H

#include <stddef.h>

enum err_code {
	ERR_OK = 0,
	ERR_NOMEM,            /* allocation failed */
	ERR_IO,               /* file system or OS error */
	ERR_INTERNAL,         /* our own bug surfaced at run time */
	ERR_INVALID,          /* generic bad input */
	ERR_BAD_JSON,         /* body is not valid JSON */
	ERR_TOO_DEEP,         /* nesting deeper than the limit */
	ERR_TOO_LARGE,        /* body, download, module or value over its limit */
	ERR_BAD_MANIFEST,     /* manifest has a wrong type or value */
	ERR_UNKNOWN_KEY,      /* manifest or body has a key we do not know */
	ERR_MISSING_FIELD,    /* a required field is absent */
	ERR_BAD_REFERENCE,    /* a package/manifest reference is malformed */
	ERR_FORBIDDEN_PATH,   /* file reference outside the package roots */
	ERR_NOT_FOUND,        /* actor, event, file, store entry does not exist */
	ERR_BAD_ID,           /* malformed actor id, store id, label or hash */
	ERR_FETCH,            /* http(s) fetch failed (connect, DNS, TLS) */
	ERR_FETCH_STATUS,     /* http(s) fetch answered a non-2xx status */
	ERR_REDIRECTS,        /* too many redirects */
	ERR_TIMEOUT,          /* an operation ran out of time */
	ERR_NOT_WASM,         /* package bytes are not a WebAssembly binary */
	ERR_CORRUPT,          /* stored data fails verification */
	ERR_CONFLICT,         /* operation not allowed in the current state */
	ERR_NOT_MODIFIED,     /* nothing to do: already in the requested state */
	ERR_UNAUTHORIZED,     /* missing or wrong bearer token */
	ERR_UNSUPPORTED,      /* valid request for something not implemented */
	ERR_BUSY,             /* a bounded queue is full */
	ERR_UNAVAILABLE,      /* server starting or draining */
	ERR_METHOD,           /* method not allowed on this route */
	ERR_WASM_MALFORMED,   /* module bytes do not decode */
	ERR_WASM_INVALID,     /* module decodes but does not validate */
	ERR_WASM_LINK,        /* imports cannot be satisfied */
	ERR_WASM_TRAP,        /* execution trapped; message is the spec's trap text */
	ERR_WASM_EXHAUSTED,   /* fuel, deadline, call depth or stack exhausted */
	ERR_ACTOR_ERROR,      /* the actor's handler returned an error */
	ERR_TOO_MANY_PARAMS,  /* more query parameters than the server takes */
	ERR_CROSS_SITE,       /* a browser request from another site (no token set) */
	ERR_BAD_HOST,         /* a Host header that is not this server's (DNS rebinding) */
	ERR_TOO_MANY_ACTORS,  /* the server-wide or per-parent actor limit is reached */
	ERR_INVALID_RESULT,   /* an actor returned a result the ABI cannot read */
	ERR_IDEM_REUSED,      /* an Idempotency-Key sent again with another request */
	ERR_IDEM_PENDING,     /* the request with this Idempotency-Key is still running */
	ERR_WASM_SUSPEND,     /* a wasm call is parked, to be resumed (never an HTTP answer) */
	ERR_CHAIN_DAMAGED,    /* a run's chain is damaged: it cannot be read whole */
	ERR_PACKAGE_UNAVAILABLE, /* a run's package bytes can no longer be found */
	ERR_EXHAUSTED,        /* descriptors or memory nearly run out: new work refused */
	ERR__COUNT
};

#define ERR_MSG_MAX 512

struct err {
	enum err_code code;
	char msg[ERR_MSG_MAX];
};

/* Records code and a printf-style message in err (when err is not NULL) and
 * returns code, so callers can write `return err_set(err, ERR_IO, "...")`. */
enum err_code err_set(struct err *err, enum err_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set, appending ": <strerror(errnum)>". */
enum err_code err_errno(struct err *err, enum err_code code, int errnum,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Prefixes the existing message with "<prefix>: " (printf-style). */
void err_prefix(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void err_clear(struct err *err);

/* A short stable snake_case name for the code ("not_found"). Never NULL. */
const char *err_code_name(enum err_code code);

#endif
