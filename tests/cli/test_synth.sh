#!/bin/sh
# test_synth.sh: `moesim model synth` (random-weight models of a geometry)
# and `--route-from TRACE` (the backend executes a trace's routing), on
# small geometries; the large ones are `make validate-scale`.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# --- synth: files, determinism, the pack verifies against the model -----
"$MOESIM" model synth --geometry tinymix -o "$tmp/a" >"$tmp/out" 2>"$tmp/err" &&
"$MOESIM" model synth --geometry tinymix -o "$tmp/b" >/dev/null 2>&1 &&
"$MOESIM" model synth --geometry tinymix --seed 2 -o "$tmp/c" >/dev/null 2>&1
if cmp -s "$tmp/a/experts.pack" "$tmp/b/experts.pack" && cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors" &&
   ! cmp -s "$tmp/a/experts.pack" "$tmp/c/experts.pack"; then pass synth_seeded
else fail synth_seeded "same seed must give the same bytes, another seed others"; fi
# header 4096 B; index 192 x 32 B = 6144, padded to 8192; 6 layers x 32
# experts of 3 x 128 x 144 bf16 = 110592 B (27 pages, no padding)
bytes=$(stat -c %s "$tmp/a/experts.pack")
if [ "$bytes" = $((4096 + 8192 + 192 * 110592)) ] && "$MOESIM" model verify "$tmp/a/experts.pack" --model "$tmp/a" >/dev/null 2>&1
then pass synth_pack_layout; else fail synth_pack_layout "pack of $bytes bytes, or it does not verify"; fi
if "$MOESIM" infer --model "$tmp/a" --prompt hi >/dev/null 2>"$tmp/err"; then fail synth_resident_refused "ran resident"
elif grep -q "experts are only in an expert pack" "$tmp/err"; then pass synth_resident_refused
else fail synth_resident_refused "$(cat "$tmp/err")"; fi
if "$MOESIM" model synth --geometry tinymix -o "$tmp/a" >/dev/null 2>"$tmp/err"; then fail synth_no_overwrite "overwrote"
elif grep -q "already there (--force" "$tmp/err"; then pass synth_no_overwrite; else fail synth_no_overwrite "$(cat "$tmp/err")"; fi
# 1024 layers x 4096 experts x 3 x 8192 x 8192 bf16 = 1.7 PB: refused before a byte is written
if "$MOESIM" model synth --arch mixtral --layers 1024 --experts 4096 --top-k 2 --hidden 8192 --inter 8192 --heads 64 \
   --kv-heads 8 -o "$tmp/huge" >/dev/null 2>"$tmp/err"; then fail synth_disk_space "not refused"
elif grep -q "needs 1.5 PiB, the disk has" "$tmp/err" && [ -z "$(ls "$tmp/huge")" ]; then pass synth_disk_space
else fail synth_disk_space "$(cat "$tmp/err")"; fi
if "$MOESIM" model synth --geometry DeepSeek-V2-Lite -o "$tmp/ds" >/dev/null 2>"$tmp/err"; then fail synth_unknown_arch "accepted"
elif grep -q "has no 'arch' key" "$tmp/err"; then pass synth_unknown_arch; else fail synth_unknown_arch "$(cat "$tmp/err")"; fi

# --- --route-from: the captured trace is the input's routing ---------------
T=traces/tinymix_session.moetrace
"$MOESIM" infer --model "$tmp/a" --offload "$tmp/a/experts.pack" --route-from $T --route-steps 300 --capacity 8 \
    --io buffered --trace-out "$tmp/r.moetrace" >/dev/null 2>"$tmp/err"
"$MOESIM" trace export $T -o "$tmp/in.csv" >/dev/null 2>&1
"$MOESIM" trace export "$tmp/r.moetrace" -o "$tmp/got.csv" >/dev/null 2>&1
awk -F, 'NR == 1 || $1 < 300' "$tmp/in.csv" >"$tmp/want.csv"
if [ -s "$tmp/got.csv" ] && cmp -s "$tmp/want.csv" "$tmp/got.csv"; then pass route_from_trace_equal
else fail route_from_trace_equal "captured routing differs from the first 300 steps of $T"; fi
measured=$(sed -n 's/.*accesses, \([0-9]*\) hits.*/\1/p' "$tmp/err")
replayed=$("$MOESIM" run --trace "$tmp/r.moetrace" --policy lru --capacity 8 --json | sed -n 's/.*"hits":\([0-9]*\).*/\1/p')
if [ -n "$measured" ] && [ "$measured" = "$replayed" ]; then pass route_from_hits_equal
else fail route_from_hits_equal "backend $measured hits, replay $replayed"; fi

