/* agent - an AI agent as an actor: an OpenAI-compatible chat client that keeps
 * its conversation in its state, authenticates with a secret it never sees,
 * retries when the model is rate-limited or failing, and answers the model's
 * tool calls by asking other actors.
 *
 * Its configuration is its state (the manifest's initial_state, merged with
 * the spawn's). The keys are a contract (docs/examples.md):
 *   endpoint          the chat-completions URL (http:// or https://); its host
 *                     must be in the http-client handler's allowed_hosts
 *   model             the model name
 *   api_key_secret    optional: the name of a server secret (PUT /secrets/NAME)
 *                     sent as "Authorization: Bearer {{secret:NAME}}"; the host
 *                     fills it in, so the key is never in the actor, its state
 *                     or its chain. The http-client handler must grant it
 *                     (`secrets = ["openai"]`).
 *   system            optional system prompt
 *   max_messages      conversation turns kept (default 40, 2..1000)
 *   retries           further attempts after a 429, a 5xx, a timeout or a failed
 *                     connection (default 3, 0..10)
 *   retry_backoff_ms  the first wait between attempts, doubled each time
 *                     (default 500; each wait at most 10 s, via timing/sleep)
 *   tools             optional: {"name": {"actor": "<id>", "description": "...",
 *                     "parameters": {JSON schema}}}; offered to the model as
 *                     functions; a call is answered by a request to that actor
 *                     with the call's arguments (a JSON text) as the message
 *   stream            true: ask the model to stream (OpenAI's `stream: true`
 *                     server-sent events) and relay its tokens as chunks of the
 *                     answer to a caller that streams (POST /actors/{id}/requests
 *                     with Accept: text/event-stream); the host relays them while
 *                     the model still writes (send-http's "relay"), and the agent
 *                     assembles the whole reply (text and tool calls) from the
 *                     events. Default false.
 *   messages          the conversation (user, assistant and tool turns)
 *
 * A request is the user's message (plain text); the answer is the model's
 * reply. Anything that fails (the host refusing, an error status after the
 * retries, an answer without a reply) is an error, and the conversation stays
 * as it was. The message "reset" (handle-send) forgets the conversation.
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"
#include "theater/hosterr.h"
#include "theater/json.h"

#define DEFAULT_MAX_MESSAGES 40
#define MAX_MESSAGES_LIMIT 1000
#define DEFAULT_RETRIES 3
#define MAX_RETRIES 10
#define DEFAULT_BACKOFF_MS 500
#define MAX_BACKOFF_MS 10000
#define MAX_TOOL_ROUNDS 4
#define TOOL_TIMEOUT_MS 10000
#define PREVIEW 200

struct agent {
	const char *state;
	uint32_t state_len;
	struct js st;                                  /* the state object */
	struct js endpoint, model, system, messages;   /* raw JSON values; system may be empty */
	struct js secret, tools;                       /* the secret's name (decoded); tools object */
	int64_t max_messages, retries, backoff_ms;
	int stream;
};

static int starts_with(struct js s, const char *prefix)
{
	uint32_t i = 0;
	for (; prefix[i]; i++)
		if (i >= s.n || s.p[i] != prefix[i])
			return 0;
	return 1;
}

