#!/bin/sh
# test_backend_errors.sh: corrupt models are refused with a message naming the
# file and the tensor or field, a non-zero exit and no crash (sanitizers on
# under `make test SAN=1`). Models come from tests/tools/make_tiny_model.py.
MOESIM=${MOESIM:-build/moesim}
command -v python3 >/dev/null 2>&1 || { echo "SKIP test_backend_errors: python3 not found"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect NAME CORRUPTION PATTERN...: every pattern must occur in stderr
expect() {
    name=$1 kind=$2
    shift 2
    d="$tmp/$kind"
    python3 tests/tools/make_tiny_model.py "$d" --corrupt "$kind" || { echo "FAIL $name: generator failed"; fails=1; return; }
    "$MOESIM" infer --model "$d" --prompt "ab" --max-tokens 2 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 1 ]; then echo "FAIL $name: exit status $rc, expected 1: $(cat "$tmp/err")"; fails=1; return; fi
    for p in "$@"; do
        if ! grep -qF -- "$p" "$tmp/err"; then echo "FAIL $name: message lacks '$p': $(cat "$tmp/err")"; fails=1; return; fi
    done
    echo "PASS $name"
}

expect backend_err_truncated truncated "model.safetensors" "beyond data region" "file truncated"
expect backend_err_header_length header-length "model.safetensors" "header length" "beyond file size"
expect backend_err_offsets offsets "model.safetensors" "tensor 'model.layers.0.input_layernorm.weight'" "data_offsets"
expect backend_err_overlap overlap "model.safetensors" "overlap" "model.layers.0."
expect backend_err_dtype dtype "model.safetensors" "tensor '" "dtype F32, config.json says F16"
expect backend_err_shape shape "model.safetensors" "tensor 'model.layers.0.mlp.gate.weight'" "shape [8, 32], config.json implies [9, 32]"
expect backend_err_missing missing "model.safetensors" "tensor 'model.layers.1.post_attention_layernorm.weight': missing"
expect backend_err_arch arch "config.json" "'llama' not supported"
expect backend_err_header_json header-json "model.safetensors" "header JSON malformed"
expect backend_err_config_json config-json "config.json:" "malformed JSON"

# a missing directory, an empty prompt, bad ids
"$MOESIM" infer --model "$tmp/none" --prompt x >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "none/config.json: cannot open" "$tmp/err"; then echo "PASS backend_err_no_model"; else echo "FAIL backend_err_no_model: $(cat "$tmp/err")"; fails=1; fi
python3 tests/tools/make_tiny_model.py "$tmp/good"
"$MOESIM" infer --model "$tmp/good" --prompt-ids 1,2,999 >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "prompt-ids: item 3" "$tmp/err"; then echo "PASS backend_err_prompt_ids"; else echo "FAIL backend_err_prompt_ids: $(cat "$tmp/err")"; fails=1; fi
printf 'x' >"$tmp/one.txt"
"$MOESIM" ppl --model "$tmp/good" --text-file "$tmp/one.txt" >/dev/null 2>"$tmp/err"
if [ $? -eq 1 ] && grep -q "one.txt: 1 bytes" "$tmp/err"; then echo "PASS backend_err_ppl_short"; else echo "FAIL backend_err_ppl_short: $(cat "$tmp/err")"; fails=1; fi

# the good model works end to end: text out, ppl, --help
out=$("$MOESIM" infer --model "$tmp/good" --prompt "int main(" --max-tokens 16 --threads 2 2>/dev/null)
if [ $? -eq 0 ] && [ -n "$out" ]; then echo "PASS backend_infer_runs"; else echo "FAIL backend_infer_runs"; fails=1; fi
a=$("$MOESIM" infer --model "$tmp/good" --prompt "int" --max-tokens 24 --temperature 0.9 --top-p 0.9 --seed 7 2>/dev/null | od -An -tx1)
b=$("$MOESIM" infer --model "$tmp/good" --prompt "int" --max-tokens 24 --temperature 0.9 --top-p 0.9 --seed 7 --threads 1 2>/dev/null | od -An -tx1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "PASS backend_infer_seeded"; else echo "FAIL backend_infer_seeded: $a vs $b"; fails=1; fi
printf 'hello world, hello world, hello world\n' >"$tmp/t.txt"
if "$MOESIM" ppl --model "$tmp/good" --text-file "$tmp/t.txt" 2>&1 | grep -q '^nats_per_byte [0-9.]*$'; then echo "PASS backend_ppl_runs"; else echo "FAIL backend_ppl_runs"; fails=1; fi
if "$MOESIM" infer --help | grep -q -- "--lookahead D" && "$MOESIM" ppl --help | grep -q -- "--text-file"; then echo "PASS backend_help"; else echo "FAIL backend_help"; fails=1; fi
# a second --skip would silently replace the first: refused before any work
if "$MOESIM" infer --model models/tinymix --prompt ab --max-tokens 1 --offload auto --capacity 8 --skip cum=0.9 \
    --skip topk_frac=0.3 >/dev/null 2>"$tmp/err"; then echo "FAIL backend_skip_twice: ran"; fails=1
elif grep -qF -- "--skip given twice (cum=0.9, topk_frac=0.3)" "$tmp/err"; then echo "PASS backend_skip_twice"
else echo "FAIL backend_skip_twice: $(cat "$tmp/err")"; fails=1; fi
exit $fails
