#!/usr/bin/env bash
# One node at full size (issue 16): spawns N live actors (default 100,000; a tiny
# actor, hello by default, `ACTOR=counter` for the counter) through the API with
# 4 clients, then reports
#   - spawn throughput per tenth of the run,
#   - resident memory per idle actor (RSS after minus RSS before, over N),
#   - descriptors open (all, and chain files, against the chain cache's cap),
#   - filtered list latency (status / parent / name, limit 50; curl time_total on
#     a kept-alive connection, median and p99 of 200 requests),
#   - a clean stop (SIGTERM until exit) and the next start (recovery, until
#     listening), then a crash (SIGKILL) and the next start.
#   bench/scale/run.sh BUILD_DIR [N]     (SERVER_ARGS: more server flags, e.g.
#                                          "--idle-release-ms 0" to keep every instance)
# THEATER_HOME is a temporary folder under /var/tmp (a real disk).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
n=${2:-100000}
actor=${ACTOR:-hello}
clients=${CLIENTS:-4}
home=$(mktemp -d /var/tmp/theater-bench-scale.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$home"' EXIT
mkdir -p "$home/packages"
cp "$build/examples/$actor/$actor.wasm" "$home/packages/"

now() { date +%s.%N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
# CPU seconds the server used so far (user + system): on a shared machine the wall
# time of a start stretches with the load, its CPU time does not
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat"; }
start_server() {
  : > "$home/out"
  local t0; t0=$(now)
  THEATER_HOME="$home" "$build/theater-server" --listen 127.0.0.1:0 --log-level info \
    --max-actors $((n + 100)) ${SERVER_ARGS:-} > "$home/out" 2>> "$home/log" &
  pid=$!
  for _ in $(seq 1 24000); do grep -q listening "$home/out" 2>/dev/null && break; sleep 0.005; done
  grep -q listening "$home/out" || { echo "server did not start"; tail "$home/log"; exit 1; }
  base=$(grep -o 'http://[0-9.:]*' "$home/out")
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
}
stop_server() {   # SIGTERM; sets took to the seconds until the process exited
  local t0; t0=$(now)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  took=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
  pid=
}
fds() {   # descriptors open, and how many are chain files (one process, no fork per fd)
  echo "$(find /proc/$pid/fd -mindepth 1 2>/dev/null | wc -l) $(find /proc/$pid/fd -mindepth 1 -lname '*.chain' 2>/dev/null | wc -l)"
}
# median and p99 (ms) of 200 GETs of one URL on one kept-alive connection
list_ms() {
  local cfg="$home/curl.cfg"
  : > "$cfg"
  for _ in $(seq 1 200); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1" >> "$cfg"; done
  curl -s -K "$cfg" -w '%{time_total}\n' | sort -n |
    awk '{v[NR]=$1} END {printf "p50 %.3f ms, p99 %.3f ms", v[int(NR/2)]*1000, v[int(NR*0.99)]*1000}'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem/ {print $2}') GiB, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "descriptor limit (ulimit -n): $(ulimit -n); actor: $actor; N = $n; clients = $clients"
running() { curl -s "$base/metrics" | awk '/^theater_actors\{status="running"\}/ {print $2}'; }
loaded() { curl -s "$base/metrics" | awk '/^theater_actors_loaded / {print $2}'; }
start_server
rss0=$(rss_kib)
step=$((n / 10))
done_n=0
t_spawn0=$(now)
while [ $done_n -lt $n ]; do
  k=$step; [ $((done_n + k)) -gt $n ] && k=$((n - done_n))
  out=$("$build/bench/spawn/bench-spawn" "$base" "$actor.wasm" "$k" "$clients")
  done_n=$((done_n + k))
  echo "  $(running) actors: $(echo "$out" | grep -o 'p50=[^ ]*\|throughput=[^ ]*\|failures=[^ ]*' | tr '\n' ' ') rss $(( $(rss_kib) / 1024 )) MiB"
done
t_spawn=$(awk -v a="$(now)" -v b="$t_spawn0" 'BEGIN{printf "%.1f", a-b}')
sleep 2   # the flusher and the index settle
done_n=$(running)   # bench-spawn spawns a multiple of its clients, plus one to warm up
rss1=$(rss_kib)
read -r fd_all fd_chains < <(fds)
cap=$(curl -s "$base/metrics" | awk '/^theater_chain_fds_cap / {print $2}')
some=$(curl -s "$base/actors?limit=1" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "spawned $done_n live actors in $t_spawn s ($(awk -v n=$done_n -v t=$t_spawn 'BEGIN{printf "%.0f", n/t}')/s)"
echo "resident memory: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB after: $(awk -v a=$rss1 -v b=$rss0 -v n=$done_n 'BEGIN{printf "%.1f", (a-b)/n}') KiB per idle actor"
echo "descriptors open: $fd_all (chain files $fd_chains${cap:+, cap $cap})"
echo "filtered list status=running:  $(list_ms "$base/actors?status=running&limit=50")"
echo "filtered list status=failed:   $(list_ms "$base/actors?status=failed&limit=50")"
echo "filtered list parent=<id>:     $(list_ms "$base/actors?parent=$some&limit=50")"
echo "filtered list name+status:     $(list_ms "$base/actors?name=bench&status=running&limit=50")"
echo "GET /health (the HTTP floor):  $(list_ms "$base/health")"
echo "instances in memory before the stop: $(loaded) (--idle-release-ms releases idle ones)"
stop_server; t_stop=$took
echo "clean stop (SIGTERM, $done_n actors suspended): $t_stop s ($(grep -o 'shutdown: .*' "$home/log" | tail -1))"
start_server; t_clean=$took
cpu_clean=$(cpu_s)
echo "start after the clean stop: $t_clean s to listening ($cpu_clean s CPU), $(running) running, $(loaded) instances ($(grep -o 'start-up: .*' "$home/log" | tail -1)); rss $(( $(rss_kib) / 1024 )) MiB, descriptors $(fds)"
kill -9 $pid; wait $pid 2>/dev/null || true
start_server; t_crash=$took
cpu_crash=$(cpu_s)
echo "start after a crash (SIGKILL): $t_crash s to listening ($cpu_crash s CPU), $(running) running, $(loaded) instances ($(grep -o 'start-up: .*' "$home/log" | tail -1))"
stop_server
echo "clean stop again: $took s"
echo "log lines: $(grep -c . "$home/log" || true), warnings and errors: $(grep -c ' warn \| error ' "$home/log" || true)"
echo "where the stops went: $(grep -o 'stop: supervisor.*' "$home/log" | tr '\n' ';')"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
