#!/usr/bin/env python3
"""Train moesim's shipped MoE model (models/tinymix) and write its golden outputs.

A Mixtral-architecture model (Hugging Face transformers MixtralForCausalLM) over bytes:
  vocabulary 256, token id = byte value, no special tokens in the data.  bos_token_id,
  eos_token_id and pad_token_id are all 0 (the NUL byte), which make_corpus.sh strips from the
  corpus, so the model never sees nor emits it in practice; no BOS is ever prepended.
  6 MoE layers x 32 experts, top-4, hidden 128, 4 query heads / 2 KV heads (head_dim 32),
  expert intermediate size 144 (largest multiple of 16 whose bfloat16 safetensors stay <= 24 MB),
  max_position_embeddings 1024, rope_theta 10000, untied lm_head, router aux loss 0.01.

Training: seeded, sequences of 1024 bytes (the full max_position_embeddings: a first run with
512-byte sequences scored 0.92 nats/byte on 512-byte windows but 2.5-2.9 on the 1024-byte golden
sequences, i.e. RoPE positions 512..1023 were never trained), each from a domain drawn uniformly
(prose, bible, c, roff), AdamW + linear warmup + cosine decay over --steps, bf16 autocast with fp32 master weights,
stopped early by --time-limit (wall clock) if needed; the steps actually done are recorded.

After training the model is saved in bfloat16 with save_pretrained (config.json, model.safetensors
exactly as transformers writes them), then RELOADED FROM DISK in float32 (eager attention, eager
experts, TF32 off, eval) for the final losses and, on the CPU, the golden outputs
(models/tinymix/golden/, format in models/goldens.py).  TRAINING.md records everything.

Reproduce (one H100/H200 through the device tool, ~7 minutes; the corpus travels with the call):
  bash models/make_corpus.sh
  PYTHONUNBUFFERED=1 python3 models/train.py --steps <steps in TRAINING.md>
"""

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import goldens as G  # noqa: E402

import transformers  # noqa: E402
from transformers import MixtralConfig, MixtralForCausalLM  # noqa: E402

DOMAINS = ["prose", "bible", "c", "roff"]
SEQ = 1024   # bytes per training sequence (= max_position_embeddings; --seq overrides)


def make_config():
    kw = dict(
        vocab_size=256,
        hidden_size=128,
        intermediate_size=144,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        hidden_act="silu",
        max_position_embeddings=1024,
        initializer_range=0.02,
        rms_norm_eps=1e-5,
        use_cache=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=False,
        sliding_window=None,
        attention_dropout=0.0,
        num_experts_per_tok=4,
        num_local_experts=32,
        output_router_logits=False,
        router_aux_loss_coef=0.01,
        router_jitter_noise=0.0,
    )
    try:   # transformers 5: rope settings live in rope_parameters
        cfg = MixtralConfig(**kw, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    except TypeError:
        cfg = MixtralConfig(**kw, rope_theta=10000.0)
    theta = None
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict):
        theta = rp.get("rope_theta")
    if theta is None:
        theta = getattr(cfg, "rope_theta", None)
    assert theta is not None and float(theta) == 10000.0, "rope_theta not 10000: %r" % theta
    return cfg


def load_corpus(corpus, device):
    data = {}
    for split in ("train", "heldout"):
        for d in DOMAINS:
            p = os.path.join(corpus, "%s_%s.txt" % (split, d))
            a = np.fromfile(p, dtype=np.uint8)
            data[(split, d)] = torch.from_numpy(a).to(device)
    return data


def sample_batch(data, batch, gen, device):
    dom = torch.randint(0, len(DOMAINS), (batch,), generator=gen)
    rows = []
    ar = torch.arange(SEQ, device=device)
    for i, d in enumerate(DOMAINS):
        n = int((dom == i).sum())
        if n == 0:
            continue
        src = data[("train", d)]
        starts = torch.randint(0, src.numel() - SEQ, (n,), generator=gen).to(device)
        rows.append(src[starts[:, None] + ar[None, :]])
    return torch.cat(rows).long()


