#!/usr/bin/env bash
# Fuzzes with libFuzzer under ASan+UBSan for SECONDS (default 180) one target:
#   wasm   the engine's load path (decode, validate, instantiate, call) [default]
#   http   the HTTP request layer (server/), raw bytes over a socket
#   chain  the chain reader (src/chain.c) over a chain file
#   manifest  the TOML parser and the manifest checker over a document
#   resolve   the package sandbox: references joined and loaded from a root
#   tests/fuzz/run.sh [SECONDS] [TARGET]
# http, chain and resolve are seeded with their regressions-<target>/ folder; manifest
# with its folder, the examples' manifests, the reference's manifests
# ($THEATER_UPSTREAM, default ../shared/theater-upstream) and the valid
# documents of toml-test ($THEATER_TOML_TEST, default ../shared/toml-test).
# Builds tests/fuzz/fuzz_wasm with clang in $FUZZ_BUILD (default build-fuzz),
# seeds the corpus with every binary module of the spec suite (wast2json of
# $THEATER_WASM_TESTSUITE, default ../shared/wasm-testsuite) and keeps the
# corpus there between runs. $FUZZ_CFLAGS adds compiler flags (for example
# -fno-sanitize=pointer-overflow to look past a known finding). Crashers land
# in $FUZZ_BUILD/fuzz/artifacts; once one is fixed, copy it into
# tests/fuzz/regressions/. Exits 1 if one was found.
set -euo pipefail

secs=${1:-180}
target=${2:-wasm}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
suite=${THEATER_WASM_TESTSUITE:-$root/../shared/wasm-testsuite}
work=$build/fuzz
[ "$target" = wasm ] || work=$build/fuzz-$target
case $target in wasm|http|chain|manifest|resolve) ;; *) echo "fuzz: unknown target '$target'"; exit 2;; esac
mkdir -p "$work/corpus" "$work/artifacts"

echo "fuzz: building fuzz_$target in $build"
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTHEATER_SANITIZE=OFF -DTHEATER_FUZZ=ON \
  -DCMAKE_C_FLAGS="$san -fno-omit-frame-pointer ${FUZZ_CFLAGS:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >"$work/cmake.log" 2>&1 ||
  { tail -30 "$work/cmake.log"; exit 2; }
cmake --build "$build" -j2 --target "fuzz_$target" >>"$work/cmake.log" 2>&1 ||
  { tail -30 "$work/cmake.log"; exit 2; }

seeds=$work/seeds
case $target in http|chain|resolve) seeds=$root/tests/fuzz/regressions-$target ;; esac
if [ "$target" = manifest ] && [ ! -d "$seeds" ]; then
  upstream=${THEATER_UPSTREAM:-$root/../shared/theater-upstream}
  tomltest=${THEATER_TOML_TEST:-$root/../shared/toml-test}
  mkdir -p "$seeds"
  cp "$root"/tests/fuzz/regressions-manifest/* "$seeds/"
  for f in "$root"/examples/*/manifest.*; do
    cp "$f" "$seeds/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  [ -d "$upstream/manifests" ] && cp "$upstream"/manifests/* "$seeds/"
  if [ -d "$tomltest/valid" ]; then
    find "$tomltest/valid" -name '*.toml' -size -65k |
      while read -r f; do cp "$f" "$seeds/toml-test-$(echo "${f#$tomltest/valid/}" | tr / -)"; done
  fi
  echo "fuzz: $(ls "$seeds" | wc -l) seed documents"
fi
if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
  [ -d "$suite" ] || { echo "fuzz: no spec suite at $suite (set THEATER_WASM_TESTSUITE)"; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$seeds"
  for w in "$suite"/*.wast; do
    name=$(basename "$w" .wast)
    wast2json "$w" -o "$tmp/$name.json" 2>/dev/null || true
  done
  # Binary modules only (text ones of assert_malformed are .wat), capped
  # at 64 KiB like -max_len.
  find "$tmp" -name '*.wasm' -size -65k -exec cp {} "$seeds/" \;
  echo "fuzz: $(ls "$seeds" | wc -l) seed modules from $suite"
fi

echo "fuzz: running for ${secs}s"
set +e
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$build/tests/fuzz/fuzz_$target" -max_total_time="$secs" -timeout=10 \
  -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$work/last-run.log" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  tail -60 "$work/last-run.log"
else
  grep -E '^(stat::|Done|INFO: (seed|-max_len))' "$work/last-run.log" || true
fi

found=$(find "$work/artifacts" -type f | wc -l)
if [ "$found" -gt 0 ]; then
  echo "fuzz: $found finding(s) in $work/artifacts:"
  ls -la "$work/artifacts"
  echo "fuzz: reproduce with: $build/tests/fuzz/fuzz_$target FILE"
  exit 1
fi
echo "fuzz: no findings (corpus: $(ls "$work/corpus" | wc -l) files, log: $work/last-run.log)"
exit 0
