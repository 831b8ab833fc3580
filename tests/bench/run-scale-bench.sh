#!/usr/bin/env bash
# Benchmark of the data plane at scale, run by `make bench` (never by
# `make check`):
#
#   tests/bench/run-scale-bench.sh BUILDDIR
#
# Starts a throwaway PostgreSQL and Redis (contrib/lib/services.sh), then the
# whole cloud side as contrib/vrcloud-up does: vrcloud-api, two
# vrcloud-worker processes sharing a replica store directory, two
# vrcloud-proxy processes behind haproxy (TCP mode, TLS from the test CA of
# contrib/tunnel-test-ca), and pairs a site with vrcloud-agent pair. Then:
#
#   (a) failover time by disk size. For each of BENCH_SCALE_FAILOVER_SIZES
#       (GiB, default "1 8") two VMs of one sparse disk with 64 MiB written
#       by vrcloud-io are protected with vrcloud-agent protect and synced
#       with vrcloud-agent sync through haproxy, a proxy and a worker: a full
#       instance, then two instances of a small change each (256 random
#       4 KiB writes; retention 10x5 keeps the first). One VM is failed over
#       to its newest instance, the other to its first one (the undo logs of
#       the two changes applied), both
#       by POST /api/vr/replications/{id}/action/failover, the Task waited
#       for. The Task's endTime - startTime and the wall time from the POST
#       to the Task's success are printed, with the ratio of the largest
#       size to the smallest (size independence: a ratio near 1).
#   (b) replications held at a 1-minute RPO: BENCH_SCALE_VMS (default 1000)
#       VMs of one BENCH_SCALE_VM_MIB MiB disk (4) each, 256 KiB written,
#       protected with vrcloud-agent protect (BENCH_SCALE_PARALLEL at once),
#       synced by one vrcloud-agent daemon's scheduler
#       (BENCH_SCALE_SYNC_WORKERS transfers at once) through haproxy, 2
#       proxies and 2 workers. Once every replication has its first
#       instance, the bench writes small scattered changes (16 random 4 KiB
#       writes with the changed-block log) into BENCH_SCALE_WRITERS percent
#       of the VMs every 10 s for BENCH_SCALE_MINUTES minutes (5), and reads
#       every replication through GET /api/vr/replications/{id} once a
#       minute, as a monitoring poller would, counting those whose
#       CurrentRpoViolation > 0. The API takes an RPO of 5 to 1440 minutes
#       (as vSphere Replication does): for BENCH_SCALE_RPO (default 1)
#       below 5 the VMs are protected at 5 and their RPO is then lowered in
#       the database and in the agent's state files, which both take 1.
#       Printed: the replications, instances committed per minute (from the
#       newest sequence numbers), the worst newest-instance age seen by a
#       poller of the database every 2 s, the replications whose age ever
#       passed the RPO, the API's violation counts, and the ratio of the
#       replications held to vSphere Replication's limits (200 protected VMs
#       per VR server, 2,000 per appliance; its RPO floor is 5 minutes).
#
# Environment: BENCH_SCALE_FAILOVER_SIZES, BENCH_SCALE_VMS,
# BENCH_SCALE_VM_MIB, BENCH_SCALE_MINUTES, BENCH_SCALE_WRITERS (percent, 10),
# BENCH_SCALE_SYNC_WORKERS (16), BENCH_SCALE_MAX_TRANSFERS (the workers'
# max_transfers, 16), BENCH_SCALE_PARALLEL (8), BENCH_SCALE_PARTS ("failover
# rpo": the parts to run), BENCH_LOG_LEVEL (info), PSQL, HAPROXY,
# BENCH_KEEP=1 keeps the work directory (in BENCH_SCALE_DIR, default /tmp).
#
# The exit status is non-zero only when something could not run (a missing
# program, a daemon that did not start, a sync or a failover that failed); a
# slow figure never fails it. Every process started here is stopped on exit.
set -euo pipefail

