// host.ts - typed wrappers for the host interfaces of ABI version 1
// (docs/actor-abi.md). Each namespace is one interface; the manifest must grant
// it with a [[handler]] of the type named in its comment. Only the functions an
// actor calls end up as imports of its module.
import * as JSON from "./json";

/** The negative codes of host functions. */
export namespace HostError {
  export const INVALID: i32 = -1;
  export const NOT_FOUND: i32 = -2;
  export const DENIED: i32 = -3;
  export const TIMED_OUT: i32 = -4;
  export const TOO_LARGE: i32 = -5;
  export const FAILED: i32 = -6;
  export const BUSY: i32 = -7;

  /** The name of a code ("denied", ...). */
  export function name(code: i32): string {
    switch (code) {
      case -1: return "invalid argument";
      case -2: return "not found";
      case -3: return "denied";
      case -4: return "timed out";
      case -5: return "too large";
      case -6: return "failed";
      case -7: return "busy";
    }
    return code < 0 ? "host error " + code.toString() : "ok";
  }
}

/** A host call's outcome: ok with a value, or the host's negative code. */
export class Result<T> {
  constructor(public code: i32, public value: T) {}
  get ok(): bool { return this.code >= 0; }
  /** The error's name ("denied", ...); "ok" when it succeeded. */
  get error(): string { return HostError.name(this.code); }
  /** The value; aborts (traps) when the call failed. */
  unwrap(): T {
    if (this.code < 0) abort("host call failed: " + this.error);
    return this.value;
  }
}

/** What openChannel answers: the channel id (> 0) or a negative code, and the
 * target's accept message (or its reason for refusing). */
export class ChannelOpen {
  constructor(public channel: i64, public message: Uint8Array) {}
  get ok(): bool { return this.channel > 0; }
  get error(): string { return HostError.name(<i32>this.channel); }
}

/** Bytes to text (UTF-8). */
export function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

/** Text to bytes (UTF-8). */
export function bytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** A copy of the (ptr, len) bytes at p. */
export function copyIn(p: usize, n: usize): Uint8Array {
  const a = new Uint8Array(<i32>n);
  if (n) memory.copy(a.dataStart, p, n);
  return a;
}

/** The 8-byte (ptr, len) slot through which the host hands back bytes. */
function slot(): usize { return heap.alloc(8); }
function slotBytes(out: usize): Uint8Array { return copyIn(load<u32>(out), load<u32>(out, 4)); }
function fixedText(p: usize, n: usize): string { return String.UTF8.decodeUnsafe(p, n); }

// ---- the imports ----
@external("theater:simple/runtime", "log") declare function _log(p: usize, n: usize): void;
@external("theater:simple/runtime", "self-id") declare function _selfId(out36: usize): i32;
@external("theater:simple/runtime", "shutdown") declare function _shutdown(p: usize, n: usize): void;
@external("theater:simple/message-server-host", "send")
declare function _send(id: usize, idLen: usize, msg: usize, len: usize): i32;
@external("theater:simple/message-server-host", "request")
declare function _request(id: usize, idLen: usize, msg: usize, len: usize, timeoutMs: u32, out: usize): i32;
@external("theater:simple/message-server-host", "defer-request") declare function _deferRequest(): i64;
@external("theater:simple/message-server-host", "respond-to-request")
declare function _respondToRequest(id: i64, p: usize, n: usize): i32;
@external("theater:simple/message-server-host", "fail-request")
declare function _failRequest(id: i64, p: usize, n: usize): i32;
@external("theater:simple/message-server-host", "send-chunk")
declare function _sendChunk(id: i64, p: usize, n: usize): i32;
@external("theater:simple/message-server-host", "open-channel")
declare function _openChannel(id: usize, idLen: usize, msg: usize, len: usize, out: usize): i64;
@external("theater:simple/message-server-host", "send-on-channel")
declare function _sendOnChannel(channel: i64, p: usize, n: usize): i32;
@external("theater:simple/message-server-host", "close-channel")
declare function _closeChannel(channel: i64): i32;
@external("theater:simple/timing", "set-timer")
declare function _setTimer(name: usize, n: usize, delayMs: i64, periodMs: i64): i32;
@external("theater:simple/timing", "cancel-timer") declare function _cancelTimer(name: usize, n: usize): i32;
@external("theater:simple/timing", "now") declare function _now(): i64;
@external("theater:simple/timing", "sleep") declare function _sleep(ms: i64): i32;
@external("theater:simple/random", "random-bytes") declare function _randomBytes(p: usize, n: usize): i32;
@external("theater:simple/random", "generate-uuid") declare function _generateUuid(out36: usize): i32;
@external("theater:simple/store", "store")
declare function _store(sid: usize, sidLen: usize, p: usize, n: usize, out64: usize): i32;
@external("theater:simple/store", "get")
declare function _get(sid: usize, sidLen: usize, hash64: usize, out: usize): i32;
@external("theater:simple/store", "label")
declare function _label(sid: usize, sidLen: usize, l: usize, lLen: usize, hash64: usize): i32;
@external("theater:simple/store", "get-by-label")
declare function _getByLabel(sid: usize, sidLen: usize, l: usize, lLen: usize, out: usize): i32;
@external("theater:simple/supervisor", "spawn")
declare function _spawn(m: usize, mLen: usize, s: usize, sLen: usize, out36: usize): i32;
@external("theater:simple/supervisor", "list-children") declare function _listChildren(out: usize): i32;
@external("theater:simple/supervisor", "stop-child") declare function _stopChild(id: usize, n: usize): i32;
@external("theater:simple/supervisor", "restart-child") declare function _restartChild(id: usize, n: usize): i32;
@external("theater:simple/supervisor", "get-child-state")
declare function _getChildState(id: usize, n: usize, out: usize): i32;
@external("theater:simple/http-client", "send-http")
declare function _sendHttp(req: usize, len: usize, out: usize): i32;

