#!/usr/bin/env bash
# Recovery of live actors: spawns N actors (default 10,000), then measures
#   - a crash (SIGKILL) and the next start until it listens (every actor recovered),
#   - a clean stop (SIGTERM: actors suspended) and the next start.
#   bench/recovery/run.sh BUILD_DIR [N]
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
build=$(cd "${1:-build}" && pwd)
n=${2:-10000}
bench_server=$build/theater-server
bench_home theater-bench-recovery "$build/examples/counter/counter.wasm"
trap 'bench_cleanup KILL' EXIT
bench_wait=60 bench_poll=0.005   # the start is timed

now() { date +%s.%N; }
start_server() {   # sets took to the seconds until it listens
  local t0; t0=$(now)
  bench_server_start --log-level info || exit 1
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
}

start_server
"$build/bench/spawn/bench-spawn" "$base" counter.wasm "$n" 4 > "$home/spawn.txt"
live=$(curl -s "$base/actors?status=running&limit=1" | grep -c '"status":"running"' || true)
[ "$live" -ge 1 ] || { echo "no running actors after spawning"; exit 1; }

bench_server_stop KILL
start_server; t_crash=$took
running=$(grep -o '[0-9]* idle ones left to recover on first use, [0-9]* to recover in the background, [0-9]* of [0-9]* others recovered' "$home/log" | tail -1 || true)
t0=$(now); bench_server_stop
t_stop=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
start_server; t_clean=$took
running2=$(grep -o '[0-9]* idle ones left to recover on first use, [0-9]* to recover in the background, [0-9]* of [0-9]* others recovered' "$home/log" | tail -1 || true)
bench_server_stop
printf 'recovery after a crash, %d actors: %.2f s to listening (%s)\n' "$n" "$t_crash" "$running"
printf 'clean stop (SIGTERM, actors suspended), %d actors: %.2f s\n' "$n" "$t_stop"
printf 'recovery after a clean stop, %d actors: %.2f s to listening (%s)\n' "$n" "$t_clean" "$running2"
