#!/usr/bin/env bash
# blast_test.sh - tests/fuzz/blast_api.py against a real theater-server, as the
# CTest test fuzz_api_blast: a fixed seed, so a finding is reproducible with
#   tests/fuzz/blast_test.sh SOURCE_DIR BINARY_DIR [N] [SEED]
# The server (BINARY_DIR/theater-server, a temporary home, 127.0.0.1, port 0)
# gets N requests of each phase (api, manifest, abi, host; default 300) and
# must then still answer /health, stop cleanly on SIGTERM (exit 0), and have
# logged no sanitizer report (the server of an ASan+UBSan or TSan build runs
# with them; `make tsan` runs this test too).
set -euo pipefail
src=$1 bin=$2 n=${3:-300} seed=${4:-12}

command -v python3 >/dev/null || { echo "FAIL: python3 is missing (scripts/install-deps.sh installs it)"; exit 1; }
command -v wat2wasm >/dev/null || { echo "FAIL: wat2wasm is missing (wabt; scripts/install-deps.sh)"; exit 1; }
[ -f "$bin/examples/counter/counter.wasm" ] || { echo "FAIL: no $bin/examples/counter/counter.wasm (build the examples)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/theater-blast.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -30 "$work/server.log" >&2 || true; exit 1; }
. "$src/tests/support/server.sh"

mkdir -p "$work/packages/counter"
cp "$src/examples/counter/manifest.json" "$bin/examples/counter/counter.wasm" "$work/packages/counter/"
start_server "$work" "$bin/theater-server" --listen 127.0.0.1:0 --home "$work/home" \
  --package-root "$work/packages"

status=0
BLAST_PACKAGE_ROOT=$work/packages python3 "$src/tests/fuzz/blast_api.py" \
  "http://127.0.0.1:$port" "$n" "$seed" || status=$?
kill -0 "$server_pid" 2>/dev/null || fail "theater-server died during the blast"
[ "$status" -eq 0 ] || fail "blast_api.py reported findings (exit $status)"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" -eq 0 ] || fail "theater-server exited $rc after SIGTERM"
if grep -E "AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:" "$work/server.log" >/dev/null; then
  fail "sanitizer report in the server's log"
fi
echo "PASS: $n requests per phase (seed $seed), the server stopped cleanly"
