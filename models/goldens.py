"""Golden outputs of Hugging Face transformers for the C engine (backend/) to be checked against.

Used by models/train.py (the shipped model, models/tinymix/golden/) and models/arch_goldens.py
(tiny random Qwen2-MoE / Qwen3-MoE / OLMoE models, tests/golden/<arch>/).

File formats (all little-endian, C order):
  seqN_logits.f32   float32 [T][V]     final logits of one forward pass from position 0, no cache
  seqN_experts.i32  int32   [L][T][k]  top-k expert ids per MoE layer and position, rank order
                                       (descending router probability, as torch.topk returns them)
  seqN_weights.f32  float32 [L][T][k]  routing weights the experts are actually multiplied by
                                       (captured at the experts module's input)
  seqN_router.f32   float32 [L][T][E]  raw router logits: gate.weight @ x (before any softmax)

The routing is captured with hooks, not re-derived: a forward hook on each layer's mlp.gate
records its input (raw logits are recomputed as F.linear(input, gate.weight), the very op the gate
runs first) and a forward pre-hook on mlp.experts records the top_k_index / top_k_weights it is
called with.  `routing_facts` compares them against candidate rules and records what was observed.
"""

import inspect
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F


def _dump(arr, path, dtype):
    a = np.ascontiguousarray(np.asarray(arr, dtype=dtype))
    a.astype(np.dtype(dtype).newbyteorder("<"), copy=False).tofile(path)


