#!/bin/bash
# tests/runtime/redis_plugin.sh — the redis plugin against a real redis-server,
# driven by tests/internal/test_redis_driver (the plugin loaded into the
# shared test host).  Covers: pipelined batches with byte-exact binary key/value
# (NUL bytes, 784-byte values), acks, maxlen, error replies, stopping while
# Redis is down, consumer group + XACK + redelivery, bounded reads ending in
# EOF, XREAD, produce, AUTH; redis-cli reading what the plugin wrote
# (interop); and kill -9 / restart of redis-server under live load with
# nothing lost, for the sink and for a group consumer.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"
DRV=$(driver "$TRIB_BUILDDIR/tests/internal/test_redis_driver")
[ -x "$DRV" ] || fail "$DRV not built"
drv() { timeout "$(scaled 120)" "$DRV" "$@" 2>>"$T/driver.log" || fail "driver scenario $1 failed (see driver.log)"; }

start_redis_aof

# ---- sink: batch XADD, byte-exact; interop with redis-cli --------------------
drv sink-basic "$REDIS_URL"
rx_dump t.basic >"$T/basic.tsv"
python3 - "$T/basic.tsv" <<'PY' || fail "redis-cli XRANGE does not show what was sent"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
assert len(rows) == 300, len(rows)
for i, (id_, k, v, op, lsn, snap, clsn) in enumerate(rows):
    key = b"k\x00" + str(i).encode() + b"\n\xff"
    val = bytes((i * 31 + j * 7) % 256 for j in range(784))
    assert bytes.fromhex(k) == key, (i, k)
    assert bytes.fromhex(v) == val, i
    assert op == ("r" if i == 0 else "c"), (i, op)
    assert lsn == "16/%X" % (0xB374D848 + i), (i, lsn)
    assert (snap == "true") == (i == 0), (i, snap)
print("interop: redis-cli sees 300 byte-exact entries")
PY

drv sink-maxlen "$REDIS_URL"
drv sink-error "$REDIS_URL" each
drv sink-error "$REDIS_URL"
# quiet groups (confirm: batch): in use by default, not with confirm: each nor
# for a user whose ACL forbids CLIENT; another client's errors meanwhile
rcli ACL SETUSER noclient on '>nc-secret' '~*' '&*' +@all -client >/dev/null
drv sink-quiet "$REDIS_URL" "redis://noclient:nc-secret@127.0.0.1:$REDIS_PORT/0"
drv sink-foreign "$REDIS_URL"
drv sink-lag "$REDIS_URL" >"$T/lag.out"; cat "$T/lag.out"
grep -q "sink-lag: 2000 records" "$T/lag.out" || fail "sink-lag: $(cat "$T/lag.out")"
drv produce "$REDIS_URL"
drv sink-busy "$REDIS_URL"

# ---- consumer ----------------------------------------------------------------
drv consume-group "$REDIS_URL"
[ "$(rcli XINFO GROUPS t.group | grep -c '^g1$')" = 1 ] || fail "group g1 not created"
drv consume-bounded "$REDIS_URL"
drv consume-xread "$REDIS_URL"

# ---- Redis unreachable while the engine stops ---------------------------------
drv sink-stop "redis://127.0.0.1:$(free_port)/0"

# ---- kill -9 and restart under live load: nothing lost ------------------------
N=20000
drv_live() { timeout "$(scaled 180)" "$DRV" sink-live "$REDIS_URL" $N 100 "$T/progress" >"$T/live.out" 2>>"$T/driver.log"; }
drv_live &
live=$!
wait_for 60 sh -c "[ \$(cat $T/progress 2>/dev/null || echo 0) -ge 4000 ]" || fail "no progress"
REDIS_DOWN_SECONDS=2 restart_redis_aof --kill
wait_for 60 sh -c "[ \$(cat $T/progress 2>/dev/null || echo 0) -ge 12000 ]" || fail "no progress after restart"
REDIS_DOWN_SECONDS=1 restart_redis_aof
wait "$live" || fail "sink-live failed (see driver.log)"
cat "$T/live.out"
rx_dump t.live >"$T/live.tsv"
python3 - "$T/live.tsv" $N <<'PY' || fail "records lost or out of order after redis restarts"
import sys
n = int(sys.argv[2])
keys = [int(bytes.fromhex(l.split("\t")[1])) for l in open(sys.argv[1])]
first = []
seen = set()
for k in keys:
    if k not in seen:
        seen.add(k)
        first.append(k)
assert seen == set(range(n)), "missing: %s" % sorted(set(range(n)) - seen)[:10]
assert first == sorted(first), "first occurrences out of order"
print("restart: %d distinct of %d entries (%d duplicates from lost replies)" % (len(seen), len(keys), len(keys) - len(seen)))
PY

# ---- a group consumer across kill -9 / restart ------------------------------
timeout "$(scaled 120)" "$DRV" consume-restart "$REDIS_URL" "$T/cprogress" >"$T/crestart.out" 2>>"$T/driver.log" &
cr=$!
wait_for 30 test -s "$T/cprogress" || fail "consume-restart did not start"
REDIS_DOWN_SECONDS=2 restart_redis_aof --kill
for i in $(seq 0 99); do echo "XADD t.restart * key x$i value v op c"; done | rcli >/dev/null
wait $cr || fail "consume-restart failed (see driver.log)"
cat "$T/crestart.out"

# ---- AUTH (last: the server keeps the password) -------------------------------
PW='s3:cr@t'
rcli CONFIG SET requirepass "$PW" >/dev/null
drv auth "redis://:s3%3Acr%40t@127.0.0.1:$REDIS_PORT/0" "redis://:wrong-secret@127.0.0.1:$REDIS_PORT/0" \
    "$REDIS_URL" "$PW"
! grep -q "$PW" "$T/driver.log" || fail "password appears in the log"
rcli -a "$PW" --no-auth-warning CONFIG SET requirepass '' >/dev/null
echo "redis_plugin: all scenarios passed"
