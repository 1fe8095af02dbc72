#!/usr/bin/env bash
# soak.sh — memory soak: continuous inserts for SOAK_SECONDS through
# Postgres → `tributary run` (postgres source, mnist transform) → Redis
# Streams.  Prints tributary's RSS right after the snapshot and at the end
# (plus min/max while streaming) and the rows delivered; fails if RSS grew by
# more than SOAK_MAX_GROWTH_MB or if any row is missing from Redis.
#
# Outage phase (SOAK_OUTAGE_SECONDS > 0, on by default): a third of the way
# in, redis-server is stopped for that long while the inserts go on, so the
# backlog (rate x outage) is larger than everything the engine may hold
# (queue_size + 3 batches).  Checks that back-pressure holds (the queue sits
# at its capacity), that RSS during the outage stays within
# SOAK_MAX_GROWTH_MB of its value before it, that the replication slot stays
# active (wal_sender_timeout is 5 s: status updates keep the walsender
# alive), and that afterwards every
# row arrives.
#
# Usage (from a build directory or a built source tree, or set TRIB_BUILDDIR):
#   bench/soak.sh                       # 600 s, 200 rows/s, 20 s outage
#   SOAK_SECONDS=120 bench/soak.sh
# Env: SOAK_SECONDS (600), SOAK_RATE rows/s (200), SOAK_ROWS_PER_TX (20),
#      SOAK_SNAPSHOT_ROWS (5000), SOAK_OUTAGE_SECONDS (20; 0 = none),
#      SOAK_QUEUE_SIZE (1024), SOAK_BATCH_SIZE (256), SOAK_MAX_GROWTH_MB (16).
# Redis keeps every entry (about 3 KB per row: ~400 MB for the default run).
# Bounded: every wait has a timeout; servers and files go away on exit.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${TRIB_BUILDDIR:-}" ]; then # the current directory if it is a build dir
    if [ -x ./tributary ]; then TRIB_BUILDDIR=$PWD; else TRIB_BUILDDIR=$top; fi
fi
export TRIB_SRCDIR=$top TRIB_BUILDDIR
. "$top/tests/lib.sh"
. "$top/tests/runtime/redis_lib.sh"
export TRIBUTARY_PLUGIN_PATH="$TRIB_BUILDDIR/plugins:$TRIB_BUILDDIR/transforms"

SECS=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-200}
PER_TX=${SOAK_ROWS_PER_TX:-20}
SNAP=${SOAK_SNAPSHOT_ROWS:-5000}
OUTAGE=${SOAK_OUTAGE_SECONDS:-20}
QSIZE=${SOAK_QUEUE_SIZE:-1024}
BSIZE=${SOAK_BATCH_SIZE:-256}
GROWTH_MB=${SOAK_MAX_GROWTH_MB:-16}
STREAM=tf.public.mnist_train
# Under AddressSanitizer freed memory sits in its quarantine (up to 256 MB),
# so RSS says nothing about our memory: the RSS limits are not enforced.
asan=0
if ldd "$TRIB_BUILDDIR/tributary" 2>/dev/null | grep -q libasan ||
    nm "$TRIB_BUILDDIR/tributary" 2>/dev/null | grep -q __asan_init; then
    asan=1
    log "AddressSanitizer build: RSS is printed but its limits are not enforced"
fi

# ---- servers ------------------------------------------------------------------
# Redis with an append-only file (fsync every second) and a graceful stop, so
# that stopping it for the outage loses nothing it acknowledged.
redis_up() {
    mkdir -p "$T/redis-soak"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync everysec --dir "$T/redis-soak" --daemonize no >>"$T/redis.log" 2>&1 &
    REDIS_PID=$!; _pids="$_pids $REDIS_PID"
    wait_for 30 sh -c "redis-cli -p $REDIS_PORT ping | grep -q PONG" || fail "redis-server did not start"
}
command -v redis-server >/dev/null || fail "redis-server not installed"
REDIS_PORT=$(free_port); REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"; export REDIS_PORT REDIS_URL
start_pg
redis_up
# A short walsender timeout: the outage outlasts it four times, so the slot
# stays active only if tributary keeps sending status updates while blocked.
psql_q -c "ALTER SYSTEM SET wal_sender_timeout = '5s'" -c "SELECT pg_reload_conf()" >/dev/null

