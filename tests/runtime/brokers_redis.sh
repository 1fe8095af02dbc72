#!/usr/bin/env bash
# Cross-broker suite for redis (see brokers.sh).
exec bash "$TRIB_SRCDIR/tests/runtime/brokers.sh" redis
