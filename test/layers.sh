#!/usr/bin/env bash
# layers.sh [BUILD_DIR] - the layering of the sources, checked (run by test/run-all.sh):
#   includes point down  every #include "..." of a project header names a header in the same
#                        layer or in a layer of lower rank; siblings (same rank) do not include
#                        each other; a layer that sees a lower one only through an interface
#                        (INTERFACES below) includes nothing else of it;
#   calls point down     the same rank rule for the symbols each object takes from another
#                        (nm on BUILD_DIR's objects, from the top of the tree, default
#                        build/release: run make first);
#   no object cycle      the graph "object A uses a symbol defined in object B" has no strongly
#                        connected component of more than one object; each one found is printed
#                        with the symbols that make it.
# Prints each violation, then one ok / not ok line per rule; exits 1 if any rule fails.
# test/ is exempt (a test may include what it tests). A cycle is a design bug: move the piece
# both sides need one layer down (STYLE.md, "Layers").
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build/release}

# The layers: a folder (every .c/.h/.def directly in it) or a single file, its layer, the rank.
# A file may use its own layer and layers of lower rank; equal ranks are siblings.
LAYER_TABLE='
policyd/main.c    main      6
policyd/doctor    doctor    5
policyd/report    report    5
checks            checks    5
checks/check.h    core      4
policyd           core      4
policyd/mail      mail      3
policyd/maps      maps      2
policyd/dns       dns       2
policyd/store     store     2
protocol          protocol  1
policyd/lib       lib       0
'
# Narrow interfaces: LAYER sees LOWER only through these headers (includes only).
# The checks see the core through the interface it offers them, the configuration, and the
# offload threads (blocking file reads off the loop).
INTERFACES='
checks    core    checks/check.h policyd/config.h policyd/offload.h
'

declare -A LAYER RANK IFACE
while read -r path layer rank; do
    [ -n "$path" ] || continue
    LAYER[$path]=$layer
    RANK[$layer]=$rank
done <<<"$LAYER_TABLE"
while read -r from to headers; do
    [ -n "$from" ] && IFACE[$from:$to]=" $headers "
done <<<"$INTERFACES"

