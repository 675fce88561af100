#!/usr/bin/env bash
# compose_cluster_test.sh - docker/compose.cluster.yaml for real (ctest
# `compose_cluster`, label long: `make test-long`, never alongside other heavy
# tests). Builds the two images, brings the three NATS servers and the three
# theater nodes up, waits until every node sees three nodes up, spawns a
# counter on theater1 pinned to theater2, sends it messages from theater3 and
# asks it from theater1 (forwarded over NATS), then `docker kill`s theater2 and
# checks the counter answers again from a survivor with its count; finally
# tears everything down with its volumes.
#   tests/docker/compose_cluster_test.sh <source dir>
# Needs a Docker engine and docker-compose (Debian's 1.29; installed with apt
# as root when missing). Exits 77 (skipped) when no Docker engine answers. The
# compose file publishes 127.0.0.1:8081-8083: those ports must be free.
set -uo pipefail
src=$(cd "${1:?usage: compose_cluster_test.sh SOURCE_DIR}" && pwd)
# shellcheck source=tests/docker/lib.sh
source "$(dirname "$0")/lib.sh"

if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	echo "installing docker-compose (apt)"
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq docker-compose >/dev/null
fi
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
	echo "no Docker engine answers (docker info): skipped"
	exit 77
fi
command -v docker-compose >/dev/null 2>&1 || { echo "FAIL: docker-compose missing"; exit 1; }

project="theatercl$$"
token=$(openssl rand -hex 32)
printf '%s\n' "$token" >"$tmp/token"
# The token from the scratch folder (docker/theater_token, the user's, is left alone).
cat >"$tmp/override.yaml" <<EOF
version: "3.9"
secrets:
  theater_token:
    file: $tmp/token
EOF
compose() {
	docker-compose -p "$project" -f "$src/docker/compose.cluster.yaml" -f "$tmp/override.yaml" "$@"
}
down() {
	compose down -v --remove-orphans >/dev/null 2>&1 || true
}
trap 'down; cleanup' EXIT

T="Authorization: Bearer $token"
api() { # api METHOD PORT PATH [BODY] -> the body; the status in $tmp/status
	local body=${4-}
	curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" -H "$T" --max-time 60 \
		${body:+-d "$body"} "http://127.0.0.1:$2$3" >"$tmp/status" || echo 000 >"$tmp/status"
	cat "$tmp/body" 2>/dev/null
}
status() { cat "$tmp/status"; }

echo "building and starting (a few minutes the first time)"
if ! compose up -d --build >"$tmp/up.log" 2>&1; then
	tail -40 "$tmp/up.log"
	bad "docker-compose up"
	echo "$passed passed, $failed failed"
	exit 1
fi
ok "docker-compose up: three NATS servers, three theater nodes"

up3=0
for _ in $(seq 1 180); do
	up3=1
	for port in 8081 8082 8083; do
		n=$(api GET "$port" /cluster | grep -o '"status":"up"' | wc -l)
		[ "$n" -eq 3 ] || up3=0
	done
	[ "$up3" -eq 1 ] && break
	sleep 1
done
check "every node sees the three nodes up" test "$up3" -eq 1
[ "$up3" -eq 1 ] || compose logs --tail 30

body=$(api POST 8081 '/actors?node=theater2&wait=running' \
	'{"manifest_ref":"/usr/local/share/theater/examples/counter/manifest.json"}')
check "spawn on theater1, pinned to theater2: 201" test "$(status)" = 201
id=$(printf '%s' "$body" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
check "the spawn answers an id" test -n "$id"

for _ in 1 2 3; do
	api POST 8083 "/actors/$id/messages" 5 >/dev/null
	check "a message from theater3: 202" test "$(status)" = 202
done
answer=$(api POST 8081 "/actors/$id/requests?timeout=30" get)
check "asked from theater1: 200" test "$(status)" = 200
check "the count is 15 (three messages of 5)" test "$answer" = 15
curl -s -D "$tmp/head" -o /dev/null -H "$T" "http://127.0.0.1:8081/actors/$id"
check "theater1 forwards to theater2 (X-Theater-Node)" grep -qi '^X-Theater-Node: theater2' "$tmp/head"

# theater2 dies: the counter comes back on a survivor with its count
docker kill "${project}_theater2_1" >/dev/null 2>&1 ||
	docker kill "$(compose ps -q theater2)" >/dev/null
answer=""
for _ in $(seq 1 60); do
	answer=$(api POST 8081 "/actors/$id/requests?timeout=10" get)
	[ "$(status)" = 200 ] && break
	sleep 1
done
check "after docker kill of theater2 the counter answers from a survivor: 200" \
	test "$(status)" = 200
check "with its count (15)" test "$answer" = 15

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
