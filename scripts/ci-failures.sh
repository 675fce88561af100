#!/usr/bin/env bash
# Printed by .ci/run when a stage fails: for each test that failed in the last
# ctest run of each build directory, the lines that say why (the lines before
# cmocka's FAILED, sanitizer reports), so the tail of a CI log names the cause.
cd "$(dirname "$0")/.."
for dir in build build-asan build-tsan; do
	failed="$dir/Testing/Temporary/LastTestsFailed.log"
	log="$dir/Testing/Temporary/LastTest.log"
	[ -s "$failed" ] && [ -f "$log" ] || continue
	while IFS=: read -r _ name; do
		echo "=== $dir: $name"
		# the test's own output is between its "Test: name" header and the next one
		out=$(awk -v t="$name" '/^[0-9]+\/[0-9]+ Test: /{on = ($3 == t)} on' "$log")
		why=$(grep -E -B25 -A25 '^\[  (FAILED|ERROR)  \]|WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:' <<<"$out" | head -n 120)
		# a test that died without a report: the end of its output
		[ -n "$why" ] || why=$(tail -n 40 <<<"$out")
		printf '%s\n' "$why"
	done < "$failed"
done
