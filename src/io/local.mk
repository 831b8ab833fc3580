# The changed-block log and the disk writer (docs/changed-block-log.md), and
# vrcloud-io, which writes into raw disk images and keeps their logs.
libvrcloud_la_SOURCES += src/include/vrcloud/cbt.h src/io/cbt.c src/io/writer.c

bin_PROGRAMS += vrcloud-io
vrcloud_io_SOURCES = src/cmd/vrcloud-io.c
vrcloud_io_LDADD = libvrcloud.la
EXTRA_DIST += docs/changed-block-log.md
