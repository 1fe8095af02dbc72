#!/usr/bin/env bash
# postgres_source.sh — the `postgres` source end to end through `tributary run`
# into the core's `file` sink, against a throw-away Postgres 15:
#   1. snapshot rows (op r, last one flagged) then streamed c/u/d/t in commit
#      order, none missing or duplicated; NULL, bytea (1 MB too), numeric,
#      timestamps, bool, int2/8, unchanged TOAST, key-only old rows,
#      REPLICA IDENTITY FULL old rows, a table name needing quotes, a table
#      without a key; unpublished tables are not captured
#   2. an idle slot's confirmed position advances past unrelated WAL
#   3. restart: no second snapshot, changes made while stopped arrive once
#   4. Postgres restarted mid-stream: reconnect and resume
#   5. replica_identity: full; an interrupted snapshot (no state file) is redone
#   6. non-UTF-8 database (LATIN1) text arrives as UTF-8
#   7. fatal errors: missing table, unreachable server (password not logged),
#      missing publication, slot or publication dropped by someone else
#      while streaming
#   8. snapshot: initial_only: the snapshot (bytea, NULLs, two tables) is
#      delivered once, records as with `initial`, and the run exits 0 by
#      itself, leaving no slot, publication, state file or replica identity
#      change; SIGINT during it exits 0; a missing table is a named error
#   and binary vs text snapshot COPY giving the same records
. "$TRIB_SRCDIR/tests/lib.sh"
start_pg

OUT=$T/out.jsonl
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
wait_lines() { # FILE N: wait up to 30 s (times TRIB_TIME_SCALE) for at least N lines
    for _i in $(seq "$(scaled 300)"); do [ "$(lines "$1")" -ge "$2" ] && return 0; sleep 0.1; done
    fail "expected $2 lines in $(basename "$1"), have $(lines "$1")"
}
start_run() { # CONFIG LOG
    "$TRIB" run "$1" >"$2" 2>&1 &
    RUN_PID=$!; _pids="$_pids $RUN_PID"
}
stop_run() { # expect a clean exit
    kill -INT "$RUN_PID"
    wait "$RUN_PID" || fail "tributary run exited $? (log: $(tail -n 5 "$1"))"
}
slot_lsn() { psql_q -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$1'"; }

psql_q <<'SQL'
CREATE TABLE items (id serial PRIMARY KEY, name text, price numeric(12,3), ok bool,
                    ts timestamptz, tsn timestamp, data bytea, big text, small int2, huge int8);
CREATE TABLE mnist_train (id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA);
CREATE TABLE mnist_test (pixels BYTEA, labels SMALLINT);
ALTER TABLE mnist_test REPLICA IDENTITY FULL;
CREATE TABLE "Weird Table" (id int PRIMARY KEY, v text);
CREATE TABLE other_t (x int);
INSERT INTO items (name, price, ok, ts, tsn, data, small, huge) VALUES
  (E'one\ttab "q" \\ é', 12.345, true, '2024-01-02 03:04:05.678+02', '1999-12-31 23:59:59',
   '\x00ff10', -32768, 9223372036854775807);
INSERT INTO items (name) VALUES (NULL);
INSERT INTO items (name, big, data) SELECT 'toasted', string_agg(md5(i::text), ''),
  decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 400) i;
INSERT INTO mnist_train (label, pixels) SELECT i % 10, decode(lpad(to_hex(i), 8, '0'), 'hex')
  FROM generate_series(1, 5) i;
INSERT INTO mnist_test VALUES ('\x01', 1), ('\x02', 2), (NULL, 3);
INSERT INTO "Weird Table" VALUES (1, 'one');
SQL

cat >"$T/a.yaml" <<Y
state_dir: $T/state
pipeline:
  source:
    plugin: postgres
    conninfo: "\${PG_CONNINFO}"
    slot: s1
    publication: p1
    tables: [items, public.mnist_train, mnist_test, 'public."Weird Table"']
    topic_prefix: tf
    status_interval_ms: 300
    reconnect_backoff_ms: 200
    reconnect_backoff_max_ms: 1000
  sink:
    plugin: file
    path: $OUT
