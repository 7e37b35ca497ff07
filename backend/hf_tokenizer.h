/* hf_tokenizer.h: a Hugging Face tokenizer.json with a BPE model, in C.
 *
 * Encoding follows the `tokenizers` library step by step, so that ids equal
 * transformers' (tests/golden/bpe holds its answers):
 *   1. added tokens (special or not) are cut out of the raw text first, by
 *      leftmost-longest match (those marked "normalized" are matched after
 *      step 2, in the normalized text);
 *   2. each remaining piece is normalized;
 *   3. pre-tokenizers split pieces into words (and map bytes to the
 *      ByteLevel alphabet);
 *   4. each word is BPE-merged by merge rank;
 *   5. the post-processor's template adds special tokens (BOS/EOS) when asked.
 * Decoding maps ids back to bytes token by token (hf_decode.c).
 *
 * Supported (anything else is refused by hf_tokenizer_load, naming the file
 * and the JSON path):
 *   model          BPE: vocab, merges ("a b" strings or [a, b] pairs),
 *                  unk_token, fuse_unk, byte_fallback, ignore_merges;
 *                  dropout null or 0; no continuing_subword_prefix or
 *                  end_of_word_suffix
 *   normalizer     null, NFC, Prepend, Replace (String pattern), Sequence
 *   pre_tokenizer  null, ByteLevel, Split (Regex or String pattern, every
 *                  behavior, invert), Metaspace, Sequence
 *   post_processor null, ByteLevel, TemplateProcessing ("single"), Sequence
 *   decoder        null, ByteLevel, Metaspace, Replace (String), ByteFallback,
 *                  Fuse, Strip (an ASCII content character; after Fuse only
 *                  "start"), Sequence
 *   added_tokens   special or not, normalized or not, lstrip, rstrip; not
 *                  single_word
 * Split regexes are Oniguruma's (what `tokenizers` compiles); they run on
 * PCRE2 after a translation that keeps Oniguruma's meaning of \s (Unicode
 * White_Space) and refuses escapes whose meaning differs (hf_regex.c). */
#ifndef MOE_BACKEND_HF_TOKENIZER_H
#define MOE_BACKEND_HF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/strindex.h"

/* A growable byte string. */
typedef struct hf_buf {
    char *p;
    size_t n, cap;
} hf_buf;
int hf_buf_put(hf_buf *b, const void *s, size_t n); /* 0, or -1 out of memory */
/* Append id to a growing id array (*n used of *cap); 0, or -1 out of memory. */
int hf_ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id);

/* ---- regex (hf_regex.c) ---- */
typedef struct hf_regex hf_regex;
typedef struct hf_span { size_t start, end; } hf_span;
/* Compile an Oniguruma pattern (literal: match the text as is); NULL and a
 * reason in why when it uses syntax whose meaning is not kept. */
hf_regex *hf_regex_compile(const char *pattern, size_t len, int literal, char *why, size_t why_len);
void hf_regex_free(hf_regex *re);
/* Every match in s, as `tokenizers` iterates them (an empty match right
 * after a match is skipped); *spans malloc'ed. */
int hf_regex_find_all(const hf_regex *re, const char *s, size_t n, hf_span **spans, size_t *n_spans, moe_error *err);

/* ---- the BPE model (hf_bpe.c) ---- */
typedef struct hf_bpe {
    char **str;          /* vocabulary strings, in file order */
    int32_t *id;         /* their ids */
    size_t n;
    moe_strindex index;  /* str -> position */
    uint64_t *mkey;      /* merges: open addressing, key = left id << 32 | right id, 0 = empty */
    uint32_t *mrank, *mnew;
    size_t mcap, n_merges;
    int32_t unk;         /* -1: none */
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_tok[256]; /* id of "<0xNN>", -1 if absent */
} hf_bpe;
int32_t hf_bpe_find(const hf_bpe *m, const char *s, size_t n); /* -1 if absent */
/* 0, or -1 out of memory; a merge is added after its pieces' ids are known */
int hf_bpe_add_merge(hf_bpe *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id);
/* Append the ids of one word (a pre-token) to *ids. */
int hf_bpe_word(const hf_bpe *m, const char *s, size_t n, int32_t **ids, size_t *n_ids, size_t *cap, moe_error *err);
void hf_bpe_free(hf_bpe *m);

/* ---- the pipeline's parts (hf_load.c builds them) ---- */
enum { HF_NORM_NFC, HF_NORM_PREPEND, HF_NORM_REPLACE };
typedef struct hf_norm {
    int kind;
    char *a, *b; /* Prepend: a; Replace: a -> b */
    size_t na, nb;
} hf_norm;

