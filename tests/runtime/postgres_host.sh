#!/usr/bin/env bash
# postgres_host.sh — the `postgres` source driven by a stand-in core
# (tests/internal/test_pgoutput_host) to control what the real core cannot
# be made to do on demand:
#   1. back-pressure: emit() refuses records for 4 s at a time while
#      wal_sender_timeout is 2 s; the source keeps the walsender alive (no
#      timeout, no reconnect) and loses nothing
#   2. nothing the core did not commit is confirmed: with commits withheld
#      the slot does not move and the changes are replayed on the next run
#   3. snapshot: always re-reads every start; never reads nothing
#   4. the walsender is killed in the middle of a large transaction: the
#      source reconnects, and the replayed transaction's changes that were
#      already emitted are skipped (every row exactly once)
#   5. names records repeat (topic, source names, column names) are shared
#      through trib_host.intern (ABI 1.3), snapshot and streamed alike; with a
#      host that says ABI 1.2 they are copied, and the records are the same
. "$TRIB_SRCDIR/tests/lib.sh"
HOST=$(driver "$TRIB_BUILDDIR/tests/internal/test_pgoutput_host")
SO=$TRIB_BUILDDIR/plugins/postgres/.libs/postgres.so
[ -x "$HOST" ] && [ -f "$SO" ] || fail "build test_pgoutput_host and postgres.la first"
start_pg
psql_q -c "ALTER SYSTEM SET wal_sender_timeout = '2s'" -c "SELECT pg_reload_conf()" >/dev/null
psql_q -c "CREATE TABLE bp (id int PRIMARY KEY, v text)" -c "INSERT INTO bp VALUES (0, 'zero')"
mkdir -p "$T/state"

