#!/usr/bin/env bash
# backpressure.sh — bench/soak.sh in under a minute: Postgres → `tributary
# run` → Redis with continuous inserts, and Redis stopped for 12 s while
# ~2,400 rows are inserted (well over the 896 the engine may hold here:
# queue_size 512 + 3 batches of 128).  Passes when the queue sits at
# capacity during the outage (back-pressure), RSS stays within 16 MB of its
# value before it and over the run, the slot stays active with
# wal_sender_timeout at 5 s, and every row arrives afterwards.  See
# bench/soak.sh for the checks.
export SOAK_SECONDS=${SOAK_SECONDS:-30} SOAK_OUTAGE_SECONDS=${SOAK_OUTAGE_SECONDS:-12}
export SOAK_SNAPSHOT_ROWS=${SOAK_SNAPSHOT_ROWS:-2000} SOAK_QUEUE_SIZE=${SOAK_QUEUE_SIZE:-512}
export SOAK_BATCH_SIZE=${SOAK_BATCH_SIZE:-128}
exec bash "$TRIB_SRCDIR/bench/soak.sh"
