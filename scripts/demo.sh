#!/usr/bin/env bash
# `make run`: starts theater-server in the foreground with a demo actor.
# Data goes to THEATER_HOME (default $HOME/.theater); the example package is
# copied into its package root. Ctrl-C stops the server cleanly.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
home=${THEATER_HOME:-$HOME/.theater}
listen=${THEATER_LISTEN:-127.0.0.1:8080}
base="http://$listen"
mkdir -p "$home/packages"
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
echo "== spawning the demo actor (examples/hello) =="
curl -sS -X POST "$base/actors?wait=running" -H 'Content-Type: application/json' \
  --data '{"manifest_ref": "hello.json"}'
echo
cat <<MSG

theater is running at $base (data in $home). Try:
  curl -s $base/actors | jq .                      # runs
  curl -N -H 'Accept: text/event-stream' $base/events   # lifecycle stream
  curl -s -X POST $base/actors?wait=running -d '{"manifest_ref":"hello.json"}'
Press Ctrl-C to stop.
MSG
wait $pid
