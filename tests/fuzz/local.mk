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
