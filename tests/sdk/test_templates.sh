#!/usr/bin/env bash
# test_templates.sh - scaffolds each project template of sdk/templates/<lang>
# the way `theater new --lang <lang>` does (cp -r, then __NAME__ replaced in
# every file), builds it with its own build.sh against this checkout's sdk/,
# spawns it on a real theater-server (127.0.0.1, port 0, a temporary home) and
# checks that it counts: two messages, then the request "get" answers 2.
#   test_templates.sh SOURCE_DIR BINARY_DIR [lang...]
set -euo pipefail
src=$1 bin=$2
shift 2
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(c rust assemblyscript)

work=$(mktemp -d "${TMPDIR:-/tmp}/theater-templates.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.log" ] && tail -20 "$work/server.log" >&2; exit 1; }
. "$src/tests/support/server.sh"

export THEATER_SDK=$src/sdk
# the Rust template's crates are compiled once per build tree (a folder of their
# own: the build's may use other RUSTFLAGS, which would make cargo rebuild both)
export CARGO_TARGET_DIR=$bin/cargo-target-templates
# the AssemblyScript template's npm ci reads from the build's install when it can
export npm_config_cache=$bin/assemblyscript/npm-cache

mkdir -p "$work/packages"
for lang in "${langs[@]}"; do
  name="my-$lang-actor"
  dir="$work/packages/$name"
  cp -r "$src/sdk/templates/$lang" "$dir"
  grep -rl "__NAME__" "$dir" | while read -r f; do sed -i "s/__NAME__/$name/g" "$f"; done
  if grep -rq "__NAME__" "$dir"; then fail "$lang: __NAME__ left after substitution"; fi
  echo "== building the $lang template as $name"
  (cd "$dir" && ./build.sh) || fail "$lang: build.sh failed"
  [ -s "$dir/$name.wasm" ] || fail "$lang: no $name.wasm"
done

# a server over the scaffolded projects
start_server "$work" "$bin/theater-server" --listen 127.0.0.1:0 --home "$work/home" --workers 2 \
  --package-root "$work/packages"
base=http://127.0.0.1:$port

# curl METHOD PATH [BODY]: prints the body, then the status on its own line
call() {
  curl -sS --noproxy '*' -X "$1" "$base$2" ${3+--data-binary "$3"} -w '\n%{http_code}'
}

for lang in "${langs[@]}"; do
  name="my-$lang-actor"
  for manifest in manifest.json manifest.toml; do
    out=$(call POST "/actors?wait=running&timeout=60" "{\"manifest_ref\":\"$name/$manifest\",\"initial_state\":{\"count\":0}}")
    [ "$(tail -1 <<<"$out")" = 201 ] || fail "$lang: spawn of $manifest: $out"
    id=$(head -1 <<<"$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="running", d; print(d["id"])') \
      || fail "$lang: spawn of $manifest: $out"
    for _ in 1 2; do
      out=$(call POST "/actors/$id/messages" "hi")
      [ "$(tail -1 <<<"$out")" = 202 ] || fail "$lang: message: $out"
    done
    out=$(call POST "/actors/$id/requests" "get")
    [ "$(tail -1 <<<"$out")" = 200 ] || fail "$lang: request get: $out"
    [ "$(head -1 <<<"$out")" = 2 ] || fail "$lang: after two messages 'get' answered '$(head -1 <<<"$out")'"
    out=$(call POST "/actors/$id/requests" "nonsense")
    grep -q '"code":"actor_error"' <<<"$out" || fail "$lang: a bad request was not the actor's error: $out"
    echo "ok: $lang template ($manifest) spawned and counted"
  done
done
