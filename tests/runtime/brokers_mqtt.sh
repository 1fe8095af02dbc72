#!/usr/bin/env bash
# Cross-broker suite for mqtt (see brokers.sh).
exec bash "$TRIB_SRCDIR/tests/runtime/brokers.sh" mqtt
