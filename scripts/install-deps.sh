#!/usr/bin/env bash
# Installs what theater needs to build, run and test on Debian 12. Idempotent:
# packages already present are not reinstalled, and apt is only asked when
# something is missing. Used by `make deps`, the README, CI and the Dockerfile.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only the runtime libraries
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git curl ca-certificates
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libssl-dev
  libcmocka-dev wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 libclang-rt-14-dev
  rustc cargo libstd-rust-dev-wasm32 librust-serde-dev librust-serde-json-dev
  libnats-dev nats-server python3)
# The AssemblyScript SDK's compiler runs on Node (npm installs it at build time);
# Debian's nodejs and npm, unless a node and npm are already on PATH (another
# packaging of Node conflicts with Debian's npm package).
node_pkgs=(nodejs npm)
runtime_pkgs=(libmicrohttpd12 libcurl4 libjansson4 libsqlite3-0 libssl3 ca-certificates libnats3.4)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--runtime" ] && pkgs=("${runtime_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" != "--runtime" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing+=("${node_pkgs[@]}")
fi
[ ${#missing[@]} -eq 0 ] && { echo "install-deps: all ${#pkgs[@]} packages present"; exit 0; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
