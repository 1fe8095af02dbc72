# transforms/mnist: the MNIST single-message transform (no dependencies).
pkglib_LTLIBRARIES += transforms/mnist/mnist.la
transforms_mnist_mnist_la_SOURCES = transforms/mnist/mnist.c
transforms_mnist_mnist_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

check_PROGRAMS += tests/internal/test_mnist
tests_internal_test_mnist_SOURCES = tests/internal/test_mnist.c tests/internal/fakenet.h
tests_internal_test_mnist_LDADD = $(TEST_HOST_LIBS)
TESTS += tests/internal/test_mnist

# bench/mnist_bench: the transform's CSV encoding against the pair table it
# replaced (bench/mnist_bench.sh); built with the check programs, not run by them
check_PROGRAMS += bench/mnist_bench
bench_mnist_bench_SOURCES = bench/mnist_bench.c
bench_mnist_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/internal
bench_mnist_bench_LDADD = $(TEST_HOST_LIBS)
