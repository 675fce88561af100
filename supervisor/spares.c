/* spares.c - chain files created ahead of need; see spares.h.
 *
 * Order of a batch (the refill thread, at the lowest CPU priority): uuids made,
 * their rows committed to the spares table, the files created O_EXCL, the
 * directory fsynced, then the ids handed out. So every spare file on disk has a
 * row (a start finds them without a readdir), and no id is handed out before its
 * name is durable. Rows of taken ids are dropped by the next batch (a start drops
 * those that became runs anyway). */
#include "supervisor/spares.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "src/util/crypto.h"
#include "src/util/log.h"

#define SPARES_BATCH_MAX 64
#define SPARES_TAKEN_MAX 4096      /* taken ids whose rows wait for the next batch */
#define SPARES_RETRY_S 5           /* after a failed batch */
#define SPARES_FLUSH_S 1           /* taken rows are dropped at least this often */

struct spares {
	char *dir;
	struct db *db;                 /* borrowed */
	unsigned target, batch;
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* the refill thread: a batch missing, rows to drop, or stop */
	pthread_t thread;
	char (*ready)[37];             /* lock: ids of spares on disk, durable, unused (a stack) */
	size_t n;
	char (*taken)[37];             /* lock: ids taken since the last batch */
	size_t ntaken;
	uint64_t created;              /* lock */
	int stop, failing;
	pid_t tid;                     /* the refill thread's (atomic; 0 until it runs) */
};

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

static void spare_path(const struct spares *sp, const char *id, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.chain", sp->dir, id);
}

/* The spares a previous process kept: rows whose id is not a run, whose file is
 * there and empty. Rows that fail the check are dropped; spares beyond the
 * target (it was lowered, or is 0) are removed with their rows. Runs first in
 * the refill thread, before any batch: the pool is still empty, so the kept ones
 * are published at once at the end (sp->lock is not touched when none is kept). */
static void take_back(struct spares *sp)
{
	char (*ids)[37] = NULL;
	size_t n = 0;
	struct err e = {0};
	if (db_spare_list(sp->db, &ids, &n, &e)) {
		log_warn("spares", "cannot list the spare chain files kept: %s", e.msg);
		return;
	}
	char (*gone)[37] = n ? malloc(n * sizeof(*gone)) : NULL;
	size_t ngone = 0, kept = 0;
	char path[4096];
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		spare_path(sp, ids[i], path, sizeof(path));
		int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
		if (ok && kept < sp->target) {
			if (kept != i)   /* compacted in place (i >= kept) */
				memcpy(ids[kept], ids[i], 37);
			kept++;
		} else if (gone) {
			if (ok)
				unlink(path);    /* empty, no run: a spare too many */
			memcpy(gone[ngone++], ids[i], 37);
		}
	}
	if (kept) {
		pthread_mutex_lock(&sp->lock);
		memcpy(sp->ready, ids, kept * sizeof(*ids));
		sp->n = kept;
		pthread_mutex_unlock(&sp->lock);
	}
	if (ngone && db_spare_drop(sp->db, (const char (*)[37])gone, ngone, &e))
		log_warn("spares", "cannot drop the rows of spares gone: %s", e.msg);
	if (n)
		log_info("spares", "%zu spare chain files taken back, %zu gone or removed", kept,
			 ngone);
	free(gone);
	free(ids);
}

/* One batch: rows, files, directory sync; then the ids are ready. 0 on success. */
static int refill_batch(struct spares *sp, size_t want, char (*drop)[37], size_t ndrop)
{
	char made[SPARES_BATCH_MAX][37];
	char path[4096];
	struct err e = {0};
	size_t k = 0;
	for (size_t i = 0; i < want; i++)
		if (uuid_v4(made[i]) == ERR_OK)
			k++;
		else
			break;
	/* Rows first (with the drops of taken ids, one transaction each): a file on
	 * disk always has its row. */
	if (ndrop && db_spare_drop(sp->db, (const char (*)[37])drop, ndrop, &e))
		log_warn("spares", "cannot drop the rows of taken spares: %s", e.msg);
	if (!k)
		return 0;
	if (db_spare_put(sp->db, (const char (*)[37])made, k, &e)) {
		log_warn("spares", "cannot record spare chain files: %s; spawns create their own",
			 e.msg);
		return -1;
	}
	size_t ok = 0;
	int err_no = 0;
	for (size_t i = 0; i < k; i++) {
		/* A stop does not wait for the rest of a batch (this thread runs at the
		 * lowest priority: on a busy machine a batch can take seconds). The rows
		 * of files not made are dropped at the next start; those made are taken
		 * back then, or dropped if their names did not last. */
		if (__atomic_load_n(&sp->stop, __ATOMIC_ACQUIRE))
			return 0;
		spare_path(sp, made[i], path, sizeof(path));
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			err_no = errno;
			break;        /* rows without a file: dropped at the next start */
		}
		close(fd);
		ok++;
	}
	if (ok && fsync_dir(sp->dir) != 0) {
		err_no = errno;
		ok = 0;           /* names maybe not durable: not handed out; the next
				   * start takes them back (the sync there is the next batch's) */
	}
	if (err_no)
		log_warn("spares", "cannot create spare chain files in '%s': %s; spawns create "
			 "their own", sp->dir, strerror(err_no));
	pthread_mutex_lock(&sp->lock);
	sp->created += ok;
	for (size_t i = 0; i < ok && sp->n < sp->target; i++)
		memcpy(sp->ready[sp->n++], made[i], 37);
	pthread_mutex_unlock(&sp->lock);
	return ok == k ? 0 : -1;
}

