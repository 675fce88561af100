#!/bin/sh
# Builds __NAME__.wasm with cargo for wasm32-unknown-unknown, offline.
# THEATER_SDK: the sdk/ folder of theater. Debian's cargo and rustc are used
# when present (/usr/bin): a rustup toolchain may lack the wasm32 target.
set -eu
: "${THEATER_SDK:?set THEATER_SDK to the sdk/ folder of a theater checkout}"
THEATER_SDK=$(cd "$THEATER_SDK" && pwd)
cd "$(dirname "$0")"
ln -sfn "$THEATER_SDK" .theater-sdk
if [ -z "${CARGO:-}" ] && [ -x /usr/bin/cargo ]; then CARGO=/usr/bin/cargo; fi
if [ -z "${RUSTC:-}" ] && [ -x /usr/bin/rustc ]; then export RUSTC=/usr/bin/rustc; fi
"${CARGO:-cargo}" build --release --offline --target wasm32-unknown-unknown
crate=$(echo "__NAME__" | tr - _)
cp "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/$crate.wasm" __NAME__.wasm
echo "built $(pwd)/__NAME__.wasm"