usage() {
	echo "usage: $0 BUILDDIR" >&2
	exit 2
}
[ $# -eq 1 ] || usage
builddir=$(cd "$1" && pwd -P) || usage
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
srcdir=$(cd "$here/../.." && pwd -P)
STOP_WAIT_S=30 # stop_pids: seconds a daemon gets to stop
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

fo_sizes=${BENCH_SCALE_FAILOVER_SIZES:-"1 8"}
vms=${BENCH_SCALE_VMS:-1000}
vm_mib=${BENCH_SCALE_VM_MIB:-4}
minutes=${BENCH_SCALE_MINUTES:-5}
writers=${BENCH_SCALE_WRITERS:-10}
sync_workers=${BENCH_SCALE_SYNC_WORKERS:-16}
rpo=${BENCH_SCALE_RPO:-1}
max_transfers=${BENCH_SCALE_MAX_TRANSFERS:-16}
parallel=${BENCH_SCALE_PARALLEL:-8}
parts=${BENCH_SCALE_PARTS:-"failover rpo"}
log_level=${BENCH_LOG_LEVEL:-info}
password=bench-Password-1

for v in vms vm_mib minutes rpo sync_workers max_transfers parallel; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done
if ! [[ $writers =~ ^[0-9]+$ ]] || [ "$writers" -gt 100 ]; then
	die "BENCH_SCALE_WRITERS must be a percentage, not '$writers'"
fi
for s in $fo_sizes; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE_FAILOVER_SIZES lists GiB, not '$s'"
done
for p in $parts; do
	case $p in failover | rpo) ;; *) die "BENCH_SCALE_PARTS: unknown part '$p'" ;; esac
done

# --- programs ------------------------------------------------------------

PSQL=$(find_program "${PSQL:-}" psql /usr/lib/postgresql/15/bin/psql) || die "psql not found"
HAPROXY=$(find_program "${HAPROXY:-}" haproxy /usr/sbin/haproxy) ||
	die "haproxy not found (contrib/install-deps test)"
command -v curl >/dev/null || die "curl not found"
command -v openssl >/dev/null || die "openssl not found"
api=$builddir/vrcloud-api
ctl=$builddir/vrcloudctl
worker=$builddir/vrcloud-worker
proxy=$builddir/vrcloud-proxy
agent=$builddir/vrcloud-agent
vrio=$builddir/vrcloud-io
for p in "$api" "$ctl" "$worker" "$proxy" "$agent" "$vrio"; do
	[ -x "$p" ] || die "$p is not built (make bench-scale builds it)"
done
# every daemon holds a descriptor per transfer, the proxies two
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- clean-up --------------------------------------------------------------

work=$(mktemp -d "${BENCH_SCALE_DIR:-/tmp}/vrcloud-scale-bench.XXXXXX")
chmod 755 "$work"
pids=() # every daemon started here, stopped in reverse order
writer_pid=
services_started=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$? i
	set +e
	[ -z "$writer_pid" ] || stop_pids "$writer_pid"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pids "${pids[i]}"
	done
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

