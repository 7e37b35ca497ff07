"""Which Hugging Face MoE blocks the capture knows, and how each one routes.

Standard library + numpy, no torch: the dispatch table and the routing rules
are tested without a model (tests/python/test_routers.py).

A MoE block is a module with an ``experts`` child and a ``gate`` (or
``router``) child. Its class name selects a rule from ``RULES``; a block of a
type not in the table is refused by name (``UnknownRouterError``), never
guessed at. Each rule restates what transformers 5.17's router module of that
type computes from the raw router logits (models/*/modeling_*.py there):

  softmax_topk   Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE: p = softmax(logits);
                 the k largest p; weights p, divided by their sum iff
                 norm_topk_prob (Mixtral: always).
  deepseek_v2    p = softmax(logits); topk_method "greedy": the k largest p;
                 "group_limited_greedy": a group's score is its largest p, the
                 topk_group best groups stay, the other experts' p become 0,
                 then the k largest; weights p * routed_scaling_factor (no
                 renormalisation: transformers' DeepseekV2TopkRouter has none).
  deepseek_v3    (also GLM-4-MoE) s = sigmoid(logits); choice = s +
                 e_score_correction_bias; a group's score is the sum of its 2
                 largest choice values, the topk_group best groups stay, the
                 rest become -inf, then the k largest choice values; weights s
                 of those, divided by (sum + 1e-20) iff norm_topk_prob, times
                 routed_scaling_factor.

The capture records the routing the model itself returns; these rules order
its slots (rank order: descending gate weight, ties to the lower id, as
moesim's backend does), measure how close each choice was (the margin, for
near-tie reports) and cross-check that the model routes as its type says.
"""
from dataclasses import dataclass, field

import numpy as np

NEAR_TIE = 1e-5  # choice-score margin below which a selection counts as a near tie


class UnknownRouterError(ValueError):
    """The model has a MoE block whose type has no rule here (or none at all)."""


@dataclass(frozen=True)
class RouterRule:
    """One MoE block's routing, as parameters of the rules above."""
    kind: str                 # "softmax_topk" | "deepseek_v2" | "deepseek_v3"
    module_type: str          # the block's class name
    n_experts: int
    top_k: int
    norm_topk_prob: bool = False
    scaling: float = 1.0
    n_group: int = 1
    topk_group: int = 1
    group_limited: bool = False   # deepseek_v2 "group_limited_greedy"
    bias: tuple = field(default=(), repr=False)  # deepseek_v3 e_score_correction_bias (E values) or ()
    n_shared: int = 0             # shared (always-on) experts per layer, for the trace header

    def describe(self):
        s = "%s (%s): %d experts, top-%d" % (self.kind, self.module_type, self.n_experts, self.top_k)
        if self.kind == "softmax_topk":
            s += ", renormalised" if self.norm_topk_prob else ", not renormalised"
        if self.kind == "deepseek_v2":
            s += ", %s" % ("group_limited_greedy %d of %d groups" % (self.topk_group, self.n_group)
                           if self.group_limited else "greedy")
        if self.kind == "deepseek_v3":
            s += ", %d of %d groups, %s, correction bias" % (
                self.topk_group, self.n_group, "renormalised" if self.norm_topk_prob else "not renormalised")
        if self.scaling != 1.0:
            s += ", scaled by %g" % self.scaling
        if self.n_shared:
            s += ", %d shared" % self.n_shared
        return s


def _attr(block, gate, config, names, what):
    """First of names found on the router module, then the block, then the config."""
    for obj in (gate, block, config):
        for n in names:
            v = getattr(obj, n, None) if obj is not None else None
            if v is not None:
                return v
    raise UnknownRouterError("%s: cannot find %s (looked for %s on the router, the block and the config)"
                             % (type(block).__name__, what, "/".join(names)))


def _geometry(block, gate, config):
    E = int(_attr(block, gate, config, ("num_experts", "num_local_experts", "n_routed_experts"), "the expert count"))
    K = int(_attr(block, gate, config, ("top_k", "num_experts_per_tok"), "top-k"))
    if not 1 <= K <= E:
        raise UnknownRouterError("%s: top-k %d outside 1..%d experts" % (type(block).__name__, K, E))
    return E, K


def _softmax_topk(block, gate, config, always_norm):
    E, K = _geometry(block, gate, config)
    norm = True if always_norm else bool(_attr(block, gate, config, ("norm_topk_prob",), "norm_topk_prob"))
    shared = 1 if getattr(block, "shared_expert", None) is not None else 0
    return RouterRule("softmax_topk", type(block).__name__, E, K, norm_topk_prob=norm, n_shared=shared)


