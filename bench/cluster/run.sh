#!/usr/bin/env bash
# bench/cluster/run.sh [BUILD_DIR] - cluster mode figures (issue 15, docs/cluster.md)
# on 127.0.0.1: three nats-servers (JetStream, clustered, R3) and three theater
# nodes started here with temporary homes under /var/tmp, plus one single node.
#
#   request latency   POST /actors/{id}/requests "get" to a counter, 300 in a
#                     row on one keep-alive connection: on its own node, and
#                     through another node (forwarded over NATS); p50/p99
#   messages/s        acknowledged POST /actors/{id}/messages (bench-actors
#                     messages, 4 clients): one node without --nats, a cluster
#                     node (every event replicated to the R3 stream before the
#                     202), and through another node; each with the CPU per
#                     message of the theater nodes and of the NATS servers
#   writes refused    after a heartbeat blip: alpha's heartbeats fail (fault
#                     injection, THEATER_TEST_BEAT_FAIL_FILE) past half its lapse,
#                     so it refuses writes until it has read the placement of
#                     each of its N live actors (BENCH_VERIFY_ACTORS, 1000) from
#                     the bucket; how long that took (its log) and how long
#                     writes stayed refused after its beats came back
#   failover          kill -9 of the node running N counters (BENCH_FAILOVER_ACTORS,
#                     20): time until all N answer from the survivors, and
#                     whether a survivor was itself counted down meanwhile (its
#                     heartbeats held back by the takeovers)
#
# Needs nats-server (apt-get install nats-server). Tunables: BENCH_MESSAGES (5000),
# BENCH_VERIFY_ACTORS (1000), BENCH_FAILOVER_ACTORS (20), SERVER (the
# theater-server binary, for A/B runs). Exits 1 when a request of the latency
# runs is not answered 200, a messages run fails, writes stay refused 120 s after
# the blip, or the counters do not all answer within 120 s.
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
MESSAGES=${BENCH_MESSAGES:-5000}
FAILOVER=${BENCH_FAILOVER_ACTORS:-20}
VERIFY=${BENCH_VERIFY_ACTORS:-1000}
bench_server=${SERVER:-$BUILD/theater-server}
command -v nats-server >/dev/null || { echo "bench/cluster: needs nats-server"; exit 1; }
bench_have "$BUILD/bench/actors/bench-actors" || bench_build bench-actors
dir=$(mktemp -d "$(bench_tmp)/theater-bench-cluster.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -a NP RP MP
for i in 0 1 2; do NP[$i]=$(port); RP[$i]=$(port); MP[$i]=$(port); done
urls="nats://127.0.0.1:${NP[0]},nats://127.0.0.1:${NP[1]},nats://127.0.0.1:${NP[2]}"
for i in 0 1 2; do
  routes=""
  for k in 0 1 2; do [ $k = $i ] || routes="$routes${routes:+, }nats-route://127.0.0.1:${RP[$k]}"; done
  cat > "$dir/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${NP[$i]}
http: 127.0.0.1:${MP[$i]}
max_payload: 8MB
jetstream { store_dir: "$dir/js$i" }
cluster { name: bench, listen: 127.0.0.1:${RP[$i]}, routes: [$routes] }
CONF
  nats-server -c "$dir/n$i.conf" > "$dir/n$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 1 150); do curl -s "127.0.0.1:${MP[$i]}/jsz" | grep -q '"leader"' && break; sleep 0.2; done
done

declare -a BASE PID
start_node() {  # start_node INDEX NAME [extra args...]
  local i=$1; shift 2
  home=$dir/home$i
  bench_packages "$BUILD/examples/counter/counter.wasm"
  bench_wait=20 bench_server_start --log-level warn "$@"
  PID[i]=$pid; pids+=("$pid")
  BASE[i]=$base
}
THEATER_TEST_BEAT_FAIL_FILE=$dir/beatfail start_node 0 alpha --nats "$urls" --node alpha \
  --cluster-lapse-ms 20000 --log-level info
start_node 1 beta --nats "$urls" --node beta
start_node 2 gamma --nats "$urls" --node gamma
start_node 3 single
sleep 2
spawn() {  # spawn BASE [query]
  curl -s -X POST "$1/actors?wait=running${2:-}" \
    -d '{"manifest":{"name":"c","package":"counter.wasm","initial_state":{"count":0}}}' |
    grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4
}
latency() {  # latency LABEL URL
  local args=()
  for _ in $(seq 1 300); do args+=(-o /dev/null "$2"); done
  curl -s -X POST -d get -w '%{time_total} %{http_code}\n' "${args[@]}" | sort -n > "$dir/lat"
  awk -v l="$1" '{v[NR]=$1; bad+=($2 != 200)} END {printf "%-44s p50 %.2f ms  p99 %.2f ms  (%d requests", l, v[int(NR*0.5)]*1000, v[int(NR*0.99)]*1000, NR
    if (bad) printf ", %d answered other than 200", bad
    printf ")\n"; exit bad > 0}' "$dir/lat" || status=1
}
status=0
bench_machine_line cores cpu day
echo "== request latency (counter, one keep-alive connection) =="
id=$(spawn "${BASE[0]}")
single=$(spawn "${BASE[3]}")
latency "single node (no --nats)" "${BASE[3]}/actors/$single/requests"
latency "cluster, on the actor's node" "${BASE[0]}/actors/$id/requests"
latency "cluster, through another node (NATS)" "${BASE[1]}/actors/$id/requests"
echo "== acknowledged messages per second (4 clients, $MESSAGES messages) =="
nats_pids=("${pids[@]:0:3}")
m() {  # m BASE ID LABEL: the run, then the CPU per message it cost
  local n0 s0
  n0=$(bench_ticks "${PID[@]}"); s0=$(bench_ticks "${nats_pids[@]}")
  "$BUILD/bench/actors/bench-actors" messages "$1" "$2" "$MESSAGES" 4 | sed "s/^/$3: /" || status=1
  awk -v a="$n0" -v b="$(bench_ticks "${PID[@]}")" \
      -v c="$s0" -v d="$(bench_ticks "${nats_pids[@]}")" -v t="$(getconf CLK_TCK)" -v n="$MESSAGES" \
      'BEGIN { printf "  CPU per message: theater nodes %.0f us, NATS servers %.0f us\n",
               (b - a) / t / n * 1e6, (d - c) / t / n * 1e6 }'
}
m "${BASE[3]}" "$(spawn "${BASE[3]}")" "single node, no replication"
m "${BASE[0]}" "$(spawn "${BASE[0]}")" "cluster node, replicated R3"
id2=$(spawn "${BASE[0]}")
m "${BASE[1]}" "$id2" "cluster, through another node"
echo "== writes refused after a heartbeat blip (alpha, $VERIFY live counters) =="
refused() { curl -s "${BASE[0]}/cluster" | grep -q '"writes_refused":"'; }
seq 1 "$VERIFY" | xargs -P 8 -I{} curl -s -o /dev/null -X POST "${BASE[0]}/actors?wait=running" \
  -d '{"manifest":{"name":"v","package":"counter.wasm","initial_state":{"count":0}}}'
