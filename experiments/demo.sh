#!/bin/sh
# demo.sh (`make demo`): replay the default trace against every policy over
# capacities 1..experts (per-layer scope), store the runs in results/demo.db
# and draw results/demo_hit_rate.png with gnuplot from the stored numbers.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
DB=results/demo.db
PNG=results/demo_hit_rate.png
die() { echo "demo: $*" >&2; exit 1; }

[ -x "$M" ] || die "$M not found; run 'make' first"
command -v gnuplot >/dev/null || die "gnuplot is not installed (run 'sudo make deps')"
command -v sqlite3 >/dev/null || die "the sqlite3 command is not installed (run 'sudo make deps')"

trace=traces/default.moetrace
if [ ! -f "$trace" ]; then
    # Until a default trace is shipped, make one (deterministic for the seed).
    "$M" trace gen --help >/dev/null 2>&1 ||
        die "$trace is missing and this moesim has no 'trace gen' to generate one"
    trace=$BUILD/demo/default.moetrace
    mkdir -p "$BUILD/demo"
    if [ ! -f "$trace" ]; then
        echo "demo: traces/default.moetrace not shipped yet; generating $trace"
        "$M" trace gen -o "$trace" --steps 4000 --layers 32 --experts 8 --top-k 2 --seed 1 >/dev/null ||
            die "could not generate $trace"
    fi
fi

experts=$("$M" trace info "$trace" | awk '$1 == "experts" { print $2; exit }')
case $experts in '' | *[!0-9]*) die "could not read the expert count of $trace" ;; esac
policies=$("$M" policies | awk 'NF { printf "%s%s", sep, $1; sep = "," }')
[ -n "$policies" ] || die "'moesim policies' listed nothing"

mkdir -p results
echo "demo: sweeping $trace: policies $policies, capacities 1..$experts per layer"
"$M" sweep --trace "$trace" --policies "$policies" --capacities "1:$experts" --scope per-layer \
    --db "$DB" --experiment demo --json >"$BUILD/demo/sweep.json" || die "sweep failed"
tail -n 1 "$BUILD/demo/sweep.json"
hash=$(tail -n 1 "$BUILD/demo/sweep.json" | sed -n 's/.*"hash":"\([0-9a-f]\{64\}\)".*/\1/p')
[ -n "$hash" ] || die "could not read the trace hash from the sweep summary"

# Data for gnuplot, straight from SQLite: one file per policy.
data=$BUILD/demo/plot
rm -rf "$data"
mkdir -p "$data"
lines=""
for p in $(echo "$policies" | tr ',' ' '); do
    sqlite3 -separator ' ' "$DB" "SELECT capacity, hit_rate FROM run_summary
        WHERE trace_hash = '$hash' AND scope = 'per-layer' AND cold_per_seq = 0 AND status = 'done'
          AND (policy = '$p' OR policy LIKE '$p:%') ORDER BY capacity" >"$data/$p.dat"
    [ -s "$data/$p.dat" ] || die "no stored runs for policy $p"
    [ "$p" = belady ] || lines="$lines $p"
done
ceiling=""
[ -s "$data/belady.dat" ] && ceiling=belady
shape=$(sqlite3 "$DB" "SELECT model || ', ' || layers || ' layers x ' || experts || ' experts, top-' || top_k
                       || ', ' || steps || ' steps' FROM traces WHERE hash = '$hash'")
gnuplot -e "datadir='$data'; policies='${lines# }'; ceiling='$ceiling'; out='$PNG'" \
    -e "title_text=\"Expert-cache hit rate vs capacity\\n$trace ($shape)\"" \
    -e "xlabel_text='cache capacity (experts per layer, per-layer scope, warm cache)'" \
    plots/hit_rate.gp || die "gnuplot failed"

echo "demo: results database  $DB  (moesim results list --db $DB)"
echo "demo: hit-rate plot     $PNG"
