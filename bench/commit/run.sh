#!/usr/bin/env bash
# bench/commit/run.sh [BUILD_DIR] - group commit of REST messages (issue 16 goal 3):
# the disk's single-writer fdatasync rate (bench-fsync: write + fdatasync of 200 B
# on one file, the ceiling), then REST POST /messages to one counter with 1 and
# BENCH_CLIENTS (16) keep-alive clients, each message durable before its 202, on
# one theater-server (127.0.0.1, temporary THEATER_HOME under /var/tmp, the same
# file system as the ceiling). Prints each rate, the server's CPU per message and
# the ratio of the many-client rate to the ceiling (target >= 4). The ceiling is taken
# before and after the server's runs (a shared disk's sync time swings); the ratio uses
# the higher of the two. Then the same client against bench-commit-ceiling, a bare
# libmicrohttpd server that only appends each body (with a SHA-256 chain) and shares
# fdatasyncs by leader/follower group commit on its connection threads: what any
# server of this shape reaches on this machine, and theater-server's ratio to it.
# Tunables: BENCH_MESSAGES (4000), BENCH_CLIENTS (16), SERVER (another server binary,
# to compare builds in the same conditions).
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
MESSAGES=${BENCH_MESSAGES:-4000}
CLIENTS=${BENCH_CLIENTS:-16}
bench_server=${SERVER:-$BUILD/theater-server}
BIN=$BUILD/bench/fanout/bench-fanout
FSYNC=$BUILD/bench/fsync/bench-fsync
BARE=$BUILD/bench/commit/bench-commit-ceiling
COUNTER=$BUILD/examples/counter/counter.wasm
bench_have "$bench_server" "$BIN" "$FSYNC" "$BARE" "$COUNTER" ||
	bench_build theater-server bench-fanout bench-fsync bench-commit-ceiling examples || exit 1
bench_home theater-bench-commit "$COUNTER"
trap bench_cleanup EXIT
bench_machine_line cores load minute fs
"$FSYNC" "$home" 2 200 | sed 's/^/before: /' | tee "$home/ceiling" || exit 1
bench_server_start --log-level warn --mailbox 1000000 || exit 1
bench_spares_ready
id=$(bench_actor '{"name":"bench-commit","package":"counter.wasm","static_package":true}')
status=0
echo "1 client:"
"$BIN" "$base" "$id" 0 $((MESSAGES / 4)) 1 "$pid" | tee "$home/one" || status=1
echo "$CLIENTS clients:"
"$BIN" "$base" "$id" 0 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/many" || status=1
bench_server_stop
"$FSYNC" "$home" 2 200 | sed 's/^/after: /' | tee -a "$home/ceiling" || exit 1
echo "bare group commit (bench-commit-ceiling, same client, same disk):"
"$BARE" "$home" > "$home/bare.out" &
pid=$!
bench_wait_for "$home/bare.out" listening
bare=$(grep -o '127\.0\.0\.1:[0-9]*' "$home/bare.out")
[ -n "$bare" ] || { echo "bench-commit-ceiling did not start" >&2; exit 1; }
"$BIN" "http://$bare" bare 0 $((MESSAGES / 4)) 1 "$pid" | tee "$home/bare1" || status=1
"$BIN" "http://$bare" bare 0 "$MESSAGES" "$CLIENTS" "$pid" | tee "$home/bare" || status=1
bench_server_stop
tail -1 "$home/bare.out"
rate() { grep -o 'writer=[0-9]*' "$1" | cut -d= -f2; }
ceil=$(grep -o 'ceiling: [0-9]*' "$home/ceiling" | cut -d' ' -f2 | sort -n | tail -1)
awk -v c="$ceil" -v a="$(rate "$home/one")" -v b="$(rate "$home/many")" -v k="$CLIENTS" \
    -v x="$(rate "$home/bare")" 'BEGIN {
	if (c > 0) printf "1 client / ceiling: %.2f; %d clients / ceiling: %.2f (target >= 4); %d / 1: %.2f\n",
		a / c, k, b / c, k, (a > 0 ? b / a : 0)
	if (c > 0 && x > 0) printf "bare group commit, %d clients / ceiling: %.2f; theater-server / bare: %.2f\n",
		k, x / c, b / x }'
echo "load after: $(bench_load)"
exit $status
