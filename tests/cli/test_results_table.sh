#!/bin/sh
# test_results_table.sh: `moesim results table` (policy x capacity pivot,
# Markdown, --ci bootstrap intervals, --baseline paired differences), the
# same tables from `sweep` without --db, and `plot hit-rate --ci`.
MOESIM=${MOESIM:-build/moesim}
dir=$(mktemp -d /tmp/moesim-rtable-XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass() { echo "PASS $1"; }
failed=0
fail() { echo "FAIL $1: $2"; failed=1; }

# cell FILE ROW COLUMN: the text in the row labelled ROW under the header's
# column COLUMN, in the first table of FILE (columns are 2+ spaces apart; a
# label or an interval has single spaces inside).
cell() {
    awk -F '  +' -v p="$2" -v c="$3" '
        $1 == "policy" && !h { for (i = 2; i <= NF; i++) if ($i == c) k = i; h = 1; next }
        h && $1 == p { print $k; exit }' "$1"
}

# --help names every option
"$MOESIM" results table --help >"$dir/help" 2>&1
if [ $? -eq 0 ] && grep -q "usage: moesim results table" "$dir/help" && grep -q -- "--markdown" "$dir/help" &&
    grep -q -- "--baseline" "$dir/help" && grep -q -- "--resamples" "$dir/help" && grep -q -- "--policy" "$dir/help"; then
    pass table_help
else fail table_help "$(cat "$dir/help")"; fi

# Hand-worked: one layer, top-1, 0 1 0 2 1 0. LRU capacity 2 hits once in 6,
# capacity 3 three times; FIFO the same here.
{
    echo "step,seq,token,layer,slot,expert,weight"
    s=0
    for e in 0 1 0 2 1 0; do echo "$s,0,$s,0,0,$e,1"; s=$((s + 1)); done
} >"$dir/t.csv"
"$MOESIM" sweep --trace "$dir/t.csv" --policies lru,belady --capacities 2:3 --db "$dir/h.db" >/dev/null 2>&1
"$MOESIM" results table --db "$dir/h.db" >"$dir/h" 2>&1
if [ "$(cell "$dir/h" lru 2)" = 0.1667 ] && [ "$(cell "$dir/h" lru 3)" = 0.5000 ] &&
    grep -q "^belady (oracle) " "$dir/h" && grep -q "^(oracle): " "$dir/h"; then pass table_hand_worked
else fail table_hand_worked "$(cat "$dir/h")"; fi

# A trace of several sequences (each 25 tokens: a 5-token prefill, 20 decode steps).
T=$dir/multi.moetrace
"$MOESIM" trace gen -o "$T" --steps 300 --layers 4 --experts 8 --top-k 2 --seq-len 25 --prefill 5 --seed 5 >/dev/null
nseq=$("$MOESIM" trace info "$T" | awk '$1 == "sequences" { print $2 }')
DB=$dir/m.db
"$MOESIM" sweep --trace "$T" --policies belady,fifo,lru --capacities 2,3,4 --db "$DB" >/dev/null 2>&1 ||
    fail table_sweep "sweep failed"
# lfu only at capacity 2: its other cells are '-'
"$MOESIM" run --trace "$T" --policy lfu --capacity 2 --db "$DB" >/dev/null 2>&1
"$MOESIM" results table --db "$DB" >"$dir/t" 2>&1 || fail table_plain "$(cat "$dir/t")"

# a cell equals `run --json`'s hit rate of the same configuration
want=$("$MOESIM" run --trace "$T" --policy fifo --capacity 3 --json | sed 's/.*"hit_rate":\([^,}]*\).*/\1/' |
    awk '{ printf "%.4f", $1 }')
got=$(cell "$dir/t" fifo 3)
if [ -n "$want" ] && [ "$got" = "$want" ]; then pass table_cell_equals_run
else fail table_cell_equals_run "table $got, run --json $want"; fi

# rows in registry order (lru, fifo, lfu), the oracle last; '-' where no run is
rows=$(awk -F '  +' '$1 == "policy" { h = 1; next } h && NF == 4 { printf "%s,", $1 }' "$dir/t")
if [ "$rows" = "lru,fifo,lfu,belady (oracle)," ] && [ "$(cell "$dir/t" lfu 3)" = "-" ] && [ "$(cell "$dir/t" lfu 4)" = "-" ] &&
    [ "$(cell "$dir/t" lfu 2)" != "-" ]; then pass table_order_and_missing
else fail table_order_and_missing "rows '$rows'; $(cat "$dir/t")"; fi

# Markdown: a header, the alignment row, one row per policy, 5 cells each
"$MOESIM" results table --db "$DB" --markdown >"$dir/md" 2>&1
hdr=$(grep '^| policy ' "$dir/md")
if [ "$hdr" = "| policy | 2 | 3 | 4 |" ] && grep -qx '|:---|---:|---:|---:|' "$dir/md" &&
    [ "$(grep -c '^|' "$dir/md")" -eq 6 ] &&
    [ "$(grep '^|' "$dir/md" | awk -F'|' '{ print NF }' | sort -u)" = 6 ] &&
    grep -qx "| lfu | $(cell "$dir/t" lfu 2) | - | - |" "$dir/md" &&
    grep -qx "| belady (oracle) | $(cell "$dir/t" "belady (oracle)" 2) | $(cell "$dir/t" "belady (oracle)" 3) | $(cell "$dir/t" "belady (oracle)" 4) |" "$dir/md"
then pass table_markdown
else fail table_markdown "$(cat "$dir/md")"; fi

# miss_rate = 1 - hit_rate, cell by cell (to the 4 decimals shown)
"$MOESIM" results table --db "$DB" --metric miss_rate >"$dir/miss" 2>&1
ok=1
for p in lru fifo "belady (oracle)"; do
    for c in 2 3 4; do
        h=$(cell "$dir/t" "$p" $c) m=$(cell "$dir/miss" "$p" $c)
        awk -v h="$h" -v m="$m" 'BEGIN { d = h + m - 1; exit !(d < 0.00011 && d > -0.00011) }' || ok=0
    done
done
[ $ok = 1 ] && pass table_miss_rate || fail table_miss_rate "$(cat "$dir/miss")"

# --ci: every interval holds its point; the same seed gives the same text,
# another seed other intervals; the seed, resamples and sequences are stated
"$MOESIM" results table --db "$DB" --ci >"$dir/ci1" 2>&1
"$MOESIM" results table --db "$DB" --ci --seed 1 >"$dir/ci1b" 2>&1
"$MOESIM" results table --db "$DB" --ci --seed 2 >"$dir/ci2" 2>&1
bad=$(grep -o '[0-9]\.[0-9]* \[[0-9.]*, [0-9.]*\]' "$dir/ci1" | tr -d '[],' |
    awk '!($2 <= $1 && $1 <= $3) { n++ } END { print n + 0 }')
cells=$(grep -o '[0-9]\.[0-9]* \[[0-9.]*, [0-9.]*\]' "$dir/ci1" | wc -l)
widths=$(grep -o '[0-9]\.[0-9]* \[[0-9.]*, [0-9.]*\]' "$dir/ci1" | tr -d '[],' | awk '$3 > $2 { n++ } END { print n + 0 }')
if [ "$cells" -eq 10 ] && [ "$bad" -eq 0 ] && [ "$widths" -ge 8 ] && cmp -s "$dir/ci1" "$dir/ci1b" &&
    ! cmp -s "$dir/ci1" "$dir/ci2" && grep -q "over the trace's $nseq sequences: 1000 resamples, seed 1 (GSL mt19937)" "$dir/ci1" &&
    grep -q "seed 2 (GSL" "$dir/ci2" && [ "$(cell "$dir/ci1" lru 3 | cut -d' ' -f1)" = "$(cell "$dir/t" lru 3)" ] &&
    [ "$(cell "$dir/ci1" lfu 4)" = - ]
then pass table_ci
else fail table_ci "cells $cells, outside $bad, nonzero width $widths, sequences $nseq: $(cat "$dir/ci1")"; fi
"$MOESIM" results table --db "$DB" --ci --resamples 50 >"$dir/ci50" 2>&1
grep -q "50 resamples, seed 1" "$dir/ci50" && ! cmp -s "$dir/ci1" "$dir/ci50" && pass table_ci_resamples ||
    fail table_ci_resamples "$(cat "$dir/ci50")"

# --baseline: paired differences. Cold per sequence, Belady is optimal within
# every sequence, so on every resample it hits at least as often as LRU: the
# whole interval is >= 0. The difference's point is the cells' difference.
CDB=$dir/cold.db
"$MOESIM" sweep --trace "$T" --policies lru,belady --capacities 3 --cold-per-seq --db "$CDB" >/dev/null 2>&1
"$MOESIM" results table --db "$CDB" --ci --baseline lru >"$dir/base" 2>&1
set -- $(awk -F '  +' '$1 == "belady (oracle)" && $2 ~ /^[+-]/ { print $2 }' "$dir/base" | tr -d '[],')
b=$(cell "$dir/base" "belady (oracle)" 3 | cut -d' ' -f1) l=$(cell "$dir/base" lru 3 | cut -d' ' -f1)
if [ $# = 3 ] && awk -v d="$1" -v lo="$2" -v hi="$3" -v b="$b" -v l="$l" \
    'BEGIN { e = d - (b - l); exit !(lo >= 0 && hi >= lo && d > 0 && e < 0.00011 && e > -0.00011) }' &&
    grep -q "minus lru's, paired" "$dir/base" && ! grep -q '^lru *[+-]' "$dir/base"; then pass table_baseline_paired
else fail table_baseline_paired "$(cat "$dir/base")"; fi

# one sequence: zero-width intervals, said so
"$MOESIM" results table --db "$dir/h.db" --ci >"$dir/one" 2>&1
if grep -q "0.5000 \[0.5000, 0.5000\]" "$dir/one" && grep -q "one sequence: nothing to resample" "$dir/one"; then
    pass table_ci_one_sequence
else fail table_ci_one_sequence "$(cat "$dir/one")"; fi

# Errors: non-zero exit, a message naming the cause
"$MOESIM" results table --db "$DB" --metric no_such_metric >"$dir/o" 2>"$dir/e"
r1=$?
"$MOESIM" results table --db "$DB" --ci --metric tok_s >"$dir/o" 2>"$dir/e2"
r2=$?
"$MOESIM" results table --db "$DB" --ci --seed 0 >"$dir/o" 2>"$dir/e3"
r3=$?
"$MOESIM" results table --db "$DB" --baseline lru >"$dir/o" 2>"$dir/e4"
r4=$?
"$MOESIM" results table --db "$dir/missing.db" >"$dir/o" 2>"$dir/e5"
r5=$?
"$MOESIM" results table --db "$DB" --policy no-such >"$dir/o" 2>"$dir/e6"
r6=$?
if [ $r1 = 1 ] && grep -q "no selected run has metric 'no_such_metric'; they have: miss_rate, .*hit_rate" "$dir/e" &&
    [ $r2 = 1 ] && grep -q "hit_rate and miss_rate" "$dir/e2" && [ $r3 = 2 ] && grep -q "seed" "$dir/e3" &&
    [ $r4 = 2 ] && grep -q "go with --ci" "$dir/e4" && [ $r5 = 1 ] && grep -q "$dir/missing.db" "$dir/e5" &&
    [ ! -e "$dir/missing.db" ] && [ $r6 = 1 ] && grep -q "no finished runs match policy no-such" "$dir/e6"; then
    pass table_errors
else fail table_errors "$r1 $r2 $r3 $r4 $r5 $r6: $(cat "$dir/e" "$dir/e2" "$dir/e3" "$dir/e4" "$dir/e5" "$dir/e6")"; fi

# A database of schema 1 (no sequence_counts): the table still reads it,
# --ci says why it cannot; once migrated (a new run written), the old runs
# are named as lacking counts.
OLD=$dir/old.db
cp "$DB" "$OLD"
sqlite3 "$OLD" "DROP TABLE sequence_counts; PRAGMA user_version = 1;"
"$MOESIM" results table --db "$OLD" >"$dir/old" 2>&1
ro=$?
"$MOESIM" results table --db "$OLD" --ci >"$dir/o" 2>"$dir/olde"
rc=$?
if [ $ro = 0 ] && cmp -s "$dir/old" "$dir/t" && [ $rc = 1 ] && grep -q "has no per-sequence counts (a results database of schema 1" "$dir/olde" &&
    [ ! -s "$dir/o" ]; then pass table_old_db
else fail table_old_db "$ro $rc: $(cat "$dir/old" "$dir/olde")"; fi
"$MOESIM" run --trace "$T" --policy lru --capacity 5 --db "$OLD" >/dev/null 2>&1
"$MOESIM" results table --db "$OLD" --ci >"$dir/o" 2>"$dir/olde"
rc=$?
if [ $rc = 1 ] && grep -q "run [0-9]* has no per-sequence counts (stored before moesim recorded them" "$dir/olde" &&
    [ "$(sqlite3 "$OLD" 'PRAGMA user_version')" = 2 ]; then pass table_migrated_db
else fail table_migrated_db "$rc: $(cat "$dir/olde")"; fi

# merge carries the counts: the merged copy gives the same intervals; a
# schema-1 input merges without them
V1=$dir/v1.db
cp "$DB" "$V1"
sqlite3 "$V1" "DROP TABLE sequence_counts; PRAGMA user_version = 1;"
"$MOESIM" results merge -o "$dir/merged.db" "$DB" >/dev/null 2>&1
r1=$?
"$MOESIM" results table --db "$dir/merged.db" --ci >"$dir/mci" 2>&1
"$MOESIM" results merge -o "$dir/merged1.db" "$V1" >/dev/null 2>&1
r2=$?
"$MOESIM" results table --db "$dir/merged1.db" >"$dir/m1" 2>&1
if [ $r1 = 0 ] && cmp -s "$dir/mci" "$dir/ci1" && [ $r2 = 0 ] && cmp -s "$dir/m1" "$dir/t" &&
    [ "$(sqlite3 "$dir/merged1.db" 'SELECT count(*) FROM sequence_counts')" = 0 ]; then pass table_merge_counts
else fail table_merge_counts "$r1 $r2: $(diff "$dir/mci" "$dir/ci1")"; fi

# sweep without --db: the same tables as results table on a database of the
# same sweep, and nothing left behind in TMPDIR
mkdir "$dir/tmp"
TMPDIR=$dir/tmp "$MOESIM" sweep --trace "$T" --policies belady,fifo,lru --capacities 2,3,4 --scope per-layer,global \
    >"$dir/sw" 2>&1
rc=$?
"$MOESIM" sweep --trace "$T" --policies belady,fifo,lru --capacities 2,3,4 --scope per-layer,global --db "$dir/sw.db" \
    >/dev/null 2>&1
"$MOESIM" results table --db "$dir/sw.db" >"$dir/swt" 2>&1
sed '1,2d' "$dir/sw" >"$dir/sw_tables"
if [ $rc = 0 ] && grep -q "^sweep: 18 runs: 18 ran, 0 failed, .*(not stored: --db F keeps them)" "$dir/sw" &&
    cmp -s "$dir/sw_tables" "$dir/swt" && [ "$(grep -c '^hit_rate: ' "$dir/sw")" = 2 ] &&
    [ -z "$(ls -A "$dir/tmp")" ]; then pass sweep_without_db_tables
else fail sweep_without_db_tables "rc $rc, left: $(ls -A "$dir/tmp"); $(diff "$dir/sw_tables" "$dir/swt")"; fi

# README's example, regenerated: FIFO minus LRU on the shipped default trace
"$MOESIM" sweep --trace traces/default.moetrace --policies lru,fifo --capacities 4 --db "$dir/readme.db" >/dev/null 2>&1
"$MOESIM" results table --db "$dir/readme.db" --ci --baseline lru >"$dir/readme" 2>&1
lru=$(cell "$dir/readme" lru 4) fifo=$(cell "$dir/readme" fifo 4)
diff=$(awk -F '  +' '$1 == "fifo" && $2 ~ /^[+-]/ { print $2 }' "$dir/readme" | sed 's/^+//; s/\[+/[/; s/, +/, /')
if [ -n "$diff" ] && tr '\n' ' ' <README.md |
    grep -qF -- "LRU at 4 experts per layer hits $lru and FIFO $fifo; paired, FIFO minus LRU is $diff:"; then
    pass table_readme_example
else fail table_readme_example "lru $lru, fifo $fifo, fifo - lru $diff; README: $(grep -A2 'LRU at 4 experts' README.md)"; fi

# plot hit-rate --ci: a figure, and its caption names the intervals
if command -v gnuplot >/dev/null 2>&1; then
    "$MOESIM" plot hit-rate --db "$DB" --ci -o "$dir/ci.svg" >"$dir/po" 2>&1
    rc=$?
    if [ $rc = 0 ] && grep -q "95% bootstrap intervals over $nseq sequences" "$dir/ci.svg"; then pass plot_hit_rate_ci
    else fail plot_hit_rate_ci "rc $rc: $(cat "$dir/po")"; fi
    "$MOESIM" plot hit-rate --db "$OLD" --ci -o "$dir/old.svg" >"$dir/po" 2>&1
    rc=$?
    [ $rc = 1 ] && grep -q "no per-sequence counts" "$dir/po" && [ ! -e "$dir/old.svg" ] && pass plot_ci_old_db ||
        fail plot_ci_old_db "rc $rc: $(cat "$dir/po")"
fi
exit $failed
