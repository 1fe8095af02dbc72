#!/bin/bash
# tests/runtime/trainer_mqtt.sh — the whole story over MQTT, with the shipped
# conf/mnist-mqtt.yaml: mnist2sql -> Postgres -> `tributary run` -> mosquitto
# -> `tributary train` -> `tributary predict`.
#
# Nobody subscribes before `tributary run`: the sink creates the default
# group's sessions before it first publishes to each topic, so `train` reads
# the whole training topic (and a malformed record published by mosquitto_pub
# is skipped and counted), evaluates on the whole test topic, and reaches the
# accuracy of the Redis end-to-end test on the same slice.  A second `train`
# finds the session emptied by the first and says why.  `predict` classifies
# rows inserted while it runs; their predictions, read back through the
# plugin's own consumer, are exactly those of the saved model.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/redis_lib.sh" # psql helpers only
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
NTRAIN=${TRAINER_E2E_TRAIN:-4000}; NTEST=${TRAINER_E2E_TEST:-1000}; NLIVE=100
MIN_ACC=${TRAINER_E2E_MIN_ACC:-0.78}
[ -f "$F/train-images-idx3-ubyte.gz" ] \
    || fail "$F: Fashion-MNIST not found; install the Debian package dataset-fashion-mnist"
command -v mosquitto_pub >/dev/null || fail "mosquitto_pub not installed (mosquitto-clients)"

start_pg
start_mosquitto
mnist2sql -q --from "$F" --out "$T/sql" --format copy --limit $NTRAIN || fail "mnist2sql"
psql_q -f "$T/sql/mnist_train.sql" >/dev/null || fail "loading mnist_train"
psql_q -f "$T/sql/mnist_test.sql" >/dev/null || fail "loading mnist_test"
psql_q -c "DELETE FROM mnist_test WHERE ctid NOT IN (SELECT ctid FROM mnist_test LIMIT $NTEST)"
NTRAIN=$(psql_q -c "SELECT count(*) FROM mnist_train"); NTEST=$(psql_q -c "SELECT count(*) FROM mnist_test")

export TRIB_STATE=$T/state TRIB_MODEL=$T/m.model TRIB_LOG_LEVEL=info
mport=$(free_port)
cp "$TRIB_SRCDIR/conf/mnist-mqtt.yaml" "$T/run.yaml"
printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$mport" >>"$T/run.yaml"
delivered() { curl -s "http://127.0.0.1:$mport/metrics" | awk '/stage="delivered"/{print $2}'; }

"$TRIB" run "$T/run.yaml" 2>"$T/run.log" &
run_pid=$!; _pids="$_pids $run_pid"
total=$((NTRAIN + NTEST))
wait_for $((60 + total / 500)) sh -c "[ \"\$(curl -s http://127.0.0.1:$mport/metrics | awk '/stage=\"delivered\"/{print \$2}')\" = $total ]" \
    || { tail -n 20 "$T/run.log"; fail "snapshot not delivered: $(delivered) of $total"; }
for t in mnist_train mnist_test; do
    grep -q "created subscriber session '.*-tributary-tf.public.$t' (group 'tributary')" "$T/run.log" \
        || fail "the sink created no session for tf.public.$t"
done
# a malformed record on the training topic is skipped and counted, not fatal
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V 5 -q 1 -t tf.public.mnist_train \
    -D publish user-property key 12 -m 1,2,3 || fail "mosquitto_pub"