Y

# ---- 1. snapshot, then streaming ---------------------------------------------
start_run "$T/a.yaml" "$T/run1.log"
wait_lines "$OUT" 12
psql_q <<'SQL'
INSERT INTO items (id, name, price) VALUES (4, 'four', 4);
UPDATE items SET name = 'one-b' WHERE id = 1;
UPDATE items SET ok = false WHERE id = 3;
UPDATE items SET id = 40 WHERE id = 4;
DELETE FROM items WHERE id = 2;
BEGIN;
INSERT INTO mnist_train (label, pixels) VALUES (7, '\x0707'), (8, NULL);
UPDATE mnist_test SET labels = 9 WHERE labels = 1;
DELETE FROM mnist_test WHERE labels = 2;
COMMIT;
INSERT INTO other_t VALUES (1);
INSERT INTO "Weird Table" VALUES (2, 'two');
TRUNCATE mnist_train;
INSERT INTO items (id, name, data) SELECT 5, 'megabyte', decode(string_agg(lpad(to_hex(i % 256), 2, '0'), ''), 'hex')
  FROM generate_series(0, 1048575) i;
SQL
wait_lines "$OUT" 24
sleep 1
[ "$(lines "$OUT")" = 24 ] || fail "expected 24 records, got $(lines "$OUT")"

python3 - "$OUT" <<'PY' || fail "content check (phase 1)"
import base64, hashlib, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
U = "__debezium_unavailable_value"
def val(r): return json.loads(r["value"])
ops = [(r["op"], r["topic"]) for r in recs]
snap = ops[:12]
assert all(o == "r" for o, _ in snap), snap
assert [t for _, t in snap] == ["tf.public.items"] * 3 + ["tf.public.mnist_train"] * 5 + \
    ["tf.public.mnist_test"] * 3 + ["tf.public.Weird Table"], snap
flags = [val(r)["source"]["snapshot"] for r in recs[:12]]
assert flags == ["true"] * 11 + ["last"], flags
v0 = val(recs[0])
a = v0["after"]
assert a["id"] == 1 and a["name"] == 'one\ttab "q" \\ é', a["name"]
assert a["price"] in ("12.345", 12.345), a["price"]
assert a["ok"] is True and a["small"] == -32768 and a["huge"] == 9223372036854775807, a
assert a["ts"] == "2024-01-02 01:04:05.678+00", a["ts"]
assert a["tsn"] == "1999-12-31 23:59:59", a["tsn"]
assert base64.b64decode(a["data"]) == b"\x00\xff\x10"
assert a["big"] is None
assert v0["source"]["name"] == "tf" and v0["source"]["db"] == "postgres"
assert v0["source"]["schema"] == "public" and v0["source"]["table"] == "items"
assert json.loads(recs[0]["key"]) == {"id": 1}
assert all(v is None for k, v in val(recs[1])["after"].items() if k != "id")
a2 = val(recs[2])["after"]
md5s = "".join(hashlib.md5(str(i).encode()).hexdigest() for i in range(1, 401))
assert a2["big"] == md5s and base64.b64decode(a2["data"]) == bytes.fromhex(md5s)
assert recs[10]["key"] in (None, "null"), recs[10]["key"]
assert val(recs[10])["after"]["pixels"] is None and val(recs[10])["after"]["labels"] == 3
assert json.loads(recs[11]["key"]) == {"id": 1}

want = [("c", "items"), ("u", "items"), ("u", "items"), ("u", "items"), ("d", "items"),
        ("c", "mnist_train"), ("c", "mnist_train"), ("u", "mnist_test"), ("d", "mnist_test"),
        ("c", "Weird Table"), ("t", "mnist_train"), ("c", "items")]
