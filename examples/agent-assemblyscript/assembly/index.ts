// agent (AssemblyScript) - the agent example written with the AssemblyScript SDK:
// it talks to an OpenAI-style chat-completion endpoint over
// theater:simple/http-client and keeps the conversation in its state.
//
// State: {"endpoint": "http(s)://.../v1/chat/completions", "model": "...",
//         "system": "..." (optional), "max_messages": 40 (optional),
//         "messages": [{"role": "user" | "assistant", "content": "..."}, ...]}
// A request is the user's message (plain text). The actor POSTs
// {"model", "messages": [system?, history..., the new user message]}, reads
// choices[0].message.content from the answer, appends the user message and the
// reply to "messages" (keeping the last max_messages) and answers the reply as
// text. Anything that goes wrong is an error and the conversation stays as it
// was. The message "reset" forgets the conversation.
//
// "stream": true (optional) asks the model to stream (OpenAI's `stream: true`
// server-sent events) and has the host relay each token to a caller that
// streams (POST /actors/{id}/requests with Accept: text/event-stream) while the
// model still writes (send-http's "relay"), as the C agent does; the answer
// and the conversation keep the whole reply.
import { JSON, Reply, http, onInit, onRequest, onSend, text } from "theater-sdk";
export * from "theater-sdk/abi";

const DEFAULT_MAX_MESSAGES: i64 = 40;
const PREVIEW = 200;

/** The state checked: the object itself, or why it is not usable. */
class Loaded {
  constructor(public state: JSON.Value | null, public why: string) {}
}

function load(bytes: Uint8Array): Loaded {
  const st = bytes.length == 0 ? JSON.Value.object() : JSON.parse(text(bytes));
  if (st == null || !st.isObject) return new Loaded(null, "the state must be a JSON object");
  const endpoint = st.get("endpoint");
  if (endpoint == null || !endpoint.isString ||
      !(endpoint.str.startsWith("http://") || endpoint.str.startsWith("https://")))
    return new Loaded(null, "the state needs an 'endpoint': an http:// or https:// URL");
  const model = st.get("model");
  if (model == null || !model.isString || model.str.length == 0)
    return new Loaded(null, "the state needs a 'model' (a non-empty string)");
  const system = st.get("system");
  if (system != null && !system.isString) return new Loaded(null, "'system' must be a string");
  const max = st.get("max_messages");
  if (max == null) st.set("max_messages", JSON.Value.fromInt(DEFAULT_MAX_MESSAGES));
  else if (!max.isInt || max.int < 2 || max.int > 1000)
    return new Loaded(null, "'max_messages' must be an integer from 2 to 1000");
  const stream = st.get("stream");
  if (stream != null && stream.kind != JSON.Kind.Bool) return new Loaded(null, "'stream' must be true or false");
  const messages = st.get("messages");
  if (messages == null) st.set("messages", JSON.Value.array());
  else if (!messages.isArray) return new Loaded(null, "'messages' must be an array");
  return new Loaded(st, "");
}

function turn(role: string, content: string): JSON.Value {
  return JSON.Value.object().set("role", JSON.Value.fromString(role))
    .set("content", JSON.Value.fromString(content));
}

/** The text a stream of chat-completion chunks spells (its `data:` lines'
 * choices[0].delta.content); null when no line is such a chunk. */
function replyOfStream(body: string): string | null {
  const lines = body.split("\n");
  let out = "";
  let any = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.startsWith("data:")) continue;
    const chunk = JSON.parse(line.substring(5).trim());
    if (chunk == null) continue;                 // [DONE]
    const delta = chunk.pointer("/choices/0/delta");
    if (delta == null) continue;
    any = true;
    const t = delta.get("content");
    if (t != null && t.isString) out += t.str;
  }
  return any ? out : null;
}

function preview(s: string): string {
  return s.length > PREVIEW ? s.substring(0, PREVIEW) : s;
}

onInit((state: Uint8Array): Reply => {
  const l = load(state);
  return l.state == null ? Reply.error(l.why) : Reply.ok(state);
});

onRequest((state: Uint8Array, req: Uint8Array): Reply => {
  const l = load(state);
  const st = l.state;
  if (st == null) return Reply.error(l.why);
  if (req.length == 0) return Reply.error("send the user's message as the request");
  const user = text(req);
  const history = st.get("messages")!;
  const chat = JSON.Value.array();
  const system = st.get("system");
  if (system != null) chat.push(turn("system", system.str));
  for (let i = 0; i < history.length; i++) chat.push(history.items[i]);
  chat.push(turn("user", user));
  const streamed = st.get("stream");
  const stream = streamed != null && streamed.bool;
  const body = JSON.Value.object().set("model", st.get("model")!).set("messages", chat);
  if (stream) body.set("stream", JSON.Value.fromBool(true));
  const headers = JSON.Value.object()
    .set("Content-Type", JSON.Value.fromString("application/json"))
    .set("Accept", JSON.Value.fromString(stream ? "text/event-stream" : "application/json"));
  const call = JSON.Value.object()
    .set("method", JSON.Value.fromString("POST"))
    .set("url", st.get("endpoint")!)
    .set("headers", headers)
    .set("body", JSON.Value.fromString(body.toString()));
  if (stream)    // the host sends each token to our caller as it comes
    call.set("relay", JSON.Value.object().set("request", JSON.Value.fromInt(0))
      .set("pointer", JSON.Value.fromString("/choices/0/delta/content")));
  const sent = http.sendRaw(call.toString());
  if (!sent.ok) return Reply.error("send-http failed: " + sent.error);
  const resp = JSON.parse(sent.value);
  let status: JSON.Value | null = null;
  let respBody: JSON.Value | null = null;
  if (resp != null) {
    status = resp.get("status");
    respBody = resp.get("body");
  }
  if (status == null || !status.isInt || respBody == null || !respBody.isString)
    return Reply.error("the endpoint's answer is not text");
  if (status.int < 200 || status.int > 299)
    return Reply.error("the endpoint answered an error status: " + preview(respBody.str));
  let reply: string | null = stream ? replyOfStream(respBody.str) : null;
  if (reply == null) {     // an endpoint that does not stream answers as usual
    const answer = JSON.parse(respBody.str);
    let content: JSON.Value | null = null;
    if (answer != null) content = answer.pointer("/choices/0/message/content");
    if (content == null || !content.isString)
      return Reply.error("the endpoint's answer has no choices[0].message.content: " + preview(respBody.str));
    reply = content.str;
  }
  const text_ = reply!;
  history.push(turn("user", user));
  history.push(turn("assistant", text_));
  const max = <i32>st.get("max_messages")!.int;
  if (history.length > max) {
    const kept = history.items.slice(history.length - max);
    history.items = kept;
  }
  return Reply.okText(st.toString(), text_);
});

onSend((state: Uint8Array, msg: Uint8Array): Reply => {
  const l = load(state);
  const st = l.state;
  if (st == null) return Reply.error(l.why);
  if (text(msg) != "reset")
    return Reply.error("the agent understands the message \"reset\"; ask it something with a request");
  st.set("messages", JSON.Value.array());
  return Reply.okText(st.toString());
});
