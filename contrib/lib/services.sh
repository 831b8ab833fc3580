# shellcheck shell=bash
# Private PostgreSQL 15 and Redis 7 instances for vrcloud, started from a
# directory of their own and never touching the system clusters or systemd.
#
#   . contrib/lib/services.sh
#   svc_start_pg DIR [--persistent]     # exports SVC_PG_URI, SVC_PG_PORT, ...
#   svc_start_redis DIR [--persistent]  # exports SVC_REDIS_URI, SVC_REDIS_PORT, ...
#   svc_stop DIR                        # stops both; removes DIR if throwaway
#   svc_stop_pg DIR [MODE]              # stops PostgreSQL only (svc_start_pg restarts it)
#   svc_stop_redis DIR                  # stops Redis only (a throwaway one restarts empty)
#   svc_tempdir                         # prints a new directory for throwaway servers
#
# Two modes, chosen when DIR is first used and remembered in DIR/svc.mode:
#   throwaway (tests): fsync off, PostgreSQL also listens on 127.0.0.1,
#     Redis keeps nothing on disk, svc_stop deletes everything.
#   persistent (contrib/vrcloud-up): durable PostgreSQL in DIR/pg reachable
#     through its unix socket only, Redis with an append-only file in
#     DIR/redis, data kept by svc_stop.
#
# Users. PostgreSQL refuses to run as root, and an unauthenticated Redis run
# by root is a well-known escalation path, so when the caller is root the
# servers run as the 'postgres' and 'redis' system users (created by their
# Debian packages) and their directories belong to those users. An ordinary
# user runs both as itself. Logs are opened by the caller and handed to the
# servers as stdout/stderr, so they can live where the servers cannot reach.
#
# Paths. Unix socket paths are limited to 107 bytes: the sockets live in
# DIR/run when that is short and plain, else in a short directory under /tmp
# recorded in DIR/svc.sockdir. When root's clone is in a directory that
# 'postgres' or 'redis' cannot traverse (e.g. under /root, mode 700), their
# data goes to /var/lib/vrcloud (persistent) or /tmp (throwaway) instead,
# recorded in DIR/pg.datadir and DIR/redis.datadir, and a note says so.
#
# Other exported variables: SVC_PG_SOCKDIR, SVC_PG_DATA, SVC_PG_PID,
# SVC_PG_TCP_URI (throwaway only), SVC_REDIS_SOCKET, SVC_REDIS_PID.

svc__pgbin_default() {
	local d
	if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
		echo /usr/lib/postgresql/15/bin
		return 0
	fi
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
		if [ -x "$d/initdb" ]; then
			echo "$d"
			return 0
		fi
	done
	d=$(command -v initdb 2>/dev/null) && dirname "$d"
	return 0
}
SVC_PGBIN=${SVC_PGBIN:-$(svc__pgbin_default)}
# Seconds to wait for a server to stop before it is killed.
SVC_STOP_TIMEOUT=${SVC_STOP_TIMEOUT:-30}

svc__say() { printf 'services: %s\n' "$*" >&2; }

svc__is_root() { [ "$(id -u)" -eq 0 ]; }

# The account a server runs as: root hands it to the system user.
svc__user() {
	if ! svc__is_root; then
		id -un
	elif [ "$1" = redis ] && ! getent passwd redis >/dev/null; then
		echo postgres
	else
		echo "$1"
	fi
}

# Run a command as USER (no-op change when that is the caller), from / so
# that an unreadable working directory does not disturb it.
svc__as() {
	local user=$1
	shift
	if svc__is_root && [ "$user" != root ]; then
		(cd / && runuser -u "$user" -- "$@")
	else
		(cd / && "$@")
	fi
}

# Replace this process by the command run as USER (no fork: the pid stays).
svc__exec_as() {
	local user=$1
	shift
	cd / || exit 1
	if svc__is_root && [ "$user" != root ]; then
		exec setpriv --reuid="$user" --regid="$(id -gn "$user")" --init-groups -- "$@"
	fi
	exec "$@"
}

