# plugins/mqtt/: MQTT sink (own connection, mqtt_wire.c) + consumer on paho-mqtt-c's async client.
if ENABLE_MQTT
pkglib_LTLIBRARIES += plugins/mqtt/mqtt.la
plugins_mqtt_mqtt_la_SOURCES = plugins/mqtt/mqtt.c plugins/mqtt/mqtt_sink.c \
	plugins/mqtt/mqtt_consumer.c plugins/mqtt/mqtt_codec.c plugins/mqtt/mqtt_int.h \
	plugins/mqtt/mqtt_session.c plugins/mqtt/mqtt_wire.c plugins/mqtt/mqtt_wire.h
plugins_mqtt_mqtt_la_CFLAGS = $(AM_CFLAGS) -pthread
plugins_mqtt_mqtt_la_LIBADD = $(PAHO_LIBS) -lpthread
plugins_mqtt_mqtt_la_LDFLAGS = $(TRIB_MODULE_FLAGS)
endif

# Tests: codec units; a driver (the plugin in the shared test host,
# tests/internal/testhost.c) that the runtime scripts use against a real mosquitto.
if ENABLE_MQTT
check_PROGRAMS += tests/internal/test_mqtt_codec tests/internal/test_mqtt_driver \
	tests/internal/test_mqtt_wire tests/internal/test_mqtt_sink
tests_internal_test_mqtt_codec_SOURCES = tests/internal/test_mqtt_codec.c tests/internal/fakenet.h \
	plugins/mqtt/mqtt_codec.c \
	plugins/mqtt/mqtt_wire.c
tests_internal_test_mqtt_codec_CFLAGS = $(AM_CFLAGS) -pthread
tests_internal_test_mqtt_codec_LDADD = $(TEST_HOST_LIBS) $(PAHO_LIBS)
tests_internal_test_mqtt_driver_SOURCES = tests/internal/test_mqtt_driver.c
tests_internal_test_mqtt_driver_CFLAGS = $(AM_CFLAGS) -pthread
tests_internal_test_mqtt_driver_LDADD = $(TEST_HOST_LIBS)
# the raw session client against a scripted fake broker (no mosquitto needed)
tests_internal_test_mqtt_wire_SOURCES = tests/internal/test_mqtt_wire.c tests/internal/fakenet.h \
	plugins/mqtt/mqtt_wire.c plugins/mqtt/mqtt_wire.h
tests_internal_test_mqtt_wire_CFLAGS = $(AM_CFLAGS) -pthread
tests_internal_test_mqtt_wire_LDADD = -lpthread
# the sink's own publishing connection against scripted fake brokers
tests_internal_test_mqtt_sink_SOURCES = tests/internal/test_mqtt_sink.c tests/internal/fakenet.h
tests_internal_test_mqtt_sink_CFLAGS = $(AM_CFLAGS) -pthread
tests_internal_test_mqtt_sink_LDADD = $(TEST_HOST_LIBS)
TESTS += tests/internal/test_mqtt_codec tests/internal/test_mqtt_wire tests/internal/test_mqtt_sink \
	tests/runtime/mqtt_broker.sh tests/runtime/mqtt_outage.sh tests/runtime/mqtt_e2e.sh \
	tests/runtime/mqtt_sessions.sh
EXTRA_DIST += tests/runtime/mqtt_broker.sh tests/runtime/mqtt_outage.sh tests/runtime/mqtt_e2e.sh \
	tests/runtime/mqtt_sessions.sh
endif

# tributary train over MQTT, end to end (Postgres -> run -> mosquitto -> train/predict)
if ENABLE_MQTT
if ENABLE_TRAINER
if ENABLE_POSTGRES
if ENABLE_MNIST2SQL
TESTS += tests/runtime/trainer_mqtt.sh
EXTRA_DIST += tests/runtime/trainer_mqtt.sh
endif
endif
endif
endif
