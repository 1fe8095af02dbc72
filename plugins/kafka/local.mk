# plugins/kafka/local.mk — the `kafka` plugin (librdkafka): sink + consumer,
# the kafka_mock test helper and the Kafka tests.
if ENABLE_KAFKA
pkglib_LTLIBRARIES += plugins/kafka/kafka.la
plugins_kafka_kafka_la_SOURCES = plugins/kafka/kafka.c plugins/kafka/kafka.h \
	plugins/kafka/kafka_sink.c plugins/kafka/kafka_consumer.c
plugins_kafka_kafka_la_CFLAGS = $(AM_CFLAGS) $(RDKAFKA_CFLAGS)
plugins_kafka_kafka_la_LIBADD = $(RDKAFKA_LIBS)
plugins_kafka_kafka_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

# A librdkafka mock cluster on 127.0.0.1, driven over stdin (down/up).
check_PROGRAMS += tests/kafka_mock
tests_kafka_mock_SOURCES = tests/kafka_mock.c
tests_kafka_mock_CFLAGS = $(AM_CFLAGS) $(RDKAFKA_CFLAGS)
tests_kafka_mock_LDADD = $(RDKAFKA_LIBS)

# The plugin driven through the shared test host (tests/internal/testhost.c).
check_PROGRAMS += tests/internal/test_kafka
tests_internal_test_kafka_SOURCES = tests/internal/test_kafka.c
tests_internal_test_kafka_LDADD = $(TEST_HOST_LIBS)
tests_internal_test_kafka_CPPFLAGS = $(AM_CPPFLAGS) \
	-DKAFKA_PLUGIN_SO='"$(abs_top_builddir)/plugins/kafka/.libs/kafka.so"' \
	-DKAFKA_MOCK_BIN='"$(abs_top_builddir)/tests/kafka_mock"'

TESTS += tests/internal/test_kafka tests/runtime/kafka_interop.sh tests/runtime/kafka_e2e.sh \
	tests/runtime/kafka_conf.sh
EXTRA_DIST += tests/runtime/kafka_interop.sh tests/runtime/kafka_e2e.sh tests/runtime/kafka_lib.sh \
	tests/runtime/kafka_conf.sh
endif
