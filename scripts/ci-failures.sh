#!/usr/bin/env bash
# Printed by .ci/run when a stage fails: for each test that failed in the last
# ctest run of each build directory, the lines that say why (the lines before
# cmocka's FAILED, sanitizer reports), so the tail of a CI log names the cause.
# Then, last, the short form: each failed cmocka test with its assertion (what
# a CI log shows when its middle is cut).
cd "$(dirname "$0")/.."
short=""
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
		# cmocka's failed tests, each with the assertion and the lines of its
		# own output just before it (the NATS servers' state lines left out)
		cases=$(grep -E '^\[  FAILED  \] [A-Za-z_0-9]+$' <<<"$out" | awk '{print $4}' | sort -u)
		short+="=== $dir: $name"$'\n'
		for c in $cases; do
			short+=$(awk -v c="$c" '$0 == "[ RUN      ] " c {on = 1} on && !/^# nats/ {print} $0 == "[  FAILED  ] " c {exit}' <<<"$out" |
				grep -v '^---- log of\|^[0-9-]*T[0-9:]*Z ' | tail -n 14)$'\n'
		done
		grep -q 'Sanitizer\|runtime error:' <<<"$out" &&
			short+=$(grep -m3 -E 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:' <<<"$out")$'\n'
	done < "$failed"
done
[ -z "$short" ] || printf '\n=== in short\n%s' "$short"