/* A secret name as the server takes it: [A-Za-z0-9_.-], 1..128, no leading '.'. */
static int secret_name_ok(struct js s)
{
	if (s.n == 0 || s.n > 128 || s.p[0] == '.')
		return 0;
	for (uint32_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

static const char *int_key(struct js st, const char *key, int64_t min, int64_t max, int64_t *out,
			   const char *msg)
{
	struct js v;
	if (js_get(st, key, &v) && (!js_int(v, out) || *out < min || *out > max))
		return msg;
	return 0;
}

static const char *agent_load(struct agent *a, const char *state, uint32_t len)
{
	struct js v, url;
	const char *why;
	*a = (struct agent){.state = state, .state_len = len, .messages = js_cstr("[]"),
			    .max_messages = DEFAULT_MAX_MESSAGES, .retries = DEFAULT_RETRIES,
			    .backoff_ms = DEFAULT_BACKOFF_MS};
	if (!js_parse(state, len, &a->st) || !js_is_object(a->st))
		return "the state must be a JSON object";
	if (!js_get(a->st, "endpoint", &a->endpoint) || !js_string(a->endpoint, &url) ||
	    !(starts_with(url, "http://") || starts_with(url, "https://")))
		return "the state needs an 'endpoint': an http:// or https:// URL";
	if (!js_get(a->st, "model", &a->model) || !js_is_string(a->model) || a->model.n < 3)
		return "the state needs a 'model' (a non-empty string)";
	if (js_get(a->st, "system", &v)) {
		if (!js_is_string(v))
			return "'system' must be a string";
		a->system = v;
	}
	if (js_get(a->st, "api_key_secret", &v) &&
	    (!js_string(v, &a->secret) || !secret_name_ok(a->secret)))
		return "'api_key_secret' must be a secret name (1 to 128 of A-Z a-z 0-9 _ . -)";
	if ((why = int_key(a->st, "max_messages", 2, MAX_MESSAGES_LIMIT, &a->max_messages,
			   "'max_messages' must be an integer from 2 to 1000")) ||
	    (why = int_key(a->st, "retries", 0, MAX_RETRIES, &a->retries,
			   "'retries' must be an integer from 0 to 10")) ||
	    (why = int_key(a->st, "retry_backoff_ms", 0, MAX_BACKOFF_MS, &a->backoff_ms,
			   "'retry_backoff_ms' must be an integer from 0 to 10000")))
		return why;
	if (js_get(a->st, "stream", &v)) {
		if (!js_bytes_eq(v, "true") && !js_bytes_eq(v, "false"))
			return "'stream' must be true or false";
		a->stream = js_bytes_eq(v, "true");
	}
	if (js_get(a->st, "tools", &v)) {
		if (!js_is_object(v))
			return "'tools' must be an object of name -> {actor, description, parameters}";
		a->tools = v;
	}
	if (js_get(a->st, "messages", &v)) {
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

/* The state: every key as it was but `messages`, which becomes the history
 * from `skip` on plus the turns of this call (turns: comma-separated JSON
 * messages; none: an empty conversation). */
static void write_state(struct jb *b, const struct agent *a, uint32_t skip, struct js turns)
{
	struct js k, v;
	uint32_t pos = 0;
	jb_char(b, '{');
	while (js_next(a->st, &pos, &k, &v)) {
		if (js_str_eq(k, "messages"))
			continue;
		jb_raw(b, k.p, k.n);
		jb_char(b, ':');
		jb_raw(b, v.p, v.n);
		jb_char(b, ',');
	}
	jb_cstr(b, "\"messages\":[");
	if (turns.n) {
		if (write_history(b, a->messages, skip, 1))
			jb_char(b, ',');
		jb_raw(b, turns.p, turns.n);
	}
	jb_cstr(b, "]}");
}

/* tools in the OpenAI shape: [{"type":"function","function":{name, description,
 * parameters}}]. */
static void write_tools(struct jb *b, struct js tools)
{
	struct js k, v, d, p;
	uint32_t pos = 0, n = 0;
	jb_cstr(b, ",\"tools\":[");
	while (js_next(tools, &pos, &k, &v)) {
		if (n++)
			jb_char(b, ',');
		jb_cstr(b, "{\"type\":\"function\",\"function\":{\"name\":");
		jb_raw(b, k.p, k.n);
		if (js_get(v, "description", &d) && js_is_string(d)) {
			jb_cstr(b, ",\"description\":");
			jb_raw(b, d.p, d.n);
		}
		jb_cstr(b, ",\"parameters\":");
		if (js_get(v, "parameters", &p) && js_is_object(p))
			jb_raw(b, p.p, p.n);
		else
			jb_cstr(b, "{\"type\":\"object\"}");
		jb_cstr(b, "}}");
	}
	jb_char(b, ']');
}

/* The send-http request: a POST of the chat-completion JSON to the endpoint,
 * with the key as a header template when the agent has one. */
static void write_http_request(struct jb *b, const struct agent *a, struct js turns)
{
	struct jb chat;
	jb_init(&chat, a->messages.n + turns.n + a->tools.n + 256);
	jb_cstr(&chat, "{\"model\":");
	jb_raw(&chat, a->model.p, a->model.n);
	jb_cstr(&chat, ",\"messages\":[");
	if (a->system.n) {
		write_turn(&chat, "system", a->system.p, a->system.n, 0);
		jb_char(&chat, ',');
	}
	if (write_history(&chat, a->messages, 0, 1))
		jb_char(&chat, ',');
	jb_raw(&chat, turns.p, turns.n);
	jb_char(&chat, ']');
	if (a->tools.n)
		write_tools(&chat, a->tools);
	if (a->stream)
		jb_cstr(&chat, ",\"stream\":true");
	jb_char(&chat, '}');
	if (!jb_ok(&chat)) {
		b->oom = 1;
		return;
	}
	jb_cstr(b, "{\"method\":\"POST\",\"url\":");
	jb_raw(b, a->endpoint.p, a->endpoint.n);
	if (a->stream)    /* the host sends each token to our caller as it comes */
		jb_cstr(b, ",\"relay\":{\"request\":0,\"pointer\":\"/choices/0/delta/content\"}");
	jb_cstr(b, ",\"headers\":{\"Content-Type\":\"application/json\",\"Accept\":");
	jb_cstr(b, a->stream ? "\"text/event-stream\"" : "\"application/json\"");
	if (a->secret.n) {
		jb_cstr(b, ",\"Authorization\":\"Bearer {{secret:");
		jb_raw(b, a->secret.p, a->secret.n);    /* checked: no quote or backslash */
		jb_cstr(b, "}}\"");
	}
	jb_cstr(b, "},\"body\":");
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

static int retryable(int32_t rc, int64_t status)
{
	if (rc < 0)
		return rc == THEATER_ETIMEDOUT || rc == THEATER_EFAILED;
	return status == 429 || (status >= 500 && status <= 599);
}

/* Posts the chat with retries; *resp is send-http's answer, *status its HTTP
 * status. Returns send-http's last result. */
static int32_t post_chat(const struct agent *a, const struct jb *req, struct js *resp,
			 int64_t *status)
{
	int64_t wait = a->backoff_ms;
	int32_t rc = 0;
	for (int64_t attempt = 0;; attempt++) {
		struct theater_bytes answer = {0, 0};
		struct js r, v;
		*status = 0;
		rc = theater_send_http(req->p, req->len, &answer);
		if (rc >= 0) {
			*resp = (struct js){(const char *)(uintptr_t)answer.ptr, answer.len};
			if (!js_parse(resp->p, resp->n, &r) || !js_get(r, "status", &v) ||
			    !js_int(v, status))
				*status = 0;
		}
		if (attempt >= a->retries || !retryable(rc, *status))
			return rc;
		if (wait > 0 && theater_sleep(wait < MAX_BACKOFF_MS ? wait : MAX_BACKOFF_MS) < 0)
			return rc;            /* the timing handler does not allow the wait */
		wait *= 2;
	}
}

/* A tool call assembled from the pieces of a stream. */
struct tool_piece {
	struct js id;                 /* raw JSON string */
	struct jb name, args;         /* decoded text */
	int used;
};

#define MAX_STREAMED_TOOLS 8

/* Adds one delta's tool_calls pieces (by their "index"). */
static void add_tool_pieces(struct tool_piece *t, struct js calls)
{
	struct js k, tc, v, fn, text;
	uint32_t pos = 0;
	while (js_next(calls, &pos, &k, &tc)) {
		int64_t i;
		if (!js_get(tc, "index", &v) || !js_int(v, &i) || i < 0 || i >= MAX_STREAMED_TOOLS)
			continue;
		if (!t[i].used) {
			jb_init(&t[i].name, 64);
			jb_init(&t[i].args, 256);
			t[i].used = 1;
		}
		if (js_get(tc, "id", &v) && js_is_string(v))
			t[i].id = v;
		if (!js_get(tc, "function", &fn))
			continue;
		if (js_get(fn, "name", &v) && js_string(v, &text))
			jb_raw(&t[i].name, text.p, text.n);
		if (js_get(fn, "arguments", &v) && js_string(v, &text))
			jb_raw(&t[i].args, text.p, text.n);
	}
}

/* The assistant message a server-sent event stream of chat-completion chunks
 * spells: {"role":"assistant","content":..., "tool_calls":[...]} (its text in
 * out). 0 when the stream holds no choice at all. */
static int message_of_stream(struct js body, struct jb *out)
{
	struct jb content;
	struct tool_piece tools[MAX_STREAMED_TOOLS] = {0};
	int any = 0;
	jb_init(&content, body.n / 2 + 16);
	for (uint32_t i = 0; i < body.n;) {
		uint32_t end = i;
		while (end < body.n && body.p[end] != '\n')
			end++;
		struct js line = {body.p + i, end - i}, chunk, v, choice, delta, text;
		i = end + 1;
		if (line.n < 5 || memcmp(line.p, "data:", 5) != 0)
			continue;
		line.p += 5;
		line.n -= 5;
		if (!js_parse(line.p, line.n, &chunk) || !js_get(chunk, "choices", &v) ||
		    !js_at(v, 0, &choice) || !js_get(choice, "delta", &delta))
			continue;        /* [DONE], or not a chunk */
		any = 1;
		if (js_get(delta, "content", &v) && js_string(v, &text))
			jb_raw(&content, text.p, text.n);
		if (js_get(delta, "tool_calls", &v) && js_is_array(v))
			add_tool_pieces(tools, v);
	}
	jb_cstr(out, "{\"role\":\"assistant\",\"content\":");
	jb_quote(out, content.p, content.len);
	for (int t = 0, n = 0; t < MAX_STREAMED_TOOLS; t++) {
		if (!tools[t].used)
			continue;
		jb_cstr(out, n++ ? "," : ",\"tool_calls\":[");
		jb_cstr(out, "{\"id\":");
		jb_raw(out, tools[t].id.n ? tools[t].id.p : "\"\"", tools[t].id.n ? tools[t].id.n : 2);
		jb_cstr(out, ",\"type\":\"function\",\"function\":{\"name\":");
		jb_quote(out, tools[t].name.p, tools[t].name.len);
		jb_cstr(out, ",\"arguments\":");
		jb_quote(out, tools[t].args.p, tools[t].args.len);
		jb_cstr(out, "}}");
		if (t == MAX_STREAMED_TOOLS - 1 || !tools[t + 1].used)
			jb_char(out, ']');
	}
	jb_char(out, '}');
	return any && jb_ok(&content);
}

/* The model's message from the endpoint's answer, or an error message. */
static const char *message_of(const struct agent *a, struct js answer, int64_t status,
			      struct js *msg, struct js *detail)
{
	struct js resp, v, body, chat, choice;
	*detail = (struct js){0, 0};
	if (!js_parse(answer.p, answer.n, &resp) || !status)
		return "send-http answered something that is not a response";
	if (!js_get_string(resp, "body", &body))
		return "the endpoint's answer is not text";
	if (status < 200 || status > 299) {
		*detail = body;
		return "the endpoint answered an error status";
	}
	if (a->stream) {     /* an endpoint that does not stream answers as usual */
		struct jb m;
		jb_init(&m, body.n + 64);
		if (message_of_stream(body, &m) && jb_ok(&m) && js_parse(m.p, m.len, msg))
			return 0;
	}
	if (!js_parse(body.p, body.n, &chat) || !js_get(chat, "choices", &v) ||
	    !js_at(v, 0, &choice) || !js_get(choice, "message", msg) || !js_is_object(*msg)) {
		*detail = body;
		return "the endpoint's answer has no choices[0].message";
	}
	return 0;
}

/* Answers one tool call into turns: {"role":"tool","tool_call_id",
 * "content": the actor's answer, or what went wrong}. */
static void answer_tool_call(const struct agent *a, struct js call, struct jb *turns)
{
	struct js id, fn, name, args_raw, args, tool, actor, actor_id;
	struct theater_bytes out = {0, 0};
	const char *problem = 0;
	int32_t rc = 0;
	if (!js_get(call, "id", &id) || !js_is_string(id) || !js_get(call, "function", &fn) ||
	    !js_get(fn, "name", &name) || !js_string(name, &name))
		return;
	if (!js_get(fn, "arguments", &args_raw) || !js_string(args_raw, &args))
		args = js_cstr("{}");
	if (!a->tools.n || !js_get(a->tools, name.p, &tool))   /* name is NUL-terminated */
		tool = (struct js){0, 0};
	if (!tool.n || !js_get(tool, "actor", &actor) || !js_string(actor, &actor_id) ||
	    actor_id.n != 36)
		problem = "error: no such tool";
	else if ((rc = theater_request(actor_id.p, 36, args.p, args.n, TOOL_TIMEOUT_MS, &out)) < 0)
		problem = hosterr_name(rc);
	jb_cstr(turns, ",{\"role\":\"tool\",\"tool_call_id\":");
	jb_raw(turns, id.p, id.n);
	jb_cstr(turns, ",\"content\":");
	if (problem)
		jb_quote_cstr(turns, problem);
	else
		jb_quote(turns, (const char *)(uintptr_t)out.ptr, out.len);
	jb_char(turns, '}');
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
	struct js resp, message, content, calls, detail, reply;
	const char *why = agent_load(&a, state, len);
	if (why)
		return theater_error(state, len, why);
	if (msg_len == 0)
		return theater_error(state, len, "send the user's message as the request");
	struct jb turns;             /* this call's messages, comma-separated */
	jb_init(&turns, msg_len * 2 + 64);
	write_turn(&turns, "user", msg, msg_len, 1);
	for (int round = 0;; round++) {
		struct jb req;
		int64_t status;
		jb_init(&req, a.messages.n * 2 + turns.len * 2 + a.tools.n * 2 + 512);
		write_http_request(&req, &a, (struct js){turns.p, turns.len});
		if (!jb_ok(&req) || !jb_ok(&turns))
			return theater_error(state, len, "out of memory");
		int32_t rc = post_chat(&a, &req, &resp, &status);
		if (rc < 0)
			return fail(&a, "send-http failed", js_cstr(hosterr_name(rc)));
		if ((why = message_of(&a, resp, status, &message, &detail)))
			return fail(&a, why, detail);
		jb_char(&turns, ',');
		jb_raw(&turns, message.p, message.n);
		if (!js_get(message, "tool_calls", &calls) || !js_is_array(calls) ||
		    js_count(calls) == 0)
			break;
		if (round == MAX_TOOL_ROUNDS)
			return theater_error(state, len, "the model kept calling tools");
		struct js k, call;
		uint32_t pos = 0;
		while (js_next(calls, &pos, &k, &call))
			answer_tool_call(&a, call, &turns);
	}
	if (!js_get(message, "content", &content) || !js_string(content, &reply))
		return fail(&a, "the model's last message has no content", message);
	/* the new turns: count them to keep at most max_messages */
	struct js all;
	struct jb wrapped;
	jb_init(&wrapped, turns.len + 2);
	jb_char(&wrapped, '[');
	jb_raw(&wrapped, turns.p, turns.len);
	jb_char(&wrapped, ']');
	if (!jb_ok(&wrapped) || !js_parse(wrapped.p, wrapped.len, &all))
		return theater_error(state, len, "out of memory");
	uint32_t total = js_count(a.messages) + js_count(all);
	uint32_t skip = total > a.max_messages ? total - (uint32_t)a.max_messages : 0;
	uint32_t hist = js_count(a.messages);
	struct jb st;
	jb_init(&st, len + turns.len + 128);
	if (skip > hist) {        /* more new turns than max_messages: keep the last ones */
		struct jb tail;
		struct js kk, vv;
		uint32_t pos = 0, i = 0, n = 0;
		jb_init(&tail, turns.len);
		while (js_next(all, &pos, &kk, &vv))
			if (i++ >= skip - hist) {
				if (n++)
					jb_char(&tail, ',');
				jb_raw(&tail, vv.p, vv.n);
			}
		write_state(&st, &a, hist, (struct js){tail.p, tail.len});
	} else {
		write_state(&st, &a, skip, (struct js){turns.p, turns.len});
	}
	if (!jb_ok(&st))
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
	write_state(&st, &a, 0, (struct js){0, 0});
	return jb_ok(&st) ? theater_ok(st.p, st.len, 0, 0) : theater_error(state, len, "out of memory");
}
