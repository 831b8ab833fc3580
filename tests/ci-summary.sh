#!/usr/bin/env bash
# Run `make check` in the current build directory and close with one line
# that counts every test:
#
#   tests/ci-summary.sh [MAKE ARGS...]      e.g. -j2 TESTS='tests/unit/test_x'
#
# Automake's harness hides each test's own output in <test>.log. For every
# test that ran (its .trs file is newer than this run's start):
#   - a Criterion binary counts its tests, from the "Synthesis" line(s) in
#     its log; if the binary failed but Criterion reported no failing test
#     (a crash outside a test, a sanitizer exit), that counts as one failure;
#   - any other test (shell scripts: schema, lint, ...) counts by its
#     :test-result: lines (PASS/XFAIL pass, FAIL/XPASS/ERROR fail, SKIP skip);
#   - a log with a LeakSanitizer, AddressSanitizer or UBSan ("runtime
#     error:") report counts as a failure even when the test passed, because
#     Criterion does not fail a test on a leak.
# The logs of failed tests are printed. The last line is "N passed, N failed".
# Exit status: non-zero when make failed, a test failed, or no test ran.
set -uo pipefail

log_lines=${CI_SUMMARY_LOG_LINES:-300}

# tests that ran are those whose .trs is newer than this stamp (TESTS=...
# may select a few, leaving older results of the others around)
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT

make check "$@"
mk=$?

passed=0 failed=0 skipped=0 binaries=0 scripts=0 sanitized=0
failed_logs=()

while IFS= read -r -d '' trs; do
	log=${trs%.trs}.log
	t_pass=0 t_fail=0 t_skip=0 bad_result=0
	while read -r _ result _; do
		case $result in
		PASS | XFAIL) t_pass=$((t_pass + 1)) ;;
		SKIP) t_skip=$((t_skip + 1)) ;;
		FAIL | XPASS | ERROR)
			t_fail=$((t_fail + 1))
			bad_result=1
			;;
		esac
	done < <(grep '^:test-result:' "$trs")

	synthesis=''
	[ -f "$log" ] && synthesis=$(grep 'Synthesis: Tested:' "$log")
	if [ -n "$synthesis" ]; then
		binaries=$((binaries + 1))
		# "[====] Synthesis: Tested: 3 | Passing: 3 | Failing: 0 | Crashing: 0 "
		read -r tested passing < <(printf '%s\n' "$synthesis" | awk '
			{ for (i = 1; i < NF; i++) {
				if ($i == "Tested:") t += $(i + 1)
				if ($i == "Passing:") p += $(i + 1) } }
			END { printf "%d %d\n", t, p }')
		t_pass=$passing
		t_fail=$((tested - passing))
		t_skip=0
		[ "$bad_result" -eq 1 ] && [ "$t_fail" -eq 0 ] && t_fail=1
	else
		scripts=$((scripts + 1))
	fi

	if [ -f "$log" ] && [ "$t_fail" -eq 0 ] \
		&& grep -q -E 'LeakSanitizer|ERROR: AddressSanitizer|runtime error:' "$log"; then
		echo "ci-summary: sanitizer report in $log"
		sanitized=$((sanitized + 1))
		t_fail=1
		[ "$t_pass" -gt 0 ] && t_pass=$((t_pass - 1))
	fi

	passed=$((passed + t_pass))
	failed=$((failed + t_fail))
	skipped=$((skipped + t_skip))
	[ "$t_fail" -gt 0 ] && failed_logs+=("$log")
done < <(find . -name '*.trs' -newer "$stamp" -print0 | sort -z)

for log in "${failed_logs[@]}"; do
	echo
	echo "======== $log (last $log_lines lines) ========"
	if [ -f "$log" ]; then
		tail -n "$log_lines" "$log"
	else
		echo "(no log)"
	fi
done

if [ "$mk" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo
	echo "ci-summary: make check failed (exit $mk) outside any test: see its output above"
	failed=1
fi
echo
echo "ci-summary: $binaries test binaries, $scripts other tests, $skipped skipped," \
	"$sanitized with sanitizer reports"
[ "$passed" -gt 0 ] || [ "$failed" -gt 0 ] || echo "ci-summary: no test ran"
echo "$passed passed, $failed failed"
[ "$mk" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
