#!/bin/sh
# test_capture_hf.sh: the transformers capture (python/moesim/capture.py) and
# the C backend's capture record the same routing. tests/golden/capture/ holds
# captures made with transformers on the GPU machine
# (tests/tools/capture_goldens.sh); here, without torch, `moesim infer
# --trace-out` captures the same bytes with the same step layout and
# tests/python/compare_capture.py compares them record by record (experts in
# rank order, weights, logits, lookahead; near ties reported), then both
# traces are replayed and must give the same counts. (The torch-free unit
# tests of the router dispatch table, tests/python/test_routers.py, run in
# test_python.sh.)
MOESIM=${MOESIM:-build/moesim}
PY=${PY:-/usr/bin/python3}
G=tests/golden/capture
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH="$PWD/python"

# run_py NAME SCRIPT ARGS...: its PASS/FAIL lines, and a FAIL line if it dies without one
run_py() {
    n=$1; shift
    out=$("$PY" "$@" 2>"$tmp/err"); rc=$?
    [ -n "$out" ] && echo "$out"
    [ $rc -eq 0 ] || echo "$out" | grep -q '^FAIL' || echo "FAIL $n: exited $rc: $(tail -1 "$tmp/err")"
}

head -c 256 models/tinymix/golden/heldout_c.txt >"$tmp/long.txt"

# counts of one replay, one "key":value per line
counts() {
    "$MOESIM" run --trace "$1" --capacity "$2" $3 --json | tr ',' '\n' |
        grep -E '^"(accesses|hits|misses|evictions|token_slot_hits|prefetch_correct|prefetch_useful|skipped_slots)"'
}

# name, model dir, lookahead, capacity, infer options (the golden's step layout)
while read -r name model D cap opts; do
    [ -n "$name" ] || continue
    hf=$G/$name.moetrace
    if ! "$MOESIM" infer --model "$model" $opts --lookahead "$D" --threads 1 --trace-out "$tmp/$name.moetrace" \
            >/dev/null 2>"$tmp/err"; then
        echo "FAIL capture_hf_$name: moesim infer: $(tail -1 "$tmp/err")"
        continue
    fi
    run_py "capture_hf_${name}_compare" tests/python/compare_capture.py "capture_hf_$name" "$hf" "$tmp/$name.moetrace"
    for how in "" "--prefetch gate:ahead=1,n=2 --skip cum=0.9"; do
        a=$(counts "$hf" "$cap" "$how") b=$(counts "$tmp/$name.moetrace" "$cap" "$how")
        tag=${how:+_prefetch_skip}
        if [ -n "$a" ] && [ "$a" = "$b" ]; then
            echo "PASS capture_hf_${name}_replay$tag ($(echo "$a" | grep '"hits"'))"
        else
            echo "FAIL capture_hf_${name}_replay$tag: transformers capture: $(echo $a); backend: $(echo $b)"
        fi
    done
done <<EOT
tinymix_tf models/tinymix 2 8 --prompt-file $G/prompt.txt --max-tokens 1 --prefill-chunk 16 --router-logits
tinymix_gen models/tinymix 2 8 --prompt-file $G/prompt.txt --max-tokens 24 --prefill-chunk 20 --router-logits
tinymix_long models/tinymix 2 8 --prompt-file $tmp/long.txt --max-tokens 128
qwen2_moe_tf tests/golden/qwen2_moe 1 2 --prompt-file $G/prompt.txt --max-tokens 1 --prefill-chunk 16 --router-logits
qwen2_moe_gen tests/golden/qwen2_moe 1 2 --prompt-file $G/prompt.txt --max-tokens 24 --prefill-chunk 20 --router-logits
qwen3_moe_tf tests/golden/qwen3_moe 1 2 --prompt-file $G/prompt.txt --max-tokens 1 --prefill-chunk 16 --router-logits
qwen3_moe_gen tests/golden/qwen3_moe 1 2 --prompt-file $G/prompt.txt --max-tokens 24 --prefill-chunk 20 --router-logits
olmoe_tf tests/golden/olmoe 1 2 --prompt-file $G/prompt.txt --max-tokens 1 --prefill-chunk 16 --router-logits
olmoe_gen tests/golden/olmoe 1 2 --prompt-file $G/prompt.txt --max-tokens 24 --prefill-chunk 20 --router-logits
EOT

# the figure README's "Bring your own model" quotes
h=$("$MOESIM" run --trace $G/tinymix_long.moetrace --policy lru --capacity 8 --json |
    sed -n 's/.*"accesses":\([0-9]*\),"hits":\([0-9]*\).*/\2 of \1/p')
if [ -n "$h" ] && grep -q "hits $h activations" README.md; then echo "PASS capture_hf_readme_hits ($h)"
else echo "FAIL capture_hf_readme_hits: the run gives $h; README: $(grep -o 'hits [0-9]* of [0-9]* activations' README.md)"; fi
