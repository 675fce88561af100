#!/usr/bin/env python3
"""blast_api.py - throws malformed requests, manifests and actor results at a
running theater-server and checks that every answer is a clean one.

    tests/fuzz/blast_api.py BASE_URL [N] [SEED] [PHASE...]
    (e.g. after: theater-server --listen 127.0.0.1:8099 --package-root DIR;
    BLAST_PACKAGE_ROOT=DIR for the abi and host phases, which write their
    actors there; DIR must hold counter/manifest.json and counter/counter.wasm)
PHASE: api, manifest, abi, host (default: all four).

Three families, N requests each (default 2000):
  api       random methods, route-shaped and garbage paths, percent-escapes,
            queries, headers (Origin, Host, Content-Type, Last-Event-ID, ...)
            and bodies, sent raw over a socket;
  manifest  random and mutated manifests to POST /manifests/validate and
            POST /actors (JSON and TOML);
  abi       an actor (WebAssembly text below, compiled with wat2wasm) whose
            handle-request returns the first 20 bytes of each message as its
            result record and first calls runtime/log with the (ptr, len) in
            the next 8 bytes: random messages are random ABI results;
  host      an actor that imports every host function of the ABI (the tables
            of src/actor_abi.c and supervisor/host_env.c, read at run time, so
            a new import is blasted too) with every grant, and calls the one a
            request names with the arguments it carries: pointers into bytes
            the request also carries (ids, manifests, HTTP requests to a local
            listener, store ids, hashes, timer names, secrets, junk), out
            pointers, lengths and edge values. Its answer is the host
            function's result and the 64 bytes at its out pointer, so ids and
            hashes the host wrote are aimed at in later calls.
A finding is: a 5xx other than 502/503/504, an error status without
application/problem+json, no answer within 30 s, more than one status line
in one answer, /health not answering afterwards, or (host) a host function
result outside the ABI's codes. Exit status 1 on a
finding; the summary (counts per status) goes to stdout.
"""
import http.server
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROUTES = ["/health", "/ready", "/version", "/actors", "/actors/{id}", "/actors/{id}/stop",
          "/actors/{id}/kill", "/actors/{id}/messages", "/actors/{id}/requests",
          "/actors/{id}/state", "/actors/{id}/metrics", "/actors/{id}/restart",
          "/actors/{id}/chain", "/actors/{id}/chain/events/{seq}", "/actors/{id}/chain/verify",
          "/events", "/store/{s}", "/store/{s}/hash/{h}", "/store/{s}/labels/{l}", "/packages",
          "/manifests/validate", "/actors/{id}/manifest", "/", "/ui/{a}", "/session"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "BREW", ""]
JUNK = ["", "a", "..", "%2e%2e", "%00", "%zz", "a" * 300, "\u00e9".encode().decode("latin1"),
        "00000000-0000-4000-8000-000000000000", "-1", "18446744073709551616", "*", "%2F"]


def rnd_seg(r, ids):
    return r.choice(ids + JUNK) if ids and r.random() < 0.5 else r.choice(JUNK)


def rnd_path(r, ids):
    p = r.choice(ROUTES)
    for k in ("{id}", "{seq}", "{s}", "{h}", "{l}", "{a}"):
        while k in p:
            p = p.replace(k, rnd_seg(r, ids), 1)
    if r.random() < 0.4:
        q = "&".join("%s=%s" % (r.choice(["after", "limit", "wait", "timeout", "status",
                                          "parent", "x", ""]), r.choice(JUNK))
                     for _ in range(r.randint(0, 80)))
        p += "?" + q
    return p.replace(" ", "%20").replace("\r", "").replace("\n", "")


