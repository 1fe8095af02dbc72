#!/usr/bin/env bash
# kill -9 recovery test against mqtt (see crash_recovery.sh).
exec bash "$TRIB_SRCDIR/tests/runtime/crash_recovery.sh" mqtt
