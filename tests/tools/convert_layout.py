#!/usr/bin/env python3
"""convert_layout.py: rewrite a model directory between expert layouts (and to f32).

  convert_layout.py SRC_DIR DST_DIR [--to per-expert|fused] [--f32]

per-expert: transformers 5's fused  model.layers.L.mlp.experts.gate_up_proj [E, 2I, H]
            (rows [0, I) gate, [I, 2I) up) and experts.down_proj [E, H, I] become the classic
            per-expert tensors. Mixtral: block_sparse_moe.gate.weight and
            block_sparse_moe.experts.E.{w1,w3,w2}.weight (as public Mixtral checkpoints);
            qwen2_moe / qwen3_moe / olmoe: mlp.experts.E.{gate,up,down}_proj.weight.
fused:      the reverse.
--f32:      every tensor widened to float32 (exact from bf16/f16); config.json's dtype updated.
Standard library only. Values are copied byte for byte (or widened exactly), so the C
engine must produce identical outputs for SRC and DST."""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_util  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--to", choices=["per-expert", "fused"], default="per-expert")
    ap.add_argument("--f32", action="store_true")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.src, "config.json")))
    mixtral = cfg.get("model_type") == "mixtral"
    tensors, meta = st_util.read(os.path.join(a.src, "model.safetensors"))
    if a.f32:
        tensors = {n: ("F32", s, st_util.to_f32_bytes(d, raw)) for n, (d, s, raw) in tensors.items()}
        for key in ("dtype", "torch_dtype"):
            if key in cfg:
                cfg[key] = "float32"
    out = {}
    if a.to == "per-expert":
        for name, (dt, shape, raw) in tensors.items():
            m = re.match(r"(model\.layers\.\d+)\.(mlp|block_sparse_moe)\.experts\.(gate_up_proj|down_proj)$", name)
            g = re.match(r"(model\.layers\.\d+)\.mlp\.gate\.weight$", name)
            if g and mixtral:
                out[g.group(1) + ".block_sparse_moe.gate.weight"] = (dt, shape, raw)
                continue
            if not m:
                out[name] = (dt, shape, raw)
                continue
            pfx = m.group(1) + (".block_sparse_moe.experts." if mixtral else ".mlp.experts.")
            E = shape[0]
            per = len(raw) // E
            for e in range(E):
                chunk = raw[e * per:(e + 1) * per]
                if m.group(3) == "gate_up_proj":
                    I2, H = shape[1], shape[2]
                    half = len(chunk) // 2
                    gname, uname = ("w1", "w3") if mixtral else ("gate_proj", "up_proj")
                    out["%s%d.%s.weight" % (pfx, e, gname)] = (dt, [I2 // 2, H], chunk[:half])
                    out["%s%d.%s.weight" % (pfx, e, uname)] = (dt, [I2 // 2, H], chunk[half:])
                else:
                    out["%s%d.%s.weight" % (pfx, e, "w2" if mixtral else "down_proj")] = (dt, shape[1:], chunk)
    else:
        groups = {}
        for name, (dt, shape, raw) in tensors.items():
            m = re.match(r"(model\.layers\.\d+)\.(mlp|block_sparse_moe)\.experts\.(\d+)\.(\w+)\.weight$", name)
            g = re.match(r"(model\.layers\.\d+)\.block_sparse_moe\.gate\.weight$", name)
            if g:
                out[g.group(1) + ".mlp.gate.weight"] = (dt, shape, raw)
            elif m:
                groups.setdefault(m.group(1), {})[(int(m.group(3)), m.group(4))] = (dt, shape, raw)
            else:
                out[name] = (dt, shape, raw)
        for layer, parts in groups.items():
            E = 1 + max(e for e, _ in parts)
            gn, un, dn = ("w1", "w3", "w2") if (0, "w1") in parts else ("gate_proj", "up_proj", "down_proj")
            dt, (I, H), _ = parts[(0, gn)]
            out[layer + ".mlp.experts.gate_up_proj"] = (
                dt, [E, 2 * I, H], b"".join(parts[(e, gn)][2] + parts[(e, un)][2] for e in range(E)))
            out[layer + ".mlp.experts.down_proj"] = (dt, [E, H, I], b"".join(parts[(e, dn)][2] for e in range(E)))
    os.makedirs(a.dst, exist_ok=True)
    with open(os.path.join(a.dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    st_util.write(os.path.join(a.dst, "model.safetensors"), out, meta)


if __name__ == "__main__":
    main()
