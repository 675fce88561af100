/* looper - an actor that never returns, to show the limits at work.
 *
 * init succeeds and the request "ping" answers "pong", so the actor runs and
 * answers; then any message (handle-send), or the request "loop", starts a loop
 * that never ends. The server's fuel budget or the call's deadline stops it:
 * the call fails and the run ends as `failed` (reason `fuel_exhausted` or
 * `deadline`), while every other actor keeps answering. Lower the limits in the
 * manifest ("limits": {"fuel": ..., "call_timeout_ms": ...}) to see it sooner.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"

/* Busy work that the optimiser cannot remove: every round stores to memory. */
static void spin(void)
{
	volatile uint32_t rounds = 0;
	for (;;)
		rounds = rounds + 1;
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	theater_log("looper: looping forever", 23);
	spin();
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	if (req_len == 4 && req[0] == 'l' && req[1] == 'o' && req[2] == 'o' && req[3] == 'p') {
		theater_log("looper: looping forever", 23);
		spin();
	}
	if (req_len == 4 && req[0] == 'p' && req[1] == 'i' && req[2] == 'n' && req[3] == 'g')
		return theater_ok(state, len, "pong", 4);
	return theater_error(state, len, "the looper answers \"ping\" and \"loop\"");
}
