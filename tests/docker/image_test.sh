#!/usr/bin/env bash
# image_test.sh SOURCE_DIR WORK_DIR - the image's build without a Docker
# engine. It builds the project the way docker/Dockerfile's build stage does
# (the same two scripts: scripts/install-deps.sh, then docker/build.sh with its
# Release flags, unit tests and staging, into WORK_DIR), then checks the
# runtime stage against what the staged binaries link:
#  - ldd lists the shared libraries of every staged ELF binary and dpkg -S the
#    Debian packages that provide them;
#  - the runtime stage installs `scripts/install-deps.sh --runtime`'s list, and
#    apt brings each listed package's Depends with it, so every one of those
#    packages must be in the Depends closure of that list or of the base
#    image's Essential packages (read from this machine's dpkg database:
#    Debian 12, like the image);
#  - each library a binary links directly (DT_NEEDED) must come from a listed
#    package, not only as a dependency of another one (libc6 aside);
#  - no binary has a RUNPATH into the build tree; the staged tree holds the
#    binaries, the entrypoint and the example actors the image promises.
# The Dockerfile is read to check that it runs these very scripts.
set -uo pipefail
src=$1
work=$2
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

dockerfile=$src/docker/Dockerfile
deps=$src/scripts/install-deps.sh

# stage NAME: the lines of the Dockerfile stage named NAME (FROM ... AS NAME).
stage() {
	awk -v name="$1" 'toupper($1) == "FROM" { on = (tolower($NF) == name) } on' "$dockerfile"
}
stage build >"$tmp/build.stage"
stage runtime >"$tmp/runtime.stage"
check "the build stage runs scripts/install-deps.sh" \
	grep -qE '^RUN bash scripts/install-deps.sh( |$)' "$tmp/build.stage"
check "the build stage runs docker/build.sh /build /stage" \
	grep -qE '^RUN bash docker/build.sh /build /stage$' "$tmp/build.stage"
check "the runtime stage runs install-deps.sh --runtime" \
	grep -qE '^RUN bash /tmp/install-deps.sh --runtime' "$tmp/runtime.stage"
check "the runtime stage copies the staged tree" \
	grep -qE '^COPY --from=build /stage/ /$' "$tmp/runtime.stage"
check "the runtime stage installs no other package" \
	[ "$(grep -cE 'apt(-get)? +install|dpkg +-i' "$tmp/runtime.stage")" -eq 0 ]

