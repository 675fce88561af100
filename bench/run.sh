#!/usr/bin/env bash
# `make bench`: runs every benchmark and prints its figures. Record them, with the
# machine and the date, in docs/benchmarks.md.
#   bench/run.sh [BUILD_DIR]
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
bench_server=$build/theater-server
bench_machine_line cores cpu day
status=0

bench_home theater-bench "$build/examples/hello/hello.wasm"
trap bench_cleanup EXIT
bench_server_start --log-level warn
echo "== spawn through the API (theater-server at $base; bench/spawn below adds the bare ceiling) =="
"$build/bench/spawn/bench-spawn" "$base" hello.wasm 2000 1 || status=1
"$build/bench/spawn/bench-spawn" "$base" hello.wasm 4000 4 || status=1
id=$(bench_actor '{"name":"get-bench","package":"hello.wasm"}')
bench_server_stop

for b in http chain wasm toml actors park stream fanout commit spawn; do
  [ -x "$here/bench/$b/run.sh" ] || continue
  echo "== bench/$b =="
  if [ "$b" = http ]; then
    # GET /actors/{id} against a fresh server with the same data, beside the ceiling
    bench_server_start --log-level warn
    bash "$here/bench/http/run.sh" "$build" "$base/actors/$id" || status=1
    bench_server_stop
  else
    bash "$here/bench/$b/run.sh" "$build" || status=1
  fi
done
exit $status
