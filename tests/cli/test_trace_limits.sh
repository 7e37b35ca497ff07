#!/bin/sh
# test_trace_limits.sh: the size limits of core/trace.h and core/trace_formats.h
# ("Trust the input", item 1). Each finding keeps its minimised input: the
# command must exit non-zero but < 128 (no crash) within a second, name the
# file and line, and leave no output file behind. Traces that pass still run
# under both scopes, and every shipped trace round-trips through CSV.
# One PASS/FAIL line per case.
M=${MOESIM:-build/moesim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/cli/lib.sh
H=step,seq,token,layer,slot,expert,weight

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# refused NAME OUTPUT NEEDLE... -- CMD...: non-zero, < 128, under 1000 ms,
# stderr has every needle, OUTPUT (if not -) absent, no temp file left in $T/out
refused() {
    name=$1 out=$2; shift 2
    needles=""
    while [ "$1" != "--" ]; do needles="$needles
$1"; shift; done
    shift
    rm -rf "$T/out"; mkdir "$T/out" # each case starts clean
    t0=$(ms)
    "$@" >"$T/stdout" 2>"$T/err"
    rc=$?
    dt=$(( $(ms) - t0 ))
    if [ $rc -eq 0 ]; then echo "FAIL $name: exit 0"; return; fi
    if [ $rc -ge 128 ]; then echo "FAIL $name: crashed (exit $rc)"; return; fi
    if [ $dt -ge 1000 ]; then echo "FAIL $name: took $dt ms"; return; fi
    if [ "$out" != - ] && [ -e "$out" ]; then echo "FAIL $name: $out left behind"; return; fi
    if [ -n "$(ls -A "$T/out")" ]; then echo "FAIL $name: files left in out/: $(ls -A "$T/out")"; return; fi
    miss=$(lacks "$T/err" "$needles")
    if [ -n "$miss" ]; then echo "FAIL $name: stderr lacks $miss: $(head -c 400 "$T/err")"; return; fi
    echo "PASS $name"
}

ok() { # ok NAME CMD...: exit 0
    name=$1; shift
    "$@" >"$T/stdout" 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ]; then echo "PASS $name"; else echo "FAIL $name: exit $rc: $(head -c 400 "$T/err")"; fi
}

mkdir "$T/out"
O="$T/out/o.moetrace"

# Finding 1: a size product overflowed in the trace builder (segfault).
printf '%s\n0,0,0,536870911,0,1,\n0,0,1,0,268435455,1,\n' $H >"$T/f1.csv"
refused f1_layer_product "$O" "f1.csv:2:" "column 'layer'" "536870911" "65536 layers" -- \
    "$M" trace import --format csv "$T/f1.csv" -o "$O"

# Finding 2: layers x experts overflowed the uint32 global key space; the
# import accepted it and run --scope global crashed.
printf '%s\n0,0,0,32768,0,65533,\n1,0,1,65539,0,1,\n' $H >"$T/f2.csv"
refused f2_key_space_import "$O" "f2.csv:3:" "column 'layer'" "65539" "65536 layers" -- \
    "$M" trace import --format csv "$T/f2.csv" -o "$O"
refused f2_key_space_run - "f2.csv:3:" "column 'layer'" -- \
    "$M" run --trace "$T/f2.csv" --scope global --capacity 2
printf '%s\n0,0,0,32768,0,65533,\n1,0,1,0,0,1,\n' $H >"$T/f2b.csv"
refused f2_key_budget "$O" "f2b.csv:2:" "column 'expert'" "(layer, expert) keys" "--layers and --experts" -- \
    "$M" trace import "$T/f2b.csv" -o "$O"

# Finding 3: a huge slot (or layer) sized an allocation: "out of memory", no row named.
printf '%s\n0,0,0,0,04294967294,1,9242\n' $H >"$T/f3.csv"
refused f3_huge_slot "$O" "f3.csv:2:" "column 'slot'" "4294967294" "top_k is at most 65534" -- \
    "$M" trace import --format csv "$T/f3.csv" -o "$O"
# ... the 21-line, ~520-byte file with layer 20000000 (was 74 s, 2.35 GB)
{ echo $H; i=0; while [ $i -lt 20 ]; do
    if [ $i -eq 12 ]; then l=20000000; else l=$((i % 4)); fi
    echo "$i,0,$i,$l,0,$((i % 8)),0.25"; i=$((i + 1)); done; } >"$T/f3c.csv"
refused f3_huge_layer_21_lines "$O" "f3c.csv:14:" "column 'layer'" "20000000" -- \
    "$M" trace import "$T/f3c.csv" -o "$O"
# ... and below the hard limit, the record budget
{ echo $H; i=0; while [ $i -lt 20 ]; do
    if [ $i -eq 19 ]; then l=60000; else l=0; fi
    echo "$i,0,$i,$l,0,1,"; i=$((i + 1)); done; } >"$T/f4.csv"
refused record_budget "$O" "f4.csv:21:" "column 'layer'" "60000 sets layers 60001" "more than 64 per row" \
    "give --layers and --top-k" -- "$M" trace import "$T/f4.csv" -o "$O"
refused record_budget_explicit "$O" "f4.csv:" "--layers 65536 x --top-k 65000" "2147483648 bytes" -- \
    "$M" trace import "$T/f4.csv" -o "$O" --layers 65536 --top-k 65000 --experts 65000
refused option_limit "$O" "f4.csv:" "--layers 65537" -- "$M" trace import "$T/f4.csv" -o "$O" --layers 65537

