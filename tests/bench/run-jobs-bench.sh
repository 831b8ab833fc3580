#!/usr/bin/env bash
# Benchmark of the job pipeline end to end, run by `make bench` (never by
# `make check`):
#
#   tests/bench/run-jobs-bench.sh BUILDDIR
#
# Starts a throwaway PostgreSQL and Redis (contrib/lib/services.sh), creates
# and migrates a database, loads an org with a user, a VDC, a peer and
# BENCH_REPLICATIONS replications (one instance each), makes four worker
# credentials, starts BUILDDIR/vrcloud-api, logs in, and measures:
#   (a) actions per second end to end, POST action -> Task success, with 1,
#       2 and 4 vrcloud-worker processes (BENCH_WORKERS) on the same API,
#       PostgreSQL and Redis: BENCH_ACTIONS pause and resume actions over
#       the replications, sent in rounds (every replication paused, then
#       resumed, ...; a round is sent once the last one's Tasks ended, so
#       that the state machine accepts every action), BENCH_PARALLEL
#       requests at a time (curl --parallel). Figures come from the
#       database: actions/s = successes / (last end_time - first
#       start_time), latency = end_time - start_time of each Task (the
#       accepting transaction to the completing one).
#   (b) the cost of the outbox relay: the accept rate of BENCH_BACKLOG sync
#       actions with Redis up, then with Redis down (no worker runs in
#       either: the jobs wait in the outbox table), how long the relay takes
#       to publish the backlog's lane heads once Redis is back, and how long
#       the largest worker count then takes to run the backlog;
#   (c) beside them, on the same PostgreSQL, pgbench -M prepared -c 8 -j 2
#       running a transaction shaped like an accept (repeatable read: lock
#       a row, two inserts, one update; serialization failures retried; its
#       own database).
# The ratios to (c) are printed. Everything shares the machine's cores, so
# the figures are relative, not capacities.
#
# Environment: BENCH_ACTIONS (default 2000), BENCH_REPLICATIONS (200),
# BENCH_WORKERS (worker counts, default "1 2 4"), BENCH_CONCURRENCY (runner
# threads of each worker, 4), BENCH_API_THREADS (4), BENCH_PARALLEL (16),
# BENCH_BACKLOG (1000), BENCH_DURATION (seconds of pgbench, 10),
# BENCH_LOG_LEVEL (info), PGBENCH, PSQL (programs), BENCH_KEEP=1 keeps the
# work directory.
#
# The exit status is non-zero only when something could not run (a missing
# program, a server that did not start, answers that were not 202, Tasks
# that never ended); a slow figure never fails it. Every process started
# here is stopped on exit.
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

actions=${BENCH_ACTIONS:-2000}
replications=${BENCH_REPLICATIONS:-200}
worker_counts=${BENCH_WORKERS:-"1 2 4"}
concurrency=${BENCH_CONCURRENCY:-4}
api_threads=${BENCH_API_THREADS:-4}
parallel=${BENCH_PARALLEL:-16}
backlog=${BENCH_BACKLOG:-1000}
duration=${BENCH_DURATION:-10}
log_level=${BENCH_LOG_LEVEL:-info}
password=bench-Password-1
prefix=bench
# a bound on "every Task ended": only a broken pipeline reaches it
patience=300

for v in actions replications concurrency api_threads parallel backlog duration; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done
max_workers=0
for n in $worker_counts; do
	if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 4 ]; then
		die "BENCH_WORKERS must list worker counts from 1 to 4, not '$worker_counts'"
	fi
	[ "$n" -le "$max_workers" ] || max_workers=$n
done
[ "$max_workers" -gt 0 ] || die "BENCH_WORKERS is empty"
[ $((actions % replications)) -eq 0 ] ||
	die "BENCH_ACTIONS ($actions) must be a multiple of BENCH_REPLICATIONS ($replications)"
rounds=$((actions / replications))

# --- programs ------------------------------------------------------------

PGBENCH=$(find_program "${PGBENCH:-}" pgbench /usr/lib/postgresql/15/bin/pgbench) ||
	die "pgbench not found (apt-get install postgresql-contrib)"
PSQL=$(find_program "${PSQL:-}" psql /usr/lib/postgresql/15/bin/psql) || die "psql not found"
command -v curl >/dev/null || die "curl not found"
command -v redis-cli >/dev/null || die "redis-cli not found"
api=$builddir/vrcloud-api
ctl=$builddir/vrcloudctl
worker=$builddir/vrcloud-worker
for p in "$api" "$ctl" "$worker"; do
	[ -x "$p" ] || die "$p is not built (run make first)"
done

# --- clean-up --------------------------------------------------------------

