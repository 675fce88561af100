/* flusher.c - group commit across actors for events nobody waits on.
 *
 * Calls and host calls are appended without a sync (record_event_ex with
 * defer_sync) and their actor is marked dirty. This thread wakes within a
 * millisecond of the first mark (5 ms while marks keep coming), takes the whole
 * dirty list, and for each actor syncs its chain once, writes the index rows in
 * one transaction and only then reports the events to subscribers. So a busy
 * actor pays one fdatasync per batch instead of one per event, while what anyone
 * sees (streams, pages, answers to requests, which sync first) is on disk. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "supervisor/supervisor.h"

#include "src/util/histo.h"
#include "src/util/log.h"
#include "supervisor/record.h"

#define FLUSH_WINDOW_US 1000         /* gather marks for up to 1 ms */
/* ... and for 5 ms when marks keep coming (a round starts within 5 ms of the last
 * one's end): under load each round then indexes several spawns or messages in
 * one SQLite transaction, whose pages (the right ends of the runs' indexes, the
 * lifecycle log) are written once for all, not once each. Measured (docs/
 * benchmarks.md, session 21): 38% fewer bytes written per spawn, 5-7% less CPU. */
#define FLUSH_WINDOW_BUSY_US 5000
#define FLUSH_BUSY_GAP_US 5000
#define SETTLE_MAX_S 2               /* a reader waits for owed index writes this long */
/* From this many dirty chains on, one syncfs() beats one fdatasync each. */
#define FLUSH_SYNCFS_MIN 8

void flusher_mark(struct supervisor *s, struct actor *a)
{
	/* Start-up recovery writes thousands of chains; one syncfs at its end
	 * (sync_all) makes them durable together. */
	if (__atomic_load_n(&s->recovering, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&s->flush_lock);
	if (!s->flusher_running) {
		pthread_mutex_unlock(&s->flush_lock);
		record_sync(s, a);
		return;
	}
	if (!a->dirty) {
		if (s->ndirty == s->capdirty) {
			size_t cap = s->capdirty ? s->capdirty * 2 : 64;
			struct actor **d = realloc(s->dirty, cap * sizeof(*d));
			if (!d) {
				pthread_mutex_unlock(&s->flush_lock);
				record_sync(s, a);      /* out of memory: sync now */
				return;
			}
			s->dirty = d;
			s->capdirty = cap;
		}
		a->dirty = 1;
		actor_ref(s, a);
		s->dirty[s->ndirty++] = a;
		if (s->ndirty == 1)
			pthread_cond_signal(&s->flush_cond);
	}
	pthread_mutex_unlock(&s->flush_lock);
}

void flusher_windows(unsigned *quiet_us, unsigned *busy_us)
{
	const char *env = getenv("THEATER_TEST_FLUSH_WINDOW_MS");
	int ms = env ? atoi(env) : 0;
	*quiet_us = FLUSH_WINDOW_US;
	*busy_us = FLUSH_WINDOW_BUSY_US;
	if (ms <= 0 || ms > 10000)
		return;
	log_warn("flusher", "THEATER_TEST_FLUSH_WINDOW_MS=%d: deferred events wait that long "
		 "to be indexed and reported (for tests; never in production)", ms);
	*quiet_us = *busy_us = (unsigned)ms * 1000u;
}

void flusher_index_owe(struct supervisor *s, struct actor *a)
{
	if (a->index_owed)
		return;
	a->index_owed = 1;
	__atomic_add_fetch(&s->index_owed, 1, __ATOMIC_ACQ_REL);   /* no one waits for a rise */
}

void flusher_index_paid(struct supervisor *s, struct actor *a)
{
	if (!a->index_owed)
		return;
	a->index_owed = 0;
	pthread_mutex_lock(&s->flush_lock);
	if (__atomic_sub_fetch(&s->index_owed, 1, __ATOMIC_ACQ_REL) == 0)
		pthread_cond_broadcast(&s->settle_cond);
	pthread_mutex_unlock(&s->flush_lock);
}

/* Waits for the index writes owed by spawns answered before now: each was marked
 * for the flusher before its answer went out, so it is on the dirty list or in
 * the round running now. Those rounds, not every owe (spawns keep coming under
 * load), are what a reader waits for. */
void flusher_index_settle(struct supervisor *s)
{
	if (!__atomic_load_n(&s->index_owed, __ATOMIC_ACQUIRE))
		return;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SETTLE_MAX_S;
	pthread_mutex_lock(&s->flush_lock);
	uint64_t want = s->batches_taken + (s->ndirty ? 1 : 0);
	int rc = 0;
	while (s->batches_done < want && s->flusher_running && rc != ETIMEDOUT &&
	       __atomic_load_n(&s->index_owed, __ATOMIC_ACQUIRE))
		rc = pthread_cond_timedwait(&s->settle_cond, &s->flush_lock, &until);
	pthread_mutex_unlock(&s->flush_lock);
	if (rc == ETIMEDOUT)
		log_warn_limited("flusher",
				 "spawns answered were not indexed within %d s; the index is "
				 "read without them",
				 SETTLE_MAX_S);
}

/* What the actors' sends wrote into other chains before the syncfs is durable
 * too: tell those chains, so the senders' record_sync need not sync them again. */
static void mark_deps(struct supervisor *s, struct send_dep **deps, size_t *ndeps, size_t n,
		      int synced)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ndeps[i]; k++) {
			if (synced && deps[i][k].to->chain)
				chain_mark_synced(deps[i][k].to->chain, deps[i][k].upto);
			actor_unref(s, deps[i][k].to);
		}
		free(deps[i]);
	}
}

