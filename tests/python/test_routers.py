#!/usr/bin/env python3
"""test_routers.py: moesim.routers without torch: the dispatch table (known
MoE block types, unknown ones refused by name) and each routing rule on
hand-worked router logits. Prints PASS/FAIL lines; exit status 1 on a failure.

    PYTHONPATH=python /usr/bin/python3 tests/python/test_routers.py
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from moesim import routers  # noqa: E402

failed = 0


def check(name, ok, why=""):
    global failed
    if ok:
        print("PASS routers_%s" % name)
    else:
        failed += 1
        print("FAIL routers_%s: %s" % (name, why))


def close(a, b, tol=1e-9):
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=tol)


# ---- fake modules: what find_moe_blocks sees of a torch model ---------------

class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def module(type_name, **attrs):
    return type(type_name, (Obj,), {})(**attrs)


class _Model(Obj):
    """named_modules() in registration order, as torch yields them."""

    def __init__(self, layers, config):
        self.mods = [("", self)]
        for i, mlp in enumerate(layers):
            p = "model.layers.%d.mlp" % i
            self.mods.append((p, mlp))
            for child in ("gate", "router", "experts", "shared_expert", "shared_experts"):
                if getattr(mlp, child, None) is not None:
                    self.mods.append((p + "." + child, getattr(mlp, child)))
        self.config = config

    def named_modules(self):
        return iter(self.mods)


def FakeModel(type_name, layers, config):
    return type(type_name, (_Model,), {})(layers, config)


def moe(type_name, gate_type="TopKRouter", shared=None, **gate_attrs):
    kw = {"gate": module(gate_type, **gate_attrs), "experts": module("Experts")}
    if shared:
        kw[shared] = module("MLP")
    return module(type_name, **kw)


cfg = Obj()
m = FakeModel("MixtralForCausalLM", [moe("MixtralSparseMoeBlock", top_k=2, num_experts=8),
                                     moe("MixtralSparseMoeBlock", top_k=2, num_experts=8)], cfg)
b = routers.find_moe_blocks(m)
check("dispatch_mixtral", [x[0] for x in b] == ["model.layers.0.mlp", "model.layers.1.mlp"]
      and all(x[3].kind == "softmax_topk" and x[3].norm_topk_prob and x[3].n_shared == 0 for x in b)
      and b[0][3].n_experts == 8 and b[0][3].top_k == 2, str(b))

# Qwen2-MoE: a dense layer (mlp_only_layers) between MoE layers, a shared expert,
# norm_topk_prob from the config when the router does not carry it
qcfg = Obj(norm_topk_prob=False, num_experts=60, num_experts_per_tok=4)
q = FakeModel("Qwen2MoeForCausalLM", [module("Qwen2MoeMLP", gate_proj=Obj()),
                                      moe("Qwen2MoeSparseMoeBlock", shared="shared_expert")], qcfg)
b = routers.find_moe_blocks(q)
check("dispatch_qwen2_shared_dense", len(b) == 1 and b[0][0] == "model.layers.1.mlp"
      and b[0][3].n_shared == 1 and not b[0][3].norm_topk_prob and (b[0][3].n_experts, b[0][3].top_k) == (60, 4),
      str(b))

for t in ("Qwen3MoeSparseMoeBlock", "OlmoeSparseMoeBlock"):
    b = routers.find_moe_blocks(FakeModel("X", [moe(t, top_k=8, num_experts=64, norm_topk_prob=True)], Obj()))
    check("dispatch_" + t, b[0][3].kind == "softmax_topk" and b[0][3].norm_topk_prob and b[0][3].n_shared == 0)

v3cfg = Obj(n_shared_experts=1)
v3 = moe("DeepseekV3MoE", shared="shared_experts", top_k=8, num_experts=256, num_group=8, topk_group=4,
         norm_topk_prob=True, routed_scaling_factor=2.5, e_score_correction_bias=[0.0] * 256)
b = routers.find_moe_blocks(FakeModel("DeepseekV3ForCausalLM", [module("DeepseekV3MLP"), v3], v3cfg))
r = b[0][3]
check("dispatch_deepseek_v3", (r.kind, r.n_group, r.topk_group, r.scaling, r.n_shared, len(r.bias)) ==
      ("deepseek_v3", 8, 4, 2.5, 1, 256), str(r))
b = routers.find_moe_blocks(FakeModel("Glm4MoeForCausalLM", [moe("Glm4MoeMoE", top_k=2, num_experts=8, num_group=1,
                                                               topk_group=1, norm_topk_prob=True,
                                                               routed_scaling_factor=1.0,
                                                               e_score_correction_bias=[0.0] * 8)], Obj()))
check("dispatch_glm4_moe", b[0][3].kind == "deepseek_v3")
v2 = moe("DeepseekV2Moe", shared="shared_experts", top_k=6, num_experts=64, num_group=8, topk_group=3,
         routed_scaling_factor=16.0, topk_method="group_limited_greedy")
r = routers.find_moe_blocks(FakeModel("DeepseekV2ForCausalLM", [v2], Obj(n_shared_experts=2)))[0][3]
check("dispatch_deepseek_v2", (r.kind, r.group_limited, r.n_group, r.topk_group, r.scaling, r.n_shared) ==
      ("deepseek_v2", True, 8, 3, 16.0, 2), str(r))


def raises(fn, *needles):
    try:
        fn()
    except routers.UnknownRouterError as e:
        missing = [n for n in needles if n not in str(e)]
        return (not missing, "message %r lacks %s" % (str(e), missing))
    return (False, "no UnknownRouterError")


# a MoE block of an unknown type: refused, naming the module, its type and its router's type
unk = FakeModel("FooForCausalLM", [moe("FooSparseMoeBlock", gate_type="FooRouter", top_k=2, num_experts=8)], Obj())
check("unknown_block_named", *raises(lambda: routers.find_moe_blocks(unk),
                                     "model.layers.0.mlp", "FooSparseMoeBlock", "FooRouter", "MixtralSparseMoeBlock"))
# the original DeepSeek-V2 remote code (DeepseekV2MoE with a MoEGate) is not transformers' DeepseekV2Moe
rc = FakeModel("DeepseekV2ForCausalLM", [moe("DeepseekV2MoE", gate_type="MoEGate")], Obj())
check("unknown_remote_code_named", *raises(lambda: routers.find_moe_blocks(rc), "DeepseekV2MoE", "MoEGate"))
# a block behind a `router` attribute is recognised as MoE too
rt = FakeModel("X", [module("BarMoe", router=module("BarRouter"), experts=module("E"))], Obj())
check("unknown_router_attr_named", *raises(lambda: routers.find_moe_blocks(rt), "BarMoe", "BarRouter"))
dense = FakeModel("LlamaForCausalLM", [module("LlamaMLP", gate_proj=Obj())], Obj())
check("no_moe_named", *raises(lambda: routers.find_moe_blocks(dense), "LlamaForCausalLM", "no MoE block"))
bad = FakeModel("X", [moe("DeepseekV2Moe", top_k=2, num_experts=8, routed_scaling_factor=1.0, topk_method="noaux_tc")],
                Obj())
check("deepseek_v2_unknown_method", *raises(lambda: routers.find_moe_blocks(bad), "noaux_tc"))
miss = FakeModel("X", [moe("Qwen3MoeSparseMoeBlock", top_k=2, num_experts=8)], Obj())
check("missing_attribute_named", *raises(lambda: routers.find_moe_blocks(miss), "norm_topk_prob"))
grp = FakeModel("X", [moe("DeepseekV3MoE", top_k=2, num_experts=8, num_group=3, topk_group=1, norm_topk_prob=True,
                          routed_scaling_factor=1.0, e_score_correction_bias=[0.0] * 8)], Obj())
check("bad_grouping_named", *raises(lambda: routers.find_moe_blocks(grp), "8 experts in 3 groups"))

# ---- the rules on hand-worked logits ------------------------------------------

e1, e2, e3 = math.e, math.e ** 2, math.e ** 3
Z = 1 + e1 + e2 + e3
rule = routers.RouterRule("softmax_topk", "T", 4, 2, norm_topk_prob=True)
x, w = routers.route([[1.0, 3.0, 2.0, 0.0]], rule)
check("softmax_topk_renormalised", x.tolist() == [[1, 2]] and close(w, [[e3 / (e3 + e2), e2 / (e3 + e2)]]),
      "%s %s" % (x, w))
plain = routers.RouterRule("softmax_topk", "T", 4, 2, norm_topk_prob=False)
x, w = routers.route([[1.0, 3.0, 2.0, 0.0]], plain)
check("softmax_topk_plain", x.tolist() == [[1, 2]] and close(w, [[e3 / Z, e2 / Z]]), "%s %s" % (x, w))
check("softmax_margin", close(routers.margins([[1.0, 3.0, 2.0, 0.0]], plain, [[1, 2]]), [(e2 - e1) / Z]))
# exact ties go to the lower expert id, in the set and in the rank order
x, w = routers.route([[2.0, 2.0, 1.0, 2.0]], plain)
check("ties_lower_id", x.tolist() == [[0, 1]], str(x))
check("ties_margin_zero", close(routers.margins([[2.0, 2.0, 1.0, 2.0]], plain, x), [0.0]))
# rank order: descending weight, equal weights by id
x, w = routers.rank_order([[5, 2, 7, 1]], [[0.1, 0.4, 0.4, 0.1]])
check("rank_order", x.tolist() == [[2, 7, 1, 5]] and close(w, [[0.4, 0.4, 0.1, 0.1]]), str(x))

# DeepSeek-V2 group-limited greedy: 4 groups of 2, keep 1; softmax of log(p) is p
p = np.array([0.30, 0.01, 0.02, 0.25, 0.20, 0.18, 0.02, 0.02])
lg = np.log(p)[None, :]
v2 = routers.RouterRule("deepseek_v2", "T", 8, 2, scaling=2.0, n_group=4, topk_group=1, group_limited=True)
x, w = routers.route(lg, v2)
check("deepseek_v2_grouped", x.tolist() == [[0, 1]] and close(w, [[0.60, 0.02]]), "%s %s" % (x, w))
check("deepseek_v2_grouped_margin", close(routers.margins(lg, v2, x), [0.05]),  # groups: .30 vs .25
      str(routers.margins(lg, v2, x)))
greedy = routers.RouterRule("deepseek_v2", "T", 8, 2, scaling=2.0)
x, w = routers.route(lg, greedy)
check("deepseek_v2_greedy", x.tolist() == [[0, 3]] and close(w, [[0.60, 0.50]]), "%s %s" % (x, w))

# DeepSeek-V3: sigmoid scores s, choice s + bias, group score = sum of the 2 best
s = np.array([0.95, 0.10, 0.60, 0.60, 0.80, 0.05, 0.30, 0.30])
bias = (0, 0, 0, 0, 0, 0, 0.5, 0.5)
lg = np.log(s / (1 - s))[None, :]
# choice = [.95 .10 .60 .60 .80 .05 .80 .80]; groups 1.05, 1.20, 0.85, 1.60 -> keep groups 3 and 1;
# experts 2, 3, 6, 7 compete on choice .6 .6 .8 .8 -> 6, 7; weights s = .3, .3 renormalised, x 2.5
v3 = routers.RouterRule("deepseek_v3", "T", 8, 2, norm_topk_prob=True, scaling=2.5, n_group=4, topk_group=2,
                        bias=bias)
x, w = routers.route(lg, v3)
check("deepseek_v3_grouped_bias", x.tolist() == [[6, 7]] and close(w, [[1.25, 1.25]]), "%s %s" % (x, w))
check("deepseek_v3_margin", close(routers.margins(lg, v3, x), [0.15]), str(routers.margins(lg, v3, x)))
v3n = routers.RouterRule("deepseek_v3", "T", 8, 2, norm_topk_prob=False, scaling=1.0, n_group=1, topk_group=1,
                         bias=bias)
x, w = routers.route(lg, v3n)  # one group: plain top-2 of choice: 0 (.95), then 4/6/7 tie at .8 -> 4
check("deepseek_v3_one_group", x.tolist() == [[0, 4]] and close(w, [[0.95, 0.80]]), "%s %s" % (x, w))

check("describe", "renormalised" in rule.describe() and "4 of 8 groups" not in rule.describe()
      and "scaled by 2.5" in v3.describe())
print("%d failed" % failed if failed else "all passed", file=sys.stderr)
sys.exit(1 if failed else 0)
