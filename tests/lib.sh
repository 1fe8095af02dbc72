# tests/lib.sh — shared harness for Tributary's integration tests.
#
# Starts real servers (Postgres, redis-server, mosquitto) on free loopback
# ports inside a private temp dir, and stops them on exit.  Source it:
#   . "$TRIB_SRCDIR/tests/lib.sh"
#   start_pg; start_redis
# Exit code 77 means "skipped" to automake; we never use it to hide a
# missing feature, only a missing server binary outside CI.

set -eu
: "${TRIB_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${TRIB_BUILDDIR:=$TRIB_SRCDIR}"
TRIB=${TRIB:-$TRIB_BUILDDIR/tributary}
T=$(mktemp -d "${TMPDIR:-/tmp}/trib-test.XXXXXX")
chmod 755 "$T"
# TRIB_WRAPPER="valgrind --error-exitcode=1 ..." runs every "$TRIB" under
# that command (words split as in the shell); `make check-valgrind` uses it.
# M2S_WRAPPER does the same for mnist2sql (tests/runtime/mnist2sql_lib.sh).
_wrap() { # _wrap WRAPPER PROGRAM NAME: print a script that runs PROGRAM under WRAPPER
    printf '#!/usr/bin/env bash\nexec %s %q "$@"\n' "$1" "$2" >"$T/$3-wrapped"
    chmod 755 "$T/$3-wrapped"
    echo "$T/$3-wrapped"
}
if [ -n "${TRIB_WRAPPER:-}" ]; then
    TRIB=$(_wrap "$TRIB_WRAPPER" "$TRIB" tributary)
fi
# DRIVER_WRAPPER does the same for the test drivers (tests/internal/*) that
# scripts start as D=$(driver PATH); they are libtool wrappers, so the
# command goes through `libtool --mode=execute`.
driver() { # driver PROGRAM: print PROGRAM, or a script running it under DRIVER_WRAPPER
    if [ -n "${DRIVER_WRAPPER:-}" ] && [ -x "$1" ]; then
        _wrap "bash $TRIB_BUILDDIR/libtool --mode=execute $DRIVER_WRAPPER" "$1" "$(basename "$1")"
    else
        echo "$1"
    fi
}
# TRIB_TIME_SCALE=N (an integer, default 1) multiplies how long the tests
# wait for something to happen (wait_for, and `scaled` in the tests' own
# timeouts); `make check-valgrind` sets it, since memcheck runs tributary
# 20-50 times slower.  It only lengthens upper bounds: a passing test takes
# no longer.
TRIB_TIME_SCALE=${TRIB_TIME_SCALE:-1}
scaled() { echo $(( $1 * TRIB_TIME_SCALE )); }
_pids=""
_pg_data=""

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
    rc=$?
    for p in $_pids; do kill "$p" 2>/dev/null || true; done
    if [ -n "$_pg_data" ]; then
        _pg_run pg_ctl -D "$_pg_data" -m immediate stop >/dev/null 2>&1 || true
    fi
    for p in $_pids; do
        for _i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null || true
    done
    if [ $rc -ne 0 ] && [ -d "$T" ]; then
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done >&2
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

wait_for() { # wait_for SECONDS CMD... (SECONDS times TRIB_TIME_SCALE)
    _n=$(( $1 * 10 * TRIB_TIME_SCALE )); shift
    while [ $_n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; _n=$((_n-1)); done
    return 1
}

# ---- Postgres ---------------------------------------------------------------
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
_pg_user=$(id -un)
_pg_run() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u nobody -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}
start_pg() {
    [ -x "$PG_BIN/initdb" ] || { log "postgres not installed"; exit 77; }
    PGPORT=$(free_port)
    _pg_data=$T/pg
    mkdir -p "$_pg_data"
    [ "$(id -u)" = 0 ] && chown nobody "$_pg_data" "$T" && _pg_user=nobody
    _pg_run initdb -D "$_pg_data" -U postgres -A trust --no-sync >"$T/initdb.log" 2>&1 \
        || { cat "$T/initdb.log"; fail "initdb"; }
    cat >>"$_pg_data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$_pg_data'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
fsync = off
synchronous_commit = off
full_page_writes = off
wal_sender_timeout = 60s
CONF
    _pg_run pg_ctl -D "$_pg_data" -l "$_pg_data/server.log" -w -t 60 start >/dev/null \
        || { cat "$_pg_data/server.log"; fail "pg_ctl start"; }
    PGHOST=127.0.0.1; PGUSER=postgres; PGDATABASE=postgres
    export PGHOST PGPORT PGUSER PGDATABASE
    PG_CONNINFO="host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres"
    export PG_CONNINFO
}
stop_pg() { _pg_run pg_ctl -D "$_pg_data" -m fast -w stop >/dev/null; }
restart_pg() { _pg_run pg_ctl -D "$_pg_data" -l "$_pg_data/server.log" -w -t 60 start >/dev/null; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# ---- Redis ------------------------------------------------------------------
start_redis() {
    command -v redis-server >/dev/null || { log "redis-server not installed"; exit 77; }
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    mkdir -p "$T/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$T/redis" --daemonize no >"$T/redis.log" 2>&1 &
    REDIS_PID=$!; _pids="$_pids $REDIS_PID"
    wait_for 10 redis-cli -p "$REDIS_PORT" ping || fail "redis-server did not start"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export REDIS_PORT REDIS_URL
}
stop_redis() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# ---- Mosquitto --------------------------------------------------------------
start_mosquitto() {
    MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    [ -x "$MOSQ" ] || { log "mosquitto not installed"; exit 77; }
    MQTT_PORT=${MQTT_PORT:-$(free_port)}
    mkdir -p "$T/mosq"; chmod 777 "$T/mosq"
    cat >"$T/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $T/mosq/
max_queued_messages 0
max_inflight_messages 0
CONF
    "$MOSQ" -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
    MOSQ_PID=$!; _pids="$_pids $MOSQ_PID"
    wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" \
        || fail "mosquitto did not start on port $MQTT_PORT"
    MQTT_URL="tcp://127.0.0.1:$MQTT_PORT"
    export MQTT_PORT MQTT_URL
}
stop_mosquitto() { kill "$MOSQ_PID"; wait "$MOSQ_PID" 2>/dev/null || true; }
