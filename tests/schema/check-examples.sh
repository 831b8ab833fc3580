#!/usr/bin/env bash
# Validate the schema examples against schema/vrcloud.xsd.
#
# Every file in schema/examples/valid/ must validate; every file in
# schema/examples/invalid/ must be well-formed XML that the schema rejects
# (xmllint exit status 3), so a broken schema or a malformed example never
# counts as an expected failure. Prints one TAP line per file and exits
# non-zero on any mismatch; exits 77 (skip) when xmllint is not installed.
#
# Environment: srcdir (set by automake's test harness) is the top source
# directory; without it the directory two levels above this script is used.
# XMLLINT overrides the xmllint program.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${srcdir:-"$script_dir/../.."}
xmllint=${XMLLINT:-xmllint}

schema="$top_srcdir/schema/vrcloud.xsd"
valid_dir="$top_srcdir/schema/examples/valid"
invalid_dir="$top_srcdir/schema/examples/invalid"

if ! command -v "$xmllint" >/dev/null 2>&1; then
	echo "1..0 # SKIP xmllint not found"
	exit 77
fi

if [[ ! -r "$schema" ]]; then
	echo "Bail out! schema not found: $schema"
	exit 1
fi

shopt -s nullglob
valid_files=("$valid_dir"/*.xml)
invalid_files=("$invalid_dir"/*.xml)
shopt -u nullglob

if ((${#valid_files[@]} == 0 || ${#invalid_files[@]} == 0)); then
	echo "Bail out! no examples under $top_srcdir/schema/examples"
	exit 1
fi

# Validate one document; prints xmllint's diagnostics on stdout and returns
# xmllint's exit status (0 valid, 1 not well-formed, 3 invalid, 5 schema
# does not compile).
validate() {
	local status=0
	"$xmllint" --noout --nonet --schema "$schema" "$1" 2>&1 || status=$?
	return "$status"
}

echo "1..$((${#valid_files[@]} + ${#invalid_files[@]}))"

n=0
failed=0

for f in "${valid_files[@]}"; do
	n=$((n + 1))
	name="valid/$(basename "$f")"
	status=0
	output=$(validate "$f") || status=$?
	if ((status == 0)); then
		echo "ok $n - $name validates"
	else
		echo "not ok $n - $name must validate (xmllint status $status)"
		printf '%s\n' "$output" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
done

for f in "${invalid_files[@]}"; do
	n=$((n + 1))
	name="invalid/$(basename "$f")"
	status=0
	output=$(validate "$f") || status=$?
	if ((status == 3)); then
		echo "ok $n - $name is rejected"
		printf '%s\n' "$output" | grep -v 'fails to validate$' | sed 's/^/# /'
	elif ((status == 0)); then
		echo "not ok $n - $name must be rejected but validates"
		failed=$((failed + 1))
	else
		echo "not ok $n - $name must be rejected by the schema, but xmllint failed otherwise (status $status)"
		printf '%s\n' "$output" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
done

if ((failed > 0)); then
	echo "# $failed of $n schema examples did not behave as expected"
	exit 1
fi
echo "# all $n schema examples behave as expected"
