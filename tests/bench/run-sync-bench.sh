#!/usr/bin/env bash
# Benchmark of the replication data plane, run by `make bench` (never by
# `make check`):
#
#   tests/bench/run-sync-bench.sh BUILDDIR
#
# Starts a throwaway PostgreSQL and Redis (contrib/lib/services.sh), a
# migrated database with a demo org, VDC and user (vrcloudctl seed-demo), a
# test CA (contrib/tunnel-test-ca), BUILDDIR/vrcloud-api, one
# BUILDDIR/vrcloud-worker with its replica store, one BUILDDIR/vrcloud-proxy
# (its /metrics on a port of its own) and haproxy in TCP mode in front of it,
# as in production; pairs a site (vrcloud-agent pair) and protects a VM of
# one disk of BENCH_SYNC_BYTES (2 GiB) of random, incompressible data
# (vrcloud-agent protect, no compression). Every instance is sent by
# `vrcloud-agent sync` through haproxy -> vrcloud-proxy -> the worker, which
# stages and commits it into its store. Then, in this one run:
#   (1) a full sync into the empty replica (hash compare against a replica
#       of zeros: every block travels), beside stunnel (stunnel4: a client
#       and a server stunnel, TLS 1.3, the same certificate) carrying the
#       same disk image into a sink (tests/bench/tunnel-load sink); MB/s
#       (10^6 bytes) of each and the ratio;
#   (2) BENCH_SYNC_ROUNDS (3) incremental syncs, each after 1 % of the
#       disk's 4 KiB blocks were written at random by vrcloud-io (4 KiB
#       aligned writes, a seed per round, recorded in the changed-block
#       log), beside `rsync -I --no-whole-file --inplace -B 4096 --stats` of
#       the same change from the source to a local copy of the disk as it
#       was before the change; wall time, bytes on the wire (ours: the
#       proxy's vrcloud_proxy_bytes_total, both directions; rsync: its
#       "Total bytes sent" + "Total bytes received"), the changed bytes
#       (distinct 4 KiB blocks of the log times 4096) and the ratios; the
#       medians are printed;
#   (3) a seeded full sync: the replica holds the disk already, the
#       changed-block log is removed, so the agent does a full sync by hash
#       comparison; time and bytes on the wire against the plain full sync.
# After every sync the replica image is compared with the source (cmp):
# the benchmark fails when a copy is wrong, never on a figure. Everything
# shares the machine's cores, so the figures are relative, not capacities.
#
# Environment: BENCH_SYNC_BYTES (2147483648; a multiple of 1 MiB, suffixes
# K M G allowed), BENCH_SYNC_ROUNDS (3), BENCH_SYNC_PERCENT (1: the share
# of blocks written per round), BENCH_SYNC_DIR (the parent of the work
# directory, on a disk, not tmpfs: default /var/tmp; it needs about four
# times BENCH_SYNC_BYTES), BENCH_LOG_LEVEL of the daemons (warn), PSQL,
# HAPROXY, STUNNEL, RSYNC (programs), BENCH_KEEP=1 keeps the work
# directory. Every process started here is stopped on exit.
set -euo pipefail

usage() {
	echo "usage: $0 BUILDDIR" >&2
	exit 2
}
[ $# -eq 1 ] || usage
builddir=$(cd "$1" && pwd -P) || usage
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
srcdir=$(cd "$here/../.." && pwd -P)
STOP_WAIT_S=15 # stop_pids: seconds a daemon gets to stop
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

bytes_arg=${BENCH_SYNC_BYTES:-2147483648}
case $bytes_arg in
*[kK]) bytes=$((${bytes_arg%?} * 1024)) ;;
*[mM]) bytes=$((${bytes_arg%?} * 1048576)) ;;
*[gG]) bytes=$((${bytes_arg%?} * 1073741824)) ;;
*) bytes=$bytes_arg ;;
esac
rounds=${BENCH_SYNC_ROUNDS:-3}
percent=${BENCH_SYNC_PERCENT:-1}
parent=${BENCH_SYNC_DIR:-/var/tmp}
log_level=${BENCH_LOG_LEVEL:-warn}
block=4096
for v in bytes rounds percent; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done
[ $((bytes % 1048576)) -eq 0 ] || die "BENCH_SYNC_BYTES must be a multiple of 1 MiB"
[ "$percent" -le 100 ] || die "BENCH_SYNC_PERCENT must be at most 100"
blocks=$((bytes / block))
# writes per round: percent of the blocks, rounded up (5243 of 524288)
writes=$(((blocks * percent + 99) / 100))

