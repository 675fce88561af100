#!/usr/bin/env bash
# readme_test.sh SOURCE_DIR BUILD_DIR - every shell command of README.md's
# sessions, run against real servers. Each command is written here exactly as
# the README shows it; the test first checks that README.md still contains
# every one of its lines (so the two cannot drift apart), then runs it with
# only these substitutions: the servers' random ports for 8080 and 8081, a
# scratch folder for ~/.theater and /tmp/theater-counter, the build folder for
# build/, and the ids and hashes earlier commands answered for <id>, <sha256>,
# <kv id>, <supervisor id>. Its output must hold what the README says it does.
set -uo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
readme=$src/README.md
tmp=$(mktemp -d "${TMPDIR:-/tmp}/theater-readme.XXXXXX")
fails=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A free loopback port: one a throw-away server was given by the kernel.
free_port() {
  local log=$tmp/port.$RANDOM p=""
  "$build/theater-server" --home "$tmp/probe" --listen 127.0.0.1:0 >/dev/null 2>"$log" &
  local pid=$!
  for _ in $(seq 1 600); do
    p=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$p" ] && break
    sleep 0.1
  done
  kill -TERM $pid; wait $pid 2>/dev/null
  rm -rf "$tmp/probe"
  echo "$p"
}
P1=$(free_port)
P2=$(free_port)
H1=$tmp/dot-theater
ID="" SHA="" KV="" SUP=""