# A refused import leaves an existing output alone.
"$M" trace gen -o "$T/keep.moetrace" --steps 10 --layers 2 --experts 4 --top-k 1 >/dev/null 2>&1
cp "$T/keep.moetrace" "$T/keep.orig"
"$M" trace import "$T/f1.csv" -o "$T/keep.moetrace" >/dev/null 2>&1
if cmp -s "$T/keep.moetrace" "$T/keep.orig"; then echo "PASS refused_keeps_existing_output"
else echo "FAIL refused_keeps_existing_output: $T/keep.moetrace changed"; fi

# Run never crashes on a trace that passed: wide but legitimate geometries,
# both scopes (rc must be 0: each fits in memory here).
printf '%s\n0,0,0,0,0,65533,\n0,0,1,0,0,3,\n' $H >"$T/wide_e.csv"
ok import_max_expert "$M" trace import "$T/wide_e.csv" -o "$T/wide_e.moetrace"
ok import_explicit_layers "$M" trace import "$T/f4.csv" -o "$T/wide_l.moetrace" --layers 60001 --top-k 1
printf '%s\n0,0,0,1023,0,1023,\n1,0,1,0,0,0,\n' $H >"$T/sq.csv"
ok import_1m_keys "$M" trace import "$T/sq.csv" -o "$T/sq.moetrace"
for f in wide_e wide_l sq; do
    for s in per-layer global; do
        ok "run_${f}_$s" "$M" run --trace "$T/$f.moetrace" --scope $s --capacity 2 --policy lru
    done
done
ok run_wide_l_belady "$M" run --trace "$T/wide_l.moetrace" --scope global --capacity 2 --policy belady

# Every shipped trace round-trips: export, import (geometry from trace info),
# export again: the CSVs are byte-identical, the geometry and slot counts
# match the original, and importing the CSV again gives the same trace
# (trace info hash). The original's hash differs by design: the header
# strings, lookahead and phases are not in the CSV form.
n=0
for tr in traces/*.moetrace; do
    [ -f "$tr" ] || continue
    b=$(basename "$tr" .moetrace)
    "$M" trace info "$tr" >"$T/i0" 2>&1 || { echo "FAIL roundtrip_$b: trace info: $(head -1 "$T/i0")"; continue; }
    L=$(awk '$1 == "layers" {print $2}' "$T/i0")
    E=$(awk '$1 == "experts" {print $2}' "$T/i0")
    K=$(awk '$1 == "top_k" {print $2}' "$T/i0")
    if "$M" trace export "$tr" -o "$T/a.csv" >/dev/null 2>"$T/err" &&
       "$M" trace import "$T/a.csv" -o "$T/a.moetrace" --layers "$L" --experts "$E" --top-k "$K" >/dev/null 2>>"$T/err" &&
       "$M" trace export "$T/a.moetrace" -o "$T/b.csv" >/dev/null 2>>"$T/err" &&
       "$M" trace import "$T/b.csv" -o "$T/b.moetrace" --layers "$L" --experts "$E" --top-k "$K" >/dev/null 2>>"$T/err" &&
       "$M" trace info "$T/a.moetrace" >"$T/ia" 2>>"$T/err" && "$M" trace info "$T/b.moetrace" >"$T/ib" 2>>"$T/err"; then
        geo() { grep -E '^(layers|experts|top_k|tokens|slots) ' "$1"; }
        if ! cmp -s "$T/a.csv" "$T/b.csv"; then echo "FAIL roundtrip_$b: CSV changed on the second pass"
        elif [ "$(geo "$T/i0")" != "$(geo "$T/ia")" ]; then echo "FAIL roundtrip_$b: geometry differs: $(geo "$T/ia" | tr '\n' ' ')"
        elif [ "$(grep '^hash ' "$T/ia")" != "$(grep '^hash ' "$T/ib")" ]; then echo "FAIL roundtrip_$b: hash differs"
        else echo "PASS roundtrip_$b"; fi
    else
        echo "FAIL roundtrip_$b: $(head -c 400 "$T/err")"
    fi
    n=$((n + 1))
done
[ $n -ge 5 ] && echo "PASS roundtrip_count" || echo "FAIL roundtrip_count: $n shipped traces"

# step ids up to 2^64 - 1 (a .moetrace's u64) survive import -> export ->
# import; 2^64 is refused naming the column and the limit
printf 'step,seq,token,layer,slot,expert,weight\n18446744073709551614,0,0,0,0,1,\n18446744073709551615,0,1,0,0,2,\n' >"$T/s.csv"
if "$M" trace import "$T/s.csv" -o "$T/s.moetrace" >/dev/null 2>"$T/err" &&
   "$M" trace export "$T/s.moetrace" -o "$T/s2.csv" >/dev/null 2>>"$T/err" && cmp -s "$T/s.csv" "$T/s2.csv"; then
    echo "PASS step_id_u64_max"
else echo "FAIL step_id_u64_max: $(cat "$T/err") $(cat "$T/s2.csv" 2>/dev/null)"; fi
printf 'step,seq,token,layer,slot,expert,weight\n18446744073709551616,0,0,0,0,1,\n' >"$T/s3.csv"
"$M" trace import "$T/s3.csv" -o "$T/s3.moetrace" >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "s3.csv:2: column 'step': '18446744073709551616' is too large (above 18446744073709551615)" "$T/err" &&
   [ ! -e "$T/s3.moetrace" ]; then echo "PASS step_id_2_64"
else echo "FAIL step_id_2_64: exit $rc: $(cat "$T/err")"; fi
