#!/bin/sh
# test_sweep_resume.sh: a real sweep killed with SIGKILL midway and run again
# redoes only the missing runs, and ends with the same database content
# (ignoring ids, timestamps and timings) as a sweep that was never interrupted.
MOESIM=${MOESIM:-build/moesim}
dir=$(mktemp -d /tmp/moesim-resume-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL $1: $2"; exit 1; }
# A private copy: a rebuild by someone else mid-test would change the code
# version recorded with the runs.
cp "$MOESIM" "$dir/moesim" || fail sweep_resume_setup "cannot copy $MOESIM"
MOESIM=$dir/moesim

# The trace: 8 layers x 32 experts, top-2, from the seeded generator; if this
# moesim has no `trace gen`, the same shape in the CSV interchange form from
# awk's seeded rand() (identical on every call).
if "$MOESIM" trace gen --help >/dev/null 2>&1; then
    T=$dir/t.moetrace
    "$MOESIM" trace gen -o "$T" --steps 4000 --layers 8 --experts 32 --top-k 2 --seed 7 >/dev/null 2>"$dir/err" ||
        fail sweep_resume_setup "moesim trace gen failed: $(cat "$dir/err")"
else
    T=$dir/t.csv
    awk 'BEGIN { srand(7); print "step,seq,token,layer,slot,expert,weight"
      for (s = 0; s < 6000; s++) for (l = 0; l < 8; l++) {
        a = int(32 * rand() * rand()); b = (a + 1 + int(31 * rand() * rand())) % 32
        printf "%d,%d,%d,%d,0,%d,0.75\n%d,%d,%d,%d,1,%d,0.25\n", s, int(s / 1000), s % 1000, l, a, s, int(s / 1000), s % 1000, l, b } }' \
        >"$T" || fail sweep_resume_setup "cannot write the trace"
fi
"$MOESIM" run --trace "$T" --policy lru --capacity 2 >/dev/null 2>"$dir/err" ||
    fail sweep_resume_setup "moesim run cannot read the trace: $(cat "$dir/err")"

set -- --trace "$T" --policies all --capacities 1:32:2 --scope per-layer,global --experiment resume --jobs 2

# Deterministic columns only, keyed by run identity, in a fixed order.
dump() {
    sqlite3 -batch "$1" "
      SELECT 'trace', hash, path, model, layers, experts, top_k, steps, tokens, source, meta FROM traces ORDER BY hash;
      SELECT 'run', experiment, trace_hash, config_hash, config_text, code_version, host, status FROM runs ORDER BY trace_hash, config_hash;
      SELECT 'config', r.trace_hash, r.config_hash, c.key, c.value FROM run_config c JOIN runs r ON r.id = c.run_id ORDER BY 2, 3, 4;
      SELECT 'metric', r.trace_hash, r.config_hash, m.name, m.value FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY 2, 3, 4;
      SELECT 'layer', r.trace_hash, r.config_hash, m.layer, m.name, m.value FROM layer_metrics m JOIN runs r ON r.id = m.run_id ORDER BY 2, 3, 4, 5;
      SELECT 'curve', r.trace_hash, r.config_hash, m.curve, m.x, m.y FROM curves m JOIN runs r ON r.id = m.run_id ORDER BY 2, 3, 4, 5;
      SELECT 'expect', * FROM expectations ORDER BY 2, 3, 4;"
}

# 1. The uninterrupted reference.
"$MOESIM" sweep "$@" --db "$dir/full.db" >"$dir/full.out" 2>&1 || fail sweep_resume_reference "$(cat "$dir/full.out")"
total=$(sqlite3 "$dir/full.db" "SELECT count(*) FROM runs WHERE status = 'done'")
[ "$total" -gt 100 ] || fail sweep_resume_reference "only $total runs"

# 2. The same sweep, killed with SIGKILL once some runs are stored.
"$MOESIM" sweep "$@" --db "$dir/part.db" >"$dir/part.out" 2>&1 &
pid=$!
n=0 tries=0
while [ "$tries" -lt 3000 ]; do
    n=$(sqlite3 "$dir/part.db" "SELECT count(*) FROM runs" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 20 ] && break
    kill -0 "$pid" 2>/dev/null || break
    tries=$((tries + 1))
    sleep 0.01
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
stored=$(sqlite3 "$dir/part.db" "SELECT count(*) FROM runs WHERE status = 'done'")
partial=$(sqlite3 "$dir/part.db" "SELECT count(*) FROM runs WHERE status != 'done'")
[ "$partial" -eq 0 ] || fail sweep_resume_killed "$partial runs left half-written after kill -9"
[ "$stored" -gt 0 ] && [ "$stored" -lt "$total" ] ||
    fail sweep_resume_killed "kill landed outside the sweep ($stored of $total runs stored); make the trace bigger"
echo "PASS sweep_resume_killed ($stored of $total runs stored when killed)"

# 3. Rerun: only the missing runs are replayed.
"$MOESIM" sweep "$@" --db "$dir/part.db" >"$dir/resume.out" 2>&1 || fail sweep_resume_rerun "$(cat "$dir/resume.out")"
expect="sweep: $total runs: $((total - stored)) ran, $stored skipped"
grep -q "^$expect" "$dir/resume.out" || fail sweep_resume_rerun "expected '$expect', got: $(cat "$dir/resume.out")"
echo "PASS sweep_resume_rerun"

# 4. Same content as the uninterrupted sweep.
dump "$dir/full.db" >"$dir/full.dump" && dump "$dir/part.db" >"$dir/part.dump" || fail sweep_resume_same "sqlite3 dump failed"
lines=$(wc -l <"$dir/full.dump")
[ "$lines" -gt "$total" ] || fail sweep_resume_same "dump too short ($lines lines)"
cmp -s "$dir/full.dump" "$dir/part.dump" ||
    fail sweep_resume_same "databases differ: $(diff "$dir/full.dump" "$dir/part.dump" | head -5)"
echo "PASS sweep_resume_same ($lines rows compared)"

# 5. A third run does nothing.
"$MOESIM" sweep "$@" --db "$dir/part.db" >"$dir/again.out" 2>&1 || fail sweep_resume_idempotent "$(cat "$dir/again.out")"
grep -q "^sweep: $total runs: 0 ran, $total skipped" "$dir/again.out" || fail sweep_resume_idempotent "$(cat "$dir/again.out")"
echo "PASS sweep_resume_idempotent"
