#!/usr/bin/env python3
"""shard_model.py SRC_DIR OUT_DIR [--shards N] [--corrupt KIND]: split a model's
model.safetensors into N shards plus model.safetensors.index.json, the layout
Hugging Face writes for large checkpoints (model-00001-of-0000N.safetensors,
"weight_map": tensor -> shard). Standard library only.

Tensors go to shards in name order, about equal bytes each; config.json (and
tokenizer.json, if any) are copied. --corrupt KIND writes a broken index or
shard set instead: missing-shard (a listed shard file is absent),
two-shards (one tensor also stored in a second shard), unknown-tensor (the
index names a tensor no shard holds), unlisted-tensor (a shard holds a
tensor the index does not name), bad-name (a shard name with a directory)."""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_util  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--corrupt", choices=["missing-shard", "two-shards", "unknown-tensor", "unlisted-tensor",
                                          "bad-name"])
    a = ap.parse_args()
    tensors, meta = st_util.read(os.path.join(a.src, "model.safetensors"))
    names = sorted(tensors)
    total = sum(len(t[2]) for t in tensors.values())
    os.makedirs(a.out, exist_ok=True)
    for f in ("config.json", "tokenizer.json"):
        if os.path.exists(os.path.join(a.src, f)):
            shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))
    groups, cur, size = [], [], 0
    for n in names:  # close a shard once it holds its share of the bytes
        cur.append(n)
        size += len(tensors[n][2])
        if size >= total * (len(groups) + 1) / a.shards and len(groups) < a.shards - 1:
            groups.append(cur)
            cur = []
    groups.append(cur)
    files = ["model-%05d-of-%05d.safetensors" % (i + 1, len(groups)) for i in range(len(groups))]
    weight_map = {n: files[i] for i, g in enumerate(groups) for n in g}
    if a.corrupt == "two-shards":  # the first shard's first tensor also in the last shard
        groups[-1] = groups[-1] + [groups[0][0]]
    if a.corrupt == "unlisted-tensor":
        del weight_map[groups[1][0]]
    if a.corrupt == "unknown-tensor":
        weight_map["model.layers.99.mlp.gate.weight"] = files[0]
    if a.corrupt == "bad-name":
        weight_map[groups[0][0]] = "../" + files[0]
    for i, g in enumerate(groups):
        if a.corrupt == "missing-shard" and i == 1:
            continue
        st_util.write(os.path.join(a.out, files[i]), {n: tensors[n] for n in g}, meta)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
