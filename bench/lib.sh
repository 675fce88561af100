# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts share, sourced (bash), never run:
#   . "$(dirname "$0")/../lib.sh"
# Building what is missing, a temporary THEATER_HOME under /var/tmp (a real disk,
# not tmpfs: chains are fdatasync'ed), a theater-server on 127.0.0.1 port 0 started
# in the background until it says "listening", the "machine:" line, and what the
# scripts read of a process (CPU ticks, resident memory). Sourcing it runs nothing.
#
# The functions read and set these globals of the script:
#   ROOT, BUILD    the repository and the build folder (bench_dirs sets both)
#   bench_server   the binary bench_server_start runs (default $BUILD/theater-server;
#                  a script that honours SERVER= sets it from there)
#   home           the THEATER_HOME (bench_home makes one)
#   pid, base      the server bench_server_start started and its http://127.0.0.1:PORT
#   bench_wait     seconds bench_server_start waits for "listening" (10)
#   bench_poll     seconds between two looks (0.05; 0.005 where a start is timed)
# From the environment: BENCH_LOG=FILE keeps the server's log there when the home
# is removed (a server that died in a benchmark says why); BENCH_DIR=DIR puts the
# homes (and every file a benchmark makes) under DIR instead of /var/tmp, to
# measure another file system (a journaled ext4, XFS: docs/operations.md).
# Every function returns 0 on success, so that `set -e` scripts may call them.

# bench_dirs [BUILD_DIR]: sets ROOT and BUILD (default build; a relative BUILD_DIR is
# taken from the repository, not from the current folder).
bench_dirs() {
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	BUILD=${1:-build}
	[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
}

# bench_have FILE...: true when every FILE is there (executable, but for .wasm).
bench_have() {
	local f
	for f; do
		case $f in
		*.wasm) [ -f "$f" ] || return 1 ;;
		*) [ -x "$f" ] || return 1 ;;
		esac
	done
}

# bench_build TARGET...: builds the TARGETs in BUILD quietly, configuring BUILD
# (RelWithDebInfo) first when it is not yet. Fails as the build does.
bench_build() {
	[ -f "$BUILD/CMakeCache.txt" ] ||
		cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" --target "$@" >/dev/null
}

# bench_tmp: where benchmarks make their folders: BENCH_DIR, or /var/tmp.
bench_tmp() {
	echo "${BENCH_DIR:-/var/tmp}"
}

# bench_home NAME [PACKAGE...]: sets home to a new folder $(bench_tmp)/NAME.XXXXXX with
# the PACKAGEs in home/packages. The script removes it (bench_cleanup).
bench_home() {
	local name=$1
	shift
	home=$(mktemp -d "$(bench_tmp)/$name.XXXXXX") || exit 1
	bench_packages "$@"
}

