#!/usr/bin/env bash
# snapshot_bench.sh — snapshot throughput of N Fashion-MNIST rows through
# Postgres → tributary (postgres source, mnist csv transform) → each broker,
# against two baselines run in the same script:
#   floor:    `COPY mnist_train TO STDOUT` of the same rows (what reading the
#             table costs at all);
#   CLI tool: the same messages (label, CSV pixels) pushed from a file by the
#             broker's own client: `redis-cli --pipe`, `kcat -P`, `mosquitto_pub -l`
#             (no capture, no transform).
# Usage: bench/snapshot_bench.sh [ROWS] [BROKERS...]   (default 60000 redis kafka mqtt)
# Run from a built tree.  Prints rows/s and ratios; not part of `make check`.
#
# Every side is timed from process start to exit: the CLI tools, and
# `tributary run` with `snapshot: initial_only` (it exits 0 once the broker
# acknowledged the last row; start-up and connecting count, as for the tools).
#
# Both sides are checked to have really landed on the broker: XLEN of both
# streams; every Kafka message consumed back with kcat (the mock keeps only
# ~5 MB per partition and silently drops older message sets, so both
# producers spread messages with the random partitioner over 32 partitions
# instead of hashing the label into at most 10 of them); for MQTT an offline
# persistent session per topic, created before publishing and read back
# afterwards.
set -eu
ROWS=${1:-60000}; shift || true
BROKERS=${*:-redis kafka mqtt}
top=$(cd "$(dirname "$0")/.." && pwd)
: "${TRIB_BUILDDIR:=$top}"
export TRIB_SRCDIR=$top TRIB_BUILDDIR
. "$top/tests/lib.sh"
export TRIBUTARY_PLUGIN_PATH="$TRIB_BUILDDIR/plugins:$TRIB_BUILDDIR/transforms"
M2S=$TRIB_BUILDDIR/tools/mnist2sql/mnist2sql

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=map(float,sys.argv[1:]); print('%.0f' % (n/(b-a)))" "$1" "$2" "$3"; }
secs() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); print('%.2f' % (b-a))" "$1" "$2"; }

start_pg
"$M2S" --from /usr/share/datasets/fashion-mnist --out "$T/sql" --limit "$ROWS" --format copy --only train -q
psql_q -f "$T/sql/mnist_train.sql" >/dev/null
psql_q -c "VACUUM ANALYZE mnist_train" >/dev/null

# The messages the mnist transform produces, for the CLI baselines.
psql_q -c "COPY (SELECT labels, encode(pixels, 'hex') FROM mnist_train) TO STDOUT" >"$T/rows.tsv"
python3 - "$T/rows.tsv" "$T" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
T = sys.argv[2]
with open(T + "/msgs.tsv", "w") as kv, open(T + "/vals.txt", "w") as v, open(T + "/redis.resp", "wb") as r:
    for lab, hx in rows:
        csv = ",".join(str(b) for b in bytes.fromhex(hx))
        kv.write("%s\t%s\n" % (lab, csv))
        v.write(csv + "\n")
        args = [b"XADD", b"bench.cli", b"*", b"key", lab.encode(), b"value", csv.encode()]
        r.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY

t0=$(now); psql_q -c "COPY mnist_train TO STDOUT" >/dev/null; t1=$(now)
floor=$(rate "$ROWS" "$t0" "$t1")
echo "floor: COPY mnist_train TO STDOUT: $ROWS rows in $(secs "$t0" "$t1") s = $floor rows/s"

# Extra sink options of the bench (only here; conf/ stays as shipped).
sink_extra() {
    case $1 in
    kafka) printf '    kafka:\n      partitioner: random\n' ;;
    mqtt) # the bench's own verification session is the only subscriber session
        if "$TRIB_BUILDDIR/tributary" plugins mqtt 2>/dev/null | grep -q subscriber_groups; then
            printf '    subscriber_groups: []\n'
        fi ;;
    esac
}

