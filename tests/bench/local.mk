# Benchmarks: `make bench` builds the daemons and runs the API benchmark
# against pgbench on the same throwaway PostgreSQL, then the job pipeline
# benchmark (actions end to end with 1, 2 and 4 workers, the outbox relay
# with Redis down), then the tunnel benchmark (a stream through haproxy and
# vrcloud-proxy beside stunnel, idle control connections, handshakes), then
# the sync benchmark (full, incremental and seeded syncs of a 2 GiB disk by
# vrcloud-agent into the worker's store, beside stunnel and rsync), one
# after the other; `make bench-api`, `make bench-jobs`, `make bench-tunnel`
# and `make bench-sync` run one of them. Never part of `make check`; they
# fail only when something could not run (or a replica is wrong), never on
# a figure. BENCH_DURATION, BENCH_ROUNDS, BENCH_ACTIONS, BENCH_TUNNEL_BYTES,
# BENCH_TUNNEL_IDLE and BENCH_SYNC_BYTES shorten them for a smoke run.
EXTRA_DIST += \
	tests/bench/lib.sh \
	tests/bench/run-api-bench.sh \
	tests/bench/run-jobs-bench.sh \
	tests/bench/api-requests.lua \
	tests/bench/run-tunnel-bench.sh \
	tests/bench/run-sync-bench.sh \
	tests/bench/run-scale-bench.sh

# The tunnel benchmark's load tool (sink, sender, many TLS connections):
# built only by the benchmark.
EXTRA_PROGRAMS = tests/bench/tunnel-load
tests_bench_tunnel_load_SOURCES = tests/bench/tunnel-load.c
tests_bench_tunnel_load_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS)
tests_bench_tunnel_load_LDADD = libvrcloud.la $(CURL_LIBS)
CLEANFILES += tests/bench/tunnel-load$(EXEEXT)

BENCH_API = WRK='$(WRK)' PGBENCH='$(PGBENCH)' \
	$(SHELL) $(srcdir)/tests/bench/run-api-bench.sh '$(abs_top_builddir)'
BENCH_JOBS = PGBENCH='$(PGBENCH)' \
	$(SHELL) $(srcdir)/tests/bench/run-jobs-bench.sh '$(abs_top_builddir)'
BENCH_TUNNEL = $(SHELL) $(srcdir)/tests/bench/run-tunnel-bench.sh '$(abs_top_builddir)'
BENCH_TUNNEL_DEPS = vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-proxy$(EXEEXT) \
	tests/bench/tunnel-load$(EXEEXT)

BENCH_SYNC = $(SHELL) $(srcdir)/tests/bench/run-sync-bench.sh '$(abs_top_builddir)'
BENCH_SYNC_DEPS = $(BENCH_TUNNEL_DEPS) vrcloud-worker$(EXEEXT) vrcloud-agent$(EXEEXT) \
	vrcloud-io$(EXEEXT)

# The data plane at scale (tests/bench/run-scale-bench.sh): failover time
# for a 1 GiB and an 8 GiB disk, to the newest and to an older instance, and
# how many replications at a 1-minute RPO one agent, haproxy, 2 proxies and
# 2 workers hold. BENCH_SCALE_VMS and BENCH_SCALE_MINUTES shorten it.
BENCH_SCALE = $(SHELL) $(srcdir)/tests/bench/run-scale-bench.sh '$(abs_top_builddir)'
BENCH_SCALE_DEPS = vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-worker$(EXEEXT) \
	vrcloud-proxy$(EXEEXT) vrcloud-agent$(EXEEXT) vrcloud-io$(EXEEXT)

bench: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-worker$(EXEEXT) $(BENCH_TUNNEL_DEPS) \
	$(BENCH_SYNC_DEPS) $(BENCH_SCALE_DEPS)
	$(BENCH_API)
	$(BENCH_JOBS)
	$(BENCH_TUNNEL)
	$(BENCH_SYNC)
	$(BENCH_SCALE)

bench-api: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT)
	$(BENCH_API)

bench-jobs: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-worker$(EXEEXT)
	$(BENCH_JOBS)

bench-tunnel: $(BENCH_TUNNEL_DEPS)
	$(BENCH_TUNNEL)

bench-sync: $(BENCH_SYNC_DEPS)
	$(BENCH_SYNC)

bench-scale: $(BENCH_SCALE_DEPS)
	$(BENCH_SCALE)

.PHONY: bench bench-api bench-jobs bench-tunnel bench-sync bench-scale
