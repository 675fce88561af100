#!/usr/bin/env bash
# bench/http/list.sh [BUILD_DIR] - GET /actors?status=running&limit=50 (a full page
# of 50 runs with their last_event) on a server with BENCH_ACTORS (200) running
# `hello` actors: p50/p99 of 200 requests on one kept-alive curl connection, then
# the server's CPU per list request under wrk (when installed), beside GET /health.
# SERVER=path compares another server binary in the same conditions.
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
N=${BENCH_ACTORS:-200}
bench_server=${SERVER:-$BUILD/theater-server}
HELLO=$BUILD/examples/hello/hello.wasm
bench_have "$bench_server" "$HELLO" || { echo "bench/http/list.sh: build first" >&2; exit 1; }
bench_home theater-bench-list "$HELLO"
trap bench_cleanup EXIT
bench_server_start --log-level warn || exit 1
for _ in $(seq 1 "$N"); do
	curl -s -o /dev/null -X POST "$base/actors?wait=running" \
		-d '{"manifest":{"name":"bench","package":"hello.wasm","static_package":true}}'
done
echo "$(bench_machine_line cores load minute); $N running actors"
cpu() {
	command -v wrk >/dev/null || { echo "(wrk not installed)"; return; }
	local a b out reqs
	a=$(bench_ticks "$pid")
	out=$(wrk -t1 -c4 -d3s "$1")
	b=$(bench_ticks "$pid")
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	awk -v t=$((b - a)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
		'BEGIN { printf "%.1f us server CPU/request (%d requests)", t / hz * 1e6 / n, n }'
}
list="$base/actors?status=running&limit=50"
echo "GET /actors?status=running&limit=50: $(bench_latency "$list"); $(cpu "$list")"
echo "GET /health (the HTTP floor):        $(bench_latency "$base/health"); $(cpu "$base/health")"
