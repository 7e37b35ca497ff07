#!/bin/sh
# test_plot.sh: `moesim plot` draws PNG and SVG figures from a small sweep and
# reports empty selections and missing metric families clearly.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
command -v gnuplot >/dev/null || { fail plot_setup "gnuplot not installed"; exit 0; }
"$MOESIM" sweep --trace traces/default.moetrace --policies lru,fifo,belady --capacities 1:4 \
    --scope per-layer,global --db "$tmp/r.db" --jobs 2 >"$tmp/out" 2>&1 || fail plot_setup "$(cat "$tmp/out")"
"$MOESIM" sweep --trace traces/default.moetrace --policies lru --capacities 2 --cold-per-seq \
    --db "$tmp/r.db" >/dev/null 2>&1
for k in hit-rate warmup layer-heatmap topic-switch; do
    if "$MOESIM" plot $k --db "$tmp/r.db" -o "$tmp/$k.png" >"$tmp/out" 2>&1 &&
       [ "$(head -c 4 "$tmp/$k.png" | od -An -c | tr -d ' ')" = '211PNG' ]; then
        pass "plot_$k"
    else
        fail "plot_$k" "$(cat "$tmp/out")"
    fi
done
"$MOESIM" plot popularity --db "$tmp/r.db" --trace traces/default.moetrace -o "$tmp/pop.svg" >"$tmp/out" 2>&1 &&
    grep -q '<svg' "$tmp/pop.svg" && pass plot_popularity_svg || fail plot_popularity_svg "$(cat "$tmp/out")"
"$MOESIM" plot hit-rate --db "$tmp/r.db" --policy nosuch -o "$tmp/x.png" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "empty selection.*policy nosuch" "$tmp/out" && pass plot_empty_selection ||
    fail plot_empty_selection "$(cat "$tmp/out")"
"$MOESIM" plot time-breakdown --db "$tmp/r.db" -o "$tmp/x.png" >"$tmp/out" 2>&1
grep -q "no timing metrics in this database" "$tmp/out" && pass plot_no_timing || fail plot_no_timing "$(cat "$tmp/out")"
"$MOESIM" plot prefetch --db "$tmp/r.db" -o "$tmp/x.png" >"$tmp/out" 2>&1
grep -q "no prefetch metrics" "$tmp/out" && pass plot_no_prefetch || fail plot_no_prefetch "$(cat "$tmp/out")"
"$MOESIM" plot bogus --db "$tmp/r.db" -o "$tmp/x.png" >/dev/null 2>&1
[ $? -eq 2 ] && pass plot_bad_kind || fail plot_bad_kind "expected exit 2"
"$MOESIM" plot hit-rate --db "$tmp/r.db" -o "$tmp/x.jpg" >"$tmp/out" 2>&1
grep -q "must end in .png, .svg or .pdf" "$tmp/out" && pass plot_bad_ext || fail plot_bad_ext "$(cat "$tmp/out")"
# policy lists: repeated and comma-separated --policy draw exactly those, Belady
# (the ceiling) whenever present, and a policy reading the future is labelled
"$MOESIM" sweep --trace traces/default.moetrace --policies lfu,pin --capacities 1:4 --db "$tmp/r.db" >/dev/null 2>&1
"$MOESIM" plot hit-rate --db "$tmp/r.db" --policy lru --policy fifo,pin -o "$tmp/l.svg" >"$tmp/out" 2>&1
if grep -q '>lru<' "$tmp/l.svg" && grep -q '>fifo<' "$tmp/l.svg" && grep -q '>pin(oracle)<' "$tmp/l.svg" &&
   grep -q '>belady' "$tmp/l.svg" && ! grep -q '>lfu<' "$tmp/l.svg"; then pass plot_policy_list
else fail plot_policy_list "$(cat "$tmp/out"; grep -o '>[a-z()]*<' "$tmp/l.svg" | sort -u | tr '\n' ' ')"; fi
# PDF, and a size and font of one's own
if "$MOESIM" plot hit-rate --db "$tmp/r.db" --policy lru,lfu -o "$tmp/h.pdf" >"$tmp/out" 2>&1 &&
   [ "$(head -c 4 "$tmp/h.pdf")" = "%PDF" ]; then pass plot_pdf; else fail plot_pdf "$(cat "$tmp/out")"; fi
