#!/bin/sh
# test_import_rules.sh: `moesim trace import` never guesses silently.
#  1. an explicit --order gives the trace auto-detection gives;
#  2. an option that does not apply to the format is an error naming both;
#  3. libCacheSim files are sniffed (oracleGeneral by size and records, CSV
#     by header); an unknown file lists the formats and asks for --format;
#  4. a libCacheSim CSV key column that looks like a time/version column is
#     an error by default and a warning when chosen (--strict: an error);
#  5. JSONL rows that leave (token, layer) records empty give a warning with
#     counts (--strict: an error); pass-relative token_pos gets right phases.
# One PASS/FAIL line per case. Run from the repository root.
M=${MOESIM:-build/moesim}
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

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
    miss=$(echo "$needles" | while IFS= read -r n; do
        [ -n "$n" ] && ! grep -qF -- "$n" "$T/err" && printf '%s' "'$n' "
    done)
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
