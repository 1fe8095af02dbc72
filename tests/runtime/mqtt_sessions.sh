#!/bin/bash
# mqtt_sessions.sh — the sink creates its subscribers' sessions before it
# publishes (option subscriber_groups), against a real mosquitto, through
# tests/internal/test_mqtt_driver:
#
#  1. nobody subscribed before the publishing: the default group's consumer
#     (what `tributary train` uses) still reads every record, once; the
#     session is a plain MQTT session that mosquitto_sub can read too;
#  2. several groups each get everything; a second read of a group gets
#     nothing and says why;
#  3. a session that already holds a backlog is checked by a new sink process
#     without taking anything from it (no PUBACK): the reader gets old and new
#     records exactly once — MQTT v5, and 3.1.1 with the key in the topic;
#     a session that exists without the subscription (what a sink killed
#     between CONNACK and SUBACK leaves) is subscribed, so nothing is lost;
#  4. subscriber_groups: [] creates nothing;
#  5. a broker requiring a password: with it, sessions are created; with a
#     wrong one, every record is acked TRIB_ERR with a message naming the
#     broker and topic, never the password; a topic its ACL makes read-only:
#     the broker's PUBACK reason 0x87 acks every record TRIB_ERR; a consumer
#     with a wrong password fails to open, naming the broker's reason (v5, 3.1.1).
. "$TRIB_SRCDIR/tests/lib.sh"
D=$(driver "$TRIB_BUILDDIR/tests/internal/test_mqtt_driver")
[ -x "$D" ] || fail "$D not built (make check builds it)"
command -v mosquitto_sub >/dev/null || fail "mosquitto_sub not installed (mosquitto-clients)"
command -v mosquitto_passwd >/dev/null || fail "mosquitto_passwd not installed (mosquitto)"
start_mosquitto
export TRIB_BUILDDIR
cid=tribsess-$$
run() { timeout "$(scaled 120)" "$D" "$@" "client_id=$cid" 2>>"$T/driver.log" \
            || { tail -n 20 "$T/driver.log" >&2; fail "driver $*"; }; }

# 1. publish first, subscribe later
run publish tf.public.first 500
grep -q "created subscriber session '$cid-tributary-tf.public.first' (group 'tributary')" \
    "$T/driver.log" || fail "no session created for the default group"
run consume tf.public.first 500               # default group, bounded: 500 then EOF
run publish tf.public.interop 20
timeout 20 mosquitto_sub -V 5 -h 127.0.0.1 -p "$MQTT_PORT" -c -i "$cid-tributary-tf.public.interop" \
    -x 600 -q 1 -t tf.public.interop -C 20 -W 15 -F '%t' >"$T/interop.out" \
    || fail "mosquitto_sub got $(wc -l <"$T/interop.out") of 20 queued messages"

# 2. several groups
run publish tf.public.groups 300 subscriber_groups=g1,g2
run consume tf.public.groups 300 group=g1
run consume tf.public.groups 300 group=g2
run consume tf.public.groups 0 group=g1       # read already: nothing left, and a hint
grep -q "session '$cid-g1-tf.public.groups' held no message" "$T/driver.log" \
    || fail "no hint when a session holds nothing"

# 3. sessions with a backlog are checked, not consumed (v5; 3.1.1 + key in topic)
run publish tf.public.backlog 200
run publish tf.public.backlog 200 start=200   # new process: probes the existing session
run consume tf.public.backlog 400             # all of them, no duplicates
v3="mqtt_version=3.1.1 key_in_topic=true"
run publish tf.public.backlog3 300 $v3
run publish tf.public.backlog3 300 start=300 $v3
run consume tf.public.backlog3 600 $v3
n=$(grep -c "created subscriber session '$cid-tributary-tf.public.backlog" "$T/driver.log")
[ "$n" = 2 ] || fail "$n sessions created for the two backlog topics, want 2 (one each)"
for v in 5 311; do  # the session exists, subscribed to something else only
    timeout 20 mosquitto_sub -V $v -h 127.0.0.1 -p "$MQTT_PORT" -c -i "$cid-tributary-tf.public.nosub$v" \
        -x 600 -q 1 -t elsewhere -E || fail "mosquitto_sub could not create the session (v$v)"
done
run publish tf.public.nosub5 150
run consume tf.public.nosub5 150              # the sink subscribed the existing session
run publish tf.public.nosub311 150 $v3
run consume tf.public.nosub311 150 $v3

