#!/bin/sh
# capture_goldens.sh: make tests/golden/capture/*.moetrace with moesim.capture
# (Hugging Face transformers) on a machine with torch and transformers >= 5.
# tests/cli/test_capture_hf.sh then checks, without torch, that `moesim infer
# --trace-out` of the same bytes records the same routing and replays to the
# same hit counts.
#
#   sh tests/tools/capture_goldens.sh [OUTDIR [NAME...]]
#       OUTDIR default tests/golden/capture; NAMEs: some of tinymix qwen2_moe
#       qwen3_moe olmoe (default all)
#
# Per model (the shipped tinymix, Mixtral; the tiny random Qwen2-MoE,
# Qwen3-MoE, OLMoE of tests/golden/), float32, eager attention and experts:
#   NAME_tf.moetrace   teacher-forced: prompt.txt (48 bytes) in 3 chunks of 16
#   NAME_gen.moetrace  prompt.txt in chunks of 20 (20, 20, then 8 inside
#                      generate()), then 24 greedy tokens (23 decode steps)
# both with router logits and lookahead (2 for tinymix's 6 MoE layers, else 1);
# and for tinymix also
#   tinymix_long.moetrace  the first 256 bytes of its held-out C text as one
#                      prefill step, then 128 greedy bytes, lookahead 2
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-tests/golden/capture}
[ $# -gt 0 ] && shift
ONLY="$*"
PY=${PY:-python3}
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
P=tests/golden/capture/prompt.txt
for spec in "tinymix models/tinymix 2" "qwen2_moe tests/golden/qwen2_moe 1" \
            "qwen3_moe tests/golden/qwen3_moe 1" "olmoe tests/golden/olmoe 1"; do
    set -- $spec
    case " ${ONLY:-$1} " in *" $1 "*) ;; *) continue ;; esac
    common="--model $2 --text $P --lookahead $3 --logits --dtype float32 --attn-implementation eager --experts-implementation eager"
    $PY -m moesim.capture $common --prefill-chunk 16 -o "$OUT/$1_tf.moetrace"
    $PY -m moesim.capture $common --prefill-chunk 20 --generate 24 -o "$OUT/$1_gen.moetrace"
    if [ "$1" = tinymix ]; then
        head -c 256 models/tinymix/golden/heldout_c.txt >"$OUT/.long.txt"
        $PY -m moesim.capture --model models/tinymix --text "$OUT/.long.txt" --lookahead 2 --generate 128 \
            --dtype float32 --attn-implementation eager --experts-implementation eager -o "$OUT/tinymix_long.moetrace"
        rm -f "$OUT/.long.txt"
    fi
done
