# plugins/redis: the Redis Streams sink/consumer plugin (hiredis), and its tests.
if ENABLE_REDIS
pkglib_LTLIBRARIES += plugins/redis/redis.la
plugins_redis_redis_la_SOURCES = \
	plugins/redis/redis.h plugins/redis/redis.c \
	plugins/redis/redis_url.c plugins/redis/redis_conn.c \
	plugins/redis/redis_sink.c \
	plugins/redis/redis_consumer.h plugins/redis/redis_consumer.c plugins/redis/redis_poll.c
plugins_redis_redis_la_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) -pthread
plugins_redis_redis_la_LIBADD = $(HIREDIS_LIBS)
plugins_redis_redis_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

# URL and INFO parsing: a unit test without a server.
check_PROGRAMS += tests/internal/test_redis_url
tests_internal_test_redis_url_SOURCES = tests/internal/test_redis_url.c plugins/redis/redis_url.c \
	plugins/redis/redis_conn.c
tests_internal_test_redis_url_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) -I$(top_srcdir)/plugins/redis
tests_internal_test_redis_url_LDADD = $(HIREDIS_LIBS)
TESTS += tests/internal/test_redis_url

# A driver that loads the built plugin into the shared test host
# (tests/internal/testhost.c) and runs scenarios against a real redis-server
# started by tests/runtime/redis_plugin.sh.
check_PROGRAMS += tests/internal/test_redis_driver
tests_internal_test_redis_driver_SOURCES = \
	tests/internal/test_redis_driver.c tests/internal/redis_test_driver.h \
	tests/internal/test_redis_scen.c tests/internal/test_redis_consume.c
tests_internal_test_redis_driver_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) -pthread
tests_internal_test_redis_driver_LDADD = $(TEST_HOST_LIBS) $(HIREDIS_LIBS)
TESTS += tests/runtime/redis_plugin.sh
# end to end through `tributary run` with the postgres source
if ENABLE_POSTGRES
TESTS += tests/runtime/redis_e2e.sh tests/runtime/redis_outage.sh
endif
endif
EXTRA_DIST += tests/runtime/redis_lib.sh tests/runtime/redis_plugin.sh tests/runtime/redis_e2e.sh \
	tests/runtime/redis_outage.sh
