"""The binary .moetrace format from Python: read (memory-mapped, zero-copy) and write.

Layout: traces/README.md ("Binary .moetrace"); the C side is core/trace_bin.c and
core/trace.c. This module follows them check for check: every header field and
section is checked before an array is built, the checksum is verified, and then
every record is checked as moe_trace_validate() does, so a file this module
opens is one `moesim` opens, and a file it writes is one `moesim` accepts.

Errors are TraceFormatError (a ValueError) whose message starts with the file
name and names the field: "t.moetrace: file size (offset 24): truncated: ...".
"""
import hashlib
import mmap
import os
import struct
import tempfile

import numpy as np

MAGIC = b"MOETRACE"
NO_EXPERT = 0xFFFF  # an empty slot in experts / lookahead
MAX_EXPERTS = 0xFFFE
MAX_LAYERS = 65536
MAX_KEYS = 0xFFFFFFFF
PREFILL, DECODE = 0, 1
PRECISIONS = ("f32", "f16", "q8", "q4", "q3", "q2")  # order of the expert-bytes fields

FLAG_WEIGHTS, FLAG_LOGITS, FLAG_LOOKAHEAD, FLAG_KEYS = 1, 2, 4, 8
HDR_SIZE = {1: 416, 2: 432}
OFF_SECTIONS = 256
SECTIONS = ("meta", "step_first_token", "step_id", "step_phase", "token_seq",
            "token_pos", "experts", "weights", "router_logits", "lookahead", "keys")
# element dtype of each section (meta is text)
DTYPES = {"step_first_token": "<u8", "step_id": "<u8", "step_phase": "u1", "token_seq": "<u4",
          "token_pos": "<u4", "experts": "<u2", "weights": "<f4", "router_logits": "<f4",
          "lookahead": "<u2", "keys": "<u4"}

# Records checked per chunk by validate(): bounds the temporaries (a few
# bytes per slot) whatever the trace's size.
_CHUNK_RECORDS = 1 << 20


class TraceFormatError(ValueError):
    """A .moetrace (or the arrays given to write_trace) breaks the format.

    path: the file; field: the header field or section at fault."""

    def __init__(self, path, field, msg):
        self.path, self.field = path, field
        super().__init__(f"{path}: {field}: {msg}")


# ---- checksum (core/trace_util.c) -------------------------------------------

_M64 = (1 << 64) - 1
_K1, _K2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
_H0, _ADD = 0x6A09E667F3BCC908, 0x52DCE729


def checksum(buf, start=24):
    """The .moetrace checksum of bytes [start, len(buf)) of a bytes-like object.

    The per-word product and rotation are computed by numpy; the chain over
    the words is sequential by design and runs as a Python loop: about 14 MB
    of file per second of CPU on the 2-core test machine (README, "Python")."""
    view = memoryview(buf)
    n = len(view) - start
    nw = n // 8
    h = _H0
    step = 1 << 18  # words per chunk: bounds the list of Python ints
    for at in range(0, nw, step):
        w = np.frombuffer(view, dtype="<u8", count=min(step, nw - at), offset=start + 8 * at)
        a = w * np.uint64(_K1)  # array arithmetic wraps mod 2^64
        a = (a << np.uint64(31)) | (a >> np.uint64(33))
        for x in a.tolist():
            x ^= h
            h = ((((x << 27) | (x >> 37)) & _M64) * _K2 + _ADD) & _M64
    if n % 8:  # the last word, zero-padded
        x = int.from_bytes(bytes(view[start + 8 * nw:]) + bytes(8 - n % 8), "little")
        x = (x * _K1) & _M64
        x = h ^ (((x << 31) | (x >> 33)) & _M64)
        h = ((((x << 27) | (x >> 37)) & _M64) * _K2 + _ADD) & _M64
    h ^= (n * _K2) & _M64
    h ^= h >> 33
    h = (h * _K1) & _M64
    h ^= h >> 29
    h = (h * _K2) & _M64
    h ^= h >> 32
    return h


# ---- the trace --------------------------------------------------------------

