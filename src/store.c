/* store.c - content-addressed store; see store.h.
 *
 * Every path below <root> is reached with openat() from s->rootfd, one checked
 * component at a time, with O_NOFOLLOW: ids, labels and hashes are validated
 * first and may not contain '/', so no name can climb out, and a symlink planted
 * inside the store fails to open (ELOOP) instead of being followed. Entries are
 * also opened O_NONBLOCK and checked with fstat so that a FIFO or device can
 * neither block nor be read. Temp files start with '.', which no id, label or
 * hash may, so they never collide with real entries.
 */
#include "src/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/crypto.h"
#include "src/util/dirs.h"

#define LABEL_FILE_MAX 130
#define READ_CHUNK (64 * 1024)

#define STORE_ID_MAX 64
#define KNOWN_SLOTS 64

/* Entries this process saw in the store, "<id>/<hash>", direct-mapped by the hash:
 * nothing removes an entry, so one seen once is there for good and store_has need
 * not look again (a spawn asks for its package's each time). */
struct store {
	int rootfd;
	char *root;
	pthread_mutex_t known_lock;
	char known[KNOWN_SLOTS][STORE_ID_MAX + SHA256_HEX_LEN + 2];
};

static int name_valid(const char *s, size_t max)
{
	size_t i;
	if (!s || s[0] == '\0' || s[0] == '.')
		return 0;
	for (i = 0; s[i]; i++) {
		int c = (unsigned char)s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
		if (!ok || i >= max)
			return 0;
	}
	return 1;
}

int store_id_valid(const char *id)
{
	return name_valid(id, STORE_ID_MAX);
}

int store_label_valid(const char *label)
{
	return name_valid(label, 128);
}

static enum err_code check_id_hash(const char *id, const char *hash_hex, struct err *err)
{
	if (!store_id_valid(id))
		return err_set(err, ERR_BAD_ID, "invalid store id");
	if (hash_hex && !sha256_hex_valid(hash_hex))
		return err_set(err, ERR_BAD_ID, "invalid content hash (64 lowercase hex digits)");
	return ERR_OK;
}

/* Whether entry hash_hex of store id is known to be there; with note, records
 * that it is. id and hash_hex are valid (check_id_hash). */
static int known(struct store *s, const char *id, const char *hash_hex, int note)
{
	char key[sizeof(s->known[0])];
	snprintf(key, sizeof(key), "%s/%s", id, hash_hex);
	char *k = s->known[(hex_digit(hash_hex[0]) << 4 | hex_digit(hash_hex[1])) % KNOWN_SLOTS];
	pthread_mutex_lock(&s->known_lock);
	int yes = strcmp(k, key) == 0;
	if (note && !yes)
		memcpy(k, key, sizeof(key));
	pthread_mutex_unlock(&s->known_lock);
	return yes;
}

enum err_code store_open(const char *root, struct store **out, struct err *err)
{
	enum err_code rc;
	struct store *s = NULL;
	*out = NULL;
	if (!root || !*root)
		return err_set(err, ERR_INVALID, "empty store root");
	if ((rc = dirs_make(root, err)) != ERR_OK)
		return rc;
	if (!(s = calloc(1, sizeof(*s))) || !(s->root = strdup(root))) {
		free(s);
		return err_set(err, ERR_NOMEM, "out of memory opening store '%s'", root);
	}
	s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		rc = err_errno(err, ERR_IO, errno, "cannot open store '%s'", root);
		free(s->root);
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->known_lock, NULL);
	*out = s;
	return ERR_OK;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	close(s->rootfd);
	pthread_mutex_destroy(&s->known_lock);
	free(s->root);
	free(s);
}

static enum err_code open_errno(struct err *err, int e, const char *what, const char *name)
{
	if (e == ENOENT)
		return err_set(err, ERR_NOT_FOUND, "%s '%s' not found", what, name);
	if (e == ELOOP || e == ENOTDIR || e == ENXIO)
		return err_set(err, ERR_FORBIDDEN_PATH, "%s '%s' is a symlink or not a plain entry",
			       what, name);
	return err_errno(err, ERR_IO, e, "cannot open %s '%s'", what, name);
}

