# Helpers the benchmark scripts share (sourced, never run): messages, finding
# a program, stopping the daemons a script started, the clock.
# shellcheck shell=bash

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

find_program() { # NAME [CANDIDATE...]: the first that runs
	local p
	for p in "$@"; do
		[ -n "$p" ] || continue
		if command -v "$p" >/dev/null 2>&1; then
			command -v "$p"
			return 0
		fi
	done
	return 1
}

# PID...: SIGTERM, up to STOP_WAIT_S seconds (default 10), then SIGKILL;
# reaps them.
stop_pids() {
	local pid _ tries=$((${STOP_WAIT_S:-10} * 20))
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		for _ in $(seq 1 "$tries"); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
	done
}

now() { date +%s.%N; }