def rnd_headers(r, port):
    h = [("Host", r.choice(["127.0.0.1:%d" % port, "localhost", "evil.example", ""]))]
    for _ in range(r.randint(0, 6)):
        h.append(r.choice([("Origin", r.choice(["http://evil.example", "null",
                                                "http://127.0.0.1:%d" % port])),
                           ("Sec-Fetch-Site", r.choice(["cross-site", "same-origin", "x"])),
                           ("Content-Type", r.choice(["application/json", "text/plain",
                                                      "application/toml", "multipart/form-data",
                                                      "x" * 100])),
                           ("Accept", r.choice(["text/event-stream", "text/html", "*/*"])),
                           ("Last-Event-ID", r.choice(JUNK)),
                           ("Transfer-Encoding", "chunked"),
                           ("Content-Length", r.choice(["0", "-1", "5", "abc", "99999999999"])),
                           ("If-None-Match", r.choice(JUNK)),
                           ("X" * r.randint(1, 50), "y" * r.randint(0, 200))]))
    return h


def rnd_body(r):
    k = r.random()
    if k < 0.3:
        return b""
    if k < 0.6:
        return os.urandom(r.randint(1, 2000))
    v = rnd_json(r, 0)
    return json.dumps(v).encode()


def rnd_json(r, depth):
    k = r.random()
    if depth > 4 or k < 0.3:
        return r.choice([None, True, 0, -1, 2 ** 70, 1.5, "", "x" * r.randint(0, 100),
                         "counter/manifest.json", "http://169.254.169.254/", "store://a/b"])
    if k < 0.6:
        return [rnd_json(r, depth + 1) for _ in range(r.randint(0, 4))]
    keys = ["manifest", "manifest_ref", "initial_state", "name", "package", "handler", "type",
            "version", "limits", "restart", "static_package", "x"]
    return {r.choice(keys): rnd_json(r, depth + 1) for _ in range(r.randint(0, 5))}


def raw(port, data, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)         # no half-close: libmicrohttpd drops a pending answer on it
        out = b""
        end = time.time() + timeout
        while time.time() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                return out or None     # an answer on a kept-alive connection is one
            if not b:
                break
            out += b
            if b"text/event-stream" in out[:2048]:
                break              # a stream: the head is enough
        return out
    finally:
        s.close()


def incomplete(data):
    """A request whose head announces more body than it carries (chunked without
    its last chunk, a Content-Length beyond the bytes sent) or whose head does
    not end: the server rightly waits for the rest."""
    if b"\r\n\r\n" not in data:
        return True
    head, body = data.split(b"\r\n\r\n", 1)
    fields = [ln.split(b":", 1) for ln in head.split(b"\r\n")[1:] if b":" in ln]
    for k, v in fields:
        k, v = k.strip().lower(), v.strip()
        if k == b"transfer-encoding" and b"chunked" in v.lower() and \
                not body.endswith(b"0\r\n\r\n"):
            return True
        if k == b"content-length" and v.isdigit() and int(v) > len(body):
            return True
    return False


def request(port, method, path, headers, body):
    # Connection: close, so that the answer ends with the connection
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in headers] + \
        ["Connection: close"]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin1") + body


class Check:
    def __init__(self):
        self.status = {}
        self.findings = []

    def answer(self, what, out):
        if out is None:
            self.findings.append(("no answer within 20 s", what))
            return
        if not out:                    # closed without an answer: clean
            self.status["closed"] = self.status.get("closed", 0) + 1
            return
        head = out.split(b"\r\n\r\n", 1)[0].decode("latin1")
        st = head.split(" ", 2)[1] if head.startswith("HTTP/1.") else "?"
        self.status[st] = self.status.get(st, 0) + 1
        # libmicrohttpd 0.9.75's own HTML error pages (a malformed request line,
        # header or chunk, headers too large, an HTTP version it does not serve)
        # are replaced by problem+json, and its page for a malformed
        # Content-Length (sent with its header block twice) by a close
        # (server/http_lib_pages.c): any page of the library is a finding
        if b"\r\n\r\n<html><head><title>" in out:
            self.findings.append(("libmicrohttpd's own HTML page", what, out[:300]))
        if out.count(b"HTTP/1.1 ") > 1 and b"\r\n\r\nHTTP/1.1 " in out:
            self.findings.append(("two status lines", what))
        if st.startswith("5") and st not in ("502", "503", "504", "505"):
            self.findings.append(("status " + st, what, out[:300]))
        if st[:1] in ("4", "5") and b"application/problem+json" not in out and st != "?":
            self.findings.append(("error without problem+json", what, out[:300]))