class RoutingCapture:
    """Hooks on every MoE layer's gate and experts modules."""

    def __init__(self, model):
        self.layers = []          # [(layer_index, mlp)] for MoE layers only
        self.handles = []
        self.rec = {}
        for li, layer in enumerate(model.model.layers):
            mlp = getattr(layer, "mlp", None)
            if mlp is None or not hasattr(mlp, "gate") or not hasattr(mlp, "experts"):
                continue
            self.layers.append((li, mlp))
            self.handles.append(mlp.gate.register_forward_hook(self._gate_hook(li), with_kwargs=True))
            self.handles.append(
                mlp.experts.register_forward_pre_hook(self._experts_hook(li), with_kwargs=True))
            if hasattr(mlp, "shared_expert_gate"):
                self.handles.append(mlp.shared_expert_gate.register_forward_hook(self._simple_hook(li, "shared_gate_out")))
                self.handles.append(mlp.shared_expert.register_forward_hook(self._simple_hook(li, "shared_out")))
                self.handles.append(mlp.register_forward_hook(self._block_hook(li), with_kwargs=True))
                self.handles.append(mlp.experts.register_forward_hook(self._simple_hook(li, "experts_out")))
        if not self.layers:
            raise RuntimeError("no MoE layer with .gate and .experts found: unexpected transformers layout")

    def reset(self):
        self.rec = {li: {} for li, _ in self.layers}

    def _gate_hook(self, li):
        def hook(mod, args, kwargs, out):
            h = args[0] if args else next(iter(kwargs.values()))
            h = h.reshape(-1, mod.weight.shape[1])
            raw = F.linear(h, mod.weight, getattr(mod, "bias", None))
            r = self.rec[li]
            r["raw"] = raw.detach().float().clone()
            r["gate_out"] = tuple(o.detach().clone() for o in out) if isinstance(out, (tuple, list)) else (out.detach().clone(),)
        return hook

    def _experts_hook(self, li):
        def hook(mod, args, kwargs):
            try:
                sig = inspect.signature(mod.forward)
                b = sig.bind(*args, **kwargs)
                idx, w = b.arguments["top_k_index"], b.arguments["top_k_weights"]
            except (TypeError, KeyError):
                idx, w = args[1], args[2]
            self.rec[li]["idx"] = idx.detach().clone()
            self.rec[li]["w_in"] = w.detach().float().clone()
            self.rec[li]["x_in"] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        return hook

    def _simple_hook(self, li, key):
        def hook(mod, args, out):
            self.rec[li][key] = out.detach().clone()
            if key == "shared_gate_out":
                self.rec[li]["shared_gate_in"] = args[0].detach().clone()
        return hook

    def _block_hook(self, li):
        def hook(mod, args, kwargs, out):
            o = out[0] if isinstance(out, (tuple, list)) else out
            self.rec[li]["block_out"] = o.detach().clone()
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()

    def routing(self, k):
        """-> experts [L][T][k] int32, weights [L][T][k] float32, router [L][T][E] float32 (one sequence)."""
        ex, wt, rl = [], [], []
        for li, _ in self.layers:
            r = self.rec[li]
            idx = r["idx"].reshape(-1, r["idx"].shape[-1])
            w = r["w_in"].reshape(idx.shape[0], -1)
            if w.shape[-1] != idx.shape[-1]:            # dense [T][E] scores: take the selected ones
                w = w.gather(1, idx.long())
            ex.append(idx.cpu().numpy().astype(np.int32))
            wt.append(w.cpu().numpy().astype(np.float32))
            rl.append(r["raw"].cpu().numpy().astype(np.float32))
        return np.stack(ex), np.stack(wt), np.stack(rl)

    def facts(self, k, norm_flag=None):
        """Observed routing rule over all recorded layers of the last forward."""
        f = {"softmax_over_all_experts_then_topk": True, "topk_rank_order_descending": True,
             "weights_renormalised_over_topk": None, "max_abs_err_weights_vs_rule": 0.0,
             "gate_module_first_output": None, "min_gap_kth_vs_k1th_logit": math.inf,
             "positions_gap_below_1e-5": 0}
        errs_norm, errs_plain = [], []
        for li, _ in self.layers:
            r = self.rec[li]
            raw = r["raw"].double()
            p = torch.softmax(raw, dim=-1)
            tv, ti = torch.topk(p, k, dim=-1)
            idx = r["idx"].reshape(-1, k).long().cpu()
            if not torch.equal(ti.cpu(), idx):
                # ties aside, the selected set must equal the top-k of the logits
                if not torch.equal(ti.cpu().sort(-1).values, idx.sort(-1).values):
                    f["softmax_over_all_experts_then_topk"] = False
                f["topk_rank_order_descending"] = False
            w = r["w_in"].reshape(idx.shape[0], -1).double().cpu()
            if w.shape[-1] != k:
                w = w.gather(1, idx)
            sel = p.cpu().gather(1, idx)
            errs_plain.append((w - sel).abs().max().item())
            errs_norm.append((w - sel / sel.sum(-1, keepdim=True)).abs().max().item())
            srt = raw.sort(-1, descending=True).values
            if srt.shape[-1] > k:
                gap = (srt[:, k - 1] - srt[:, k])
                f["min_gap_kth_vs_k1th_logit"] = min(f["min_gap_kth_vs_k1th_logit"], gap.min().item())
                f["positions_gap_below_1e-5"] += int((gap < 1e-5).sum().item())
            g0 = r["gate_out"][0].double().reshape(raw.shape) if r["gate_out"][0].numel() == raw.numel() else None
            if g0 is not None:
                if (g0 - raw).abs().max().item() < 1e-5:
                    kind = "raw_logits"
                elif (g0 - p).abs().max().item() < 1e-5:
                    kind = "softmax_probabilities (so output_router_logits returns probabilities)"
                else:
                    kind = "dense_topk_scores"
            else:
                kind = "shape %s" % list(r["gate_out"][0].shape)
            f["gate_module_first_output"] = kind
        en, ep = max(errs_norm), max(errs_plain)
        f["weights_renormalised_over_topk"] = bool(en < ep)
        f["max_abs_err_weights_vs_rule"] = min(en, ep)
        f["max_abs_err_weights_vs_other_rule"] = max(en, ep)
        if norm_flag is not None:
            f["config_norm_topk_prob"] = bool(norm_flag)
        # Qwen2-MoE shared expert: block = routed + sigmoid(shared_expert_gate(x)) * shared_expert(x)
        r0 = self.rec[self.layers[0][0]]
        if "shared_out" in r0:
            err_sig, err_plain = 0.0, 0.0
            for li, _ in self.layers:
                r = self.rec[li]
                x = r["shared_gate_in"]
                blk = r["block_out"].reshape(-1, x.shape[-1]).double()
                routed = r["experts_out"].reshape(blk.shape).double()
                sh = r["shared_out"].reshape(blk.shape).double()
                g = r["shared_gate_out"].reshape(-1, 1).double()
                err_sig = max(err_sig, (blk - routed - torch.sigmoid(g) * sh).abs().max().item())
                err_plain = max(err_plain, (blk - routed - g * sh).abs().max().item())
            f["shared_expert"] = {
                "rule": "out = routed + sigmoid(shared_expert_gate(x)) * shared_expert(x)"
                if err_sig < err_plain else "out = routed + shared_expert_gate(x) * shared_expert(x)",
                "max_abs_err": min(err_sig, err_plain),
                "shared_expert_gate_shape": "Linear(hidden, 1, bias=False): one scalar per token"}
        return f


