"""Log MoE routing from a vLLM (or any PyTorch) model as JSON lines that
`moesim trace import` reads: --format jsonl-mixtral (default) or jsonl-qwen.

    from vllm import LLM
    from moesim import vllm_hook
    llm = LLM(model="mistralai/Mixtral-8x7B-v0.1", enforce_eager=True, enable_prefix_caching=False)
    llm.apply_model(lambda m: vllm_hook.install(m, "route.jsonl", top_k=2, renormalize=True).path)
    for prompt in prompts:                       # one request at a time
        llm.generate([prompt])
    # moesim trace import --format jsonl-mixtral --field step=pass route.jsonl -o route.moetrace

Nothing here imports vllm, and torch only inside install(): the line
formatting is pure functions of numpy arrays (route_from_logits,
mixtral_lines, qwen_meta_line, qwen_lines), tested offline against the
importer (tests/python/test_vllm_hook.py); install()'s hooks are tested with
stand-ins for torch and the model, not inside vLLM (neither vLLM nor torch
is on the test machine); traces/README.md says what it assumes.

What install() does: it finds the router of every MoE layer (a submodule named
`gate` under `layers.N.` that is a linear layer, one logit per routed expert, as in
vLLM's Mixtral, Qwen2/3-MoE and OLMoE), adds a forward pre-hook on the whole
model that records each forward pass's `positions` argument, and a forward
hook on each router that recomputes the routing vLLM's fused_topk computes
(softmax over the logits in float32, the top_k largest, renormalised to sum
1 when the model does) and appends one line per (token, layer). Assumptions:
  - enforce_eager=True: hooks do not run inside captured CUDA graphs or
    compiled regions;
  - softmax top-k routing: DeepSeek's grouped / biased routing is not this;
  - one request at a time: a pass whose positions do not continue by one
    (several sequences batched) raises RouteLogError rather than guess which
    token belongs to which request; a pass that starts at position 0 starts a
    new sequence (so prefix caching, which skips cached positions, must be
    off, or call logger.new_sequence() before each request).
"""
import json
import os

import numpy as np

LAYOUTS = ("mixtral", "qwen")


class RouteLogError(RuntimeError):
    pass


def route_from_logits(logits, top_k, renormalize):
    """fused_topk's routing from router logits [n, E]: (experts [n, k] int64,
    weights [n, k] float32), slot 0 the highest weight. Softmax in float32;
    ties go to the lower expert id (a stable sort)."""
    x = np.asarray(logits, dtype=np.float32)
    if x.ndim != 2 or not 1 <= top_k <= x.shape[1]:
        raise ValueError(f"logits: need shape (tokens, experts) with top_k 1..experts, got {x.shape}, top_k {top_k}")
    z = np.exp(x - x.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True, dtype=np.float32)
    ids = np.argsort(-p, axis=1, kind="stable")[:, :top_k]
    w = np.take_along_axis(p, ids, axis=1)
    if renormalize:
        w = w / w.sum(axis=1, keepdims=True, dtype=np.float32)
    return ids.astype(np.int64), w.astype(np.float32)


def _floats(row):
    # repr of the float32 value as a double: the importer parses it as a
    # double and rounds to float32, which gives back exactly this value
    return [float(v) for v in row]


def mixtral_lines(layer, experts, weights, positions, problem_id, pass_id):
    """jsonl-mixtral lines (exec order) for one layer of one forward pass:
    {"problem_id", "layer", "token_pos", "experts", "gating_probs", "pass"}.
    Import with `--field step=pass` to take pass boundaries from the log."""
    experts, weights, positions = np.asarray(experts), np.asarray(weights, np.float32), np.asarray(positions)
    return [json.dumps({"problem_id": int(problem_id), "layer": int(layer), "token_pos": int(positions[i]),
                        "experts": [int(e) for e in experts[i]], "gating_probs": _floats(weights[i]),
                        "pass": int(pass_id)})
            for i in range(len(experts))]


def qwen_meta_line(top_k, layers_logged, model_id=""):
    """The first line of a jsonl-qwen log."""
    return json.dumps({"type": "meta", "model_id": str(model_id), "top_k": int(top_k),
                       "layers_logged": [int(v) for v in layers_logged]})


def qwen_lines(layer, experts, weights, positions, req_id, pass_id):
    """jsonl-qwen route lines for one layer of one forward pass. Import with
    `--pass-by key=pass`."""
    experts, weights, positions = np.asarray(experts), np.asarray(weights, np.float32), np.asarray(positions)
    return [json.dumps({"type": "route", "req_id": str(req_id), "token_idx": int(positions[i]), "layer": int(layer),
                        "topk_ids": [int(e) for e in experts[i]], "topk_weights": _floats(weights[i]),
                        "pass": int(pass_id)})
            for i in range(len(experts))]


