#!/usr/bin/env bash
# bench/http/cpu.sh [BUILD_DIR] - server CPU per request (issue 16): the same
# keep-alive load (wrk) against bench-http-ceiling (bare libmicrohttpd, the options of
# server/http.c) and against theater-server's GET /actors/{id}; the server's CPU
# (utime + stime from /proc/PID/stat) over the run divided by the requests answered.
# The ratio is what our layers cost beyond libmicrohttpd (target <= 1.3).
# Tunables: BENCH_DURATION (5s), BENCH_CONNECTIONS (16), BENCH_WRK_THREADS (1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-16}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench/http/cpu.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -x "$BUILD/bench/http/bench-http-ceiling" ] && [ -x "$BUILD/theater-server" ] &&
	[ -f "$BUILD/examples/hello/hello.wasm" ] || {
	echo "bench/http/cpu.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
TMP=$(mktemp -d /var/tmp/theater-bench-cpu.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# measure NAME URL: prints requests/s and CPU per request; sets US.
measure() {
	wrk -t"$WRK_THREADS" -c"$CONNS" -d1s "$2" >/dev/null 2>&1 || true
	local a b out reqs
	a=$(ticks "$pid")
	out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" "$2")
	b=$(ticks "$pid")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	US=$(awk -v t=$((b - a)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
	printf '%-34s %10s req/s %8s us CPU/request\n' "$1" \
		"$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$US"
}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC'); wrk -t$WRK_THREADS -c$CONNS -d$DURATION"
"$BUILD/bench/http/bench-http-ceiling" 0 2 > "$TMP/ceiling.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$TMP/ceiling.out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/ceiling.out")
measure "ceiling (bare libmicrohttpd)" "http://127.0.0.1:$port/"
ceiling=$US
kill $pid; wait $pid 2>/dev/null || true
mkdir -p "$TMP/home/packages"
cp "$BUILD/examples/hello/hello.wasm" "$TMP/home/packages/"
THEATER_HOME="$TMP/home" "$BUILD/theater-server" --listen 127.0.0.1:0 --log-level warn \
	> "$TMP/out" 2> "$TMP/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$TMP/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$TMP/out")
id=$(curl -s -X POST "$base/actors?wait=running" -d '{"manifest":{"name":"get-bench","package":"hello.wasm"}}' |
	grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
measure "theater-server GET /actors/{id}" "$base/actors/$id"
awk -v a="$US" -v c="$ceiling" 'BEGIN { printf "ratio of CPU per request: %.2f (target <= 1.30)\n", a / c }'
