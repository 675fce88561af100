#!/usr/bin/env bash
# bench/stream/run.sh [BUILD_DIR] - streamed answers and timers (issue 11),
# against a theater-server this script starts on 127.0.0.1 (port 0) with a
# temporary THEATER_HOME under /var/tmp.
#
#   bench-stream BASE PACKAGE: the time to the first chunk and to `done` of a
#   streamed request of 200 chunks (SSE), and how late timer ticks are
#   delivered (20 actors, a 100 ms periodic timer each, 5 s).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
[ -x "$BUILD/bench/stream/bench-stream" ] || cmake --build "$BUILD" --target bench-stream >/dev/null
home=$(mktemp -d /var/tmp/theater-stream.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$BUILD/bench/stream/stream.wasm" "$home/packages/"
THEATER_HOME="$home" "$BUILD/theater-server" --listen 127.0.0.1:0 --log-level warn \
  > "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://[0-9.:]*' "$home/out")
"$BUILD/bench/stream/bench-stream" "$base" stream.wasm
