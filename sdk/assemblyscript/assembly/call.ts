// call.ts - the result record and the dispatch of a handler, shared by the
// exports of abi.ts, timer.ts and channel.ts (not exported from the module).
import { copyIn } from "./host";
import { Reply, Handler } from "./reply";

// The result record: five u32, in static memory so that a heap reset keeps it.
const RECORD: usize = memory.data(20, 8);

function record(status: u32, sp: usize, sl: usize, op: usize, ol: usize): usize {
  store<u32>(RECORD, status);
  store<u32>(RECORD, <u32>sp, 4);
  store<u32>(RECORD, <u32>sl, 8);
  store<u32>(RECORD, <u32>op, 12);
  store<u32>(RECORD, <u32>ol, 16);
  return RECORD;
}

export function answer(r: Reply, sp: usize, sl: usize): usize {
  const msg = r.message;
  if (msg != null) {
    const m = String.UTF8.encode(msg);
    return record(1, sp, sl, changetype<usize>(m), <usize>m.byteLength);
  }
  const out = r.output;
  return record(0, r.state.dataStart, <usize>r.state.length,
    out == null ? 0 : out.dataStart, out == null ? 0 : <usize>out.length);
}

export function dispatch(f: Handler | null, sp: usize, sl: usize, ip: usize, il: usize, missing: string, keep: bool): usize {
  const state = copyIn(sp, sl);
  if (f == null) return answer(keep ? Reply.ok(state) : Reply.error(missing), sp, sl);
  return answer(f(state, copyIn(ip, il)), sp, sl);
}