def _groups(block, gate, config, E):
    G = int(_attr(block, gate, config, ("num_group", "n_group"), "the group count"))
    TG = int(_attr(block, gate, config, ("topk_group",), "topk_group"))
    if G < 1 or E % G or not 1 <= TG <= G:
        raise UnknownRouterError("%s: %d experts in %d groups, %d kept: not a valid grouping"
                                 % (type(block).__name__, E, G, TG))
    return G, TG


def _shared_count(block, config):
    n = getattr(config, "n_shared_experts", None)
    return int(n) if n else (1 if getattr(block, "shared_experts", None) is not None else 0)


def _deepseek_v2(block, gate, config):
    E, K = _geometry(block, gate, config)
    method = _attr(block, gate, config, ("topk_method",), "topk_method")
    if method not in ("greedy", "group_limited_greedy"):
        raise UnknownRouterError("%s: topk_method %r is not one transformers' DeepseekV2TopkRouter computes"
                                 % (type(block).__name__, method))
    G, TG = _groups(block, gate, config, E) if method == "group_limited_greedy" else (1, 1)
    scale = float(_attr(block, gate, config, ("routed_scaling_factor",), "routed_scaling_factor"))
    return RouterRule("deepseek_v2", type(block).__name__, E, K, scaling=scale, n_group=G, topk_group=TG,
                      group_limited=method == "group_limited_greedy", n_shared=_shared_count(block, config))


