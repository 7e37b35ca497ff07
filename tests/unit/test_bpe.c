/* test_bpe.c: the tokenizer.json tokenizer (backend/hf_*.c).
 *
 * Goldens: tests/golden/bpe/{qwen2,olmoe,mixtral,llama} hold tiny tokenizers
 * of the four layouts real MoE checkpoints ship and transformers' ids for the
 * 40 texts of corpus.json, with and without special tokens, and its decode of
 * both (tests/tools/make_bpe_goldens.py, run with transformers 5.17.0 and
 * tokenizers 0.23.2). Every id and every decoded byte must match; where
 * transformers' decode gives the text back, decode(encode(text)) must too.
 * Hand-worked cases check merge order, unknown characters, the Split
 * behaviors, the regex translation and what is refused. */
#include <cjson/cJSON.h>
#include <time.h>

#include "../../backend/hf_tokenizer.h"
#include "../../backend/readfile.h"
#include "../../backend/tokenizer.h"
#include "check.h"

static cJSON *read_json(const char *path) {
    moe_error err;
    size_t n;
    unsigned char *s = moe_backend_read_file(path, &n, &err);
    if (!s) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)s, n);
    free(s);
    return j;
}

/* hex -> malloc'ed bytes */
static unsigned char *unhex(const char *h, size_t *n) {
    size_t len = strlen(h);
    unsigned char *b = malloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    *n = len / 2;
    return b;
}

static int ids_equal(const cJSON *want, const int *got, int n) {
    if (cJSON_GetArraySize(want) != n) return 0;
    int i = 0;
    for (const cJSON *e = want->child; e; e = e->next, i++)
        if ((int)e->valuedouble != got[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int *ids, int n) {
    printf("  %s:", what);
    for (int i = 0; i < n && i < 60; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 60 ? " ..." : "");
}

/* The decode of a whole id list through the streaming decoder. */
static char *decode_all(const moe_tokenizer *t, const cJSON *ids, size_t *len) {
    moe_detok d;
    moe_detok_init(&d, t);
    hf_buf out = {0};
    hf_buf_put(&out, "", 0);
    for (const cJSON *e = ids->child; e; e = e->next) {
        const char *p;
        size_t n;
        if (moe_detok_next(&d, (int)e->valuedouble, &p, &n) == 0) hf_buf_put(&out, p, n);
    }
    moe_detok_free(&d);
    *len = out.n;
    return out.p;
}

static int golden_cases, golden_roundtrips;

static void check_golden(const char *name) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "tests/golden/bpe/%s", name);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    cJSON *corpus = read_json("tests/golden/bpe/corpus.json"), *gold = read_json(path);
    CHECK(corpus && gold);
    moe_error err = {{0}};
    moe_tokenizer *t = moe_tokenizer_open(dir, 1 << 20, &err);
    if (!t) printf("  %s\n", err.msg);
    CHECK(t != NULL);
    CHECK(!strcmp(moe_tokenizer_kind(t), "tokenizer.json"));
    const cJSON *tc = cJSON_GetObjectItem(corpus, "cases")->child, *gc = cJSON_GetObjectItem(gold, "cases")->child;
    int bad = 0;
    for (; tc && gc; tc = tc->next, gc = gc->next) {
        const char *cname = cJSON_GetObjectItem(tc, "name")->valuestring;
        size_t len;
        unsigned char *text = unhex(cJSON_GetObjectItem(tc, "hex")->valuestring, &len);
        for (int special = 1; special >= 0; special--) {
            const cJSON *want = cJSON_GetObjectItem(gc, special ? "ids" : "ids_plain");
            int *ids, n, lead;
            if (moe_tokenizer_encode(t, text, len, special, &ids, &n, &lead, &err)) {
                printf("  %s/%s: %s\n", name, cname, err.msg);
                bad++;
                continue;
            }
            if (!ids_equal(want, ids, n)) {
                printf("  %s/%s special=%d: ids differ\n", name, cname, special);
                print_ids("got ", ids, n);
                int w[4096], k = 0;
                for (const cJSON *e = want->child; e && k < 4096; e = e->next) w[k++] = (int)e->valuedouble;
                print_ids("want", w, k);
                bad++;
            }
            free(ids);
            size_t dn, wn;
            char *dec = decode_all(t, want, &dn);
            unsigned char *wdec = unhex(cJSON_GetObjectItem(gc, special ? "decoded_hex" : "decoded_plain_hex")->valuestring, &wn);
            if (dn != wn || memcmp(dec, wdec, wn)) {
                printf("  %s/%s special=%d: decode differs: got '%.*s' want '%.*s'\n", name, cname, special, (int)dn,
                       dec, (int)wn, wdec);
                bad++;
            }
            if (!special && wn == len && !memcmp(wdec, text, len)) golden_roundtrips++;
            free(dec);
            free(wdec);
        }
        golden_cases++;
        free(text);
    }
    CHECK(!tc && !gc); /* the same number of cases */
    moe_tokenizer_free(t);
    cJSON_Delete(corpus);
    cJSON_Delete(gold);
    CHECK(bad == 0);
}

