"""Capture the expert routing of a Hugging Face transformers MoE model as a .moetrace.

    PYTHONPATH=python python3 -m moesim.capture --model DIR --text F -o out.moetrace \\
        [--generate N] [--prefill-chunk N] [--lookahead D] [--logits]

Defines steps as `moesim infer --trace-out` does (backend/capture.h,
cli/cmd_infer.c), so the two captures of the same bytes can be compared
record for record:
  - one step = one forward call of the model. The prompt is one prefill step,
    or with --prefill-chunk N chunks of N tokens, one prefill step each; each
    generated token that is fed back is one decode step (the last generated
    token is never fed back, as generate() does not feed it either);
  - per token and MoE layer: the top-k experts in rank order (slot 0 = the
    highest gate weight, ties to the lower id) with the gate weights the
    model multiplies the expert outputs by (what its router module returns
    to the block: renormalised, scaled, in the model's dtype);
  - --logits: the raw router logits (before softmax or sigmoid);
  - --lookahead D: for d = 1..D, the top-k that MoE layer l+d's router picks
    from MoE layer l's block input (the post-attention-norm hidden state),
    0xFFFF past the last layer.

Hooks: a forward hook on each MoE block's router module (its input is the
block input, its output (logits, weights, indices) is the routing the model
uses) and hooks on the model's forward marking step boundaries, so
teacher-forced forward calls and generate() are captured alike. The block
types and their rules are in moesim/routers.py; a block type not there is an
error naming it. Needs torch and transformers >= 5 (tested with 5.17.0: its
router modules return the routing; older versions route inside the block and
are refused by name).
"""
import argparse
import os
import sys
import time

import numpy as np

from . import routers
from .trace import DECODE, NO_EXPERT, PREFILL, TraceFormatError, write_trace


class CaptureError(RuntimeError):
    """Anything that stops a capture: the message says what and where."""


def _weight_tolerance(dtype_name, scaling):
    # The router may hand the experts its weights in the model's dtype: a
    # bf16 weight is within 2^-8 (relative) of the rule's float64 value.
    eps = {"torch.bfloat16": 2.0 ** -8, "torch.float16": 2.0 ** -11}.get(dtype_name, 2.0 ** -20)
    return 4 * eps * max(1.0, abs(scaling)) + 1e-6