enum { HF_SPLIT_REMOVED, HF_SPLIT_ISOLATED, HF_SPLIT_MERGED_PREV, HF_SPLIT_MERGED_NEXT, HF_SPLIT_CONTIGUOUS };
enum { HF_PRE_BYTELEVEL, HF_PRE_SPLIT, HF_PRE_METASPACE };
enum { HF_PREPEND_ALWAYS, HF_PREPEND_FIRST, HF_PREPEND_NEVER };
typedef struct hf_pretok {
    int kind;
    int add_prefix_space; /* ByteLevel */
    hf_regex *re;         /* Split; ByteLevel with use_regex (the GPT-2 pattern) */
    int behavior, invert; /* Split */
    char rep[8];          /* Metaspace: the replacement character, UTF-8 */
    size_t nrep;
    int prepend, split;   /* Metaspace */
} hf_pretok;

enum { HF_DEC_BYTELEVEL, HF_DEC_METASPACE, HF_DEC_REPLACE, HF_DEC_BYTEFALLBACK, HF_DEC_FUSE, HF_DEC_STRIP };
typedef struct hf_dec {
    int kind;
    char *a, *b;    /* Replace: a -> b */
    size_t na, nb;
    char rep[8];    /* Metaspace */
    size_t nrep;
    int prepend;    /* Metaspace */
    char strip_c;   /* Strip: the ASCII character */
    int start, stop;
} hf_dec;

typedef struct hf_added {
    char *content, *match; /* match: the content, normalized when "normalized" */
    size_t n, nmatch;
    int32_t id;
    int special, normalized, lstrip, rstrip;
} hf_added;

typedef struct hf_tokenizer {
    char path[1024];
    hf_norm *norms;
    int n_norms;
    hf_pretok *pre;
    int n_pre;
    hf_bpe bpe;
    hf_added *added;
    int n_added;
    uint8_t added_first[2][256]; /* [normalized][byte]: some added token starts with it */
    int32_t *tmpl;       /* the template's ids: n_tmpl_before, then the text, then the rest */
    int n_tmpl, n_tmpl_before;
    hf_dec *dec;
    int n_dec;
    int has_decoder;     /* 0: tokens are joined by spaces, as without a decoder */
    char bl_char[256][2]; /* ByteLevel: byte -> its character, UTF-8 (bl_len bytes) */
    uint8_t bl_len[256];
    int16_t bl_byte[0x144]; /* ... and back: code point -> byte, -1 if none */
    char **id_str;       /* id -> token string (added tokens as matched), NULL for gaps */
    size_t *id_len;
    int32_t n_ids;       /* one past the largest id */
} hf_tokenizer;

/* Load path (a tokenizer.json); NULL with err naming the file and the JSON
 * path of anything malformed or unsupported. */
hf_tokenizer *hf_tokenizer_load(const char *path, moe_error *err);
/* The same from text already in memory (path only names it in errors). */
hf_tokenizer *hf_tokenizer_parse(const char *path, const char *json, size_t len, moe_error *err);
void hf_tokenizer_free(hf_tokenizer *t);

/* text (valid UTF-8, checked) -> ids, malloc'ed in *ids; with add_special
 * the template's tokens are added and *n_lead says how many precede the
 * text's own. */
int hf_encode(const hf_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, size_t *n,
              int *n_lead, moe_error *err);
/* Normalize s with t's normalizers into out (also used for added tokens). */
int hf_normalize(const hf_tokenizer *t, const char *s, size_t n, hf_buf *out, moe_error *err);

/* Decoding, one token at a time: the bytes of the sequence's next token. */
typedef struct hf_detok {
    size_t index;     /* tokens decoded so far */
    int strip_left;   /* whole-text Strip: characters still to strip at the start */
} hf_detok;
void hf_detok_init(hf_detok *d, const hf_tokenizer *t);
/* Append the bytes of id to out; 1 if id has no token (nothing appended,
 * as `tokenizers` skips it), 0 done, -1 out of memory. */
int hf_detok_next(const hf_tokenizer *t, hf_detok *d, int32_t id, hf_buf *out);

/* GPT-2's byte-to-character table (printable Latin-1 bytes map to
 * themselves, the other 68 to U+0100.. in byte order) into t->bl_*. */
void hf_bytelevel_table(hf_tokenizer *t);

/* UTF-8 helpers */
/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
size_t hf_utf8_len(const unsigned char *s, size_t n);
/* Offset of the first invalid byte, or n when all of s is valid UTF-8. */
size_t hf_utf8_check(const char *s, size_t n);

#endif
