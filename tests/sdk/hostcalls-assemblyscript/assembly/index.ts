// hostcalls (AssemblyScript) - a test actor that drives every host wrapper of
// the AssemblyScript SDK (tests/test_e2e_sdk.c). A request is one command; the
// answer is text: "ok VALUE" or "err NAME" (the host error's name). The
// commands are those of tests/sdk/hostcalls-rust.
import {
  Reply, Result, bytes, message, onChannelOpen, onRequest, onTimer, random, runtime, store,
  supervisor, text, timing,
} from "theater-sdk";
export * from "theater-sdk/abi";
export * from "theater-sdk/timer";
export * from "theater-sdk/channel";
import { theater_alloc } from "theater-sdk/abi";

function str(r: Result<string>): string { return r.ok ? "ok " + r.value : "err " + r.error; }
function bin(r: Result<Uint8Array>): string { return r.ok ? "ok " + text(r.value) : "err " + r.error; }
function code(r: Result<i32>): string { return r.ok ? "ok" : "err " + r.error; }

function tail(args: Array<string>, from: i32): string {
  return args.length > from ? args.slice(from).join(" ") : "";
}

function arg(args: Array<string>, i: i32): string { return i < args.length ? args[i] : ""; }

onRequest((state: Uint8Array, req: Uint8Array): Reply => {
  const cmd = text(req).trimEnd();
  const sp = cmd.indexOf(" ");
  const op = sp < 0 ? cmd : cmd.substring(0, sp);
  const rest = sp < 0 ? "" : cmd.substring(sp + 1);
  const args = rest.split(" ");
  let out = "";
  if (op == "log") { runtime.log(rest); out = "ok"; }
  else if (op == "self") out = str(runtime.selfId());
  else if (op == "now") out = "ok " + timing.now().toString();
  else if (op == "sleep") out = code(timing.sleep(I64.parseInt(arg(args, 0))));
  else if (op == "random") {
    const r = random.bytes(I32.parseInt(arg(args, 0)));
    out = r.ok ? "ok " + r.value.length.toString() : "err " + r.error;
  }
  else if (op == "uuid") out = str(random.uuid());
  else if (op == "store") out = str(store.put(arg(args, 0), bytes(tail(args, 1))));
  else if (op == "get") out = bin(store.get(arg(args, 0), arg(args, 1)));
  else if (op == "label") out = code(store.label(arg(args, 0), arg(args, 1), arg(args, 2)));
  else if (op == "getlabel") out = bin(store.getByLabel(arg(args, 0), arg(args, 1)));
  else if (op == "send") out = code(message.send(arg(args, 0), bytes(tail(args, 1))));
  else if (op == "request") out = bin(message.request(arg(args, 0), bytes(tail(args, 1)), 30000));
  else if (op == "spawn") out = str(supervisor.spawn(rest));
  else if (op == "children") {
    const r = supervisor.listChildren();
    out = r.ok ? "ok " + r.value.join(",") : "err " + r.error;
  }
  else if (op == "childstate") out = bin(supervisor.getChildState(arg(args, 0)));
  else if (op == "stop") out = code(supervisor.stopChild(arg(args, 0)));
  else if (op == "restart") out = code(supervisor.restartChild(arg(args, 0)));
  else if (op == "chunk") {
    const r = message.sendChunk(0, bytes(rest));
    out = r.ok ? "ok " + r.value.toString() : "err " + r.error;
  }
  else if (op == "respond") out = code(message.respondToRequest(I64.parseInt(arg(args, 0)), bytes(tail(args, 1))));
  else if (op == "fail") out = code(message.failRequest(I64.parseInt(arg(args, 0)), tail(args, 1)));
  else if (op == "timer") out = code(timing.setTimer(arg(args, 0), I64.parseInt(arg(args, 1)), I64.parseInt(arg(args, 2))));
  else if (op == "cancel") out = code(timing.cancelTimer(arg(args, 0)));
  else if (op == "open") {
    const r = message.openChannel(arg(args, 0), bytes(tail(args, 1)));
    out = (r.ok ? "ok " + r.channel.toString() : "err " + r.error) + " " + text(r.message);
  }
  else if (op == "chsend") out = code(message.sendOnChannel(I64.parseInt(arg(args, 0)), bytes(tail(args, 1))));
  else if (op == "chclose") out = code(message.closeChannel(I64.parseInt(arg(args, 0))));
  else if (op == "alloc") out = theater_alloc(<usize>U64.parseInt(arg(args, 0))) == 0 ? "ok null" : "ok some";
  else return Reply.error("unknown command '" + op + "'");
  return Reply.ok(state, bytes(out.trimEnd()));
});

// A channel opening is accepted with "welcome", unless its message is "reject".
onChannelOpen((state: Uint8Array, env: Uint8Array): Reply =>
  text(env).includes("\"data\":\"reject\"") ? Reply.error("not today")
                                               : Reply.ok(state, bytes("welcome")));

// A timer tick counts in the state: {"ticks": n}.
onTimer((state: Uint8Array, tick: Uint8Array): Reply => {
  const s = text(state);
  const n = s.startsWith("{\"ticks\":") ? I32.parseInt(s.substring(9, s.length - 1)) : 0;
  return Reply.okText("{\"ticks\":" + (n + 1).toString() + "}");
});
