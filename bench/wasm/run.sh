#!/usr/bin/env bash
# Engine benchmarks: C kernels run natively (gcc -O2) and as wasm32-wasi
# programs under theater-wasm (clang -O2), checksums compared, slowdowns and
# their geometric mean printed; then the in-process API figures.
#   bench/wasm/run.sh [BUILD_DIR]      (default: build)
# Builds theater-wasm and wasm-api-bench in BUILD_DIR (configuring it when
# needed) and the kernels in BUILD_DIR/bench-wasm. Targets are printed for
# the record, never asserted. Exits 1 if a checksum differs or a run fails.
# Times are CPU times (user + sys) of each run; BENCH_WASM_RUNS=N keeps the
# best of N wasm runs (default 1; native runs are always best of 3).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
kernels=(fib sieve matmul sha256 crc32 sort)
out=$build/bench-wasm
mkdir -p "$out"

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target theater-wasm wasm-api-bench >"$out/build.log" ||
  { tail -30 "$out/build.log"; exit 1; }
tool=$build/tools/theater-wasm/theater-wasm

sysroot=()
[ -d /usr/share/wasi-sysroot ] && sysroot=(--sysroot=/usr/share/wasi-sysroot)
for k in "${kernels[@]}"; do
  src=$root/bench/wasm/kernels/$k.c
  gcc -O2 -ffp-contract=off -o "$out/$k.native" "$src"
  clang --target=wasm32-wasi "${sysroot[@]}" -O2 -o "$out/$k.wasm" "$src"
done

# Runs "$@" and prints "<cpu us> <stdout>": user + sys CPU time of the
# child, which a busy machine disturbs far less than wall time. Fails if the
# command fails (its stderr is shown).
timed() {
  local TIMEFORMAT='%3U %3S' rc=0
  { time "$@" >"$out/stdout.txt" 2>"$out/stderr.txt"; } 2>"$out/time.txt" || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$out/stderr.txt" >&2
    return "$rc"
  fi
  echo "$(awk '{ printf "%d", ($1 + $2) * 1000000 }' "$out/time.txt")" "$(cat "$out/stdout.txt")"
}

failed=0
ratios=()
printf '%-8s %12s %12s %10s  %s\n' kernel "native ms" "wasm ms" slowdown checksum
echo "(CPU time, user + sys; native: best of 3, wasm: best of ${BENCH_WASM_RUNS:-1})"
for k in "${kernels[@]}"; do
  best=""
  for _ in 1 2 3; do
    read -r us text < <(timed "$out/$k.native")
    if [ -z "$best" ] || [ "$us" -lt "$best" ]; then best=$us; fi
    native_text=$text
  done
  wus=""
  for _ in $(seq "${BENCH_WASM_RUNS:-1}"); do
    if ! read -r us text < <(timed "$tool" run "$out/$k.wasm"); then
      wus=""
      break
    fi
    if [ -z "$wus" ] || [ "$us" -lt "$wus" ]; then wus=$us; fi
    wasm_text=$text
  done
  if [ -z "$wus" ]; then
    printf '%-8s %12.1f %12s %10s  %s\n' "$k" "$(awk -v v="$best" 'BEGIN{print v/1000}')" FAILED - -
    failed=1
    continue
  fi
  ratio=$(awk -v w="$wus" -v n="$best" 'BEGIN { printf "%.2f", w / n }')
  ratios+=("$ratio")
  check=ok
  if [ "$native_text" != "$wasm_text" ]; then
    check="MISMATCH: native '$native_text', wasm '$wasm_text'"
    failed=1
  fi
  printf '%-8s %12.1f %12.1f %9sx  %s\n' "$k" "$(awk -v v="$best" 'BEGIN{print v/1000}')" \
    "$(awk -v v="$wus" 'BEGIN{print v/1000}')" "$ratio" "$check"
done
if [ ${#ratios[@]} -gt 0 ]; then
  geo=$(printf '%s\n' "${ratios[@]}" | awk '{ s += log($1); n++ } END { printf "%.2f", exp(s / n) }')
  echo "geomean slowdown: ${geo}x over ${#ratios[@]} kernels (target <= 12x)"
fi

echo
echo "in-process API (wasm-api-bench):"
"$build/bench/wasm/wasm-api-bench" >"$out/api.txt"
val() { awk -v k="$1" '$1 == k { print $2 }' "$out/api.txt"; }
printf '  %-58s %9s us  (target < 20 us)\n' \
  "store + instantiate + call, tiny module already loaded" "$(val loaded_instantiate_call_us)"
printf '  %-58s %9s us\n' "store + instantiate + call, $(val big_module_bytes)-byte module loaded" \
  "$(val big_loaded_instantiate_call_us)"
printf '  %-58s %9s us\n' "decode + validate, $(val big_module_bytes)-byte module" \
  "$(val big_decode_validate_us)"
printf '  %-58s %9s us  (target < 200 us)\n' \
  "decode + validate + instantiate + call, $(val big_module_bytes) bytes" \
  "$(val big_decode_instantiate_call_us)"
printf '  %-58s %9s KiB (target < 128 KiB)\n' "idle 1-page instance: wasm_store_footprint" \
  "$(val idle_instance_footprint_kib)"
printf '  %-58s %9s KiB\n' "idle 1-page instance: RSS delta over 1000 instances, each" \
  "$(val idle_instance_rss_kib)"
printf '  %-58s %9s us\n' "host call answered at once" "$(val host_call_direct_us)"
printf '  %-58s %9s us\n' "host call parked and resumed (suspend + resume)" \
  "$(val host_call_park_resume_us)"
printf '  %-58s %9s KiB\n' "store holding a parked call: wasm_store_footprint" \
  "$(val parked_store_footprint_kib)"
printf '  %-58s %9s KiB\n' "store holding a parked call: RSS delta over 1000, each" \
  "$(val parked_store_rss_kib)"
printf '  %-58s %9s bytes\n' "module footprint: tiny ($(val tiny_module_bytes) bytes)" \
  "$(val tiny_module_footprint_bytes)"
printf '  %-58s %9s bytes\n' "module footprint: $(val big_module_bytes) bytes" \
  "$(val big_module_footprint_bytes)"
exit $failed
