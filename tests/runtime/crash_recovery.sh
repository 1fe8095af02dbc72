#!/usr/bin/env bash
# crash_recovery.sh [BROKER] — nothing committed is lost across kill -9.
# A table gets a 20,000-row snapshot while another process keeps inserting
# (one row per transaction); `tributary run` (postgres → BROKER (redis,
# kafka or mqtt), json converter) is killed with SIGKILL 20 times at random
# moments, during the snapshot and during streaming, and restarted.  Then,
# read back through the broker plugin's own consumer (`tributary consume`):
#   * every committed row is in the stream at least once;
#   * once a snapshot finished, it is not redone (the final run takes none);
#   * duplicates of streamed rows stay within the unacknowledged window
#     (kills × (queue_size + 3 × batch_size + rows committed during one
#     confirm_interval_ms)); the counts are printed;
#   * SIGTERM during a snapshot exits 0 within shutdown_timeout_ms.
BROKER=${1:-redis}
. "$TRIB_SRCDIR/tests/lib.sh"
start_pg
case $BROKER in
redis) start_redis
       SINK="    plugin: redis
    url: \"$REDIS_URL\"" ;;
mqtt)  start_mosquitto
       SINK="    plugin: mqtt
    url: $MQTT_URL" ;;
kafka) . "$TRIB_SRCDIR/tests/runtime/kafka_lib.sh"
       start_kafka_mock --topic tf.public.crash_t:8
       SINK="    plugin: kafka
    bootstrap_servers: $KAFKA_BOOTSTRAP" ;;
*) fail "unknown broker $BROKER" ;;
esac
SNAP=20000 LIVE=1500 KILLS=20 QUEUE=256 BATCH=64
psql_q -c "CREATE TABLE crash_t (id int PRIMARY KEY, v text)"
psql_q -c "INSERT INTO crash_t SELECT g, repeat('x', 400) FROM generate_series(1, $SNAP) g"

cat >"$T/c.yaml" <<Y
state_dir: $T/state
queue_size: $QUEUE
batch_size: $BATCH
shutdown_timeout_ms: 3000
status_interval_ms: 0
pipeline:
  source:
    plugin: postgres
    conninfo: "$PG_CONNINFO"
    slot: crash
    publication: crash
    tables: [public.crash_t]
    topic_prefix: tf
    confirm_interval_ms: 100
  sink:
$SINK
Y
# every message, key-hex TAB value-hex, through the plugin's consumer
# (redis/kafka: a bounded read from the beginning; mqtt: the sink-created
# session, drained until idle, so the result accumulates in $T/dump.tsv)
: >"$T/dump.tsv"
dump() {
    if [ "$BROKER" = mqtt ]; then
        "$TRIB" consume "$T/c.yaml" tf.public.crash_t --bounded --format hex 2>>"$T/consume.log" >>"$T/dump.tsv"
    else
        "$TRIB" consume "$T/c.yaml" tf.public.crash_t --from-beginning --bounded --format hex \
            2>>"$T/consume.log" >"$T/dump.tsv"
    fi
}

# the concurrent writer: one row per transaction, paced
python3 - "$SNAP" "$LIVE" >"$T/live.sql" <<'PY'
import sys
s, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(s + 1, s + n + 1):
    print("INSERT INTO crash_t VALUES (%d, 'live');" % i)
    print("SELECT pg_sleep(0.006);")
PY
psql_q -f "$T/live.sql" >/dev/null &
writer=$!

for k in $(seq 1 $KILLS); do
    # early kills are short (inside the first snapshots), later ones longer
    delay=$(python3 -c "import random; print('%.2f' % random.uniform(0.05, 0.15 + 0.06 * $k))")
    "$TRIB" run "$T/c.yaml" >>"$T/kills.log" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
done
# one more run, killed only once the snapshot is recorded as finished (on a
# slow machine every earlier kill may have hit a snapshot), so the final run
# below must not take another
"$TRIB" run "$T/c.yaml" >>"$T/kills.log" 2>&1 &
pid=$!
wait_for 120 test -f "$T/state/crash.snapshot" || { tail -n 30 "$T/kills.log"; fail "snapshot never finished"; }
kill -9 $pid; wait $pid 2>/dev/null || true
KILLS=$((KILLS + 1))
wait $writer || fail "writer failed"
total=$((SNAP + LIVE))

"$TRIB" run "$T/c.yaml" >"$T/final.log" 2>&1 &
pid=$!
for _ in $(seq 1 "$(scaled 120)"); do
    kill -0 $pid 2>/dev/null || { cat "$T/final.log"; fail "final run died"; }
    dump
    python3 - "$T/dump.tsv" "$total" <<'PY' && break
import sys, json
ids = set()
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    ids.add(json.loads(bytes.fromhex(f[0]))["id"])
sys.exit(0 if len(ids) >= int(sys.argv[2]) else 1)
PY
    sleep 1
done
kill -TERM $pid
wait $pid || fail "final run exit status $?"
grep -q "snapshot of" "$T/final.log" && { cat "$T/final.log"; fail "the final run redid a finished snapshot"; }
python3 - "$T/dump.tsv" "$SNAP" "$LIVE" "$KILLS" "$QUEUE" "$BATCH" "$BROKER" <<'PY' || fail "delivery check"
import sys, json, collections
snap, live, kills, queue, batch = map(int, sys.argv[2:7])
seen = collections.Counter()
ops = collections.Counter()
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    i = json.loads(bytes.fromhex(f[0]))["id"]
    op = json.loads(bytes.fromhex(f[1]))["op"]
    seen[(i, op)] += 1
    ops[op] += 1
ids = {i for i, _ in seen}
missing = set(range(1, snap + live + 1)) - ids
assert not missing, "lost rows: %s" % sorted(missing)[:20]
dup_stream = sum(c - 1 for (i, op), c in seen.items() if op == "c")
snap_rows = ops["r"]
bound = kills * (queue + 3 * batch + 50)  # the writer commits < 170 rows/s: < 20 per 100 ms
print("crash_recovery (%s): %d kills; %d rows committed, all delivered; snapshot rows emitted %d "
      "(%.1f snapshots' worth, interrupted ones are redone); duplicate streamed rows %d "
      "(bound %d)" % (sys.argv[7], kills, snap + live, snap_rows, snap_rows / snap, dup_stream, bound))
assert dup_stream <= bound, "too many duplicates"
PY

# SIGTERM during a snapshot: flush, confirm, exit 0 in bounded time
sed -e 's/slot: crash/slot: crash2/' -e 's/publication: crash/publication: crash2/' \
    -e "s|state_dir: $T/state|state_dir: $T/state2|" "$T/c.yaml" >"$T/c2.yaml"
"$TRIB" run "$T/c2.yaml" >"$T/term.log" 2>&1 &
pid=$!
wait_for 10 grep -q "snapshot of" "$T/term.log" || fail "second snapshot did not start"
t0=$(date +%s%N)
kill -TERM $pid
wait $pid || { cat "$T/term.log"; fail "SIGTERM during snapshot: exit status $?"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $ms -lt "$(scaled 5000)" ] || fail "SIGTERM took ${ms} ms"
echo "crash_recovery: SIGTERM during a snapshot exited 0 after ${ms} ms"
