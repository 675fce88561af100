# lib.sh - shared by the shell tests of tests/docker (sourced, not run): a
# scratch folder removed on exit, background processes tracked by pid and
# killed on exit, waiting for theater-server's "listening on" line, and the
# tally that ends with the "N passed, N failed" line.
# shellcheck shell=bash disable=SC2034 # variables for the sourcing tests

passed=0
failed=0
bg_pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/theater-docker-test.XXXXXX")

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}

bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}

# check DESCRIPTION COMMAND...: one assertion.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# has FILE TEXT: FILE contains TEXT (fixed string).
has() {
	grep -qF -- "$2" "$1"
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# Sanitizer settings pass through `env -i`.
san_env=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
	[ -n "${!v:-}" ] && san_env+=("$v=${!v}")
done

# start_bg OUT ERR COMMAND...: runs COMMAND in the background with stdout in
# OUT and stderr in ERR; its pid is in $bg_pid. It leads a process group of its
# own (setsid execs it, so the pid is COMMAND's), which cleanup kills whole:
# nothing it started outlives the test, even when a check fails.
start_bg() {
	local out=$1 err=$2
	shift 2
	: >"$out" # emptied here: the child's own redirection may come too late
	setsid "$@" >"$out" 2>"$err" &
	bg_pid=$!
	bg_pids+=("$bg_pid")
}

# wait_port OUT PID: waits (bounded) until OUT holds theater-server's
# "listening on http://HOST:PORT" line and prints PORT; fails if PID exits
# first. The bound is generous for sanitizer builds; nothing is timed.
wait_port() {
	local out=$1 pid=$2 i port
	for ((i = 0; i < 600; i++)); do
		port=$(sed -n 's/^theater-server listening on http:\/\/.*:\([0-9]*\)$/\1/p' "$out")
		if [ -n "$port" ]; then
			echo "$port"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# wait_gone PID: waits (bounded) until PID has exited (gone or a zombie);
# fails if it is still running.
wait_gone() {
	local i state
	for ((i = 0; i < 600; i++)); do
		state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
		if [ -z "$state" ] || [ "$state" = Z ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# stop_pid PID: SIGTERM, then waits (bounded); the exit status is in $stop_rc,
# "ignored" if PID did not exit (it is then killed). Not for use in a $(...):
# a subshell cannot wait for its parent's child.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	if ! wait_gone "$1"; then
		kill -KILL "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
		stop_rc=ignored
		return
	fi
	stop_rc=0
	wait "$1" || stop_rc=$?
}

# http_status URL [curl args...]: prints the HTTP status code of a request.
http_status() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" || true
}