# ---- train (nothing subscribed before the run) ---------------------------------------
rc=0; timeout $((120 + NTRAIN / 200)) "$TRIB" train "$T/run.yaml" >"$T/train.out" 2>"$T/train.log" || rc=$?
[ $rc = 0 ] || { cat "$T/train.out" "$T/train.log"; fail "tributary train exited with $rc"; }
cat "$T/train.out"
grep -q "read $NTRAIN training records" "$T/train.log" || { cat "$T/train.log"; fail "training read"; }
grep -q "epoch 5/5: $NTRAIN records" "$T/train.log" || fail "no progress line for epoch 5"
grep -q "malformed record.*label" "$T/train.log" || fail "malformed record not reported"
line=$(grep "^evaluation on tf.public.mnist_test" "$T/train.out") || fail "no evaluation line"
count=$(echo "$line" | sed -n 's/.*: \([0-9]*\) records.*/\1/p')
acc=$(echo "$line" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
[ "$count" = $NTEST ] || fail "evaluated $count records, want $NTEST"
python3 -c "import sys; sys.exit(0 if float('$acc') >= $MIN_ACC else 1)" \
    || fail "accuracy $acc < $MIN_ACC on $NTRAIN training rows"
[ "$(grep -c '^ *[0-9]: ' "$T/train.out")" = 10 ] || fail "confusion matrix"
[ -s "$T/m.model" ] || fail "no model file"
cp "$T/m.model" "$T/first.model"

# a second train: MQTT delivered each message to the session once
rc=0; timeout 60 "$TRIB" train "$T/run.yaml" >/dev/null 2>"$T/train2.log" || rc=$?
[ $rc = 1 ] || fail "a second train over the emptied session exited with $rc"
grep -q "held no message for 'tf.public.mnist_train'" "$T/train2.log" \
    && grep -q "no valid training records on topic tf.public.mnist_train" "$T/train2.log" \
    || { cat "$T/train2.log"; fail "the second train did not say why it read nothing"; }
cmp -s "$T/m.model" "$T/first.model" || fail "the failed train touched the model file"

# ---- predict: rows inserted while it runs --------------------------------------------
psql_q -F' ' -c "SELECT labels, encode(pixels, 'hex') FROM mnist_test ORDER BY ctid LIMIT $NLIVE" \
    >"$T/live.rows"
"$TRIB" predict "$T/run.yaml" --png "$T/png" >"$T/predict.out" 2>"$T/predict.log" &
pred_pid=$!; _pids="$_pids $pred_pid"
wait_for 20 grep -q "classifying new records" "$T/predict.log" || fail "predict did not start"
t0=$(date +%s.%N)
psql_q -c "INSERT INTO mnist_test SELECT pixels, labels FROM mnist_test ORDER BY ctid LIMIT $NLIVE"
wait_for 15 sh -c "[ \$(grep -c ': prediction [0-9] (p=' '$T/predict.out') -ge $NLIVE ]" \
    || fail "only $(grep -c ': prediction' "$T/predict.out") of $NLIVE rows classified within 15 s"
t1=$(date +%s.%N)
sleep 1   # the last prediction records are PUBACKed
kill -TERM $pred_pid
wait $pred_pid || fail "predict exited with $? after SIGTERM"
kill -TERM $run_pid
wait $run_pid || fail "tributary run exited with $?"
[ "$(grep -c ': prediction [0-9] (p=' "$T/predict.out")" = $NLIVE ] || fail "printed predictions"
[ "$(ls "$T/png" | grep -c '^pred[0-9]_.*\.png$')" = $NLIVE ] || fail "PNG files"
python3 -c "import sys; print('predict: %d rows inserted -> classified in %.2fs' % ($NLIVE, float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1"

# ---- the published predictions (read back through the default group's session,
#      which predict's first publish created) are those of the saved model ---------------
"$TRIB" consume "$T/run.yaml" tf.public.mnist_test.predictions --from-beginning --bounded \
    --format hex >"$T/preds.hex" 2>"$T/consume.log" || { cat "$T/consume.log"; fail "consume predictions"; }
PYTHONPATH="$TRIB_SRCDIR/tests/runtime" /usr/bin/python3 - "$T/m.model" "$T/live.rows" "$T/preds.hex" <<'PY' \
    || fail "predictions on MQTT differ from the saved model's"
import json, sys
import numpy as np
from trainer_model import load, probs
m = load(sys.argv[1])
live = [(int(l.split()[0]), bytes.fromhex(l.split()[1])) for l in open(sys.argv[2])]
want = [(lab, probs(m, px)) for lab, px in live]
preds = [l.rstrip("\n").split("\t") for l in open(sys.argv[3]) if l.strip()]
assert len(preds) == len(want), "%d predictions on the broker for %d rows" % (len(preds), len(want))
unused, agree = list(range(len(want))), 0
for k, v in preds:
    p = json.loads(bytes.fromhex(v))
    lab = int(bytes.fromhex(k))
    assert p["label"] == lab, (p, lab)
    match = [i for i in unused if want[i][0] == lab and
             np.allclose(want[i][1], p["probabilities"], atol=2e-5)]
    assert match, "prediction %r matches no inserted row" % p
    unused.remove(match[0])
    assert int(np.argmax(want[match[0]][1])) == p["prediction"]
    agree += p["prediction"] == lab
print("MQTT predictions: %d, each the saved model's output for one inserted row (accuracy %.3f)"
      % (len(preds), agree / len(preds)))
PY
echo "trainer_mqtt: passed"