got = [(o, t.split(".", 2)[2]) for o, t in ops[12:]]
assert got == want, got
s = [val(r) for r in recs[12:]]
assert s[0]["after"]["name"] == "four" and s[0]["before"] is None
assert s[1]["before"] is None and s[1]["after"]["name"] == "one-b"
assert s[2]["after"]["ok"] is False and s[2]["after"]["big"] == U and s[2]["after"]["data"] == U, s[2]["after"]
assert s[3]["before"] == {"id": 4}, s[3]["before"]
assert s[3]["after"]["id"] == 40 and json.loads(recs[15]["key"]) == {"id": 40}
assert s[4]["before"] == {"id": 2} and s[4]["after"] is None
tx = {v["source"]["txId"] for v in s[5:9]}
assert len(tx) == 1 and None not in tx, tx
assert s[6]["after"]["pixels"] is None and s[6]["after"]["label"] == 8
assert s[7]["before"] == {"pixels": base64.b64encode(b"\x01").decode(), "labels": 1}, s[7]["before"]
assert s[7]["after"]["labels"] == 9
assert s[8]["before"]["labels"] == 2 and s[8]["after"] is None
assert s[10]["before"] is None and s[10]["after"] is None
assert base64.b64decode(s[11]["after"]["data"]) == bytes(i % 256 for i in range(1048576))
lsns = [v["source"]["lsn"] for v in s]
assert all(isinstance(l, int) and l > 0 for l in lsns), lsns
assert lsns == sorted(lsns), lsns
for v in s:
    assert v["source"]["snapshot"] == "false" and v["source"]["ts_ms"] > 1600000000000
PY

# ---- 2. an idle slot follows unrelated WAL -------------------------------------
before=$(psql_q -c "SELECT pg_current_wal_lsn()")
psql_q -c "INSERT INTO other_t SELECT generate_series(1, 100)"
target=$(psql_q -c "SELECT pg_current_wal_lsn()")
ok=0
for _i in $(seq "$(scaled 100)"); do
    [ "$(psql_q -c "SELECT confirmed_flush_lsn >= '$target' FROM pg_replication_slots WHERE slot_name = 's1'")" = t ] && { ok=1; break; }
    sleep 0.1
done
[ $ok = 1 ] || fail "idle slot stuck at $(slot_lsn s1), WAL at $target (was $before)"
stop_run "$T/run1.log"
grep -q "snapshot delivered" "$T/run1.log" || fail "snapshot state not recorded"
[ -f "$T/state/s1.snapshot" ] || fail "no state file"

# ---- 3. restart: no second snapshot; changes made while stopped arrive once ----
psql_q -c "INSERT INTO items (id, name) VALUES (6, 'while stopped')"
start_run "$T/a.yaml" "$T/run2.log"
wait_lines "$OUT" 25
psql_q -c "INSERT INTO items (id, name) VALUES (7, 'after restart')"
wait_lines "$OUT" 26
sleep 1
stop_run "$T/run2.log"
[ "$(lines "$OUT")" = 26 ] || fail "restart: expected 26 records, got $(lines "$OUT")"
grep -q "snapshot of" "$T/run2.log" && fail "restart took a second snapshot"
python3 - "$OUT" <<'PY' || fail "content check (restart)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])][24:]
assert [(r["op"], json.loads(r["value"])["after"]["id"]) for r in recs] == [("c", 6), ("c", 7)], recs
PY

# ---- 4. Postgres restarts under a running pipeline -----------------------------
start_run "$T/a.yaml" "$T/run3.log"
for _i in $(seq "$(scaled 100)"); do grep -q "streaming from slot" "$T/run3.log" && break; sleep 0.1; done
stop_pg
sleep 1
restart_pg
psql_q -c "INSERT INTO items (id, name) VALUES (8, 'after pg restart')"
wait_lines "$OUT" 27
stop_run "$T/run3.log"
grep -q "reconnected to host=127.0.0.1" "$T/run3.log" || fail "no reconnect logged"
tail -n 1 "$OUT" | grep -q "after pg restart" || fail "row after the restart missing"

# ---- snapshot_format: binary (default) and text give the same records ----------
psql_q <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE kinds (id int PRIMARY KEY, b bool, a int4[], j jsonb, m mood, c char(4), u uuid,
                    f float8, d date, i interval, n numeric, x bytea, t text);
