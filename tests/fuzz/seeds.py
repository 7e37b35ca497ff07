#!/usr/bin/env python3
"""seeds.py OUT: write the seed corpus of every fuzz target under OUT/<target>/.

Seeds are the project's own shipped files (small ones whole) plus a few
files written here for readers whose shipped examples are too large to
mutate (a safetensors file, an expert pack) or that have no shipped example
(cache states, prefetch logs, option lines), and every input a fuzzer
once failed on (tests/fuzz/regress/). Targets that take a selector
byte first (csv, jsonl, lcs_csv) get each file once per interesting
selector. MOESIM (env) is the moesim binary, used to write small traces."""
import json, os, shutil, struct, subprocess, sys

out = sys.argv[1]
moesim = os.environ.get("MOESIM", "build/moesim")


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# .moetrace: small generated traces (the shipped ones are 150 KB and more)
tmp = os.path.join(out, "_work")
os.makedirs(tmp, exist_ok=True)
for i, args in enumerate([["--steps", "6", "--layers", "2", "--experts", "4", "--top-k", "2", "--seq-len", "4", "--prefill", "2"],
                          ["--steps", "5", "--layers", "3", "--experts", "8", "--top-k", "1", "--lookahead", "1", "--no-weights"]]):
    p = os.path.join(tmp, "g%d.moetrace" % i)
    subprocess.run([moesim, "trace", "gen", "-o", p] + args, check=True, stdout=subprocess.DEVNULL)
    put("fuzz_moetrace", "gen%d.moetrace" % i, read(p))
    subprocess.run([moesim, "trace", "export", p, "-o", p + ".csv"], check=True, stdout=subprocess.DEVNULL)
    for sel in (0, 7, 0x2b):
        put("fuzz_csv", "gen%d_%02x.csv" % (i, sel), bytes([sel]) + read(p + ".csv"))

# a key sequence (.moetrace version 2)
p = os.path.join(tmp, "keys.moetrace")
subprocess.run([moesim, "trace", "import", "--format", "lcs-oracle", "tests/data/lcs.oracleGeneral.bin", "-o", p],
               check=True, stdout=subprocess.DEVNULL)
put("fuzz_moetrace", "keys.moetrace", read(p))

# JSONL, both layouts: selector bit 0 is the layout (1 = qwen); a second
# selector byte picks the Qwen warm-up and pass options (fuzz_jsonl.c)
for name in ("mixtral_exec", "mixtral_sorted"):
    for sel in (0, 2, 4):
        put("fuzz_jsonl", "%s_%d.jsonl" % (name, sel), bytes([sel, 0]) + read("tests/data/%s.jsonl" % name))
for name in ("qwen", "qwen_warmup", "qwen_batch", "qwen_passkey"):
    for sel, sel2 in ((1, 0), (9, 0), (0x81, 0), (1, 1), (1, 4), (1, 6), (1, 8)):
        put("fuzz_jsonl", "%s_%d_%d.jsonl" % (name, sel, sel2), bytes([sel, sel2]) + read("tests/data/%s.jsonl" % name))

# libCacheSim CSV: object column 2 with a header; column 1 without
lcs = read("tests/data/lcs.csv")
put("fuzz_lcs_csv", "header_col2.csv", bytes([2 | 8]) + lcs)
put("fuzz_lcs_csv", "plain.csv", bytes([1]) + b"5\n7\n5\n9\n7\n")
put("fuzz_lcs_oracle", "sample.bin", read("tests/data/lcs.oracleGeneral.bin"))

# option lines "NAME=VALUE", one seed per policy family and option kind
specs = ["policy=lru", "policy=fifo", "policy=lfu", "policy=arc", "policy=sieve", "policy=belady",
         "policy=s3fifo:small=0.2,threshold=2", "policy=random", "policy=lcp", "policy=least_stale",
         "policy=pin:n=2", "policy=hobbit", "policy=moe_infinity", "policy=learned",
         "policy=lru\ncapacity=3\nscope=global", "capacity=50%", "capacity=1.5MiB\nscope=global",
         "prefetch=gate:ahead=1,n=2", "prefetch=transition", "prefetch=history", "prefetch=topn:n=2",
         "prefetch=oracle:ahead=1", "skip=cum=0.9,topk_frac=0.3", "precision=uniform:bits=4",
         "precision=mlx", "split=fate:shallow=0.5", "split=adapmoe:profile=oracle",
         "device=nvme-cpu\nmodel=mixtral-8x7b", "cold-per-seq=1\nseed=3", "on-miss=skip\nprefetch=gate:ahead=1",
         "on-miss=substitute\ncapacity=2"]