# True when this (sub)shell leads its process group. setsid forks when its
# caller does, as background jobs of an interactive shell do; such a job is
# out of the terminal's foreground group already and needs no new session.
svc_leads_group() {
	local stat pgrp
	read -r stat <"/proc/$BASHPID/stat" || return 1
	stat=${stat##*) }
	read -r _ _ pgrp _ <<<"$stat"
	[ "$pgrp" = "$BASHPID" ]
}

# Give PATH to USER (only when the caller is root and USER is not).
svc__own() {
	local user=$1
	shift
	if svc__is_root && [ "$user" != root ]; then
		chown -R "$user:$(id -gn "$user")" "$@"
	fi
}

# True while PID runs; a zombie awaiting its reaper counts as gone (PID 1
# may be slow to reap processes that daemonized).
svc_alive() {
	local stat state
	[ -n "${1:-}" ] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	state=${state%% *}
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Wait up to SECONDS for PID to be gone; false if it still runs.
svc__wait_gone() {
	local pid=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		svc_alive "$pid" || return 0
		sleep 0.05
	done
	! svc_alive "$pid"
}

svc__comm() { cat "/proc/$1/comm" 2>/dev/null; }

# Is anything listening on 127.0.0.1:PORT (or on all addresses)?
svc__port_used() {
	if command -v ss >/dev/null 2>&1; then
		# command substitution, not a pipe into grep -q: with pipefail a
		# SIGPIPE could flip the answer
		[ -n "$(ss -Htln "sport = :$1")" ]
	else
		(: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# A free TCP port on 127.0.0.1 below the ephemeral range (32768-60999), so
# that no client socket can take it between this check and the bind.
svc_free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		if ! svc__port_used "$p"; then
			echo "$p"
			return 0
		fi
	done
	svc__say "no free port found in 20000-31999"
	return 1
}

# Percent-encode a string for a URI query value.
svc__uri_escape() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

svc__read() { [ -s "$1" ] && head -n 1 "$1"; }

# A new directory for a throwaway pair of servers (give it to svc_start_*).
svc_tempdir() { mktemp -d /tmp/vrcloud-test.XXXXXX; }

# Make DIR, print its absolute path.
svc__dir() {
	[ -n "${1:-}" ] || {
		svc__say "a directory is required"
		return 1
	}
	mkdir -p "$1" && (cd "$1" && pwd -P)
}

# The mode of DIR: the one recorded, else the one asked for (recorded now).
svc__mode() {
	local dir=$1 want=throwaway recorded
	case ${2:-} in
	--persistent) want=persistent ;;
	'' | --throwaway) ;;
	*)
		svc__say "unknown option: $2"
		return 1
		;;
	esac
	recorded=$(svc__read "$dir/svc.mode") || recorded=
	if [ -n "$recorded" ]; then
		if [ -n "${2:-}" ] && [ "$recorded" != "$want" ]; then
			svc__say "$dir is $recorded, not $want"
			return 1
		fi
		echo "$recorded"
		return 0
	fi
	echo "$want" >"$dir/svc.mode"
	# a throwaway directory (typically from mktemp -d, mode 700) holds
	# nothing secret: let the servers' users reach it
	[ "$want" = persistent ] || chmod 755 "$dir"
	echo "$want"
}

# Can USER reach (search) PATH, i.e. every directory leading to it?
svc__reachable() {
	local user=$1 path=$2
	if svc__is_root && [ "$user" != root ]; then
		svc__as "$user" test -x "$path" 2>/dev/null
	else
		return 0
	fi
}

# The short directory that holds both servers' sockets (see the header).
svc__sockdir() {
	local dir=$1 s pguser rduser
	pguser=$(svc__user postgres)
	rduser=$(svc__user redis)
	s=$(svc__read "$dir/svc.sockdir") || s=
	if [ -n "$s" ]; then
		if [ -d "$s" ] && [ -O "$s" ]; then
			echo "$s"
			return 0
		fi
		s=
	fi
	s=$dir/run
	if [ "${#s}" -gt 80 ] || [[ $s == *[!A-Za-z0-9/._+-]* ]] \
		|| ! svc__reachable "$pguser" "$dir" || ! svc__reachable "$rduser" "$dir"; then
		s=$(mktemp -d /tmp/vrcloud.XXXXXX) || return 1
		echo "$s" >"$dir/svc.sockdir"
	fi
	mkdir -p "$s"
	chmod 755 "$s"
	echo "$s"
}

