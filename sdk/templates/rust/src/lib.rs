//! __NAME__ - a theater actor in Rust (docs/sdk.md).
//!
//! State: {"count": n}. Every message adds 1; the request "get" answers the count.
use theater::host::runtime;
use theater::json::{self, json};
use theater::{Actor, Reply};

struct MyActor;

fn count_of(state: &[u8]) -> Result<i64, String> {
    Ok(json::state_object(state)?.get("count").and_then(|v| v.as_i64()).unwrap_or(0))
}

impl Actor for MyActor {
    fn init(state: &[u8]) -> Result<Reply, String> {
        runtime::log("__NAME__: ready");
        Reply::json(&json!({ "count": count_of(state)? }))
    }

    fn handle_send(state: &[u8], _msg: &[u8]) -> Result<Reply, String> {
        Reply::json(&json!({ "count": count_of(state)? + 1 }))
    }

    fn handle_request(state: &[u8], req: &[u8]) -> Result<Reply, String> {
        if req != b"get" {
            return Err("unknown request: ask \"get\"".into());
        }
        Ok(Reply::new(state).with_output(count_of(state)?.to_string()))
    }
}

theater::actor!(MyActor);