fmt3() { awk -v x="$1" 'BEGIN { printf "%.3f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END {
	if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
	else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

wait_file() { # FILE PID NAME: until FILE has LINES lines (default 1)
	local _ lines=${4:-1}
	for _ in $(seq 1 600); do
		[ -s "$1" ] && [ "$(wc -l <"$1")" -ge "$lines" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	die "$3 did not start (see $work)"
}

wait_log() { # FILE PATTERN PID NAME: until FILE has a line matching PATTERN
	local _
	for _ in $(seq 1 600); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	tail -n 20 "$1" >&2 || true
	die "$4 is not ready (see $1)"
}

# --- services and fixtures --------------------------------------------------

# shellcheck source-path=SCRIPTDIR source=../../contrib/lib/services.sh
. "$srcdir/contrib/lib/services.sh"
services_started=1
say "starting PostgreSQL and Redis in $work/svc"
svc_start_pg "$work/svc" || die "PostgreSQL did not start"
svc_start_redis "$work/svc" || die "Redis did not start"

admin_uri=$SVC_PG_URI
db_uri=${SVC_PG_URI/'@/postgres?'/'@/vrscale?'}
[ "$db_uri" != "$admin_uri" ] || die "unexpected PostgreSQL URI: $SVC_PG_URI"
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$db_uri" "$@"; }
redis_uri="unix://$SVC_REDIS_SOCKET"

"$PSQL" -X -q -v ON_ERROR_STOP=1 "$admin_uri" -c "CREATE DATABASE vrscale"
"$ctl" --database "$db_uri" migrate >"$work/migrate.log" 2>&1 ||
	{
		cat "$work/migrate.log" >&2
		die "vrcloudctl migrate failed"
	}
printf '%s\n' "$password" | "$ctl" --database "$db_uri" seed-demo --org bench --vdc bench-vdc \
	--user bench-admin --password-stdin >"$work/seed.out" 2>"$work/seed.err" ||
	{
		cat "$work/seed.err" >&2
		die "vrcloudctl seed-demo failed"
	}
vdc_id=$(sed -n 's/^vdc_id=//p' "$work/seed.out")
[ -n "$vdc_id" ] || die "vrcloudctl seed-demo printed no vdc_id"
install -m 600 /dev/null "$work/password"
printf '%s\n' "$password" >"$work/password"

service_token() { # NAME KIND FILE
	"$ctl" --database "$db_uri" service add "$1" --kind "$2" >"$work/service.out" 2>&1 ||
		{
			cat "$work/service.out" >&2
			die "vrcloudctl service add $1 failed"
		}
	install -m 600 /dev/null "$3"
	sed -n 's/^token=//p' "$work/service.out" >"$3"
	rm -f "$work/service.out"
	[ -s "$3" ] || die "vrcloudctl service add $1 printed no token"
}
for n in 1 2; do
	service_token "worker-$n" worker "$work/worker-$n.token"
	service_token "proxy-$n" proxy "$work/proxy-$n.token"
done

bash "$srcdir/contrib/tunnel-test-ca" "$work/tls" 127.0.0.1 localhost >"$work/ca.out" ||
	die "contrib/tunnel-test-ca failed"

# --- daemons -------------------------------------------------------------------

say "starting vrcloud-api"
"$api" --listen 127.0.0.1 --port 0 --port-file "$work/api.port" --threads 4 \
	--database "$db_uri" --redis "$redis_uri" \
	--log-level "$log_level" --log-file "$work/api.log" </dev/null &
pids+=("$!")
wait_file "$work/api.port" "$!" vrcloud-api
api_url=http://127.0.0.1:$(cat "$work/api.port")
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$api_url/healthz")" = 200 ] ||
	die "vrcloud-api does not answer /healthz"

proxy_ports=()
for n in 1 2; do
	say "starting vrcloud-proxy $n"
	cat >"$work/proxy-$n.ini" <<INI
[proxy]
name = proxy-$n
listen = 127.0.0.1:0
reverse_address = 127.0.0.1:0
internal_listen = 127.0.0.1:0
metrics_address = 127.0.0.1:0
port_file = $work/proxy-$n.port
cert_file = $work/tls/proxy.pem
key_file = $work/tls/proxy.key
api_url = $api_url
token_file = $work/proxy-$n.token
heartbeat_interval = 5
registry_ttl = 15

[redis]
uri = $redis_uri

[log]
level = $log_level
file = $work/proxy-$n.log
INI
	"$proxy" --config "$work/proxy-$n.ini" </dev/null >>"$work/proxy-$n.err" 2>&1 &
	pids+=("$!")
	wait_file "$work/proxy-$n.port" "$!" "vrcloud-proxy $n" 3
	proxy_ports+=("$(head -n 1 "$work/proxy-$n.port")")
done
proxy_internal=127.0.0.1:$(sed -n 2p "$work/proxy-1.port")

for n in 1 2; do
	say "starting vrcloud-worker $n"
	port=$(svc_free_port) || die "no free port for worker $n"
	cat >"$work/worker-$n.ini" <<INI
[worker]
name = worker-$n
api_url = $api_url
token_file = $work/worker-$n.token
traffic_address = 127.0.0.1:$port
concurrency = 4
store_dir = $work/store
recovered_dir = $work/recovered
proxy_internal = $proxy_internal
max_transfers = $max_transfers

[redis]
uri = $redis_uri

[log]
level = $log_level
file = $work/worker-$n.log
INI
	"$worker" --config "$work/worker-$n.ini" </dev/null >>"$work/worker-$n.err" 2>&1 &
	pids+=("$!")
	wait_log "$work/worker-$n.log" "event=registered" "$!" "vrcloud-worker $n"
done

say "starting haproxy (TCP mode) in front of the proxies"
lb_port=$(svc_free_port) || die "no free port for haproxy"
{
	cat <<CFG
global
	maxconn 8192

defaults
	mode tcp
	timeout connect 2s
	timeout client 5m
	timeout server 5m
	timeout tunnel 1h
	retries 2
	option redispatch

frontend tunnels
	bind 127.0.0.1:$lb_port
	default_backend proxies

backend proxies
	balance leastconn
	default-server inter 1s fall 2 rise 2
CFG
	for n in 1 2; do
		printf '\tserver proxy-%d 127.0.0.1:%s check\n' "$n" "${proxy_ports[n - 1]}"
	done
} >"$work/haproxy.cfg"
"$HAPROXY" -db -f "$work/haproxy.cfg" </dev/null >>"$work/haproxy.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$lb_port") 2>/dev/null && break
	sleep 0.05
