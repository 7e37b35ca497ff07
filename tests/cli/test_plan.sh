#!/bin/sh
# test_plan.sh: `moesim plan` on a small trace with the tinymix profile: the
# choice fits the budget and is the best predicted tok/s of the curve; a
# budget below the dense bytes is a clear error; missing options exit 2.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$MOESIM" trace gen -o "$tmp/t.moetrace" --steps 400 --layers 6 --experts 32 --top-k 4 --seq-len 200 \
    --prefill 8 --no-weights --seed 2 >/dev/null 2>&1 || { echo "FAIL plan_setup: trace gen"; exit 0; }
# tinymix (experiments/models.ini): dense (6 x 53504 + 32768) x 2 bytes = 707584 B;
# an expert at f16 = 55296 x 2 = 110592 B; 0.01 GiB = 10737418 B leaves room for
# floor((10737418 - 707584) / 110592) = 90 of the 192 experts
"$MOESIM" plan --trace "$tmp/t.moetrace" --model tinymix --ram 0.01 --device nvme-cpu >"$tmp/out" 2>"$tmp/err"
rc=$?
choice=$(sed -n 's/^choice: cache \([0-9]*\) experts.*/\1/p' "$tmp/out")
if [ $rc -eq 0 ] && [ -n "$choice" ] && [ "$choice" -le 90 ] && grep -q "= 90 experts" "$tmp/out"; then
    echo "PASS plan_choice_within_budget"
else
    echo "FAIL plan_choice_within_budget: rc $rc choice '$choice': $(cat "$tmp/out" "$tmp/err")"
fi
# the choice row is marked, within budget, and no row within budget predicts more
if awk -v c="$choice" '
    /^experts/ { t = 1; next }
    t && /^[0-9]/ { if ($1 <= 90 && $5 > best) best = $5; if ($1 == c) { mine = $5; marked = /<- choice/ } }
    /^$/ && t && best { t = 0 }
    END { exit !(marked && mine >= best && best > 0) }' "$tmp/out"; then
    echo "PASS plan_choice_is_best"
else
    echo "FAIL plan_choice_is_best"; cat "$tmp/out"
fi
grep -q "timing-model replay" "$tmp/out" && grep -q "Belady" "$tmp/out" && echo "PASS plan_curve_columns" ||
    echo "FAIL plan_curve_columns"

# 0.0005 GiB = 536870 B is below the 707584 dense bytes
"$MOESIM" plan --trace "$tmp/t.moetrace" --model tinymix --ram 0.0005 --device nvme-cpu >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "below the dense weights" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    echo "PASS plan_budget_below_dense"
else
    echo "FAIL plan_budget_below_dense: rc $rc: $(cat "$tmp/err")"
fi
"$MOESIM" plan --trace "$tmp/t.moetrace" --model Mixtral-8x7B --ram 64 --device nvme-cpu >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && [ -s "$tmp/err" ] && echo "PASS plan_geometry_mismatch" || echo "FAIL plan_geometry_mismatch: $(cat "$tmp/err")"
"$MOESIM" plan --trace "$tmp/t.moetrace" --ram 1 >/dev/null 2>&1
[ $? -eq 2 ] && echo "PASS plan_usage" || echo "FAIL plan_usage"
# progress: on a terminal (script(1)) the curve's progress line is drawn and
# erased before the plan prints; redirected, stderr stays empty
if command -v script >/dev/null; then
    MOESIM_PROGRESS_AFTER=0 script -qc "$MOESIM plan --trace traces/fit_mixtral-8x7b.moetrace --model Mixtral-8x7B --ram 64 --device nvme-cpu" /dev/null >"$tmp/tty" 2>&1
    grep -q "moesim plan: miss-ratio curve: *[0-9]*% (" "$tmp/tty" && grep -q "plan: Mixtral-8x7B on nvme-cpu" "$tmp/tty" &&
        echo "PASS plan_progress_tty" || echo "FAIL plan_progress_tty: $(head -c 300 "$tmp/tty")"
fi
MOESIM_PROGRESS_AFTER=0 "$MOESIM" plan --trace traces/fit_mixtral-8x7b.moetrace --model Mixtral-8x7B --ram 64 --device nvme-cpu >/dev/null 2>"$tmp/err"
[ ! -s "$tmp/err" ] && echo "PASS plan_progress_redirected" || echo "FAIL plan_progress_redirected: $(cat "$tmp/err")"
