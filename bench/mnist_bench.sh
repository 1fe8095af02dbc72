#!/usr/bin/env bash
# bench/mnist_bench.sh — the mnist transform's CSV encoding (bench/mnist_bench.c)
# on Fashion-MNIST images, against the pair table it replaced, with a warm
# cache and under cache pressure.  Run from a built tree; not part of `make check`.
# Usage: bench/mnist_bench.sh [IMAGES]   (default 60000)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TRIB_BUILDDIR:-$top}
data=${MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz
[ -r "$data" ] || { echo "mnist_bench.sh: $data not found (Debian: dataset-fashion-mnist)" >&2; exit 1; }
make -C "$build" -s bench/mnist_bench >/dev/null || { echo "cannot build bench/mnist_bench" >&2; exit 1; }
gzip -dc "$data" | TRIB_BUILDDIR=$build "$build/bench/mnist_bench" "${1:-60000}"