/* Opens the directory <root>/<id>/<sub>, creating both when create is set. */
static enum err_code open_subdir(struct store *s, const char *id, const char *sub, int create,
				 int *fd_out, struct err *err)
{
	int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	if (create && mkdirat(s->rootfd, id, 0755) != 0 && errno != EEXIST)
		return err_errno(err, ERR_IO, errno, "cannot create store '%s'", id);
	int idfd = openat(s->rootfd, id, flags);
	if (idfd < 0)
		return open_errno(err, errno, "store", id);
	if (create && mkdirat(idfd, sub, 0755) != 0 && errno != EEXIST) {
		int e = errno;
		close(idfd);
		return err_errno(err, ERR_IO, e, "cannot create '%s/%s' in the store", id, sub);
	}
	int fd = openat(idfd, sub, flags);
	int e = errno;
	close(idfd);
	if (fd < 0)
		return open_errno(err, e, "store directory", sub);
	*fd_out = fd;
	return ERR_OK;
}

/* Opens a regular file in dirfd without following links or blocking. */
static enum err_code open_entry(int dirfd, const char *name, const char *what, int *fd_out,
				struct stat *st, struct err *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return open_errno(err, errno, what, name);
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return err_set(err, ERR_FORBIDDEN_PATH, "%s '%s' is not a regular file", what, name);
	}
	*fd_out = fd;
	return ERR_OK;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Atomically makes dirfd/name hold data: temp, fsync, rename, dir fsync. */
