#!/usr/bin/env bash
# test_spf_suite.sh - the OpenSPF conformance suites (test/data/spf: RFC 7208 and the older
# RFC 4408 one) through the daemon's SPF check, by test/spf/run_suite.py: every scenario's
# zone on its own test DNS server, every test one request over one connection. Known
# failures are listed in test/data/spf/expected-failures*.txt; a failure not listed, or a
# listed test that passes, is "not ok". One "ok" line per suite when it is as expected.
# KEEP=1 keeps the work directory (zones, query logs, daemon logs).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
DATA=$TESTDIR/../data/spf

# suite NAME YAML EXPECTED-FAILURES
suite() {
    local name=$1 yml=$2 out=$WORK/$1.out rc=0 line summary xf=()
    [ -f "$3" ] && xf=(--expected-failures "$3")
    $PY "$TESTDIR/../spf/run_suite.py" "$yml" "$POLICYD" "$WORK/$name" "${xf[@]}" >"$out" 2>&1 || rc=$?
    while IFS= read -r line; do
        case $line in
        "not ok "*"# TODO expected failure"*) echo "# $name expected failure: ${line#not ok }" ;;
        "not ok "*) not_ok "spf $name: ${line#not ok }" ;;
        "ok "*"# UNEXPECTED PASS"*) not_ok "spf $name: ${line#ok }" ;;
        esac
    done <"$out"
    summary=$(grep -E '^SPF suite ' "$out" | tail -1)
    if [ "$rc" -eq 0 ] && [ -n "$summary" ]; then
        ok "$summary"
    else
        not_ok "${summary:-SPF suite $name: no summary} (run_suite.py exit status $rc)"
        [ -n "$summary" ] || tail -20 "$out"
    fi
}

suite rfc7208 "$DATA/rfc7208-tests.yml" "$DATA/expected-failures.txt"
suite rfc4408 "$DATA/rfc4408-tests.yml" "$DATA/expected-failures-4408.txt"
finish