/** UTF-8 bytes of s (not NUL-terminated) as an ArrayBuffer. */
function utf8(s: string): ArrayBuffer { return String.UTF8.encode(s); }
function ptr(b: ArrayBuffer): usize { return changetype<usize>(b); }
function len(b: ArrayBuffer): usize { return <usize>b.byteLength; }

/** theater:simple/runtime (handler "runtime"). */
export namespace runtime {
  /** Writes a line to the actor's log (and its chain). */
  export function log(msg: string): void { const b = utf8(msg); _log(ptr(b), len(b)); }
  /** This actor's id (36 characters). */
  export function selfId(): Result<string> {
    const out = heap.alloc(36);
    const rc = _selfId(out);
    return new Result<string>(rc, rc < 0 ? "" : fixedText(out, 36));
  }
  /** Stops the actor after this call, with a reason. */
  export function shutdown(reason: string): void { const b = utf8(reason); _shutdown(ptr(b), len(b)); }
}

/** theater:simple/message-server-host (handler "message-server"). */
export namespace message {
  /** Sends a one-way message to another actor. */
  export function send(actorId: string, msg: Uint8Array): Result<i32> {
    const id = utf8(actorId);
    const rc = _send(ptr(id), len(id), msg.dataStart, <usize>msg.length);
    return new Result<i32>(rc, rc);
  }
  /** Sends a request and waits (at most timeoutMs) for the response. */
  export function request(actorId: string, msg: Uint8Array, timeoutMs: u32): Result<Uint8Array> {
    const id = utf8(actorId);
    const out = slot();
    const rc = _request(ptr(id), len(id), msg.dataStart, <usize>msg.length, timeoutMs, out);
    return new Result<Uint8Array>(rc, rc < 0 ? new Uint8Array(0) : slotBytes(out));
  }
  /** In a request handler: takes the request away from this call (its output no
   * longer answers it); the value is its id, for a later respondToRequest. */
  export function deferRequest(): Result<i64> {
    const id = _deferRequest();
    return new Result<i64>(id < 0 ? <i32>id : 0, id);
  }
  /** Answers a deferred request (TIMED_OUT: its client stopped waiting). */
  export function respondToRequest(id: i64, answer: Uint8Array): Result<i32> {
    const rc = _respondToRequest(id, answer.dataStart, <usize>answer.length);
    return new Result<i32>(rc, rc);
  }
  /** Answers a deferred request with an error (the client gets 422 actor_error). */
  export function failRequest(id: i64, msg: string): Result<i32> {
    const b = utf8(msg);
    const rc = _failRequest(id, ptr(b), len(b));
    return new Result<i32>(rc, rc);
  }
  /** Streams a piece of an answer (id 0: the request this call handles); the
   * value is 1 when a client streams it, 0 when it takes whole answers. */
  export function sendChunk(id: i64, chunk: Uint8Array): Result<i32> {
    const rc = _sendChunk(id, chunk.dataStart, <usize>chunk.length);
    return new Result<i32>(rc, rc);
  }
  /** Opens a channel to another actor and waits (at most 30 s) for its
   * handle-channel-open (docs/actor-abi.md, "Channels"). The outcome's code is
   * the channel id (> 0) or the host's negative code (DENIED: refused, the
   * value is the target's reason; NOT_FOUND; BUSY past 64 channels); the value
   * is the target's accept message or reason. */
  export function openChannel(actorId: string, msg: Uint8Array): ChannelOpen {
    const id = utf8(actorId);
    const out = slot();
    memory.fill(out, 0, 8);   // nothing written on most failures
    const rc = _openChannel(ptr(id), len(id), msg.dataStart, <usize>msg.length, out);
    return new ChannelOpen(rc, slotBytes(out));
  }
  /** Sends a message on an open channel (NOT_FOUND: it is closed). */
  export function sendOnChannel(channel: i64, msg: Uint8Array): Result<i32> {
    const rc = _sendOnChannel(channel, msg.dataStart, <usize>msg.length);
    return new Result<i32>(rc, rc);
  }
  /** Closes a channel; the peer's handle-channel-close hears it. */
  export function closeChannel(channel: i64): Result<i32> {
    const rc = _closeChannel(channel);
    return new Result<i32>(rc, rc);
  }
}

