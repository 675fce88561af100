// reply.ts - handler results and the registration of handlers.
import { bytes } from "./host";

/** What a handler answers: the new state and output, or an error message. */
export class Reply {
  constructor(public state: Uint8Array, public output: Uint8Array | null, public message: string | null) {}
  /** Success: the new state and, for a request, the response. */
  static ok(state: Uint8Array, output: Uint8Array | null = null): Reply { return new Reply(state, output, null); }
  /** Success with the state and output given as text (UTF-8). */
  static okText(state: string, output: string | null = null): Reply {
    return new Reply(bytes(state), output == null ? null : bytes(output), null);
  }
  /** Failure: the call fails with message and the state stays as it was. */
  static error(message: string): Reply { return new Reply(new Uint8Array(0), null, message); }
}

export type InitHandler = (state: Uint8Array) => Reply;
export type Handler = (state: Uint8Array, input: Uint8Array) => Reply;

// Handlers are function references (static data), so they survive heap resets.
export let initHandler: InitHandler | null = null;
export let sendHandler: Handler | null = null;
export let requestHandler: Handler | null = null;
export let childExitHandler: Handler | null = null;
export let childErrorHandler: Handler | null = null;
export let timerHandler: Handler | null = null;
export let channelOpenHandler: Handler | null = null;
export let channelMessageHandler: Handler | null = null;
export let channelCloseHandler: Handler | null = null;

/** Handles init (default: keep the state). */
export function onInit(f: InitHandler): void { initHandler = f; }
/** Handles one-way messages (default: refused). */
export function onSend(f: Handler): void { sendHandler = f; }
/** Handles requests; Reply.ok's output is the response (default: refused). */
export function onRequest(f: Handler): void { requestHandler = f; }
/** Handles a child's exit; input is JSON (default: keep the state). */
export function onChildExit(f: Handler): void { childExitHandler = f; }
/** Handles a child's failure; input is JSON (default: keep the state). */
export function onChildError(f: Handler): void { childErrorHandler = f; }
/** Handles a timer's tick; input is JSON {"timer", "tick", "scheduled_ms",
 * "missed"} (default: keep the state). Needs `export * from "theater-sdk/timer"`. */
export function onTimer(f: Handler): void { timerHandler = f; }
/** Channels (docs/actor-abi.md, "Channels"); input is the JSON envelope
 * {"channel", "from", "data" | "data_b64" | "reason"}. onChannelOpen: Reply.ok
 * accepts (its output goes to the opener), Reply.error refuses (default:
 * refused); messages and closes default to keeping the state. Needs
 * `export * from "theater-sdk/channel"`. */
export function onChannelOpen(f: Handler): void { channelOpenHandler = f; }
export function onChannelMessage(f: Handler): void { channelMessageHandler = f; }
export function onChannelClose(f: Handler): void { channelCloseHandler = f; }
