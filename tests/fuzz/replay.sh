#!/usr/bin/env bash
# replay.sh — run every fuzz target's corpus through its replay binary.
set -eu
rc=0
for bin in "$TRIB_BUILDDIR"/tests/fuzz/replay_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/replay_}
    dir=$TRIB_SRCDIR/tests/fuzz/corpus/$name
    [ -d "$dir" ] || { echo "no corpus for $name" >&2; rc=1; continue; }
    "$bin" "$dir" || { echo "replay of $name failed" >&2; rc=1; }
done
exit $rc
