"""test_trace.py: python/moesim/trace.py against the C implementation.

  - every shipped traces/*.moetrace opens, its content hash equals the one
    `moesim trace info` prints (a SHA-256 over every header field and array:
    lookahead and logits included), and its arrays equal `moesim trace export`
    row for row;
  - rewriting a shipped trace with write_trace gives the same bytes;
  - a random trace (several sequences per step, empty slots, weights, logits,
    lookahead) written by Python: `moesim trace info` accepts it with the same
    hash, `moesim trace export` gives its arrays, Python reads back the same
    arrays, and the CSV imported again by moesim gives them too;
  - a key sequence (format version 2) made by moesim reads back;
  - damaged files: truncation, a flipped byte, a bad header field and a bad
    record raise TraceFormatError naming the file and the field; for a bad
    record the place (step, token, layer, slot) equals the C reader's;
  - write_trace refuses bad arrays before writing anything.
"""
import glob
import os
import struct

import numpy as np

from harness import ROOT, Failed, case, ensure, moesim, run, tmp
import moesim as ms


def export_arrays(path, with_weights):
    """`moesim trace export` of path: (int rows [n, 6], weights [n] as float64,
    NaN where empty; all NaN unless with_weights)."""
    out = tmp("export.csv")
    moesim("trace", "export", path, "-o", out)
    with open(out) as f:
        header = f.readline().strip()
    ensure(header == "step,seq,token,layer,slot,expert,weight", f"export header {header!r}")
    ints = np.loadtxt(out, delimiter=",", skiprows=1, usecols=range(6), dtype=np.int64, ndmin=2)
    w = np.full(len(ints), np.nan)
    if with_weights:  # may be empty (not recorded): parsed here, not by loadtxt
        with open(out) as f:
            f.readline()
            w = np.array([float(x) if x else np.nan for x in (line.rstrip("\n").rsplit(",", 1)[1] for line in f)])
    else:
        with open(out) as f:
            f.readline()
            ensure(all(line.endswith(",\n") for line in f), f"{path}: a weight in the export of a trace without")
    return ints, w


def expected_rows(t):
    """The export's rows from the Python arrays: one per named slot, sorted by
    step, token position, seq, layer, slot (traces/README.md)."""
    step_of = t.token_step()
    tok, layer, slot = np.nonzero(t.experts != ms.NO_EXPERT)
    order = np.lexsort((slot, layer, t.token_seq[tok], t.token_pos[tok], step_of[tok]))
    tok, layer, slot = tok[order], layer[order], slot[order]
    rows = np.stack([t.step_id[step_of[tok]].astype(np.int64), t.token_seq[tok].astype(np.int64),
                     t.token_pos[tok].astype(np.int64), layer, slot, t.experts[tok, layer, slot].astype(np.int64)], 1)
    w = t.weights[tok, layer, slot] if t.weights is not None else np.full(len(tok), np.nan, np.float32)
    return rows, w


def same_as_export(t):
    ints, w = export_arrays(t.path, t.weights is not None)
    rows, w_exp = expected_rows(t)
    ensure(ints.shape == rows.shape, f"{t.path}: export has {len(ints)} rows, Python {len(rows)}")
    bad = np.flatnonzero((ints != rows).any(axis=1))
    ensure(not bad.size, f"{t.path}: export row {bad[0] + 2 if bad.size else 0}: {ints[bad[0]] if bad.size else ''} "
           f"vs Python {rows[bad[0]] if bad.size else ''}")
    # %.9g text read as a double, rounded to float32: the stored value exactly
    w32 = w.astype(np.float32)
    ensure(np.array_equal(w32, w_exp, equal_nan=True), f"{t.path}: weights differ from the export")


def info_hash(path):
    out = moesim("trace", "info", path).stdout
    fields = dict((line.split(None, 1) + [""])[:2] for line in out.splitlines() if line and not line[0].isspace())
    return fields["hash"].strip(), fields.get("checksum", "").strip()


