#!/bin/sh
# test_import_rules.sh: `moesim trace import` never guesses silently.
#  1. an explicit --order gives the trace auto-detection gives;
#  2. an option that does not apply to the format is an error naming both;
#  3. libCacheSim files are sniffed (oracleGeneral by size and records, CSV
#     by header); an unknown file lists the formats and asks for --format;
#  4. a libCacheSim CSV key column that looks like a time/version column is
#     an error by default and a warning when chosen (--strict: an error);
#  5. JSONL rows that leave (token, layer) records empty give a warning with
#     counts (--strict: an error); pass-relative token_pos gets right phases;
#  6. Qwen logs: warm-up passes (identical routing) are dropped with a note
#     (--keep-warmup keeps them; --skip-warmup / --warmup-prefix name them),
#     --pass-by groups rows into passes, phases are derived or declared
#     unknown, conflicting options and bad rows are errors naming the place.
# One PASS/FAIL line per case. Run from the repository root.
M=${MOESIM:-build/moesim}
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/cli/lib.sh

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# run NAME CMD...: runs CMD, keeps stdout/stderr in $T/out, $T/err, sets $rc
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }
hash_of() { "$M" trace info "$1" 2>/dev/null | sed -n 's/^hash *//p'; }

# expect_err NAME NEEDLE... -- CMD...: exit 1 or 2 and stderr has every needle
expect_err() {
    name=$1; shift
    needles=""
    while [ "$1" != "--" ]; do needles="$needles
$1"; shift; done
    shift
    run "$@"
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then fail "$name" "exit $rc, expected 1 or 2 ($(head -c 300 "$T/err"))"; return; fi
    miss=$(lacks "$T/err" "$needles")
    if [ -n "$miss" ]; then fail "$name" "stderr lacks $miss: $(head -c 400 "$T/err")"; return; fi
    pass "$name"
}

# expect_pair NAME A B -- CMD...: exit 1 or 2 and one stderr line names both A and B
expect_pair() {
    name=$1 a=$2 b=$3; shift 4
    run "$@"
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then fail "$name" "exit $rc, expected 1 or 2 ($(head -c 300 "$T/err"))"; return; fi
    if ! grep -F -- "$a" "$T/err" | grep -qF -- "$b"; then fail "$name" "no line names both '$a' and '$b': $(head -c 300 "$T/err")"; return; fi
    pass "$name"
}

# ---- 1. explicit --order ---------------------------------------------------
for o in sorted exec; do
    run "$M" trace import "$D/mixtral_$o.jsonl" -o "$T/auto_$o.moetrace"
    run "$M" trace import "$D/mixtral_$o.jsonl" --order "$o" -o "$T/expl_$o.moetrace"
    if [ $rc -ne 0 ]; then fail "order_${o}_explicit" "exit $rc: $(cat "$T/err")"
    elif [ "$(hash_of "$T/auto_$o.moetrace")" != "$(hash_of "$T/expl_$o.moetrace")" ] || [ -z "$(hash_of "$T/auto_$o.moetrace")" ]; then
        fail "order_${o}_explicit" "hash differs from auto-detection"
    else pass "order_${o}_explicit"; fi
done
# explicit order with --format given too, and the order's own key when both exist
run "$M" trace import --format jsonl-mixtral --order sorted "$D/mixtral_sorted.jsonl" -o "$T/x1.moetrace"
[ $rc -eq 0 ] && pass order_with_format || fail order_with_format "exit $rc: $(cat "$T/err")"

# ---- 2. options that do not apply to the format ---------------------------
H=step,seq,token,layer,slot,expert,weight
printf '%s\n0,0,0,0,0,1,0.5\n0,0,0,0,1,2,0.5\n1,0,1,0,0,3,\n' $H >"$T/m.csv"
cp "$D/lcs.oracleGeneral.bin" "$T/o.bin"
# base command per format (imports cleanly on its own)
base() {
    case $1 in
    csv) echo "--format csv $T/m.csv" ;;
    jsonl-mixtral) echo "--format jsonl-mixtral $D/mixtral_exec.jsonl" ;;
    jsonl-qwen) echo "--format jsonl-qwen $D/qwen.jsonl" ;;
    lcs-csv) echo "--format lcs-csv --has-header --obj-col 2 $D/lcs.csv" ;;
    lcs-oracle) echo "--format lcs-oracle $T/o.bin" ;;
    esac
}
for f in csv jsonl-mixtral jsonl-qwen lcs-csv lcs-oracle; do
    # shellcheck disable=SC2046
    run "$M" trace import $(base $f) -o "$T/base.moetrace"
    [ $rc -eq 0 ] && pass "base_$f" || fail "base_$f" "exit $rc: $(cat "$T/err")"