class Capture:
    """Hooks on a loaded model; every forward call of batch 1 becomes a step.

    phase: the phase the next step gets; with generating set, the first step
    of a generate() call is prefill and the ones after it decode."""

    def __init__(self, model, lookahead=0, logits=False):
        self.blocks = routers.find_moe_blocks(model)
        rules = [b[3] for b in self.blocks]
        self.L = len(rules)
        self.E, self.K = rules[0].n_experts, rules[0].top_k
        for (name, _, _, r) in self.blocks:
            if (r.n_experts, r.top_k) != (self.E, self.K):
                raise CaptureError("%s routes top-%d of %d experts, the first MoE block top-%d of %d: a trace has "
                                   "one geometry" % (name, r.top_k, r.n_experts, self.K, self.E))
        if not 0 <= lookahead < self.L:
            raise CaptureError("--lookahead: %d must be below the number of MoE layers (%d)" % (lookahead, self.L))
        self.D, self.want_logits = lookahead, logits
        self.model = model
        self.steps = []          # one dict of numpy arrays per step
        self.cur = None          # the step being recorded
        self.phase, self.generating = PREFILL, False
        self.seq, self.pos = 0, 0
        self.in_lookahead = False
        self.near_ties = []      # (step, token, layer, margin) with margin < routers.NEAR_TIE
        self.disagreements = 0   # near-tie rows where the rule's set differs from the model's
        self.max_weight_err = 0.0
        self.last_progress = time.monotonic()
        self.handles = [model.register_forward_pre_hook(self._begin, with_kwargs=True),
                        model.register_forward_hook(self._end)]
        for m, (_, _, gate, _) in enumerate(self.blocks):
            self.handles.append(gate.register_forward_hook(self._router_hook(m)))

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []

    # ---- hooks ------------------------------------------------------------
    def _begin(self, module, args, kwargs):
        x = kwargs.get("input_ids")
        if x is None:
            x = kwargs.get("inputs_embeds")
        if x is None and args:
            x = args[0]
        if x is not None and x.shape[0] != 1:
            raise CaptureError("a forward call with a batch of %d: the capture records one sequence (batch 1)"
                               % x.shape[0])
        self.cur = {"layers": [None] * self.L}

    def _router_hook(self, m):
        import torch

        def hook(module, args, out):
            if self.in_lookahead:
                return
            name, block, _, rule = self.blocks[m]
            if self.cur is None:
                raise CaptureError("%s: the router ran outside a forward call of the model" % name)
            if not (isinstance(out, (tuple, list)) and len(out) == 3):
                raise CaptureError(
                    "%s: its router (%s) returned %s, not (logits, weights, indices): this transformers version "
                    "routes inside the block; the capture reads the routing from the router module (transformers "
                    ">= 5)" % (name, type(module).__name__, type(out).__name__))
            logits, w, idx = out
            idx = idx.detach().reshape(-1, idx.shape[-1])
            rec = {"logits": logits.detach().reshape(-1, rule.n_experts), "idx": idx,
                   "w": w.detach().reshape(idx.shape[0], -1), "wdtype": str(w.dtype)}
            if self.D:
                x = args[0]
                rec["la"] = []
                self.in_lookahead = True
                try:
                    with torch.no_grad():
                        for d in range(1, self.D + 1):
                            if m + d < self.L:
                                _, lw, li = self.blocks[m + d][2](x)
                                rec["la"].append((li.detach(), lw.detach()))
                finally:
                    self.in_lookahead = False
            if self.cur["layers"][m] is not None:
                raise CaptureError("%s: the router ran twice in one forward call" % name)
            self.cur["layers"][m] = rec
        return hook

    def _end(self, module, args, out):
        cur, self.cur = self.cur, None
        L, K, D = self.L, self.K, self.D
        missing = [self.blocks[m][0] for m in range(L) if cur["layers"][m] is None]
        if missing:
            raise CaptureError("forward call %d: the router of %s did not run" % (len(self.steps), missing[0]))
        rows = {int(r["idx"].shape[0]) for r in cur["layers"]}
        if len(rows) != 1:
            raise CaptureError("forward call %d: the MoE layers routed %s tokens" % (len(self.steps), sorted(rows)))
        n = rows.pop()
        experts = np.empty((n, L, K), dtype=np.int64)
        weights = np.empty((n, L, K), dtype=np.float32)
        logits = np.empty((n, L, self.E), dtype=np.float32) if self.want_logits else None
        la = np.full((n, L, D, K), NO_EXPERT, dtype=np.int64) if D else None
        for m in range(L):
            name, _, _, rule = self.blocks[m]
            r = cur["layers"][m]
            lg = r["logits"].float().cpu().numpy()
            idx, w = self._observed(name, rule, r, n)
            self._check(m, rule, lg, idx, w, r["wdtype"])
            experts[:, m], weights[:, m] = routers.rank_order(idx, w)
            if logits is not None:
                logits[:, m] = lg
            for d, (li, lw) in enumerate(r.get("la", [])):
                li = li.reshape(n, -1).cpu().numpy()
                lw = lw.reshape(n, -1).float().cpu().numpy()
                if lw.shape[1] != li.shape[1]:
                    lw = np.take_along_axis(lw, li, axis=-1)
                la[:, m, d] = routers.rank_order(li, lw)[0]
        self.steps.append({"phase": self.phase, "seq": self.seq, "pos0": self.pos, "n": n, "experts": experts,
                           "weights": weights, "logits": logits, "lookahead": la})
        self.pos += n
        if self.generating:
            self.phase = DECODE
        if time.monotonic() - self.last_progress > 5:
            self.last_progress = time.monotonic()
            print("moesim.capture: %d steps, %d tokens" % (len(self.steps), self.pos), file=sys.stderr, flush=True)

    def _observed(self, name, rule, r, n):
        idx = r["idx"].cpu().numpy().astype(np.int64)
        w = r["w"].float().cpu().numpy()
        if idx.shape != (n, rule.top_k):
            raise CaptureError("%s: router indices of shape %s for %d tokens, top-%d" % (name, idx.shape, n, rule.top_k))
        if w.shape[1] == rule.n_experts and rule.n_experts != rule.top_k:
            w = np.take_along_axis(w, idx, axis=-1)  # dense [T][E] scores: the selected ones
        if w.shape != idx.shape:
            raise CaptureError("%s: router weights of shape %s for indices %s" % (name, w.shape, idx.shape))
        return idx, w

    def _check(self, m, rule, lg, idx, w, wdtype):
        """The model's choice against its type's rule: equal sets, or a near
        tie (counted); weights within the dtype's rounding."""
        name = self.blocks[m][0]
        r_idx, r_w = routers.route(lg, rule)
        # the model's set's margin: >= 0 when it is the rule's choice, barely
        # negative when it lost to it by a rounding difference (a near tie)
        margin = routers.margins(lg, rule, idx)
        near = np.abs(margin) < routers.NEAR_TIE
        step = len(self.steps)
        for t in np.flatnonzero(near):
            self.near_ties.append((step, self.pos + int(t), m, float(margin[t])))
        same = (np.sort(r_idx, axis=-1) == np.sort(idx, axis=-1)).all(axis=-1)
        for t in np.flatnonzero(~same & ~near):
            raise CaptureError(
                "%s (%s), step %d, token %d of the step: the model chose experts %s, its rule %s gives %s (margin %.3g): the "
                "module does not route as moesim/routers.py says" % (name, rule.module_type, step, int(t),
                                                                     sorted(idx[t].tolist()), rule.kind,
                                                                     sorted(r_idx[t].tolist()), margin[t]))
        self.disagreements += int((~same & near).sum())
        if same.any():
            _, ow = routers.rank_order(idx[same], w[same])
            _, rw = routers.rank_order(r_idx[same], r_w[same])
            err = float(np.abs(ow - rw).max())
            self.max_weight_err = max(self.max_weight_err, err)
            if err > _weight_tolerance(wdtype, rule.scaling):
                raise CaptureError("%s (%s): the model's gate weights differ from its rule %s by %.3g: the module "
                                   "does not weight as moesim/routers.py says" % (name, rule.module_type, rule.kind, err))

    # ---- result -----------------------------------------------------------
    def arrays(self):
        """The trace's per-token arrays (for moesim.write_trace)."""
        if not self.steps:
            raise CaptureError("nothing captured: no forward call ran")
        cat = np.concatenate
        out = {
            "experts": cat([s["experts"] for s in self.steps]),
            "weights": cat([s["weights"] for s in self.steps]),
            "step": cat([np.full(s["n"], i, dtype=np.int64) for i, s in enumerate(self.steps)]),
            "phase": cat([np.full(s["n"], s["phase"], dtype=np.int64) for s in self.steps]),
            "seq": cat([np.full(s["n"], s["seq"], dtype=np.int64) for s in self.steps]),
            "pos": cat([np.arange(s["pos0"], s["pos0"] + s["n"], dtype=np.int64) for s in self.steps]),
            "router_logits": cat([s["logits"] for s in self.steps]) if self.want_logits else None,
            "lookahead": cat([s["lookahead"] for s in self.steps]) if self.D else None,
        }
        return out

    def header(self):
        """n_shared and bytes per expert (f32/f16 from the experts module's
        parameter count; quantized sizes left 0 = unknown, moesim fills them)."""
        _, block, _, rule = self.blocks[0]
        n = sum(int(p.numel()) for p in block.experts.parameters())
        if n == 0 or n % rule.n_experts:
            raise CaptureError("%s: %d expert parameters do not split into %d experts" % (self.blocks[0][0], n, rule.n_experts))
        per = n // rule.n_experts
        return {"n_shared": rule.n_shared, "expert_bytes": {"f32": 4 * per, "f16": 2 * per}}


