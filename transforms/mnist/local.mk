# transforms/mnist: the MNIST single-message transform (no dependencies).
pkglib_LTLIBRARIES += transforms/mnist/mnist.la
transforms_mnist_mnist_la_SOURCES = transforms/mnist/mnist.c
transforms_mnist_mnist_la_LDFLAGS = $(TRIB_MODULE_FLAGS)
