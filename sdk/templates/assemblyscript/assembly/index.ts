// __NAME__ - a theater actor in AssemblyScript (docs/sdk.md).
//
// State: {"count": n}. Every message adds 1; the request "get" answers the count.
import { JSON, Reply, onInit, onRequest, onSend, runtime, text } from "theater-sdk";
export * from "theater-sdk/abi";

function countOf(state: Uint8Array): i64 {
  if (state.length == 0) return 0;
  const st = JSON.parse(text(state));
  if (st == null) return 0;
  const c = st.get("count");
  if (c == null || !c.isInt) return 0;
  return c.int;
}

function withCount(n: i64): string {
  return JSON.Value.object().set("count", JSON.Value.fromInt(n)).toString();
}

onInit((state: Uint8Array): Reply => {
  runtime.log("__NAME__: ready");
  return Reply.okText(withCount(countOf(state)));
});

onSend((state: Uint8Array, msg: Uint8Array): Reply => Reply.okText(withCount(countOf(state) + 1)));

onRequest((state: Uint8Array, req: Uint8Array): Reply => {
  if (text(req) != "get") return Reply.error("unknown request: ask \"get\"");
  return Reply.okText(text(state), countOf(state).toString());
});
