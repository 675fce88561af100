#!/usr/bin/env bash
# bench/stream/timers-recover.sh [BUILD_DIR] [REQUESTS] - what timer recovery
# reads on a long chain (issue 11): an actor sets a timer (due in a day), then
# takes REQUESTS requests (default 5000: two events each, 10k events), the
# server is killed (kill -9) and started again on the same THEATER_HOME. The
# start-up log says how many events recovery read back to the newest table of
# timers and how long that took; the `timing/timers` checkpoint (every 1024
# events) bounds it whatever the chain's length.
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
N=${2:-5000}
bench_have "$BUILD/bench/stream/stream.wasm" || bench_build bench-stream
bench_home theater-timers "$BUILD/bench/stream/stream.wasm"
trap bench_cleanup EXIT
bench_wait=30
bench_server_start
id=$(curl -s -X POST "$base/actors?wait=running" -H 'Content-Type: application/json' \
  -d '{"manifest":{"name":"timers","package":"stream.wasm","handler":[{"type":"runtime"},{"type":"message-server"},{"type":"timing"}]}}' \
  | grep -o '"id": *"[^"]*"' | head -1 | grep -o '[0-9a-f-]\{36\}')
curl -s -X POST "$base/actors/$id/requests" -d 'timer day 86400000 0' > /dev/null
seq 1 "$N" | xargs -P 8 -I{} curl -s -o /dev/null -X POST "$base/actors/$id/requests" -d state
events=$(curl -s "$base/actors/$id" | grep -o '"seq": *[0-9]*' | head -1 | grep -o '[0-9]*$')
bench_server_stop KILL
bench_server_start
bench_wait_for "$home/log" "timers of '$id'"
line=$(grep "timers of '$id'" "$home/log" | tail -1 | sed 's/.*timers of [^:]*: //')
echo "chain of ${events:-?} events; recovery of its timers: ${line:-read fewer than 256 events}"
