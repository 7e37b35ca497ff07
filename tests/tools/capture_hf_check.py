#!/usr/bin/env python3
"""capture_hf_check.py: moesim.capture on tiny random models of the router
families the C backend does not run (DeepSeek-V2, DeepSeek-V3, GLM-4-MoE) and
on MoE types it does not know (PhiMoE, GPT-OSS). Needs torch and transformers
>= 5; run on the GPU machine:

    PYTHONPATH=python python3 tests/tools/capture_hf_check.py OUTDIR

For each known family: build the model from a small config, re-draw every
weight (matrices N(0, 0.08^2), 1-D weights 1 + N(0, 0.1^2), the DeepSeek-V3 /
GLM correction bias N(0, 0.05^2) so that it moves choices), save it, and run
the capture CLI teacher-forced (chunks of 16) and with generate(). The capture
itself checks every record against the rule in moesim/routers.py (the model's
chosen set must equal the rule's, or be a counted near tie; the weights must
agree within the dtype's rounding), so exit status 0 means the rule is right
for that module. For the unknown types the capture must fail naming the
module type. Prints PASS/FAIL lines and writes OUTDIR/check.json.
"""
import json
import os
import subprocess
import sys

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROMPT = os.path.join(ROOT, "tests", "golden", "capture", "prompt.txt")
COMMON = dict(vocab_size=256, hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
              max_position_embeddings=128, bos_token_id=0, eos_token_id=0, pad_token_id=0,
              tie_word_embeddings=False, rms_norm_eps=1e-6)
MLA = dict(q_lora_rank=None, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=16)
MOE = dict(intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=3, first_k_dense_replace=1,
           n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2)

KNOWN = {
    "deepseek_v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM",
                    dict(COMMON, **MLA, **MOE, n_shared_experts=1, norm_topk_prob=True, routed_scaling_factor=2.5)),
    "deepseek_v2": ("DeepseekV2Config", "DeepseekV2ForCausalLM",
                    dict(COMMON, **MLA, **MOE, n_shared_experts=2, topk_method="group_limited_greedy",
                         routed_scaling_factor=1.5)),
    "glm4_moe": ("Glm4MoeConfig", "Glm4MoeForCausalLM",
                 dict(COMMON, **MOE, n_shared_experts=1, norm_topk_prob=True,
                      routed_scaling_factor=2.0)),
}
UNKNOWN = {
    "phimoe": ("PhimoeConfig", "PhimoeForCausalLM", "PhimoeSparseMoeBlock",
               dict(COMMON, intermediate_size=32, num_hidden_layers=2, num_local_experts=8, num_experts_per_tok=2)),
    "gpt_oss": ("GptOssConfig", "GptOssForCausalLM", "GptOssMLP",
                dict(COMMON, intermediate_size=32, num_hidden_layers=2, head_dim=16, num_local_experts=8,
                     num_experts_per_tok=2)),
}


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in sorted(model.named_parameters(), key=lambda x: x[0]):
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.copy_(0.05 * r if n.endswith("bias") else 1.0 + 0.1 * r if p.dim() == 1 else 0.08 * r)
        for n, b in model.named_buffers():
            if n.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn(b.shape, generator=g, dtype=torch.float32))


def build(cfg_name, model_name, kw, out_dir, seed=7):
    cfg = getattr(transformers, cfg_name)(**kw)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(cfg).float().eval()
    randomize(model, seed)
    model.save_pretrained(out_dir)
    return out_dir


def capture(model_dir, out, *extra):
    cmd = [sys.executable, "-m", "moesim.capture", "--model", model_dir, "--text", PROMPT, "-o", out,
           "--lookahead", "1", "--logits", "--dtype", "float32"] + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stderr.strip()


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    report, failed = {"transformers": transformers.__version__, "torch": torch.__version__}, 0

    def res(name, ok, why):
        nonlocal failed
        failed += not ok
        print(("PASS %s (%s)" if ok else "FAIL %s: %s") % (name, why.replace("\n", " | ")[-600:]), flush=True)

    for arch, (cfg_name, model_name, kw) in KNOWN.items():
        d = os.path.join(out_dir, arch)
        try:
            build(cfg_name, model_name, kw, d)
        except Exception as e:  # a config this transformers does not have: say so, not a pass
            res("check_" + arch, False, "cannot build: %s: %s" % (type(e).__name__, e))
            continue
        for mode, extra in (("tf", ["--prefill-chunk", "16"]), ("gen", ["--prefill-chunk", "20", "--generate", "24"])):
            rc, err = capture(d, os.path.join(out_dir, "%s_%s.moetrace" % (arch, mode)), *extra)
            report["%s_%s" % (arch, mode)] = {"rc": rc, "stderr": err}
            res("check_%s_%s" % (arch, mode), rc == 0, err.splitlines()[-1] if err else "no output")
    for arch, (cfg_name, model_name, block, kw) in UNKNOWN.items():
        d = os.path.join(out_dir, arch)
        try:
            build(cfg_name, model_name, kw, d)
        except Exception as e:
            res("unknown_" + arch, False, "cannot build: %s: %s" % (type(e).__name__, e))
            continue
        rc, err = capture(d, os.path.join(out_dir, arch + ".moetrace"))
        report["unknown_" + arch] = {"rc": rc, "stderr": err}
        res("unknown_" + arch, rc == 1 and block in err and not os.path.exists(os.path.join(out_dir, arch + ".moetrace")),
            err.splitlines()[-1] if err else "rc %d, no message" % rc)
    with open(os.path.join(out_dir, "check.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "capture_check"))
