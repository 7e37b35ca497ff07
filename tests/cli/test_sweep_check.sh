#!/bin/sh
# test_sweep_check.sh: a sweep checks its whole run list with the replay's
# own rules before the first run: runs that cannot run are refused in one
# message (each reason once, with its runs and policies, and a hint), exit 2,
# nothing replayed and the database not created or changed. `--policies all`
# means the policies that apply to the other options: those left out are
# named once on stderr with the reason.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T=traces/default.moetrace  # its header has no bytes per expert
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
registered=$(grep -c '^POLICY(' core/policies/registry.def)

# 1. --device without bytes per expert: every run refused up front, one line
"$MOESIM" sweep --trace $T --policies lru,fifo,lfu --capacities 2,4 --device nvme-cpu --db "$tmp/a.db" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
n=$(grep -c "needs bytes per expert" "$tmp/err")
if [ $rc = 2 ] && [ "$n" = 1 ] && grep -q "^moesim sweep: 6 of 6 runs cannot run; nothing was run and $tmp/a.db was not touched:" "$tmp/err" &&
   grep -q "^  6 runs (policies lru, fifo, lfu; e.g. $T, lru, capacity 2 experts per layer, per-layer): --device needs bytes per expert: give --model NAME" "$tmp/err" &&
   grep -q "^moesim sweep: hint:" "$tmp/err" && [ ! -s "$tmp/out" ] && [ ! -e "$tmp/a.db" ]; then
    pass sweep_check_refused_upfront
else fail sweep_check_refused_upfront "rc $rc, $n lines name the reason, db $(ls "$tmp"): $(cat "$tmp/out" "$tmp/err")"; fi

# 2. only the runs that cannot run are listed, grouped by reason: belady
#    (needs the future) and --skip on a trace without gate weights
"$MOESIM" trace gen -o "$tmp/nw.moetrace" --steps 50 --layers 4 --experts 8 --top-k 2 --seq-len 25 \
    --no-weights --seed 3 >/dev/null 2>&1 || fail sweep_check_setup "trace gen"
"$MOESIM" sweep --trace $T --trace "$tmp/nw.moetrace" --policies lru,belady --capacities 2 --skip cum=0.9 \
    --db "$tmp/b.db" >/dev/null 2>"$tmp/err"
rc=$?
# belady on both traces gives one message (2 runs); lru on the weightless trace another
if [ $rc = 2 ] && grep -q "^moesim sweep: 3 of 4 runs cannot run" "$tmp/err" &&
   grep -q "^  2 runs (policies belady; e.g. $T, belady, capacity 2 experts per layer, per-layer): policy belady needs the future" "$tmp/err" &&
   grep -q "^  1 run (policies lru; e.g. $tmp/nw.moetrace, lru, .*): --skip needs gate weights, and the trace has none" "$tmp/err" &&
   [ "$(grep -c '^  ' "$tmp/err")" = 2 ] && [ ! -e "$tmp/b.db" ]; then
    pass sweep_check_grouped_by_reason
else fail sweep_check_grouped_by_reason "rc $rc: $(cat "$tmp/err")"; fi

# 3. a refused sweep leaves an existing database byte for byte as it was
"$MOESIM" sweep --trace $T --policies lru --capacities 2 --db "$tmp/c.db" >/dev/null 2>&1
before=$(md5sum <"$tmp/c.db")
"$MOESIM" sweep --trace $T --policies lru --capacities 4 --device nvme-cpu --db "$tmp/c.db" >/dev/null 2>"$tmp/err"
rc=$?
after=$(md5sum <"$tmp/c.db")
[ $rc = 2 ] && [ "$before" = "$after" ] && [ "$(sqlite3 "$tmp/c.db" 'select count(*) from runs')" = 1 ] &&
    pass sweep_check_db_untouched || fail sweep_check_db_untouched "rc $rc, database changed: $before / $after"

