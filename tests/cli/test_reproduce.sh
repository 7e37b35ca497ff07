#!/bin/sh
# test_reproduce.sh: `moesim reproduce` on small experiments: table format,
# the MLX-Flash arithmetic (worked by hand below), verdicts, exit codes
# (0 with FAILs, 1 with --strict), and a broken experiment file.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# cells CSV PATTERN: "published|ours|error|verdict|fitted|reason" of each row
# of `reproduce --csv` output CSV whose metric contains PATTERN, one a line
cells() {
    python3 -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])):
    if sys.argv[2] in r["metric"]:
        print("|".join(r[k] for k in ("published", "ours", "error", "verdict", "fitted", "reason")))' "$1" "$2"
}
"$MOESIM" trace gen -o "$tmp/small.moetrace" --steps 300 --layers 4 --experts 8 --top-k 2 --seq-len 128 \
    --prefill 8 --no-weights --seed 3 >/dev/null 2>&1 || { echo "FAIL reproduce_setup: trace gen"; exit 0; }
cat >"$tmp/repro_small.ini" <<INI
[experiment]
name = small
source = https://example.org/test

[check tiers]
kind = mlx_tiers
counts = 5,15,30,30,48
bits = 16,8,4,3,2
experts = 128
published_bits = 3.1
published_saving = 0.23
reference_bits = 4
source = https://github.com/szibis/MLX-Flash

[check lru]
kind = lrc
trace = $tmp/small.moetrace
policy = lru
rho = 1,2
published = 0.5,0.7
tolerance = 1
source = https://arxiv.org/abs/2505.16056

