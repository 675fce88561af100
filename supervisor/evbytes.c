/* evbytes.c - bytes inside chain events, in full; see evbytes.h. */
#include "supervisor/evbytes.h"

#include <stdlib.h>
#include <string.h>

#include "src/util/crypto.h"
#include "supervisor/host.h"

json_t *evbytes_json(struct store *st, const uint8_t *data, size_t len, struct err *err)
{
	if (!data || len <= EVBYTES_INLINE_MAX)
		return host_bytes_json(data, len);
	char hex[65], ref[160];
	json_t *o = NULL;
	if (st && store_put(st, EVBYTES_STORE_ID, data, len, hex, err) == ERR_OK) {
		snprintf(ref, sizeof(ref), "store://%s/hash/%s", EVBYTES_STORE_ID, hex);
		o = json_pack("{s:s, s:I, s:s}", "sha256", hex, "size", (json_int_t)len, "ref", ref);
	} else {
		if (!st)
			err_set(err, ERR_UNAVAILABLE, "no content store for %zu bytes", len);
		o = host_bytes_json(data, len);
	}
	return o;
}

static enum err_code dup_bytes(const void *p, size_t n, uint8_t **out, size_t *len_out,
			       struct err *err)
{
	uint8_t *b = malloc(n + 1);
	if (!b)
		return err_set(err, ERR_NOMEM, "cannot copy %zu bytes", n);
	if (n)
		memcpy(b, p, n);
	b[n] = 0;
	*out = b;
	*len_out = n;
	return ERR_OK;
}

enum err_code evbytes_load(struct store *st, const json_t *j, uint8_t **data_out,
			   size_t *len_out, struct err *err)
{
	*data_out = NULL;
	*len_out = 0;
	if (!j || json_is_null(j))
		return ERR_OK;
	if (json_is_string(j))
		return dup_bytes(json_string_value(j), json_string_length(j), data_out, len_out,
				 err);
	if (!json_is_object(j))
		return err_set(err, ERR_INVALID, "event bytes are neither text nor an object");
	const char *b64 = json_string_value(json_object_get(j, "b64"));
	if (b64) {
		*data_out = base64_decode(b64, strlen(b64), len_out);
		return *data_out ? ERR_OK : err_set(err, ERR_INVALID, "event bytes: bad base64");
	}
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	if (!sha || !sha256_hex_valid(sha))
		return err_set(err, ERR_INVALID, "event bytes: no text, base64 or hash");
	if (!json_object_get(j, "ref"))
		return err_set(err, ERR_NOT_FOUND, "only the hash of %s was recorded", sha);
	if (!st)
		return err_set(err, ERR_UNAVAILABLE, "no content store to read %s", sha);
	return store_get(st, EVBYTES_STORE_ID, sha, 0, data_out, len_out, err);
}
