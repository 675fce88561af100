/* host_random.c - theater:simple/random: CSPRNG bytes and UUID v4.
 *
 * Bytes come from OpenSSL's CSPRNG (src/util/crypto.h), at most 64 KiB per call
 * (or the handler's `max_bytes`, the reference's setting, when lower; -5
 * beyond). The reference's `seed` is not honoured: bytes an actor may use as
 * keys never come from a seeded generator. The chain records the
 * length and the SHA-256 of the bytes handed out, not the bytes: actors use
 * randomness for keys and nonces, and the chain is readable by anyone who may
 * read the actor's events. The hash still lets an auditor check a claimed value.
 */
#include <stdlib.h>

#include "src/util/crypto.h"
#include "supervisor/host.h"

#define MOD "theater:simple/random"
#define RANDOM_MAX_BYTES (64 * 1024)

static json_t *digest_json(const uint8_t *data, size_t len)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	sha256(data, len, d);
	hex_encode(d, sizeof(d), hex);
	return json_string(hex);
}

/* The handler's max_bytes (the reference's setting) within the 64 KiB cap,
 * and within permission_policy.random's max_bytes when it restricts. */
static uint32_t max_bytes(struct actor *a)
{
	const json_t *cfg = host_handler_config(a, GRANT_RANDOM);
	const json_t *v = cfg ? json_object_get(cfg, "max_bytes") : NULL;
	json_int_t m = json_is_integer(v) ? json_integer_value(v) : RANDOM_MAX_BYTES;
	int64_t pol = host_policy_int(a, GRANT_RANDOM, "max_bytes", -1);
	if (pol >= 0 && pol < m)
		m = pol;
	return m < 0 ? 0 : m > RANDOM_MAX_BYTES ? RANDOM_MAX_BYTES : (uint32_t)m;
}

static enum err_code r_bytes(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_RANDOM, MOD, "random-bytes", results, 0))
		return ERR_OK;
	uint32_t ptr = args[0].of.i32, len = args[1].of.i32;
	uint8_t *buf = NULL;
	int32_t rc;
	if (len > max_bytes(user))
		rc = HOST_ETOOBIG;
	else if (!(buf = malloc(len ? len : 1)))
		rc = HOST_EFAILED;
	else if (random_bytes(buf, len) != ERR_OK)
		rc = HOST_EFAILED;
	else
		rc = host_write(c, ptr, buf, len) ? HOST_EINVAL : (int32_t)len;
	host_set_i32(&results[0], rc);
	json_t *out = json_pack("{s:i}", "result", rc);
	if (rc >= 0 && out)
		json_object_set_new(out, "sha256", digest_json(buf, len));
	host_record(user, MOD, "random-bytes", json_pack("{s:I}", "len", (json_int_t)len), out);
	free(buf);
	return ERR_OK;
}

static enum err_code r_uuid(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_RANDOM, MOD, "generate-uuid", results, 0))
		return ERR_OK;
	char id[UUID_STR_LEN + 1];
	int32_t rc = HOST_EFAILED;
	if (uuid_v4(id) == ERR_OK)
		rc = host_write(c, args[0].of.i32, id, UUID_STR_LEN) ? HOST_EINVAL : UUID_STR_LEN;
	host_set_i32(&results[0], rc);
	host_record(user, MOD, "generate-uuid", NULL,
		    rc >= 0 ? json_pack("{s:i, s:s}", "result", rc, "uuid", id)
			    : json_pack("{s:i}", "result", rc));
	return ERR_OK;
}

const struct host_fn host_random_fns[] = {
	{MOD, "random-bytes", GRANT_RANDOM, 2, 1, {WASM_I32, WASM_I32}, {WASM_I32}, r_bytes},
	{MOD, "generate-uuid", GRANT_RANDOM, 1, 1, {WASM_I32}, {WASM_I32}, r_uuid},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
