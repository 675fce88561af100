/* test_pool.c - the worker pool: every job runs, delayed jobs run after their
 * delay and in due order, jobs may submit jobs, freeing runs what is queued, and a
 * stopped pool refuses jobs until it is freed. */
#include "tests/support/testutil.h"

#include <pthread.h>
#include <string.h>

#include "supervisor/pool.h"

struct counter {
	pthread_mutex_t lock;
	int n;
	int order[16];
	int64_t ran_at[16];
};

static struct counter C;

static void bump(void *arg)
{
	pthread_mutex_lock(&C.lock);
	int i = (int)(intptr_t)arg;
	if (C.n < 16) {
		C.order[C.n] = i;
		C.ran_at[C.n] = pool_now_ms();
	}
	C.n++;
	pthread_mutex_unlock(&C.lock);
}

static void reset(void)
{
	memset(&C, 0, sizeof(C));
	pthread_mutex_init(&C.lock, NULL);
}

static void test_all_jobs_run(void **state)
{
	(void)state;
	reset();
	struct pool *p;
	assert_int_equal(pool_new(3, &p, NULL), ERR_OK);
	assert_int_equal(pool_threads(p), 3);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(pool_submit(p, bump, (void *)(intptr_t)i), ERR_OK);
	pool_free(p);
	assert_int_equal(C.n, 1000);
}

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void wait_gate(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void test_delayed_order(void **state)
{
	(void)state;
	reset();
	struct pool *p;
	assert_int_equal(pool_new(1, &p, NULL), ERR_OK);
	/* The one worker is held until all three are queued, so a slow machine
	 * cannot make the delayed jobs due before the immediate one is queued. */
	pthread_mutex_lock(&gate_lock);
	gate_open = 0;
	pthread_mutex_unlock(&gate_lock);
	pool_submit(p, wait_gate, NULL);
	int64_t t0 = pool_now_ms();
	pool_submit_after(p, 120, bump, (void *)3);
	pool_submit_after(p, 60, bump, (void *)2);
	pool_submit(p, bump, (void *)1);
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	while (1) {
		pthread_mutex_lock(&C.lock);
		int n = C.n;
		pthread_mutex_unlock(&C.lock);
		if (n == 3)
			break;
	}
	assert_int_equal(C.order[0], 1);
	assert_int_equal(C.order[1], 2);
	assert_int_equal(C.order[2], 3);
	/* never early (a lower bound, not a duration assertion) */
	assert_true(C.ran_at[1] - t0 >= 60);
	assert_true(C.ran_at[2] - t0 >= 120);
	pool_free(p);
}

static struct pool *P;

static void chain_job(void *arg)
{
	intptr_t left = (intptr_t)arg;
	bump(arg);
	if (left > 0)
		pool_submit(P, chain_job, (void *)(left - 1));
}

static void test_jobs_submit_jobs_and_free_drains(void **state)
{
	(void)state;
	reset();
	assert_int_equal(pool_new(2, &P, NULL), ERR_OK);
	pool_submit(P, chain_job, (void *)(intptr_t)9);
	pool_submit_after(P, 60000, bump, (void *)99);   /* due far later: run at free */
	while (1) {
		pthread_mutex_lock(&C.lock);
		int n = C.n;
		pthread_mutex_unlock(&C.lock);
		if (n >= 10)
			break;
	}
	pool_free(P);
	assert_int_equal(C.n, 11);
	pool_free(NULL);
}

/* A stopped pool ran what was queued (a delayed job at once) and refuses every
 * later job, yet stays valid until freed: the supervisor stops its pool at
 * shutdown while the cluster's threads and the HTTP threads may still submit
 * (they were handed NULL, and one crashed a node). */
static void test_stopped_pool_refuses(void **state)
{
	(void)state;
	reset();
	struct pool *p;
	assert_int_equal(pool_new(2, &p, NULL), ERR_OK);
	assert_int_equal(pool_submit_after(p, 60000, bump, (void *)1), ERR_OK);
	pool_stop(p);
	assert_int_equal(C.n, 1);                    /* the delayed job ran at the stop */
	assert_int_equal(pool_submit(p, bump, (void *)2), ERR_UNAVAILABLE);
	assert_int_equal(pool_submit_after(p, 10, bump, (void *)3), ERR_UNAVAILABLE);
	pool_stop(p);                                /* again: nothing */
	assert_int_equal(C.n, 1);
	pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_jobs_run),
		cmocka_unit_test(test_delayed_order),
		cmocka_unit_test(test_jobs_submit_jobs_and_free_drains),
		cmocka_unit_test(test_stopped_pool_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
