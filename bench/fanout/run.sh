#!/usr/bin/env bash
# bench/fanout/run.sh [BUILD_DIR] - what SSE subscribers cost the writer (issue 16):
# REST messages to one counter with 0 and then BENCH_SUBSCRIBERS (1000) live streams
# of its chain, on one theater-server (127.0.0.1, temporary THEATER_HOME under
# /var/tmp). Prints both rates, their ratio (target: with subscribers >= 0.5 of
# without), the server's CPU per message and per delivered frame, and the CPU per frame
# of the benchmark's own reader (it shares the cores with the server).
# Then bench-fanout-ceiling: frames to as many loopback sockets with nothing but
# the kernel's send and receive, the most this machine can carry.
# Tunables: BENCH_SUBSCRIBERS (1000), BENCH_MESSAGES (4000), BENCH_CLIENTS (4),
# SERVER (another server binary, to compare builds in the same conditions).
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
SUBS=${BENCH_SUBSCRIBERS:-1000}
MESSAGES=${BENCH_MESSAGES:-4000}
CLIENTS=${BENCH_CLIENTS:-4}
bench_server=${SERVER:-$BUILD/theater-server}
BIN=$BUILD/bench/fanout/bench-fanout
CEIL=$BUILD/bench/fanout/bench-fanout-ceiling
COUNTER=$BUILD/examples/counter/counter.wasm
bench_have "$bench_server" "$BIN" "$CEIL" "$COUNTER" ||
	bench_build theater-server bench-fanout bench-fanout-ceiling examples || exit 1
ulimit -n $((SUBS * 2 + 1024)) 2>/dev/null || true
bench_home theater-bench-fanout "$COUNTER"
trap bench_cleanup EXIT
conns=$((SUBS + 256))
# shellcheck disable=SC2086 # SERVER_ARGS: several flags
bench_server_start --log-level warn --mailbox 1000000 ${SERVER_ARGS:-} \
	--max-conns "$conns" --max-conns-per-ip "$conns" || exit 1
bench_spares_ready
bench_machine_line cores cpu load minute
id=$(bench_actor '{"name":"bench-fanout","package":"counter.wasm","static_package":true}')
status=0
"$BIN" "$base" "$id" 0 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/none" || status=1
"$BIN" "$base" "$id" 1 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/one" || status=1
"$BIN" "$base" "$id" "$SUBS" "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/many" || status=1
bench_server_stop
"$CEIL" "$SUBS" 3 | tee "$home/ceiling" || status=1
rate() { grep -o 'writer=[0-9]*' "$1" | cut -d= -f2; }
num() { grep -o "$2=[0-9]*" "$1" | head -1 | cut -d= -f2; }
awk -v a="$(rate "$home/none")" -v b="$(rate "$home/many")" -v s="$SUBS" \
    -v e="$(num "$home/many" events)" -v m="$(num "$home/many" messages)" \
    -v c="$(grep -o '[0-9]* frames/s received' "$home/ceiling" | cut -d' ' -f1)" 'BEGIN {
	if (a > 0) printf "writer with %d subscribers / with none: %.2f (target >= 0.50)\n", s, b / a
	if (a > 0 && m > 0 && c > 0)
		printf "the target needs %.0f frames/s (%.1f events per message); the loopback ceiling carries %.0f\n",
		       a / 2 * e / m * s, e / m, c }'
exit $status
