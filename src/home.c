/* home.c - locating and preparing THEATER_HOME; see home.h.
 *
 * The reference reads $THEATER_HOME, else "$HOME/.theater". We also treat an
 * empty THEATER_HOME as unset (an empty path would put state in the working
 * directory) and fall back to the passwd entry when $HOME is missing, as
 * daemons started by init often have no HOME.
 */
#include "src/home.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *const home_subdirs[] = { "chains", "store", "cache", "packages", NULL };

char *home_path(const char *home, const char *sub)
{
	size_t n = strlen(home) + strlen(sub) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", home, sub);
	return p;
}

static char *strip_slashes(char *p)
{
	size_t n = p ? strlen(p) : 0;
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

static char *passwd_home(void)
{
	struct passwd pw, *res = NULL;
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t len = sz > 0 ? (size_t)sz : 16384;
	char *buf = malloc(len);
	char *dir = NULL;
	if (buf && getpwuid_r(getuid(), &pw, buf, len, &res) == 0 && res && res->pw_dir &&
	    res->pw_dir[0])
		dir = strdup(res->pw_dir);
	free(buf);
	return dir;
}

char *home_resolve(void)
{
	const char *env = getenv("THEATER_HOME");
	if (env && env[0])
		return strip_slashes(strdup(env));
	const char *h = getenv("HOME");
	char *user = NULL;
	if (!h || !h[0]) {
		user = passwd_home();
		h = user;
	}
	char *res = NULL;
	if (h) {
		char *base = strip_slashes(strdup(h));
		if (base)
			res = home_path(strcmp(base, "/") == 0 ? "" : base, ".theater");
		free(base);
	}
	free(user);
	return res;
}

/* Creates one directory; an existing directory is fine, anything else there
 * is an error. */
static enum err_code make_dir(const char *path, mode_t mode, struct err *err)
{
	if (mkdir(path, mode) == 0)
		return ERR_OK;
	int e = errno;
	struct stat st;
	if (e == EEXIST && stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return ERR_OK;
		return err_set(err, ERR_IO, "cannot create directory '%s': not a directory", path);
	}
	return err_errno(err, ERR_IO, e, "cannot create directory '%s'", path);
}

static enum err_code make_parents(char *path, struct err *err)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		enum err_code rc = make_dir(path, 0755, err);
		*p = '/';
		if (rc)
			return rc;
	}
	return ERR_OK;
}

enum err_code home_prepare(const char *home, struct err *err)
{
	if (!home || home[0] != '/')
		return err_set(err, ERR_INVALID, "theater home '%s' is not an absolute path",
			       home ? home : "");
	enum err_code rc = ERR_NOMEM;
	char *path = strip_slashes(strdup(home));
	if (!path) {
		err_set(err, rc, "out of memory");
		goto fail;
	}
	if ((rc = make_parents(path, err)) || (rc = make_dir(path, 0700, err)))
		goto fail;
	for (const char *const *s = home_subdirs; *s; s++) {
		char *sub = home_path(path, *s);
		if (!sub) {
			rc = err_set(err, ERR_NOMEM, "out of memory");
			goto fail;
		}
		rc = make_dir(sub, 0700, err);
		free(sub);
		if (rc)
			goto fail;
	}
fail:
	free(path);
	return rc;
}

enum err_code home_lock(const char *home, int *fd_out, struct err *err)
{
	*fd_out = -1;
	char *path = home_path(home, "lock");
	if (!path)
		return err_set(err, ERR_NOMEM, "out of memory");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		enum err_code rc = err_errno(err, ERR_IO, errno, "cannot open '%s'", path);
		free(path);
		return rc;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		close(fd);
		enum err_code rc = e == EWOULDBLOCK
			? err_set(err, ERR_CONFLICT, "theater home '%s' is in use by another "
				  "theater-server (pid %s); one server per home: stop it or use "
				  "another --home", home, buf[0] ? buf : "unknown")
			: err_errno(err, ERR_IO, e, "cannot lock '%s'", path);
		free(path);
		return rc;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		enum err_code rc = err_errno(err, ERR_IO, errno, "cannot write '%s'", path);
		close(fd);
		free(path);
		return rc;
	}
	free(path);
	*fd_out = fd;
	return ERR_OK;
}

enum home_fs home_fs_kind(const char *dir, const char *sysfs)
{
	struct stat st;
	char path[4096], link[4096], text[32];
	if (stat(dir, &st) != 0)
		return HOME_FS_OTHER;
	snprintf(path, sizeof(path), "%s/dev/block/%u:%u", sysfs, major(st.st_dev),
		 minor(st.st_dev));
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return HOME_FS_OTHER;          /* no block device: tmpfs, overlay, btrfs... */
	link[n] = 0;
	const char *slash = strrchr(link, '/'), *name = slash ? slash + 1 : link;
	if (snprintf(path, sizeof(path), "%s/fs/ext4/%s/journal_task", sysfs, name) >=
	    (int)sizeof(path))
		return HOME_FS_OTHER;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return HOME_FS_OTHER;          /* not ext4, or a kernel without the file */
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return HOME_FS_OTHER;
	text[n] = 0;
	return strncmp(text, "<none>", 6) == 0 ? HOME_FS_EXT4_NOJOURNAL : HOME_FS_EXT4_JOURNAL;
}