def ce_loss(logits, ids):
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


@torch.no_grad()
def eval_domain(model, src, max_windows, batch, autocast, device):
    """Mean NLL over non-overlapping SEQ-byte windows of src (each window predicts bytes 1..SEQ-1)."""
    n = min(max_windows, src.numel() // SEQ)
    tot, cnt = 0.0, 0
    for s in range(0, n, batch):
        m = min(batch, n - s)
        idx = (torch.arange(s, s + m, device=device)[:, None] * SEQ + torch.arange(SEQ, device=device)[None])
        ids = src[idx].long()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=ids, use_cache=False).logits
        l = F.cross_entropy(logits[:, :-1].float().reshape(-1, 256), ids[:, 1:].reshape(-1), reduction="sum")
        tot += l.item()
        cnt += m * (SEQ - 1)
    return tot / max(cnt, 1)


@torch.no_grad()
def eval_train_sample(model, data, windows, batch, autocast, device, seed=4321):
    g = torch.Generator().manual_seed(seed)
    res = {}
    for d in DOMAINS:
        src = data[("train", d)]
        starts = torch.randint(0, src.numel() - SEQ, (windows,), generator=g).to(device)
        tot, cnt = 0.0, 0
        for s in range(0, windows, batch):
            st = starts[s:s + batch]
            ids = src[st[:, None] + torch.arange(SEQ, device=device)[None]].long()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=ids, use_cache=False).logits
            tot += F.cross_entropy(logits[:, :-1].float().reshape(-1, 256), ids[:, 1:].reshape(-1),
                                   reduction="sum").item()
            cnt += ids.shape[0] * (SEQ - 1)
        res[d] = tot / cnt
    return res


