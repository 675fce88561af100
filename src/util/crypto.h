/* crypto.h - the one wrapper around OpenSSL: SHA-256, CSPRNG bytes, UUID v4,
 * lowercase hex. Threads: all functions are thread-safe. */
#ifndef THEATER_UTIL_CRYPTO_H
#define THEATER_UTIL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64
#define UUID_STR_LEN 36

/* Incremental SHA-256. The context is opaque storage big enough for OpenSSL's. */
struct sha256_ctx {
	void *md;      /* EVP_MD_CTX *, owned */
};
enum err_code sha256_begin(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_end(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN]);  /* frees ctx */

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* HMAC-SHA256 (RFC 2104) of data under key. */
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		 uint8_t out[SHA256_LEN]);
/* Zeroes len bytes in a way the compiler may not remove (for secrets). */
void secure_zero(void *p, size_t len);

/* Writes 2*len lowercase hex digits and a NUL into out (size >= 2*len+1). */
void hex_encode(const uint8_t *data, size_t len, char *out);
/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);
/* Decodes exactly 2*len hex digits (either case); ERR_INVALID otherwise. */
enum err_code hex_decode(const char *hex, uint8_t *out, size_t len);
/* True if s is exactly 64 lowercase hex digits. */
int sha256_hex_valid(const char *s);

/* Standard base64 with padding; malloc'd NUL-terminated text or NULL. */
char *base64_encode(const void *data, size_t len);
/* Decodes standard padded base64 (length a multiple of 4); malloc'd bytes with a
 * NUL after *len_out, or NULL when the text is not base64 or memory ran out. */
uint8_t *base64_decode(const char *text, size_t text_len, size_t *len_out);

enum err_code random_bytes(void *out, size_t len);
/* Writes a lowercase hyphenated UUID v4 (36 chars + NUL). */
enum err_code uuid_v4(char out[UUID_STR_LEN + 1]);
/* True if s is a lowercase hyphenated UUID (any version). */
int uuid_valid(const char *s);

#endif
