// channel.ts - the handle-channel-open / -message / -close exports, for an actor
// that takes channels (docs/actor-abi.md, "Channels"). Re-export them beside
// the ABI functions:
//   export * from "theater-sdk/abi";
//   export * from "theater-sdk/channel";
// and register the handlers with onChannelOpen / onChannelMessage /
// onChannelClose. The transform renames handle_channel_open and the others.
// Without onChannelOpen every opening is refused.
import { dispatch } from "./call";
import { channelCloseHandler, channelMessageHandler, channelOpenHandler } from "./reply";

export function handle_channel_open(sp: usize, sl: usize, ep: usize, el: usize): usize {
  return dispatch(channelOpenHandler, sp, sl, ep, el, "this actor accepts no channels", false);
}

export function handle_channel_message(sp: usize, sl: usize, ep: usize, el: usize): usize {
  return dispatch(channelMessageHandler, sp, sl, ep, el, "", true);
}

export function handle_channel_close(sp: usize, sl: usize, ep: usize, el: usize): usize {
  return dispatch(channelCloseHandler, sp, sl, ep, el, "", true);
}