touch "$dir/beatfail"
for _ in $(seq 1 300); do refused && break; sleep 0.1; done
t0=$(date +%s%N)
rm -f "$dir/beatfail"
for _ in $(seq 1 1200); do refused || break; sleep 0.05; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if refused; then
  echo "alpha still refuses writes 60 s after its heartbeats came back"
  status=1
else
  line=$(grep -o '[0-9]* placements read in [0-9]* ms' "$dir/home0/log" | tail -1)
  echo "writes acknowledged again $ms ms after the heartbeats could be written (they are 1 s apart); the check: ${line:-no log line}"
fi
echo "== failover (kill -9 of the node running $FAILOVER counters) =="
ids=()
for _ in $(seq 1 "$FAILOVER"); do ids+=("$(spawn "${BASE[0]}" "&node=beta")"); done
t0=$(date +%s%N)
kill -9 "${PID[1]}"
left=$FAILOVER
pending=("${ids[@]}")
downs=0
# a survivor the other counts down: its heartbeats were held back
down_seen() {  # down_seen BASE NAME
  curl -s "$1/cluster" | grep -q "\"node\":\"$2\",\"url\":\"[^\"]*\",\"status\":\"down\"" &&
    downs=$((downs + 1))
  return 0
}
while [ $left -gt 0 ] && [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 120 ]; do
  down_seen "${BASE[0]}" gamma
  down_seen "${BASE[2]}" alpha
  # one curl for every actor still pending (a process each took 2-3 s a pass)
  urls=()
  for x in "${pending[@]}"; do urls+=(-o /dev/null "${BASE[2]}/actors/$x/requests?timeout=5"); done
  mapfile -t codes < <(curl -s -w '%{http_code}\n' -X POST -d get "${urls[@]}")
  still=()
  for k in "${!pending[@]}"; do
    [ "${codes[$k]:-0}" = 200 ] || still+=("${pending[$k]}")
  done
  pending=("${still[@]}")
  left=${#pending[@]}
  [ $left -gt 0 ] && sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ $left -gt 0 ]; then
  echo "$left of $FAILOVER actors still not answering on survivors 120 s after kill -9"
  exit 1
fi
echo "all $FAILOVER actors answering on survivors $ms ms after kill -9 (heartbeat lapse 4000 ms); looks at /cluster that found a survivor down: $downs"
exit $status