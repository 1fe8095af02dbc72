#!/usr/bin/env bash
# core_pipeline.sh — the pipeline end to end with the test source `gen`:
# every record arrives once and in order through `mnist` into the `file`
# sink; rows with NULL pixels are dropped with a warning; the position
# confirmed to the source is the last transaction's; SIGTERM on a held
# source flushes and exits 0; the json (base64/hex bytea) and raw converters;
# the status line drawn on a terminal.
. "$TRIB_SRCDIR/tests/lib.sh"

cat >"$T/p.yaml" <<Y
state_dir: $T/state
batch_size: 7
queue_size: 16
pipeline:
  source:
    plugin: gen
    count: 1000
    tx_size: 10
    null_every: 100
    commit_file: $T/committed
  transforms:
    - plugin: mnist
  sink:
    plugin: file
    path: $T/out.jsonl
Y
"$TRIB" run "$T/p.yaml" 2>"$T/run.log" || { cat "$T/run.log"; fail "run failed"; }
n=$(wc -l <"$T/out.jsonl")
[ "$n" = 990 ] || fail "expected 990 records (10 NULL rows dropped), got $n"
[ "$(cat "$T/committed")" = 10000 ] || fail "committed position $(cat "$T/committed") != 10000"
[ "$(grep -c "dropping a row of public.gen" "$T/run.log")" = 10 ] || fail "NULL rows not warned"
python3 - "$T/out.jsonl" <<'PY' || fail "content check"
import json, sys
prev = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    i = int(r["lsn"].split("/")[1], 16) - 1
    assert i > prev - 1, "order"
    prev = i + 1
    assert r["topic"] == "test.public.gen"
    assert r["key"] == str(i % 10), (r["key"], i)
    want = ",".join(str((i + j) % 256) for j in range(784))
    assert r["value"] == want, "value of row %d" % i
PY
grep -q "stopped: 1000 records captured" "$T/run.log" || fail "summary line"

# raw format and label column `label`
sed -e 's/    - plugin: mnist/    - plugin: mnist\n      format: raw/' -e 's/count: 1000/count: 20\n    label_field: label/' \
    -e "s|out.jsonl|raw.jsonl|" "$T/p.yaml" >"$T/raw.yaml"
"$TRIB" run "$T/raw.yaml" 2>"$T/run2.log" || { cat "$T/run2.log"; fail "raw run failed"; }
python3 - "$T/raw.jsonl" <<'PY' || fail "raw content check"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 20, len(rows)
for i, r in enumerate(rows):
    assert r["key"] == str(i % 10)
    assert [ord(c) for c in r["value"]] == [(i + j) % 256 for j in range(784)]
PY

# the file sink writes every byte so that a strict UTF-8 JSON reader takes the
# line back: well-formed UTF-8 as it is, any other byte (overlong forms,
# surrogates, code points above U+10FFFF, stray bytes) as \u00XX
PIXHEX=eda080c080f4908080e080aff08f8080c3a9e282acf09f9880225c0a097fffc241
sed -e 's/    - plugin: mnist/    - plugin: mnist\n      format: raw/' \
    -e "s/count: 1000/count: 3\n    pixels_hex: $PIXHEX/" -e "s|out.jsonl|utf8.jsonl|" "$T/p.yaml" >"$T/utf8.yaml"
"$TRIB" run "$T/utf8.yaml" 2>"$T/run_utf8.log" || { cat "$T/run_utf8.log"; fail "utf8 run failed"; }
python3 - "$T/utf8.jsonl" "$PIXHEX" <<'PY' || fail "file sink UTF-8 check"
import json, sys
pat = bytes.fromhex(sys.argv[2])
px = (pat * (784 // len(pat) + 1))[:784]
want = "".join(chr(ord(c) - 0xDC00) if 0xDC80 <= ord(c) <= 0xDCFF else c
               for c in px.decode("utf-8", "surrogateescape"))
assert "\u00e9" in want and "\u20ac" in want and "\U0001f600" in want
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="strict")]
assert len(rows) == 3, len(rows)
for r in rows:
    assert r["value"] == want, (r["value"][:40], want[:40])
PY

# json converter without transforms: Debezium envelope
sed -e '/transforms:/d' -e '/- plugin: mnist/d' -e "s|out.jsonl|env.jsonl|" -e 's/count: 1000/count: 3/' \
    "$T/p.yaml" >"$T/env.yaml"