def probe_experts_impl(model, data, args, device):
    """Time forward+backward of each experts implementation (no optimizer step); pick the fastest."""
    g = torch.Generator().manual_seed(999)
    ids = sample_batch(data, args.batch, g, device)
    best, timings = None, {}
    for impl in ("grouped_mm", "batched_mm", "eager"):
        try:
            G.set_experts_impl(model, impl)
            for i in range(5):
                if i == 2:
                    torch.cuda.synchronize()
                    t0 = time.time()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(input_ids=ids, output_router_logits=True, use_cache=False)
                    loss = ce_loss(out.logits, ids) + args.aux_coef * out.aux_loss
                loss.backward()
            torch.cuda.synchronize()
            dt = (time.time() - t0) / 3
            timings[impl] = round(dt, 4)
            if not torch.isfinite(loss):
                raise RuntimeError("non-finite loss")
            if best is None or dt < timings[best]:
                best = impl
        except Exception as e:  # an implementation this torch / transformers cannot run
            timings[impl] = "failed: %s" % (str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        model.zero_grad(set_to_none=True)
    print("experts implementation probe (s per fwd+bwd):", timings, "->", best, flush=True)
    return best, timings


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def golden_sequences(corpus):
    seqs = []
    for d in DOMAINS:
        b = open(os.path.join(corpus, "heldout_%s.txt" % d), "rb").read()
        off = b.index(b"\n", 4096) + 1
        seqs.append(("heldout_%s_96" % d, d, list(b[off:off + 96])))
    seqs.append(("prompt_int_main", "c", list(b"int main(")))
    sw = (b"The grace of our Lord Jesus Christ be with you all. Amen.\n"
          b"#include <stdio.h>\nint main(void) {\n    printf(\"hello\\n\");\n    return 0;\n}\n")
    seqs.append(("switch_bible_to_c_%d" % len(sw), "mixed", list(sw[:128])))
    return seqs


def make_goldens(model_dir, corpus, gold_dir, log):
    """Reload from disk in float32 on the CPU and write models/tinymix/golden/."""
    G.set_fp32_reference_mode()
    os.makedirs(gold_dir, exist_ok=True)
    for f in os.listdir(gold_dir):
        os.remove(os.path.join(gold_dir, f))
    model = G.load_reference(MixtralForCausalLM, model_dir, "cpu")
    k = model.config.num_experts_per_tok
    cap = G.RoutingCapture(model)
    entries, facts = [], None
    for i, (name, dom, toks) in enumerate(golden_sequences(corpus)):
        e, facts_i = G.forward_golden(model, cap, toks, k, gold_dir, name, dom, i)
        entries.append(e)
        facts = facts_i if facts is None else facts
        log("golden %s: T=%d min router gap %.3g, near-ties %d" % (name, e["T"], e["min_gap_kth_vs_k1th_logit"],
                                                               e["positions_gap_below_1e-5"]))
    ppl = {}
    for d in DOMAINS:
        b = open(os.path.join(corpus, "heldout_%s.txt" % d), "rb").read()[:1024]
        fn = "heldout_%s.txt" % d
        open(os.path.join(gold_dir, fn), "wb").write(b)
        x = G.nll_one_sequence(model, b)
        ppl[d] = {"file": fn, "bytes": len(b), "nats_per_byte": x, "ppl": math.exp(x)}
        log("golden ppl %s: %.4f nats/byte, ppl %.4f" % (d, x, math.exp(x)))
    cap.remove()
    prompt = list(b"int main(")
    ids = torch.tensor([prompt], dtype=torch.long)
    with torch.no_grad():
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=64,
                             do_sample=False, use_cache=True, pad_token_id=0)
    new = gen[0, len(prompt):].tolist()
    # consistency: one no-cache forward over prompt+generated must give the same greedy choices
    with torch.no_grad():
        full = model(input_ids=gen, use_cache=False).logits[0].float()
    pred = full[len(prompt) - 1:-1].argmax(-1).tolist()
    top2 = full[len(prompt) - 1:-1].topk(2, dim=-1).values
    margin = (top2[:, 0] - top2[:, 1]).min().item()
    log("greedy after 'int main(': %r" % bytes(new).decode("latin-1"))
    log("greedy no-cache recheck equal: %s, min top1-top2 logit margin %.4g" % (pred == new, margin))
    golden = {
        "transformers": transformers.__version__, "torch": torch.__version__, "dtype": "float32",
        "tf32": False, "device": "cpu", "attn_implementation": "eager", "experts_implementation": "eager",
        "model": "tinymix", "architecture": "MixtralForCausalLM",
        "layout": "little-endian, C order; logits [T][V] f32, experts [L][T][k] i32 (rank order), "
                  "weights [L][T][k] f32 (as applied), router_logits [L][T][E] f32 (raw, pre-softmax)",
        "sequences": entries, "ppl": ppl,
        "ppl_rule": "mean natural-log NLL of bytes 1..N-1 given their prefix, one sequence of N bytes from "
                    "position 0, no BOS; ppl = exp(nats_per_byte)",
        "generation": {"prompt": "int main(", "prompt_tokens": prompt, "max_new_tokens": 64,
                       "greedy_tokens": new, "text": bytes(new).decode("latin-1"),
                       "method": "model.generate(do_sample=False, use_cache=True), KV cache",
                       "nocache_recheck_equal": pred == new, "min_top1_top2_logit_margin": margin},
        "routing_facts": facts,
    }
    G.write_json(golden, os.path.join(gold_dir, "golden.json"))
    return golden


