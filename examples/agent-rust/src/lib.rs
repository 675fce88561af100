//! agent (Rust) - the agent example written with the Rust SDK: it talks to an
//! OpenAI-style chat-completion endpoint over theater:simple/http-client and
//! keeps the conversation in its state.
//!
//! State: {"endpoint": "http(s)://.../v1/chat/completions", "model": "...",
//!         "system": "..." (optional), "max_messages": 40 (optional),
//!         "messages": [{"role": "user" | "assistant", "content": "..."}, ...]}
//! A request is the user's message (plain text). The actor POSTs
//! {"model", "messages": [system?, history..., the new user message]}, reads
//! choices[0].message.content from the answer, appends the user message and the
//! reply to "messages" (keeping the last max_messages) and answers the reply as
//! text. Anything that goes wrong is an error and the conversation stays as it
//! was. The message "reset" forgets the conversation.
//!
//! "stream": true (optional) asks the model to stream (OpenAI's `stream: true`
//! server-sent events) and has the host relay each token to a caller that
//! streams (POST /actors/{id}/requests with Accept: text/event-stream) while
//! the model still writes (send-http's "relay"), as the C agent does; the
//! answer and the conversation keep the whole reply.
use theater::host::http;
use theater::json::{self, json, Map, Value};
use theater::{Actor, Reply};

const DEFAULT_MAX_MESSAGES: u64 = 40;
const PREVIEW: usize = 200;

struct Agent;

/// The state, checked.
struct Conversation {
    state: Map<String, Value>,
    endpoint: String,
    max_messages: u64,
    stream: bool,
    messages: Vec<Value>,
}

fn load(state: &[u8]) -> Result<Conversation, String> {
    let mut st = json::state_object(state)?;
    let endpoint = match st.get("endpoint").and_then(Value::as_str) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
        _ => return Err("the state needs an 'endpoint': an http:// or https:// URL".into()),
    };
    match st.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => {}
        _ => return Err("the state needs a 'model' (a non-empty string)".into()),
    }
    if st.get("system").map_or(false, |s| !s.is_string()) {
        return Err("'system' must be a string".into());
    }
    let max_messages = match st.get("max_messages") {
        None => DEFAULT_MAX_MESSAGES,
        Some(v) => match v.as_u64() {
            Some(n) if (2..=1000).contains(&n) => n,
            _ => return Err("'max_messages' must be an integer from 2 to 1000".into()),
        },
    };
    let stream = match st.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("'stream' must be true or false".into()),
    };
    let messages = match st.remove("messages") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("'messages' must be an array".into()),
    };
    st.insert("max_messages".into(), json!(max_messages));
    Ok(Conversation { state: st, endpoint, max_messages, stream, messages })
}

fn save(mut c: Conversation) -> Result<Vec<u8>, String> {
    c.state.insert("messages".into(), Value::Array(c.messages));
    json::to_vec(&Value::Object(c.state))
}

fn preview(s: &str) -> &str {
    let mut end = s.len().min(PREVIEW);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The text a stream of chat-completion chunks spells (its `data:` lines'
/// choices[0].delta.content); None when no line is such a chunk.
fn reply_of_stream(body: &str) -> Option<String> {
    let mut text = String::new();
    let mut any = false;
    for line in body.lines() {
        let data = match line.strip_prefix("data:") {
            Some(d) => d.trim_start(),
            None => continue,
        };
        let chunk: Value = match json::from_slice(data.as_bytes()) {
            Ok(v) => v,
            Err(_) => continue,          // [DONE]
        };
        if let Some(delta) = chunk.pointer("/choices/0/delta") {
            any = true;
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    if any { Some(text) } else { None }
}

/// Sends the chat request; with `stream`, the host relays each token to the
/// caller of this request as it arrives.
fn ask_model(c: &Conversation, body: &Value) -> Result<http::Response, String> {
    let request = http::Request::new("POST", &c.endpoint)
        .header("Content-Type", "application/json")
        .header("Accept", if c.stream { "text/event-stream" } else { "application/json" })
        .body(body.to_string());
    let mut req = request.to_json();
    if c.stream {
        req["relay"] = json!({"request": 0, "pointer": "/choices/0/delta/content"});
    }
    let raw = http::send_raw(&json::to_vec(&req)?)
        .map_err(|e| format!("send-http failed: {}", e))?;
    let v: Value = json::from_slice(&raw).map_err(|_| "send-http answered no JSON")?;
    Ok(http::Response {
        status: v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
        headers: v.get("headers").and_then(Value::as_object).cloned().unwrap_or_default(),
        body: v.get("body").and_then(Value::as_str).map(String::from),
        body_b64: v.get("body_b64").and_then(Value::as_str).map(String::from),
    })
}

/// The reply in an endpoint's answer.
fn reply_of(resp: &http::Response, stream: bool) -> Result<String, String> {
    let body = resp.body.as_deref().ok_or("the endpoint's answer is not text")?;
    if !(200..=299).contains(&resp.status) {
        return Err(format!("the endpoint answered an error status: {}", preview(body)));
    }
    if stream {      // an endpoint that does not stream answers as usual
        if let Some(text) = reply_of_stream(body) {
            return Ok(text);
        }
    }
    let chat: Value = json::from_slice(body.as_bytes()).unwrap_or(Value::Null);
    match chat.pointer("/choices/0/message/content").and_then(Value::as_str) {
        Some(r) => Ok(r.to_string()),
        None => Err(format!("the endpoint's answer has no choices[0].message.content: {}",
                            preview(body))),
    }
}

impl Actor for Agent {
    fn init(state: &[u8]) -> Result<Reply, String> {
        load(state)?;
        Ok(Reply::new(state))
    }

    fn handle_request(state: &[u8], req: &[u8]) -> Result<Reply, String> {
        let mut c = load(state)?;
        if req.is_empty() {
            return Err("send the user's message as the request".into());
        }
        let user = String::from_utf8_lossy(req).into_owned();
        let mut chat = Vec::new();
        if let Some(system) = c.state.get("system") {
            chat.push(json!({"role": "system", "content": system}));
        }
        chat.extend(c.messages.iter().cloned());
        chat.push(json!({"role": "user", "content": user}));
        let mut body = json!({"model": c.state["model"], "messages": chat});
        if c.stream {
            body["stream"] = json!(true);
        }
        let resp = ask_model(&c, &body)?;
        let reply = reply_of(&resp, c.stream)?;
        c.messages.push(json!({"role": "user", "content": user}));
        c.messages.push(json!({"role": "assistant", "content": reply}));
        let excess = c.messages.len().saturating_sub(c.max_messages as usize);
        c.messages.drain(..excess);
        Ok(Reply::new(save(c)?).with_output(reply))
    }

    fn handle_send(state: &[u8], msg: &[u8]) -> Result<Reply, String> {
        let mut c = load(state)?;
        if msg != b"reset" {
            return Err("the agent understands the message \"reset\"; ask it something with a request".into());
        }
        c.messages.clear();
        Ok(Reply::new(save(c)?))
    }
}

theater::actor!(Agent);