static void golden_qwen2(void) { check_golden("qwen2"); }
static void golden_olmoe(void) { check_golden("olmoe"); }
static void golden_mixtral(void) { check_golden("mixtral"); }
static void golden_llama(void) { check_golden("llama"); }

/* Counts from the goldens themselves: 40 texts x 4 tokenizers, and
 * transformers' decode gives the text back in 38 + 38 + 37 + 6 of them. */
static void golden_counts(void) {
    CHECK_EQ_U(golden_cases, 160);
    CHECK_EQ_U(golden_roundtrips, 119);
}

/* ---- hand-worked tokenizers ---- */

static hf_tokenizer *parse(const char *json, moe_error *err) {
    return hf_tokenizer_parse("t.json", json, strlen(json), err);
}

/* ids of text as a comma list "1,2,3" */
static const char *enc(const hf_tokenizer *t, const char *text, int special) {
    static char out[512];
    moe_error err;
    int32_t *ids;
    size_t n;
    if (hf_encode(t, text, strlen(text), special, &ids, &n, NULL, &err)) {
        snprintf(out, sizeof out, "error: %.400s", err.msg);
        return out;
    }
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && o < sizeof out - 16; i++) o += (size_t)snprintf(out + o, sizeof out - o, "%s%d", i ? "," : "", ids[i]);
    free(ids);
    return out;
}

/* Merge order by rank, not by position or length: with merges
 * [b c, a b, a bc], "abc" becomes a + bc (rank 0) then abc (rank 2), and
 * "abab" ab + ab (rank 1 twice, leftmost first). */
static void bpe_merges_by_rank(void) {
    moe_error err;
    hf_tokenizer *t = parse("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5,\"abab\":6},"
                            "\"merges\":[\"b c\",\"a b\",\"a bc\"]}}", &err);
    CHECK(t != NULL);
    CHECK(!strcmp(enc(t, "abc", 0), "5"));
    CHECK(!strcmp(enc(t, "abab", 0), "3,3")); /* no merge "ab ab" */
    CHECK(!strcmp(enc(t, "cab", 0), "2,3"));
    CHECK(!strcmp(enc(t, "bcab", 0), "4,3"));
    CHECK(!strcmp(enc(t, "", 0), ""));
    hf_tokenizer_free(t);
}

/* Characters outside the vocabulary: dropped without unk; one unk per run
 * with fuse_unk, one per character without; <0xNN> with byte_fallback. */
static void bpe_unknown_characters(void) {
    moe_error err;
    const char *fmt = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"<0xC3>\":2,\"<0xA9>\":3,\"x\":4},"
                      "\"merges\":[],%s}}";
    char js[512];
    snprintf(js, sizeof js, fmt, "\"unk_token\":null");
    hf_tokenizer *t = parse(js, &err);
    CHECK(t && !strcmp(enc(t, "aqqa", 0), "1,1"));
    hf_tokenizer_free(t);
    snprintf(js, sizeof js, fmt, "\"unk_token\":\"<unk>\",\"fuse_unk\":true");
    t = parse(js, &err);
    CHECK(t && !strcmp(enc(t, "aqqa", 0), "1,0,1"));
    hf_tokenizer_free(t);
    snprintf(js, sizeof js, fmt, "\"unk_token\":\"<unk>\",\"fuse_unk\":false");
    t = parse(js, &err);
    CHECK(t && !strcmp(enc(t, "aqqa", 0), "1,0,0,1"));
    hf_tokenizer_free(t);
    snprintf(js, sizeof js, fmt, "\"unk_token\":\"<unk>\",\"byte_fallback\":true");
    t = parse(js, &err);
    CHECK(t && !strcmp(enc(t, "a\xc3\xa9x", 0), "1,2,3,4")); /* é = C3 A9 */
    CHECK(!strcmp(enc(t, "\xc3\xa8", 0), "0"));              /* è: <0xA8> missing, so unk */
    hf_tokenizer_free(t);
}