# ---- driving the model ------------------------------------------------------

def load_model(model_dir, device, dtype, attn_impl=None, experts_impl=None):
    import torch
    import transformers
    kw = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if attn_impl:
        kw["attn_implementation"] = attn_impl
    if experts_impl:
        kw["experts_implementation"] = experts_impl
    if dtype == "float32":
        # a float32 capture is a reference: no TF32 shortcuts in matrix products
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, **kw)
        return model.to(device).eval()
    except Exception as e:  # whatever transformers or torch raises about the directory or the device
        raise CaptureError("%s: cannot load the model on %s: %s: %s" % (model_dir, device, type(e).__name__, e))


def _has_tokenizer(model_dir):
    return any(os.path.exists(os.path.join(model_dir, f))
               for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))


def encode(model_dir, vocab, text=None, ids=None, text_path="--text"):
    """Prompt token ids: --ids as given; else the model's tokenizer; else one
    token per byte for a 256-entry vocabulary (as `moesim infer` does)."""
    if ids is not None:
        try:
            out = [int(v) for v in ids.split(",")]
        except ValueError:
            raise CaptureError("--ids: expected a comma-separated list of token ids, got %r" % ids)
        bad = [v for v in out if not 0 <= v < vocab]
        if bad:
            raise CaptureError("--ids: token %d outside the vocabulary of %d" % (bad[0], vocab))
        return out
    if not text:
        raise CaptureError("%s: empty prompt" % text_path)
    if _has_tokenizer(model_dir):
        import transformers
        try:
            prompt = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CaptureError("%s: not UTF-8 at byte %d; the model's tokenizer needs text (or give --ids)"
                               % (text_path, e.start))
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        return list(tok(prompt)["input_ids"])
    if vocab == 256:
        return list(text)
    raise CaptureError("%s has no tokenizer and its vocabulary of %d is not byte-level: give --ids" % (model_dir, vocab))