def _deepseek_v3(block, gate, config):
    E, K = _geometry(block, gate, config)
    G, TG = _groups(block, gate, config, E)
    if E // G < 2:
        raise UnknownRouterError("%s: groups of %d experts; the group score sums the 2 best" % (type(block).__name__, E // G))
    norm = bool(_attr(block, gate, config, ("norm_topk_prob",), "norm_topk_prob"))
    scale = float(_attr(block, gate, config, ("routed_scaling_factor",), "routed_scaling_factor"))
    b = getattr(gate, "e_score_correction_bias", None)
    if b is None:
        raise UnknownRouterError("%s: the router has no e_score_correction_bias" % type(block).__name__)
    bias = tuple(float(v) for v in _to_numpy(b).reshape(-1))
    if len(bias) != E:
        raise UnknownRouterError("%s: e_score_correction_bias has %d values for %d experts"
                                 % (type(block).__name__, len(bias), E))
    return RouterRule("deepseek_v3", type(block).__name__, E, K, norm_topk_prob=norm, scaling=scale, n_group=G,
                      topk_group=TG, bias=bias, n_shared=_shared_count(block, config))


def _to_numpy(t):
    if hasattr(t, "detach"):  # a torch tensor
        t = t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float64)


# MoE block class name -> rule builder(block, router module, model config).
RULES = {
    "MixtralSparseMoeBlock": lambda b, g, c: _softmax_topk(b, g, c, always_norm=True),
    "Qwen2MoeSparseMoeBlock": lambda b, g, c: _softmax_topk(b, g, c, always_norm=False),
    "Qwen3MoeSparseMoeBlock": lambda b, g, c: _softmax_topk(b, g, c, always_norm=False),
    "OlmoeSparseMoeBlock": lambda b, g, c: _softmax_topk(b, g, c, always_norm=False),
    "DeepseekV2Moe": _deepseek_v2,
    "DeepseekV3MoE": _deepseek_v3,
    "Glm4MoeMoE": _deepseek_v3,
}


def _router_of(mod):
    for n in ("gate", "router"):
        r = getattr(mod, n, None)
        if r is not None:
            return r
    return None


def _looks_moe(mod):
    return getattr(mod, "experts", None) is not None and _router_of(mod) is not None


def find_moe_blocks(model, config=None):
    """[(module name, block, router module, RouterRule)] in model order, one per MoE layer.

    model: anything with named_modules() (a torch module). Raises
    UnknownRouterError naming the module and its type when a MoE-looking
    block (an ``experts`` and a ``gate``/``router`` child) has no rule, or
    when the model has no MoE block at all."""
    config = config if config is not None else getattr(model, "config", None)
    found, inside = [], []
    for name, mod in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue  # the children of a block already taken (its experts, gate, shared expert)
        tname = type(mod).__name__
        if tname in RULES:
            gate = _router_of(mod)
            if gate is None:
                raise UnknownRouterError("%s (%s): no gate/router child" % (name, tname))
            found.append((name, mod, gate, RULES[tname](mod, gate, config)))
            inside.append(name)
        elif _looks_moe(mod):
            raise UnknownRouterError(
                "%s is a %s (router: %s): moesim.capture has no routing rule for this module type; known: %s"
                % (name or "<model>", tname, type(_router_of(mod)).__name__, ", ".join(sorted(RULES))))
    if not found:
        raise UnknownRouterError("%s has no MoE block (a module with .experts and .gate); known block types: %s"
                                 % (type(model).__name__, ", ".join(sorted(RULES))))
    return found


# ---- the rules, on arrays ---------------------------------------------------

def _softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _top(v, k):
    """Indices of the k largest of each row, descending; ties to the lower index."""
    return np.argsort(-v, axis=-1, kind="stable")[:, :k]


def _keep_groups(scores_for_groups, choice, G, TG, fill):
    """choice with the experts outside each row's TG best groups set to fill."""
    T, E = choice.shape
    keep = np.zeros((T, G), dtype=bool)
    np.put_along_axis(keep, _top(scores_for_groups, TG), True, axis=-1)
    out = choice.copy()
    out[~np.repeat(keep, E // G, axis=1)] = fill
    return out


def choice_scores(logits, rule):
    """-> (choice [T,E], weight_base [T,E], group_scores [T,G] or None) in float64.

    choice decides which experts are taken (after group masking); weight_base
    is what the taken experts' weights are made from."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != rule.n_experts:
        raise ValueError("router logits of shape %s for %d experts" % (x.shape, rule.n_experts))
    G, TG = rule.n_group, rule.topk_group
    if rule.kind in ("softmax_topk", "deepseek_v2"):
        p = _softmax(x)
        if rule.kind == "deepseek_v2" and rule.group_limited:
            gs = p.reshape(len(p), G, -1).max(axis=-1)
            masked = _keep_groups(gs, p, G, TG, 0.0)
            return masked, p, gs
        return p, p, None
    if rule.kind == "deepseek_v3":
        s = 1.0 / (1.0 + np.exp(-x))
        c = s + np.asarray(rule.bias, dtype=np.float64)
        gs = np.sort(c.reshape(len(c), G, -1), axis=-1)[:, :, -2:].sum(axis=-1)
        masked = _keep_groups(gs, c, G, TG, -np.inf)
        return masked, s, gs
    raise ValueError("unknown rule kind %r" % rule.kind)


def route(logits, rule):
    """The rule applied to raw router logits [T,E] -> (experts [T,K] int64 in
    rank order, weights [T,K] float64)."""
    choice, base, _ = choice_scores(logits, rule)
    idx = _top(choice, rule.top_k)
    w = np.take_along_axis(base, idx, axis=-1)
    if rule.kind == "deepseek_v3" and rule.norm_topk_prob:
        w = w / (w.sum(axis=-1, keepdims=True) + 1e-20)
    elif rule.kind == "softmax_topk" and rule.norm_topk_prob:
        w = w / w.sum(axis=-1, keepdims=True)
    w = w * rule.scaling
    return rank_order(idx, w)


def rank_order(experts, weights):
    """Slots sorted by descending weight, ties to the lower expert id (the
    backend's rank order). experts [T,K] ints, weights [T,K]."""
    e = np.asarray(experts, dtype=np.int64)
    w = np.asarray(weights)
    order = np.lexsort((e, -w.astype(np.float64)), axis=-1)
    return np.take_along_axis(e, order, axis=-1), np.take_along_axis(w, order, axis=-1)


def margins(logits, rule, experts):
    """How clearly each row's chosen set won: the smaller of (a) the lowest
    chosen choice score minus the highest unchosen one among the kept groups'
    experts and (b), for grouped rules, the last kept group's score minus the
    best dropped group's. Rows [T] float64; +inf when nothing competes."""
    choice, _, gs = choice_scores(logits, rule)
    e = np.asarray(experts, dtype=np.int64)
    T, E = choice.shape
    chosen = np.zeros((T, E), dtype=bool)
    np.put_along_axis(chosen, e, True, axis=-1)
    low = np.where(chosen, choice, np.inf).min(axis=-1)
    others = np.where(chosen | ~np.isfinite(choice), -np.inf, choice)
    if rule.kind == "deepseek_v2" and rule.group_limited:
        # the dropped groups' experts read 0 there: only the kept groups' experts compete
        kept = np.zeros_like(gs, dtype=bool)
        np.put_along_axis(kept, _top(gs, rule.topk_group), True, axis=-1)
        others = np.where(np.repeat(kept, E // rule.n_group, axis=1), others, -np.inf)
    m = low - others.max(axis=-1)
    if gs is not None and rule.topk_group < rule.n_group:
        srt = -np.sort(-gs, axis=-1)
        m = np.minimum(m, srt[:, rule.topk_group - 1] - srt[:, rule.topk_group])
    return m
