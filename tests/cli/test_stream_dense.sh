#!/bin/sh
# test_stream_dense.sh: dense weights streamed too (`--stream-dense`): the
# dense pack (`model pack --dense`), the backend's stream, the simulator's
# model of it and `validate`'s counts.
#  - an offloaded run with --stream-dense prints the resident run's text byte
#    for byte (tinymix at budgets 1, 2 and 3; the golden qwen2_moe with q/k/v
#    biases and a shared expert, olmoe; a synthetic model), and ppl's number;
#  - it reads one block per (step, layer) plus the B - 1 queued past the last
#    step, each the dense pack's block bytes (worked out below by hand);
#  - validate's measured and predicted dense bytes and reads are equal;
#  - `run --stream-dense` prices a block from the model profile;
#  - bad budgets, a missing pack, a wrong file and another model's pack are
#    refused naming the option or the file.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=1; }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -qF -- "$2" "$tmp/$1"; }
# jget FILE OBJECT KEY: KEY inside the flat object OBJECT (validate --json)
jget() { sed -n "s/.*\"$2\":{\([^}]*\)}.*/\1/p" "$1" | tr ',' '\n' | sed -n "s/^\"$3\":\([-0-9.e+]*\|null\)$/\1/p"; }
# reads: the dense blocks an infer/ppl run read, from its summary on stderr
reads() { sed -n 's/^moesim [a-z]*: --stream-dense=[0-9]*: read \([0-9]*\) dense blocks of \([0-9]*\) B.*/\1 \2/p' "$tmp/err"; }

model=models/tinymix
head -c 100 "$model/golden/heldout_prose.txt" >"$tmp/p.txt"
"$MOESIM" model pack $model -o "$tmp/e.pack" >/dev/null 2>&1 || { fail stream_setup "model pack"; exit 1; }
# tinymix's block (backend/dense_pack.h): 2 norms of 128 f32 (512 B each), q and
# o 128 x 128 bf16 (32768 B each), k and v 64 x 128 (16384 B each) = 99328 B
run "$MOESIM" model pack $model --dense -o "$tmp/d.pack"
if [ $rc -eq 0 ] && has out "wrote $tmp/d.pack: 6 layers, 6 tensors each, 99328 B per layer (97.0 KiB)" &&
   [ "$(stat -c %s "$tmp/d.pack")" = $((8192 + 6 * 102400)) ]; then pass stream_dense_pack
else fail stream_dense_pack "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
run "$MOESIM" model info "$tmp/d.pack"
if [ $rc -eq 0 ] && has out "format        dense pack v1" && has out "data_offset   8192" &&
   has out "tensor        k_proj                     bf16 64 x 128 at 33792"; then pass stream_dense_pack_info
else fail stream_dense_pack_info "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
IO=""
if ! "$MOESIM" model verify "$tmp/e.pack" --io direct >/dev/null 2>&1; then IO="--io buffered"; fi

INFER="$MOESIM infer --model $model --prompt-file $tmp/p.txt --max-tokens 24 --threads 2"
OFF="--offload $tmp/e.pack --capacity 4 $IO"
run $INFER
cp "$tmp/out" "$tmp/resident.out"
# 100 prompt bytes in steps of 32 (4) + 23 decode steps = 27 steps x 6 layers
for B in 1 2 3; do
    run $INFER $OFF --stream-dense=$B --dense-pack "$tmp/d.pack"
    want="$((27 * 6 + B - 1)) 99328"
    if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && [ "$(reads)" = "$want" ] &&
       has err "+ dense layer buffers $((B * 100)).0 KiB"; then pass stream_dense_text_same_b$B
    else fail stream_dense_text_same_b$B "rc $rc, reads '$(reads)' (want '$want'): $(cat "$tmp/err")"; fi
done
run $INFER $OFF --stream-dense --dense-pack "$tmp/d.pack" --prefetch gate:ahead=1 --io-threads 2
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && [ "$(reads)" = "$((27 * 6 + 1)) 99328" ]; then
    pass stream_dense_text_same_prefetch
else fail stream_dense_text_same_prefetch "rc $rc, reads '$(reads)': $(cat "$tmp/err")"; fi