work=$(mktemp -d /tmp/vrcloud-jobs-bench.XXXXXX)
chmod 755 "$work"
api_pid=
worker_pids=()
registered=() # event=registered lines in each worker's log so far
services_started=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	set +e
	[ "${#worker_pids[@]}" -eq 0 ] || stop_pids "${worker_pids[@]}"
	[ -z "$api_pid" ] || stop_pids "$api_pid"
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
db_uri=${SVC_PG_URI/'@/postgres?'/'@/vrjobs?'}
pgbench_db=vrjobs_pgbench
pgbench_uri=${SVC_PG_URI/'@/postgres?'/"@/$pgbench_db?"}
[ "$db_uri" != "$admin_uri" ] || die "unexpected PostgreSQL URI: $SVC_PG_URI"

sql() { # URI SQL...: run statements, print tuples only
	local uri=$1
	shift
	"$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$uri" "$@"
}
db() { sql "$db_uri" -c "$1"; }

sql "$admin_uri" -c "CREATE DATABASE vrjobs" -c "CREATE DATABASE $pgbench_db"
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
                          source_vm_id, replication_state, created_at)
SELECT p.org_id, p.vdc_id, p.id, 'vm-' || lpad(g::text, 4, '0'), 'benchmark replication',
       240, 'vm-' || g, 'ok', now() - make_interval(secs => g)
FROM peers p, generate_series(1, $replications) g;

INSERT INTO instances (replication_id, seq, transfer_start_time, transfer_seconds,
                       transfer_bytes)
SELECT id, 1, now() - interval '10 minutes', 42, 1073741824 FROM replications;

UPDATE replications SET next_instance_seq = 2;
ANALYZE;
SQL
db "SELECT id FROM replications ORDER BY id" >"$work/ids"
[ "$(wc -l <"$work/ids")" -eq "$replications" ] || die "the fixtures are incomplete"

for i in $(seq 1 "$max_workers"); do
	"$ctl" --database "$db_uri" service add "worker-$i" --kind worker >"$work/service.out" 2>&1 ||
		{
			cat "$work/service.out" >&2
			die "vrcloudctl service add worker-$i failed"
		}
	install -m 600 /dev/null "$work/worker-$i.token"
	sed -n 's/^token=//p' "$work/service.out" >"$work/worker-$i.token"
	rm -f "$work/service.out"
	[ -s "$work/worker-$i.token" ] || die "vrcloudctl service add printed no token"
done

# pgbench: a transaction shaped like the accept of an action (lock the
# replication, insert a Task and a job, change the replication's state)
sql "$pgbench_uri" >/dev/null <<SQL
CREATE TABLE rg (id int PRIMARY KEY, paused boolean NOT NULL DEFAULT false);
CREATE TABLE task (id bigserial PRIMARY KEY, rg int NOT NULL, status text NOT NULL,
                   created timestamptz NOT NULL DEFAULT now());
CREATE TABLE job (id bigserial PRIMARY KEY, task bigint NOT NULL, lane text NOT NULL,
                  state text NOT NULL DEFAULT 'queued');
INSERT INTO rg (id) SELECT generate_series(1, $replications);
SQL
cat >"$work/accept.pgbench" <<SQL
\\set id random(1, $replications)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT paused FROM rg WHERE id = :id FOR UPDATE;
INSERT INTO task (rg, status) VALUES (:id, 'queued');
INSERT INTO job (task, lane) VALUES (currval('task_id_seq'), 'replication:' || :id);
UPDATE rg SET paused = NOT paused WHERE id = :id;
COMMIT;
SQL

# --- the API server -------------------------------------------------------------

say "starting vrcloud-api ($api_threads threads)"
printf '[jobs]\nprefix = %s\n' "$prefix" >"$work/api.conf"
"$api" --config "$work/api.conf" --listen 127.0.0.1 --port 0 --port-file "$work/api.port" \
	--threads "$api_threads" --database "$db_uri" --redis "unix://$SVC_REDIS_SOCKET" \
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

if ldd "$api" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	say "NOTE: $api is built with sanitizers: its figures are far below a normal build"
fi

# --- workers -----------------------------------------------------------------------

registrations() { # I: event=registered lines in worker I's log
	local n
	n=$(grep -c 'event=registered' "$work/worker-$1.log" 2>/dev/null) || n=${n:-0}
	echo "${n:-0}"
}

