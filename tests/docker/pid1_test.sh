#!/usr/bin/env bash
# pid1_test.sh SOURCE_DIR SERVER - the entrypoint the way a container runs it,
# as far as one can without a Docker engine: in a new PID namespace (so the
# server is PID 1 there, with its own /proc) as uid 10001, the image's user,
# reading the token from a Docker-secret file. `docker stop` sends SIGTERM to
# PID 1 from outside its namespace: the kernel delivers a signal to a
# namespace's init only if it handles or waits for it, so this checks that
# theater-server, as PID 1, still stops cleanly (exit 0). Also: as uid 10001,
# a THEATER_HOME it cannot write is refused with a hint.
# Needs root, unshare and setpriv (util-linux); exits 77 (skipped) otherwise.
set -uo pipefail
src=$1
server=$(readlink -f "$2")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

uid=10001
why=""
if [ "$(id -u)" -ne 0 ]; then why="not root"
elif ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then why="no unshare or setpriv (util-linux)"
elif ! unshare --pid --fork --mount-proc true 2>/dev/null; then why="unshare --pid --mount-proc fails here (no /proc, or no namespaces in this container)"
fi
if [ -n "$why" ]; then
	echo "skipped: needs root with unshare --pid and setpriv: $why"
	exit 77
fi
# The image's user must be able to reach the scratch folder, the entrypoint
# and the server: copies in the scratch folder, as the build tree may sit in a
# home folder uid 10001 cannot enter (/root on a fresh machine).
chmod 0755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/secrets" "$tmp/data"
install -m 0755 "$server" "$tmp/bin/theater-server"
install -m 0755 "$src/docker/entrypoint.sh" "$tmp/entrypoint.sh"
server=$tmp/bin/theater-server
token=pid1-test-token-0123456789
printf '%s\n' "$token" >"$tmp/secrets/theater_token"
chmod 0644 "$tmp/secrets/theater_token"
chown $uid:$uid "$tmp/data"
chmod 0700 "$tmp/data"

# container HOME_DIR ARGS...: the entrypoint as PID 1 of a new PID namespace,
# as uid 10001, in the image's environment.
container=(unshare --pid --fork --kill-child --mount-proc setpriv "--reuid=$uid" "--regid=$uid" --clear-groups
	env -i "${san_env[@]}" PATH="$tmp/bin:/usr/bin:/bin" THEATER_LISTEN=127.0.0.1:0
	THEATER_SECRETS_DIR="$tmp/secrets")

start_bg "$tmp/out" "$tmp/err" "${container[@]}" HOME="$tmp/data" THEATER_HOME="$tmp/data" \
	THEATER_PACKAGE_ROOTS="$tmp/data" sh "$tmp/entrypoint.sh"
outer=$bg_pid
if ! port=$(wait_port "$tmp/out" "$outer"); then
	bad "the entrypoint did not start the server"
	cat "$tmp/err"
	finish
	exit 1
fi
ok "started on 127.0.0.1:$port"
# The namespace's PID 1, seen from here: unshare's child.
init=$(awk '{print $1}' "/proc/$outer/task/$outer/children" 2>/dev/null)
bg_pids+=("$init")
check "PID 1 of its namespace is theater-server" \
	[ "$(readlink "/proc/$init/exe")" = "$server" ]
check "PID 1 of its namespace (NSpid ends in 1)" \
	grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$init/status"
check "it runs as uid $uid" grep -qE "^Uid:[[:space:]]+${uid}[[:space:]]" "/proc/$init/status"
check "the token from the secret is enforced" \
	[ "$(http_status "http://127.0.0.1:$port/actors")" = 401 ]
check "and accepted" [ "$(http_status "http://127.0.0.1:$port/actors" \
	-H "Authorization: Bearer $token")" = 200 ]
rc=0
setpriv --reuid=$uid --regid=$uid --clear-groups env -i "${san_env[@]}" THEATER_HOME="$tmp/data" \
	THEATER_PACKAGE_ROOTS="$tmp/data" THEATER_LISTEN="0.0.0.0:$port" \
	"$server" --health-check >"$tmp/hc" 2>&1 || rc=$?
check "the health check as uid $uid with THEATER_LISTEN=0.0.0.0:$port passes (exit $rc)" [ "$rc" -eq 0 ]

kill -TERM "$init"
if wait_gone "$outer"; then
	rc=0
	wait "$outer" || rc=$?
else
	rc=ignored
	kill -KILL "$init" "$outer" 2>/dev/null
fi
check "SIGTERM from outside the namespace: exit 0 (got $rc)" [ "$rc" = 0 ]
check "SIGTERM from outside the namespace: stopped cleanly" has "$tmp/err" "stopped cleanly"
check "the data folder holds the database" [ -s "$tmp/data/theater.db" ]

mkdir -m 0755 "$tmp/rootdata"
rc=0
timeout -k 5 60 "${container[@]}" HOME="$tmp/rootdata" THEATER_HOME="$tmp/rootdata" \
	THEATER_PACKAGE_ROOTS="$tmp/rootdata" sh "$src/docker/entrypoint.sh" \
	>"$tmp/r.out" 2>"$tmp/r.err" || rc=$?
check "a THEATER_HOME uid $uid cannot write is refused (exit $rc)" [ "$rc" -eq 2 ]
check "with a hint" has "$tmp/r.err" "is not writable by uid $uid"
finish