/* Something of a's is written and not yet durable: its own chain, or what its
 * sends wrote into other chains. */
static int needs_sync(struct actor *a)
{
	pthread_mutex_lock(&a->deps_lock);
	int deps = a->ndeps != 0;
	pthread_mutex_unlock(&a->deps_lock);
	return deps || (a->chain && chain_unsynced(a->chain));
}

void flusher_sync_batch(struct supervisor *s, struct actor **v, size_t n)
{
	/* Marked chains that a sync of their own made durable since (a spawn's
	 * `started`, say) need nothing more: a syncfs for them would only write out
	 * and flush everyone else's dirty pages. */
	size_t need = 0;
	for (size_t i = 0; i < n && need < FLUSH_SYNCFS_MIN; i++)
		need += needs_sync(v[i]);
	int big = need >= FLUSH_SYNCFS_MIN;
	uint64_t *upto = big ? calloc(n, sizeof(*upto)) : NULL;
	struct send_dep **deps = big ? calloc(n, sizeof(*deps)) : NULL;
	size_t *ndeps = big ? calloc(n, sizeof(*ndeps)) : NULL;
	struct err e = {0};
	if (upto && deps && ndeps) {
		for (size_t i = 0; i < n; i++) {
			ndeps[i] = record_deps_snapshot(s, v[i], &deps[i]);
			upto[i] = v[i]->chain ? chain_written(v[i]->chain) : 0;
		}
		int ok = chain_syncfs(s->chains_dir, &e) == ERR_OK;
		if (!ok)
			log_error_limited("flusher", "%s; syncing chains one by one", e.msg);
		for (size_t i = 0; ok && i < n; i++)
			if (v[i]->chain)
				chain_mark_synced(v[i]->chain, upto[i]);
		mark_deps(s, deps, ndeps, n, ok);
	}
	free(upto);
	free(deps);
	free(ndeps);
	/* What the syncfs covered needs no fdatasync: record_sync only indexes and
	 * reports it (and syncs what was written since), all in one transaction (so
	 * are spawns answered before their index write: record.c, "index later"). */
	int batch = n > 1 && db_batch_begin(s->cfg.db, &e) == ERR_OK;
	for (size_t i = 0; i < n; i++)
		record_sync(s, v[i]);
	if (batch && db_batch_end(s->cfg.db, &e) != ERR_OK)
		log_error_limited("flusher", "cannot commit the index of %zu chains: %s", n, e.msg);
}

static void flush_all(struct supervisor *s, struct actor **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&s->flush_lock);
		list[i]->dirty = 0;       /* new events from now on mark it again */
		pthread_mutex_unlock(&s->flush_lock);
	}
	flusher_sync_batch(s, list, n);
	for (size_t i = 0; i < n; i++)
		actor_unref(s, list[i]);
	free(list);
}