static void *refill_main(void *arg)
{
	pthread_setname_np(pthread_self(), "spares-refill");
	struct spares *sp = arg;
	/* Lowest priority for this thread only (Linux: a thread id is a process id for
	 * setpriority): a burst of spawns drains the pool without competing with it. */
	pid_t tid = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&sp->tid, tid, __ATOMIC_RELEASE);
	if (setpriority(PRIO_PROCESS, (id_t)tid, 19) != 0)
		log_debug("spares", "cannot lower the refill thread's priority: %s",
			  strerror(errno));
	take_back(sp);
	char (*drop)[37] = malloc(SPARES_TAKEN_MAX * sizeof(*drop));
	int topup = 1;         /* at start: up to the target even if less than a batch is missing */
	pthread_mutex_lock(&sp->lock);
	for (;;) {
		while (!sp->stop) {
			int short_by = sp->target - sp->n >= sp->batch || (topup && sp->n < sp->target);
			if ((short_by && !sp->failing) || sp->ntaken == SPARES_TAKEN_MAX)
				break;
			topup = 0;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += sp->failing ? SPARES_RETRY_S : SPARES_FLUSH_S;
			int timed = sp->ntaken || sp->failing;
			int r = timed ? pthread_cond_timedwait(&sp->cond, &sp->lock, &ts)
				      : pthread_cond_wait(&sp->cond, &sp->lock);
			if (r == ETIMEDOUT) {
				sp->failing = 0;
				if (sp->ntaken)
					break;      /* drop the taken rows */
			}
		}
		size_t ndrop = drop ? sp->ntaken : 0;
		if (ndrop)
			memcpy(drop, sp->taken, ndrop * sizeof(*drop));
		sp->ntaken = 0;
		size_t want = sp->stop ? 0 : sp->target - sp->n;
		if (want > sp->batch)
			want = sp->batch;
		pthread_mutex_unlock(&sp->lock);
		int failed = refill_batch(sp, want, drop, ndrop) != 0;
		pthread_mutex_lock(&sp->lock);
		sp->failing = failed;   /* no busy retry: spawns go on creating files */
		if (sp->stop)
			break;
	}
	pthread_mutex_unlock(&sp->lock);
	free(drop);
	return NULL;
}

struct spares *spares_start(const char *dir, struct db *db, unsigned target)
{
	if (!db)
		return NULL;
	if (!target) {         /* off: the spares kept by an earlier start go */
		struct spares none = {.dir = (char *)dir, .db = db};
		take_back(&none);
		return NULL;
	}
	struct spares *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->db = db;
	sp->target = target;
	sp->batch = target >= 2 * SPARES_BATCH_MAX ? SPARES_BATCH_MAX
						   : (target + 1) / 2;
	sp->dir = strdup(dir);
	sp->ready = calloc(target, sizeof(*sp->ready));
	sp->taken = calloc(SPARES_TAKEN_MAX, sizeof(*sp->taken));
	if (!sp->dir || !sp->ready || !sp->taken)
		goto fail;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	if (pthread_create(&sp->thread, NULL, refill_main, sp) != 0) {
		pthread_mutex_destroy(&sp->lock);
		pthread_cond_destroy(&sp->cond);
		goto fail;
	}
	return sp;
fail:
	free(sp->dir);
	free(sp->ready);
	free(sp->taken);
	free(sp);
	return NULL;
}

void spares_stop(struct spares *sp)
{
	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	__atomic_store_n(&sp->stop, 1, __ATOMIC_RELEASE);   /* read unlocked in a batch */
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	/* The stop waits for the thread: at the lowest priority on a busy machine it
	 * could take seconds just to be scheduled. Back to normal where allowed
	 * (CAP_SYS_NICE, as root; otherwise it stays low and the stop waits). */
	pid_t tid = __atomic_load_n(&sp->tid, __ATOMIC_ACQUIRE);
	if (tid > 0)
		(void)setpriority(PRIO_PROCESS, (id_t)tid, 0);
	pthread_join(sp->thread, NULL);   /* its last batch dropped the taken rows */
	pthread_mutex_destroy(&sp->lock);
	pthread_cond_destroy(&sp->cond);
	free(sp->dir);
	free(sp->ready);
	free(sp->taken);
	free(sp);
}

enum err_code spares_take(struct spares *sp, char id_out[37])
{
	if (!sp)
		return ERR_NOT_FOUND;
	pthread_mutex_lock(&sp->lock);
	if (!sp->n) {
		pthread_mutex_unlock(&sp->lock);
		return ERR_NOT_FOUND;
	}
	memcpy(id_out, sp->ready[--sp->n], 37);
	if (sp->ntaken < SPARES_TAKEN_MAX)  /* else its row goes at the next start */
		memcpy(sp->taken[sp->ntaken++], id_out, 37);
	/* Wakes the thread once per missing batch, not at every take; and at the
	 * first take after a batch, so that its wait gets a timeout (within
	 * SPARES_FLUSH_S it drops the taken rows and tops the pool up). */
	if (sp->target - sp->n == sp->batch || sp->ntaken == SPARES_TAKEN_MAX ||
	    sp->ntaken == 1)
		pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	return ERR_OK;
}

void spares_forget(struct spares *sp, const char *id)
{
	if (!sp || !id || strlen(id) > 36)
		return;
	char one[1][37];
	memcpy(one[0], id, strlen(id) + 1);
	struct err e = {0};
	if (db_spare_drop(sp->db, (const char (*)[37])one, 1, &e))
		log_warn("spares", "cannot drop the spare row of '%s': %s", id, e.msg);
}

void spares_counts(struct spares *sp, uint64_t *ready_out, uint64_t *created_out)
{
	*ready_out = *created_out = 0;
	if (!sp)
		return;
	pthread_mutex_lock(&sp->lock);
	*ready_out = sp->n;
	*created_out = sp->created;
	pthread_mutex_unlock(&sp->lock);
}
