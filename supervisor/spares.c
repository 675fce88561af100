/* spares.c - chain files created ahead of need; see spares.h.
 *
 * Spares are named ".spare-<pid>-<n>" (a dot file: the index rebuild and the
 * chain listing only read <uuid>.chain). The thread refills to SPARES_TARGET
 * when fewer than SPARES_LOW are left, with one directory fsync per batch. */
#include "supervisor/spares.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/util/log.h"

#define SPARES_TARGET 64
#define SPARES_LOW 32
#define SPARE_PREFIX ".spare-"

struct spares {
	char *dir;
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* the refill thread: fewer than SPARES_LOW, or stop */
	pthread_t thread;
	uint64_t ready[SPARES_TARGET]; /* lock: numbers of the spares on disk and synced */
	size_t n;
	uint64_t next;                 /* lock: the next spare number */
	int stop, failing;
};

static void spare_path(const struct spares *sp, uint64_t n, char *out, size_t len)
{
	snprintf(out, len, "%s/" SPARE_PREFIX "%ld-%llu", sp->dir, (long)getpid(),
		 (unsigned long long)n);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static void remove_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, SPARE_PREFIX, strlen(SPARE_PREFIX)) != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void *refill_main(void *arg)
{
	struct spares *sp = arg;
	char path[4096];
	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (!sp->stop && (sp->n >= SPARES_LOW || sp->failing))
			pthread_cond_wait(&sp->cond, &sp->lock);
		if (sp->stop)
			break;
		size_t want = SPARES_TARGET - sp->n;
		uint64_t first = sp->next;
		sp->next += want;
		pthread_mutex_unlock(&sp->lock);
		uint64_t made[SPARES_TARGET];
		size_t k = 0;
		for (size_t i = 0; i < want; i++) {
			spare_path(sp, first + i, path, sizeof(path));
			int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				break;
			close(fd);
			made[k++] = first + i;
		}
		int ok = k > 0 && fsync_dir(sp->dir) == 0;
		if (!ok) {
			log_warn("spares", "cannot create spare chain files in '%s': %s; spawns "
				 "create their own", sp->dir, strerror(errno));
			for (size_t i = 0; i < k; i++) {
				spare_path(sp, made[i], path, sizeof(path));
				unlink(path);
			}
		}
		pthread_mutex_lock(&sp->lock);
		sp->failing = !ok;     /* no busy retry: spawns go on creating files */
		for (size_t i = 0; ok && i < k && sp->n < SPARES_TARGET; i++)
			sp->ready[sp->n++] = made[i];
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

struct spares *spares_start(const char *dir)
{
	struct spares *sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->dir = strdup(dir))) {
		free(sp);
		return NULL;
	}
	remove_leftovers(dir);
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	if (pthread_create(&sp->thread, NULL, refill_main, sp) != 0) {
		pthread_mutex_destroy(&sp->lock);
		pthread_cond_destroy(&sp->cond);
		free(sp->dir);
		free(sp);
		return NULL;
	}
	return sp;
}

void spares_stop(struct spares *sp)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stop = 1;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	pthread_join(sp->thread, NULL);
	char path[4096];
	for (size_t i = 0; i < sp->n; i++) {
		spare_path(sp, sp->ready[i], path, sizeof(path));
		unlink(path);
	}
	pthread_mutex_destroy(&sp->lock);
	pthread_cond_destroy(&sp->cond);
	free(sp->dir);
	free(sp);
}

enum err_code spares_take(struct spares *sp, const char *path)
{
	if (!sp)
		return ERR_NOT_FOUND;
	char from[4096];
	for (;;) {
		pthread_mutex_lock(&sp->lock);
		if (!sp->n) {
			pthread_mutex_unlock(&sp->lock);
			return ERR_NOT_FOUND;
		}
		uint64_t n = sp->ready[--sp->n];
		if (sp->n < SPARES_LOW)
			pthread_cond_signal(&sp->cond);
		pthread_mutex_unlock(&sp->lock);
		spare_path(sp, n, from, sizeof(from));
		if (rename(from, path) == 0)
			return ERR_OK;
		unlink(from);    /* gone or unusable: try the next one */
	}
}
