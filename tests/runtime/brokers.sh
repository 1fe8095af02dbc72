#!/usr/bin/env bash
# brokers.sh BROKER — the cross-broker suite: the same scenario, the same
# assertions, for redis, kafka and mqtt (run by brokers_<name>.sh).
#
#   Postgres (mnist tables) → tributary run conf/mnist-BROKER.yaml → broker
#   * 300+40 rows before the run (snapshot), 200+60 committed during it;
#   * the plugin's own consumer (`tributary consume`) reads back each row
#     exactly once, byte-exact (key = label, value = CSV pixels), and the
#     live rows of each table in commit order (per key for Kafka, whose
#     partitions order per key);
#   * a client nobody here wrote (redis-cli / kcat / mosquitto_sub) sees the
#     same keys and values.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"
BROKER=${1:?usage: brokers.sh redis|kafka|mqtt}
CONF=$TRIB_SRCDIR/conf/mnist-$BROKER.yaml
TOPICS="tf.public.mnist_train tf.public.mnist_test"
# the configs differ only in their sink: section
python3 - "$TRIB_SRCDIR/conf/mnist-redis.yaml" "$CONF" <<'PY' || fail "configs differ outside sink:"
import sys
def without_sink(path):
    out, skip = [], False
    for line in open(path):
        ind = len(line) - len(line.lstrip(" "))
        if line.strip() and ind <= 2:
            skip = line.strip() == "sink:"
        if not skip and not line.lstrip().startswith("#"):
            out.append(line)
    return out
a, b = without_sink(sys.argv[1]), without_sink(sys.argv[2])
assert a == b, "".join(l for l in set(a) ^ set(b))
PY
"$TRIB" check "$CONF" >/dev/null || fail "tributary check $CONF"
start_pg
case $BROKER in
redis) start_redis ;;
mqtt) start_mosquitto ;;
kafka)
    . "$TRIB_SRCDIR/tests/runtime/kafka_lib.sh"
    start_kafka_mock --topic tf.public.mnist_train:4 --topic tf.public.mnist_test:4 ;;
*) fail "unknown broker $BROKER" ;;
esac
export TRIB_STATE=$T/state TRIB_LOG_LEVEL=info
mnist_schema
mnist_insert mnist_train 1 300 50
mnist_insert mnist_test 100001 100040 10

consume() { # consume TOPIC → key-hex TAB value-hex lines, through our consumer
    "$TRIB" consume "$CONF" "$1" --group suite --from-beginning --bounded --format hex \
        2>>"$T/consume.log"
}
if [ "$BROKER" = mqtt ]; then
    # MQTT keeps messages only for sessions that exist: subscribe once first
    for t in $TOPICS; do
        consume "$t" >/dev/null || fail "creating the consumer session for $t"
        mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -c -i "cli-$t" -q 1 -t "$t" -E \
            || fail "creating mosquitto_sub's session"
    done
fi

mport=$(free_port)
cp "$CONF" "$T/run.yaml"
printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$mport" >>"$T/run.yaml"
"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
pid=$!
delivered() { curl -s "http://127.0.0.1:$mport/metrics" | awk '/stage="delivered"/{print $2}'; }
wait_for 30 sh -c "[ \"\$(curl -s http://127.0.0.1:$mport/metrics | awk '/stage=\"delivered\"/{print \$2}')\" = 340 ]" \
    || { cat "$T/run.log"; fail "snapshot not delivered: $(delivered)"; }
mnist_insert mnist_train 301 500 1      # one row per transaction
mnist_insert mnist_test 100041 100100 1
wait_for 60 sh -c "[ \"\$(curl -s http://127.0.0.1:$mport/metrics | awk '/stage=\"delivered\"/{print \$2}')\" = 600 ]" \
    || { cat "$T/run.log"; fail "live rows not delivered: $(delivered)"; }
kill -TERM $pid
wait $pid || fail "tributary run exit status $?"

# expected rows, in commit order, straight from Postgres
for t in mnist_train mnist_test; do
    psql_q -c "COPY (SELECT labels, encode(pixels, 'hex') FROM $t) TO STDOUT" >"$T/want.$t"
done
check() { # check TABLE GOT-FILE WHO — GOT: key-hex TAB value-hex
    python3 - "$T/want.$1" "$2" "$3" "$BROKER" <<'PY' || fail "$3 read of $1 differs"
import sys, collections
want_f, got_f, who, broker = sys.argv[1:]
want = []
for line in open(want_f):
    lab, hx = line.rstrip("\n").split("\t")
    csv = ",".join(str(b) for b in bytes.fromhex(hx))
    want.append((lab.encode().hex(), csv.encode().hex()))
got = [tuple(l.rstrip("\n").split("\t")[:2]) for l in open(got_f) if l.strip()]
cw, cg = collections.Counter(want), collections.Counter(got)
missing, extra = cw - cg, cg - cw
assert not missing and not extra, "%s: %d missing, %d unexpected/duplicated of %d" % (
    who, sum(missing.values()), sum(extra.values()), len(want))
# order: per key (Kafka orders per partition, and the key picks it), else total
def seq(rows):
    out = collections.defaultdict(list)
    for k, v in rows:
        out[k if broker == "kafka" else ""].append(v)
    return out
sw, sg = seq(want), seq(got)
for k in sw:
    assert sw[k] == sg[k], "%s: order differs for key %r" % (who, k)
print("%s: %d rows of %s exactly once, byte-exact, in order" % (who, len(want), want_f.split(".")[-1]))
PY
}
for t in mnist_train mnist_test; do
    topic=tf.public.$t
    consume "$topic" >"$T/ours.$t" || { cat "$T/consume.log"; fail "tributary consume $topic"; }
    check "$t" "$T/ours.$t" "tributary consume ($BROKER)"
    case $BROKER in
    redis) rx_dump "$topic" | cut -f2,3 >"$T/cli.$t"; who=redis-cli ;;
    kafka) kafka_dump "$topic" "$T/k.$t"
           python3 -c "
import sys
for l in open(sys.argv[1]):
    p, o, k, v, h = l.rstrip('\n').split('\t', 4)
    print(k.encode().hex() + '\t' + v.encode().hex())" "$T/k.$t" >"$T/cli.$t"; who=kcat ;;
    mqtt) mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -c -i "cli-$topic" -q 1 -t "$topic" \
              -F '%P\t%p' -W 3 >"$T/m.$t" 2>/dev/null || true
          python3 -c "
import sys
for l in open(sys.argv[1]):
    props, v = l.rstrip('\n').split('\t', 1)
    key = [p.split(':', 1)[1] for p in props.split(' ') if p.startswith('key:')][0]
    print(key.encode().hex() + '\t' + v.encode().hex())" "$T/m.$t" >"$T/cli.$t"; who=mosquitto_sub ;;
    esac
    check "$t" "$T/cli.$t" "$who"
done
echo "brokers ($BROKER): all checks passed"
