#!/bin/bash
# mnist2sql_basic.sh — mnist2sql on small generated IDX files: the exact
# file layout (CREATE line, one INSERT per line), loading both formats and
# both shapes into a private Postgres and getting every byte back, the
# reference's `head -5 | sed s/test/manual/` trick, --no-create, --limit,
# --only, --table-prefix, uncompressed input, and the command line.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/mnist2sql_lib.sh"

gen_idx "$T/in" 50 20 gz
gen_idx "$T/plain" 6 5 plain

"$M2S" --from "$T/in" --out "$T/out" 2>"$T/m2s.log" || fail "mnist2sql: $(cat "$T/m2s.log")"
grep -q 'wrote .*mnist_train.sql (50 rows, insert)' "$T/m2s.log" || fail "no summary"
[ "$(ls -A "$T/out" | sort | tr '\n' ' ')" = "mnist_test.sql mnist_train.sql " ] \
    || fail "unexpected files in out dir: $(ls -A "$T/out")"
[ "$(head -1 "$T/out/mnist_train.sql")" = "CREATE TABLE mnist_train (pixels BYTEA, labels SMALLINT);" ] \
    || fail "first line: $(head -1 "$T/out/mnist_train.sql")"
[ "$(wc -l <"$T/out/mnist_train.sql")" = 51 ] || fail "train should be 51 lines"
[ "$(wc -l <"$T/out/mnist_test.sql")" = 21 ] || fail "test should be 21 lines"

idx_rows "$T/in/train-images-idx3-ubyte.gz" "$T/in/train-labels-idx1-ubyte.gz" >"$T/want_train"
idx_rows "$T/in/t10k-images-idx3-ubyte.gz" "$T/in/t10k-labels-idx1-ubyte.gz" >"$T/want_test"
sql_rows "$T/out/mnist_train.sql" >"$T/got" || fail "bad insert syntax"
cmp -s "$T/want_train" "$T/got" || fail "insert file rows differ from the IDX data"

start_pg
db_rows() { # TABLE [pixels-col label-col] -> hex|label in load order
    psql_q -c "SELECT encode(${2:-pixels}, 'hex') || '|' || ${3:-labels} FROM $1 ORDER BY ctid"
}
psql_q -f "$T/out/mnist_train.sql" >/dev/null || fail "loading mnist_train.sql"
psql_q -f "$T/out/mnist_test.sql" >/dev/null || fail "loading mnist_test.sql"
db_rows mnist_train >"$T/got"; cmp -s "$T/want_train" "$T/got" || fail "mnist_train differs"
db_rows mnist_test >"$T/got"; cmp -s "$T/want_test" "$T/got" || fail "mnist_test differs"
[ "$(psql_q -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
      WHERE attrelid = 'mnist_train'::regclass AND attnum > 0 ORDER BY attnum" | tr '\n' ,)" \
    = "bytea,smallint," ] || fail "column types"

# the reference's trick: a new table with the first four test rows
head -5 "$T/out/mnist_test.sql" | sed s/test/manual/ | psql_q >/dev/null || fail "head -5 trick"
db_rows mnist_manual >"$T/got"
head -4 "$T/want_test" | cmp -s - "$T/got" || fail "mnist_manual differs"

# INSERTs are right whatever standard_conforming_strings says
PGOPTIONS="-c standard_conforming_strings=off" psql_q -c "CREATE TABLE scs (LIKE mnist_test)"
sed -n '2,$p' "$T/out/mnist_test.sql" | sed 's/INTO mnist_test/INTO scs/' \
    | PGOPTIONS="-c standard_conforming_strings=off" psql_q >/dev/null 2>"$T/scs.err" || fail "scs off"
db_rows scs >"$T/got"; cmp -s "$T/want_test" "$T/got" || fail "rows differ with scs off"

# COPY format, another prefix, loaded with psql -f
"$M2S" -q --from "$T/in" --out "$T/copy" --format copy --table-prefix cp || fail "copy"
[ "$(sed -n 2p "$T/copy/cp_train.sql")" = "COPY cp_train (pixels, labels) FROM stdin;" ] || fail "COPY line"
[ "$(tail -1 "$T/copy/cp_train.sql")" = '\.' ] || fail "COPY terminator"
sql_rows "$T/copy/cp_train.sql" | cmp -s "$T/want_train" - || fail "copy file rows differ"
psql_q -f "$T/copy/cp_train.sql" >/dev/null && psql_q -f "$T/copy/cp_test.sql" >/dev/null || fail "load copy"
db_rows cp_train >"$T/got"; cmp -s "$T/want_train" "$T/got" || fail "cp_train differs"
db_rows cp_test >"$T/got"; cmp -s "$T/want_test" "$T/got" || fail "cp_test differs"

# keyed shape, both formats
for fmt in insert copy; do
    "$M2S" -q --from "$T/in" --out "$T/k$fmt" --format $fmt --shape keyed --table-prefix k$fmt || fail "keyed $fmt"
    head -1 "$T/k$fmt/k${fmt}_test.sql" | grep -qx "CREATE TABLE k${fmt}_test (id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA);" \
        || fail "keyed CREATE: $(head -1 "$T/k$fmt/k${fmt}_test.sql")"
    psql_q -f "$T/k$fmt/k${fmt}_test.sql" >/dev/null || fail "load keyed $fmt"
    [ "$(psql_q -c "SELECT min(id) || '-' || max(id) FROM k${fmt}_test")" = 1-20 ] || fail "keyed ids"
    psql_q -c "SELECT encode(pixels, 'hex') || '|' || label FROM k${fmt}_test ORDER BY id" >"$T/got"
    cmp -s "$T/want_test" "$T/got" || fail "keyed $fmt rows differ"
done

# --no-create, --limit, --only
"$M2S" -q --from "$T/in" --out "$T/nc" --no-create --limit 7 --only test || fail "no-create"
[ ! -e "$T/nc/mnist_train.sql" ] || fail "--only test wrote the train file"
[ "$(wc -l <"$T/nc/mnist_test.sql")" = 7 ] || fail "--limit 7"
head -1 "$T/nc/mnist_test.sql" | grep -q '^INSERT INTO mnist_test ' || fail "--no-create first line"
psql_q -f "$T/nc/mnist_test.sql" >/dev/null || fail "append"
[ "$(psql_q -c 'SELECT count(*) FROM mnist_test')" = 27 ] || fail "appended rows"

# uncompressed IDX input
"$M2S" -q --from "$T/plain" --out "$T/po" || fail "plain input"
idx_rows "$T/plain/train-images-idx3-ubyte" "$T/plain/train-labels-idx1-ubyte" >"$T/want"
sql_rows "$T/po/mnist_train.sql" | cmp -s "$T/want" - || fail "plain input rows differ"

# command line
"$M2S" --help | grep -q -- '--digits-json' || fail "--help"
"$M2S" --version | grep -q '^mnist2sql' || fail "--version"
set +e
"$M2S" --format xml 2>"$T/e"; rc=$?
[ $rc = 2 ] && grep -q "format must be insert or copy" "$T/e" || fail "bad --format: rc=$rc $(cat "$T/e")"
"$M2S" --table-prefix 'x; DROP TABLE y' 2>"$T/e"; rc=$?
[ $rc = 2 ] && grep -q "table-prefix" "$T/e" || fail "bad prefix accepted"
"$M2S" --limit 0 2>/dev/null; [ $? = 2 ] || fail "--limit 0 accepted"
"$M2S" --bogus 2>"$T/e"; [ $? = 2 ] && grep -q -- "--bogus" "$T/e" || fail "unknown option"
set -e
log "ok"
