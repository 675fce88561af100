#!/usr/bin/env bash
# run.sh - the dashboard's end-to-end tests in Debian's headless Chromium.
#   tests/dashboard/run.sh <build dir>
# Installs what is missing: chromium, and Node.js with npm (apt, as root), and
# playwright-core at the version pinned in package-lock.json (npm ci) into
# <build dir>/tests/dashboard-deps, never into the source tree. The pin, 1.61.1,
# is the last release that runs on Debian 12's Node.js 18 (1.62 and later exit
# with "Playwright requires Node.js 20 or higher"). Then runs
# dashboard.test.mjs and ops.test.mjs (helpers.mjs has what they share) with node's
# test runner against the build's theater-server.
# `run.sh <build dir> --screenshot` runs screenshot.mjs instead, which writes
# docs/dashboard.png and docs/dashboard-server.png. Exits 77 (skipped) only when
# chromium, node or npm is missing and this user cannot install them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
deps="$build/tests/dashboard-deps"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh: ${missing[*]} missing and not root: skipping the dashboard tests" >&2
    exit 77
  fi
  echo "run.sh: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then   # Debian's nodejs comes without npm
  [ "$(id -u)" -eq 0 ] || { echo "run.sh: npm missing and not root: skipping" >&2; exit 77; }
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "run.sh: FAIL: node $(node --version) is too old; playwright-core needs Node.js 18 or later" >&2
  exit 1
fi

if [ ! -f "$deps/node_modules/playwright-core/package.json" ] ||
   ! cmp -s "$here/package-lock.json" "$deps/package-lock.json"; then
  echo "run.sh: installing playwright-core into $deps"
  mkdir -p "$deps"
  cp "$here/package.json" "$here/package-lock.json" "$deps/"
  (cd "$deps" && npm ci --no-audit --no-fund --loglevel=error)
fi

export DASH_DEPS="$deps" THEATER_BINARY_DIR="$build"
export THEATER_SOURCE_DIR="${THEATER_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
cd "$build"
if [ "${2:-}" = "--screenshot" ]; then
  exec node "$here/screenshot.mjs"
fi
# One file at a time (each starts its own servers and browsers; the machine is small).
# DASH_TESTS="ops" runs only tests/dashboard/ops.test.mjs.
rc=0
for t in ${DASH_TESTS:-dashboard ops}; do
  node --test --test-reporter=spec "$here/$t.test.mjs" || rc=1
done
exit $rc