@case
def shipped_traces_read_and_match_export():
    paths = sorted(glob.glob(os.path.join(ROOT, "traces", "*.moetrace")))
    ensure(len(paths) >= 10, f"only {len(paths)} shipped traces found")
    for p in paths:
        t = ms.open_trace(p)
        h, chk = info_hash(p)
        ensure(t.content_hash() == h, f"{p}: content hash {t.content_hash()} vs moesim {h}")
        ensure(chk == f"{t.checksum:016x} (verified)", f"{p}: checksum {t.checksum:016x} vs moesim {chk!r}")
        ensure(not t.experts.flags.writeable and t.experts.base is not None, f"{p}: experts is not a read-only view")
        same_as_export(t)


def rewrite_args(t):
    per_step = np.diff(t.step_first_token.astype(np.int64))
    return dict(n_experts=t.n_experts, weights=t.weights, router_logits=t.router_logits, lookahead=t.lookahead,
                step=np.repeat(t.step_id, per_step), phase=np.repeat(t.step_phase, per_step), seq=t.token_seq,
                pos=t.token_pos, model=t.model, source=t.source, meta=t.meta, n_shared=t.n_shared,
                expert_bytes=t.expert_bytes)


@case
def rewrite_shipped_trace_byte_identical():
    for name in ("tinymix_prose", "default"):
        src = os.path.join(ROOT, "traces", name + ".moetrace")
        t = ms.open_trace(src)
        out = tmp(name + ".moetrace")
        ms.write_trace(out, t.experts, **rewrite_args(t))
        with open(src, "rb") as a, open(out, "rb") as b:
            ensure(a.read() == b.read(), f"{name}: rewritten file differs from the shipped one")
        # and with the phases left to the rule: the shipped phases follow it too
        args = rewrite_args(t)
        del args["phase"], args["pos"]
        ms.write_trace(out, t.experts, **args)
        with open(src, "rb") as a, open(out, "rb") as b:
            ensure(a.read() == b.read(), f"{name}: rewritten with default phases/positions, the file differs")


def random_trace(seed=7):
    """Steps of 1-3 tokens over 3 sequences (a step may hold two of one
    sequence's tokens: a prefill), empty trailing slots, and every optional array."""
    rng = np.random.default_rng(seed)
    L, K, E, D = 5, 3, 9, 2
    steps, seqs, pos, next_pos = [], [], [], [0, 0, 0]
    for s in range(40):
        for _ in range(int(rng.integers(1, 4))):
            q = int(rng.integers(0, 3))
            steps.append(3 * s + 1)  # step numbers with gaps: kept as given
            seqs.append(q)
            pos.append(next_pos[q])
            next_pos[q] += 1
    # within a step, tokens by (position, sequence): the order moesim's CSV
    # import rebuilds, so the CSV round trip below is exact
    order = np.lexsort((seqs, pos, steps))
    steps, seqs, pos = (list(np.array(v)[order]) for v in (steps, seqs, pos))
    N = len(steps)
    ex = np.array([[rng.permutation(E)[:K] for _ in range(L)] for _ in range(N)])
    nfill = rng.integers(0, K + 1, size=(N, L))  # 0..K experts: empty layers too
    ex[np.arange(K)[None, None, :] >= nfill[..., None]] = -1
    w = rng.random((N, L, K)).astype(np.float32)
    w[ex < 0] = np.nan
    w[0, 0, 0] = np.nan  # a named slot without a weight
    la = rng.integers(-1, E, size=(N, L, D, K))
    logits = rng.standard_normal((N, L, E)).astype(np.float32)
    return dict(experts=ex, n_experts=E, weights=w, router_logits=logits, lookahead=la, step=np.array(steps),
                seq=np.array(seqs), pos=np.array(pos), model="random-π", source="test_trace.py",
                meta="seed=7\nline two", n_shared=1, expert_bytes={"f16": 1000, "q4": 300})


