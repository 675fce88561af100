//! JSON helpers over serde_json for states, messages and host answers.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

pub use serde_json::{json, Map, Value};

/// Parses JSON bytes into `T`; the error says what is wrong (for `Err` answers).
pub fn from_slice<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {}", e))
}

/// Serialises `value` as JSON bytes.
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot serialise JSON: {}", e))
}

/// The state as a JSON object: an empty state is an empty object.
pub fn state_object(state: &[u8]) -> Result<Map<String, Value>, String> {
    if state.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match from_slice::<Value>(state)? {
        Value::Object(m) => Ok(m),
        _ => Err(String::from("the state must be a JSON object")),
    }
}
