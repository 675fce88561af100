#!/usr/bin/env bash
# bench_smoke.sh BUILD_DIR - every benchmark script of bench/ run with small sizes, so
# that none rots unseen (ctest `bench_smoke`, labels `long` and `bench`: `make
# test-long`, not `make test`; skipped, exit 77, without THEATER_LONG=1).
#
# bench/run.sh (what `make bench` runs: its own spawns, then bench/NAME/run.sh for
# http chain wasm toml actors park stream fanout commit spawn, each under a
# "== bench/NAME ==" heading) runs once; the scripts it does not run (scale, recovery,
# cluster, http/cpu.sh, http/list.sh, stream/timers-recover.sh, fsync/churn.sh) run on
# their own. For each script, from its own output (a section of bench/run.sh's for the
# ones it runs):
#   - exit status 0 (bench/run.sh prints "== bench/NAME failed (exit N) ==");
#   - no MISMATCH, no "failures=N" with N > 0, no "VERIFY FAILED";
#   - every line kind the script prints, one regex each (EXPECT below): the figures
#     are there and are numbers. Durations and rates are never compared to anything.
# Every bench/*.sh and bench/*/*.sh but lib.sh must have lines in EXPECT: a new
# script fails this test until it is added here. A failure prints the script's whole
# output. wrk (bench/http) and nats-server (bench/cluster) are installed with apt-get
# when missing; without them the test fails.
set -uo pipefail
[ "${THEATER_LONG:-}" = 1 ] || { echo "skipped: set THEATER_LONG=1 (make test-long does)"; exit 77; }
[ $# -eq 1 ] || { echo "usage: bench_smoke.sh BUILD_DIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd) || exit 1
tmp=$(mktemp -d /var/tmp/theater-bench-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

# need TOOL PACKAGE: TOOL on PATH, or PACKAGE installed with apt-get; fails otherwise.
need() {
	command -v "$1" >/dev/null && return 0
	echo "bench_smoke: installing $2 (for $1)"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq &&
		DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 \
			install -y -qq --no-install-recommends "$2" >/dev/null
	command -v "$1" >/dev/null || { echo "FAIL: bench_smoke needs $1 (apt-get install $2)"; exit 1; }
}
need wrk wrk
need nats-server nats-server
need clang clang

# The sizes: small enough that the whole test takes a few minutes on 2 cores.
export BENCH_SPAWNS=40          # bench/run.sh, actors, spawn (per run)
export BENCH_MESSAGES=200       # actors, fanout, commit, cluster
export BENCH_CLIENTS=4          # fanout, commit
export BENCH_PAIRS=2 BENCH_RALLY=200 BENCH_IDLE_ACTORS=100   # actors
export BENCH_PARKED=20 BENCH_WAIT_MS=300                     # park
export BENCH_SUBSCRIBERS=20                                  # fanout
export BENCH_SECONDS=0.2        # chain, per row
export BENCH_DURATION=1s BENCH_WARMUP=1s BENCH_CONNECTIONS=4 BENCH_WRK_THREADS=1   # http
export BENCH_ACTORS=60          # http/list.sh
SCALE_N=200 RECOVERY_N=100 TIMERS_REQUESTS=300
num='[0-9][0-9.]*'

# EXPECT: "SCRIPT REGEX" (grep -E), one line kind of SCRIPT's output each.
read -r -d '' EXPECT <<EOF
bench/run.sh ^machine: [0-9]+ cores, .+, [0-9]{4}-[0-9]{2}-[0-9]{2}$
bench/run.sh ^== spawn through the API \(theater-server at http://127\.0\.0\.1:[0-9]+;
bench/run.sh ^spawn \(cached static package, wait=running\): clients=1 spawns=40 p50=$num ms p99=$num ms max=$num ms throughput=$num spawns/s failures=0$
bench/run.sh ^spawn \(cached static package, wait=running\): clients=4 spawns=80 .*throughput=$num spawns/s failures=0$
bench/http/run.sh ^bench/http: wrk -t1 -c4 -d1s \(keep-alive\), server threads [0-9]+, [0-9]+ cores$
bench/http/run.sh ^target +requests/s +p50 +p99 +ratio +notes$
bench/http/run.sh ^ceiling +$num +${num}[mu]?s +${num}[mu]?s +1\.00 *$
bench/http/run.sh ^layer-sync +$num +${num}[mu]?s +${num}[mu]?s +$num *$
bench/http/run.sh ^layer-async +$num +${num}[mu]?s +${num}[mu]?s +$num *$
bench/http/run.sh ^http://127\.0\.0\.1:[0-9]+/actors/[0-9a-f-]{36} +$num +${num}[mu]?s +${num}[mu]?s +$num *$
bench/chain/run.sh ^chain benchmark: durable appends .*, 0\.2 s per row, in /
bench/chain/run.sh ^mode +writers +events +events/s +p50 ms +p99 ms +max ms +syncs +ev/sync$
bench/chain/run.sh ^one chain +1 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^one chain +16 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^one chain +64 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^own chains +1 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^own chains +16 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^own chains +64 +[0-9]+ +$num +$num +$num +$num +[0-9]+ +$num$
bench/chain/run.sh ^target: 20000 events/s at 64 writers
bench/wasm/run.sh ^kernel +native ms +wasm ms +slowdown +checksum$
bench/wasm/run.sh ^fib +$num +$num +${num}x +ok$
bench/wasm/run.sh ^sieve +$num +$num +${num}x +ok$
bench/wasm/run.sh ^matmul +$num +$num +${num}x +ok$
bench/wasm/run.sh ^sha256 +$num +$num +${num}x +ok$
bench/wasm/run.sh ^crc32 +$num +$num +${num}x +ok$
bench/wasm/run.sh ^sort +$num +$num +${num}x +ok$
bench/wasm/run.sh ^geomean slowdown: ${num}x over 6 kernels
bench/wasm/run.sh ^in-process API \(wasm-api-bench\):$
bench/wasm/run.sh ^  store \+ instantiate \+ call, tiny module already loaded +$num us
bench/wasm/run.sh ^  store \+ instantiate \+ call, [0-9]+-byte module loaded +$num us$
bench/wasm/run.sh ^  decode \+ validate, [0-9]+-byte module +$num us$
bench/wasm/run.sh ^  decode \+ validate \+ instantiate \+ call, [0-9]+ bytes +$num us
bench/wasm/run.sh ^  idle 1-page instance: wasm_store_footprint +$num KiB
bench/wasm/run.sh ^  idle 1-page instance: RSS delta over 1000 instances, each +-?$num KiB$
bench/wasm/run.sh ^  host call answered at once +$num us$
bench/wasm/run.sh ^  host call parked and resumed \(suspend \+ resume\) +$num us$
bench/wasm/run.sh ^  store holding a parked call: wasm_store_footprint +$num KiB$
bench/wasm/run.sh ^  store holding a parked call: RSS delta over 1000, each +-?$num KiB$
bench/wasm/run.sh ^  module footprint: tiny \([0-9]+ bytes\) +[0-9]+ bytes$
bench/wasm/run.sh ^  module footprint: [0-9]+ bytes +[0-9]+ bytes$
bench/toml/run.sh ^toml bench: build '.+' \(.+, sanitize .+\)$
bench/toml/run.sh ^large document: $num MB, [0-9]+ actors, [0-9]+ parses$
bench/toml/run.sh ^  throughput: $num MB/s average, $num MB/s best \($num ms per parse\)$
bench/toml/run.sh ^manifest: [0-9]+ bytes, [0-9]+ parses$
bench/toml/run.sh ^  parse: $num us per parse \(target < 20 us\), $num MB/s$
bench/toml/run.sh ^  parse \+ toml_to_json: $num us$
bench/actors/run.sh ^machine: [0-9]+ cores, 
bench/actors/run.sh ^== spawn of a cached package with init \(counter\.wasm; theater-server at http://127\.0\.0\.1:[0-9]+\) ==$
bench/actors/run.sh ^spawn \(cached static package, wait=running\): clients=1 spawns=40 .*throughput=$num spawns/s failures=0$
bench/actors/run.sh ^spawn \(cached static package, wait=running\): clients=4 spawns=80 .*throughput=$num spawns/s failures=0$
bench/actors/run.sh ^== REST messages to one counter ==$
bench/actors/run.sh ^REST messages \(keep-alive, recorded before 202\): clients=1 sent=200 accepted=$num msg/s .*; all handled: $num msg/s; counter=200 busy\(429\)=0 failures=0$
bench/actors/run.sh ^REST messages \(keep-alive, recorded before 202\): clients=4 sent=200 .*; counter=400 busy\(429\)=0 failures=0$
bench/actors/run.sh ^== actor-to-actor ping-pong ==$
bench/actors/run.sh ^actor-to-actor ping-pong \(.*\): pairs=1 messages=200 throughput=$num msg/s chain_events=[0-9]+ \($num events/s\) failures=0$
bench/actors/run.sh ^actor-to-actor ping-pong \(.*\): pairs=2 messages=400 throughput=$num msg/s .*failures=0$
bench/actors/run.sh ^server CPU: $num us per message \(load $num\)$
bench/actors/run.sh ^== memory: 100 idle counters
bench/actors/run.sh ^spawn \(cached static package, wait=running\): clients=1 spawns=100 .*failures=0$
bench/actors/run.sh ^resident memory: before=$num MiB after=$num MiB \($num GiB\) per actor=-?$num KiB$
bench/actors/run.sh ^\(first page of running actors listed: [1-9][0-9]*\)$
bench/park/run.sh ^parking: 20 actors, 300ms endpoint, 2 workers$
bench/park/run.sh ^parked: 20 waiting calls at once \(theater_parked_calls [0-9]+\), all 20 reached the endpoint after $num s; all answered \(20 x 200\) in $num s for a 300 ms wait \(parks so far [0-9]+\)$
bench/park/run.sh ^other actor: idle p50 $num ms p99 $num ms; while 20 wait \([0-9]+ requests\) p50 $num ms p99 $num ms$
bench/stream/run.sh ^streamed request, 200 chunks: first chunk p50 $num ms \(max $num\), done p50 $num ms \(max $num\), 20 runs$
bench/stream/run.sh ^timers: 20 actors x 100 ms for 5 s: [1-9][0-9]* ticks \(expected about 1000\), late p50 -?$num ms, p99 -?$num ms, max -?$num ms; [0-9]+ ticks reported missed ones$
bench/fanout/run.sh ^machine: [0-9]+ cores, .*, load $num $num $num, 
bench/fanout/run.sh ^fan-out: subscribers=0 clients=4 messages=200 writer=$num msg/s .*failures=0$
bench/fanout/run.sh ^fan-out: subscribers=1 clients=4 messages=200 writer=$num msg/s .*frames delivered=([0-9]+) of \1 in .*failures=0$
bench/fanout/run.sh ^fan-out: subscribers=20 clients=4 messages=200 writer=$num msg/s .*frames delivered=([0-9]+) of \1 in .*server-cpu=$num us/frame reader-cpu=$num us/frame failures=0$
bench/fanout/run.sh ^fan-out ceiling: subscribers=20 frame=[0-9]+ B block=[0-9]+ B: $num frames/s received
bench/fanout/run.sh ^writer with 20 subscribers / with none: $num \(target >= 0\.50\)$
bench/fanout/run.sh ^the target needs $num frames/s \($num events per message\); the loopback ceiling carries $num$
bench/commit/run.sh ^machine: [0-9]+ cores, load $num $num $num, 
bench/commit/run.sh ^before: fdatasync ceiling: $num syncs/s
bench/commit/run.sh ^1 client:$
bench/commit/run.sh ^fan-out: subscribers=0 clients=1 messages=50 writer=$num msg/s .*failures=0$
bench/commit/run.sh ^4 clients:$
bench/commit/run.sh ^fan-out: subscribers=0 clients=4 messages=200 writer=$num msg/s .*failures=0$
bench/commit/run.sh ^after: fdatasync ceiling: $num syncs/s
bench/commit/run.sh ^bare group commit \(bench-commit-ceiling, same client, same disk\):$
bench/commit/run.sh ^records=250 syncs=[0-9]+ \($num records per sync\)$
bench/commit/run.sh ^1 client / ceiling: $num; 4 clients / ceiling: $num \(target >= 4\); 4 / 1: $num$
bench/commit/run.sh ^bare group commit, 4 clients / ceiling: $num; theater-server / bare: $num$
bench/commit/run.sh ^load after: $num $num $num$
bench/spawn/run.sh ^machine: [0-9]+ cores, load $num $num $num, 
bench/spawn/run.sh ^ceiling: fdatasync ceiling: $num syncs/s
bench/spawn/run.sh ^spawn \(cached static package, wait=running\): clients=1 spawns=40 .*throughput=$num spawns/s failures=0$
bench/spawn/run.sh ^spawn \(cached static package, wait=running\): clients=4 spawns=40 .*throughput=$num spawns/s failures=0$
bench/spawn/run.sh ^  server CPU per spawn: [0-9]+ us$
bench/spawn/run.sh ^  spare chains: [0-9]+ ready, [0-9]+ created so far$
bench/spawn/run.sh ^bare durable spawn \(bench-commit-ceiling spawn, same client, same disk\):$
bench/spawn/run.sh ^1 client\(s\): p50 $num ms = ${num}x the bare spawn's $num ms; $num spawns/s = $num of its $num$
bench/spawn/run.sh ^4 client\(s\): p50 $num ms = ${num}x the bare spawn's $num ms; $num spawns/s = $num of its $num$
bench/spawn/run.sh ^load after: $num $num $num$
bench/http/cpu.sh ^machine: [0-9]+ cores, load .*; wrk -t1 -c4 -d1s$
bench/http/cpu.sh ^ceiling \(bare libmicrohttpd\) +$num req/s +$num us CPU/request$
bench/http/cpu.sh ^theater-server GET /actors/\{id\} +$num req/s +$num us CPU/request$
bench/http/cpu.sh ^ratio of CPU per request: $num \(target <= 1\.30\)$
bench/http/list.sh ^machine: [0-9]+ cores, load .*; 60 running actors$
bench/http/list.sh ^GET /actors\?status=running&limit=50: p50 $num ms, p99 $num ms; $num us server CPU/request \([1-9][0-9]* requests\)$
bench/http/list.sh ^GET /health \(the HTTP floor\): +p50 $num ms, p99 $num ms; $num us server CPU/request \([1-9][0-9]* requests\)$
bench/scale/run.sh ^machine: [0-9]+ cores, .*, [0-9]+ GiB, [0-9T:-]+Z, load $num $num $num, .+$
bench/scale/run.sh ^descriptor limit \(ulimit -n\): [0-9]+; actor: hello; N = $SCALE_N; clients = [0-9]+$
bench/scale/run.sh ^  [0-9]+ actors: p50=$num throughput=$num failures=0  rss [0-9]+ MiB$
bench/scale/run.sh ^spawned [0-9]+ live actors in $num s \([0-9]+/s\)$
bench/scale/run.sh ^resident memory: [0-9]+ MiB before, [0-9]+ MiB after: -?$num KiB per idle actor$
bench/scale/run.sh ^descriptors open: [0-9]+ \(chain files [0-9]+, cap [0-9]+\)$
bench/scale/run.sh ^filtered list status=running: +p50 $num ms, p99 $num ms$
bench/scale/run.sh ^filtered list status=failed: +p50 $num ms, p99 $num ms$
bench/scale/run.sh ^filtered list parent=<id>: +p50 $num ms, p99 $num ms$
bench/scale/run.sh ^filtered list name\+status: +p50 $num ms, p99 $num ms$
bench/scale/run.sh ^GET /health \(the HTTP floor\): +p50 $num ms, p99 $num ms$
bench/scale/run.sh ^instances in memory before the stop: [0-9]+ 
bench/scale/run.sh ^clean stop \(SIGTERM, [0-9]+ actors suspended\): $num s \(shutdown: .+\)$
bench/scale/run.sh ^start after the clean stop: $num s to listening \($num s CPU\), [0-9]+ running, [0-9]+ instances \(start-up: .+\); rss [0-9]+ MiB, descriptors [0-9]+ [0-9]+$
bench/scale/run.sh ^start after a crash \(SIGKILL\): $num s to listening \($num s CPU\), [0-9]+ running, [0-9]+ instances \(start-up: .+\)$
bench/scale/run.sh ^clean stop again: $num s$
bench/scale/run.sh ^log lines: [0-9]+, warnings and errors: [0-9]+$
bench/scale/run.sh ^where the stops went: stop: supervisor .+
bench/scale/run.sh ^load at the end: $num $num $num$
bench/recovery/run.sh ^recovery after a crash, $RECOVERY_N actors: $num s to listening \([0-9]+ idle ones left to recover on first use, [0-9]+ to recover in the background, [0-9]+ of [0-9]+ others recovered\)$
bench/recovery/run.sh ^clean stop \(SIGTERM, actors suspended\), $RECOVERY_N actors: $num s$
bench/recovery/run.sh ^recovery after a clean stop, $RECOVERY_N actors: $num s to listening \([0-9]+ idle ones left to recover on first use, [0-9]+ to recover in the background, [0-9]+ of [0-9]+ others recovered\)$
bench/fsync/churn.sh ^machine: [0-9]+ cores, [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]+ UTC, .+$
bench/fsync/churn.sh ^file creation: $num us each \(2000 files\), $num us each after 2000 deletes \(200 files\): ${num}x$
bench/stream/timers-recover.sh ^chain of [0-9]+ events; recovery of its timers: read [0-9]+ events back to the newest table in $num us$
bench/cluster/run.sh ^machine: [0-9]+ cores, .+, [0-9]{4}-[0-9]{2}-[0-9]{2}$
bench/cluster/run.sh ^== request latency \(counter, one keep-alive connection\) ==$
bench/cluster/run.sh ^single node \(no --nats\) +p50 $num ms  p99 $num ms  \(300 requests\)$
bench/cluster/run.sh ^cluster, on the actor's node +p50 $num ms  p99 $num ms  \(300 requests\)$
bench/cluster/run.sh ^cluster, through another node \(NATS\) +p50 $num ms  p99 $num ms  \(300 requests\)$
bench/cluster/run.sh ^== acknowledged messages per second \(4 clients, 200 messages\) ==$
bench/cluster/run.sh ^single node, no replication: REST messages .*clients=4 sent=200 .*counter=200 busy\(429\)=0 failures=0$
bench/cluster/run.sh ^cluster node, replicated R3: REST messages .*clients=4 sent=200 .*counter=200 busy\(429\)=0 failures=0$
bench/cluster/run.sh ^cluster, through another node: REST messages .*clients=4 sent=200 .*counter=200 busy\(429\)=0 failures=0$
bench/cluster/run.sh ^== failover \(kill -9 of the node running 20 counters\) ==$
bench/cluster/run.sh ^all 20 actors answering on survivors [0-9]+ ms after kill -9
EOF

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# scale_extra OUT: every actor spawned and not stopped by the end-of-an-actor figure
# is running again after the clean stop and after the crash (the count of each start
# line equals the count spawned less the stops).
scale_extra() {
	local spawned stopped
	spawned=$(sed -n 's/^spawned \([0-9]*\) live actors.*/\1/p' "$1")
	stopped=$(sed -n "s/^one actor's end among .* (\([0-9]*\) stops one after another.*/\1/p" "$1")
	[ -n "$stopped" ] || { echo "no end-of-an-actor figure"; return; }
	grep -E '^start after (the clean stop|a crash)' "$1" | grep -o '), [0-9]* running' |
		grep -o '[0-9]*' | while read -r r; do
		[ "$r" = $((spawned - stopped)) ] ||
			echo "$r running after a restart, $spawned spawned and $stopped stopped"
	done
}

# check SCRIPT OUT RC: the checks of the header on OUT, SCRIPT's output.
check() {
	local script=$1 out=$2 rc=$3 bad="" re extra
	[ "$rc" = 0 ] || bad="$bad"$'\n'"  exit status $rc"
	grep -q 'MISMATCH' "$out" && bad="$bad"$'\n'"  says MISMATCH"
	grep -qE 'failures=[1-9]' "$out" && bad="$bad"$'\n'"  says failures=N with N > 0"
	grep -q 'VERIFY FAILED' "$out" && bad="$bad"$'\n'"  says VERIFY FAILED"
	while IFS= read -r re; do
		grep -qE -- "$re" "$out" || bad="$bad"$'\n'"  no line matches: $re"
	done < <(awk -v s="$script" '$1 == s { sub(/^[^ ]+ /, ""); print }' <<<"$EXPECT")
	if [ "$script" = bench/scale/run.sh ]; then
		extra=$(scale_extra "$out")
		[ -z "$extra" ] || bad="$bad"$'\n'"  $extra"
	fi
	if [ -z "$bad" ]; then
		echo "ok: $script ($(wc -l < "$out") lines)"
		return
	fi
	fail "$script:$bad"
	echo "---- the whole output of $script ----"
	cat "$out"
	echo "---- end of $script ----"
}

# Every script has lines in EXPECT.
for f in "$src"/bench/*.sh "$src"/bench/*/*.sh; do
	f=${f#"$src"/}
	[ "$f" = bench/lib.sh ] && continue
	grep -q "^$f " <<<"$EXPECT" || fail "$f has no lines in EXPECT of tests/ops/bench_smoke.sh (add them)"
done

# run NAME CMD...: CMD's stdout and stderr in tmp/NAME.out, its exit status in RC.
run() {
	local name=$1 t0=$SECONDS
	shift
	echo "== $name: $*"
	RC=0
	(cd "$src" && "$@") > "$tmp/$name.out" 2>&1 || RC=$?
	echo "   exit $RC in $((SECONDS - t0)) s"
}

# bench/run.sh: its own lines (before the first "== bench/NAME ==") are its output,
# each section the output of bench/NAME/run.sh.
ran=$(sed -n 's/^for b in \(.*\); do$/\1/p' "$src/bench/run.sh")
[ -n "$ran" ] || fail "cannot read the list of bench/run.sh (its line 'for b in ...; do')"
run make-bench bash bench/run.sh "$build"
all=$RC
awk -v dir="$tmp" 'BEGIN { f = dir "/section.top" }
	/^== bench\/[a-z]+ ==$/ { n = $2; sub(/^bench\//, "", n); f = dir "/section." n; next }
	{ print > f }' "$tmp/make-bench.out"
top_rc=$all
for b in $ran; do
	sec=$tmp/section.$b
	if [ ! -f "$sec" ]; then
		fail "bench/run.sh ran no bench/$b/run.sh (no '== bench/$b ==' heading)"
		continue
	fi
	rc=$(sed -n 's/^== bench\/[a-z]* failed (exit \([0-9]*\)) ==$/\1/p' "$sec")
	[ -z "$rc" ] || top_rc=0   # the failure is this section's, reported there
	check "bench/$b/run.sh" "$sec" "${rc:-0}"
done
[ -f "$tmp/section.top" ] || : > "$tmp/section.top"
check bench/run.sh "$tmp/section.top" "$top_rc"

# What bench/run.sh does not run.
run cpu bash bench/http/cpu.sh "$build"
check bench/http/cpu.sh "$tmp/cpu.out" "$RC"
run list bash bench/http/list.sh "$build"
check bench/http/list.sh "$tmp/list.out" "$RC"
run scale bash bench/scale/run.sh "$build" "$SCALE_N"
check bench/scale/run.sh "$tmp/scale.out" "$RC"
run recovery bash bench/recovery/run.sh "$build" "$RECOVERY_N"
check bench/recovery/run.sh "$tmp/recovery.out" "$RC"
run timers-recover bash bench/stream/timers-recover.sh "$build" "$TIMERS_REQUESTS"
check bench/stream/timers-recover.sh "$tmp/timers-recover.out" "$RC"
BENCH_FILES=2000 run churn bash bench/fsync/churn.sh "$build"
check bench/fsync/churn.sh "$tmp/churn.out" "$RC"
run cluster bash bench/cluster/run.sh "$build"
check bench/cluster/run.sh "$tmp/cluster.out" "$RC"

# Every script with lines in EXPECT has been checked above.
for f in $(awk '{ print $1 }' <<<"$EXPECT" | sort -u); do   # no spaces in the names
	case $f in
	bench/run.sh | bench/http/cpu.sh | bench/http/list.sh | bench/scale/run.sh | \
		bench/recovery/run.sh | bench/stream/timers-recover.sh | bench/cluster/run.sh | \
		bench/fsync/churn.sh) ;;
	*) n=${f#bench/}; n=${n%/run.sh}
	   grep -qw "$n" <<<"$ran" || fail "$f: has lines in EXPECT but nothing runs it" ;;
	esac
done

[ $fails -eq 0 ] || { echo "bench_smoke: $fails failed"; exit 1; }
echo "bench_smoke: every benchmark script ran and printed its lines"
