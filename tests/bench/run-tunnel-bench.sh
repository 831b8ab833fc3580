#!/usr/bin/env bash
# Benchmark of the tunnels, run by `make bench` (never by `make check`):
#
#   tests/bench/run-tunnel-bench.sh BUILDDIR
#
# Starts a throwaway PostgreSQL and Redis (contrib/lib/services.sh), creates
# and migrates a database with an org, a VDC and BENCH_TUNNEL_IDLE + 1
# paired peers whose credentials are made here (only their SHA-256 goes into
# peers.credential_hash, as docs/tunnels.md describes), a test CA
# (contrib/tunnel-test-ca: EC P-256), BUILDDIR/vrcloud-api (which verifies
# site credentials), one BUILDDIR/vrcloud-proxy, a sink (tests/bench/tunnel-load
# sink: reads everything, counts it) as the replica server of the stream's
# replication, haproxy
# in TCP mode in front of that proxy, and stunnel (stunnel4) as the peer:
# a client stunnel feeding a server stunnel, which feeds the same sink, with
# the same certificate and TLS 1.3 only. Then, in this one run:
#   (a) throughput of one to-the-cloud stream of BENCH_TUNNEL_BYTES (2 GiB):
#       the agent library's data connection -> haproxy -> vrcloud-proxy ->
#       sink, beside plain TCP -> stunnel client -> stunnel server -> sink;
#       each path carries one TLS encryption, one decryption and one plain
#       relay; MB/s (10^6 bytes) and the CPU seconds the sender and both
#       relays used;
#   (c) TLS handshakes per second: new connections straight to the proxy,
#       BENCH_TUNNEL_INFLIGHT at a time for BENCH_TUNNEL_SECONDS, each a
#       TLS 1.3 handshake, a control hello and its welcome (the credentials
#       of 64 sites, verified by the API once and then from the proxy's
#       cache), beside the same client against the server stunnel: a
#       handshake and one byte through stunnel to an echoing sink and back;
#   (b) idle control connections one proxy holds: BENCH_TUNNEL_IDLE (10000)
#       connections of as many sites from one process (epoll), hellos
#       welcomed, heartbeats going on; the proxy's VmRSS before and after,
#       per connection, and its CPU while it holds them; beside
#       BENCH_TUNNEL_IDLE_STUNNEL (1000) idle TLS connections held by the
#       server stunnel (each with its connection to the sink and its
#       thread).
# The ratios vrcloud/stunnel are printed. Everything shares the machine's
# cores, so the figures are relative, not capacities.
#
# Environment: BENCH_TUNNEL_BYTES (default 2147483648), BENCH_TUNNEL_IDLE
# (10000), BENCH_TUNNEL_IDLE_STUNNEL (1000; 0 skips it), BENCH_TUNNEL_SECONDS
# (5), BENCH_TUNNEL_ROUNDS (3: (a) and (c) run interleaved that many times,
# medians printed), BENCH_TUNNEL_INFLIGHT (8), BENCH_TUNNEL_HOLD (seconds
# the idle connections are held before the RSS is read, 12: each beats at
# least once meanwhile; the CPU over that time is printed too),
# BENCH_LOG_LEVEL of the daemons (warn), PSQL, HAPROXY, STUNNEL (programs),
# BENCH_KEEP=1 keeps the work directory. haproxy and stunnel4 are Debian
# packages: `contrib/install-deps test` installs them.
#
# The exit status is non-zero only when something could not run (a missing
# program, a server that did not start, a stream that did not arrive whole);
# a slow figure never fails it. Every process started here is stopped on
# exit.
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

bytes=${BENCH_TUNNEL_BYTES:-2147483648}
idle=${BENCH_TUNNEL_IDLE:-10000}
idle_stunnel=${BENCH_TUNNEL_IDLE_STUNNEL:-1000}
seconds=${BENCH_TUNNEL_SECONDS:-5}
rounds=${BENCH_TUNNEL_ROUNDS:-3}
inflight=${BENCH_TUNNEL_INFLIGHT:-8}
hold=${BENCH_TUNNEL_HOLD:-12}
heartbeat=10
log_level=${BENCH_LOG_LEVEL:-warn}
handshake_sites=64

