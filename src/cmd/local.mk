# Daemons (thin mains over the internal library). vrcloudctl: src/ctl/local.mk.
bin_PROGRAMS += vrcloud-api
vrcloud_api_SOURCES = src/cmd/vrcloud-api.c
vrcloud_api_CFLAGS = $(AM_CFLAGS) $(LIBDEPS_CFLAGS)
vrcloud_api_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
vrcloud_api_LDADD = libvrcloud.la
