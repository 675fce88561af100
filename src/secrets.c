/* secrets.c - named secrets in files of mode 0600 under a folder of mode 0700;
 * see secrets.h for the format and why the fingerprint is keyed.
 *
 * No message this module writes contains a value: errors name the secret and
 * what failed. Buffers that held a value are wiped before they are freed.
 */
#include "src/secrets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/util/crypto.h"

#define KEY_LEN 32
#define MAGIC "theater-secret 1 "
#define HEADER_MAX 200

struct secrets {
	char *dir;
	uint8_t key[KEY_LEN];
	pthread_mutex_t lock;        /* serializes put and delete */
};

int secrets_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > SECRETS_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of data to a new file path (mode 0600), fsynced. */
static enum err_code write_file(const char *path, const void *a, size_t alen, const void *b,
				size_t blen, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_errno(err, ERR_IO, errno, "cannot create '%s'", path);
	const void *parts[2] = {a, b};
	size_t lens[2] = {alen, blen};
	for (int i = 0; i < 2; i++) {
		const char *p = parts[i];
		size_t left = lens[i];
		while (left) {
			ssize_t w = write(fd, p, left);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int e = errno;
				close(fd);
				unlink(path);
				return err_errno(err, ERR_IO, e, "cannot write '%s'", path);
			}
			p += w;
			left -= (size_t)w;
		}
	}
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		return err_errno(err, ERR_IO, e, "cannot sync '%s'", path);
	}
	close(fd);
	return ERR_OK;
}

/* Reads at most max bytes of path into a malloc'd, NUL-terminated buffer. */
static enum err_code read_file(const char *path, size_t max, uint8_t **out, size_t *len_out,
			       struct err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? ERR_NOT_FOUND
				       : err_errno(err, ERR_IO, errno, "cannot open '%s'", path);
	uint8_t *buf = malloc(max + 1);
	size_t n = 0;
	if (!buf) {
		close(fd);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			secrets_value_free(buf, n);
			return err_errno(err, ERR_IO, e, "cannot read '%s'", path);
		}
		if (r == 0 || (n += (size_t)r) > max)
			break;
	}
	close(fd);
	if (n > max) {
		secrets_value_free(buf, n);
		return err_set(err, ERR_CORRUPT, "'%s' is larger than a secret can be", path);
	}
	buf[n] = 0;
	*out = buf;
	*len_out = n;
	return ERR_OK;
}

static enum err_code load_key(struct secrets *s, struct err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/.key", s->dir);
	uint8_t *data = NULL;
	size_t len = 0;
	enum err_code rc = read_file(path, KEY_LEN, &data, &len, err);
	if (rc == ERR_OK && len == KEY_LEN) {
		memcpy(s->key, data, KEY_LEN);
		secrets_value_free(data, len);
		return ERR_OK;
	}
	secrets_value_free(data, len);
	if (rc == ERR_OK)
		return err_set(err, ERR_CORRUPT, "the secrets key '%s' is not %d bytes", path,
			       KEY_LEN);
	if (rc != ERR_NOT_FOUND)
		return rc;
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/.key.tmp", s->dir);
	if ((rc = random_bytes(s->key, KEY_LEN)) ||
	    (rc = write_file(tmp, s->key, KEY_LEN, NULL, 0, err)))
		return rc ? rc : err_set(err, ERR_IO, "cannot make the secrets key");
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return err_errno(err, ERR_IO, errno, "cannot create '%s'", path);
	}
	return ERR_OK;
}