run_tributary() { # run_tributary BROKER → prints rows/s of the snapshot
    # `snapshot: initial_only` takes the snapshot and exits 0 once the broker
    # acknowledged every row (no slot, no publication, no state file), so the
    # run is timed from start to exit like the CLI tools, and nothing polls it.
    local broker=$1 t0 t1 rc=0 delivered
    sed -e "s/tables: \[public.mnist_train, public.mnist_test\]/tables: [public.mnist_train]/" \
        -e "s/snapshot: initial$/snapshot: initial_only/" \
        "$top/conf/mnist-$broker.yaml" | awk -v extra="$(sink_extra "$broker")" \
        '{ print } $0 == "  sink:" { insink = 1 } insink && /^    plugin: / { if (extra != "") print extra; insink = 0 }' \
        >"$T/$broker.yaml"
    grep -q "snapshot: initial_only" "$T/$broker.yaml" || fail "conf/mnist-$broker.yaml: no 'snapshot: initial' to replace"
    printf 'status_interval_ms: 0\nbatch_size: 1024\n' >>"$T/$broker.yaml"
    t0=$(now)
    TRIB_STATE=$T/state-$broker "$TRIB_BUILDDIR/tributary" run "$T/$broker.yaml" 2>"$T/$broker.log" || rc=$?
    t1=$(now)
    [ $rc = 0 ] || { cat "$T/$broker.log" >&2; fail "tributary ($broker) exited $rc"; }
    delivered=$(sed -n 's/.*stopped: .*, \([0-9]*\) delivered,.*/\1/p' "$T/$broker.log")
    [ "${delivered:-0}" = "$ROWS" ] || { cat "$T/$broker.log" >&2; fail "tributary ($broker) delivered ${delivered:-?} of $ROWS"; }
    rate "$ROWS" "$t0" "$t1"
}

# Messages the broker really holds, per topic.
kafka_count() {
    kcat -C -b "$KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q -f '%o\n' | wc -l
}
mqtt_session() { # mqtt_session TOPIC [COUNT]: create (no COUNT) or drain the offline session
    if [ $# -eq 1 ]; then
        mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -c -x 3600 -i "bench-$1" -t "$1" -E
    else
        timeout 120 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -c -x 3600 -i "bench-$1" \
            -t "$1" -C "$2" -W 60 -F '%t' | wc -l
    fi
}
check_count() { # check_count WHAT HAVE
    [ "$2" -eq "$ROWS" ] || fail "$1: the broker holds $2 of $ROWS messages"
}

for b in $BROKERS; do
    case $b in
    redis)
        start_redis
        cli_t0=$(now); rcli --pipe <"$T/redis.resp" >/dev/null; cli_t1=$(now)
        cli="redis-cli --pipe" ;;
    kafka)
        "$TRIB_BUILDDIR/tests/kafka_mock" --topic tf.public.mnist_train:32 --topic bench.cli:32 \
            >"$T/kafka.addr" 2>"$T/kafka.log" &
        _pids="$_pids $!"
        wait_for 10 test -s "$T/kafka.addr"
        export KAFKA_BOOTSTRAP; KAFKA_BOOTSTRAP=$(head -n1 "$T/kafka.addr")
        cli_t0=$(now)
        kcat -P -b "$KAFKA_BOOTSTRAP" -t bench.cli -K '\t' -z lz4 -X acks=all \
            -X enable.idempotence=true -X partitioner=random -l "$T/msgs.tsv"
        cli_t1=$(now)
        cli="kcat -P" ;;
    mqtt)
        start_mosquitto
        mqtt_session bench.cli
        mqtt_session tf.public.mnist_train
        cli_t0=$(now)
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -t bench.cli -l <"$T/vals.txt"
        cli_t1=$(now)
        cli="mosquitto_pub -l (QoS 1)" ;;
    *) fail "unknown broker $b" ;;
    esac
    clirate=$(rate "$ROWS" "$cli_t0" "$cli_t1")
    ours=$(run_tributary "$b")
    case $b in
    redis)
        check_count "redis-cli --pipe (XLEN bench.cli)" "$(rcli XLEN bench.cli)"
        check_count "tributary (XLEN tf.public.mnist_train)" "$(rcli XLEN tf.public.mnist_train)" ;;
    kafka)
        check_count "kcat -P (bench.cli)" "$(kafka_count bench.cli)"
        check_count "tributary (tf.public.mnist_train)" "$(kafka_count tf.public.mnist_train)" ;;
    mqtt)
        check_count "mosquitto_pub (bench.cli)" "$(mqtt_session bench.cli "$ROWS")"
        check_count "tributary (tf.public.mnist_train)" \
            "$(mqtt_session tf.public.mnist_train "$ROWS")" ;;
    esac
    python3 - "$b" "$ours" "$clirate" "$floor" "$cli" <<'PY'
import sys
b, ours, cli, floor, tool = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
print("%-5s tributary snapshot: %8.0f rows/s | %s: %8.0f rows/s | tributary/cli = %.2fx | floor/tributary = %.2fx"
      % (b, ours, tool, cli, ours / cli, floor / ours))
PY
done
