#!/bin/bash
# bench/mnist2sql_bench.sh — how fast is mnist2sql, and how much faster is
# --format copy to load than --format insert?  Not part of `make check`.
#
#   TRIB_BUILDDIR=/path/to/build bash bench/mnist2sql_bench.sh
#
# 1. Writing the 60,000-row training file (insert and copy formats) from
#    Fashion-MNIST, best of N runs, against `gzip -dc` of the same two input
#    files into a file (the floor: mnist2sql must at least decompress them).
#    Target: under 1 s.
# 2. Loading the training file into a private Postgres with `psql -f`, COPY
#    against one INSERT per row (each its own transaction).  Measured twice:
#    with the test harness's fsync=off (printed for information: commits are
#    nearly free there, COPY wins by ~6x) and with Postgres's default
#    durability, as on a user's server.  Target there: COPY at least 10x faster.
# Env: FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist),
# BENCH_RUNS (default 5), BENCH_ROWS (rows loaded into Postgres, default all).
# Exit status 1 if a target is missed.
TRIB_SRCDIR=${TRIB_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$TRIB_SRCDIR/tests/lib.sh"

M2S=${M2S:-$(command -v mnist2sql || echo "$TRIB_BUILDDIR/tools/mnist2sql/mnist2sql")}
[ -x "$M2S" ] || fail "mnist2sql not found: set TRIB_BUILDDIR to the build directory or M2S"
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$F/train-images-idx3-ubyte.gz" ] || fail "$F: no Fashion-MNIST (apt-get install dataset-fashion-mnist)"
RUNS=${BENCH_RUNS:-5}
ROWS=${BENCH_ROWS:-}

now() { date +%s.%N; }
# best_of CMD...: the fastest wall time of $RUNS runs, in seconds
best_of() {
    best=
    for _r in $(seq "$RUNS"); do
        t0=$(now); "$@" || fail "failed: $*"; t1=$(now)
        best=$(awk -v a="$t0" -v b="$t1" -v best="$best" \
            'BEGIN { d = b - a; if (best == "" || d < best) best = d; printf "%.3f", best }')
    done
    echo "$best"
}
floor_cmd() { gzip -dc "$F/train-images-idx3-ubyte.gz" "$F/train-labels-idx1-ubyte.gz" >"$T/floor.raw"; }
m2s_cmd() { "$M2S" -q --from "$F" --out "$T/w" --only train --format "$1"; }

echo "mnist2sql benchmark: $F, best of $RUNS runs"
floor=$(best_of floor_cmd)
ins=$(best_of m2s_cmd insert)
cpy=$(best_of m2s_cmd copy)
size=$(stat -c %s "$T/w/mnist_train.sql")
printf '  gzip -dc (floor)                 %6.3f s\n' "$floor"
printf '  mnist2sql train, --format insert %6.3f s  (%.2fx the floor)\n' "$ins" \
    "$(awk -v a="$ins" -v b="$floor" 'BEGIN { print a / b }')"
printf '  mnist2sql train, --format copy   %6.3f s  (%.2fx the floor, %d MB)\n' "$cpy" \
    "$(awk -v a="$cpy" -v b="$floor" 'BEGIN { print a / b }')" $((size / 1000000))
rc=0
for t in "$ins" "$cpy"; do
    awk -v t="$t" 'BEGIN { exit !(t < 1.0) }' || { echo "  FAIL: $t s is not under 1 s"; rc=1; }
done

# load_pair LABEL: time psql -f of the COPY file and of the INSERT file into
# fresh tables; prints the times and sets $speedup
load_pair() {
    psql_q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS copy_train, mnist_train" >/dev/null
    t0=$(now); psql_q -f "$T/lc/copy_train.sql" >/dev/null || fail "COPY load"; t1=$(now)
    tc=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    t0=$(now); psql_q -f "$T/li/mnist_train.sql" >/dev/null || fail "INSERT load"; t1=$(now)
    ti=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    n=$(psql_q -c "SELECT (SELECT count(*) FROM copy_train) || '/' || (SELECT count(*) FROM mnist_train)")
    speedup=$(awk -v i="$ti" -v c="$tc" 'BEGIN { printf "%.1f", i / c }')
    printf '  %s\n    --format copy   %7.3f s\n    --format insert %7.3f s  (rows copy/insert: %s)\n' \
        "$1" "$tc" "$ti" "$n"
    printf '    copy is %sx faster than insert\n' "$speedup"
}

echo "loading the training file into Postgres with psql -f${ROWS:+ ($ROWS rows)}"
start_pg
"$M2S" -q --from "$F" --out "$T/li" --only train --format insert ${ROWS:+--limit $ROWS} || fail "insert file"
"$M2S" -q --from "$F" --out "$T/lc" --only train --format copy ${ROWS:+--limit $ROWS} \
    --table-prefix copy || fail "copy file"
# First as the test harness runs Postgres (fsync=off, synchronous_commit=off):
# commits cost almost nothing, so this is the least favourable case for COPY.
load_pair "durability off (test harness settings; information only):"
# Then with Postgres's stock durability, what a user's server does: every
# INSERT line is its own transaction and waits for its WAL flush.
printf 'fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n' >>"$T/pg/postgresql.conf"
stop_pg; restart_pg
[ "$(psql_q -c 'SHOW fsync')" = on ] || fail "could not turn fsync on"
load_pair "Postgres default durability (fsync=on, synchronous_commit=on; target >= 10x):"
awk -v s="$speedup" 'BEGIN { exit !(s >= 10) }' || { echo "  FAIL: speedup under 10x"; rc=1; }
[ $rc = 0 ] && echo "all targets met"
exit $rc
