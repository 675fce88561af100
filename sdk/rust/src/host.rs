//! Typed wrappers for the host interfaces of ABI version 1 (docs/actor-abi.md).
//! Each module is one interface; the manifest must grant it with a `[[handler]]`
//! of the type named in the module's documentation. Only the functions an actor
//! calls end up as imports of its module.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A negative answer of a host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// -1: a bad pointer, length, id or JSON.
    InvalidArgument,
    /// -2
    NotFound,
    /// -3: refused by a policy or a limit.
    Denied,
    /// -4
    TimedOut,
    /// -5
    TooLarge,
    /// -6: the detail is in the chain event.
    Failed,
    /// -7: a mailbox is full.
    Busy,
    /// Any other negative code (a later ABI version).
    Other(i32),
}

impl Error {
    /// The error of a host result code, or `None` when it is not negative.
    pub fn from_code(rc: i32) -> Option<Error> {
        if rc >= 0 {
            return None;
        }
        Some(match rc {
            -1 => Error::InvalidArgument,
            -2 => Error::NotFound,
            -3 => Error::Denied,
            -4 => Error::TimedOut,
            -5 => Error::TooLarge,
            -6 => Error::Failed,
            -7 => Error::Busy,
            other => Error::Other(other),
        })
    }

    /// The host's code (-1 ... -7).
    pub fn code(self) -> i32 {
        match self {
            Error::InvalidArgument => -1,
            Error::NotFound => -2,
            Error::Denied => -3,
            Error::TimedOut => -4,
            Error::TooLarge => -5,
            Error::Failed => -6,
            Error::Busy => -7,
            Error::Other(c) => c,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::InvalidArgument => "invalid argument",
            Error::NotFound => "not found",
            Error::Denied => "denied",
            Error::TimedOut => "timed out",
            Error::TooLarge => "too large",
            Error::Failed => "failed",
            Error::Busy => "busy",
            Error::Other(c) => return write!(f, "host error {}", c),
        };
        f.write_str(s)
    }
}

/// So that `?` turns a host error into a handler's `Err(String)`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        format!("{}", e)
    }
}

/// A host call's result: the error, or the non-negative code.
fn check(rc: i32) -> Result<i32, Error> {
    match Error::from_code(rc) {
        Some(e) => Err(e),
        None => Ok(rc),
    }
}

/// The (ptr, len) slot through which the host hands back bytes.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Out {
    ptr: u32,
    len: u32,
}

impl Out {
    /// The bytes the host wrote (memory from theater_alloc, live for this call).
    fn take(&self) -> Vec<u8> {
        if self.len == 0 {
            return Vec::new();
        }
        // SAFETY: the host wrote a (ptr, len) pair of memory it got from
        // theater_alloc in this call.
        unsafe { core::slice::from_raw_parts(self.ptr as *const u8, self.len as usize).to_vec() }
    }
}

