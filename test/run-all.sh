#!/usr/bin/env bash
# run-all.sh - the whole suite (make check): the layering check (test/layers.sh), then unit
# tests, daemon tests and the Postfix lab, for the release build and again for the
# AddressSanitizer + UndefinedBehaviorSanitizer build, then the Debian package, then bounded fuzzing. Every part prints
# "ok NAME" / "not ok NAME" lines (a skip is "ok NAME # SKIP reason") or "N passed, N failed";
# the last line of this script is the total: "N passed, N failed, N skipped".
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin" # postfix, postmap, smtp-sink
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/test/lsan.supp}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
passed=0
failed=0
skipped=0
failures=()
log=$(mktemp -d /tmp/policyd-suite.XXXXXX)

# tally NAME OUTPUT-FILE STATUS - add a part's results to the totals. A part's results are its
# "N passed, N failed[, N skipped]" lines if it has any, else its TAP-ish lines: "ok NAME",
# "not ok NAME", and "ok NAME # SKIP reason", which is skipped, not passed. A part that exits
# non-zero without a failure, or reports no result at all, counts one failure.
tally() {
    local name=$1 out=$2 status=$3 p=0 f=0 s=0
    if grep -qE '^[^ ]*: [0-9]+ passed, [0-9]+ failed' "$out"; then
        p=$(grep -oE '[0-9]+ passed' "$out" | awk '{s+=$1} END {print s+0}')
        f=$(grep -oE '[0-9]+ failed' "$out" | awk '{s+=$1} END {print s+0}')
        s=$(grep -oE '[0-9]+ skipped' "$out" | awk '{s+=$1} END {print s+0}')
    else
        s=$(grep -ciE '^ok .*#[[:space:]]*skip' "$out")
        p=$(($(grep -cE '^ok ' "$out") - s))
        f=$(grep -cE '^not ok ' "$out")
    fi
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok $name (exit status $status)" >>"$out"
    elif [ $((p + f + s)) -eq 0 ]; then
        f=1
        echo "not ok $name (reported no result)" >>"$out"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    [ "$f" -gt 0 ] && failures+=("$name")
    printf '%-48s %4d passed, %d failed, %d skipped\n' "$name" "$p" "$f" "$s"
    if [ "$f" -gt 0 ]; then
        grep -E '^not ok |FAILED|ERROR|runtime error' "$out" | head -20 | sed 's/^/    /'
    fi
    if [ "$s" -gt 0 ]; then
        grep -iE '^ok .*#[[:space:]]*skip' "$out" | head -5 | sed 's/^/    /'
    fi
}

# run_part NAME CMD... - run one part with its output kept in the log directory.
run_part() {
    local name=$1
    shift
    local out="$log/$(echo "$name" | tr '/ ' '__').out"
    "$@" >"$out" 2>&1
    tally "$name" "$out" $?
}

run_part "layers" bash test/layers.sh build/release

for flavour in release asan; do
    build=build/$flavour
    export POLICYD=$PWD/$build/policyd/policyd BUILD=$PWD/$build
    for t in "$build"/test/test_*; do
        [ -x "$t" ] || continue
        run_part "$flavour/unit/$(basename "$t")" "$t"
    done
    for t in test/daemon/test_*.sh test/lab/test_*.sh; do
        [ -f "$t" ] || continue
        run_part "$flavour/${t#test/}" bash "$t"
    done
done
# The Debian package once, not per flavour (it builds its own copy); it says "ok package # SKIP"
# where dpkg-buildpackage is missing.
run_part "package (build, lintian, man pages, units, install)" bash test/package/test_package.sh
if ls build/fuzz/fuzz_* >/dev/null 2>&1; then
    run_part "fuzz (${FUZZ_SECONDS}s per target)" bash test/fuzz/run.sh "$FUZZ_SECONDS"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed parts: ${failures[*]} (outputs in $log)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
