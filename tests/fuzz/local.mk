# tests/fuzz: libFuzzer targets.  In `make check` each target's corpus
# (seeds + kept crash inputs) is replayed by a plain build; `make fuzz`
# builds them with clang -fsanitize=fuzzer and fuzzes each for FUZZ_SECONDS.
check_PROGRAMS += tests/fuzz/replay_config
tests_fuzz_replay_config_SOURCES = tests/fuzz/fuzz_config.c tests/fuzz/replay.c
tests_fuzz_replay_config_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS)
tests_fuzz_replay_config_LDADD = core/libtribcore.la $(YAML_LIBS)
TESTS += tests/fuzz/replay.sh
EXTRA_DIST += tests/fuzz

FUZZ_SECONDS ?= 30
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) TRIB_SRCDIR='$(abs_top_srcdir)' TRIB_BUILDDIR='$(abs_top_builddir)' \
	  bash $(top_srcdir)/tests/fuzz/run.sh
.PHONY: fuzz

check_PROGRAMS += tests/fuzz/replay_pgoutput
tests_fuzz_replay_pgoutput_SOURCES = tests/fuzz/fuzz_pgoutput.c tests/fuzz/replay.c \
	plugins/postgres/pgoutput.c plugins/postgres/pgtext.c
tests_fuzz_replay_pgoutput_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/plugins/postgres

# Trainer: record decoding (CSV / raw pixels, label key) and the model file.
if ENABLE_TRAINER
check_PROGRAMS += tests/fuzz/replay_decode tests/fuzz/replay_model
tests_fuzz_replay_decode_SOURCES = tests/fuzz/fuzz_decode.c tests/fuzz/replay.c \
	plugins/trainer/decode.c
tests_fuzz_replay_decode_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/plugins/trainer
tests_fuzz_replay_model_SOURCES = tests/fuzz/fuzz_model.c tests/fuzz/replay.c \
	plugins/trainer/model_io.c plugins/trainer/nn.c plugins/trainer/nn_kernels.c
tests_fuzz_replay_model_CFLAGS = $(AM_CFLAGS) $(TRAINER_CFLAGS) -I$(top_srcdir)/plugins/trainer
tests_fuzz_replay_model_LDADD = $(TRAINER_LIBS) -lm
endif

# mnist2sql: the IDX reader (plain or gzip) and the npm digits JSON parser.
if ENABLE_MNIST2SQL
check_PROGRAMS += tests/fuzz/replay_idx tests/fuzz/replay_digits
tests_fuzz_replay_idx_SOURCES = tests/fuzz/fuzz_idx.c tests/fuzz/replay.c tools/mnist2sql/idx.c
tests_fuzz_replay_idx_CFLAGS = $(AM_CFLAGS) $(M2S_WFLAGS) $(M2S_CFLAGS) -I$(top_srcdir)/tools/mnist2sql
tests_fuzz_replay_idx_LDADD = $(M2S_LIBS)
tests_fuzz_replay_digits_SOURCES = tests/fuzz/fuzz_digits.c tests/fuzz/replay.c \
	tools/mnist2sql/digits.c tools/mnist2sql/idx.c
tests_fuzz_replay_digits_CFLAGS = $(AM_CFLAGS) $(M2S_WFLAGS) $(M2S_CFLAGS) -I$(top_srcdir)/tools/mnist2sql
tests_fuzz_replay_digits_LDADD = $(M2S_LIBS) -lm
endif

# MQTT: the sink's packet parsers (mqtt_wire.c) and the key/topic codecs (mqtt_codec.c).
if ENABLE_MQTT
check_PROGRAMS += tests/fuzz/replay_mqtt
tests_fuzz_replay_mqtt_SOURCES = tests/fuzz/fuzz_mqtt.c tests/fuzz/replay.c \
	plugins/mqtt/mqtt_wire.c plugins/mqtt/mqtt_codec.c
tests_fuzz_replay_mqtt_CFLAGS = $(AM_CFLAGS) -pthread -I$(top_srcdir)/plugins/mqtt
tests_fuzz_replay_mqtt_LDADD = $(PAHO_LIBS)
endif
