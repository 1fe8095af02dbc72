#!/usr/bin/env bash
# redis_cpu.sh — where the time of a Redis snapshot goes: N alternating runs
# of `redis-cli --pipe` and of `tributary run` (snapshot: initial_only,
# conf/mnist-redis.yaml) pushing the same 60,000 Fashion-MNIST entries into
# one redis-server, each run measured for
#   wall   process start to exit,
#   client the CPU of the pushing process (user + system),
#   server the CPU redis-server spent during the run (/proc/PID/stat),
# then the median of each and the ratios Tributary/redis-cli.
#
# Usage: [PAIRS=12] [ROWS=60000] bench/redis_cpu.sh [VARIANT...]
#   VARIANT: `tributary`, or `tributary:key=value,key=value` with top-level
#   config keys (queue_size=1024,thread_nice=0) or sink options
#   (sink.confirm=each); default: tributary.
# Run from a built tree.  Not part of `make check`.
#
# The point of the server column: both sides make redis-server store the
# same entries, so its CPU is the same for both within the noise, and a run
# cannot end before the server has done its share (docs/benchmarks.md).
set -eu
PAIRS=${PAIRS:-12}
ROWS=${ROWS:-60000}
VARIANTS=${*:-tributary}
top=$(cd "$(dirname "$0")/.." && pwd)
: "${TRIB_BUILDDIR:=$top}"
export TRIB_SRCDIR=$top TRIB_BUILDDIR
. "$top/tests/lib.sh"
export TRIBUTARY_PLUGIN_PATH="$TRIB_BUILDDIR/plugins:$TRIB_BUILDDIR/transforms"

start_pg
"$TRIB_BUILDDIR/tools/mnist2sql/mnist2sql" --from /usr/share/datasets/fashion-mnist --out "$T/sql" \
    --limit "$ROWS" --format copy --only train -q
psql_q -f "$T/sql/mnist_train.sql" >/dev/null
psql_q -c "VACUUM ANALYZE mnist_train" >/dev/null
start_redis

# redis-cli's input: the entries Tributary writes (key, value, op, lsn, snapshot).
psql_q -c "COPY (SELECT labels, encode(pixels, 'hex') FROM mnist_train) TO STDOUT" >"$T/rows.tsv"
python3 - "$T/rows.tsv" "$T/cli.resp" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
with open(sys.argv[2], "wb") as f:
    for i, (lab, hx) in enumerate(rows):
        csv = ",".join(str(b) for b in bytes.fromhex(hx))
        snap = b"last" if i == len(rows) - 1 else b"true"
        f.write(resp(b"XADD", b"bench.cli", b"*", b"key", lab.encode(), b"value", csv.encode(),
                     b"op", b"r", b"lsn", b"0/0", b"snapshot", snap))
PY

server_ticks() { awk '{ print $14 + $15 }' "/proc/$REDIS_PID/stat"; }
tick_ms=$((1000 / $(getconf CLK_TCK)))
n=0
run_one() { # run_one VARIANT: one line "VARIANT wall client server"
    local v=$1 stream extra sinkopts c0 c1 w u s
    n=$((n + 1))
    c0=$(server_ticks)
    if [ "$v" = redis-cli ]; then
        stream=bench.cli
        /usr/bin/time -f "%e %U %S" -o "$T/time" redis-cli -p "$REDIS_PORT" --pipe <"$T/cli.resp" >/dev/null
    else
        stream=tf$n.public.mnist_train
        sed -e "s/tables: \[public.mnist_train, public.mnist_test\]/tables: [public.mnist_train]/" \
            -e "s/snapshot: initial$/snapshot: initial_only/" -e "s/topic_prefix: tf$/topic_prefix: tf$n/" \
            "$top/conf/mnist-redis.yaml" >"$T/r.yaml"
        printf 'status_interval_ms: 0\n' >>"$T/r.yaml"
        extra=${v#tributary}
        # sink.KEY=VALUE goes into the sink section, other keys at the top level
        [ -z "$extra" ] || echo "${extra#:}" | tr ',' '\n' | grep -v '^sink\.' | sed 's/=/: /' >>"$T/r.yaml"
        sinkopts=$(echo "${extra#:}" | tr ',' '\n' | sed -n 's/^sink\.\([^=]*\)=/    \1: /p')
        if [ -n "$sinkopts" ]; then
            awk -v add="$sinkopts" '{ print } /^    plugin: redis$/ { print add }' "$T/r.yaml" >"$T/r2.yaml"
            mv "$T/r2.yaml" "$T/r.yaml"
        fi
        TRIB_STATE=$T/state$n /usr/bin/time -f "%e %U %S" -o "$T/time" \
            "$TRIB_BUILDDIR/tributary" run "$T/r.yaml" 2>"$T/log" || { rc=$?; cat "$T/log" >&2; fail "tributary exited $rc"; }
    fi
    c1=$(server_ticks)
    [ "$(rcli XLEN "$stream")" = "$ROWS" ] || fail "$v: $stream holds $(rcli XLEN "$stream") of $ROWS entries"
    rcli DEL "$stream" >/dev/null
    read -r w u s <"$T/time"
    echo "$v $w $(python3 -c "print('%.3f' % ($u + $s))") $(python3 -c "print('%.3f' % ($(( (c1 - c0) * tick_ms )) / 1000))")"
}

: >"$T/runs"
for p in $(seq 1 "$PAIRS"); do
    order="redis-cli $VARIANTS"
    [ $((p % 2)) = 0 ] && order=$(echo "$order" | tr ' ' '\n' | tac | tr '\n' ' ')
    for v in $order; do run_one "$v" | tee -a "$T/runs"; done
done
python3 - "$T/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    v, *nums = line.split()
    runs.setdefault(v, []).append([float(x) for x in nums])
med = {v: [statistics.median(r[i] for r in rs) for i in range(3)] for v, rs in runs.items()}
base = med["redis-cli"]
print("%-40s %8s %8s %8s   (medians of %d runs; ratios vs redis-cli)" % ("", "wall s", "client s", "server s", len(runs["redis-cli"])))
for v, m in med.items():
    extra = "" if v == "redis-cli" else "   speed %.2fx, server CPU %.2fx" % (base[0] / m[0], m[2] / base[2])
    print("%-40s %8.3f %8.3f %8.3f%s" % (v, m[0], m[1], m[2], extra))
PY