done
# option|value|formats it applies to
cat >"$T/scope" <<'EOF'
--layers|4|csv jsonl-mixtral jsonl-qwen
--experts|64|csv jsonl-mixtral jsonl-qwen
--top-k|4|csv jsonl-mixtral jsonl-qwen
--field|seq=problem_id|jsonl-mixtral jsonl-qwen
--order|exec|jsonl-mixtral
--skip-warmup|1|jsonl-qwen
--warmup-prefix|warmup-|jsonl-qwen
--keep-warmup||jsonl-qwen
--pass-by|wrap|jsonl-qwen
--obj-col|2|lcs-csv
--has-header||lcs-csv
--delimiter|;|lcs-csv
--strict||jsonl-mixtral jsonl-qwen lcs-csv
EOF
while IFS='|' read -r opt val applies; do
    for f in csv jsonl-mixtral jsonl-qwen lcs-csv lcs-oracle; do
        case " $applies " in *" $f "*) continue ;; esac
        name="inapplicable_${opt#--}_$f"
        if [ -n "$val" ]; then
            # shellcheck disable=SC2046
            expect_pair "$name" "$opt" "$f" -- "$M" trace import $(base $f) "$opt" "$val" -o "$T/x.moetrace"
        else
            # shellcheck disable=SC2046
            expect_pair "$name" "$opt" "$f" -- "$M" trace import $(base $f) "$opt" -o "$T/x.moetrace"
        fi
    done
done <"$T/scope"
# the issue's case: --skip-warmup on a Mixtral file whose format was sniffed
expect_err skip_warmup_sniffed_mixtral "--skip-warmup" "jsonl-mixtral" "--format" -- \
    "$M" trace import "$D/mixtral_exec.jsonl" --skip-warmup 3 -o "$T/x.moetrace"
# applicable ones still work
run "$M" trace import "$D/qwen.jsonl" --skip-warmup 2 -o "$T/q.moetrace"
[ $rc -eq 0 ] && grep -q "4 tokens" "$T/out" && pass qwen_skip_warmup_applies || fail qwen_skip_warmup_applies "exit $rc: $(cat "$T/out" "$T/err")"
[ ! -e "$T/x.moetrace" ] && pass no_output_on_option_error || fail no_output_on_option_error "$T/x.moetrace exists"

# ---- 3. sniffing -------------------------------------------------------------
run "$M" trace import --format lcs-oracle "$D/lcs.oracleGeneral.bin" -o "$T/o_fmt.moetrace"
for n in trace.oracleGeneral trace.oracleGeneral.bin plainname; do
    cp "$D/lcs.oracleGeneral.bin" "$T/$n"
    run "$M" trace import "$T/$n" -o "$T/o_sniff.moetrace"
    if [ $rc -ne 0 ]; then fail "sniff_oracle_$n" "exit $rc: $(cat "$T/err")"
    elif [ "$(hash_of "$T/o_sniff.moetrace")" != "$(hash_of "$T/o_fmt.moetrace")" ]; then fail "sniff_oracle_$n" "differs from --format lcs-oracle"
    elif ! grep -q "lcs-oracle" "$T/err"; then fail "sniff_oracle_$n" "no note naming the format: $(cat "$T/err")"
    else pass "sniff_oracle_$n"; fi