@case
def python_write_moesim_read_python_read():
    a = random_trace()
    path = tmp("random.moetrace")
    ms.write_trace(path, a.pop("experts"), **a)
    a = random_trace()
    t = ms.open_trace(path)
    h, chk = info_hash(path)
    ensure(h == t.content_hash(), f"moesim's hash {h} differs from Python's {t.content_hash()}")
    ensure(chk.endswith("(verified)"), f"checksum line {chk!r}")
    ex16 = np.where(a["experts"] < 0, ms.NO_EXPERT, a["experts"]).astype(np.uint16)
    ensure(np.array_equal(t.experts, ex16), "experts read back differ")
    ensure(np.array_equal(t.weights, a["weights"], equal_nan=True), "weights read back differ")
    ensure(np.array_equal(t.router_logits, a["router_logits"]), "logits read back differ")
    ensure(np.array_equal(t.lookahead, np.where(a["lookahead"] < 0, ms.NO_EXPERT, a["lookahead"])), "lookahead differs")
    ensure(np.array_equal(t.token_seq, a["seq"]) and np.array_equal(t.token_pos, a["pos"]), "seq/pos differ")
    ensure(np.array_equal(np.repeat(t.step_id, np.diff(t.step_first_token.astype(int))), a["step"]), "steps differ")
    ensure((t.model, t.source, t.meta, t.n_shared) == ("random-π", "test_trace.py", "seed=7\nline two", 1), "header")
    ensure(t.expert_bytes == {"f32": 0, "f16": 1000, "q8": 0, "q4": 300, "q3": 0, "q2": 0}, f"{t.expert_bytes}")
    # phases by moesim's rule, checked by hand: prefill iff a token at position 0
    # or a sequence twice in the step
    for s in range(t.n_steps):
        lo, hi = int(t.step_first_token[s]), int(t.step_first_token[s + 1])
        q, p = list(t.token_seq[lo:hi]), list(t.token_pos[lo:hi])
        want = ms.PREFILL if 0 in p or len(set(q)) < len(q) else ms.DECODE
        ensure(t.step_phase[s] == want, f"step {s}: phase {t.step_phase[s]}, rule says {want}")
    ensure(0 < int((t.step_phase == ms.DECODE).sum()) < t.n_steps, "the random trace should mix phases")
    same_as_export(t)
    # the CSV imported by moesim: the same routing (CSV carries no logits or lookahead)
    back = tmp("random_back.moetrace")
    moesim("trace", "export", path, "-o", tmp("random.csv"))
    moesim("trace", "import", tmp("random.csv"), "--layers", 5, "--experts", 9, "--top-k", 3, "-o", back)
    u = ms.open_trace(back)
    for name in ("step_first_token", "step_id", "step_phase", "token_seq", "token_pos", "experts"):
        ensure(np.array_equal(getattr(u, name), getattr(t, name)), f"CSV round trip: {name} differs")
    ensure(np.array_equal(u.weights, t.weights, equal_nan=True), "CSV round trip: weights differ")
    ensure(not [f for f in os.listdir(os.path.dirname(path)) if ".tmp." in f], "a temporary file was left behind")


@case
def key_sequence_v2():
    src = tmp("keys.oracleGeneral.bin")
    ids = [5, 7, 5, 9, 7, 5, 11]
    with open(src, "wb") as f:
        for i in ids:
            f.write(struct.pack("<IQIq", 0, i, 1, -1))
    out = tmp("keys.moetrace")
    moesim("trace", "import", "--format", "lcs-oracle", src, "-o", out)
    t = ms.open_trace(out)
    ensure(t.version == 2 and t.is_keys, f"version {t.version}")
    ensure(list(t.keys) == [0, 1, 0, 2, 1, 0, 3] and t.n_experts == 4, f"keys {list(t.keys)}, {t.n_experts} distinct")
    ensure(t.content_hash() == info_hash(out)[0], "key sequence hash differs from moesim's")