# ppl: the same number; 299 tokens in steps of 32 = 10 steps
head -c 300 "$model/golden/heldout_c.txt" >"$tmp/c.txt"
PPL="$MOESIM ppl --model $model --text-file $tmp/c.txt --threads 2"
$PPL >"$tmp/ppl_res" 2>/dev/null
run $PPL $OFF --stream-dense --dense-pack "$tmp/d.pack"
if [ $rc -eq 0 ] && [ -s "$tmp/ppl_res" ] && cmp -s "$tmp/out" "$tmp/ppl_res" && [ "$(reads)" = "61 99328" ]; then
    pass stream_dense_ppl_same
else fail stream_dense_ppl_same "rc $rc, reads '$(reads)': $(cat "$tmp/out" "$tmp/err")"; fi

# the golden models: q/k/v biases and a shared expert (qwen2_moe), whole-projection
# q/k norms (olmoe), f32 weights; two layers, so one buffer
head -c 40 "$tmp/p.txt" >"$tmp/p40.txt"
for g in qwen2_moe olmoe; do
    d=tests/golden/$g
    "$MOESIM" model pack $d -o "$tmp/$g.e" >/dev/null 2>&1 && "$MOESIM" model pack $d --dense -o "$tmp/$g.d" >/dev/null 2>&1
    G="$MOESIM infer --model $d --prompt-file $tmp/p40.txt --max-tokens 12 --threads 2"
    $G >"$tmp/g_res" 2>/dev/null
    run $G --offload "$tmp/$g.e" --capacity 2 $IO --stream-dense=1 --dense-pack "$tmp/$g.d"
    if [ $rc -eq 0 ] && [ -s "$tmp/g_res" ] && cmp -s "$tmp/out" "$tmp/g_res"; then pass stream_dense_text_same_$g
    else fail stream_dense_text_same_$g "rc $rc: $(cat "$tmp/err")"; fi
done

# a synthetic model (experts in its pack only): the offloaded run with and without
# the dense stream, the same tokens
"$MOESIM" model synth --arch qwen2_moe --layers 3 --experts 8 --top-k 2 --hidden 64 --inter 32 --heads 4 --kv-heads 2 \
    --vocab 256 --shared-inter 48 -o "$tmp/syn" >/dev/null 2>&1
run "$MOESIM" model pack "$tmp/syn" --dense
S="$MOESIM infer --model $tmp/syn --prompt-file $tmp/p40.txt --max-tokens 12 --threads 2 --offload $tmp/syn/experts.pack --capacity 2 $IO"
$S >"$tmp/s_res" 2>/dev/null
run $S --stream-dense
if [ $rc -eq 0 ] && [ -s "$tmp/s_res" ] && cmp -s "$tmp/out" "$tmp/s_res" && [ -s "$tmp/syn/dense.pack" ]; then
    pass stream_dense_synth_same
else fail stream_dense_synth_same "rc $rc: $(cat "$tmp/err")"; fi

# ---- validate: dense bytes and reads measured = predicted ---------------------------
cat >"$tmp/hand.ini" <<'EOF'
[hand]
model = tinymix
threads = 2
io_channels = 1
io_latency_us = 100
io_bandwidth_GBps = 1.0
dense_us = 20
dense_us_per_token = 10
attn_ns_per_ctx = 100
expert_us = 10
expert_us_per_token = 10
head_us = 10
EOF
# 16 tokens: 4 prefill + 15 decode steps = 19 x 6 layers + 1 read past the end
run "$MOESIM" validate --model $model --prompt-file "$tmp/p.txt" --max-tokens 16 --threads 2 $OFF \
    --devices "$tmp/hand.ini" --device hand --json --stream-dense --dense-pack "$tmp/d.pack"
why=""
for k in hits misses bytes_demand bytes_dense reads_dense; do
    a=$(jget "$tmp/out" measured $k) b=$(jget "$tmp/out" predicted $k)
    [ -n "$a" ] && [ "$a" = "$b" ] || why="$why measured.$k $a predicted.$k $b;"
done
[ "$(jget "$tmp/out" measured reads_dense)" = 115 ] || why="$why reads_dense not 115;"
[ "$(jget "$tmp/out" measured bytes_dense)" = $((115 * 99328)) ] || why="$why bytes_dense not 115 x 99328;"
[ -n "$(jget "$tmp/out" predicted stall_dense_s)" ] || why="$why no predicted stall_dense_s;"
has out '"exact":true' || why="$why not exact;"
if [ $rc -eq 0 ] && [ -z "$why" ]; then pass stream_dense_validate_exact
else fail stream_dense_validate_exact "rc $rc:$why $(cat "$tmp/err") $(head -c 300 "$tmp/out")"; fi