done
run "$M" trace import --format lcs-csv --has-header --obj-col 2 "$D/lcs.csv" -o "$T/l_fmt.moetrace"
run "$M" trace import "$D/lcs.csv" -o "$T/l_sniff.moetrace"
if [ $rc -ne 0 ]; then fail sniff_lcs_csv "exit $rc: $(cat "$T/err")"
elif [ "$(hash_of "$T/l_sniff.moetrace")" != "$(hash_of "$T/l_fmt.moetrace")" ]; then fail sniff_lcs_csv "differs from --format lcs-csv --has-header --obj-col 2"
elif ! grep -q "lcs-csv --has-header --obj-col 2" "$T/err"; then fail sniff_lcs_csv "no note naming the choice: $(cat "$T/err")"
else pass sniff_lcs_csv; fi
# a libCacheSim CSV under another name, ';'-delimited, id column named "key"
printf 'ts;key;size\n1;x;5\n2;y;5\n3;x;5\n' >"$T/semi.txt"
run "$M" trace import --delimiter ';' "$T/semi.txt" -o "$T/s.moetrace"
[ $rc -eq 0 ] && grep -q "obj-col 2" "$T/err" && pass sniff_lcs_csv_delimiter || fail sniff_lcs_csv_delimiter "exit $rc: $(cat "$T/err")"
# moesim's CSV and JSONL are still recognised; so is JSONL under another name
run "$M" trace import "$T/m.csv" -o "$T/x2.moetrace"
[ $rc -eq 0 ] && [ ! -s "$T/err" ] && pass sniff_moesim_csv_quiet || fail sniff_moesim_csv_quiet "exit $rc: $(cat "$T/err")"
cp "$D/qwen.jsonl" "$T/qwen.log"
run "$M" trace import "$T/qwen.log" -o "$T/x3.moetrace"
[ $rc -eq 0 ] && grep -q "jsonl-qwen" "$T/err" && pass sniff_jsonl_other_name || fail sniff_jsonl_other_name "exit $rc: $(cat "$T/err")"
# what cannot be told apart lists the formats and asks for --format
ALL="csv, jsonl-mixtral, jsonl-qwen, lcs-csv, lcs-oracle"
printf 'a,b,c\n1,2,3\n' >"$T/abc.csv"
expect_err sniff_fail_csv "abc.csv:1:" "header" "--format" "$ALL" -- "$M" trace import "$T/abc.csv" -o "$T/x.moetrace"
printf 'hello world, this is just text\n' >"$T/notes.txt"
expect_err sniff_fail_text "notes.txt" "--format" "$ALL" -- "$M" trace import "$T/notes.txt" -o "$T/x.moetrace"
# 48 bytes of text: a multiple of 24 but no sane records
printf '0123456789abcdef0123456789abcdef0123456789abcde\n' >"$T/t48.dat"
expect_err sniff_text_multiple_of_24 "t48.dat" "--format" "$ALL" -- "$M" trace import "$T/t48.dat" -o "$T/x.moetrace"
head -c 240 /dev/zero >"$T/zeros.bin"
expect_err sniff_zeros_not_oracle "zeros.bin" "--format" "$ALL" -- "$M" trace import "$T/zeros.bin" -o "$T/x.moetrace"
# a truncated oracle file (not a multiple of 24) is not sniffed as one
head -c 100 "$D/lcs.oracleGeneral.bin" >"$T/cut.bin"
expect_err sniff_truncated_oracle "cut.bin" "--format" "$ALL" -- "$M" trace import "$T/cut.bin" -o "$T/x.moetrace"

# ---- 4. lcs-csv key column -------------------------------------------------
{ echo "version,obj_id,size"; i=0; while [ $i -lt 40 ]; do echo "1,k$((i % 7)),100"; i=$((i + 1)); done; } >"$T/ver.csv"
expect_err lcs_version_column_default "ver.csv" "column 1" "version" "--obj-col" "--has-header" -- \
    "$M" trace import --format lcs-csv "$T/ver.csv" -o "$T/x.moetrace"
expect_err lcs_version_column_header "ver.csv" "column 1" "'version'" "--obj-col 2" -- \
    "$M" trace import --format lcs-csv --has-header "$T/ver.csv" -o "$T/x.moetrace"
expect_err lcs_time_column_default "lcs.csv" "column 1" "'time'" "--obj-col 2" -- \
    "$M" trace import --format lcs-csv --has-header "$D/lcs.csv" -o "$T/x.moetrace"
# no header at all: a column with 2 values in 40 rows
{ i=0; while [ $i -lt 40 ]; do echo "$((i % 2)),k$i"; i=$((i + 1)); done; } >"$T/few.csv"
expect_err lcs_few_values_default "few.csv" "column 1" "2 distinct values in 40 rows" "--obj-col" -- \
    "$M" trace import --format lcs-csv "$T/few.csv" -o "$T/x.moetrace"