done

# The site: paired once; each part has a state directory of its own with
# the same site credential.
say "pairing the site"
mkdir -p "$work/site"
"$agent" pair --api "$api_url" --user bench-admin@bench --vdc "$vdc_id" \
	--site-name "Bench Site" --state-dir "$work/site" <"$work/password" \
	>"$work/pair.log" 2>&1 || {
	cat "$work/pair.log" >&2
	die "vrcloud-agent pair failed"
}

state_dir() { # NAME: a state directory with the site's pairing, its path
	local d=$work/agent-$1
	mkdir -p "$d"
	chmod 700 "$d"
	cp -p "$work/site/site.ini" "$work/site/site.credential" "$d/"
	cat >"$d/agent.conf" <<INI
[agent]
name = bench-site
proxy = 127.0.0.1:$lb_port
credential_file = $d/site.credential
state_dir = $d
ca_file = $work/tls/ca.pem
server_name = 127.0.0.1
backoff_max = 5
sync_workers = $sync_workers

[log]
level = $log_level
file = $d/agent.log
INI
	echo "$d"
}

# An API session token.
token=
login() {
	token=$(curl -sS -o /dev/null -D - -X POST -u "bench-admin@bench:$password" \
		-H 'Accept: application/*+xml;version=5.6' "$api_url/api/sessions" |
		tr -d '\r' | sed -n 's/^x-vcloud-authorization: *//Ip')
	[ -n "$token" ] || die "could not log in to the API"
}
login
apicurl() { curl -sS -H "x-vcloud-authorization: $token" -H 'Accept: application/*+xml;version=5.6' "$@"; }

# --- (a) failover time by disk size ------------------------------------------------

protect() { # STATEDIR VMDIR: the replication id
	local out
	out=$("$agent" protect "$2" --rpo 60 --retention 10x5 --user bench-admin@bench \
		--password-file "$work/password" --state-dir "$1" 2>&1) || {
		printf '%s\n' "$out" >&2
		die "vrcloud-agent protect $2 failed"
	}
	sed -n 's/^replication=//p' <<<"$out"
}

sync_vm() { # STATEDIR VM: the instance id (the sync's line goes to the log)
	local out
	out=$("$agent" sync "$2" -c "$1/agent.conf" 2>&1) || {
		printf '%s\n' "$out" | tail -n 20 >&2
		die "vrcloud-agent sync $2 failed"
	}
	printf '%s\n' "$out" | grep 'instance=' | tail -n 1 >>"$work/syncs.log"
	printf '%s\n' "$out" | sed -n 's/^.*instance=\([0-9a-f-]*\).*$/\1/p' | tail -n 1
}

make_vm() { # DIR NAME SIZE DATA_BYTES BLOCK SEED
	mkdir -p "$1"
	"$vrio" write "$1/disk-2000.img" --size "$3" --bytes "$4" -b "$5" --seed "$6" \
		-l "$1/disk-2000.img.cbt" >/dev/null 2>&1 || die "vrcloud-io could not write $1"
	printf '[vm]\nname = %s\n[disk 2000]\nfile = disk-2000.img\n' "$2" >"$1/vm.ini"
}

small_change() { # DIR SEED
	"$vrio" write "$1/disk-2000.img" --count 256 -b 4096 --seed "$2" \
		-l "$1/disk-2000.img.cbt" >/dev/null 2>&1 || die "vrcloud-io could not write $1"
}