INSERT INTO kinds VALUES
  (1, true, '{1,NULL,3}', '{"k": [1, "\\u00e9"]}', 'ok', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   1.5e300, '2024-02-29', '1 day 02:03:04', 'NaN', '\x00', E'tab\there\nnl \\ é'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, false, '{}', '[]', 'sad', '', '00000000-0000-0000-0000-000000000000',
   -0.0, 'infinity', '-1 mon', '-1.50', '', '');
SQL
for fmt in binary text; do
    sed -e "s/slot: s1/slot: f_$fmt/" -e "s/publication: p1/publication: pf_$fmt/" \
        -e "s/tables: .*/tables: [kinds, items, mnist_test]\n    snapshot_format: $fmt/" \
        -e "s|$OUT|$T/fmt_$fmt.jsonl|" "$T/a.yaml" >"$T/fmt_$fmt.yaml"
    start_run "$T/fmt_$fmt.yaml" "$T/fmt_$fmt.log"
    wait_lines "$T/fmt_$fmt.jsonl" 3
    sleep 1
    stop_run "$T/fmt_$fmt.log"
done
python3 - "$T/fmt_binary.jsonl" "$T/fmt_text.jsonl" <<'PY' || fail "binary and text snapshots differ"
import json, sys
def load(p):
    out = []
    for l in open(p):
        r = json.loads(l)
        v = json.loads(r["value"])
        out.append((r["topic"], r["key"], v["after"]))
    return out
b, t = load(sys.argv[1]), load(sys.argv[2])
assert len(b) == len(t) >= 3 + 3, (len(b), len(t))
for x, y in zip(b, t):
    assert x == y, (x, y)
k = [a for topic, _, a in b if topic.endswith(".kinds")]
assert k[0]["b"] is True and k[0]["c"] == "ab  " and k[0]["t"] == "tab\there\nnl \\ é", k[0]
assert k[0]["m"] == "ok" and k[1]["b"] is None and k[1]["a"] is None and k[2]["x"] == ""
PY

# ---- 5. replica_identity: full; interrupted snapshot is redone -----------------
psql_q -c "CREATE TABLE mnist_full (pixels BYTEA, labels SMALLINT)" \
       -c "INSERT INTO mnist_full SELECT decode(lpad(to_hex(i), 4, '0'), 'hex'), i % 10 FROM generate_series(1, 50) i"
sed -e 's/slot: s1/slot: s2/' -e 's/publication: p1/publication: p2/' \
    -e "s/tables: .*/tables: [mnist_full]\n    replica_identity: full/" -e "s|$OUT|$T/out2.jsonl|" \
    "$T/a.yaml" >"$T/b.yaml"
start_run "$T/b.yaml" "$T/run4.log"
wait_lines "$T/out2.jsonl" 50
for _i in $(seq "$(scaled 100)"); do [ -f "$T/state/s2.snapshot" ] && break; sleep 0.1; done
psql_q -c "UPDATE mnist_full SET labels = 42 WHERE labels = 1"
wait_lines "$T/out2.jsonl" 55
stop_run "$T/run4.log"
[ "$(psql_q -c "SELECT relreplident FROM pg_class WHERE relname = 'mnist_full'")" = f ] \
    || fail "replica_identity: full not applied"
python3 - "$T/out2.jsonl" <<'PY' || fail "content check (identity full)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["op"] for r in recs] == ["r"] * 50 + ["u"] * 5
for r in recs[50:]:
    v = json.loads(r["value"])
    assert v["before"]["labels"] == 1 and v["after"]["labels"] == 42 and v["before"]["pixels"]
PY
# the state file is what says the snapshot was delivered: without it, redo it
rm -f "$T/state/s2.snapshot"
start_run "$T/b.yaml" "$T/run5.log"
wait_lines "$T/out2.jsonl" 105
stop_run "$T/run5.log"
grep -q "the last snapshot was interrupted" "$T/run5.log" || fail "interrupted snapshot not reported"
[ "$(tail -n 50 "$T/out2.jsonl" | grep -c '"op":"r"')" = 50 ] || fail "snapshot not redone"
[ -f "$T/state/s2.snapshot" ] || fail "state file not rewritten"

