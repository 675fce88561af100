#!/usr/bin/env bash
# bench/toml/run.sh [BUILD_DIR] - builds and runs the TOML parser benchmark:
# parse throughput (MB/s) on a generated multi-megabyte document and the time
# per parse of a typical ~1 KB actor manifest. BUILD_DIR defaults to build/
# (configured as RelWithDebInfo when it does not exist yet); extra arguments
# go to toml-bench (--mb N, --iterations N).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shift || true
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target toml-bench >/dev/null
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
san=$(sed -n 's/^THEATER_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
echo "toml bench: build '$build' (${type:-RelWithDebInfo}, sanitize ${san:-OFF})"
exec "$build/bench/toml/toml-bench" "$@"
