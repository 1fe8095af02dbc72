#!/bin/bash
# mqtt_outage.sh — the broker goes away during sending and comes back on the
# same port: nothing is lost.
#
# A consumer session exists (subscribed, away) and a second consumer reads
# live; 20,000 records are published at 4,000/s; mosquitto is stopped 0.5 s
# after the publisher connected and restarted 2 s later (persistence on, so queued messages survive).
# Every record must be acked TRIB_OK (paho resends what was in flight), the
# away session must get all 20,000 and the live reader too (duplicates allowed
# for unacknowledged ones only, which MQTT QoS 1 permits).
. "$TRIB_SRCDIR/tests/lib.sh"
D=$(driver "$TRIB_BUILDDIR/tests/internal/test_mqtt_driver")
[ -x "$D" ] || fail "$D not built (make check builds it)"
start_mosquitto
export TRIB_BUILDDIR
cid="client_id=tribtest-$$"
run() { timeout "$(scaled 120)" "$D" "$@" 2>>"$T/driver.log" || { tail -n 20 "$T/driver.log" >&2; fail "driver $*"; }; }

run subscribe tf.public.outage group=away "$cid"
timeout "$(scaled 120)" "$D" consume tf.public.outage 20000 group=live bounded=0 dups_ok=1 "$cid" \
    2>"$T/live.log" &
live=$!
wait_for 10 grep -q subscribed "$T/live.log" || fail "live consumer did not subscribe"
timeout "$(scaled 120)" "$D" publish tf.public.outage 20000 rate=4000 "$cid" 2>"$T/pub.log" &
pub=$!
# stop the broker once the publisher is connected and sending (under valgrind
# it can take longer than a fixed delay just to start)
wait_for 60 grep -q "connected to" "$T/pub.log" || { cat "$T/pub.log" >&2; fail "publisher did not connect"; }
sleep 0.5
stop_mosquitto
log "broker stopped"
sleep 2
start_mosquitto
log "broker restarted on port $MQTT_PORT"
wait $pub || { cat "$T/pub.log" >&2; fail "publisher lost or failed records across the outage"; }
grep -q 'lost; reconnecting' "$T/pub.log" || fail "the publisher never saw the outage"
wait $live || { cat "$T/live.log" >&2; fail "live consumer missed records"; }
run consume tf.public.outage 20000 group=away dups_ok=1 "$cid"
grep -E '^(publish|consume):' "$T/pub.log" "$T/live.log" "$T/driver.log" >&2
log "ok"
