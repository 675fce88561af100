/* chain_fds.c - the descriptor cache of chain files (issue 16); see chain_int.h.
 *
 * Descriptors are a per-process resource (RLIMIT_NOFILE), so the cache is one
 * file-scope object, like the fsync histogram: a server with 100,000 chains keeps
 * at most `cap` of them open, and a chain that has not been used lately holds
 * none. Invariants, under fdc.mu:
 *   - fdc.open counts the chains with fd >= 0 plus the ones being opened;
 *   - a chain with fd >= 0 is in the MRU list; pins > 0 keeps it there;
 *   - fd_moving is set while a descriptor of that chain is being opened or
 *     closed; every other use waits on fdc.cv, so one chain never holds two
 *     descriptors (their flock()s would conflict) and never loses one in use.
 * Closing a descriptor first fdatasyncs what was written through it, so an
 * eviction never leaves an error the next descriptor would not see; a failure
 * there is kept in c->evict_errno and the chain refuses further appends. Inside
 * a sync batch (chain_fd_batch: start-up recovery, shutdown) that sync is left to
 * the batch's syncfs, which covers every file of the file system and reports
 * their write errors.
 * The table by (dev, ino) answers "is this file already open in this process"
 * while the descriptor itself may be closed (flock alone would forget).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/chain_int.h"
#include "src/util/log.h"

#define FD_CAP_MIN 8
#define FD_RESERVE 32          /* below half of the limit: db, store, fetches */
#define EVICT_SCAN 8           /* LRU entries looked at for one that needs no sync */
#define EVICT_ON_EMFILE 16

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* a descriptor finished opening or closing */
	unsigned cap;             /* 0 until first use: derived from RLIMIT_NOFILE */
	unsigned open;
	struct chain *mru, *lru;
	struct chain **tab;
	size_t ntab, count;
	uint64_t reopens, evictions, evict_syncs;
	unsigned batches;         /* open sync batches: evictions leave syncs to them */
} fdc = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static unsigned derived_cap(void)
{
	struct rlimit rl;
	rlim_t cur = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		cur = rl.rlim_cur;
	if (cur > 1u << 22)
		cur = 1u << 22;
	unsigned half = (unsigned)(cur / 2);
	return half > FD_RESERVE + FD_CAP_MIN ? half - FD_RESERVE : FD_CAP_MIN;
}

static unsigned cap_locked(void)
{
	if (!fdc.cap)
		fdc.cap = derived_cap();
	return fdc.cap;
}

void chain_fd_set_cap(unsigned cap)
{
	pthread_mutex_lock(&fdc.mu);
	fdc.cap = cap ? (cap < FD_CAP_MIN ? FD_CAP_MIN : cap) : derived_cap();
	pthread_mutex_unlock(&fdc.mu);
}

unsigned chain_fd_cap(void)
{
	pthread_mutex_lock(&fdc.mu);
	unsigned cap = cap_locked();
	pthread_mutex_unlock(&fdc.mu);
	return cap;
}

void chain_fd_stats(struct chain_fd_stats *out)
{
	pthread_mutex_lock(&fdc.mu);
	out->cap = cap_locked();
	out->open = fdc.open;
	out->chains = (unsigned)fdc.count;
	out->reopens = fdc.reopens;
	out->evictions = fdc.evictions;
	out->evict_syncs = fdc.evict_syncs;
	pthread_mutex_unlock(&fdc.mu);
}

/* ---- the MRU list ---- */

static void mru_unlink(struct chain *c)
{
	if (c->mru_prev)
		c->mru_prev->mru_next = c->mru_next;
	else
		fdc.mru = c->mru_next;
	if (c->mru_next)
		c->mru_next->mru_prev = c->mru_prev;
	else
		fdc.lru = c->mru_prev;
	c->mru_prev = c->mru_next = NULL;
}

static void mru_push(struct chain *c)
{
	c->mru_prev = NULL;
	c->mru_next = fdc.mru;
	if (fdc.mru)
		fdc.mru->mru_prev = c;
	fdc.mru = c;
	if (!fdc.lru)
		fdc.lru = c;
}

/* ---- the table of open chains, by file identity ---- */

static size_t tab_slot(dev_t dev, ino_t ino, size_t n)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
	return (size_t)(h ^ (h >> 29)) & (n - 1);
}

