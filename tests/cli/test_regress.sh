#!/bin/sh
# test_regress.sh: `moesim regress` against the committed baseline passes, and
# a baseline that claims a better hit rate than the code delivers fails with a
# diff line naming the metric and the configuration.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# (a) the real regression check that CI relies on
if "$MOESIM" regress --baseline results/baseline.csv >"$tmp/out" 2>&1; then
    pass regress_baseline
else
    fail regress_baseline "moesim regress --baseline results/baseline.csv exited non-zero:
$(cat "$tmp/out")"
fi

# The other checks use the first rows of the baseline only, to stay fast
# (also under the sanitizer build).
awk '/^#/ { print; next } { print; if (++n == 5) exit }' results/baseline.csv >"$tmp/small.csv"

# (b) a deliberately worse policy: raise one stored hit_rate by 0.05, as if the
# code had lost 5 points there. The first data row is taken (lru, capacity 1).
awk -F, 'BEGIN { OFS = "," }
    /^#/ { print; next }
    !h { for (i = 1; i <= NF; i++) if ($i == "hit_rate") c = i; h = 1; print; next }
    !done { $c = sprintf("%.6f", $c + 0.05); done = 1 } { print }' \
    "$tmp/small.csv" >"$tmp/worse.csv"
cmp -s "$tmp/small.csv" "$tmp/worse.csv" && fail regress_worse_setup "awk did not change the copy"
"$MOESIM" regress --baseline "$tmp/worse.csv" >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    fail regress_worse "exit 0 on a baseline 0.05 better than now"
elif ! grep -q '^WORSE  *hit_rate .*-0\.05' "$tmp/out"; then
    fail regress_worse "no diff line 'WORSE hit_rate ... -0.05...':
$(cat "$tmp/out")"
elif ! grep -q 'FAILED: 1 metric' "$tmp/out"; then
    fail regress_worse "summary does not say exactly one metric is worse: $(tail -2 "$tmp/out")"
else
    pass regress_worse
fi

# a lower stored value is an improvement: reported, passes
awk -F, 'BEGIN { OFS = "," }
    /^#/ { print; next }
    !h { for (i = 1; i <= NF; i++) if ($i == "hit_rate") c = i; h = 1; print; next }
    !done { $c = sprintf("%.6f", $c - 0.05); done = 1 } { print }' \
    "$tmp/small.csv" >"$tmp/better.csv"
if "$MOESIM" regress --baseline "$tmp/better.csv" >"$tmp/out" 2>&1 && grep -q '^better  *hit_rate' "$tmp/out"; then
    pass regress_better_passes
else
    fail regress_better_passes "$(cat "$tmp/out")"
fi

# the tolerance admits the 0.05 drop when it is larger
if "$MOESIM" regress --baseline "$tmp/worse.csv" --tol 0.06 >"$tmp/out" 2>&1; then
    pass regress_tolerance
else
    fail regress_tolerance "--tol 0.06 still failed: $(tail -3 "$tmp/out")"
fi

# --update rewrites the worse copy back to the measured values
cp "$tmp/worse.csv" "$tmp/upd.csv"
if "$MOESIM" regress --baseline "$tmp/upd.csv" --update >"$tmp/out" 2>&1 &&
   cmp -s "$tmp/upd.csv" "$tmp/small.csv"; then
    pass regress_update
else
    fail regress_update "updated copy differs from the committed baseline: $(diff "$tmp/upd.csv" "$tmp/small.csv" | head -5)"
fi

# a changed trace content is caught by trace_sha
sed 's/^\(traces\/default\.moetrace\),[0-9a-f]*,/\1,0000000000000000,/' "$tmp/small.csv" >"$tmp/sha.csv"
if ! "$MOESIM" regress --baseline "$tmp/sha.csv" >"$tmp/out" 2>&1 && grep -q '^TRACE' "$tmp/out"; then
    pass regress_trace_changed
else
    fail regress_trace_changed "$(tail -3 "$tmp/out")"
fi

# bad input names file and line; misuse exits 2
printf 'trace,policy,capacity,hit_rate\ntraces/default.moetrace,lru,4\n' >"$tmp/bad.csv"
"$MOESIM" regress --baseline "$tmp/bad.csv" >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'bad.csv:2: 3 fields' "$tmp/out"; then pass regress_bad_row; else fail regress_bad_row "rc $rc: $(cat "$tmp/out")"; fi
printf 'trace,policy,capacity,hitrate\n' >"$tmp/bad2.csv"
"$MOESIM" regress --baseline "$tmp/bad2.csv" >"$tmp/out" 2>&1
if grep -q "bad2.csv:1: column 'hitrate'" "$tmp/out"; then pass regress_bad_column; else fail regress_bad_column "$(cat "$tmp/out")"; fi
"$MOESIM" regress >/dev/null 2>&1
if [ $? -eq 2 ]; then pass regress_misuse; else fail regress_misuse "no --baseline did not exit 2"; fi
