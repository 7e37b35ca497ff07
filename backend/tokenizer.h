/* tokenizer.h: byte-level tokenizer (token = byte value) and --prompt-ids parsing.
 * A model is byte-level when its vocabulary has exactly 256 entries (the
 * shipped model); others need token ids given directly. */
#ifndef MOE_BACKEND_TOKENIZER_H
#define MOE_BACKEND_TOKENIZER_H

#include <stddef.h>

#include "../core/error.h"

int moe_tok_is_bytes(int vocab);
/* bytes -> ids (one per byte); returns a malloc'ed array of n ids. */
int *moe_tok_encode_bytes(const unsigned char *s, size_t n);
/* "1,2,3" -> malloc'ed ids, each < vocab; *n set. NULL + err on a bad list. */
int *moe_tok_parse_ids(const char *list, int vocab, int *n, moe_error *err);

#endif
