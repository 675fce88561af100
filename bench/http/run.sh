#!/usr/bin/env bash
# bench/http/run.sh [BUILD_DIR] [URL...] - HTTP throughput: the ceiling and our layer.
#
# Runs the same keep-alive load (wrk) against:
#   ceiling      bench-http-ceiling: bare libmicrohttpd, same threading options, fixed body
#   layer-sync   bench-http-layer: our server/ layer, handle() answers on the MHD thread
#   layer-async  bench-http-layer async: answered by a worker thread (suspend + resume)
#   each URL     e.g. http://127.0.0.1:8080/actors/<id> of a running theater-server
# and prints requests/s, latency percentiles and the ratio of each to the ceiling.
#
# BUILD_DIR defaults to ./build (relative to the repository); its bench targets are
# built when missing. Tunables (environment): BENCH_DURATION (10s), BENCH_CONNECTIONS
# (64), BENCH_WRK_THREADS (2), BENCH_SERVER_THREADS (2), BENCH_WARMUP (2s).
# wrk is installed with apt-get (Debian package `wrk`) when missing.
# Note: on a small machine wrk competes with the server for the same cores; compare
# ratios from one run rather than absolute figures across machines.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
BUILD=build
if [ $# -gt 0 ] && [[ "$1" != http://* && "$1" != https://* ]]; then
	BUILD=$1
	shift
fi
bench_dirs "$BUILD"
URLS=("$@")
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
SERVER_THREADS=${BENCH_SERVER_THREADS:-2}

ensure_wrk() {
	command -v wrk >/dev/null && return
	echo "bench/http: installing wrk" >&2
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
}

ensure_bins() {
	local ceiling="$BUILD/bench/http/bench-http-ceiling" layer="$BUILD/bench/http/bench-http-layer"
	bench_have "$ceiling" "$layer" || bench_build bench-http-ceiling bench-http-layer
	CEILING_BIN=$ceiling
	LAYER_BIN=$layer
}

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# start_server NAME CMD... : starts a bench server on a free port, sets PORT.
start_server() {
	local name=$1
	shift
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PIDS+=($!)
	if bench_wait_for "$TMP/$name.out" '^listening on ' 5; then
		PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/$name.out")
		return
	fi
	echo "bench/http: $name did not start: $(cat "$TMP/$name.err")" >&2
	exit 1
}

stop_last_server() {
	local pid=${PIDS[-1]}
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset 'PIDS[-1]'
}

# load NAME URL : runs wrk, records "rps p50 p99" in RESULT_<NAME>.
load() {
	local name=$1 url=$2 out="$TMP/wrk.${#NAMES[@]}"
	wrk -t"$WRK_THREADS" -c"$CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1 || true
	if ! wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" >"$out" 2>&1; then
		echo "bench/http: wrk failed against $url:" >&2
		cat "$out" >&2
		exit 1
	fi
	local rps p50 p99 errors
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	p50=$(awk '$1 == "50%" {print $2}' "$out")
	p99=$(awk '$1 == "99%" {print $2}' "$out")
	errors=$(awk '/Non-2xx or 3xx responses:/ {print "non-2xx " $5} /Socket errors:/ {sub(/^ */, ""); print}' "$out" | paste -sd';')
	NAMES+=("$name")
	RPS+=("${rps:-0}")
	P50+=("${p50:--}")
	P99+=("${p99:--}")
	ERRS+=("${errors:-}")
}

ensure_wrk
ensure_bins
NAMES=() RPS=() P50=() P99=() ERRS=()
echo "bench/http: wrk -t$WRK_THREADS -c$CONNS -d$DURATION (keep-alive), server threads $SERVER_THREADS, $(nproc) cores"

start_server ceiling "$CEILING_BIN" 0 "$SERVER_THREADS"
load ceiling "http://127.0.0.1:$PORT/"
stop_last_server

start_server layer-sync "$LAYER_BIN" 0 "$SERVER_THREADS" sync
load layer-sync "http://127.0.0.1:$PORT/"
stop_last_server

start_server layer-async "$LAYER_BIN" 0 "$SERVER_THREADS" async
load layer-async "http://127.0.0.1:$PORT/"
stop_last_server

for url in "${URLS[@]}"; do
	load "$url" "$url"
done

printf '\n%-44s %12s %10s %10s %8s  %s\n' target requests/s p50 p99 ratio notes
ceiling=${RPS[0]}
for i in "${!NAMES[@]}"; do
	ratio=$(awk -v a="${RPS[$i]}" -v c="$ceiling" 'BEGIN { if (c > 0) printf "%.2f", a / c; else print "-" }')
	note=""
	[ -n "${ERRS[$i]}" ] && note="errors: ${ERRS[$i]}"
	printf '%-44s %12s %10s %10s %8s  %s\n' "${NAMES[$i]}" "${RPS[$i]}" "${P50[$i]}" "${P99[$i]}" "$ratio" "$note"
done