# a snapshot really cut short (the engine stops after 10 of 50 rows) is redone too
if [ -x "$TRIB_BUILDDIR/tests/internal/test_pgoutput_host" ]; then
    psql_q -c "SELECT pg_drop_replication_slot('s2')"
    rm -f "$T/state/s2.snapshot"
    HOST_STATE_DIR=$T/state HOST_STOP_AFTER=10 "$TRIB_BUILDDIR/tests/internal/test_pgoutput_host" \
        "$TRIB_BUILDDIR/plugins/postgres/.libs/postgres.so" conninfo="$PG_CONNINFO" slot=s2 \
        publication=p2 tables=mnist_full >"$T/host.out" 2>"$T/host.log" || fail "host run failed"
    [ "$(grep -c '"op":"r"' "$T/host.out")" = 10 ] || fail "host: expected 10 snapshot rows"
    [ -f "$T/state/s2.snapshot" ] && fail "state file written for an unfinished snapshot"
    : >"$T/out2.jsonl"
    start_run "$T/b.yaml" "$T/run6.log"
    wait_lines "$T/out2.jsonl" 50
    stop_run "$T/run6.log"
    grep -q "the last snapshot was interrupted" "$T/run6.log" || fail "cut snapshot not redone"
    [ "$(grep -c '"op":"r"' "$T/out2.jsonl")" = 50 ] || fail "redone snapshot incomplete"
fi

# ---- 6. a LATIN1 database: text is converted to UTF-8 ---------------------------
psql_q -c "CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
PGCLIENTENCODING=UTF8 psql_q -d latin -c "CREATE TABLE words (id int PRIMARY KEY, w text)" -c "INSERT INTO words VALUES (1, 'café')"
sed -e 's/slot: s1/slot: s3/' -e 's/publication: p1/publication: p3/' -e 's/tables: .*/tables: [words]/' \
    -e "s|$OUT|$T/out3.jsonl|" -e 's/dbname=postgres/dbname=latin/' "$T/a.yaml" >"$T/c.yaml"
sed -i "s|conninfo: .*|conninfo: \"host=127.0.0.1 port=$PGPORT dbname=latin user=postgres\"|" "$T/c.yaml"
start_run "$T/c.yaml" "$T/run7.log"
wait_lines "$T/out3.jsonl" 1
PGCLIENTENCODING=UTF8 psql_q -d latin -c "INSERT INTO words VALUES (2, 'naïve Ærø')"
wait_lines "$T/out3.jsonl" 2
stop_run "$T/run7.log"
python3 - "$T/out3.jsonl" <<'PY' || fail "content check (latin1)"
import json, sys
recs = [json.loads(json.loads(l)["value"])["after"]["w"] for l in open(sys.argv[1])]
assert recs == ["café", "naïve Ærø"], recs
PY

# ---- 7. fatal errors ------------------------------------------------------------
expect_fail() { # CONFIG LOG PATTERN...: run must fail with a log naming each pattern
    local cfg=$1 log=$2; shift 2
    timeout "$(scaled 60)" "$TRIB" run "$cfg" >"$log" 2>&1 && fail "$cfg: run succeeded"
    for p in "$@"; do grep -q -- "$p" "$log" || fail "$cfg: log lacks '$p': $(cat "$log")"; done
}
# bad options: `check` names the option's own line and column (a.yaml: slot
# on line 6, tables on line 8, reconnect_backoff_ms on line 11)
check_fail() { # check_fail SED-EXPR MESSAGE: a.yaml edited by SED-EXPR must fail `check` with MESSAGE
    sed -e "$1" "$T/a.yaml" >"$T/bad.yaml"
    "$TRIB" check "$T/bad.yaml" >"$T/bad.log" 2>&1 && fail "check accepted: $1"
    grep -qF -- "bad.yaml:$2" "$T/bad.log" || fail "check of '$1': want 'bad.yaml:$2', got: $(cat "$T/bad.log")"
}
check_fail 's/slot: s1/slot: Bad-Slot/' '6:11: source (postgres): slot "Bad-Slot": use 1-63 characters of [a-z0-9_]'
check_fail 's/tables: .*/tables: []/' "8:13: source (postgres): tables: list at least one table"
check_fail 's/tables: .*/tables: [items, a.b.c]/' '8:13: source (postgres): tables[1] "a.b.c": unexpected text after the table name: ".c"'
check_fail 's/tables: .*/tables: [items, public.items]/' "8:13: source (postgres): tables: public.items is listed twice"
check_fail 's/reconnect_backoff_ms: 200/reconnect_backoff_ms: 5/' \
    "11:27: source (postgres): reconnect_backoff_ms must be >= 10 and <= reconnect_backoff_max_ms"
