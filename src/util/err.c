/* err.c - error codes and messages; see err.h. */
#include "src/util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[ERR__COUNT] = {
	[ERR_OK] = "ok", [ERR_NOMEM] = "out_of_memory", [ERR_IO] = "io_error",
	[ERR_INTERNAL] = "internal_error", [ERR_INVALID] = "invalid_request",
	[ERR_BAD_JSON] = "malformed_json", [ERR_TOO_DEEP] = "too_deep",
	[ERR_TOO_LARGE] = "too_large", [ERR_BAD_MANIFEST] = "invalid_manifest",
	[ERR_UNKNOWN_KEY] = "unknown_key", [ERR_MISSING_FIELD] = "missing_field",
	[ERR_BAD_REFERENCE] = "invalid_reference", [ERR_FORBIDDEN_PATH] = "path_forbidden",
	[ERR_NOT_FOUND] = "not_found", [ERR_BAD_ID] = "invalid_id",
	[ERR_FETCH] = "fetch_failed", [ERR_FETCH_STATUS] = "fetch_status",
	[ERR_REDIRECTS] = "too_many_redirects", [ERR_TIMEOUT] = "timeout",
	[ERR_NOT_WASM] = "not_wasm", [ERR_CORRUPT] = "corrupt",
	[ERR_CONFLICT] = "conflict", [ERR_NOT_MODIFIED] = "not_modified",
	[ERR_UNAUTHORIZED] = "unauthorized", [ERR_UNSUPPORTED] = "unsupported",
	[ERR_BUSY] = "busy", [ERR_UNAVAILABLE] = "unavailable",
	[ERR_METHOD] = "method_not_allowed", [ERR_WASM_MALFORMED] = "wasm_malformed",
	[ERR_WASM_INVALID] = "wasm_invalid", [ERR_WASM_LINK] = "wasm_unlinkable",
	[ERR_WASM_TRAP] = "wasm_trap", [ERR_WASM_EXHAUSTED] = "wasm_exhausted",
	[ERR_ACTOR_ERROR] = "actor_error",
	[ERR_TOO_MANY_PARAMS] = "too_many_parameters", [ERR_CROSS_SITE] = "cross_site_request",
	[ERR_BAD_HOST] = "host_not_allowed", [ERR_TOO_MANY_ACTORS] = "too_many_actors",
	[ERR_INVALID_RESULT] = "invalid_result",
	[ERR_IDEM_REUSED] = "idempotency_key_reused", [ERR_IDEM_PENDING] = "idempotency_in_progress",
	[ERR_WASM_SUSPEND] = "wasm_suspended",
	[ERR_CHAIN_DAMAGED] = "chain_damaged", [ERR_PACKAGE_UNAVAILABLE] = "package_unavailable",
	[ERR_EXHAUSTED] = "resource_exhausted",
};

const char *err_code_name(enum err_code code)
{
	if ((unsigned)code >= ERR__COUNT || !names[code])
		return "unknown_error";
	return names[code];
}

static void vset(struct err *err, enum err_code code, const char *fmt, va_list ap)
{
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

enum err_code err_set(struct err *err, enum err_code code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vset(err, code, fmt, ap);
		va_end(ap);
	}
	return code;
}

enum err_code err_errno(struct err *err, enum err_code code, int errnum, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vset(err, code, fmt, ap);
		va_end(ap);
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
	}
	return code;
}

void err_prefix(struct err *err, const char *fmt, ...)
{
	if (!err)
		return;
	char prefix[ERR_MSG_MAX], old[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation of a long message is intended, so no "%s: %s" format. */
	size_t n = strlen(prefix);
	if (n > sizeof(err->msg) - 3)
		n = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	size_t rest = sizeof(err->msg) - n - 3;
	size_t olen = strnlen(old, rest);
	memcpy(err->msg + n + 2, old, olen);
	err->msg[n + 2 + olen] = '\0';
}

void err_clear(struct err *err)
{
	if (err) {
		err->code = ERR_OK;
		err->msg[0] = '\0';
	}
}