# --- programs ------------------------------------------------------------

PSQL=$(find_program "${PSQL:-}" psql /usr/lib/postgresql/15/bin/psql) || die "psql not found"
HAPROXY=$(find_program "${HAPROXY:-}" haproxy /usr/sbin/haproxy) ||
	die "haproxy not found (contrib/install-deps test)"
STUNNEL=$(find_program "${STUNNEL:-}" stunnel4 stunnel /usr/bin/stunnel4) ||
	die "stunnel not found (contrib/install-deps test)"
RSYNC=$(find_program "${RSYNC:-}" rsync) || die "rsync not found (contrib/install-deps test)"
command -v curl >/dev/null || die "curl not found"
command -v cmp >/dev/null || die "cmp not found"
api=$builddir/vrcloud-api
ctl=$builddir/vrcloudctl
proxy=$builddir/vrcloud-proxy
worker=$builddir/vrcloud-worker
agent=$builddir/vrcloud-agent
io=$builddir/vrcloud-io
load=$builddir/tests/bench/tunnel-load
for p in "$api" "$ctl" "$proxy" "$worker" "$agent" "$io" "$load"; do
	[ -x "$p" ] || die "$p is not built (make bench-sync builds it)"
done

# --- clean-up --------------------------------------------------------------

[ -d "$parent" ] || die "BENCH_SYNC_DIR $parent is not a directory"
if [ "$(stat -f -c %T "$parent")" = tmpfs ]; then
	say "NOTE: $parent is a tmpfs: the disk images live in memory"
fi
avail=$(df -P -B1 "$parent" | awk 'NR == 2 { print $4 }')
[ "$avail" -gt $((4 * bytes + 268435456)) ] ||
	die "$parent has $avail bytes free; the benchmark needs about $((4 * bytes))"
work=$(mktemp -d "$parent/vrcloud-sync-bench.XXXXXX")
chmod 755 "$work"
pids=() # every daemon started here, stopped in reverse order
services_started=

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$? i
	set +e
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

wait_port() { # PORT PID NAME: until 127.0.0.1:PORT accepts
	local _
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	die "$3 did not start (see $work)"
}

wait_file() { # FILE PID NAME: until FILE is not empty
	local _
	for _ in $(seq 1 300); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	die "$3 did not start"
}

wait_log() { # FILE TEXT PID NAME: until FILE holds TEXT
	local _
	for _ in $(seq 1 300); do
		grep -qs -- "$2" "$1" && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	die "$4 did not start (see $1)"
}

# --- services and fixtures --------------------------------------------------

# shellcheck source-path=SCRIPTDIR source=../../contrib/lib/services.sh
. "$srcdir/contrib/lib/services.sh"
services_started=1
say "starting PostgreSQL and Redis in $work/svc"
svc_start_pg "$work/svc" || die "PostgreSQL did not start"
svc_start_redis "$work/svc" || die "Redis did not start"

admin_uri=$SVC_PG_URI
db_uri=${SVC_PG_URI/'@/postgres?'/'@/vrsync?'}
[ "$db_uri" != "$admin_uri" ] || die "unexpected PostgreSQL URI: $SVC_PG_URI"
redis_uri="unix://$SVC_REDIS_SOCKET"

"$PSQL" -X -q -v ON_ERROR_STOP=1 "$admin_uri" -c "CREATE DATABASE vrsync"
run_logged() { # LOG COMMAND...: runs it, its output in LOG; dies with it shown
	local log=$1
	shift
	"$@" >"$log" 2>&1 || {
		cat "$log" >&2
		die "$(basename "$1") failed"
	}
}
run_logged "$work/migrate.log" "$ctl" --database "$db_uri" migrate
run_logged "$work/seed.out" "$ctl" --database "$db_uri" seed-demo --org bench --vdc bench-vdc \
	--user bench-admin
password=$(sed -n 's/^password=//p' "$work/seed.out")
vdc_id=$(sed -n 's/^vdc_id=//p' "$work/seed.out")
{ [ -n "$password" ] && [ -n "$vdc_id" ]; } || die "vrcloudctl seed-demo printed no password or VDC"
install -m 600 /dev/null "$work/password"
printf '%s\n' "$password" >"$work/password"

