#!/bin/bash
# mqtt_e2e.sh — Postgres -> `tributary run` (postgres source, mnist transform)
# -> MQTT (mosquitto), end to end.
#
# The trainer-side sessions exist before the run (the plugin's own consumer,
# as `tributary train` opens it, and a mosquitto_sub session for interop).
# Rows inserted before the run (snapshot) and while it runs arrive byte-exact
# (key = label, value = pixels as CSV):
#   mnist_test  exactly once, in commit order;
#   mnist_train the broker is stopped for 2 s during its live inserts and
#               restarted on the same port: every row still arrives (duplicates
#               allowed, only a QoS 1 resend can make one), and the slot's
#               confirmed LSN reaches the end only once everything was PUBACKed.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh" # mnist_schema, mnist_insert (Postgres side only)
D=$(driver "$TRIB_BUILDDIR/tests/internal/test_mqtt_driver")
[ -x "$D" ] || fail "$D not built (make check builds it)"
start_pg
start_mosquitto
export TRIB_BUILDDIR
cid=tribe2e-$$
mnist_schema
mnist_insert mnist_train 1 500 250
mnist_insert mnist_test 1000001 1000100
cat >"$T/run.yaml" <<Y
state_dir: $T/state
log_level: info
pipeline:
  source:
    plugin: postgres
    conninfo: "\${PG_CONNINFO}"
    slot: tributary
    publication: tributary
    tables: [public.mnist_train, public.mnist_test]
    snapshot: initial
    topic_prefix: tf
    status_interval_ms: 500
  transforms:
    - plugin: mnist
  sink:
    plugin: mqtt
    url: "\${MQTT_URL}"
    client_id: $cid
    reconnect_max_s: 1
Y
drv() { timeout "$(scaled 120)" "$D" "$@" "client_id=$cid" group=trainer; }
drv subscribe tf.public.mnist_train 2>>"$T/driver.log" || fail "subscribe train"
drv subscribe tf.public.mnist_test 2>>"$T/driver.log" || fail "subscribe test"
sub() { timeout 60 mosquitto_sub -V 5 -h 127.0.0.1 -p "$MQTT_PORT" -c -i e2e-interop -x 600 -q 1 \
            -t tf.public.mnist_train "$@"; }
sub -E || fail "mosquitto_sub could not subscribe"

confirmed() { psql_q -c "SELECT confirmed_flush_lsn >= '$1'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tributary'"; }

"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
pid=$!
# every snapshot row acknowledged (the slot's LSN alone says nothing here: a
# new slot starts confirmed at its consistent point, before any row is sent)
wait_for 60 grep -q "snapshot delivered" "$T/run.log" || fail "snapshot not delivered"

mnist_insert mnist_train 501 5500 50 &
ins=$!
sleep 1
stop_mosquitto
log "broker stopped during live inserts"
sleep 2
start_mosquitto
log "broker back on port $MQTT_PORT"
wait $ins || fail "inserts failed"
mnist_insert mnist_test 1000101 1000300 20
last=$(psql_q -c "SELECT pg_current_wal_lsn()")
wait_for 120 sh -c "[ \"\$(psql -X -At -c \"SELECT confirmed_flush_lsn >= '$last'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tributary'\")\" = t ]" \
    || fail "slot never confirmed $last: rows not acknowledged"
grep -q 'lost; reconnecting' "$T/run.log" || fail "the sink never saw the outage"
kill -TERM $pid
wait $pid || fail "tributary run exited with $? after SIGTERM"

# Read back: the plugin's own consumer (both topics), mosquitto_sub (train)
drv dump tf.public.mnist_train >"$T/train.tsv" 2>>"$T/driver.log" || fail "dump train"
drv dump tf.public.mnist_test >"$T/test.tsv" 2>>"$T/driver.log" || fail "dump test"
sub -F '%P %x' -W 5 >"$T/sub.out" 2>/dev/null || true  # ends on -W: no more messages
# mosquitto_sub prints "key:<label> op:<op> lsn:<lsn> <payload hex>"
python3 - "$T/sub.out" >"$T/sub.tsv" <<'PY'
import sys
for line in open(sys.argv[1]):
    f = line.split()
    props = dict(p.split(":", 1) for p in f[:-1])
    print("%s\t%s\t%s\t-" % (props["key"].encode().hex(), f[-1], props.get("op", "-")))
PY
psql_q -F' ' -c "SELECT labels, encode(pixels, 'hex') FROM public.mnist_train" >"$T/train.rows"
psql_q -F' ' -c "SELECT labels, encode(pixels, 'hex') FROM public.mnist_test" >"$T/test.rows"
check() { # check TSV ROWS DUPS_OK
    python3 - "$@" <<'PY'
import sys
want = {}
for line in open(sys.argv[2]):
    label, hexpx = line.split()
    px = bytes.fromhex(hexpx)
    want[int.from_bytes(px[:3], "big")] = (label.encode(), ",".join(str(b) for b in px).encode())
order, seen, dups, ops = [], set(), 0, {}
for line in open(sys.argv[1]):
    k, v, op, _lsn = line.rstrip("\n").split("\t")
    key, val = bytes.fromhex(k), bytes.fromhex(v)
    g = 0
    for b in val.split(b",")[:3]:
        g = g * 256 + int(b)
    assert g in want, "unknown row g=%d" % g
    assert (key, val) == want[g], "row g=%d differs (key %r)" % (g, key)
    if g in seen:
        dups += 1
        continue
    seen.add(g)
    order.append(g)
    ops[op] = ops.get(op, 0) + 1
missing = sorted(set(want) - seen)
assert not missing, "%d rows missing, e.g. g=%s" % (len(missing), missing[:5])
assert sys.argv[3] == "1" or dups == 0, "%d duplicates" % dups
assert sys.argv[3] == "1" or order == sorted(order), "not in commit order"
assert set(ops) == {"r", "c"}, "ops %r" % ops
print("%s: %d rows byte-exact, %d duplicate(s), ops %s" % (sys.argv[1].split("/")[-1], len(seen), dups, ops))
PY
}
check "$T/test.tsv" "$T/test.rows" 0 >&2 || fail "mnist_test via the plugin's consumer"
check "$T/train.tsv" "$T/train.rows" 1 >&2 || fail "mnist_train via the plugin's consumer"
check "$T/sub.tsv" "$T/train.rows" 1 >&2 || fail "mnist_train via mosquitto_sub"
! grep -qi 'password' "$T/run.log" || fail "log mentions a password"
log "ok"
