#!/bin/sh
# test_pack.sh: `moesim model pack|info|verify` on the shipped model: the file
# has the size the format implies, info prints the geometry, verify passes on a
# good pack and names the file, layer and expert of a corrupted block, failed
# writes leave nothing behind, misuse exits 2.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=1; }

# run CMD...: exit status in $rc, stdout in $tmp/out, stderr in $tmp/err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -qF -- "$2" "$tmp/$1"; }

# tinymix: 6 MoE layers x 32 experts, hidden 128, inter 144; the index (192
# entries of 32 bytes) pads to 8192 bytes after the 4096-byte header.
bf16_block=$((3 * 144 * 128 * 2))   # 110592, already a multiple of 4096
f32_block=$((3 * 144 * 128 * 4))    # 221184
size_of() { wc -c <"$1" | tr -d ' '; }

# ---- pack ----------------------------------------------------------------------
run "$MOESIM" model pack models/tinymix -o "$tmp/t.pack"
want=$((4096 + 8192 + 6 * 32 * bf16_block))
if [ $rc -eq 0 ] && [ "$(size_of "$tmp/t.pack")" = "$want" ] &&
   has out "wrote $tmp/t.pack: 6 layers x 32 experts, bf16, 110592 B per expert (108.0 KiB), 20.3 MiB"; then
    pass pack_bf16_size
else fail pack_bf16_size "rc $rc, size $(size_of "$tmp/t.pack" 2>/dev/null), want $want: $(cat "$tmp/out" "$tmp/err")"; fi

run "$MOESIM" model pack models/tinymix -o "$tmp/f.pack" --dtype f32
want=$((4096 + 8192 + 6 * 32 * f32_block))
if [ $rc -eq 0 ] && [ "$(size_of "$tmp/f.pack")" = "$want" ] && has out "f32, 221184 B per expert"; then
    pass pack_f32_size
else fail pack_f32_size "rc $rc, size $(size_of "$tmp/f.pack" 2>/dev/null), want $want: $(cat "$tmp/out" "$tmp/err")"; fi

# default output: DIR/experts.pack (a directory of links, so the repository stays clean)
mkdir "$tmp/tm"
ln -s "$PWD/models/tinymix/config.json" "$PWD/models/tinymix/model.safetensors" "$tmp/tm/"
run "$MOESIM" model pack "$tmp/tm"
if [ $rc -eq 0 ] && cmp -s "$tmp/tm/experts.pack" "$tmp/t.pack"; then pass pack_default_output_deterministic
else fail pack_default_output_deterministic "rc $rc: $(cat "$tmp/err")"; fi

# ---- info -----------------------------------------------------------------------
run "$MOESIM" model info "$tmp/t.pack"
if [ $rc -eq 0 ] && has out "dtype         bf16" && has out "layers        6" && has out "experts       32 per layer" &&
   has out "hidden        128" && has out "inter         144" && has out "expert_bytes  110592 (108.0 KiB)" &&
   has out "stride        110592" && grep -q '^model_id      [0-9a-f]\{64\}$' "$tmp/out"; then
    pass info_geometry
else fail info_geometry "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
id_bf16=$(sed -n 's/^model_id *//p' "$tmp/out")
"$MOESIM" model info "$tmp/f.pack" >"$tmp/out" 2>&1
if [ "$(sed -n 's/^model_id *//p' "$tmp/out")" = "$id_bf16" ] && has out "stride        221184"; then pass info_same_model_id
else fail info_same_model_id "$(cat "$tmp/out")"; fi

# ---- verify ---------------------------------------------------------------------
run "$MOESIM" model verify "$tmp/t.pack" --model models/tinymix
if [ $rc -eq 0 ] && has out "$tmp/t.pack: ok: 192 experts verified" && has out "made from models/tinymix"; then pass verify_good
else fail verify_good "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
ok=1
for io in buffered mmap direct; do
    run "$MOESIM" model verify "$tmp/t.pack" --io $io
    # a file system without O_DIRECT must say so and point at --io buffered
    if [ $rc -eq 0 ] && has out "ok: 192 experts"; then :
    elif [ $io = direct ] && [ $rc -eq 1 ] && has err "--io buffered"; then echo "info: $(cat "$tmp/err")"
    else ok=0; echo "info: --io $io: rc $rc $(cat "$tmp/err")"; fi
done
if [ $ok = 1 ]; then pass verify_io_modes; else fail verify_io_modes "see above"; fi

run "$MOESIM" model verify "$tmp/t.pack" --model tests/golden/qwen3_moe
if [ $rc -eq 1 ] && has err "$tmp/t.pack: pack of another model" && has err "MoE layers 6 in the pack, 2 in qwen3_moe"; then
    pass verify_other_model
else fail verify_other_model "rc $rc: $(cat "$tmp/err")"; fi

