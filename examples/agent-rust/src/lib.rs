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
    let messages = match st.remove("messages") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("'messages' must be an array".into()),
    };
    st.insert("max_messages".into(), json!(max_messages));
    Ok(Conversation { state: st, endpoint, max_messages, messages })
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

/// The reply in an endpoint's answer.
fn reply_of(resp: &http::Response) -> Result<String, String> {
    let body = resp.body.as_deref().ok_or("the endpoint's answer is not text")?;
    if !(200..=299).contains(&resp.status) {
        return Err(format!("the endpoint answered an error status: {}", preview(body)));
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
        let body = json!({"model": c.state["model"], "messages": chat});
        let request = http::Request::new("POST", &c.endpoint)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string());
        let resp = http::send(&request).map_err(|e| format!("send-http failed: {}", e))?;
        let reply = reply_of(&resp)?;
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
