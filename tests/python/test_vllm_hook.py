"""test_vllm_hook.py: python/moesim/vllm_hook.py offline (no vLLM, no torch).

The logger is fed synthetic router logits for two requests (a prompt in one
pass, a prompt chunked over two passes, decode passes), in both layouts; the
log is imported by `moesim trace import` and the trace must hold exactly the
routing the hook computed: experts, float32 weights, sequences, positions,
one step per forward pass, and the phases moesim's rule gives.
"""
import json
import os

import numpy as np

from harness import Failed, case, ensure, moesim, run, tmp
import moesim as ms
from moesim import vllm_hook as vh


@case
def routing_by_hand():
    # softmax of log([1, 3, 2, 4]) is [0.1, 0.3, 0.2, 0.4]: top-2 = experts 3, 1
    ex, w = vh.route_from_logits(np.log([[1.0, 3.0, 2.0, 4.0]]), 2, renormalize=False)
    ensure(ex.tolist() == [[3, 1]] and np.allclose(w, [[0.4, 0.3]], atol=1e-6), f"{ex}, {w}")
    ex, w = vh.route_from_logits(np.log([[1.0, 3.0, 2.0, 4.0]]), 2, renormalize=True)
    ensure(ex.tolist() == [[3, 1]] and np.allclose(w, [[4 / 7, 3 / 7]], atol=1e-6), f"{ex}, {w}")
    ensure(w.dtype == np.float32, f"weights are {w.dtype}")
    ex, _ = vh.route_from_logits(np.zeros((1, 5)), 3, renormalize=True)
    ensure(ex.tolist() == [[0, 1, 2]], f"ties: {ex}")  # the lower id first


@case
def line_layouts():
    m = json.loads(vh.mixtral_lines(3, [[4, 0]], np.float32([[0.75, 0.25]]), [9], 2, 5)[0])
    ensure(m == {"problem_id": 2, "layer": 3, "token_pos": 9, "experts": [4, 0], "gating_probs": [0.75, 0.25],
                 "pass": 5}, f"{m}")
    q = json.loads(vh.qwen_lines(12, [[1, 7]], np.float32([[0.5, 0.125]]), [0], "r1", 0)[0])
    ensure(q == {"type": "route", "req_id": "r1", "token_idx": 0, "layer": 12, "topk_ids": [1, 7],
                 "topk_weights": [0.5, 0.125], "pass": 0}, f"{q}")
    meta = json.loads(vh.qwen_meta_line(4, [12, 13], "Qwen/Qwen1.5-MoE-A2.7B"))
    ensure(meta == {"type": "meta", "model_id": "Qwen/Qwen1.5-MoE-A2.7B", "top_k": 4, "layers_logged": [12, 13]},
           f"{meta}")


# passes: (request, positions); request 1's prompt is chunked over two passes
PASSES = [(0, range(0, 5)), (0, [5]), (0, [6]), (0, [7]), (1, range(0, 3)), (1, range(3, 6)), (1, [6]), (1, [7])]
E, K = 8, 2


def feed(layout, layers, path):
    """Log PASSES with random logits; returns the expected per-token arrays."""
    rng = np.random.default_rng(3)
    if os.path.exists(path):
        os.unlink(path)
    log = vh.RouteLogger(path, K, renormalize=True, layers=layers, layout=layout, model_id="synthetic")
    ex_all, w_all, seq, pos, step = [], [], [], [], []
    for p, (req, positions) in enumerate(PASSES):
        positions = np.array(list(positions))
        log.begin_pass(positions)
        ensure(log.seq == req, f"pass {p}: logger took sequence {log.seq}, expected {req}")
        ex_pass, w_pass = [], []
        for layer in layers:
            logits = rng.standard_normal((len(positions), E)).astype(np.float32)
            log.layer(layer, logits)
            ex, w = vh.route_from_logits(logits, K, True)
            ex_pass.append(ex)
            w_pass.append(w)
        ex_all.append(np.stack(ex_pass, axis=1))  # (tokens, layers, K)
        w_all.append(np.stack(w_pass, axis=1))
        seq += [req] * len(positions)
        pos += list(positions)
        step += [p] * len(positions)
    log.close()
    return np.concatenate(ex_all), np.concatenate(w_all), np.array(seq), np.array(pos), np.array(step)


