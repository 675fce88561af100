/* host_timing.c - theater:simple/timing: now and a bounded sleep.
 *
 * sleep parks the actor (host_wait_end): its worker goes on with other actors
 * and the call resumes when the time is up. It is bounded by the handler's
 * `max_sleep_ms` or, in the reference's spelling, `max_sleep_duration`
 * (milliseconds; default 1 s, never above 1 h; never above 10 s where the call
 * cannot park and blocks its worker: in init). A longer request is
 * refused without sleeping (-3), so an actor learns the bound at once instead
 * of silently sleeping less than it asked. permission_policy.timing may
 * disallow the capability (now and sleep answer -3) or restrict it with
 * max_sleep_duration and min_sleep_duration (ms; a sleep outside is -3).
 */
#include <stdlib.h>
#include <time.h>

#include "supervisor/host.h"

#define MOD "theater:simple/timing"
#define SLEEP_DEFAULT_MAX_MS 1000
#define SLEEP_HARD_MAX_MS 10000           /* a sleep that blocks its worker (init) */
#define SLEEP_PARKED_MAX_MS 3600000       /* a parked sleep frees its worker */

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

/* The handler's bound within [0, the hard bound]: max_sleep_ms, or the
 * reference's spelling max_sleep_duration (also milliseconds). */
static int64_t sleep_cap(struct actor *a, int parks)
{
	int64_t hard = parks ? SLEEP_PARKED_MAX_MS : SLEEP_HARD_MAX_MS;
	const json_t *cfg = host_handler_config(a, GRANT_TIMING);
	const json_t *v = cfg ? json_object_get(cfg, "max_sleep_ms") : NULL;
	if (!v && cfg)
		v = json_object_get(cfg, "max_sleep_duration");
	if (!json_is_integer(v))
		return SLEEP_DEFAULT_MAX_MS;
	json_int_t cap = json_integer_value(v);
	return cap < 0 ? 0 : cap > hard ? hard : (int64_t)cap;
}

/* The bound with permission_policy.timing's max_sleep_duration (ms) when it
 * restricts. */
static int64_t sleep_max(struct actor *a, int parks)
{
	int64_t cap = sleep_cap(a, parks), pol = host_policy_int(a, GRANT_TIMING, "max_sleep_duration", -1);
	return pol >= 0 && pol < cap ? pol : cap;
}

struct sleep_ctx {
	int64_t ms;
};

static void sleep_done(struct wasm_caller *c, struct actor *a, struct host_wait *w, void *ctx,
		       struct wasm_value *results)
{
	(void)c;
	(void)w;
	host_set_i32(&results[0], 0);
	host_record(a, MOD, "sleep", json_pack("{s:I}", "ms", (json_int_t)((struct sleep_ctx *)ctx)->ms),
		    json_pack("{s:i}", "result", 0));
}

static enum err_code t_sleep(struct wasm_caller *c, void *user, const struct wasm_value *args,
			     struct wasm_value *results, struct err *err)
{
	if (host_disallowed(user, GRANT_TIMING, MOD, "sleep", results, 0))
		return ERR_OK;
	int parks = host_can_park(c, user);
	int64_t ms = (int64_t)args[0].of.i64, cap = sleep_max(user, parks);
	int64_t min = host_policy_int(user, GRANT_TIMING, "min_sleep_duration", 0);
	int32_t rc = 0;
	if (ms < 0)
		rc = HOST_EINVAL;
	else if (ms > cap || ms < min)
		rc = HOST_EDENIED;
	struct sleep_ctx *x = rc || ms == 0 ? NULL : malloc(sizeof(*x));
	struct host_wait *w = x ? host_wait_new() : NULL;
	if (w) {
		x->ms = ms;
		host_wait_unref(w);      /* nothing answers a sleep but its time */
		return host_wait_end(c, user, w, (uint32_t)ms, sleep_done, x, free, results, err);
	}
	free(x);
	if (!rc && ms > 0)
		rc = HOST_EFAILED;       /* out of memory */
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
