#!/bin/bash
# tests/runtime/kafka_conf.sh — conf/mnist-kafka.yaml is conf/mnist-redis.yaml
# with only the `sink:` section changed, and `tributary check` accepts it.
. "$TRIB_SRCDIR/tests/lib.sh"
C=$TRIB_SRCDIR/conf
[ -f "$C/mnist-redis.yaml" ] || fail "conf/mnist-redis.yaml missing"
outside_sink() { # the file without the lines of its `  sink:` block
    awk '/^  sink:/ {s=1; next} s && /^(  [^ ]|[^ ])/ {s=0} !s' "$1"
}
outside_sink "$C/mnist-redis.yaml" >"$T/redis.rest"
outside_sink "$C/mnist-kafka.yaml" >"$T/kafka.rest"
diff -u "$T/redis.rest" "$T/kafka.rest" || fail "mnist-kafka.yaml differs outside sink:"
grep -A3 '^  sink:' "$C/mnist-kafka.yaml" | grep -q 'plugin: kafka' || fail "sink is not kafka"
KAFKA_BOOTSTRAP=127.0.0.1:9 "$TRIB" check "$C/mnist-kafka.yaml" >"$T/check.log" 2>&1 \
    || { cat "$T/check.log"; fail "tributary check rejects conf/mnist-kafka.yaml"; }
echo "kafka_conf: passed"