# bench_packages [PACKAGE...]: home/packages, holding the PACKAGEs.
bench_packages() {
	mkdir -p "$home/packages"
	[ $# -eq 0 ] || cp "$@" "$home/packages/"
}

# bench_wait_for FILE PATTERN [SECONDS]: waits until FILE has a line matching
# PATTERN (grep), at most SECONDS (bench_wait, 10), or until the process pid, when
# set, has gone. Fails when the line is not there.
bench_wait_for() {
	local tries
	tries=$(awk -v w="${3:-${bench_wait:-10}}" -v p="${bench_poll:-0.05}" 'BEGIN { printf "%d", w / p }')
	for _ in $(seq 1 "$tries"); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		[ -z "${pid:-}" ] || kill -0 "$pid" 2>/dev/null || break
		sleep "${bench_poll:-0.05}"
	done
	grep -q "$2" "$1" 2>/dev/null
}

# bench_server_start [FLAG...]: starts bench_server on 127.0.0.1 port 0 with the
# FLAGs and THEATER_HOME=home, its stdout in home/out (emptied first), its stderr
# appended to home/log; waits until it listens; sets pid and base. Fails, the end
# of the log on stderr, when it does not listen.
bench_server_start() {
	: > "$home/out"
	THEATER_HOME="$home" "${bench_server:-$BUILD/theater-server}" --listen 127.0.0.1:0 "$@" \
		> "$home/out" 2>> "$home/log" &
	pid=$!
	bench_wait_for "$home/out" listening
	base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$home/out" || true)
	[ -z "$base" ] || return 0
	echo "theater-server did not start:" >&2
	tail -20 "$home/log" >&2
	return 1
}

# bench_spares_ready: waits (at most 30 s) until the server at base has made its spare
# chain files (theater_spare_chains in /metrics no longer grows over 0.3 s), so that
# a measurement does not share the cores and the disk with a new home's first 1,024
# file creations (on ext4 without a journal each may cost hundreds of µs).
bench_spares_ready() {
	local prev=-1 now
	for _ in $(seq 100); do
		now=$(curl -s "$base/metrics" | awk '/^theater_spare_chains / {print $2}')
		[ "$now" != "$prev" ] || return 0
		prev=$now
		sleep 0.3
	done
}

# bench_server_stop [SIGNAL]: sends the server SIGNAL (TERM) and waits for it to
# exit; clears pid. Nothing when no server runs.
bench_server_stop() {
	if [ -n "${pid:-}" ] && kill -"${1:-TERM}" "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
	fi
	pid=
}

# bench_cleanup [SIGNAL]: bench_server_stop SIGNAL, then removes home. The EXIT trap
# of most scripts: trap bench_cleanup EXIT.
bench_cleanup() {
	bench_server_stop "$@"
	[ -z "${home:-}" ] || [ -z "${BENCH_LOG:-}" ] || cp "$home/log" "$BENCH_LOG" || true
	[ -z "${home:-}" ] || rm -rf "$home"
	home=
}

# bench_actor MANIFEST: spawns an actor on base (POST /actors?wait=running with
# {"manifest": MANIFEST}) and prints its id.
bench_actor() {
	curl -s -X POST "$base/actors?wait=running" -d "{\"manifest\":$1}" |
		grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4
}

# bench_load: the load averages over 1, 5 and 15 minutes.
bench_load() {
	cut -d' ' -f1-3 /proc/loadavg
}

# bench_fs DIR: the file system DIR is on, as its figures depend on it: "ext4 without
# a journal" (file creation slows down for minutes after deletes there, see
# docs/operations.md), "ext4 with a journal", or the type stat -f names.
bench_fs() {
	local dev name task
	dev=$(stat -c '%Hd:%Ld' "$1" 2>/dev/null)
	name=$(readlink "/sys/dev/block/$dev" 2>/dev/null)
	task=/sys/fs/ext4/${name##*/}/journal_task
	if [ -n "$name" ] && [ -r "$task" ]; then
		if [ "$(cat "$task")" = "<none>" ]; then echo "ext4 without a journal"
		else echo "ext4 with a journal"; fi
	else
		stat -f -c %T "$1" 2>/dev/null || echo unknown
	fi
}

# bench_machine_line FIELD...: "machine: " and the FIELDs joined by ", ", each one of
# cores, cpu (model name), mem (GiB), load, day (UTC date), minute (UTC date and
# time), iso (UTC, 2024-05-01T12:00Z), fs (the file system of $home, or of bench_tmp
# before bench_home). The scripts differ in which they print and docs/benchmarks.md
# quotes them as they are.
bench_machine_line() {
	local f line=""
	for f; do
		case $f in
		cores) f="$(nproc) cores" ;;
		cpu) f=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ;;
		mem) f="$(free -g | awk '/^Mem/ {print $2}') GiB" ;;
		load) f="load $(bench_load)" ;;
		day) f=$(date -u +%Y-%m-%d) ;;
		minute) f=$(date -u '+%Y-%m-%d %H:%M UTC') ;;
		iso) f=$(date -u +%Y-%m-%dT%H:%MZ) ;;
		fs) f=$(bench_fs "${home:-$(bench_tmp)}") ;;
		esac
		line="$line${line:+, }$f"
	done
	echo "machine: $line"
}

# bench_ticks PID...: the CPU the processes used so far (utime + stime, in clock
# ticks, summed).
bench_ticks() {
	local f=()
	for p in "$@"; do f+=("/proc/$p/stat"); done
	awk '{t += $14 + $15} END {print t}' "${f[@]}"
}

# bench_rss_kib PID: the process's resident memory (VmRSS) in KiB.
bench_rss_kib() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# bench_latency URL: "p50 X ms, p99 Y ms" of 200 GETs of URL on one kept-alive
# connection (curl's time_total).
bench_latency() {
	local cfg="$home/curl.cfg"
	: > "$cfg"
	for _ in $(seq 1 200); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >> "$cfg"; done
	curl -s -K "$cfg" -w '%{time_total}\n' | sort -n |
		awk '{v[NR]=$1} END {printf "p50 %.3f ms, p99 %.3f ms", v[int(NR/2)]*1000, v[int(NR*0.99)]*1000}'
}
