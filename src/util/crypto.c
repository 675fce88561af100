/* crypto.c - OpenSSL wrapper: hashing, randomness, ids; see crypto.h. */
#include "src/util/crypto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

enum err_code sha256_begin(struct sha256_ctx *ctx)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return ERR_NOMEM;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return ERR_INTERNAL;
	}
	ctx->md = md;
	return ERR_OK;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(ctx->md, data, len);
}

void sha256_end(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN])
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx->md, out, &n);
	EVP_MD_CTX_free(ctx->md);
	ctx->md = NULL;
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	unsigned int n = 0;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		 uint8_t out[SHA256_LEN])
{
	unsigned int n = 0;
	HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

void secure_zero(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

void hex_encode(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum err_code hex_decode(const char *hex, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit((unsigned char)hex[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * len] == '\0' ? ERR_OK : ERR_INVALID;
}

int sha256_hex_valid(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == SHA256_HEX_LEN;
}

char *base64_encode(const void *data, size_t len)
{
	if (len > (size_t)1 << 30)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

uint8_t *base64_decode(const char *text, size_t text_len, size_t *len_out)
{
	if (text_len % 4 || text_len > (size_t)1 << 30)
		return NULL;
	uint8_t *out = malloc(text_len / 4 * 3 + 1);
	if (!out)
		return NULL;
	int n = text_len ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)text_len) : 0;
	if (n < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	size_t len = (size_t)n;
	for (size_t i = text_len; i > 0 && text[i - 1] == '=' && len > 0; i--)
		len--;
	out[len] = 0;
	*len_out = len;
	return out;
}

enum err_code random_bytes(void *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1 ? ERR_OK : ERR_INTERNAL;
}

enum err_code uuid_v4(char out[UUID_STR_LEN + 1])
{
	uint8_t b[16];
	if (random_bytes(b, sizeof(b)))
		return ERR_INTERNAL;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	char hex[33];
	hex_encode(b, 16, hex);
	snprintf(out, UUID_STR_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
	return ERR_OK;
}

int uuid_valid(const char *s)
{
	for (int i = 0; i < UUID_STR_LEN; i++) {
		int c = (unsigned char)s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;
		}
	}
	return s[UUID_STR_LEN] == '\0';
}
