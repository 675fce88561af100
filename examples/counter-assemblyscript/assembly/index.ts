// counter (AssemblyScript) - the counter example written with the AssemblyScript SDK.
//
// State: {"count": n}. A message adds its integer to the count ("5", "-2"), or 1
// when it is not an integer. The request "get" answers the count as a JSON number;
// any other request is an error, which leaves the state as it was. init accepts an
// empty state (count 0) or an object whose "count" is an integer.
import { JSON, Reply, onInit, onRequest, onSend, runtime, text } from "theater-sdk";
export * from "theater-sdk/abi";

/** The count in a state, or null when the state is malformed. */
function countOf(state: Uint8Array): JSON.Value | null {
  if (state.length == 0) return JSON.Value.fromInt(0);
  const st = JSON.parse(text(state));
  if (st == null || !st.isObject) return null;
  const c = st.get("count");
  if (c == null) return JSON.Value.fromInt(0);
  return c.isInt ? c : null;
}

function stateWith(count: i64): string {
  return JSON.Value.object().set("count", JSON.Value.fromInt(count)).toString();
}

onInit((state: Uint8Array): Reply => {
  const c = countOf(state);
  if (c == null) return Reply.error("the state must be a JSON object whose 'count' is an integer");
  runtime.log("counter-assemblyscript: ready");
  return Reply.okText(stateWith(c.int));
});

onSend((state: Uint8Array, msg: Uint8Array): Reply => {
  const c = countOf(state);
  if (c == null) return Reply.error("the state is not {\"count\": n}");
  const m = JSON.parse(text(msg));
  const add: i64 = m != null && m.isInt ? m.int : 1;
  const sum = c.int + add;
  // overflow: the sign of the sum differs from both operands' signs
  if (((c.int ^ sum) & (add ^ sum)) < 0) return Reply.error("the count would overflow");
  return Reply.okText(stateWith(sum));
});

onRequest((state: Uint8Array, req: Uint8Array): Reply => {
  const c = countOf(state);
  if (c == null) return Reply.error("the state is not {\"count\": n}");
  const r = text(req).trim();
  if (r != "get" && r != "\"get\"") return Reply.error("unknown request: the counter answers \"get\"");
  return Reply.ok(state, Uint8Array.wrap(String.UTF8.encode(c.int.toString())));
});