static enum err_code write_entry(int dirfd, const char *name, const void *data, size_t len,
				 struct err *err)
{
	uint8_t rnd[8];
	char tmp[40] = ".tmp-", hex[17];
	if (random_bytes(rnd, sizeof(rnd)) != ERR_OK)
		return err_set(err, ERR_INTERNAL, "no random bytes for a temp name");
	hex_encode(rnd, sizeof(rnd), hex);
	strcat(tmp, hex);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(err, ERR_IO, errno, "cannot create a temp file for '%s'", name);
	int ok = write_all(fd, data, len) == 0 && fsync(fd) == 0;
	int e = errno;
	if (close(fd) != 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (ok && renameat(dirfd, tmp, dirfd, name) != 0) {
		ok = 0;
		e = errno;
	}
	if (!ok) {
		unlinkat(dirfd, tmp, 0);
		return err_errno(err, ERR_IO, e, "cannot write '%s' in the store", name);
	}
	if (fsync(dirfd) != 0)
		return err_errno(err, ERR_IO, errno, "cannot sync the store directory of '%s'", name);
	return ERR_OK;
}

enum err_code store_put(struct store *s, const char *id, const void *data, size_t len,
			char hash_hex_out[65], struct err *err)
{
	uint8_t digest[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	struct stat st;
	int dirfd = -1;
	enum err_code rc = check_id_hash(id, NULL, err);
	if (rc)
		return rc;
	if (len && !data)
		return err_set(err, ERR_INVALID, "store_put: data is NULL");
	sha256(data ? data : "", len, digest);
	hex_encode(digest, SHA256_LEN, hex);
	if ((rc = open_subdir(s, id, "data", 1, &dirfd, err)) != ERR_OK)
		return rc;
	if (fstatat(dirfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == len)
		rc = ERR_OK;  /* content-addressed: same name, same bytes */
	else
		rc = write_entry(dirfd, hex, data, len, err);
	close(dirfd);
	if (rc == ERR_OK) {
		memcpy(hash_hex_out, hex, SHA256_HEX_LEN + 1);
		known(s, id, hex, 1);
	}
	return rc;
}

/* Reads exactly len bytes from fd into buf, hashing them; checks the digest. */
static enum err_code read_verified(int fd, uint8_t *buf, size_t len, const char *hash_hex,
				   struct err *err)
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	size_t got = 0;
	if (sha256_begin(&ctx) != ERR_OK)
		return err_set(err, ERR_NOMEM, "out of memory hashing '%s'", hash_hex);
	while (got < len) {
		size_t want = len - got < READ_CHUNK ? len - got : READ_CHUNK;
		ssize_t n = read(fd, buf + got, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sha256_end(&ctx, digest);
			return n < 0 ? err_errno(err, ERR_IO, errno, "cannot read '%s'", hash_hex)
				     : err_set(err, ERR_CORRUPT, "'%s' shrank while reading", hash_hex);
		}
		sha256_update(&ctx, buf + got, (size_t)n);
		got += (size_t)n;
	}
	sha256_end(&ctx, digest);
	hex_encode(digest, SHA256_LEN, hex);
	if (strcmp(hex, hash_hex) != 0)
		return err_set(err, ERR_CORRUPT, "store entry '%s' fails its hash (found %s)",
			       hash_hex, hex);
	return ERR_OK;
}

enum err_code store_get(struct store *s, const char *id, const char *hash_hex, size_t max_len,
			uint8_t **data_out, size_t *len_out, struct err *err)
{
	int dirfd = -1, fd = -1;
	uint8_t *buf = NULL;
	struct stat st;
	enum err_code rc = check_id_hash(id, hash_hex, err);
	if (rc)
		return rc;
	if ((rc = open_subdir(s, id, "data", 0, &dirfd, err)) != ERR_OK)
		goto fail;
	if ((rc = open_entry(dirfd, hash_hex, "store entry", &fd, &st, err)) != ERR_OK)
		goto fail;
	size_t len = (size_t)st.st_size;
	if (max_len && len > max_len) {
		rc = err_set(err, ERR_TOO_LARGE, "store entry '%s' has %zu bytes, over the limit of %zu",
			     hash_hex, len, max_len);
		goto fail;
	}
	if (!(buf = malloc(len + 1))) {
		rc = err_set(err, ERR_NOMEM, "out of memory reading store entry '%s'", hash_hex);
		goto fail;
	}
	if ((rc = read_verified(fd, buf, len, hash_hex, err)) != ERR_OK)
		goto fail;
	buf[len] = '\0';
	*data_out = buf;
	*len_out = len;
	buf = NULL;
fail:
	if (rc == ERR_NOT_FOUND)
		err_set(err, rc, "store '%s' has no entry '%s'", id, hash_hex);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int store_has(struct store *s, const char *id, const char *hash_hex)
{
	struct stat st;
	int dirfd = -1;
	if (check_id_hash(id, hash_hex, NULL) != ERR_OK)
		return 0;
	if (known(s, id, hash_hex, 0))
		return 1;
	if (open_subdir(s, id, "data", 0, &dirfd, NULL) != ERR_OK)
		return 0;
	int ok = fstatat(dirfd, hash_hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
	close(dirfd);
	if (ok)
		known(s, id, hash_hex, 1);
	return ok;
}

enum err_code store_label_set(struct store *s, const char *id, const char *label,
			      const char *hash_hex, struct err *err)
{
	char line[SHA256_HEX_LEN + 2];
	int dirfd = -1;
	enum err_code rc = check_id_hash(id, hash_hex, err);
	if (rc)
		return rc;
	if (!store_label_valid(label))
		return err_set(err, ERR_BAD_ID, "invalid store label");
	if (!store_has(s, id, hash_hex))
		return err_set(err, ERR_NOT_FOUND, "store '%s' has no entry '%s'", id, hash_hex);
	if ((rc = open_subdir(s, id, "labels", 1, &dirfd, err)) != ERR_OK)
		return rc;
	snprintf(line, sizeof(line), "%s\n", hash_hex);
	rc = write_entry(dirfd, label, line, SHA256_HEX_LEN + 1, err);
	close(dirfd);
	return rc;
}

static enum err_code read_label(int fd, const char *label, char hash_hex_out[65],
				struct err *err)
{
	char text[LABEL_FILE_MAX + 1];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, text + got, LABEL_FILE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(err, ERR_IO, errno, "cannot read label '%s'", label);
		if (n == 0 || (got += (size_t)n) == LABEL_FILE_MAX)
			break;
	}
	while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == '\r'))
		got--;
	text[got] = '\0';
	if (!sha256_hex_valid(text))
		return err_set(err, ERR_CORRUPT, "label '%s' does not hold a content hash", label);
	memcpy(hash_hex_out, text, SHA256_HEX_LEN + 1);
	return ERR_OK;
}

enum err_code store_label_get(struct store *s, const char *id, const char *label,
			      char hash_hex_out[65], struct err *err)
{
	int dirfd = -1, fd = -1;
	struct stat st;
	enum err_code rc = check_id_hash(id, NULL, err);
	if (rc)
		return rc;
	if (!store_label_valid(label))
		return err_set(err, ERR_BAD_ID, "invalid store label");
	if ((rc = open_subdir(s, id, "labels", 0, &dirfd, err)) == ERR_OK) {
		if ((rc = open_entry(dirfd, label, "label", &fd, &st, err)) == ERR_OK) {
			rc = read_label(fd, label, hash_hex_out, err);
			close(fd);
		}
		close(dirfd);
	}
	if (rc == ERR_NOT_FOUND)
		err_set(err, rc, "store '%s' has no label '%s'", id, label);
	return rc;
}

/* ---- listings ---------------------------------------------------------- */

/* Calls cb(user, name, fd of dirfd) per valid entry name of an open directory
 * (dirfd is consumed). */
static enum err_code walk(int dirfd, int (*valid)(const char *), void (*cb)(void *, int, const char *),
			  void *user, struct err *err)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		int e = errno;
		close(dirfd);
		return err_errno(err, ERR_IO, e, "cannot list a store directory");
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (valid(de->d_name))
			cb(user, dirfd, de->d_name);
	closedir(d);
	return ERR_OK;
}

