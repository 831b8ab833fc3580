# Benchmarks: `make bench` builds the daemons and runs the API benchmark
# against pgbench on the same throwaway PostgreSQL, then the job pipeline
# benchmark (actions end to end with 1, 2 and 4 workers, the outbox relay
# with Redis down), one after the other; `make bench-api` and `make
# bench-jobs` run one of them. Never part of `make check`; they fail only
# when something could not run, never on a figure. BENCH_DURATION,
# BENCH_ROUNDS and BENCH_ACTIONS shorten them for a smoke run.
EXTRA_DIST += \
	tests/bench/run-api-bench.sh \
	tests/bench/run-jobs-bench.sh \
	tests/bench/api-requests.lua

BENCH_API = WRK='$(WRK)' PGBENCH='$(PGBENCH)' \
	$(SHELL) $(srcdir)/tests/bench/run-api-bench.sh '$(abs_top_builddir)'
BENCH_JOBS = PGBENCH='$(PGBENCH)' \
	$(SHELL) $(srcdir)/tests/bench/run-jobs-bench.sh '$(abs_top_builddir)'

bench: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-worker$(EXEEXT)
	$(BENCH_API)
	$(BENCH_JOBS)

bench-api: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT)
	$(BENCH_API)

bench-jobs: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT) vrcloud-worker$(EXEEXT)
	$(BENCH_JOBS)

.PHONY: bench bench-api bench-jobs
