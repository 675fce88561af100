#!/usr/bin/env bash
# `make run`: starts theater-server in the foreground with a demo actor.
# Data goes to THEATER_HOME (default $HOME/.theater); the example actors are
# copied into its package root. Ctrl-C stops the server cleanly and exits 0.
# A listen address already in use (another `make run`, another server) is an
# error here: the demo is never spawned into a server this script did not start.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$here" && cd "${1:-build}" && pwd)   # relative to the checkout, or absolute
home=${THEATER_HOME:-$HOME/.theater}
listen=${THEATER_LISTEN:-127.0.0.1:8080}
base="http://$listen"
mkdir -p "$home/packages"
# every example: <name>/<name>.wasm with its manifests, plus hello at the top
for dir in "$build"/examples/*/; do
  name=$(basename "$dir")
  [ -f "$dir/$name.wasm" ] || continue
  mkdir -p "$home/packages/$name"
  cp "$dir"/*.wasm "$home/packages/$name/"
  cp "$here/examples/$name"/manifest.* "$home/packages/$name/" 2>/dev/null || true
done
cp "$build/examples/hello/hello.wasm" "$home/packages/hello.wasm"
cp "$here/examples/hello/manifest.json" "$home/packages/hello.json"

if curl -fsS -o /dev/null --max-time 2 "$base/health" 2>/dev/null; then
  echo "make run: $listen is already in use by another server; stop it, or pick another" \
    "address: THEATER_LISTEN=127.0.0.1:8081 make run" >&2
  exit 1
fi
THEATER_HOME="$home" "$build/theater-server" --listen "$listen" &
pid=$!
# Ctrl-C reaches the server too (same process group); it stops cleanly and this
# script exits with its status, 0, so make reports no error.
stop() {
  trap - INT TERM
  kill -TERM $pid 2>/dev/null || true
  local rc=0
  wait $pid || rc=$?
  exit $rc
}
trap stop INT TERM
up=0
for _ in $(seq 1 300); do
  # our server first: a dead one means the address was taken (or another error)
  kill -0 $pid 2>/dev/null || { echo "make run: theater-server exited; see its log above" >&2; exit 1; }
  curl -fsS -o /dev/null "$base/health" 2>/dev/null && { up=1; break; }
  sleep 0.1
done
[ $up = 1 ] || { echo "make run: theater-server did not answer on $base in 30 s" >&2; stop; }
echo
echo "== spawning the demo actor (examples/counter) =="
id=$(curl -sS -X POST "$base/actors?wait=running" -H 'Content-Type: application/json' \
  --data '{"manifest_ref": "counter/manifest.json"}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
echo "counter actor: $id"
curl -sS -X POST "$base/actors/$id/messages" -d 5 >/dev/null
echo "sent 5; request 'get' answers: $(curl -sS -X POST "$base/actors/$id/requests" -d get)"
cat <<MSG

theater is running at $base (data in $home).
  dashboard:   open $base/ in a browser
  the chain:   curl -N -H 'Accept: text/event-stream' $base/actors/$id/chain
  send:        curl -s -X POST $base/actors/$id/messages -d 2
  request:     curl -s -X POST $base/actors/$id/requests -d get
  all runs:    curl -s $base/actors
Press Ctrl-C to stop.
MSG
rc=0
wait $pid || rc=$?
exit $rc
