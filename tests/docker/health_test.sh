#!/usr/bin/env bash
# health_test.sh SERVER - the check behind the image's HEALTHCHECK:
# `theater-server --health-check` exits 0 against a live server (also when
# asked with the container's THEATER_LISTEN=0.0.0.0:PORT, which it asks as
# 127.0.0.1, and without the token: /health needs none), and non-zero, saying
# why, against a port where nothing listens any more.
set -uo pipefail
server=$1
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

token=health-test-token-0123456789
home=$tmp/home
start_bg "$tmp/out" "$tmp/err" env -i "${san_env[@]}" PATH="$PATH" HOME="$tmp" \
	THEATER_HOME="$home" THEATER_LISTEN=127.0.0.1:0 THEATER_TOKEN="$token" "$server"
pid=$bg_pid
if ! port=$(wait_port "$tmp/out" "$pid"); then
	bad "theater-server did not start"
	cat "$tmp/err"
	finish
	exit 1
fi
ok "theater-server listens on 127.0.0.1:$port"

# probe NAME EXPECT(0|nonzero) ENV...: one health check, as the HEALTHCHECK
# runs it (no arguments; the container's environment, without the token).
probe() {
	local name=$1 want=$2 rc=0
	shift 2
	env -i "${san_env[@]}" PATH="$PATH" HOME="$tmp" THEATER_HOME="$home" "$@" \
		"$server" --health-check >"$tmp/hc.out" 2>"$tmp/hc.err" || rc=$?
	if { [ "$want" = 0 ] && [ "$rc" -eq 0 ]; } || { [ "$want" != 0 ] && [ "$rc" -ne 0 ]; }; then
		ok "$name (exit $rc)"
	else
		bad "$name: exit $rc"
		cat "$tmp/hc.out" "$tmp/hc.err"
	fi
}

probe "healthy on THEATER_LISTEN=127.0.0.1:$port" 0 THEATER_LISTEN="127.0.0.1:$port"
check "it prints the URL it asked" has "$tmp/hc.out" "http://127.0.0.1:$port/health"
probe "healthy on the container's THEATER_LISTEN=0.0.0.0:$port" 0 THEATER_LISTEN="0.0.0.0:$port"
check "0.0.0.0 is asked as 127.0.0.1" has "$tmp/hc.out" "http://127.0.0.1:$port/health"
probe "healthy with the token in the environment too" 0 THEATER_LISTEN="0.0.0.0:$port" \
	THEATER_TOKEN="$token"

stop_pid "$pid"
check "SIGTERM stops the server with exit 0 (got $stop_rc)" [ "$stop_rc" = 0 ]
check "the server logged a clean stop" has "$tmp/err" "stopped cleanly"

probe "unhealthy on the dead port $port" nonzero THEATER_LISTEN="0.0.0.0:$port"
check "it says why" has "$tmp/hc.err" "unhealthy"
finish
