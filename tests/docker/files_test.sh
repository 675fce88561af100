#!/usr/bin/env bash
# files_test.sh SOURCE_DIR - what docker/Dockerfile, docker/compose.yaml and
# .dockerignore promise, read from the files (no engine can run them here):
# Debian 12 slim stages, a non-root user, THEATER_HOME=/data as a volume,
# 0.0.0.0:8080, the health check with a tool of the image, the entrypoint in
# exec form; in compose: a named volume, the token as a secret, a restart
# policy, the health check, a read-only package root; and no secret or build
# tree in the build context.
set -uo pipefail
src=$1
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

df=$src/docker/Dockerfile
compose=$src/docker/compose.yaml
ignore=$src/.dockerignore

# line FILE REGEX: some line of FILE matches the extended REGEX.
line() {
	grep -qE -- "$2" "$1"
}

# Dockerfile: instructions are matched on their logical lines (continuations
# joined).
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$df" | tr -s ' \t' ' ' >"$tmp/df"
check "every stage is FROM \${DEBIAN_IMAGE}" \
	[ "$(grep -cE '^FROM \$\{DEBIAN_IMAGE\} AS ' "$tmp/df")" -eq 2 ]
check "DEBIAN_IMAGE is Debian 12 slim" line "$tmp/df" '^ARG DEBIAN_IMAGE=debian:bookworm-slim$'
check "two stages: build and runtime" \
	[ "$(grep -E '^FROM ' "$tmp/df" | awk '{print $NF}' | tr '\n' ' ')" = "build runtime " ]
check "runs as a numeric non-root user" line "$tmp/df" '^USER [1-9][0-9]*:[1-9][0-9]*$'
check "the user's uid is the one created" line "$tmp/df" 'useradd .*--uid 10001 '
check "THEATER_HOME=/data" line "$tmp/df" 'THEATER_HOME=/data( |$)'
check "/data is a volume" line "$tmp/df" '^VOLUME \["/data"\]$'
check "/data belongs to the user" line "$tmp/df" 'chown theater:theater /data'
check "listens on 0.0.0.0:8080" line "$tmp/df" 'THEATER_LISTEN=0.0.0.0:8080( |$)'
check "exposes 8080" line "$tmp/df" '^EXPOSE 8080$'
check "a package root is /packages" line "$tmp/df" 'THEATER_PACKAGE_ROOTS=/packages[: ]'
check "HEALTHCHECK runs theater-server --health-check (no curl)" \
	line "$tmp/df" '^HEALTHCHECK .*CMD \["theater-server", "--health-check"\]$'
check "the entrypoint in exec form" line "$tmp/df" '^ENTRYPOINT \["theater-entrypoint"\]$'
check "SIGTERM stops it" line "$tmp/df" '^STOPSIGNAL SIGTERM$'
check "the entrypoint execs the server" line "$src/docker/entrypoint.sh" '^exec theater-server "\$@"$'
check "no curl or wget in the runtime stage" \
	[ "$(awk 'toupper($1) == "FROM" { on = ($NF == "runtime") } on' "$tmp/df" |
		grep -v '^#' | grep -cwE 'curl|wget')" -eq 0 ]

check "compose: builds from the repository root" line "$compose" '^      context: \.\.$'
check "compose: with docker/Dockerfile" line "$compose" '^      dockerfile: docker/Dockerfile$'
check "compose: a restart policy" line "$compose" '^    restart: (unless-stopped|always|on-failure)$'
check "compose: the volume theater-data at /data" line "$compose" '^      - theater-data:/data$'
check "compose: theater-data is a named volume" line "$compose" '^  theater-data:$'
check "compose: a package folder mounted read-only" \
	line "$compose" '^      - \./packages:/packages:ro$'
check "compose: it is the first package root" line "$compose" 'THEATER_PACKAGE_ROOTS: /packages(:|$)'
check "compose: the service gets the secret theater_token" line "$compose" '^      - theater_token$'
check "compose: the secret theater_token is defined" line "$compose" '^  theater_token:$'
check "compose: from the file docker/theater_token" line "$compose" '^    file: \./theater_token$'
check "compose: the health check" \
	line "$compose" '^      test: \["CMD", "theater-server", "--health-check"\]$'
check "compose: a grace period for a clean stop" line "$compose" '^    stop_grace_period: '
check "compose: published on the host's loopback by default" \
	line "$compose" '^      - "127\.0\.0\.1:8080:8080"$'
check "compose: no token in the file itself" [ "$(grep -cE 'THEATER_TOKEN:' "$compose")" -eq 0 ]

# Compose v2 and Debian 12's docker-compose 1.29 alike: 1.29 refuses a
# top-level name:, and an image: makes Compose v2 try a pull before it builds.
check "compose: no top-level name: (docker-compose 1.29 refuses it)" \
	[ "$(grep -cE '^name:' "$compose")" -eq 0 ]
check "compose: no image: (always built, never pulled)" [ "$(grep -cE '^ +image:' "$compose")" -eq 0 ]
check "Dockerfile: no '# syntax=' line (BuildKit would fetch a frontend from Docker Hub)" \
	[ "$(grep -ciE '^# *syntax *=' "$df")" -eq 0 ]
# The file through a real Compose parser: Debian 12's docker-compose 1.29
# (apt, when missing and root; Compose v2 is not packaged by Debian 12).
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends docker-compose >/dev/null 2>&1 || true
fi
if command -v docker-compose >/dev/null 2>&1; then
	cp -r "$src/docker" "$tmp/compose-check"
	printf 'token\n' >"$tmp/compose-check/theater_token"
	mkdir -p "$tmp/compose-check/packages"
	check "docker-compose $(docker-compose version --short 2>/dev/null) accepts the compose file (config -q)" \
		docker-compose -p theater -f "$tmp/compose-check/compose.yaml" config -q
	docker-compose -p theater -f "$tmp/compose-check/compose.yaml" config >"$tmp/compose.out" 2>&1
	check "docker-compose: the service builds from the repository root" \
		grep -qE "^ +context: $tmp\$" "$tmp/compose.out"
else
	bad "docker-compose (Debian package docker-compose) is missing and cannot be installed: the compose file was not parsed"
fi

check ".dockerignore keeps the token out of the build context" line "$ignore" '^docker/theater_token$'
check ".dockerignore keeps build/ out" line "$ignore" '^build$'
check ".dockerignore keeps build-*/ out" line "$ignore" '^build-\*$'
check ".dockerignore keeps .git out" line "$ignore" '^\.git$'
finish