sub() {
  local c=$1
  c=${c//localhost:8080/127.0.0.1:$P1}
  c=${c//localhost:8081/127.0.0.1:$P2}
  c=${c//127.0.0.1:8081/127.0.0.1:$P2}
  c=${c//\~\/.theater/$H1}
  c=${c//\/tmp\/theater-counter/$tmp/counter-home}
  c=${c//\"\$PWD\/build\//\"$build\/}
  c=${c//.\/build\//$build\/}
  c=${c//@build\//@$build\/}
  c=${c//cp build\//cp $build\/}
  c=${c/#build\/tools\//$build\/tools\/}
  c=${c// build\/examples\// $build\/examples\/}
  c=${c//@manifest.toml/@$tmp/manifest.toml}
  c=${c//<kv id>/$KV}
  c=${c//<supervisor id>/$SUP}
  c=${c//<id>/$ID}
  c=${c//<sha256>/$SHA}
  printf '%s' "$c"
}

# step EXPECT COMMAND: COMMAND's lines must be in README.md; run it (in the
# source folder), its output must contain EXPECT. OUT holds the output.
OUT=""
step() {
  local expect=$1 cmd=$2 line
  while IFS= read -r line; do
    grep -qF -- "$line" "$readme" || bad "README.md no longer has: $line"
  done <<<"$cmd"
  local run rc=0
  run=$(sub "$cmd")
  if [[ "$run" == *'&' ]]; then   # a server in the background: its output to a file
    pushd "$src" >/dev/null
    eval "${run%&} >'$tmp/bg.log' 2>&1 &"
    pids+=($!)
    popd >/dev/null
    OUT=""
  else
    OUT=$(cd "$src" && eval "$run" 2>&1)
    rc=$?
  fi
  if [ $rc -ne 0 ]; then bad "exit $rc: $cmd"$'\n'"$OUT"
  elif [[ "$OUT" != *"$expect"* ]]; then bad "$cmd"$'\n'"  expected: $expect"$'\n'"  got: ${OUT:0:600}"
  else ok "${cmd%%$'\n'*}"; fi
}
# A live stream: run for 3 s; it must have sent EXPECT.
stream() {
  local expect=$1 cmd=$2
  grep -qF -- "$cmd" "$readme" || bad "README.md no longer has: $cmd"
  OUT=$(cd "$src" && ID=$ID timeout 3 bash -c "$(sub "$cmd")" 2>&1)
  [[ "$OUT" == *"$expect"* ]] && ok "$cmd" || bad "$cmd"$'\n'"  expected: $expect"$'\n'"  got: ${OUT:0:400}"
}
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$OUT" | head -n 1; }

# ---- `make run`'s server (the README's sessions assume it): scripts/demo.sh,
# which copies the examples into its package root and spawns the counter.
THEATER_HOME=$H1 THEATER_LISTEN=127.0.0.1:$P1 bash "$src/scripts/demo.sh" "$build" >"$tmp/demo.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do grep -q "Press Ctrl-C" "$tmp/demo.out" && break; sleep 0.1; done
grep -q "Press Ctrl-C" "$tmp/demo.out" || { cat "$tmp/demo.out"; echo "FAIL: make run's server did not start"; exit 1; }

echo "== A first session with curl"
step "" 'cp build/examples/hello/hello.wasm ~/.theater/packages/'
step '"status":"running"' "curl -s -X POST 'localhost:8080/actors?wait=running' -H 'Content-Type: application/json' \\
  -d '{\"manifest\": {\"name\": \"hello\", \"package\": \"hello.wasm\", \"initial_state\": {\"n\": 1}}}'"
ID=$(json_field id)
step '"items":[' 'curl -s localhost:8080/actors                                # list (filters: status, name, parent; limit + cursor)'
step "\"id\":\"$ID\"" 'curl -s localhost:8080/actors/<id>                           # one run (ETag; 304 on If-None-Match)'
stream 'event: chain' "curl -N -H 'Accept: text/event-stream' localhost:8080/actors/<id>/chain   # replay + live"
step '"event_type":"spawned"' 'curl -s localhost:8080/actors/<id>/chain                     # the same as a JSON page (?after=&limit=)'
step '"valid":true,"length":3,' 'curl -s localhost:8080/actors/<id>/chain/verify              # {"valid": true, "length": 3, "head": "..."}'
step "" 'curl -s -X POST localhost:8080/actors/<id>/stop              # 204 (304 if it had already ended)'
step "" 'curl -s -X DELETE localhost:8080/actors/<id>                 # 204; the chain file is kept'
step '"reference":"store://demo/hash/' 'curl -s -X POST --data-binary @build/examples/hello/hello.wasm localhost:8080/store/demo   # {"reference": "store://demo/hash/<sha256>", ...}'
SHA=$(json_field sha256)
step "" "curl -s -X PUT -d '{\"hash\": \"<sha256>\"}' localhost:8080/store/demo/labels/latest"
step '"status":"running"' "curl -s -X POST 'localhost:8080/actors?wait=running' -d '{\"manifest\": {\"name\": \"s\", \"package\": \"store://demo/latest\"}}'"
step "\"sha256\":\"$SHA\"" 'curl -s localhost:8080/store/demo                            # its objects: sha256, size (GET /store lists the stores)'
step '"label":"latest"' 'curl -s localhost:8080/store/demo/labels                     # its labels and the hashes they point at'
step '"cache":{' 'curl -s localhost:8080/packages                              # the package cache'
stream 'event: lifecycle' "curl -N -H 'Accept: text/event-stream' localhost:8080/events # lifecycle events of all actors"

echo "== Actors at work (the demo's counter)"
ID=$(curl -s "127.0.0.1:$P1/actors?name=counter&status=running" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -n 1)
step '"status":"accepted"' "curl -s -X POST localhost:8080/actors/<id>/messages -d '5'            # 202: queued and recorded"
step '10' "curl -s -X POST 'localhost:8080/actors/<id>/requests?timeout=5' -d 'get'   # 200 with the response"
step '"count":10' 'curl -s localhost:8080/actors/<id>/state                              # the state it holds now'
step '"calls":' 'curl -s localhost:8080/actors/<id>/metrics                            # calls, failures, fuel, time, memory, mailbox'
step '"status":"running"' 'curl -s -X POST localhost:8080/actors/<id>/restart                    # same package digest, last good state (?state=initial: init again)'

echo "== Operating it"
step 'theater_actors{status="running"}' 'curl -s localhost:8080/metrics                               # Prometheus text: actors by status, spawns, failures, restarts, HTTP and fsync latency, ...'
step '"event_type":"wasm"' "curl -s 'localhost:8080/actors/<id>/chain?type=wasm'         # only the export calls (repeat type, or a,b)"
[[ "$OUT" != *'"event_type":"spawned"'* ]] && ok "and only them" || bad "?type=wasm kept other events"
step '"demo"' 'curl -s localhost:8080/store                                 # the content stores'

echo "== Durable actors"
step '"status":"running"' 'curl -s -X POST localhost:8080/actors/<id>/restart                   # same state, new instance'
step '"status":"running"' "curl -s -X POST 'localhost:8080/actors/<id>/restart?state=initial'   # init afresh"
step '"count":0' 'curl -s localhost:8080/actors/<id>/state                             # also for ended runs'
step '"status":"accepted"' "curl -s -X POST localhost:8080/actors/<id>/messages -H 'Idempotency-Key: order-17' -d 5"
first=$OUT
step '"status":"accepted"' "curl -s -X POST localhost:8080/actors/<id>/messages -H 'Idempotency-Key: order-17' -d 5"
[ "$OUT" = "$first" ] && ok "the retry got the first answer" || bad "the retry's answer differs: $first / $OUT"
sleep 1
[ "$(curl -s -X POST "127.0.0.1:$P1/actors/$ID/requests" -d get)" = 5 ] && ok "and the message counted once" ||
  bad "the idempotent message was not counted exactly once"

echo "== TOML manifests"
step '"status":"running"' "curl -s -X POST 'localhost:8080/actors?wait=running' -H 'Content-Type: application/toml' \\
  --data-binary @examples/hello/manifest.toml"
step '"name":"counter"' "curl -s -X POST localhost:8080/actors -d '{\"manifest_ref\": \"counter/manifest.toml\"}'"
printf 'name = "x"\npackage = "x.wasm"\n[[handler]]\ntype = "runtime"\n\n[[handler]]\ntpye = "timing"\n' >"$tmp/manifest.toml"
step '"code":"unknown_key","path":"handler[1].tpye"' "curl -s -X POST localhost:8080/manifests/validate -H 'Content-Type: application/toml' \\
  --data-binary @manifest.toml   # {\"valid\": false, \"problems\": [{\"code\": \"missing_field\", \"path\": \"handler[1].type\", ...}, {\"code\": \"unknown_key\", \"path\": \"handler[1].tpye\", \"line\": 7, ...}]}"
[[ "$OUT" == *'"path":"handler[1].tpye","message":"unknown key '"'"'tpye'"'"' in manifest handler[1] (did you mean '"'"'type'"'"'?)","line":7,'* ]] &&
  ok "with its line, 7" || bad "the unknown key is not reported at line 7: $OUT"
step '"name":"counter"' 'curl -s localhost:8080/actors/<id>/manifest                  # the manifest it runs, as JSON'

echo "== theater-wasm actor"
step 'response: 12' 'build/tools/theater-wasm/theater-wasm actor build/examples/counter/counter.wasm \
  --manifest examples/counter/manifest.toml --send 5 --send 7 --request get   # response: 12'

echo "== A full session with the counter (a second server)"
step "" './build/theater-server --home /tmp/theater-counter --listen 127.0.0.1:8081 \
  --package-root "$PWD/build/examples" &'
for _ in $(seq 1 600); do curl -fsS -o /dev/null "127.0.0.1:$P2/health" 2>/dev/null && break; sleep 0.1; done
step "" "ID=\$(curl -s -X POST 'localhost:8081/actors?wait=running' \\
  -d '{\"manifest_ref\": \"counter/manifest.json\"}' | grep -o '\"id\":\"[^\"]*\"' | cut -d'\"' -f4)"
ID=$(cd "$src" && eval "$(sub "curl -s -X POST 'localhost:8081/actors?wait=running' -d '{\"manifest_ref\": \"counter/manifest.json\"}'")" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$ID" ] && ok "the counter runs: $ID" || bad "no counter id"
stream 'event: chain' "curl -N -H 'Accept: text/event-stream' localhost:8081/actors/\$ID/chain"
step '{"status":"accepted","size":1}' 'curl -s -X POST localhost:8081/actors/$ID/messages -d 5     # send: 202 {"status":"accepted","size":1}'
step '"status":"accepted"' 'curl -s -X POST localhost:8081/actors/$ID/messages -d 2'
step '7' 'curl -s -X POST localhost:8081/actors/$ID/requests -d get   # request: 200, 7'
step '"code":"actor_error"' 'curl -s -X POST localhost:8081/actors/$ID/requests -d nope  # 422 {"code":"actor_error",...}'
step '{"count":7}' 'curl -s localhost:8081/actors/$ID/state                     # {"count":7}'
step '"mailbox":' 'curl -s localhost:8081/actors/$ID/metrics                   # calls, failures, fuel, mailbox, ...'
step '"valid":true,"length":12,' 'curl -s localhost:8081/actors/$ID/chain/verify              # {"valid":true,"length":12,...}'
step '' 'curl -s -X POST localhost:8081/actors/$ID/stop              # 204; the stream shows `stopped` and ends'

echo "== The other examples"
step '"status":"running"' "curl -s -X POST 'localhost:8081/actors?wait=running' -d '{\"manifest_ref\": \"kv/manifest.toml\"}'"
KV=$(json_field id)
step '' "curl -s -X POST localhost:8081/actors/<kv id>/requests -d '{\"op\": \"put\", \"key\": \"greeting\", \"value\": \"hello\"}'"
step 'hello' "curl -s -X POST localhost:8081/actors/<kv id>/requests -d '{\"op\": \"get\", \"key\": \"greeting\"}'"
step '"status":"running"' "curl -s -X POST 'localhost:8081/actors?wait=running' -d '{\"manifest_ref\": \"supervisor/manifest.json\"}'"
SUP=$(json_field id)
step '' "curl -s -X POST localhost:8081/actors/<supervisor id>/requests -d '{\"op\": \"list\"}'"
step '' "curl -s -X POST localhost:8081/actors/<supervisor id>/requests -d '{\"op\": \"restart\", \"index\": 0}'"

[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