# 4. turned off
run publish tf.public.none 50 subscriber_groups=
! grep -q "session '$cid-tributary-tf.public.none'" "$T/driver.log" || fail "session created"
run consume tf.public.none 0                  # nothing was kept for it
grep -q "session '$cid-tributary-tf.public.none' held no message" "$T/driver.log" \
    || fail "a session appeared although subscriber_groups is empty"

# 5. a broker with passwords
APORT=$(free_port)
mosquitto_passwd -c -b "$T/passwd" trib 'Pa55-secret' 2>/dev/null || fail "mosquitto_passwd"
chmod 644 "$T/passwd"  # mosquitto started as root reads it as user mosquitto
printf 'user trib\ntopic readwrite tf.public.auth\ntopic readwrite tf.public.auth/#\ntopic read tf.public.denied\n' >"$T/acl"
chmod 644 "$T/acl"
cat >"$T/auth.conf" <<CONF
listener $APORT 127.0.0.1
allow_anonymous false
password_file $T/passwd
acl_file $T/acl
persistence false
max_queued_messages 0
CONF
"$MOSQ" -c "$T/auth.conf" >"$T/auth.log" 2>&1 &
_pids="$_pids $!"
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$APORT" || fail "mosquitto (auth) did not start"
A="url=tcp://127.0.0.1:$APORT username=trib"
run publish tf.public.auth 100 $A password=Pa55-secret
run consume tf.public.auth 100 $A password=Pa55-secret
if timeout "$(scaled 60)" "$D" publish tf.public.auth 10 $A password=Wrong-secret connect_timeout_s=2 \
        "client_id=$cid" 2>"$T/wrong.log"; then
    fail "publishing with a wrong password succeeded"
fi
grep -q "ok=0 err=10 stop=0 dup=0" "$T/wrong.log" || { cat "$T/wrong.log" >&2; fail "acks"; }
grep -Eq "last error: cannot create the subscriber session of group 'tributary' for topic \
'tf.public.auth': MQTT broker 127.0.0.1:$APORT .*refused the connection: (not authorized|bad user name)" \
    "$T/wrong.log" || { cat "$T/wrong.log" >&2; fail "error message"; }
# a publish the broker refuses (ACL: read only): a v5 PUBACK reason 0x87 is a
# permanent error for each record, named with its topic
if timeout "$(scaled 60)" "$D" publish tf.public.denied 10 $A password=Pa55-secret subscriber_groups= \
        "client_id=$cid" 2>"$T/denied.log"; then
    fail "publishing to a topic the ACL denies succeeded"
fi
grep -q "ok=0 err=10 stop=0 dup=0" "$T/denied.log" || { cat "$T/denied.log" >&2; fail "acks (denied)"; }
grep -q "last error: broker refused message on topic 'tf.public.denied': not authorized (reason 0x87)" \
    "$T/denied.log" || { cat "$T/denied.log" >&2; fail "error message (denied)"; }
# the consumer side: a wrong password fails open() with the broker's reason
# (mosquitto grants subscriptions its ACL denies and just delivers nothing)
if timeout "$(scaled 60)" "$D" consume tf.public.auth 1 $A password=Wrong-secret connect_timeout_s=2 \
        "client_id=$cid" 2>"$T/cwrong.log"; then
    fail "consuming with a wrong password succeeded"
fi
grep -Eiq "open: .*127.0.0.1:$APORT: the broker refused the connection: (not authorized|bad user name).*\(reason 0x8[67]\)" \
    "$T/cwrong.log" || { cat "$T/cwrong.log" >&2; fail "consumer error message (wrong password)"; }
if timeout "$(scaled 60)" "$D" consume tf.public.auth 1 $A password=Wrong-secret connect_timeout_s=2 $v3 \
        "client_id=$cid" 2>>"$T/cwrong.log"; then
    fail "consuming with a wrong password succeeded (MQTT 3.1.1)"
fi
grep -Eq "open: .*127.0.0.1:$APORT: the broker refused the connection: (not authorized|bad user name or password) \(return code [45]\)" \
    "$T/cwrong.log" || { cat "$T/cwrong.log" >&2; fail "consumer error message (wrong password, 3.1.1)"; }
! grep -q "secret" "$T/wrong.log" "$T/denied.log" "$T/cwrong.log" "$T/driver.log" || fail "a password appears in a log"
log "ok"