service_token() { # NAME KIND FILE
	run_logged "$work/service.out" "$ctl" --database "$db_uri" service add "$1" --kind "$2"
	install -m 600 /dev/null "$3"
	sed -n 's/^token=//p' "$work/service.out" >"$3"
	rm -f "$work/service.out"
	[ -s "$3" ] || die "vrcloudctl service add $1 printed no token"
}
service_token bench-worker worker "$work/worker.token"
service_token bench-proxy proxy "$work/proxy.token"

run_logged "$work/ca.out" bash "$srcdir/contrib/tunnel-test-ca" "$work/ca" localhost 127.0.0.1
ca=$work/ca/ca.pem
cert=$work/ca/proxy.pem
key=$work/ca/proxy.key

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

say "starting vrcloud-worker (store in $work/store)"
worker_port=$("$load" port)
"$worker" --name bench-worker --api-url "$api_url" --token-file "$work/worker.token" \
	--redis "$redis_uri" --traffic-address "127.0.0.1:$worker_port" \
	--store-dir "$work/store" --recovered-dir "$work/recovered" \
	--log-level info --log-file "$work/worker.log" </dev/null &
worker_pid=$!
pids+=("$worker_pid")
wait_log "$work/worker.log" event=replication_port_listening "$worker_pid" vrcloud-worker
wait_log "$work/worker.log" event=registered "$worker_pid" vrcloud-worker

say "starting vrcloud-proxy and haproxy (TCP mode) in front of it"
metrics_port=$("$load" port)
cat >"$work/proxy.ini" <<INI
[proxy]
name = bench-proxy
listen = 127.0.0.1:0
port_file = $work/proxy.port
internal_listen = 127.0.0.1:0
metrics_address = 127.0.0.1:$metrics_port
cert_file = $cert
key_file = $key
api_url = $api_url
token_file = $work/proxy.token

[redis]
uri = $redis_uri
prefix = bench

[log]
level = $log_level
file = $work/proxy.log
INI
"$proxy" --config "$work/proxy.ini" </dev/null >>"$work/proxy.err" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
wait_file "$work/proxy.port" "$proxy_pid" vrcloud-proxy
proxy_port=$(head -n 1 "$work/proxy.port")
wait_port "$proxy_port" "$proxy_pid" vrcloud-proxy
wait_port "$metrics_port" "$proxy_pid" "vrcloud-proxy's metrics"

lb_port=$("$load" port)
cat >"$work/haproxy.cfg" <<CFG
global
	maxconn 256
	log stderr format short local0 warning

defaults
	mode tcp
	log global
	timeout connect 5s
	timeout client 1h
	timeout server 1h

frontend tunnels
	bind 127.0.0.1:$lb_port
	default_backend proxies

backend proxies
	server bench-proxy 127.0.0.1:$proxy_port
CFG
"$HAPROXY" -db -f "$work/haproxy.cfg" </dev/null >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")
wait_port "$lb_port" "$haproxy_pid" haproxy

say "starting stunnel (client and server) in front of a sink"
"$load" sink --listen 127.0.0.1:0 --port-file "$work/sink.port" >"$work/sink.out" \
	2>"$work/sink.err" </dev/null &
pids+=("$!")
wait_file "$work/sink.port" "$!" "the sink"
sink_port=$(cat "$work/sink.port")
st_port=$("$load" port)
st_client_port=$("$load" port)
cat >"$work/stunnel-server.conf" <<CONF
foreground = yes
pid =
syslog = no
output = $work/stunnel-server.log
debug = warning

[sink]
accept = 127.0.0.1:$st_port
connect = 127.0.0.1:$sink_port
cert = $cert
key = $key
sslVersionMin = TLSv1.3
CONF
cat >"$work/stunnel-client.conf" <<CONF
foreground = yes
pid =
syslog = no
output = $work/stunnel-client.log
debug = warning

[sink]
client = yes
accept = 127.0.0.1:$st_client_port
connect = 127.0.0.1:$st_port
CAfile = $ca
verifyChain = yes
checkIP = 127.0.0.1
sslVersionMin = TLSv1.3
CONF
"$STUNNEL" "$work/stunnel-server.conf" </dev/null >>"$work/stunnel-server.log" 2>&1 &
st_pid=$!
pids+=("$st_pid")
"$STUNNEL" "$work/stunnel-client.conf" </dev/null >>"$work/stunnel-client.log" 2>&1 &
stc_pid=$!
pids+=("$stc_pid")
wait_port "$st_port" "$st_pid" "the server stunnel"
wait_port "$st_client_port" "$stc_pid" "the client stunnel"

