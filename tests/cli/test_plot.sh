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