# 4. --policies all with the timing model: belady left out, named once
#    (two capacities, one line), every other registered policy runs
"$MOESIM" sweep --trace $T --policies all --capacities 2,4 --device nvme-cpu --model Mixtral-8x7B --db "$tmp/d.db" \
    >/dev/null 2>"$tmp/err"
rc=$?
n=$(sqlite3 "$tmp/d.db" "select count(*) from runs where status = 'done'")
b=$(sqlite3 "$tmp/d.db" "select count(*) from runs where config_text like '%policy=belady%'")
want=$(( (registered - 1) * 2 ))
if [ $rc = 0 ] && [ "$n" = "$want" ] && [ "$b" = 0 ] && [ "$(grep -c 'left out' "$tmp/err")" = 1 ] &&
   grep -q "^moesim sweep: --policies all: left out belady: policy belady needs the future (next use)" "$tmp/err"; then
    pass sweep_all_applies
else fail sweep_all_applies "rc $rc, $n runs (want $want), $b belady: $(cat "$tmp/err")"; fi

# 5. without the extended engine belady applies: all means every policy, silently
"$MOESIM" sweep --trace $T --policies all --capacities 2 --db "$tmp/e.db" >/dev/null 2>"$tmp/err"
rc=$?
n=$(sqlite3 "$tmp/e.db" "select count(*) from runs where status = 'done'")
[ $rc = 0 ] && [ "$n" = "$registered" ] && ! grep -q "left out" "$tmp/err" && pass sweep_all_plain_keeps_all ||
    fail sweep_all_plain_keeps_all "rc $rc, $n runs of $registered: $(cat "$tmp/err")"

# 6. the same rule in an experiment file's "policies = all"; an axis that
#    applies to some runs only: belady runs where prefetch is none and is
#    left out where a prefetcher runs the extended engine
cat >"$tmp/x.ini" <<INI
[experiment]
name = chk
[traces]
t = $T
[sweep]
policies = all
capacities = 2
prefetch = none, topn:n=2
INI
"$MOESIM" sweep "$tmp/x.ini" --db "$tmp/f.db" >/dev/null 2>"$tmp/err"
rc=$?
b=$(sqlite3 "$tmp/f.db" "select count(*) from runs where config_text like '%policy=belady%'")
bp=$(sqlite3 "$tmp/f.db" "select count(*) from runs where config_text like '%policy=belady%' and config_text like '%prefetch=%'")
n=$(sqlite3 "$tmp/f.db" "select count(*) from runs")
if [ $rc = 0 ] && [ "$b" = 1 ] && [ "$bp" = 0 ] && [ "$n" = $((2 * registered - 1)) ] &&
   [ "$(grep -c 'left out belady' "$tmp/err")" = 1 ]; then pass sweep_all_per_run
else fail sweep_all_per_run "rc $rc, belady runs $b (with prefetch $bp), $n runs: $(cat "$tmp/err")"; fi

# 7. a key sequence: the policies that read routing are left out of all
python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack("<IQIq", 0, 1000 + (i * 7) % 50, 1, -1) for i in range(2000)))' \
    >"$tmp/k.bin"
"$MOESIM" trace import --format lcs-oracle "$tmp/k.bin" -o "$tmp/k.moetrace" >/dev/null 2>&1
"$MOESIM" sweep --trace "$tmp/k.moetrace" --policies all --capacities 8 --scope global --db "$tmp/g.db" >/dev/null 2>"$tmp/err"
rc=$?
routing=$(grep -l "MOE_POLICY_NEEDS_ROUTING" core/policies/*.c | wc -l)
n=$(sqlite3 "$tmp/g.db" "select count(*) from runs where status = 'done'")
if [ $rc = 0 ] && [ "$n" = $((registered - routing)) ] && [ "$(grep -c "left out .*reads a trace's routing" "$tmp/err")" = "$routing" ]; then
    pass sweep_all_keyseq
else fail sweep_all_keyseq "rc $rc, $n runs ($registered registered, $routing read routing): $(cat "$tmp/err")"; fi
