# Unit tests of the core modules: one Criterion program per module and
# topic. test_auth_password and test_ctl_* are registered in
# src/ctl/local.mk.

check_PROGRAMS += tests/unit/test_util_buf
tests_unit_test_util_buf_SOURCES = tests/unit/test_util_buf.c
tests_unit_test_util_buf_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_buf_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_util_buf_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_util_buf

check_PROGRAMS += tests/unit/test_util_uuid
tests_unit_test_util_uuid_SOURCES = tests/unit/test_util_uuid.c
tests_unit_test_util_uuid_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_uuid_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_util_uuid_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_util_uuid

check_PROGRAMS += tests/unit/test_util_timefmt
tests_unit_test_util_timefmt_SOURCES = tests/unit/test_util_timefmt.c
tests_unit_test_util_timefmt_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_timefmt_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_util_timefmt_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_util_timefmt

check_PROGRAMS += tests/unit/test_util_config
tests_unit_test_util_config_SOURCES = tests/unit/test_util_config.c
tests_unit_test_util_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_config_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_util_config_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_util_config

check_PROGRAMS += tests/unit/test_util_log
tests_unit_test_util_log_SOURCES = tests/unit/test_util_log.c
tests_unit_test_util_log_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_util_log_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_util_log_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_util_log

check_PROGRAMS += tests/unit/test_xml_writer
tests_unit_test_xml_writer_SOURCES = tests/unit/test_xml_writer.c
tests_unit_test_xml_writer_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_xml_writer_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_xml_writer_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_xml_writer

check_PROGRAMS += tests/unit/test_xml_parse
tests_unit_test_xml_parse_SOURCES = tests/unit/test_xml_parse.c
tests_unit_test_xml_parse_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_xml_parse_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_xml_parse_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_xml_parse

check_PROGRAMS += tests/unit/test_xml_schema
tests_unit_test_xml_schema_SOURCES = tests/unit/test_xml_schema.c
tests_unit_test_xml_schema_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_xml_schema_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_xml_schema_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_xml_schema

check_PROGRAMS += tests/unit/test_http_router
tests_unit_test_http_router_SOURCES = tests/unit/test_http_router.c
tests_unit_test_http_router_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_http_router_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_http_router_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_http_router

check_PROGRAMS += tests/unit/test_http_negotiate
tests_unit_test_http_negotiate_SOURCES = tests/unit/test_http_negotiate.c
tests_unit_test_http_negotiate_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_http_negotiate_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_http_negotiate_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_http_negotiate

check_PROGRAMS += tests/unit/test_http_cookie
tests_unit_test_http_cookie_SOURCES = tests/unit/test_http_cookie.c
tests_unit_test_http_cookie_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_http_cookie_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_http_cookie_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_http_cookie

check_PROGRAMS += tests/unit/test_queue_redis_uri
tests_unit_test_queue_redis_uri_SOURCES = tests/unit/test_queue_redis_uri.c
tests_unit_test_queue_redis_uri_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_queue_redis_uri_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_queue_redis_uri_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_queue_redis_uri

check_PROGRAMS += tests/unit/test_api_paging
tests_unit_test_api_paging_SOURCES = tests/unit/test_api_paging.c
tests_unit_test_api_paging_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_api_paging_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_api_paging_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_api_paging

check_PROGRAMS += tests/unit/test_api_routes
tests_unit_test_api_routes_SOURCES = tests/unit/test_api_routes.c
tests_unit_test_api_routes_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_api_routes_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_api_routes_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_api_routes

check_PROGRAMS += tests/unit/test_xml_input
tests_unit_test_xml_input_SOURCES = tests/unit/test_xml_input.c
tests_unit_test_xml_input_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_xml_input_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_xml_input_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_xml_input

check_PROGRAMS += tests/unit/test_transfer_codec
tests_unit_test_transfer_codec_SOURCES = tests/unit/test_transfer_codec.c tests/unit/test_transfer_common.h
tests_unit_test_transfer_codec_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_transfer_codec_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_transfer_codec_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_transfer_codec

check_PROGRAMS += tests/unit/test_transfer_hostile
tests_unit_test_transfer_hostile_SOURCES = tests/unit/test_transfer_hostile.c tests/unit/test_transfer_common.h
tests_unit_test_transfer_hostile_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_transfer_hostile_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_transfer_hostile_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_transfer_hostile

check_PROGRAMS += tests/unit/test_transfer_hashrec
tests_unit_test_transfer_hashrec_SOURCES = tests/unit/test_transfer_hashrec.c tests/unit/test_transfer_common.h
tests_unit_test_transfer_hashrec_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_transfer_hashrec_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_transfer_hashrec_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_transfer_hashrec

check_PROGRAMS += tests/unit/test_transfer_compress
tests_unit_test_transfer_compress_SOURCES = tests/unit/test_transfer_compress.c tests/unit/test_transfer_common.h
tests_unit_test_transfer_compress_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_transfer_compress_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_transfer_compress_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_transfer_compress

check_PROGRAMS += tests/unit/test_io_cbt
tests_unit_test_io_cbt_SOURCES = tests/unit/test_io_cbt.c
tests_unit_test_io_cbt_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_io_cbt_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_io_cbt_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_io_cbt

check_PROGRAMS += tests/unit/test_io_writer
tests_unit_test_io_writer_SOURCES = tests/unit/test_io_writer.c
tests_unit_test_io_writer_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_io_writer_CPPFLAGS = $(TEST_CPPFLAGS)
tests_unit_test_io_writer_LDADD = $(TEST_LIBS)
TESTS += tests/unit/test_io_writer