# Where a server's data lives: DIR/NAME, unless its user cannot reach DIR.
svc__datadir() {
	local dir=$1 name=$2 user=$3 mode=$4 d
	d=$(svc__read "$dir/$name.datadir") || d=
	if [ -n "$d" ]; then
		echo "$d"
		return 0
	fi
	d=$dir/$name
	if ! svc__reachable "$user" "$dir"; then
		if [ "$mode" = persistent ]; then
			mkdir -p /var/lib/vrcloud
			chmod 755 /var/lib/vrcloud
			d=$(mktemp -d "/var/lib/vrcloud/$name.XXXXXX") || return 1
		else
			d=$(mktemp -d "/tmp/vrcloud-$name.XXXXXX") || return 1
			chmod 755 "$d"
		fi
		echo "$d" >"$dir/$name.datadir"
		[ "$mode" = throwaway ] || svc__say "user '$user' cannot reach $dir (a parent directory is not searchable," \
			"e.g. /root is mode 700): $name data is kept in $d instead." \
			"To keep it under $dir, make its parents searchable (chmod o+x) or clone elsewhere."
	fi
	echo "$d"
}

# pid of the PostgreSQL server of DIR if it runs, else false.
svc_pg_pid() {
	local dir data pid
	dir=$(cd "$1" 2>/dev/null && pwd -P) || return 1
	data=$(svc__read "$dir/pg.datadir") || data=$dir/pg
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 1
	svc_alive "$pid" && [ "$(svc__comm "$pid")" = postgres ] && echo "$pid"
}

# pid of the Redis server of DIR if it runs, else false.
svc_redis_pid() {
	local dir pid
	dir=$(cd "$1" 2>/dev/null && pwd -P) || return 1
	pid=$(svc__read "$dir/redis.pid") || return 1
	svc_alive "$pid" && [ "$(svc__comm "$pid")" = redis-server ] && echo "$pid"
}

svc__export_pg() {
	local sock=$1 port=$2 mode=$3
	SVC_PG_SOCKDIR=$sock/pg
	SVC_PG_PORT=$port
	SVC_PG_URI="postgresql://postgres@/postgres?host=$(svc__uri_escape "$SVC_PG_SOCKDIR")&port=$port"
	SVC_PG_TCP_URI=
	[ "$mode" = persistent ] || SVC_PG_TCP_URI="postgresql://postgres@127.0.0.1:$port/postgres"
	export SVC_PG_SOCKDIR SVC_PG_PORT SVC_PG_URI SVC_PG_TCP_URI SVC_PG_DATA SVC_PG_PID
}

svc_start_pg() {
	local dir mode sock user data log port try pid
	dir=$(svc__dir "${1:-}") || return 1
	mode=$(svc__mode "$dir" "${2:-}") || return 1
	[ -x "$SVC_PGBIN/initdb" ] || {
		svc__say "PostgreSQL server binaries not found (install postgresql-15)"
		return 1
	}
	user=$(svc__user postgres)
	sock=$(svc__sockdir "$dir") || return 1
	data=$(svc__datadir "$dir" pg "$user" "$mode") || return 1
	mkdir -p "$dir/log" "$sock/pg"
	chmod 700 "$sock/pg"
	svc__own "$user" "$sock/pg"
	log=$dir/log/postgresql.log
	SVC_PG_DATA=$data

	if pid=$(svc_pg_pid "$dir"); then
		port=$(svc__read "$dir/pg.port") && [ -S "$sock/pg/.s.PGSQL.$port" ] && {
			SVC_PG_PID=$pid
			svc__export_pg "$sock" "$port" "$mode"
			return 0
		}
		svc__say "PostgreSQL (pid $pid) runs on $data but its socket is gone: restarting it"
		svc__as "$user" "$SVC_PGBIN/pg_ctl" -D "$data" -m fast -w -s stop >>"$log" 2>&1 || true
		svc__wait_gone "$pid" 5 || svc__kill "$pid" postgres
	fi

	if [ ! -s "$data/PG_VERSION" ]; then
		local sync=()
		[ "$mode" = persistent ] || sync=(--no-sync)
		mkdir -p "$data"
		chmod 700 "$data"
		svc__own "$user" "$data"
		if ! svc__as "$user" "$SVC_PGBIN/initdb" -D "$data" -U postgres -A trust \
			-E UTF8 --locale=C.UTF-8 "${sync[@]}" >"$dir/log/initdb.log" 2>&1; then
			cat "$dir/log/initdb.log" >&2
			return 1
		fi
		{
			echo
			echo "# vrcloud ($mode)"
			if [ "$mode" = persistent ]; then
				# reachable only through the unix socket, whose directory
				# only the server's owner (and root) may enter
				echo "listen_addresses = ''"
			else
				echo "listen_addresses = '127.0.0.1'"
				echo "max_connections = 200"
				echo "fsync = off"
				echo "synchronous_commit = off"
				echo "full_page_writes = off"
			fi
		} | svc__as "$user" tee -a "$data/postgresql.conf" >/dev/null
	fi

	port=$(svc__read "$dir/pg.port") || port=
	for try in 1 2 3 4 5; do
		if [ -z "$port" ] || { [ "$mode" != persistent ] && svc__port_used "$port"; }; then
			port=$(svc_free_port) || return 1
		fi
		# pg_ctl -w returns once connections are accepted; the server keeps
		# the log opened here as its stdout/stderr
		if svc__as "$user" "$SVC_PGBIN/pg_ctl" -D "$data" -w -t 60 -s \
			-o "-k $sock/pg -p $port" start >>"$log" 2>&1 </dev/null; then
			echo "$port" >"$dir/pg.port"
			SVC_PG_PID=$(svc_pg_pid "$dir") || SVC_PG_PID=
			svc__export_pg "$sock" "$port" "$mode"
			return 0
		fi
		if [ "$(tail -n 20 "$log" | grep -c 'could not bind\|could not create any TCP\|Address already in use')" -eq 0 ]; then
			break
		fi
		port=   # the port was taken meanwhile: try another
		[ "$try" -lt 5 ] || break
	done
	svc__say "PostgreSQL did not start; end of $log:"
	tail -n 20 "$log" >&2
	return 1
}