fn id_string(buf: &[u8; 36]) -> String {
    String::from_utf8_lossy(buf).into_owned()
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "theater:simple/runtime")]
    extern "C" {
        pub(super) fn log(p: *const u8, n: u32);
        #[link_name = "self-id"]
        pub(super) fn self_id(out: *mut u8) -> i32;
        pub(super) fn shutdown(p: *const u8, n: u32);
    }
    #[link(wasm_import_module = "theater:simple/message-server-host")]
    extern "C" {
        pub(super) fn send(id: *const u8, id_len: u32, msg: *const u8, len: u32) -> i32;
        pub(super) fn request(id: *const u8, id_len: u32, msg: *const u8, len: u32, timeout_ms: u32,
                       out: *mut super::Out) -> i32;
        #[link_name = "defer-request"]
        pub(super) fn defer_request() -> i64;
        #[link_name = "respond-to-request"]
        pub(super) fn respond_to_request(id: i64, p: *const u8, n: u32) -> i32;
        #[link_name = "fail-request"]
        pub(super) fn fail_request(id: i64, p: *const u8, n: u32) -> i32;
        #[link_name = "send-chunk"]
        pub(super) fn send_chunk(id: i64, p: *const u8, n: u32) -> i32;
        #[link_name = "open-channel"]
        pub(super) fn open_channel(id: *const u8, id_len: u32, msg: *const u8, len: u32,
                                   out: *mut super::Out) -> i64;
        #[link_name = "send-on-channel"]
        pub(super) fn send_on_channel(channel: i64, p: *const u8, n: u32) -> i32;
        #[link_name = "close-channel"]
        pub(super) fn close_channel(channel: i64) -> i32;
    }
    #[link(wasm_import_module = "theater:simple/timing")]
    extern "C" {
        pub(super) fn now() -> i64;
        pub(super) fn sleep(ms: i64) -> i32;
        #[link_name = "set-timer"]
        pub(super) fn set_timer(name: *const u8, n: u32, delay_ms: i64, period_ms: i64) -> i32;
        #[link_name = "cancel-timer"]
        pub(super) fn cancel_timer(name: *const u8, n: u32) -> i32;
    }
    #[link(wasm_import_module = "theater:simple/random")]
    extern "C" {
        #[link_name = "random-bytes"]
        pub(super) fn random_bytes(p: *mut u8, n: u32) -> i32;
        #[link_name = "generate-uuid"]
        pub(super) fn generate_uuid(out: *mut u8) -> i32;
    }
    #[link(wasm_import_module = "theater:simple/store")]
    extern "C" {
        pub(super) fn store(sid: *const u8, sid_len: u32, p: *const u8, n: u32, out64: *mut u8) -> i32;
        pub(super) fn get(sid: *const u8, sid_len: u32, hash64: *const u8, out: *mut super::Out) -> i32;
        pub(super) fn label(sid: *const u8, sid_len: u32, l: *const u8, l_len: u32, hash64: *const u8)
                     -> i32;
        #[link_name = "get-by-label"]
        pub(super) fn get_by_label(sid: *const u8, sid_len: u32, l: *const u8, l_len: u32,
                            out: *mut super::Out) -> i32;
    }
    #[link(wasm_import_module = "theater:simple/supervisor")]
    extern "C" {
        pub(super) fn spawn(m: *const u8, m_len: u32, s: *const u8, s_len: u32, out36: *mut u8) -> i32;
        #[link_name = "list-children"]
        pub(super) fn list_children(out: *mut super::Out) -> i32;
        #[link_name = "stop-child"]
        pub(super) fn stop_child(id: *const u8, n: u32) -> i32;
        #[link_name = "restart-child"]
        pub(super) fn restart_child(id: *const u8, n: u32) -> i32;
        #[link_name = "get-child-state"]
        pub(super) fn get_child_state(id: *const u8, n: u32, out: *mut super::Out) -> i32;
    }
    #[link(wasm_import_module = "theater:simple/http-client")]
    extern "C" {
        #[link_name = "send-http"]
        pub(super) fn send_http(req: *const u8, len: u32, out: *mut super::Out) -> i32;
    }
}

