#!/bin/bash
# tests/runtime/trainer_kafka.sh — the trainer against the kafka plugin (a
# librdkafka mock cluster, records produced by kcat the way the mnist
# transform writes them: key = label, value = CSV pixels): `tributary train`
# reads the training topic (bounded), evaluates on the test topic through a
# new consumer group, and `tributary predict` classifies records produced
# after it joined its group and publishes the predictions to Kafka.
. "$TRIB_SRCDIR/tests/lib.sh"
command -v kcat >/dev/null || fail "kcat not installed (apt-get install kcat)"
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$F/train-images-idx3-ubyte.gz" ] \
    || fail "$F: Fashion-MNIST not found; install the Debian package dataset-fashion-mnist"
MOCK=$TRIB_BUILDDIR/tests/kafka_mock
[ -x "$MOCK" ] || fail "$MOCK not built (make check builds it)"

mkfifo "$T/mock.in"
"$MOCK" --brokers 1 --topic train:1 --topic test:1 --topic live:1 --topic live.predictions:1 \
    <"$T/mock.in" >"$T/mock.out" 2>"$T/mock.log" &
_pids="$_pids $!"
exec 3>"$T/mock.in"
wait_for 10 test -s "$T/mock.out" || fail "kafka_mock did not start"
BOOT=$(head -n1 "$T/mock.out")
export BOOT

lines() { # SET FIRST COUNT: "label|csv" lines
    /usr/bin/python3 - "$F" "$@" <<'PY'
import gzip, sys
d, s, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
img = gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, s)).read()[16:]
lab = gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, s)).read()[8:]
for i in range(first, first + n):
    print("%d|%s" % (lab[i], ",".join(map(str, img[i * 784:(i + 1) * 784]))))
PY
}
produce() { lines "$2" "$3" "$4" >"$T/p.txt"; timeout 30 kcat -b "$BOOT" -P -t "$1" -K '|' <"$T/p.txt" || fail "kcat -P $1"; }
produce train train 0 2000
produce test t10k 0 300

cat >"$T/k.yaml" <<Y
state_dir: $T/state
pipeline:
  sink:
    plugin: kafka
    bootstrap_servers: "\${BOOT}"
trainer:
  plugin: trainer
  train_topic: train
  test_topic: test
  predict_topic: live
  epochs: 3
  seed: 2
  stream_timeout_ms: 3000
  model: $T/m.model
Y
rc=0; timeout "$(scaled 120)" "$TRIB" train "$T/k.yaml" >"$T/train.out" 2>"$T/train.log" || rc=$?
[ $rc = 0 ] || fail "tributary train exited with $rc"
grep -q "epoch 3/3: 2000 records" "$T/train.log" || fail "training did not read 2000 records"
line=$(grep "^evaluation on test: 300 records" "$T/train.out") || fail "evaluation: $(cat "$T/train.out")"
acc=$(echo "$line" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.7 else 1)" || fail "accuracy $acc"
echo "kafka: $line"

"$TRIB" predict "$T/k.yaml" >"$T/predict.out" 2>"$T/predict.log" &
pred_pid=$!; _pids="$_pids $pred_pid"
wait_for 20 grep -q "classifying new records" "$T/predict.log" || fail "predict did not start"
sleep 4   # a new Kafka group starts at the end only once it has its partitions
produce live t10k 300 20
got=0
for _i in $(seq 1 60); do
    got=$(timeout 10 kcat -b "$BOOT" -C -t live.predictions -e -q -f '%k %s\n' 2>/dev/null | grep -c '"prediction":') || true
    [ "$got" -ge 20 ] && break
    sleep 0.5
done
[ "$got" = 20 ] || fail "$got of 20 predictions on live.predictions: $(tail -5 "$T/predict.log")"
kill -TERM $pred_pid
wait $pred_pid || fail "predict exited with $? after SIGTERM"
echo "trainer_kafka: passed"
