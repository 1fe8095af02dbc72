#!/usr/bin/env bash
# run.sh — build each libFuzzer target with clang (ASan+UBSan+fuzzer) and
# fuzz it for FUZZ_SECONDS, starting from tests/fuzz/corpus/NAME.  New
# crash inputs land in $TRIB_BUILDDIR/tests/fuzz/crashes/NAME: fix the bug,
# then copy the input into the corpus so `make check` replays it forever.
# FUZZ_TARGETS="decode idx" limits the run to those targets.
set -eu
: "${FUZZ_SECONDS:=30}"
src=$TRIB_SRCDIR
out=$TRIB_BUILDDIR/tests/fuzz/bin
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
FLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I$src/core/include -I$src/core -I$TRIB_BUILDDIR"
core="$src/core/cfg.c $src/core/options.c $src/core/util.c $src/core/log.c"

# name | sources | libraries (pkg:NAME = `pkg-config --cflags --libs NAME`)
targets=$(cat "$src/tests/fuzz/targets.txt")
rc=0
while IFS='|' read -r name srcs libs; do
    name=$(echo "$name" | xargs); [ -n "$name" ] || continue
    case $name in \#*) continue ;; esac
    case " ${FUZZ_TARGETS:-$name} " in *" $name "*) ;; *) continue ;; esac
    files=""; incs=""
    for f in $srcs; do
        case $f in
            @core) files="$files $core" ;;
            *) files="$files $src/$f"; incs="${incs:-} -I$src/$(dirname "$f")" ;;
        esac
    done
    ldflags=""
    for l in $libs; do
        case $l in
            pkg:*) ldflags="$ldflags $(pkg-config --cflags --libs "${l#pkg:}")" ;;
            *) ldflags="$ldflags $l" ;;
        esac
    done
    # shellcheck disable=SC2086
    $CC $FLAGS $incs -o "$out/fuzz_$name" $files $ldflags || { echo "build of fuzz_$name failed"; rc=1; continue; }
    mkdir -p "$TRIB_BUILDDIR/tests/fuzz/crashes/$name" "$TRIB_BUILDDIR/tests/fuzz/work/$name"
    echo "== fuzzing $name for ${FUZZ_SECONDS}s"
    "$out/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
        -artifact_prefix="$TRIB_BUILDDIR/tests/fuzz/crashes/$name/" \
        "$TRIB_BUILDDIR/tests/fuzz/work/$name" "$src/tests/fuzz/corpus/$name" || rc=1
done <<<"$targets"
exit $rc
