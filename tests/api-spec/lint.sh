#!/bin/sh
# Checks api-spec/openapi.yaml:
#  1. its operations are exactly the routes listed in api-spec/routes.txt (every
#     operation is a listed route, every listed route is described);
#  2. Redocly CLI lints it with api-spec/redocly.yaml with no error and no warning.
#
# The linter is $VRCLOUD_REDOCLY when set, else the one contrib/install-openapi-linter
# puts into ${XDG_CACHE_HOME:-$HOME/.cache}/vrcloud/npm. Without a linter the test
# is skipped (exit 77), except when CI=true: CI must not skip it silently.
# Written for POSIX sh so that it runs directly and under $(SHELL) alike.

set -u

me=tests/api-spec/lint.sh
if [ -z "${srcdir:-}" ]; then
	srcdir=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
fi
spec=$srcdir/api-spec/openapi.yaml
config=$srcdir/api-spec/redocly.yaml
routes=$srcdir/api-spec/routes.txt

fail() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 1
}

for f in "$spec" "$config" "$routes"; do
	[ -r "$f" ] || fail "cannot read $f"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vrcloud-api-spec.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# --- 1. spec operations against routes.txt ---------------------------------

# "METHOD PATH" of every operation in the spec, and "PATH path" for every key of
# the top-level paths: map (a key without operations is caught too).
awk '
	/^paths:[ \t]*$/ { inpaths = 1; next }
	/^[^ \t#]/ { inpaths = 0 }
	!inpaths { next }
	/^  [^ #]/ {
		path = $1
		sub(/:$/, "", path)
		gsub(/["\047]/, "", path)
		print "PATH", path
		next
	}
	/^    (get|put|post|delete|options|head|patch|trace):[ \t]*$/ {
		method = $1
		sub(/:$/, "", method)
		print toupper(method), path
	}
' "$spec" >"$tmp/spec-all" || fail "awk failed on $spec"
grep -v '^PATH ' "$tmp/spec-all" | sort >"$tmp/spec-ops"
sed -n 's/^PATH //p' "$tmp/spec-all" | sort >"$tmp/spec-paths"

[ -s "$tmp/spec-ops" ] || fail "no operations found under paths: in $spec"

# routes.txt: "METHOD PATH" or "ALIAS PREFIX TARGET"; comments and blank lines.
awk -v file="$routes" '
	/^[ \t]*(#|$)/ { next }
	$1 == "ALIAS" {
		if (NF != 3 || $2 !~ /^\// || $3 !~ /^\//) {
			printf "%s:%d: malformed ALIAS line: %s\n", file, NR, $0 > "/dev/stderr"
			bad = 1
		}
		next
	}
	{
		if (NF != 2 || $1 !~ /^(GET|PUT|POST|DELETE|PATCH|OPTIONS)$/ || $2 !~ /^\//) {
			printf "%s:%d: expected \"METHOD PATH\": %s\n", file, NR, $0 > "/dev/stderr"
			bad = 1
			next
		}
		if (seen[$0]++) {
			printf "%s:%d: duplicate route: %s\n", file, NR, $0 > "/dev/stderr"
			bad = 1
		}
		print $1, $2
	}
	END { exit bad }
' "$routes" >"$tmp/routes-raw" || fail "$routes is malformed"
sort -u "$tmp/routes-raw" >"$tmp/routes"
cut -d' ' -f2 "$tmp/routes" | sort -u >"$tmp/route-paths"

status=0

# Every operation of the spec must be a listed route.
comm -23 "$tmp/spec-ops" "$tmp/routes" >"$tmp/unlisted-ops"
if [ -s "$tmp/unlisted-ops" ]; then
	printf '%s: operations in %s that are not routes in %s:\n' "$me" "$spec" "$routes" >&2
	sed 's/^/  /' "$tmp/unlisted-ops" >&2
	status=1
fi

# Every paths: key must be a listed path.
comm -23 "$tmp/spec-paths" "$tmp/route-paths" >"$tmp/unlisted-paths"
if [ -s "$tmp/unlisted-paths" ]; then
	printf '%s: paths in %s that are not in %s:\n' "$me" "$spec" "$routes" >&2
	sed 's/^/  /' "$tmp/unlisted-paths" >&2
	status=1
fi

# Every listed route must be described: as itself, or, when it ends in "/", as the
# same path without the slash.
awk '
	NR == FNR { described[$0] = 1; next }
	{
		route = $0
		bare = route
		if (bare ~ /[^\/]\/$/)
			sub(/\/$/, "", bare)
		if (!(route in described) && !(bare in described))
			print "  " route
	}
' "$tmp/spec-ops" "$tmp/routes" >"$tmp/undescribed"
if [ -s "$tmp/undescribed" ]; then
	printf '%s: routes in %s that %s does not describe:\n' "$me" "$routes" "$spec" >&2
	cat "$tmp/undescribed" >&2
	status=1
fi

[ "$status" -eq 0 ] || exit 1
printf '%s: %s operations in the spec match %s routes in %s\n' \
	"$me" "$(wc -l <"$tmp/spec-ops" | tr -d ' ')" \
	"$(wc -l <"$tmp/routes" | tr -d ' ')" "$routes"

# --- 2. Redocly lint -----------------------------------------------------

if [ -n "${VRCLOUD_REDOCLY:-}" ]; then
	redocly=$VRCLOUD_REDOCLY
	[ -x "$redocly" ] || fail "VRCLOUD_REDOCLY=$redocly is not an executable file"
else
	if [ -n "${XDG_CACHE_HOME:-}" ]; then
		redocly=$XDG_CACHE_HOME/vrcloud/npm/node_modules/.bin/redocly
	elif [ -n "${HOME:-}" ]; then
		redocly=$HOME/.cache/vrcloud/npm/node_modules/.bin/redocly
	else
		redocly=
	fi
	if [ -z "$redocly" ] || [ ! -x "$redocly" ]; then
		msg="no OpenAPI linter: set VRCLOUD_REDOCLY or run contrib/install-openapi-linter"
		if [ "${CI:-}" = true ]; then
			fail "$msg (CI=true, so this is a failure, not a skip)"
		fi
		printf '%s: SKIP: %s\n' "$me" "$msg" >&2
		exit 77
	fi
fi
command -v node >/dev/null 2>&1 || fail "node is not installed; $redocly needs it"

# No usage data and no update check from a test run.
REDOCLY_TELEMETRY=off
REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_TELEMETRY REDOCLY_SUPPRESS_UPDATE_NOTICE

printf '%s: linting with %s %s\n' "$me" "$redocly" \
	"$("$redocly" --version 2>/dev/null || echo '(version unknown)')"

# Readable report for the test log; --lint-config=error makes a problem in
# redocly.yaml itself fatal.
"$redocly" lint --lint-config=error --config "$config" --format=stylish "$spec"
lint_status=$?

# The exit status only reflects errors; count warnings from the JSON report.
"$redocly" lint --lint-config=error --config "$config" --format=json "$spec" \
	>"$tmp/lint.json" 2>"$tmp/lint.err"
json_status=$?

counts=$(node -e '
	const fs = require("fs");
	const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
	const t = r.totals || {};
	if (typeof t.errors !== "number" || typeof t.warnings !== "number")
		throw new Error("no totals in the JSON report");
	process.stdout.write(t.errors + " " + t.warnings);
' "$tmp/lint.json") || {
	cat "$tmp/lint.err" >&2
	fail "cannot read the linter JSON report"
}
errors=${counts% *}
warnings=${counts#* }

printf '%s: %s errors, %s warnings\n' "$me" "$errors" "$warnings"
if [ "$lint_status" -ne 0 ] || [ "$json_status" -ne 0 ] ||
	[ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
	fail "lint failed (exit $lint_status/$json_status); fix the spec, or justify a rule change in $config"
fi
exit 0
