/* greeter - the first actor of docs/sdk.md (C section): it remembers the names
 * it is sent and greets them on request.
 *
 * State: {"names": [...]}. A message (handle-send) is a name to add; the
 * request "hello" answers "hello, <name>, ..."; any other request is refused
 * (an actor error: the server answers 422 actor_error, the state stays).
 * Build: see docs/sdk.md; tests/test_actor_harness.c runs the walkthrough. */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"
#include "theater/libc.h"
#include "theater/json.h"

/* init: keep the state we are given, or start with {"names":[]} */
THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct js st;
	if (len && js_parse(state, len, &st) && js_is_object(st))
		return theater_ok(state, len, 0, 0);
	static const char fresh[] = "{\"names\":[]}";
	return theater_ok(fresh, sizeof fresh - 1, 0, 0);
}

/* handle-send: a message is a name; add it to the list */
THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	struct js st, names, v;
	if (!js_parse(state, len, &st) || !js_get(st, "names", &names))
		return theater_error(state, len, "bad state");
	struct jb b;
	jb_init(&b, len + msg_len + 32);
	jb_cstr(&b, "{\"names\":[");
	uint32_t pos = 0, n = 0;
	while (js_next(names, &pos, 0, &v)) {
		if (n++)
			jb_char(&b, ',');
		jb_raw(&b, v.p, v.n);
	}
	if (n)
		jb_char(&b, ',');
	jb_quote(&b, msg, msg_len);
	jb_cstr(&b, "]}");
	if (!jb_ok(&b))
		return theater_error(state, len, "out of memory");
	theater_log("greeter: added a name", 21);
	return theater_ok(b.p, b.len, 0, 0);
}

/* handle-request: "hello" greets everyone; anything else is refused */
THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	struct js st, names, v, s;
	if (!js_bytes_eq((struct js){req, req_len}, "hello"))
		return theater_error(state, len, "unknown request: ask \"hello\"");
	if (!js_parse(state, len, &st) || !js_get(st, "names", &names))
		return theater_error(state, len, "bad state");
	struct jb b;
	jb_init(&b, 64);
	jb_cstr(&b, "hello");
	uint32_t pos = 0;
	while (js_next(names, &pos, 0, &v) && js_string(v, &s)) {
		jb_cstr(&b, ", ");
		jb_raw(&b, s.p, s.n);
	}
	return theater_ok(state, len, b.p, b.len);
}