static void *flusher_main(void *arg)
{
	pthread_setname_np(pthread_self(), "flusher");
	struct supervisor *s = arg;
	int64_t last_end = 0;
	pthread_mutex_lock(&s->flush_lock);
	for (;;) {
		while (!s->ndirty && !s->flush_stop)
			pthread_cond_wait(&s->flush_cond, &s->flush_lock);
		if (!s->ndirty && s->flush_stop)
			break;
		if (!s->flush_stop) {     /* let a batch gather */
			pthread_mutex_unlock(&s->flush_lock);
			unsigned w = histo_now_us() - last_end < FLUSH_BUSY_GAP_US
					     ? s->flush_busy_us : s->flush_window_us;
			struct timespec ts = {w / 1000000, (long)(w % 1000000) * 1000};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&s->flush_lock);
		}
		struct actor **list = s->dirty;
		size_t n = s->ndirty;
		s->dirty = NULL;
		s->ndirty = s->capdirty = 0;
		s->batches_taken++;
		pthread_mutex_unlock(&s->flush_lock);
		flush_all(s, list, n);
		last_end = histo_now_us();
		pthread_mutex_lock(&s->flush_lock);
		s->batches_done++;
		pthread_cond_broadcast(&s->settle_cond);
	}
	pthread_mutex_unlock(&s->flush_lock);
	return NULL;
}

/* ---- the committer: group commit for writers that wait ----
 *
 * A message accepted over the API is appended without a sync under its actor's
 * record lock, then queued here with the chain's written length. This thread
 * takes everything queued, makes each chain durable up to the largest length
 * queued for it (one fdatasync per chain, or one syncfs for many chains), and
 * then runs the continuations, which queue the mail and answer 202 (the
 * flusher indexes and reports the events, as for every deferred event). Messages
 * that arrive while a sync runs wait for the next one, so a sync covers every
 * message written during the previous one: the leader/follower of a group
 * commit, without a thread per waiting writer and with no lock held across the
 * sync. */

struct commit_wait {
	struct commit_wait *next;
	struct actor *a;
	uint64_t upto;
	flusher_commit_fn fn;
	void *arg;
};

/* One chain of a batch: the largest length to make durable and the outcome. */
struct commit_chain {
	struct actor *a;
	uint64_t upto;
	struct err err;
};

static void commit_sync_one(struct commit_chain *c)
{
	if (c->a->chain)
		chain_sync_upto(c->a->chain, c->upto, &c->err);
}

static size_t commit_chain_of(struct commit_chain *v, size_t n, const struct actor *a)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].a == a)
			return i;
	return n;
}

static void commit_batch(struct supervisor *s, struct commit_wait *list)
{
	size_t n = 0;
	for (struct commit_wait *w = list; w; w = w->next)
		n++;
	struct commit_chain *v = calloc(n, sizeof(*v));
	size_t nv = 0;
	for (struct commit_wait *w = list; v && w; w = w->next) {
		size_t k = commit_chain_of(v, nv, w->a);
		if (k == nv)
			v[nv++] = (struct commit_chain){.a = w->a};
		if (w->upto > v[k].upto)
			v[k].upto = w->upto;
	}
	struct err e = {0};
	if (!v) {                   /* out of memory: one sync per message */
		for (struct commit_wait *w = list; w; w = w->next) {
			struct commit_chain one = {.a = w->a, .upto = w->upto};
			commit_sync_one(&one);
			if (!one.err.code && supervisor_replica_ack(s, w->a->run.id, &one.err))
				log_error_limited("committer", "%s", one.err.msg);
			w->fn(s, w->arg, one.err.code, one.err.code ? &one.err : NULL);
		}
		return;
	}
	int all = 0;
	if (nv >= FLUSH_SYNCFS_MIN) {
		all = chain_syncfs(s->chains_dir, &e) == ERR_OK;
		if (!all)
			log_error_limited("committer", "%s; syncing chains one by one", e.msg);
		for (size_t i = 0; all && i < nv; i++)
			if (v[i].a->chain)
				chain_mark_synced(v[i].a->chain, v[i].upto);
	}
	for (size_t i = 0; !all && i < nv; i++)
		commit_sync_one(&v[i]);
	/* The flusher, marked for the same events, indexes and reports them within
	 * its window: not here, where an index commit per batch would cost a lone
	 * writer one SQLite transaction per message and delay its answer. */
	struct err rep = {0};       /* cluster mode: acknowledged by the stream too, */
	supervisor_replica_wait(s, &rep);
	for (size_t i = 0; !rep.code && i < nv; i++)   /* and each actor still ours */
		if (!v[i].err.code)
			supervisor_replica_confirm(s, v[i].a->run.id, &v[i].err);
	for (struct commit_wait *w = list; w; w = w->next) {
		struct commit_chain *c = &v[commit_chain_of(v, nv, w->a)];
		const struct err *why = c->err.code ? &c->err : rep.code ? &rep : NULL;
		w->fn(s, w->arg, why ? why->code : ERR_OK, why);
	}
	free(v);
}

