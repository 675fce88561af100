// theater-sdk - write theater actors in AssemblyScript (actor ABI version 1,
// docs/actor-abi.md). An actor registers its handlers with onInit / onSend /
// onRequest / onChildExit / onChildError and re-exports the ABI functions:
//
//   import { Reply, onRequest, text } from "theater-sdk";
//   export * from "theater-sdk/abi";
//   onRequest((state: Uint8Array, req: Uint8Array): Reply => Reply.ok(state, req));
//
// Every handler gets the state the host holds (bytes, JSON by convention; empty
// when the manifest gives none) and answers Reply.ok(newState, output?) or
// Reply.error(message): the call fails with the message and the state stays.
// Memory is scratch for one call: the host resets the heap before each call, so
// keep nothing in globals but numbers and handlers (functions without captures).
export * from "./host";
export * from "./reply";
import * as JSON from "./json";
export { JSON };