count() { grep -c "$2" "$1" 2>/dev/null || true; }
wait_count() { # FILE PATTERN N
    for _i in $(seq 400); do [ "$(count "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done
    fail "expected $3 x '$2' in $(basename "$1"), have $(count "$1" "$2")"
}
run_host() { # OUT LOG key=value...: in the background, stopped by $T/stop
    local out=$1 log=$2; shift 2
    rm -f "$T/stop"
    HOST_STATE_DIR=$T/state HOST_STOP_FILE=$T/stop "$HOST" "$SO" conninfo="$PG_CONNINFO" \
        tables=bp "$@" >"$out" 2>"$log" &
    HOST_PID=$!; _pids="$_pids $HOST_PID"
}
stop_host() { touch "$T/stop"; wait "$HOST_PID" || fail "host exited $? ($(tail -n 3 "$1"))"; }
slot_lsn() { psql_q -c "SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = '$1'"; }

# ---- 1. back-pressure longer than wal_sender_timeout ---------------------------
HOST_RETRY_EVERY=2 HOST_RETRY_TIMES=4 run_host "$T/bp.out" "$T/bp.log" slot=bp1 snapshot=never
wait_count "$T/bp.log" "streaming from slot" 1
for i in 1 2 3 4; do psql_q -c "INSERT INTO bp VALUES ($i, 'v$i')"; done
wait_count "$T/bp.out" '"op":"c"' 4
stop_host "$T/bp.log"
grep -q "lost" "$T/bp.log" && fail "replication connection dropped under back-pressure: $(cat "$T/bp.log")"
grep -q "replication timeout" "$T/pg/server.log" && fail "walsender timed out under back-pressure"
python3 - "$T/bp.out" <<'PY' || fail "back-pressure content"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ids = [r["after"]["id"] for r in recs if r.get("op") == "c"]
assert ids == ["1", "2", "3", "4"], ids
PY
last=$(grep -o '"position":[0-9]*' "$T/bp.out" | tail -n 1 | cut -d: -f2)
[ "$(slot_lsn bp1)" -ge "$last" ] || fail "slot at $(slot_lsn bp1), last position $last"

# ---- 2. withheld commits are not confirmed; the next run replays ---------------
run_host "$T/nc0.out" "$T/nc0.log" slot=bp2 snapshot=never
wait_count "$T/nc0.log" "streaming from slot" 1
stop_host "$T/nc0.log"
start_lsn=$(slot_lsn bp2)
HOST_NO_COMMIT=1 run_host "$T/nc1.out" "$T/nc1.log" slot=bp2 snapshot=never status_interval_ms=100
wait_count "$T/nc1.log" "streaming from slot" 1
psql_q -c "INSERT INTO bp VALUES (10, 'uncommitted')"
psql_q -c "UPDATE bp SET v = 'uncommitted-b' WHERE id = 10"
wait_count "$T/nc1.out" '"op":"u"' 1
sleep 1
stop_host "$T/nc1.log"
[ "$(slot_lsn bp2)" = "$start_lsn" ] || fail "slot moved from $start_lsn to $(slot_lsn bp2) without commits"
run_host "$T/nc2.out" "$T/nc2.log" slot=bp2 snapshot=never
wait_count "$T/nc2.out" '"op":"u"' 1
stop_host "$T/nc2.log"
[ "$(count "$T/nc2.out" '"op":"c"')" = 1 ] || fail "replay: expected the insert once"
[ "$(slot_lsn bp2)" -gt "$start_lsn" ] || fail "slot did not advance after commits"

# ---- 3. snapshot modes -----------------------------------------------------------
n=$(psql_q -c "SELECT count(*) FROM bp")
for run in 1 2; do
    run_host "$T/al$run.out" "$T/al$run.log" slot=bp3 snapshot=always
    wait_count "$T/al$run.out" '"op":"r"' "$n"
    wait_count "$T/al$run.log" "streaming from slot" 1
    stop_host "$T/al$run.log"
    [ "$(count "$T/al$run.out" '"snap":2')" = 1 ] || fail "always: last row not flagged"
done
run_host "$T/nv.out" "$T/nv.log" slot=bp4 snapshot=never
wait_count "$T/nv.log" "streaming from slot" 1
stop_host "$T/nv.log"
[ "$(count "$T/nv.out" '"op":"r"')" = 0 ] || fail "never: snapshot rows emitted"

# ---- 4. connection cut in the middle of a transaction ---------------------------
psql_q -c "CREATE TABLE wide (id int PRIMARY KEY, pad text)"
HOST_RETRY_EVERY=4 run_host "$T/cut.out" "$T/cut.log" slot=bp5 snapshot=never tables=wide \
    status_interval_ms=200 reconnect_backoff_ms=100
wait_count "$T/cut.log" "streaming from slot" 1
psql_q -c "INSERT INTO wide SELECT i, repeat(md5(i::text), 3000) FROM generate_series(1, 60) i"
wait_count "$T/cut.out" '"op":"c"' 5
psql_q -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'bp5'" >/dev/null
wait_count "$T/cut.out" '"op":"c"' 60
sleep 1
stop_host "$T/cut.log"
grep -q "reconnected" "$T/cut.log" || fail "no reconnect after the walsender was killed"
grep -q "replayed after a reconnect: skipping" "$T/cut.log" || fail "the cut did not fall inside the transaction"
python3 - "$T/cut.out" <<'PY' || fail "cut transaction: rows missing or duplicated"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ids = [int(r["after"]["id"]) for r in recs if r.get("op") == "c"]
assert ids == list(range(1, 61)), ids
PY
# ---- 5. shared names (trib_host.intern), and an older host without it ------------
run_host "$T/in3.out" "$T/in3.log" slot=bp6 snapshot=always
wait_count "$T/in3.log" "streaming from slot" 1
psql_q -c "INSERT INTO bp VALUES (20, 'streamed')" -c "UPDATE bp SET v = 'changed' WHERE id = 20"
wait_count "$T/in3.out" '"op":"u"' 1
stop_host "$T/in3.log"
HOST_ABI_MINOR=2 run_host "$T/in2.out" "$T/in2.log" slot=bp6 snapshot=always
wait_count "$T/in2.log" "streaming from slot" 1
psql_q -c "INSERT INTO bp VALUES (21, 'streamed')" -c "UPDATE bp SET v = 'changed' WHERE id = 21"
wait_count "$T/in2.out" '"op":"u"' 1
stop_host "$T/in2.log"
python3 - "$T/in3.out" "$T/in2.out" <<'PY' || fail "shared names"
import json, sys
def load(f):
    return [r for r in map(json.loads, open(f)) if "op" in r]
new, old = load(sys.argv[1]), load(sys.argv[2])
for r in new:  # topic, 4 source names, every field name
    want = 5 + len(r.get("after", {})) + len(r.get("before", {}))
    assert r["shared"] == want, (r, want)
assert {r["op"] for r in new} == {"r", "c", "u"}, new
assert all(r["shared"] == 0 for r in old), old
strip = lambda r: {k: v for k, v in r.items() if k not in ("shared", "ts_ms", "snap")}
snap = lambda rs: {r["after"]["id"]: strip(r) for r in rs if r["op"] == "r"}
a, b = snap(new), snap(old)
assert all(a[k] == b[k] for k in a if k != "20"), (a, b)
PY
log "ok"
