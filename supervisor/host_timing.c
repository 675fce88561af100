/* host_timing.c - theater:simple/timing: now and a bounded sleep.
 *
 * sleep blocks the worker thread that runs the actor, so it is bounded: by the
 * handler's `max_sleep_ms` or, in the reference's spelling, `max_sleep_duration`
 * (milliseconds; default 1 s, never above 10 s). A longer request is
 * refused without sleeping (-3), so an actor learns the bound at once instead
 * of silently sleeping less than it asked. permission_policy.timing may
 * disallow the capability (now and sleep answer -3) or restrict it with
 * max_sleep_duration and min_sleep_duration (ms; a sleep outside is -3).
 */
#include <errno.h>
#include <time.h>

#include "supervisor/host.h"

#define MOD "theater:simple/timing"
#define SLEEP_DEFAULT_MAX_MS 1000
#define SLEEP_HARD_MAX_MS 10000

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum err_code t_now(struct wasm_caller *c, void *user, const struct wasm_value *args,
			   struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_TIMING, MOD, "now", results, 1))
		return ERR_OK;
	int64_t now = unix_ms();
	results[0] = (struct wasm_value){.type = WASM_I64, .of.i64 = (uint64_t)now};
	host_record(user, MOD, "now", NULL, json_integer(now));
	return ERR_OK;
}

/* The handler's bound within [0, SLEEP_HARD_MAX_MS]: max_sleep_ms, or the
 * reference's spelling max_sleep_duration (also milliseconds). */
static int64_t sleep_cap(struct actor *a)
{
	const json_t *cfg = host_handler_config(a, GRANT_TIMING);
	const json_t *v = cfg ? json_object_get(cfg, "max_sleep_ms") : NULL;
	if (!v && cfg)
		v = json_object_get(cfg, "max_sleep_duration");
	if (!json_is_integer(v))
		return SLEEP_DEFAULT_MAX_MS;
	json_int_t cap = json_integer_value(v);
	return cap < 0 ? 0 : cap > SLEEP_HARD_MAX_MS ? SLEEP_HARD_MAX_MS : (int64_t)cap;
}

/* The bound with permission_policy.timing's max_sleep_duration (ms) when it
 * restricts. */
static int64_t sleep_max(struct actor *a)
{
	int64_t cap = sleep_cap(a), pol = host_policy_int(a, GRANT_TIMING, "max_sleep_duration", -1);
	return pol >= 0 && pol < cap ? pol : cap;
}

/* Sleeps ms on the monotonic clock, resuming after signals. */
static void sleep_ms(int64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

static enum err_code t_sleep(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_TIMING, MOD, "sleep", results, 0))
		return ERR_OK;
	int64_t ms = (int64_t)args[0].of.i64, cap = sleep_max(user);
	int64_t min = host_policy_int(user, GRANT_TIMING, "min_sleep_duration", 0);
	int32_t rc = 0;
	if (ms < 0)
		rc = HOST_EINVAL;
	else if (ms > cap || ms < min)
		rc = HOST_EDENIED;
	else if (ms > 0)
		sleep_ms(ms);
	host_set_i32(&results[0], rc);
	host_record(user, MOD, "sleep", json_pack("{s:I}", "ms", (json_int_t)ms),
		    rc == HOST_EDENIED ? json_pack("{s:i, s:I, s:I}", "result", rc, "max_sleep_ms",
						   (json_int_t)cap, "min_sleep_ms", (json_int_t)min)
				       : json_pack("{s:i}", "result", rc));
	return ERR_OK;
}

const struct host_fn host_timing_fns[] = {
	{MOD, "now", GRANT_TIMING, 0, 1, {0}, {WASM_I64}, t_now},
	{MOD, "sleep", GRANT_TIMING, 1, 1, {WASM_I64}, {WASM_I32}, t_sleep},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
