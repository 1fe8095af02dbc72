#!/usr/bin/env bash
# valgrind.sh — `make check-valgrind`: every C unit test (the
# tests/internal/test_* programs given as arguments) and representative
# runtime tests under valgrind's memcheck.  A definite leak or any memory
# error fails the run.  Library noise (not Tributary's) is suppressed in
# tests/valgrind.supp, each entry with the reason.
#
# The runtime tests get TRIB_WRAPPER and M2S_WRAPPER (see tests/lib.sh),
# so every `tributary` and `mnist2sql` they start runs under valgrind with
# its log in $TRIB_BUILDDIR/tests/valgrind-logs/; the logs are checked
# afterwards, so an error in a run that is expected to fail (exit nonzero)
# or that the test kills is caught too.  They also get TRIB_TIME_SCALE
# (default 10), which lengthens their timeouts.
#
# Env: VALGRIND (default valgrind), LIBTOOL (to run libtool wrappers),
# VALGRIND_RUNTIME_TESTS (default tests/runtime/core_pipeline.sh),
# TRIB_TIME_SCALE, TEST_NN_SCALE (default 5).
set -u
: "${TRIB_SRCDIR:?}" "${TRIB_BUILDDIR:?}"
VALGRIND=${VALGRIND:-valgrind}
logs=$TRIB_BUILDDIR/tests/valgrind-logs
rm -rf "$logs"
mkdir -p "$logs"
flags="--leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 --num-callers=40"
flags="$flags --suppressions=$TRIB_SRCDIR/tests/valgrind.supp --gen-suppressions=all"
# tributary is linked with jemalloc (configure): have memcheck replace its malloc too
flags="$flags --soname-synonyms=somalloc=*jemalloc*"
rc=0

run_unit() { # run_unit PROGRAM
    local name=${1##*/} start=$SECONDS
    # libtool --mode=execute finds the real binary behind a wrapper script
    if ${LIBTOOL:-false} --mode=execute true >/dev/null 2>&1; then
        set -- $LIBTOOL --mode=execute "$VALGRIND" $flags --log-file="$logs/$name.%p.vg" "$1"
    else
        set -- "$VALGRIND" $flags --log-file="$logs/$name.%p.vg" "$1"
    fi
    if "$@" >"$logs/$name.out" 2>&1; then
        echo "PASS: $name ($((SECONDS - start))s)"
    else
        echo "FAIL: $name (exit status $?; see $logs/$name.*)"
        rc=1
    fi
}

# test_nn trains on a fifth of its data sets (the same code paths; the plain
# and sanitizer runs train on all of them): 195 s → ~60 s under memcheck
export TEST_NN_SCALE=${TEST_NN_SCALE:-5}
for prog in "$@"; do
    run_unit "$prog"
done

export TRIB_TIME_SCALE=${TRIB_TIME_SCALE:-10}
# trainer_e2e.sh / trainer_mqtt.sh on a smaller slice: under memcheck the
# trainer learns ~60 records/s, and the code paths are the same
export TRAINER_E2E_TRAIN=${TRAINER_E2E_TRAIN:-1000} TRAINER_E2E_TEST=${TRAINER_E2E_TEST:-300}
export TRAINER_E2E_MIN_ACC=${TRAINER_E2E_MIN_ACC:-0.5}
# backpressure.sh (bench/soak.sh) bounds RSS growth; under memcheck RSS is
# mostly valgrind's shadow memory (leaks are memcheck's to find there)
export SOAK_MAX_GROWTH_MB=${SOAK_MAX_GROWTH_MB:-256}
for t in ${VALGRIND_RUNTIME_TESTS:-tests/runtime/core_pipeline.sh}; do
    name=$(basename "$t" .sh) start=$SECONDS
    export TRIB_WRAPPER="$VALGRIND $flags --log-file=$logs/$name.tributary.%p.vg"
    export M2S_WRAPPER="$VALGRIND $flags --log-file=$logs/$name.mnist2sql.%p.vg"
    export DRIVER_WRAPPER="$VALGRIND $flags --log-file=$logs/$name.driver.%p.vg"
    if bash "$TRIB_SRCDIR/$t" >"$logs/$name.out" 2>&1; then
        echo "PASS: $name under valgrind ($((SECONDS - start))s)"
    else
        echo "FAIL: $name under valgrind (see $logs/$name.out)"
        rc=1
    fi
done

# Errors and definite leaks in any run, including ones meant to exit nonzero.
# A run the test killed with SIGKILL has no summary: its log is searched for
# the first line of each kind of memcheck error report instead.
err_re='== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param'
err_re="$err_re|Mismatched free|Source and destination overlap|Argument '|Jump to the invalid)"
bad=$(grep -l -E "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|$err_re" "$logs"/*.vg 2>/dev/null)
if [ -n "$bad" ]; then
    echo "memcheck reported errors in:"
    for f in $bad; do
        echo "  $f"
        grep -E "ERROR SUMMARY|definitely lost|$err_re" "$f" | sed 's/^/    /'
    done
    rc=1
fi
[ $rc = 0 ] && echo "check-valgrind: all clean ($(ls "$logs"/*.vg | wc -l) processes checked)"
exit $rc
