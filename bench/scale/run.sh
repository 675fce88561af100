#!/usr/bin/env bash
# One node at full size (issue 16): spawns N live actors (default 100,000; a tiny
# actor, hello by default, `ACTOR=counter` for the counter) through the API with
# 4 clients, then reports
#   - spawn throughput per tenth of the run,
#   - resident memory per idle actor (RSS after minus RSS before, over N),
#   - descriptors open (all, and chain files, against the chain cache's cap),
#   - filtered list latency (status / parent / name, limit 50; curl time_total on
#     a kept-alive connection, median and p99 of 200 requests),
#   - one actor's end among N (500, or N/10, stopped one after another on a kept-alive
#     connection): wall time and server CPU per stop,
#   - a clean stop (SIGTERM until exit) and the next start (recovery, until
#     listening), then a crash (SIGKILL) and the next start.
#   bench/scale/run.sh BUILD_DIR [N]     (SERVER_ARGS: more server flags, e.g.
#                                          "--idle-release-ms 0" to keep every instance)
# THEATER_HOME is a temporary folder under /var/tmp (a real disk).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
build=$(cd "${1:-build}" && pwd)
n=${2:-100000}
actor=${ACTOR:-hello}
clients=${CLIENTS:-4}
bench_server=${SERVER:-$build/theater-server}   # SERVER: another build, to compare
bench_home theater-bench-scale "$build/examples/$actor/$actor.wasm"
trap 'bench_cleanup KILL' EXIT
bench_wait=120 bench_poll=0.005   # the start is timed

now() { date +%s.%N; }
# CPU seconds the server used so far (user + system): on a shared machine the wall
# time of a start stretches with the load, its CPU time does not
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"; }
start_server() {   # sets took to the seconds until it listens
  local t0; t0=$(now)
  # shellcheck disable=SC2086 # SERVER_ARGS: several flags
  bench_server_start --log-level info --max-actors $((n + 100)) ${SERVER_ARGS:-} || exit 1
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
}
stop_server() {   # SIGTERM; sets took to the seconds until the process exited
  local t0; t0=$(now)
  bench_server_stop
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
}
fds() {   # descriptors open, and how many are chain files (one process, no fork per fd)
  echo "$(find /proc/$pid/fd -mindepth 1 2>/dev/null | wc -l) $(find /proc/$pid/fd -mindepth 1 -lname '*.chain' 2>/dev/null | wc -l)"
}
bench_machine_line cores cpu mem iso load fs
echo "descriptor limit (ulimit -n): $(ulimit -n); actor: $actor; N = $n; clients = $clients"
running() { curl -s "$base/metrics" | awk '/^theater_actors\{status="running"\}/ {print $2}'; }
loaded() { curl -s "$base/metrics" | awk '/^theater_actors_loaded / {print $2}'; }
start_server
rss0=$(bench_rss_kib "$pid")
step=$((n / 10))
done_n=0
t_spawn0=$(now)
while [ $done_n -lt $n ]; do
  k=$step; [ $((done_n + k)) -gt $n ] && k=$((n - done_n))
  out=$("$build/bench/spawn/bench-spawn" "$base" "$actor.wasm" "$k" "$clients")
  done_n=$((done_n + k))
  echo "  $(running) actors: $(echo "$out" | grep -o 'p50=[^ ]*\|throughput=[^ ]*\|failures=[^ ]*' | tr '\n' ' ') rss $(( $(bench_rss_kib "$pid") / 1024 )) MiB"
done
t_spawn=$(awk -v a="$(now)" -v b="$t_spawn0" 'BEGIN{printf "%.1f", a-b}')
sleep 2   # the flusher and the index settle
done_n=$(running)   # bench-spawn spawns a multiple of its clients, plus one to warm up
rss1=$(bench_rss_kib "$pid")
read -r fd_all fd_chains < <(fds)
cap=$(curl -s "$base/metrics" | awk '/^theater_chain_fds_cap / {print $2}')
some=$(curl -s "$base/actors?limit=1" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "spawned $done_n live actors in $t_spawn s ($(awk -v n=$done_n -v t=$t_spawn 'BEGIN{printf "%.0f", n/t}')/s)"
echo "resident memory: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB after: $(awk -v a=$rss1 -v b=$rss0 -v n=$done_n 'BEGIN{printf "%.1f", (a-b)/n}') KiB per idle actor"
echo "descriptors open: $fd_all (chain files $fd_chains${cap:+, cap $cap})"
echo "filtered list status=running:  $(bench_latency "$base/actors?status=running&limit=50")"
echo "filtered list status=failed:   $(bench_latency "$base/actors?status=failed&limit=50")"
echo "filtered list parent=<id>:     $(bench_latency "$base/actors?parent=$some&limit=50")"
echo "filtered list name+status:     $(bench_latency "$base/actors?name=bench&status=running&limit=50")"
echo "GET /health (the HTTP floor):  $(bench_latency "$base/health")"
# one actor's end among n: 500 stops (a tenth of n at most, the rest stay for the
# restarts) one after another on a kept-alive connection, each answered once its
# `stopped` event is durable; the wall time per stop, and the server's CPU meanwhile
# less that of an idle window as long (a background sweep of idle instances,
# --idle-release-ms, can still fall in either window)
ends=$((done_n / 10 < 500 ? done_n / 10 : 500))
[ "$ends" -ge 1 ] || ends=1
ids=$(curl -s "$base/actors?status=running&limit=$ends" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
k=$(echo "$ids" | wc -w)
c0=$(cpu_s); t0=$(now); sleep 2; c1=$(cpu_s); idle_t=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
t0=$(now)
# shellcheck disable=SC2046 # one URL per id, one curl: a kept-alive connection
curl -s -o /dev/null -X POST $(printf "$base/actors/%s/stop " $ids)
t_ends=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')
c2=$(cpu_s)
echo "one actor's end among $done_n: $(awk -v k="$k" -v t="$t_ends" -v a="$c0" -v b="$c1" -v c="$c2" -v it="$idle_t" \
  'BEGIN { printf "%.2f ms each (%d stops one after another in %.2f s), server CPU %.2f ms each (idle CPU taken off)", t / k * 1000, k, t, ((c - b) - (b - a) / it * t) / k * 1000 }')"
done_n=$(running)
echo "instances in memory before the stop: $(loaded) (--idle-release-ms releases idle ones)"
stop_server; t_stop=$took
echo "clean stop (SIGTERM, $done_n actors suspended): $t_stop s ($(grep -o 'shutdown: .*' "$home/log" | tail -1))"
start_server; t_clean=$took
cpu_clean=$(cpu_s)
echo "start after the clean stop: $t_clean s to listening ($cpu_clean s CPU), $(running) running, $(loaded) instances ($(grep -o 'start-up: .*' "$home/log" | tail -1)); rss $(( $(bench_rss_kib "$pid") / 1024 )) MiB, descriptors $(fds)"
bench_server_stop KILL
start_server; t_crash=$took
cpu_crash=$(cpu_s)
echo "start after a crash (SIGKILL): $t_crash s to listening ($cpu_crash s CPU), $(running) running, $(loaded) instances ($(grep -o 'start-up: .*' "$home/log" | tail -1))"
stop_server
echo "clean stop again: $took s"
echo "log lines: $(grep -c . "$home/log" || true), warnings and errors: $(grep -c ' warn \| error ' "$home/log" || true)"
echo "where the stops went: $(grep -o 'stop: supervisor.*' "$home/log" | tr '\n' ';')"
echo "load at the end: $(bench_load)"
