#!/usr/bin/env bash
# Cross-broker suite for kafka (see brokers.sh).
exec bash "$TRIB_SRCDIR/tests/runtime/brokers.sh" kafka
