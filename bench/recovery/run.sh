#!/usr/bin/env bash
# Recovery of live actors: spawns N actors (default 10,000), then measures
#   - a crash (SIGKILL) and the next start until it listens (every actor recovered),
#   - a clean stop (SIGTERM: actors suspended) and the next start.
#   bench/recovery/run.sh BUILD_DIR [N]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-10000}
home=$(mktemp -d /var/tmp/theater-bench-recovery.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$build/examples/counter/counter.wasm" "$home/packages/"

now() { date +%s.%N; }
start_server() {
  : > "$home/out"
  local t0; t0=$(now)
  THEATER_HOME="$home" "$build/theater-server" --listen 127.0.0.1:0 --log-level info \
    > "$home/out" 2>> "$home/log" &
  pid=$!
  for _ in $(seq 1 12000); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.005; done
  grep -q listening "$home/out" || { echo "server did not start"; tail "$home/log"; exit 1; }
  base=$(grep -o 'http://[0-9.:]*' "$home/out")
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
}

start_server
"$build/bench/spawn/bench-spawn" "$base" counter.wasm "$n" 4 > "$home/spawn.txt"
live=$(curl -s "$base/actors?status=running&limit=1" | grep -c '"status":"running"' || true)
[ "$live" -ge 1 ] || { echo "no running actors after spawning"; exit 1; }

kill -9 $pid; wait $pid 2>/dev/null || true
start_server; t_crash=$took
running=$(grep -o 'recovered [0-9]* of [0-9]* live' "$home/log" | tail -1)
t0=$(now); kill -TERM $pid; wait $pid 2>/dev/null || true
t_stop=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
start_server; t_clean=$took
running2=$(grep -o 'recovered [0-9]* of [0-9]* live' "$home/log" | tail -1)
kill -TERM $pid; wait $pid 2>/dev/null || true
pid=
printf 'recovery after a crash, %d actors: %.2f s to listening (%s)\n' "$n" "$t_crash" "$running"
printf 'clean stop (SIGTERM, actors suspended), %d actors: %.2f s\n' "$n" "$t_stop"
printf 'recovery after a clean stop, %d actors: %.2f s to listening (%s)\n' "$n" "$t_clean" "$running2"