def check_import(path, want, *options):
    out = tmp("hook.moetrace")
    moesim("trace", "import", *options, path, "-o", out)
    t = ms.open_trace(out)
    ex, w, seq, pos, step = want
    ensure(t.experts.shape == ex.shape, f"{options}: shape {t.experts.shape}, hook logged {ex.shape}")
    ensure(np.array_equal(t.experts, ex), f"{options}: experts differ from the hook's")
    ensure(np.array_equal(t.weights, w), f"{options}: weights differ from the hook's (float32 exactly)")
    ensure(np.array_equal(t.token_seq, seq) and np.array_equal(t.token_pos, pos), f"{options}: seq/pos differ")
    ensure(t.n_steps == len(PASSES) and np.array_equal(t.token_step(), step), f"{options}: {t.n_steps} steps")
    # prefill: a token at position 0 or several tokens of one sequence in the pass
    want_phase = [ms.PREFILL if min(ps) == 0 or len(ps) > 1 else ms.DECODE for _, ps in PASSES]
    ensure(list(t.step_phase) == want_phase, f"{options}: phases {list(t.step_phase)}, expected {want_phase}")


@case
def mixtral_layout_round_trip():
    path = tmp("mixtral.jsonl")
    want = feed("mixtral", [0, 1, 2, 3], path)
    check_import(path, want, "--format", "jsonl-mixtral", "--field", "step=pass")
    # pass boundaries detected from the layer order give the same trace
    check_import(path, want, "--format", "jsonl-mixtral")
    check_import(path, want)  # the format sniffed from the .jsonl's first line


@case
def qwen_layout_round_trip():
    path = tmp("qwen.jsonl")
    want = feed("qwen", [3, 7, 11], path)  # logged layers become trace layers 0..2
    with open(path) as f:
        first = json.loads(f.readline())
    ensure(first["type"] == "meta" and first["layers_logged"] == [3, 7, 11] and first["top_k"] == K, f"{first}")
    check_import(path, want, "--format", "jsonl-qwen", "--pass-by", "key=pass")
    check_import(path, want, "--pass-by", "key=pass")


@case
def batched_sequences_refused():
    log = vh.RouteLogger(tmp("batch.jsonl"), K, True, [0])
    try:
        log.begin_pass(np.array([7, 0, 1]))  # a decode token and a new prompt in one pass
    except vh.RouteLogError as e:
        ensure("several sequences in one pass" in str(e) and "positions 7 then 0" in str(e), f"{e}")
    else:
        raise Failed("a batch of two sequences was logged")
    finally:
        log.close()


class FakeTensor:
    """What install()'s hooks call on a torch tensor: detach, to, numpy."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def detach(self):
        return self

    def to(self, what):
        return FakeTensor(self.a.astype(np.float32)) if what == "float32" else self

    def numpy(self):
        return self.a


class FakeModule:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)
        self.pre, self.post = [], []

    def register_forward_pre_hook(self, fn, with_kwargs=False):
        ensure(with_kwargs, "the pre-hook must take kwargs (vLLM passes positions= by name)")
        self.pre.append(fn)
        return fn

    def register_forward_hook(self, fn):
        self.post.append(fn)
        return fn


@case
def install_glue_with_fake_torch():
    """install() with stand-ins for torch and a vLLM model: the routers it
    finds, and a forward pass through its hooks (positions by keyword, router
    output as vLLM's (logits, bias) tuple) logged as the pure functions do."""
    import sys
    import types
    fake_torch = types.ModuleType("torch")
    fake_torch.float32 = "float32"
    gates = {0: FakeModule(output_size=E), 10: FakeModule(out_features=E), 2: FakeModule(output_size=E)}
    mods = [("model", FakeModule()), ("model.embed_tokens", FakeModule(output_size=1000)),
            ("model.layers.0.block_sparse_moe.gate", gates[0]),
            ("model.layers.0.mlp.gate_proj", FakeModule(out_features=99)),
            ("model.layers.2.mlp.gate", gates[2]), ("model.layers.2.mlp.shared_expert_gate", FakeModule(output_size=1)),
            ("model.layers.10.mlp.gate", gates[10]), ("model.layers.3.mlp.gate", FakeModule(output_size=E + 1))]
    model = mods[0][1]
    model.named_modules = lambda: iter(mods)
    saved = sys.modules.get("torch")
    sys.modules["torch"] = fake_torch
    try:
        path = tmp("glue.jsonl")
        log = vh.install(model, path, top_k=K, renormalize=True, n_experts=E)
    finally:
        if saved is None:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    ensure(log.layers == [0, 2, 10], f"routers found at layers {log.layers}")
    rng = np.random.default_rng(5)
    positions = np.array([0, 1, 2])
    model.pre[0](model, (FakeTensor([11, 12, 13]),), {"positions": FakeTensor(positions)})
    want = []
    for layer in (0, 2, 10):
        logits = rng.standard_normal((3, E)).astype(np.float32)
        gates[layer].post[0](gates[layer], (None,), (FakeTensor(logits), None))
        ex, w = vh.route_from_logits(logits, K, True)
        want += vh.mixtral_lines(layer, ex, w, positions, 0, 0)
    log.close()
    got = open(path).read().splitlines()
    ensure(got == want, f"the hooks wrote {got[:1]}..., expected {want[:1]}...")


run()