enum err_code secrets_open(const char *dir, struct secrets **out, struct err *err)
{
	struct stat st;
	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return err_errno(err, ERR_IO, errno, "cannot create '%s'", dir);
	if (lstat(dir, &st) != 0)
		return err_errno(err, ERR_IO, errno, "cannot use '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ERR_IO, "'%s' is not a folder", dir);
	if ((st.st_mode & 077) && chmod(dir, 0700) != 0)
		return err_set(err, ERR_IO, "'%s' has mode %03o and cannot be made 0700", dir,
			       (unsigned)(st.st_mode & 0777));
	struct secrets *s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return err_set(err, ERR_NOMEM, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	enum err_code rc = load_key(s, err);
	if (rc) {
		secrets_close(s);
		return rc;
	}
	*out = s;
	return ERR_OK;
}

void secrets_close(struct secrets *s)
{
	if (!s)
		return;
	secure_zero(s->key, sizeof(s->key));
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

void secrets_value_free(uint8_t *value, size_t len)
{
	if (!value)
		return;
	secure_zero(value, len);
	free(value);
}

void secrets_fingerprint(const struct secrets *s, const void *value, size_t len, char hex[65])
{
	uint8_t d[SHA256_LEN];
	hmac_sha256(s->key, KEY_LEN, value, len, d);
	hex_encode(d, SHA256_LEN, hex);
}

/* Splits a secret file into its header and value. */
static enum err_code parse(const char *name, const uint8_t *data, size_t len,
			   struct secret_info *info, size_t *value_off, struct err *err)
{
	const uint8_t *nl = memchr(data, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	long long created, updated;
	char fp[65];
	int used = 0;
	if (!nl || len < sizeof(MAGIC) - 1 || memcmp(data, MAGIC, sizeof(MAGIC) - 1) != 0)
		goto bad;
	char header[HEADER_MAX + 1];
	memcpy(header, data, (size_t)(nl - data));
	header[nl - data] = '\0';
	if (sscanf(header + sizeof(MAGIC) - 1, "%lld %lld %64[0-9a-f]%n", &created, &updated, fp,
		   &used) != 3 || header[sizeof(MAGIC) - 1 + (size_t)used] != '\0' ||
	    strlen(fp) != 64)
		goto bad;
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name);
	info->created_ms = created;
	info->updated_ms = updated;
	memcpy(info->fingerprint, fp, 65);
	*value_off = (size_t)(nl - data) + 1;
	info->size = len - *value_off;
	return ERR_OK;
bad:
	return err_set(err, ERR_CORRUPT, "secret '%s' is damaged (its header is not valid)", name);
}

static void path_of(const struct secrets *s, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", s->dir, name);
}

enum err_code secrets_get(struct secrets *s, const char *name, uint8_t **value_out,
			  size_t *len_out, struct secret_info *info_out, struct err *err)
{
	char path[4400];
	uint8_t *data = NULL;
	size_t len = 0, off = 0;
	struct secret_info info;
	*value_out = NULL;
	*len_out = 0;
	if (!secrets_name_valid(name))
		return err_set(err, ERR_BAD_ID, "'%.64s' is not a valid secret name", name);
	path_of(s, name, path, sizeof(path));
	enum err_code rc = read_file(path, SECRETS_VALUE_MAX + HEADER_MAX, &data, &len, err);
	if (rc == ERR_NOT_FOUND)
		return err_set(err, ERR_NOT_FOUND, "secret '%s' is not set", name);
	if (rc)
		return rc;
	if ((rc = parse(name, data, len, &info, &off, err))) {
		secrets_value_free(data, len);
		return rc;
	}
	memmove(data, data + off, len - off);
	secure_zero(data + (len - off), off);
	data[len - off] = 0;
	*value_out = data;
	*len_out = len - off;
	if (info_out)
		*info_out = info;
	return ERR_OK;
}

enum err_code secrets_info(struct secrets *s, const char *name, struct secret_info *out,
			   struct err *err)
{
	uint8_t *v = NULL;
	size_t len = 0;
	enum err_code rc = secrets_get(s, name, &v, &len, out, err);
	secrets_value_free(v, len);
	return rc;
}

static size_t count_secrets(const struct secrets *s)
{
	size_t n = 0;
	DIR *d = opendir(s->dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += secrets_name_valid(e->d_name);
	if (d)
		closedir(d);
	return n;
}

enum err_code secrets_put(struct secrets *s, const char *name, const void *value, size_t len,
			  int *created_out, struct secret_info *info_out, struct err *err)
{
	if (!secrets_name_valid(name))
		return err_set(err, ERR_BAD_ID, "'%.64s' is not a valid secret name: 1 to %d of "
			       "[A-Za-z0-9_.-], not starting with '.'", name, SECRETS_NAME_MAX);
	if (len > SECRETS_VALUE_MAX)
		return err_set(err, ERR_TOO_LARGE, "a secret is at most %zu bytes, this one has %zu",
			       SECRETS_VALUE_MAX, len);
	struct secret_info info = {0}, old;
	struct err ignore = {0};
	char path[4400], tmp[4500], header[HEADER_MAX];
	path_of(s, name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", s->dir, name);
	pthread_mutex_lock(&s->lock);
	int exists = secrets_info(s, name, &old, &ignore) == ERR_OK;
	enum err_code rc = ERR_OK;
	if (!exists && count_secrets(s) >= SECRETS_MAX_COUNT) {
		rc = err_set(err, ERR_BUSY, "there are already %d secrets", SECRETS_MAX_COUNT);
		goto out;
	}
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.size = len;
	info.updated_ms = unix_ms();
	info.created_ms = exists ? old.created_ms : info.updated_ms;
	secrets_fingerprint(s, value, len, info.fingerprint);
	int hn = snprintf(header, sizeof(header), MAGIC "%" PRId64 " %" PRId64 " %s\n",
			  info.created_ms, info.updated_ms, info.fingerprint);
	if ((rc = write_file(tmp, header, (size_t)hn, value, len, err)))
		goto out;
	if (rename(tmp, path) != 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot store secret '%s'", name);
		unlink(tmp);
		goto out;
	}
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (created_out)
		*created_out = !exists;
	if (info_out)
		*info_out = info;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum err_code secrets_delete(struct secrets *s, const char *name, struct err *err)
{
	char path[4400];
	if (!secrets_name_valid(name))
		return err_set(err, ERR_BAD_ID, "'%.64s' is not a valid secret name", name);
	path_of(s, name, path, sizeof(path));
	pthread_mutex_lock(&s->lock);
	int rc = unlink(path);
	int e = errno;
	pthread_mutex_unlock(&s->lock);
	if (rc != 0 && e == ENOENT)
		return err_set(err, ERR_NOT_FOUND, "secret '%s' is not set", name);
	if (rc != 0)
		return err_errno(err, ERR_IO, e, "cannot delete secret '%s'", name);
	return ERR_OK;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum err_code secrets_foreach(struct secrets *s,
			      void (*fn)(void *user, const struct secret_info *info), void *user,
			      struct err *err)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return err_errno(err, ERR_IO, errno, "cannot list '%s'", s->dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	enum err_code rc = ERR_OK;
	while ((e = readdir(d)) && n < SECRETS_MAX_COUNT) {
		if (!secrets_name_valid(e->d_name))
			continue;
		if (n == cap) {
			char **grown = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (!grown) {
				rc = err_set(err, ERR_NOMEM, "out of memory");
				break;
			}
			names = grown;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = err_set(err, ERR_NOMEM, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (!rc && n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct secret_info info;
		struct err ignore = {0};
		if (!rc && secrets_info(s, names[i], &info, &ignore) == ERR_OK)
			fn(user, &info);
		free(names[i]);
	}
	free(names);
	return rc;
}