# The runtime list: the runtime_pkgs=(...) array of install-deps.sh.
mapfile -t runtime < <(awk '/^runtime_pkgs=\(/ { on = 1 }
	on { sub(/#.*/, ""); print; if (/\)/) exit }' "$deps" |
	sed 's/^runtime_pkgs=(//; s/).*//' | tr -s ' \t' '\n' | sed '/^$/d')
check "install-deps.sh has a runtime list (${runtime[*]})" [ ${#runtime[@]} -gt 0 ]

echo "== scripts/install-deps.sh"
check "scripts/install-deps.sh succeeds" bash "$deps"
echo "== docker/build.sh $work/build $work/stage (log: $work/build.log)"
mkdir -p "$work"
if bash "$src/docker/build.sh" "$work/build" "$work/stage" >"$work/build.log" 2>&1; then
	ok "docker/build.sh: Release build, unit tests and staging succeed"
else
	bad "docker/build.sh failed; the end of its log:"
	tail -n 60 "$work/build.log"
	finish
	exit 1
fi
grep -E 'tests passed|Total Test time' "$work/build.log"

bin=$work/stage/usr/local/bin
examples=$work/stage/usr/local/share/theater/examples
for b in theater-server theater theater-wasm theater-toml-decode theater-entrypoint; do
	check "staged: /usr/local/bin/$b" [ -x "$bin/$b" ]
done
check "staged: the example actor hello (wasm and manifest)" \
	test -s "$examples/hello/hello.wasm" -a -s "$examples/hello/manifest.json"
check "the staged theater-server runs (--version)" "$bin/theater-server" --version

# pkg_of PATH: the package that owns a library path (usrmerge: try /usr too).
pkg_of() {
	local p=$1 r
	for q in "$p" "/usr$p" "$(readlink -f "$p")"; do
		if r=$(dpkg -S "$q" 2>/dev/null); then
			echo "${r%%:*}" | head -n 1
			return 0
		fi
	done
	return 1
}

declare -A need   # package -> "binary: library" that needs it
declare -A direct # package -> binary that links it directly
for f in "$bin"/*; do
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
	name=$(basename "$f")
	if ldd "$f" >"$tmp/ldd" 2>&1; then :; else
		bad "ldd $name failed"
		continue
	fi
	check "$name: ldd finds every library" [ "$(grep -c 'not found' "$tmp/ldd")" -eq 0 ]
	check "$name: no RUNPATH/RPATH into the build tree" \
		[ "$(readelf -d "$f" | grep -E 'RUNPATH|RPATH' | grep -c "$work")" -eq 0 ]
	readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' >"$tmp/needed"
	while read -r lib path; do
		p=$(pkg_of "$path") || {
			bad "$name: no package owns '$path'"
			continue
		}
		need[$p]="$name: $lib"
		grep -qxF "$lib" "$tmp/needed" && direct[$p]=$name
	done < <(awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $1 ~ /^\// { print $1, $1 }' "$tmp/ldd")
done
check "ldd found libraries" [ ${#need[@]} -gt 0 ]

# What the runtime image holds: the runtime list and the Essential packages
# (in every Debian image, bookworm-slim included), with their Depends closure
# as apt installs it: for each "a | b", the first alternative installed here.
declare -A have # package -> why it is in the image
queue=()
for p in "${runtime[@]}"; do
	have[$p]="listed"
	queue+=("$p")
done
for p in $(dpkg-query -W -f='${Package} ${Essential}\n' | awk '$2 == "yes" { print $1 }'); do
	if [ -z "${have[$p]:-}" ]; then
		have[$p]="in the base image (Essential)"
		queue+=("$p")
	fi
done
# Installed, or installed with a trigger still to run: while another apt-get
# runs (ctest -j, a test that installs what it needs), libc-bin sits in
# "triggers-pending" until its ldconfig trigger has run.
installed() {
	local st
	st=$(dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | head -n 1)
	case $st in
	"install ok installed" | "install ok triggers-pending" | "install ok triggers-awaited") return 0 ;;
	*) return 1 ;;
	esac
}
while [ ${#queue[@]} -gt 0 ]; do
	p=${queue[0]}
	queue=("${queue[@]:1}")
	if ! installed "$p"; then
		bad "'$p' (runtime list) is not installed here ($(dpkg-query -W -f='${Status}' "$p" 2>&1)), so its dependencies are unknown"
		continue
	fi
	deps_of=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}\n' "$p" | head -n 1)
	IFS=',' read -ra groups <<<"$deps_of"
	for g in "${groups[@]}"; do
		IFS='|' read -ra alts <<<"$g"
		for a in "${alts[@]}"; do
			a=$(echo "$a" | sed 's/(.*)//; s/:any//; s/[[:space:]]//g')
			[ -n "$a" ] || continue
			if installed "$a"; then
				if [ -z "${have[$a]:-}" ]; then
					case ${have[$p]} in
					"in the base image"*) have[$a]="in the base image (via $p)" ;;
					*) have[$a]="dependency of $p" ;;
					esac
					queue+=("$a")
				fi
				break
			fi
		done
	done
done

echo "== the packages the staged binaries need"
for p in $(printf '%s\n' "${!need[@]}" | sort); do
	if [ -n "${have[$p]:-}" ]; then
		ok "$p (${need[$p]}): ${have[$p]}"
	else
		bad "$p (${need[$p]}) is not in the runtime image: not listed, not a dependency of a listed package, not in the base image"
	fi
done
for p in $(printf '%s\n' "${!direct[@]}" | sort); do
	[ "$p" = libc6 ] && continue
	check "$p is linked directly by ${direct[$p]}, so it is listed by name" \
		[ "${have[$p]:-}" = listed ]
done
for p in "${runtime[@]}"; do
	[ -n "${need[$p]:-}" ] || echo "note: '$p' is listed but linked by no binary (kept for what it does at run time)"
done
finish
