#!/bin/sh
# test_checkpoints.sh: real checkpoint layouts in the backend.
#  - the shipped model split into 3 shards + model.safetensors.index.json
#    (tests/tools/shard_model.py) gives byte-identical `infer` and `ppl`
#    output; broken indexes are refused naming the index and the shard or
#    tensor at fault;
#  - a model directory with a tokenizer.json (tests/golden/bpe, transformers'
#    ids in golden.json) tokenizes prompts and texts with it: ppl's token
#    count equals transformers' for the golden paragraph, its per-byte
#    average divides by the bytes the predicted tokens cover; unusable
#    tokenizer.json files and non-UTF-8 text are refused by name.
MOESIM=${MOESIM:-build/moesim}
command -v python3 >/dev/null 2>&1 || { echo "SKIP test_checkpoints: python3 not found"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=1; }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -qF -- "$2" "$tmp/$1"; }

# ---- sharded safetensors ----------------------------------------------------------
python3 tests/tools/shard_model.py models/tinymix "$tmp/sh" --shards 3
n_shards=$(ls "$tmp/sh"/model-0000?-of-00003.safetensors 2>/dev/null | wc -l)
"$MOESIM" infer --model models/tinymix --prompt "int main(" --max-tokens 24 --threads 2 >"$tmp/one.txt" 2>/dev/null
"$MOESIM" infer --model "$tmp/sh" --prompt "int main(" --max-tokens 24 --threads 2 >"$tmp/three.txt" 2>/dev/null
if [ "$n_shards" = 3 ] && [ -s "$tmp/one.txt" ] && cmp -s "$tmp/one.txt" "$tmp/three.txt"; then pass shards_infer_identical
else fail shards_infer_identical "$n_shards shards; outputs differ: $(od -c "$tmp/one.txt" | head -3) vs $(od -c "$tmp/three.txt" | head -3)"; fi
printf 'static int add(int a, int b) { return a + b; }\n' >"$tmp/code.c"
"$MOESIM" ppl --model models/tinymix --text-file "$tmp/code.c" --threads 2 >"$tmp/p1" 2>/dev/null
"$MOESIM" ppl --model "$tmp/sh" --text-file "$tmp/code.c" --threads 2 >"$tmp/p3" 2>/dev/null
if grep -q '^nats_per_byte [0-9]' "$tmp/p1" && cmp -s "$tmp/p1" "$tmp/p3"; then pass shards_ppl_identical
else fail shards_ppl_identical "$(cat "$tmp/p1") vs $(cat "$tmp/p3")"; fi

# broken shard sets (a small random model: fast to copy five times)
python3 tests/tools/make_tiny_model.py "$tmp/small"
expect_shards() {
    name=$1 kind=$2
    shift 2
    python3 tests/tools/shard_model.py "$tmp/small" "$tmp/$kind" --corrupt "$kind"
    run "$MOESIM" infer --model "$tmp/$kind" --prompt "ab" --max-tokens 2
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc, expected 1: $(cat "$tmp/err")"; return; fi
    for p in "$tmp/$kind/model.safetensors.index.json: " "$@"; do
        has err "$p" || { fail "$name" "message lacks '$p': $(cat "$tmp/err")"; return; }
    done
    pass "$name"
}
expect_shards shards_err_missing missing-shard "shard 'model-00002-of-00003.safetensors'" "cannot open"
expect_shards shards_err_two_shards two-shards "tensor 'lm_head.weight' is in shard 'model-00001-of-00003.safetensors' and in shard 'model-00003-of-00003.safetensors'"
expect_shards shards_err_unknown unknown-tensor "weight_map maps tensor 'model.layers.99.mlp.gate.weight' to shard 'model-00001-of-00003.safetensors', which does not hold it"
expect_shards shards_err_unlisted unlisted-tensor "of shard 'model-00002-of-00003.safetensors' is not in weight_map"
expect_shards shards_err_bad_name bad-name "weight_map['lm_head.weight']: expected the name of a shard file in the same directory"
cp "$tmp/small/model.safetensors" "$tmp/missing-shard/"
run "$MOESIM" infer --model "$tmp/missing-shard" --prompt "ab" --max-tokens 2
if [ $rc -eq 1 ] && has err "both model.safetensors and model.safetensors.index.json are present"; then pass shards_err_both
else fail shards_err_both "rc $rc: $(cat "$tmp/err")"; fi
# a tensor's shape error names the shard that holds it
python3 tests/tools/make_tiny_model.py "$tmp/badshape" --corrupt shape
python3 tests/tools/shard_model.py "$tmp/badshape" "$tmp/badshape3"
run "$MOESIM" infer --model "$tmp/badshape3" --prompt "ab" --max-tokens 2
if [ $rc -eq 1 ] && grep -q "badshape3/model-0000[123]-of-00003.safetensors: tensor 'model.layers.0.mlp.gate.weight': shape \[8, 32\]" "$tmp/err"; then
    pass shards_err_names_shard
else fail shards_err_names_shard "rc $rc: $(cat "$tmp/err")"; fi

