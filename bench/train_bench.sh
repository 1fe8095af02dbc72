#!/usr/bin/env bash
# bench/train_bench.sh — train the trainer plugin's network (bench/nn_bench, linked
# with plugins/trainer/nn*.c) and the same network in PyTorch (bench/train_torch.py)
# on the same IDX files, and compare seconds per epoch and test accuracy.
#
# Usage: bench/train_bench.sh [DATADIR]
#   DATADIR: directory with train-/t10k- images-idx3-ubyte / labels-idx1-ubyte,
#            plain or .gz (default: /usr/share/datasets/fashion-mnist).
# Environment: TRIB_BUILDDIR (build dir holding bench/nn_bench; default: the
#   current dir, else the source dir), EPOCHS (5), HIDDEN (128), SEEDS ("1 2 3":
#   accuracy is a mean over seeds, since one run varies by about +-0.005),
#   TORCH_THREADS (2), BACKENDS ("blas own": ours is timed with each kernel set;
#   the first one is the one compared in the RESULT line).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-/usr/share/datasets/fashion-mnist}
EPOCHS=${EPOCHS:-5}; HIDDEN=${HIDDEN:-128}; SEEDS=${SEEDS:-"1 2 3"}
TORCH_THREADS=${TORCH_THREADS:-2}; BACKENDS=${BACKENDS:-"blas own"}
build=${TRIB_BUILDDIR:-$PWD}
[ -f "$build/Makefile" ] || build=$here/..
bin=$build/bench/nn_bench
make -C "$build" -s bench/nn_bench >/dev/null || { echo "cannot build $bin" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/train_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$data/$stem" ]; then ln -s "$data/$stem" "$tmp/$stem"
    elif [ -f "$data/$stem.gz" ]; then gzip -dc "$data/$stem.gz" >"$tmp/$stem"
    else echo "train_bench: $data/$stem(.gz) not found (apt-get install dataset-fashion-mnist)" >&2; exit 1
    fi
done

div() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
field() { sed -n "s/^RESULT.* $1=\([0-9.]*\).*/\1/p" "$2"; }

echo "== data: $data, $EPOCHS epochs, 784-$HIDDEN-10, batch 32, Adam 1e-3, seeds $SEEDS"
echo "== machine: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
first=""
mean() { awk '{ s += $1; n++ } END { printf "%.4f", s / n }'; }
summary() { # NAME FILES...: mean s/epoch, best epoch, mean accuracy over runs
    name=$1; shift
    for f in "$@"; do field sec_per_epoch "$f"; done | mean >"$tmp/$name.sec"
    for f in "$@"; do field best_epoch "$f"; done | sort -g | head -n1 >"$tmp/$name.best"
    for f in "$@"; do field accuracy "$f"; done | mean >"$tmp/$name.acc"
}
for be in $BACKENDS; do
    [ -n "$first" ] && seeds=${SEEDS%% *} || seeds=$SEEDS   # other kernels: first seed only
    for seed in $seeds; do
        echo "-- ours ($be kernels, 1 thread, seed $seed)"
        "$bin" "$tmp" --epochs "$EPOCHS" --hidden "$HIDDEN" --seed "$seed" --backend "$be" | tee "$tmp/ours_${be}_$seed.txt"
    done
    summary "ours_$be" "$tmp"/ours_"${be}"_*.txt
    [ -n "$first" ] || first=$be
done
for seed in $SEEDS; do
    echo "-- PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') ($TORCH_THREADS threads, seed $seed)"
    /usr/bin/python3 "$here/train_torch.py" "$tmp" "$EPOCHS" "$HIDDEN" "$TORCH_THREADS" "$seed" | tee "$tmp/torch_$seed.txt"
done
summary torch "$tmp"/torch_*.txt

tsec=$(cat "$tmp/torch.sec"); tbest=$(cat "$tmp/torch.best"); tacc=$(cat "$tmp/torch.acc")
echo
echo "== means over seeds ($SEEDS; other kernel sets: seed ${SEEDS%% *})"
printf '%-20s %13s %13s %13s  %s\n' "implementation" "mean s/epoch" "best s/epoch" "mean accuracy" "speed-up (mean, best)"
for be in $BACKENDS; do
    s=$(cat "$tmp/ours_$be.sec"); b=$(cat "$tmp/ours_$be.best"); a=$(cat "$tmp/ours_$be.acc")
    printf '%-20s %13.3f %13.3f %13.4f  %.1fx, %.1fx\n' "tributary ($be)" "$s" "$b" "$a" \
        "$(div "$tsec" "$s")" "$(div "$tbest" "$b")"
done
printf '%-20s %13.3f %13.3f %13.4f\n' "pytorch" "$tsec" "$tbest" "$tacc"
s=$(cat "$tmp/ours_$first.sec"); a=$(cat "$tmp/ours_$first.acc")
printf 'RESULT ours_sec_per_epoch=%.3f torch_sec_per_epoch=%.3f ratio=%.2f ours_accuracy=%.4f torch_accuracy=%.4f\n' \
    "$s" "$tsec" "$(div "$tsec" "$s")" "$a" "$tacc"
echo "(ratio: PyTorch's mean seconds per epoch / ours; other load on the machine inflates both, PyTorch's two threads most)"