def main():
    global SEQ
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "corpus"))
    ap.add_argument("--out", default=os.path.join(here, "tinymix"))
    ap.add_argument("--steps", type=int, default=4000, help="schedule length (cosine over these steps)")
    ap.add_argument("--time-limit", type=float, default=430.0, help="stop training after this many seconds")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=SEQ, help="bytes per training / evaluation window")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--aux-coef", type=float, default=None, help="default: config.router_aux_loss_coef")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--experts-impl", default="auto", help="auto|grouped_mm|batched_mm|eager")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--no-golden", action="store_true")
    args = ap.parse_args()
    SEQ = args.seq
    t_start = time.time()
    cmd = "PYTHONUNBUFFERED=1 python3 models/train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.cuda.manual_seed_all(args.seed)
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True      # training only; references are TF32-free
    torch.backends.cudnn.allow_tf32 = True
    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    log("versions: torch %s, transformers %s, python %s, gpu %s" % (
        torch.__version__, transformers.__version__, platform.python_version(), torch.cuda.get_device_name(0)))
    cfg = make_config()
    if args.aux_coef is None:
        args.aux_coef = cfg.router_aux_loss_coef
    model = MixtralForCausalLM(cfg).to(device)
    nparams = sum(p.numel() for p in model.parameters())
    log("params %d (%.2f MB in bfloat16)" % (nparams, nparams * 2 / 1e6))
    assert nparams * 2 <= 24e6, "model too large for 24 MB in bfloat16"
    data = load_corpus(args.corpus, device)
    log("corpus: " + ", ".join("%s %s %d" % (s, d, data[(s, d)].numel()) for (s, d) in data))

    if args.experts_impl == "auto":
        impl, timings = probe_experts_impl(model, data, args, device)
    else:
        impl, timings = args.experts_impl, {}
    got = G.set_experts_impl(model, impl)
    log("experts implementation for training: %s (modules report %s)" % (impl, got))
    torch.manual_seed(args.seed)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    gen = torch.Generator().manual_seed(args.seed)
    model.train()
    t0 = time.time()
    step, ema = 0, None
    history = []
    while step < args.steps:
        if time.time() - t0 > args.time_limit:
            log("time limit reached at step %d" % step)
            break
        lr = lr_at(step, args)
        for gr in opt.param_groups:
            gr["lr"] = lr
        ids = sample_batch(data, args.batch, gen, device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, output_router_logits=True, use_cache=False)
            ce = ce_loss(out.logits, ids)
            loss = ce + args.aux_coef * out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.log_every == 0 or step == 1:
            c, a = ce.item(), out.aux_loss.item()
            ema = c if ema is None else 0.9 * ema + 0.1 * c
            el = time.time() - t0
            log("step %5d  ce %.4f  aux %.4f  lr %.2e  gnorm %.2f  %.1fs (%.3f s/step)" % (
                step, c, a, lr, gn.item(), el, el / step))
            history.append((step, round(c, 4), round(a, 4), round(el, 1)))
        if step % args.eval_every == 0:
            model.eval()
            hv = {d: eval_domain(model, data[("heldout", d)], 64, 64, True, device) for d in DOMAINS}
            model.train()
            log("eval step %d held-out (bf16, 64 windows): %s mean %.4f" % (
                step, " ".join("%s %.4f" % (d, v) for d, v in hv.items()), sum(hv.values()) / len(hv)))
    train_time = time.time() - t0
    log("trained %d steps in %.1f s (%d sequences of %d bytes, %.1f M bytes)" % (
        step, train_time, step * args.batch, SEQ, step * args.batch * SEQ / 1e6))

    # ---------------------------------------------------------------- save (bfloat16)
    os.makedirs(args.out, exist_ok=True)
    model.eval()
    model = model.to(torch.bfloat16)
    try:
        model.save_pretrained(args.out, safe_serialization=True)
    except TypeError:
        model.save_pretrained(args.out)
    del model, opt
    torch.cuda.empty_cache()
    st = os.path.join(args.out, "model.safetensors")
    st_size = os.path.getsize(st)
    log("saved %s: %d bytes" % (st, st_size))
    tensors = G.tensor_table(st)
    for n, dt, shp in tensors:
        log("  tensor %-55s %-5s %s" % (n, dt, shp))

    # ---------------------------------------------------------------- final losses, reloaded fp32
    G.set_fp32_reference_mode()
    ref = G.load_reference(MixtralForCausalLM, args.out, device)
    held = {d: eval_domain(ref, data[("heldout", d)], 10 ** 9, 32, False, device) for d in DOMAINS}
    trn = eval_train_sample(ref, data, 128, 32, False, device)
    log("final held-out nats/byte (fp32, reloaded, all %d-byte windows): %s mean %.4f" % (
        SEQ, " ".join("%s %.4f" % (d, v) for d, v in held.items()), sum(held.values()) / len(held)))
    log("final train nats/byte (fp32, reloaded, 128 random windows): %s mean %.4f" % (
        " ".join("%s %.4f" % (d, v) for d, v in trn.items()), sum(trn.values()) / len(trn)))
    del ref

    golden = None
    if not args.no_golden:
        golden = make_goldens(args.out, args.corpus, os.path.join(args.out, "golden"), log)

    cfg_json = open(os.path.join(args.out, "config.json")).read()
    write_training_md(args, cmd, step, train_time, held, trn, tensors, st_size, nparams, impl, timings,
                      cfg_json, golden, history, time.time() - t_start)
    log("total wall time %.1f s" % (time.time() - t_start))
    with open(os.path.join(args.out, "train_log.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def write_training_md(args, cmd, steps, train_time, held, trn, tensors, st_size, nparams, impl, timings,
                      cfg_json, golden, history, total):
    corpus_sizes = {}
    for s in ("train", "heldout"):
        for d in DOMAINS:
            corpus_sizes[(s, d)] = os.path.getsize(os.path.join(args.corpus, "%s_%s.txt" % (s, d)))
    L = []
    L.append("# tinymix: moesim's shipped MoE model\n")
    L.append("Written by `models/train.py` (do not edit by hand; the *Architectures* section at the end "
             "is kept by hand).\n")
    L.append("## Reproduce\n")
    if steps >= args.steps:
        L.append("```\nbash models/make_corpus.sh\n%s --steps %d\n```\n" % (
            cmd.split(" --steps")[0] if " --steps" in cmd else cmd, steps))
        done = "%d steps were done, so `--steps %d` reproduces the schedule" % (steps, steps)
    else:   # cut by --time-limit: the cosine ran over --steps and stopped part-way
        L.append("```\nbash models/make_corpus.sh\n%s\n```\n" % cmd)
        done = ("the time limit stopped it after %d of %d steps, so the schedule is the cosine over %d steps "
                "cut at step %d (the learning rate had not fully decayed); the same command on an equally fast "
                "GPU reproduces it approximately" % (steps, args.steps, args.steps, steps))
    L.append("Command as run: `%s`. On one GPU through the "
             "`device` tool (this run: %s), the corpus carried with the call. The loop stops at --steps or after "
             "--time-limit seconds, whichever comes first; %s. GPU atomics (index_add_, grouped GEMM) make runs "
             "non-bitwise-reproducible; expect the same losses within a few hundredths.\n" % (
                 cmd, torch.cuda.get_device_name(0), done))
    L.append("## Versions\n")
    L.append("- torch %s, transformers %s, python %s\n" % (torch.__version__, transformers.__version__,
                                                         platform.python_version()))
    L.append("## Model\n")
    L.append("- MixtralForCausalLM, byte-level: vocab 256, token id = byte value; bos = eos = pad = 0 "
             "(NUL, absent from the corpus; no BOS is prepended anywhere)\n"
             "- 6 layers, hidden 128, 4 attention heads / 2 KV heads (head_dim 32), RoPE theta 10000, "
             "max positions 1024, RMSNorm eps 1e-5, untied lm_head\n"
             "- MoE in every layer: 32 experts, top-4, SwiGLU experts of intermediate size 144, "
             "router aux loss coefficient 0.01\n"
             "- %d parameters; model.safetensors %d bytes (bfloat16)\n" % (nparams, st_size))
    L.append("config.json as transformers wrote it:\n\n```json\n%s\n```\n" % cfg_json.strip())
    L.append("## Training\n")
    L.append("- seed %d; batch %d sequences x %d bytes, domain drawn uniformly per sequence from %s\n"
             "- AdamW (betas 0.9/0.95, weight decay %.2g on matrices, not embeddings/norms), lr %.2g, "
             "%d warmup steps, cosine to %.2g x lr over %d steps, grad clip 1.0\n"
             "- bf16 autocast, fp32 master weights, TF32 allowed during training only\n"
             "- experts implementation during training: %s (probe: %s)\n"
             "- %d steps in %.1f s (%.1f M bytes seen); whole script %.1f s\n" % (
                 args.seed, args.batch, SEQ, ", ".join(DOMAINS), args.weight_decay, args.lr, args.warmup,
                 args.min_lr_frac, args.steps, impl, timings, steps, train_time,
                 steps * args.batch * SEQ / 1e6, total))
    L.append("Corpus (models/make_corpus.sh; sha256 in models/corpus.sha256):\n")
    L.append("| domain | train bytes | held-out bytes |\n|---|---|---|\n" + "".join(
        "| %s | %d | %d |\n" % (d, corpus_sizes[("train", d)], corpus_sizes[("heldout", d)]) for d in DOMAINS))
    L.append("\nLoss curve (step, train CE nats/byte, aux loss, seconds): %s\n" % (
        ", ".join("(%d, %.3f, %.3f, %.0f)" % h for h in history[::max(1, len(history) // 12)] + history[-1:])))
    L.append("## Losses (nats per byte), model reloaded from disk in float32\n")
    L.append("| domain | train (128 random %d-byte windows) | held-out (all %d-byte windows) |\n" % (SEQ, SEQ) +
             "|---|---|---|\n" + "".join("| %s | %.4f | %.4f |\n" % (d, trn[d], held[d]) for d in DOMAINS))
    L.append("| **mean** | %.4f | %.4f |\n" % (sum(trn.values()) / 4, sum(held.values()) / 4))
    if golden:
        L.append("\nGolden 1024-byte held-out perplexity (one sequence each, CPU float32): %s\n" % ", ".join(
            "%s %.4f nats/byte (ppl %.3f)" % (d, v["nats_per_byte"], v["ppl"]) for d, v in golden["ppl"].items()))
        L.append("\nGreedy continuation of `int main(` (64 bytes): `%s`\n" % json.dumps(
            golden["generation"]["text"])[1:-1])
    L.append("\n## Tensors in model.safetensors\n")
    L.append("| name | dtype | shape |\n|---|---|---|\n" + "".join(
        "| `%s` | %s | %s |\n" % (n, dt, shp) for n, dt, shp in tensors))
    L.append("\n## Golden outputs (models/tinymix/golden/)\n")
    L.append("Computed after training by reloading model.safetensors from disk in float32 on the CPU "
             "(eager attention, eager experts, TF32 off, eval). See models/goldens.py for the file "
             "formats and how routing is captured (hooks on mlp.gate and mlp.experts).\n")
    if golden:
        L.append("\n| seq | name | T | min k-th vs (k+1)-th router logit gap | positions with gap < 1e-5 |\n"
                 "|---|---|---|---|---|\n" + "".join(
                     "| %d | %s | %d | %.3g | %d |\n" % (i, e["name"], e["T"], e["min_gap_kth_vs_k1th_logit"],
                                                       e["positions_gap_below_1e-5"])
                     for i, e in enumerate(golden["sequences"])))
        L.append("\nObserved routing (Mixtral): `%s`\n" % json.dumps(golden["routing_facts"]))
    with open(os.path.join(args.out, "TRAINING.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
