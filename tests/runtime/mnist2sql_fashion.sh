#!/bin/bash
# mnist2sql_fashion.sh — the full data: mnist2sql on Debian's Fashion-MNIST
# (package dataset-fashion-mnist; FASHION_MNIST_DIR overrides the path),
# loaded into a private Postgres.  Checks 60,000 and 10,000 rows; the sum of
# all pixel bytes, the sum and histogram of labels and an MD5 of all images
# in order, computed in SQL and from the IDX files with python3; a sample of
# rows byte for byte; and the 10,000-row INSERT file loads to the same data.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/mnist2sql_lib.sh"

F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$F/train-images-idx3-ubyte.gz" ] \
    || fail "$F: Fashion-MNIST not found; install the Debian package dataset-fashion-mnist"

start=$(date +%s.%N)
"$M2S" -q --from "$F" --out "$T/copy" --format copy || fail "mnist2sql copy"
"$M2S" -q --from "$F" --out "$T/ins" --only test || fail "mnist2sql insert"
python3 -c "import sys; print('mnist2sql x2: %.2fs' % (float(sys.argv[2]) - float(sys.argv[1])))" \
    "$start" "$(date +%s.%N)" >&2

# expected facts straight from the IDX files
python3 - "$F" >"$T/want" <<'PY'
import gzip, hashlib, sys
d = sys.argv[1]
for name, pre in (("mnist_train", "train"), ("mnist_test", "t10k")):
    img = gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, pre)).read()[16:]
    lab = gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, pre)).read()[8:]
    hist = ",".join("%d:%d" % (k, lab.count(k)) for k in sorted(set(lab)))
    print("%s|%d|%d|%d|%s|%s" % (name, len(lab), sum(lab), sum(img),
                                 hashlib.md5(img).hexdigest(), hist))
    for i in (0, 1, 777, len(lab) // 2, len(lab) - 1):
        print("%s[%d]|%s|%d" % (name, i, img[i*784:(i+1)*784].hex(), lab[i]))
PY

start_pg
psql_q -f "$T/copy/mnist_train.sql" >/dev/null || fail "loading mnist_train.sql"
psql_q -f "$T/copy/mnist_test.sql" >/dev/null || fail "loading mnist_test.sql"
facts() { # TABLE [NAME]
    psql_q -c "SELECT '${2:-$1}|' || count(*) || '|' || sum(labels) || '|' ||
                      (SELECT sum(get_byte(pixels, i)) FROM $1, generate_series(0, 783) i) || '|' ||
                      md5(string_agg(pixels, '' ORDER BY ctid)) || '|' ||
                      (SELECT string_agg(labels || ':' || n, ',' ORDER BY labels)
                         FROM (SELECT labels, count(*) n FROM $1 GROUP BY labels) h)
               FROM $1"
    n=$(psql_q -c "SELECT count(*) FROM $1")
    for i in 0 1 777 $((n / 2)) $((n - 1)); do
        psql_q -c "SELECT '${2:-$1}[$i]|' || encode(pixels, 'hex') || '|' || labels
                   FROM $1 ORDER BY ctid OFFSET $i LIMIT 1"
    done
}
{ facts mnist_train; facts mnist_test; } >"$T/got"
diff "$T/want" "$T/got" >"$T/diff" || fail "database differs from the IDX files: $(cut -c1-200 "$T/diff")"
grep -q '^mnist_train|60000|' "$T/got" && grep -q '^mnist_test|10000|' "$T/got" || fail "row counts"

# the INSERT file (one statement per row) gives the same table
sed 's/mnist_test/ins_test/' "$T/ins/mnist_test.sql" | psql_q >/dev/null || fail "loading INSERTs"
facts ins_test mnist_test >"$T/got_ins"
grep '^mnist_test' "$T/want" | diff - "$T/got_ins" >/dev/null || fail "INSERT-loaded table differs"
log "ok: $(grep -v '\[' "$T/got" | cut -d'|' -f1-4 | tr '\n' ' ')"
