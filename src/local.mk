# The internal library: every module except the mains.
libvrcloud_la_SOURCES += \
	src/include/vrcloud/err.h src/util/err.c \
	src/include/vrcloud/alloc.h src/util/alloc.c \
	src/include/vrcloud/buf.h src/util/buf.c \
	src/include/vrcloud/log.h src/util/log.c \
	src/include/vrcloud/uuid.h src/util/uuid.c \
	src/include/vrcloud/timefmt.h src/util/timefmt.c \
	src/include/vrcloud/config.h src/util/config.c \
	src/include/vrcloud/password.h
