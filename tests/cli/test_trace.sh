#!/bin/sh
# test_trace.sh: `moesim trace` on bad inputs and the basic round trip.
# Each bad input must exit non-zero (but < 128: no crash) with a message
# naming the file and the place. One PASS/FAIL line per case.
M=${MOESIM:-build/moesim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/cli/lib.sh

# expect_fail NAME NEEDLE... -- CMD...: non-zero, < 128, stderr has every needle
expect_fail() {
    name=$1; shift
    needles=""
    while [ "$1" != "--" ]; do needles="$needles
$1"; shift; done
    shift
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ]; then echo "FAIL $name: exit 0"; return; fi
    if [ $rc -ge 128 ]; then echo "FAIL $name: crashed (exit $rc)"; return; fi
    miss=$(lacks "$T/err" "$needles")
    if [ -n "$miss" ]; then echo "FAIL $name: stderr lacks $miss: $(head -c 400 "$T/err")"; return; fi
    echo "PASS $name"
}

ok() { # ok NAME CMD...
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then echo "PASS $name"; else echo "FAIL $name: $(cat "$T/err")"; fi
}

ok trace_gen "$M" trace gen -o "$T/g.moetrace" --steps 300 --layers 4 --experts 8 --top-k 2 --lookahead 1 --seed 3
ok trace_info sh -c "'$M' trace info '$T/g.moetrace' | grep -q 'lookahead    depth 1'"
ok trace_export "$M" trace export "$T/g.moetrace" -o "$T/g.csv"
ok trace_import_csv "$M" trace import "$T/g.csv" -o "$T/h.moetrace" --experts 8
ok trace_csv_roundtrip sh -c "'$M' trace export '$T/h.moetrace' -o '$T/h.csv' && cmp -s '$T/g.csv' '$T/h.csv'"
ok trace_gen_same_seed sh -c "'$M' trace gen -o '$T/g2.moetrace' --steps 300 --layers 4 --experts 8 --top-k 2 --lookahead 1 --seed 3 >/dev/null && cmp -s '$T/g.moetrace' '$T/g2.moetrace'"
ok trace_run_imported "$M" run --trace "$T/h.moetrace" --capacity 4

# truncated and corrupt binary traces
size=$(wc -c <"$T/g.moetrace")
head -c $((size / 2)) "$T/g.moetrace" >"$T/trunc.moetrace"
expect_fail trace_truncated "trunc.moetrace" "truncated" -- "$M" trace info "$T/trunc.moetrace"
head -c 100 "$T/g.moetrace" >"$T/tiny.moetrace"
expect_fail trace_truncated_header "tiny.moetrace" "header" -- "$M" trace info "$T/tiny.moetrace"
cp "$T/g.moetrace" "$T/corrupt.moetrace"
printf '\377\377' | dd of="$T/corrupt.moetrace" bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_fail trace_corrupt "corrupt.moetrace" "checksum" -- "$M" trace info "$T/corrupt.moetrace"
expect_fail trace_run_corrupt "corrupt.moetrace" "checksum" -- "$M" run --trace "$T/corrupt.moetrace" --capacity 2

# CSV bad inputs
H=step,seq,token,layer,slot,expert,weight
printf 'step,seq,tok,layer,slot,expert,weight\n0,0,0,0,0,1,\n' >"$T/hdr.csv"
expect_fail csv_wrong_header "hdr.csv:1:" "header" -- "$M" trace import "$T/hdr.csv" -o "$T/x.moetrace"
printf '%s\n0,0,0,0,0,1,\n0,0,0,1,0,40,0.5\n' $H >"$T/big.csv"
expect_fail csv_expert_too_large "big.csv:3:" "column 'expert'" "40 >= experts (32)" -- "$M" trace import "$T/big.csv" -o "$T/x.moetrace" --experts 32
printf '%s\n0,0,0,0,0,1,\n0,0,-4,0,0,1,\n' $H >"$T/neg.csv"
expect_fail csv_negative "neg.csv:3:" "column 'token'" "negative" -- "$M" trace import "$T/neg.csv" -o "$T/x.moetrace"
printf '%s\n0,0,0,0,zero,1,\n' $H >"$T/nan.csv"
expect_fail csv_non_numeric "nan.csv:2:" "column 'slot'" -- "$M" trace import "$T/nan.csv" -o "$T/x.moetrace"
printf '%s\n0,0,0,0,0,1,0.5\n0,0,0,0,1,2,xx\n' $H >"$T/w.csv"
expect_fail csv_bad_weight "w.csv:3:" "column 'weight'" -- "$M" trace import "$T/w.csv" -o "$T/x.moetrace"
: >"$T/empty.csv"
expect_fail csv_empty "empty.csv:1:" "empty" -- "$M" trace import "$T/empty.csv" -o "$T/x.moetrace"
expect_fail csv_empty_run "empty.csv" "empty" -- "$M" run --trace "$T/empty.csv" --capacity 2
printf '%s\n2,0,0,0,0,1,\n1,0,0,0,0,1,\n' $H >"$T/dec.csv"
expect_fail csv_step_decreases "dec.csv:3:" "column 'step'" -- "$M" trace import "$T/dec.csv" -o "$T/x.moetrace"
expect_fail jsonl_empty "empty.jsonl:1:" -- sh -c ": >'$T/empty.jsonl'; '$M' trace import '$T/empty.jsonl' -o '$T/x.moetrace'"
: >"$T/empty.bin"
expect_fail oracle_empty "empty.bin" -- "$M" trace import --format lcs-oracle "$T/empty.bin" -o "$T/x.moetrace"

# unwritable output, unknown things
expect_fail unwritable_output "$T/no/such/dir/o.moetrace" "cannot create" -- "$M" trace import "$T/g.csv" -o "$T/no/such/dir/o.moetrace"
expect_fail unwritable_export "/nonexistent/o.csv" -- "$M" trace export "$T/g.moetrace" -o /nonexistent/o.csv
expect_fail unknown_format "unknown --format" -- "$M" trace import --format xml "$T/g.csv" -o "$T/x.moetrace"
expect_fail unknown_sub "unknown subcommand" -- "$M" trace frobnicate
expect_fail unknown_option "unrecognized option" -- "$M" trace gen -o "$T/x.moetrace" --bogus
expect_fail gen_bad_value "--locality" -- "$M" trace gen -o "$T/x.moetrace" --locality 2
expect_fail missing_file "nothere.moetrace" -- "$M" trace info "$T/nothere.moetrace"
for s in import export info gen; do ok "help_$s" "$M" trace $s --help; done
[ ! -e "$T/x.moetrace" ] && echo "PASS no_output_on_error" || echo "FAIL no_output_on_error: $T/x.moetrace exists"
# the release (semantic version, CHANGELOG.md) and the commit
v=$("$M" --version)
if echo "$v" | grep -Eq '^moesim [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]{7}' &&
   grep -q "^## $(echo "$v" | cut -d' ' -f2) " CHANGELOG.md && grep -q "^version: $(echo "$v" | cut -d' ' -f2)$" CITATION.cff; then
    echo "PASS version_release"
else echo "FAIL version_release: '$v' (CHANGELOG.md and CITATION.cff must name it)"; fi