for p in "$agent" "$worker" "$proxy"; do
	if ldd "$p" 2>/dev/null | grep -q 'libasan\|libubsan'; then
		say "NOTE: $p is built with sanitizers: its figures are far below a normal build"
	fi
done

# --- the site and its VM ----------------------------------------------------------

state=$work/agent
mkdir -m 700 "$state"
vmdir=$work/vm
mkdir "$vmdir"
disk=$vmdir/disk-2000.img
cbt=$disk.cbt
mib=$((bytes / 1048576))
say "writing the source disk: $mib MiB of random data"
"$io" write "$disk" --size "$bytes" --pattern sequential --block-size 1048576 \
	--bytes "$bytes" --seed 1 >"$work/io-fill.out" || die "vrcloud-io could not write the disk"
"$io" log reset "$cbt" --size "$bytes" >/dev/null || die "vrcloud-io log reset failed"
cat >"$vmdir/vm.ini" <<INI
[vm]
name = bench-vm
[disk 2000]
file = disk-2000.img
INI

say "pairing the site and protecting the VM"
run_logged "$work/pair.out" "$agent" pair --api "$api_url" --user bench-admin@bench \
	--vdc "$vdc_id" --site-name "bench site" --state-dir "$state" <"$work/password"
run_logged "$work/protect.out" "$agent" protect "$vmdir" --rpo 60 --vdc "$vdc_id" \
	--user bench-admin@bench --password-file "$work/password" --api "$api_url" \
	--state-dir "$state" --timeout 60
repl=$(sed -n 's/^replication=//p' "$work/protect.out")
[ -n "$repl" ] || die "vrcloud-agent protect printed no replication"
replica=$work/store/$repl/disk-0.img

cat >"$work/agent.ini" <<INI
[agent]
name = bench-site
proxy = 127.0.0.1:$lb_port
credential_file = $state/site.credential
state_dir = $state
ca_file = $ca
server_name = 127.0.0.1

[log]
level = $log_level
INI

# proxied bytes, both directions, from the proxy's /metrics
wire_bytes() {
	curl -sS "http://127.0.0.1:$metrics_port/metrics" |
		awk '/^vrcloud_proxy_bytes_total\{/ { n += $2 } END { printf "%.0f\n", n }'
}

