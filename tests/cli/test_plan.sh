#!/bin/sh
# test_plan.sh: `moesim plan` takes `moesim run`'s flags (--precision,
# --scope, --policy lists, sizes with units), compares per-layer and global
# and the listed policies at the budget, and names the best; its numbers are
# the ones `moesim run` gives for the same configuration. Old spellings
# (--bits, a bare --ram) are refused with a hint naming the new one.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
T="$tmp/t.moetrace"
"$MOESIM" trace gen -o "$T" --steps 400 --layers 6 --experts 32 --top-k 4 --seq-len 200 \
    --prefill 8 --no-weights --seed 2 >/dev/null 2>&1 || { echo "FAIL plan_setup: trace gen"; exit 0; }
# tinymix (experiments/models.ini): dense (6 x 53504 + 32768) x 2 bytes = 707584 B;
# an expert at f16 = 55296 x 2 = 110592 B; 10MiB = 10485760 B leaves room for
# floor((10485760 - 707584) / 110592) = floor(88.4) = 88 of the 192 experts in
# all, floor(88 / 6) = 14 per layer (84 in all)
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --policy lru,fifo,belady \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ] && grep -q "^bytes: dense 691.0 KiB (16 bits), expert 108.0 KiB, .* = 88 experts, 14 per layer$" "$tmp/out" &&
   grep -q "^choice (global): cache 88 experts" "$tmp/out" && grep -q "^choice (per-layer): cache 84 experts (14 per layer)" "$tmp/out"; then
    pass plan_room_hand_worked
else fail plan_room_hand_worked "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi

# each scope's curve: the choice row is marked, within budget, and no row within budget predicts more
for sc in per-layer global; do
    cap=$([ $sc = global ] && echo 88 || echo 84)
    if awk -v sc="$sc" -v cap="$cap" '
        /^LRU curve, / { t = ($3 == sc); next }
        t && /^[0-9]/ { if ($1 <= cap && $6 > best) best = $6; if (/<- choice/) { mine = $6; c = $1 } }
        t && /^choice/ { t = 0 }
        END { exit !(c == cap && mine >= best && best > 0) }' "$tmp/out"; then pass plan_curve_choice_$sc
    else fail plan_curve_choice_$sc "$(cat "$tmp/out")"; fi
done