for v in bytes idle seconds rounds inflight hold; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, not '${!v}'"
done
[[ $idle_stunnel =~ ^[0-9]+$ ]] || die "BENCH_TUNNEL_IDLE_STUNNEL must be a whole number"

# --- programs ------------------------------------------------------------

PSQL=$(find_program "${PSQL:-}" psql /usr/lib/postgresql/15/bin/psql) || die "psql not found"
HAPROXY=$(find_program "${HAPROXY:-}" haproxy /usr/sbin/haproxy) ||
	die "haproxy not found (contrib/install-deps test)"
STUNNEL=$(find_program "${STUNNEL:-}" stunnel4 stunnel /usr/bin/stunnel4) ||
	die "stunnel not found (contrib/install-deps test)"
command -v curl >/dev/null || die "curl not found"
api=$builddir/vrcloud-api
ctl=$builddir/vrcloudctl
proxy=$builddir/vrcloud-proxy
load=$builddir/tests/bench/tunnel-load
for p in "$api" "$ctl" "$proxy" "$load"; do
	[ -x "$p" ] || die "$p is not built (make bench-tunnel builds it)"
done

# Descriptors: the proxy holds one per idle connection, and so does the
# client process; both inherit this limit.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((idle + 512)) ]; then
	say "the hard limit of open files is $hard: $((hard - 512)) idle connections instead of $idle"
	idle=$((hard - 512))
	[ "$idle" -gt 0 ] || die "too few descriptors for the idle connections"
fi
ulimit -n "$hard" 2>/dev/null || ulimit -n $((idle + 512)) || die "cannot raise RLIMIT_NOFILE"
want_stunnel_fds=$((2 * idle_stunnel + 512))
if [ "$hard" != unlimited ] && [ "$want_stunnel_fds" -gt "$hard" ]; then
	idle_stunnel=$(((hard - 512) / 2))
fi

# --- clean-up --------------------------------------------------------------

work=$(mktemp -d /tmp/vrcloud-tunnel-bench.XXXXXX)
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

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
# user + system CPU time of PID, in clock ticks
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)

# --- services and fixtures --------------------------------------------------

# shellcheck source-path=SCRIPTDIR source=../../contrib/lib/services.sh
. "$srcdir/contrib/lib/services.sh"
services_started=1
say "starting PostgreSQL and Redis in $work/svc"
svc_start_pg "$work/svc" || die "PostgreSQL did not start"
svc_start_redis "$work/svc" || die "Redis did not start"

admin_uri=$SVC_PG_URI
db_uri=${SVC_PG_URI/'@/postgres?'/'@/vrtunnel?'}
[ "$db_uri" != "$admin_uri" ] || die "unexpected PostgreSQL URI: $SVC_PG_URI"
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$db_uri" "$@"; }

"$PSQL" -X -q -v ON_ERROR_STOP=1 "$admin_uri" -c "CREATE DATABASE vrtunnel"
"$ctl" --database "$db_uri" migrate >"$work/migrate.log" 2>&1 ||
	{
		cat "$work/migrate.log" >&2
		die "vrcloudctl migrate failed"
	}
"$ctl" --database "$db_uri" org add bench >/dev/null
"$ctl" --database "$db_uri" vdc add bench vdc-1 >/dev/null

# Site g's credential is "bench-site-credential-<g>" (printable, no space,
# as a hello requires); peer 0 sends the stream, peers 1..idle hold the
# idle connections, the first $handshake_sites of them do the handshakes.
say "making $((idle + 1)) paired sites"
sql <<SQL
INSERT INTO peers (org_id, vdc_id, site_uuid, site_name, credential_hash)
SELECT v.org_id, v.id, gen_random_uuid(), 'bench site ' || g,
       sha256(convert_to('bench-site-credential-' || g, 'UTF8'))
FROM vdcs v, generate_series(0, $idle) g;
ANALYZE peers;
SQL
[ "$(sql -c "SELECT count(*) FROM peers WHERE state = 'paired'")" -eq $((idle + 1)) ] ||
	die "the sites are not all paired"