# one byte of layer 2 expert 17's block changed
cp "$tmp/t.pack" "$tmp/bad.pack"
off=$((12288 + (2 * 32 + 17) * bf16_block + 1000))
b=$(od -An -tu1 -j $off -N1 "$tmp/bad.pack" | tr -d ' ')
printf "\\$(printf %03o $(((b + 1) % 256)))" | dd of="$tmp/bad.pack" bs=1 seek=$off conv=notrunc 2>/dev/null
run "$MOESIM" model verify "$tmp/bad.pack"
if [ $rc -eq 1 ] && has err "$tmp/bad.pack: layer 2 expert 17: checksum mismatch"; then pass verify_corrupt_block
else fail verify_corrupt_block "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
# info reads no block: the corruption is invisible to it
run "$MOESIM" model info "$tmp/bad.pack"
if [ $rc -eq 0 ]; then pass info_reads_no_block; else fail info_reads_no_block "rc $rc: $(cat "$tmp/err")"; fi

head -c 1000000 "$tmp/t.pack" >"$tmp/short.pack"
run "$MOESIM" model info "$tmp/short.pack"
if [ $rc -eq 1 ] && has err "$tmp/short.pack: truncated: 1000000 bytes, the header says 21245952"; then pass info_truncated
else fail info_truncated "rc $rc: $(cat "$tmp/err")"; fi
printf 'not a pack' >"$tmp/text.pack"
run "$MOESIM" model verify "$tmp/text.pack"
if [ $rc -eq 1 ] && has err "$tmp/text.pack: truncated or not an expert pack: 10 bytes"; then pass verify_not_a_pack
else fail verify_not_a_pack "rc $rc: $(cat "$tmp/err")"; fi

# ---- errors: nothing half-written -------------------------------------------------
run "$MOESIM" model pack "$tmp/none" -o "$tmp/none.pack"
if [ $rc -eq 1 ] && has err "none/config.json: cannot open" && [ ! -e "$tmp/none.pack" ]; then pass pack_missing_model
else fail pack_missing_model "rc $rc: $(cat "$tmp/err")"; fi

: >"$tmp/afile"
run "$MOESIM" model pack models/tinymix -o "$tmp/afile/x.pack"
if [ $rc -eq 1 ] && has err "$tmp/afile/x.pack: cannot create"; then pass pack_unwritable_dir
else fail pack_unwritable_dir "rc $rc: $(cat "$tmp/err")"; fi

# a write that fails half-way (file size limit; SIGXFSZ ignored so write()
# returns EFBIG) removes its temporary file
mkdir "$tmp/lim"
(trap '' XFSZ; ulimit -f 2048; exec "$MOESIM" model pack models/tinymix -o "$tmp/lim/x.pack") >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && has err "$tmp/lim/x.pack: write failed" && [ -z "$(ls -A "$tmp/lim")" ]; then pass pack_failed_write_leaves_nothing
else fail pack_failed_write_leaves_nothing "rc $rc, left: $(ls -A "$tmp/lim"): $(cat "$tmp/err")"; fi

# ---- usage ---------------------------------------------------------------------------
run "$MOESIM" model pack models/tinymix -o "$tmp/x.pack" --dtype f16
if [ $rc -eq 2 ] && has err "--dtype: expected bf16, f32, q8, q4, q3 or q2, got 'f16'" && [ ! -e "$tmp/x.pack" ]; then pass pack_bad_dtype
else fail pack_bad_dtype "rc $rc: $(cat "$tmp/err")"; fi
run "$MOESIM" model verify "$tmp/t.pack" --io fast
if [ $rc -eq 2 ] && has err "unknown I/O mode 'fast'"; then pass verify_bad_io; else fail verify_bad_io "rc $rc: $(cat "$tmp/err")"; fi
ok=1
run "$MOESIM" model; [ $rc -eq 2 ] && has err "usage: moesim model" || ok=0
run "$MOESIM" model unpack x; [ $rc -eq 2 ] && has err "unknown subcommand 'unpack'" || ok=0
run "$MOESIM" model pack; [ $rc -eq 2 ] && has err "need exactly one model directory" || ok=0
run "$MOESIM" model info; [ $rc -eq 2 ] || ok=0
if [ $ok = 1 ]; then pass model_usage_errors; else fail model_usage_errors "rc $rc: $(cat "$tmp/err")"; fi
if "$MOESIM" model --help | grep -q "verify" && "$MOESIM" model pack --help | grep -q -- "--dtype D" &&
   "$MOESIM" model info --help | grep -q "model id" && "$MOESIM" model verify --help | grep -q -- "--io MODE" &&
   "$MOESIM" --help | grep -q "^  model "; then
    pass model_help
else fail model_help "a --help text lacks its options"; fi

# ---- default dtype follows the model file: BF16 (tinymix, above) packs as bf16,
# F16 as f32 (there is no f16 pack) ---------------------------------------------------
if command -v python3 >/dev/null 2>&1; then
    python3 tests/tools/make_tiny_model.py "$tmp/m16" --dtype F16
    run "$MOESIM" model pack "$tmp/m16"
    if [ $rc -eq 0 ] && has out "2 layers x 8 experts, f32, $((3 * 48 * 32 * 4)) B per expert"; then pass pack_default_dtype_f16
    else fail pack_default_dtype_f16 "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
else echo "SKIP pack_default_dtype_f16: python3 not found"; fi
exit $fails
