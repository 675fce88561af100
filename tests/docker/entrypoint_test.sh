#!/usr/bin/env bash
# entrypoint_test.sh SOURCE_DIR SERVER EXAMPLES_BUILD_DIR - docker/entrypoint.sh
# as the image runs it (theater-server on PATH, THEATER_HOME a fresh folder),
# with THEATER_LISTEN=127.0.0.1:0 instead of the image's 0.0.0.0:8080:
#  - without a token it refuses to start (exit 2), says how to give one, and
#    creates nothing;
#  - with THEATER_TOKEN, with the Docker secret file, or with THEATER_TOKEN_FILE
#    it starts, the token is enforced, and the server is the process we started
#    (exec: it takes SIGTERM itself and exits 0);
#  - the data survives a restart on the same THEATER_HOME (the volume);
#  - --version and other commands need no token.
set -uo pipefail
src=$1
server=$2
examples=$3
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

entry=$src/docker/entrypoint.sh
mkdir -p "$tmp/bin" "$tmp/secrets" "$tmp/packages" "$tmp/examples/hello"
server=$(readlink -f "$server")
ln -s "$server" "$tmp/bin/theater-server"
cp "$examples/hello/hello.wasm" "$src/examples/hello/manifest.json" "$tmp/examples/hello/"
home=$tmp/data
token=entrypoint-test-token-0123456789

# The image's environment (an array, not a function, so that the process
# started in the background is the one that execs the entrypoint).
entry_env=(env -i "${san_env[@]}" PATH="$tmp/bin:/usr/local/bin:/usr/bin:/bin" HOME="$home"
	THEATER_HOME="$home" THEATER_LISTEN=127.0.0.1:0
	THEATER_PACKAGE_ROOTS="$tmp/packages:$tmp/examples" THEATER_SECRETS_DIR="$tmp/secrets")

# refused NAME MESSAGE ENV...: the entrypoint exits 2 with MESSAGE on stderr
# (bounded: a server started by mistake is stopped, and the check fails).
refused() {
	local name=$1 msg=$2 rc=0
	shift 2
	timeout 60 "${entry_env[@]}" "$@" sh "$entry" >"$tmp/r.out" 2>"$tmp/r.err" || rc=$?
	check "$name: exit 2 (got $rc)" [ "$rc" -eq 2 ]
	check "$name: says '$msg'" has "$tmp/r.err" "$msg"
}

refused "no token" "refusing to start without a bearer token"
check "no token: says how to give it as a Docker secret" has "$tmp/r.err" \
	"Docker secret \"theater_token\" (mounted at $tmp/secrets/theater_token)"
check "no token: names THEATER_TOKEN" has "$tmp/r.err" "docker run -e THEATER_TOKEN="
check "no token: names THEATER_TOKEN_FILE" has "$tmp/r.err" "THEATER_TOKEN_FILE="
check "no token: nothing was started (THEATER_HOME not created)" [ ! -e "$home" ]
refused "unreadable THEATER_TOKEN_FILE" "cannot read THEATER_TOKEN_FILE '$tmp/missing'" \
	THEATER_TOKEN_FILE="$tmp/missing"
refused "a short token" "at least 16 characters" THEATER_TOKEN=short

# serve NAME ENV...: starts the entrypoint; sets $pid and $port.
serve() {
	local name=$1
	shift
	start_bg "$tmp/out" "$tmp/err" "${entry_env[@]}" "$@" sh "$entry"
	pid=$bg_pid
	if port=$(wait_port "$tmp/out" "$pid"); then
		ok "$name: started on 127.0.0.1:$port"
		return 0
	fi
	bad "$name: did not start"
	cat "$tmp/err"
	return 1
}

# enforced NAME: the token is required and accepted, the server is $pid.
enforced() {
	local base=http://127.0.0.1:$port
	check "$1: /health needs no token" [ "$(http_status "$base/health")" = 200 ]
	check "$1: /actors without the token is 401" [ "$(http_status "$base/actors")" = 401 ]
	check "$1: /actors with the token is 200" \
		[ "$(http_status "$base/actors" -H "Authorization: Bearer $token")" = 200 ]
	check "$1: exec: the process started is theater-server" \
		[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$server")" ]
}

# stopped NAME: SIGTERM to the process started ends it cleanly.
stopped() {
	stop_pid "$pid"
	check "$1: SIGTERM: exit 0 (got $stop_rc)" [ "$stop_rc" = 0 ]
	check "$1: SIGTERM: stopped cleanly" has "$tmp/err" "stopped cleanly"
}

auth=(-H "Authorization: Bearer $token")
if serve "THEATER_TOKEN" THEATER_TOKEN="$token"; then
	enforced "THEATER_TOKEN"
	curl -s --max-time 30 "${auth[@]}" -X POST "http://127.0.0.1:$port/actors?wait=running" \
		-d "{\"manifest_ref\": \"$tmp/examples/hello/manifest.json\"}" >"$tmp/spawn.json"
	id=$(sed -n 's/^{"id": *"\([0-9a-f-]*\)".*/\1/p' "$tmp/spawn.json")
	check "the example actor runs" has "$tmp/spawn.json" '"status":"running"'
	stopped "THEATER_TOKEN"
fi

printf '%s\n' "$token" >"$tmp/secrets/theater_token"
if serve "Docker secret" && [ -n "${id:-}" ]; then
	enforced "Docker secret"
	curl -s --max-time 10 "${auth[@]}" "http://127.0.0.1:$port/actors/$id/chain/verify" \
		>"$tmp/verify.json"
	check "after a restart on the same THEATER_HOME the actor's chain is there and valid" \
		has "$tmp/verify.json" '"valid":true'
	stopped "Docker secret"
fi
rm "$tmp/secrets/theater_token"

printf '%s\n' "$token" >"$tmp/token"
if serve "THEATER_TOKEN_FILE" THEATER_TOKEN_FILE="$tmp/token"; then
	enforced "THEATER_TOKEN_FILE"
	stopped "THEATER_TOKEN_FILE"
fi

rc=0
timeout 60 "${entry_env[@]}" sh "$entry" --version >"$tmp/v.out" 2>&1 || rc=$?
check "--version needs no token (exit $rc)" [ "$rc" -eq 0 ]
check "--version prints the version" has "$tmp/v.out" "theater-server "
rc=0
timeout 60 "${entry_env[@]}" sh "$entry" sh -c 'echo other command' >"$tmp/o.out" 2>&1 || rc=$?
check "another command runs as given, without a token (exit $rc)" has "$tmp/o.out" "other command"
finish
