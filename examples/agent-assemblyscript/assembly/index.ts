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
  const messages = st.get("messages");
  if (messages == null) st.set("messages", JSON.Value.array());
  else if (!messages.isArray) return new Loaded(null, "'messages' must be an array");
  return new Loaded(st, "");
}

function turn(role: string, content: string): JSON.Value {
  return JSON.Value.object().set("role", JSON.Value.fromString(role))
    .set("content", JSON.Value.fromString(content));
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
  const body = JSON.Value.object().set("model", st.get("model")!).set("messages", chat);
  const headers = JSON.Value.object()
    .set("Content-Type", JSON.Value.fromString("application/json"))
    .set("Accept", JSON.Value.fromString("application/json"));
  const sent = http.send("POST", st.get("endpoint")!.str, headers, body.toString());
  if (!sent.ok) return Reply.error("send-http failed: " + sent.error);
  const resp = sent.value;
  if (resp.status < 200 || resp.status > 299)
    return Reply.error("the endpoint answered an error status: " + preview(resp.body));
  const answer = JSON.parse(resp.body);
  let content: JSON.Value | null = null;
  if (answer != null) content = answer.pointer("/choices/0/message/content");
  if (content == null || !content.isString)
    return Reply.error("the endpoint's answer has no choices[0].message.content: " + preview(resp.body));
  history.push(turn("user", user));
  history.push(turn("assistant", content.str));
  const max = <i32>st.get("max_messages")!.int;
  if (history.length > max) {
    const kept = history.items.slice(history.length - max);
    history.items = kept;
  }
  return Reply.okText(st.toString(), content.str);
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
