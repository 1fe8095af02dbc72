#!/bin/bash
# tests/runtime/kafka_e2e.sh — Postgres -> `tributary run` (postgres source,
# mnist transform) -> Kafka (librdkafka's mock cluster), with the shipped
# conf/mnist-kafka.yaml.  Checked with kcat, not our consumer:
#  1. rows inserted before the run (snapshot) and while it runs arrive
#     exactly once, byte-exact, in commit order within each partition, with
#     the op and lsn headers;
#  2. the broker goes down during inserts and tributary is killed -9 while
#     it is down; after the broker is back and tributary restarts, every row
#     is there (duplicates only from the unacknowledged window): the slot
#     was never confirmed past an undelivered record;
#  3. the same with SIGTERM while the broker is down: tributary exits 0
#     after shutdown_timeout_ms, reports the undelivered rows, and they
#     arrive after a restart.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/kafka_lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"   # mnist_schema, mnist_insert (Postgres side)
start_pg
start_kafka_mock --topic tf.public.mnist_train:8 --topic tf.public.mnist_test:2
mnist_schema
mnist_insert mnist_train 1 500 250
mnist_insert mnist_test 1000001 1000100
export TRIB_STATE=$T/state
CONF=$TRIB_SRCDIR/conf/mnist-kafka.yaml

# check TOPIC TABLE DUPS_OK: kcat's view of TOPIC against the rows of TABLE
check_topic() {
    kafka_dump "$1" "$T/$1.tsv"
    psql_q -F' ' -c "SELECT labels, encode(pixels, 'hex') FROM public.$2" >"$T/$2.rows"
    python3 - "$T/$1.tsv" "$T/$2.rows" "$3" <<'PY'
import sys
want = {}
for line in open(sys.argv[2]):
    label, hexpx = line.split()
    px = bytes.fromhex(hexpx)
    want[int.from_bytes(px[:3], "big")] = (label.encode(), ",".join(str(b) for b in px).encode())
last, seen, dups = {}, set(), 0
for line in open(sys.argv[1], "rb"):
    part, off, key, val, hdrs = line.rstrip(b"\n").split(b"\t")
    g = 0
    for b in val.split(b",")[:3]:
        g = g * 256 + int(b)
    assert g in want, "unknown row g=%d" % g
    assert (key, val) == want[g], "row g=%d differs (key %r)" % (g, key)
    h = dict(kv.split(b"=", 1) for kv in hdrs.split(b","))
    assert h[b"op"] in (b"r", b"c"), h
    assert b"/" in h[b"lsn"], h
    if g in seen:
        dups += 1
        continue
    seen.add(g)
    assert g > last.get(part, -1), "partition %s out of commit order at g=%d" % (part, g)
    last[part] = g
missing = sorted(set(want) - seen)
assert not missing, "%d rows missing, e.g. g=%s" % (len(missing), missing[:5])
assert sys.argv[3] == "1" or dups == 0, "%d duplicates" % dups
print("%s: %d rows, byte-exact, %d duplicates" % (sys.argv[1].split("/")[-1], len(seen), dups))
PY
}

# ---- 1. snapshot + live inserts, exactly once ------------------------------
"$TRIB" run "$CONF" 2>"$T/run.log" &
pid=$!
kafka_wait_count tf.public.mnist_train 500 60 || fail "snapshot rows did not arrive"
mnist_insert mnist_train 501 5500 100 &
ins=$!
mnist_insert mnist_test 1000101 1000300 20
wait $ins || fail "inserts failed"
kafka_wait_count tf.public.mnist_train 5500 120 \
    || fail "only $(kafka_count tf.public.mnist_train) of 5500 rows arrived"
kafka_wait_count tf.public.mnist_test 300 60 \
    || fail "only $(kafka_count tf.public.mnist_test) of 300 test rows arrived"
sleep 1.5   # let any stray duplicate show up before checking exactly-once
kill -TERM $pid
wait $pid || fail "tributary run exited with $? after SIGTERM"
check_topic tf.public.mnist_train mnist_train 0 || fail "mnist_train topic"
check_topic tf.public.mnist_test mnist_test 0 || fail "mnist_test topic"
! grep -qi 'password' "$T/run.log" || fail "log mentions a password"

# ---- 2. broker outage + crash: nothing lost --------------------------------
"$TRIB" run "$CONF" 2>"$T/run2.log" &
pid=$!
sleep 2
mnist_insert mnist_train 5501 6000 50
kmock down 1
mnist_insert mnist_train 6001 7000 50
sleep 3
kill -9 $pid; wait $pid 2>/dev/null || true
grep -q "brokers are down" "$T/run2.log" || fail "the outage was not noticed: $(tail -3 "$T/run2.log")"
kmock up 1
during=$(kafka_count tf.public.mnist_train)
[ "$during" -lt 7000 ] || fail "rows inserted while the broker was down were delivered ($during)"
"$TRIB" run "$CONF" 2>"$T/run3.log" &
pid=$!
kafka_wait_count tf.public.mnist_train 7000 120 \
    || fail "after the outage only $(kafka_count tf.public.mnist_train) of 7000 rows arrived"
sleep 1.5
kill -TERM $pid
wait $pid || fail "tributary run (restart) exited with $?"
check_topic tf.public.mnist_train mnist_train 1 || fail "mnist_train after outage + crash"

# ---- 3. SIGTERM while the broker is down: clean exit, nothing lost ----------
"$TRIB" run "$CONF" 2>"$T/run4.log" &
pid=$!
sleep 2
kmock down 1
mnist_insert mnist_train 7001 7500 50
sleep 2
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || fail "SIGTERM while the broker was down: exit $rc: $(grep -m1 -A6 -e 'Sanitizer' -e '^[0-9TZ:.-]* error ' "$T/run4.log")"
grep -q "will be replayed" "$T/run4.log" || fail "undelivered records were not reported at stop"
kmock up 1
"$TRIB" run "$CONF" 2>"$T/run5.log" &
pid=$!
kafka_wait_count tf.public.mnist_train 7500 120 \
    || fail "after a stop during the outage only $(kafka_count tf.public.mnist_train) of 7500 rows"
sleep 1.5
kill -TERM $pid
wait $pid || fail "tributary run (after stop) exited with $?"
check_topic tf.public.mnist_train mnist_train 1 || fail "mnist_train after a stop during the outage"
echo "kafka_e2e: passed"
