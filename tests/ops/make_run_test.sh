#!/usr/bin/env bash
# make_run_test.sh SOURCE_DIR BUILD_DIR - `make run` as a user meets it:
#  1. on an address another server already holds it fails at once, clearly,
#     and spawns nothing into that server;
#  2. Ctrl-C (SIGINT to the whole foreground process group, as a terminal
#     sends it) stops the server cleanly and make reports no error.
# make runs with `-o build` (the build is the one under test; its recipe is
# not rerun) and a scratch THEATER_HOME.
set -uo pipefail
src=$1
build=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/theater-make-run.XXXXXX")
fails=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL -- "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. Another server holds the address.
mkdir -p "$tmp/other"
"$build/theater-server" --home "$tmp/other" --listen 127.0.0.1:0 2>"$tmp/other.log" &
other=$!
pids+=("$other")
port=""
for _ in $(seq 1 600); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/other.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the other server did not start"; cat "$tmp/other.log"; exit 1; }
rc=0
THEATER_HOME="$tmp/home1" THEATER_LISTEN="127.0.0.1:$port" timeout 600 \
  make -s -C "$src" -o build run BUILD="$build" >"$tmp/run1.out" 2>&1 || rc=$?
cat "$tmp/run1.out"
[ $rc -ne 0 ] && ok "make run on a busy address fails (exit $rc)" || bad "make run on a busy address succeeded"
grep -q "127.0.0.1:$port is already in use by another server" "$tmp/run1.out" &&
  ok "and says the address is in use" || bad "no clear 'already in use' message"
runs=$(curl -fsS "http://127.0.0.1:$port/actors")
case $runs in
*'"items":[]'*) ok "the other server got no demo actor" ;;
*) bad "the demo was spawned into the other server: $runs" ;;
esac
kill -TERM "$other"; wait "$other"

# 2. Ctrl-C. The freed port again; setsid gives make its own process group, as a
# shell gives a foreground job.
setsid env THEATER_HOME="$tmp/home2" THEATER_LISTEN="127.0.0.1:$port" \
  make -s -C "$src" -o build run BUILD="$build" >"$tmp/run2.out" 2>&1 &
leader=$!
pids+=("-$leader")
up=0
for _ in $(seq 1 3000); do
  grep -q "Press Ctrl-C to stop" "$tmp/run2.out" && { up=1; break; }
  kill -0 $leader 2>/dev/null || break
  sleep 0.1
done
[ $up = 1 ] && ok "make run started the demo" || { bad "make run did not start"; cat "$tmp/run2.out"; exit 1; }
grep -q "request 'get' answers: 5" "$tmp/run2.out" && ok "the demo counter answered 5" ||
  bad "the demo's request did not answer 5"
kill -INT -- "-$leader"
rc=0
for _ in $(seq 1 600); do kill -0 $leader 2>/dev/null || break; sleep 0.1; done
wait $leader || rc=$?
cat "$tmp/run2.out"
grep -q "stopped cleanly" "$tmp/run2.out" && ok "Ctrl-C stopped the server cleanly" ||
  bad "no 'stopped cleanly' after Ctrl-C"
if grep -qE 'Error [0-9]+|\*\*\*' "$tmp/run2.out"; then bad "make reported an error after Ctrl-C"
else ok "make reported no error after Ctrl-C (make's own status: $rc)"; fi
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