[check order]
kind = lrc_order
traces = $tmp/*.moetrace
better = belady
worse = lru
rho = 0.5,1
source = https://arxiv.org/abs/2505.16056

[check missing]
kind = lrc
trace = $tmp/nope.moetrace
policy = belady
rho = 1
published = 0.5
source = https://arxiv.org/abs/2505.16056
INI

# by hand: (5*16 + 15*8 + 30*4 + 30*3 + 48*2) / 128 = 506 / 128 = 3.953125 bits;
# saving against 4-bit = 1 - 3.953125/4 = 0.01171875 = 1.2%
bits=$(awk 'BEGIN { printf "%.3f", (5*16 + 15*8 + 30*4 + 30*3 + 48*2) / 128 }')
save=$(awk 'BEGIN { printf "%.1f%%", 100 * (1 - (5*16 + 15*8 + 30*4 + 30*3 + 48*2) / 128 / 4) }')
[ "$bits" = 3.953 ] && [ "$save" = 1.2% ] || echo "FAIL reproduce_hand: awk gave $bits $save"

"$MOESIM" reproduce "$tmp/repro_small.ini" >"$tmp/out" 2>"$tmp/err"
rc=$?
"$MOESIM" reproduce --csv "$tmp/repro_small.ini" >"$tmp/csv" 2>>"$tmp/err"
if [ $rc -eq 0 ] && grep -q '^== small: https://example.org/test$' "$tmp/out" &&
   grep -Eq '^  metric +published +ours +error +verdict +note$' "$tmp/out"; then
    echo "PASS reproduce_table_header"
else
    echo "FAIL reproduce_table_header: rc $rc: $(head -3 "$tmp/out") $(cat "$tmp/err")"
fi
line=$(cells "$tmp/csv" "effective bits")
case "$line" in
"3.100|$bits|+0.8531|FAIL|0|"*"506 / 128"*) echo "PASS reproduce_mlx_bits" ;;
*) echo "FAIL reproduce_mlx_bits: '$line'" ;;
esac
line=$(cells "$tmp/csv" "memory saving")
case "$line" in
"23.0%|$save|-21.8 pp|FAIL|0|"*) echo "PASS reproduce_mlx_saving" ;;
*) echo "FAIL reproduce_mlx_saving: '$line'" ;;
esac
# 7 rows, each with a known verdict; tolerance 1 makes the lrc rows PASS;
# Belady >= LRU holds; the missing trace is NOT COMPARABLE with the reason
ok=1
n=$(($(wc -l <"$tmp/csv") - 1))
[ "$n" -eq 7 ] || { ok=0; echo "FAIL reproduce_rows: $n rows"; }
[ "$(cells "$tmp/csv" "" | grep -Ec '^[^|]*\|[^|]*\|[^|]*\|(PASS|FAIL|NOT COMPARABLE)\|')" -eq "$n" ] || ok=0
[ "$(cells "$tmp/csv" "lru hit rate rho=" | grep -c '|PASS|')" -eq 2 ] || ok=0
cells "$tmp/csv" "small: order" | grep -q '^belady >= lru|min +[0-9.]*|@rho=[0-9.]*|PASS|0|' || ok=0
cells "$tmp/csv" "belady hit rate rho=1" | grep -q '^0.500|-|-|NOT COMPARABLE|0|no trace' || ok=0
grep -q '^reproductions: 7 rows: 4 PASS, 2 FAIL, 1 NOT COMPARABLE$' "$tmp/out" || ok=0
grep -q '^fitted by construction (not evidence): 0 rows: 0 PASS, 0 FAIL, 0 NOT COMPARABLE$' "$tmp/out" || ok=0
[ $ok = 1 ] && echo "PASS reproduce_verdicts" || { echo "FAIL reproduce_verdicts"; cat "$tmp/out" "$tmp/csv"; }

"$MOESIM" reproduce --strict "$tmp/repro_small.ini" >/dev/null 2>&1
[ $? -eq 1 ] && echo "PASS reproduce_strict" || echo "FAIL reproduce_strict: FAIL rows did not make --strict exit 1"

printf '[experiment]\nname = bad\n[check x]\nkind = lrc\ntrace = a\npolicy = lru\nrho = 1,x\npublished = 1\n' >"$tmp/bad.ini"
"$MOESIM" reproduce "$tmp/bad.ini" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad.ini:7" "$tmp/err"; then echo "PASS reproduce_bad_file"
else echo "FAIL reproduce_bad_file: rc $rc: $(cat "$tmp/err")"; fi

# kind = quality: claims judged from runs `moesim quality --db` stored. By
# hand: a 16-bit tinymix expert is 110592 bytes, an 8-bit one 59136
# (models.ini), so 8 bits are 110592 / 59136 = 1.870x smaller; 16 bits lose
# exactly nothing; 8-bit experts move the distributions less than 4-bit ones.
head -c 200 models/tinymix/golden/heldout_c.txt >"$tmp/q.txt"
"$MOESIM" quality --model models/tinymix --text-file "$tmp/q.txt" --threads 2 --db "$tmp/q.db" --experiment qx \
    --precision uniform:bits=16 --precision uniform:bits=8 --precision uniform:bits=4 >/dev/null 2>"$tmp/err" ||
    echo "FAIL reproduce_quality_setup: $(cat "$tmp/err")"
cat >"$tmp/repro_q.ini" <<INI
[experiment]
name = q
source = https://example.org/test
[check size]
kind = quality
db = $tmp/q.db
experiment = qx
claim = ratio
metric = expert_bytes
config = uniform:bits=8
versus = uniform:bits=16
published = 1.87
tolerance = 0.001
source = https://example.org/test
[check lossless]
kind = quality
db = $tmp/q.db
experiment = qx
claim = below
metric = delta_nats_per_byte
config = uniform:bits=16
published = 1e-9
source = https://example.org/test
[check order]
kind = quality
db = $tmp/q.db
experiment = qx
claim = lower
metric = kl_mean
config = uniform:bits=8
versus = uniform:bits=4
source = https://example.org/test
[check unmeasured]
kind = quality
db = $tmp/q.db
experiment = qx
claim = below
metric = kl_mean
config = uniform:bits=2
published = 1
source = https://example.org/test
[check nodb]
kind = quality
db = $tmp/none.db
claim = below
metric = kl_mean
config = uniform:bits=8
published = 1
source = https://example.org/test
INI
"$MOESIM" reproduce "$tmp/repro_q.ini" >"$tmp/out" 2>&1
"$MOESIM" reproduce --csv "$tmp/repro_q.ini" >"$tmp/csv" 2>&1
ok=1
cells "$tmp/csv" expert_bytes | grep -q '^1.87|1.87|[-+]0.0%|PASS|0|' || ok=0
cells "$tmp/csv" delta_nats_per_byte | grep -q '^< 1e-09|0|-1e-09|PASS|0|' || ok=0
[ "$(cells "$tmp/csv" kl_mean | grep -c '^lower|-[0-9.e-]*|-|PASS|0|')" -eq 1 ] || ok=0
cells "$tmp/csv" kl_mean | grep 'uniform:bits=2' | grep -q '|NOT COMPARABLE|0|.*make quality' || ok=0
cells "$tmp/csv" kl_mean | grep 'none.db not found' | grep -q '|NOT COMPARABLE|' || ok=0
grep -q '^reproductions: 5 rows: 3 PASS, 0 FAIL, 2 NOT COMPARABLE$' "$tmp/out" || ok=0
[ $ok = 1 ] && echo "PASS reproduce_quality_claims" || { echo "FAIL reproduce_quality_claims"; cat "$tmp/out"; }

# kind = layer_hits: one layer, capacity 2, one sequence, experts by position
# 0 1 0 2 1 0 3 0, positions 0-2 in one prefill step (served token by token).
# LRU: hits at positions 2 and 7 (2/8 = 0.250); from position 4 only 7 (1/4).
# Belady: hits at 2, 4 and 7 (3/8 = 0.375); from position 4: 4 and 7 (2/4).
# (Serving the prefill step as one set would give LRU 2/4 from position 4.)
printf 'step,seq,token,layer,slot,expert,weight\n0,0,0,0,0,0,1\n0,0,1,0,0,1,1\n0,0,2,0,0,0,1\n1,0,3,0,0,2,1\n2,0,4,0,0,1,1\n3,0,5,0,0,0,1\n4,0,6,0,0,3,1\n5,0,7,0,0,0,1\n' >"$tmp/lh.csv"
cat >"$tmp/repro_lh.ini" <<INI
[experiment]
name = lh
source = https://example.org/test
[check all]
kind = layer_hits
traces = $tmp/lh.csv
capacity = 2
published = 0.2
relation = ge
source = https://example.org/test
[check warm]
kind = layer_hits
traces = $tmp/lh.csv
capacity = 2
skip_tokens = 4
published = 0.3
relation = ge
source = https://example.org/test
INI
"$MOESIM" reproduce --csv "$tmp/repro_lh.ini" >"$tmp/out" 2>&1
ok=1
[ "$(cells "$tmp/out" "lh.csv: lru 2/4 per layer" | cut -d'|' -f1-5)" = ">=0.20|0.250|+0.0500|PASS|0
>=0.30|0.250|-0.0500|FAIL|0" ] || ok=0
[ "$(cells "$tmp/out" "lh.csv: belady 2/4 per layer" | cut -d'|' -f1-5)" = ">=0.20|0.375|+0.1750|PASS|0
>=0.30|0.500|+0.2000|PASS|0" ] || ok=0
[ $ok = 1 ] && echo "PASS reproduce_layer_hits_hand" || { echo "FAIL reproduce_layer_hits_hand"; cat "$tmp/out"; }
