#!/usr/bin/env bash
# `make bench`: runs every benchmark and prints its figures. Record them, with the
# machine and the date, in docs/benchmarks.md.
#   bench/run.sh [BUILD_DIR]
# Each bench/NAME/run.sh runs under a "== bench/NAME ==" heading; one that fails adds
# "== bench/NAME failed (exit N) ==" and this script exits 1. Tunables: BENCH_SPAWNS
# (2000: the spawns through the API from 1 client here, twice as many from 4), and
# each script's own BENCH_* (bench/NAME/run.sh says which).
# Not the only benchmarks: bench/scale, bench/recovery, bench/cluster,
# bench/http/cpu.sh, bench/http/list.sh, bench/stream/timers-recover.sh and
# bench/fsync/churn.sh run on their own. tests/ops/bench_smoke.sh (ctest bench_smoke, `make test-long`) runs
# every one of them with small sizes and checks their lines, so none rots unseen.
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
bench_server=$build/theater-server
bench_machine_line cores cpu day
spawns=${BENCH_SPAWNS:-2000}
status=0

bench_home theater-bench "$build/examples/hello/hello.wasm"
trap bench_cleanup EXIT
bench_server_start --log-level warn
echo "== spawn through the API (theater-server at $base; bench/spawn below adds the bare ceiling) =="
"$build/bench/spawn/bench-spawn" "$base" hello.wasm "$spawns" 1 || status=1
"$build/bench/spawn/bench-spawn" "$base" hello.wasm "$((spawns * 2))" 4 || status=1
id=$(bench_actor '{"name":"get-bench","package":"hello.wasm"}')
bench_server_stop

for b in http chain wasm toml actors park stream fanout commit spawn; do
  [ -x "$here/bench/$b/run.sh" ] || continue
  echo "== bench/$b =="
  rc=0
  if [ "$b" = http ]; then
    # GET /actors/{id} against a fresh server with the same data, beside the ceiling
    bench_server_start --log-level warn
    bash "$here/bench/http/run.sh" "$build" "$base/actors/$id" || rc=$?
    bench_server_stop
  else
    bash "$here/bench/$b/run.sh" "$build" || rc=$?
  fi
  [ $rc -eq 0 ] || { echo "== bench/$b failed (exit $rc) =="; status=1; }
done
exit $status
