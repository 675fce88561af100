#!/usr/bin/env bash
# bench/actors/run.sh [BUILD_DIR] - the actor benchmarks of issue 4, against
# theater-servers this script starts on 127.0.0.1 (port 0) with a temporary
# THEATER_HOME under /var/tmp (a real disk, not tmpfs: chains are fdatasync'ed).
#
#   spawn       POST /actors?wait=running of a cached package (the counter
#               example, so init runs): p50/p99 latency and spawns/s, 1 and 4
#               clients (bench/spawn/bench-spawn)
#               targets: p50 < 1 ms, >= 1,000 spawns/s on 2 cores
#   messages    REST POST /actors/{id}/messages with keep-alive to a counter
#               (bench-actors messages)
#   ping-pong   pairs of actors sending to each other with message-server send,
#               every message recorded in the chains (bench-actors pingpong)
#               target: >= 100,000 recorded actor-to-actor messages/s
#   memory      VmRSS of a fresh server after 10,000 sequential keep-alive
#               spawns of the counter, all idle; target < 2 GiB
#
# BUILD_DIR defaults to ./build; missing binaries are built. Tunables
# (environment): BENCH_SPAWNS (2000), BENCH_MESSAGES (20000), BENCH_PAIRS (4),
# BENCH_RALLY (20000 per pair), BENCH_IDLE_ACTORS (10000), BENCH_WORKERS (the
# server's --workers, default the server's own).
set -uo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
SPAWNS=${BENCH_SPAWNS:-2000}
MESSAGES=${BENCH_MESSAGES:-20000}
PAIRS=${BENCH_PAIRS:-4}
RALLY=${BENCH_RALLY:-20000}
IDLE=${BENCH_IDLE_ACTORS:-10000}
WORKERS=${BENCH_WORKERS:-}

SPAWN_BIN=$BUILD/bench/spawn/bench-spawn
ACTORS_BIN=$BUILD/bench/actors/bench-actors
COUNTER=$BUILD/examples/counter/counter.wasm
PINGPONG=$BUILD/bench/actors/pingpong.wasm

bench_have "$BUILD/theater-server" "$SPAWN_BIN" "$ACTORS_BIN" "$COUNTER" "$PINGPONG" ||
	bench_build theater-server bench-spawn bench-actors bench-actors-wasm examples || exit 1

status=0
pid=
home=
# cleanup: says so when the server died under a benchmark, then stops it and
# removes its home
cleanup() {
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		echo "theater-server (pid $pid) died (exit status $?); the end of its log:" >&2
		tail -20 "$home/log" >&2
		status=1
	fi
	bench_cleanup
}
trap cleanup EXIT

# start_server [FLAGS...]: a fresh THEATER_HOME with the packages; sets pid,
# home, base.
start_server() {
	bench_home theater-bench-actors "$COUNTER" "$PINGPONG"
	local extra=()
	[ -n "$WORKERS" ] && extra=(--workers "$WORKERS")
	bench_server_start --log-level warn "${extra[@]}" "$@" || exit 1
	bench_spares_ready
}

bench_machine_line cores cpu day

# A deep mailbox, so that the message benchmark measures throughput rather
# than the default bound of 1024 queued messages (429 beyond it).
start_server --mailbox 1000000
echo "== spawn of a cached package with init (counter.wasm; theater-server at $base) =="
"$SPAWN_BIN" "$base" counter.wasm "$SPAWNS" 1 || status=1
"$SPAWN_BIN" "$base" counter.wasm "$((SPAWNS * 2))" 4 || status=1

echo "== REST messages to one counter =="
id=$(bench_actor '{"name":"bench-counter","package":"counter.wasm","static_package":true}')
"$ACTORS_BIN" messages "$base" "$id" "$MESSAGES" 1 || status=1
"$ACTORS_BIN" messages "$base" "$id" "$MESSAGES" 4 || status=1

echo "== actor-to-actor ping-pong =="
# pingpong PAIRS: the run, then the server's CPU (utime + stime) per message
pingpong() {
	local t0 t1 out msgs
	t0=$(bench_ticks "$pid")
	out=$("$ACTORS_BIN" pingpong "$base" pingpong.wasm "$1" "$RALLY") || status=1
	t1=$(bench_ticks "$pid")
	echo "$out"
	msgs=$(echo "$out" | grep -o 'messages=[0-9]*' | cut -d= -f2)
	awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${msgs:-0}" 'BEGIN {
		if (n > 0) printf "server CPU: %.1f us per message (load %s)\n", t / hz * 1e6 / n, "'"$(cut -d' ' -f1 /proc/loadavg)"'" }'
}
pingpong 1
pingpong "$PAIRS"
cleanup

echo "== memory: $IDLE idle counters (fresh server, sequential keep-alive spawns) =="
start_server --max-actors $((IDLE + 16))   # bench-spawn's warm-up spawn comes on top
before=$(bench_rss_kib "$pid")
"$SPAWN_BIN" "$base" counter.wasm "$IDLE" 1 || status=1
sleep 1
after=$(bench_rss_kib "$pid")
running=$(curl -s "$base/actors?status=running&limit=500&name=bench" | grep -o '"status":"running"' | wc -l)
awk -v b="$before" -v a="$after" -v n="$IDLE" 'BEGIN {
	printf "resident memory: before=%.1f MiB after=%.1f MiB (%.2f GiB) per actor=%.1f KiB\n",
	       b / 1024, a / 1024, a / 1048576, (a - b) / n }'
echo "(first page of running actors listed: $running)"
cleanup
exit $status
