# plugins/postgres: the `postgres` CDC source (libpq), its pure decoder unit
# tests and its integration tests against a throw-away Postgres server.
if ENABLE_POSTGRES
pkglib_LTLIBRARIES += plugins/postgres/postgres.la
plugins_postgres_postgres_la_SOURCES = \
	plugins/postgres/postgres.c \
	plugins/postgres/pg_internal.h \
	plugins/postgres/pg_catalog.c \
	plugins/postgres/pg_snapshot.c \
	plugins/postgres/pg_stream.c \
	plugins/postgres/pgoutput.c plugins/postgres/pgoutput.h \
	plugins/postgres/pgtext.c plugins/postgres/pgtext.h
plugins_postgres_postgres_la_CFLAGS = $(AM_CFLAGS) $(PQ_CFLAGS)
plugins_postgres_postgres_la_LIBADD = $(PQ_LIBS)
plugins_postgres_postgres_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

# Decoder and text helpers: pure functions, tested on captured bytes and on
# truncated/corrupted input.
check_PROGRAMS += tests/internal/test_pgoutput
tests_internal_test_pgoutput_SOURCES = tests/internal/test_pgoutput.c \
	plugins/postgres/pgoutput.c plugins/postgres/pgtext.c
tests_internal_test_pgoutput_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/postgres \
	-DPG_TOP_SRCDIR='"$(abs_top_srcdir)"'
TESTS += tests/internal/test_pgoutput

TESTS += tests/runtime/postgres_source.sh tests/runtime/postgres_host.sh
endif
# libFuzzer target (not built by make check; see its header for the command)
EXTRA_DIST += tests/runtime/postgres_source.sh tests/runtime/postgres_host.sh \
	tests/fuzz/fuzz_pgoutput.c

# postgres.so driven directly in the shared test host (back-pressure,
# withheld commits, stops); used by tests/runtime/postgres_host.sh and
# postgres_source.sh (a snapshot cut short).
if ENABLE_POSTGRES
check_PROGRAMS += tests/internal/test_pgoutput_host
tests_internal_test_pgoutput_host_SOURCES = tests/internal/test_pgoutput_host.c
tests_internal_test_pgoutput_host_LDADD = $(TEST_HOST_LIBS)
endif
