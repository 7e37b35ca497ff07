#!/usr/bin/env python3
"""make_bpe_goldens.py OUT_DIR: tiny tokenizer.json files and their goldens.

Needs the Hugging Face `tokenizers` and `transformers` packages (run on a
machine that has them; CI never runs this script, it reads what it wrote,
committed under tests/golden/bpe/). It

  1. builds four tiny tokenizers with the `tokenizers` library, each trained
     on TRAIN below (a few hundred tokens), one per tokenizer.json family
     that real MoE checkpoints ship:
       qwen2    NFC normalizer, Split pre-tokenizer (Qwen2's regex, Isolated)
                then ByteLevel without its own regex; byte-level BPE; special
                tokens <|endoftext|> <|im_start|> <|im_end|> and one
                non-special normalized added token (Qwen2 / Qwen3-MoE layout)
       olmoe    NFC, ByteLevel pre-tokenizer with the GPT-2 regex, no prefix
                space; byte-level BPE; <|endoftext|> <|padding|> (OLMoE layout)
       mixtral  Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer,
                BPE with byte_fallback (<0x00>..<0xFF> in the vocabulary) and
                fused <unk>, template "<s> $A", decoder Replace / ByteFallback /
                Fuse / Strip (Mixtral / Llama-2 layout)
       llama    Metaspace pre-tokenizer (prepend_scheme "first", split), BPE
                with byte_fallback, template "<s> $A </s>", Metaspace decoder,
                a special [MASK] that strips spaces on both sides
  2. tokenizes CORPUS (ASCII, multibyte UTF-8, emoji, digits, whitespace
     runs, special tokens, empty string, ...) with transformers'
     PreTrainedTokenizerFast loaded from each tokenizer.json, with and
     without special tokens, and decodes both id lists; the raw `tokenizers`
     library must give the same ids (checked here, the run fails otherwise).

Writes OUT_DIR/corpus.json ({"cases": [{"name", "hex"}]}: texts as UTF-8 hex
so NUL and lone control characters survive any JSON reader) and, per
tokenizer, OUT_DIR/NAME/tokenizer.json and OUT_DIR/NAME/golden.json
({"cases": [{"name", "ids", "ids_plain", "decoded_hex", "decoded_plain_hex"}]},
cases in corpus order; ids = add_special_tokens=True, ids_plain = False)."""
import json
import os
import sys
import traceback

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")

TRAIN = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.",
    "Mixture-of-experts models route each token to a few experts out of many.",
    "Expert offloading keeps the experts on disk or in host memory and loads them on demand.",
    "A cache policy decides which experts stay resident; LRU evicts the least recently used one.",
    "The router picks the top-k experts per token, and the gate weights mix their outputs.",
    "In the beginning the model reads the prompt, then it generates one token at a time.",
    "Perplexity measures how surprised the model is by the text: lower is better.",
    "def forward(self, x):\n    return self.down(self.act(self.gate(x)) * self.up(x))\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "She said: \"I don't know, but we'll see what they're doing tomorrow.\"",
    "Numbers like 12, 345 and 6789 appear in tables, dates such as 2024-05-17 too.",
    "It's the 3rd time I've told you: read the README before running make test.",
    "Caches hold experts; prefetchers guess the next ones; stalls happen on misses.",
    "the the the and and of of to to in in is is that that it it for for on on with with",
    "Le café est très bon, merci beaucoup. Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "Это небольшой пример текста на русском языке.",
    "今日は良い天気です。日本語の文章も少しだけ含めます。",
    "Emoji happen too: 😀 👍 🎉, and so do symbols like ©, ®, € and £.",
    "    indented line\n\tTabbed line\n\nTwo newlines above.\r\nWindows line end.",
    "HELLO WORLD, Hello World, hello world; YOU'LL SEE, you'll see.",
]

CORPUS = [
    ("empty", ""),
    ("ascii", "Hello world"),
    ("sentence", "Hello, world! How are you today? The experts are resident."),
    ("leading_space", " leading space"),
    ("trailing_space", "trailing space "),
    ("two_leading", "  two leading spaces"),
    ("inner_runs", "multiple   spaces   inside"),
    ("only_spaces", "     "),
    ("tabs_newlines", "tabs\tand\nnewlines\n\nend"),
    ("newlines_only", "\n\n\n"),
    ("mixed_ws", "   \n  \t x \n"),
    ("crlf", "line1\r\nline2\r\n"),
    ("contractions", "don't I'M we'll they're YOU'VE she'd it's"),
    ("contraction_fold", "IT'S it'ſ x'K"),
    ("digits", "12345 3.14159 1,000,000 2024-06-01 007"),
    ("latin", "café naïve résumé Grüße aus Köln"),
    ("cjk", "日本語のテキスト，中文字符。"),
    ("cyrillic_greek", "Привет мир Ελληνικά"),
    ("rtl", "עברית العربية"),
    ("emoji", "I ❤️ emoji 😀👍🏽 👨‍👩‍👧 🇫🇷!"),
    ("nfc_combining", "e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1e9b\u0323"),
    ("nfc_stable_ligature", "\ufb01ne \u2126"),
    ("unicode_spaces", "a\u00a0b\u3000c\u2003d\u0085e\u180ef\u2028g\u200bh"),
    ("special_alone_eot", "<|endoftext|>"),
    ("special_inside", "text<|endoftext|>more"),
    ("chat", "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n"),
    ("llama_specials", "<s>Hello</s>"),
    ("llama_specials_spaced", " <s> spaced </s> "),
    ("unk_literal", "<unk> and <0x41> literally"),
    ("mask", "a [MASK]  b   [MASK]c"),
    ("added_normalized", "call <tool_call> now"),
    ("punct", "!!!???...---*** (x) [y] {z}"),
    ("math", "x=y+z*(a-b)/c; f(x)>=0 && g<1"),
    ("url", "http://example.com/path?q=1&r=2#frag"),
    ("windows_path", "C:\\Users\\test\\file.txt"),
    ("code", "def f(x):\n    return x**2\n\n\nclass A:\n\tpass\n"),
    ("long_word", "supercalifragilisticexpialidocious" * 3),
    ("long_run", "a" * 300 + " " + "ab" * 100),
    ("nul_ctrl", "a\x00b\x01\x02\x7fc"),
    ("paragraph", "Mixture-of-experts models route each token to a few experts. Offloading keeps most "
                  "experts out of GPU memory and streams them in on demand; a good cache policy hides "
                  "most of that traffic. Numbers: 128 experts, top-8, 48 layers, 2.5 GB/s."),
]


