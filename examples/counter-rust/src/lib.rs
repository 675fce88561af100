//! counter (Rust) - the counter example written with the Rust SDK.
//!
//! State: {"count": n}. A message adds its integer to the count ("5", "-2"), or 1
//! when it is not an integer. The request "get" answers the count as a JSON number;
//! any other request is an error, which leaves the state as it was. init accepts an
//! empty state (count 0) or an object whose "count" is an integer.
use theater::host::runtime;
use theater::json::{self, json};
use theater::{Actor, Reply};

struct Counter;

/// The count in a state (0 when the state is empty or has no "count").
fn count_of(state: &[u8]) -> Result<i64, String> {
    let obj = json::state_object(state)?;
    match obj.get("count") {
        None => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| "'count' must be an integer".to_string()),
    }
}

fn state_with(count: i64) -> Result<Reply, String> {
    Reply::json(&json!({ "count": count }))
}

impl Actor for Counter {
    fn init(state: &[u8]) -> Result<Reply, String> {
        let count = count_of(state)?;
        runtime::log("counter-rust: ready");
        state_with(count)
    }

    fn handle_send(state: &[u8], msg: &[u8]) -> Result<Reply, String> {
        let add = json::from_slice::<i64>(msg).unwrap_or(1);
        let count = count_of(state)?
            .checked_add(add)
            .ok_or("the count would overflow")?;
        state_with(count)
    }

    fn handle_request(state: &[u8], req: &[u8]) -> Result<Reply, String> {
        let count = count_of(state)?;
        let req = core::str::from_utf8(req).unwrap_or("").trim();
        if req != "get" && req != "\"get\"" {
            return Err("unknown request: the counter answers \"get\"".into());
        }
        Ok(Reply::new(state).with_output(count.to_string()))
    }
}

theater::actor!(Counter);
