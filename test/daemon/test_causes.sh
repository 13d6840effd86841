#!/usr/bin/env bash
# test_causes.sh - the cause codes the sources can put on a diagnosis line, the table that
# documents them (checks/causes.c) and the manual page made from it (policyd-causes(7), built
# into $BUILD/man by `make man`) agree: a code used in a source but missing from the table or
# the page fails, and so does a documented code no source uses. A code is a string literal
# "CHECK.CAUSE" whose CHECK is a check of the registry (or "deadline" and "request", the evaluator's own).
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/../.."
. test/tap.sh
BUILD=${BUILD:-build/release}
PAGE=$BUILD/man/policyd-causes.7
TMP=$(mktemp -d /tmp/policyd-causes.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

prefixes="deadline|request|$(sed -n 's/^ *X(\([a-z0-9_]*\)).*/\1/p' checks/registry.c | paste -sd'|')"

# used_codes FILE... - the code literals in these sources, one per line, sorted.
used_codes() {
    grep -ohE "\"($prefixes)\.[a-z0-9_]+\"" "$@" | tr -d '"' | sort -u
}
# missing LIST1 LIST2 - the lines of LIST1 not in LIST2.
missing() { comm -23 "$1" "$2"; }

sources=$(ls checks/*.c policyd/*.c policyd/*/*.c protocol/*.c | grep -v '^checks/causes\.c$')
# shellcheck disable=SC2086
used_codes $sources >"$TMP/used"
sed -n 's/^ *{"\([a-z0-9_.]*\)",.*/\1/p' checks/causes.c >"$TMP/table.raw"
sort -u "$TMP/table.raw" >"$TMP/table"
sed -n 's/^\.It Sy \(.*\)$/\1/p' "$PAGE" 2>/dev/null | sort -u >"$TMP/page"

check "the registry's checks are known ($prefixes)" test "$(echo "$prefixes" | tr '|' '\n' | wc -l)" -ge 3
check "the sources use cause codes ($(wc -l <"$TMP/used"))" test "$(wc -l <"$TMP/used")" -ge 20
check "the manual page exists ($PAGE)" test -s "$PAGE"

for f in table page; do
    missing "$TMP/used" "$TMP/$f" >"$TMP/lack.$f"
    if [ -s "$TMP/lack.$f" ]; then
        not_ok "every code the sources use is in the $f; missing: $(paste -sd' ' "$TMP/lack.$f")"
    else
        ok "every code the sources use is in the $f"
    fi
done
missing "$TMP/table" "$TMP/used" >"$TMP/unused"
if [ -s "$TMP/unused" ]; then
    not_ok "every code in the table is used by a source; unused: $(paste -sd' ' "$TMP/unused")"
else
    ok "every code in the table is used by a source"
fi
check "the manual has exactly the table's codes" cmp -s "$TMP/table" "$TMP/page"
check "each code is in the table once" test "$(wc -l <"$TMP/table.raw")" -eq "$(wc -l <"$TMP/table")"
bad=$(grep -vE "^($prefixes)\.[a-z][a-z0-9_]*$" "$TMP/table" | paste -sd' ')
check "every code is CHECK.CAUSE with a known check${bad:+ (bad: $bad)}" test -z "$bad"
# Each entry has its answer, meaning and fix in the page (three paragraphs after .It).
entries=$(awk '/^\.It Sy /{n++} END {print n+0}' "$PAGE")
fixes=$(grep -c '^Fix:$' "$PAGE")
answers=$(grep -c '^Answer:$' "$PAGE")
check "every code in the page has its answer and fix ($entries, $answers, $fixes)" \
    test "$entries" -eq "$fixes" -a "$entries" -eq "$answers" -a "$entries" -gt 0

# The detector itself finds an undocumented code and an unused one (so the checks above can
# fail): a source with a made-up code, and the table without one of its codes.
printf 'check_call_action(call, "relay.no_such_cause", a, c, f);\n' >"$TMP/fake.c"
used_codes $sources "$TMP/fake.c" >"$TMP/used.fake"
check "an undocumented code is detected" test "$(missing "$TMP/used.fake" "$TMP/table")" = relay.no_such_cause
grep -v '^relay\.not_mynetworks$' "$TMP/used" >"$TMP/used.less"
check "an unused documented code is detected" test "$(missing "$TMP/table" "$TMP/used.less")" = relay.not_mynetworks

if command -v mandoc >/dev/null; then
    lint=$(mandoc -Tlint -Wwarning "$PAGE" 2>&1 | grep -v 'referenced manual not found' | grep -v 'mandoc.db')
    check "mandoc -Tlint: no warnings${lint:+ ($lint)}" test -z "$lint"
else
    ok "mandoc -Tlint # SKIP mandoc is not installed"
fi
[ "$failures" -eq 0 ]