# chosen explicitly: imported, with a warning that carries the counts
run "$M" trace import --format lcs-csv --obj-col 1 "$T/few.csv" -o "$T/few.moetrace"
if [ $rc -ne 0 ]; then fail lcs_chosen_column_warns "exit $rc: $(cat "$T/err")"
elif ! grep -q "warning:.*column 1.*2 distinct values in 40 rows" "$T/err"; then fail lcs_chosen_column_warns "no warning with counts: $(cat "$T/err")"
else pass lcs_chosen_column_warns; fi
expect_err lcs_chosen_column_strict "few.csv" "column 1" "--strict" -- \
    "$M" trace import --format lcs-csv --obj-col 1 --strict "$T/few.csv" -o "$T/x.moetrace"
# a good column is silent
run "$M" trace import --format lcs-csv --obj-col 2 "$T/few.csv" -o "$T/ok.moetrace"
[ $rc -eq 0 ] && [ ! -s "$T/err" ] && pass lcs_good_column_quiet || fail lcs_good_column_quiet "exit $rc: $(cat "$T/err")"

# ---- 5. Mixtral hook logs ----------------------------------------------------
# complete log: no warning
row() { printf '{"problem_id": %s, "layer": %s, "token_pos": %s, "experts": [%s], "gating_probs": [0.6, 0.4]}\n' "$@"; }
{ row 0 0 0 "1, 2"; row 0 0 1 "3, 4"; row 0 1 0 "5, 6"; row 0 1 1 "7, 0";
  row 0 0 2 "1, 3"; row 0 1 2 "2, 4"; } >"$T/full.jsonl"
run "$M" trace import "$T/full.jsonl" -o "$T/full.moetrace"
[ $rc -eq 0 ] && [ ! -s "$T/err" ] && pass mixtral_complete_quiet || fail mixtral_complete_quiet "exit $rc: $(cat "$T/err")"
# dropped rows: token 1 of the prefill pass has no layer-1 row, token 3 (in the
# second pass with token 2) no layer-0 row: 3 passes, 5 tokens, 10 records
{ row 0 0 0 "1, 2"; row 0 0 1 "3, 4"; row 0 1 0 "5, 6";
  row 0 0 2 "1, 3"; row 0 1 2 "2, 4"; row 0 1 3 "2, 5"; row 0 0 4 "6, 7"; row 0 1 4 "0, 1"; } >"$T/drop.jsonl"
run "$M" trace import "$T/drop.jsonl" -o "$T/drop.moetrace"
if [ $rc -ne 0 ]; then fail mixtral_dropped_rows_warn "exit $rc: $(cat "$T/err")"
elif ! grep -q "warning:.*drop.jsonl.*2 of 10 (token, layer) records" "$T/err"; then fail mixtral_dropped_rows_warn "no warning with counts: $(cat "$T/err")"
elif ! grep -q "slots: 2 of 6, in 2 of 3 steps" "$T/err"; then fail mixtral_dropped_rows_warn "no (step, layer) counts: $(cat "$T/err")"
else pass mixtral_dropped_rows_warn; fi
expect_err mixtral_dropped_rows_strict "drop.jsonl" "2 of 10 (token, layer) records" "--strict" -- \
    "$M" trace import "$T/drop.jsonl" --strict -o "$T/x.moetrace"
[ ! -e "$T/x.moetrace" ] && pass no_output_on_strict || fail no_output_on_strict "$T/x.moetrace exists"
# token_pos counts within the pass: every decode row says 0
{ row 0 0 0 "1, 2"; row 0 0 1 "3, 4"; row 0 0 2 "5, 6"; row 0 1 0 "1, 2"; row 0 1 1 "3, 4"; row 0 1 2 "5, 6";
  row 0 0 0 "1, 3"; row 0 1 0 "2, 4"; row 0 0 0 "2, 5"; row 0 1 0 "6, 7"; row 0 0 0 "0, 1"; row 0 1 0 "2, 3";
  row 1 0 0 "1, 2"; row 1 1 0 "3, 4"; row 1 0 0 "5, 6"; row 1 1 0 "7, 0"; } >"$T/pos0.jsonl"
