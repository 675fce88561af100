//! theater - write theater actors in Rust (actor ABI version 1, docs/actor-abi.md).
//!
//! An actor is a type implementing [`Actor`]; [`actor!`] generates the module's
//! exports (`theater_abi_version`, `theater_alloc`, `theater_reset_heap`, `init`,
//! `handle-send`, `handle-request`, `handle-child-exit`, `handle-child-error`) so the
//! author writes no `unsafe`. The host keeps the state between calls: every handler
//! gets the current state as bytes (JSON by convention) and answers the new one.
//! Host interfaces are in [`host`]; each function returns a `Result` whose error is a
//! [`host::Error`]. The crate is `no_std` + `alloc`; its bump allocator is the global
//! allocator (feature `allocator`, on by default), reset by the host before each call.
//!
//! ```ignore
//! struct Echo;
//! impl theater::Actor for Echo {
//!     fn handle_request(state: &[u8], req: &[u8]) -> Result<theater::Reply, String> {
//!         Ok(theater::Reply::new(state).with_output(req))
//!     }
//! }
//! theater::actor!(Echo);
//! ```
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub use serde;
pub use serde_json;

pub mod abi;
pub mod host;
pub mod json;

use alloc::string::String;
use alloc::vec::Vec;

/// The ABI version this crate implements (the `theater_abi_version` export).
pub const ABI_VERSION: i32 = 1;

/// What a handler answers when it succeeds: the new state and, for a request,
/// the response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub state: Vec<u8>,
    pub output: Vec<u8>,
}

impl Reply {
    /// A reply with the new state and no output.
    pub fn new(state: impl AsRef<[u8]>) -> Reply {
        Reply { state: state.as_ref().to_vec(), output: Vec::new() }
    }

    /// The same reply with `output` as the response (handle-request).
    pub fn with_output(mut self, output: impl AsRef<[u8]>) -> Reply {
        self.output = output.as_ref().to_vec();
        self
    }

    /// A reply whose state is `value` serialised as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Reply, String> {
        Ok(Reply { state: json::to_vec(value)?, output: Vec::new() })
    }
}

/// An actor. Every method gets the state the host holds (empty when the manifest
/// gives none) and answers `Ok(Reply)` with the new state, or `Err(message)`:
/// the call fails with that message and the state stays as it was.
/// The defaults: `init` keeps the state, messages and requests are refused, child
/// notifications leave the state unchanged.
pub trait Actor {
    /// Called once when the actor starts (and after a restart).
    fn init(state: &[u8]) -> Result<Reply, String> {
        Ok(Reply::new(state))
    }

    /// A one-way message (`POST /actors/{id}/messages`, `send` from another actor).
    fn handle_send(state: &[u8], msg: &[u8]) -> Result<Reply, String> {
        let _ = (state, msg);
        Err(String::from("this actor does not handle messages"))
    }

    /// A request; `Reply::output` is the response.
    fn handle_request(state: &[u8], req: &[u8]) -> Result<Reply, String> {
        let _ = (state, req);
        Err(String::from("this actor does not handle requests"))
    }

    /// A child (spawned with [`host::supervisor::spawn`]) ended; `info` is JSON.
    fn handle_child_exit(state: &[u8], info: &[u8]) -> Result<Reply, String> {
        let _ = info;
        Ok(Reply::new(state))
    }

    /// A child failed; `info` is JSON with the reason.
    fn handle_child_error(state: &[u8], info: &[u8]) -> Result<Reply, String> {
        let _ = info;
        Ok(Reply::new(state))
    }

    /// A timer's tick ([`host::timing::set_timer`]); `tick` is JSON
    /// `{"timer", "tick", "scheduled_ms", "missed"}`. Exported only by
    /// `actor!(MyActor, timers)`.
    fn handle_timer(state: &[u8], tick: &[u8]) -> Result<Reply, String> {
        let _ = tick;
        Ok(Reply::new(state))
    }

    /// Another actor opens a channel ([`host::message::open_channel`]); `env`
    /// is JSON `{"channel", "from", "data" | "data_b64"}`. `Ok`: accepted, the
    /// reply's output goes back to the opener; `Err(reason)`: refused. The
    /// default refuses. Exported only by `actor!(MyActor, channels)`.
    fn handle_channel_open(state: &[u8], env: &[u8]) -> Result<Reply, String> {
        let _ = (state, env);
        Err(String::from("this actor accepts no channels"))
    }

    /// A message on one of its channels: `{"channel", "from", "data" | "data_b64"}`.
    fn handle_channel_message(state: &[u8], env: &[u8]) -> Result<Reply, String> {
        let _ = env;
        Ok(Reply::new(state))
    }

    /// One of its channels closed: `{"channel", "from", "reason"}` ("closed" by
    /// the peer, or "ended": the peer's run ended).
    fn handle_channel_close(state: &[u8], env: &[u8]) -> Result<Reply, String> {
        let _ = env;
        Ok(Reply::new(state))
    }
}

