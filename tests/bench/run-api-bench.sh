#!/usr/bin/env bash
# Benchmark of vrcloud-api, run by `make bench` (never by `make check`):
#
#   tests/bench/run-api-bench.sh BUILDDIR
#
# Starts a throwaway PostgreSQL and Redis (contrib/lib/services.sh), creates
# and migrates a database, loads fixtures (an org with a user, a VDC, a peer,
# 1000 replications with one instance each), starts BUILDDIR/vrcloud-api
# (2 threads, PostgreSQL over its unix socket), logs in, and measures, each
# with `wrk -t2 -c64`:
#   (a) GET /api/vr/replications/{id}, rotating over the 1000 ids
#   (b) GET /api/org/{id}/replications?page=2&pageSize=25 (one References page)
# and beside them, on the same PostgreSQL,
#   (c) pgbench -S -M prepared -c 8 -j 2 (point reads; its own database)
# The three run interleaved, BENCH_ROUNDS times; the medians and the ratios
# (a)/(c), (b)/(c) are printed. Everything shares the machine's cores, so the
# figures are relative, not capacities.
#
# Environment: BENCH_DURATION seconds per measurement (default 10),
# BENCH_ROUNDS (default 3), BENCH_CONNECTIONS for wrk (default 64),
# BENCH_LOG_LEVEL of the server (default info, as in production),
# WRK, PGBENCH, PSQL (programs), BENCH_KEEP=1 keeps the work directory.
#
# The exit status is non-zero only when something could not run (a missing
# program, a server that did not start, answers that were not 200); a slow
# figure never fails it. Every process started here is stopped on exit.
set -euo pipefail

