/* agent - an AI-agent-style actor: it talks to an OpenAI-style chat-completion
 * endpoint over theater:simple/http-client and keeps the conversation in its
 * state.
 *
 * State: {"endpoint": "http(s)://.../v1/chat/completions", "model": "...",
 *         "system": "..." (optional), "max_messages": 40 (optional),
 *         "messages": [{"role": "user" | "assistant", "content": "..."}, ...]}
 * A request is the user's message (plain text). The actor POSTs
 * {"model", "messages": [system?, history..., the new user message]} with
 * send-http, reads choices[0].message.content from the answer, appends the user
 * message and that reply to "messages" (keeping the last max_messages) and
 * answers the reply as text. Anything that goes wrong (the host refusing the
 * URL, an error status, an answer without a reply) is an error and the
 * conversation stays as it was. The message "reset" (handle-send) forgets the
 * conversation.
 *
 * The endpoint's host must be in the manifest's http-client allowed_hosts, and
 * a loopback or private address also needs the server to allow it. There is no
 * API key: the state is recorded in the chain, so a secret does not belong
 * there; put a local gateway (or a local model server) in front instead.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/hosterr.h"
#include "theater/json.h"

#define DEFAULT_MAX_MESSAGES 40
#define MAX_MESSAGES_LIMIT 1000
#define PREVIEW 200

struct agent {
	const char *state;
	uint32_t state_len;
	struct js endpoint, model, system, messages;   /* raw JSON values; system may be empty */
	int64_t max_messages;
};

static int starts_with(struct js s, const char *prefix)
{
	uint32_t i = 0;
	for (; prefix[i]; i++)
		if (i >= s.n || s.p[i] != prefix[i])
			return 0;
	return 1;
}

static const char *agent_load(struct agent *a, const char *state, uint32_t len)
{
	struct js st, v, url;
	*a = (struct agent){state, len, {0, 0}, {0, 0}, {0, 0}, js_cstr("[]"), DEFAULT_MAX_MESSAGES};
	if (!js_parse(state, len, &st) || !js_is_object(st))
		return "the state must be a JSON object";
	if (!js_get(st, "endpoint", &a->endpoint) || !js_string(a->endpoint, &url) ||
	    !(starts_with(url, "http://") || starts_with(url, "https://")))
		return "the state needs an 'endpoint': an http:// or https:// URL";
	if (!js_get(st, "model", &a->model) || !js_is_string(a->model) || a->model.n < 3)
		return "the state needs a 'model' (a non-empty string)";
	if (js_get(st, "system", &v)) {
		if (!js_is_string(v))
			return "'system' must be a string";
		a->system = v;
	}
	if (js_get(st, "max_messages", &v) &&
	    (!js_int(v, &a->max_messages) || a->max_messages < 2 ||
	     a->max_messages > MAX_MESSAGES_LIMIT))
		return "'max_messages' must be an integer from 2 to 1000";
	if (js_get(st, "messages", &v)) {
		if (!js_is_array(v))
			return "'messages' must be an array";
		a->messages = v;
	}
	return 0;
}

/* Writes the elements of the history from index `skip` on, each preceded by a
 * comma unless it is the first thing in the array; returns how many. */
static uint32_t write_history(struct jb *b, struct js messages, uint32_t skip, int first)
{
	struct js k, v;
	uint32_t pos = 0, i = 0, n = 0;
	while (js_next(messages, &pos, &k, &v)) {
		if (i++ < skip)
			continue;
		if (!first || n)
			jb_char(b, ',');
		jb_raw(b, v.p, v.n);
		n++;
	}
	return n;
}

static void write_turn(struct jb *b, const char *role, const char *content, uint32_t n,
		       int quote)
{
	jb_cstr(b, "{\"role\":\"");
	jb_cstr(b, role);
	jb_cstr(b, "\",\"content\":");
	if (quote)
		jb_quote(b, content, n);
	else
		jb_raw(b, content, n);
	jb_char(b, '}');
}

/* The state with `messages` replaced by the history from `skip` on plus the
 * new turns (user, assistant); without turns: an empty conversation. */
static void write_state(struct jb *b, const struct agent *a, uint32_t skip, struct js user,
			struct js reply_raw)
{
	jb_cstr(b, "{\"endpoint\":");
	jb_raw(b, a->endpoint.p, a->endpoint.n);
	jb_cstr(b, ",\"model\":");
	jb_raw(b, a->model.p, a->model.n);
	if (a->system.n) {
		jb_cstr(b, ",\"system\":");
		jb_raw(b, a->system.p, a->system.n);
	}
	jb_cstr(b, ",\"max_messages\":");
	jb_int(b, a->max_messages);
	jb_cstr(b, ",\"messages\":[");
	if (user.n) {
		uint32_t kept = write_history(b, a->messages, skip, 1);
		if (kept)
			jb_char(b, ',');
		write_turn(b, "user", user.p, user.n, 1);
		jb_char(b, ',');
		write_turn(b, "assistant", reply_raw.p, reply_raw.n, 0);
	}
	jb_cstr(b, "]}");
}

