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
# `tributary consume` prints JSON by default: one object per entry, every byte
# visible (JSON escapes; UTF-8 text as is, any other byte as \u00XX).
id=$(printf 'a"b\\c\n\t\001\303\251\377' | redis-cli -p "$REDIS_PORT" -x XADD tf.json '*' key 'k"1' op c value)
"$TRIB" consume "$T/run.yaml" tf.json --from-beginning --bounded >"$T/json.out" 2>"$T/consume.log" \
    || { cat "$T/consume.log"; fail "tributary consume tf.json"; }
python3 - "$T/json.out" "$id" <<'PY' || fail "consume --format json: $(cat "$T/json.out")"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, lines
m = json.loads(lines[0])
assert m["topic"] == "tf.json" and m["id"] == sys.argv[2], m
assert m["key"] == 'k"1', m["key"]
assert m["value"] == 'a"b\\c\n\t\x01\u00e9\u00ff', m["value"]
assert m["headers"] == {"op": "c"}, m["headers"]
# UTF-8 text stays as it is; a byte that is not UTF-8 is escaped (--format hex is byte-exact)
assert '"value":"a\\"b\\\\c\\n\\t\\u0001\u00e9\\u00ff"' in lines[0], lines[0]
PY
# ... and names a bad argument instead of guessing
for bad in "--max abc" "--idle-ms -1" "--format xml"; do
    # shellcheck disable=SC2086
    rc=0; "$TRIB" consume "$T/run.yaml" tf.json $bad 2>"$T/bad.log" || rc=$?
    [ $rc = 2 ] && grep -q -- "${bad%% *} '${bad#* }'" "$T/bad.log" || fail "consume $bad: rc $rc, $(cat "$T/bad.log")"
done

echo "redis_e2e: passed"