# every architecture: a generated trace of the model's geometry executes
for arch in "mixtral" "qwen3_moe" "olmoe" "qwen2_moe --shared-inter 32"; do
    name=${arch%% *}
    # shellcheck disable=SC2086
    "$MOESIM" model synth --arch $arch --layers 2 --experts 8 --top-k 2 --hidden 64 --inter 32 --heads 4 --kv-heads 2 \
        --vocab 300 -o "$tmp/m_$name" >/dev/null 2>&1
    "$MOESIM" trace gen -o "$tmp/g.moetrace" --steps 60 --layers 2 --experts 8 --top-k 2 --seq-len 30 --prefill 8 \
        --seed 3 >/dev/null 2>&1
    if "$MOESIM" infer --model "$tmp/m_$name" --offload "$tmp/m_$name/experts.pack" --route-from "$tmp/g.moetrace" \
        --capacity 3 --io buffered --trace-out "$tmp/rg.moetrace" >/dev/null 2>"$tmp/err" &&
       "$MOESIM" trace export "$tmp/g.moetrace" -o "$tmp/g.csv" >/dev/null 2>&1 &&
       "$MOESIM" trace export "$tmp/rg.moetrace" -o "$tmp/rg.csv" >/dev/null 2>&1 && cmp -s "$tmp/g.csv" "$tmp/rg.csv"
    then pass "route_from_arch_$name"; else fail "route_from_arch_$name" "$(tail -1 "$tmp/err")"; fi
done

# --- truncated models and refusals ---------------------------------------
"$MOESIM" model synth --geometry tinymix --keep-layers 3 -o "$tmp/t" >/dev/null 2>&1
if "$MOESIM" infer --model "$tmp/t" --offload "$tmp/t/experts.pack" --route-from $T --capacity 8 --io buffered \
    >/dev/null 2>"$tmp/err"; then fail route_from_layers_refused "ran"
elif grep -q "6 MoE layers, model t 3 (a truncated model executes the trace's first layers with --route-truncate)" "$tmp/err"
then pass route_from_layers_refused; else fail route_from_layers_refused "$(cat "$tmp/err")"; fi
"$MOESIM" infer --model "$tmp/t" --offload "$tmp/t/experts.pack" --route-from $T --route-steps 100 --route-truncate \
    --capacity 8 --io buffered --trace-out "$tmp/rt.moetrace" >/dev/null 2>&1
"$MOESIM" trace export "$tmp/rt.moetrace" -o "$tmp/rt.csv" >/dev/null 2>&1
awk -F, 'NR == 1 || ($1 < 100 && $4 < 3)' "$tmp/in.csv" >"$tmp/want3.csv"
if [ -s "$tmp/rt.csv" ] && cmp -s "$tmp/want3.csv" "$tmp/rt.csv"; then pass route_from_truncate
else fail route_from_truncate "the captured trace is not the first 3 layers of the first 100 steps"; fi
"$MOESIM" trace gen -o "$tmp/g16.moetrace" --steps 20 --layers 2 --experts 16 --top-k 2 >/dev/null 2>&1
if "$MOESIM" infer --model "$tmp/m_mixtral" --offload "$tmp/m_mixtral/experts.pack" --route-from "$tmp/g16.moetrace" \
    --capacity 2 >/dev/null 2>"$tmp/err"; then fail route_from_geometry_refused "ran"
elif grep -q "g16.moetrace: trace geometry 2 layers x 16 experts, top-2 does not match model m_mixtral (2 MoE layers x 8 experts, top-2)" "$tmp/err"
then pass route_from_geometry_refused; else fail route_from_geometry_refused "$(cat "$tmp/err")"; fi
if "$MOESIM" infer --model "$tmp/a" --offload "$tmp/a/experts.pack" --route-from traces/tinymix_prose.moetrace \
    --capacity 8 >/dev/null 2>"$tmp/err"; then fail route_from_big_step_refused "ran"
elif grep -q "step 0 has 256 tokens; an offloaded step holds at most 32" "$tmp/err"; then pass route_from_big_step_refused
else fail route_from_big_step_refused "$(cat "$tmp/err")"; fi
"$MOESIM" infer --model "$tmp/a" --offload "$tmp/a/experts.pack" --route-from $T --prompt hi --capacity 8 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 2 ] && grep -q "route-from replaces the prompt" "$tmp/err"; then pass route_from_with_prompt_refused
else fail route_from_with_prompt_refused "exit $rc: $(cat "$tmp/err")"; fi
"$MOESIM" infer --model "$tmp/a" --route-from $T >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 2 ] && grep -q "route-from applies to offloaded runs" "$tmp/err"; then pass route_from_needs_offload
else fail route_from_needs_offload "exit $rc: $(cat "$tmp/err")"; fi