struct walk_ctx {
	void *user;
	void (*ids)(void *user, const char *id);
	void (*objects)(void *user, const char *hash_hex, uint64_t size);
	void (*labels)(void *user, const char *label, const char *hash_hex);
};

static void walk_id(void *user, int dirfd, const char *name)
{
	struct walk_ctx *w = user;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		w->ids(w->user, name);
}

static void walk_object(void *user, int dirfd, const char *name)
{
	struct walk_ctx *w = user;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		w->objects(w->user, name, (uint64_t)st.st_size);
}

static void walk_label(void *user, int dirfd, const char *name)
{
	struct walk_ctx *w = user;
	struct stat st;
	struct err e;
	char hash[SHA256_HEX_LEN + 1];
	int fd = -1;
	if (open_entry(dirfd, name, "label", &fd, &st, &e) != ERR_OK)
		return;
	if (read_label(fd, name, hash, &e) == ERR_OK)
		w->labels(w->user, name, hash);
	close(fd);
}

static int hash_name_valid(const char *s)
{
	return sha256_hex_valid(s);
}

enum err_code store_list(struct store *s, void (*cb)(void *user, const char *id), void *user,
			 struct err *err)
{
	int fd = openat(s->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, ERR_IO, errno, "cannot list the store '%s'", s->root);
	struct walk_ctx w = {.user = user, .ids = cb};
	return walk(fd, store_id_valid, walk_id, &w, err);
}

/* Opens <id>/<sub>: ERR_NOT_FOUND when the store does not exist, -1 in *fd_out
 * when it exists without <sub> (an empty listing). */
static enum err_code open_listing(struct store *s, const char *id, const char *sub, int *fd_out,
				  struct err *err)
{
	*fd_out = -1;
	enum err_code rc = check_id_hash(id, NULL, err);
	if (rc)
		return rc;
	struct stat st;
	if (fstatat(s->rootfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
		return err_set(err, ERR_NOT_FOUND, "no store '%s'", id);
	rc = open_subdir(s, id, sub, 0, fd_out, err);
	return rc == ERR_NOT_FOUND ? ERR_OK : rc;
}

enum err_code store_objects(struct store *s, const char *id,
			    void (*cb)(void *user, const char *hash_hex, uint64_t size), void *user,
			    struct err *err)
{
	int fd;
	enum err_code rc = open_listing(s, id, "data", &fd, err);
	if (rc || fd < 0)
		return rc;
	struct walk_ctx w = {.user = user, .objects = cb};
	return walk(fd, hash_name_valid, walk_object, &w, err);
}

enum err_code store_labels(struct store *s, const char *id,
			   void (*cb)(void *user, const char *label, const char *hash_hex),
			   void *user, struct err *err)
{
	int fd;
	enum err_code rc = open_listing(s, id, "labels", &fd, err);
	if (rc || fd < 0)
		return rc;
	struct walk_ctx w = {.user = user, .labels = cb};
	return walk(fd, store_label_valid, walk_label, &w, err);
}
