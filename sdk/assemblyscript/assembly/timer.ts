// timer.ts - the handle-timer export, for an actor with timers
// (docs/actor-abi.md, "Timers"). Re-export it beside the ABI functions:
//   export * from "theater-sdk/abi";
//   export * from "theater-sdk/timer";
// and register the handler with onTimer. The transform renames handle_timer to
// handle-timer. An actor without it exports no handle-timer (set-timer answers
// INVALID).
import { dispatch } from "./call";
import { timerHandler } from "./reply";

export function handle_timer(sp: usize, sl: usize, tp: usize, tl: usize): usize {
  return dispatch(timerHandler, sp, sl, tp, tl, "", true);
}
