#!/usr/bin/env bash
# bench/stream/timers-recover.sh [BUILD_DIR] [REQUESTS] - what timer recovery
# reads on a long chain (issue 11): an actor sets a timer (due in a day), then
# takes REQUESTS requests (default 5000: two events each, 10k events), the
# server is killed (kill -9) and started again on the same THEATER_HOME. The
# start-up log says how many events recovery read back to the newest table of
# timers and how long that took; the `timing/timers` checkpoint (every 1024
# events) bounds it whatever the chain's length.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
N=${2:-5000}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
[ -f "$BUILD/bench/stream/stream.wasm" ] || cmake --build "$BUILD" --target bench-stream >/dev/null
home=$(mktemp -d /var/tmp/theater-timers.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$BUILD/bench/stream/stream.wasm" "$home/packages/"
start() {
  : > "$home/out"
  THEATER_HOME="$home" "$BUILD/theater-server" --listen 127.0.0.1:0 > "$home/out" 2>> "$home/log" &
  pid=$!
  for _ in $(seq 1 600); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
  base=$(grep -o 'http://[0-9.:]*' "$home/out")
}
start
id=$(curl -s -X POST "$base/actors?wait=running" -H 'Content-Type: application/json' \
  -d '{"manifest":{"name":"timers","package":"stream.wasm","handler":[{"type":"runtime"},{"type":"message-server"},{"type":"timing"}]}}' \
  | grep -o '"id": *"[^"]*"' | head -1 | grep -o '[0-9a-f-]\{36\}')
curl -s -X POST "$base/actors/$id/requests" -d 'timer day 86400000 0' > /dev/null
seq 1 "$N" | xargs -P 8 -I{} curl -s -o /dev/null -X POST "$base/actors/$id/requests" -d state
events=$(curl -s "$base/actors/$id" | grep -o '"seq": *[0-9]*' | head -1 | grep -o '[0-9]*$')
kill -9 $pid; wait $pid 2>/dev/null
start
for _ in $(seq 1 600); do grep -q "timers of '$id'" "$home/log" && break; sleep 0.05; done
line=$(grep "timers of '$id'" "$home/log" | tail -1 | sed 's/.*timers of [^:]*: //')
echo "chain of ${events:-?} events; recovery of its timers: ${line:-read fewer than 256 events}"