def wat_runtime(heap):
    """The exports every actor has: ABI version, a bump allocator from heap that
    grows the memory as it needs, its reset, and an init that keeps the state
    ($ok: the result record "status 0, this state, no output")."""
    return r"""  (global $top (mut i32) (i32.const %d))
  (func (export "theater_abi_version") (result i32) (i32.const 1))
  (func (export "theater_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.and (i32.add (i32.add (global.get $top) (local.get $n)) (i32.const 7))
                              (i32.const -8)))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $top)
                  (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
                        (i32.const -1))
        (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "theater_reset_heap") (global.set $top (i32.const %d)))
  (func $ok (param $sp i32) (param $sn i32) (result i32)
    (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (local.get $sp))
    (i32.store (i32.const 8) (local.get $sn)) (i32.store (i32.const 12) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 0)) (i32.const 0))
  (func (export "init") (param $sp i32) (param $sn i32) (result i32)
    (call $ok (local.get $sp) (local.get $sn)))
""" % (heap, heap)


BLAST_WAT = r"""
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
""" + wat_runtime(1024) + r"""
  (func (export "handle-request") (param $sp i32) (param $sn i32) (param $mp i32) (param $mn i32)
    (result i32)
    (if (i32.ge_u (local.get $mn) (i32.const 28))
      (then (call $log (i32.load (i32.add (local.get $mp) (i32.const 20)))
                       (i32.load (i32.add (local.get $mp) (i32.const 24))))))
    (if (i32.ge_u (local.get $mn) (i32.const 20))
      (then (memory.copy (i32.const 0) (local.get $mp) (i32.const 20))
            (return (i32.const 0))))
    (i32.load (local.get $mp))))
"""


def abi_actor(base, roots):
    with tempfile.TemporaryDirectory() as d:
        open(d + "/b.wat", "w").write(BLAST_WAT)
        subprocess.check_call(["wat2wasm", d + "/b.wat", "-o", os.path.join(roots, "blast.wasm")])
    return base


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WT = {"I32": "i32", "I64": "i64", "WASM_I32": "i32", "WASM_I64": "i64"}


def abi_imports():
    """[(module, name, handler, params, results)] from the C tables."""
    out = []
    src = open(os.path.join(ROOT, "src/actor_abi.c")).read()
    mods = dict(re.findall(r'#define (\w+) "(theater:[^"]+)"', src))
    row = r'\{(\w+), "([^"]+)", ("[^"]+"|\w+), (\d), (\d), \{([^}]*)\}, \{([^}]*)\}'
    def types(ts, n):
        return [WT[t.strip()] for t in ts.split(",") if t.strip() in WT][:int(n)]
    for m, name, handler, np_, nr, ps, rs in re.findall(row, src):
        out.append((mods[m], name, handler.strip('"'), types(ps, np_), types(rs, nr)))
    env = open(os.path.join(ROOT, "supervisor/host_env.c")).read()
    mod = re.search(r'#define MOD "([^"]+)"', env).group(1)
    for name, handler, np_, nr, ps, rs in re.findall(
            r'\{MOD, "([^"]+)", (\w+), (\d), (\d), \{([^}]*)\}, \{([^}]*)\}', env):
        out.append((mod, name, "environment", types(ps, np_), types(rs, nr)))
    if len(out) < 20 or len({(m, n) for m, n, _, _, _ in out}) != len(out):
        raise SystemExit("blast_api: cannot read the ABI's import tables (%d rows)" % len(out))
    return out


DATA, SCRATCH = 0x1000, 0x9000      # the request's bytes; where out pointers point