usage() {
	echo "usage: $0 BUILDDIR" >&2
	exit 2
}
[ $# -eq 1 ] || usage
builddir=$(cd "$1" && pwd -P) || usage
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
srcdir=$(cd "$here/../.." && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
connections=${BENCH_CONNECTIONS:-64}
log_level=${BENCH_LOG_LEVEL:-info}
replications=1000
password=bench-Password-1

for v in duration rounds connections; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done

# --- programs ------------------------------------------------------------

WRK=$(find_program "${WRK:-}" wrk) || die "wrk not found (apt-get install wrk)"
PGBENCH=$(find_program "${PGBENCH:-}" pgbench /usr/lib/postgresql/15/bin/pgbench) ||
	die "pgbench not found (apt-get install postgresql-contrib)"
PSQL=$(find_program "${PSQL:-}" psql /usr/lib/postgresql/15/bin/psql) || die "psql not found"
command -v curl >/dev/null || die "curl not found"
api=$builddir/vrcloud-api
ctl=$builddir/vrcloudctl
[ -x "$api" ] || die "$api is not built (run make first)"
[ -x "$ctl" ] || die "$ctl is not built (run make first)"
lua=$here/api-requests.lua
[ -r "$lua" ] || die "$lua is missing"

# --- clean-up --------------------------------------------------------------

work=$(mktemp -d /tmp/vrcloud-bench.XXXXXX)
chmod 755 "$work"
api_pid=
services_started=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	set +e
	if [ -n "$api_pid" ] && kill -0 "$api_pid" 2>/dev/null; then
		kill -TERM "$api_pid"
		for _ in $(seq 1 100); do
			kill -0 "$api_pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -0 "$api_pid" 2>/dev/null && kill -KILL "$api_pid"
		wait "$api_pid" 2>/dev/null
	fi
	if [ -n "$services_started" ]; then
		svc_stop "$work/svc" || say "could not stop the services of $work/svc"
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- services and fixtures --------------------------------------------------

# shellcheck source-path=SCRIPTDIR source=../../contrib/lib/services.sh
. "$srcdir/contrib/lib/services.sh"
services_started=1
say "starting PostgreSQL and Redis in $work/svc"
svc_start_pg "$work/svc" || die "PostgreSQL did not start"
svc_start_redis "$work/svc" || die "Redis did not start"

admin_uri=$SVC_PG_URI
db_uri=${SVC_PG_URI/'@/postgres?'/'@/vrbench?'}
pgbench_db=vrbench_pgbench
[ "$db_uri" != "$admin_uri" ] || die "unexpected PostgreSQL URI: $SVC_PG_URI"

sql() { # URI SQL...: run statements, print tuples only
	local uri=$1
	shift
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$uri" "$@"
}

sql "$admin_uri" -c "CREATE DATABASE vrbench" -c "CREATE DATABASE $pgbench_db"
"$ctl" --database "$db_uri" migrate >"$work/migrate.log" 2>&1 ||
	{
		cat "$work/migrate.log" >&2
		die "vrcloudctl migrate failed"
	}
"$ctl" --database "$db_uri" org add bench >/dev/null
"$ctl" --database "$db_uri" vdc add bench vdc-1 >/dev/null
printf '%s\n' "$password" |
	"$ctl" --database "$db_uri" user add bench alice --role org-admin --password-stdin >/dev/null

say "loading $replications replications"
sql "$db_uri" <<SQL
INSERT INTO peers (org_id, vdc_id, site_uuid, site_name)
SELECT o.id, v.id, gen_random_uuid(), 'on-premises site'
FROM orgs o JOIN vdcs v ON v.org_id = o.id WHERE o.name = 'bench';

INSERT INTO replications (org_id, vdc_id, peer_id, name, description, rpo_minutes,
                          source_vm_id, created_at)
SELECT p.org_id, p.vdc_id, p.id, 'vm-' || lpad(g::text, 4, '0'), 'benchmark replication',
       240, 'vm-' || g, now() - make_interval(secs => g)
FROM peers p, generate_series(1, $replications) g;

INSERT INTO instances (replication_id, seq, transfer_start_time, transfer_seconds,
                       transfer_bytes)
SELECT id, 1, now() - interval '10 minutes', 42, 1073741824 FROM replications;

UPDATE replications SET next_instance_seq = 2;
ANALYZE;
SQL
sql "$db_uri" -c "SELECT id FROM replications ORDER BY id" >"$work/ids"
org_id=$(sql "$db_uri" -c "SELECT id FROM orgs WHERE name = 'bench'")
[ "$(wc -l <"$work/ids")" -eq "$replications" ] || die "the fixtures are incomplete"

say "initialising pgbench (scale 1) in database $pgbench_db"
"$PGBENCH" -i -s 1 -q -h "$SVC_PG_SOCKDIR" -p "$SVC_PG_PORT" -U postgres "$pgbench_db" \
	>"$work/pgbench-init.log" 2>&1 || {
	cat "$work/pgbench-init.log" >&2
	die "pgbench -i failed"
}

# --- the API server -------------------------------------------------------------

say "starting vrcloud-api (2 threads)"
"$api" --listen 127.0.0.1 --port 0 --port-file "$work/api.port" --threads 2 \
	--database "$db_uri" --redis "unix://$SVC_REDIS_SOCKET" \
	--log-level "$log_level" --log-file "$work/api.log" </dev/null &
api_pid=$!
for _ in $(seq 1 200); do
	[ -s "$work/api.port" ] && break
	kill -0 "$api_pid" 2>/dev/null || break
	sleep 0.05
done
if [ ! -s "$work/api.port" ]; then
	tail -n 20 "$work/api.log" >&2 2>/dev/null || true
	die "vrcloud-api did not start"
fi
base=http://127.0.0.1:$(cat "$work/api.port")
accept='application/*+xml;version=5.6'

status=$(curl -sS -o "$work/healthz" -w '%{http_code}' "$base/healthz") || status=000
[ "$status" = 200 ] || die "GET /healthz answered $status: $(cat "$work/healthz" 2>/dev/null)"

status=$(curl -sS -o /dev/null -D "$work/login.headers" -w '%{http_code}' -X POST \
	-u "alice@bench:$password" -H "Accept: $accept" "$base/api/sessions") || status=000
[ "$status" = 200 ] || die "login answered $status"
token=$(tr -d '\r' <"$work/login.headers" | sed -n 's/^[Xx]-[Vv][Cc]loud-[Aa]uthorization: *//p')
[ -n "$token" ] || die "the login gave no x-vcloud-authorization token"

get() { # PATH OUTFILE: print the status
	curl -sS -o "$2" -w '%{http_code}' -H "Accept: $accept" \
		-H "x-vcloud-authorization: $token" "$base$1" || echo 000
}
first_id=$(head -n 1 "$work/ids")
path_a="/api/vr/replications/{id}"
path_b="/api/org/$org_id/replications?page=2&pageSize=25"
status=$(get "/api/vr/replications/$first_id" "$work/a.xml")
[ "$status" = 200 ] || die "(a) answered $status: $(head -c 500 "$work/a.xml")"
grep -q "$first_id" "$work/a.xml" || die "(a) does not name its replication"
status=$(get "$path_b" "$work/b.xml")
[ "$status" = 200 ] || die "(b) answered $status: $(head -c 500 "$work/b.xml")"
refs=$(grep -o '<Reference ' "$work/b.xml" | wc -l)
[ "$refs" -eq 25 ] || die "(b) holds $refs References, not 25"

if ldd "$api" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	say "NOTE: $api is built with sanitizers: its figures are far below a normal build"
fi

# --- measuring ----------------------------------------------------------------------

# result files: one line "rps p50_ms p99_ms" per round
: >"$work/a.res"
: >"$work/b.res"
: >"$work/c.res"

run_wrk() { # NAME PATH
	local name=$1 path=$2 out=$work/wrk-$1.out line
	if ! BENCH_TOKEN=$token BENCH_PATH=$path BENCH_IDS=$work/ids BENCH_ACCEPT=$accept \
		"$WRK" -t2 -c"$connections" -d"${duration}s" -s "$lua" "$base" >"$out" 2>&1; then
		cat "$out" >&2
		die "wrk failed for ($name)"
	fi
	line=$(grep '^wrk-result ' "$out") || {
		cat "$out" >&2
		die "wrk printed no result for ($name)"
	}
	local requests status_errors socket_errors rps p50 p99
	requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
	status_errors=$(sed -n 's/.* status_errors=\([0-9]*\).*/\1/p' <<<"$line")
	socket_errors=$(sed -n 's/.* socket_errors=\([0-9]*\).*/\1/p' <<<"$line")
	rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")
	p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
	p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
	[ "${requests:-0}" -gt 0 ] || die "($name) completed no request"
	# answers other than 200 mean the figure measures errors, not the API
	if [ "$status_errors" -gt 0 ]; then
		tail -n 5 "$work/api.log" >&2
		die "($name): $status_errors of $requests answers were not 2xx"
	fi
	[ "$socket_errors" -eq 0 ] || say "($name): $socket_errors socket errors/timeouts"
	awk -v r="$rps" -v a="$p50" -v b="$p99" 'BEGIN { printf "%.1f %.3f %.3f\n", r, a / 1000, b / 1000 }' \
		>>"$work/$name.res"
}

run_pgbench() {
	local out=$work/pgbench.out tps p50 p99
	rm -f "$work"/pgb.*
	if ! "$PGBENCH" -S -M prepared -c 8 -j 2 -T "$duration" -n \
		-l --sampling-rate=0.1 --log-prefix="$work/pgb" \
		-h "$SVC_PG_SOCKDIR" -p "$SVC_PG_PORT" -U postgres "$pgbench_db" >"$out" 2>&1; then
		cat "$out" >&2
		die "pgbench failed"
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | tail -n 1)
	[ -n "$tps" ] || {
		cat "$out" >&2
		die "pgbench printed no tps"
	}
	# per-transaction log (a 10 % sample): the third column is the latency in us
	read -r p50 p99 < <(cat "$work"/pgb.* | awk '{ print $3 }' | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "0 0"; exit }
			i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
			i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
			printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000
		}')
	awk -v r="$tps" -v a="$p50" -v b="$p99" 'BEGIN { printf "%.1f %s %s\n", r, a, b }' \
		>>"$work/c.res"
}

