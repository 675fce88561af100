#!/usr/bin/env bash
# bench/http/cpu.sh [BUILD_DIR] - server CPU per request (issue 16): the same
# keep-alive load (wrk) against bench-http-ceiling (bare libmicrohttpd, the options of
# server/http.c) and against theater-server's GET /actors/{id}; the server's CPU
# (utime + stime from /proc/PID/stat) over the run divided by the requests answered.
# The ratio is what our layers cost beyond libmicrohttpd (target <= 1.3). Then the
# same with a new connection per request (`Connection: close`, as curl in a script
# does): the connection's set-up and tear-down on both.
# Tunables: BENCH_DURATION (5s), BENCH_CONNECTIONS (16), BENCH_WRK_THREADS (1).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-16}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench/http/cpu.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
bench_have "$BUILD/bench/http/bench-http-ceiling" "$BUILD/theater-server" "$BUILD/examples/hello/hello.wasm" || {
	echo "bench/http/cpu.sh: build first (cmake --build $BUILD)" >&2; exit 1; }
bench_home theater-bench-cpu "$BUILD/examples/hello/hello.wasm"
trap bench_cleanup EXIT
hz=$(getconf CLK_TCK)
# measure NAME URL [WRK_ARG...]: prints requests/s and CPU per request; sets US.
measure() {
	local name=$1 url=$2
	shift 2
	wrk -t"$WRK_THREADS" -c"$CONNS" -d1s "$@" "$url" >/dev/null 2>&1 || true
	local a b out reqs
	a=$(bench_ticks "$pid")
	out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" "$@" "$url")
	b=$(bench_ticks "$pid")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	US=$(awk -v t=$((b - a)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
	printf '%-50s %10s req/s %8s us CPU/request\n' "$name" \
		"$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$US"
}
echo "$(bench_machine_line cores load minute); wrk -t$WRK_THREADS -c$CONNS -d$DURATION"
"$BUILD/bench/http/bench-http-ceiling" 0 2 > "$home/ceiling.out" 2>&1 &
pid=$!
bench_wait_for "$home/ceiling.out" '^listening on ' 5 || true
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$home/ceiling.out")
measure "ceiling (bare libmicrohttpd)" "http://127.0.0.1:$port/"
ceiling=$US
measure "ceiling, a connection per request" "http://127.0.0.1:$port/" -H "Connection: close"
ceiling_close=$US
bench_server_stop
bench_server_start --log-level warn
id=$(bench_actor '{"name":"get-bench","package":"hello.wasm"}')
measure "theater-server GET /actors/{id}" "$base/actors/$id"
awk -v a="$US" -v c="$ceiling" 'BEGIN { printf "ratio of CPU per request: %.2f (target <= 1.30)\n", a / c }'
measure "theater-server GET /actors/{id}, a connection each" "$base/actors/$id" -H "Connection: close"
awk -v a="$US" -v c="$ceiling_close" 'BEGIN { printf "ratio with a connection per request: %.2f\n", a / c }'