# user + system CPU seconds of PID (every thread), and of this shell's
# waited-for children
hz=$(getconf CLK_TCK)
cpu_of() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{ printf "%.2f\n", ($12 + $13) / hz }'; }
children_cpu() { # FILE: the output of `times` (run in the shell whose children count)
	awk 'NR == 2 { split($1, u, "m"); split($2, s, "m");
		printf "%.2f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$1"
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# NAME: one `vrcloud-agent sync`; prints "seconds wire-bytes full blocks
# agent-cpu worker-cpu proxy-cpu"
sync_once() {
	local name=$1 w0 w1 t0 t1 a0 a1 k0 k1 p0 p1 out=$work/sync-$1.out
	w0=$(wire_bytes)
	times >"$work/times.0"
	k0=$(cpu_of "$worker_pid")
	p0=$(cpu_of "$proxy_pid")
	t0=$(now)
	"$agent" sync bench-vm -c "$work/agent.ini" >"$out" 2>&1 || {
		cat "$out" >&2
		tail -n 20 "$work/worker.log" >&2
		die "vrcloud-agent sync ($name) failed"
	}
	t1=$(now)
	times >"$work/times.1"
	a0=$(children_cpu "$work/times.0")
	a1=$(children_cpu "$work/times.1")
	k1=$(cpu_of "$worker_pid")
	p1=$(cpu_of "$proxy_pid")
	w1=$(wire_bytes)
	awk -v a="$t0" -v b="$t1" -v w=$((w1 - w0)) \
		-v f="$(sed -n 's/^full=//p' "$out")" -v n="$(sed -n 's/^blocks=//p' "$out")" \
		-v c="$(sub "$a0" "$a1") $(sub "$k0" "$k1") $(sub "$p0" "$p1")" \
		'BEGIN { printf "%.3f %s %s %s %s\n", b - a, w, f, n, c }'
}

# the replica must equal the source, byte for byte
check_replica() { # WHEN
	[ -f "$replica" ] || die "no replica image at $replica"
	cmp "$disk" "$replica" >"$work/cmp.out" 2>&1 || {
		cat "$work/cmp.out" >&2
		die "the replica differs from the source $1"
	}
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- (1) a full sync into the empty replica, beside stunnel --------------------------

say "(1) full sync of $mib MiB into the empty replica"
read -r full_s full_wire full_kind _ full_acpu full_wcpu full_pcpu <<<"$(sync_once full)"
[ "$full_kind" = yes ] || die "the first sync was not a full one"
check_replica "after the full sync"
say "    ${full_s}s, $full_wire bytes on the wire; CPU s: agent $full_acpu, worker $full_wcpu, proxy $full_pcpu"

say "(1) the same $mib MiB through stunnel client -> stunnel server -> sink"
lines=$(wc -l <"$work/sink.out")
c0=$(cpu_of "$stc_pid")
s0=$(cpu_of "$st_pid")
t0=$(now)
cat "$disk" >"/dev/tcp/127.0.0.1/$st_client_port" || die "the stunnel stream failed"
for _ in $(seq 1 600); do
	[ "$(wc -l <"$work/sink.out")" -gt "$lines" ] && break
	sleep 0.02
done
t1=$(now)
got=$(tail -n 1 "$work/sink.out" | sed -n 's/^received bytes=\([0-9]*\) .*/\1/p')
[ "${got:-0}" -eq "$bytes" ] || die "the sink got ${got:-nothing} of stunnel's $bytes bytes"
st_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
st_ccpu=$(sub "$c0" "$(cpu_of "$stc_pid")")
st_scpu=$(sub "$s0" "$(cpu_of "$st_pid")")
say "    ${st_s}s; CPU s: client stunnel $st_ccpu, server stunnel $st_scpu"

# --- (2) incremental syncs beside rsync ----------------------------------------------------

say "copying the disk for rsync's destination"
cp --sparse=never "$disk" "$work/rsync-dst.img"
: >"$work/incr.res"
for round in $(seq 1 "$rounds"); do
	seed=$((1000 + round))
	say "(2) round $round of $rounds: $writes random 4 KiB writes (seed $seed)"
	# the previous sync reset the log: it holds only this round's writes
	"$io" log show "$cbt" >"$work/log-$round-before.txt" || die "vrcloud-io log show failed"
	[ "$(sed -n 's/^changed-blocks: //p' "$work/log-$round-before.txt")" = 0 ] ||
		die "the changed-block log was not reset by the previous sync"
	"$io" write "$disk" --pattern random --block-size "$block" --count "$writes" \
		--seed "$seed" --log "$cbt" >"$work/io-$round.out" || die "vrcloud-io write failed"
	# the distinct blocks written (a block written twice counts once)
	"$io" log show "$cbt" >"$work/log-$round.txt" || die "vrcloud-io log show failed"
	changed_blocks=$(sed -n 's/^changed-blocks: //p' "$work/log-$round.txt")
	[ "${changed_blocks:-0}" -gt 0 ] || die "the log of round $round holds no changed block"
	# every write is one whole, aligned 4 KiB block: as many blocks as writes
	# but for the repeats
	[ "$changed_blocks" -le "$writes" ] || die "the writes changed more blocks than writes"
	changed=$((changed_blocks * block))
	read -r vr_s vr_wire vr_kind vr_blocks vr_acpu vr_wcpu vr_pcpu <<<"$(sync_once "incr-$round")"
	[ "$vr_kind" = no ] || die "round $round's sync was not incremental"
	check_replica "after incremental round $round"
	say "    vrcloud: ${vr_s}s, $vr_wire bytes on the wire, $vr_blocks blocks sent" \
		"($changed_blocks changed); CPU s: agent $vr_acpu, worker $vr_wcpu, proxy $vr_pcpu"
	t0=$(now)
	"$RSYNC" -I --no-whole-file --inplace -B "$block" --stats "$disk" "$work/rsync-dst.img" \
		>"$work/rsync-$round.out" 2>&1 || {
		cat "$work/rsync-$round.out" >&2
		die "rsync failed"
	}
	t1=$(now)
	rs_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	rs_sent=$(sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' "$work/rsync-$round.out" | tr -d ,)
	rs_recv=$(sed -n 's/^Total bytes received: \([0-9,]*\).*/\1/p' "$work/rsync-$round.out" |
		tr -d ,)
	{ [ -n "$rs_sent" ] && [ -n "$rs_recv" ]; } || die "rsync printed no byte counts"
	rs_wire=$((rs_sent + rs_recv))
	cmp "$disk" "$work/rsync-dst.img" >/dev/null || die "rsync's copy differs from the source"
	say "    rsync:   ${rs_s}s, $rs_wire bytes sent + received"
	echo "$vr_s $vr_wire $rs_s $rs_wire $changed $vr_acpu $vr_wcpu" >>"$work/incr.res"
done

# --- (3) a seeded full sync ------------------------------------------------------------------

say "(3) seeded full sync: the changed-block log removed, the replica holds the disk"
rm -f "$cbt"
read -r seed_s seed_wire seed_kind _ seed_acpu seed_wcpu seed_pcpu <<<"$(sync_once seeded)"
[ "$seed_kind" = yes ] || die "the sync without a log was not a full one"
check_replica "after the seeded full sync"
say "    ${seed_s}s, $seed_wire bytes on the wire; CPU s: agent $seed_acpu, worker $seed_wcpu, proxy $seed_pcpu"

# --- report ------------------------------------------------------------------------------------

col() { awk -v c="$1" '{ print $c }' "$work/incr.res" | median; }
vr_s=$(col 1)
vr_wire=$(col 2)
rs_s=$(col 3)
rs_wire=$(col 4)
changed=$(col 5)
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }

echo
echo "vrcloud sync benchmark: one disk of $mib MiB, 4 KiB blocks, TLS 1.3 on loopback;"
echo "$(nproc) CPUs shared by every process (agent, haproxy, proxy, worker, API, PostgreSQL, Redis)"
echo
printf '%-62s %9s %14s\n' "(1) full sync of $mib MiB of random data, empty replica" "MB/s" "seconds"
printf '%-62s %9s %14s\n' "--------------------------------------------------------------" \
	"---------" "--------------"
printf '%-62s %9s %14s\n' "vrcloud-agent sync -> haproxy -> vrcloud-proxy -> worker store" \
	"$(mbs "$bytes" "$full_s")" "$full_s"
printf '%-62s %9s %14s\n' "cat disk -> stunnel client -> stunnel server -> sink" \
	"$(mbs "$bytes" "$st_s")" "$st_s"
echo "    ratio vrcloud/stunnel (MB/s): $(ratio "$st_s" "$full_s");" \
	"vrcloud's bytes on the wire: $full_wire ($(ratio "$full_wire" "$bytes")x the disk)"
echo "    CPU seconds: vrcloud agent $full_acpu, worker $full_wcpu, proxy $full_pcpu" \
	"(every block hashed by both ends, checked on the wire and after staging);" \
	"stunnel client $st_ccpu, server $st_scpu"
echo
printf '%-62s %9s %14s\n' "(2) incremental sync, $percent % of the 4 KiB blocks, median of $rounds" \
	"seconds" "wire bytes"
printf '%-62s %9s %14s\n' "--------------------------------------------------------------" \
	"---------" "--------------"
printf '%-62s %9s %14s\n' "vrcloud-agent sync (changed-block log), commit included" "$vr_s" \
	"$vr_wire"
printf '%-62s %9s %14s\n' "rsync -I --no-whole-file --inplace -B 4096, local copies" "$rs_s" \
	"$rs_wire"
echo "    changed bytes: $changed (distinct 4 KiB blocks written)"
echo "    time rsync/vrcloud: $(ratio "$rs_s" "$vr_s")x (goal >= 10)"
echo "    wire/changed: vrcloud $(ratio "$vr_wire" "$changed")x (goal <= 1.1)," \
	"rsync $(ratio "$rs_wire" "$changed")x"
echo "    rounds (vrcloud s, vrcloud wire, rsync s, rsync wire, changed, agent CPU s, worker CPU s):"
sed 's/^/      /' "$work/incr.res"
echo
printf '%-62s %9s %14s\n' "(3) seeded full sync (hash compare, replica holds the disk)" "seconds" \
	"wire bytes"
printf '%-62s %9s %14s\n' "--------------------------------------------------------------" \
	"---------" "--------------"
printf '%-62s %9s %14s\n' "vrcloud-agent sync, no changed-block log" "$seed_s" "$seed_wire"
printf '%-62s %9s %14s\n' "the plain full sync of (1)" "$full_s" "$full_wire"
echo "    CPU seconds: agent $seed_acpu, worker $seed_wcpu, proxy $seed_pcpu"
echo "    seeded/plain: time $(ratio "$seed_s" "$full_s")x, wire bytes" \
	"$(ratio "$seed_wire" "$full_wire")x ($(ratio "$seed_wire" "$bytes")x the disk)"
echo
echo "the replica equalled the source (cmp) after every sync"