run "$M" trace import "$T/pos0.jsonl" -o "$T/pos0.moetrace"
"$M" trace info "$T/pos0.moetrace" >"$T/info" 2>&1
if [ $rc -ne 0 ]; then fail mixtral_pos0_phases "exit $rc: $(cat "$T/err")"
elif ! grep -q "steps        6 (prefill 2, decode 4)" "$T/info"; then fail mixtral_pos0_phases "$(grep steps "$T/info")"
elif ! grep -q "note:.*token_pos" "$T/err"; then fail mixtral_pos0_phases "no note: $(cat "$T/err")"
else pass mixtral_pos0_phases; fi
# the renumbered positions survive a CSV round trip with the same phases
run "$M" trace export "$T/pos0.moetrace" -o "$T/pos0.csv"
run "$M" trace import "$T/pos0.csv" -o "$T/pos0b.moetrace"
"$M" trace info "$T/pos0b.moetrace" 2>&1 | grep -q "steps        6 (prefill 2, decode 4)" &&
    pass mixtral_pos0_csv_roundtrip || fail mixtral_pos0_csv_roundtrip "$("$M" trace info "$T/pos0b.moetrace" 2>&1 | grep steps)"
# logs with true positions are left as they are
"$M" trace info "$T/full.moetrace" 2>&1 | grep -q "steps        2 (prefill 1, decode 1)" && ! "$M" trace info "$T/full.moetrace" | grep -q renumbered &&
    pass mixtral_true_positions_kept || fail mixtral_true_positions_kept "$("$M" trace info "$T/full.moetrace" 2>&1 | grep -E 'steps|renumbered')"

# ---- 6. Qwen logs: warm-up, passes, phases ---------------------------------
NOTE="moesim trace import: note:"
# same NAME FILE: FILE holds exactly the text on stdin (else FAIL with the diff)
same() {
    cat >"$T/expected"
    if diff "$T/expected" "$2" >"$T/diff" 2>&1; then return 0; fi
    fail "$1" "$(basename "$2") differs from the expected text: $(head -c 700 "$T/diff")"
    return 1
}
# info_has NAME TRACE LINE...: `trace info` prints every LINE (whole lines)
info_has() {
    name=$1 tr=$2; shift 2
    "$M" trace info "$tr" >"$T/info" 2>&1
    for l in "$@"; do
        grep -qxF -- "$l" "$T/info" && continue
        fail "$name" "trace info lacks '$l': $(grep -E 'steps|tokens|sequences|warmup|phases' "$T/info" | tr '\n' '|')"
        return 1
    done
}
W=$D/qwen_warmup.jsonl
# default: the 9 identical leading passes are dropped, one note says so
run "$M" trace import "$W" -o "$T/w.moetrace"
if [ $rc -ne 0 ]; then fail qwen_warmup_dropped "exit $rc: $(cat "$T/err")"
else
    same qwen_warmup_dropped "$T/err" <<EOF &&
$NOTE $W: dropped warm-up: the first 9 forward passes (18 route rows, lines 2-19) route every layer to the same experts; the first pass that differs starts on line 20 (rule: 8 or more leading passes that route alike, then one that differs, are warm-up; --keep-warmup keeps them)
EOF
    info_has qwen_warmup_dropped "$T/w.moetrace" "steps        4 (prefill 1, decode 3)" "tokens       4" "sequences    1" \
        "experts      8 routed per layer, 0 shared" "  skipped_warmup_rows=18" "  warmup=detected (9 passes dropped)" &&
    "$M" trace export "$T/w.moetrace" -o "$T/w.csv" && same qwen_warmup_dropped "$T/w.csv" <<'EOF' && pass qwen_warmup_dropped
step,seq,token,layer,slot,expert,weight
0,0,0,0,0,5,0.75
0,0,0,0,1,1,0.125
0,0,0,1,0,4,0.375
0,0,0,1,1,0,0.0625
1,0,1,0,0,1,0.75
1,0,1,0,1,5,0.125
1,0,1,1,0,2,0.375
1,0,1,1,1,6,0.0625
2,0,2,0,0,7,0.75
2,0,2,0,1,3,0.125
2,0,2,1,0,0,0.375
2,0,2,1,1,1,0.0625
3,0,3,0,0,3,0.75
3,0,3,0,1,0,0.125
3,0,3,1,0,6,0.375
3,0,3,1,1,7,0.0625
EOF
fi
# --keep-warmup: every row; one req_id whose token_idx restarts: phases unknown
run "$M" trace import "$W" --keep-warmup -o "$T/wk.moetrace"
if [ $rc -ne 0 ]; then fail qwen_keep_warmup "exit $rc: $(cat "$T/err")"
else
    same qwen_keep_warmup "$T/err" <<EOF &&
