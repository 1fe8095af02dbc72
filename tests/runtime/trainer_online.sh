#!/bin/bash
# tests/runtime/trainer_online.sh — online learning and live model reload
# through the real core and Redis Streams (records XADDed directly, the way
# the mnist transform writes them): `tributary train` with `online: true`
# fits, evaluates, then learns from records added later and checkpoints the
# model every `checkpoint_every` records; a `tributary predict` running
# meanwhile reloads each checkpoint without restarting; both stop cleanly on
# SIGTERM.  Also: a corrupt model file makes predict fail with a clear error.
. "$TRIB_SRCDIR/tests/lib.sh"
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$F/train-images-idx3-ubyte.gz" ] \
    || fail "$F: Fashion-MNIST not found; install the Debian package dataset-fashion-mnist"
gen() { /usr/bin/python3 "$TRIB_SRCDIR/tests/runtime/trainer_gen.py" "$F" "$@" | rcli --pipe >/dev/null; }

start_redis
gen train 0 2000 train
gen t10k 0 300 test
cat >"$T/t.yaml" <<Y
state_dir: $T/state
log_level: debug
pipeline:
  sink:
    plugin: redis
    url: "\${REDIS_URL}"
trainer:
  plugin: trainer
  train_topic: train
  test_topic: test
  predict_topic: live
  epochs: 2
  seed: 3
  stream_timeout_ms: 1000
  model: $T/m.model
  online: true
  checkpoint_every: 200
Y

"$TRIB" train "$T/t.yaml" >"$T/train.out" 2>"$T/train.log" &
train_pid=$!; _pids="$_pids $train_pid"
wait_for 60 grep -q "online: learning" "$T/train.log" || fail "online phase did not start"
grep -q "evaluation on test: 300 records" "$T/train.out" || fail "evaluation"
m0=$(stat -c %Y.%s "$T/m.model"); sleep 1.1   # mtime resolution safety

"$TRIB" predict "$T/t.yaml" >"$T/predict.out" 2>"$T/predict.log" &
pred_pid=$!; _pids="$_pids $pred_pid"
wait_for 20 grep -q "classifying new records" "$T/predict.log" || fail "predict did not start"

gen train 2000 500 train                      # 500 new labelled records
wait_for 30 sh -c "[ \$(grep -c 'online: checkpoint' '$T/train.log') -ge 2 ]" \
    || fail "no online checkpoints: $(tail -3 "$T/train.log")"
[ "$(stat -c %Y.%s "$T/m.model")" != "$m0" ] || fail "model file not rewritten"
wait_for 10 grep -q "reloaded model" "$T/predict.log" || fail "predict did not reload the model"
gen t10k 300 20 live
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN live.predictions) -ge 20 ]" \
    || fail "predictions after the reload"

# SIGTERM only once all 500 are learned (debug: one line per mini-batch; the
# last, partial one comes a second after the last record)
learned() { sed -n 's/.*online: batch of \([0-9]*\),.*/\1/p' "$T/train.log" | awk '{s += $1} END {print s + 0}'; }
all_learned() { [ "$(learned)" -ge 500 ]; }
wait_for 60 all_learned || fail "the trainer learned $(learned) of the 500 new records"
kill -TERM $train_pid
wait $train_pid || fail "train exited with $? after SIGTERM"
grep -q "online: checkpoint after 500 new records" "$T/train.log" || fail "final checkpoint"
kill -TERM $pred_pid
wait $pred_pid || fail "predict exited with $? after SIGTERM"

# a corrupt model: a clear error naming the file, exit status 1
printf 'garbage' | dd of="$T/m.model" bs=1 seek=100 conv=notrunc 2>/dev/null
if "$TRIB" predict "$T/t.yaml" >/dev/null 2>"$T/bad.log"; then fail "predict accepted a corrupt model"; fi
grep -q "m.model': checksum mismatch" "$T/bad.log" || fail "unclear error: $(cat "$T/bad.log")"
echo "trainer_online: passed"