say "measuring: $rounds rounds of ${duration}s each for (a), (b), (c), interleaved"
for round in $(seq 1 "$rounds"); do
	run_wrk a "$path_a"
	run_wrk b "$path_b"
	run_pgbench
	say "round $round: (a) $(tail -n 1 "$work/a.res")  (b) $(tail -n 1 "$work/b.res")  (c) $(tail -n 1 "$work/c.res")"
done

# --- report ----------------------------------------------------------------------------

median() { # FILE COLUMN
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
series() { # FILE COLUMN: the values of every round
	awk -v c="$2" '{ printf "%s%s", (NR > 1 ? " / " : ""), $c }' "$1"
}

a_rps=$(median "$work/a.res" 1)
b_rps=$(median "$work/b.res" 1)
c_tps=$(median "$work/c.res" 1)

echo
echo "vrcloud-api benchmark: wrk -t2 -c$connections -d${duration}s, server 2 threads, PostgreSQL over its unix socket;"
echo "medians of $rounds interleaved rounds; $(nproc) CPUs shared by every process"
echo
printf '%-52s %10s %9s %9s %9s\n' "measurement" "req/s" "p50 ms" "p99 ms" "vs (c)"
printf '%-52s %10s %9s %9s %9s\n' "----------------------------------------------------" \
	"----------" "---------" "---------" "---------"
row() { # LABEL FILE
	local rps p50 p99 ratio
	rps=$(median "$2" 1)
	p50=$(median "$2" 2)
	p99=$(median "$2" 3)
	ratio=$(awk -v x="$rps" -v y="$c_tps" 'BEGIN { if (y > 0) printf "%.3f", x / y; else print "-" }')
	printf '%-52s %10.0f %9.2f %9.2f %9s\n' "$1" "$rps" "$p50" "$p99" "$ratio"
}
row "(a) GET /api/vr/replications/{id}" "$work/a.res"
row "(b) GET /api/org/{id}/replications page 2 of 25" "$work/b.res"
row "(c) pgbench -S -M prepared -c 8 -j 2 (tps)" "$work/c.res"
echo
echo "per round (req/s): (a) $(series "$work/a.res" 1)"
echo "                   (b) $(series "$work/b.res" 1)"
echo "                   (c) $(series "$work/c.res" 1)"
awk -v a="$a_rps" -v b="$b_rps" -v c="$c_tps" 'BEGIN {
	printf "ratios: (a)/(c) = %.3f   (b)/(c) = %.3f\n", a / c, b / c }'
