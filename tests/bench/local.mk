# Benchmarks: `make bench` builds the daemons and runs the API benchmark
# against pgbench on the same throwaway PostgreSQL. Never part of `make
# check`; it fails only when something could not run, never on a figure.
# BENCH_DURATION and BENCH_ROUNDS shorten it for a smoke run.
EXTRA_DIST += \
	tests/bench/run-api-bench.sh \
	tests/bench/api-requests.lua

bench: vrcloud-api$(EXEEXT) vrcloudctl$(EXEEXT)
	WRK='$(WRK)' PGBENCH='$(PGBENCH)' \
		$(SHELL) $(srcdir)/tests/bench/run-api-bench.sh '$(abs_top_builddir)'

.PHONY: bench