def run(model, cap, ids, prefill_chunk=0, generate=0):
    """Teacher-force ids in chunks (the whole prompt when prefill_chunk is 0);
    with generate > 0 the last chunk goes through generate(), which adds
    greedy decode steps. Returns the generated token ids."""
    import torch
    import transformers
    dev = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=dev)
    n = len(ids)
    chunk = prefill_chunk if 0 < prefill_chunk < n else n
    starts = list(range(0, n, chunk))
    cache = None
    manual = starts[:-1] if generate else starts
    cap.phase, cap.generating = PREFILL, False
    with torch.no_grad():
        for p0 in manual:
            out = model(input_ids=x[:, p0:p0 + chunk], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
        if not generate:
            return []
        eos = model.config.eos_token_id
        gc = transformers.GenerationConfig(max_new_tokens=generate, do_sample=False, num_beams=1,
                                           eos_token_id=eos, pad_token_id=eos if isinstance(eos, int) else None)
        cap.generating = True
        try:
            seq = model.generate(input_ids=x, attention_mask=torch.ones_like(x), past_key_values=cache,
                                 generation_config=gc)
        finally:
            cap.generating = False
    return seq[0, n:].tolist()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m moesim.capture",
        description="Capture a Hugging Face MoE model's routing (transformers >= 5, torch) as a .moetrace, "
                    "with the step definitions of `moesim infer --trace-out`. Known MoE block types: %s."
                    % ", ".join(sorted(routers.RULES)),
        epilog="CSV: `moesim trace export OUT.moetrace`. Then: moesim trace info / run / plot.")
    ap.add_argument("--model", required=True, metavar="DIR", help="model directory (config.json + weights)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar="F", help="prompt file (the model's tokenizer, or one token per byte "
                     "for a 256-entry vocabulary without one)")
    src.add_argument("--ids", metavar="LIST", help="prompt token ids, e.g. 1,2,3")
    ap.add_argument("-o", "--output", required=True, metavar="OUT", help="output .moetrace (written atomically)")
    ap.add_argument("--generate", type=int, default=0, metavar="N",
                    help="then generate N tokens greedily with generate() (default 0: teacher-forced only)")
    ap.add_argument("--prefill-chunk", type=int, default=0, metavar="N",
                    help="prefill in chunks of N tokens, one step each (default: the whole prompt in one step)")
    ap.add_argument("--lookahead", type=int, default=0, metavar="D",
                    help="also store the top-k of layer l+d's router on layer l's MoE input, d = 1..D")
    ap.add_argument("--logits", action="store_true", help="also store the full router logits")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="weights and compute dtype (default auto: the checkpoint's); float32 also turns TF32 off")
    ap.add_argument("--attn-implementation", default=None, metavar="NAME", help="passed to from_pretrained")
    ap.add_argument("--experts-implementation", default=None, metavar="NAME", help="passed to from_pretrained")
    ap.add_argument("--name", default=None, help="model name in the trace header (default: the directory's name)")
    a = ap.parse_args(argv)
    for opt, v, lo in (("--generate", a.generate, 0), ("--prefill-chunk", a.prefill_chunk, 0),
                       ("--lookahead", a.lookahead, 0)):
        if v < lo:
            ap.error("%s: %d is negative" % (opt, v))
    out_dir = os.path.dirname(os.path.abspath(a.output))
    if not os.path.isdir(out_dir):  # before loading a model and running it
        print("moesim.capture: error: %s: no such directory for the output" % out_dir, file=sys.stderr)
        return 1
    try:
        return _capture(a)
    except (CaptureError, routers.UnknownRouterError, TraceFormatError, OSError) as e:
        print("moesim.capture: error: %s" % e, file=sys.stderr)
        return 1


