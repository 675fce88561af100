/* counter - an actor with state, messages and requests.
 *
 * State: {"count": n}. A message (handle-send) adds its integer to the count
 * ("5", "-2"), or 1 when it is not an integer. The request "get" answers the
 * count as a JSON number; any other request is an error, which leaves the
 * state as it was. init accepts an empty state (count 0) or an object whose
 * "count" is an integer; other members are dropped.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/json.h"

/* The count in a state; 0 when it is malformed. */
static int count_of(const char *state, uint32_t len, int64_t *out)
{
	struct js st, v;
	*out = 0;
	if (len == 0)
		return 1;
	if (!js_parse(state, len, &st) || !js_is_object(st))
		return 0;
	if (!js_get(st, "count", &v))
		return 1;
	return js_int(v, out);
}

/* The new state {"count":n}; the response (when asked) is the number inside it. */
static struct theater_result *answer(int64_t count, int respond)
{
	struct jb b;
	jb_init(&b, 32);
	jb_cstr(&b, "{\"count\":");
	jb_int(&b, count);
	jb_char(&b, '}');
	if (!jb_ok(&b))
		return theater_error(0, 0, "out of memory");
	if (!respond)
		return theater_ok(b.p, b.len, 0, 0);
	return theater_ok(b.p, b.len, b.p + 9, b.len - 10);
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	int64_t count;
	if (!count_of(state, len, &count))
		return theater_error(state, len, "the state must be a JSON object whose "
				     "'count' is an integer");
	theater_log("counter: ready", 14);
	return answer(count, 0);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	int64_t count, add = 1;
	struct js m;
	if (!count_of(state, len, &count))
		return theater_error(state, len, "the state is not {\"count\": n}");
	if (js_parse(msg, msg_len, &m) && !js_int(m, &add))
		add = 1;
	if (__builtin_add_overflow(count, add, &count))
		return theater_error(state, len, "the count would overflow");
	return answer(count, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	int64_t count;
	struct js r = {req, req_len};
	if (!count_of(state, len, &count))
		return theater_error(state, len, "the state is not {\"count\": n}");
	uint32_t s = js_ws(req, req_len, 0), e = req_len;
	while (e > s && (req[e - 1] == ' ' || req[e - 1] == '\n' || req[e - 1] == '\r' ||
			 req[e - 1] == '\t'))
		e--;
	r = (struct js){req + s, e - s};
	if (js_bytes_eq(r, "get") || js_str_eq(r, "get"))
		return answer(count, 1);
	return theater_error(state, len, "unknown request: the counter answers \"get\"");
}