# POST failover on replication $1 (to instance $2 when given); sets
# fo_task (endTime - startTime, s) and fo_wall (POST to success seen, s).
failover() {
	local body t0 t1 out href status doc start end
	if [ -n "${2:-}" ]; then
		body="<FailoverParams xmlns=\"http://www.vmware.com/vr/v6.0\"><PowerOn>false</PowerOn><InstanceId>$2</InstanceId></FailoverParams>"
	else
		body='<FailoverParams xmlns="http://www.vmware.com/vr/v6.0"><PowerOn>false</PowerOn></FailoverParams>'
	fi
	t0=$(now)
	out=$(apicurl -X POST -H 'Content-Type: application/vnd.vmware.hcs.failoverParams+xml' \
		--data-binary "$body" -w '\n%{http_code}' "$api_url/api/vr/replications/$1/action/failover")
	[ "$(tail -n 1 <<<"$out")" = 202 ] || die "failover of $1 was not accepted: $out"
	href=$(sed -n 's/^.*<Task[^>]* href="\([^"]*\)".*$/\1/p' <<<"$out" | head -n 1)
	[ -n "$href" ] || die "no Task in the failover's answer: $out"
	for _ in $(seq 1 12000); do
		doc=$(apicurl "$href")
		status=$(sed -n 's/^.*<Task[^>]* status="\([a-z]*\)".*$/\1/p' <<<"$doc" | head -n 1)
		case $status in
		success) break ;;
		error | aborted | canceled) die "the failover of $1 ended in $status: $doc" ;;
		esac
		sleep 0.02
	done
	t1=$(now)
	[ "$status" = success ] || die "the failover of $1 did not end"
	start=$(sed -n 's/^.*<Task[^>]* startTime="\([^"]*\)".*$/\1/p' <<<"$doc" | head -n 1)
	end=$(sed -n 's/^.*<Task[^>]* endTime="\([^"]*\)".*$/\1/p' <<<"$doc" | head -n 1)
	fo_task=$(awk -v a="$(date -d "$start" +%s.%N)" -v b="$(date -d "$end" +%s.%N)" \
		'BEGIN { printf "%.3f", b - a }')
	fo_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