class RouteLogger:
    """Appends routing lines to path. Call begin_pass(positions) once per
    forward pass, then layer(l, logits) for each MoE layer in order; the
    torch hooks of install() do exactly that. Usable without torch (tests)."""

    def __init__(self, path, top_k, renormalize, layers, layout="mixtral", model_id=""):
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: one of {', '.join(LAYOUTS)}")
        self.path, self.top_k, self.renormalize, self.layout = os.fspath(path), int(top_k), bool(renormalize), layout
        self.layers = [int(v) for v in layers]
        self.passes, self.seq, self.positions = 0, -1, None
        self._forced = False
        self.f = open(self.path, "a", encoding="utf-8")
        if layout == "qwen" and self.f.tell() == 0:
            self._write([qwen_meta_line(top_k, self.layers, model_id)])

    def new_sequence(self):
        """The next pass starts a new request (whatever its first position)."""
        self._forced = True

    def begin_pass(self, positions):
        pos = np.asarray(positions).reshape(-1).astype(np.int64)
        if pos.size > 1 and np.any(np.diff(pos) != 1):
            i = int(np.flatnonzero(np.diff(pos) != 1)[0]) + 1
            raise RouteLogError(f"{self.path}: pass {self.passes}: positions {int(pos[i - 1])} then {int(pos[i])} "
                                f"at token {i}: several sequences in one pass; log one request at a time")
        if self._forced or self.seq < 0 or (pos.size and pos[0] == 0):
            self.seq += 1
            self._forced = False
        self.positions = pos
        self.passes += 1

    def layer(self, layer, logits):
        if self.positions is None:
            raise RouteLogError(f"{self.path}: layer {layer}: no forward pass begun (begin_pass)")
        ex, w = route_from_logits(logits, self.top_k, self.renormalize)
        if len(ex) != len(self.positions):
            raise RouteLogError(f"{self.path}: layer {layer}: {len(ex)} tokens, the pass has {len(self.positions)}")
        pass_id = self.passes - 1
        if self.layout == "mixtral":
            self._write(mixtral_lines(layer, ex, w, self.positions, self.seq, pass_id))
        else:
            self._write(qwen_lines(layer, ex, w, self.positions, f"r{self.seq}", pass_id))

    def _write(self, lines):
        self.f.write("".join(line + "\n" for line in lines))
        self.f.flush()

    def close(self):
        self.f.close()


def find_routers(model, n_experts=None):
    """(layer index, module) of every MoE router: a submodule named
    `...layers.N....gate` that is a linear layer (vLLM's linear layers have
    output_size, torch's nn.Linear out_features; `n_experts`, when given,
    must equal it). Sorted by layer."""
    import re
    found = []
    for name, mod in model.named_modules():
        m = re.search(r"(?:^|\.)layers\.(\d+)\..*\bgate$", name)
        size = getattr(mod, "output_size", None) or getattr(mod, "out_features", None)
        if not m or size is None:
            continue
        if n_experts is not None and size != n_experts:
            continue
        found.append((int(m.group(1)), mod))
    return sorted(found, key=lambda t: t[0])


def install(model, path, top_k, renormalize, layout="mixtral", n_experts=None, model_id=""):
    """Hook a torch model (inside the vLLM worker) to log its routing to path;
    returns the RouteLogger (its hooks in .handles). top_k and renormalize are
    the model's routing rule (Mixtral: 2, True; Qwen1.5-MoE: 4, False)."""
    import torch  # only here: the formatting above needs numpy alone

    routers = find_routers(model, n_experts)
    if not routers:
        raise RouteLogError("no MoE router found (a linear module named layers.N...gate)")
    log = RouteLogger(path, top_k, renormalize, [layer for layer, _ in routers], layout, model_id)

    def pre(module, args, kwargs):
        pos = kwargs.get("positions", args[1] if len(args) > 1 else None)
        if pos is None:
            raise RouteLogError("the model's forward got no `positions` argument")
        log.begin_pass(pos.detach().to("cpu").numpy())

    def post_for(layer):
        def post(module, args, output):
            logits = output[0] if isinstance(output, tuple) else output  # vLLM's linear returns (out, bias)
            log.layer(layer, logits.detach().to(torch.float32).to("cpu").numpy())
        return post

    log.handles = [model.register_forward_pre_hook(pre, with_kwargs=True)]
    log.handles += [mod.register_forward_hook(post_for(layer)) for layer, mod in routers]
    return log