# the comparison: one row per scope x policy; its timing-model tok/s and hit
# rate are `moesim run`'s for the same configuration
bad=""
for sc in per-layer global; do
    for pol in lru fifo; do
        cap=$([ $sc = global ] && echo 88 || echo 14)
        row=$(awk -v sc="$sc" -v p="$pol" '/^at the budget/ {t = 1} t && $1 == sc && $2 == p' "$tmp/out")
        got=$(echo "$row" | awk '{print $(NF)}')
        [ $sc = per-layer ] && got=$(echo "$row" | awk '{print $7}')
        hr=$(echo "$row" | awk -v sc="$sc" '{print (sc == "global") ? $4 : $5}')
        want=$("$MOESIM" run --trace "$T" --policy $pol --capacity $cap --scope $sc --model tinymix --device nvme-cpu \
               --precision uniform:bits=16 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.3f %.4f" % (r["tok_s"], r["hit_rate"]))')
        [ "$got $hr" = "$want" ] || bad="$bad $sc/$pol(plan '$got $hr', run '$want')"
    done
done
[ -z "$bad" ] && pass plan_compare_equals_run || fail plan_compare_equals_run "$bad"

# best = the fastest timing-model row that is not an oracle; belady is a bound, n/a in the timing model
best=$(awk '/^at the budget/ {t = 1; next} t && /^(per-layer|global) / && $0 !~ /oracle/ && $NF != "n/a" {
            v = $NF; if (v + 0 > b + 0) { b = v; who = $1 " " $2 } } END { print who ", " b }' "$tmp/out")
if grep -q "^best: $best tok/s (timing model)" "$tmp/out" && grep -q "^global  *belady .* n/a  *oracle (a bound)$" "$tmp/out" &&
   grep -q "^n/a: policy belady needs the future" "$tmp/out" && [ "$(grep -c '^  vs  ' "$tmp/out")" = 3 ]; then
    pass plan_best_named
else fail plan_best_named "expected best '$best': $(sed -n '/^at the budget/,$p' "$tmp/out")"; fi

# one scope only: one curve, its rows only
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --scope global >"$tmp/out" 2>&1
[ "$(grep -c '^LRU curve' "$tmp/out")" = 1 ] && ! grep -q '^per-layer ' "$tmp/out" && grep -q '^best: global lru' "$tmp/out" &&
    pass plan_scope_one || fail plan_scope_one "$(cat "$tmp/out")"

# --precision as in run: q4 experts are smaller, so more fit; the size is run's
q4=$("$MOESIM" run --trace "$T" --capacity 4 --model tinymix --device nvme-cpu | sed -n 's/.* q4 \([0-9.]* [KM]iB\).*/\1/p')
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --precision uniform:bits=4 >"$tmp/out" 2>&1
[ -n "$q4" ] && grep -q "^plan: .* experts at uniform:bits=4$" "$tmp/out" && grep -q "expert $q4, " "$tmp/out" &&
    grep -q "= 192 experts (the whole model fits)" "$tmp/out" && pass plan_precision || fail plan_precision "q4 '$q4': $(head -4 "$tmp/out")"

# sizes with units as run's --capacity takes them; old spellings refused with the new one named
"$MOESIM" plan --trace "$T" --model tinymix --ram 0.5GiB --device nvme-cpu >/dev/null 2>&1 && pass plan_ram_units ||
    fail plan_ram_units "--ram 0.5GiB refused"
"$MOESIM" plan --trace "$T" --model tinymix --ram 10 --device nvme-cpu >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && [ ! -s "$tmp/out" ] && grep -q "^moesim plan: --ram 10: give a unit, e.g. --ram 10GiB" "$tmp/err" &&
    pass plan_ram_bare_refused || fail plan_ram_bare_refused "rc $rc: $(cat "$tmp/err")"
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --bits 4 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && [ ! -s "$tmp/out" ] && grep -q "^moesim plan: --bits is now --precision uniform:bits=4" "$tmp/err" &&
    pass plan_bits_refused || fail plan_bits_refused "rc $rc: $(cat "$tmp/err")"
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --precision mlx-tiers >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "gives experts different sizes" "$tmp/err" && pass plan_mixed_precision_refused ||
    fail plan_mixed_precision_refused "rc $rc: $(cat "$tmp/err")"
"$MOESIM" plan --trace "$T" --model tinymix --ram 10MiB --device nvme-cpu --policy lur >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "unknown policy 'lur'; close: lru" "$tmp/err" && pass plan_bad_policy || fail plan_bad_policy "rc $rc: $(cat "$tmp/err")"

# 512KiB = 524288 B is below the 707584 dense bytes
"$MOESIM" plan --trace "$T" --model tinymix --ram 512KiB --device nvme-cpu >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "below the dense weights (691.0 KiB" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    pass plan_budget_below_dense
else fail plan_budget_below_dense "rc $rc: $(cat "$tmp/err")"; fi
"$MOESIM" plan --trace "$T" --model Mixtral-8x7B --ram 64GiB --device nvme-cpu >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && [ -s "$tmp/err" ] && pass plan_geometry_mismatch || fail plan_geometry_mismatch "$(cat "$tmp/err")"
"$MOESIM" plan --trace "$T" --ram 1GiB >/dev/null 2>&1
[ $? -eq 2 ] && pass plan_usage || fail plan_usage "missing options accepted"
# progress: on a terminal (script(1)) the curve's progress line is drawn and
# erased before the plan prints; redirected, stderr stays empty
if command -v script >/dev/null; then
    MOESIM_PROGRESS_AFTER=0 script -qc "$MOESIM plan --trace traces/fit_mixtral-8x7b.moetrace --model Mixtral-8x7B --ram 64GiB --device nvme-cpu" /dev/null >"$tmp/tty" 2>&1
    grep -q "moesim plan: miss-ratio curve: *[0-9]*% (" "$tmp/tty" && grep -q "plan: Mixtral-8x7B on nvme-cpu" "$tmp/tty" &&
        pass plan_progress_tty || fail plan_progress_tty "$(head -c 300 "$tmp/tty")"
fi
MOESIM_PROGRESS_AFTER=0 "$MOESIM" plan --trace traces/fit_mixtral-8x7b.moetrace --model Mixtral-8x7B --ram 64GiB --device nvme-cpu >/dev/null 2>"$tmp/err"
[ ! -s "$tmp/err" ] && pass plan_progress_redirected || fail plan_progress_redirected "$(cat "$tmp/err")"