part_failover() {
	local sd s gib kind name dir rg t0 i1 i2 i3 first last
	sd=$(state_dir failover)
	declare -A new_task new_wall old_task old_wall store_kib full_s
	for gib in $fo_sizes; do
		s=$((gib * 1024 * 1024 * 1024))
		for kind in new old; do
			name=fo-$kind-${gib}g
			dir=$work/vms/$name
			make_vm "$dir" "$name" "$s" $((64 * 1024 * 1024)) 65536 "${gib}1"
			rg=$(protect "$sd" "$dir")
			[ -n "$rg" ] || die "vrcloud-agent protect printed no replication id"
			say "$name: full sync of ${gib} GiB (64 MiB written)"
			t0=$(now)
			i1=$(sync_vm "$sd" "$name")
			full_s[$gib]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
			small_change "$dir" "${gib}2"
			i2=$(sync_vm "$sd" "$name")
			small_change "$dir" "${gib}3"
			i3=$(sync_vm "$sd" "$name")
			if [ -z "$i1" ] || [ -z "$i2" ] || [ -z "$i3" ]; then
				die "a sync of $name printed no instance"
			fi
			store_kib[$gib]=$(du -sk "$work/store/$rg" | cut -f1)
			if [ "$kind" = new ]; then
				failover "$rg"
				new_task[$gib]=$fo_task
				new_wall[$gib]=$fo_wall
			else
				failover "$rg" "$i1"
				old_task[$gib]=$fo_task
				old_wall[$gib]=$fo_wall
			fi
			say "$name: failover to the $kind instance: Task $fo_task s, wall $fo_wall s"
		done
	done
	first=${fo_sizes%% *}
	last=${fo_sizes##* }
	echo
	echo "== failover time by disk size (1 disk, 64 MiB written, then two changes of 256 x 4 KiB; older = the first instance)"
	printf '%-8s %12s %14s %14s %14s %14s %12s\n' size "full sync s" "newest Task s" \
		"newest wall s" "older Task s" "older wall s" "store KiB"
	for gib in $fo_sizes; do
		printf '%-8s %12s %14s %14s %14s %14s %12s\n' "${gib}GiB" "${full_s[$gib]}" \
			"${new_task[$gib]}" "${new_wall[$gib]}" "${old_task[$gib]}" \
			"${old_wall[$gib]}" "${store_kib[$gib]}"
	done
	if [ "$first" != "$last" ]; then
		echo "ratio ${last} GiB / ${first} GiB (goal: near 1, independent of size):" \
			"newest Task $(ratio "${new_task[$last]}" "${new_task[$first]}")x," \
			"newest wall $(ratio "${new_wall[$last]}" "${new_wall[$first]}")x," \
			"older Task $(ratio "${old_task[$last]}" "${old_task[$first]}")x," \
			"older wall $(ratio "${old_wall[$last]}" "${old_wall[$first]}")x" \
			"(disk size $((last / first))x)"
	fi
	echo "RESULT failover $(for g in $fo_sizes; do printf '%sg_new=%s %sg_old=%s ' \
		"$g" "${new_task[$g]}" "$g" "${old_task[$g]}"; done)"
}

# --- (b) replications at a 1-minute RPO --------------------------------------------

# The replications of the rpo part whose CurrentRpoViolation > 0, read
# through the API; their ids in $work/rpo.ids.
api_violations() {
	local cfg=$work/poll.curl
	: >"$cfg"
	while read -r id; do
		printf 'url = "%s/api/vr/replications/%s"\n' "$api_url" "$id" >>"$cfg"
	done <"$work/rpo.ids"
	apicurl --parallel --parallel-max 8 -K "$cfg" 2>/dev/null |
		grep -o '<CurrentRpoViolation>[0-9]*</CurrentRpoViolation>' |
		awk -F'[<>]' '{ n++; if ($3 > 0) v++ } END { printf "%d %d\n", v, n }'
}

# writes into $writers % of the VMs every 10 s, until killed
writer_loop() {
	local k seed=1 v
	k=$((vms * writers / 100))
	[ "$k" -gt 0 ] || return 0
	while :; do
		for v in $(shuf -i 1-"$vms" -n "$k"); do
			"$vrio" write "$work/vms/scale-$v/disk-2000.img" --count 16 -b 4096 \
				--seed $((seed++)) -l "$work/vms/scale-$v/disk-2000.img.cbt" \
				>/dev/null 2>&1 || true
		done
		sleep 10
	done
}

# The instances committed so far: the sum of the newest sequence numbers of
# the rpo part's replications (retention deletes the older instances).
seq_sum() {
	sql -c "SELECT coalesce(sum(m), 0) FROM (SELECT max(i.seq) AS m FROM instances i
		JOIN replications r ON r.id = i.replication_id WHERE r.name LIKE 'scale-%'
		GROUP BY i.replication_id) s"
}

# Every 2 s until killed, one line in $work/ages: the oldest newest-instance
# age of the rpo part's replications (seconds), then the ids of those older
# than the RPO, as a poller of the database would see them.
sampler() {
	while :; do
		sql -c "SELECT round(coalesce(max(age), 0)::numeric, 1) || '|' ||
			coalesce(string_agg(id::text, ' ') FILTER (WHERE age > $((rpo * 60))), '')
			FROM (SELECT r.id, extract(epoch FROM now() - max(i.transfer_start_time)) AS age
			FROM replications r JOIN instances i ON i.replication_id = r.id
			WHERE r.name LIKE 'scale-%' GROUP BY r.id) a" >>"$work/ages" || true
		sleep 2
	done
}

