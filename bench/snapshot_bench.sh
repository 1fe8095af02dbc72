#!/usr/bin/env bash
# snapshot_bench.sh — snapshot throughput of N Fashion-MNIST rows through
# Postgres → tributary (postgres source, mnist csv transform) → each broker,
# against two baselines run in the same script:
#   floor:    `COPY mnist_train TO STDOUT` of the same rows (what reading the
#             table costs at all);
#   CLI tool: the same messages (label, CSV pixels) pushed from a file by the
#             broker's own client: `redis-cli --pipe`, `kcat -P`, `mosquitto_pub -l`
#             (no capture, no transform).
# Usage: [REPS=5] [KAFKA_COMPRESSION=lz4] bench/snapshot_bench.sh [ROWS] [BROKERS...]
#        (default 60000 redis kafka mqtt; KAFKA_COMPRESSION: none|gzip|lz4|zstd|snappy,
#        the codec of both Kafka producers; conf/mnist-kafka.yaml ships lz4)
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
KAFKA_COMPRESSION=${KAFKA_COMPRESSION:-lz4}
case $KAFKA_COMPRESSION in
none | gzip | lz4 | zstd | snappy) ;;
*) echo "snapshot_bench.sh: KAFKA_COMPRESSION=$KAFKA_COMPRESSION: want none, gzip, lz4, zstd or snappy" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=map(float,sys.argv[1:]); print('%.0f' % (n/(b-a)))" "$1" "$2" "$3"; }
secs() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); print('%.2f' % (b-a))" "$1" "$2"; }

start_pg
"$M2S" --from /usr/share/datasets/fashion-mnist --out "$T/sql" --limit "$ROWS" --format copy --only train -q
psql_q -f "$T/sql/mnist_train.sql" >/dev/null
psql_q -c "VACUUM ANALYZE mnist_train" >/dev/null

# The messages Tributary writes, for the CLI baselines: the same key and value
# (what the mnist transform makes of a row) and the same metadata: Redis
# entries carry op, lsn and snapshot fields (snapshot rows: r, 0/0, "true" and
# "last" for the final row), Kafka messages the headers op and lsn.  MQTT
# publishes carry the key as a user property, which `mosquitto_pub -l` cannot
# vary per line: its baseline publishes the values only.
psql_q -c "COPY (SELECT labels, encode(pixels, 'hex') FROM mnist_train) TO STDOUT" >"$T/rows.tsv"
REPS=${REPS:-5}
python3 - "$T/rows.tsv" "$T" "$REPS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
T, reps = sys.argv[2], int(sys.argv[3])
def resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
redis = [open(T + "/redis.%d.resp" % r, "wb") for r in range(1, reps + 1)]
with open(T + "/msgs.tsv", "w") as kv, open(T + "/vals.txt", "w") as v:
    for i, (lab, hx) in enumerate(rows):
        csv = ",".join(str(b) for b in bytes.fromhex(hx))
        kv.write("%s\t%s\n" % (lab, csv))
        v.write(csv + "\n")
        snap = b"last" if i == len(rows) - 1 else b"true"
        for r, f in enumerate(redis, 1):
            f.write(resp(b"XADD", b"bench.cli.%d" % r, b"*", b"key", lab.encode(), b"value",
                         csv.encode(), b"op", b"r", b"lsn", b"0/0", b"snapshot", snap))
for f in redis:
    f.close()
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
    local broker=$1 prefix=$2 t0 t1 rc=0 delivered
    sed -e "s/tables: \[public.mnist_train, public.mnist_test\]/tables: [public.mnist_train]/" \
        -e "s/snapshot: initial$/snapshot: initial_only/" -e "s/topic_prefix: tf$/topic_prefix: $prefix/" \
        -e "s/^    compression: lz4$/    compression: $KAFKA_COMPRESSION/" \
        "$top/conf/mnist-$broker.yaml" | awk -v extra="$(sink_extra "$broker")" \
        '{ print } $0 == "  sink:" { insink = 1 } insink && /^    plugin: / { if (extra != "") print extra; insink = 0 }' \
        >"$T/$broker.yaml"
    grep -q "snapshot: initial_only" "$T/$broker.yaml" || fail "conf/mnist-$broker.yaml: no 'snapshot: initial' to replace"
    grep -q "topic_prefix: $prefix$" "$T/$broker.yaml" || fail "conf/mnist-$broker.yaml: no 'topic_prefix: tf' to replace"
    [ "$broker" != kafka ] || grep -q "^    compression: $KAFKA_COMPRESSION$" "$T/$broker.yaml" ||
        fail "conf/mnist-kafka.yaml: no 'compression: lz4' to replace"
    printf 'status_interval_ms: 0\n' >>"$T/$broker.yaml"
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