def host_wat(imports):
    w = ["(module"]
    for k, (mod, name, _, ps, rs) in enumerate(imports):
        w.append('  (import "%s" "%s" (func $f%d%s%s))' % (
            mod, name, k, " (param %s)" % " ".join(ps) if ps else "",
            " (result %s)" % rs[0] if rs else ""))
    w.append('  (memory (export "memory") 2)\n' + wat_runtime(65536))
    # the other exports accept whatever comes (channels, timers, children, messages)
    for name in ("handle-send", "handle-timer", "handle-child-exit", "handle-child-error",
                 "handle-channel-open", "handle-channel-message", "handle-channel-close"):
        w.append('  (func (export "%s") (param $sp i32) (param $sn i32) (param i32 i32) '
                 '(result i32) (call $ok (local.get $sp) (local.get $sn)))' % name)
    w.append(r"""  (func $arg (param $mp i32) (param $i i32) (result i64)
    (i64.load (i32.add (local.get $mp) (i32.add (i32.const 8) (i32.shl (local.get $i) (i32.const 3))))))
  (func (export "handle-request") (param $sp i32) (param $sn i32) (param $mp i32) (param $mn i32)
    (result i32) (local $r i64) (local $k i32) (local $dn i32)
    (memory.fill (i32.const 0x9000) (i32.const 0) (i32.const 64))
    (if (i32.ge_u (local.get $mn) (i32.const 72)) (then
      (local.set $dn (i32.sub (local.get $mn) (i32.const 72)))
      (if (i32.gt_u (local.get $dn) (i32.const 0x8000)) (then (local.set $dn (i32.const 0x8000))))
      (memory.copy (i32.const 0x1000) (i32.add (local.get $mp) (i32.const 72)) (local.get $dn))
      (local.set $k (i32.load8_u (local.get $mp)))""")
    for k, (_, _, _, ps, rs) in enumerate(imports):
        args = " ".join("(call $arg (local.get $mp) (i32.const %d))" % i if t == "i64" else
                        "(i32.wrap_i64 (call $arg (local.get $mp) (i32.const %d)))" % i
                        for i, t in enumerate(ps))
        call = "(call $f%d %s)" % (k, args)
        if rs == ["i32"]:
            call = "(local.set $r (i64.extend_i32_s %s))" % call
        elif rs == ["i64"]:
            call = "(local.set $r %s)" % call
        w.append("      (if (i32.eq (local.get $k) (i32.const %d)) (then %s))" % (k, call))
    # a deferred request is answered by respond-to-request with the same bytes
    names = [name for _, name, _, _, _ in imports]
    defer, respond = names.index("defer-request"), names.index("respond-to-request")
    w.append(r"""))
    (i64.store (i32.const 0x0F00) (local.get $r))
    (memory.copy (i32.const 0x0F08) (i32.const 0x9000) (i32.const 64))
    (if (i32.and (i32.eq (local.get $k) (i32.const %d)) (i64.gt_s (local.get $r) (i64.const 0)))
      (then (drop (call $f%d (local.get $r) (i32.const 0x0F00) (i32.const 72)))))""" % (defer, respond))
    w.append(r"""
    (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (local.get $sp))
    (i32.store (i32.const 8) (local.get $sn)) (i32.store (i32.const 12) (i32.const 0x0F00))
    (i32.store (i32.const 16) (i32.const 72)) (i32.const 0)))""")
    return "\n".join(w)


class Target(http.server.BaseHTTPRequestHandler):
    """The local listener send-http reaches: plain, slow, streamed, large."""
    def do_GET(self):
        self.answer()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(n, 1 << 20))
        self.answer()

    def answer(self):
        if "slow" in self.path:
            time.sleep(1.5)
        if "sse" in self.path:
            body = b"".join(b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % i
                            for i in range(20)) + b"data: [DONE]\n\n"
            ctype = "text/event-stream"
        else:
            body = b"x" * (300000 if "big" in self.path else 20)
            ctype = "text/plain"
        try:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass                    # the host's request timed out first

    def log_message(self, *a):
        pass