part_rpo() {
	local sd agent_pid t0 first_s have t_start t_end polls=() pv pn worst over committed
	local seq_start sampler_pid
	local size=$((vm_mib * 1024 * 1024)) i
	sd=$(state_dir rpo)
	say "making $vms VMs of $vm_mib MiB"
	for ((i = 1; i <= vms; i++)); do
		make_vm "$work/vms/scale-$i" "scale-$i" "$size" 262144 65536 "$i"
	done
	say "protecting them ($parallel at once)"
	t0=$(now)
	export agent sd work
	export protect_rpo=$rpo
	# shellcheck disable=SC2016 # expanded by the sh of each protect
	seq 1 "$vms" | xargs -P "$parallel" -I{} sh -c \
		'"$agent" protect "$work/vms/scale-{}" --rpo "$protect_rpo" --user bench-admin@bench \
		 --password-file "$work/password" --state-dir "$sd" >>"$work/protect.log" 2>&1 ||
		 echo "scale-{}" >>"$work/protect.failed"'
	[ ! -s "$work/protect.failed" ] || die "$(wc -l <"$work/protect.failed") protects failed (see $work/protect.log)"
	protect_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	sed -n 's/^replication=//p' "$work/protect.log" >"$work/rpo.ids"
	[ "$(wc -l <"$work/rpo.ids")" -eq "$vms" ] || die "protect printed $(wc -l <"$work/rpo.ids") ids"
	say "protected $vms VMs in $protect_s s; starting the agent daemon ($sync_workers sync workers)"
	t0=$(now)
	"$agent" --config "$sd/agent.conf" </dev/null >>"$sd/agent.err" 2>&1 &
	agent_pid=$!
	pids+=("$agent_pid")
	local patience=$((120 + vms))
	for ((i = 0; i < patience; i++)); do
		have=$(sql -c "SELECT count(DISTINCT i.replication_id) FROM instances i
			JOIN replications r ON r.id = i.replication_id WHERE r.name LIKE 'scale-%'")
		[ "$have" -ge "$vms" ] && break
		kill -0 "$agent_pid" 2>/dev/null || die "the agent daemon exited (see $sd/agent.log)"
		sleep 1
	done
	first_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	say "$have of $vms replications have their first instance after $first_s s"
	say "measuring for $minutes minutes (writes into $writers % of the VMs every 10 s)"
	seq_start=$(seq_sum)
	writer_loop &
	writer_pid=$!
	sampler &
	sampler_pid=$!
	pids+=("$sampler_pid")
	t_start=$(sql -c "SELECT now()")
	for ((i = 1; i <= minutes; i++)); do
		sleep 60
		read -r pv pn <<<"$(api_violations)"
		polls+=("$pv")
		say "minute $i: $pv of $pn replications with CurrentRpoViolation > 0 (API)"
	done
	t_end=$(sql -c "SELECT now()")
	stop_pids "$writer_pid" "$sampler_pid"
	writer_pid=
	read -r worst over <<<"$(awk -F'|' '{ if ($1 + 0 > w) w = $1 + 0; n = split($2, a, " ");
		for (i = 1; i <= n; i++) seen[a[i]] = 1 } END { c = 0; for (k in seen) c++;
		printf "%.1f %d\n", w, c }' "$work/ages")"
	committed=$(($(seq_sum) - seq_start))
	local win_s per_min max_v failed
	win_s=$(sql -c "SELECT extract(epoch FROM '$t_end'::timestamptz - '$t_start'::timestamptz)")
	per_min=$(awk -v n="$committed" -v s="$win_s" 'BEGIN { printf "%.0f", n * 60 / s }')
	max_v=$(printf '%s\n' "${polls[@]}" | sort -n | tail -n 1)
	failed=$(grep -c 'event=sync_failed\|sync failed' "$sd/agent.log" 2>/dev/null || true)
	echo
	echo "== replications at a $rpo-minute RPO on one machine (one agent, haproxy + 2 proxies + 2 workers)"
	echo "replications:                  $vms ($vm_mib MiB disks; protected in $protect_s s, all first instances after $first_s s)"
	echo "window:                        $(fmt3 "$win_s") s, writes into $writers % of the VMs every 10 s"
	echo "instances committed:           $committed ($per_min per minute; $((vms / rpo)) per minute at one per RPO)"
	echo "worst instance age:            $worst s (RPO $((rpo * 60)) s)"
	echo "replications older than RPO:   $over"
	echo "CurrentRpoViolation > 0 (API): ${polls[*]} (one poll a minute; worst $max_v)"
	echo "agent sync failures logged:    $failed"
	echo "agent sync_workers $sync_workers, worker max_transfers $max_transfers"
	echo "vs vSphere Replication (200 protected VMs per VR server, 2,000 per appliance, RPO floor 5 min):" \
		"$(ratio "$vms" 200)x one VR server, $(ratio "$vms" 2000)x one appliance, at a $(ratio 5 "$rpo")x shorter RPO"
	echo "RESULT rpo rpo=$rpo vms=$vms per_min=$per_min worst_age=$worst over60=$over api_violations_max=$max_v"
}

for p in $parts; do
	case $p in
	failover) part_failover ;;
	rpo) part_rpo ;;
	esac
done
