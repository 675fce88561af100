#!/usr/bin/env bash
# run.sh - the API contract: openapi/openapi.yaml is valid OpenAPI, and the live
# server answers what it says.
#   tests/openapi/run.sh <build dir>
# 1. `redocly lint` (@redocly/cli, pinned in package-lock.json; 1.34.5 runs on
#    Debian 12's Node.js 18) with tests/openapi/redocly.yaml: a YAML or OpenAPI
#    error, or any warning of the strict recommended rules, fails the test.
# 2. check_live.mjs starts the build's theater-server and calls every operation
#    (and error cases); each answer's status must be documented for that
#    operation and its JSON body must match the documented schema.
# Installs what is missing (Node.js and npm with apt as root; the npm packages
# with `npm ci` into <build dir>/tests/openapi-deps, never into the source tree).
# Fails loudly when it cannot install them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
src=$(cd "$here/../.." && pwd)
deps="$build/tests/openapi-deps"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: FAIL: node and npm are needed and this user cannot install them" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -f "$deps/node_modules/@redocly/cli/package.json" ] ||
   ! cmp -s "$here/package-lock.json" "$deps/package-lock.json"; then
  echo "run.sh: installing @redocly/cli and js-yaml into $deps"
  mkdir -p "$deps"
  cp "$here/package.json" "$here/package-lock.json" "$deps/"
  (cd "$deps" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== redocly lint openapi/openapi.yaml"
(cd "$here" && NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$deps/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" \
  --format stylish "$src/openapi/openapi.yaml")

echo "== live answers against the contract"
exec node "$here/check_live.mjs" "$src" "$build" "$deps"