/* The five Split behaviors on the library's own example, "The-final--countdown"
 * split on "-": pieces become single tokens (ignore_merges + a vocabulary of
 * the expected pieces), so the ids spell the pieces. */
static void split_behaviors(void) {
    const char *beh[5] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    /* ids: The 0, final 1, countdown 2, - 3, -- 4, The- 5, final- 6, -final 7, -countdown 8 */
    const char *want[5] = {"0,1,2", "0,3,1,3,3,2", "5,6,3,2", "0,7,3,8", "0,3,1,4,2"};
    for (int k = 0; k < 5; k++) {
        char js[1024];
        snprintf(js, sizeof js,
                 "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\",\"invert\":false},"
                 "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"The\":0,\"final\":1,\"countdown\":2,\"-\":3,"
                 "\"--\":4,\"The-\":5,\"final-\":6,\"-final\":7,\"-countdown\":8},\"merges\":[]}}",
                 beh[k]);
        moe_error err;
        hf_tokenizer *t = parse(js, &err);
        if (!t) printf("  %s\n", err.msg);
        CHECK(t != NULL);
        const char *got = enc(t, "The-final--countdown", 0);
        if (strcmp(got, want[k])) printf("  %s: %s, want %s\n", beh[k], got, want[k]);
        CHECK(!strcmp(got, want[k]));
        hf_tokenizer_free(t);
    }
}

/* Oniguruma's \s is Unicode White_Space: U+0085 and U+3000 are spaces,
 * U+180E (PCRE2's \s takes it) and U+200B are not. */
static void regex_white_space(void) {
    char why[200];
    hf_regex *re = hf_regex_compile("\\s+", 3, 0, why, sizeof why);
    CHECK(re != NULL);
    const char *s = "a\xc2\x85" "b\xe3\x80\x80" "c\xe1\xa0\x8e" "d\xe2\x80\x8b" "e";
    hf_span *sp;
    size_t n;
    moe_error err;
    CHECK(hf_regex_find_all(re, s, strlen(s), &sp, &n, &err) == 0);
    CHECK_EQ_U(n, 2);
    CHECK(sp[0].start == 1 && sp[0].end == 3 && sp[1].start == 4 && sp[1].end == 7);
    free(sp);
    hf_regex_free(re);
    /* an empty match right after a match is skipped, others split */
    re = hf_regex_compile("x*", 2, 0, why, sizeof why);
    CHECK(re && hf_regex_find_all(re, "axxb", 4, &sp, &n, &err) == 0);
    CHECK_EQ_U(n, 3); /* (0,0) (1,3) (4,4): not (3,3) */
    CHECK(sp[0].start == 0 && sp[0].end == 0 && sp[1].start == 1 && sp[1].end == 3 && sp[2].start == 4);
    free(sp);
    hf_regex_free(re);
    const char *refused[] = {"\\w+", "\\bx", "(?m:x)", "[a[b]]", "[\\S]", "(?<n>x)", "\\h"};
    for (int k = 0; k < 7; k++) {
        re = hf_regex_compile(refused[k], strlen(refused[k]), 0, why, sizeof why);
        if (re) printf("  accepted %s\n", refused[k]);
        CHECK(re == NULL && why[0]);
    }
}