/* The send-http request: a POST of the chat-completion JSON to the endpoint. */
static void write_http_request(struct jb *b, const struct agent *a, struct js user)
{
	struct jb chat;
	jb_init(&chat, a->messages.n + user.n + 256);
	jb_cstr(&chat, "{\"model\":");
	jb_raw(&chat, a->model.p, a->model.n);
	jb_cstr(&chat, ",\"messages\":[");
	if (a->system.n) {
		write_turn(&chat, "system", a->system.p, a->system.n, 0);
		jb_char(&chat, ',');
	}
	if (write_history(&chat, a->messages, 0, 1))
		jb_char(&chat, ',');
	write_turn(&chat, "user", user.p, user.n, 1);
	jb_cstr(&chat, "]}");
	if (!jb_ok(&chat)) {
		b->oom = 1;
		return;
	}
	jb_cstr(b, "{\"method\":\"POST\",\"url\":");
	jb_raw(b, a->endpoint.p, a->endpoint.n);
	jb_cstr(b, ",\"headers\":{\"Content-Type\":\"application/json\","
		"\"Accept\":\"application/json\"},\"body\":");
	jb_quote(b, chat.p, chat.len);
	jb_char(b, '}');
}

static struct theater_result *fail(const struct agent *a, const char *msg, struct js detail)
{
	struct jb b;
	jb_init(&b, 96 + PREVIEW);
	jb_cstr(&b, msg);
	if (detail.n) {
		jb_cstr(&b, ": ");
		jb_raw(&b, detail.p, detail.n < PREVIEW ? detail.n : PREVIEW);
	}
	jb_char(&b, 0);
	return theater_error(a->state, a->state_len, jb_ok(&b) ? b.p : msg);
}

/* The reply's raw JSON string from the endpoint's answer, or an error message. */
static const char *reply_of(struct js answer, struct js *reply, struct js *detail)
{
	struct js resp, v, body, chat, choice, msg;
	int64_t status;
	*detail = (struct js){0, 0};
	if (!js_parse(answer.p, answer.n, &resp) || !js_get(resp, "status", &v) ||
	    !js_int(v, &status))
		return "send-http answered something that is not a response";
	if (!js_get_string(resp, "body", &body))
		return "the endpoint's answer is not text";
	if (status < 200 || status > 299) {
		*detail = body;
		return "the endpoint answered an error status";
	}
	if (!js_parse(body.p, body.n, &chat) || !js_get(chat, "choices", &v) ||
	    !js_at(v, 0, &choice) || !js_get(choice, "message", &msg) ||
	    !js_get(msg, "content", reply) || !js_is_string(*reply)) {
		*detail = body;
		return "the endpoint's answer has no choices[0].message.content";
	}
	return 0;
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	struct agent a;
	const char *why = agent_load(&a, state, len);
	if (why)
		return theater_error(state, len, why);
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *msg,
				      uint32_t msg_len)
{
	struct agent a;
	struct js user = {msg, msg_len}, reply_raw, reply, detail;
	struct theater_bytes answer = {0, 0};
	const char *why = agent_load(&a, state, len);
	if (why)
		return theater_error(state, len, why);
	if (msg_len == 0)
		return theater_error(state, len, "send the user's message as the request");
	struct jb req;
	jb_init(&req, a.messages.n * 2 + msg_len * 2 + 512);
	write_http_request(&req, &a, user);
	if (!jb_ok(&req))
		return theater_error(state, len, "out of memory");
	int32_t rc = theater_send_http(req.p, req.len, &answer);
	if (rc < 0)
		return fail(&a, "send-http failed", js_cstr(hosterr_name(rc)));
	why = reply_of((struct js){(const char *)(uintptr_t)answer.ptr, answer.len}, &reply_raw,
		       &detail);
	if (why)
		return fail(&a, why, detail);
	uint32_t total = js_count(a.messages) + 2;
	uint32_t skip = total > a.max_messages ? total - (uint32_t)a.max_messages : 0;
	struct jb st;
	jb_init(&st, len + msg_len * 2 + reply_raw.n + 128);
	write_state(&st, &a, skip, user, reply_raw);
	if (!jb_ok(&st) || !js_string(reply_raw, &reply))
		return theater_error(state, len, "out of memory");
	return theater_ok(st.p, st.len, reply.p, reply.n);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	struct agent a;
	const char *why = agent_load(&a, state, len);
	if (why)
		return theater_error(state, len, why);
	if (!js_bytes_eq((struct js){msg, msg_len}, "reset"))
		return theater_error(state, len, "the agent understands the message \"reset\"; "
				     "ask it something with a request");
	struct jb st;
	jb_init(&st, len + 32);
	write_state(&st, &a, 0, (struct js){0, 0}, (struct js){0, 0});
	return jb_ok(&st) ? theater_ok(st.p, st.len, 0, 0) : theater_error(state, len, "out of memory");
}
