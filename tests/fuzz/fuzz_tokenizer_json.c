/* fuzz_tokenizer_json: tokenizer.json files (backend/hf_load.c): the model's
 * vocabulary and merges, normalizers, pre-tokenizers (their regexes compiled),
 * the template, decoders and added tokens. A tokenizer that loads encodes a
 * few fixed texts, with and without special tokens; every id must be one the
 * tokenizer knows, and every id decodes without a fault. */
#include "fuzz.h"
#include "../../backend/hf_tokenizer.h"

static const char *const texts[] = {
    "", "Hello world", "  two  spaces\tand\nlines\r\n", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    "<s>x</s> <|endoftext|> [MASK] <unk>", "e\xcc\x81 \xc2\x85\xe3\x80\x80 don't 12345", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    hf_tokenizer *t = hf_tokenizer_load(fuzz_file(data, n, ".json"), &err);
    if (!t) return 0;
    hf_buf out = {0};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
        for (int special = 0; special < 2; special++) {
            int32_t *ids;
            size_t m;
            if (hf_encode(t, texts[k], strlen(texts[k]), special, &ids, &m, NULL, &err)) continue;
            hf_detok d;
            hf_detok_init(&d, t);
            for (size_t i = 0; i < m; i++) {
                if (ids[i] < 0 || ids[i] >= t->n_ids) {
                    fprintf(stderr, "encoded id %d outside [0, %d)\n", (int)ids[i], (int)t->n_ids);
                    abort();
                }
                out.n = 0;
                if (hf_detok_next(t, &d, ids[i], &out) < 0) abort();
            }
            free(ids);
        }
    hf_detok d; /* every id in one sequence, the unknown ones too */
    hf_detok_init(&d, t);
    for (int32_t id = -1; id <= t->n_ids && id < 4096; id++) {
        out.n = 0;
        if (hf_detok_next(t, &d, id, &out) < 0) abort();
    }
    free(out.p);
    hf_tokenizer_free(t);
    return 0;
}
