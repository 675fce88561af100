/* waiter - the actor of the parking benchmark (bench/park).
 *
 * A request "http <url>" makes one send-http GET of url and answers the
 * status; "sleep <ms>" sleeps; anything else is echoed (the "other actor"
 * whose latency the benchmark measures while the rest wait).
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	if (req_len > 5 && memcmp(req, "http ", 5) == 0) {
		char *json = theater_alloc(req_len + 16);
		struct theater_bytes b = {0, 0};
		if (!json)
			return theater_error(state, len, "out of memory");
		memcpy(json, "{\"url\":\"", 8);
		memcpy(json + 8, req + 5, req_len - 5);
		memcpy(json + 8 + req_len - 5, "\"}", 2);
		int32_t rc = theater_send_http(json, req_len - 5 + 10, &b);
		return rc < 0 ? theater_error(state, len, "send-http failed")
			      : theater_ok(state, len, "ok", 2);
	}
	if (req_len > 6 && memcmp(req, "sleep ", 6) == 0) {
		int64_t ms = 0;
		for (uint32_t i = 6; i < req_len && req[i] >= '0' && req[i] <= '9'; i++)
			ms = ms * 10 + (req[i] - '0');
		return theater_sleep(ms) < 0 ? theater_error(state, len, "sleep refused")
					     : theater_ok(state, len, "ok", 2);
	}
	return theater_ok(state, len, req, req_len);
}