static int tab_grow(void)
{
	size_t n = fdc.ntab ? fdc.ntab * 2 : 1024;
	struct chain **t = calloc(n, sizeof(*t));
	if (!t)
		return -1;
	for (size_t i = 0; i < fdc.ntab; i++) {
		struct chain *c = fdc.tab[i], *next;
		for (; c; c = next) {
			next = c->tab_next;
			size_t k = tab_slot(c->dev, c->ino, n);
			c->tab_next = t[k];
			t[k] = c;
		}
	}
	free(fdc.tab);
	fdc.tab = t;
	fdc.ntab = n;
	return 0;
}

static struct chain *tab_find(dev_t dev, ino_t ino)
{
	if (!fdc.ntab)
		return NULL;
	for (struct chain *c = fdc.tab[tab_slot(dev, ino, fdc.ntab)]; c; c = c->tab_next)
		if (c->dev == dev && c->ino == ino)
			return c;
	return NULL;
}

static void tab_remove(struct chain *c)
{
	struct chain **p = &fdc.tab[tab_slot(c->dev, c->ino, fdc.ntab)];
	while (*p && *p != c)
		p = &(*p)->tab_next;
	if (*p)
		*p = c->tab_next;
	c->tab_next = NULL;
	c->registered = 0;
	fdc.count--;
}

/* ---- eviction ---- */

/* With fdc.mu held: takes the descriptor of a least recently used chain that no
 * one is using, preferring one with nothing left to sync. NULL when all are in
 * use (the cap is then exceeded rather than waited for). */
static struct chain *evict_locked(int *fd_out, int *batched)
{
	*batched = fdc.batches > 0;
	struct chain *pick = NULL;
	int looked = 0;
	for (struct chain *v = fdc.lru; v && looked < EVICT_SCAN; v = v->mru_prev) {
		if (v->pins || v->fd_moving)
			continue;
		looked++;
		if (!pick)
			pick = v;
		if (!__atomic_load_n(&v->unsynced, __ATOMIC_ACQUIRE)) {
			pick = v;
			break;
		}
	}
	if (!pick)
		return NULL;
	mru_unlink(pick);
	*fd_out = pick->fd;
	pick->fd = -1;
	pick->fd_moving = 1;
	fdc.open--;
	fdc.evictions++;
	return pick;
}

void chain_fd_batch(int open)
{
	pthread_mutex_lock(&fdc.mu);
	if (open)
		fdc.batches++;
	else if (fdc.batches)
		fdc.batches--;
	pthread_mutex_unlock(&fdc.mu);
}

/* Without fdc.mu: syncs what was written through the victim's descriptor (unless
 * a sync batch will), closes it and lets waiters on the victim go on. */
static void evict_finish(struct chain *v, int fd, int batched)
{
	int synced = 0;
	if (!batched && __atomic_load_n(&v->unsynced, __ATOMIC_ACQUIRE)) {
		synced = 1;
		if (fdatasync(fd) != 0) {
			int e = errno;
			__atomic_store_n(&v->evict_errno, e ? e : EIO, __ATOMIC_RELEASE);
			static const char what[] = "cannot sync chain '%s' before closing it: %s";
			log_limited(what, LOG_ERROR, "chain", what, v->path, strerror(e));
		}
	}
	close(fd);
	pthread_mutex_lock(&fdc.mu);
	v->fd_moving = 0;
	fdc.evict_syncs += (uint64_t)synced;
	pthread_cond_broadcast(&fdc.cv);
	pthread_mutex_unlock(&fdc.mu);
}

/* Evicts up to n descriptors; returns how many. */
static unsigned evict_some(unsigned n)
{
	unsigned done = 0;
	while (done < n) {
		int fd = -1, batched = 0;
		pthread_mutex_lock(&fdc.mu);
		struct chain *v = evict_locked(&fd, &batched);
		pthread_mutex_unlock(&fdc.mu);
		if (!v)
			break;
		evict_finish(v, fd, batched);
		done++;
	}
	return done;
}

/* ---- lending descriptors ---- */

/* With fdc.mu held: c's file identity in the table (ERR_CONFLICT when another
 * chain of this process has the same file). */
static enum err_code register_locked(struct chain *c, const struct stat *st, struct err *err)
{
	if (tab_find(st->st_dev, st->st_ino))
		return err_set(err, ERR_CONFLICT, "chain '%s' is already open", c->path);
	if ((fdc.count + 1 > fdc.ntab * 2 || !fdc.ntab) && tab_grow() != 0)
		return err_set(err, ERR_NOMEM, "out of memory opening chain '%s'", c->path);
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	size_t k = tab_slot(c->dev, c->ino, fdc.ntab);
	c->tab_next = fdc.tab[k];
	fdc.tab[k] = c;
	c->registered = 1;
	fdc.count++;
	return ERR_OK;
}

