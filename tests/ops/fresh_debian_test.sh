#!/usr/bin/env bash
# fresh_debian_test.sh SOURCE_DIR - the README's two commands on a fresh Debian 12.
#
# Makes a Debian 12 (bookworm) minbase root with debootstrap, from the mirror
# apt is configured with here (/etc/apt/sources.list*), adds only what the
# README assumes a machine has (build-essential, cmake, git, curl,
# ca-certificates), copies the checkout (and the test data beside it,
# ../shared/wasm-testsuite, toml-test and theater-upstream, when present) into it, and
# runs, chrooted as root with /proc, /sys and /dev mounted:
#   make run    until the demo answers, then Ctrl-C (SIGINT to its process
#               group): it must stop cleanly, without a make error
#   make test   the whole default suite: it must pass (exit 0)
# Everything `make test` installs (Node.js, npm packages, Chromium, promtool)
# is installed inside the root, as on a fresh machine. The root is kept in
# THEATER_FRESH_ROOT when set (reused when it already holds a Debian base),
# else made in a temporary folder and removed. Needs root, network access to
# the Debian mirror and the npm registry, and an hour or more: label `long`
# (`make test-long`, which sets THEATER_LONG=1). Exits 77 (skipped) when not
# root or without THEATER_LONG=1, so a plain `ctest` does not start it.
set -uo pipefail
src=$(cd "${1:?usage: fresh_debian_test.sh SOURCE_DIR}" && pwd)
[ "${THEATER_LONG:-}" = 1 ] || { echo "skipped: set THEATER_LONG=1 (make test-long does)"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "skipped: debootstrap and chroot need root"; exit 77; }

fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

root=${THEATER_FRESH_ROOT:-}
keep=1
if [ -z "$root" ]; then
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/theater-fresh-debian.XXXXXX")
  keep=0
fi
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null; done
  [ $keep = 1 ] || rm -rf --one-file-system "$root"
}
trap cleanup EXIT

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@"
}

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URI suite").
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
  awk '/^URIs:/ { print $2 } /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' |
  grep -E '/debian/?$' | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
echo "== mirror: $mirror; root: $root"

if ! command -v debootstrap >/dev/null; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt_install debootstrap >/dev/null || { echo "FAIL: cannot install debootstrap"; exit 1; }
fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
  echo "== debootstrap --variant=minbase bookworm (a few minutes)"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1; then
    tail -n 40 "$root.debootstrap.log"
    echo "FAIL: debootstrap failed"
    exit 1
  fi
fi
ok "a Debian 12 minbase root"

for m in proc sys dev dev/pts; do
  mkdir -p "$root/$m"
  case $m in
  proc) mount -t proc proc "$root/proc" ;;
  sys) mount -t sysfs sys "$root/sys" ;;
  *) mount --bind "/$m" "$root/$m" ;;
  esac || { echo "FAIL: cannot mount /$m in the root"; exit 1; }
  mounts+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The same mirror and the security suite, as on an installed system.
security=${mirror%/debian}/debian-security
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
  "$mirror" "$mirror" "$security" >"$root/etc/apt/sources.list"
# Certificate authorities this machine added to its trust store (a proxy's):
# the root reaches the network through the same proxy, so it gets them too,
# and Node.js (npm) is told to use the system store.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 bash -c "$1"; }

echo "== the README's machine: build-essential cmake git curl ca-certificates"
in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential cmake git curl ca-certificates >/dev/null' ||
  { echo "FAIL: cannot install the base tools in the root"; exit 1; }
ok "base tools installed"
in_root 'update-ca-certificates >/dev/null 2>&1' || true

echo "== the checkout (without build folders) into /root/w/theater"
rm -rf "$root/root/w"
mkdir -p "$root/root/w/theater"
tar -C "$src" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$root/root/w/theater" -xf -
mkdir -p "$root/root/w/shared"
for d in wasm-testsuite toml-test theater-upstream; do
  [ -d "$src/../shared/$d" ] && cp -a "$src/../shared/$d" "$root/root/w/shared/"
done

echo "== make run, then Ctrl-C"
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  setsid make -C /root/w/theater run >"$root/root/make-run.log" 2>&1 &
leader=$!
up=0
for _ in $(seq 1 36000); do   # the first build: up to an hour on a slow machine
  grep -q "Press Ctrl-C to stop" "$root/root/make-run.log" && { up=1; break; }
  kill -0 $leader 2>/dev/null || break
  sleep 0.1
done
if [ $up = 1 ]; then
  ok "make run started the demo"
  grep -q "request 'get' answers: 5" "$root/root/make-run.log" && ok "the demo answered 5" ||
    bad "the demo did not answer 5"
  kill -INT -- "-$leader" 2>/dev/null
  rc=0
  for _ in $(seq 1 600); do kill -0 $leader 2>/dev/null || break; sleep 0.1; done
  wait $leader || rc=$?
  grep -q "stopped cleanly" "$root/root/make-run.log" && ok "Ctrl-C stopped it cleanly" ||
    bad "no 'stopped cleanly' after Ctrl-C"
  grep -qE 'Error [0-9]+' "$root/root/make-run.log" && bad "make reported an error after Ctrl-C" ||
    ok "no make error after Ctrl-C"
else
  bad "make run did not start; the end of its log:"
  tail -n 60 "$root/root/make-run.log"
fi

echo "== make test (the whole default suite)"
rc=0
in_root 'cd /root/w/theater && make test' >"$root/root/make-test.log" 2>&1 || rc=$?
grep -E 'tests passed|tests failed|The following tests|Failed|\*\*\*' "$root/root/make-test.log" | tail -n 30
[ $rc -eq 0 ] && ok "make test passed in a fresh Debian 12" ||
  { bad "make test failed (exit $rc); the end of its log:"; tail -n 80 "$root/root/make-test.log"; }
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
