#!/bin/sh
# test_experiment.sh: experiment files: errors name file:line, rho maps to
# experts per layer / in all, expectations land in SQLite, the shipped
# experiment files parse.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# expect_err NAME "grep pattern" <<ini
expect_err() {
    cat >"$tmp/$1.ini"
    "$MOESIM" sweep "$tmp/$1.ini" --db "$tmp/$1.db" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "$2" "$tmp/out"; then pass "experiment_$1"; else fail "experiment_$1" "rc $rc: $(cat "$tmp/out")"; fi
}
expect_err unknown_key "unknown_key.ini:4: unknown key 'polices'" <<'INI'
[traces]
a = traces/default.moetrace
[sweep]
polices = lru
capacities = 2
INI
expect_err unknown_policy "unknown_policy.ini:4: \[sweep\] policies: .*unknown policy 'lruu'" <<'INI'
[traces]
a = traces/default.moetrace
[sweep]
policies = lru, lruu
capacities = 2
INI
expect_err bad_rho "bad_rho.ini:5: \[sweep\] rho: .*'-1' is not a positive number" <<'INI'
[traces]
a = traces/default.moetrace
[sweep]
policies = lru
rho = 1, -1
INI
expect_err no_trace "no trace" <<'INI'
[sweep]
policies = lru
capacities = 2
INI
expect_err missing_trace "nope.moetrace" <<'INI'
[traces]
a = traces/nope.moetrace
[sweep]
policies = lru
capacities = 2
INI
expect_err expect_no_value "expect_no_value.ini:6: \[expect x\] needs a value" <<'INI'
[traces]
a = traces/default.moetrace
[sweep]
policies = lru
capacities = 2
[expect x]
metric = hit_rate
INI

# rho: top-2 trace with 32 layers: rho 1.5 -> 3 per layer, 96 in all
cat >"$tmp/rho.ini" <<'INI'
[experiment]
name = rho-check
[traces]
a = traces/default.moetrace
[sweep]
policies = lru
scopes = per-layer, global
rho = 1.5
[expect e]
metric = hit_rate
selector = policy=lru
value = 0.5
tolerance = 0.1
source = nowhere
INI
"$MOESIM" sweep "$tmp/rho.ini" --db "$tmp/rho.db" >"$tmp/out" 2>&1 || fail experiment_rho "$(cat "$tmp/out")"
caps=$(sqlite3 "$tmp/rho.db" "SELECT scope || '=' || capacity FROM run_summary WHERE experiment = 'rho-check' ORDER BY scope" | tr '\n' ' ')
[ "$caps" = "global=96 per-layer=3 " ] && pass experiment_rho || fail experiment_rho "got '$caps'"
ex=$(sqlite3 "$tmp/rho.db" "SELECT experiment, metric, selector, value, tolerance, source FROM expectations")
[ "$ex" = "rho-check|hit_rate|policy=lru|0.5|0.1|nowhere" ] && pass experiment_expectations || fail experiment_expectations "got '$ex'"

# command-line axes and a file do not mix
"$MOESIM" sweep "$tmp/rho.ini" --policies lru --db "$tmp/x.db" >/dev/null 2>&1
[ $? -eq 2 ] && pass experiment_cli_mix || fail experiment_cli_mix "expected exit 2"

# the shipped policies.ini parses and plans; shard 1/1000 keeps the run short
"$MOESIM" sweep experiments/policies.ini --shard 1/1000 --db "$tmp/pol.db" --jobs 1 >"$tmp/out" 2>&1 &&
    pass experiment_policies_ini || fail experiment_policies_ini "$(cat "$tmp/out")"
# [expect] blocks are checked after the sweep: a PASS or FAIL line each (an
# expectation no run matches fails); --strict turns a FAIL into exit 1
cat >"$tmp/ex.ini" <<'INI'
[experiment]
name = ex
[traces]
s = traces/tinymix_session.moetrace
[sweep]
policies = lru
capacities = 4, 8
[expect right]
metric = hit_rate
selector = policy=lru capacity=4
value = 0.3032
tolerance = 0.0005
[expect wrong]
metric = hit_rate
selector = policy=lru capacity=8
value = 0.5
tolerance = 0.01
source = a made-up number
[expect none]
metric = hit_rate
selector = policy=fifo
value = 0.5
INI
"$MOESIM" sweep "$tmp/ex.ini" --db "$tmp/ex.db" >"$tmp/out" 2>&1
rc=$?
"$MOESIM" sweep "$tmp/ex.ini" --db "$tmp/ex.db" --strict >"$tmp/out2" 2>&1
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 1 ] &&
   grep -q '^expect right: hit_rate = 0.3032 (mean of 1 run), expected 0.3032 +- 0.0005: PASS$' "$tmp/out" &&
   grep -q '^expect wrong: hit_rate = 0.5[0-9]* (mean of 1 run), expected 0.5 +- 0.01: FAIL (a made-up number)$' "$tmp/out" &&
   grep -q '^expect none: FAIL: no finished run of experiment ex has hit_rate and policy=fifo$' "$tmp/out" &&
   grep -q "2 expectation(s) not met (--strict)" "$tmp/out2"; then pass experiment_expect_checked
else fail experiment_expect_checked "rc $rc / $rc2: $(cat "$tmp/out" "$tmp/out2")"; fi
# the shipped experiment's own expectation holds
"$MOESIM" sweep experiments/policies.ini --db "$tmp/pol.db" --strict >"$tmp/out" 2>&1 &&
    grep -q '^expect lru-rho1-per-layer: .*PASS' "$tmp/out" && pass experiment_shipped_expect ||
    fail experiment_shipped_expect "$(tail -3 "$tmp/out")"