start_workers() { # N
	local i log
	for i in $(seq 1 "$1"); do
		log=$work/worker-$i.log
		"$worker" --name "worker-$i" --api-url "$base" --token-file "$work/worker-$i.token" \
			--redis "unix://$SVC_REDIS_SOCKET" --jobs-prefix "$prefix" \
			--traffic-address 127.0.0.1:44046 --concurrency "$concurrency" \
			--log-level "$log_level" --log-file "$log" </dev/null >>"$work/worker-$i.err" 2>&1 &
		worker_pids+=("$!")
	done
	for i in $(seq 1 "$1"); do
		for _ in $(seq 1 400); do
			[ "$(registrations "$i")" -gt "${registered[i]:-0}" ] && break
			sleep 0.05
		done
		[ "$(registrations "$i")" -gt "${registered[i]:-0}" ] || die "worker-$i did not register"
		registered[i]=$(registrations "$i")
	done
}

stop_workers() {
	[ "${#worker_pids[@]}" -eq 0 ] || stop_pids "${worker_pids[@]}"
	worker_pids=()
}

# --- sending and waiting ----------------------------------------------------------------

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ACTION COUNT: POST ACTION to COUNT replications, rotating over the ids,
# BENCH_PARALLEL at a time; dies unless every answer is 202. Prints the
# seconds it took.
send() {
	local action=$1 count=$2 conf=$work/curl.conf out=$work/curl.out t0 t1 bad
	awk -v n="$count" -v base="$base" -v action="$action" '
		{ ids[NR] = $1 }
		END {
			for (i = 0; i < n; i++) {
				printf "url = \"%s/api/vr/replications/%s/action/%s\"\n", base, ids[i % NR + 1], action
				print "output = \"/dev/null\""
			}
		}' "$work/ids" >"$conf"
	t0=$(now)
	curl -sS --no-progress-meter -Z --parallel-max "$parallel" -X POST -H "Accept: $accept" \
		-H "x-vcloud-authorization: $token" -H 'Content-Length: 0' \
		-w '%{http_code}\n' -K "$conf" >"$out" 2>"$work/curl.err" || true
	t1=$(now)
	bad=$(grep -vc '^202$' "$out" || true)
	[ "$(grep -c '^202$' "$out")" -eq "$count" ] || {
		sort "$out" | uniq -c >&2
		tail -n 5 "$work/api.log" >&2
		die "$action: $bad of $count answers were not 202"
	}
	elapsed "$t0" "$t1"
}