# What each host function's parameters are (docs/actor-abi.md), so that most
# calls are well formed and reach past the argument checks: a (ptr, len) pair of
# one kind of bytes, "o" an out pointer, "h" a pointer to 64 hex digits, "n" a
# length, "t" a timeout, "ms" and "rid" (a request or channel id) i64 values. A
# function missing here (a new import) gets generic arguments.
SHAPES = {
    "log": ["msg"], "self-id": ["o"], "shutdown": ["msg"], "send": ["id", "msg"],
    "request": ["id", "msg", "t", "o"], "defer-request": [], "respond-to-request": ["rid", "msg"],
    "fail-request": ["rid", "msg"], "send-chunk": ["rid", "msg"],
    "open-channel": ["id", "msg", "o"], "send-on-channel": ["rid", "msg"],
    "close-channel": ["rid"], "now": [], "sleep": ["ms"], "set-timer": ["name", "ms", "ms"],
    "cancel-timer": ["name"], "random-bytes": ["o", "n"], "generate-uuid": ["o"],
    "store": ["sid", "msg", "o"], "get": ["sid", "h", "o"], "label": ["sid", "lab", "h"],
    "get-by-label": ["sid", "lab", "o"], "spawn": ["man", "state", "o"], "list-children": ["o"],
    "stop-child": ["id"], "restart-child": ["id"], "get-child-state": ["id", "o"],
    "send-http": ["req", "o"], "get-var": ["var", "o"], "exists": ["var"], "list-vars": ["o"],
}
EDGE32 = [0, 1, 36, 64, 65535, 65536, 131072, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF]
EDGE64 = [0, 1, -1, 2, 5, 50, 300, 5000, 2 ** 31, 2 ** 63 - 1, -2 ** 63]


def host_bytes(r, kind, st, hport):
    """Bytes of one kind, mostly well formed."""
    url = "http://127.0.0.1:%d/%s" % (hport, r.choice(["a", "slow", "sse", "big", "x?q=1"]))
    junk = r.random() < 0.15
    if junk or kind == "msg":
        v = r.choice([lambda: bytes(r.randrange(256) for _ in range(r.randint(0, 200))),
                      lambda: b"\xff\xfe" * r.randint(1, 40), lambda: b"",
                      lambda: b"y" * r.choice([1024, 70000, 0x7000]),
                      lambda: json.dumps(rnd_json(r, 0)).encode(),
                      lambda: b'{"count":1}'])()
    elif kind == "id":
        v = r.choice([st["self"], st["counter"], "00000000-0000-4000-8000-000000000000"] +
                     st["children"] * 3 + st["peers"])
    elif kind == "man":
        v = json.dumps(r.choice([
            {"name": "c", "package": "counter/counter.wasm"},
            {"name": "c", "package": "counter/counter.wasm", "handler": [{"type": "runtime"}]},
            {"name": "c", "package": "counter/counter.wasm",
             "handler": [{"type": "supervisor"}, {"type": "http-client"}]},
            {"name": "c", "package": "HTTP://127.0.0.1:%d/x.wasm" % hport},
            {"name": "c", "package": "../etc/passwd"}, {"name": "c"},
            {"name": "c", "package": "blast-host/blast-host.wasm"}, st["manifest"],
            st["manifest"], rnd_json(r, 0)]))
    elif kind == "state":
        v = json.dumps(r.choice([{"count": r.randint(0, 9)}, None, rnd_json(r, 0)]))
    elif kind == "sid":
        v = r.choice(["s", "blast", "theater-state", "x" * 300, "a/b", ""])
    elif kind == "h":
        v = r.choice(st["hashes"] * 3 + ["0" * 64, "f" * 64, "g" * 64])
    elif kind == "lab":
        v = r.choice(["l", "latest", "x" * 200, ""])
    elif kind == "name":
        v = r.choice(["t", "tick", "a.b:c-d_e", "x" * 300, "", "t t"])
    elif kind == "var":
        v = r.choice(["BLAST_ONE", "BLAST_NONE", "OTHER", "", "BLAST_\x00"])
    else:  # req
        v = json.dumps(r.choice([
            {"method": "GET", "url": url},
            {"method": "POST", "url": url, "body": "b" * r.randint(0, 5000),
             "headers": {"X-A": "1"}, "timeout_ms": r.choice([1, 100, 3000])},
            {"method": "GET", "url": url, "relay": {"request": r.choice([0, 1, 99]),
                                                    "pointer": "/choices/0/delta/content"}},
            {"method": "GET", "url": url, "headers": {"Authorization": "{{secret:BLAST_ONE}}"}},
            {"method": "GET", "url": url, "headers": {"Host": "evil"}},
            {"method": "GET", "url": "http://169.254.169.254/"},
            {"method": "BREW", "url": url}, rnd_json(r, 0)]))
    return v if isinstance(v, bytes) else (v or "").encode("utf-8", "surrogateescape")


