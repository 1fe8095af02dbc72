# tests/runtime/kafka_interop.sh — the kafka plugin against clients nobody
# here wrote: kcat reads exactly the bytes our sink wrote, and our consumer
# reads exactly the bytes kcat wrote.  Single-partition topics keep the
# order deterministic, so the streams are compared byte for byte.
. "$TRIB_SRCDIR/tests/lib.sh"
command -v kcat >/dev/null || fail "kcat not installed (apt-get install kcat)"
DRV=$(driver "$TRIB_BUILDDIR/tests/internal/test_kafka")
MOCK=$TRIB_BUILDDIR/tests/kafka_mock
N=500

mkfifo "$T/mock.in"
"$MOCK" --brokers 1 --topic i.ours:1 --topic i.kcat:1 <"$T/mock.in" >"$T/mock.out" 2>"$T/mock.log" &
_pids="$_pids $!"
exec 3>"$T/mock.in"          # keep the mock's stdin open
wait_for 10 test -s "$T/mock.out" || fail "kafka_mock did not start"
BOOT=$(head -n1 "$T/mock.out")
case $BOOT in 127.0.0.1:*) ;; *) fail "mock bootstrap not on loopback: $BOOT" ;; esac
port=${BOOT##*:}
ss -ltn | awk '{print $4}' | grep -q ":$port\$" || fail "mock port $port not listening"
ss -ltn | awk '{print $4}' | grep ":$port\$" | grep -qv '^127\.0\.0\.1:' \
    && fail "mock listens beyond 127.0.0.1"

# ours -> kcat
"$DRV" produce "$BOOT" i.ours $N 2>"$T/produce.log" || fail "produce"
"$DRV" expect $N >"$T/expected"
timeout 30 kcat -b "$BOOT" -C -t i.ours -e -q -f '%k\t%s\n' >"$T/kcat.out" 2>"$T/kcat.log" \
    || fail "kcat -C"
cmp "$T/expected" "$T/kcat.out" || fail "kcat sees different bytes than we produced"

# kcat -> ours (kcat splits its input on newlines: text lines, with tabs)
for i in $(seq 1 200); do printf 'key-%d\tvalue %d \xc3\xa9\x01 end\n' "$i" "$i"; done >"$T/lines"
timeout 30 kcat -b "$BOOT" -P -t i.kcat -K "\t" <"$T/lines" 2>"$T/kcatp.log" || fail "kcat -P"
"$DRV" consume "$BOOT" i.kcat >"$T/ours.out" 2>"$T/consume.log" || fail "consume"
cmp "$T/lines" "$T/ours.out" || fail "our consumer reads different bytes than kcat wrote"
echo "kafka interop ok: $N records each way"