install -m 600 /dev/null "$work/stream.credential"
echo bench-site-credential-0 >"$work/stream.credential"
install -m 600 /dev/null "$work/idle.credentials"
seq -f 'bench-site-credential-%.0f' 1 "$idle" >"$work/idle.credentials"
head -n "$handshake_sites" "$work/idle.credentials" >"$work/handshake.credentials"

"$ctl" --database "$db_uri" service add proxy-1 --kind proxy >"$work/service.out" 2>&1 ||
	{
		cat "$work/service.out" >&2
		die "vrcloudctl service add proxy-1 failed"
	}
install -m 600 /dev/null "$work/proxy.token"
sed -n 's/^token=//p' "$work/service.out" >"$work/proxy.token"
rm -f "$work/service.out"
[ -s "$work/proxy.token" ] || die "vrcloudctl service add printed no token"

bash "$srcdir/contrib/tunnel-test-ca" "$work/ca" localhost 127.0.0.1 >"$work/ca.out" ||
	die "contrib/tunnel-test-ca failed"
ca=$work/ca/ca.pem
cert=$work/ca/proxy.pem
key=$work/ca/proxy.key

# --- daemons -------------------------------------------------------------------

say "starting vrcloud-api"
"$api" --listen 127.0.0.1 --port 0 --port-file "$work/api.port" --threads 4 \
	--database "$db_uri" --redis "unix://$SVC_REDIS_SOCKET" \
	--log-level "$log_level" --log-file "$work/api.log" </dev/null &
pids+=("$!")
wait_file "$work/api.port" "$!" vrcloud-api
api_url=http://127.0.0.1:$(cat "$work/api.port")
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$api_url/healthz")" = 200 ] ||
	die "vrcloud-api does not answer /healthz"

"$load" sink --listen 127.0.0.1:0 --port-file "$work/sink.port" >"$work/sink.out" \
	2>"$work/sink.err" </dev/null &
pids+=("$!")
wait_file "$work/sink.port" "$!" "the sink"
sink_port=$(cat "$work/sink.port")
"$load" sink --echo --listen 127.0.0.1:0 --port-file "$work/echo.port" >/dev/null \
	2>"$work/echo.err" </dev/null &
pids+=("$!")
wait_file "$work/echo.port" "$!" "the echoing sink"
echo_port=$(cat "$work/echo.port")

# The stream names replication ...b1 of site 0, whose replica server's
# traffic address is the sink: the proxy routes it there through the API.
sql <<SQL
INSERT INTO replica_servers (id, name, traffic_address, state)
VALUES ('40000000-0000-4000-8000-0000000000a1', 'bench-sink', '127.0.0.1:$sink_port', 'connected');
INSERT INTO replications (id, org_id, vdc_id, peer_id, name, replica_server_id)
SELECT '40000000-0000-4000-8000-0000000000b1', p.org_id, p.vdc_id, p.id, 'bench-stream',
       '40000000-0000-4000-8000-0000000000a1'
FROM peers p WHERE p.site_name = 'bench site 0';
SQL
say "starting vrcloud-proxy (the stream's replica server: the sink)"
cat >"$work/proxy.ini" <<INI
[proxy]
name = bench-proxy
listen = 127.0.0.1:0
port_file = $work/proxy.port
cert_file = $cert
key_file = $key
internal_listen = 127.0.0.1:0
api_url = $api_url
token_file = $work/proxy.token
max_connections = $((idle + 1024))
heartbeat_interval = $heartbeat
handshake_timeout = 30
# every connection comes from 127.0.0.1 with a credential of its own: the
# failed-hello limit per address would hold back the handshakes in flight
failed_hello_burst = 0

[redis]
uri = unix://$SVC_REDIS_SOCKET
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

say "starting haproxy (TCP mode) in front of it"
lb_port=$("$load" port)
cat >"$work/haproxy.cfg" <<CFG
global
	maxconn 4096
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

say "starting stunnel (server and client)"
st_port=$("$load" port)
st_echo_port=$("$load" port)
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

