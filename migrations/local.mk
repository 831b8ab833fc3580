# Numbered SQL migrations, applied in order by `vrcloudctl migrate`.
migrationsdir = $(datadir)/vrcloud/migrations
dist_migrations_DATA = migrations/0001_foundation.sql migrations/0002_jobs.sql \
	migrations/0003_configure.sql \
	migrations/0004_failback.sql \
	migrations/0005_cancel.sql \
	migrations/0006_sites.sql \
	migrations/0007_instances.sql \
	migrations/0008_recovery.sql
