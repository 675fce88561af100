// abi.ts - the exports of ABI version 1. An actor's entry file re-exports them:
//   export * from "theater-sdk/abi";
// The SDK's transform (sdk/assemblyscript/transform.mjs) renames handle_send and
// the others to the ABI's names (handle-send, ...), which AssemblyScript cannot
// spell. The build uses the stub runtime: theater_alloc is its bump allocator
// and theater_reset_heap its reset.
import { copyIn } from "./host";
import { answer, dispatch } from "./call";
import {
  Reply, initHandler, sendHandler, requestHandler, childExitHandler, childErrorHandler,
} from "./reply";

export function theater_abi_version(): i32 { return 1; }

// The stub's allocator traps when memory cannot grow; the ABI asks for 0 instead.
// So grow first: a zero-sized block shows where the next one starts (it costs
// one block header, reclaimed by the next reset).
const MAX_BLOCK: usize = (1 << 30) - 64;

export function theater_alloc(size: usize): usize {
  if (size > MAX_BLOCK) return 0;
  const end = heap.alloc(0) + size + 64;
  const have = (<usize>memory.size()) << 16;
  if (end > have && memory.grow(<i32>((end - have + 0xffff) >> 16)) < 0) return 0;
  return heap.alloc(size);
}

export function theater_reset_heap(): void { heap.reset(); }

export function init(sp: usize, sl: usize): usize {
  const f = initHandler;
  const state = copyIn(sp, sl);
  return answer(f == null ? Reply.ok(state) : f(state), sp, sl);
}

export function handle_send(sp: usize, sl: usize, mp: usize, ml: usize): usize {
  return dispatch(sendHandler, sp, sl, mp, ml, "this actor does not handle messages", false);
}

export function handle_request(sp: usize, sl: usize, rp: usize, rl: usize): usize {
  return dispatch(requestHandler, sp, sl, rp, rl, "this actor does not handle requests", false);
}

export function handle_child_exit(sp: usize, sl: usize, ip: usize, il: usize): usize {
  return dispatch(childExitHandler, sp, sl, ip, il, "", true);
}

export function handle_child_error(sp: usize, sl: usize, ip: usize, il: usize): usize {
  return dispatch(childErrorHandler, sp, sl, ip, il, "", true);
}
