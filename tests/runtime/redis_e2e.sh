#!/bin/bash
# tests/runtime/redis_e2e.sh — Postgres -> `tributary run` (postgres source,
# mnist transform) -> Redis Streams, end to end: rows inserted before the run
# (snapshot) and 10,000 rows inserted while it runs all arrive exactly once,
# in commit order, byte-exact (checked with redis-cli); after SIGTERM the
# slot's confirmed_flush_lsn covers the last delivered transaction.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"
start_pg
start_redis
mnist_schema
mnist_insert mnist_train 1 500 250
mnist_insert mnist_test 1000001 1000100
mnist_config "$T/run.yaml"

"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
pid=$!
wait_for 60 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge 500 ]" \
    || fail "snapshot rows did not arrive"
mnist_insert mnist_train 501 10500 100 &
ins1=$!
mnist_insert mnist_test 1000101 1000300 20
wait $ins1 || fail "inserts failed"
last_lsn=$(psql_q -c "SELECT pg_current_wal_lsn()")
wait_for 120 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge 10500 ]" \
    || fail "only $(xlen tf.public.mnist_train) of 10500 rows arrived"
wait_for 30 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_test) -ge 300 ]" \
    || fail "only $(xlen tf.public.mnist_test) of 300 test rows arrived"
sleep 1.5   # let any stray duplicate show up before checking exactly-once
kill -TERM $pid
wait $pid || fail "tributary run exited with $? after SIGTERM"

check_stream tf.public.mnist_train mnist_train 0 || fail "mnist_train stream"
check_stream tf.public.mnist_test mnist_test 0 || fail "mnist_test stream"
# snapshot rows carry snapshot=true, streamed rows an LSN
[ "$(cut -f6 "$T/tf.public.mnist_train.tsv" | grep -c -e true -e last)" = 500 ] || fail "snapshot flag"
tail_lsn=$(tail -n1 "$T/tf.public.mnist_train.tsv" | cut -f7)
[ "$(awk -F'\t' '$4 == "c" && $7 == "-"' "$T/tf.public.mnist_train.tsv" | wc -l)" = 0 ] \
    || fail "streamed rows without commit_lsn"
[ "$(cut -f4 "$T/tf.public.mnist_train.tsv" | sort -u | tr '\n' ' ')" = "c r " ] || fail "op field"
ok=$(psql_q -c "SELECT confirmed_flush_lsn >= '$tail_lsn'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tributary'")
[ "$ok" = t ] || fail "confirmed_flush_lsn $(psql_q -c 'SELECT confirmed_flush_lsn FROM pg_replication_slots') < last delivered commit $tail_lsn (wal at $last_lsn)"
! grep -qi 'password' "$T/run.log" || fail "log mentions a password"
echo "redis_e2e: passed"
