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
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
N=${BENCH_PARKED:-1000}
WAIT=${BENCH_WAIT_MS:-5000}
WORKERS=${BENCH_WORKERS:-2}
bench_have "$BUILD/bench/park/bench-park" || bench_build bench-park
bench_home theater-park "$BUILD/bench/park/waiter.wasm"
trap bench_cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_server_start --log-level warn --workers "$WORKERS" --max-actors $((N + 100)) \
  --max-conns $((N + 200)) --max-conns-per-ip $((N + 200))
echo "parking: $N actors, ${WAIT}ms endpoint, $WORKERS workers"
"$BUILD/bench/park/bench-park" "$base" waiter.wasm "$N" "$WAIT"