def host_call(r, imp, st, hport):
    """One request for import imp: 64 bytes of arguments, then the data they point into."""
    types, shape = imp[3], SHAPES.get(imp[1])
    if shape is None or r.random() < 0.15:      # generic: pairs, out pointers, edges
        shape = []
        for t in types:
            shape.append("rid" if t == "i64" else r.choice(["msg", "o", "n", "edge"]))
    data, vals = b"", []
    for role in shape:
        if role in ("o", "n", "t", "edge", "ms", "rid"):
            if role == "o":
                v = SCRATCH
            elif role == "n":
                v = r.choice([0, 1, 16, 64, 65536, 65537])
            elif role == "t":
                v = r.choice([0, 1, 200, 2000])
            elif role == "ms":
                v = r.choice([0, 0, 1, 10, 100, 150, 250, 1000, 5000, -1, 2 ** 63 - 1])
            elif role == "rid":
                v = r.choice(st["ids64"] * 2 + EDGE64) if st["ids64"] else r.choice(EDGE64)
            else:
                v = r.choice(EDGE32)
            vals.append(r.choice(EDGE32) if r.random() < 0.05 else v)
            continue
        b = host_bytes(r, role, st, hport)[:0x8000 - len(data)]
        ptr, n = DATA + len(data), len(b)
        data += b
        if role == "h":
            vals.append(ptr)
            continue
        if r.random() < 0.05:
            n = r.choice([n + 1, 0x10000, 0xFFFFFFFF])
        vals += [ptr, n]
    vals = (vals + [0] * 8)[:8]
    return b"".join((v & (2 ** 64 - 1)).to_bytes(8, "little") for v in vals), data


def spawn(port, body):
    """POST /actors?wait=running with body (a dict): (the id or None, the answer)."""
    out = raw(port, request(port, "POST", "/actors?wait=running", [("Host", "localhost")],
                            json.dumps(body).encode())) or b""
    try:
        return json.loads(out.split(b"\r\n\r\n", 1)[1])["id"], out
    except (IndexError, ValueError, KeyError):
        return None, out