def _capture(a):
    text = None
    if a.text is not None:
        try:
            with open(a.text, "rb") as f:
                text = f.read()
        except OSError as e:
            raise CaptureError("%s: %s" % (a.text, e.strerror))
    try:
        import torch
        import transformers
    except ImportError as e:
        raise CaptureError("needs torch and transformers >= 5 (%s)" % e)
    if int(transformers.__version__.split(".")[0]) < 5:
        raise CaptureError("transformers %s: the capture reads the routing from the router modules of "
                           "transformers >= 5 (tested with 5.17.0)" % transformers.__version__)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.monotonic()
    model = load_model(a.model, device, a.dtype, a.attn_implementation, a.experts_implementation)
    ids = encode(a.model, model.config.vocab_size, text, a.ids, a.text)
    cap = Capture(model, a.lookahead, a.logits)
    try:
        gen = run(model, cap, ids, a.prefill_chunk, a.generate)
    finally:
        cap.remove()
    arr = cap.arrays()
    hdr = cap.header()
    rule = cap.blocks[0][3]
    name = a.name or os.path.basename(os.path.normpath(a.model))
    near = cap.near_ties
    meta = "".join("%s=%s\n" % kv for kv in [
        ("model_dir", a.model), ("arch", model.config.model_type), ("dtype", str(model.dtype).replace("torch.", "")),
        ("device", device), ("prompt_tokens", len(ids)), ("generated", len(gen)), ("decoding", "greedy"),
        ("prefill_chunk", a.prefill_chunk or len(ids)), ("transformers", transformers.__version__),
        ("torch", torch.__version__), ("attn_implementation", getattr(model.config, "_attn_implementation", "")),
        ("router", rule.describe()), ("lookahead_hidden", "input of MoE layer l's block (its router's input)"),
        ("near_ties", "%d (choice-score margin < %g)" % (len(near), routers.NEAR_TIE)),
        ("rule_disagreements_at_near_ties", cap.disagreements), ("max_weight_err_vs_rule", "%.3g" % cap.max_weight_err),
    ])
    write_trace(a.output, arr["experts"], n_experts=cap.E, weights=arr["weights"], router_logits=arr["router_logits"],
                lookahead=arr["lookahead"], step=arr["step"], phase=arr["phase"], seq=arr["seq"], pos=arr["pos"],
                model=name[:63], source="moesim.capture transformers %s" % transformers.__version__, meta=meta, **hdr)
    n_steps = len(cap.steps)
    n_pre = sum(1 for s in cap.steps if s["phase"] == PREFILL)
    print("moesim.capture: %s: %d MoE layers (%s); %d steps (prefill %d, decode %d), %d tokens, %d generated; "
          "near ties %d; %.1f s -> %s" % (name, cap.L, rule.describe(), n_steps, n_pre, n_steps - n_pre,
                                           len(arr["experts"]), len(gen), len(near), time.monotonic() - t0, a.output),
          file=sys.stderr)
    for st, tok, m, mg in near[:10]:
        print("moesim.capture: near tie: step %d, token %d, MoE layer %d: margin %.3g" % (st, tok, m, mg), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
