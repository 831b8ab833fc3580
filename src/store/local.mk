# The worker's replica store (docs/replica-store.md): staging redo log,
# crash-safe commit, instances with undo logs, exports for recovery.
libvrcloud_la_SOURCES += src/include/vrcloud/store.h src/store/internal.h \
	src/store/store.c src/store/file.c src/store/journal.c src/store/stage.c src/store/undo.c \
	src/store/export.c
EXTRA_DIST += docs/replica-store.md