/// Off wasm32 (documentation, `cargo check` on the build machine) every host
/// function fails: actors only run inside theater.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod sys {
    pub(super) unsafe fn log(_: *const u8, _: u32) {}
    pub(super) unsafe fn self_id(_: *mut u8) -> i32 { -6 }
    pub(super) unsafe fn shutdown(_: *const u8, _: u32) {}
    pub(super) unsafe fn send(_: *const u8, _: u32, _: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn request(_: *const u8, _: u32, _: *const u8, _: u32, _: u32, _: *mut super::Out) -> i32 { -6 }
    pub(super) unsafe fn now() -> i64 { 0 }
    pub(super) unsafe fn sleep(_: i64) -> i32 { -6 }
    pub(super) unsafe fn defer_request() -> i64 { -6 }
    pub(super) unsafe fn respond_to_request(_: i64, _: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn fail_request(_: i64, _: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn send_chunk(_: i64, _: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn open_channel(_: *const u8, _: u32, _: *const u8, _: u32, _: *mut super::Out) -> i64 { -6 }
    pub(super) unsafe fn send_on_channel(_: i64, _: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn close_channel(_: i64) -> i32 { -6 }
    pub(super) unsafe fn set_timer(_: *const u8, _: u32, _: i64, _: i64) -> i32 { -6 }
    pub(super) unsafe fn cancel_timer(_: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn random_bytes(_: *mut u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn generate_uuid(_: *mut u8) -> i32 { -6 }
    pub(super) unsafe fn store(_: *const u8, _: u32, _: *const u8, _: u32, _: *mut u8) -> i32 { -6 }
    pub(super) unsafe fn get(_: *const u8, _: u32, _: *const u8, _: *mut super::Out) -> i32 { -6 }
    pub(super) unsafe fn label(_: *const u8, _: u32, _: *const u8, _: u32, _: *const u8) -> i32 { -6 }
    pub(super) unsafe fn get_by_label(_: *const u8, _: u32, _: *const u8, _: u32, _: *mut super::Out) -> i32 { -6 }
    pub(super) unsafe fn spawn(_: *const u8, _: u32, _: *const u8, _: u32, _: *mut u8) -> i32 { -6 }
    pub(super) unsafe fn list_children(_: *mut super::Out) -> i32 { -6 }
    pub(super) unsafe fn stop_child(_: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn restart_child(_: *const u8, _: u32) -> i32 { -6 }
    pub(super) unsafe fn get_child_state(_: *const u8, _: u32, _: *mut super::Out) -> i32 { -6 }
    pub(super) unsafe fn send_http(_: *const u8, _: u32, _: *mut super::Out) -> i32 { -6 }
}

/// `theater:simple/runtime` (handler `runtime`).
pub mod runtime {
    use super::*;

    /// Writes a line to the actor's log (and its chain).
    pub fn log(msg: &str) {
        // SAFETY: a valid (ptr, len) pair for the duration of the call.
        unsafe { sys::log(msg.as_ptr(), msg.len() as u32) }
    }

    /// This actor's id (36 characters).
    pub fn self_id() -> Result<String, Error> {
        let mut buf = [0u8; 36];
        // SAFETY: 36 writable bytes.
        check(unsafe { sys::self_id(buf.as_mut_ptr()) })?;
        Ok(id_string(&buf))
    }

    /// Stops the actor after this call, with a reason.
    pub fn shutdown(reason: &str) {
        // SAFETY: a valid (ptr, len) pair.
        unsafe { sys::shutdown(reason.as_ptr(), reason.len() as u32) }
    }
}

/// `theater:simple/message-server-host` (handler `message-server`).
pub mod message {
    use super::*;

    /// Sends a one-way message to another actor.
    pub fn send(actor_id: &str, msg: &[u8]) -> Result<(), Error> {
        // SAFETY: valid (ptr, len) pairs.
        check(unsafe { sys::send(actor_id.as_ptr(), actor_id.len() as u32, msg.as_ptr(),
                                 msg.len() as u32) })?;
        Ok(())
    }

    /// Sends a request to another actor and waits (at most `timeout_ms`) for its
    /// response.
    pub fn request(actor_id: &str, msg: &[u8], timeout_ms: u32) -> Result<Vec<u8>, Error> {
        let mut out = Out::default();
        // SAFETY: valid (ptr, len) pairs and an 8-byte out slot.
        check(unsafe { sys::request(actor_id.as_ptr(), actor_id.len() as u32, msg.as_ptr(),
                                    msg.len() as u32, timeout_ms, &mut out) })?;
        Ok(out.take())
    }

    /// In `handle_request`: takes the request away from this call (its reply's
    /// output no longer answers it) and answers its id, for a later call's
    /// [`respond_to_request`] (docs/actor-abi.md, "Deferred and streamed answers").
    pub fn defer_request() -> Result<i64, Error> {
        // SAFETY: no arguments.
        let id = unsafe { sys::defer_request() };
        if id < 0 { Err(Error::from_code(id as i32).unwrap_or(Error::Failed)) } else { Ok(id) }
    }

    /// Answers a deferred request (`TimedOut`: its client stopped waiting;
    /// `NotFound`: none waits with that id).
    pub fn respond_to_request(id: i64, answer: &[u8]) -> Result<(), Error> {
        // SAFETY: a valid (ptr, len) pair.
        check(unsafe { sys::respond_to_request(id, answer.as_ptr(), answer.len() as u32) })?;
        Ok(())
    }

    /// Answers a deferred request with an error (the client gets 422 actor_error).
    pub fn fail_request(id: i64, message: &str) -> Result<(), Error> {
        // SAFETY: a valid (ptr, len) pair.
        check(unsafe { sys::fail_request(id, message.as_ptr(), message.len() as u32) })?;
        Ok(())
    }

    /// Streams a piece of an answer (id 0: the request this call handles).
    /// `Ok(true)` when a client streams it, `Ok(false)` when it takes whole
    /// answers only.
    pub fn send_chunk(id: i64, chunk: &[u8]) -> Result<bool, Error> {
        // SAFETY: a valid (ptr, len) pair.
        Ok(check(unsafe { sys::send_chunk(id, chunk.as_ptr(), chunk.len() as u32) })? == 1)
    }

    /// Opens a channel to another actor (docs/actor-abi.md, "Channels") and
    /// waits (at most 30 s) for its `handle_channel_open`: `Ok((channel id, the
    /// target's accept message))`, or `Err((error, bytes))`: `Denied` with the
    /// target's reason when it refused, `NotFound` for no such running actor,
    /// `Busy` past 64 channels, `TimedOut`.
    pub fn open_channel(actor_id: &str, msg: &[u8]) -> Result<(i64, Vec<u8>), (Error, Vec<u8>)> {
        let mut out = Out::default();
        // SAFETY: valid (ptr, len) pairs and an 8-byte out slot.
        let rc = unsafe { sys::open_channel(actor_id.as_ptr(), actor_id.len() as u32,
                                            msg.as_ptr(), msg.len() as u32, &mut out) };
        if rc < 0 {
            return Err((Error::from_code(rc as i32).unwrap_or(Error::Failed), out.take()));
        }
        Ok((rc, out.take()))
    }

    /// Sends a message on an open channel (`NotFound`: it is closed).
    pub fn send_on_channel(channel: i64, msg: &[u8]) -> Result<(), Error> {
        // SAFETY: a valid (ptr, len) pair.
        check(unsafe { sys::send_on_channel(channel, msg.as_ptr(), msg.len() as u32) })?;
        Ok(())
    }

    /// Closes a channel; the peer's `handle_channel_close` hears it.
    pub fn close_channel(channel: i64) -> Result<(), Error> {
        // SAFETY: no pointers.
        check(unsafe { sys::close_channel(channel) })?;
        Ok(())
    }
}

/// `theater:simple/timing` (handler `timing`).
pub mod timing {
    use super::*;

    /// The time in Unix milliseconds.
    pub fn now() -> i64 {
        // SAFETY: no arguments.
        unsafe { sys::now() }
    }

    /// Sleeps `ms` milliseconds (at most the handler's `max_sleep_ms`, or `Denied`).
    pub fn sleep(ms: i64) -> Result<(), Error> {
        // SAFETY: no pointers.
        check(unsafe { sys::sleep(ms) })?;
        Ok(())
    }

    /// Schedules ticks of the timer `name` (replacing one of that name): the
    /// first after `delay_ms`, then every `period_ms` (0: once). Ticks come to
    /// [`crate::Actor::handle_timer`]; export it with `actor!(MyActor, timers)`.
    pub fn set_timer(name: &str, delay_ms: i64, period_ms: i64) -> Result<(), Error> {
        // SAFETY: a valid (ptr, len) pair.
        check(unsafe { sys::set_timer(name.as_ptr(), name.len() as u32, delay_ms, period_ms) })?;
        Ok(())
    }

    /// Cancels the timer `name` (`NotFound` when there is none).
    pub fn cancel_timer(name: &str) -> Result<(), Error> {
        // SAFETY: a valid (ptr, len) pair.
        check(unsafe { sys::cancel_timer(name.as_ptr(), name.len() as u32) })?;
        Ok(())
    }
}

/// `theater:simple/random` (handler `random`).
pub mod random {
    use super::*;

    /// `n` random bytes (at most 64 KiB per call).
    pub fn bytes(n: usize) -> Result<Vec<u8>, Error> {
        let mut buf = alloc::vec![0u8; n];
        // SAFETY: n writable bytes.
        check(unsafe { sys::random_bytes(buf.as_mut_ptr(), n as u32) })?;
        Ok(buf)
    }

    /// A random UUID (version 4) as 36 characters.
    pub fn uuid() -> Result<String, Error> {
        let mut buf = [0u8; 36];
        // SAFETY: 36 writable bytes.
        check(unsafe { sys::generate_uuid(buf.as_mut_ptr()) })?;
        Ok(id_string(&buf))
    }
}

/// `theater:simple/store` (handler `store`): content-addressed storage.
pub mod store {
    use super::*;

    /// Stores `data`; answers its hex SHA-256 (64 characters).
    pub fn store(store_id: &str, data: &[u8]) -> Result<String, Error> {
        let mut hash = [0u8; 64];
        // SAFETY: valid pairs and 64 writable bytes.
        check(unsafe { sys::store(store_id.as_ptr(), store_id.len() as u32, data.as_ptr(),
                                  data.len() as u32, hash.as_mut_ptr()) })?;
        Ok(String::from_utf8_lossy(&hash).into_owned())
    }

    fn hash64(hash: &str) -> Result<&[u8], Error> {
        if hash.len() == 64 { Ok(hash.as_bytes()) } else { Err(Error::InvalidArgument) }
    }

    /// The content with this hash.
    pub fn get(store_id: &str, hash: &str) -> Result<Vec<u8>, Error> {
        let h = hash64(hash)?;
        let mut out = Out::default();
        // SAFETY: valid pairs, a 64-byte hash and an out slot.
        check(unsafe { sys::get(store_id.as_ptr(), store_id.len() as u32, h.as_ptr(), &mut out) })?;
        Ok(out.take())
    }

    /// Points `label` at the content with this hash.
    pub fn label(store_id: &str, label: &str, hash: &str) -> Result<(), Error> {
        let h = hash64(hash)?;
        // SAFETY: valid pairs and a 64-byte hash.
        check(unsafe { sys::label(store_id.as_ptr(), store_id.len() as u32, label.as_ptr(),
                                  label.len() as u32, h.as_ptr()) })?;
        Ok(())
    }

    /// The content `label` points at.
    pub fn get_by_label(store_id: &str, label: &str) -> Result<Vec<u8>, Error> {
        let mut out = Out::default();
        // SAFETY: valid pairs and an out slot.
        check(unsafe { sys::get_by_label(store_id.as_ptr(), store_id.len() as u32,
                                         label.as_ptr(), label.len() as u32, &mut out) })?;
        Ok(out.take())
    }
}

/// `theater:simple/supervisor` (handler `supervisor`): child actors.
pub mod supervisor {
    use super::*;

    /// Spawns a child from a manifest (JSON or TOML text) with an optional
    /// initial state; answers the child's id. When the child was created but
    /// failed or is still starting, the error comes with its id.
    pub fn spawn(manifest: &str, state: Option<&[u8]>) -> Result<String, (Error, Option<String>)> {
        let mut id = [0u8; 36];
        let s = state.unwrap_or(&[]);
        // SAFETY: valid pairs and 36 writable bytes.
        let rc = unsafe { sys::spawn(manifest.as_ptr(), manifest.len() as u32, s.as_ptr(),
                                     s.len() as u32, id.as_mut_ptr()) };
        match check(rc) {
            Ok(_) => Ok(id_string(&id)),
            Err(e @ (Error::Failed | Error::TimedOut)) if id[0] != 0 => Err((e, Some(id_string(&id)))),
            Err(e) => Err((e, None)),
        }
    }

    /// The ids of this actor's children.
    pub fn list_children() -> Result<Vec<String>, Error> {
        let mut out = Out::default();
        // SAFETY: an out slot.
        check(unsafe { sys::list_children(&mut out) })?;
        serde_json::from_slice(&out.take()).map_err(|_| Error::InvalidArgument)
    }

    /// Stops a child (Ok when it had already ended).
    pub fn stop_child(id: &str) -> Result<(), Error> {
        // SAFETY: a valid pair.
        check(unsafe { sys::stop_child(id.as_ptr(), id.len() as u32) })?;
        Ok(())
    }

    /// Restarts a child.
    pub fn restart_child(id: &str) -> Result<(), Error> {
        // SAFETY: a valid pair.
        check(unsafe { sys::restart_child(id.as_ptr(), id.len() as u32) })?;
        Ok(())
    }

    /// A child's current state.
    pub fn get_child_state(id: &str) -> Result<Vec<u8>, Error> {
        let mut out = Out::default();
        // SAFETY: a valid pair and an out slot.
        check(unsafe { sys::get_child_state(id.as_ptr(), id.len() as u32, &mut out) })?;
        Ok(out.take())
    }
}

/// `theater:simple/http-client` (handler `http-client`, hosts in `allowed_hosts`).
pub mod http {
    use super::*;
    use serde_json::{Map, Value};

    /// An HTTP request (`body` is text).
    #[derive(Debug, Clone, Default)]
    pub struct Request {
        pub method: String,
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    /// The host's answer: status, lowercase header names, the body as text (or
    /// `body_b64` when it is not UTF-8).
    #[derive(Debug, Clone, Default)]
    pub struct Response {
        pub status: u16,
        pub headers: Map<String, Value>,
        pub body: Option<String>,
        pub body_b64: Option<String>,
    }

    impl Request {
        /// A request with a method and a URL.
        pub fn new(method: &str, url: &str) -> Request {
            Request { method: method.into(), url: url.into(), ..Default::default() }
        }

        /// Adds a header.
        pub fn header(mut self, name: &str, value: &str) -> Request {
            self.headers.push((name.into(), value.into()));
            self
        }

        /// Sets the body.
        pub fn body(mut self, body: impl Into<String>) -> Request {
            self.body = body.into();
            self
        }

        /// The JSON the host's send-http takes.
        pub fn to_json(&self) -> Value {
            let mut headers = Map::new();
            for (k, v) in &self.headers {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
            serde_json::json!({"method": self.method, "url": self.url, "headers": headers,
                               "body": self.body})
        }
    }

    /// Sends the request; an answer with an error status is still `Ok`.
    pub fn send(req: &Request) -> Result<Response, Error> {
        let text = serde_json::to_vec(&req.to_json()).map_err(|_| Error::InvalidArgument)?;
        let raw = send_raw(&text)?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| Error::Failed)?;
        let text_of = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Ok(Response {
            status: v.get("status").and_then(Value::as_u64).ok_or(Error::Failed)? as u16,
            headers: v.get("headers").and_then(Value::as_object).cloned().unwrap_or_default(),
            body: text_of("body"),
            body_b64: text_of("body_b64"),
        })
    }

    /// send-http with the request and the answer as JSON bytes.
    pub fn send_raw(req_json: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Out::default();
        // SAFETY: a valid pair and an out slot.
        check(unsafe { sys::send_http(req_json.as_ptr(), req_json.len() as u32, &mut out) })?;
        Ok(out.take())
    }
}
