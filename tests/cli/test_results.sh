#!/bin/sh
# test_results.sh: the results commands and the sweep's handling of the
# database: errors naming the path, list/show/export numbers, re-running a
# half-written run, merge with duplicates and conflicts, --help everywhere.
MOESIM=${MOESIM:-build/moesim}
dir=$(mktemp -d /tmp/moesim-results-XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass() { echo "PASS $1"; }
failed=0
fail() { echo "FAIL $1: $2"; failed=1; }

# One layer, 4 experts, top-1: 0 1 0 2 1 0. LRU capacity 2 hits once in 6
# (the second 0); capacity 3 hits 3 times (0, 1, 0).
{
    echo "step,seq,token,layer,slot,expert,weight"
    s=0
    for e in 0 1 0 2 1 0; do echo "$s,0,$s,0,0,$e,1"; s=$((s + 1)); done
} >"$dir/t.csv"
T=$dir/t.csv

# --help everywhere
ok=1
for c in "sweep --help" "results --help" "results list --help" "results show --help" \
    "results export --help" "results merge --help"; do
    # shellcheck disable=SC2086
    "$MOESIM" $c >"$dir/help" 2>&1 && grep -q usage "$dir/help" || { ok=0; fail results_help "moesim $c"; }
done
[ $ok = 1 ] && pass results_help

# Unwritable database path: non-zero exit, message names the path.
bad=/nonexistent-moesim-dir/r.db
"$MOESIM" sweep --trace "$T" --policies lru --capacities 2 --db "$bad" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "$bad" "$dir/err"; then pass results_unwritable_db
else fail results_unwritable_db "exit $rc, stderr: $(cat "$dir/err")"; fi

mkdir "$dir/ro" && chmod 555 "$dir/ro"
if [ "$(id -u)" != 0 ]; then
    "$MOESIM" run --trace "$T" --capacity 2 --db "$dir/ro/r.db" >/dev/null 2>"$dir/err"
    rc=$?
    if [ $rc -ne 0 ] && grep -q "$dir/ro/r.db" "$dir/err"; then pass results_readonly_dir
    else fail results_readonly_dir "exit $rc, stderr: $(cat "$dir/err")"; fi
fi

# Not a database.
echo "hello, this is plainly not an SQLite file, but long enough to have a header" >"$dir/junk.db"
"$MOESIM" sweep --trace "$T" --policies lru --capacities 2 --db "$dir/junk.db" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "$dir/junk.db" "$dir/err" && grep -q "not a database" "$dir/err"; then pass results_not_a_db
else fail results_not_a_db "exit $rc, stderr: $(cat "$dir/err")"; fi
"$MOESIM" results list --db "$dir/missing.db" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "$dir/missing.db" "$dir/err" && [ ! -e "$dir/missing.db" ]; then pass results_list_missing_db
else fail results_list_missing_db "exit $rc, stderr: $(cat "$dir/err")"; fi

# Unknown policy: rejected before any work (no database is created).
"$MOESIM" sweep --trace "$T" --policies lru,no-such-policy --capacities 2 --db "$dir/u.db" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "no-such-policy" "$dir/err" && [ ! -e "$dir/u.db" ]; then pass results_unknown_policy
else fail results_unknown_policy "exit $rc, stderr: $(cat "$dir/err")"; fi
"$MOESIM" sweep --trace "$T" --policies lru --capacities 4:2 --db "$dir/u.db" >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && [ ! -e "$dir/u.db" ] && pass results_bad_range || fail results_bad_range "$(cat "$dir/err")"

# A sweep, then list / show / export.
DB=$dir/r.db
"$MOESIM" sweep --trace "$T" --policies lru,fifo --capacities 2:3 --db "$DB" --experiment unit >"$dir/out" 2>&1 ||
    fail results_sweep "$(cat "$dir/out")"
grep -q "^sweep: 4 runs: 4 ran, 0 skipped" "$dir/out" && pass results_sweep || fail results_sweep "$(cat "$dir/out")"

"$MOESIM" results list --db "$DB" >"$dir/list" 2>&1 || fail results_list "$(cat "$dir/list")"
if [ "$(grep -c ' done$' "$dir/list")" -eq 4 ] &&
    grep -E '^[0-9]+ +unit +t\.csv +lru +2 per-layer +0\.1667 +sim +done$' "$dir/list" >/dev/null &&
    grep -E '^[0-9]+ +unit +t\.csv +lru +3 per-layer +0\.5000 +sim +done$' "$dir/list" >/dev/null; then pass results_list
else fail results_list "$(cat "$dir/list")"; fi

# filters take lists; rows come by configuration (policy, then capacity), not
# in the order the sweep's threads finished them; --sort id gives that order;
# a prefetch column appears only once some run has a prefetcher
"$MOESIM" results list --db "$DB" --policy fifo,lru --scope per-layer >"$dir/l1" 2>&1
"$MOESIM" results list --db "$DB" --policy lru >"$dir/l2" 2>&1
"$MOESIM" results list --db "$DB" --sort id >"$dir/l3" 2>&1
order=$(awk 'NR > 1 { printf "%s/%s ", $4, $5 }' "$dir/l1")
ids=$(awk 'NR > 1 { printf "%s ", $1 }' "$dir/l3")
if [ "$order" = "fifo/2 fifo/3 lru/2 lru/3 " ] && [ "$(awk 'NR > 1' "$dir/l2" | wc -l)" -eq 2 ] &&
   ! grep -q fifo "$dir/l2" && [ "$ids" = "$(echo $ids | tr ' ' '\n' | sort -n | tr '\n' ' ')" ] &&
   ! head -1 "$dir/l1" | grep -q prefetch; then pass results_list_filters_sort
else fail results_list_filters_sort "order '$order', ids '$ids': $(cat "$dir/l1" "$dir/l2")"; fi
cp "$DB" "$dir/p.db"
"$MOESIM" sweep --trace "$T" --policies lru --capacities 2 --prefetch oracle --db "$dir/p.db" --experiment unit >/dev/null 2>&1
"$MOESIM" results list --db "$dir/p.db" --prefetch oracle >"$dir/l4" 2>&1
if head -1 "$dir/l4" | grep -q ' prefetch ' && [ "$(awk 'NR > 1' "$dir/l4" | wc -l)" -eq 1 ] &&
   grep -q ' oracle' "$dir/l4"; then pass results_list_prefetch_column
else fail results_list_prefetch_column "$(cat "$dir/l4")"; fi
"$MOESIM" results list --db "$DB" --sort nosuch >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "--sort: config or id, not 'nosuch'" "$dir/err" && pass results_list_bad_sort ||
    fail results_list_bad_sort "$(cat "$dir/err")"

id=$(sqlite3 "$DB" "SELECT id FROM run_summary WHERE policy = 'lru' AND capacity = 2")
"$MOESIM" results show --db "$DB" "$id" >"$dir/show" 2>&1
if grep -q "policy=lru" "$dir/show" && grep -q "capacity=2" "$dir/show" &&
    grep -Eq '^ +hits +1$' "$dir/show" && grep -Eq '^ +accesses +6$' "$dir/show" &&
    grep -Eq '^ +hit_rate +0\.16666666666666[67]*$' "$dir/show" && grep -Eq '^ +0 +6 +0\.16666666666666[67]*$' "$dir/show"; then
    pass results_show
else fail results_show "$(cat "$dir/show")"; fi
"$MOESIM" results show --db "$DB" 999 >/dev/null 2>"$dir/err"
[ $? -eq 1 ] && grep -q 999 "$dir/err" && pass results_show_missing || fail results_show_missing "$(cat "$dir/err")"

"$MOESIM" results export --db "$DB" --csv -o "$dir/r.csv" 2>"$dir/err" || fail results_export "$(cat "$dir/err")"
# Columns by name, so the test does not depend on their order.
col() { head -1 "$dir/r.csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
hr=$(col hit_rate) pol=$(col policy) cap=$(col capacity) hits=$(col hits)
row=$(awk -F, -v p="$pol" -v c="$cap" '$p == "lru" && $c == 3' "$dir/r.csv")
if [ "$(wc -l <"$dir/r.csv")" -eq 5 ] && [ -n "$hr" ] &&
    [ "$(echo "$row" | cut -d, -f"$hr")" = 0.5 ] && [ "$(echo "$row" | cut -d, -f"$hits")" = 3 ]; then
    pass results_export
else fail results_export "$(cat "$dir/r.csv")"; fi
"$MOESIM" results export --db "$DB" >/dev/null 2>&1
[ $? -eq 2 ] && pass results_export_needs_format || fail results_export_needs_format "no --csv accepted"

# A half-written run (status not 'done') is redone by the next sweep.
sqlite3 "$DB" "UPDATE runs SET status = 'running' WHERE id = $id; DELETE FROM metrics WHERE run_id = $id AND name = 'hits'"
"$MOESIM" sweep --trace "$T" --policies lru,fifo --capacities 2:3 --db "$DB" --experiment unit >"$dir/out" 2>&1
if grep -q "^sweep: 4 runs: 1 ran, 3 skipped" "$dir/out" &&
    [ "$(sqlite3 "$DB" "SELECT count(*) FROM runs WHERE status = 'done'")" -eq 4 ] &&
    [ "$(sqlite3 "$DB" "SELECT m.value FROM metrics m JOIN run_summary r ON r.id = m.run_id WHERE r.policy = 'lru' AND r.capacity = 2 AND m.name = 'hits'")" = 1.0 ]; then
    pass results_half_written_rerun
else fail results_half_written_rerun "$(cat "$dir/out")"; fi

# Merge: a second database overlapping in one run, and a conflicting copy.
"$MOESIM" sweep --trace "$T" --policies lru --capacities 3:4 --db "$dir/b.db" >/dev/null 2>&1
"$MOESIM" results merge -o "$dir/m.db" "$DB" "$dir/b.db" >"$dir/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(sqlite3 "$dir/m.db" "SELECT count(*) FROM runs WHERE status = 'done'")" -eq 5 ] &&
    grep -q "b.db: 1 runs added, 0 traces added, 1 duplicates skipped, 0 conflicts" "$dir/out"; then
    pass results_merge
else fail results_merge "exit $rc: $(cat "$dir/out")"; fi
sqlite3 "$dir/b.db" "UPDATE metrics SET value = value + 1 WHERE name = 'hits'"
"$MOESIM" results merge -o "$dir/m.db" "$dir/b.db" >"$dir/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "conflicting duplicate" "$dir/out" &&
    [ "$(sqlite3 "$dir/m.db" "SELECT count(*) FROM runs")" -eq 5 ]; then pass results_merge_conflict
else fail results_merge_conflict "exit $rc: $(cat "$dir/out")"; fi

exit $failed