# Rows are identified by their first three pixel bytes (g, big-endian), the
# rest is a fixed random image: cheap to generate at a steady rate.
psql_q <<SQL
CREATE TABLE public.mnist_train (pixels BYTEA, labels SMALLINT);
CREATE TABLE public.mnist_test (pixels BYTEA, labels SMALLINT);
CREATE TABLE soak_base AS SELECT decode(string_agg(lpad(to_hex((i * 37 + 11) % 256), 2, '0'), ''
    ORDER BY i), 'hex') AS b FROM generate_series(3, 783) i;
CREATE FUNCTION px(g int) RETURNS bytea LANGUAGE sql STABLE AS
  \$\$ SELECT decode(lpad(to_hex(g), 6, '0'), 'hex') || b FROM soak_base \$\$;
CREATE PROCEDURE soak_insert(first int, secs float8, per_tx int, pause float8)
LANGUAGE plpgsql AS \$\$
DECLARE
  g int := first;
  t_end timestamptz := clock_timestamp() + secs * interval '1 second';
BEGIN
  WHILE clock_timestamp() < t_end LOOP
    INSERT INTO public.mnist_train SELECT px(i), i % 10 FROM generate_series(g, g + per_tx - 1) i;
    COMMIT;
    g := g + per_tx;
    PERFORM pg_sleep(pause);
  END LOOP;
END \$\$;
INSERT INTO public.mnist_train SELECT px(g), g % 10 FROM generate_series(1, $SNAP) g;
SQL

# ---- tributary ----------------------------------------------------------------
mport=$(free_port)
mnist_config "$T/soak.yaml"
printf 'queue_size: %s\nbatch_size: %s\nmetrics:\n  listen: 127.0.0.1:%s\n' \
    "$QSIZE" "$BSIZE" "$mport" >>"$T/soak.yaml"
"$TRIB" run "$T/soak.yaml" 2>"$T/run.log" &
pid=$!; _pids="$_pids $pid"

