#!/usr/bin/env bash
# bench/spawn/run.sh [BUILD_DIR] - spawn through the REST API (issue 16 goal 6):
# the disk's single-writer fdatasync rate (bench-fsync, the ceiling), then
# POST /actors?wait=running of `hello` (cached static package) with 1 and 4
# keep-alive clients on one theater-server (127.0.0.1, temporary THEATER_HOME under
# /var/tmp, the same file system as the ceiling). Prints p50/p99, spawns/s and the
# server's CPU per spawn (utime + stime from /proc/PID/stat) and the spare chain
# files left in the pool (--spare-chains). Then the same client against
# `bench-commit-ceiling DIR 0 spawn`, a bare libmicrohttpd server whose spawn is
# only three hashed records written into an empty file made ahead and synced: the
# least a durable spawn costs on this machine, and theater-server's ratio to it.
# Tunables: BENCH_SPAWNS (2000 per run), SERVER (another server binary, to compare
# builds in the same conditions).
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
N=${BENCH_SPAWNS:-2000}
bench_server=${SERVER:-$BUILD/theater-server}
BIN=$BUILD/bench/spawn/bench-spawn
FSYNC=$BUILD/bench/fsync/bench-fsync
BARE=$BUILD/bench/commit/bench-commit-ceiling
HELLO=$BUILD/examples/hello/hello.wasm
bench_have "$bench_server" "$BIN" "$FSYNC" "$BARE" "$HELLO" ||
	bench_build theater-server bench-spawn bench-fsync bench-commit-ceiling examples || exit 1
bench_home theater-bench-spawn "$HELLO"
trap bench_cleanup EXIT
bench_machine_line cores load minute fs
"$FSYNC" "$home" 2 200 | sed 's/^/ceiling: /' || exit 1
bench_server_start --log-level warn --max-actors 1000000 || exit 1
bench_spares_ready
tck=$(getconf CLK_TCK)
status=0
for clients in 1 4; do
	c0=$(bench_ticks "$pid")
	"$BIN" "$base" hello.wasm "$N" "$clients" | tee "$home/r$clients" || status=1
	c1=$(bench_ticks "$pid")
	awk -v a="$c0" -v b="$c1" -v t="$tck" -v n="$N" \
		'BEGIN { printf "  server CPU per spawn: %.0f us\n", (b - a) / t / n * 1e6 }'
	# the spare chain files (--spare-chains): ready now, made so far (0 on a build
	# without them); spawns beyond the pool create their own file
	command -v curl >/dev/null && curl -s "$base/metrics" |
		awk '/^theater_spare_chains / { r = $2 } /^theater_spare_chains_created_total / { c = $2 }
		     END { if (r != "") printf "  spare chains: %d ready, %d created so far\n", r, c }'
done
bench_server_stop
echo "bare durable spawn (bench-commit-ceiling spawn, same client, same disk):"
mkdir -p "$home/bare"
"$BARE" "$home/bare" 0 spawn $((2 * N + 16)) > "$home/bare.out" &
pid=$!
bench_wait_for "$home/bare.out" listening 15
bare=$(grep -o '127\.0\.0\.1:[0-9]*' "$home/bare.out")
[ -n "$bare" ] || { echo "bench-commit-ceiling did not start" >&2; exit 1; }
for clients in 1 4; do
	"$BIN" "http://$bare" hello.wasm "$N" "$clients" | tee "$home/b$clients" || status=1
done
field() { grep -o "$2=[0-9.]*" "$1" | cut -d= -f2; }
for clients in 1 4; do
	awk -v c="$clients" -v p="$(field "$home/r$clients" p50)" -v bp="$(field "$home/b$clients" p50)" \
	    -v t="$(field "$home/r$clients" throughput)" -v bt="$(field "$home/b$clients" throughput)" 'BEGIN {
		if (bp > 0 && bt > 0)
			printf "%d client(s): p50 %.3f ms = %.1fx the bare spawn'"'"'s %.3f ms; %.0f spawns/s = %.2f of its %.0f\n",
			       c, p, p / bp, bp, t, t / bt, bt }'
done
echo "load after: $(bench_load)"
exit $status