svc_start_redis() {
	local dir mode sock user data log port try pid i reply
	dir=$(svc__dir "${1:-}") || return 1
	mode=$(svc__mode "$dir" "${2:-}") || return 1
	command -v redis-server >/dev/null || {
		svc__say "redis-server not found (install redis-server)"
		return 1
	}
	user=$(svc__user redis)
	sock=$(svc__sockdir "$dir") || return 1
	data=$(svc__datadir "$dir" redis "$user" "$mode") || return 1
	mkdir -p "$dir/log" "$sock/redis" "$data"
	chmod 700 "$sock/redis"
	chmod 750 "$data"
	svc__own "$user" "$sock/redis" "$data"
	log=$dir/log/redis.log
	SVC_REDIS_SOCKET=$sock/redis/redis.sock

	if pid=$(svc_redis_pid "$dir"); then
		port=$(svc__read "$dir/redis.port")
		if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then
			SVC_REDIS_PORT=$port SVC_REDIS_PID=$pid
			SVC_REDIS_URI=redis://127.0.0.1:$port
			export SVC_REDIS_PORT SVC_REDIS_PID SVC_REDIS_URI SVC_REDIS_SOCKET
			return 0
		fi
		svc__say "Redis (pid $pid) does not answer on port $port: restarting it"
		svc__kill "$pid" redis-server
	fi

	local persist=(--save '' --appendonly no)
	[ "$mode" = persistent ] && persist=(--save '' --appendonly yes --appendfsync everysec)
	port=$(svc__read "$dir/redis.port") || port=
	for try in 1 2 3 4 5; do
		if [ -z "$port" ] || svc__port_used "$port"; then
			[ -z "$port" ] || [ "$mode" != persistent ] \
				|| svc__say "Redis port $port is taken: moving to another one"
			port=$(svc_free_port) || return 1
		fi
		# a foreground server in a session of its own (out of reach of the
		# terminal's Ctrl-C), exec'd without a fork: $! is the server
		(
			detach=(setsid)
			! svc_leads_group || detach=()
			svc__exec_as "$user" "${detach[@]}" redis-server --bind 127.0.0.1 \
				--port "$port" --unixsocket "$SVC_REDIS_SOCKET" --unixsocketperm 700 \
				--dir "$data" --daemonize no --logfile '' "${persist[@]}"
		) </dev/null >>"$log" 2>&1 &
		pid=$!
		for ((i = 0; i < 200; i++)); do
			reply=$(redis-cli -p "$port" ping 2>/dev/null) || reply=
			[ "$reply" = PONG ] && break
			svc_alive "$pid" || break
			sleep 0.05
		done
		# the server that answers must be this one, not one that took the
		# port meanwhile
		if [ "$reply" = PONG ] && [ "$(redis-cli -p "$port" info server | tr -d '\r' \
			| sed -n 's/^process_id://p')" = "$pid" ]; then
			echo "$port" >"$dir/redis.port"
			echo "$pid" >"$dir/redis.pid"
			SVC_REDIS_PORT=$port SVC_REDIS_PID=$pid
			SVC_REDIS_URI=redis://127.0.0.1:$port
			export SVC_REDIS_PORT SVC_REDIS_PID SVC_REDIS_URI SVC_REDIS_SOCKET
			return 0
		fi
		svc__kill "$pid" redis-server
		[ "$reply" = PONG ] || tail -n 5 "$log" | grep -q 'Address already in use' || break
		port=
	done
	svc__say "Redis did not start; end of $log:"
	tail -n 20 "$log" >&2
	return 1
}

