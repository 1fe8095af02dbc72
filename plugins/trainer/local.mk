# plugins/trainer/: the `trainer` plugin (tributary train / predict), its
# network library, unit tests and the training benchmark program.
if ENABLE_TRAINER
# Everything but the descriptor, so that unit tests can link the pieces.
noinst_LTLIBRARIES += plugins/trainer/libtrainer.la
plugins_trainer_libtrainer_la_SOURCES = \
	plugins/trainer/nn.c plugins/trainer/nn.h \
	plugins/trainer/nn_kernels.c plugins/trainer/nn_kernels.h \
	plugins/trainer/nn_data.c plugins/trainer/nn_data.h \
	plugins/trainer/model_io.c plugins/trainer/model_io.h \
	plugins/trainer/decode.c plugins/trainer/decode.h \
	plugins/trainer/consume.c plugins/trainer/train_cmd.c plugins/trainer/online.c \
	plugins/trainer/predict_cmd.c plugins/trainer/render.c plugins/trainer/trainer.h
plugins_trainer_libtrainer_la_CFLAGS = $(AM_CFLAGS) $(TRAINER_CFLAGS)
plugins_trainer_libtrainer_la_LIBADD = $(TRAINER_LIBS) -lm

pkglib_LTLIBRARIES += plugins/trainer/trainer.la
plugins_trainer_trainer_la_SOURCES = plugins/trainer/trainer.c
plugins_trainer_trainer_la_CFLAGS = $(AM_CFLAGS) $(TRAINER_CFLAGS)
plugins_trainer_trainer_la_LIBADD = plugins/trainer/libtrainer.la $(TRAINER_LIBS) -lm
plugins_trainer_trainer_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

TRAINER_TEST_CFLAGS = $(AM_CFLAGS) $(TRAINER_CFLAGS) -I$(top_srcdir)/plugins/trainer
TRAINER_TEST_LIBS = plugins/trainer/libtrainer.la $(TRAINER_LIBS) -lm

check_PROGRAMS += tests/internal/test_nn tests/internal/test_nn_decode \
	tests/internal/test_nn_trainer bench/nn_bench
TESTS += tests/internal/test_nn tests/internal/test_nn_decode tests/internal/test_nn_trainer
tests_internal_test_nn_SOURCES = tests/internal/test_nn.c tests/internal/nn_testutil.h
tests_internal_test_nn_CFLAGS = $(TRAINER_TEST_CFLAGS)
tests_internal_test_nn_LDADD = $(TRAINER_TEST_LIBS)
# the plugin in the shared test host (tests/internal/testhost.c)
tests_internal_test_nn_decode_SOURCES = tests/internal/test_nn_decode.c \
	tests/internal/nn_testutil.h plugins/trainer/trainer.c
tests_internal_test_nn_decode_CFLAGS = $(TRAINER_TEST_CFLAGS)
tests_internal_test_nn_decode_LDADD = $(TRAINER_TEST_LIBS) $(TEST_HOST_LIBS)
tests_internal_test_nn_trainer_SOURCES = tests/internal/test_nn_trainer.c \
	tests/internal/nn_testutil.h tests/internal/nn_broker.c tests/internal/nn_broker.h \
	plugins/trainer/trainer.c
tests_internal_test_nn_trainer_CFLAGS = $(TRAINER_TEST_CFLAGS)
tests_internal_test_nn_trainer_LDADD = $(TRAINER_TEST_LIBS) $(TEST_HOST_LIBS)

bench_nn_bench_SOURCES = bench/nn_bench.c
bench_nn_bench_CFLAGS = $(TRAINER_TEST_CFLAGS)
bench_nn_bench_LDADD = $(TRAINER_TEST_LIBS)

# Runtime tests through the real core: Redis (and Postgres for the e2e), Kafka.
if ENABLE_KAFKA
TESTS += tests/runtime/trainer_kafka.sh
endif
if ENABLE_REDIS
TESTS += tests/runtime/trainer_online.sh
if ENABLE_POSTGRES
if ENABLE_MNIST2SQL
TESTS += tests/runtime/trainer_e2e.sh
endif
endif
endif
endif
EXTRA_DIST += tests/runtime/trainer_model.py tests/runtime/trainer_gen.py