/// Generates the ABI exports for an [`Actor`] type. Use it once, in the crate
/// root of a `cdylib`.
#[macro_export]
macro_rules! actor {
    (@channels $actor:ty) => {
        #[export_name = "handle-channel-open"]
        pub extern "C" fn __theater_handle_channel_open(sp: u32, sl: u32, ep: u32, el: u32) -> u32 {
            $crate::abi::call(sp, sl, ep, el, <$actor as $crate::Actor>::handle_channel_open)
        }

        #[export_name = "handle-channel-message"]
        pub extern "C" fn __theater_handle_channel_message(sp: u32, sl: u32, ep: u32, el: u32)
                                                           -> u32 {
            $crate::abi::call(sp, sl, ep, el, <$actor as $crate::Actor>::handle_channel_message)
        }

        #[export_name = "handle-channel-close"]
        pub extern "C" fn __theater_handle_channel_close(sp: u32, sl: u32, ep: u32, el: u32) -> u32 {
            $crate::abi::call(sp, sl, ep, el, <$actor as $crate::Actor>::handle_channel_close)
        }
    };
    ($actor:ty) => {
        #[export_name = "theater_abi_version"]
        pub extern "C" fn __theater_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        #[export_name = "theater_alloc"]
        pub extern "C" fn __theater_alloc(size: u32) -> u32 {
            $crate::abi::alloc(size)
        }

        #[export_name = "theater_reset_heap"]
        pub extern "C" fn __theater_reset_heap() {
            $crate::abi::reset_heap()
        }

        #[export_name = "init"]
        pub extern "C" fn __theater_init(state_ptr: u32, state_len: u32) -> u32 {
            $crate::abi::call(state_ptr, state_len, 0, 0, |s, _| <$actor as $crate::Actor>::init(s))
        }

        #[export_name = "handle-send"]
        pub extern "C" fn __theater_handle_send(sp: u32, sl: u32, mp: u32, ml: u32) -> u32 {
            $crate::abi::call(sp, sl, mp, ml, <$actor as $crate::Actor>::handle_send)
        }

        #[export_name = "handle-request"]
        pub extern "C" fn __theater_handle_request(sp: u32, sl: u32, rp: u32, rl: u32) -> u32 {
            $crate::abi::call(sp, sl, rp, rl, <$actor as $crate::Actor>::handle_request)
        }

        #[export_name = "handle-child-exit"]
        pub extern "C" fn __theater_handle_child_exit(sp: u32, sl: u32, ip: u32, il: u32) -> u32 {
            $crate::abi::call(sp, sl, ip, il, <$actor as $crate::Actor>::handle_child_exit)
        }

        #[export_name = "handle-child-error"]
        pub extern "C" fn __theater_handle_child_error(sp: u32, sl: u32, ip: u32, il: u32) -> u32 {
            $crate::abi::call(sp, sl, ip, il, <$actor as $crate::Actor>::handle_child_error)
        }
    };
    ($actor:ty, channels) => {
        $crate::actor!($actor);
        $crate::actor!(@channels $actor);
    };
    ($actor:ty, timers, channels) => {
        $crate::actor!($actor, timers);
        $crate::actor!(@channels $actor);
    };
    ($actor:ty, timers) => {
        $crate::actor!($actor);

        #[export_name = "handle-timer"]
        pub extern "C" fn __theater_handle_timer(sp: u32, sl: u32, tp: u32, tl: u32) -> u32 {
            $crate::abi::call(sp, sl, tp, tl, <$actor as $crate::Actor>::handle_timer)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Error;
    use alloc::string::ToString;

    #[test]
    fn host_codes_map_both_ways() {
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(36), None);
        for code in -7..=-1 {
            let e = Error::from_code(code).unwrap();
            assert_eq!(e.code(), code);
        }
        assert_eq!(Error::from_code(-3), Some(Error::Denied));
        assert_eq!(Error::from_code(-42), Some(Error::Other(-42)));
        assert_eq!(String::from(Error::NotFound), "not found");
        assert_eq!(Error::Other(-9).to_string(), "host error -9");
    }

    #[test]
    fn channels_fail_off_wasm() {
        // off wasm32 every host function answers Failed (-6): the wrappers map it
        let (e, bytes) = host::message::open_channel("00000000-0000-4000-8000-000000000000", b"hi")
            .unwrap_err();
        assert_eq!(e, Error::Failed);
        assert!(bytes.is_empty());
        assert_eq!(host::message::send_on_channel(1, b"x"), Err(Error::Failed));
        assert_eq!(host::message::close_channel(1), Err(Error::Failed));
    }

    #[test]
    fn replies() {
        let r = Reply::new(b"{}").with_output("42");
        assert_eq!(r.state, b"{}");
        assert_eq!(r.output, b"42");
        let j = Reply::json(&json::json!({"count": 3})).unwrap();
        assert_eq!(j.state, br#"{"count":3}"#);
        assert!(j.output.is_empty());
    }

    #[test]
    fn state_objects() {
        assert!(json::state_object(b"").unwrap().is_empty());
        assert!(json::state_object(b"  \n").unwrap().is_empty());
        let m = json::state_object(br#"{"a": 1}"#).unwrap();
        assert_eq!(m.get("a").and_then(|v| v.as_i64()), Some(1));
        assert_eq!(json::state_object(b"[1]").unwrap_err(), "the state must be a JSON object");
        assert!(json::state_object(b"{").unwrap_err().starts_with("invalid JSON"));
    }

    #[test]
    fn http_requests_are_the_hosts_json() {
        let r = host::http::Request::new("POST", "http://h/x")
            .header("Content-Type", "application/json")
            .body("{}");
        assert_eq!(r.to_json(), json::json!({"method": "POST", "url": "http://h/x",
            "headers": {"Content-Type": "application/json"}, "body": "{}"}));
    }

    #[test]
    fn host_calls_fail_off_wasm() {
        assert_eq!(host::random::uuid(), Err(Error::Failed));
        assert_eq!(host::store::get("s", "short"), Err(Error::InvalidArgument));
    }
}
