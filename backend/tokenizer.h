/* tokenizer.h: text <-> token ids for the backend's commands.
 *
 * A model directory's tokenizer is its tokenizer.json when it has one (a
 * Hugging Face BPE tokenizer: backend/hf_tokenizer.h says what loads and what
 * is refused), else one token per byte when the vocabulary has exactly 256
 * entries (the shipped model), else none: token ids are then given directly
 * (--prompt-ids, parsed here too). */
#ifndef MOE_BACKEND_TOKENIZER_H
#define MOE_BACKEND_TOKENIZER_H

#include <stddef.h>

#include "../core/error.h"

typedef struct moe_tokenizer moe_tokenizer;

/* The tokenizer of dir for a model of `vocab` embeddings. NULL with
 * err->msg empty when the model has none; NULL with err set when
 * dir/tokenizer.json cannot be used (or holds an id >= vocab). */
moe_tokenizer *moe_tokenizer_open(const char *dir, int vocab, moe_error *err);
void moe_tokenizer_free(moe_tokenizer *t);
/* "tokenizer.json" or "bytes", for messages. */
const char *moe_tokenizer_kind(const moe_tokenizer *t);
/* text -> ids (malloc'ed in *ids, *n of them). add_special: the special
 * tokens tokenizer.json's post-processor adds (BOS/EOS); *n_lead (may be
 * NULL) gets how many of them precede the text's own tokens. */
int moe_tokenizer_encode(const moe_tokenizer *t, const unsigned char *text, size_t len, int add_special, int **ids,
                         int *n, int *n_lead, moe_error *err);

/* Decoding a sequence token by token (generated text, printed as it comes). */
typedef struct moe_detok {
    const moe_tokenizer *tok;
    size_t index;
    int strip_left;
    char *buf;
    size_t n, cap;
} moe_detok;
void moe_detok_init(moe_detok *d, const moe_tokenizer *t);
/* The bytes of the sequence's next token in *out (valid until the next
 * call), *len of them. 0; 1 when id has no token (nothing to write); -1 out
 * of memory. */
int moe_detok_next(moe_detok *d, int id, const char **out, size_t *len);
void moe_detok_free(moe_detok *d);

/* The byte tokenizer's own calls (quality and validate use them directly). */
int moe_tok_is_bytes(int vocab);
/* bytes -> ids (one per byte); returns a malloc'ed array of n ids. */
int *moe_tok_encode_bytes(const unsigned char *s, size_t n);
/* "1,2,3" -> malloc'ed ids, each < vocab; *n set. NULL + err on a bad list. */
int *moe_tok_parse_ids(const char *list, int vocab, int *n, moe_error *err);

#endif
