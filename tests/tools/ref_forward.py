#!/usr/bin/env python3
"""ref_forward.py: a slow, plain pure-Python forward pass of a tiny Mixtral
(either expert layout, any dtype), written from the transformers semantics
independently of backend/, to cross-check the C engine on generated models.

  ref_forward.py MODEL_DIR ID,ID,...   -> JSON {"logits": [[V floats] per token],
                                                "experts": [[[k ids] per layer] per token],
                                                "weights": same shape, "router": [[E logits]]}"""
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_util  # noqa: E402


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    raw, _ = st_util.read(os.path.join(d, "model.safetensors"))
    W = {}
    for n, (dt, shape, b) in raw.items():
        f = st_util.to_f32_bytes(dt, b)
        W[n] = (shape, list(struct.unpack("<%df" % (len(f) // 4), f)))
    return cfg, W


def rows(flat, r, c):
    return [flat[i * c:(i + 1) * c] for i in range(r)]


def mv(M, x):
    return [sum(a * b for a, b in zip(row, x)) for row in M]


def rms(x, w, eps):
    r = 1 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [wi * (v * r) for v, wi in zip(x, w)]


def main():
    d, ids = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
    cfg, W = load(d)
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    E, K, I = cfg["num_local_experts"], cfg["num_experts_per_tok"], cfg["intermediate_size"]
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 1e6)
    V = cfg["vocab_size"]

    def g(name):
        return W[name][1]

    def expert(l, e):
        p = "model.layers.%d." % l
        if p + "mlp.experts.gate_up_proj" in W:
            gu = g(p + "mlp.experts.gate_up_proj")[e * 2 * I * H:(e + 1) * 2 * I * H]
            dn = g(p + "mlp.experts.down_proj")[e * H * I:(e + 1) * H * I]
            return rows(gu[:I * H], I, H), rows(gu[I * H:], I, H), rows(dn, H, I)
        q = p + "block_sparse_moe.experts.%d." % e
        return rows(g(q + "w1.weight"), I, H), rows(g(q + "w3.weight"), I, H), rows(g(q + "w2.weight"), H, I)

    def router(l):
        p = "model.layers.%d." % l
        n = p + "mlp.gate.weight" if p + "mlp.gate.weight" in W else p + "block_sparse_moe.gate.weight"
        return rows(g(n), E, H)

    T = len(ids)
    x = [g("model.embed_tokens.weight")[t * H:(t + 1) * H] for t in ids]
    kc = [[None] * T for _ in range(L)]
    vc = [[None] * T for _ in range(L)]
    out_ex = [[None] * L for _ in range(T)]
    out_w = [[None] * L for _ in range(T)]
    out_r = [[None] * L for _ in range(T)]
    inv = [1.0 / theta ** (2 * i / hd) for i in range(hd // 2)]
    for l in range(L):
        p = "model.layers.%d." % l
        wq, wk = rows(g(p + "self_attn.q_proj.weight"), nh * hd, H), rows(g(p + "self_attn.k_proj.weight"), nkv * hd, H)
        wv, wo = rows(g(p + "self_attn.v_proj.weight"), nkv * hd, H), rows(g(p + "self_attn.o_proj.weight"), H, nh * hd)
        R = router(l)
        experts = [expert(l, e) for e in range(E)]
        for t in range(T):
            xn = rms(x[t], g(p + "input_layernorm.weight"), eps)
            q, k, v = mv(wq, xn), mv(wk, xn), mv(wv, xn)

            def rope(vec, nheads):
                out = list(vec)
                for h in range(nheads):
                    for i in range(hd // 2):
                        a, b = vec[h * hd + i], vec[h * hd + i + hd // 2]
                        c, s = math.cos(t * inv[i]), math.sin(t * inv[i])
                        out[h * hd + i] = a * c - b * s
                        out[h * hd + i + hd // 2] = b * c + a * s
                return out
            q, k = rope(q, nh), rope(k, nkv)
            kc[l][t], vc[l][t] = k, v
            att = []
            for h in range(nh):
                kh = h // (nh // nkv)
                sc = [sum(q[h * hd + i] * kc[l][s][kh * hd + i] for i in range(hd)) / math.sqrt(hd) for s in range(t + 1)]
                m = max(sc)
                ex = [math.exp(z - m) for z in sc]
                z = sum(ex)
                att += [sum(ex[s] / z * vc[l][s][kh * hd + i] for s in range(t + 1)) for i in range(hd)]
            x[t] = [a + b for a, b in zip(x[t], mv(wo, att))]
        for t in range(T):
            xn = rms(x[t], g(p + "post_attention_layernorm.weight"), eps)
            lg = mv(R, xn)
            out_r[t][l] = lg
            m = max(lg)
            pr = [math.exp(z - m) for z in lg]
            z = sum(pr)
            pr = [v / z for v in pr]
            sel = sorted(range(E), key=lambda e: (-pr[e], e))[:K]
            tot = sum(pr[e] for e in sel)
            ws = [pr[e] / tot for e in sel]
            out_ex[t][l], out_w[t][l] = sel, ws
            y = [0.0] * H
            for e, w in sorted(zip(sel, ws)):
                g1, u1, d1 = experts[e]
                a = [gg / (1 + math.exp(-gg)) * uu for gg, uu in zip(mv(g1, xn), mv(u1, xn))]
                y = [yy + w * o for yy, o in zip(y, mv(d1, a))]
            x[t] = [a + b for a, b in zip(x[t], y)]
    head = "lm_head.weight" if "lm_head.weight" in W else "model.embed_tokens.weight"
    lm = rows(g(head), V, H)
    logits = [mv(lm, rms(x[t], g("model.norm.weight"), eps)) for t in range(T)]
    json.dump({"logits": logits, "experts": out_ex, "weights": out_w, "router": out_r}, sys.stdout)


if __name__ == "__main__":
    main()
