#!/usr/bin/env bash
# bench/http/list.sh [BUILD_DIR] - GET /actors?status=running&limit=50 (a full page
# of 50 runs with their last_event) on a server with BENCH_ACTORS (200) running
# `hello` actors: p50/p99 of 200 requests on one kept-alive curl connection, then
# the server's CPU per list request under wrk (when installed), beside GET /health.
# SERVER=path compares another server binary in the same conditions.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
N=${BENCH_ACTORS:-200}
SERVER=${SERVER:-$BUILD/theater-server}
HELLO=$BUILD/examples/hello/hello.wasm
[ -x "$SERVER" ] && [ -f "$HELLO" ] || { echo "bench/http/list.sh: build first" >&2; exit 1; }
home=$(mktemp -d /var/tmp/theater-bench-list.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$HELLO" "$home/packages/"
THEATER_HOME="$home" "$SERVER" --listen 127.0.0.1:0 --log-level warn > "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$home/out")
[ -n "$base" ] || { echo "theater-server did not start" >&2; cat "$home/log" >&2; exit 1; }
for _ in $(seq 1 "$N"); do
	curl -s -o /dev/null -X POST "$base/actors?wait=running" \
		-d '{"manifest":{"name":"bench","package":"hello.wasm","static_package":true}}'
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC'); $N running actors"
lat() {
	local cfg="$home/curl.cfg"
	: > "$cfg"
	for _ in $(seq 1 200); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >> "$cfg"; done
	curl -s -K "$cfg" -w '%{time_total}\n' | sort -n |
		awk '{v[NR]=$1} END {printf "p50 %.3f ms, p99 %.3f ms", v[int(NR/2)]*1000, v[int(NR*0.99)]*1000}'
}
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu() {
	command -v wrk >/dev/null || { echo "(wrk not installed)"; return; }
	local a b out reqs
	a=$(ticks)
	out=$(wrk -t1 -c4 -d3s "$1")
	b=$(ticks)
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	awk -v t=$((b - a)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
		'BEGIN { printf "%.1f us server CPU/request (%d requests)", t / hz * 1e6 / n, n }'
}
list="$base/actors?status=running&limit=50"
echo "GET /actors?status=running&limit=50: $(lat "$list"); $(cpu "$list")"
echo "GET /health (the HTTP floor):        $(lat "$base/health"); $(cpu "$base/health")"