# ---- the simulator alone: a block from the profile ------------------------------------
# tinymix's profile: (dense_params 53504 - 32 experts x 128 router) x 2 bytes = 98816
"$MOESIM" infer --model $model --prompt-file "$tmp/p.txt" --max-tokens 8 --threads 2 $OFF \
    --trace-out "$tmp/t.moetrace" >/dev/null 2>&1
run "$MOESIM" run --trace "$tmp/t.moetrace" --capacity 4 --model tinymix --stream-dense=3 --json
# 4 prefill + 7 decode steps = 11 x 6 + 2
if [ $rc -eq 0 ] && has out '"bytes_dense":6719488,' && has out '"reads_dense":68,'; then pass stream_dense_run_profile
else fail stream_dense_run_profile "rc $rc: $(cat "$tmp/err") $(head -c 300 "$tmp/out")"; fi
run "$MOESIM" run --trace "$tmp/t.moetrace" --capacity 4 --stream-dense
if [ $rc -ne 0 ] && has err "--stream-dense needs a layer's dense bytes: give --model NAME"; then pass stream_dense_run_needs_bytes
else fail stream_dense_run_needs_bytes "rc $rc: $(cat "$tmp/err")"; fi

# ---- refusals ----------------------------------------------------------------------------
refused() { # NAME NEEDLE COMMAND...: fails, names NEEDLE, prints nothing on stdout
    name=$1 needle=$2; shift 2
    run "$@"
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "$needle" && [ ! -s "$tmp/out" ]; then pass "$name"
    else fail "$name" "rc $rc: $(cat "$tmp/err")"; fi
}
refused stream_dense_budget_zero "--stream-dense=0: at least 1 layer buffer" $INFER $OFF --stream-dense=0
refused stream_dense_budget_all "--stream-dense=6: 6 layer buffers hold all 6 layers of tinymix" \
    $INFER $OFF --stream-dense=6 --dense-pack "$tmp/d.pack"
refused stream_dense_budget_text "--stream-dense: expected a non-negative integer, got 'two'" $INFER $OFF --stream-dense=two
refused stream_dense_no_pack "$tmp/none.pack: no dense pack for --stream-dense (make one: moesim model pack $model --dense" \
    $INFER $OFF --stream-dense --dense-pack "$tmp/none.pack"
refused stream_dense_no_default_pack "$model/dense.pack: no dense pack" $INFER $OFF --stream-dense
refused stream_dense_wrong_file "$tmp/e.pack: not a dense pack" $INFER $OFF --stream-dense --dense-pack "$tmp/e.pack"
refused stream_dense_other_model "$tmp/olmoe.d: dense pack of another model: 2 layers in the pack, 6 in tinymix" \
    $INFER $OFF --stream-dense --dense-pack "$tmp/olmoe.d"
refused stream_dense_needs_offload "--stream-dense applies to offloaded runs" $INFER --stream-dense
refused stream_dense_pack_needs_stream "--dense-pack is read by --stream-dense" $INFER $OFF --dense-pack "$tmp/d.pack"
refused stream_dense_quality "quality compares against a resident run" \
    "$MOESIM" quality --model $model --text-file "$tmp/c.txt" --offload "$tmp/e.pack" --capacity 4 --stream-dense
refused stream_dense_pack_dtype "--dtype applies to expert packs" "$MOESIM" model pack $model --dense --dtype q4 -o "$tmp/x.pack"
refused stream_dense_run_budget_all "--stream-dense=6: 6 layer buffers hold all 6 layers" \
    "$MOESIM" run --trace "$tmp/t.moetrace" --capacity 4 --model tinymix --stream-dense=6
# a damaged block is reported when it is read, with the layer
cp "$tmp/d.pack" "$tmp/bad.pack"
printf '\377' | dd of="$tmp/bad.pack" bs=1 seek=$((8192 + 3 * 102400 + 5000)) conv=notrunc 2>/dev/null
refused stream_dense_corrupt_block "$tmp/bad.pack: layer 3: checksum mismatch" \
    $INFER $OFF --stream-dense --dense-pack "$tmp/bad.pack"
exit $fails
