/* channel - two actors talking over a channel (docs/actor-abi.md, "Channels").
 *
 * Spawn it twice; then, over REST, tell one to open a channel to the other:
 *   POST /actors/A/requests  "open <B's id> hello"   -> "<channel id> welcome"
 *   POST /actors/A/requests  "send <channel id> ping" -> "0" (B answers "pong")
 *   POST /actors/B/requests  "send <channel id> hi"   -> "0" (either side sends)
 *   POST /actors/A/requests  "close <channel id>"     -> "0" (B hears the close)
 *   POST /actors/A/requests  "stop"                   -> A's run ends: every
 *                                          peer hears the close ("ended")
 * Its state is {"log": [...]}: every channel event it received, in order, as
 * {"on": "open" | "message" | "close", "env": the envelope the host gave}.
 * handle-channel-open refuses an opening message "reject" (reason "not
 * today") and accepts anything else with the message "welcome";
 * handle-channel-message answers "ping" with "pong" on the same channel.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/json.h"
#include "theater/libc.h"

/* The state with one more entry in its log. */
static struct jb logged(const char *state, uint32_t len, const char *on, const char *env,
			uint32_t env_len)
{
	struct js o, log;
	struct jb b;
	jb_init(&b, len + env_len + 64);
	jb_cstr(&b, "{\"log\":[");
	if (js_parse(state, len, &o) && js_get(o, "log", &log) && js_count(log) > 0) {
		jb_raw(&b, log.p + 1, log.n - 2);   /* the entries, without [ ] */
		jb_char(&b, ',');
	}
	jb_cstr(&b, "{\"on\":");
	jb_quote_cstr(&b, on);
	jb_cstr(&b, ",\"env\":");
	jb_raw(&b, env, env_len);
	jb_cstr(&b, "}]}");
	return b;
}

static struct theater_result *text(const char *state, uint32_t len, struct jb *out)
{
	return theater_ok(state, len, out->p, out->len);
}

/* The next space-separated word of [*p, end). */
static uint32_t word(const char **p, const char *end, const char **w)
{
	while (*p < end && **p == ' ')
		(*p)++;
	*w = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	return (uint32_t)(*p - *w);
}

static int64_t number(const char *w, uint32_t n)
{
	int64_t v = 0;
	for (uint32_t i = 0; i < n; i++)
		v = v * 10 + (w[i] - '0');
	return v;
}

static int is(const char *w, uint32_t n, const char *cmd)
{
	return n == theater_strlen(cmd) && memcmp(w, cmd, n) == 0;
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct js o;
	if (js_parse(state, len, &o) && js_is_object(o))
		return theater_ok(state, len, 0, 0);
	return theater_ok("{\"log\":[]}", 10, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *msg,
				      uint32_t msg_len)
{
	const char *p = msg, *end = msg + msg_len, *w, *arg;
	uint32_t n = word(&p, end, &w);
	uint32_t an = word(&p, end, &arg);
	const char *rest = p < end ? p + 1 : end;
	uint32_t rest_n = (uint32_t)(end - rest);
	struct jb out;
	jb_init(&out, 64);
	if (is(w, n, "open")) {
		struct theater_bytes got = {0, 0};
		int64_t rc = theater_open_channel(arg, an, rest, rest_n, &got);
		jb_int(&out, rc);
		jb_char(&out, ' ');
		jb_raw(&out, (const char *)(uintptr_t)got.ptr, got.len);
	} else if (is(w, n, "send")) {
		jb_int(&out, theater_send_on_channel(number(arg, an), rest, rest_n));
	} else if (is(w, n, "close")) {
		jb_int(&out, theater_close_channel(number(arg, an)));
	} else if (is(w, n, "stop")) {
		theater_shutdown("asked to stop", 13);
		jb_cstr(&out, "bye");
	} else {
		return theater_error(state, len, "commands: open ID MSG, send CH MSG, close CH, stop");
	}
	return text(state, len, &out);
}

THEATER_EXPORT("handle-channel-open")
struct theater_result *handle_channel_open(const char *state, uint32_t len, const char *env,
					   uint32_t env_len)
{
	struct js o, data;
	if (js_parse(env, env_len, &o) && js_get(o, "data", &data) && js_str_eq(data, "reject"))
		return theater_error(state, len, "not today");
	struct jb s = logged(state, len, "open", env, env_len);
	return theater_ok(s.p, s.len, "welcome", 7);
}

THEATER_EXPORT("handle-channel-message")
struct theater_result *handle_channel_message(const char *state, uint32_t len, const char *env,
					      uint32_t env_len)
{
	struct js o, data, ch;
	int64_t id = 0;
	if (js_parse(env, env_len, &o) && js_get(o, "channel", &ch) && js_int(ch, &id) &&
	    js_get(o, "data", &data) && js_str_eq(data, "ping"))
		theater_send_on_channel(id, "pong", 4);
	struct jb s = logged(state, len, "message", env, env_len);
	return theater_ok(s.p, s.len, 0, 0);
}

THEATER_EXPORT("handle-channel-close")
struct theater_result *handle_channel_close(const char *state, uint32_t len, const char *env,
					    uint32_t env_len)
{
	struct jb s = logged(state, len, "close", env, env_len);
	return theater_ok(s.p, s.len, 0, 0);
}
