# server.sh - sourced by the shell tests (tests/sdk/test_templates.sh,
# tests/fuzz/blast_test.sh).
#
# start_server WORK COMMAND... runs COMMAND (a theater-server with --listen
# 127.0.0.1:0 among its arguments) in the background with its output in
# WORK/server.out and its log in WORK/server.log, waits up to 60 s for the
# address it prints, and sets server_pid and port. It calls the test's fail
# function when the server exits first or prints no address.
start_server() {
  local work=$1
  shift
  "$@" >"$work/server.out" 2>"$work/server.log" &
  server_pid=$!
  port=""
  for _ in $(seq 1 600); do
    port=$(grep -o '127\.0\.0\.1:[0-9]*' "$work/server.out" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || fail "theater-server exited at start"
    sleep 0.1
  done
  fail "theater-server printed no address"
}
