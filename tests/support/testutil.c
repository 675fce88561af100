/* testutil.c - shared test helpers; see testutil.h. */
#define _XOPEN_SOURCE 700
#include "tests/support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

int64_t tu_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

char *tu_fmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *tu_mkdtemp(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	char *path = tu_fmt("%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (path && !mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

void tu_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *data = malloc(cap + 1);
	size_t n;
	while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			char *p = realloc(data, cap * 2 + 1);
			if (!p) {
				free(data);
				data = NULL;
				break;
			}
			data = p;
			cap *= 2;
		}
	}
	fclose(f);
	if (data)
		data[len] = '\0';
	if (len_out)
		*len_out = len;
	return data;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, len, f);
	return (fclose(f) == 0 && w == len) ? 0 : -1;
}

void tu_show_tail(const char *heading, const char *path, size_t max)
{
	size_t len = 0;
	char *text = tu_read_file(path, &len);
	fprintf(stderr, "%s\n%s\n", heading, text ? text + (len > max ? len - max : 0) : "(none)");
	free(text);
}

const char *tu_source_dir(void)
{
	const char *s = getenv("THEATER_SOURCE_DIR");
	return s ? s : ".";
}

const char *tu_binary_dir(void)
{
	const char *s = getenv("THEATER_BINARY_DIR");
	return s ? s : ".";
}

void tu_need_promtool(void)
{
	if (system("command -v promtool >/dev/null 2>&1") == 0)
		return;
	if (getuid() != 0)
		fail_msg("promtool (Debian package prometheus) is missing and this user cannot "
			 "install it: apt-get install prometheus");
	int rc = system("apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND="
			"noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "
			"--no-install-recommends prometheus >/dev/null");
	if (rc != 0 || system("command -v promtool >/dev/null 2>&1") != 0)
		fail_msg("cannot install promtool (apt-get install prometheus failed)");
}

int tu_fake_sysfs(const char *root, const char *dir, const char *name, const char *journal)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return -1;
	char *block = tu_fmt("%s/dev/block", root);
	char *cmd = tu_fmt("mkdir -p '%s' '%s/fs/ext4/%s'", block, root, name);
	int rc = system(cmd);
	free(cmd);
	char *link = tu_fmt("%s/%u:%u", block, major(st.st_dev), minor(st.st_dev));
	char *target = tu_fmt("../../devices/virtual/block/%s", name);
	unlink(link);
	if (rc == 0)
		rc = symlink(target, link);
	free(target);
	free(link);
	free(block);
	char *task = tu_fmt("%s/fs/ext4/%s/journal_task", root, name);
	unlink(task);
	if (rc == 0 && journal)
		rc = tu_write_file(task, journal, strlen(journal));
	free(task);
	return rc;
}