# MARKER: wait until no Task accepted since MARKER (a database time) is
# queued or running.
wait_ended() {
	local marker=$1 deadline open
	deadline=$(($(date +%s) + patience))
	while :; do
		open=$(db "SELECT count(*) FROM tasks WHERE start_time >= '$marker'
			AND status IN ('queued', 'running')")
		[ "$open" -eq 0 ] && return 0
		[ "$(date +%s)" -lt "$deadline" ] || die "$open Tasks still open after ${patience}s"
		sleep 0.05
	done
}

# --- (a) actions per second, per worker count -------------------------------------------

: >"$work/a.res"
next=pause
for n in $worker_counts; do
	say "(a) $n worker(s): $actions actions in $rounds rounds of $replications"
	start_workers "$n"
	marker=$(db "SELECT now()")
	for _ in $(seq 1 "$rounds"); do
		send "$next" "$replications" >/dev/null
		wait_ended "$marker"
		if [ "$next" = pause ]; then next=resume; else next=pause; fi
	done
	stop_workers
	read -r ok failed span p50 p99 < <(db "
		SELECT count(*) FILTER (WHERE status = 'success'),
		       count(*) FILTER (WHERE status <> 'success'),
		       extract(epoch FROM max(end_time) - min(start_time)),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY
		           extract(epoch FROM end_time - start_time) * 1000),
		       percentile_cont(0.99) WITHIN GROUP (ORDER BY
		           extract(epoch FROM end_time - start_time) * 1000)
		FROM tasks WHERE start_time >= '$marker'" | tr '|' ' ')
	[ "$failed" -eq 0 ] || die "$failed of $((ok + failed)) Tasks did not succeed"
	awk -v n="$n" -v ok="$ok" -v s="$span" -v a="$p50" -v b="$p99" \
		'BEGIN { printf "%d %.1f %.1f %.1f %d %.2f\n", n, ok / s, a, b, ok, s }' >>"$work/a.res"
	say "    $(tail -n 1 "$work/a.res")"
done

# --- (b) the outbox relay ----------------------------------------------------------------

# MARKER COUNT: dies unless the COUNT Tasks accepted since MARKER succeeded.
all_succeeded() {
	local ok
	ok=$(db "SELECT count(*) FROM tasks WHERE start_time >= '$1' AND status = 'success'")
	[ "$ok" -eq "$2" ] || die "$ok of $2 Tasks succeeded"
}

start_workers "$max_workers"
if [ "$next" = resume ]; then
	# an odd number of rounds left every replication paused: sync needs them running
	marker=$(db "SELECT now()")
	send resume "$replications" >/dev/null
	wait_ended "$marker"
fi
stop_workers

say "(b) accepting $backlog sync actions with Redis up (no worker runs)"
marker=$(db "SELECT now()")
up_s=$(send sync "$backlog")
start_workers "$max_workers"
wait_ended "$marker"
all_succeeded "$marker" "$backlog"
stop_workers

say "(b) accepting $backlog sync actions with Redis down"
svc_stop_redis "$work/svc" || die "Redis did not stop"
marker=$(db "SELECT now()")
down_s=$(send sync "$backlog")
heads=$(db "SELECT count(*) FROM jobs j WHERE j.state = 'queued' AND j.published_at IS NULL
	AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.lane = j.lane AND o.seq < j.seq
	                AND o.state IN ('queued', 'running'))")
say "(b) starting Redis again: $heads lane heads wait to be published"
t0=$(now)
svc_start_redis "$work/svc" || die "Redis did not start again"
deadline=$(($(date +%s) + patience))
while :; do
	left=$(db "SELECT count(*) FROM jobs j WHERE j.state = 'queued' AND j.published_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.lane = j.lane AND o.seq < j.seq
		                AND o.state IN ('queued', 'running'))")
	[ "$left" -eq 0 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || die "the relay left $left heads unpublished"
	sleep 0.02
done
drain_s=$(elapsed "$t0" "$(now)")
stream=$(redis-cli -s "$SVC_REDIS_SOCKET" xlen "$prefix:jobs")
t0=$(now)
start_workers "$max_workers"
wait_ended "$marker"
run_s=$(elapsed "$t0" "$(now)")
all_succeeded "$marker" "$backlog"
stop_workers

# --- (c) pgbench ---------------------------------------------------------------------------

say "(c) pgbench: the accept-shaped transaction for ${duration}s"
# serialization failures are retried, as the API retries an accept
if ! "$PGBENCH" -n -M prepared -c 8 -j 2 -T "$duration" --max-tries=10 -f "$work/accept.pgbench" \
	-h "$SVC_PG_SOCKDIR" -p "$SVC_PG_PORT" -U postgres "$pgbench_db" >"$work/pgbench.out" 2>&1; then
	cat "$work/pgbench.out" >&2
	die "pgbench failed"
fi
tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench.out" | tail -n 1)
lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$work/pgbench.out" | tail -n 1)
[ -n "$tps" ] || {
	cat "$work/pgbench.out" >&2
	die "pgbench printed no tps"
}

# --- report --------------------------------------------------------------------------------

echo
echo "vrcloud job pipeline benchmark: POST action -> Task success; $actions pause/resume actions over"
echo "$replications replications in $rounds rounds, $parallel requests at a time; vrcloud-api $api_threads threads,"
echo "workers of $concurrency runners; PostgreSQL over its unix socket; $(nproc) CPUs shared by every process"
echo
printf '%-44s %10s %9s %9s %9s\n' "(a) workers" "actions/s" "p50 ms" "p99 ms" "vs (c)"
printf '%-44s %10s %9s %9s %9s\n' "--------------------------------------------" \
	"----------" "---------" "---------" "---------"
while read -r n rate p50 p99 ok span; do
	printf '%-44s %10.1f %9.1f %9.1f %9.3f\n' "$n worker(s), $ok actions in ${span}s" \
		"$rate" "$p50" "$p99" "$(awk -v x="$rate" -v y="$tps" 'BEGIN { print x / y }')"
done <"$work/a.res"
echo
awk -v n="$backlog" -v up="$up_s" -v down="$down_s" -v drain="$drain_s" -v heads="$heads" \
	-v stream="$stream" -v run="$run_s" -v w="$max_workers" -v tps="$tps" 'BEGIN {
	printf "(b) accepts, Redis up:   %8.1f actions/s (%d in %.2fs)   vs (c) %.3f\n", n / up, n, up, n / up / tps
	printf "    accepts, Redis down: %8.1f actions/s (%d in %.2fs)   vs (c) %.3f\n", n / down, n, down, n / down / tps
	printf "    down/up = %.3f\n", up / down
	printf "    relay: %d lane heads published %.2fs after Redis came back (stream length then %d)\n", heads, drain, stream
	printf "    backlog of %d run by %d workers in %.2fs (%.1f actions/s)\n", n, w, run, n / run
}'
echo
printf '(c) pgbench -M prepared -c 8 -j 2, accept-shaped transaction: %.1f tps, %s ms average\n' \
	"$tps" "$lat"
first=$(head -n 1 "$work/a.res" | awk '{ print $2 }')
echo
echo "ratios to 1 worker:"
while read -r n rate _; do
	awk -v n="$n" -v r="$rate" -v f="$first" 'BEGIN { printf "    %d worker(s): %.2f\n", n, r / f }'
done <"$work/a.res"