# Stop PID (only if it still is the program NAME): SIGTERM, wait, SIGKILL.
svc__kill() {
	local pid=$1 name=$2
	svc_alive "$pid" || return 0
	[ "$(svc__comm "$pid")" = "${name:0:15}" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	svc__wait_gone "$pid" "$SVC_STOP_TIMEOUT" && return 0
	svc__say "$name (pid $pid) ignored SIGTERM for ${SVC_STOP_TIMEOUT}s: killing it"
	kill -KILL "$pid" 2>/dev/null || true
	svc__wait_gone "$pid" 5
}

# Stop the PostgreSQL server of DIR (if it runs) and check that it is gone;
# its data stays, and svc_start_pg DIR starts it again on the same port when
# that is still free. HOW is a pg_ctl shutdown mode (smart, fast,
# immediate); by default fast for a persistent DIR, immediate for a
# throwaway one.
svc_stop_pg() {
	local dir mode user pid data how
	dir=$(cd "${1:-}" 2>/dev/null && pwd -P) || return 0
	[ -f "$dir/svc.mode" ] || return 0
	mode=$(svc__read "$dir/svc.mode")
	pid=$(svc_pg_pid "$dir") || return 0
	how=${2:-}
	[ -n "$how" ] || { how=fast; [ "$mode" = persistent ] || how=immediate; }
	user=$(svc__user postgres)
	data=$(svc__read "$dir/pg.datadir") || data=$dir/pg
	svc__as "$user" "$SVC_PGBIN/pg_ctl" -D "$data" -m "$how" -w -t "$SVC_STOP_TIMEOUT" \
		-s stop >>"$dir/log/postgresql.log" 2>&1 || true
	svc__wait_gone "$pid" 5 || svc__kill "$pid" postgres
	if svc_alive "$pid"; then
		svc__say "PostgreSQL (pid $pid) is still running"
		return 1
	fi
}

# Stop the Redis server of DIR (if it runs) and check that it is gone. A
# throwaway Redis keeps nothing: svc_start_redis DIR starts it again empty,
# on the same port when that is still free.
svc_stop_redis() {
	local dir mode pid port
	dir=$(cd "${1:-}" 2>/dev/null && pwd -P) || return 0
	[ -f "$dir/svc.mode" ] || return 0
	mode=$(svc__read "$dir/svc.mode")
	if pid=$(svc_redis_pid "$dir"); then
		port=$(svc__read "$dir/redis.port")
		if [ "$mode" = persistent ]; then
			redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
		else
			redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
		fi
		# shutdown answers before the process has gone: wait for its pid
		svc__wait_gone "$pid" "$SVC_STOP_TIMEOUT" || svc__kill "$pid" redis-server
		if svc_alive "$pid"; then
			svc__say "Redis (pid $pid) is still running"
			return 1
		fi
	fi
	rm -f "$dir/redis.pid"
}

# Stop both servers of DIR and check that their processes are gone. A
# throwaway DIR is then deleted with everything it recorded elsewhere.
svc_stop() {
	local dir mode rc=0
	dir=$(cd "${1:-}" 2>/dev/null && pwd -P) || return 0
	[ -f "$dir/svc.mode" ] || return 0
	mode=$(svc__read "$dir/svc.mode")
	svc_stop_pg "$dir" || rc=1
	svc_stop_redis "$dir" || rc=1
	[ "$mode" = throwaway ] && [ "$rc" -eq 0 ] && svc__remove "$dir"
	return "$rc"
}

# Stop both servers of DIR and delete DIR and every data directory it
# recorded elsewhere, whatever its mode.
svc_purge() {
	local dir
	dir=$(cd "${1:-}" 2>/dev/null && pwd -P) || return 0
	svc_stop "$dir" || return 1
	[ -d "$dir" ] && svc__remove "$dir"
	return 0
}

svc__remove() {
	local dir=$1 extra
	for extra in "$dir/svc.sockdir" "$dir/pg.datadir" "$dir/redis.datadir"; do
		extra=$(svc__read "$extra") || continue
		case $extra in /tmp/vrcloud* | /var/lib/vrcloud/*) rm -rf "$extra" ;; esac
	done
	rm -rf "$dir"
	rmdir /var/lib/vrcloud 2>/dev/null || true
}
