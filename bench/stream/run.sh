#!/usr/bin/env bash
# bench/stream/run.sh [BUILD_DIR] - streamed answers and timers (issue 11),
# against a theater-server this script starts on 127.0.0.1 (port 0) with a
# temporary THEATER_HOME under /var/tmp.
#
#   bench-stream BASE PACKAGE: the time to the first chunk and to `done` of a
#   streamed request of 200 chunks (SSE), and how late timer ticks are
#   delivered (20 actors, a 100 ms periodic timer each, 5 s).
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
bench_have "$BUILD/bench/stream/bench-stream" || bench_build bench-stream
bench_home theater-stream "$BUILD/bench/stream/stream.wasm"
trap bench_cleanup EXIT
bench_server_start --log-level warn
"$BUILD/bench/stream/bench-stream" "$base" stream.wasm