check_fail 's/status_interval_ms: 300/status_interval_ms: 300\n    proto_version: 9/' \
    "11:20: source (postgres): proto_version: 9 is not 1..4"
check_fail 's/conninfo: .*/conninfo: "host=127.0.0.1 nosuchkey=1"/' \
    "5:15: source (postgres): conninfo: not a valid libpq connection string or URI"

sed -e 's/tables: .*/tables: [items, nosuch]/' -e 's/slot: s1/slot: s4/' "$T/a.yaml" >"$T/e1.yaml"
expect_fail "$T/e1.yaml" "$T/e1.log" 'nosuch' 'host=127.0.0.1'
badport=$(free_port)
sed "s|conninfo: .*|conninfo: \"host=127.0.0.1 port=$badport dbname=postgres user=postgres password=hunter2secret connect_timeout=5\"|" \
    "$T/a.yaml" >"$T/e2.yaml"
expect_fail "$T/e2.yaml" "$T/e2.log" "port=$badport" 'cannot connect'
grep -q hunter2secret "$T/e2.log" && fail "password logged"
sed -e 's/publication: p1/publication: nopub\n    create_publication: false/' -e 's/slot: s1/slot: s5/' \
    "$T/a.yaml" >"$T/e3.yaml"
expect_fail "$T/e3.yaml" "$T/e3.log" 'publication "nopub" does not exist'
# the slot is dropped by someone else while we stream
sed -e 's/reconnect_backoff_ms: 200/reconnect_backoff_ms: 1500/' -e 's/reconnect_backoff_max_ms: 1000/reconnect_backoff_max_ms: 3000/' "$T/a.yaml" >"$T/e4.yaml"
"$TRIB" run "$T/e4.yaml" >"$T/e4.log" 2>&1 &
E4=$!; _pids="$_pids $E4"
for _i in $(seq "$(scaled 100)"); do grep -q "streaming from slot" "$T/e4.log" && break; sleep 0.1; done
for _i in $(seq 50); do
    psql_q -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 's1' AND active_pid IS NOT NULL" >/dev/null
    psql_q -c "SELECT pg_drop_replication_slot('s1')" >/dev/null 2>&1 && break
    sleep 0.1
done
rc=0; for _i in $(seq "$(scaled 300)"); do kill -0 $E4 2>/dev/null || break; sleep 0.1; done
wait $E4 || rc=$?
[ $rc != 0 ] || fail "run did not fail when its slot was dropped: $(cat "$T/e4.log")"
grep -q 'slot "s1"' "$T/e4.log" || fail "slot drop error does not name the slot"
# the publication is dropped by someone else while we stream: fatal, named
sed -e 's/slot: s1/slot: s6/' -e 's/publication: p1/publication: p6/' \
    -e 's/tables: .*/tables: [items]\n    snapshot: never/' "$T/a.yaml" >"$T/e5.yaml"