def bytelevel_bpe(name, normalizer, pre_tok, specials, extra_added=None, post=None):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tok
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=520, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN, trainer)
    tok.post_processor = post if post is not None else processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if extra_added:
        tok.add_tokens(extra_added)
    return tok


def metaspace_bpe(legacy):
    """BPE with byte fallback as Llama-2 / Mixtral ship it: <unk> <s> </s> at
    0..2, <0x00>..<0xFF> at 3..258, then the trained tokens."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # train on words ("▁"-prefixed pieces), as sentencepiece does
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=560, min_frequency=2, show_progress=False, limit_alphabet=48,
                                  special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(TRAIN, trainer)
    j = json.loads(tok.to_str())
    old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for s, _ in old:
        if s not in vocab:
            vocab[s] = len(vocab)
    j["model"]["vocab"] = vocab
    for t in j["added_tokens"]:
        t["id"] = vocab[t["content"]]
    if legacy:  # the components exactly as Mixtral's tokenizer.json spells them
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        j["pre_tokenizer"] = None
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok = Tokenizer.from_str(json.dumps(j))
    if legacy:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 1)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        tok.add_special_tokens([AddedToken("[MASK]", special=True, normalized=False, lstrip=True, rstrip=True)])
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                           special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


def build_qwen2():
    return bytelevel_bpe(
        "qwen2", normalizers.NFC(),
        pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        extra_added=[AddedToken("<tool_call>", special=False, normalized=True)])


def build_olmoe():
    return bytelevel_bpe("olmoe", normalizers.NFC(), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                         ["<|endoftext|>", "<|padding|>"])


BUILDERS = {"qwen2": build_qwen2, "olmoe": build_olmoe, "mixtral": lambda: metaspace_bpe(True),
            "llama": lambda: metaspace_bpe(False)}


def fast_tokenizer(path):
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:  # transformers 5 may name the class differently
        from transformers import TokenizersBackend as PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(tokenizer_file=path, clean_up_tokenization_spaces=False)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    try:
        import transformers
        tv = transformers.__version__
    except Exception as e:
        tv = "unavailable: %r" % e
    versions = {"tokenizers": tokenizers.__version__, "transformers": tv}
    print("versions", versions)
    with open(os.path.join(out, "corpus.json"), "w") as f:
        json.dump({"cases": [{"name": n, "hex": t.encode().hex()} for n, t in CORPUS]}, f, indent=1)
        f.write("\n")
    bad = 0
    for name, builder in BUILDERS.items():
        try:
            tok = builder()
        except Exception:  # the others still run; the failure is in the log
            traceback.print_exc()
            bad += 1
            continue
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "tokenizer.json")
        tok.save(path)
        raw = Tokenizer.from_file(path)
        try:
            fast = fast_tokenizer(path)
        except Exception as e:  # keep the run useful: the raw library's answers, marked as such
            print("transformers failed to load %s: %r; goldens from tokenizers alone" % (path, e))
            fast, versions["reference"] = None, "tokenizers"
        if fast is None:
            class Raw:  # the two calls used below, answered by the tokenizers library
                def encode(self, text, add_special_tokens):
                    return raw.encode(text, add_special_tokens=add_special_tokens).ids

                def decode(self, ids, skip_special_tokens):
                    return raw.decode(ids, skip_special_tokens=skip_special_tokens)
            fast = Raw()
        cases = []
        for cname, text in CORPUS:
            ids = fast.encode(text, add_special_tokens=True)
            plain = fast.encode(text, add_special_tokens=False)
            for want, special in ((ids, True), (plain, False)):
                got = raw.encode(text, add_special_tokens=special).ids
                if got != want:
                    print("MISMATCH %s %s special=%s: transformers %s tokenizers %s" % (name, cname, special, want, got))
                    bad += 1
            dec = fast.decode(ids, skip_special_tokens=False)
            dec_plain = fast.decode(plain, skip_special_tokens=False)
            if dec_plain != raw.decode(plain, skip_special_tokens=False):
                print("MISMATCH decode %s %s" % (name, cname))
                bad += 1
            cases.append({"name": cname, "ids": ids, "ids_plain": plain, "decoded_hex": dec.encode().hex(),
                          "decoded_plain_hex": dec_plain.encode().hex()})
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump({"tokenizer": name, "versions": versions, "vocab_size": raw.get_vocab_size(),
                       "cases": cases}, f, separators=(",", ":"))
            f.write("\n")
        rt = sum(bytes.fromhex(c["decoded_plain_hex"]) == t.encode() for c, (_, t) in zip(cases, CORPUS))
        print("%-8s vocab %d (with added), %d cases, %d round-trip exactly, tokenizer.json %d bytes" %
              (name, raw.get_vocab_size(), len(cases), rt, os.path.getsize(path)))
    if bad:
        sys.exit("%d mismatches between transformers and tokenizers" % bad)


if __name__ == "__main__":
    main()