/* What is not implemented is refused, naming the file and the JSON path. */
static void refuses_unsupported(void) {
    static const struct { const char *json, *want; } cases[] = {
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "t.json: $.model.type: model 'WordPiece' is not supported"},
        {"{\"normalizer\":{\"type\":\"NFKC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "t.json: $.normalizer: normalizer 'NFKC' is not supported"},
        {"{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Lowercase\"}]},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.normalizer.normalizers[1]: normalizer 'Lowercase'"},
        {"{\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.pre_tokenizer: pre-tokenizer 'Whitespace' is not supported"},
        {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},\"behavior\":\"Isolated\",\"invert\":false},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.pre_tokenizer: pattern '\\w+': an escape whose Oniguruma meaning is not kept"},
        {"{\"model\":{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{},\"merges\":[]}}", "$.model.dropout: BPE dropout"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
         "$.model.merges[0]: token 'b' is not in the vocabulary"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
         "$.model.merges[0]: the merged token 'ab' is not in the vocabulary"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "id 0 is given to both 'a' and 'b'"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":5,\"content\":\"<s>\","
         "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}]}",
         "$.added_tokens[0]: '<s>' has id 5, but the library would number it 1"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1,\"content\":\"<s>\","
         "\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}]}",
         "$.added_tokens[0]: single_word added tokens are not supported"},
        {"{\"post_processor\":{\"type\":\"RobertaProcessing\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.post_processor: post-processor 'RobertaProcessing' is not supported"},
        {"{\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":0,\"stop\":1}]},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.decoder.decoders[1]: Strip of the end of the whole text is not supported"},
        {"{\"decoder\":{\"type\":\"WordPiece\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.decoder: decoder 'WordPiece' is not supported"},
        {"{\"truncation\":{\"max_length\":8},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "$.truncation: settings would change the ids"},
        {"{\"version\":\"2.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "$.version: '2.0'"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]", "t.json: malformed JSON near byte"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        moe_error err = {{0}};
        hf_tokenizer *t = parse(cases[k].json, &err);
        if (t || !strstr(err.msg, cases[k].want)) printf("  case %zu: %s\n", k, t ? "accepted" : err.msg);
        CHECK(t == NULL);
        CHECK_STR_CONTAINS(err.msg, cases[k].want);
    }
}

/* Text that is not UTF-8 is an error naming the byte, not a guess. */
static void refuses_invalid_utf8(void) {
    moe_error err = {{0}};
    moe_tokenizer *t = moe_tokenizer_open("tests/golden/bpe/qwen2", 1 << 20, &err);
    CHECK(t != NULL);
    int *ids, n;
    CHECK(moe_tokenizer_encode(t, (const unsigned char *)"ab\xff" "c", 4, 0, &ids, &n, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "tokenizer.json: byte 2: not UTF-8");
    moe_tokenizer_free(t);
    /* and a model whose embeddings are fewer than the tokenizer's ids is refused */
    t = moe_tokenizer_open("tests/golden/bpe/qwen2", 300, &err);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(err.msg, "token id 420 ('<tool_call>') is past the model's vocab_size 300");
}

/* Seconds to encode 1 MB (the corpus's paragraph repeated) with tokenizer name. */
static double encode_mb(const char *name, int *n_tokens) {
    char dir[128];
    snprintf(dir, sizeof dir, "tests/golden/bpe/%s", name);
    moe_error err = {{0}};
    moe_tokenizer *t = moe_tokenizer_open(dir, 1 << 20, &err);
    if (!t) return -1;
    const char *para = "Mixture-of-experts models route each token to a few experts. Offloading keeps most experts "
                       "out of GPU memory and streams them in on demand; 128 experts, top-8, 2.5 GB/s.\n";
    size_t pl = strlen(para), n = 0;
    unsigned char *text = malloc((1 << 20) + pl);
    while (n + pl <= (1u << 20)) memcpy(text + n, para, pl), n += pl;
    int *ids;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = moe_tokenizer_encode(t, text, n, 0, &ids, n_tokens, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    printf("info encode_speed: %s: %zu bytes -> %d tokens in %.3f s\n", name, n, rc ? -1 : *n_tokens, s);
    if (!rc) free(ids);
    free(text);
    moe_tokenizer_free(t);
    return rc ? -1 : s;
}

/* Speed: 1 MB in seconds, not minutes: merges are a hash lookup and a heap,
 * not a scan per pair. mixtral has no pre-tokenizer, so its whole text is
 * one word of a million characters: the heap's O(n log n) at its limit. */
static void encode_speed(void) {
    int n;
    double s = encode_mb("qwen2", &n);
    CHECK(s >= 0 && s < 10.0); /* generous: sanitizer builds and a shared machine */
    CHECK(n > 100000);
    s = encode_mb("mixtral", &n);
    CHECK(s >= 0 && s < 10.0);
    CHECK(n > 100000);
}

int main(void) {
    RUN(golden_qwen2);
    RUN(golden_olmoe);
    RUN(golden_mixtral);
    RUN(golden_llama);
    RUN(golden_counts);
    RUN(bpe_merges_by_rank);
    RUN(bpe_unknown_characters);
    RUN(split_behaviors);
    RUN(regex_white_space);
    RUN(refuses_unsupported);
    RUN(refuses_invalid_utf8);
    RUN(encode_speed);
    CHECK_EXIT();
}
