#!/usr/bin/env bash
# bench/park/run.sh [BUILD_DIR] - parked actors per worker and the latency of
# the other actors while they wait (issue 11), against a theater-server this
# script starts on 127.0.0.1 (port 0) with --workers 2 and a temporary
# THEATER_HOME under /var/tmp.
#
#   bench-park N WAIT_MS: N actors each make one send-http to a local endpoint
#   that answers after WAIT_MS, all at once; prints how many were parked at
#   once, how long all N took, and another actor's request latency idle and
#   while the N wait.
#
# Tunables: BENCH_PARKED (1000), BENCH_WAIT_MS (5000), BENCH_WORKERS (2).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
N=${BENCH_PARKED:-1000}
WAIT=${BENCH_WAIT_MS:-5000}
WORKERS=${BENCH_WORKERS:-2}
[ -x "$BUILD/bench/park/bench-park" ] || cmake --build "$BUILD" --target bench-park >/dev/null
home=$(mktemp -d /var/tmp/theater-park.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$BUILD/bench/park/waiter.wasm" "$home/packages/"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
THEATER_HOME="$home" "$BUILD/theater-server" --listen 127.0.0.1:0 --log-level warn \
  --workers "$WORKERS" --max-actors $((N + 100)) --max-conns $((N + 200)) \
  --max-conns-per-ip $((N + 200)) > "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://[0-9.:]*' "$home/out")
echo "parking: $N actors, ${WAIT}ms endpoint, $WORKERS workers"
"$BUILD/bench/park/bench-park" "$base" waiter.wasm "$N" "$WAIT"
