/* secrets.h - named secrets kept under THEATER_HOME/secrets, readable only by
 * the server's user.
 *
 * A secret is a name ([A-Za-z0-9_.-], 1..128, not starting with '.') and a
 * value of at most SECRETS_VALUE_MAX bytes. Values are written once through
 * the API and never read back by it: the actor runtime reads them to fill
 * http-client header templates ({{secret:NAME}}) and to answer the
 * environment interface of actors that were granted them.
 *
 * What may be shown of a secret is its name, size, times and its
 * fingerprint: HMAC-SHA256 of the value under a random server key (kept in
 * the same folder), as 64 hex digits. A plain hash would let anyone who sees
 * it test guesses of a low-entropy value; the keyed hash only lets the
 * server (and whoever reads its key) do so, and still shows whether two
 * uses were of the same value.
 *
 * Layout: <dir>/ (mode 0700), <dir>/.key (32 random bytes, 0600), and one
 * file per secret, <dir>/<name> (0600): a header line
 * "theater-secret 1 <created_ms> <updated_ms> <fingerprint>\n" and the value.
 * Writes go to a temporary file, are fsynced and renamed into place.
 *
 * Ownership: values handed out are malloc'd, owned by the caller, who
 * should wipe them (secrets_value_free). Threads: every function may be
 * called from any thread; writes are serialized by an internal lock.
 */
#ifndef THEATER_SECRETS_H
#define THEATER_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "src/util/err.h"

#define SECRETS_NAME_MAX 128
#define SECRETS_VALUE_MAX ((size_t)64 * 1024)
#define SECRETS_MAX_COUNT 4096

struct secrets;

struct secret_info {
	char name[SECRETS_NAME_MAX + 1];
	size_t size;
	int64_t created_ms, updated_ms;      /* unix milliseconds */
	char fingerprint[65];                /* hex HMAC-SHA256 of the value */
};

/* Opens (creating it with mode 0700, and its key) the folder dir. Refuses a
 * folder that others may read (ERR_IO, naming the mode). */
enum err_code secrets_open(const char *dir, struct secrets **out, struct err *err);
/* Accepts NULL. */
void secrets_close(struct secrets *s);

/* 1 when name is a valid secret name. */
int secrets_name_valid(const char *name);

/* Creates or replaces a secret. *created_out (may be NULL) is 1 when it did
 * not exist. ERR_BAD_ID for a bad name, ERR_TOO_LARGE over the size limit,
 * ERR_BUSY when SECRETS_MAX_COUNT secrets exist, ERR_IO. info_out (may be
 * NULL) gets the new metadata. */
enum err_code secrets_put(struct secrets *s, const char *name, const void *value, size_t len,
			  int *created_out, struct secret_info *info_out, struct err *err);
/* ERR_NOT_FOUND when there is no such secret. */
enum err_code secrets_delete(struct secrets *s, const char *name, struct err *err);
/* The metadata of one secret; ERR_NOT_FOUND. */
enum err_code secrets_info(struct secrets *s, const char *name, struct secret_info *out,
			   struct err *err);
/* The value (malloc'd, NUL-terminated, not counted) and its metadata
 * (info_out may be NULL). ERR_NOT_FOUND, ERR_BAD_ID, ERR_CORRUPT, ERR_IO.
 * Error messages name the secret, never its value. */
enum err_code secrets_get(struct secrets *s, const char *name, uint8_t **value_out,
			  size_t *len_out, struct secret_info *info_out, struct err *err);
/* Wipes and frees a value from secrets_get. Accepts NULL. */
void secrets_value_free(uint8_t *value, size_t len);
/* Calls fn for every secret, sorted by name. */
enum err_code secrets_foreach(struct secrets *s,
			      void (*fn)(void *user, const struct secret_info *info), void *user,
			      struct err *err);
/* The fingerprint of bytes under this server's key. */
void secrets_fingerprint(const struct secrets *s, const void *value, size_t len, char hex[65]);

#endif