[echo]
accept = 127.0.0.1:$st_echo_port
connect = 127.0.0.1:$echo_port
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
wait_port "$st_echo_port" "$st_pid" "the server stunnel"
wait_port "$st_client_port" "$stc_pid" "the client stunnel"

if ldd "$proxy" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	say "NOTE: $proxy is built with sanitizers: its figures are far below a normal build"
fi

# --- (a) one stream --------------------------------------------------------------

# NAME SENDER-ARGS...: one stream of $bytes; checks the sink's count (at
# least $bytes: the proxy's preamble line comes first) and prints
# "seconds cpu-seconds", the CPU of the sender and both relays (the sink's
# is the same on both paths).
stream() {
	local name=$1 before after t0 t1 got lines sender relays=() p
	shift
	case $name in
	vrcloud) relays=("$haproxy_pid" "$proxy_pid") ;;
	stunnel) relays=("$stc_pid" "$st_pid") ;;
	esac
	before=0
	for p in "${relays[@]}"; do before=$((before + $(cpu_ticks "$p"))); done
	lines=$(wc -l <"$work/sink.out")
	t0=$(now)
	"$load" send --bytes "$bytes" "$@" >"$work/send-$name.out" 2>&1 ||
		{
			cat "$work/send-$name.out" >&2
			die "the $name stream failed"
		}
	t1=$(now)
	after=0
	for p in "${relays[@]}"; do after=$((after + $(cpu_ticks "$p"))); done
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$work/sink.out")" -gt "$lines" ] && break
		sleep 0.05
	done
	got=$(tail -n 1 "$work/sink.out" | sed -n 's/^received bytes=\([0-9]*\) .*/\1/p')
	if [ -z "$got" ] || [ "$got" -lt "$bytes" ] || [ "$got" -gt $((bytes + 4096)) ]; then
		die "the sink got ${got:-nothing} of the $name stream's $bytes bytes"
	fi
	sender=$(sed -n 's/^sent .* cpu=\([0-9.]*\)$/\1/p' "$work/send-$name.out")
	awk -v a="$t0" -v b="$t1" -v c=$((after - before)) -v hz="$hz" -v s="${sender:-0}" \
		'BEGIN { printf "%.3f %.2f\n", b - a, c / hz + s }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

mib=$((bytes / 1048576))
: >"$work/a-vrcloud.res"
: >"$work/a-stunnel.res"
for round in $(seq 1 "$rounds"); do
	say "(a) round $round of $rounds, $mib MiB: agent -> haproxy -> vrcloud-proxy -> sink"
	stream vrcloud --proxy "127.0.0.1:$lb_port" --ca "$ca" \
		--credential-file "$work/stream.credential" >>"$work/a-vrcloud.res"
	say "    $(tail -n 1 "$work/a-vrcloud.res")"
	say "(a) round $round of $rounds, $mib MiB: stunnel client -> stunnel server -> sink"
	stream stunnel --plain "127.0.0.1:$st_client_port" >>"$work/a-stunnel.res"
	say "    $(tail -n 1 "$work/a-stunnel.res")"
done
vr_s=$(awk '{ print $1 }' "$work/a-vrcloud.res" | median)
vr_cpu=$(awk '{ print $2 }' "$work/a-vrcloud.res" | median)
st_s=$(awk '{ print $1 }' "$work/a-stunnel.res" | median)
st_cpu=$(awk '{ print $2 }' "$work/a-stunnel.res" | median)

# --- (c) handshakes ----------------------------------------------------------------

handshakes() { # OUT ARGS...: prints "rate count failed"
	local out=$1
	shift
	"$load" handshakes --ca "$ca" --seconds "$seconds" --inflight "$inflight" "$@" \
		>"$out" 2>&1 || {
		cat "$out" >&2
		die "the handshake load failed"
	}
	sed -n 's/^handshakes count=\([0-9]*\) failed=\([0-9]*\) seconds=\([0-9.]*\)$/\1 \2 \3/p' \
		"$out" | awk '{ printf "%.1f %d %d\n", $1 / $3, $1, $2 }'
}

