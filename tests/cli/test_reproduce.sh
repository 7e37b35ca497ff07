#!/bin/sh
# test_reproduce.sh: `moesim reproduce` on small experiments: table format,
# the MLX-Flash arithmetic (worked by hand below), verdicts, exit codes
# (0 with FAILs, 1 with --strict), and a broken experiment file.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
if [ $rc -eq 0 ] && head -1 "$tmp/out" | grep -Eq '^experiment +metric +published +ours +diff +verdict +reason'; then
    echo "PASS reproduce_table_header"
else
    echo "FAIL reproduce_table_header: rc $rc: $(head -2 "$tmp/out") $(cat "$tmp/err")"
fi
line=$(grep "effective bits" "$tmp/out")
if echo "$line" | grep -q " 3.100 " && echo "$line" | grep -q " $bits " && echo "$line" | grep -q "FAIL" &&
   echo "$line" | grep -q "506 / 128"; then
    echo "PASS reproduce_mlx_bits"
else
    echo "FAIL reproduce_mlx_bits: '$line'"
fi
line=$(grep "memory saving" "$tmp/out")
if echo "$line" | grep -q " 23.0% " && echo "$line" | grep -q " $save " && echo "$line" | grep -q "FAIL"; then
    echo "PASS reproduce_mlx_saving"
else
    echo "FAIL reproduce_mlx_saving: '$line'"
fi
# every data row ends in a known verdict column; tolerance 1 makes the lrc rows PASS;
# Belady >= LRU holds; the missing trace is NOT COMPARABLE with the reason
ok=1
n=$(grep -c '^small ' "$tmp/out")
[ "$n" -eq 7 ] || { ok=0; echo "FAIL reproduce_rows: $n rows"; }
[ "$(grep '^small ' "$tmp/out" | grep -Ec ' (PASS|FAIL|NOT COMPARABLE) ')" -eq "$n" ] || ok=0
[ "$(grep '^small .*lru hit rate rho=' "$tmp/out" | grep -c ' PASS ')" -eq 2 ] || ok=0
grep 'Belady\|belady >= lru' "$tmp/out" | grep -q PASS || ok=0
grep 'rho=1 ' "$tmp/out" | grep 'belady' | grep -q 'NOT COMPARABLE .*no trace' || ok=0
grep -q '^7 rows: 4 PASS, 2 FAIL, 1 NOT COMPARABLE' "$tmp/out" || ok=0
[ $ok = 1 ] && echo "PASS reproduce_verdicts" || { echo "FAIL reproduce_verdicts"; cat "$tmp/out"; }

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
ok=1
grep -q '^q  *expert_bytes  *1.87  *1.87 .* PASS' "$tmp/out" || ok=0
grep -q '^q  *delta_nats_per_byte  *< 1e-09  *0 .* PASS' "$tmp/out" || ok=0
grep -q '^q  *kl_mean  *lower .* PASS' "$tmp/out" || ok=0
grep 'uniform:bits=2' "$tmp/out" | grep -q 'NOT COMPARABLE .*make quality' || ok=0
grep 'none.db not found' "$tmp/out" | grep -q 'NOT COMPARABLE' || ok=0
grep -q '^5 rows: 3 PASS, 0 FAIL, 2 NOT COMPARABLE' "$tmp/out" || ok=0
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
"$MOESIM" reproduce "$tmp/repro_lh.ini" >"$tmp/out" 2>&1
ok=1
grep -q 'lru 2/4 per layer  .* 0\.250 .* PASS' "$tmp/out" || ok=0
grep -q 'belady 2/4 per layer  .* 0\.375 .* PASS' "$tmp/out" || ok=0
grep -q 'lru 2/4 per layer, pos>=4 .* 0\.250 .* FAIL' "$tmp/out" || ok=0
grep -q 'belady 2/4 per layer, pos>=4 .* 0\.500 .* PASS' "$tmp/out" || ok=0
[ $ok = 1 ] && echo "PASS reproduce_layer_hits_hand" || { echo "FAIL reproduce_layer_hits_hand"; cat "$tmp/out"; }