def host_phase(r, port, n, roots, c, counter_id):
    imports = abi_imports()
    with tempfile.TemporaryDirectory() as d:
        open(d + "/h.wat", "w").write(host_wat(imports))
        os.makedirs(os.path.join(roots, "blast-host"), exist_ok=True)
        subprocess.check_call(["wat2wasm", d + "/h.wat", "-o",
                               os.path.join(roots, "blast-host", "blast-host.wasm")])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    hport = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    raw(port, request(port, "PUT", "/secrets/BLAST_ONE", [("Host", "localhost")], b"s3cret-value"))
    manifest = {"name": "blast-host", "package": "blast-host/blast-host.wasm", "handler": [
        {"type": "runtime"}, {"type": "message-server"}, {"type": "timing", "max_sleep_ms": 300},
        {"type": "random"}, {"type": "store"}, {"type": "supervisor"},
        {"type": "http-client", "allowed_hosts": ["127.0.0.1:%d" % hport],
         "allow_loopback_ports": [hport], "secrets": ["BLAST_ONE"], "timeout_ms": 2000},
        {"type": "environment", "allowed_prefixes": ["BLAST_"]}]}
    st = {"self": None, "children": [], "counter": counter_id or "", "hashes": [], "ids64": [],
          "peers": [], "manifest": manifest}     # its children may be blast actors too
    codes = {}
    t0 = time.time()
    known = {name for _, name, _, _, _ in imports}
    for i in range(n):
        if not st["self"]:
            st["self"], out = spawn(port, {"manifest": manifest})
            if not st["self"]:
                c.findings.append(("spawn of the host actor answered", out[:300]))
                break
        if i % 100 == 0:      # other live actors (another blast's too) to aim at
            out = raw(port, request(port, "GET", "/actors?status=running&limit=50",
                                    [("Host", "localhost")], b"")) or b""
            st["peers"] = re.findall(r'"id":"([0-9a-f-]{36})"', out.decode("latin1"))
        k = r.randrange(len(imports))
        if imports[k][1] == "shutdown" and r.random() < 0.8:
            k = (k + 1) % len(imports)           # rarer: it ends the actor
        args, data = host_call(r, imports[k], st, hport)
        msg = bytes([k]) + bytes(7) + args + data
        out = raw(port, request(port, "POST", "/actors/%s/requests?timeout=30" % st["self"],
                                [("Host", "localhost")], msg), timeout=40)
        c.answer(("host", imports[k][1], msg[:120].hex()), out)
        body = out.split(b"\r\n\r\n", 1)[1] if out and b"\r\n\r\n" in out else b""
        if out and out.startswith(b"HTTP/1.1 200") and len(body) == 72:
            rc = int.from_bytes(body[:8], "little", signed=True)
            name = imports[k][1]
            key = (name, rc if rc <= 0 else "+")
            codes[key] = codes.get(key, 0) + 1
            if rc < -7 and imports[k][4]:
                c.findings.append(("host %s answered %d, not an ABI code" % (name, rc),
                                   msg[:120].hex()))
            scratch = body[8:]
            text = scratch.split(b"\0", 1)[0].decode("latin1")
            if re.fullmatch(r"[0-9a-f-]{36}", text) and name == "spawn":
                st["children"] = (st["children"] + [text])[-20:]
            elif re.fullmatch(r"[0-9a-f]{64}", text):
                st["hashes"] = (st["hashes"] + [text])[-20:]
            if rc > 0 and imports[k][4] == ["i64"]:
                st["ids64"] = (st["ids64"] + [rc])[-20:]
        elif out and (b"HTTP/1.1 409" in out or b"HTTP/1.1 404" in out):
            st["self"] = None                    # it ended (shutdown, a trap): a new one
    srv.shutdown()
    print("host %.1f s" % (time.time() - t0), flush=True)
    missed = known - {name for name, _ in codes}
    print("host calls answered per function and result:",
          json.dumps({"%s %s" % kv: v for kv, v in sorted(codes.items(), key=str)}), flush=True)
    if n >= 200 and missed:
        c.findings.append(("host functions never answered", sorted(missed)))


