#!/usr/bin/env bash
# run.sh SECONDS - run every libFuzzer target in build/fuzz for SECONDS each, with a corpus
# seeded from test/data (captured requests, shipped configuration). Prints ok/not ok lines.
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/../.."
secs=${1:-20}
rc=0
for bin in build/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus=build/fuzz/corpus/$name
    mkdir -p "$corpus"
    case $name in
    fuzz_request) cp test/data/requests/* "$corpus"/ ;;
    fuzz_config) cp etc/policyd.conf test/daemon/transcripts/*.conf "$corpus"/ ;;
    fuzz_spf) cp test/fuzz/seeds/spf/* "$corpus"/ ;;
    fuzz_dns) cp test/fuzz/seeds/dns/* "$corpus"/ ;;
    fuzz_table) cp test/fuzz/seeds/table/* "$corpus"/ ;;
    fuzz_report) cp test/fuzz/seeds/report/* "$corpus"/ ;;
    fuzz_deferral) cp test/fuzz/seeds/deferral/* "$corpus"/ ;;
    esac
    if "$bin" -seed=1 -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >"build/fuzz/$name.log" 2>&1; then
        execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "build/fuzz/$name.log" | grep -oE '[0-9]+$')
        echo "ok $name ($execs runs in ${secs}s)"
    else
        echo "not ok $name (see build/fuzz/$name.log)"
        tail -30 "build/fuzz/$name.log"
        rc=1
    fi
done
exit $rc