# one second first, so that the API has verified the sites and the proxy's
# cache answers during the measurement
"$load" handshakes --ca "$ca" --seconds 1 --inflight "$inflight" \
	--connect "127.0.0.1:$proxy_port" --credentials "$work/handshake.credentials" \
	>/dev/null 2>&1 || true
: >"$work/c-vrcloud.res"
: >"$work/c-stunnel.res"
for round in $(seq 1 "$rounds"); do
	say "(c) round $round of $rounds, ${seconds}s, $inflight at a time: vrcloud-proxy"
	handshakes "$work/hs-vrcloud.out" --connect "127.0.0.1:$proxy_port" \
		--credentials "$work/handshake.credentials" >>"$work/c-vrcloud.res"
	say "    $(tail -n 1 "$work/c-vrcloud.res")"
	say "(c) round $round of $rounds, ${seconds}s, $inflight at a time: stunnel"
	handshakes "$work/hs-stunnel.out" --connect "127.0.0.1:$st_echo_port" --raw \
		>>"$work/c-stunnel.res"
	say "    $(tail -n 1 "$work/c-stunnel.res")"
done
vr_hs=$(awk '{ print $1 }' "$work/c-vrcloud.res" | median)
vr_hs_n=$(awk '{ n += $2 } END { print n }' "$work/c-vrcloud.res")
vr_hs_failed=$(awk '{ n += $3 } END { print n }' "$work/c-vrcloud.res")
st_hs=$(awk '{ print $1 }' "$work/c-stunnel.res" | median)
st_hs_n=$(awk '{ n += $2 } END { print n }' "$work/c-stunnel.res")
st_hs_failed=$(awk '{ n += $3 } END { print n }' "$work/c-stunnel.res")

# --- (b) idle connections -------------------------------------------------------------

# PID COUNT OUT ARGS...: hold COUNT idle connections against PID's port;
# prints "established failed seconds rss-before rss-after threads cpu%"
# (PID's CPU while it holds them, in percent of one core).
idle_rss() {
	local pid=$1 count=$2 out=$3 before after lpid n=0 c0 c1
	shift 3
	sleep 1
	before=$(rss_kib "$pid")
	"$load" idle --ca "$ca" --count "$count" --inflight 64 "$@" >"$out" 2>&1 </dev/null &
	lpid=$!
	while ! grep -qs '^established' "$out"; do
		kill -0 "$lpid" 2>/dev/null || {
			cat "$out" >&2
			die "the idle load ended early"
		}
		sleep 0.2
	done
	c0=$(cpu_ticks "$pid")
	sleep "$hold"
	c1=$(cpu_ticks "$pid")
	after=$(rss_kib "$pid")
	n=$(threads "$pid")
	stop_pids "$lpid"
	sed -n 's/^established connections=\([0-9]*\) failed=\([0-9]*\) seconds=\([0-9.]*\)$/\1 \2 \3/p' \
		"$out" | awk -v b="$before" -v a="$after" -v t="$n" -v c=$((c1 - c0)) -v hz="$hz" \
		-v h="$hold" '{ printf "%s %s %s %s %s %s %.1f\n", $1, $2, $3, b, a, t, c / hz / h * 100 }'
}

say "(b) $idle idle control connections to vrcloud-proxy"
res=$(idle_rss "$proxy_pid" "$idle" "$work/idle-vrcloud.out" \
	--connect "127.0.0.1:$proxy_port" --credentials "$work/idle.credentials")
read -r vr_idle vr_idle_failed vr_idle_s vr_rss0 vr_rss1 vr_threads vr_idle_cpu <<<"$res"
say "    $vr_idle established in ${vr_idle_s}s ($vr_idle_failed failed)"
if [ "$idle_stunnel" -gt 0 ]; then
	say "(b) $idle_stunnel idle TLS connections to the server stunnel"
	res=$(idle_rss "$st_pid" "$idle_stunnel" "$work/idle-stunnel.out" \
		--connect "127.0.0.1:$st_echo_port" --raw)
	read -r st_idle st_idle_failed st_idle_s st_rss0 st_rss1 st_threads st_idle_cpu <<<"$res"
	say "    $st_idle established in ${st_idle_s}s ($st_idle_failed failed)"
