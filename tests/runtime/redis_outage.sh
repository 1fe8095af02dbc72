#!/bin/bash
# tests/runtime/redis_outage.sh — the broker goes away under live load.
#
# Postgres -> `tributary run` -> a durable redis-server (appendonly, fsync
# always).  While rows are being inserted: (1) redis-server is killed -9 and
# restarted a few seconds later: the sink blocks, reconnects and resends;
# (2) it is killed again and `tributary run` is stopped (SIGTERM) while Redis
# is down, then Redis and tributary are restarted.  Every row must arrive
# (duplicates only from the unacknowledged window), in commit order,
# byte-exact; and the slot's confirmed_flush_lsn, sampled during each outage,
# must never pass the commit LSN of a transaction that had not fully reached
# Redis before it went down (Postgres replays from there after a restart).
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"
start_pg
start_redis_aof
mnist_schema
mnist_insert mnist_train 1 200
mnist_config "$T/run.yaml"
LAST=6200

"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
pid=$!
wait_for 60 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge 200 ]" \
    || fail "snapshot rows did not arrive"

inserter() {
    g=201
    while [ $g -le $LAST ]; do
        mnist_insert mnist_train $g $((g + 49)) 50
        g=$((g + 50))
        sleep 0.04
    done
}
inserter &
ins=$!

confirmed() { psql_q -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'tributary'"; }
# outage NAME SECONDS: kill -9 redis, sample confirmed_flush_lsn while it is down
outage() {
    kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
    echo "$(date +%s%3N)" >"$T/$1.killed"
    end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt $end ]; do confirmed >>"$T/$1.samples"; sleep 0.2; done
}

# ---- outage 1: Redis down for 3 s, tributary keeps running -------------------
wait_for 60 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge 1500 ]" || fail "no progress"
outage o1 3
start_redis_aof
wait_for 60 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge 3500 ]" \
    || fail "no progress after the first outage ($(xlen tf.public.mnist_train) entries)"
grep -q "reconnected to redis://127.0.0.1:$REDIS_PORT/0" "$T/run.log" || fail "no reconnect logged"

# ---- outage 2: tributary is stopped while Redis is down ----------------------
outage o2 2
kill -TERM $pid
stopped=0
for _ in $(seq 1 "$(scaled 100)"); do kill -0 $pid 2>/dev/null || { stopped=1; break; }; sleep 0.2; done
[ $stopped = 1 ] || fail "tributary did not stop within $(scaled 20) s while Redis was down"
wait $pid || log "tributary exited with status $? (Redis unreachable at shutdown)"
confirmed >>"$T/o2.samples"
cp "$T/run.log" "$T/run1.log"
start_redis_aof
wait $ins || fail "inserts failed"

"$TRIB" run "$T/run.yaml" 2>"$T/run2.log" &
pid=$!
total=$LAST
wait_for 120 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge $total ]" \
    || fail "only $(xlen tf.public.mnist_train) of $total rows after restarting"
sleep 1
kill -TERM $pid
wait $pid || fail "second run exited with $?"

check_stream tf.public.mnist_train mnist_train 1 || fail "rows lost or out of order"
# confirmed_flush_lsn during each outage <= the first change not in Redis before it
for o in o1 o2; do
    python3 - "$T/tf.public.mnist_train.tsv" "$(cat "$T/$o.killed")" "$T/$o.samples" "$o" <<'PY' \
        || fail "confirmed_flush_lsn passed an unacknowledged record during $o"
import sys
def lsn(s):
    hi, lo = s.split("/")
    return int(hi, 16) << 32 | int(lo, 16)
killed = int(sys.argv[2])
before, after = set(), []
for line in open(sys.argv[1]):
    id_, k, v, op, l, snap, clsn = line.rstrip("\n").split("\t")
    g = 0
    for b in bytes.fromhex(v).split(b",")[:3]:
        g = g * 256 + int(b)
    if int(id_.split("-")[0]) < killed:
        before.add(g)
    elif g not in before and op == "c":
        after.append(lsn(clsn))
# Postgres replays, after a restart, every transaction whose commit record is
# at or after confirmed_flush_lsn: so no sample may pass the commit LSN of a
# transaction that had not fully reached Redis
first_missing = min(after)
samples = [lsn(s) for s in open(sys.argv[3]).read().split()]
assert samples, "no samples"
bad = [s for s in samples if s > first_missing]
assert not bad, "confirmed %X > commit LSN %X of an undelivered transaction" % (max(bad), first_missing)
print("%s: %d rows in Redis before the kill; %d samples of confirmed_flush_lsn, max %X <= first undelivered commit %X"
      % (sys.argv[4], len(before), len(samples), max(samples), first_missing))
PY
done
grep -q "not delivered" "$T/run1.log" || fail "stop during the outage did not report undelivered records"

# A one-off snapshot (snapshot: initial_only) while Redis is down: the run
# waits for Redis, not just shutdown_timeout_ms; stopped while Redis is still
# down it exits nonzero saying the run is incomplete; once Redis is back a
# new run delivers every row exactly once and exits 0.
sed -e "s/snapshot: initial$/snapshot: initial_only/" -e "s/topic_prefix: tf$/topic_prefix: once/" \
    "$T/run.yaml" >"$T/once.yaml"
printf 'shutdown_timeout_ms: 1000\n' >>"$T/once.yaml"
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
"$TRIB" run "$T/once.yaml" 2>"$T/once1.log" &
once=$!
sleep "$(scaled 3)" # three times shutdown_timeout_ms
kill -0 $once 2>/dev/null || { cat "$T/once1.log" >&2; fail "initial_only gave up while Redis was down"; }
kill -TERM $once
rc=0; wait $once || rc=$?
[ $rc != 0 ] || { cat "$T/once1.log" >&2; fail "initial_only stopped before delivering everything exited 0"; }
grep -q "the run is incomplete" "$T/once1.log" || { cat "$T/once1.log" >&2; fail "no 'incomplete' error"; }
start_redis_aof
rcli DEL once.public.mnist_train >/dev/null
rc=0; timeout "$(scaled 60)" "$TRIB" run "$T/once.yaml" 2>"$T/once2.log" || rc=$?
[ $rc = 0 ] || { cat "$T/once2.log" >&2; fail "initial_only exited $rc with Redis up"; }
check_stream once.public.mnist_train mnist_train 0
echo "redis_outage: initial_only waits for Redis, fails when stopped before the end, then delivers each row once"
echo "redis_outage: passed"
