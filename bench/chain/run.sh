#!/bin/sh
# Builds and runs the chain benchmark in one command:
#   bench/chain/run.sh [BUILD_DIR]
# BUILD_DIR defaults to build-bench (configured as Release when new).
# BENCH_DIR (default /tmp) holds the temporary chains; it should be on the disk
# you care about, since every append waits for fdatasync. BENCH_SECONDS sets
# the time per row (default 2).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench}
if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTHEATER_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target bench-chain -j2 >/dev/null
exec "$build/bench/chain/bench-chain"