static void *committer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "committer");
	struct supervisor *s = arg;
	pthread_mutex_lock(&s->flush_lock);
	for (;;) {
		while (!s->commits && !s->commit_stop)
			pthread_cond_wait(&s->commit_cond, &s->flush_lock);
		if (!s->commits)
			break;
		struct commit_wait *list = s->commits;
		s->commits = s->commits_tail = NULL;
		pthread_mutex_unlock(&s->flush_lock);
		commit_batch(s, list);
		while (list) {
			struct commit_wait *next = list->next;
			free(list);
			list = next;
		}
		pthread_mutex_lock(&s->flush_lock);
	}
	pthread_mutex_unlock(&s->flush_lock);
	return NULL;
}

void flusher_commit(struct supervisor *s, struct actor *a, uint64_t upto,
		    flusher_commit_fn fn, void *arg)
{
	struct commit_wait *w = malloc(sizeof(*w));
	pthread_mutex_lock(&s->flush_lock);
	if (w && s->committer_running) {
		*w = (struct commit_wait){.a = a, .upto = upto, .fn = fn, .arg = arg};
		if (s->commits_tail)
			s->commits_tail->next = w;
		else
			s->commits = w;
		s->commits_tail = w;
		if (s->commits == w)
			pthread_cond_signal(&s->commit_cond);
		pthread_mutex_unlock(&s->flush_lock);
		return;
	}
	pthread_mutex_unlock(&s->flush_lock);
	free(w);
	/* Not running (start-up, shutdown) or out of memory: sync here. */
	struct err e = {0};
	if (a->chain)
		chain_sync_upto(a->chain, upto, &e);
	if (!e.code)
		supervisor_replica_ack(s, a->run.id, &e);
	fn(s, arg, e.code, e.code ? &e : NULL);
}

/* flush_lock and flush_cond are initialized by supervisor_new and destroyed
 * by supervisor_free, so marks after the stop stay safe. commit_cond is used
 * only while the committer runs (under flush_lock). */
enum err_code flusher_start(struct supervisor *s, struct err *err)
{
	if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0)
		return err_set(err, ERR_INTERNAL, "cannot start the flusher thread");
	s->flusher_running = 1;
	pthread_cond_init(&s->commit_cond, NULL);
	s->commit_stop = 0;
	if (pthread_create(&s->committer, NULL, committer_main, s) != 0) {
		pthread_cond_destroy(&s->commit_cond);
		flusher_stop(s);
		return err_set(err, ERR_INTERNAL, "cannot start the committer thread");
	}
	pthread_mutex_lock(&s->flush_lock);
	s->committer_running = 1;
	pthread_mutex_unlock(&s->flush_lock);
	return ERR_OK;
}

void flusher_commit_stop(struct supervisor *s)
{
	pthread_mutex_lock(&s->flush_lock);
	int committer = s->committer_running;
	s->commit_stop = 1;
	s->committer_running = 0;   /* commits from now on sync at once */
	if (committer)
		pthread_cond_signal(&s->commit_cond);
	pthread_mutex_unlock(&s->flush_lock);
	if (committer) {            /* it answers what was queued before it ends */
		pthread_join(s->committer, NULL);
		pthread_cond_destroy(&s->commit_cond);
	}
}

void flusher_stop(struct supervisor *s)
{
	flusher_commit_stop(s);
	if (!s->flusher_running)
		return;
	pthread_mutex_lock(&s->flush_lock);
	s->flush_stop = 1;
	s->flusher_running = 0;     /* marks from now on sync at once */
	pthread_cond_signal(&s->flush_cond);
	pthread_mutex_unlock(&s->flush_lock);
	pthread_join(s->flusher, NULL);
}