/** theater:simple/timing (handler "timing"). */
export namespace timing {
  /** The time in Unix milliseconds. */
  export function now(): i64 { return _now(); }
  /** Sleeps ms milliseconds (at most the handler's max_sleep_ms, or DENIED). */
  export function sleep(ms: i64): Result<i32> { const rc = _sleep(ms); return new Result<i32>(rc, rc); }
  /** Schedules ticks of the timer name (replacing one of that name): the first
   * after delayMs, then every periodMs (0: once). Ticks come to onTimer. */
  export function setTimer(name: string, delayMs: i64, periodMs: i64): Result<i32> {
    const b = utf8(name);
    const rc = _setTimer(ptr(b), len(b), delayMs, periodMs);
    return new Result<i32>(rc, rc);
  }
  /** Cancels the timer name (NOT_FOUND when there is none). */
  export function cancelTimer(name: string): Result<i32> {
    const b = utf8(name);
    const rc = _cancelTimer(ptr(b), len(b));
    return new Result<i32>(rc, rc);
  }
}

/** theater:simple/random (handler "random"). */
export namespace random {
  /** n random bytes (at most 64 KiB per call). */
  export function bytes(n: i32): Result<Uint8Array> {
    const a = new Uint8Array(n);
    const rc = _randomBytes(a.dataStart, <usize>n);
    return new Result<Uint8Array>(rc, a);
  }
  /** A random UUID (version 4), 36 characters. */
  export function uuid(): Result<string> {
    const out = heap.alloc(36);
    const rc = _generateUuid(out);
    return new Result<string>(rc, rc < 0 ? "" : fixedText(out, 36));
  }
}

/** theater:simple/store (handler "store"): content-addressed storage. */
export namespace store {
  /** Stores data; the value is its hex SHA-256 (64 characters). */
  export function put(storeId: string, data: Uint8Array): Result<string> {
    const sid = utf8(storeId);
    const out = heap.alloc(64);
    const rc = _store(ptr(sid), len(sid), data.dataStart, <usize>data.length, out);
    return new Result<string>(rc, rc < 0 ? "" : fixedText(out, 64));
  }
  /** The content with this hash. */
  export function get(storeId: string, hash: string): Result<Uint8Array> {
    const sid = utf8(storeId), h = utf8(hash);
    if (h.byteLength != 64) return new Result<Uint8Array>(HostError.INVALID, new Uint8Array(0));
    const out = slot();
    const rc = _get(ptr(sid), len(sid), ptr(h), out);
    return new Result<Uint8Array>(rc, rc < 0 ? new Uint8Array(0) : slotBytes(out));
  }
  /** Points label at the content with this hash. */
  export function label(storeId: string, label: string, hash: string): Result<i32> {
    const sid = utf8(storeId), l = utf8(label), h = utf8(hash);
    if (h.byteLength != 64) return new Result<i32>(HostError.INVALID, HostError.INVALID);
    const rc = _label(ptr(sid), len(sid), ptr(l), len(l), ptr(h));
    return new Result<i32>(rc, rc);
  }
  /** The content label points at. */
  export function getByLabel(storeId: string, label: string): Result<Uint8Array> {
    const sid = utf8(storeId), l = utf8(label);
    const out = slot();
    const rc = _getByLabel(ptr(sid), len(sid), ptr(l), len(l), out);
    return new Result<Uint8Array>(rc, rc < 0 ? new Uint8Array(0) : slotBytes(out));
  }
}

