#!/usr/bin/env bash
# bench/fanout/run.sh [BUILD_DIR] - what SSE subscribers cost the writer (issue 16):
# REST messages to one counter with 0 and then BENCH_SUBSCRIBERS (1000) live streams
# of its chain, on one theater-server (127.0.0.1, temporary THEATER_HOME under
# /var/tmp). Prints both rates, their ratio (target: with subscribers >= 0.5 of
# without), the server's CPU per message and per delivered frame.
# Then bench-fanout-ceiling: frames to as many loopback sockets with nothing but
# the kernel's send and receive, the most this machine can carry.
# Tunables: BENCH_SUBSCRIBERS (1000), BENCH_MESSAGES (4000), BENCH_CLIENTS (4),
# SERVER (another server binary, to compare builds in the same conditions).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SUBS=${BENCH_SUBSCRIBERS:-1000}
MESSAGES=${BENCH_MESSAGES:-4000}
CLIENTS=${BENCH_CLIENTS:-4}
SERVER=${SERVER:-$BUILD/theater-server}
BIN=$BUILD/bench/fanout/bench-fanout
CEIL=$BUILD/bench/fanout/bench-fanout-ceiling
COUNTER=$BUILD/examples/counter/counter.wasm
if [ ! -x "$SERVER" ] || [ ! -x "$BIN" ] || [ ! -x "$CEIL" ] || [ ! -f "$COUNTER" ]; then
	[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" --target theater-server bench-fanout \
		bench-fanout-ceiling examples >/dev/null || exit 1
fi
ulimit -n $((SUBS * 2 + 1024)) 2>/dev/null || true
home=$(mktemp -d /var/tmp/theater-bench-fanout.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$COUNTER" "$home/packages/"
conns=$((SUBS + 256))
THEATER_HOME="$home" "$SERVER" --listen 127.0.0.1:0 --log-level warn --mailbox 1000000 ${SERVER_ARGS:-} \
	--max-conns "$conns" --max-conns-per-ip "$conns" > "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$home/out")
[ -n "$base" ] || { echo "theater-server did not start:" >&2; cat "$home/log" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
id=$(curl -s -X POST "$base/actors?wait=running" \
	-d '{"manifest":{"name":"bench-fanout","package":"counter.wasm","static_package":true}}' |
	grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
status=0
"$BIN" "$base" "$id" 0 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/none" || status=1
"$BIN" "$base" "$id" 1 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/one" || status=1
"$BIN" "$base" "$id" "$SUBS" "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/many" || status=1
kill $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
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
