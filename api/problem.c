/* problem.c - the one table from error codes to HTTP statuses, and the
 * application/problem+json bodies (RFC 9457) every error leaves through. The
 * `code` member is err_code_name(): stable, documented in openapi.yaml. */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	enum err_code code;
	int status;
	const char *title;
} table[] = {
	{ERR_NOMEM, 500, "Out of memory"},
	{ERR_IO, 500, "Storage error"},
	{ERR_INTERNAL, 500, "Internal error"},
	{ERR_INVALID, 400, "Invalid request"},
	{ERR_BAD_JSON, 400, "Malformed JSON"},
	{ERR_TOO_DEEP, 400, "JSON nested too deeply"},
	{ERR_TOO_LARGE, 413, "Too large"},
	{ERR_BAD_MANIFEST, 422, "Invalid manifest"},
	{ERR_UNKNOWN_KEY, 422, "Unknown key"},
	{ERR_MISSING_FIELD, 422, "Missing field"},
	{ERR_BAD_REFERENCE, 422, "Invalid reference"},
	/* a path outside the package roots, or an address the fetch policy refuses */
	{ERR_FORBIDDEN_PATH, 403, "Reference not allowed"},
	{ERR_NOT_FOUND, 404, "Not found"},
	{ERR_BAD_ID, 400, "Invalid identifier"},
	{ERR_FETCH, 502, "Fetch failed"},
	{ERR_FETCH_STATUS, 502, "Fetch answered an error status"},
	{ERR_REDIRECTS, 502, "Too many redirects"},
	{ERR_TIMEOUT, 504, "Timed out"},
	{ERR_NOT_WASM, 422, "Not a WebAssembly module"},
	{ERR_CORRUPT, 500, "Stored data is damaged"},
	{ERR_CONFLICT, 409, "Conflict"},
	{ERR_NOT_MODIFIED, 304, "Not modified"},
	{ERR_UNAUTHORIZED, 401, "Unauthorized"},
	{ERR_UNSUPPORTED, 415, "Unsupported"},
	{ERR_BUSY, 429, "Too many requests"},
	{ERR_UNAVAILABLE, 503, "Unavailable"},
	{ERR_METHOD, 405, "Method not allowed"},
	{ERR_WASM_MALFORMED, 422, "Malformed WebAssembly module"},
	{ERR_WASM_INVALID, 422, "Invalid WebAssembly module"},
	{ERR_WASM_LINK, 422, "WebAssembly module cannot be linked"},
	{ERR_WASM_TRAP, 502, "Actor trapped"},
	{ERR_WASM_EXHAUSTED, 502, "Actor exhausted its budget"},
	{ERR_TOO_MANY_PARAMS, 400, "Too many query parameters"},
	{ERR_CROSS_SITE, 403, "Cross-site request refused"},
	{ERR_BAD_HOST, 421, "Host not allowed"},
	{ERR_TOO_MANY_ACTORS, 429, "Too many actors"},
	{ERR_INVALID_RESULT, 502, "Actor returned an invalid result"},
	{ERR_ACTOR_ERROR, 422, "Actor refused the request"},
	{ERR_IDEM_REUSED, 422, "Idempotency key reused"},
	{ERR_IDEM_PENDING, 409, "Request still in progress"},
	{ERR_CHAIN_DAMAGED, 409, "Chain damaged"},
	{ERR_PACKAGE_UNAVAILABLE, 422, "Package unavailable"},
	{ERR_EXHAUSTED, 503, "Resources exhausted"},
};

static int find(enum err_code code)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == code)
			return (int)i;
	return -1;
}

int problem_status(enum err_code code)
{
	int i = find(code);
	return i < 0 ? 500 : table[i].status;
}

static const char *title_for(int status, const char *code)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(err_code_name(table[i].code), code) == 0)
			return table[i].title;
	return status >= 500 ? "Server error" : "Request error";
}

/* A copy of text where every byte that is not part of valid UTF-8 is '?', so that
 * a message quoting untrusted bytes still makes a JSON string. */
static char *utf8_clean(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)text[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		int ok = k && i + k <= n;
		for (size_t j = 1; ok && j < k; j++)
			ok = ((unsigned char)text[i + j] & 0xC0) == 0x80;
		if (ok && k == 2 && c < 0xC2)
			ok = 0;         /* overlong */
		if (!ok) {
			out[i++] = '?';
			continue;
		}
		memcpy(out + i, text + i, k);
		i += k;
	}
	out[n] = '\0';
	return out;
}

char *problem_body(int status, const char *code, const char *detail, const char *instance)
{
	char *clean = utf8_clean(detail && *detail ? detail : title_for(status, code));
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title",
			      title_for(status, code), "status", status, "code", code, "detail",
			      clean ? clean : "");
	free(clean);
	char *inst = instance ? utf8_clean(instance) : NULL;
	if (o && inst)
		json_object_set_new(o, "instance", json_string(inst));
	free(inst);
	char *s = o ? json_compact(o) : NULL;
	json_decref(o);
	return s;
}