/** theater:simple/supervisor (handler "supervisor"): child actors. */
export namespace supervisor {
  /** Spawns a child from a manifest (JSON or TOML text) with an initial state
   * (empty: the manifest's); the value is the child's id, also when the code is
   * FAILED or TIMED_OUT but the child was created. */
  export function spawn(manifest: string, state: Uint8Array | null = null): Result<string> {
    const m = utf8(manifest);
    const out = heap.alloc(36);
    memory.fill(out, 0, 36);
    const s = state == null ? new Uint8Array(0) : state;
    const rc = _spawn(ptr(m), len(m), s.dataStart, <usize>s.length, out);
    return new Result<string>(rc, load<u8>(out) == 0 ? "" : fixedText(out, 36));
  }
  /** The ids of this actor's children. */
  export function listChildren(): Result<Array<string>> {
    const out = slot();
    const rc = _listChildren(out);
    const ids = new Array<string>();
    if (rc < 0) return new Result<Array<string>>(rc, ids);
    const v = JSON.parse(text(slotBytes(out)));
    if (v == null) return new Result<Array<string>>(HostError.INVALID, ids);
    for (let i = 0; i < v.length; i++) ids.push(v.items[i].str);
    return new Result<Array<string>>(rc, ids);
  }
  /** Stops a child (ok when it had already ended). */
  export function stopChild(id: string): Result<i32> {
    const b = utf8(id); const rc = _stopChild(ptr(b), len(b)); return new Result<i32>(rc, rc);
  }
  /** Restarts a child. */
  export function restartChild(id: string): Result<i32> {
    const b = utf8(id); const rc = _restartChild(ptr(b), len(b)); return new Result<i32>(rc, rc);
  }
  /** A child's current state. */
  export function getChildState(id: string): Result<Uint8Array> {
    const b = utf8(id);
    const out = slot();
    const rc = _getChildState(ptr(b), len(b), out);
    return new Result<Uint8Array>(rc, rc < 0 ? new Uint8Array(0) : slotBytes(out));
  }
}

/** theater:simple/http-client (handler "http-client", hosts in allowed_hosts). */
export namespace http {
  /** An answer: status, headers (lowercase names), the body as text, or
   * bodyB64 when it is not UTF-8. */
  export class Response {
    status: i32 = 0;
    headers: JSON.Value = JSON.Value.object();
    body: string = "";
    bodyB64: string = "";
  }

  /** Sends a request ({method, url, headers, body}); an error status is still ok. */
  export function send(method: string, url: string, headers: JSON.Value | null, body: string): Result<Response> {
    const req = JSON.Value.object()
      .set("method", JSON.Value.fromString(method))
      .set("url", JSON.Value.fromString(url))
      .set("headers", headers == null ? JSON.Value.object() : headers)
      .set("body", JSON.Value.fromString(body));
    const raw = sendRaw(req.toString());
    const resp = new Response();
    if (!raw.ok) return new Result<Response>(raw.code, resp);
    const v = JSON.parse(raw.value);
    if (v == null) return new Result<Response>(HostError.FAILED, resp);
    const status = v.get("status");
    if (status == null || !status.isInt) return new Result<Response>(HostError.FAILED, resp);
    resp.status = <i32>status.int;
    const h = v.get("headers");
    if (h != null && h.isObject) resp.headers = h;
    const b = v.get("body");
    if (b != null && b.isString) resp.body = b.str;
    const b64 = v.get("body_b64");
    if (b64 != null && b64.isString) resp.bodyB64 = b64.str;
    return new Result<Response>(0, resp);
  }

  /** send-http with the request and the answer as JSON text. */
  export function sendRaw(requestJson: string): Result<string> {
    const b = utf8(requestJson);
    const out = slot();
    const rc = _sendHttp(ptr(b), len(b), out);
    return new Result<string>(rc, rc < 0 ? "" : text(slotBytes(out)));
  }
}
