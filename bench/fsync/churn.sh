#!/usr/bin/env bash
# bench/fsync/churn.sh [BUILD_DIR] - what a file creation costs on the file system of
# the benchmarks' homes (/var/tmp), fresh and after many deletes: every spawn's chain
# is a new file (made ahead by the spare pool, on the same cores). On ext4 without a
# journal the kernel checks each recently freed inode before it reuses one, and the
# second figure is many times the first (docs/operations.md); the machine line says
# which file system it is. Tunable: BENCH_FILES (20000).
set -uo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_dirs "${1:-}"
BIN=$BUILD/bench/fsync/bench-create
bench_have "$BIN" || bench_build bench-create || exit 1
dir=$(mktemp -d "$(bench_tmp)/theater-bench-create.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
home=$dir bench_machine_line cores minute fs
"$BIN" "$dir" "${BENCH_FILES:-20000}"