"$TRIB" run "$T/e5.yaml" >"$T/e5.log" 2>&1 &
E5=$!; _pids="$_pids $E5"
for _i in $(seq "$(scaled 100)"); do grep -q "streaming from slot" "$T/e5.log" && break; sleep 0.1; done
psql_q -c "DROP PUBLICATION p6" -c "INSERT INTO items (id, name) VALUES (600, 'after drop')" >/dev/null
rc=0; for _i in $(seq "$(scaled 300)"); do kill -0 $E5 2>/dev/null || break; sleep 0.1; done
wait $E5 || rc=$?
[ $rc != 0 ] || fail "run did not fail when its publication was dropped: $(cat "$T/e5.log")"
grep -q 'publication "p6"' "$T/e5.log" || fail "publication drop error does not name it: $(cat "$T/e5.log")"

# ---- 8. snapshot: initial_only ---------------------------------------------------
psql_q <<'SQL'
CREATE TABLE once (id int PRIMARY KEY, name text, data bytea, n numeric);
INSERT INTO once SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'row ' || i END,
  CASE WHEN i % 4 = 0 THEN NULL ELSE decode(lpad(to_hex(i), 6, '0') || '00ff', 'hex') END,
  CASE WHEN i % 5 = 0 THEN NULL ELSE i * 1.5 END FROM generate_series(1, 2000) i;
CREATE TABLE once_nokey (pixels bytea, labels smallint);
INSERT INTO once_nokey VALUES ('\x0102', 1), (NULL, 2), ('\x', NULL);
SQL
sed -e 's/slot: s1/slot: s8/' -e 's/publication: p1/publication: p8/' \
    -e "s/tables: .*/tables: [once, once_nokey]\n    snapshot: initial_only\n    replica_identity: full/" \
    -e "s|state_dir: .*|state_dir: $T/state8|" -e "s|$OUT|$T/out8.jsonl|" "$T/a.yaml" >"$T/o.yaml"
# by itself: SIGKILL (not TERM, which would be a clean stop) if it hangs
rc=0; timeout -s KILL "$(scaled 60)" "$TRIB" run "$T/o.yaml" >"$T/run8.log" 2>&1 || rc=$?
[ $rc = 0 ] || fail "initial_only: exit $rc: $(tail -n 5 "$T/run8.log")"
grep -q "2003 delivered" "$T/run8.log" || fail "initial_only: not all delivered: $(tail -n 3 "$T/run8.log")"
[ "$(psql_q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's8'")" = 0 ] \
    || fail "initial_only created a replication slot"
[ "$(psql_q -c "SELECT count(*) FROM pg_publication WHERE pubname = 'p8'")" = 0 ] \
    || fail "initial_only created a publication"
[ -z "$(ls -A "$T/state8")" ] || fail "initial_only wrote state: $(ls -A "$T/state8")"
[ ! -e s8.snapshot ] || fail "initial_only wrote ./s8.snapshot"
[ "$(psql_q -c "SELECT relreplident FROM pg_class WHERE relname = 'once'")" = d ] \
    || fail "initial_only changed the replica identity"
# the same tables with `initial`, to compare the records with
sed -e 's/slot: s8/slot: s8i/' -e 's/publication: p8/publication: p8i/' \
    -e 's/snapshot: initial_only/snapshot: initial/' -e '/replica_identity: full/d' \
    -e "s|$T/out8.jsonl|$T/out8i.jsonl|" "$T/o.yaml" >"$T/oi.yaml"
start_run "$T/oi.yaml" "$T/run8i.log"
wait_lines "$T/out8i.jsonl" 2003
stop_run "$T/run8i.log"
python3 - "$T/out8.jsonl" "$T/out8i.jsonl" <<'PY' || fail "content check (initial_only)"
import base64, json, sys
def load(p):
    out = []
    for l in open(p):
        r = json.loads(l)
        v = json.loads(r.pop("value"))
        assert v["source"].pop("ts_ms") > 1600000000000 and v.pop("ts_ms") > 1600000000000
        r["value"] = v
        out.append(r)
    return out
once, init = load(sys.argv[1]), load(sys.argv[2])
assert once == init, next((a, b) for a, b in zip(once, init) if a != b) if len(once) == len(init) \
    else (len(once), len(init))
