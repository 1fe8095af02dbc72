#!/usr/bin/env bash
# secrets.sh — passwords given in conninfo, URLs or options never appear in
# logs or error messages, at any log level, for every plugin that takes one.
. "$TRIB_SRCDIR/tests/lib.sh"
start_pg
dead=$(free_port)   # nothing listens here
psql_q -c "CREATE TABLE s (id int primary key)"
check_log() { # check_log FILE SECRET
    if grep -q "$2" "$1"; then cat "$1"; fail "secret '$2' leaked into $1"; fi
}
base() { # base SINK-YAML → a config with that sink
    cat <<Y
state_dir: $T/state
log_level: trace
shutdown_timeout_ms: 500
pipeline:
  source:
    plugin: postgres
    conninfo: "$PG_CONNINFO password=PgSecret0042"
    tables: [public.s]
  sink:
$1
Y
}
run_briefly() { # run_briefly CONFIG LOG — run ~2 s, then SIGTERM
    "$TRIB" run "$1" >"$2" 2>&1 &
    local pid=$!
    sleep 2
    kill -TERM $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
}

# Postgres unreachable: the fatal error names the host, not the password
base "    plugin: file
    path: $T/out" | sed "s/port=$PGPORT/port=$dead/" >"$T/pg.yaml"
if "$TRIB" run "$T/pg.yaml" >"$T/pg.log" 2>&1; then fail "unreachable postgres should fail"; fi
grep -q "127.0.0.1" "$T/pg.log" || { cat "$T/pg.log"; fail "error should name the host"; }
check_log "$T/pg.log" PgSecret0042

base "    plugin: redis
    url: \"redis://:RedisSecret0042@127.0.0.1:$dead/0\"" >"$T/redis.yaml"
run_briefly "$T/redis.yaml" "$T/redis.log"
check_log "$T/redis.log" RedisSecret0042
check_log "$T/redis.log" PgSecret0042

if "$TRIB" plugins | grep -q "^kafka "; then
    base "    plugin: kafka
    bootstrap_servers: 127.0.0.1:$dead
    kafka:
      security.protocol: sasl_plaintext
      sasl.mechanism: PLAIN
      sasl.username: u
      sasl.password: KafkaSecret0042" >"$T/kafka.yaml"
    run_briefly "$T/kafka.yaml" "$T/kafka.log"
    check_log "$T/kafka.log" KafkaSecret0042
fi
if "$TRIB" plugins | grep -q "^mqtt "; then
    base "    plugin: mqtt
    url: tcp://127.0.0.1:$dead
    username: u
    password: MqttSecret0042" >"$T/mqtt.yaml"
    run_briefly "$T/mqtt.yaml" "$T/mqtt.log"
    check_log "$T/mqtt.log" MqttSecret0042
fi
# config errors never echo option values of secret options
base "    plugin: redis
    url: \"redis://:RedisSecret0042@127.0.0.1:$dead/0\"
    bogus: 1" >"$T/bad.yaml"
"$TRIB" check "$T/bad.yaml" >"$T/bad.log" 2>&1 && fail "bad config accepted"
check_log "$T/bad.log" RedisSecret0042
echo "secrets: no password in any log"