"$MOESIM" plot hit-rate --db "$tmp/r.db" --size 800x500 --font 'DejaVu Sans,9' -o "$tmp/s.png" >"$tmp/out" 2>&1
wh=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); print("%dx%d" % struct.unpack(">II", d[16:24]))' "$tmp/s.png" 2>/dev/null)
[ "$wh" = 800x500 ] && pass plot_size || fail plot_size "got $wh: $(cat "$tmp/out")"
"$MOESIM" plot hit-rate --db "$tmp/r.db" --size 800 -o "$tmp/s.png" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "size 800: expected WIDTHxHEIGHT in pixels" "$tmp/out" && pass plot_bad_size ||
    fail plot_bad_size "$(cat "$tmp/out")"
# --data: the plotted numbers as CSV, every bit of them: the hit-rate CSV's
# lru point at capacity 2 is the hit rate `moesim run --json` computes for the
# same configuration, and `results list` shows it (4 decimals); no -o needed
json_hit() { "$MOESIM" run --trace traces/default.moetrace --json "$@" |
    python3 -c 'import json,sys; print(repr(json.load(sys.stdin)["hit_rate"]))'; }
want=$(json_hit --policy lru --capacity 2)
"$MOESIM" plot hit-rate --db "$tmp/r.db" --policy lru,fifo --data "$tmp/h.csv" >"$tmp/out" 2>&1
got=$(awk -F, '$1 == "lru" && $2 == 2 { print $3 }' "$tmp/h.csv")
listed=$("$MOESIM" results list --db "$tmp/r.db" --policy lru --scope per-layer | awk '$4 == "lru" && $5 == 2 && $6 == "per-layer" { print $7 }')
if [ "$(head -1 "$tmp/h.csv")" = "policy,capacity,hit_rate" ] && [ -n "$want" ] &&
   python3 -c 'import sys; g, w, l = map(float, sys.argv[1:]); sys.exit(not (g == w and abs(round(w, 4) - l) < 1e-9))' \
       "$got" "$want" "$listed" &&
   [ "$(cut -d, -f1 "$tmp/h.csv" | sort -u | tr '\n' ' ')" = "belady fifo lru policy " ]; then
    pass plot_data_csv