/* The first descriptor of a chain opened without its file (chain_open_trusted):
 * the file must still have the size the index vouched for, and is registered
 * now. fd is closed on failure. */
static enum err_code first_open(struct chain *c, int fd, const struct stat *st, struct err *err)
{
	enum err_code rc = ERR_OK;
	if ((uint64_t)st->st_size != c->trusted_size)
		rc = err_set(err, ERR_CORRUPT, "chain '%s' changed on disk since the server "
			     "started (%llu bytes, %llu expected)", c->path,
			     (unsigned long long)st->st_size,
			     (unsigned long long)c->trusted_size);
	if (!rc) {
		pthread_mutex_lock(&fdc.mu);
		rc = register_locked(c, st, err);
		pthread_mutex_unlock(&fdc.mu);
	}
	if (rc)
		close(fd);
	else
		c->trusted_size = 0;
	return rc;
}

enum err_code chain_fd_install(struct chain *c, int fd, struct err *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return err_errno(err, ERR_IO, errno, "cannot stat chain '%s'", c->path);
	int vfd = -1, batched = 0;
	struct chain *v = NULL;
	pthread_mutex_lock(&fdc.mu);
	enum err_code rc = register_locked(c, &st, err);
	if (rc) {
		pthread_mutex_unlock(&fdc.mu);
		return rc;
	}
	if (fdc.open >= cap_locked())
		v = evict_locked(&vfd, &batched);
	c->fd = fd;
	c->pins = 1;
	fdc.open++;
	mru_push(c);
	pthread_mutex_unlock(&fdc.mu);
	if (v)
		evict_finish(v, vfd, batched);
	return ERR_OK;
}

static enum err_code reopen(struct chain *c, int *fd_out, struct err *err)
{
	int fd = open(c->path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && evict_some(EVICT_ON_EMFILE))
		fd = open(c->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
				 "cannot reopen chain '%s'", c->path);
	struct stat st;
	int first = !c->registered && c->trusted_size;
	if (fstat(fd, &st) != 0 || (!first && (st.st_dev != c->dev || st.st_ino != c->ino))) {
		close(fd);
		return err_set(err, ERR_CORRUPT, "chain '%s' was replaced on disk while open",
			       c->path);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK
			       ? err_set(err, ERR_CONFLICT, "chain '%s' is locked by another process",
					 c->path)
			       : err_errno(err, ERR_IO, e, "cannot lock chain '%s'", c->path);
	}
	enum err_code rc = first ? first_open(c, fd, &st, err) : ERR_OK;
	if (!rc)
		*fd_out = fd;
	return rc;
}

enum err_code chain_fd_get(struct chain *c, int *fd_out, struct err *err)
{
	pthread_mutex_lock(&fdc.mu);
	while (c->fd_moving)
		pthread_cond_wait(&fdc.cv, &fdc.mu);
	if (c->fd >= 0) {
		c->pins++;
		if (fdc.mru != c) {
			mru_unlink(c);
			mru_push(c);
		}
		*fd_out = c->fd;
		pthread_mutex_unlock(&fdc.mu);
		return ERR_OK;
	}
	int vfd = -1, fd = -1, batched = 0;
	struct chain *v = fdc.open >= cap_locked() ? evict_locked(&vfd, &batched) : NULL;
	c->fd_moving = 1;
	fdc.open++;
	pthread_mutex_unlock(&fdc.mu);
	if (v)
		evict_finish(v, vfd, batched);
	enum err_code rc = reopen(c, &fd, err);
	pthread_mutex_lock(&fdc.mu);
	c->fd_moving = 0;
	if (rc) {
		fdc.open--;
	} else {
		c->fd = fd;
		c->pins++;
		fdc.reopens++;
		mru_push(c);
		*fd_out = fd;
	}
	pthread_cond_broadcast(&fdc.cv);
	pthread_mutex_unlock(&fdc.mu);
	return rc;
}

void chain_fd_put(struct chain *c)
{
	pthread_mutex_lock(&fdc.mu);
	c->pins--;
	pthread_mutex_unlock(&fdc.mu);
}

int chain_fd_release(struct chain *c)
{
	pthread_mutex_lock(&fdc.mu);
	while (c->fd_moving)
		pthread_cond_wait(&fdc.cv, &fdc.mu);
	int fd = c->fd;
	if (fd >= 0) {
		mru_unlink(c);
		fdc.open--;
		c->fd = -1;
	}
	if (c->registered)
		tab_remove(c);
	pthread_mutex_unlock(&fdc.mu);
	return fd;
}
