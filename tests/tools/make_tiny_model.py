#!/usr/bin/env python3
"""make_tiny_model.py: write a random tiny Mixtral (config.json + model.safetensors).

Standard library only. Used by the backend tests to exercise loading, both
expert layouts, the three dtypes, and corrupt inputs without the real model.

  make_tiny_model.py OUT_DIR [--layout fused|per-expert] [--dtype F32|F16|BF16]
                     [--seed N] [--layers 2] [--experts 8] [--top-k 2] [--hidden 32]
                     [--inter 48] [--heads 4] [--kv-heads 2] [--vocab 256]
                     [--tie] [--corrupt KIND]

--corrupt KIND writes a deliberately broken model: truncated, header-length,
offsets, overlap, dtype, shape, missing, arch, header-json, config-json."""
import argparse
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_util  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layout", choices=["fused", "per-expert"], default="fused")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--inter", type=int, default=48)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--tie", action="store_true")
    ap.add_argument("--corrupt", default=None)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    H, I, E, hd = a.hidden, a.inter, a.experts, a.hidden // a.heads
    Q, KV = a.heads * hd, a.kv_heads * hd

    def rand(n, fan_in, scale=1.0):
        s = scale / fan_in ** 0.5
        return [rng.uniform(-s, s) * 1.7 for _ in range(n)]

    def t(shape, vals):
        return (a.dtype, shape, st_util.encode(vals, a.dtype))

    T = {}
    T["model.embed_tokens.weight"] = t([a.vocab, H], [rng.gauss(0, 1) for _ in range(a.vocab * H)])
    T["model.norm.weight"] = t([H], [1 + rng.uniform(-0.2, 0.2) for _ in range(H)])
    if not a.tie:
        T["lm_head.weight"] = t([a.vocab, H], rand(a.vocab * H, H))
    for l in range(a.layers):
        p = "model.layers.%d." % l
        T[p + "input_layernorm.weight"] = t([H], [1 + rng.uniform(-0.2, 0.2) for _ in range(H)])
        T[p + "post_attention_layernorm.weight"] = t([H], [1 + rng.uniform(-0.2, 0.2) for _ in range(H)])
        T[p + "self_attn.q_proj.weight"] = t([Q, H], rand(Q * H, H, 2.0))
        T[p + "self_attn.k_proj.weight"] = t([KV, H], rand(KV * H, H, 2.0))
        T[p + "self_attn.v_proj.weight"] = t([KV, H], rand(KV * H, H))
        T[p + "self_attn.o_proj.weight"] = t([H, Q], rand(H * Q, Q))
        experts = [(rand(I * H, H), rand(I * H, H), rand(H * I, I)) for _ in range(E)]
        if a.layout == "fused":
            T[p + "mlp.gate.weight"] = t([E, H], rand(E * H, H, 3.0))
            T[p + "mlp.experts.gate_up_proj"] = t([E, 2 * I, H], [v for g, u, _ in experts for v in g + u])
            T[p + "mlp.experts.down_proj"] = t([E, H, I], [v for _, _, d in experts for v in d])
        else:
            T[p + "block_sparse_moe.gate.weight"] = t([E, H], rand(E * H, H, 3.0))
            for e, (g, u, d) in enumerate(experts):
                q = p + "block_sparse_moe.experts.%d." % e
                T[q + "w1.weight"] = t([I, H], g)
                T[q + "w3.weight"] = t([I, H], u)
                T[q + "w2.weight"] = t([H, I], d)
    cfg = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": H,
        "intermediate_size": I, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "head_dim": hd, "num_local_experts": E,
        "num_experts_per_tok": a.top_k, "vocab_size": a.vocab, "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": a.tie,
        "hidden_act": "silu", "sliding_window": None,
        "dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[a.dtype],
    }
    os.makedirs(a.out, exist_ok=True)
    st_path = os.path.join(a.out, "model.safetensors")
    c = a.corrupt
    first_norm = "model.layers.0.input_layernorm.weight"
    if c == "missing":
        del T["model.layers.%d.post_attention_layernorm.weight" % (a.layers - 1)]
    if c == "arch":
        cfg["model_type"], cfg["architectures"] = "llama", ["LlamaForCausalLM"]
    if c == "shape":
        cfg["num_local_experts"] = E + 1
    if c == "dtype":
        cfg["dtype"] = "float16" if a.dtype != "F16" else "float32"
    with open(os.path.join(a.out, "config.json"), "w") as f:
        text = json.dumps(cfg, indent=2)
        if c == "config-json":
            text = text.replace('"hidden_size": %d,' % H, '"hidden_size": %d' % H)  # missing comma
        f.write(text + "\n")
    header, data = st_util.layout(T)
    if c == "offsets":
        a0, b0 = header[first_norm]["data_offsets"]
        header[first_norm]["data_offsets"] = [len(data) + 64, len(data) + 64 + (b0 - a0)]
    if c == "overlap":
        other = "model.layers.0.post_attention_layernorm.weight"
        header[other]["data_offsets"] = list(header[first_norm]["data_offsets"])
    text = st_util.encode_header(header)
    if c == "header-json":
        text = text.replace(b'"dtype"', b'"dtype', 1)
    blob = struct.pack("<Q", len(text)) + text + data
    if c == "header-length":
        blob = struct.pack("<Q", len(blob) * 4) + blob[8:]
    if c == "truncated":
        blob = blob[: len(blob) - 100]
    with open(st_path, "wb") as f:
        f.write(blob)


if __name__ == "__main__":
    main()