class Trace:
    """An opened .moetrace. Arrays are read-only numpy views of the mapped file
    (no copy); the map stays open as long as any of them is referenced.

    Header: path, version, model, source, n_layers, n_experts, top_k, n_shared,
    lookahead_depth, flags, expert_bytes (dict precision -> bytes, 0 = unknown),
    n_steps, n_tokens, meta (str), checksum (int).
    Per step: step_first_token (S+1), step_id (S), step_phase (S: 0 prefill, 1 decode).
    Per token: token_seq (T), token_pos (T).
    Records: experts (T, L, K) uint16, NO_EXPERT = empty; weights (T, L, K)
    float32, NaN = not recorded, or None; router_logits (T, L, E) or None;
    lookahead (T, L, D, K) or None (experts predicted for layer l+d+1 from layer l).
    Key sequences (version 2): keys (T) uint32 and the per-step/record arrays None."""

    def __repr__(self):
        return (f"<moesim.Trace {self.path!r}: v{self.version}, {self.model!r}, {self.n_layers} layers x "
                f"{self.n_experts} experts, top-{self.top_k}, {self.n_steps} steps, {self.n_tokens} tokens>")

    @property
    def is_keys(self):
        return self.keys is not None

    def token_step(self):
        """Per token: the index of its step (a new array, T entries)."""
        if self.is_keys:
            return np.arange(self.n_tokens, dtype=np.int64)
        return np.repeat(np.arange(self.n_steps, dtype=np.int64), np.diff(self.step_first_token.astype(np.int64)))

    def content_hash(self):
        """The trace's content hash as `moesim trace info` prints it and results
        databases store it (traces.hash): SHA-256 over a fixed serialisation of
        the header fields and arrays (core/results.c, moe_trace_hash)."""
        return content_hash(self)


def _u64(v):
    return struct.pack("<Q", v)


def content_hash(t):
    """moe_trace_hash() of core/results.c for anything with Trace's attributes."""
    s = hashlib.sha256(b"moesim-trace-hash-v1")
    for text in (t.model, t.source):
        b = text.encode("utf-8", "surrogateescape")[:64]
        s.update(_u64(len(b)) + b)
    for v in (t.n_layers, t.n_experts, t.top_k, t.n_shared, t.lookahead_depth):
        s.update(_u64(v))
    for p in PRECISIONS:
        s.update(_u64(t.expert_bytes[p]))
    if t.meta:  # an empty meta is absent, as the C reader leaves it
        b = t.meta.encode("utf-8", "surrogateescape")
        s.update(_u64(len(b)) + b)
    else:
        s.update(_u64(_M64))
    s.update(_u64(t.n_steps) + _u64(t.n_tokens))
    for name in SECTIONS[1:10]:
        a = getattr(t, name)
        if a is None:
            s.update(_u64(_M64))
        else:
            a = np.ascontiguousarray(a, dtype=DTYPES[name])
            s.update(_u64(a.size))
            s.update(memoryview(a).cast("B"))
    if t.keys is not None:
        a = np.ascontiguousarray(t.keys, dtype="<u4")
        s.update(_u64(a.size))
        s.update(memoryview(a).cast("B"))
    return s.hexdigest()