# layer_of FILE - the layer of a project file (its own entry, else its folder's) in REPLY, or ""
layer_of() {
    REPLY=${LAYER[$1]:-${LAYER[${1%/*}]:-}}
}

# may_use FROM TO [HEADER] - 0 if layer FROM may use layer TO (through HEADER, for an include)
may_use() {
    local from=$1 to=$2 header=${3:-}
    [ "$from" = "$to" ] && return 0
    [ "${RANK[$from]}" -gt "${RANK[$to]}" ] || return 1
    [ -z "$header" ] || [ -z "${IFACE[$from:$to]:-}" ] || [[ ${IFACE[$from:$to]} == *" $header "* ]]
}

failed=0

# 1. includes
bad=0
sources=$(find protocol checks policyd \( -name '*.[ch]' -o -name '*.def' \) | sort)
for f in $sources; do
    layer_of "$f"
    from=$REPLY
    if [ -z "$from" ]; then
        echo "$f: in no layer (add its folder to LAYER_TABLE in test/layers.sh)"
        bad=$((bad + 1))
        continue
    fi
    while IFS=: read -r line header; do
        if [ -f "$header" ]; then
            target=$header
        elif [ -f "${f%/*}/$header" ]; then
            target=$(realpath -m --relative-to=. "${f%/*}/$header")
        else
            continue # not a project header
        fi
        case $target in test/*) continue ;; esac
        layer_of "$target"
        to=$REPLY
        if [ -z "$to" ]; then
            echo "$f:$line: includes $header (layer $from -> a file in no layer)"
            bad=$((bad + 1))
        elif ! may_use "$from" "$to" "$target"; then
            why=
            [ -n "${IFACE[$from:$to]:-}" ] && why="; of $to, $from may include only${IFACE[$from:$to]% }"
            echo "$f:$line: includes $header (layer $from -> layer $to$why)"
            bad=$((bad + 1))
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
        sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done
if [ "$bad" -eq 0 ]; then
    echo "ok includes point down"
else
    echo "not ok includes point down ($bad wrong-way includes)"
    failed=1
fi

# 2. and 3. from the objects: "OBJ D SYMBOL" and "OBJ U SYMBOL" lines, then the edges
# "USER DEFINER SYMBOL" (objects named by their source path, policyd/config.o).
objects=()
declare -A OBJLAYER
for f in $sources; do
    o=${f%.c}.o
    layer_of "$f"
    [[ $f == *.c && -n $REPLY && -f $BUILD/$o ]] || continue
    objects+=("$o")
    OBJLAYER[$o]=$REPLY
    [ "$f" -nt "$BUILD/$o" ] && echo "# $BUILD/$o is older than $f: run make first"
done
if [ "${#objects[@]}" -eq 0 ]; then
    echo "not ok calls point down (no objects in $BUILD: run make first)"
    echo "not ok no object cycle (no objects in $BUILD: run make first)"
    exit 1
fi
edges=$(cd "$BUILD" && { nm -A -g --defined-only "${objects[@]}"; nm -A -u "${objects[@]}"; } |
    awk '{ obj = $1; sub(/:.*/, "", obj) }
         $(NF - 1) == "U" || $(NF - 1) == "w" { user[++n] = obj; sym[n] = $NF; next }
         { def[$NF] = obj }
         END { for (i = 1; i <= n; i++)
                   if ((sym[i] in def) && def[sym[i]] != user[i]) print user[i], def[sym[i]], sym[i] }' |
    sort)

# calls point down
bad=0
while read -r user definer syms; do
    [ -n "$user" ] || continue
    from=${OBJLAYER[$user]} to=${OBJLAYER[$definer]}
    if ! may_use "$from" "$to"; then
        echo "$user: uses $syms from $definer (layer $from -> layer $to)"
        bad=$((bad + 1))
    fi
done < <(awk '{ k = $1 " " $2; if (k in s) s[k] = s[k] ", " $3; else s[k] = $3 }
               END { for (k in s) print k, s[k] }' <<<"$edges" | sort)
if [ "$bad" -eq 0 ]; then
    echo "ok calls point down"
else
    echo "not ok calls point down ($bad wrong-way object dependencies)"
    failed=1
fi

# no object cycle: Tarjan's strongly connected components over the edges
cycles=$(awk '
function strong(v,    i, w) {
    index_of[v] = low[v] = ++counter
    stack[++sp] = v; on_stack[v] = 1
    for (i = 1; i <= nsucc[v]; i++) {
        w = succ[v, i]
        if (!(w in index_of)) { strong(w); if (low[w] < low[v]) low[v] = low[w] }
        else if (on_stack[w] && index_of[w] < low[v]) low[v] = index_of[w]
    }
    if (low[v] == index_of[v]) {
        ncomp++; size = 0
        do { w = stack[sp--]; on_stack[w] = 0; comp[w] = ncomp; size++ } while (w != v)
        comp_size[ncomp] = size
    }
}
$1 == "node" { node[++nnode] = $2; layer[$2] = $3; rank[$2] = $4; next }
{
    if (($1, $2) in syms) syms[$1, $2] = syms[$1, $2] ", " $3
    else { syms[$1, $2] = $3; succ[$1, ++nsucc[$1]] = $2 }
}
END {
    for (i = 1; i <= nnode; i++) if (!(node[i] in index_of)) strong(node[i])
    for (c = 1; c <= ncomp; c++) {
        if (comp_size[c] < 2) continue
        members = ""
        for (i = 1; i <= nnode; i++) if (comp[node[i]] == c) members = members " " node[i]
        print "cycle of " comp_size[c] " objects:" members
        for (i = 1; i <= nnode; i++) for (j = 1; j <= nsucc[node[i]]; j++) {
            w = succ[node[i], j]
            if (comp[node[i]] != c || comp[w] != c) continue
            up = rank[node[i]] < rank[w] || (rank[node[i]] == rank[w] && layer[node[i]] != layer[w])
            print "    " node[i] " -> " w ": " syms[node[i], w] \
                (up ? "   <- upward (" layer[node[i]] " -> " layer[w] ")" : "")
        }
    }
}' <(for o in "${objects[@]}"; do
    echo "node $o ${OBJLAYER[$o]} ${RANK[${OBJLAYER[$o]}]}"
done) <(echo "$edges"))
if [ -z "$cycles" ]; then
    echo "ok no object cycle"
else
    echo "$cycles"
    echo "not ok no object cycle ($(grep -c '^cycle' <<<"$cycles") cycles)"
    failed=1
fi
exit $failed
