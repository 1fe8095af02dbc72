# tests/: the core's own tests.  Each component adds its tests in its own
# local.mk; these cover config, loader, converter, pipeline and mnist.
TEST_MODULE_FLAGS = -module -avoid-version -shared -rpath $(abs_builddir)/tests/plugins $(SAN_CFLAGS)
check_LTLIBRARIES += tests/plugins/gen.la tests/plugins/badabi.la tests/plugins/nosym.la
tests_plugins_gen_la_SOURCES = tests/plugins/gen.c
tests_plugins_gen_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_badabi_la_SOURCES = tests/plugins/badabi.c
tests_plugins_badabi_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_nosym_la_SOURCES = tests/plugins/nosym.c
tests_plugins_nosym_la_LDFLAGS = $(TEST_MODULE_FLAGS)

# The one test host that drives a plugin without the engine (the core's
# loader, options and records, plus captured acks, log and metrics); the
# plugins' unit tests and drivers link it with $(TEST_HOST_LIBS).
check_LTLIBRARIES += tests/internal/libtesthost.la
tests_internal_libtesthost_la_SOURCES = tests/internal/testhost.c tests/internal/testhost.h
tests_internal_libtesthost_la_LIBADD = core/libtribcore.la
TEST_HOST_LIBS = tests/internal/libtesthost.la $(YAML_LIBS) $(MHD_LIBS) -lpthread

check_PROGRAMS += tests/internal/test_core
tests_internal_test_core_SOURCES = tests/internal/test_core.c tests/internal/tap.h
tests_internal_test_core_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS)
tests_internal_test_core_LDADD = core/libtribcore.la $(YAML_LIBS)

TESTS += tests/internal/test_core tests/runtime/core_cli.sh tests/runtime/core_pipeline.sh \
	tests/runtime/sdk_skeleton.sh

# Reliability: kill -9 recovery, SIGTERM during a snapshot, no secrets in logs,
# memory and back-pressure while Redis is down (bench/soak.sh, shortened).
if ENABLE_POSTGRES
if ENABLE_REDIS
TESTS += tests/runtime/crash_recovery.sh tests/runtime/secrets.sh tests/runtime/backpressure.sh
endif
endif

# The cross-broker suite: one scenario, every broker (tests/runtime/brokers.sh).
if ENABLE_POSTGRES
if ENABLE_REDIS
TESTS += tests/runtime/brokers_redis.sh
endif
if ENABLE_KAFKA
TESTS += tests/runtime/brokers_kafka.sh tests/runtime/crash_recovery_kafka.sh
endif
if ENABLE_MQTT
TESTS += tests/runtime/brokers_mqtt.sh tests/runtime/crash_recovery_mqtt.sh
endif
endif

# make check-valgrind: the whole suite under valgrind's memcheck: every C
# unit test in TESTS, and every runtime test with each tributary, mnist2sql
# and test driver it starts under memcheck (TRIB_WRAPPER, M2S_WRAPPER,
# DRIVER_WRAPPER in tests/lib.sh; trainer tests on a smaller slice, see
# tests/valgrind.sh).  Definite leaks and memory errors fail; library noise
# would be suppressed in tests/valgrind.supp.  Needs a build without
# sanitizers; about 17 minutes on two cores.
VALGRIND_RUNTIME_TESTS = $(filter tests/runtime/%,$(TESTS))
check-valgrind: all $(check_PROGRAMS) $(check_LTLIBRARIES)
	@case '$(SAN_CFLAGS)' in *sanitize*) \
	  echo "check-valgrind: this build uses --enable-sanitizers; valgrind needs a plain build"; \
	  exit 1;; esac
	@$(AM_TESTS_ENVIRONMENT) LIBTOOL='$(LIBTOOL)'; \
	  VALGRIND_RUNTIME_TESTS='$(VALGRIND_RUNTIME_TESTS)'; export LIBTOOL VALGRIND_RUNTIME_TESTS; \
	  bash $(srcdir)/tests/valgrind.sh $(filter tests/internal/test_%,$(TESTS))
.PHONY: check-valgrind
EXTRA_DIST += tests/valgrind.sh tests/valgrind.supp docs/reliability.md