"$TRIB" run "$T/env.yaml" 2>"$T/run3.log" || { cat "$T/run3.log"; fail "envelope run failed"; }
python3 - "$T/env.jsonl" <<'PY' || fail "envelope check"
import json, sys, base64
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3
v = json.loads(rows[1]["value"])
assert v["op"] == "c" and v["before"] is None
assert v["after"]["labels"] == 1 and v["after"]["id"] == 1
assert base64.b64decode(v["after"]["pixels"]) == bytes((1 + j) % 256 for j in range(784))
assert json.loads(rows[1]["key"]) == {"id": 1}
PY

# The pipeline's threads are named, and run thread_nice (default 10, at most
# 19) below the main thread, whose priority the broker client's threads keep.
nice_of() { sed 's/.*) //' "$1/stat" | awk '{print $17}'; }
check_threads() { # check_threads PID THREAD_NICE
    local base want t n seen=0
    base=$(nice_of "/proc/$1/task/$1")
    want=$((base + $2 > 19 ? 19 : base + $2))
    for t in /proc/"$1"/task/*; do
        case $(cat "$t/comm") in
        trib:source | trib:pipe | trib:send)
            n=$(nice_of "$t")
            [ "$n" = "$want" ] ||
                { kill "$1"; fail "thread $(cat "$t/comm"): nice $n, want $want (main $base)"; }
            seen=$((seen + 1)) ;;
        esac
    done
    [ $seen = 3 ] || { kill "$1"; fail "found $seen of the 3 named pipeline threads"; }
}

# SIGTERM while the source holds: clean exit 0, everything confirmed
# (and the Prometheus endpoint, scraped with curl, agrees with what was sent)
mport=$(free_port)
sed -e 's/count: 1000/count: 50\n    hold: true/' -e "s|out.jsonl|hold.jsonl|" "$T/p.yaml" >"$T/hold.yaml"
printf 'metrics:\n  listen: 127.0.0.1:%s\nthread_nice: 0\n' "$mport" >>"$T/hold.yaml"
rm -f "$T/committed"
"$TRIB" run "$T/hold.yaml" 2>"$T/run4.log" &
pid=$!
wait_for 10 test -s "$T/hold.jsonl" || fail "hold run produced nothing"
sleep 0.5
check_threads $pid 0
curl -sf "http://127.0.0.1:$mport/metrics" >"$T/metrics" || fail "metrics scrape"
grep -q '^tributary_records_total{stage="read"} 50$' "$T/metrics" || { cat "$T/metrics"; fail "read metric"; }
grep -q '^tributary_records_total{stage="delivered"} 50$' "$T/metrics" || fail "delivered metric"
grep -q '^tributary_records_total{stage="dropped"} 0$' "$T/metrics" || fail "dropped metric"
grep -q '^tributary_confirmed_position 500$' "$T/metrics" || fail "confirmed position metric"
grep -q '^tributary_delivery_latency_seconds_count 50$' "$T/metrics" || fail "latency histogram"
grep -q '^tributary_inflight_records 0$' "$T/metrics" || fail "inflight metric"
grep -q '^tributary_instance_records_total{instance="transforms\[0\] (mnist)",result="in"} 50$' "$T/metrics" \
    || fail "per-transform metric"
grep -q '^tributary_instance_records_total{instance="sink (file)",result="delivered"} 50$' "$T/metrics" \
    || fail "per-sink metric"
kill -TERM $pid
wait $pid || fail "SIGTERM exit status $?"
[ "$(cat "$T/committed")" = 500 ] || fail "committed after SIGTERM: $(cat "$T/committed")"

# The converter a sink gets when no transform set key and value: the JSON
# envelope (default) with bytea as base64, or hex (binary_handling); `raw`
# passes records through untouched.
conv_run() { # conv_run NAME SINK-LINES...: 2 gen records into $T/NAME.jsonl
    local name=$1; shift
    { printf 'pipeline:\n  source:\n    plugin: gen\n    count: 2\n  sink:\n    plugin: file\n'
      printf '    path: %s\n' "$T/$name.jsonl"
      for l in "$@"; do printf '    %s\n' "$l"; done; } >"$T/$name.yaml"
    "$TRIB" run "$T/$name.yaml" 2>"$T/$name.log" || { cat "$T/$name.log"; fail "converter run $name"; }
}
conv_run conv_default
conv_run conv_hex "converter: json" "binary_handling: hex"
conv_run conv_raw "converter: raw"
python3 - "$T" <<'PY' || fail "converter output"
import base64, json, sys
T = sys.argv[1]
def lines(n): return [json.loads(l) for l in open("%s/%s.jsonl" % (T, n))]
px = bytes(range(256)) * 3 + bytes(range(16))  # what gen puts in row 0
for name, enc in (("conv_default", lambda b: base64.b64encode(b).decode()), ("conv_hex", bytes.hex)):
    rows = lines(name)
    assert len(rows) == 2, (name, len(rows))
    assert json.loads(rows[0]["key"]) == {"id": 0}, rows[0]["key"]
    after = json.loads(rows[0]["value"])["after"]
    assert after["id"] == 0 and after["labels"] == 0, after
    assert after["pixels"] == enc(px), (name, after["pixels"][:40])
raw = lines("conv_raw")
assert [(r["key"], r["value"], r["op"]) for r in raw] == [(None, None, "c")] * 2, raw
PY

# On a terminal `run` keeps one status line up to date (rewritten in place)
# instead of logging a status every status_interval_ms; TRIBUTARY_NO_PROGRESS
# turns it off.
grep -v -e '^metrics:' -e '^  listen:' "$T/hold.yaml" | sed "s|hold.jsonl|tty.jsonl|" >"$T/tty.yaml"
tty_run() { # tty_run OUT [ENV...]: run under a pseudo-terminal (script(1)) until SIGTERM
    local out=$1; shift
    script -qfec "env $* timeout -s TERM $(scaled 3) $TRIB run $T/tty.yaml" /dev/null >"$out" 2>&1 || true
}
tty_run "$T/tty.out"
grep -q $'\r\033\[Klive: 50 captured, 50 delivered, 0 dropped, 0 in flight, [0-9]* rec/s, confirmed 0/1F4' \
    "$T/tty.out" || { cat -v "$T/tty.out"; fail "no status line on a terminal"; }
grep -q "stopped: 50 records captured" "$T/tty.out" || { cat -v "$T/tty.out"; fail "tty run did not stop cleanly"; }
tty_run "$T/notty.out" TRIBUTARY_NO_PROGRESS=1
! grep -q "live: " "$T/notty.out" || { cat -v "$T/notty.out"; fail "TRIBUTARY_NO_PROGRESS=1 still draws the status line"; }
grep -q "stopped: 50 records captured" "$T/notty.out" || { cat -v "$T/notty.out"; fail "no-progress run did not stop cleanly"; }

# A sink that acknowledges only when drain() is called (ABI 1.2; the test
# sink of gen.c): while the source holds and nothing is left to send, the core
# calls it, so every record is acknowledged and confirmed before any stop.
lport=$(free_port)
cat >"$T/lag.yaml" <<Y
state_dir: $T/state-lag
batch_size: 7
metrics:
  listen: 127.0.0.1:$lport
pipeline:
  source:
    plugin: gen
    count: 60
    tx_size: 10
    hold: true
    commit_file: $T/lag-committed
  sink:
    plugin: gen
    drain_file: $T/lag-drain
Y
"$TRIB" run "$T/lag.yaml" 2>"$T/lag.log" &
pid=$!
lag_done() { curl -sf "http://127.0.0.1:$lport/metrics" | grep -q '^tributary_confirmed_position 600$'; }
wait_for 10 lag_done || { kill $pid; fail "drain(): position 600 not confirmed while the source holds"; }
check_threads $pid 10
curl -sf "http://127.0.0.1:$lport/metrics" | grep -q '^tributary_records_total{stage="delivered"} 60$' \
    || { kill $pid; fail "drain(): not every record delivered"; }
kill -TERM $pid
wait $pid || fail "lag sink: SIGTERM exit status $?"
[ "$(cat "$T/lag-drain")" = "drain 60 flush 0" ] || fail "lag sink: $(cat "$T/lag-drain")"
[ "$(cat "$T/lag-committed")" = 600 ] || fail "lag sink: committed $(cat "$T/lag-committed")"
grep -q "stopping: flushing" "$T/run4.log" || fail "stop message"

# errors.tolerance: a transform failing (label not an integer column) stops the pipeline
cat >"$T/bad.yaml" <<Y
state_dir: $T/state
pipeline:
  source:
    plugin: gen
    count: 5
  transforms:
    - plugin: mnist
      label_field: pixels
  sink:
    plugin: file
    path: $T/bad.jsonl
Y
if "$TRIB" run "$T/bad.yaml" 2>"$T/run5.log"; then fail "failing transform should exit nonzero"; fi
grep -q "errors.tolerance: none" "$T/run5.log" || { cat "$T/run5.log"; fail "tolerance message"; }
printf 'errors:\n  tolerance: all\n  deadletter_topic: dlq\n' >>"$T/bad.yaml"
"$TRIB" run "$T/bad.yaml" 2>"$T/run6.log" || { cat "$T/run6.log"; fail "tolerance all run"; }
[ "$(grep -c '"topic":"dlq"' "$T/bad.jsonl")" = 5 ] || fail "dead-lettered records"
echo "core_pipeline: all checks passed"
