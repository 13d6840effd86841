# tap.sh - the result lines every test script prints: "ok NAME" / "not ok NAME" (counted by
# test/run-all.sh). Sourced by test/daemon/lib.sh and test/lab/lab.sh.
# SPDX-License-Identifier: MIT
failures=0
ok() { echo "ok $*"; }
not_ok() {
    echo "not ok $*"
    failures=$((failures + 1))
}
# check NAME CMD... - ok if the command succeeds
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
