#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119,SC2120 # single quotes are meant; container takes optional ENV
# rootfs_test.sh CACHE_DIR STAGE_DIR - the closest we get to `docker build` +
# `docker run` without an engine. Run by hand (not in CTest: it downloads
# Debian's base system once, about 40 MB, and needs root and debootstrap):
#   bash tests/docker/rootfs_test.sh /var/tmp/theater-rootfs build/tests/docker/image/stage
# (STAGE_DIR is what docker/build.sh staged; the docker_image test leaves it
# there.)
# 1. a Debian 12 minbase root file system (debootstrap, cached in CACHE_DIR),
#    standing in for bookworm-slim;
# 2. the runtime stage of docker/Dockerfile: its RUN line, run as written in
#    the chroot, then the staged tree copied in (its COPY --from=build);
# 3. the container: the ENTRYPOINT as PID 1 of new PID, mount and network
#    namespaces (the network one has only its own loopback, so 0.0.0.0:8080
#    is reachable from nowhere else), as the USER, with the ENV of the
#    Dockerfile; then the checks: no token -> refused; the secret file ->
#    serves, the HEALTHCHECK command passes, the token is enforced, the
#    example actor runs, SIGTERM to PID 1 -> exit 0, the data is in /data;
#    a second start on the same /data finds the actor's chain valid.
set -uo pipefail
cache=$1
stage_dir=$(readlink -f "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

for tool in debootstrap unshare nsenter chroot curl; do
	if ! command -v "$tool" >/dev/null; then
		echo "skipped: needs $tool"
		exit 77
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root"
	exit 77
fi
[ -x "$stage_dir/usr/local/bin/theater-server" ] || {
	echo "no staged tree in '$stage_dir' (run docker/build.sh BUILD STAGE first)"
	exit 2
}

# The Dockerfile's runtime stage, logical lines (continuations joined).
awk 'toupper($1) == "FROM" { on = ($NF == "runtime") } on' "$src/docker/Dockerfile" |
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' >"$tmp/runtime"
run=$(sed -n 's/^RUN //p' "$tmp/runtime")
read -ra image_env <<<"$(sed -n 's/^ENV //p' "$tmp/runtime" | tr '\n' ' ')"
user=$(sed -n 's/^USER //p' "$tmp/runtime")
entrypoint=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)"\]$/\1/p' "$tmp/runtime")
health=$(sed -n 's/^HEALTHCHECK .*CMD \["\([^"]*\)", "\([^"]*\)"\]$/\1 \2/p' "$tmp/runtime")
check "the runtime stage has one RUN, ENV, USER, ENTRYPOINT, HEALTHCHECK" \
	test -n "$run" -a ${#image_env[@]} -gt 0 -a -n "$user" -a -n "$entrypoint" -a -n "$health"

mkdir -p "$cache"
if [ ! -s "$cache/bookworm-minbase.tar" ]; then
	echo "== debootstrap --variant=minbase bookworm (once; cached in $cache)"
	rm -rf "$cache/root"
	debootstrap --variant=minbase bookworm "$cache/root" http://deb.debian.org/debian \
		>"$cache/debootstrap.log" 2>&1 || {
		bad "debootstrap failed; see $cache/debootstrap.log"
		finish
		exit 1
	}
	rm -rf "$cache/root/var/cache/apt/archives"/*.deb
	tar -C "$cache/root" -cf "$cache/bookworm-minbase.tar" . && rm -rf "$cache/root"
fi
root=$tmp/root
mkdir "$root"
chmod 0755 "$tmp"
tar -C "$root" -xf "$cache/bookworm-minbase.tar"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$src/scripts/install-deps.sh" "$root/tmp/install-deps.sh"
chroot "$root" dpkg-query -W -f='${Package}\n' | sort >"$tmp/pkgs.before"
echo "== RUN $run"
if unshare --mount sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"' \
	sh "$root" "$run" >"$tmp/run.log" 2>&1; then
	ok "the runtime stage's RUN succeeds in Debian 12 minbase"
else
	bad "the runtime stage's RUN failed:"
	tail -n 30 "$tmp/run.log"
	finish
	exit 1
fi
cp -a "$stage_dir/." "$root/"
check "no apt lists or caches are left" \
	test -z "$(find "$root/var/lib/apt/lists" "$root/var/cache/apt" -type f ! -name lock)"
chroot "$root" dpkg-query -W -f='${Package}\n' | sort >"$tmp/pkgs.after"
mapfile -t added < <(comm -13 "$tmp/pkgs.before" "$tmp/pkgs.after")
echo "the RUN added ${#added[@]} packages, $(chroot "$root" dpkg-query -W \
	-f='${Installed-Size}\n' "${added[@]}" | awk '{ s += $1 } END { printf "%.1f", s / 1024 }') MiB:" \
	"${added[*]}; the staged tree is $(du -sh "$stage_dir" | cut -f1)"

# container ENV...: the ENTRYPOINT as PID 1 in new namespaces, as USER, with
# the image's ENV plus ENV...; stdout in $tmp/out, stderr in $tmp/err.
container() {
	start_bg "$tmp/out" "$tmp/err" unshare --net --pid --fork --kill-child --mount sh -c '
		root=$1 user=$2 entry=$3
		shift 3
		ip link set lo up 2>/dev/null || true
		mount -t proc proc "$root/proc"
		exec chroot --userspec="$user" --groups= "$root" env -i "$@" \
			sh -c "cd /data && exec $entry"' \
		sh "$root" "$user" "$entrypoint" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${image_env[@]}" "$@"
}

# in_container COMMAND...: COMMAND in the container's network namespace.
in_container() {
	nsenter --net="/proc/$init/ns/net" "$@"
}

# up NAME: waits for the server; sets $init (PID 1, seen from here).
up() {
	local i
	for ((i = 0; i < 600; i++)); do
		init=$(awk '{print $1}' "/proc/$bg_pid/task/$bg_pid/children" 2>/dev/null)
		if [ -n "$init" ] && grep -q 'listening on http://0.0.0.0:8080$' "$tmp/out"; then
			bg_pids+=("$init")
			ok "$1: listening on 0.0.0.0:8080 in its own network namespace"
			return 0
		fi
		kill -0 "$bg_pid" 2>/dev/null || break
		sleep 0.1
	done
	bad "$1: did not start"
	cat "$tmp/err"
	return 1
}

# down NAME: SIGTERM to PID 1 from outside; it must exit 0.
down() {
	kill -TERM "$init"
	local rc=0
	if wait_gone "$bg_pid"; then
		wait "$bg_pid" || rc=$?
	else
		rc=ignored
		kill -KILL "$init" "$bg_pid" 2>/dev/null
	fi
	check "$1: SIGTERM to PID 1: exit 0 (got $rc)" [ "$rc" = 0 ]
	check "$1: stopped cleanly" has "$tmp/err" "stopped cleanly"
}

container
rc=0
if wait_gone "$bg_pid"; then
	wait "$bg_pid" || rc=$?
else
	rc=running
fi
check "without a token the entrypoint exits 2 (got $rc)" [ "$rc" = 2 ]
check "and says why" has "$tmp/err" "refusing to start without a bearer token"

token=rootfs-test-token-0123456789abcdef
mkdir -p "$root/run/secrets"
printf '%s\n' "$token" >"$root/run/secrets/theater_token"
chmod 0644 "$root/run/secrets/theater_token"
auth=(-H "Authorization: Bearer $token")
base=http://127.0.0.1:8080
if container && up "first start"; then
	check "PID 1 is theater-server" grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$init/status"
	check "it runs as $user" grep -qE "^Uid:[[:space:]]+${user%%:*}[[:space:]]" "/proc/$init/status"
	# shellcheck disable=SC2086 # the HEALTHCHECK command is two words
	check "the HEALTHCHECK command passes" in_container chroot --userspec="$user" "$root" \
		env -i PATH=/usr/local/bin:/usr/bin:/bin "${image_env[@]}" $health
	check "the token is enforced" [ "$(in_container curl -s -o /dev/null -w '%{http_code}' "$base/actors")" = 401 ]
	in_container curl -s --max-time 30 "${auth[@]}" -X POST "$base/actors?wait=running" \
		-d '{"manifest_ref": "/usr/local/share/theater/examples/hello/manifest.json"}' \
		>"$tmp/spawn.json"
	check "the example actor runs" has "$tmp/spawn.json" '"status":"running"'
	id=$(sed -n 's/^{"id": *"\([0-9a-f-]*\)".*/\1/p' "$tmp/spawn.json")
	down "first start"
	check "the chain is in /data" test -s "$root/data/chains/$id.chain"
fi
if [ -n "${id:-}" ] && container && up "second start"; then
	in_container curl -s "${auth[@]}" "$base/actors/$id/chain/verify" >"$tmp/verify.json"
	check "the actor's chain is valid after the restart" has "$tmp/verify.json" '"valid":true'
	down "second start"
fi
finish
