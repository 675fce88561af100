#!/bin/sh
# Builds __NAME__.wasm from actor.c with clang's wasm32 target (no libc: the
# actor ABI's imports are all it has). THEATER_SDK: the sdk/ folder of theater.
set -eu
: "${THEATER_SDK:?set THEATER_SDK to the sdk/ folder of a theater checkout}"
THEATER_SDK=$(cd "$THEATER_SDK" && pwd)
cd "$(dirname "$0")"
CC=${CC:-clang}
"$CC" --target=wasm32 -std=c17 -O2 -nostdlib -ffreestanding -fno-builtin \
  -I"$THEATER_SDK/include" -fuse-ld=lld \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--stack-first -Wl,-z,stack-size=16384 \
  -o __NAME__.wasm actor.c
echo "built $(pwd)/__NAME__.wasm"