$NOTE $W: kept 9 leading passes (18 route rows, lines 2-19) that route every layer to the same experts, like warm-up (--keep-warmup)
$NOTE $W: phases unknown: every route row has req_id '0', which tells no requests apart, and token_idx restarts (goes back to a position already reached), first on line 20; prefill and decode cannot be told apart, so every step is labelled decode (meta phases=unknown)
EOF
    info_has qwen_keep_warmup "$T/wk.moetrace" "steps        13 (prefill 0, decode 13)" "tokens       13" \
        "  skipped_warmup_rows=0" "  warmup=kept (--keep-warmup)" "  phases=unknown (one req_id; every step labelled decode)" &&
        pass qwen_keep_warmup
fi
# --skip-warmup naming the same rows: the same routing, a note naming the option
run "$M" trace import "$W" --skip-warmup 18 -o "$T/ws.moetrace"
"$M" trace export "$T/ws.moetrace" -o "$T/ws.csv" 2>/dev/null
if [ $rc -ne 0 ]; then fail qwen_skip_warmup_same "exit $rc: $(cat "$T/err")"
elif ! cmp -s "$T/w.csv" "$T/ws.csv"; then fail qwen_skip_warmup_same "CSV differs from the detected drop"
else
    same qwen_skip_warmup_same "$T/err" <<EOF && pass qwen_skip_warmup_same
$NOTE $W: dropped 18 route rows as warm-up (--skip-warmup 18)
EOF
fi
# too few skipped: what is left still looks like warm-up and is kept, with a note
run "$M" trace import "$W" --skip-warmup 2 -o "$T/ws2.moetrace"
if [ $rc -ne 0 ]; then fail qwen_skip_warmup_short "exit $rc: $(cat "$T/err")"
else
    same qwen_skip_warmup_short "$T/err" <<EOF &&
$NOTE $W: dropped 2 route rows as warm-up (--skip-warmup 2)
$NOTE $W: the first 8 passes left (16 route rows, lines 4-19) still route every layer to the same experts, like warm-up; kept, since --skip-warmup 2 chose the warm-up rows (without it they would be dropped)
$NOTE $W: phases unknown: every route row has req_id '0', which tells no requests apart, and token_idx restarts (goes back to a position already reached), first on line 20; prefill and decode cannot be told apart, so every step is labelled decode (meta phases=unknown)
EOF
    info_has qwen_skip_warmup_short "$T/ws2.moetrace" "tokens       12" "  warmup=--skip-warmup 2" && pass qwen_skip_warmup_short
fi
# --warmup-prefix on the first sample: its one warm-up token is named, the rest kept
run "$M" trace import "$D/qwen.jsonl" --warmup-prefix warmup- -o "$T/wp.moetrace"
if [ $rc -eq 0 ] && grep -qxF "$NOTE $D/qwen.jsonl: dropped 2 route rows as warm-up (--warmup-prefix warmup-)" "$T/err"; then
    info_has qwen_warmup_prefix "$T/wp.moetrace" "tokens       4" "sequences    2" "  warmup=--warmup-prefix warmup-" &&
        pass qwen_warmup_prefix
else fail qwen_warmup_prefix "exit $rc: $(cat "$T/err")"; fi
# rows two by two make the same passes here as (req_id, token_idx) runs
run "$M" trace import "$W" --pass-by rows=2 -o "$T/wr.moetrace"
"$M" trace export "$T/wr.moetrace" -o "$T/wr.csv" 2>/dev/null
[ $rc -eq 0 ] && cmp -s "$T/w.csv" "$T/wr.csv" && pass qwen_pass_rows || fail qwen_pass_rows "exit $rc: $(cat "$T/err")"
# a batched log (one req_id, token_idx = index in the batch): --pass-by wrap
B=$D/qwen_batch.jsonl
run "$M" trace import "$B" --pass-by wrap -o "$T/b.moetrace"
if [ $rc -ne 0 ]; then fail qwen_batch_wrap "exit $rc: $(cat "$T/err")"
else
    same qwen_batch_wrap "$T/err" <<EOF &&