def open_trace(path, verify=True):
    """Open a .moetrace read-only, memory-mapped; returns a Trace.

    verify=False skips only the checksum (checksum(): about 14 MB/s); every
    structural and record check still runs."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HDR_SIZE[1]:
            raise TraceFormatError(path, "header", f"truncated: {size} bytes, shorter than the {HDR_SIZE[1]}-byte header")
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return _parse(path, m, verify)


def _parse(path, m, verify):
    size = len(m)

    def fail(field, off, msg):
        raise TraceFormatError(path, f"{field} (offset {off})" if off is not None else field, msg)

    if m[0:8] != MAGIC:
        fail("magic", 0, "not a .moetrace file (bad magic)")
    version, hsize = struct.unpack_from("<II", m, 8)
    if version not in HDR_SIZE:
        fail("version", 8, f"format version {version}, this reader reads versions 1 and 2")
    if hsize != HDR_SIZE[version]:
        fail("header size", 12, f"{hsize}, expected {HDR_SIZE[version]}")
    if size < hsize:
        fail("header", None, f"truncated: {size} bytes, shorter than the {hsize}-byte header")
    want, flen = struct.unpack_from("<QQ", m, 16)
    if flen != size:
        fail("file size", 24, f"{'truncated' if flen > size else 'trailing garbage'}: header says {flen} bytes, "
             f"file has {size}")
    if verify:
        got = checksum(m)
        if got != want:
            fail("checksum", 16, f"mismatch (header {want:016x}, content {got:016x}): file is corrupt")
    t = Trace()
    t.path, t.version, t.checksum = path, version, want
    for name, off in (("model", 32), ("source", 96)):
        raw = m[off:off + 64]
        if raw[63]:
            fail(name, off, "name not NUL-terminated")
        # any bytes the C reader takes: non-UTF-8 ones survive as surrogates
        setattr(t, name, raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"))
    (t.n_layers, t.n_experts, t.top_k, t.n_shared, t.lookahead_depth,
     t.flags) = struct.unpack_from("<6I", m, 160)
    t.expert_bytes = dict(zip(PRECISIONS, struct.unpack_from("<6Q", m, 184)))
    t.n_steps, t.n_tokens, meta_len = struct.unpack_from("<QQQ", m, 232)
    flags = t.flags
    known = FLAG_WEIGHTS | FLAG_LOGITS | FLAG_LOOKAHEAD | (FLAG_KEYS if version == 2 else 0)
    if flags & ~known:
        fail("flags", 180, f"unknown flags {flags:#x}")
    if version == 2 and flags != FLAG_KEYS:
        fail("flags", 180, f"version 2 holds key sequences only (flags {flags:#x}, expected {FLAG_KEYS:#x})")
    keys = bool(flags & FLAG_KEYS)
    if keys and (t.n_layers != 1 or t.top_k != 1 or t.lookahead_depth or t.n_experts == 0 or
                 t.n_steps != t.n_tokens or t.n_steps == 0):
        fail("layers", 160, f"a key sequence has layers = top_k = 1, no lookahead, keys >= 1 and one token per "
             f"step (layers {t.n_layers}, keys {t.n_experts}, top_k {t.top_k}, steps {t.n_steps}, "
             f"tokens {t.n_tokens})")
    if bool(flags & FLAG_LOOKAHEAD) != bool(t.lookahead_depth):
        fail("lookahead depth", 176, f"{t.lookahead_depth} disagrees with flags {flags:#x}")
    if not keys:
        _check_geometry(t.n_layers, t.n_experts, t.top_k, t.lookahead_depth,
                        lambda field, off, msg: fail(field, off, msg))
    if t.n_steps == 0:
        fail("steps", 232, "trace has no steps")
    if t.n_tokens < t.n_steps:
        fail("tokens", 240, f"{t.n_tokens} tokens for {t.n_steps} steps (each step needs one)")
    sizes = _section_sizes(t.n_layers, t.n_experts, t.top_k, t.lookahead_depth, flags, t.n_steps, t.n_tokens,
                           meta_len)
    nsec = 10 if version == 1 else 11
    prev_end = hsize
    where = {}
    for i in range(nsec):
        name, at = SECTIONS[i], OFF_SECTIONS + 16 * i
        off, n = struct.unpack_from("<QQ", m, at)
        if n != sizes[i]:
            fail(f"section {name}", at + 8, f"{n} bytes, header geometry implies {sizes[i]}")
        if n == 0:
            if off:
                fail(f"section {name}", at, f"empty section has offset {off}")
            continue
        if off % 8 or off < prev_end or off > size or n > size - off:
            fail(f"section {name}", at, f"at {off}+{n} is misaligned, overlaps or lies outside the file "
                 f"({size} bytes)")
        prev_end = off + n
        where[name] = off
    raw_meta = m[where["meta"]:where["meta"] + meta_len] if meta_len else b""
    if b"\0" in raw_meta:
        fail("section meta", None, "contains a NUL byte")
    t.meta = raw_meta.decode("utf-8", "surrogateescape")
    T, L, K, E, D = t.n_tokens, t.n_layers, t.top_k, t.n_experts, t.lookahead_depth
    shapes = {"step_first_token": (t.n_steps + 1,), "step_id": (t.n_steps,), "step_phase": (t.n_steps,),
              "token_seq": (T,), "token_pos": (T,), "experts": (T, L, K), "weights": (T, L, K),
              "router_logits": (T, L, E), "lookahead": (T, L, D, K), "keys": (T,)}
    for name in SECTIONS[1:]:
        if name in where:  # zero-copy: a read-only view of the map
            count = int(np.prod(shapes[name], dtype=np.uint64))
            a = np.frombuffer(m, dtype=DTYPES[name], count=count, offset=where[name]).reshape(shapes[name])
        else:
            a = None
        setattr(t, name, a)
    if not keys:
        # validate() reads step offsets before bounding its token loop, as the C reader does
        first = t.step_first_token
        bad = np.flatnonzero((first[1:] <= first[:-1]) | (first[1:] > np.uint64(T)))
        if bad.size:
            s = int(bad[0])
            fail("section step_first_token", None, f"step {s}: token offsets {int(first[s])}..{int(first[s + 1])} "
                 f"not increasing within {T} tokens")
    validate(t)
    return t


def _check_geometry(layers, experts, top_k, depth, fail):
    """The limits of core/trace.h; fail(field, offset, msg) raises."""
    if not 1 <= layers <= MAX_LAYERS:
        fail("layers", 160, f"{layers} out of range 1..{MAX_LAYERS}")
    if not 1 <= experts <= MAX_EXPERTS:
        fail("experts", 164, f"{experts} out of range 1..{MAX_EXPERTS}")
    if not 1 <= top_k <= experts:
        fail("top_k", 168, f"{top_k} out of range 1..{experts}")
    if depth > MAX_LAYERS:
        fail("lookahead depth", 176, f"{depth} out of range 0..{MAX_LAYERS}")
    if layers * experts > MAX_KEYS:
        fail("layers", 160, f"layers x experts = {layers} x {experts} = {layers * experts} (layer, expert) keys, "
             f"more than the key space ({MAX_KEYS})")


def _section_sizes(layers, experts, top_k, depth, flags, steps, tokens, meta_len):
    """Byte length of each section the geometry implies (Python ints: no overflow)."""
    size = [0] * 11
    size[0] = meta_len
    if flags & FLAG_KEYS:
        size[10] = 4 * tokens
        return size
    rec = tokens * layers * top_k
    size[1], size[2], size[3] = 8 * (steps + 1), 8 * steps, steps
    size[4] = size[5] = 4 * tokens
    size[6] = 2 * rec
    if flags & FLAG_WEIGHTS:
        size[7] = 4 * rec
    if flags & FLAG_LOGITS:
        size[8] = 4 * tokens * layers * experts
    if flags & FLAG_LOOKAHEAD:
        size[9] = 2 * rec * depth
    return size


def validate(t):
    """Every invariant moe_trace_validate() checks, vectorised; raises
    TraceFormatError naming the section and the step/token/layer/slot at fault."""
    def fail(field, msg):
        raise TraceFormatError(t.path, f"section {field}", msg)

    if t.keys is not None:
        if t.n_layers != 1 or t.top_k != 1 or t.lookahead_depth or t.n_shared:
            raise TraceFormatError(t.path, "header", f"a key sequence has layers = top_k = 1 and no lookahead or "
                                   f"shared experts (has {t.n_layers}, {t.top_k}, {t.lookahead_depth}, {t.n_shared})")
        bad = np.flatnonzero(t.keys >= np.uint32(t.n_experts))
        if bad.size:
            i = int(bad[0])
            fail("keys", f"request {i}: key {int(t.keys[i])} >= keys ({t.n_experts})")
        return
    first, sid, phase = t.step_first_token, t.step_id, t.step_phase
    if first[0] != 0:
        fail("step_first_token", "step 0: first token is not 0")
    if first[-1] != t.n_tokens:
        fail("step_first_token", f"steps cover {int(first[-1])} tokens but the trace has {t.n_tokens}")
    bad = np.flatnonzero(sid[1:] <= sid[:-1])
    if bad.size:
        s = int(bad[0]) + 1
        fail("step_id", f"step {int(sid[s])} follows step {int(sid[s - 1])}: step numbers must increase")
    bad = np.flatnonzero(phase > DECODE)
    if bad.size:
        s = int(bad[0])
        fail("step_phase", f"step {int(sid[s])}: phase {int(phase[s])} is neither prefill nor decode")
    T, L, K, E = t.n_tokens, t.n_layers, t.top_k, t.n_experts
    per = max(1, _CHUNK_RECORDS // max(1, L * K))  # tokens per chunk

    def where(tok, layer, slot):
        step = int(np.searchsorted(first, np.uint64(tok), side="right")) - 1
        return f"step {int(sid[step])}, token {int(t.token_pos[tok])}, layer {layer}, slot {slot}"

    for t0 in range(0, T, per):
        e = t.experts[t0:t0 + per]
        empty = e == NO_EXPERT
        bad = ~empty & (e >= E)  # out of range
        bad[..., 1:] |= np.logical_or.accumulate(empty, axis=-1)[..., :-1] & ~empty[..., 1:]  # after an empty slot
        if t.weights is not None:
            bad |= np.isinf(t.weights[t0:t0 + per]) & ~empty  # NaN means "not recorded"
        srt = np.sort(e, axis=-1)
        rec_bad = bad.any(axis=-1) | ((srt[..., 1:] == srt[..., :-1]) & (srt[..., 1:] != NO_EXPERT)).any(axis=-1)
        idx = np.argwhere(rec_bad)
        if idx.size:  # the first bad record, then its slots in the C loop's order
            tok, layer = (int(v) for v in idx[0])
            rec, ended = e[tok, layer], False
            for s in range(K):
                x = int(rec[s])
                at = where(t0 + tok, layer, s)
                if x == NO_EXPERT:
                    ended = True
                    continue
                if ended:
                    fail("experts", f"{at}: expert after an empty slot")
                if x >= E:
                    fail("experts", f"{at}: expert {x} >= experts ({E})")
                if x in rec[:s]:
                    fail("experts", f"{at}: expert {x} appears twice")
                if t.weights is not None and np.isinf(t.weights[t0 + tok, layer, s]):
                    fail("weights", f"{at}: weight is not finite")
        if t.lookahead is not None:
            la = t.lookahead[t0:t0 + per]
            idx = np.argwhere((la != NO_EXPERT) & (la >= E))
            if idx.size:
                tok, layer, d, slot = (int(v) for v in idx[0])
                fail("lookahead", f"{where(t0 + tok, layer, slot)}: lookahead expert {int(la[tok, layer, d, slot])} "
                     f">= experts ({E})")


# ---- writer -------------------------------------------------------------------

def write_trace(path, experts, *, n_experts, weights=None, router_logits=None, lookahead=None,
                step=None, phase=None, seq=None, pos=None, model="", source="python moesim",
                meta="", n_shared=0, expert_bytes=None):
    """Write a routing trace (format version 1) that `moesim` reads; returns path.

    N tokens, L MoE layers, top-k K slots, E routed experts per layer:
      experts        (N, L, K) ints: expert ids in rank order (slot 0 = highest
                     gate weight); -1 or 65535 = empty slot (empty slots last)
      n_experts      E (required: ids are checked against it)
      weights        (N, L, K) floats, stored as float32; NaN = not recorded
      router_logits  (N, L, E) floats, stored as float32
      lookahead      (N, L, D, K) ints: experts predicted for layer l+d+1 from
                     layer l's hidden state; -1 or 65535 = none
      step           (N,) step (forward pass) number of each token; a step is a
                     run of equal values, the values increasing; default: one
                     token per step, numbered 0, 1, ...
      phase          (N,) 0 = prefill, 1 = decode, equal within a step; default:
                     moesim's rule (a step is prefill if one of its tokens is at
                     position 0 or a sequence has several tokens in it)
      seq            (N,) sequence (request) id; default 0
      pos            (N,) position of the token in its sequence; default: the
                     count of earlier tokens of its sequence
      model, source  text of at most 63 UTF-8 bytes; meta: free text, no NUL
      n_shared       shared (always-on) experts per layer
      expert_bytes   bytes per expert at each precision: a dict with keys from
                     PRECISIONS or a sequence of 6 (0 = unknown)
    The arrays are checked as the C reader checks them (TraceFormatError naming
    the field); the file is written under a temporary name in the same
    directory, fsynced and renamed over path, so path never holds half a trace.
    """
    path = os.fspath(path)

    def fail(field, msg):
        raise TraceFormatError(path, field, msg)

    ex = np.asarray(experts)
    if ex.ndim != 3 or 0 in ex.shape:
        fail("experts", f"needs shape (tokens, layers, top_k), all nonzero; got {ex.shape}")
    if not np.issubdtype(ex.dtype, np.integer):
        fail("experts", f"needs integers, got {ex.dtype}")
    N, L, K = (int(v) for v in ex.shape)
    E = int(n_experts)
    _check_geometry(L, E, K, 0, lambda field, off, msg: fail(field, msg))
    experts16 = _ids16(ex, "experts", fail)
    t = Trace()
    t.path, t.version = path, 1
    t.n_layers, t.n_experts, t.top_k, t.n_shared = L, E, K, int(n_shared)
    t.n_tokens = N
    if not 0 <= t.n_shared <= 0xFFFFFFFF:
        fail("n_shared", f"{n_shared} out of range 0..{0xFFFFFFFF}")
    for name, text in (("model", model), ("source", source)):
        b = str(text).encode("utf-8", "surrogateescape")
        if len(b) > 63 or b"\0" in b:
            fail(name, f"{len(b)} UTF-8 bytes or a NUL; the header holds at most 63 bytes, no NUL")
        setattr(t, name, str(text))
    t.meta = str(meta or "")
    if "\0" in t.meta:
        fail("meta", "contains a NUL character")
    eb = expert_bytes if expert_bytes is not None else {}
    if not isinstance(eb, dict):
        eb = list(eb)
        if len(eb) != len(PRECISIONS):
            fail("expert_bytes", f"{len(eb)} values, need {len(PRECISIONS)} ({', '.join(PRECISIONS)})")
        eb = dict(zip(PRECISIONS, eb))
    unknown = set(eb) - set(PRECISIONS)
    if unknown:
        fail("expert_bytes", f"unknown precision {sorted(unknown)[0]!r} (known: {', '.join(PRECISIONS)})")
    t.expert_bytes = {p: int(eb.get(p, 0)) for p in PRECISIONS}
    if any(not 0 <= v <= _M64 for v in t.expert_bytes.values()):
        fail("expert_bytes", "values must be 0..2^64-1")

    def per_token(a, name, default, hi):
        if a is None:
            return default
        a = np.asarray(a)
        if a.shape != (N,):
            fail(name, f"needs shape ({N},) (one per token), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            fail(name, f"needs integers, got {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > hi):
            fail(name, f"values must be 0..{hi}")
        return a.astype(np.uint64)

    stp = per_token(step, "step", np.arange(N, dtype=np.uint64), _M64)
    t.token_seq = per_token(seq, "seq", np.zeros(N, dtype=np.uint64), 0xFFFFFFFF).astype("<u4")
    if pos is None:  # count of earlier tokens of the same sequence
        order = np.argsort(t.token_seq, kind="stable")
        sorted_seq = t.token_seq[order]
        run_start = np.r_[0, np.flatnonzero(sorted_seq[1:] != sorted_seq[:-1]) + 1]
        rank = np.arange(N) - np.repeat(run_start, np.diff(np.r_[run_start, N]))
        t.token_pos = np.empty(N, dtype="<u4")
        t.token_pos[order] = rank
    else:
        t.token_pos = per_token(pos, "pos", None, 0xFFFFFFFF).astype("<u4")
    if np.any(stp[1:] < stp[:-1]):
        i = int(np.flatnonzero(stp[1:] < stp[:-1])[0]) + 1
        fail("step", f"token {i}: step {int(stp[i])} after step {int(stp[i - 1])}: steps must not decrease")
    starts = np.r_[0, np.flatnonzero(stp[1:] != stp[:-1]) + 1]
    t.n_steps = len(starts)
    t.step_first_token = np.r_[starts, N].astype("<u8")
    t.step_id = stp[starts].astype("<u8")
    if phase is None:
        t.step_phase = _infer_phases(t.token_seq, t.token_pos, starts, N)
    else:
        ph = per_token(phase, "phase", None, DECODE)
        mixed = np.flatnonzero(ph != np.repeat(ph[starts], np.diff(t.step_first_token.astype(np.int64))))
        if mixed.size:
            fail("phase", f"token {int(mixed[0])}: phase differs from the first token of its step")
        t.step_phase = ph[starts].astype("u1")
    t.experts = experts16
    t.flags = 0
    t.weights = t.router_logits = t.lookahead = t.keys = None
    if weights is not None:
        w = np.asarray(weights)
        if w.shape != ex.shape:
            fail("weights", f"needs the shape of experts {ex.shape}, got {w.shape}")
        t.weights = np.ascontiguousarray(w, dtype="<f4")
        t.flags |= FLAG_WEIGHTS
    if router_logits is not None:
        lg = np.asarray(router_logits)
        if lg.shape != (N, L, E):
            fail("router_logits", f"needs shape {(N, L, E)} (tokens, layers, experts), got {lg.shape}")
        t.router_logits = np.ascontiguousarray(lg, dtype="<f4")
        t.flags |= FLAG_LOGITS
    t.lookahead_depth = 0
    if lookahead is not None:
        la = np.asarray(lookahead)
        if la.ndim != 4 or la.shape[:2] != (N, L) or la.shape[3] != K or la.shape[2] == 0:
            fail("lookahead", f"needs shape ({N}, {L}, D, {K}) with D >= 1, got {la.shape}")
        if not np.issubdtype(la.dtype, np.integer):
            fail("lookahead", f"needs integers, got {la.dtype}")
        t.lookahead_depth = int(la.shape[2])
        _check_geometry(L, E, K, t.lookahead_depth, lambda field, off, msg: fail(field, msg))
        t.lookahead = _ids16(la, "lookahead", fail)
        t.flags |= FLAG_LOOKAHEAD
    validate(t)
    _save(t, path)
    return path


def _ids16(a, name, fail):
    """Expert ids as uint16 with -1 mapped to NO_EXPERT; other negatives or ids
    above 65535 are errors (never wrapped)."""
    a64 = a.astype(np.int64)
    bad = np.flatnonzero(((a64 < 0) & (a64 != -1)) | (a64 > NO_EXPERT))
    if bad.size:
        i = np.unravel_index(int(bad[0]), a.shape)
        fail(name, f"index {tuple(int(v) for v in i)}: id {int(a64[i])} is neither an expert id nor -1/65535")
    return np.where(a64 == -1, NO_EXPERT, a64).astype("<u2")


def _infer_phases(seq, pos, starts, n):
    """moe_infer_phase() per step: prefill if a token is at position 0 or a
    sequence has two tokens in the step."""
    step_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    prefill = np.zeros(len(starts), dtype=bool)
    prefill[step_of[pos == 0]] = True
    order = np.lexsort((seq, step_of))
    same = (step_of[order][1:] == step_of[order][:-1]) & (seq[order][1:] == seq[order][:-1])
    prefill[step_of[order][1:][same]] = True
    return np.where(prefill, PREFILL, DECODE).astype("u1")


def _save(t, path):
    """Header + sections, 8-aligned and zero-padded, checksum patched in,
    atomically (same directory, fsync, rename, fsync of the directory)."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise TraceFormatError(path, "path", "exists and is not a regular file")
    meta = t.meta.encode("utf-8", "surrogateescape")
    data = [meta, t.step_first_token, t.step_id, t.step_phase, t.token_seq, t.token_pos, t.experts,
            t.weights, t.router_logits, t.lookahead]
    blobs = []
    for name, a in zip(SECTIONS, data):
        if a is None or len(a) == 0:
            blobs.append(None)
        elif name == "meta":
            blobs.append(memoryview(a))
        else:
            blobs.append(memoryview(np.ascontiguousarray(a, dtype=DTYPES[name])).cast("B"))
    hdr = bytearray(HDR_SIZE[1])
    hdr[0:8] = MAGIC
    struct.pack_into("<II", hdr, 8, 1, HDR_SIZE[1])
    for off, text in ((32, t.model), (96, t.source)):
        b = text.encode("utf-8", "surrogateescape")
        hdr[off:off + len(b)] = b
    struct.pack_into("<6I", hdr, 160, t.n_layers, t.n_experts, t.top_k, t.n_shared, t.lookahead_depth, t.flags)
    struct.pack_into("<6Q", hdr, 184, *(t.expert_bytes[p] for p in PRECISIONS))
    struct.pack_into("<QQQ", hdr, 232, t.n_steps, t.n_tokens, len(meta))
    at = HDR_SIZE[1]
    for i, b in enumerate(blobs):
        n = len(b) if b is not None else 0
        struct.pack_into("<QQ", hdr, OFF_SECTIONS + 16 * i, at if n else 0, n)
        at += (n + 7) & ~7
    struct.pack_into("<Q", hdr, 24, at)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=d)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; traces are shared data files
        with os.fdopen(fd, "w+b") as f:
            f.write(hdr)
            for b in blobs:
                if b is not None:
                    f.write(b)
                    f.write(bytes(-len(b) % 8))
            f.flush()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                s = checksum(m)
            f.seek(16)
            f.write(struct.pack("<Q", s))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable; failing here loses nothing written
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