assert [r["op"] for r in once] == ["r"] * 2003
assert [r["value"]["source"]["snapshot"] for r in once] == ["true"] * 2002 + ["last"]
rows = [r["value"]["after"] for r in once if r["topic"] == "tf.public.once"]
assert sorted(a["id"] for a in rows) == list(range(1, 2001)), "missing or duplicated rows"
for a in rows:
    i = a["id"]
    assert a["name"] == (None if i % 3 == 0 else "row %d" % i), a
    want = None if i % 4 == 0 else bytes.fromhex("%06x00ff" % i)
    assert (a["data"] and base64.b64decode(a["data"])) == want, a
    assert a["n"] in ((None,) if i % 5 == 0 else ("%.1f" % (i * 1.5), i * 1.5)), a
nk = [(r["key"], r["value"]["after"]) for r in once if r["topic"] == "tf.public.once_nokey"]
assert [k for k, _ in nk] == [None] * 3 or [k for k, _ in nk] == ["null"] * 3, nk
assert [a for _, a in nk] == [{"pixels": "AQI=", "labels": 1}, {"pixels": None, "labels": 2},
                              {"pixels": "", "labels": None}], nk
PY
# SIGINT during the snapshot: a lock holds the COPY of the second table until
# after the signal, so the stop comes mid-snapshot; a one-off run has nothing
# to resume from, so it fails (exit 1, "incomplete"); nothing duplicated
psql_q -c "CREATE TABLE once_locked AS SELECT i AS id FROM generate_series(1, 10) i"
sed -e 's/tables: .*/tables: [once, once_locked]/' -e "s|$T/out8.jsonl|$T/out8s.jsonl|" \
    "$T/o.yaml" >"$T/os.yaml"
locks_on_once_locked() { # GRANTED(true|false): one such lock exists
    [ "$(psql_q -c "SELECT count(*) FROM pg_locks WHERE relation = 'once_locked'::regclass AND granted = $1")" = 1 ]
}
psql_q -c "BEGIN; LOCK TABLE once_locked; SELECT pg_sleep(120)" >/dev/null 2>&1 &
_pids="$_pids $!"
wait_for 10 locks_on_once_locked true || fail "lock on once_locked not taken"
start_run "$T/os.yaml" "$T/run8s.log"
wait_for 30 locks_on_once_locked false \
    || fail "initial_only: the snapshot never reached once_locked: $(cat "$T/run8s.log")"
kill -INT "$RUN_PID"
sleep 0.3
psql_q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null
rc=0; for _i in $(seq "$(scaled 300)"); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
wait "$RUN_PID" || rc=$?
[ $rc = 1 ] || fail "initial_only stopped by SIGINT: exit $rc, not 1: $(tail -n 5 "$T/run8s.log")"
grep -q "stopped before it was complete: the run is incomplete" "$T/run8s.log" \
    || fail "initial_only: stop not logged"
python3 - "$T/out8s.jsonl" <<'PY' || fail "content check (initial_only stopped)"
import json, sys
ids = [json.loads(json.loads(l)["value"])["after"]["id"] for l in open(sys.argv[1])]
# rows of `once` only, in order, each at most once (what was queued when the
# run failed is not delivered); the stop came before `once_locked`
assert ids == list(range(1, len(ids) + 1)) and len(ids) <= 2000, (len(ids), ids[-3:])
PY
[ "$(psql_q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's8'")" = 0 ] \
    || fail "initial_only (stopped) created a replication slot"
# a missing table is still a named error, and leaves nothing behind
sed -e 's/tables: .*/tables: [once, nosuch_once]/' -e 's/slot: s8/slot: s9/' "$T/o.yaml" >"$T/oe.yaml"
expect_fail "$T/oe.yaml" "$T/oe.log" 'table "nosuch_once"' 'does not exist' 'host=127.0.0.1'
[ "$(psql_q -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's9'")" = 0 ] \
    || fail "initial_only (failed) created a replication slot"

cat "$T/e5.log" >&2
cat "$T/e4.log" >&2
log "ok"