$NOTE $B: dropped warm-up: the first 8 forward passes (36 route rows, lines 2-37) route every layer to the same experts; the first pass that differs starts on line 38 (rule: 8 or more leading passes that route alike, then one that differs, are warm-up; --keep-warmup keeps them)
$NOTE $B: phases unknown: every route row has req_id '0', which tells no requests apart, and a forward pass holds several tokens, first on line 38; prefill and decode cannot be told apart, so every step is labelled decode (meta phases=unknown)
EOF
    info_has qwen_batch_wrap "$T/b.moetrace" "steps        3 (prefill 0, decode 3)" "tokens       7" "sequences    1" \
        "  order=pass-by wrap" "  skipped_warmup_rows=36" &&
    "$M" trace export "$T/b.moetrace" -o "$T/b.csv" && same qwen_batch_wrap "$T/b.csv" <<'EOF' && pass qwen_batch_wrap
step,seq,token,layer,slot,expert,weight
0,0,0,0,0,0,0.75
0,0,0,0,1,1,0.125
0,0,0,1,0,3,0.375
0,0,0,1,1,4,0.0625
0,0,1,0,0,1,0.75
0,0,1,0,1,2,0.125
0,0,1,1,0,4,0.375
0,0,1,1,1,5,0.0625
0,0,2,0,0,5,0.75
0,0,2,0,1,1,0.125
0,0,2,1,0,2,0.375
0,0,2,1,1,6,0.0625
1,0,0,0,0,0,0.75
1,0,0,0,1,2,0.125
1,0,0,1,0,3,0.375
1,0,0,1,1,5,0.0625
1,0,1,0,0,1,0.75
1,0,1,0,1,3,0.125
1,0,1,1,0,6,0.375
1,0,1,1,1,7,0.0625
2,0,0,0,0,0,0.75
2,0,0,0,1,1,0.125
2,0,0,1,0,4,0.375
2,0,0,1,1,5,0.0625
2,0,1,0,0,2,0.75
2,0,1,0,1,3,0.125
2,0,1,1,0,6,0.375
2,0,1,1,1,7,0.0625
EOF
fi
run "$M" trace import "$B" --pass-by wrap --keep-warmup -o "$T/bk.moetrace"
if [ $rc -ne 0 ]; then fail qwen_batch_keep "exit $rc: $(cat "$T/err")"
else info_has qwen_batch_keep "$T/bk.moetrace" "steps        11 (prefill 0, decode 11)" "tokens       25" && pass qwen_batch_keep; fi
# the same log read one token per pass: the repeated (req_id, token_idx) is an
# error naming the line and --pass-by
expect_err qwen_batch_default_duplicate "$B:16: duplicate (seq 0, token 0, layer 0) in one forward pass, first on line 14" \
    "--pass-by wrap, rows=N or key=KEY" -- "$M" trace import "$B" -o "$T/x.moetrace"
# passes named by a field; two requests; token_idx counted within the pass
K=$D/qwen_passkey.jsonl
run "$M" trace import "$K" --pass-by key=batch -o "$T/k.moetrace"
if [ $rc -ne 0 ]; then fail qwen_pass_key "exit $rc: $(cat "$T/err")"
else
    same qwen_pass_key "$T/err" <<EOF &&