def forward_golden(model, cap, tokens, k, out_dir, name, domain, idx):
    """One forward pass from position 0 (no cache); writes the 4 files, returns the json entry."""
    cap.reset()
    ids = torch.tensor([tokens], dtype=torch.long, device=next(model.parameters()).device)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=False)
    logits = out.logits[0].float().cpu().numpy()
    ex, wt, rl = cap.routing(k)
    base = "seq%d" % idx
    _dump(logits, os.path.join(out_dir, base + "_logits.f32"), np.float32)
    _dump(ex, os.path.join(out_dir, base + "_experts.i32"), np.int32)
    _dump(wt, os.path.join(out_dir, base + "_weights.f32"), np.float32)
    _dump(rl, os.path.join(out_dir, base + "_router.f32"), np.float32)
    facts = cap.facts(k, getattr(model.config, "norm_topk_prob", None))
    entry = {"name": name, "domain": domain, "tokens": [int(t) for t in tokens],
             "T": len(tokens), "L": int(ex.shape[0]), "k": int(ex.shape[2]), "E": int(rl.shape[2]),
             "V": int(logits.shape[1]),
             "logits": base + "_logits.f32", "experts": base + "_experts.i32",
             "weights": base + "_weights.f32", "router_logits": base + "_router.f32",
             "moe_layers": [li for li, _ in cap.layers],
             "min_gap_kth_vs_k1th_logit": facts["min_gap_kth_vs_k1th_logit"],
             "positions_gap_below_1e-5": facts["positions_gap_below_1e-5"],
             "argmax_last": int(np.argmax(logits[-1]))}
    return entry, facts


def nll_one_sequence(model, data):
    """Mean NLL (nats) of bytes 1..N-1 given their prefix, one sequence, no BOS."""
    ids = torch.tensor([list(data)], dtype=torch.long, device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0].float()
    return F.cross_entropy(logits[:-1], ids[0, 1:], reduction="mean").item()


def set_fp32_reference_mode():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        torch.set_float32_matmul_precision("highest")
    except Exception:
        pass


def load_reference(cls, path, device="cpu"):
    """Reload a saved model in float32, eager attention and eager experts, eval mode."""
    kw = dict(attn_implementation="eager")
    model = None
    for extra in ({"dtype": torch.float32, "experts_implementation": "eager"},
                  {"dtype": torch.float32}, {"torch_dtype": torch.float32}):
        try:
            model = cls.from_pretrained(path, **kw, **extra)
            break
        except TypeError:
            continue
    if model is None:
        raise RuntimeError("could not reload %s" % path)
    set_experts_impl(model, "eager")
    model = model.float().to(device).eval()
    assert next(model.parameters()).dtype == torch.float32
    return model


def set_experts_impl(model, impl):
    """Select transformers 5's experts implementation ("eager", "grouped_mm", "batched_mm")."""
    done = False
    if hasattr(model, "set_experts_implementation"):
        try:
            model.set_experts_implementation(impl)
            done = True
        except Exception:
            done = False
    if not done:
        for cfg in {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}.values():
            try:
                cfg._experts_implementation = impl
            except Exception:
                pass
    got = {getattr(getattr(m, "config", None), "_experts_implementation", None)
           for n, m in model.named_modules() if n.endswith("experts")}
    return got


def tensor_table(st_path):
    from safetensors import safe_open
    rows = []
    with safe_open(st_path, framework="pt") as f:
        for name in f.keys():
            sl = f.get_slice(name)
            rows.append((name, str(sl.get_dtype()), list(sl.get_shape())))
    rows.sort(key=lambda r: _natural_key(r[0]))
    return rows


def _natural_key(s):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def write_json(obj, path):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=False)
        fh.write("\n")