metric() { # metric NAME-REGEX: its value, 0 when unavailable
    curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null | awk -v re="$1" '$1 ~ re {print $2; f=1} END {if (!f) print 0}'
}
delivered() { metric '^tributary_records_total[{]stage="delivered"[}]$'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
alive() { kill -0 "$pid" 2>/dev/null || fail "tributary died"; }

n=0
while [ "$(delivered)" -lt "$SNAP" ]; do
    alive; n=$((n + 1)); [ $n -lt 1200 ] || fail "snapshot not delivered within 120 s"; sleep 0.1
done
sleep 1
rss0=$(rss_kb)
echo "soak: snapshot of $SNAP rows delivered; tributary RSS at start $(mb "$rss0") MB"

# ---- continuous inserts, RSS sampled every second --------------------------------
pause=$(awk -v p="$PER_TX" -v r="$RATE" 'BEGIN {printf "%.4f", p / r}')
psql_q -c "CALL soak_insert($((SNAP + 1)), $SECS, $PER_TX, $pause)" &
ins=$!; _pids="$_pids $ins"
: >"$T/samples"
sampler() {
    while kill -0 "$pid" 2>/dev/null; do
        echo "$(date +%s) $(rss_kb) $(metric '^tributary_queue_depth$') $(delivered)" >>"$T/samples"
        sleep 1
    done
}
sampler &
smp=$!; _pids="$_pids $smp"

if [ "$OUTAGE" -gt 0 ]; then
    sleep $((SECS / 3))
    alive
    rss_pre=$(rss_kb)
    t_down=$(date +%s)
    kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
    sleep "$OUTAGE"
    active=$(psql_q -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'tributary'")
    t_up=$(date +%s)
    redis_up
    awk -v a="$t_down" -v b="$t_up" '$1 >= a && $1 <= b' "$T/samples" >"$T/outage"
    rss_out=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$T/outage")
    qmax=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$T/outage")
    backlog=$(( RATE * OUTAGE ))
    echo "soak: outage: redis down ${OUTAGE}s (~$backlog rows inserted meanwhile; engine holds at most" \
         "$((QSIZE + 3 * BSIZE)))"
    echo "soak: outage: RSS before $(mb "$rss_pre") MB, max during $(mb "$rss_out") MB;" \
         "queue depth max $qmax of $QSIZE; slot active: $active"
    [ "$qmax" -ge "$QSIZE" ] || fail "the queue never filled during the outage (back-pressure not reached?)"
    [ "$active" = t ] || fail "the replication slot went inactive during the outage"
    [ $asan = 1 ] || [ $((rss_out - rss_pre)) -le $((GROWTH_MB * 1024)) ] \
        || fail "RSS grew by $(mb $((rss_out - rss_pre))) MB during the outage (limit $GROWTH_MB MB)"
fi

wait "$ins" || fail "the inserting session failed"
total=$(psql_q -c "SELECT count(*) FROM public.mnist_train")
n=0
while [ "$(delivered)" -lt "$total" ]; do
    alive; n=$((n + 1)); [ $n -lt 1800 ] || fail "only $(delivered) of $total rows delivered 180 s after the inserts"
    sleep 0.1
done
sleep 2
rss1=$(rss_kb)
deliv=$(delivered)
kill "$smp" 2>/dev/null || true
kill -TERM "$pid"
wait "$pid" || fail "tributary exited with status $? on SIGTERM"

# ---- results --------------------------------------------------------------------
# Every row g = 1..total must be in the stream (read back in pages with redis-cli).
entries=$(rcli XLEN "$STREAM")
last='-'; : >"$T/gs"
while :; do
    rcli --raw XRANGE "$STREAM" "$last" + COUNT 5000 >"$T/page"
    [ -s "$T/page" ] || break
    awk 'prev == "value" {split($0, p, ","); print p[1] * 65536 + p[2] * 256 + p[3]} {prev = $0}' \
        "$T/page" >>"$T/gs"
    id=$(grep -E '^[0-9]+-[0-9]+$' "$T/page" | tail -n1)
    [ -n "$id" ] || break
    [ "$last" = "($id" ] && break
    last="($id"
done
read -r distinct lo hi < <(sort -n -u "$T/gs" | awk 'NR == 1 {lo = $1} {n++; hi = $1} END {print n, lo, hi}')
read -r rss_min rss_max < <(awk 'NR == 1 {m = x = $2} $2 < m {m = $2} $2 > x {x = $2} END {print m, x}' \
    "$T/samples")
rate_eff=$(awk -v n="$((total - SNAP))" -v s="$SECS" 'BEGIN {printf "%.0f", n / s}')
echo "soak: ${SECS}s of inserts at ~$rate_eff rows/s: $total rows in Postgres, $deliv delivered" \
     "(metric), $entries entries in Redis, $distinct distinct rows, $((entries - distinct)) duplicates"
echo "soak: tributary RSS start $(mb "$rss0") MB, end $(mb "$rss1") MB" \
     "(min $(mb "$rss_min"), max $(mb "$rss_max") MB while streaming)"
[ "$distinct" = "$total" ] && [ "$lo" = 1 ] && [ "$hi" = "$total" ] \
    || fail "rows missing from Redis: $distinct distinct of $total (g $lo..$hi)"
[ $asan = 1 ] || [ $((rss1 - rss0)) -le $((GROWTH_MB * 1024)) ] \
    || fail "RSS grew by $(mb $((rss1 - rss0))) MB over the soak (limit $GROWTH_MB MB)"
echo "soak: passed"
