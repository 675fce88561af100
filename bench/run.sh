#!/usr/bin/env bash
# `make bench`: runs every benchmark and prints its figures. Record them, with the
# machine and the date, in docs/benchmarks.md.
#   bench/run.sh [BUILD_DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
status=0

home=$(mktemp -d /var/tmp/theater-bench.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$build/examples/hello/hello.wasm" "$home/packages/"
THEATER_HOME="$home" "$build/theater-server" --listen 127.0.0.1:0 --log-level warn \
  > "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://[0-9.:]*' "$home/out")
echo "== spawn through the API (theater-server at $base; bench/spawn below adds the bare ceiling) =="
"$build/bench/spawn/bench-spawn" "$base" hello.wasm 2000 1 || status=1
"$build/bench/spawn/bench-spawn" "$base" hello.wasm 4000 4 || status=1
id=$(curl -s -X POST "$base/actors?wait=running" -d '{"manifest":{"name":"get-bench","package":"hello.wasm"}}' \
  | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
kill -TERM $pid; wait $pid 2>/dev/null

for b in http chain wasm toml actors park stream fanout commit spawn; do
  [ -x "$here/bench/$b/run.sh" ] || continue
  echo "== bench/$b =="
  if [ "$b" = http ]; then
    # GET /actors/{id} against a fresh server with the same data, beside the ceiling
    THEATER_HOME="$home" "$build/theater-server" --listen 127.0.0.1:0 --log-level warn \
      > "$home/out" 2>> "$home/log" &
    pid=$!
    for _ in $(seq 1 100); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
    base=$(grep -o 'http://[0-9.:]*' "$home/out")
    bash "$here/bench/http/run.sh" "$build" "$base/actors/$id" || status=1
    kill -TERM $pid; wait $pid 2>/dev/null
  else
    bash "$here/bench/$b/run.sh" "$build" || status=1
  fi
done
exit $status