def damaged(name, edit):
    """A copy of tinymix_prose with edit(bytearray) applied; the checksum
    refreshed when fix_sum, so a later check is the one that fires."""
    data = bytearray(open(os.path.join(ROOT, "traces", "tinymix_prose.moetrace"), "rb").read())
    fix_sum = edit(data)
    if fix_sum:
        struct.pack_into("<Q", data, 16, ms.checksum(data))
    p = tmp(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def raises(path, field, *needles):
    try:
        ms.open_trace(path)
    except ms.TraceFormatError as e:
        msg = str(e)
        ensure(msg.startswith(path + ": ") and e.path == path and e.field.startswith(field),
               f"message {msg!r} / field {e.field!r}: expected {path} and field {field!r}")
        for n in needles:
            ensure(n in msg, f"message {msg!r} lacks {n!r}")
        return msg
    raise Failed(f"{path}: opened without an error")




@case
def truncated_and_corrupt_files_name_file_and_field():
    raises(damaged("trunc.moetrace", lambda d: d.__delitem__(slice(len(d) - 100, None))), "file size (offset 24)",
           "truncated", "header says")
    raises(damaged("short.moetrace", lambda d: d.__delitem__(slice(300, None))), "header", "shorter than the 416-byte")
    raises(damaged("flip.moetrace", lambda d: d.__setitem__(5000, d[5000] ^ 1)), "checksum (offset 16)", "mismatch")
    raises(damaged("magic.moetrace", lambda d: d.__setitem__(0, ord("X"))), "magic (offset 0)")

    def top_k_too_big(d):
        struct.pack_into("<I", d, 168, 40)
        return True
    raises(damaged("topk.moetrace", top_k_too_big), "top_k (offset 168)", "out of range 1..32")

    def section_len(d):
        struct.pack_into("<Q", d, 256 + 16 * 6 + 8, 8)
        return True
    raises(damaged("sec.moetrace", section_len), "section experts", "header geometry implies")


def c_message(path):
    p = moesim("trace", "info", path, ok=False)
    ensure(p.returncode != 0, f"moesim accepted {path}")
    return p.stderr


@case
def bad_record_same_place_as_c_reader():
    t = ms.open_trace(os.path.join(ROOT, "traces", "tinymix_prose.moetrace"))
    off = struct.unpack_from("<Q", open(t.path, "rb").read(), 256 + 16 * 6)[0]
    rec = (100 * t.n_layers + 2) * t.top_k  # token 100, layer 2
    cases = {
        "range.moetrace": (rec + 1, 77, "expert 77 >= experts (32)"),
        "twice.moetrace": (rec + 3, int(t.experts[100, 2, 0]), "appears twice"),
        "gap.moetrace": (rec + 1, 0xFFFF, "expert after an empty slot"),
    }
    for name, (at, value, needle) in cases.items():
        def edit(d, at=at, value=value):
            struct.pack_into("<H", d, off + 2 * at, value)
            return True
        p = damaged(name, edit)
        msg = raises(p, "section experts", needle)
        place = msg.split("section experts: ", 1)[1]
        c = c_message(p)
        ensure(place in c, f"{name}: Python says {place!r}, moesim says {c.strip()!r}")


@case
def writer_refuses_bad_arrays_and_writes_nothing():
    a = random_trace()
    path = tmp("bad.moetrace")
    bad = [
        (dict(a, experts=np.where(a["experts"] == 3, 12, a["experts"])), "section experts", "expert 12 >= experts (9)"),
        (dict(a, step=a["step"][::-1].copy()), "step", "must not decrease"),
        (dict(a, seq=a["seq"][:-1]), "seq", "one per token"),
        (dict(a, weights=np.where(np.isnan(a["weights"]), np.nan, np.inf)), "section weights", "not finite"),
        (dict(a, model="x" * 64), "model", "at most 63 bytes"),
        (dict(a, experts=a["experts"].astype(float)), "experts", "needs integers"),
        (dict(a, n_experts=70000), "experts", "out of range"),
    ]
    for args, field, needle in bad:
        ex = args.pop("experts")
        try:
            ms.write_trace(path, ex, **args)
        except ms.TraceFormatError as e:
            ensure(e.field.startswith(field) and needle in str(e), f"{field}: got {e.field!r}: {e}")
        else:
            raise Failed(f"{field}: write_trace accepted it")
        ensure(not os.path.exists(path), f"{field}: a file was written")
    ensure(not [f for f in os.listdir(os.path.dirname(path)) if ".tmp." in f], "a temporary file was left behind")


run()
