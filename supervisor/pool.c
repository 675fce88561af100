/* pool.c - worker threads with a due-time ordered job list; see pool.h.
 *
 * One mutex guards the queue. Immediate jobs go to a FIFO; delayed jobs sit in a
 * small binary heap keyed by due time. Workers take due heap entries first, then
 * the FIFO, and sleep on the condition variable until the next due time. */
#include "supervisor/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "src/util/deadline.h"

struct job {
	pool_fn fn;
	void *arg;
	int64_t due;
	uint64_t order;
	struct job *next;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;     /* immediate FIFO */
	struct job **heap;           /* delayed jobs, min-heap on (due, order) */
	size_t nheap, capheap;
	uint64_t order;
	int stopping;                /* set by pool_stop only */
	unsigned nthreads;
	pthread_t *threads;
};

int64_t pool_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int earlier(const struct job *a, const struct job *b)
{
	return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void heap_push(struct pool *p, struct job *j)
{
	size_t i = p->nheap++;
	p->heap[i] = j;
	while (i > 0 && earlier(p->heap[i], p->heap[(i - 1) / 2])) {
		struct job *t = p->heap[i];
		p->heap[i] = p->heap[(i - 1) / 2];
		p->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct job *heap_pop(struct pool *p)
{
	struct job *top = p->heap[0];
	p->heap[0] = p->heap[--p->nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < p->nheap && earlier(p->heap[l], p->heap[m]))
			m = l;
		if (r < p->nheap && earlier(p->heap[r], p->heap[m]))
			m = r;
		if (m == i)
			break;
		struct job *t = p->heap[i];
		p->heap[i] = p->heap[m];
		p->heap[m] = t;
		i = m;
	}
	return top;
}

/* Called with the lock held; returns a runnable job or NULL after waiting. */
static struct job *take(struct pool *p)
{
	int64_t now = pool_now_ms();
	if (p->nheap && (p->heap[0]->due <= now || p->stopping))
		return heap_pop(p);
	if (p->head) {
		struct job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		return j;
	}
	if (p->stopping)
		return NULL;
	if (p->nheap) {
		int64_t due = p->heap[0]->due;
		struct timespec ts = deadline_after_ms(CLOCK_MONOTONIC, due - now);
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	} else {
		pthread_cond_wait(&p->cond, &p->lock);
	}
	return NULL;
}

static void *worker(void *arg)
{
	pthread_setname_np(pthread_self(), "pool-worker");
	struct pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j = take(p);
		if (!j) {
			if (p->stopping && !p->head && !p->nheap)
				break;
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

enum err_code pool_new(unsigned nthreads, struct pool **out, struct err *err)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(err, ERR_NOMEM, "cannot allocate worker pool");
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->nthreads = nthreads ? nthreads : 2;
	p->threads = calloc(p->nthreads, sizeof(pthread_t));
	p->capheap = 64;
	p->heap = calloc(p->capheap, sizeof(*p->heap));
	if (!p->threads || !p->heap) {
		free(p->threads);
		free(p->heap);
		free(p);
		return err_set(err, ERR_NOMEM, "cannot allocate worker pool");
	}
	for (unsigned i = 0; i < p->nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			p->nthreads = i;
			pool_free(p);
			return err_set(err, ERR_INTERNAL, "cannot start worker thread %u", i);
		}
	}
	*out = p;
	return ERR_OK;
}

void pool_stop(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	int again = p->stopping;
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (again)
		return;             /* joined by the first call */
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_lock(&p->lock);
	while (p->nheap)
		free(heap_pop(p));
	pthread_mutex_unlock(&p->lock);
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pool_stop(p);
	free(p->heap);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

static enum err_code submit(struct pool *p, int64_t due, pool_fn fn, void *arg, int delayed)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return ERR_NOMEM;
	j->fn = fn;
	j->arg = arg;
	j->due = due;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return ERR_UNAVAILABLE;
	}
	j->order = p->order++;
	if (delayed) {
		if (p->nheap == p->capheap) {
			struct job **h = realloc(p->heap, 2 * p->capheap * sizeof(*h));
			if (!h) {
				pthread_mutex_unlock(&p->lock);
				free(j);
				return ERR_NOMEM;
			}
			p->heap = h;
			p->capheap *= 2;
		}
		heap_push(p, j);
		/* Idle workers sleep until the earliest timer: only a new earliest one
		 * needs them awake (every spawn's 30 s wait timer woke them all). */
		if (p->heap[0] == j)
			pthread_cond_broadcast(&p->cond);
	} else {
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return ERR_OK;
}

enum err_code pool_submit(struct pool *p, pool_fn fn, void *arg)
{
	return submit(p, 0, fn, arg, 0);
}

enum err_code pool_submit_after(struct pool *p, uint32_t delay_ms, pool_fn fn, void *arg)
{
	if (delay_ms == 0)
		return submit(p, 0, fn, arg, 0);
	return submit(p, pool_now_ms() + delay_ms, fn, arg, 1);
}

unsigned pool_threads(const struct pool *p)
{
	return p->nthreads;
}