def main():
    base = sys.argv[1].rstrip("/")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    phases = sys.argv[4:] or ["api", "manifest", "abi", "host"]
    if set(phases) - {"api", "manifest", "abi", "host"}:
        raise SystemExit("blast_api: phases are api, manifest, abi, host")
    roots = os.environ.get("BLAST_PACKAGE_ROOT")
    if not roots and set(phases) & {"abi", "host"}:
        raise SystemExit("blast_api: the abi and host phases need BLAST_PACKAGE_ROOT")
    r = random.Random(seed)
    port = urllib.parse.urlparse(base).port
    c = Check()
    ids = []
    # a few real actors to aim at
    counter, out = spawn(port, {"manifest_ref": "counter/manifest.json"})
    if counter:
        ids.append(counter)
    else:
        c.findings.append(("spawn of the counter answered", out[:300]))
    t0 = time.time()
    for i in range(n if "api" in phases else 0):
        m = r.choice(METHODS)
        p = rnd_path(r, ids)
        data = request(port, m, p, rnd_headers(r, port), rnd_body(r))
        if r.random() < 0.05:           # byte flips in the request head
            b = bytearray(data)
            for _ in range(r.randint(1, 5)):
                b[r.randrange(len(b))] = r.randrange(256)
            data = bytes(b)
        wait = 1 if incomplete(data) else 20
        out = raw(port, data, timeout=wait)
        if data.startswith(b"HEAD ") and out and out[9:10] in b"45" and \
                b"application/problem+json" not in out:
            # a HEAD answer has no body to tell whose page it is: ask with GET
            data = b"GET " + data[5:]
            out = raw(port, data, timeout=wait)
        if out is None and wait == 1:    # waits for the rest until --conn-timeout,
            c.status["waits"] = c.status.get("waits", 0) + 1     # like any slow client
        else:
            c.answer(("api", data[:200]), out)
    t1 = time.time()
    for i in range(n if "manifest" in phases else 0):
        v = rnd_json(r, 0)
        if r.random() < 0.5:
            v = {"manifest": {"name": "m", "package": r.choice(["counter/counter.wasm",
                                                              "x.wasm", "HTTP://127.0.0.1/x"]),
                              "handler": [{"type": r.choice(["runtime", "supervisor", "x"])}],
                              r.choice(["limits", "restart", "initial_state", "x"]): v}}
        body = json.dumps(v).encode()
        path = r.choice(["/manifests/validate", "/actors", "/actors?wait=running&timeout=5"])
        ct = r.choice(["application/json", "application/toml"])
        if ct == "application/toml":
            body = os.urandom(50) if r.random() < 0.3 else \
                b'name = "t"\npackage = "counter/counter.wasm"\n[[handler]]\ntype = "runtime"\n' + \
                bytes(r.choice(b"[]=\"'\n{}.abc0123") for _ in range(r.randint(0, 60)))
        c.answer(("manifest", body[:200]), raw(port, request(
            port, "POST", path, [("Host", "localhost"), ("Content-Type", ct)], body)))
    print("api %.1f s, manifest %.1f s; statuses:" % (t1 - t0, time.time() - t1),
          json.dumps(dict(sorted(c.status.items()))), flush=True)
    t2 = time.time()
    if "abi" in phases:
        abi_actor(base, roots)
        aid = None
        for _ in range(5):
            aid, out = spawn(port, {"manifest": {"name": "blast", "package": "blast.wasm",
                                                 "handler": [{"type": "runtime"}]}})
            if aid:
                break
            c.findings.append(("spawn of the abi actor answered", out[:300]))
            time.sleep(2)
        for i in range(n if aid else 0):
            msg = bytes(r.randrange(256) for _ in range(r.choice([0, 4, 20, 28, 40])))
            if r.random() < 0.5 and len(msg) >= 20:   # plausible records: small numbers
                vals = [r.choice([0, 1, 2, 1024, 65535, 65536, 2 ** 31, 2 ** 32 - 1])
                        for _ in range(len(msg) // 4)]
                msg = b"".join(v.to_bytes(4, "little") for v in vals)
            path = "/actors/%s/requests?timeout=10" % aid
            out = raw(port, request(port, "POST", path, [("Host", "localhost")], msg))
            c.answer(("abi", msg.hex()), out)
            if out and b"invalid_result" in out or (out and b"HTTP/1.1 409" in out):
                rs = raw(port, request(port, "POST", "/actors/%s/restart" % aid,
                                       [("Host", "localhost")], b""))
                time.sleep(0.05)
    t3 = time.time()
    if "abi" in phases:
        print("abi %.1f s" % (t3 - t2), flush=True)
    if "host" in phases:
        host_phase(r, port, n, roots, c, ids[0] if ids else None)
    health = raw(port, request(port, "GET", "/health", [("Host", "localhost")], b""))
    if not health or not health.startswith(b"HTTP/1.1 200"):
        c.findings.append(("/health does not answer 200 afterwards", health))
    print("statuses:", json.dumps(dict(sorted(c.status.items()))))
    print("requests: %d, findings: %d" % (sum(c.status.values()), len(c.findings)))
    for f in c.findings[:30]:
        print("FINDING:", f)
    return 1 if c.findings else 0


if __name__ == "__main__":
    sys.exit(main())
