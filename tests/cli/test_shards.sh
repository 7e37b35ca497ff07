#!/bin/sh
# test_shards.sh: an experiment file swept in four shards through GNU parallel
# (each shard into its own database), merged with `moesim results merge`,
# holds exactly the runs, metrics, per-layer metrics, curves and expectations
# of the same experiment swept by one process. Columns that legitimately
# differ between processes (row ids, host, timestamps, wall seconds) are left
# out of the comparison.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

if ! command -v parallel >/dev/null || ! command -v sqlite3 >/dev/null; then
    fail shards_setup "GNU parallel and sqlite3 are needed (make deps)"
    exit 0
fi

# Small but with every axis the shard split must keep apart: two scopes, two
# cold modes, rho and plain capacities (one duplicate: rho 1 = 2 experts per
# layer on a top-2 trace), a parameterised policy, an expectation.
cat >"$tmp/exp.ini" <<'INI'
[experiment]
name = shards-test
[traces]
default = traces/default.moetrace
[sweep]
policies     = lru, fifo, belady, s3fifo:small=0.2,threshold=2
scopes       = per-layer, global
rho          = 0.5, 1, 2
capacities   = 2, 3
cold_per_seq = off, on
[expect lru-rho1]
metric    = hit_rate
selector  = policy=lru capacity=2
value     = 0.478
tolerance = 0.01
source    = test
INI

"$MOESIM" sweep "$tmp/exp.ini" --db "$tmp/single.db" --jobs 1 >"$tmp/single.out" 2>&1 ||
    fail shards_single "$(cat "$tmp/single.out")"
total=$(sed -n 's/^sweep: \([0-9]*\) runs.*/\1/p' "$tmp/single.out")
# 2 scopes x 2 cold x 4 policies x 4 distinct capacities (per-layer: 1,2,4 + 3; global: 32,64,128 + 2,3 -> 5)
[ "$total" = 72 ] && pass shards_plan_dedup || fail shards_plan_dedup "expected 72 runs, got '$total': $(cat "$tmp/single.out")"

# --jobs 1 per shard: two cores, four shards, two at a time
parallel --halt now,fail=1 -j 2 \
    "$MOESIM" sweep "$tmp/exp.ini" --shard {}/4 --db "$tmp/shard{}.db" --jobs 1 ::: 1 2 3 4 \
    >"$tmp/par.out" 2>&1 || fail shards_parallel "$(cat "$tmp/par.out")"
sum=0
for i in 1 2 3 4; do
    n=$(sqlite3 "$tmp/shard$i.db" "SELECT count(*) FROM runs WHERE status = 'done'")
    [ "$n" -gt 0 ] || fail shards_nonempty "shard $i stored no runs"
    sum=$((sum + n))
done
[ "$sum" = "$total" ] && pass shards_partition || fail shards_partition "shards hold $sum runs, single run $total"

"$MOESIM" results merge -o "$tmp/merged.db" "$tmp"/shard1.db "$tmp"/shard2.db "$tmp"/shard3.db "$tmp"/shard4.db \
    >"$tmp/merge.out" 2>&1 || fail shards_merge "$(cat "$tmp/merge.out")"

dump() {
    sqlite3 "$1" <<'SQL'
.mode list
SELECT 'trace', hash, model, layers, experts, top_k, steps, tokens FROM traces ORDER BY hash;
SELECT 'run', experiment, trace_hash, config_hash, replace(config_text, char(10), ';'), status
  FROM runs ORDER BY trace_hash, config_hash;
SELECT 'cfg', r.trace_hash, r.config_hash, c.key, c.value FROM run_config c JOIN runs r ON r.id = c.run_id
  ORDER BY 2, 3, 4;
SELECT 'metric', r.trace_hash, r.config_hash, m.name, printf('%.17g', m.value) FROM metrics m
  JOIN runs r ON r.id = m.run_id ORDER BY 2, 3, 4;
SELECT 'layer', r.trace_hash, r.config_hash, l.layer, l.name, printf('%.17g', l.value) FROM layer_metrics l
  JOIN runs r ON r.id = l.run_id ORDER BY 2, 3, 4, 5;
SELECT 'curve', r.trace_hash, r.config_hash, c.curve, c.x, printf('%.17g', c.y) FROM curves c
  JOIN runs r ON r.id = c.run_id ORDER BY 2, 3, 4, 5;
SELECT 'expect', * FROM expectations ORDER BY 2, 3, 4;
SQL
}
dump "$tmp/single.db" >"$tmp/single.dump"
dump "$tmp/merged.db" >"$tmp/merged.dump"
if [ ! -s "$tmp/single.dump" ]; then
    fail shards_equal "empty dump of the single-process database"
elif cmp -s "$tmp/single.dump" "$tmp/merged.dump"; then
    pass "shards_equal ($(wc -l <"$tmp/single.dump") rows compared)"
else
    fail shards_equal "merged shards differ from one process: $(diff "$tmp/single.dump" "$tmp/merged.dump" | head -5)"
fi

# a rerun of a finished shard skips everything; bad shard specs are misuse
"$MOESIM" sweep "$tmp/exp.ini" --shard 2/4 --db "$tmp/shard2.db" >"$tmp/again.out" 2>&1
grep -q "0 ran, [0-9]* skipped" "$tmp/again.out" && pass shards_resume || fail shards_resume "$(cat "$tmp/again.out")"
ok=1
for bad in 0/4 5/4 4 a/b 1/0; do
    "$MOESIM" sweep "$tmp/exp.ini" --shard "$bad" --db "$tmp/bad.db" >/dev/null 2>"$tmp/bad.err"
    [ $? -eq 2 ] || { fail shards_bad_spec "--shard $bad did not exit 2: $(cat "$tmp/bad.err")"; ok=0; break; }
done
[ $ok = 1 ] && pass shards_bad_spec
