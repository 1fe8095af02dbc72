# tests/runtime/kafka_lib.sh — helpers for the kafka_*.sh tests (sourced
# after tests/lib.sh; not a test itself).
#
#   start_kafka_mock [--topic NAME:PARTS]...  start tests/kafka_mock on
#                    127.0.0.1, export KAFKA_BOOTSTRAP; stopped on exit
#   kmock CMD...     send a control command (down 1, up 1, ...) and wait
#                    for its "ok"
#   kafka_dump TOPIC FILE  every message, read with kcat (not our code):
#                    partition <TAB> offset <TAB> key <TAB> value <TAB> headers
#   kafka_count TOPIC, kafka_wait_count TOPIC N SECONDS
KAFKA_MOCK=$TRIB_BUILDDIR/tests/kafka_mock
command -v kcat >/dev/null || fail "kcat not installed (apt-get install kcat)"
[ -x "$KAFKA_MOCK" ] || fail "$KAFKA_MOCK not built (make check builds it)"

start_kafka_mock() {
    mkfifo "$T/kmock.in"
    "$KAFKA_MOCK" --brokers 1 "$@" <"$T/kmock.in" >"$T/kmock.out" 2>"$T/kmock.log" &
    KMOCK_PID=$!; _pids="$_pids $KMOCK_PID"
    exec 3>"$T/kmock.in"     # hold the mock's stdin open for kmock
    wait_for 10 test -s "$T/kmock.out" || fail "kafka_mock did not start"
    KAFKA_BOOTSTRAP=$(head -n1 "$T/kmock.out")
    case $KAFKA_BOOTSTRAP in 127.0.0.1:*) ;; *) fail "mock not on loopback: $KAFKA_BOOTSTRAP" ;; esac
    export KAFKA_BOOTSTRAP
}

kmock() {
    _before=$(grep -c '' "$T/kmock.out")
    echo "$*" >&3
    wait_for 10 sh -c "[ \$(grep -c '' '$T/kmock.out') -gt $_before ]" || fail "kafka_mock: no reply to '$*'"
    tail -n1 "$T/kmock.out" | grep -qx ok || fail "kafka_mock '$*': $(tail -n1 "$T/kmock.out")"
}

kafka_dump() {
    timeout 60 kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -e -q \
        -f '%p\t%o\t%k\t%s\t%h\n' >"$2" 2>"$T/kcat-dump.log" || fail "kcat -C $1"
}

kafka_count() { # number of messages in TOPIC, as kcat sees them
    timeout 30 kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -e -q -f '\n' 2>/dev/null | wc -l
}
kafka_wait_count() { # TOPIC N SECONDS: until TOPIC holds at least N messages (SECONDS scaled)
    _end=$(( $(date +%s) + $(scaled "$3") ))
    while [ "$(kafka_count "$1")" -lt "$2" ]; do
        [ "$(date +%s)" -lt $_end ] || return 1
        sleep 0.5
    done
}
