#!/bin/sh
# entrypoint.sh - the Docker image's entrypoint, installed as
# /usr/local/bin/theater-entrypoint.
#
# In the image theater-server listens on 0.0.0.0:8080, which is reachable from
# outside the container, so a bearer token is required. This script finds it,
# in this order:
#   1. THEATER_TOKEN (the token itself);
#   2. THEATER_TOKEN_FILE (a file holding it, e.g. a mounted file);
#   3. the Docker secret "theater_token", i.e. $THEATER_SECRETS_DIR/theater_token
#      (THEATER_SECRETS_DIR defaults to /run/secrets, where Docker mounts them);
# and refuses to start without one (exit 2), saying how to give one. It never
# prints the token. Then it replaces itself with theater-server (exec), so the
# server is PID 1 and takes docker stop's SIGTERM itself: chains synced,
# SQLite closed, exit 0.
#
#   docker run IMAGE [theater-server options]   the server (token required)
#   docker run IMAGE --help | --version         no token needed
#   docker run IMAGE theater-wasm ARGS...       any other command, run as given
#
# The listen address comes from THEATER_LISTEN (0.0.0.0:8080 in the image); the
# tests override it with 127.0.0.1:0.
set -eu

secret=${THEATER_SECRETS_DIR:-/run/secrets}/theater_token

die() {
	printf 'theater-entrypoint: %s\n' "$1" >&2
	exit 2
}

refuse() {
	cat >&2 <<EOF
theater-entrypoint: refusing to start without a bearer token: theater-server
listens on ${THEATER_LISTEN:-its default address} and every API call must carry
"Authorization: Bearer <token>". Give a token of at least 16 characters in one
of these ways:
  - as the Docker secret "theater_token" (mounted at $secret), as
    docker/compose.yaml does:  openssl rand -hex 32 > docker/theater_token
  - docker run -e THEATER_TOKEN="\$(openssl rand -hex 32)" ...
  - THEATER_TOKEN_FILE=/path/in/the/container (a file whose first line is the token)
EOF
	exit 2
}

# Chooses the token source, exporting THEATER_TOKEN_FILE for the secret.
find_token() {
	if [ -n "${THEATER_TOKEN:-}" ]; then
		return 0
	fi
	if [ -n "${THEATER_TOKEN_FILE:-}" ]; then
		[ -r "$THEATER_TOKEN_FILE" ] ||
			die "cannot read THEATER_TOKEN_FILE '$THEATER_TOKEN_FILE' as uid $(id -u)"
		return 0
	fi
	if [ -e "$secret" ]; then
		[ -r "$secret" ] ||
			die "the secret '$secret' exists but uid $(id -u) cannot read it: make the file it comes from readable (chmod 0644), or owned by uid $(id -u)"
		export THEATER_TOKEN_FILE="$secret"
		return 0
	fi
	refuse
}

check_home() {
	home=${THEATER_HOME:-}
	if [ -n "$home" ] && [ -d "$home" ] && ! [ -w "$home" ]; then
		die "THEATER_HOME '$home' is not writable by uid $(id -u): a named volume works as is; for a bind mount, chown -R $(id -u):$(id -g) the host folder"
	fi
}

[ "${1:-}" = theater-server ] && shift
case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac

server=yes
token_flag=no
for arg in "$@"; do
	case $arg in
	--help | -h | --version | --health-check) server=no ;;
	--token-file) token_flag=yes ;; # theater-server reads and checks that file
	esac
done
if [ "$server" = yes ]; then
	[ "$token_flag" = yes ] || find_token
	check_home
fi
exec theater-server "$@"
