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
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
N=${BENCH_SPAWNS:-2000}
SERVER=${SERVER:-$BUILD/theater-server}
BIN=$BUILD/bench/spawn/bench-spawn
FSYNC=$BUILD/bench/fsync/bench-fsync
BARE=$BUILD/bench/commit/bench-commit-ceiling
HELLO=$BUILD/examples/hello/hello.wasm
if [ ! -x "$SERVER" ] || [ ! -x "$BIN" ] || [ ! -x "$FSYNC" ] || [ ! -x "$BARE" ] || [ ! -f "$HELLO" ]; then
	[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$BUILD" -j 2 --target theater-server bench-spawn bench-fsync \
		bench-commit-ceiling examples >/dev/null || exit 1
fi
home=$(mktemp -d /var/tmp/theater-bench-spawn.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$home"' EXIT
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
"$FSYNC" "$home" 2 200 | sed 's/^/ceiling: /' || exit 1
mkdir -p "$home/packages"
cp "$HELLO" "$home/packages/"
THEATER_HOME="$home" "$SERVER" --listen 127.0.0.1:0 --log-level warn --max-actors 1000000 \
	> "$home/out" 2> "$home/log" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.05; done
base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$home/out")
[ -n "$base" ] || { echo "theater-server did not start:" >&2; cat "$home/log" >&2; exit 1; }
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
status=0
for clients in 1 4; do
	c0=$(cpu)
	"$BIN" "$base" hello.wasm "$N" "$clients" | tee "$home/r$clients" || status=1
	c1=$(cpu)
	awk -v a="$c0" -v b="$c1" -v t="$tck" -v n="$N" \
		'BEGIN { printf "  server CPU per spawn: %.0f us\n", (b - a) / t / n * 1e6 }'
	# the spare chain files (--spare-chains): ready now, made so far (0 on a build
	# without them); spawns beyond the pool create their own file
	command -v curl >/dev/null && curl -s "$base/metrics" |
		awk '/^theater_spare_chains / { r = $2 } /^theater_spare_chains_created_total / { c = $2 }
		     END { if (r != "") printf "  spare chains: %d ready, %d created so far\n", r, c }'
done
kill $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
echo "bare durable spawn (bench-commit-ceiling spawn, same client, same disk):"
mkdir -p "$home/bare"
"$BARE" "$home/bare" 0 spawn $((2 * N + 16)) > "$home/bare.out" &
pid=$!
for _ in $(seq 1 300); do grep -q listening "$home/bare.out" 2>/dev/null && break; sleep 0.05; done
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
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