run_cli() { # run_cli BROKER TOPIC: sets cli_t0, cli_t1, cli
    case $1 in
    redis)
        cli_t0=$(now); rcli --pipe <"$T/redis.${2##*.}.resp" >/dev/null; cli_t1=$(now)
        cli="redis-cli --pipe" ;;
    kafka)
        cli_t0=$(now)
        kcat -P -b "$KAFKA_BOOTSTRAP" -t "$2" -K '\t' -H op=r -H lsn=0/0 -z "$KAFKA_COMPRESSION" -X acks=all \
            -X enable.idempotence=true -X partitioner=random -l "$T/msgs.tsv"
        cli_t1=$(now)
        cli="kcat -P" ;;
    mqtt)
        cli_t0=$(now)
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -t "$2" -l <"$T/vals.txt"
        cli_t1=$(now)
        cli="mosquitto_pub -l (QoS 1)" ;;
    esac
}
settle() { # settle BROKER WHO TOPIC: count what the broker holds, keep what is compared
    case $1 in
    redis) # the same entries: field names and values of the first and last;
        # then the stream goes, so both runs find the server's memory alike
        check_count "$2 (XLEN $3)" "$(rcli XLEN "$3")"
        rcli XRANGE "$3" - + COUNT 1 | tail -n +2 >"$T/first.$2"
        rcli XREVRANGE "$3" + - COUNT 1 | tail -n +2 >"$T/last.$2"
        rcli DEL "$3" >/dev/null ;;
    kafka)
        check_count "$2 ($3)" "$(kafka_count "$3")"
        kcat -C -b "$KAFKA_BOOTSTRAP" -t "$3" -o beginning -c 1 -q -f '%h\n' >"$T/first.$2" ;;
    mqtt)
        check_count "$2 ($3)" "$(mqtt_session "$3" "$ROWS")" ;;
    esac
}
median() { python3 -c "import sys, statistics; print('%.0f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }

# Each broker: REPS rounds (default 5) of the CLI tool, then Tributary, each
# round on its own topics (bench.cli.N, and topic_prefix tfN for Tributary);
# the summary line gives the medians.
for b in $BROKERS; do
    case $b in
    redis) start_redis ;;
    kafka)
        topics=""
        for r in $(seq "$REPS"); do topics="$topics --topic tf$r.public.mnist_train:32 --topic bench.cli.$r:32"; done
        # shellcheck disable=SC2086
        "$TRIB_BUILDDIR/tests/kafka_mock" $topics >"$T/kafka.addr" 2>"$T/kafka.log" &
        _pids="$_pids $!"
        wait_for 10 test -s "$T/kafka.addr"
        export KAFKA_BOOTSTRAP; KAFKA_BOOTSTRAP=$(head -n1 "$T/kafka.addr") ;;
    mqtt) start_mosquitto ;;
    *) fail "unknown broker $b" ;;
    esac
    all_ours="" all_cli=""
    for r in $(seq "$REPS"); do
        ct=bench.cli.$r tt=tf$r.public.mnist_train
        [ "$b" = mqtt ] && { mqtt_session "$ct"; mqtt_session "$tt"; }
        # odd rounds: the CLI tool first; even rounds: Tributary first (the
        # broker's memory is warmer for whoever comes second)
        if [ $((r % 2)) = 1 ]; then
            run_cli "$b" "$ct"; settle "$b" cli "$ct"
            ours=$(run_tributary "$b" "tf$r"); settle "$b" tributary "$tt"
        else
            ours=$(run_tributary "$b" "tf$r"); settle "$b" tributary "$tt"
            run_cli "$b" "$ct"; settle "$b" cli "$ct"
        fi
        clirate=$(rate "$ROWS" "$cli_t0" "$cli_t1")
        case $b in
        redis)
            [ "$(cat "$T/first.cli")" = "$(cat "$T/first.tributary")" ] &&
                [ "$(cat "$T/last.cli")" = "$(cat "$T/last.tributary")" ] ||
                fail "redis-cli's and Tributary's entries differ (first or last entry)" ;;
        kafka)
            [ "$(cat "$T/first.cli")" = "$(cat "$T/first.tributary")" ] ||
                fail "kcat's and Tributary's headers differ: '$(cat "$T/first.cli")' vs '$(cat "$T/first.tributary")'" ;;
        esac
        all_ours="$all_ours $ours" all_cli="$all_cli $clirate"
        python3 - "$b" "$ours" "$clirate" "$floor" "$cli" "round $r:" <<'PY'
import sys
b, ours, cli, floor, tool, what = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
print("%-5s %-9s tributary snapshot: %8.0f rows/s | %s: %8.0f rows/s | tributary/cli = %.2fx | floor/tributary = %.2fx"
      % (b, what, ours, tool, cli, ours / cli, floor / ours))
PY
    done
    # shellcheck disable=SC2086
    python3 - "$b" "$(median $all_ours)" "$(median $all_cli)" "$floor" "$cli" "median:" <<'PY'
import sys
b, ours, cli, floor, tool, what = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
print("%-5s %-9s tributary snapshot: %8.0f rows/s | %s: %8.0f rows/s | tributary/cli = %.2fx | floor/tributary = %.2fx"
      % (b, what, ours, tool, cli, ours / cli, floor / ours))
PY
done
