#!/usr/bin/env bash
# Run a test with PostgreSQL and Redis available:
#
#   tests/with-services.sh ./tests/unit/test_something [ARGS...]
#
# When VRCLOUD_TEST_PGURI and VRCLOUD_TEST_REDIS are already set (as
# contrib/run-tests sets them), the test just runs. Otherwise the missing
# servers are started as throwaway instances (contrib/lib/services.sh) for
# this test alone, stopped afterwards, and the test's exit status is passed
# on. A failure to start them is a hard error (exit 99) for automake.
set -uo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 TEST [ARGS...]" >&2
	exit 99
fi
if [ -n "${VRCLOUD_TEST_PGURI:-}" ] && [ -n "${VRCLOUD_TEST_REDIS:-}" ]; then
	exec "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=../contrib/lib/services.sh
. "$here/../contrib/lib/services.sh"

svc_dir=$(svc_tempdir) || exit 99
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { svc_stop "$svc_dir" || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${VRCLOUD_TEST_PGURI:-}" ]; then
	svc_start_pg "$svc_dir" >&2 || exit 99
	export VRCLOUD_TEST_PGURI=$SVC_PG_URI
fi
if [ -z "${VRCLOUD_TEST_REDIS:-}" ]; then
	svc_start_redis "$svc_dir" >&2 || exit 99
	export VRCLOUD_TEST_REDIS=$SVC_REDIS_URI
fi

"$@"
rc=$?
exit "$rc"
