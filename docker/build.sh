#!/usr/bin/env bash
# build.sh - the build of the Docker image's build stage, in one script that
# the Dockerfile and the engine-free CTest test (tests/docker/image_test.sh)
# both run, so that "the same script, the same flags" is literally true.
#
#   docker/build.sh BUILD_DIR [STAGE_DIR]
#
# 1. configures a Release build of the checkout this script belongs to
#    (the flags are in cmake_flags below, and nowhere else);
# 2. builds everything, tests included;
# 3. runs the unit tests: the cmocka programs of tests/test_*.c, whose CTest
#    names start with "test_". They need nothing beyond the checkout, unlike
#    the spec and TOML suites, which read test data from ../shared (not in the
#    image's build context);
# 4. with STAGE_DIR, installs into it exactly what the runtime stage copies:
#      usr/local/bin/        theater-server, theater (the client CLI), theater-wasm, theater-toml-decode
#                            (stripped) and theater-entrypoint
#      usr/local/share/theater/examples/<name>/
#                            each example's .wasm files and manifests
#    STAGE_DIR is emptied first.
# THEATER_BUILD_JOBS sets the parallelism (default: the number of CPUs).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: docker/build.sh BUILD_DIR [STAGE_DIR]" >&2
	exit 2
fi
build=$1
stage=${2:-}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${THEATER_BUILD_JOBS:-$(nproc)}

cmake_flags=(-DCMAKE_BUILD_TYPE=Release -DTHEATER_TESTS=ON -DTHEATER_SANITIZE=OFF)
binaries=(theater-server theater tools/theater-wasm/theater-wasm
	tools/theater-toml-decode/theater-toml-decode)

echo "docker/build.sh: configuring $build (${cmake_flags[*]})"
cmake -S "$src" -B "$build" "${cmake_flags[@]}" >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" -R '^test_' --no-tests=error --output-on-failure -j "$jobs"

[ -n "$stage" ] || exit 0
rm -rf "$stage"
bin=$stage/usr/local/bin
share=$stage/usr/local/share/theater
for b in "${binaries[@]}"; do
	install -D -m 0755 -s "$build/$b" "$bin/$(basename "$b")"
done
install -D -m 0755 "$src/docker/entrypoint.sh" "$bin/theater-entrypoint"

# An example is a folder of examples/ whose build produced .wasm files.
shopt -s nullglob
for dir in "$src"/examples/*/; do
	name=$(basename "$dir")
	wasm=("$build/examples/$name"/*.wasm)
	if [ ${#wasm[@]} -eq 0 ]; then
		echo "docker/build.sh: examples/$name built no .wasm file; not staged"
		continue
	fi
	install -D -m 0644 -t "$share/examples/$name" "${wasm[@]}" \
		"$dir"/*.json "$dir"/*.toml
done
echo "docker/build.sh: staged into $stage:"
(cd "$stage" && find . -type f | sort | sed 's/^\./  /')
