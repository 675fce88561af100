#!/bin/sh
# Builds __NAME__.wasm with asc (installed by npm ci at the version in
# package-lock.json). THEATER_SDK: the sdk/ folder of theater; the actor imports
# it as "theater-sdk" (node_modules/theater-sdk links to its assembly/ folder)
# and its transform gives the exports the ABI's names (handle-send, ...).
set -eu
: "${THEATER_SDK:?set THEATER_SDK to the sdk/ folder of a theater checkout}"
THEATER_SDK=$(cd "$THEATER_SDK" && pwd)
cd "$(dirname "$0")"
[ -x node_modules/.bin/asc ] || npm ci --no-audit --no-fund --loglevel=error
ln -sfn "$THEATER_SDK/assemblyscript/assembly" node_modules/theater-sdk
node node_modules/assemblyscript/bin/asc.js assembly/index.ts --config asconfig.json \
  --transform "$THEATER_SDK/assemblyscript/transform.mjs" -o __NAME__.wasm
echo "built $(pwd)/__NAME__.wasm"
