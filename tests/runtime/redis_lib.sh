# tests/runtime/redis_lib.sh — helpers shared by the redis_*.sh tests
# (sourced after tests/lib.sh; not a test itself).
#
#   rx_dump STREAM   one line per entry, read with redis-cli (interop check):
#                    id <TAB> key-hex <TAB> value-hex <TAB> op <TAB> lsn <TAB> snapshot
#                    <TAB> commit_lsn
#                    ("-" for an absent field).  redis-cli --no-raw prints every
#                    string quoted and escaped (\xHH, \n, \"), which Python's bytes
#                    literal syntax reads back exactly.
#   start_redis_aof  like start_redis, but durable (appendonly, fsync always), so
#                    a kill -9 loses nothing that Redis acknowledged.
#   restart_redis_aof [--kill]  stop (SIGTERM, or SIGKILL) and start it again
#                    on the same port with the same data directory.

cat >"$T/rx_parse.py" <<'PY'
import ast, re, sys
lines = sys.stdin.read().split("\n")
tok = re.compile(r'^\s*(\d+\)\s+)+"(.*)"$')
top = None
entries = []
for ln in lines:
    if not ln.strip() or ln.strip() == "(empty array)":
        continue
    m = tok.match(ln)
    if not m:
        sys.exit("unparsable redis-cli line: %r" % ln[:80])
    if top is None:
        top = ln.index(")")
    val = ast.literal_eval('b"' + m.group(2) + '"')
    if len(ln) > top and ln[top] == ")" and ln[:top].strip().isdigit():
        entries.append([val])
    else:
        entries[-1].append(val)
for e in entries:
    f = {}
    for i in range(1, len(e) - 1, 2):
        f.setdefault(e[i].decode("latin1"), e[i + 1])
    def g(name, hexed):
        if name not in f:
            return "-"
        return f[name].hex() if hexed else f[name].decode("latin1")
    print("\t".join([e[0].decode(), g("key", 1), g("value", 1), g("op", 0), g("lsn", 0),
                     g("snapshot", 0), g("commit_lsn", 0)]))
PY

rx_dump() { rcli --no-raw XRANGE "$1" - + | python3 "$T/rx_parse.py"; }

_redis_aof_args() {
    echo --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$T/redis-aof" --daemonize no
}
start_redis_aof() {
    command -v redis-server >/dev/null || { log "redis-server not installed"; exit 77; }
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    mkdir -p "$T/redis-aof"
    # shellcheck disable=SC2046
    redis-server $(_redis_aof_args) >>"$T/redis-aof.log" 2>&1 &
    REDIS_PID=$!; _pids="$_pids $REDIS_PID"
    wait_for 20 sh -c "redis-cli -p $REDIS_PORT ping | grep -q PONG" || fail "redis-server (aof) did not start"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export REDIS_PORT REDIS_URL
}
restart_redis_aof() {
    if [ "${1:-}" = --kill ]; then kill -9 "$REDIS_PID"; else kill "$REDIS_PID"; fi
    wait "$REDIS_PID" 2>/dev/null || true
    sleep "${REDIS_DOWN_SECONDS:-2}"
    start_redis_aof
}

# ---- Postgres side of the end-to-end tests -------------------------------------
# Tables shaped like mnist2sql's, and px(g): 784 bytes whose first three are g
# (big-endian), so each row can be identified in the stream by its value.
mnist_schema() {
    psql_q <<'SQL'
CREATE TABLE public.mnist_train (pixels BYTEA, labels SMALLINT);
CREATE TABLE public.mnist_test (pixels BYTEA, labels SMALLINT);
CREATE FUNCTION px(g int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT decode(lpad(to_hex(g), 6, '0')
                || string_agg(lpad(to_hex((g * 31 + i * 7) % 256), 2, '0'), '' ORDER BY i), 'hex')
  FROM generate_series(3, 783) i $$;
SQL
}
# mnist_insert TABLE FIRST LAST [PER_TX]: rows g = FIRST..LAST, PER_TX rows per transaction
mnist_insert() {
    _per=${4:-100}
    _g=$2
    while [ "$_g" -le "$3" ]; do
        _e=$((_g + _per - 1)); [ $_e -gt "$3" ] && _e=$3
        echo "INSERT INTO public.$1 SELECT px(g), g % 10 FROM generate_series($_g, $_e) g;"
        _g=$((_e + 1))
    done | psql_q
}
# mnist_config FILE: the reference pipeline config (postgres -> mnist -> redis)
mnist_config() {
    cat >"$1" <<Y
state_dir: $T/state
log_level: info
pipeline:
  source:
    plugin: postgres
    conninfo: "\${PG_CONNINFO}"
    slot: tributary
    publication: tributary
    tables: [public.mnist_train, public.mnist_test]
    snapshot: initial
    topic_prefix: tf
    status_interval_ms: 500
  transforms:
    - plugin: mnist
  sink:
    plugin: redis
    url: "\${REDIS_URL}"
    reconnect_max_ms: 500
Y
}
xlen() { rcli XLEN "$1"; }
# check_stream STREAM TABLE DUPS_OK: every row of TABLE is in STREAM, byte-exact
# (key = label, value = pixels as CSV), first occurrences in commit (g) order;
# DUPS_OK=0 requires exactly once.
check_stream() {
    rx_dump "$1" >"$T/$1.tsv"
    psql_q -F' ' -c "SELECT labels, encode(pixels, 'hex') FROM public.$2" >"$T/$2.rows"
    python3 - "$T/$1.tsv" "$T/$2.rows" "$3" <<'PY'
import sys
want = {}
for line in open(sys.argv[2]):
    label, hexpx = line.split()
    px = bytes.fromhex(hexpx)
    want[int.from_bytes(px[:3], "big")] = (label.encode(), ",".join(str(b) for b in px).encode())
order, seen, dups = [], set(), 0
for line in open(sys.argv[1]):
    _id, k, v, op, lsn, snap, clsn = line.rstrip("\n").split("\t")
    key, val = bytes.fromhex(k), bytes.fromhex(v)
    g = 0
    for b in val.split(b",")[:3]:
        g = g * 256 + int(b)
    assert g in want, "unknown row g=%d" % g
    assert (key, val) == want[g], "row g=%d differs (key %r)" % (g, key)
    if g in seen:
        dups += 1
        continue
    seen.add(g)
    order.append(g)
missing = sorted(set(want) - seen)
assert not missing, "%d rows missing, e.g. g=%s" % (len(missing), missing[:5])
assert order == sorted(order), "not in commit order"
assert sys.argv[3] == "1" or dups == 0, "%d duplicates" % dups
print("%s: %d rows, byte-exact, in commit order, %d duplicates" % (sys.argv[1].split("/")[-1], len(seen), dups))
PY
}