else fail plot_data_csv "csv $got, run --json $want, results list $listed: $(cat "$tmp/out"; head -3 "$tmp/h.csv")"; fi
# the default choice of lines (plot --help): with 14 policies, Belady, lru
# and the 4 others of highest mean hit rate over the capacities (ties by
# name), best first; computed here from `results export` independently
"$MOESIM" sweep --trace traces/default.moetrace --policies all --capacities 1:3 --db "$tmp/all.db" --jobs 2 >/dev/null 2>&1
"$MOESIM" results export --db "$tmp/all.db" --csv -o "$tmp/all_runs.csv" >/dev/null 2>&1
expect=$(python3 - "$tmp/all_runs.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["policy"], []).append(float(r["hit_rate"]))
others = sorted((p for p in by if p != "lru" and not p.startswith("belady")),
                key=lambda p: (-sum(by[p]) / len(by[p]), p))
print(" ".join(others[:4] + ["lru"] + [p for p in by if p.startswith("belady")]), len(by))
PY
)
"$MOESIM" plot hit-rate --db "$tmp/all.db" --data "$tmp/d.csv" -o "$tmp/d.svg" >"$tmp/out" 2>"$tmp/err"
series() { python3 -c 'import csv, sys
seen = []
for r in list(csv.reader(open(sys.argv[1])))[1:]:
    if r[0] not in seen: seen.append(r[0])
print(" ".join(seen))' "$1"; }
drawn="$(series "$tmp/d.csv") "
if [ "$drawn$(echo "$expect" | awk '{ print $NF }')" = "${expect% *} 14" ] &&
   grep -q "hit-rate: 6 of 14 policies drawn: the 4 with the highest mean hit rate over the 3 capacities 1..3" "$tmp/err" &&
   grep -q "the 4 of 12 others with the best" "$tmp/d.svg"; then pass plot_default_lines
else fail plot_default_lines "drew '$drawn', expected '$expect': $(cat "$tmp/err")"; fi
"$MOESIM" plot hit-rate --db "$tmp/all.db" --policy all --data "$tmp/a.csv" >"$tmp/out" 2>"$tmp/err"
n=$(series "$tmp/a.csv" | wc -w)
[ "$n" = 14 ] && [ ! -s "$tmp/err" ] && pass plot_policy_all || fail plot_policy_all "$n series: $(cat "$tmp/err")"
"$MOESIM" plot warmup --db "$tmp/all.db" --data "$tmp/w.csv" >"$tmp/out" 2>"$tmp/err"
[ "$(series "$tmp/w.csv" | wc -w)" = 6 ] &&
    grep -q "warmup: 6 of 14 policies drawn: the 4 with the highest mean hit rate at capacity 2" "$tmp/err" &&
    pass plot_default_lines_warmup || fail plot_default_lines_warmup "$(cat "$tmp/err"; head -2 "$tmp/w.csv")"
# one figure as PNG and PDF in one command
if "$MOESIM" plot hit-rate --db "$tmp/r.db" --policy lru,pin -o "$tmp/two.png" -o "$tmp/two.pdf" >"$tmp/out" 2>&1 &&
   [ "$(head -c 4 "$tmp/two.pdf")" = "%PDF" ] && [ "$(head -c 4 "$tmp/two.png" | od -An -c | tr -d ' ')" = '211PNG' ]
then pass plot_png_and_pdf; else fail plot_png_and_pdf "$(cat "$tmp/out")"; fi
# topic-switch: recovery by steps since a sequence start; right after a cold
# restart the cache is empty, so the first step hits nothing; warm it does
"$MOESIM" plot topic-switch --db "$tmp/r.db" --data "$tmp/t.csv" -o "$tmp/t.png" >"$tmp/out" 2>&1
cold0=$(awk -F, '$1 == "lru" && $2 == 0 && $4 == "cold-per-seq" { print $3 }' "$tmp/t.csv")
warm0=$(awk -F, '$1 == "lru" && $2 == 0 && $4 == "warm" { print $3 }' "$tmp/t.csv")
if [ "$(head -1 "$tmp/t.csv")" = "policy,steps_since_start,hit_rate,cache" ] && [ "$cold0" = 0 ] &&
   awk -v w="$warm0" 'BEGIN { exit !(w > 0) }' && [ "$(grep -c ',cold-per-seq$' "$tmp/t.csv")" = 64 ]; then
    pass plot_topic_switch_recovery
else fail plot_topic_switch_recovery "cold $cold0 warm $warm0: $(cat "$tmp/out"; head -3 "$tmp/t.csv")"; fi
# warmup: --mark steps labelled; a bad mark is misuse
"$MOESIM" plot warmup --db "$tmp/r.db" --mark 100:here,2000:there -o "$tmp/m.svg" >"$tmp/out" 2>&1
grep -q '>there<' "$tmp/m.svg" && grep -q '>sequence start<' "$tmp/m.svg" && pass plot_warmup_marks ||
    fail plot_warmup_marks "$(cat "$tmp/out")"
"$MOESIM" plot warmup --db "$tmp/r.db" --mark x:y -o "$tmp/m.svg" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "expected STEP:LABEL" "$tmp/out" && pass plot_bad_mark || fail plot_bad_mark "$(cat "$tmp/out")"
# time-breakdown: bars grouped by prefetcher; the device and precision,
# the same for every bar, in the title
"$MOESIM" sweep --trace traces/default.moetrace --policies lru,lfu --capacities 2 --prefetch none,gate:ahead=1,n=2 \
    --device rtx-3060 --model Mixtral-8x7B --db "$tmp/tb.db" >/dev/null 2>&1
"$MOESIM" plot time-breakdown --db "$tmp/tb.db" --data "$tmp/tb.csv" -o "$tmp/tb.svg" >"$tmp/out" 2>&1
if grep -q 'device rtx-3060, Mixtral-8x7B expert sizes, 16-bit experts, capacity 2 experts per layer' "$tmp/tb.svg" &&
   grep -q '>ahead=1,n=2<' "$tmp/tb.svg" && [ "$(grep -c 'prefetch gate:ahead=1,n=2' "$tmp/tb.csv")" = 2 ]; then
    pass plot_time_breakdown_groups
else fail plot_time_breakdown_groups "$(cat "$tmp/out"; cat "$tmp/tb.csv")"; fi