$NOTE $K: token_idx restarts in later forward passes of a sequence (the position within the pass, not the sequence), first on line 6: 3 tokens renumbered to continue their sequence, so phases are right (prefill: a sequence's first pass or several of its tokens in one pass; else decode)
EOF
    info_has qwen_pass_key "$T/k.moetrace" "steps        3 (prefill 2, decode 1)" "tokens       8" "sequences    2" \
        "  order=pass-by key=batch" "  token_idx=renumbered (restarted within sequences: 3 tokens)" &&
    "$M" trace export "$T/k.moetrace" -o "$T/k.csv" && same qwen_pass_key "$T/k.csv" <<'EOF' && pass qwen_pass_key
step,seq,token,layer,slot,expert,weight
0,0,0,0,0,0,0.75
0,0,0,0,1,1,0.125
0,0,0,1,0,4,0.375
0,0,0,1,1,5,0.0625
0,0,1,0,0,2,0.75
0,0,1,0,1,3,0.125
0,0,1,1,0,6,0.375
0,0,1,1,1,7,0.0625
1,1,0,0,0,1,0.75
1,1,0,0,1,3,0.125
1,1,0,1,0,3,0.375
1,1,0,1,1,4,0.0625
1,1,1,0,0,4,0.75
1,1,1,0,1,6,0.125
1,1,1,1,0,5,0.375
1,1,1,1,1,6,0.0625
1,0,2,0,0,0,0.75
1,0,2,0,1,2,0.125
1,0,2,1,0,1,0.375
1,0,2,1,1,2,0.0625
1,1,2,0,0,5,0.75
1,1,2,0,1,7,0.125
1,1,2,1,0,0,0.375
1,1,2,1,1,7,0.0625
2,0,3,0,0,0,0.75
2,0,3,0,1,3,0.125
2,0,3,1,0,2,0.375
2,0,3,1,1,5,0.0625
2,1,3,0,0,1,0.75
2,1,3,0,1,4,0.125
2,1,3,1,0,3,0.375
2,1,3,1,1,6,0.0625
EOF
fi
# conflicting or malformed options: exit 2 with the reason, nothing written
# expect_code NAME CODE NEEDLE -- CMD...: exit CODE and stderr has NEEDLE
expect_code() {
    name=$1 code=$2 needle=$3; shift 4
    run "$@"
    if [ $rc -ne "$code" ]; then fail "$name" "exit $rc, expected $code ($(head -c 300 "$T/err"))"
    elif ! grep -qF -- "$needle" "$T/err"; then fail "$name" "stderr lacks '$needle': $(head -c 300 "$T/err")"
    else pass "$name"; fi
}
expect_code qwen_keep_vs_skip 2 "--keep-warmup conflicts with --skip-warmup" -- \
    "$M" trace import "$W" --keep-warmup --skip-warmup 2 -o "$T/x.moetrace"
expect_code qwen_keep_vs_prefix 2 "--keep-warmup conflicts with --warmup-prefix" -- \
    "$M" trace import "$W" --warmup-prefix w --keep-warmup -o "$T/x.moetrace"
expect_code qwen_pass_by_vs_field_step 2 "--pass-by conflicts with --field step=batch" -- \
    "$M" trace import "$K" --pass-by key=batch --field step=batch -o "$T/x.moetrace"
for bad in rows=0 rows=x bogus key=; do
    expect_code "qwen_pass_by_bad_$bad" 2 "--pass-by '$bad'" -- "$M" trace import "$W" --pass-by "$bad" -o "$T/x.moetrace"
done
# bad rows: an error naming the file and the line, nothing written
{ head -2 "$K"; sed -n 3p "$K" | sed 's/, "batch": "b0"//'; } >"$T/nokey.jsonl"
expect_code qwen_pass_key_missing 1 "nokey.jsonl:3: field 'batch': missing (--pass-by key=batch)" -- \
    "$M" trace import "$T/nokey.jsonl" --pass-by key=batch -o "$T/x.moetrace"
{ head -1 "$K"; sed -n 2p "$K" | sed 's/"b0"/[1]/'; } >"$T/arrkey.jsonl"
expect_code qwen_pass_key_not_scalar 1 "arrkey.jsonl:2: field 'batch': not a string or a number" -- \
    "$M" trace import "$T/arrkey.jsonl" --pass-by key=batch -o "$T/x.moetrace"
{ head -5 "$W"; echo '{"type": "route", "req_id": "0", "token_idx": 2, "layer": 3, "topk_ids": [5, "1"]}'; } >"$T/badrow.jsonl"
expect_code qwen_bad_row_line 1 "badrow.jsonl:6: field 'topk_ids': item 1" -- \
    "$M" trace import "$T/badrow.jsonl" -o "$T/x.moetrace"
[ ! -e "$T/x.moetrace" ] && pass qwen_no_output_on_error || fail qwen_no_output_on_error "$T/x.moetrace exists"