# ---- tokenizer.json ------------------------------------------------------------------
# golden id count of the corpus case NAME for tokenizer TOK (with special tokens)
golden_count() {
    python3 -c "import json,sys; c=[x['name'] for x in json.load(open('tests/golden/bpe/corpus.json'))['cases']]; \
g=json.load(open('tests/golden/bpe/$1/golden.json'))['cases']; print(len(g[c.index('$2')]['ids']))"
}
golden_text() {
    python3 -c "import json,sys; c={x['name']: x['hex'] for x in json.load(open('tests/golden/bpe/corpus.json'))['cases']}; \
sys.stdout.buffer.write(bytes.fromhex(c['$1']))" >"$2"
}
golden_text paragraph "$tmp/para.txt"
bytes=$(wc -c <"$tmp/para.txt" | tr -d ' ')
for tok in qwen2 mixtral; do
    python3 tests/tools/make_tiny_model.py "$tmp/m_$tok" --vocab 512
    cp "tests/golden/bpe/$tok/tokenizer.json" "$tmp/m_$tok/"
    want=$(golden_count "$tok" paragraph)
    run "$MOESIM" ppl --model "$tmp/m_$tok" --text-file "$tmp/para.txt" --threads 2
    got=$(sed -n 's/^tokens //p' "$tmp/out")
    if [ $rc -eq 0 ] && [ "$got" = "$want" ] && has out "bytes $bytes"; then pass "tokenizer_ppl_tokens_$tok"
    else fail "tokenizer_ppl_tokens_$tok" "rc $rc, tokens '$got', transformers $want: $(cat "$tmp/out" "$tmp/err")"; fi
done
# per byte: mixtral's template puts a BOS first, so every byte of the text is
# predicted: nats_per_byte = nats_per_token x (tokens - 1) / bytes
run "$MOESIM" ppl --model "$tmp/m_mixtral" --text-file "$tmp/para.txt" --threads 2
ok=$(awk -v b="$bytes" '/^tokens /{t=$2} /^nats_per_token /{npt=$2} /^nats_per_byte /{npb=$2}
     END { d = npt * (t - 1) / b - npb; if (d < 0) d = -d; print (t > 1 && d < 2e-6) ? "yes" : "no" }' "$tmp/out")
if [ "$ok" = yes ]; then pass tokenizer_ppl_per_byte; else fail tokenizer_ppl_per_byte "$(cat "$tmp/out")"; fi

golden_text chat "$tmp/chat.txt"   # special tokens, newlines
want=$(golden_count qwen2 chat)
run "$MOESIM" infer --model "$tmp/m_qwen2" --prompt-file "$tmp/chat.txt" --max-tokens 8 --threads 2
if [ $rc -eq 0 ] && has err "prefill $want tokens"; then pass tokenizer_infer_prompt_file
else fail tokenizer_infer_prompt_file "rc $rc, transformers has $want tokens: $(cat "$tmp/err")"; fi
# with and without the template's BOS: one token apart
run "$MOESIM" infer --model "$tmp/m_mixtral" --prompt "Hello world" --max-tokens 1 --threads 2
a=$(sed -n 's/.*prefill \([0-9]*\) tokens.*/\1/p' "$tmp/err")
run "$MOESIM" infer --model "$tmp/m_mixtral" --prompt "Hello world" --max-tokens 1 --threads 2 --no-special-tokens
b=$(sed -n 's/.*prefill \([0-9]*\) tokens.*/\1/p' "$tmp/err")
want=$(golden_count mixtral ascii)
if [ "$a" = "$want" ] && [ "$b" = $((want - 1)) ]; then pass tokenizer_infer_special
else fail tokenizer_infer_special "prefill $a and $b tokens, transformers $want with the BOS"; fi

# refusals
printf 'ab\377c' >"$tmp/bad.txt"
run "$MOESIM" ppl --model "$tmp/m_qwen2" --text-file "$tmp/bad.txt"
if [ $rc -eq 1 ] && has err "m_qwen2/tokenizer.json: byte 2: not UTF-8"; then pass tokenizer_err_utf8
else fail tokenizer_err_utf8 "rc $rc: $(cat "$tmp/err")"; fi
python3 -c "import json; j=json.load(open('tests/golden/bpe/qwen2/tokenizer.json')); j['normalizer']={'type':'NFKC'}; \
json.dump(j, open('$tmp/m_qwen2/tokenizer.json','w'))"
run "$MOESIM" infer --model "$tmp/m_qwen2" --prompt "hi" --max-tokens 2
if [ $rc -eq 1 ] && has err "m_qwen2/tokenizer.json: \$.normalizer: normalizer 'NFKC' is not supported"; then pass tokenizer_err_unsupported
else fail tokenizer_err_unsupported "rc $rc: $(cat "$tmp/err")"; fi
python3 tests/tools/make_tiny_model.py "$tmp/m_small"   # 256 embeddings, a tokenizer of 421 ids
cp tests/golden/bpe/qwen2/tokenizer.json "$tmp/m_small/"
run "$MOESIM" ppl --model "$tmp/m_small" --text-file "$tmp/para.txt"
if [ $rc -eq 1 ] && has err "token id 420 ('<tool_call>') is past the model's vocab_size 256"; then pass tokenizer_err_vocab
else fail tokenizer_err_vocab "rc $rc: $(cat "$tmp/err")"; fi
if "$MOESIM" infer --help | grep -q "tokenizer.json" && "$MOESIM" ppl --help | grep -q "tokenizer.json"; then pass tokenizer_help
else fail tokenizer_help "--help does not mention tokenizer.json"; fi
exit $fails
