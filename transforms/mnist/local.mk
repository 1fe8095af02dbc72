# transforms/mnist: the MNIST single-message transform (no dependencies).
pkglib_LTLIBRARIES += transforms/mnist/mnist.la
transforms_mnist_mnist_la_SOURCES = transforms/mnist/mnist.c
transforms_mnist_mnist_la_LDFLAGS = $(TRIB_MODULE_FLAGS)

check_PROGRAMS += tests/internal/test_mnist
tests_internal_test_mnist_SOURCES = tests/internal/test_mnist.c tests/internal/fakenet.h
tests_internal_test_mnist_LDADD = $(TEST_HOST_LIBS)
TESTS += tests/internal/test_mnist