for i, s in enumerate(specs):
    put("fuzz_spec", "spec%02d.txt" % i, s.encode())

# experiment files and profiles: the shipped ones
for f in sorted(os.listdir("experiments")):
    if f.endswith(".ini"):
        put("fuzz_experiment", f, read(os.path.join("experiments", f)))
for f in ("devices.ini", "models.ini"):
    put("fuzz_profile", f, read(os.path.join("experiments", f)))
put("fuzz_config", "tinymix.json", read("models/tinymix/config.json"))

# safetensors: three small tensors, one of each dtype the reader takes
def safetensors(tensors):
    header, blob = {}, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob
put("fuzz_safetensors", "three.safetensors", safetensors([
    ("a.weight", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3)),
    ("b.weight", "BF16", [3], struct.pack("<3H", 0x3f80, 0xc000, 0x0000)),
    ("c.weight", "F16", [2, 1], struct.pack("<2H", 0x3c00, 0x4000))]))

# tokenizer.json: the four golden layouts (byte-level with Split, byte-level
# GPT-2, Metaspace legacy, Metaspace) and a hand-written small one with
# every decoder and Split behavior kinds
for name in ("qwen2", "olmoe", "mixtral", "llama"):
    put("fuzz_tokenizer_json", name + ".json", read("tests/golden/bpe/%s/tokenizer.json" % name))
put("fuzz_tokenizer_json", "small.json", json.dumps({
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": 7, "content": "<s>", "single_word": False, "lstrip": True, "rstrip": True,
                      "normalized": False, "special": True}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Prepend", "prepend": "_"},
                                                       {"type": "Replace", "pattern": {"String": " "}, "content": "_"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s)|\\s+(?!\\S)|\\p{N}"}, "behavior": "MergedWithNext", "invert": True},
        {"type": "Metaspace", "replacement": "_", "prepend_scheme": "first", "split": True}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                 {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "_"}, "content": " "},
                                                 {"type": "ByteFallback"}, {"type": "Fuse"},
                                                 {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
              "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "_": 4, "_ab": 5, "<0x61>": 6},
              "merges": ["a b", "_ ab"]}}).encode())

# expert packs: 1 layer x 2 experts, H = I = 4, bf16 and 4-bit (check values
# zero: the fuzz build does not verify them, see MOE_CHECK_MISMATCH in
# core/error.h). 4-bit: gate+up 8 rows of 2 packed bytes (16) + 8 x 4 bytes
# of scale and bias = 48; down 4 rows: 8 + 16 = 24; 72 bytes an expert.
L, E, H, I = 1, 2, 4, 4
for name, dtype, eb in (("tiny.pack", 2, 3 * I * H * 2), ("tiny_q4.pack", 104, 72)):
    stride = (eb + 4095) // 4096 * 4096
    idx_bytes = L * E * 32
    data_off = 4096 + (idx_bytes + 4095) // 4096 * 4096
    size = data_off + L * E * stride
    hdr = bytearray(4096)
    hdr[0:8] = b"MOEPACK\0"
    struct.pack_into("<IIIIII", hdr, 8, 1, dtype, L, E, H, I)
    struct.pack_into("<QQQQQ", hdr, 32, eb, stride, 4096, data_off, size)
    index = bytearray(data_off - 4096)
    for k in range(L * E):
        struct.pack_into("<QQQII", index, 32 * k, data_off + k * stride, eb, 0, k // E, k % E)
    put("fuzz_pack", name, bytes(hdr) + bytes(index) + bytes(size - data_off))

# cache states (4 layers x 8 experts) and prefetch logs (4 layers, 8 experts)
put("fuzz_cache_state", "state.txt", b"# moesim cache state v1\ngeometry 4 8\n0 1\n2 7\n3 0\n")
put("fuzz_prefetch_log", "log.txt", b"# prefetch log\n0 0 1 2 5\n0 1 2 0 7\n3 2 3 1\n")
# every input a fuzzer once failed on (tests/fuzz/regress/<target>/), kept
# as a regression test: the short pass of `make test` runs them all
for t in sorted(os.listdir("tests/fuzz/regress")):
    for f in sorted(os.listdir(os.path.join("tests/fuzz/regress", t))):
        put(t, "regress_" + f, read(os.path.join("tests/fuzz/regress", t, f)))
shutil.rmtree(tmp)
