#!/usr/bin/env bash
# `make run`: starts theater-server in the foreground with a demo actor.
# Data goes to THEATER_HOME (default $HOME/.theater); the example actors are
# copied into its package root. Ctrl-C stops the server cleanly.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
home=${THEATER_HOME:-$HOME/.theater}
listen=${THEATER_LISTEN:-127.0.0.1:8080}
base="http://$listen"
mkdir -p "$home/packages"
# every example: <name>/<name>.wasm with its manifests, plus hello at the top
for dir in "$here/$build"/examples/*/; do
  name=$(basename "$dir")
  [ -f "$dir/$name.wasm" ] || continue
  mkdir -p "$home/packages/$name"
  cp "$dir"/*.wasm "$home/packages/$name/"
  cp "$here/examples/$name"/manifest.* "$home/packages/$name/" 2>/dev/null || true
done
cp "$here/$build/examples/hello/hello.wasm" "$home/packages/hello.wasm"
cp "$here/examples/hello/manifest.json" "$home/packages/hello.json"

THEATER_HOME="$home" "$here/$build/theater-server" --listen "$listen" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "theater-server exited; see the log above" >&2; exit 1; }
  sleep 0.1
done
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
wait $pid