fi

# --- report ------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
per_conn() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "-" }'; }

echo
echo "vrcloud tunnel benchmark: TLS 1.3, EC P-256 certificate, everything on loopback;"
echo "$(nproc) CPUs shared by every process (senders, relays, sinks, API, PostgreSQL, Redis)"
echo
vr_mbs=$(awk -v b="$bytes" -v s="$vr_s" 'BEGIN { printf "%.1f", b / s / 1e6 }')
st_mbs=$(awk -v b="$bytes" -v s="$st_s" 'BEGIN { printf "%.1f", b / s / 1e6 }')
printf '%-58s %9s %9s %12s\n' "(a) one stream of $mib MiB to the cloud, median of $rounds" "MB/s" \
	"seconds" "CPU s"
printf '%-58s %9s %9s %12s\n' "----------------------------------------------------------" \
	"---------" "---------" "------------"
printf '%-58s %9s %9s %12s\n' "agent library -> haproxy -> vrcloud-proxy -> sink" \
	"$vr_mbs" "$vr_s" "$vr_cpu"
printf '%-58s %9s %9s %12s\n' "plain -> stunnel client -> stunnel server -> sink" \
	"$st_mbs" "$st_s" "$st_cpu"
echo "    ratio vrcloud/stunnel: $(ratio "$vr_mbs" "$st_mbs")" \
	"(CPU of sender and relays for the same bytes, vrcloud/stunnel: $(ratio "$vr_cpu" "$st_cpu"))"
echo
printf '%-58s %9s %9s %9s\n' "(c) new connections, $inflight at a time, median of $rounds x ${seconds}s" \
	"per s" "count" "failed"
printf '%-58s %9s %9s %9s\n' "----------------------------------------------------------" \
	"---------" "---------" "---------"
printf '%-58s %9s %9s %9s\n' "vrcloud-proxy: TLS handshake, control hello -> welcome" \
	"$vr_hs" "$vr_hs_n" "$vr_hs_failed"
printf '%-58s %9s %9s %9s\n' "stunnel: TLS handshake, a byte to the sink and back" \
	"$st_hs" "$st_hs_n" "$st_hs_failed"
echo "    ratio vrcloud/stunnel: $(ratio "$vr_hs" "$st_hs")"
echo
printf '%-44s %8s %7s %10s %10s %9s\n' "(b) idle connections held by one process" "held" "failed" \
	"RSS before" "RSS after" "KiB/conn"
printf '%-44s %8s %7s %10s %10s %9s\n' "--------------------------------------------" "--------" \
	"-------" "----------" "----------" "---------"
vr_per=$(per_conn "$vr_rss0" "$vr_rss1" "$vr_idle")
printf '%-44s %8s %7s %10s %10s %9s\n' "vrcloud-proxy: control, heartbeats" "$vr_idle" \
	"$vr_idle_failed" "${vr_rss0} KiB" "${vr_rss1} KiB" "$vr_per"
if [ "$idle_stunnel" -gt 0 ]; then
	st_per=$(per_conn "$st_rss0" "$st_rss1" "$st_idle")
	printf '%-44s %8s %7s %10s %10s %9s\n' "stunnel server: TLS + sink connection" "$st_idle" \
		"$st_idle_failed" "${st_rss0} KiB" "${st_rss1} KiB" "$st_per"
	echo "    ratio vrcloud/stunnel (KiB per connection): $(ratio "$vr_per" "$st_per");" \
		"threads: vrcloud-proxy $vr_threads, stunnel $st_threads;" \
		"stunnel's CPU while holding them: $st_idle_cpu% of a core"
fi
echo "    $vr_idle control connections established in ${vr_idle_s}s," \
	"$(awk -v n="$vr_idle" -v s="$vr_idle_s" 'BEGIN { printf "%.0f", n / s }')/s with each site's credential verified by the API (cold cache);"
echo "    vrcloud-proxy's CPU while holding them ${hold}s: $vr_idle_cpu% of a core" \
	"(a heartbeat from each every ${heartbeat}s, each renewing the site's registry entry)"
